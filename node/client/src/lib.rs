//! # cairn-client
//!
//! What a wallet, the `cairn` binary or a test needs to act on a Cairn node from outside: the
//! encrypted [`keystore::Keystore`] of account keys, and the client flows built on the node's
//! JSON-RPC API ([`cairn_rpc::CairnApiClient`]): signing and sending transactions and waiting
//! for their receipts ([`tx`]), balances and accounts ([`wallet`]), chain queries ([`chain`]),
//! staking, provider adverts and rewards ([`contracts`]), storing and fetching data
//! ([`storage`]) and compute jobs ([`compute`]).
//!
//! The flows print nothing and ask nothing: they take a [`Client`], an unlocked key and typed
//! requests, return typed reports (each `Serialize` for JSON and `Display` for people) or a
//! [`ClientError`] whose message says what to do, and report progress through a
//! [`storage::Progress`] the caller implements. Every wait is bounded by a timeout.
//!
//! ## How data flows through it
//! ```text
//!  password ─► Keystore::unlock ─► AccountKey ─┐
//!                                              ▼
//!  request ─► flow (tx, contracts, storage, compute) ─► Call ─► tx::submit: balance, nonce,
//!             │                                                 gas estimate, sign ─► node
//!             │  pieces of files (checked by root) ◄──────────► node (upload / fetch)
//!             ▼
//!  report (Serialize + Display) ◄── receipts, events, contract views ◄── Client (JSON-RPC)
//!  progress ─► dyn storage::Progress                     errors ─► ClientError
//! ```
//! Keys are stored as scrypt (log2 N = 17, r = 8, p = 1) then XChaCha20-Poly1305 with the
//! address as associated data, in `<dir>/<name>.json`.
//!
//! ## Example
//! Keys, offline:
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
//! Sending 1.5 CRN and storing a file, against a running node (`cairn dev`):
//! ```no_run
//! use cairn_client::storage::{PutRequest, put};
//! use cairn_client::tx::{Call, TxOptions, submit};
//! use cairn_client::{Client, wallet};
//! use cairn_primitives::{AccountKey, Address, units::parse_crn};
//!
//! # async fn example(key: AccountKey) -> Result<(), cairn_client::ClientError> {
//! let client = Client::new("http://127.0.0.1:8545")?;
//! let to = Address::repeat_byte(0xb0);
//! let sent = submit(&client, &key, Call::transfer(to, parse_crn("1.5")?), &TxOptions::waiting()).await?;
//! println!("{sent}");
//! println!("{}", wallet::balance(&client, to).await?);
//! let request = PutRequest {
//!     file: "photo.jpg".into(),
//!     replicas: 1,
//!     epochs: 10,
//!     max_price: None,
//!     accept_timeout_s: 300,
//!     from: "alice".into(),
//! };
//! let stored = put(&client, &key, &request, &mut ()).await?;
//! println!("{}", serde_json::to_string_pretty(&stored).unwrap_or_default());
//! # Ok(())
//! # }
//! ```

pub mod chain;
pub mod compute;
pub mod contracts;
pub mod error;
pub mod keystore;
pub mod rpc;
pub mod storage;
pub mod tx;
pub mod units;
pub mod wallet;

pub use error::{ClientError, KeystoreError};
pub use rpc::Client;
