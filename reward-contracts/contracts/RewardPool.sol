// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Cairn, Epochs} from "./Cairn.sol";
import {ProviderRegistry} from "./ProviderRegistry.sol";
import {Staking} from "./Staking.sol";

/// @notice What a market hands the pool at an epoch's close: the fees it burnt in that epoch.
interface FeeBurner {
    function burnFees(uint256 amount) external;
}

/// @title RewardPool: per-epoch emission that follows fees clients really paid.
/// @notice The pool holds a genesis endowment. Every market payment to a provider is recorded
/// here with the share of it the market burnt (`feeBurnPercent`). At each epoch's close, up to
/// `emissionPerEpoch` of the pool is shared: half in proportion to storage fees paid in the
/// epoch, half in proportion to compute fees, and no provider receives more than
/// `emissionCapPercent` of what its own payments burnt. With that cap below 100 %, paying
/// oneself (a wash deal or a self-job) burns more than it can earn back, and price-0 work earns
/// nothing (argued in docs/economics.md). What is not emitted stays in the pool, and so does the
/// rounding dust. Providers pull their rewards with `claim`. Staking sends the pool what it
/// slashes for equivocation (less the reporter's share); it is emitted like the endowment.
/// Invariant: `distributed == outstanding + claimed` and
/// `balance == endowment + slashedIn - claimed`.
/// @dev Fees are recorded per provider and per epoch, never in a global counter, so payments of
/// different providers write disjoint slots; totals are summed at the close, which also hands
/// each market its epoch's burn total to send to `Cairn.BURN`. Closes never brick: each call
/// closes every epoch not closed yet up to the one asked (at most `MAX_EPOCHS_PER_CLOSE`; the
/// rest at the next call), so a close that reverted, or was never made, is caught up later.
contract RewardPool is Epochs {
    /// Epochs one close may catch up on; the work of each is bounded by the provider list cap
    /// (about 18k gas a provider with pruning: two epochs of 16,384 providers stay well within
    /// a system call's 1G gas).
    uint64 public constant MAX_EPOCHS_PER_CLOSE = 2;

    uint256 public emissionPerEpoch;
    /// Percent of every market payment that is burnt.
    uint8 public feeBurnPercent;
    /// A provider's emission in an epoch is at most this percent of the fees its payments
    /// burnt in that epoch (per market).
    uint8 public emissionCapPercent;
    /// Rewards assigned and not yet claimed.
    uint256 public outstanding;
    /// Rewards assigned since genesis.
    uint256 public distributed;
    /// The first epoch not closed yet.
    uint64 public nextEpochToClose;
    /// Fees paid to each provider in each epoch, and the part of them burnt, per market.
    mapping(uint64 => mapping(address => uint256)) public storageFees;
    mapping(uint64 => mapping(address => uint256)) public storageBurnt;
    mapping(uint64 => mapping(address => uint256)) public computeFees;
    mapping(uint64 => mapping(address => uint256)) public computeBurnt;
    mapping(address => uint256) public owed;
    /// Tokens received from Staking (equivocation slashes) since genesis.
    uint256 public slashedIn;

    event StorageFeeRecorded(address indexed provider, uint64 indexed epoch, uint256 fee, uint256 burnt);
    event ComputeFeeRecorded(address indexed provider, uint64 indexed epoch, uint256 fee, uint256 burnt);
    event EpochClosed(uint64 indexed epoch, uint256 emission, uint256 distributed, uint256 burnt);
    event Claimed(address indexed provider, uint256 amount);
    event SlashReceived(uint256 amount);

    error NotMarket(address caller);
    error NothingToClaim();
    /// Only Staking sends the pool tokens after genesis; anything else would be unaccounted.
    error NotStaking(address caller);
    error PercentAbove100(uint8 percent);

    function initialize(uint64 epochLength_, uint256 emissionPerEpoch_, uint8 feeBurnPercent_, uint8 emissionCapPercent_)
        external
        onlySystem
    {
        if (feeBurnPercent_ > 100) revert PercentAbove100(feeBurnPercent_);
        if (emissionCapPercent_ > 100) revert PercentAbove100(emissionCapPercent_);
        _initEpochs(epochLength_);
        emissionPerEpoch = emissionPerEpoch_;
        feeBurnPercent = feeBurnPercent_;
        emissionCapPercent = emissionCapPercent_;
    }

    /// @notice The part of a payment of `fee` that is burnt.
    function burnShare(uint256 fee) external view returns (uint256) {
        return fee * feeBurnPercent / 100;
    }

    function recordStorageFee(address provider, uint256 fee, uint256 burnt) external {
        if (msg.sender != Cairn.STORAGE_MARKET) revert NotMarket(msg.sender);
        uint64 epoch = currentEpoch();
        storageFees[epoch][provider] += fee;
        storageBurnt[epoch][provider] += burnt;
        emit StorageFeeRecorded(provider, epoch, fee, burnt);
    }

    function recordComputeFee(address provider, uint256 fee, uint256 burnt) external {
        if (msg.sender != Cairn.COMPUTE_MARKET) revert NotMarket(msg.sender);
        uint64 epoch = currentEpoch();
        computeFees[epoch][provider] += fee;
        computeBurnt[epoch][provider] += burnt;
        emit ComputeFeeRecorded(provider, epoch, fee, burnt);
    }

    /// @notice Closes every epoch from `nextEpochToClose` up to `closed` (at most
    /// `MAX_EPOCHS_PER_CLOSE` of them). Only the system, at each epoch's first block.
    function closeEpoch(uint64 closed) external onlySystem {
        uint64 epoch = nextEpochToClose;
        uint64 last = closed;
        if (last >= epoch + MAX_EPOCHS_PER_CLOSE) last = epoch + MAX_EPOCHS_PER_CLOSE - 1;
        for (; epoch <= last; epoch++) {
            _close(epoch, epoch == closed);
        }
        if (epoch > nextEpochToClose) nextEpochToClose = epoch;
    }

    function _close(uint64 epoch, bool latest) internal {
        ProviderRegistry registry = ProviderRegistry(Cairn.REGISTRY);
        address[] memory providers = registry.providers();
        uint256 available = address(this).balance - outstanding;
        uint256 emission = emissionPerEpoch < available ? emissionPerEpoch : available;
        uint256 storagePart = emission / 2;
        uint256 computePart = emission - storagePart;
        uint256 storageTotal;
        uint256 computeTotal;
        uint256 storageBurntTotal;
        uint256 computeBurntTotal;
        for (uint256 i = 0; i < providers.length; i++) {
            address p = providers[i];
            storageTotal += storageFees[epoch][p];
            computeTotal += computeFees[epoch][p];
            storageBurntTotal += storageBurnt[epoch][p];
            computeBurntTotal += computeBurnt[epoch][p];
        }
        uint256 paid;
        for (uint256 i = 0; i < providers.length; i++) {
            address p = providers[i];
            uint256 share = _share(storagePart, storageFees[epoch][p], storageTotal, storageBurnt[epoch][p])
                + _share(computePart, computeFees[epoch][p], computeTotal, computeBurnt[epoch][p]);
            if (share > 0) {
                owed[p] += share;
                paid += share;
            }
        }
        outstanding += paid;
        distributed += paid;
        if (storageBurntTotal > 0) FeeBurner(payable(Cairn.STORAGE_MARKET)).burnFees(storageBurntTotal);
        if (computeBurntTotal > 0) FeeBurner(payable(Cairn.COMPUTE_MARKET)).burnFees(computeBurntTotal);
        emit EpochClosed(epoch, emission, paid, storageBurntTotal + computeBurntTotal);
        // Pruning waits for the newest epoch: a provider may hold fees in any epoch not yet
        // closed. One that holds no role and no collateral can earn nothing after it.
        if (latest) _prune(registry, providers);
    }

    /// A provider's part of `part`: pro rata by fees, at most `emissionCapPercent` of its burn.
    function _share(uint256 part, uint256 fees, uint256 total, uint256 burnt) internal view returns (uint256) {
        if (total == 0 || fees == 0) return 0;
        uint256 share = part * fees / total;
        uint256 cap = burnt * emissionCapPercent / 100;
        return share < cap ? share : cap;
    }

    function _prune(ProviderRegistry registry, address[] memory providers) internal {
        Staking staking = Staking(payable(Cairn.STAKING));
        for (uint256 i = 0; i < providers.length; i++) {
            address p = providers[i];
            if (staking.lockedOf(p) > 0) continue;
            bool hasStorage = staking.hasRoles(p, Cairn.ROLE_STORAGE);
            bool hasCompute = staking.hasRoles(p, Cairn.ROLE_COMPUTE);
            if (!hasStorage || !hasCompute) registry.prune(p, hasStorage, hasCompute);
        }
    }

    function claim() external {
        uint256 amount = owed[msg.sender];
        if (amount == 0) revert NothingToClaim();
        owed[msg.sender] = 0;
        outstanding -= amount;
        emit Claimed(msg.sender, amount);
        Cairn.pay(msg.sender, amount);
    }

    /// @notice Slashed tokens from Staking; they join the emission like the endowment.
    receive() external payable {
        if (msg.sender != Cairn.STAKING) revert NotStaking(msg.sender);
        slashedIn += msg.value;
        emit SlashReceived(msg.value);
    }
}
