// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Cairn, Epochs, PullPayments} from "./Cairn.sol";
import {Staking} from "./Staking.sol";
import {ProviderRegistry} from "./ProviderRegistry.sol";
import {RewardPool} from "./RewardPool.sol";

/// @title StorageMarket: storage deals paid per proven epoch.
/// @notice A client opens a deal with a chosen storage provider, paying the whole price into
/// escrow. The provider accepts it if it has free advertised capacity; the deal runs from the
/// next epoch for the agreed number of epochs. In every epoch the provider must prove it holds
/// `challengesPerEpoch` chunks chosen from the epoch seed (the randomness of the epoch's first
/// block); each proof is a blake3 Merkle proof checked by the CHUNK_PROOF precompile. A proof
/// moves that epoch's price from escrow to the provider. An epoch without proof refunds its
/// price to the client and costs the provider `faultFee` of its bond, paid to the client;
/// after `maxFaults` faults the deal ends, `terminationSlash` more is slashed to the client and
/// the rest of the escrow is refunded. All payments are pulled with `claim`.
/// @dev Parallel layout: a proof writes only its own deal, its provider's claimable balance and
/// its provider's work counter in the RewardPool. Nothing on the proof path is global.
contract StorageMarket is Epochs, PullPayments {
    uint256 public constant CHUNK_SIZE = 1024;
    /// The epoch close visits every active deal inside one system call (1G gas); a deal that
    /// faults costs about 40k gas there, so this bound keeps the close within its budget.
    uint256 public constant MAX_ACTIVE_DEALS = 16384;

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
        uint32 faults;
        uint32 provenEpochs;
        State state;
        uint128 pricePerEpoch;
        uint128 escrow;
    }

    uint32 public challengesPerEpoch;
    uint32 public maxFaults;
    uint256 public faultFee;
    uint256 public terminationSlash;
    mapping(bytes32 => Deal) internal deals;
    mapping(address => uint64) public dealNonce;
    mapping(address => uint64) public usedCapacity;
    bytes32[] internal activeDeals;
    mapping(bytes32 => uint256) internal activeSlot; // index + 1
    mapping(uint64 => bytes32) public epochSeed;

    event DealOpened(
        bytes32 indexed id, address indexed client, address indexed provider, bytes32 dataRoot, uint64 size, uint64 epochs, uint128 pricePerEpoch
    );
    event DealCancelled(bytes32 indexed id);
    event DealAccepted(bytes32 indexed id, uint64 startEpoch, uint64 endEpoch);
    event ProofAccepted(bytes32 indexed id, uint64 indexed epoch, uint128 payment);
    event DealFaulted(bytes32 indexed id, uint64 indexed epoch, uint32 faults, uint256 slashed);
    event DealTerminated(bytes32 indexed id, uint256 refunded, uint256 slashed);
    event DealEnded(bytes32 indexed id);
    event EpochSeedRecorded(uint64 indexed epoch, bytes32 seed);

    error InvalidDeal();
    error WrongEscrow(uint256 expected, uint256 sent);
    error NotStorageProvider(address provider);
    error UnknownDeal(bytes32 id);
    error WrongState(bytes32 id, State state);
    error NotClient(address caller);
    error NotProvider(address caller);
    error NoCapacity(uint64 free, uint64 needed);
    error TooManyActiveDeals(uint256 limit);
    error SeedUnknown(uint64 epoch);
    error NotProvingPeriod(uint64 epoch, uint64 startEpoch, uint64 endEpoch);
    error AlreadyProven(uint64 epoch);
    error WrongProofCount(uint256 expected, uint256 chunks, uint256 paths);
    error InvalidProof(uint256 challenge, uint64 chunkIndex);
    error NotStaking(address sender);

    function initialize(
        uint64 epochLength_,
        uint32 challengesPerEpoch_,
        uint32 maxFaults_,
        uint256 faultFee_,
        uint256 terminationSlash_,
        bytes32 genesisSeed
    ) external onlySystem {
        _initEpochs(epochLength_);
        challengesPerEpoch = challengesPerEpoch_;
        maxFaults = maxFaults_;
        faultFee = faultFee_;
        terminationSlash = terminationSlash_;
        epochSeed[0] = genesisSeed;
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
        id = keccak256(abi.encode(msg.sender, dealNonce[msg.sender]++));
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
        if (!Staking(payable(Cairn.STAKING)).hasRoles(d.provider, Cairn.ROLE_STORAGE)) {
            revert NotStorageProvider(d.provider);
        }
        uint64 capacity = ProviderRegistry(Cairn.REGISTRY).storageCapacityOf(d.provider);
        uint64 used = usedCapacity[d.provider];
        uint64 free = capacity > used ? capacity - used : 0;
        if (d.size > free) revert NoCapacity(free, d.size);
        if (activeDeals.length >= MAX_ACTIVE_DEALS) revert TooManyActiveDeals(MAX_ACTIVE_DEALS);
        usedCapacity[d.provider] = used + d.size;
        d.startEpoch = currentEpoch() + 1;
        d.endEpoch = d.startEpoch + d.epochs - 1;
        d.lastProvenEpoch = d.startEpoch - 1;
        d.state = State.Active;
        activeDeals.push(id);
        activeSlot[id] = activeDeals.length;
        emit DealAccepted(id, d.startEpoch, d.endEpoch);
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

    /// @notice Proves the current epoch's challenges: `chunks[j]` is chunk `challenges(id)[j]`
    /// of the data and `paths[j]` its blake3 Merkle path (sibling chaining values, bottom up).
    function submitProof(bytes32 id, bytes[] calldata chunks, bytes[] calldata paths) external {
        Deal storage d = _deal(id, State.Active);
        if (msg.sender != d.provider) revert NotProvider(msg.sender);
        uint64 epoch = currentEpoch();
        if (epoch < d.startEpoch || epoch > d.endEpoch) revert NotProvingPeriod(epoch, d.startEpoch, d.endEpoch);
        if (d.lastProvenEpoch >= epoch) revert AlreadyProven(epoch);
        uint64[] memory indices = challenges(id, epoch);
        if (chunks.length != indices.length || paths.length != indices.length) {
            revert WrongProofCount(indices.length, chunks.length, paths.length);
        }
        for (uint256 j = 0; j < indices.length; j++) {
            bytes memory input = abi.encodePacked(d.dataRoot, d.size, indices[j], chunks[j], paths[j]);
            (bool ok, bytes memory out) = Cairn.CHUNK_PROOF.staticcall(input);
            if (!ok || out.length != 32 || uint256(bytes32(out)) != 1) revert InvalidProof(j, indices[j]);
        }
        d.lastProvenEpoch = epoch;
        d.provenEpochs += 1;
        d.escrow -= d.pricePerEpoch;
        claimable[d.provider] += d.pricePerEpoch;
        RewardPool(payable(Cairn.REWARD_POOL)).recordStorage(d.provider, d.size);
        emit ProofAccepted(id, epoch, d.pricePerEpoch);
    }

    /// @notice Run by the node at the start of each epoch for the epoch that just ended: record
    /// the new epoch's seed, fine deals that were not proven, end finished deals.
    function closeEpoch(uint64 closed) external onlySystem {
        epochSeed[closed + 1] = bytes32(block.prevrandao);
        emit EpochSeedRecorded(closed + 1, bytes32(block.prevrandao));
        for (uint256 i = activeDeals.length; i > 0; i--) {
            bytes32 id = activeDeals[i - 1];
            Deal storage d = deals[id];
            if (d.startEpoch <= closed && d.lastProvenEpoch < closed) _fault(id, d, closed);
            if (d.state == State.Active && closed >= d.endEpoch) {
                d.state = State.Ended;
                _release(id, d);
                emit DealEnded(id);
            }
        }
    }

    function dealOf(bytes32 id) external view returns (Deal memory) {
        return deals[id];
    }

    function activeDealCount() external view returns (uint256) {
        return activeDeals.length;
    }

    function _deal(bytes32 id, State expected) internal view returns (Deal storage d) {
        d = deals[id];
        if (d.state == State.None) revert UnknownDeal(id);
        if (d.state != expected) revert WrongState(id, d.state);
    }

    function _fault(bytes32 id, Deal storage d, uint64 epoch) internal {
        d.faults += 1;
        d.escrow -= d.pricePerEpoch;
        uint256 slashed = Staking(payable(Cairn.STAKING)).slash(d.provider, faultFee);
        claimable[d.client] += d.pricePerEpoch + slashed;
        emit DealFaulted(id, epoch, d.faults, slashed);
        if (d.faults >= maxFaults) {
            uint256 more = Staking(payable(Cairn.STAKING)).slash(d.provider, terminationSlash);
            uint256 refund = d.escrow;
            d.escrow = 0;
            claimable[d.client] += refund + more;
            d.state = State.Terminated;
            _release(id, d);
            emit DealTerminated(id, refund, more);
        }
    }

    function _release(bytes32 id, Deal storage d) internal {
        usedCapacity[d.provider] -= d.size;
        uint256 slot = activeSlot[id];
        uint256 last = activeDeals.length;
        if (slot != last) {
            bytes32 moved = activeDeals[last - 1];
            activeDeals[slot - 1] = moved;
            activeSlot[moved] = slot;
        }
        activeDeals.pop();
        delete activeSlot[id];
    }

    receive() external payable {
        if (msg.sender != Cairn.STAKING) revert NotStaking(msg.sender);
    }
}
