// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Cairn, Epochs} from "./Cairn.sol";

/// @title Staking: bonds, unbonding, roles and slashing.
/// @notice A staker bonds native tokens with `stake`, starts unbonding with `unbond` and takes
/// the tokens back with `withdraw` once the unbonding period (in epochs) is over. Roles
/// (validator, storage provider, compute provider) each need a minimum bond.
///
/// Stake is collateral: the two markets lock part of a provider's bond for each deal or job
/// it takes (`lock`), release it when the deal or job ends (`unlock`) and slash only from what
/// they locked (`slashLocked`), handing the tokens to the market, which credits the wronged
/// party. Locked tokens cannot be unbonded and a provider role cannot be dropped while any are
/// locked, so a provider cannot leave ahead of its slash. A provider whose bond falls below a
/// role's minimum loses that role. Bond added in the current or the previous epoch is "fresh":
/// the compute market draws by the seasoned rest (`seasonedBondOf`), bonded at least a whole
/// epoch before the draw, so a bond raised on seeing a job coming does not weigh in its draw.
///
/// Validators are accountable: registering proves possession of the consensus key (so nobody
/// can claim another's key and take the blame or credit for its votes), and a key belongs to
/// one account forever. Anyone can report two conflicting votes signed by one key in one view
/// (`reportEquivocation`): the key's owner loses `equivocationSlashPercent` of its bond and
/// unbonding tokens, the reporter gets `reporterRewardPercent` of that, the reward pool the
/// rest, and the owner is off the validator list for good (tombstoned). The node records the
/// validators seen voting (`recordActivity`) and, when an epoch closes, jails the validators
/// that were in that epoch's set and never seen (`closeEpoch`); a jailed validator comes back
/// with `registerValidator`. The node reads the list at each epoch's end, so every change to
/// it takes effect at the next epoch.
/// @dev Parallel layout: every write lands in the staker's own record or its key's owner slot,
/// except the validator list, which changes only when validator roles change (never on a proof
/// path), and the per-epoch activity mark, written only by the system.
contract Staking is Epochs {
    struct Staker {
        uint256 bonded;
        uint256 unbonding;
        uint64 withdrawableEpoch;
        uint8 roles;
        /// The first epoch of the validator's current membership in the set: registering in
        /// epoch e takes effect at e + 1, genesis validators are in from epoch 0.
        uint64 validatorSince;
        /// Lost the validator role for missing a whole epoch; cleared by `registerValidator`.
        bool jailed;
        /// Slashed for equivocation: can never be a validator again.
        bool tombstoned;
        bytes32 consensusKey;
        /// schnorrkel (sr25519) public key for the leader draw; stored, not checked.
        bytes32 vrfKey;
        /// Part of `bonded` the markets hold as collateral for live deals and jobs.
        uint256 locked;
        /// Bond added in epoch `freshEpoch` (the last epoch anything was added in) and in
        /// `olderFreshEpoch` (the one before that): all a "fresh" check needs.
        uint256 freshStake;
        uint256 olderFreshStake;
        uint64 freshEpoch;
        uint64 olderFreshEpoch;
    }

    /// The message a consensus key signs to prove that the registering account holds it.
    bytes internal constant POSSESSION_PREFIX = "cairn validator key v1";
    /// Length of one encoded vote in equivocation evidence (view ‖ tag ‖ block ‖ signature).
    uint256 internal constant EVIDENCE_VOTE_LEN = 105;

    uint64 public unbondingEpochs;
    uint256 public minValidatorStake;
    uint256 public minStorageStake;
    uint256 public minComputeStake;
    /// The chain's consensus domain: every vote is signed under a namespace derived from it
    /// and the epoch, so evidence from another chain does not verify here.
    bytes32 public consensusDomain;
    /// Share of an equivocating validator's bond and unbonding tokens that is slashed.
    uint8 public equivocationSlashPercent;
    /// Share of what is slashed for equivocation that goes to the reporter; the rest goes to
    /// the reward pool.
    uint8 public reporterRewardPercent;
    mapping(address => Staker) internal stakers;
    address[] internal validatorList;
    /// The account each consensus key was first registered by; it stays that account's.
    mapping(bytes32 => address) public keyOwner;
    /// Equivocation already punished, by key and epoch.
    mapping(bytes32 => mapping(uint64 => bool)) public equivocationReported;
    /// The epoch after the last one each account's key was seen voting in (0: never), stored
    /// one ahead so that "active in epoch 0" differs from "never active".
    mapping(address => uint64) internal activeBeforeEpoch;
    /// Epochs in which the node recorded any activity at all.
    mapping(uint64 => bool) public activityRecorded;

    event Staked(address indexed staker, uint256 amount, uint256 bonded);
    event UnbondStarted(address indexed staker, uint256 amount, uint64 withdrawableEpoch);
    event Withdrawn(address indexed staker, uint256 amount);
    event RolesChanged(address indexed staker, uint8 roles, bytes32 consensusKey);
    event Slashed(address indexed staker, uint256 amount, address indexed market);
    event CollateralLocked(address indexed staker, uint256 amount, uint256 locked);
    event CollateralUnlocked(address indexed staker, uint256 amount, uint256 locked);
    /// The bond fell below the minimum of a provider role, which is dropped.
    event RoleLost(address indexed staker, uint8 role, uint256 bonded);
    event ValidatorRegistered(address indexed validator, bytes32 consensusKey, bytes32 vrfKey, uint64 fromEpoch);
    event ValidatorLeft(address indexed validator, uint64 fromEpoch);
    event ValidatorJailed(address indexed validator, uint64 silentEpoch);
    event EquivocationSlashed(
        address indexed validator,
        bytes32 consensusKey,
        uint64 epoch,
        address indexed reporter,
        uint256 slashed,
        uint256 reporterReward
    );
    event Tombstoned(address indexed validator);
    /// No activity at all was recorded in `epoch`, so nobody was jailed for it.
    event NoActivityRecorded(uint64 epoch);

    error ZeroAmount();
    error InsufficientBond(uint256 bonded, uint256 requested);
    error StakeBelowMinimum(uint8 role, uint256 minimum, uint256 bonded);
    error StillUnbonding(uint64 withdrawableEpoch, uint64 currentEpoch);
    error NothingToWithdraw();
    error NotMarket(address caller);
    /// The bond left after unbonding would not cover what the markets hold as collateral.
    error BondLocked(uint256 locked, uint256 bondedAfter);
    /// A deal or job needs `needed` of free bond (bonded and not locked); only `free` is.
    error InsufficientFreeBond(uint256 free, uint256 needed);
    /// A provider role cannot be dropped while deals or jobs hold collateral.
    error RoleHasLiveCollateral(uint8 role, uint256 locked);
    error NotRegistry(address caller);
    error GenesisOnly();
    error GenesisStakeUnfunded(uint256 balance, uint256 needed);
    error UseStake();
    error PercentAbove100(uint8 percent);
    /// The key was registered by another account; keys are never transferred.
    error KeyOwnedByAnother(bytes32 consensusKey, address owner);
    /// `possession` is not the consensus key's signature over the registration message.
    error InvalidPossession(bytes32 consensusKey);
    /// A validator keeps its keys while it holds the role: leave first.
    error AlreadyValidator(address validator);
    error NotValidator(address staker);
    /// Slashed for equivocation: never a validator again.
    error ValidatorTombstoned(address validator);
    error UnknownConsensusKey(bytes32 consensusKey);
    /// A vote in evidence must be exactly EVIDENCE_VOTE_LEN bytes.
    error MalformedEvidence(uint256 voteALength, uint256 voteBLength);
    /// The votes are not two conflicting votes of one view signed by the key in that epoch of
    /// this chain.
    error InvalidEvidence(bytes32 consensusKey, uint64 epoch);
    error EquivocationAlreadyReported(bytes32 consensusKey, uint64 epoch);
    /// Evidence is accepted for `unbondingEpochs` epochs after the votes' epoch: later, tokens
    /// unbonded when the votes were signed may have been withdrawn, so the slash could miss them.
    error EvidenceTooOld(uint64 epoch, uint64 currentEpoch, uint64 unbondingEpochs);

    uint256 internal genesisBonded;

    function initialize(
        uint64 epochLength_,
        uint64 unbondingEpochs_,
        uint256 minValidatorStake_,
        uint256 minStorageStake_,
        uint256 minComputeStake_,
        bytes32 consensusDomain_,
        uint8 equivocationSlashPercent_,
        uint8 reporterRewardPercent_
    ) external onlySystem {
        _initEpochs(epochLength_);
        if (equivocationSlashPercent_ > 100) revert PercentAbove100(equivocationSlashPercent_);
        if (reporterRewardPercent_ > 100) revert PercentAbove100(reporterRewardPercent_);
        unbondingEpochs = unbondingEpochs_;
        minValidatorStake = minValidatorStake_;
        minStorageStake = minStorageStake_;
        minComputeStake = minComputeStake_;
        consensusDomain = consensusDomain_;
        equivocationSlashPercent = equivocationSlashPercent_;
        reporterRewardPercent = reporterRewardPercent_;
    }

    /// @notice Bonds a genesis validator, in the set from epoch 0. The tokens are part of this
    /// contract's genesis balance. No proof of possession: the genesis file is trusted.
    function genesisStake(address validator, uint256 amount, bytes32 consensusKey, bytes32 vrfKey)
        external
        onlySystem
    {
        if (block.number != 0) revert GenesisOnly();
        genesisBonded += amount;
        if (address(this).balance < genesisBonded) {
            revert GenesisStakeUnfunded(address(this).balance, genesisBonded);
        }
        _claimKey(validator, consensusKey);
        Staker storage s = stakers[validator];
        s.bonded += amount;
        s.vrfKey = vrfKey; // validatorSince stays 0: in the set from epoch 0
        emit Staked(validator, amount, s.bonded);
        _setRoles(validator, s, s.roles | Cairn.ROLE_VALIDATOR, consensusKey);
    }

    function stake() external payable {
        if (msg.value == 0) revert ZeroAmount();
        Staker storage s = stakers[msg.sender];
        s.bonded += msg.value;
        uint64 epoch = currentEpoch();
        if (s.freshEpoch != epoch) {
            s.olderFreshStake = s.freshStake;
            s.olderFreshEpoch = s.freshEpoch;
            s.freshStake = 0;
            s.freshEpoch = epoch;
        }
        s.freshStake += msg.value;
        emit Staked(msg.sender, msg.value, s.bonded);
    }

    /// @notice The bond bonded before the previous epoch began, so at least a whole epoch ago:
    /// what the compute market's draws weigh, so that stake added just before a draw cannot
    /// steer it.
    function seasonedBondOf(address staker) public view returns (uint256) {
        Staker storage s = stakers[staker];
        uint64 epoch = currentEpoch();
        uint256 fresh;
        if (s.freshEpoch + 1 >= epoch) fresh += s.freshStake;
        if (s.olderFreshEpoch + 1 >= epoch) fresh += s.olderFreshStake;
        return s.bonded > fresh ? s.bonded - fresh : 0;
    }

    /// @notice Starts unbonding `amount`. Adding to tokens already unbonding restarts the period.
    function unbond(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Staker storage s = stakers[msg.sender];
        if (amount > s.bonded) revert InsufficientBond(s.bonded, amount);
        if (s.bonded - amount < s.locked) revert BondLocked(s.locked, s.bonded - amount);
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

    /// @notice Becomes a validator from the next epoch on with this ed25519 consensus key and
    /// schnorrkel VRF key, or comes back after being jailed. `possession` is the consensus
    /// key's ed25519 signature over `possessionMessage(msg.sender, consensusKey, vrfKey)`:
    /// without it anyone could register someone else's key and have its votes counted (and
    /// its equivocations slashed) as theirs. It names the sender, the chain and the VRF key, so
    /// it cannot be replayed by another account, on another chain or with another VRF key.
    function registerValidator(bytes32 consensusKey, bytes32 vrfKey, bytes calldata possession) external {
        Staker storage s = stakers[msg.sender];
        if (s.tombstoned) revert ValidatorTombstoned(msg.sender);
        if (s.roles & Cairn.ROLE_VALIDATOR != 0) revert AlreadyValidator(msg.sender);
        address owner = keyOwner[consensusKey];
        if (owner != address(0) && owner != msg.sender) revert KeyOwnedByAnother(consensusKey, owner);
        bytes memory input =
            abi.encodePacked(consensusKey, possession, possessionMessage(msg.sender, consensusKey, vrfKey));
        if (possession.length != 64 || !_precompileSaysValid(Cairn.ED25519_VERIFY, input)) {
            revert InvalidPossession(consensusKey);
        }
        _claimKey(msg.sender, consensusKey);
        s.vrfKey = vrfKey;
        s.jailed = false;
        s.validatorSince = currentEpoch() + 1;
        _setRoles(msg.sender, s, s.roles | Cairn.ROLE_VALIDATOR, consensusKey);
        emit ValidatorRegistered(msg.sender, consensusKey, vrfKey, s.validatorSince);
    }

    /// @notice What a consensus key signs to register for `staker` with `vrfKey` on this chain.
    function possessionMessage(address staker, bytes32 consensusKey, bytes32 vrfKey)
        public
        view
        returns (bytes memory)
    {
        return abi.encodePacked(POSSESSION_PREFIX, block.chainid, staker, consensusKey, vrfKey);
    }

    /// @notice Gives up the validator role; out of the set from the next epoch. The bond can
    /// then be unbonded below the validator minimum. Equivocation evidence against the key
    /// still slashes the bond and unbonding tokens for `unbondingEpochs` epochs.
    function leaveValidators() external {
        Staker storage s = stakers[msg.sender];
        if (s.roles & Cairn.ROLE_VALIDATOR == 0) revert NotValidator(msg.sender);
        _clearValidatorRole(msg.sender, s);
        _removeFromValidatorList(msg.sender);
        emit ValidatorLeft(msg.sender, currentEpoch() + 1);
    }

    /// @notice Punishes a consensus key that signed two conflicting votes in one view of
    /// `epoch` (each vote: view (8, big endian) ‖ tag (1) ‖ block (32) ‖ signature (64)). The
    /// key's owner loses `equivocationSlashPercent` of its bond and unbonding tokens; the
    /// caller is paid `reporterRewardPercent` of that at once and the reward pool gets the
    /// rest; the owner loses the validator role and can never register again. One report per
    /// key and epoch; evidence is accepted while tokens unbonded in `epoch` cannot yet have
    /// been withdrawn.
    function reportEquivocation(uint64 epoch, bytes32 consensusKey, bytes calldata voteA, bytes calldata voteB)
        external
    {
        uint64 current = currentEpoch();
        // Tokens unbonded in `epoch` can be withdrawn from `epoch + unbondingEpochs` on.
        if (uint256(epoch) + unbondingEpochs <= current) {
            revert EvidenceTooOld(epoch, current, unbondingEpochs);
        }
        if (equivocationReported[consensusKey][epoch]) revert EquivocationAlreadyReported(consensusKey, epoch);
        address offender = keyOwner[consensusKey];
        if (offender == address(0)) revert UnknownConsensusKey(consensusKey);
        if (voteA.length != EVIDENCE_VOTE_LEN || voteB.length != EVIDENCE_VOTE_LEN) {
            revert MalformedEvidence(voteA.length, voteB.length);
        }
        bytes memory evidence = abi.encodePacked(consensusDomain, epoch, consensusKey, voteA, voteB);
        if (!_precompileSaysValid(Cairn.EQUIVOCATION, evidence)) revert InvalidEvidence(consensusKey, epoch);

        equivocationReported[consensusKey][epoch] = true;
        Staker storage s = stakers[offender];
        uint256 slashed = _take(s, (s.bonded + s.unbonding) * equivocationSlashPercent / 100);
        // The markets' collateral cannot exceed what is left; their own records clamp to it.
        if (s.locked > s.bonded) s.locked = s.bonded;
        _dropRolesBelowMinimum(offender, s);
        uint256 reward = slashed * reporterRewardPercent / 100;
        if (s.roles & Cairn.ROLE_VALIDATOR != 0) {
            _clearValidatorRole(offender, s);
            _removeFromValidatorList(offender);
        }
        s.tombstoned = true;
        emit EquivocationSlashed(offender, consensusKey, epoch, msg.sender, slashed, reward);
        emit Tombstoned(offender);
        if (reward > 0) Cairn.pay(msg.sender, reward);
        if (slashed > reward) Cairn.pay(Cairn.REWARD_POOL, slashed - reward);
    }

    /// @notice Marks the owners of `keys` (the consensus keys seen voting in this block) active
    /// in the current epoch. Only the system, at the start of a block.
    function recordActivity(bytes32[] calldata keys) external onlySystem {
        uint64 epoch = currentEpoch();
        bool anyOwned;
        for (uint256 i = 0; i < keys.length; i++) {
            address owner = keyOwner[keys[i]];
            if (owner == address(0)) continue;
            anyOwned = true;
            // Written once per validator and epoch: later blocks of the epoch only read.
            if (activeBeforeEpoch[owner] != epoch + 1) activeBeforeEpoch[owner] = epoch + 1;
        }
        if (anyOwned && !activityRecorded[epoch]) activityRecorded[epoch] = true;
    }

    /// @notice Jails every listed validator that was in the set for the whole of epoch
    /// `closed` and never seen voting in it: off the list (so out of the set from the next
    /// epoch read), flagged `jailed`. An epoch with no activity recorded at all jails nobody:
    /// blocks carry the votes of a quorum, so such an epoch means the node recorded nothing,
    /// and jailing the whole set would hand the chain to whoever registers next. Only the
    /// system, at the first block of the next epoch.
    function closeEpoch(uint64 closed) external onlySystem {
        if (!activityRecorded[closed]) {
            emit NoActivityRecorded(closed);
            return;
        }
        uint256 n = validatorList.length;
        uint256 kept;
        for (uint256 i = 0; i < n; i++) {
            address validator = validatorList[i];
            Staker storage s = stakers[validator];
            if (s.validatorSince <= closed && activeBeforeEpoch[validator] <= closed) {
                s.jailed = true;
                _clearValidatorRole(validator, s);
                emit ValidatorJailed(validator, closed);
            } else {
                if (kept != i) validatorList[kept] = validator;
                kept++;
            }
        }
        while (validatorList.length > kept) {
            validatorList.pop();
        }
    }

    /// @notice The last epoch `staker`'s key was seen voting in; `everActive` false if never.
    function lastActiveEpoch(address staker) external view returns (bool everActive, uint64 epoch) {
        uint64 before = activeBeforeEpoch[staker];
        return (before != 0, before == 0 ? 0 : before - 1);
    }

    /// @notice Sets a provider's storage and compute roles; only the registry, which derives
    /// them from the provider's advert. The validator role is kept as it is.
    function setProviderRoles(address provider, uint8 providerRoles) external {
        if (msg.sender != Cairn.REGISTRY) revert NotRegistry(msg.sender);
        Staker storage s = stakers[provider];
        uint8 providerBits = Cairn.ROLE_STORAGE | Cairn.ROLE_COMPUTE;
        uint8 dropped = s.roles & providerBits & ~providerRoles;
        if (dropped != 0 && s.locked > 0) revert RoleHasLiveCollateral(dropped, s.locked);
        uint8 roles = (s.roles & Cairn.ROLE_VALIDATOR) | (providerRoles & providerBits);
        _setRoles(provider, s, roles, s.consensusKey);
    }

    /// @notice Holds `amount` of `staker`'s free bond as collateral for a deal or job of the
    /// calling market. Only the markets.
    function lock(address staker, uint256 amount) external onlyMarket {
        Staker storage s = stakers[staker];
        uint256 free = s.bonded - s.locked;
        if (amount > free) revert InsufficientFreeBond(free, amount);
        s.locked += amount;
        emit CollateralLocked(staker, amount, s.locked);
    }

    /// @notice Releases up to `amount` of collateral (less if an equivocation slash took part
    /// of it). Only the markets.
    function unlock(address staker, uint256 amount) external onlyMarket {
        Staker storage s = stakers[staker];
        uint256 released = amount < s.locked ? amount : s.locked;
        s.locked -= released;
        emit CollateralUnlocked(staker, released, s.locked);
    }

    /// @notice Takes up to `amount` of `staker`'s locked collateral (the market's own lock) and
    /// sends it to the calling market; returns what it took. A provider left below a role's
    /// minimum loses the role. Only the markets.
    function slashLocked(address staker, uint256 amount) external onlyMarket returns (uint256 slashed) {
        Staker storage s = stakers[staker];
        slashed = amount < s.locked ? amount : s.locked;
        if (slashed == 0) return 0;
        s.locked -= slashed;
        s.bonded -= slashed;
        emit Slashed(staker, slashed, msg.sender);
        _dropRolesBelowMinimum(staker, s);
        Cairn.pay(msg.sender, slashed);
    }

    function lockedOf(address staker) external view returns (uint256) {
        return stakers[staker].locked;
    }

    /// @notice Bond neither locked nor fresh: what a compute draw weighs and what a new job
    /// can lock.
    function drawableBondOf(address staker) external view returns (uint256 weight, uint256 free) {
        Staker storage s = stakers[staker];
        free = s.bonded - s.locked;
        weight = seasonedBondOf(staker);
    }

    modifier onlyMarket() {
        if (msg.sender != Cairn.STORAGE_MARKET && msg.sender != Cairn.COMPUTE_MARKET) {
            revert NotMarket(msg.sender);
        }
        _;
    }

    function stakeOf(address staker)
        external
        view
        returns (
            uint256 bonded,
            uint256 unbonding,
            uint64 withdrawableEpoch,
            uint8 roles,
            bytes32 consensusKey,
            bytes32 vrfKey,
            bool jailed,
            bool tombstoned
        )
    {
        Staker storage s = stakers[staker];
        return (
            s.bonded, s.unbonding, s.withdrawableEpoch, s.roles, s.consensusKey, s.vrfKey, s.jailed, s.tombstoned
        );
    }

    function bondedOf(address staker) external view returns (uint256) {
        return stakers[staker].bonded;
    }

    function hasRoles(address staker, uint8 roles) external view returns (bool) {
        return stakers[staker].roles & roles == roles;
    }

    /// @notice The validators with their bonds, consensus keys and VRF keys, in registration
    /// order.
    function validators()
        external
        view
        returns (address[] memory list, uint256[] memory bonds, bytes32[] memory keys, bytes32[] memory vrfKeys)
    {
        uint256 n = validatorList.length;
        list = validatorList;
        bonds = new uint256[](n);
        keys = new bytes32[](n);
        vrfKeys = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            Staker storage s = stakers[list[i]];
            bonds[i] = s.bonded;
            keys[i] = s.consensusKey;
            vrfKeys[i] = s.vrfKey;
        }
    }

    /// Makes `consensusKey` `owner`'s for good; refused if another account holds it.
    function _claimKey(address owner, bytes32 consensusKey) internal {
        address current = keyOwner[consensusKey];
        if (current == owner) return;
        if (current != address(0)) revert KeyOwnedByAnother(consensusKey, current);
        keyOwner[consensusKey] = owner;
    }

    /// Takes up to `amount` from the bond, then from tokens still unbonding; returns what it took.
    function _take(Staker storage s, uint256 amount) internal returns (uint256 taken) {
        uint256 fromBond = amount < s.bonded ? amount : s.bonded;
        s.bonded -= fromBond;
        uint256 rest = amount - fromBond;
        uint256 fromUnbonding = rest < s.unbonding ? rest : s.unbonding;
        s.unbonding -= fromUnbonding;
        return fromBond + fromUnbonding;
    }

    /// Drops the validator bit, keeping the provider roles and the keys (evidence against the
    /// key must still find its owner). The caller takes the staker off the list.
    function _clearValidatorRole(address staker, Staker storage s) internal {
        s.roles &= ~Cairn.ROLE_VALIDATOR;
        emit RolesChanged(staker, s.roles, s.consensusKey);
    }

    /// Removes `staker` from the validator list, keeping the others' order.
    function _removeFromValidatorList(address staker) internal {
        uint256 n = validatorList.length;
        uint256 i = 0;
        while (i < n && validatorList[i] != staker) i++;
        if (i == n) return;
        for (; i + 1 < n; i++) {
            validatorList[i] = validatorList[i + 1];
        }
        validatorList.pop();
    }

    /// Whether a Cairn precompile answers the 32-byte word 1 for `input`.
    function _precompileSaysValid(address precompile, bytes memory input) internal view returns (bool) {
        (bool ok, bytes memory out) = precompile.staticcall(input);
        return ok && out.length == 32 && uint256(bytes32(out)) == 1;
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

    /// Drops the storage and compute roles whose minimum the bond no longer meets. The
    /// validator role is left to the validator rules (an equivocation tombstones it anyway).
    function _dropRolesBelowMinimum(address staker, Staker storage s) internal {
        uint8 lost;
        if (s.roles & Cairn.ROLE_STORAGE != 0 && s.bonded < minStorageStake) lost |= Cairn.ROLE_STORAGE;
        if (s.roles & Cairn.ROLE_COMPUTE != 0 && s.bonded < minComputeStake) lost |= Cairn.ROLE_COMPUTE;
        if (lost == 0) return;
        s.roles &= ~lost;
        emit RoleLost(staker, lost, s.bonded);
        emit RolesChanged(staker, s.roles, s.consensusKey);
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
