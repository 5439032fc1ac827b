//! The options every command understands.

use std::path::PathBuf;

/// Options every command understands.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// JSON-RPC URL of the node that client commands talk to.
    #[arg(
        long,
        global = true,
        env = "CAIRN_RPC",
        default_value = "http://127.0.0.1:8545"
    )]
    pub rpc: String,
    /// Directory of encrypted keys [default: ~/.cairn/keystore].
    #[arg(long, global = true, env = "CAIRN_KEYSTORE")]
    pub keystore: Option<PathBuf>,
    /// Read the keystore password from this file instead of asking (for scripts).
    #[arg(long, global = true)]
    pub password_file: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    /// A client of the node at `--rpc`.
    pub fn client(&self) -> anyhow::Result<cairn_client::Client> {
        Ok(cairn_client::Client::new(&self.rpc)?)
    }
}
