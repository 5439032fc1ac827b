// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Addresses and constants shared by Cairn's predeployed contracts.
/// @notice The predeploys sit at 0xca1e…01 to 0xca1e…05; Cairn's precompiles at 0x0c01 to
/// 0x0c03. The node calls `initialize`, `closeEpoch` and `recordActivity` functions from SYSTEM,
/// never a user.
library Cairn {
    address internal constant SYSTEM = address(uint160(type(uint160).max - 1));
    address internal constant STAKING = address(uint160((uint256(0xca1e) << 144) | 1));
    address internal constant REGISTRY = address(uint160((uint256(0xca1e) << 144) | 2));
    address internal constant STORAGE_MARKET = address(uint160((uint256(0xca1e) << 144) | 3));
    address internal constant COMPUTE_MARKET = address(uint160((uint256(0xca1e) << 144) | 4));
    address internal constant REWARD_POOL = address(uint160((uint256(0xca1e) << 144) | 5));

    /// Where the markets send the share of every payment they burn: no key controls it, so
    /// tokens sent here are out of circulation for good.
    address internal constant BURN = address(0x000000000000000000000000000000000000dEaD);

    /// blake3 chunk proof: root ‖ size ‖ index ‖ chunk ‖ path → 32-byte 1 (valid) or 0.
    address internal constant CHUNK_PROOF = address(0x0c01);
    /// ed25519: public key ‖ signature ‖ message → 32-byte 1 (valid) or 0.
    address internal constant ED25519_VERIFY = address(0x0c02);
    /// Equivocation evidence: domain ‖ epoch (8, big endian) ‖ key ‖ vote ‖ vote (105 bytes
    /// each) → 32-byte 1 if the key signed both votes and they conflict, else 0.
    address internal constant EQUIVOCATION = address(0x0c03);

    uint8 internal constant ROLE_VALIDATOR = 1;
    uint8 internal constant ROLE_STORAGE = 2;
    uint8 internal constant ROLE_COMPUTE = 4;

    error NotSystem(address caller);
    error AlreadyInitialized();
    error NotInitialized();
    error TransferFailed(address to, uint256 amount);

    function pay(address to, uint256 amount) internal {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}

/// @notice Epoch arithmetic every contract shares: epoch = block number / epoch length.
abstract contract Epochs {
    uint64 public epochLength;

    function currentEpoch() public view returns (uint64) {
        return uint64(block.number / epochLength);
    }

    modifier onlySystem() {
        if (msg.sender != Cairn.SYSTEM) revert Cairn.NotSystem(msg.sender);
        _;
    }

    function _initEpochs(uint64 length) internal {
        if (epochLength != 0) revert Cairn.AlreadyInitialized();
        epochLength = length;
    }
}

/// @notice Payments credited to an account and pulled with `claim`. No payout on a proof or
/// result path touches the paying contract's balance, and a recipient that refuses tokens
/// blocks nobody but itself.
abstract contract PullPayments {
    mapping(address => uint256) public claimable;

    event Claimed(address indexed account, uint256 amount);

    error NothingToClaim();

    function claim() external {
        uint256 amount = claimable[msg.sender];
        if (amount == 0) revert NothingToClaim();
        claimable[msg.sender] = 0;
        emit Claimed(msg.sender, amount);
        Cairn.pay(msg.sender, amount);
    }
}
