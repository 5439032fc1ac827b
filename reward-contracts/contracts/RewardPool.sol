// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Cairn, Epochs} from "./Cairn.sol";
import {ProviderRegistry} from "./ProviderRegistry.sol";

/// @title RewardPool: per-epoch emission shared by proven work.
/// @notice The pool holds a genesis endowment. At each epoch's close, up to `emissionPerEpoch`
/// of it is shared among providers: half in proportion to storage proven in the epoch (byte
/// epochs), half in proportion to compute verified (fuel). A half with no work stays in the
/// pool, and so does the rounding dust. Providers pull their rewards with `claim`. Staking
/// sends the pool what it slashes for equivocation (less the reporter's share); it is emitted
/// like the endowment.
/// Invariant: `distributed == outstanding + claimed` and
/// `balance == endowment + slashedIn - claimed`.
/// @dev Work is recorded per provider and per epoch, never in a global counter, so proof
/// transactions of different providers write disjoint slots; totals are summed at epoch close.
contract RewardPool is Epochs {
    uint256 public emissionPerEpoch;
    /// Rewards assigned and not yet claimed.
    uint256 public outstanding;
    /// Rewards assigned since genesis.
    uint256 public distributed;
    mapping(uint64 => mapping(address => uint256)) public storageWork;
    mapping(uint64 => mapping(address => uint256)) public computeWork;
    mapping(address => uint256) public owed;
    /// Tokens received from Staking (equivocation slashes) since genesis.
    uint256 public slashedIn;

    event StorageWorkRecorded(address indexed provider, uint64 indexed epoch, uint256 byteEpochs);
    event ComputeWorkRecorded(address indexed provider, uint64 indexed epoch, uint256 fuel);
    event EpochClosed(uint64 indexed epoch, uint256 emission, uint256 distributed);
    event Claimed(address indexed provider, uint256 amount);
    event SlashReceived(uint256 amount);

    error NotMarket(address caller);
    error NothingToClaim();
    /// Only Staking sends the pool tokens after genesis; anything else would be unaccounted.
    error NotStaking(address caller);

    function initialize(uint64 epochLength_, uint256 emissionPerEpoch_) external onlySystem {
        _initEpochs(epochLength_);
        emissionPerEpoch = emissionPerEpoch_;
    }

    function recordStorage(address provider, uint256 byteEpochs) external {
        if (msg.sender != Cairn.STORAGE_MARKET) revert NotMarket(msg.sender);
        uint64 epoch = currentEpoch();
        storageWork[epoch][provider] += byteEpochs;
        emit StorageWorkRecorded(provider, epoch, byteEpochs);
    }

    function recordCompute(address provider, uint256 fuel) external {
        if (msg.sender != Cairn.COMPUTE_MARKET) revert NotMarket(msg.sender);
        uint64 epoch = currentEpoch();
        computeWork[epoch][provider] += fuel;
        emit ComputeWorkRecorded(provider, epoch, fuel);
    }

    function closeEpoch(uint64 epoch) external onlySystem {
        address[] memory providers = ProviderRegistry(Cairn.REGISTRY).providers();
        uint256 available = address(this).balance - outstanding;
        uint256 emission = emissionPerEpoch < available ? emissionPerEpoch : available;
        uint256 storagePart = emission / 2;
        uint256 computePart = emission - storagePart;
        uint256 storageTotal;
        uint256 computeTotal;
        for (uint256 i = 0; i < providers.length; i++) {
            storageTotal += storageWork[epoch][providers[i]];
            computeTotal += computeWork[epoch][providers[i]];
        }
        uint256 paid;
        for (uint256 i = 0; i < providers.length; i++) {
            address p = providers[i];
            uint256 share;
            if (storageTotal > 0) share += storagePart * storageWork[epoch][p] / storageTotal;
            if (computeTotal > 0) share += computePart * computeWork[epoch][p] / computeTotal;
            if (share > 0) {
                owed[p] += share;
                paid += share;
            }
        }
        outstanding += paid;
        distributed += paid;
        emit EpochClosed(epoch, emission, paid);
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
