// SPDX-License-Identifier: Apache-2.0
pragma solidity >=0.8.20 <0.9.0;

/// @title CheckpointAnchor: public, write-once anchors of CivicVault ledger checkpoints.
/// @notice One anchor per (log origin, tree size): the RFC 9162 root of the log at
///         that size. An anchored size can never be overwritten, and sizes only grow,
///         so a rewritten history cannot be anchored over the one already public.
///         Only the account that deployed the contract (the vault's anchoring
///         account) may anchor: nobody else can claim a size of our log first.
///         The cost of one anchor does not depend on the size of the log.
contract CheckpointAnchor {
    struct Anchor {
        bytes32 root;
        uint64 blockNumber;
        uint64 timestamp;
    }

    /// The account allowed to anchor.
    address public immutable owner;

    /// keccak256(origin) => tree size => anchor.
    mapping(bytes32 => mapping(uint64 => Anchor)) private anchors;
    /// keccak256(origin) => the largest anchored tree size.
    mapping(bytes32 => uint64) private latestSizes;

    /// Emitted once per anchor; `origin` is the checkpoint's first line.
    event Anchored(bytes32 indexed originHash, uint64 indexed treeSize, bytes32 root, string origin);

    error NotOwner();
    error EmptyCheckpoint();
    error AlreadyAnchored(uint64 treeSize, bytes32 root);
    error SizeNotIncreasing(uint64 treeSize, uint64 latestSize);

    constructor() {
        owner = msg.sender;
    }

    /// Record `root` as the root of log `origin` at `treeSize` entries.
    function anchor(string calldata origin, uint64 treeSize, bytes32 root) external {
        if (msg.sender != owner) revert NotOwner();
        if (treeSize == 0 || root == bytes32(0)) revert EmptyCheckpoint();
        bytes32 originHash = keccak256(bytes(origin));
        Anchor storage slot = anchors[originHash][treeSize];
        if (slot.root != bytes32(0)) revert AlreadyAnchored(treeSize, slot.root);
        uint64 latestSize = latestSizes[originHash];
        if (treeSize <= latestSize) revert SizeNotIncreasing(treeSize, latestSize);
        slot.root = root;
        slot.blockNumber = uint64(block.number);
        slot.timestamp = uint64(block.timestamp);
        latestSizes[originHash] = treeSize;
        emit Anchored(originHash, treeSize, root, origin);
    }

    /// The anchor of `origin` at `treeSize`; all zero when there is none.
    function anchorOf(string calldata origin, uint64 treeSize)
        external
        view
        returns (bytes32 root, uint64 blockNumber, uint64 timestamp)
    {
        Anchor storage slot = anchors[keccak256(bytes(origin))][treeSize];
        return (slot.root, slot.blockNumber, slot.timestamp);
    }

    /// The largest anchored size of `origin` and its root; (0, 0) when none.
    function latest(string calldata origin) external view returns (uint64 treeSize, bytes32 root) {
        bytes32 originHash = keccak256(bytes(origin));
        treeSize = latestSizes[originHash];
        root = anchors[originHash][treeSize].root;
    }
}
