// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {Cairn, Epochs, PullPayments} from "./Cairn.sol";
import {Staking} from "./Staking.sol";
import {ProviderRegistry} from "./ProviderRegistry.sol";
import {RewardPool} from "./RewardPool.sol";

/// @title ComputeMarket: deterministic WASM jobs, checked by re-execution under commit–reveal.
/// @notice A client posts a job (module root, input root, fuel limit, memory limit, price per
/// unit of fuel) with `maxFuel * pricePerFuel` in escrow. The chain draws a compute provider
/// among those whose advert takes the job (ask at most the price, memory at least the job's,
/// fuel rate high enough to run `maxFuel` in half a stage, free bond for the job's collateral),
/// weighted by bond at least a whole epoch old; a job no provider takes is refused, so
/// nobody is ever assigned a job it did not offer to run. Every party locks `liarSlash` of its
/// bond for the job's life.
///
/// 1. The provider runs the job and commits to its result (a hash of the result, a secret salt,
///    the job and itself); a verifier is then drawn the same way, re-executes and commits.
/// 2. Both reveal. Nobody saw another's result before committing its own, so a verifier cannot
///    copy the provider.
/// 3. If they agree, the result is open to challenge for `challengeWindowBlocks`: any eligible
///    compute provider may dispute it with its own result. Unchallenged, the job pays: with
///    P = fuel used × price, the provider gets 60 % of P (less the burnt share), the verifier
///    30 % (it ran the whole job too), the client the rest of the escrow.
/// 4. A disagreement, a challenge or a verifier that never reveals goes to a panel of three
///    referees drawn the same way, who commit and reveal in turn. The result a majority of them
///    reveals stands: every party and referee that revealed another is slashed `liarSlash`, and
///    the slashes are shared by those that revealed the majority's result (a challenger that
///    overturns a wrong agreement collects both liars' slashes).
///
/// "Input unavailable" (outcome 4) is an answer that slashes nobody: a party that could not get
/// the module or input says so and is not paid; a panel whose majority says it judges nobody. A
/// silent party is slashed `timeoutSlash`, burnt (paying anyone for another's silence would pay
/// them to cause it): a silent provider's job is refunded, a silent verifier replaced (up to
/// three draws); a provider that keeps its result back after the verifier revealed loses
/// `liarSlash`.
/// @dev Parallel layout: a commit, reveal or settlement writes only its own job, the claimable
/// balances of the job's parties, their collateral in Staking and the provider's fee record in
/// the RewardPool.
contract ComputeMarket is Epochs, PullPayments {
    enum State {
        None,
        /// Waiting for the provider's commitment.
        Assigned,
        /// Waiting for the verifier's commitment.
        Verifying,
        /// Waiting for both reveals.
        Revealing,
        /// Both revealed the same result; open to challenge until the deadline.
        Agreed,
        /// Waiting for the referees' commitments.
        PanelCommit,
        /// Waiting for the referees' reveals.
        PanelReveal,
        Settled,
        Expired
    }

    /// Outcome codes: 0 completed, 1 out of fuel, 2 trapped, 3 invalid module, 4 input
    /// unavailable.
    uint8 public constant MAX_OUTCOME = 4;
    uint8 public constant INPUT_UNAVAILABLE = 4;
    /// Party slots: provider, verifier, challenger, then the referees.
    uint256 internal constant PROVIDER = 0;
    uint256 internal constant VERIFIER = 1;
    uint256 internal constant CHALLENGER = 2;
    uint256 internal constant FIRST_REFEREE = 3;
    uint256 public constant PANEL_SIZE = 3;
    uint256 internal constant PARTIES = FIRST_REFEREE + PANEL_SIZE;
    /// Shares of P = fuel used × price: the provider's, and the checker's (the verifier that
    /// agreed), who ran the whole job too and must be paid for it, or verifying would be
    /// worked at a loss; the client keeps the rest.
    uint256 public constant PROVIDER_SHARE_PERCENT = 60;
    uint256 public constant CHECKER_SHARE_PERCENT = 30;
    /// Verifiers drawn for one job before a silent one ends it unresolved.
    uint8 public constant MAX_VERIFIER_DRAWS = 3;

    struct Result {
        bytes32 outputRoot;
        uint64 fuelUsed;
        uint8 outcome;
    }

    struct Party {
        address who;
        bytes32 commitment;
        Result result;
        bool revealed;
        /// What Staking still holds of this party's bond for the job.
        uint128 collateral;
    }

    struct Job {
        address client;
        bytes32 moduleRoot;
        bytes32 inputRoot;
        uint64 maxFuel;
        uint32 memoryMiB;
        uint64 deadlineBlock;
        uint128 pricePerFuel;
        uint128 escrow;
        State state;
        uint8 verifierDraws;
        /// The result that settled the job (a majority's or the agreed one).
        Result decided;
        /// Whether the provider was paid for the decided result.
        bool providerPaid;
        Party[6] parties;
    }

    uint64 public stageTimeoutBlocks;
    uint64 public challengeWindowBlocks;
    /// The chain's block time: with the stage timeout it says how much fuel a provider runs.
    uint64 public blockTimeMs;
    uint256 public liarSlash;
    uint256 public timeoutSlash;
    mapping(bytes32 => Job) internal jobs;
    mapping(address => uint64) public jobNonce;

    event JobPosted(
        bytes32 indexed id,
        address indexed client,
        address indexed provider,
        bytes32 moduleRoot,
        bytes32 inputRoot,
        uint64 maxFuel,
        uint32 memoryMiB,
        uint128 pricePerFuel
    );
    event ResultCommitted(bytes32 indexed id, address indexed party);
    event VerifierDrawn(bytes32 indexed id, address indexed verifier);
    event RevealsOpen(bytes32 indexed id);
    event ResultRevealed(bytes32 indexed id, address indexed party, bytes32 outputRoot, uint64 fuelUsed, uint8 outcome);
    event JobAgreed(bytes32 indexed id, uint64 challengeDeadline);
    event JobChallenged(bytes32 indexed id, address indexed challenger);
    event PanelDrawn(bytes32 indexed id, address[] referees);
    event PanelRevealsOpen(bytes32 indexed id);
    event JobSettled(bytes32 indexed id, address indexed provider, uint256 payment);
    event LiarSlashed(bytes32 indexed id, address indexed liar, uint256 slashed);
    event TimeoutSlashed(bytes32 indexed id, address indexed party, uint256 slashed);
    event JobUnresolved(bytes32 indexed id);
    event JobExpired(bytes32 indexed id, State stage);
    event FeesBurnt(uint256 amount);

    error InvalidJob();
    error WrongEscrow(uint256 expected, uint256 sent);
    /// No compute provider takes the job (it needs two: a provider and a verifier). The hints:
    /// the most fuel any provider runs in half a stage and the lowest price asked.
    error NoProviderFor(uint64 maxFuel, uint32 memoryMiB, uint128 pricePerFuel, uint64 mostFuel, uint128 lowestAsk, uint64 stageBlocks);
    error UnknownJob(bytes32 id);
    error WrongState(bytes32 id, State state);
    error NotAParty(address caller);
    error AlreadyCommitted(address party);
    error EmptyCommitment();
    error RevealMismatch(address party);
    error FuelAboveLimit(uint64 fuelUsed, uint64 maxFuel);
    error InvalidOutcome(uint8 outcome);
    error DeadlinePassed(uint64 deadlineBlock);
    error NotExpired(uint64 deadlineBlock);
    /// A challenge must name a result other than the agreed one.
    error SameResult();
    /// Only a compute provider that could have been drawn for the job may challenge it.
    error NotEligible(address caller);
    error NotStaking(address sender);
    error NotRewardPool(address sender);
    error TimeoutAboveLiarSlash(uint256 timeoutSlash, uint256 liarSlash);
    /// No compute provider is left to sit on a panel for this job.
    error NoPanel();

    function initialize(
        uint64 epochLength_,
        uint64 stageTimeoutBlocks_,
        uint64 challengeWindowBlocks_,
        uint64 blockTimeMs_,
        uint256 liarSlash_,
        uint256 timeoutSlash_
    ) external onlySystem {
        if (timeoutSlash_ > liarSlash_ || liarSlash_ == 0) revert TimeoutAboveLiarSlash(timeoutSlash_, liarSlash_);
        _initEpochs(epochLength_);
        stageTimeoutBlocks = stageTimeoutBlocks_;
        challengeWindowBlocks = challengeWindowBlocks_;
        blockTimeMs = blockTimeMs_;
        liarSlash = liarSlash_;
        timeoutSlash = timeoutSlash_;
    }

    /// @notice The most fuel a provider advertising `fuelPerSecond` is asked to run: what it
    /// runs in half a stage, the other half left for fetching the data and the transaction.
    function runnableFuel(uint64 fuelPerSecond) public view returns (uint64) {
        uint256 fuel = uint256(fuelPerSecond) * stageTimeoutBlocks * blockTimeMs / 2000;
        return fuel > type(uint64).max ? type(uint64).max : uint64(fuel);
    }

    /// @notice What `party` commits to: keccak256(abi.encode(id, party, outputRoot, fuelUsed,
    /// outcome, salt)). The salt keeps a result nobody can guess from being read off the hash.
    function commitmentOf(bytes32 id, address party, bytes32 outputRoot, uint64 fuelUsed, uint8 outcome, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(id, party, outputRoot, fuelUsed, outcome, salt));
    }

    function postJob(bytes32 moduleRoot, bytes32 inputRoot, uint64 maxFuel, uint32 memoryMiB, uint128 pricePerFuel)
        external
        payable
        returns (bytes32 id)
    {
        if (maxFuel == 0 || memoryMiB == 0) revert InvalidJob();
        uint256 expected = uint256(maxFuel) * pricePerFuel;
        if (msg.value != expected) revert WrongEscrow(expected, msg.value);
        // The market's address keeps job ids apart from the storage market's deal ids.
        id = keccak256(abi.encode(address(this), msg.sender, jobNonce[msg.sender]++));
        Job storage job = jobs[id];
        job.client = msg.sender;
        job.moduleRoot = moduleRoot;
        job.inputRoot = inputRoot;
        job.maxFuel = maxFuel;
        job.memoryMiB = memoryMiB;
        job.pricePerFuel = pricePerFuel;
        job.escrow = uint128(expected);
        (address[] memory drawn, uint256 eligible) = _draw(job, id, 1, 1);
        // A provider and a verifier, both other than the client.
        if (eligible < 2) {
            (uint64 mostFuel, uint128 lowestAsk) = _market();
            revert NoProviderFor(maxFuel, memoryMiB, pricePerFuel, mostFuel, lowestAsk, stageTimeoutBlocks);
        }
        _join(job, PROVIDER, drawn[0]);
        job.state = State.Assigned;
        job.deadlineBlock = uint64(block.number) + stageTimeoutBlocks;
        emit JobPosted(id, msg.sender, drawn[0], moduleRoot, inputRoot, maxFuel, memoryMiB, pricePerFuel);
    }

    /// @notice Commits to a result: the provider first, then the verifier, or a referee.
    function commit(bytes32 id, bytes32 commitment) external {
        Job storage job = _live(id);
        if (commitment == bytes32(0)) revert EmptyCommitment();
        State state = job.state;
        uint256 slot;
        if (state == State.Assigned) {
            slot = _expect(job, msg.sender, PROVIDER);
        } else if (state == State.Verifying) {
            slot = _expect(job, msg.sender, VERIFIER);
        } else if (state == State.PanelCommit) {
            slot = _refereeSlot(job, msg.sender);
        } else {
            revert WrongState(id, state);
        }
        Party storage party = job.parties[slot];
        if (party.commitment != bytes32(0)) revert AlreadyCommitted(msg.sender);
        party.commitment = commitment;
        emit ResultCommitted(id, msg.sender);
        if (state == State.Assigned) {
            _drawVerifier(job, id);
        } else if (state == State.Verifying) {
            _restartClock(job, State.Revealing);
            emit RevealsOpen(id);
        } else if (_allReferees(job, false)) {
            _restartClock(job, State.PanelReveal);
            emit PanelRevealsOpen(id);
        }
    }

    /// @notice Reveals the result committed to, with its salt.
    function reveal(bytes32 id, bytes32 outputRoot, uint64 fuelUsed, uint8 outcome, bytes32 salt) external {
        Job storage job = _live(id);
        State state = job.state;
        uint256 slot;
        if (state == State.Revealing) {
            slot = job.parties[PROVIDER].who == msg.sender ? PROVIDER : _expect(job, msg.sender, VERIFIER);
        } else if (state == State.PanelReveal) {
            slot = _refereeSlot(job, msg.sender);
        } else {
            revert WrongState(id, state);
        }
        Party storage party = job.parties[slot];
        if (party.revealed || party.commitment == bytes32(0)) revert WrongState(id, state);
        Result memory r = _result(job, outputRoot, fuelUsed, outcome);
        if (commitmentOf(id, msg.sender, outputRoot, fuelUsed, outcome, salt) != party.commitment) {
            revert RevealMismatch(msg.sender);
        }
        party.result = r;
        party.revealed = true;
        emit ResultRevealed(id, msg.sender, outputRoot, fuelUsed, outcome);
        if (state == State.Revealing) {
            Party storage provider = job.parties[PROVIDER];
            Party storage verifier = job.parties[VERIFIER];
            if (!provider.revealed || !verifier.revealed) return;
            if (_same(provider.result, verifier.result)) {
                job.state = State.Agreed;
                job.deadlineBlock = uint64(block.number) + challengeWindowBlocks;
                emit JobAgreed(id, job.deadlineBlock);
            } else {
                _openPanel(job, id, true);
            }
        } else if (_allReferees(job, true)) {
            _decide(job, id);
        }
    }

    /// @notice Disputes an agreed result with another, while the challenge window is open.
    /// The challenger locks the same collateral as the parties; a panel decides.
    function challenge(bytes32 id, bytes32 outputRoot, uint64 fuelUsed, uint8 outcome) external {
        Job storage job = _live(id);
        if (job.state != State.Agreed) revert WrongState(id, job.state);
        if (block.number > job.deadlineBlock) revert DeadlinePassed(job.deadlineBlock);
        // A challenger disputes a result with a result: "input unavailable" proves nothing.
        if (outcome == INPUT_UNAVAILABLE) revert InvalidOutcome(outcome);
        Result memory r = _result(job, outputRoot, fuelUsed, outcome);
        if (_same(r, job.parties[PROVIDER].result)) revert SameResult();
        if (_weight(job, msg.sender) == 0) revert NotEligible(msg.sender);
        _join(job, CHALLENGER, msg.sender);
        Party storage challenger = job.parties[CHALLENGER];
        challenger.result = r;
        challenger.revealed = true;
        emit JobChallenged(id, msg.sender);
        emit ResultRevealed(id, msg.sender, outputRoot, fuelUsed, outcome);
        // With nobody to judge it, a challenge would only void an agreed payment.
        if (!_openPanel(job, id, false)) revert NoPanel();
    }

    /// @notice Moves a job whose stage passed its deadline: pays an agreed job nobody
    /// challenged; otherwise slashes the parties that stayed silent `timeoutSlash` and goes on
    /// without them (a new verifier, a panel of those referees that answered) or refunds the
    /// client. Anyone may call it.
    function expire(bytes32 id) external {
        Job storage job = _live(id);
        if (block.number <= job.deadlineBlock) revert NotExpired(job.deadlineBlock);
        State stage = job.state;
        emit JobExpired(id, stage);
        if (stage == State.Agreed) {
            job.decided = job.parties[PROVIDER].result;
            _payProvider(job, id, job.parties[VERIFIER].who);
            _close(job, State.Settled);
        } else if (stage == State.Assigned) {
            _timeout(job, id, PROVIDER);
            _refund(job, id, State.Expired);
        } else if (stage == State.Verifying) {
            _timeout(job, id, VERIFIER);
            _release(job, VERIFIER);
            if (job.verifierDraws >= MAX_VERIFIER_DRAWS) {
                _refund(job, id, State.Expired);
            } else {
                _drawVerifier(job, id);
            }
        } else if (stage == State.Revealing) {
            Party storage provider = job.parties[PROVIDER];
            bool verifierRevealed = job.parties[VERIFIER].revealed;
            if (!verifierRevealed) _timeout(job, id, VERIFIER);
            if (!provider.revealed) {
                // A provider that saw the verifier's result and kept its own back would have
                // lied: it loses what a liar loses.
                _burnSlash(job, id, PROVIDER, verifierRevealed ? liarSlash : timeoutSlash);
                _refund(job, id, State.Expired);
            } else {
                // The provider's result is public now: a new verifier could copy it, so a
                // panel checks it instead.
                _openPanel(job, id, true);
            }
        } else if (stage == State.PanelCommit) {
            for (uint256 slot = FIRST_REFEREE; slot < PARTIES; slot++) {
                Party storage referee = job.parties[slot];
                if (referee.who != address(0) && referee.commitment == bytes32(0)) {
                    _timeout(job, id, slot);
                    _release(job, slot);
                }
            }
            if (_refereeCount(job) == 0) {
                _refund(job, id, State.Expired);
            } else {
                _restartClock(job, State.PanelReveal);
                emit PanelRevealsOpen(id);
            }
        } else {
            // PanelReveal
            for (uint256 slot = FIRST_REFEREE; slot < PARTIES; slot++) {
                Party storage referee = job.parties[slot];
                if (referee.who != address(0) && !referee.revealed) {
                    _timeout(job, id, slot);
                    _release(job, slot);
                }
            }
            _decide(job, id);
        }
    }

    function jobOf(bytes32 id) external view returns (Job memory) {
        return jobs[id];
    }

    /// @notice Sends `amount` of burnt fees to Cairn.BURN; only the reward pool (see
    /// StorageMarket.burnFees).
    function burnFees(uint256 amount) external {
        if (msg.sender != Cairn.REWARD_POOL) revert NotRewardPool(msg.sender);
        emit FeesBurnt(amount);
        Cairn.pay(Cairn.BURN, amount);
    }

    // ---- stages ----

    function _drawVerifier(Job storage job, bytes32 id) internal {
        job.verifierDraws += 1;
        (address[] memory drawn,) = _draw(job, id, 1 + job.verifierDraws, 1);
        if (drawn.length == 0) {
            // Nobody left to check the provider: nobody is paid or slashed.
            _refund(job, id, State.Settled);
            return;
        }
        _join(job, VERIFIER, drawn[0]);
        _restartClock(job, State.Verifying);
        emit VerifierDrawn(id, drawn[0]);
    }

    /// Draws the panel; with nobody to draw, refunds the job if `refundIfNone`, and returns
    /// whether a panel sits.
    function _openPanel(Job storage job, bytes32 id, bool refundIfNone) internal returns (bool) {
        (address[] memory drawn,) = _draw(job, id, 10, PANEL_SIZE);
        if (drawn.length == 0) {
            if (refundIfNone) _refund(job, id, State.Settled);
            return false;
        }
        for (uint256 i = 0; i < drawn.length; i++) {
            _join(job, FIRST_REFEREE + i, drawn[i]);
        }
        _restartClock(job, State.PanelCommit);
        emit PanelDrawn(id, drawn);
        return true;
    }

    /// Settles a disputed job by the result most referees revealed (more than half of those
    /// that revealed): liars are slashed and their slashes shared by those that told the truth.
    function _decide(Job storage job, bytes32 id) internal {
        (bool found, Result memory majority) = _majority(job);
        if (!found) {
            _refund(job, id, State.Settled);
            return;
        }
        if (majority.outcome == INPUT_UNAVAILABLE) {
            // The panel could not get the data: it judges nobody. A challenged agreement
            // stands; a disagreement is refunded.
            if (job.parties[CHALLENGER].who != address(0)) {
                job.decided = job.parties[PROVIDER].result;
                _payProvider(job, id, job.parties[VERIFIER].who);
                _close(job, State.Settled);
            } else {
                _refund(job, id, State.Settled);
            }
            return;
        }
        job.decided = majority;
        uint256 pot;
        uint256 honest;
        for (uint256 slot = 0; slot < PARTIES; slot++) {
            Party storage party = job.parties[slot];
            if (party.who == address(0) || !party.revealed) continue;
            if (_same(party.result, majority)) {
                honest++;
            } else if (party.result.outcome != INPUT_UNAVAILABLE || slot > VERIFIER) {
                // "Input unavailable" from the provider or the verifier slashes nobody; a
                // referee that says it about a job the majority ran is wrong like any other.
                uint256 slashed = _slashLocked(job, slot, liarSlash);
                pot += slashed;
                emit LiarSlashed(id, party.who, slashed);
            }
        }
        Party storage provider = job.parties[PROVIDER];
        bool providerRight = provider.revealed && _same(provider.result, majority);
        if (providerRight && majority.outcome != INPUT_UNAVAILABLE) {
            Party storage verifier = job.parties[VERIFIER];
            bool verifierRight = verifier.revealed && _same(verifier.result, majority);
            _payProvider(job, id, verifierRight ? verifier.who : _firstHonestReferee(job, majority));
        }
        if (honest > 0) {
            uint256 each = pot / honest;
            for (uint256 slot = 0; slot < PARTIES; slot++) {
                Party storage party = job.parties[slot];
                if (party.who != address(0) && party.revealed && _same(party.result, majority)) {
                    claimable[party.who] += each;
                }
            }
            pot -= each * honest;
        }
        claimable[job.client] += pot + job.escrow;
        job.escrow = 0;
        _close(job, State.Settled);
    }

    /// Pays the provider for the decided result: `PROVIDER_SHARE_PERCENT` of P (its burnt share
    /// to the reward pool's records), the `CHECKER_SHARE_PERCENT` checking fee to `checker`,
    /// the rest of the escrow stays for the client.
    function _payProvider(Job storage job, bytes32 id, address checker) internal {
        job.providerPaid = job.decided.outcome != INPUT_UNAVAILABLE;
        if (!job.providerPaid) return;
        address provider = job.parties[PROVIDER].who;
        uint256 payment = uint256(job.decided.fuelUsed) * job.pricePerFuel;
        uint256 fee = payment * CHECKER_SHARE_PERCENT / 100;
        uint256 providerShare = payment * PROVIDER_SHARE_PERCENT / 100;
        RewardPool pool = RewardPool(payable(Cairn.REWARD_POOL));
        uint256 burnt = pool.burnShare(providerShare);
        claimable[provider] += providerShare - burnt;
        claimable[checker] += fee;
        job.escrow -= uint128(providerShare + fee);
        pool.recordComputeFee(provider, providerShare, burnt);
        emit JobSettled(id, provider, providerShare);
    }

    /// Ends the job with nobody paid: the client gets the escrow back.
    function _refund(Job storage job, bytes32 id, State end) internal {
        if (end == State.Settled) emit JobUnresolved(id);
        _close(job, end);
    }

    /// Ends the job: the client gets what is left of the escrow, every party its collateral.
    function _close(Job storage job, State end) internal {
        claimable[job.client] += job.escrow;
        job.escrow = 0;
        for (uint256 slot = 0; slot < PARTIES; slot++) {
            _release(job, slot);
        }
        job.state = end;
    }

    /// Slashes a silent party and burns it: paying anyone for another's silence would pay them
    /// to cause it (by crowding the party's transaction out of the blocks).
    function _timeout(Job storage job, bytes32 id, uint256 slot) internal {
        _burnSlash(job, id, slot, timeoutSlash);
    }

    function _burnSlash(Job storage job, bytes32 id, uint256 slot, uint256 amount) internal {
        uint256 slashed = _slashLocked(job, slot, amount);
        emit TimeoutSlashed(id, job.parties[slot].who, slashed);
        if (slashed > 0) Cairn.pay(Cairn.BURN, slashed);
    }

    function _restartClock(Job storage job, State next) internal {
        job.state = next;
        job.deadlineBlock = uint64(block.number) + stageTimeoutBlocks;
    }

    // ---- parties and collateral ----

    function _join(Job storage job, uint256 slot, address who) internal {
        Party storage party = job.parties[slot];
        party.who = who;
        party.commitment = bytes32(0);
        party.revealed = false;
        party.collateral = uint128(liarSlash);
        Staking(payable(Cairn.STAKING)).lock(who, liarSlash);
    }

    /// Releases a party's remaining collateral; its slot keeps the address for the record.
    function _release(Job storage job, uint256 slot) internal {
        Party storage party = job.parties[slot];
        if (party.collateral == 0) return;
        Staking(payable(Cairn.STAKING)).unlock(party.who, party.collateral);
        party.collateral = 0;
    }

    function _slashLocked(Job storage job, uint256 slot, uint256 amount) internal returns (uint256 slashed) {
        Party storage party = job.parties[slot];
        if (amount > party.collateral) amount = party.collateral;
        if (amount == 0) return 0;
        slashed = Staking(payable(Cairn.STAKING)).slashLocked(party.who, amount);
        party.collateral -= uint128(amount);
    }

    function _expect(Job storage job, address caller, uint256 slot) internal view returns (uint256) {
        if (job.parties[slot].who != caller) revert NotAParty(caller);
        return slot;
    }

    /// The slot of a referee still on the panel (collateral held).
    function _refereeSlot(Job storage job, address caller) internal view returns (uint256) {
        for (uint256 slot = FIRST_REFEREE; slot < PARTIES; slot++) {
            Party storage party = job.parties[slot];
            if (party.who == caller && party.collateral > 0) return slot;
        }
        revert NotAParty(caller);
    }

    /// Whether every referee still on the panel has committed (or revealed, if `revealed`).
    function _allReferees(Job storage job, bool revealed) internal view returns (bool) {
        for (uint256 slot = FIRST_REFEREE; slot < PARTIES; slot++) {
            Party storage party = job.parties[slot];
            if (party.who == address(0) || party.collateral == 0) continue;
            if (revealed ? !party.revealed : party.commitment == bytes32(0)) return false;
        }
        return true;
    }

    function _refereeCount(Job storage job) internal view returns (uint256 count) {
        for (uint256 slot = FIRST_REFEREE; slot < PARTIES; slot++) {
            if (job.parties[slot].collateral > 0) count++;
        }
    }

    /// The result more than half of the revealing referees revealed.
    function _majority(Job storage job) internal view returns (bool, Result memory) {
        uint256 revealed;
        for (uint256 slot = FIRST_REFEREE; slot < PARTIES; slot++) {
            if (job.parties[slot].revealed) revealed++;
        }
        for (uint256 slot = FIRST_REFEREE; slot < PARTIES; slot++) {
            Party storage candidate = job.parties[slot];
            if (!candidate.revealed) continue;
            uint256 votes;
            for (uint256 other = FIRST_REFEREE; other < PARTIES; other++) {
                Party storage voter = job.parties[other];
                if (voter.revealed && _same(voter.result, candidate.result)) votes++;
            }
            if (2 * votes > revealed) return (true, candidate.result);
        }
        Result memory none;
        return (false, none);
    }

    function _firstHonestReferee(Job storage job, Result memory majority) internal view returns (address) {
        for (uint256 slot = FIRST_REFEREE; slot < PARTIES; slot++) {
            Party storage party = job.parties[slot];
            if (party.revealed && _same(party.result, majority)) return party.who;
        }
        return job.client;
    }

    // ---- draws ----

    /// The draw weight of `p` for `job`: its seasoned bond if its advert takes the job and it
    /// has the free bond to lock, else 0. The client and the job's parties never weigh.
    function _weight(Job storage job, address p) internal view returns (uint256) {
        if (p == job.client) return 0;
        for (uint256 slot = 0; slot < PARTIES; slot++) {
            if (job.parties[slot].who == p) return 0;
        }
        Staking staking = Staking(payable(Cairn.STAKING));
        if (!staking.hasRoles(p, Cairn.ROLE_COMPUTE)) return 0;
        (uint32 memoryMiB, uint64 fuelPerSecond, uint128 ask) = ProviderRegistry(Cairn.REGISTRY).computeTermsOf(p);
        if (ask > job.pricePerFuel || memoryMiB < job.memoryMiB || runnableFuel(fuelPerSecond) < job.maxFuel) {
            return 0;
        }
        (uint256 weight, uint256 free) = staking.drawableBondOf(p);
        return free >= liarSlash ? weight : 0;
    }

    /// Up to `count` distinct providers drawn at random among those that take the job, weighted
    /// by seasoned bond, and how many take it. The seed mixes the block's randomness, the job
    /// and the draw's number, so each draw is independent. One pass over the providers reads
    /// every weight, however many are drawn.
    function _draw(Job storage job, bytes32 id, uint256 draw, uint256 count)
        internal
        view
        returns (address[] memory drawn, uint256 eligible)
    {
        address[] memory providers = ProviderRegistry(Cairn.REGISTRY).computeProviders();
        uint256[] memory weights = new uint256[](providers.length);
        uint256 total;
        for (uint256 i = 0; i < providers.length; i++) {
            weights[i] = _weight(job, providers[i]);
            if (weights[i] > 0) eligible++;
            total += weights[i];
        }
        if (count > eligible) count = eligible;
        drawn = new address[](count);
        for (uint256 k = 0; k < count; k++) {
            uint256 point = uint256(keccak256(abi.encode(block.prevrandao, id, draw + k))) % total;
            uint256 i = 0;
            while (point >= weights[i]) {
                point -= weights[i];
                i++;
            }
            drawn[k] = providers[i];
            // Drawn once: out of the next draws.
            total -= weights[i];
            weights[i] = 0;
        }
    }

    /// The most fuel any compute provider runs in half a stage and the lowest price any asks:
    /// what a refused job's error suggests.
    function _market() internal view returns (uint64 mostFuel, uint128 lowestAsk) {
        address[] memory providers = ProviderRegistry(Cairn.REGISTRY).computeProviders();
        lowestAsk = type(uint128).max;
        for (uint256 i = 0; i < providers.length; i++) {
            (, uint64 fuelPerSecond, uint128 ask) = ProviderRegistry(Cairn.REGISTRY).computeTermsOf(providers[i]);
            uint64 fuel = runnableFuel(fuelPerSecond);
            if (fuel > mostFuel) mostFuel = fuel;
            if (ask < lowestAsk) lowestAsk = ask;
        }
    }

    // ---- helpers ----

    function _live(bytes32 id) internal view returns (Job storage job) {
        job = jobs[id];
        State state = job.state;
        if (state == State.None) revert UnknownJob(id);
        if (state == State.Settled || state == State.Expired) revert WrongState(id, state);
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

    receive() external payable {
        if (msg.sender != Cairn.STAKING) revert NotStaking(msg.sender);
    }
}
