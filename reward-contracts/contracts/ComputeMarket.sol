// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Cairn, Epochs, PullPayments} from "./Cairn.sol";
import {Staking} from "./Staking.sol";
import {ProviderRegistry} from "./ProviderRegistry.sol";
import {RewardPool} from "./RewardPool.sol";

/// @title ComputeMarket: deterministic WASM jobs, checked by re-execution.
/// @notice A client posts a job (module root, input root, fuel limit, price per unit of fuel)
/// with `maxFuel * pricePerFuel` in escrow. The chain assigns a compute provider at random,
/// weighted by bond; it runs the job and posts (output root, fuel used, outcome). A second
/// provider, chosen the same way, re-executes and attests. If they agree, the job is paid:
/// with P = fuel used × price, the provider gets 80 % of P, the verifier 10 %, the client the
/// rest of the escrow. If they disagree, a third provider re-executes: whoever it sides with
/// is honest, the other is slashed `liarSlash` (paid to the honest one), and the referee earns
/// 10 % of P. A stage left unanswered past `stageTimeoutBlocks` can be expired by anyone.
/// Running out of fuel is an outcome like any other: it is agreed on and paid for.
/// @dev Parallel layout: a result or attestation writes only its own job, the claimable
/// balances of the job's parties and the provider's work counter in the RewardPool.
contract ComputeMarket is Epochs, PullPayments {
    enum State {
        None,
        Assigned,
        Resulted,
        Disputed,
        Settled,
        Expired
    }

    /// Outcome codes: 0 completed, 1 out of fuel, 2 trapped, 3 invalid module.
    uint8 public constant MAX_OUTCOME = 3;

    struct Result {
        bytes32 outputRoot;
        uint64 fuelUsed;
        uint8 outcome;
    }

    struct Job {
        address client;
        address provider;
        address verifier;
        address referee;
        bytes32 moduleRoot;
        bytes32 inputRoot;
        uint64 maxFuel;
        uint64 deadlineBlock;
        uint128 pricePerFuel;
        uint128 escrow;
        State state;
        Result claimed;
        Result attested;
        /// Set when a dispute is resolved: the party that was slashed.
        address liar;
    }

    uint64 public stageTimeoutBlocks;
    uint256 public liarSlash;
    uint256 public timeoutSlash;
    mapping(bytes32 => Job) internal jobs;
    mapping(address => uint64) public jobNonce;

    event JobPosted(
        bytes32 indexed id, address indexed client, address indexed provider, bytes32 moduleRoot, bytes32 inputRoot, uint64 maxFuel, uint128 pricePerFuel
    );
    event ResultSubmitted(bytes32 indexed id, bytes32 outputRoot, uint64 fuelUsed, uint8 outcome, address verifier);
    event JobDisputed(bytes32 indexed id, bytes32 outputRoot, uint64 fuelUsed, uint8 outcome, address referee);
    event JobSettled(bytes32 indexed id, address indexed provider, uint256 payment);
    event LiarSlashed(bytes32 indexed id, address indexed liar, uint256 slashed);
    event JobUnresolved(bytes32 indexed id);
    event JobExpired(bytes32 indexed id, State stage, uint256 slashed);

    error InvalidJob();
    error WrongEscrow(uint256 expected, uint256 sent);
    error NotEnoughComputeProviders(uint256 needed);
    error UnknownJob(bytes32 id);
    error WrongState(bytes32 id, State state);
    error NotAssignee(address caller, address expected);
    error FuelAboveLimit(uint64 fuelUsed, uint64 maxFuel);
    error InvalidOutcome(uint8 outcome);
    error NotExpired(uint64 deadlineBlock);
    error NotStaking(address sender);

    function initialize(uint64 epochLength_, uint64 stageTimeoutBlocks_, uint256 liarSlash_, uint256 timeoutSlash_)
        external
        onlySystem
    {
        _initEpochs(epochLength_);
        stageTimeoutBlocks = stageTimeoutBlocks_;
        liarSlash = liarSlash_;
        timeoutSlash = timeoutSlash_;
    }

    function postJob(bytes32 moduleRoot, bytes32 inputRoot, uint64 maxFuel, uint128 pricePerFuel)
        external
        payable
        returns (bytes32 id)
    {
        if (maxFuel == 0) revert InvalidJob();
        uint256 expected = uint256(maxFuel) * pricePerFuel;
        if (msg.value != expected) revert WrongEscrow(expected, msg.value);
        id = keccak256(abi.encode(msg.sender, jobNonce[msg.sender]++));
        // A job needs a provider and a verifier other than the client.
        address provider = _pick(id, 1, msg.sender, address(0), address(0));
        if (provider == address(0) || _pick(id, 2, msg.sender, provider, address(0)) == address(0)) {
            revert NotEnoughComputeProviders(2);
        }
        Job storage job = jobs[id];
        job.client = msg.sender;
        job.provider = provider;
        job.moduleRoot = moduleRoot;
        job.inputRoot = inputRoot;
        job.maxFuel = maxFuel;
        job.pricePerFuel = pricePerFuel;
        job.escrow = uint128(expected);
        job.state = State.Assigned;
        job.deadlineBlock = uint64(block.number) + stageTimeoutBlocks;
        emit JobPosted(id, msg.sender, provider, moduleRoot, inputRoot, maxFuel, pricePerFuel);
    }

    function submitResult(bytes32 id, bytes32 outputRoot, uint64 fuelUsed, uint8 outcome) external {
        Job storage job = _job(id, State.Assigned, jobs[id].provider);
        job.claimed = _result(job, outputRoot, fuelUsed, outcome);
        job.verifier = _pick(id, 2, job.client, job.provider, address(0));
        job.state = State.Resulted;
        job.deadlineBlock = uint64(block.number) + stageTimeoutBlocks;
        emit ResultSubmitted(id, outputRoot, fuelUsed, outcome, job.verifier);
    }

    function attest(bytes32 id, bytes32 outputRoot, uint64 fuelUsed, uint8 outcome) external {
        Job storage job = _job(id, State.Resulted, jobs[id].verifier);
        Result memory r = _result(job, outputRoot, fuelUsed, outcome);
        if (_same(r, job.claimed)) {
            _settleHonestProvider(id, job, job.verifier);
            return;
        }
        job.attested = r;
        job.referee = _pick(id, 3, job.client, job.provider, job.verifier);
        if (job.referee == address(0)) {
            // Nobody left to break the tie: refund the client, slash nobody.
            _refundClient(job);
            job.state = State.Settled;
            emit JobUnresolved(id);
            return;
        }
        job.state = State.Disputed;
        job.deadlineBlock = uint64(block.number) + stageTimeoutBlocks;
        emit JobDisputed(id, outputRoot, fuelUsed, outcome, job.referee);
    }

    function resolve(bytes32 id, bytes32 outputRoot, uint64 fuelUsed, uint8 outcome) external {
        Job storage job = _job(id, State.Disputed, jobs[id].referee);
        Result memory r = _result(job, outputRoot, fuelUsed, outcome);
        if (_same(r, job.claimed)) {
            uint256 slashed = Staking(payable(Cairn.STAKING)).slash(job.verifier, liarSlash);
            claimable[job.provider] += slashed;
            job.liar = job.verifier;
            emit LiarSlashed(id, job.verifier, slashed);
            _settleHonestProvider(id, job, job.referee);
        } else if (_same(r, job.attested)) {
            uint256 slashed = Staking(payable(Cairn.STAKING)).slash(job.provider, liarSlash);
            job.liar = job.provider;
            uint256 fee = uint256(job.attested.fuelUsed) * job.pricePerFuel / 10;
            claimable[job.verifier] += fee + slashed;
            claimable[job.referee] += fee;
            claimable[job.client] += job.escrow - 2 * fee;
            job.escrow = 0;
            job.state = State.Settled;
            emit LiarSlashed(id, job.provider, slashed);
        } else {
            _refundClient(job);
            job.state = State.Settled;
            emit JobUnresolved(id);
        }
    }

    /// @notice Ends a job whose current stage passed its deadline. A silent provider is slashed
    /// `timeoutSlash` for the client; a silent verifier lets the provider's result stand and is
    /// slashed for the provider; a silent referee is slashed for the client, who is refunded.
    function expire(bytes32 id) external {
        Job storage job = jobs[id];
        if (job.state == State.None) revert UnknownJob(id);
        if (block.number <= job.deadlineBlock) revert NotExpired(job.deadlineBlock);
        State stage = job.state;
        uint256 slashed;
        if (stage == State.Assigned) {
            slashed = Staking(payable(Cairn.STAKING)).slash(job.provider, timeoutSlash);
            claimable[job.client] += slashed;
            _refundClient(job);
        } else if (stage == State.Resulted) {
            slashed = Staking(payable(Cairn.STAKING)).slash(job.verifier, timeoutSlash);
            claimable[job.provider] += slashed;
            _settleHonestProvider(id, job, job.provider);
        } else if (stage == State.Disputed) {
            slashed = Staking(payable(Cairn.STAKING)).slash(job.referee, timeoutSlash);
            claimable[job.client] += slashed;
            _refundClient(job);
        } else {
            revert WrongState(id, stage);
        }
        job.state = State.Expired;
        emit JobExpired(id, stage, slashed);
    }

    function jobOf(bytes32 id) external view returns (Job memory) {
        return jobs[id];
    }

    /// Pays the provider for its claimed result: 80 % of P to it, the 10 % checking fee to
    /// `checker` (the verifier who agreed, the referee who sided with it, or the provider itself
    /// when the verifier stayed silent), the rest of the escrow back to the client.
    function _settleHonestProvider(bytes32 id, Job storage job, address checker) internal {
        uint256 payment = uint256(job.claimed.fuelUsed) * job.pricePerFuel;
        uint256 fee = payment / 10;
        uint256 providerShare = payment - 2 * fee;
        claimable[job.provider] += providerShare;
        claimable[checker] += fee;
        claimable[job.client] += job.escrow - providerShare - fee;
        job.escrow = 0;
        job.state = State.Settled;
        RewardPool(payable(Cairn.REWARD_POOL)).recordCompute(job.provider, job.claimed.fuelUsed);
        emit JobSettled(id, job.provider, providerShare);
    }

    function _refundClient(Job storage job) internal {
        claimable[job.client] += job.escrow;
        job.escrow = 0;
    }

    function _job(bytes32 id, State expected, address assignee) internal view returns (Job storage job) {
        job = jobs[id];
        if (job.state == State.None) revert UnknownJob(id);
        if (job.state != expected) revert WrongState(id, job.state);
        if (msg.sender != assignee) revert NotAssignee(msg.sender, assignee);
    }

    function _result(Job storage job, bytes32 outputRoot, uint64 fuelUsed, uint8 outcome)
        internal
        view
        returns (Result memory)
    {
        if (fuelUsed > job.maxFuel) revert FuelAboveLimit(fuelUsed, job.maxFuel);
        if (outcome > MAX_OUTCOME) revert InvalidOutcome(outcome);
        return Result(outputRoot, fuelUsed, outcome);
    }

    function _same(Result memory a, Result memory b) internal pure returns (bool) {
        return a.outputRoot == b.outputRoot && a.fuelUsed == b.fuelUsed && a.outcome == b.outcome;
    }

    /// A compute provider chosen at random, weighted by bond, excluding up to three addresses;
    /// address(0) when there is none. The seed mixes the block's randomness, the job and the
    /// stage, so each stage draws independently.
    function _pick(bytes32 id, uint256 stage, address a, address b, address c) internal view returns (address) {
        address[] memory providers = ProviderRegistry(Cairn.REGISTRY).computeProviders();
        uint256[] memory weights = new uint256[](providers.length);
        uint256 total;
        Staking staking = Staking(payable(Cairn.STAKING));
        for (uint256 i = 0; i < providers.length; i++) {
            address p = providers[i];
            if (p == a || p == b || p == c || !staking.hasRoles(p, Cairn.ROLE_COMPUTE)) continue;
            weights[i] = staking.bondedOf(p);
            total += weights[i];
        }
        if (total == 0) return address(0);
        uint256 point = uint256(keccak256(abi.encode(block.prevrandao, id, stage))) % total;
        for (uint256 i = 0; i < providers.length; i++) {
            if (point < weights[i]) return providers[i];
            point -= weights[i];
        }
        return address(0);
    }

    receive() external payable {
        if (msg.sender != Cairn.STAKING) revert NotStaking(msg.sender);
    }
}
