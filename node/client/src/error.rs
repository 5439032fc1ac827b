//! Errors of the client SDK.

use std::path::PathBuf;

/// Errors of the keystore.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// No key of that name.
    #[error("no key named '{name}' in {dir}; `cairn wallet list` shows the keys there")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The keystore directory.
        dir: PathBuf,
    },
    /// The name is taken.
    #[error("a key named '{0}' already exists; choose another --name")]
    Exists(String),
    /// The name has characters that do not belong in a file name.
    #[error("key names are 1 to 64 letters, digits, '-' or '_'; '{0}' is not")]
    BadName(String),
    /// Wrong password, or a damaged file.
    #[error("wrong password for key '{0}' (or the key file was altered)")]
    WrongPassword(String),
    /// The file is not a keystore file.
    #[error("{path} is not a valid key file: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}
