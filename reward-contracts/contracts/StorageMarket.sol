// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Cairn, Epochs, PullPayments} from "./Cairn.sol";
import {Staking} from "./Staking.sol";
import {ProviderRegistry} from "./ProviderRegistry.sol";
import {RewardPool} from "./RewardPool.sol";

/// @title StorageMarket: storage deals paid per proven epoch, backed by per-deal collateral.
/// @notice A client opens a deal with a chosen storage provider, paying the whole price into
/// escrow. The provider accepts it if it has free advertised capacity and free bond for the
/// deal's collateral, which Staking then holds until the deal ends; it holds one live replica
/// of a root at most. The deal runs from the next epoch for the agreed number of epochs. In
/// every epoch the provider must prove it holds `challengesPerEpoch` chunks chosen from the
/// epoch seed (the randomness of the epoch's first block), within `proofWindowBlocks` blocks of
/// that block; each proof is a blake3 Merkle proof checked by the CHUNK_PROOF precompile. A
/// proof moves that epoch's price from escrow to the provider, less the burnt share. An epoch
/// without proof refunds its price to the client and costs the provider a fault fee of
/// `faultFeePercent` of the epoch's price, taken from the collateral and paid to the client;
/// after `maxFaults` faults the deal ends, a termination fee of `terminationFeePercent` of the
/// epoch's price goes the same way and the rest of the escrow is refunded. All payments are
/// pulled with `claim`.
/// @dev Nothing iterates over deals. A deal is settled lazily: every epoch since the last
/// settled one is judged (proven, faulted, or skipped when it had no seed) when the deal is next
/// touched, by its proof, or by anyone calling `settle`, which also ends a finished deal. A
/// proof writes only its own deal, its provider's claimable balance and its provider's fee
/// record in the RewardPool: nothing on the proof path is global.
contract StorageMarket is Epochs, PullPayments {
    uint256 public constant CHUNK_SIZE = 1024;
    /// Deals one provider can hold at once (proposed ones do not count); its collateral and
    /// advertised capacity bound it further.
    uint256 public constant MAX_DEALS_PER_PROVIDER = 256;
    /// Active deals in all: every one is proven within the same few blocks of each epoch, and
    /// a proof costs about 150k gas, so the network's proof window (8 blocks of 60M gas on the
    /// dev chain: about 3,000 proofs) must hold them all with room to spare.
    uint256 public constant MAX_ACTIVE_DEALS = 1024;
    /// Epochs one settlement judges; a deal further behind is settled in several calls.
    uint64 public constant MAX_EPOCHS_PER_SETTLEMENT = 64;

    enum State {
        None,
        Proposed,
        Active,
        Ended,
        Terminated,
        Cancelled
    }

    struct Deal {
        address client;
        address provider;
        bytes32 dataRoot;
        uint64 size;
        uint64 epochs;
        uint64 startEpoch;
        uint64 endEpoch;
        uint64 lastProvenEpoch;
        /// Every epoch up to this one is judged.
        uint64 settledEpoch;
        uint32 faults;
        uint32 provenEpochs;
        State state;
        uint128 pricePerEpoch;
        uint128 escrow;
        /// What Staking still holds of the provider's bond for this deal.
        uint128 collateral;
    }

    uint32 public challengesPerEpoch;
    uint64 public proofWindowBlocks;
    uint32 public maxFaults;
    /// Fault fee, as a percent of the deal's price per epoch.
    uint32 public faultFeePercent;
    /// Termination fee, as a percent of the deal's price per epoch.
    uint32 public terminationFeePercent;
    mapping(bytes32 => Deal) internal deals;
    mapping(address => uint64) public dealNonce;
    mapping(address => uint64) public usedCapacity;
    mapping(address => uint256) public activeDealsOf;
    /// Active deals of all providers (written when a deal starts or ends, never by a proof).
    uint256 public activeDeals;
    /// The active deal through which a provider holds a root (0: none).
    mapping(address => mapping(bytes32 => bytes32)) public replicaOf;
    mapping(uint64 => bytes32) public epochSeed;

    event DealOpened(
        bytes32 indexed id, address indexed client, address indexed provider, bytes32 dataRoot, uint64 size, uint64 epochs, uint128 pricePerEpoch
    );
    event DealCancelled(bytes32 indexed id);
    event DealAccepted(bytes32 indexed id, uint64 startEpoch, uint64 endEpoch, uint128 collateral);
    event ProofAccepted(bytes32 indexed id, uint64 indexed epoch, uint128 payment);
    event DealFaulted(bytes32 indexed id, uint64 indexed epoch, uint32 faults, uint256 slashed);
    /// No seed was recorded for `epoch` (its close failed): nobody could prove it, so its price
    /// goes back to the client and nobody is fined.
    event EpochSkipped(bytes32 indexed id, uint64 indexed epoch);
    event DealTerminated(bytes32 indexed id, uint256 refunded, uint256 slashed);
    event DealEnded(bytes32 indexed id);
    event EpochSeedRecorded(uint64 indexed epoch, bytes32 seed);
    event FeesBurnt(uint256 amount);

    error InvalidDeal();
    error WrongEscrow(uint256 expected, uint256 sent);
    error NotStorageProvider(address provider);
    error UnknownDeal(bytes32 id);
    error WrongState(bytes32 id, State state);
    error NotClient(address caller);
    error NotProvider(address caller);
    error NoCapacity(uint64 free, uint64 needed);
    error TooManyDeals(address provider, uint256 limit);
    error TooManyActiveDeals(uint256 limit);
    /// The provider already holds this root through deal `existing`: a second deal would pay
    /// it twice for one copy. Choose another provider for another replica.
    error ReplicaExists(address provider, bytes32 dataRoot, bytes32 existing);
    error SeedUnknown(uint64 epoch);
    error NotProvingPeriod(uint64 epoch, uint64 startEpoch, uint64 endEpoch);
    /// Proofs of `epoch` are taken in blocks `opens` to `closes` only.
    error ProofWindowClosed(uint64 epoch, uint64 opens, uint64 closes);
    error AlreadyProven(uint64 epoch);
    /// The deal has more than MAX_EPOCHS_PER_SETTLEMENT epochs to judge: call `settle` first.
    error SettleFirst(bytes32 id, uint64 settledEpoch);
    error WrongProofCount(uint256 expected, uint256 chunks, uint256 paths);
    error InvalidProof(uint256 challenge, uint64 chunkIndex);
    error NotStaking(address sender);
    error NotRewardPool(address sender);

    function initialize(
        uint64 epochLength_,
        uint32 challengesPerEpoch_,
        uint64 proofWindowBlocks_,
        uint32 maxFaults_,
        uint32 faultFeePercent_,
        uint32 terminationFeePercent_,
        bytes32 genesisSeed
    ) external onlySystem {
        _initEpochs(epochLength_);
        challengesPerEpoch = challengesPerEpoch_;
        proofWindowBlocks = proofWindowBlocks_;
        maxFaults = maxFaults_;
        faultFeePercent = faultFeePercent_;
        terminationFeePercent = terminationFeePercent_;
        epochSeed[0] = genesisSeed;
    }

    /// @notice The collateral a deal at `pricePerEpoch` locks: every fault fee it can incur
    /// and the termination fee.
    function collateralFor(uint128 pricePerEpoch) public view returns (uint256) {
        return uint256(pricePerEpoch) * (uint256(faultFeePercent) * maxFaults + terminationFeePercent) / 100;
    }

    function openDeal(address provider, bytes32 dataRoot, uint64 size, uint64 epochs, uint128 pricePerEpoch)
        external
        payable
        returns (bytes32 id)
    {
        if (size == 0 || epochs == 0) revert InvalidDeal();
        uint256 expected = uint256(pricePerEpoch) * epochs;
        if (msg.value != expected) revert WrongEscrow(expected, msg.value);
        if (!Staking(payable(Cairn.STAKING)).hasRoles(provider, Cairn.ROLE_STORAGE)) {
            revert NotStorageProvider(provider);
        }
        bytes32 existing = replicaOf[provider][dataRoot];
        if (existing != bytes32(0)) revert ReplicaExists(provider, dataRoot, existing);
        // The market's address keeps deal ids apart from the compute market's job ids.
        id = keccak256(abi.encode(address(this), msg.sender, dealNonce[msg.sender]++));
        Deal storage d = deals[id];
        d.client = msg.sender;
        d.provider = provider;
        d.dataRoot = dataRoot;
        d.size = size;
        d.epochs = epochs;
        d.pricePerEpoch = pricePerEpoch;
        d.escrow = uint128(expected);
        d.state = State.Proposed;
        emit DealOpened(id, msg.sender, provider, dataRoot, size, epochs, pricePerEpoch);
    }

    function cancelDeal(bytes32 id) external {
        Deal storage d = _deal(id, State.Proposed);
        if (msg.sender != d.client) revert NotClient(msg.sender);
        d.state = State.Cancelled;
        claimable[d.client] += d.escrow;
        d.escrow = 0;
        emit DealCancelled(id);
    }

    function acceptDeal(bytes32 id) external {
        Deal storage d = _deal(id, State.Proposed);
        if (msg.sender != d.provider) revert NotProvider(msg.sender);
        Staking staking = Staking(payable(Cairn.STAKING));
        if (!staking.hasRoles(d.provider, Cairn.ROLE_STORAGE)) revert NotStorageProvider(d.provider);
        bytes32 existing = replicaOf[d.provider][d.dataRoot];
        if (existing != bytes32(0)) revert ReplicaExists(d.provider, d.dataRoot, existing);
        uint64 capacity = ProviderRegistry(Cairn.REGISTRY).storageCapacityOf(d.provider);
        uint64 used = usedCapacity[d.provider];
        uint64 free = capacity > used ? capacity - used : 0;
        if (d.size > free) revert NoCapacity(free, d.size);
        if (activeDealsOf[d.provider] >= MAX_DEALS_PER_PROVIDER) {
            revert TooManyDeals(d.provider, MAX_DEALS_PER_PROVIDER);
        }
        if (activeDeals >= MAX_ACTIVE_DEALS) revert TooManyActiveDeals(MAX_ACTIVE_DEALS);
        uint256 collateral = collateralFor(d.pricePerEpoch);
        staking.lock(d.provider, collateral);
        d.collateral = uint128(collateral);
        usedCapacity[d.provider] = used + d.size;
        activeDealsOf[d.provider] += 1;
        activeDeals += 1;
        replicaOf[d.provider][d.dataRoot] = id;
        d.startEpoch = currentEpoch() + 1;
        d.endEpoch = d.startEpoch + d.epochs - 1;
        d.lastProvenEpoch = d.startEpoch - 1;
        d.settledEpoch = d.startEpoch - 1;
        d.state = State.Active;
        emit DealAccepted(id, d.startEpoch, d.endEpoch, d.collateral);
    }

    /// @notice The chunks a deal must prove in `epoch`: keccak(seed, deal, provider, j) mod chunks.
    function challenges(bytes32 id, uint64 epoch) public view returns (uint64[] memory indices) {
        Deal storage d = deals[id];
        if (d.state == State.None) revert UnknownDeal(id);
        bytes32 seed = epochSeed[epoch];
        if (seed == bytes32(0)) revert SeedUnknown(epoch);
        uint256 chunks = (uint256(d.size) + CHUNK_SIZE - 1) / CHUNK_SIZE;
        indices = new uint64[](challengesPerEpoch);
        for (uint256 j = 0; j < indices.length; j++) {
            indices[j] = uint64(uint256(keccak256(abi.encode(seed, id, d.provider, j))) % chunks);
        }
    }

    /// @notice The blocks in which proofs of `epoch` are taken: from its first block (whose
    /// randomness is the seed) for `proofWindowBlocks` blocks.
    function proofWindow(uint64 epoch) public view returns (uint64 opens, uint64 closes) {
        opens = epoch * epochLength;
        closes = opens + proofWindowBlocks - 1;
    }

    /// @notice Proves the current epoch's challenges: `chunks[j]` is chunk `challenges(id)[j]`
    /// of the data and `paths[j]` its blake3 Merkle path (sibling chaining values, bottom up).
    /// Epochs before this one are judged first; if that ends the deal, the proof is not needed
    /// and the call returns having settled it.
    function submitProof(bytes32 id, bytes[] calldata chunks, bytes[] calldata paths) external {
        Deal storage d = _deal(id, State.Active);
        if (msg.sender != d.provider) revert NotProvider(msg.sender);
        uint64 epoch = currentEpoch();
        if (epoch < d.startEpoch || epoch > d.endEpoch) revert NotProvingPeriod(epoch, d.startEpoch, d.endEpoch);
        if (d.lastProvenEpoch >= epoch) revert AlreadyProven(epoch);
        (uint64 opens, uint64 closes) = proofWindow(epoch);
        if (block.number > closes) revert ProofWindowClosed(epoch, opens, closes);
        if (epoch - 1 > d.settledEpoch + MAX_EPOCHS_PER_SETTLEMENT) revert SettleFirst(id, d.settledEpoch);
        _settle(id, d, epoch - 1);
        if (d.state != State.Active) return;
        uint64[] memory indices = challenges(id, epoch);
        if (chunks.length != indices.length || paths.length != indices.length) {
            revert WrongProofCount(indices.length, chunks.length, paths.length);
        }
        for (uint256 j = 0; j < indices.length; j++) {
            bytes memory input = abi.encodePacked(d.dataRoot, d.size, indices[j], chunks[j], paths[j]);
            (bool ok, bytes memory out) = Cairn.CHUNK_PROOF.staticcall(input);
            if (!ok || out.length != 32 || uint256(bytes32(out)) != 1) revert InvalidProof(j, indices[j]);
        }
        uint128 price = d.pricePerEpoch;
        RewardPool pool = RewardPool(payable(Cairn.REWARD_POOL));
        uint256 burnt = pool.burnShare(price);
        d.lastProvenEpoch = epoch;
        d.provenEpochs += 1;
        d.escrow -= price;
        claimable[d.provider] += price - burnt;
        pool.recordStorageFee(d.provider, price, burnt);
        emit ProofAccepted(id, epoch, price);
    }

    /// @notice Judges a deal's past epochs (up to MAX_EPOCHS_PER_SETTLEMENT of them) and ends
    /// it once all are judged after its last epoch: the client collects refunds and fees, the
    /// provider its collateral. Anyone may call it.
    function settle(bytes32 id) external {
        Deal storage d = _deal(id, State.Active);
        uint64 epoch = currentEpoch();
        if (epoch == 0) return;
        uint64 upTo = epoch - 1;
        if (upTo > d.settledEpoch + MAX_EPOCHS_PER_SETTLEMENT) upTo = d.settledEpoch + MAX_EPOCHS_PER_SETTLEMENT;
        _settle(id, d, upTo);
    }

    /// @notice Run by the node at the start of each epoch for the epoch that just ended: records
    /// the new epoch's seed. Nothing else: deals are judged when touched.
    function closeEpoch(uint64 closed) external onlySystem {
        epochSeed[closed + 1] = bytes32(block.prevrandao);
        emit EpochSeedRecorded(closed + 1, bytes32(block.prevrandao));
    }

    /// @notice Sends `amount` of burnt fees to Cairn.BURN. Only the reward pool, which sums
    /// them per epoch from its records. Until then they are part of this contract's balance,
    /// which a proof therefore never writes.
    function burnFees(uint256 amount) external {
        if (msg.sender != Cairn.REWARD_POOL) revert NotRewardPool(msg.sender);
        emit FeesBurnt(amount);
        Cairn.pay(Cairn.BURN, amount);
    }

    function dealOf(bytes32 id) external view returns (Deal memory) {
        return deals[id];
    }

    function _deal(bytes32 id, State expected) internal view returns (Deal storage d) {
        d = deals[id];
        if (d.state == State.None) revert UnknownDeal(id);
        if (d.state != expected) revert WrongState(id, d.state);
    }

    /// Judges the epochs after `d.settledEpoch` up to `upTo` (within the deal's term), then
    /// ends the deal if its last epoch is judged.
    function _settle(bytes32 id, Deal storage d, uint64 upTo) internal {
        if (upTo > d.endEpoch) upTo = d.endEpoch;
        for (uint64 epoch = d.settledEpoch + 1; epoch <= upTo; epoch++) {
            d.settledEpoch = epoch;
            if (epoch == d.lastProvenEpoch) continue;
            if (epochSeed[epoch] == bytes32(0)) {
                d.escrow -= d.pricePerEpoch;
                claimable[d.client] += d.pricePerEpoch;
                emit EpochSkipped(id, epoch);
                continue;
            }
            _fault(id, d, epoch);
            if (d.state != State.Active) return;
        }
        if (d.settledEpoch == d.endEpoch) {
            d.state = State.Ended;
            _release(d);
            emit DealEnded(id);
        }
    }

    function _fault(bytes32 id, Deal storage d, uint64 epoch) internal {
        d.faults += 1;
        d.escrow -= d.pricePerEpoch;
        uint256 slashed = _slash(d, uint256(d.pricePerEpoch) * faultFeePercent / 100);
        claimable[d.client] += d.pricePerEpoch + slashed;
        emit DealFaulted(id, epoch, d.faults, slashed);
        if (d.faults >= maxFaults) {
            uint256 more = _slash(d, uint256(d.pricePerEpoch) * terminationFeePercent / 100);
            uint256 refund = d.escrow;
            d.escrow = 0;
            claimable[d.client] += refund + more;
            d.state = State.Terminated;
            _release(d);
            emit DealTerminated(id, refund, more);
        }
    }

    /// Takes up to `amount` of the deal's collateral; returns what Staking handed over.
    function _slash(Deal storage d, uint256 amount) internal returns (uint256 slashed) {
        if (amount > d.collateral) amount = d.collateral;
        slashed = Staking(payable(Cairn.STAKING)).slashLocked(d.provider, amount);
        d.collateral -= uint128(amount);
    }

    function _release(Deal storage d) internal {
        usedCapacity[d.provider] -= d.size;
        activeDealsOf[d.provider] -= 1;
        activeDeals -= 1;
        delete replicaOf[d.provider][d.dataRoot];
        if (d.collateral > 0) Staking(payable(Cairn.STAKING)).unlock(d.provider, d.collateral);
        d.collateral = 0;
    }

    receive() external payable {
        if (msg.sender != Cairn.STAKING) revert NotStaking(msg.sender);
    }
}
