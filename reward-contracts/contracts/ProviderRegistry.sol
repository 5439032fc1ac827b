// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Cairn} from "./Cairn.sol";
import {Staking} from "./Staking.sol";

/// @title ProviderRegistry: what each provider offers and where to reach it.
/// @notice A provider advertises storage (capacity in bytes, price in wei per MiB per epoch)
/// and/or compute (cores, memory, fuel per second, price in wei per unit of fuel) with its
/// libp2p peer id and addresses. Advertising storage or compute gives the provider that role
/// in Staking, which requires the role's minimum bond.
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
    /// The compute market walks the compute providers to draw one, inside a transaction.
    uint256 public constant MAX_COMPUTE_PROVIDERS = 1024;
    uint256 public constant MAX_PEER_ID_BYTES = 128;
    uint256 public constant MAX_ADDRESSES_BYTES = 1024;

    mapping(address => Advert) internal adverts;
    address[] internal providerList;
    mapping(address => bool) public listed;
    address[] internal computeProviderList;
    mapping(address => bool) public listedForCompute;

    event Advertised(
        address indexed provider, uint64 storageCapacity, uint32 cores, bytes peerId, string addresses
    );
    event Withdrawn(address indexed provider);

    error NothingOffered();
    error TooManyProviders(uint256 limit);
    error FieldTooLong(string field, uint256 limit);
    error NotRegistered(address provider);

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
        if (!listed[msg.sender]) {
            if (providerList.length >= MAX_PROVIDERS) revert TooManyProviders(MAX_PROVIDERS);
            listed[msg.sender] = true;
            providerList.push(msg.sender);
        }
        if (cores > 0 && !listedForCompute[msg.sender]) {
            if (computeProviderList.length >= MAX_COMPUTE_PROVIDERS) revert TooManyProviders(MAX_COMPUTE_PROVIDERS);
            listedForCompute[msg.sender] = true;
            computeProviderList.push(msg.sender);
        }
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
    function withdrawAdvert() external {
        if (!listed[msg.sender]) revert NotRegistered(msg.sender);
        Staking(payable(Cairn.STAKING)).setProviderRoles(msg.sender, 0);
        delete adverts[msg.sender];
        emit Withdrawn(msg.sender);
    }

    function advertOf(address provider) external view returns (Advert memory) {
        return adverts[provider];
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
