//! Where Cairn keeps its files on this machine by default.

use std::path::PathBuf;

/// `~/.cairn` (`.cairn` in the working directory when `HOME` is not set): the default home of
/// the keystore and the dev chain.
pub fn cairn_home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".cairn"),
        |home| PathBuf::from(home).join(".cairn"),
    )
}
