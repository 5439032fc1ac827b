// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Cairn} from "./Cairn.sol";
import {Staking} from "./Staking.sol";

/// @title ProviderRegistry: what each provider offers and where to reach it.
/// @notice A provider advertises storage (capacity in bytes, price in wei per MiB per epoch)
/// and/or compute (cores, memory, fuel per second, price in wei per unit of fuel) with its
/// libp2p peer id and addresses. Advertising storage or compute gives the provider that role
/// in Staking, which requires the role's minimum bond; a role with collateral locked in live
/// deals or jobs cannot be dropped. The lists shrink: when an epoch closes, the reward pool
/// prunes the providers that hold neither role any more (after paying their last epoch).
contract ProviderRegistry {
    struct Advert {
        uint64 storageCapacity;
        uint128 storagePricePerMiBEpoch;
        uint32 cores;
        uint32 memoryMiB;
        uint64 fuelPerSecond;
        uint128 computePricePerFuel;
        bytes peerId;
        string addresses;
        uint64 updatedAtBlock;
    }

    /// The reward pool visits every provider when an epoch closes (a system call).
    uint256 public constant MAX_PROVIDERS = 16384;
    /// The compute market walks the compute providers to draw, inside a transaction (three
    /// calls each, about 15k gas: 256 keep a draw under 4M gas).
    uint256 public constant MAX_COMPUTE_PROVIDERS = 256;
    uint256 public constant MAX_PEER_ID_BYTES = 128;
    uint256 public constant MAX_ADDRESSES_BYTES = 1024;

    /// What a compute provider offers a job: the terms the compute market draws by.
    struct ComputeTerms {
        uint32 memoryMiB;
        uint64 fuelPerSecond;
        uint128 pricePerFuel;
    }

    mapping(address => Advert) internal adverts;
    /// The compute terms in force, and those advertised since, in force from `termsFrom`: a
    /// change takes effect at the next epoch, so nobody (a block's leader least of all) can
    /// change who is eligible for a draw in the block that makes it.
    mapping(address => ComputeTerms) internal termsInForce;
    mapping(address => ComputeTerms) internal termsNext;
    mapping(address => uint64) internal termsFrom;
    address[] internal providerList;
    /// Position in `providerList` + 1 (0: not listed).
    mapping(address => uint256) internal listSlot;
    address[] internal computeProviderList;
    /// Position in `computeProviderList` + 1 (0: not listed).
    mapping(address => uint256) internal computeSlot;

    event Advertised(
        address indexed provider, uint64 storageCapacity, uint32 cores, bytes peerId, string addresses
    );
    event Withdrawn(address indexed provider);

    error NothingOffered();
    error TooManyProviders(uint256 limit);
    error FieldTooLong(string field, uint256 limit);
    error NotRegistered(address provider);
    error NotRewardPool(address caller);

    function advertise(
        uint64 storageCapacity,
        uint128 storagePricePerMiBEpoch,
        uint32 cores,
        uint32 memoryMiB,
        uint64 fuelPerSecond,
        uint128 computePricePerFuel,
        bytes calldata peerId,
        string calldata addresses
    ) external {
        if (storageCapacity == 0 && cores == 0) revert NothingOffered();
        if (peerId.length > MAX_PEER_ID_BYTES) revert FieldTooLong("peerId", MAX_PEER_ID_BYTES);
        if (bytes(addresses).length > MAX_ADDRESSES_BYTES) revert FieldTooLong("addresses", MAX_ADDRESSES_BYTES);
        uint8 roles = (storageCapacity > 0 ? Cairn.ROLE_STORAGE : 0) | (cores > 0 ? Cairn.ROLE_COMPUTE : 0);
        Staking(payable(Cairn.STAKING)).setProviderRoles(msg.sender, roles);
        if (listSlot[msg.sender] == 0) {
            if (providerList.length >= MAX_PROVIDERS) revert TooManyProviders(MAX_PROVIDERS);
            providerList.push(msg.sender);
            listSlot[msg.sender] = providerList.length;
        }
        if (cores > 0 && computeSlot[msg.sender] == 0) {
            if (computeProviderList.length >= MAX_COMPUTE_PROVIDERS) revert TooManyProviders(MAX_COMPUTE_PROVIDERS);
            computeProviderList.push(msg.sender);
            computeSlot[msg.sender] = computeProviderList.length;
        }
        _scheduleTerms(msg.sender, ComputeTerms(memoryMiB, fuelPerSecond, computePricePerFuel));
        adverts[msg.sender] = Advert({
            storageCapacity: storageCapacity,
            storagePricePerMiBEpoch: storagePricePerMiBEpoch,
            cores: cores,
            memoryMiB: memoryMiB,
            fuelPerSecond: fuelPerSecond,
            computePricePerFuel: computePricePerFuel,
            peerId: peerId,
            addresses: addresses,
            updatedAtBlock: uint64(block.number)
        });
        emit Advertised(msg.sender, storageCapacity, cores, peerId, addresses);
    }

    /// @notice Stops offering anything; the provider keeps its bond and any validator role.
    /// Refused while deals or jobs hold its collateral (Staking says so).
    function withdrawAdvert() external {
        if (listSlot[msg.sender] == 0) revert NotRegistered(msg.sender);
        Staking(payable(Cairn.STAKING)).setProviderRoles(msg.sender, 0);
        delete adverts[msg.sender];
        _scheduleTerms(msg.sender, ComputeTerms(0, 0, 0));
        emit Withdrawn(msg.sender);
    }

    /// @notice Takes `provider` off the lists it no longer belongs on: the compute list
    /// without the compute role, both lists without any provider role. Only the reward pool,
    /// once the provider's last epoch is paid. Returns whether it left the main list.
    function prune(address provider, bool hasStorage, bool hasCompute) external returns (bool) {
        if (msg.sender != Cairn.REWARD_POOL) revert NotRewardPool(msg.sender);
        if (!hasCompute) _remove(computeProviderList, computeSlot, provider);
        if (hasStorage || hasCompute) return false;
        delete adverts[provider];
        delete termsInForce[provider];
        delete termsNext[provider];
        delete termsFrom[provider];
        return _remove(providerList, listSlot, provider);
    }

    function listed(address provider) external view returns (bool) {
        return listSlot[provider] != 0;
    }

    function listedForCompute(address provider) external view returns (bool) {
        return computeSlot[provider] != 0;
    }

    /// Swap-and-pop: order does not matter to any reader.
    function _remove(address[] storage list, mapping(address => uint256) storage slot, address provider)
        internal
        returns (bool)
    {
        uint256 position = slot[provider];
        if (position == 0) return false;
        address last = list[list.length - 1];
        list[position - 1] = last;
        slot[last] = position;
        list.pop();
        delete slot[provider];
        return true;
    }

    function advertOf(address provider) external view returns (Advert memory) {
        return adverts[provider];
    }

    /// @notice What a compute provider offers a job in this epoch: memory, fuel per second,
    /// price per fuel, as advertised before the epoch began.
    function computeTermsOf(address provider)
        public
        view
        returns (uint32 memoryMiB, uint64 fuelPerSecond, uint128 pricePerFuel)
    {
        uint64 from = termsFrom[provider];
        bool next = from != 0 && Staking(payable(Cairn.STAKING)).currentEpoch() >= from;
        ComputeTerms storage t = next ? termsNext[provider] : termsInForce[provider];
        return (t.memoryMiB, t.fuelPerSecond, t.pricePerFuel);
    }

    /// New terms from the next epoch; terms already due move in force first.
    function _scheduleTerms(address provider, ComputeTerms memory terms) internal {
        (uint32 memoryMiB, uint64 fuelPerSecond, uint128 pricePerFuel) = computeTermsOf(provider);
        termsInForce[provider] = ComputeTerms(memoryMiB, fuelPerSecond, pricePerFuel);
        termsNext[provider] = terms;
        termsFrom[provider] = Staking(payable(Cairn.STAKING)).currentEpoch() + 1;
    }

    function storageCapacityOf(address provider) external view returns (uint64) {
        return adverts[provider].storageCapacity;
    }

    function providers() external view returns (address[] memory) {
        return providerList;
    }

    /// Providers that ever advertised compute (their current role is in Staking).
    function computeProviders() external view returns (address[] memory) {
        return computeProviderList;
    }
}
