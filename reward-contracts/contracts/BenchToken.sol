// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title BenchToken: a minimal ERC-20 for the execution benchmark and the parallel-EVM tests.
/// @notice Not a predeploy and not for value: anyone can mint. `bump` increments one shared
/// slot, the worst case for a parallel executor.
contract BenchToken {
    mapping(address => uint256) public balanceOf;
    uint256 public counter;

    event Transfer(address indexed from, address indexed to, uint256 value);

    error InsufficientBalance(uint256 balance, uint256 needed);

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        uint256 balance = balanceOf[msg.sender];
        if (balance < amount) revert InsufficientBalance(balance, amount);
        unchecked {
            balanceOf[msg.sender] = balance - amount;
        }
        balanceOf[to] += amount;
        emit Transfer(msg.sender, to, amount);
        return true;
    }

    function bump() external returns (uint256) {
        return ++counter;
    }
}
