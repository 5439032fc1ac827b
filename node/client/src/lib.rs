//! # cairn-client
//!
//! What a wallet or a test needs to act on a Cairn node from outside: the encrypted
//! [`keystore::Keystore`] of account keys. The typed JSON-RPC client comes from `cairn-rpc`
//! (`CairnApiClient`); the client flows (submit and wait, storage put/get, compute
//! submit/result, contract calls) are moving here from the `cairn` binary.
//!
//! ## How data flows through it
//! ```text
//!  password ─► scrypt (log2 N = 17, r = 8, p = 1) ─► XChaCha20-Poly1305 (address as AAD)
//!        ─► <dir>/<name>.json       and back: unlock(name, password) ─► AccountKey
//! ```
//!
//! ## Example
//! ```
//! use cairn_client::keystore::Keystore;
//! use cairn_primitives::AccountKey;
//!
//! let dir = tempfile::tempdir()?;
//! let keystore = Keystore::new(dir.path());
//! let key = AccountKey::from_bytes(&[9; 32]);
//! keystore.add("alice", &key, "correct horse")?;
//! assert_eq!(keystore.unlock("alice", "correct horse")?.address(), key.address());
//! assert!(keystore.unlock("alice", "wrong").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod error;
pub mod keystore;

pub use error::KeystoreError;
