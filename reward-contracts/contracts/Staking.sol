// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Cairn, Epochs} from "./Cairn.sol";

/// @title Staking: bonds, unbonding, roles and slashing.
/// @notice A staker bonds native tokens with `stake`, starts unbonding with `unbond` and takes
/// the tokens back with `withdraw` once the unbonding period (in epochs) is over. Roles
/// (validator, storage provider, compute provider) each need a minimum bond. Only the two
/// markets can slash; a slash takes from the bond first, then from tokens still unbonding, and
/// hands the tokens to the market that asked, which credits the wronged party.
/// @dev Parallel layout: every write lands in the staker's own record, except the validator
/// list, which changes only when validator roles change (never on a proof path).
contract Staking is Epochs {
    struct Staker {
        uint256 bonded;
        uint256 unbonding;
        uint64 withdrawableEpoch;
        uint8 roles;
        bytes32 consensusKey;
    }

    uint64 public unbondingEpochs;
    uint256 public minValidatorStake;
    uint256 public minStorageStake;
    uint256 public minComputeStake;
    mapping(address => Staker) internal stakers;
    address[] internal validatorList;

    event Staked(address indexed staker, uint256 amount, uint256 bonded);
    event UnbondStarted(address indexed staker, uint256 amount, uint64 withdrawableEpoch);
    event Withdrawn(address indexed staker, uint256 amount);
    event RolesChanged(address indexed staker, uint8 roles, bytes32 consensusKey);
    event Slashed(address indexed staker, uint256 amount, address indexed market);

    error ZeroAmount();
    error InsufficientBond(uint256 bonded, uint256 requested);
    error StakeBelowMinimum(uint8 role, uint256 minimum, uint256 bonded);
    error StillUnbonding(uint64 withdrawableEpoch, uint64 currentEpoch);
    error NothingToWithdraw();
    error NotMarket(address caller);
    error NotRegistry(address caller);
    error GenesisOnly();
    error GenesisStakeUnfunded(uint256 balance, uint256 needed);
    error UseStake();

    uint256 internal genesisBonded;

    function initialize(
        uint64 epochLength_,
        uint64 unbondingEpochs_,
        uint256 minValidatorStake_,
        uint256 minStorageStake_,
        uint256 minComputeStake_
    ) external onlySystem {
        _initEpochs(epochLength_);
        unbondingEpochs = unbondingEpochs_;
        minValidatorStake = minValidatorStake_;
        minStorageStake = minStorageStake_;
        minComputeStake = minComputeStake_;
    }

    /// @notice Bonds a genesis validator. The tokens are part of this contract's genesis balance.
    function genesisStake(address validator, uint256 amount, bytes32 consensusKey) external onlySystem {
        if (block.number != 0) revert GenesisOnly();
        genesisBonded += amount;
        if (address(this).balance < genesisBonded) {
            revert GenesisStakeUnfunded(address(this).balance, genesisBonded);
        }
        Staker storage s = stakers[validator];
        s.bonded += amount;
        emit Staked(validator, amount, s.bonded);
        _setRoles(validator, s, s.roles | Cairn.ROLE_VALIDATOR, consensusKey);
    }

    function stake() external payable {
        if (msg.value == 0) revert ZeroAmount();
        Staker storage s = stakers[msg.sender];
        s.bonded += msg.value;
        emit Staked(msg.sender, msg.value, s.bonded);
    }

    /// @notice Starts unbonding `amount`. Adding to tokens already unbonding restarts the period.
    function unbond(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Staker storage s = stakers[msg.sender];
        if (amount > s.bonded) revert InsufficientBond(s.bonded, amount);
        _checkMinimums(s.roles, s.bonded - amount);
        s.bonded -= amount;
        s.unbonding += amount;
        s.withdrawableEpoch = currentEpoch() + unbondingEpochs;
        emit UnbondStarted(msg.sender, amount, s.withdrawableEpoch);
    }

    function withdraw() external {
        Staker storage s = stakers[msg.sender];
        uint256 amount = s.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        uint64 epoch = currentEpoch();
        if (epoch < s.withdrawableEpoch) revert StillUnbonding(s.withdrawableEpoch, epoch);
        s.unbonding = 0;
        emit Withdrawn(msg.sender, amount);
        Cairn.pay(msg.sender, amount);
    }

    /// @notice Becomes a validator with this ed25519 consensus key (or changes the key).
    function registerValidator(bytes32 consensusKey) external {
        Staker storage s = stakers[msg.sender];
        _setRoles(msg.sender, s, s.roles | Cairn.ROLE_VALIDATOR, consensusKey);
    }

    /// @notice Sets a provider's storage and compute roles; only the registry, which derives
    /// them from the provider's advert. The validator role is kept as it is.
    function setProviderRoles(address provider, uint8 providerRoles) external {
        if (msg.sender != Cairn.REGISTRY) revert NotRegistry(msg.sender);
        Staker storage s = stakers[provider];
        uint8 roles = (s.roles & Cairn.ROLE_VALIDATOR) | (providerRoles & (Cairn.ROLE_STORAGE | Cairn.ROLE_COMPUTE));
        _setRoles(provider, s, roles, s.consensusKey);
    }

    /// @notice Takes up to `amount` from a staker and sends it to the calling market.
    function slash(address staker, uint256 amount) external returns (uint256 slashed) {
        if (msg.sender != Cairn.STORAGE_MARKET && msg.sender != Cairn.COMPUTE_MARKET) {
            revert NotMarket(msg.sender);
        }
        Staker storage s = stakers[staker];
        uint256 fromBond = amount < s.bonded ? amount : s.bonded;
        s.bonded -= fromBond;
        uint256 rest = amount - fromBond;
        uint256 fromUnbonding = rest < s.unbonding ? rest : s.unbonding;
        s.unbonding -= fromUnbonding;
        slashed = fromBond + fromUnbonding;
        if (slashed == 0) return 0;
        emit Slashed(staker, slashed, msg.sender);
        Cairn.pay(msg.sender, slashed);
    }

    function stakeOf(address staker)
        external
        view
        returns (uint256 bonded, uint256 unbonding, uint64 withdrawableEpoch, uint8 roles, bytes32 consensusKey)
    {
        Staker storage s = stakers[staker];
        return (s.bonded, s.unbonding, s.withdrawableEpoch, s.roles, s.consensusKey);
    }

    function bondedOf(address staker) external view returns (uint256) {
        return stakers[staker].bonded;
    }

    function hasRoles(address staker, uint8 roles) external view returns (bool) {
        return stakers[staker].roles & roles == roles;
    }

    /// @notice The validators and their bonds, in registration order.
    function validators() external view returns (address[] memory list, uint256[] memory bonds, bytes32[] memory keys) {
        uint256 n = validatorList.length;
        list = validatorList;
        bonds = new uint256[](n);
        keys = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            bonds[i] = stakers[list[i]].bonded;
            keys[i] = stakers[list[i]].consensusKey;
        }
    }

    function _setRoles(address staker, Staker storage s, uint8 roles, bytes32 consensusKey) internal {
        _checkMinimums(roles, s.bonded);
        bool wasValidator = s.roles & Cairn.ROLE_VALIDATOR != 0;
        bool isValidator = roles & Cairn.ROLE_VALIDATOR != 0;
        if (isValidator && !wasValidator) {
            validatorList.push(staker);
        }
        s.roles = roles;
        s.consensusKey = consensusKey;
        emit RolesChanged(staker, roles, consensusKey);
    }

    function _checkMinimums(uint8 roles, uint256 bonded) internal view {
        if (roles & Cairn.ROLE_VALIDATOR != 0 && bonded < minValidatorStake) {
            revert StakeBelowMinimum(Cairn.ROLE_VALIDATOR, minValidatorStake, bonded);
        }
        if (roles & Cairn.ROLE_STORAGE != 0 && bonded < minStorageStake) {
            revert StakeBelowMinimum(Cairn.ROLE_STORAGE, minStorageStake, bonded);
        }
        if (roles & Cairn.ROLE_COMPUTE != 0 && bonded < minComputeStake) {
            revert StakeBelowMinimum(Cairn.ROLE_COMPUTE, minComputeStake, bonded);
        }
    }

    /// @notice Plain transfers would be tokens nobody owns: bond with `stake`.
    receive() external payable {
        revert UseStake();
    }
}
