//! `cairn-byzantine`: a Cairn node whose providers cheat, for the integration tests only.
//!
//! It runs like `cairn node run --datadir DIR` (from the data directory's `node.json`), with
//! a Byzantine [`Conduct`] chosen by flag:
//! - `--corrupt-served-pieces`: flips a byte in every piece it serves (its stored copy, and so
//!   its proofs, stay sound);
//! - `--lie-about-results`: posts a wrong output root for every job it runs.
//!
//! The shipped `cairn` binary has no such switch. This one is a binary of the `cairn-cli`
//! package only so that the tests can start it as a process (`CARGO_BIN_EXE_cairn-byzantine`)
//! and kill and restart it like any node.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use cairn_node::Node;
use cairn_node::testnet::{NodeFile, RunOptions};
use cairn_providers::Conduct;
use cairn_storage::PieceProof;
use tokio::signal::unix::{SignalKind, signal};

/// Serves every piece with its first byte flipped: the receiver's check against the root
/// must catch it.
#[derive(Debug)]
struct CorruptPieces;

impl Conduct for CorruptPieces {
    fn serve_piece(&self, mut piece: PieceProof) -> PieceProof {
        if let Some(byte) = piece.data.first_mut() {
            *byte ^= 0xff;
        }
        piece
    }
}

/// Posts a root that is not the output's: the verifier's re-execution must catch it.
#[derive(Debug)]
struct LieAboutResults;

impl Conduct for LieAboutResults {
    fn output_root(&self, root: [u8; 32]) -> [u8; 32] {
        *blake3::hash(&[&root[..], b"a lie"].concat()).as_bytes()
    }
}

const USAGE: &str =
    "usage: cairn-byzantine --datadir DIR (--corrupt-served-pieces | --lie-about-results)";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut args = std::env::args().skip(1);
    let (mut datadir, mut conduct) = (None, None::<Arc<dyn Conduct>>);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--datadir" => datadir = args.next().map(PathBuf::from),
            "--corrupt-served-pieces" => conduct = Some(Arc::new(CorruptPieces)),
            "--lie-about-results" => conduct = Some(Arc::new(LieAboutResults)),
            other => anyhow::bail!("unknown argument {other}; {USAGE}"),
        }
    }
    let (datadir, conduct) = datadir.zip(conduct).context(USAGE)?;
    let options = RunOptions {
        node_file: NodeFile::load(&datadir)?,
        rpc_addr: Ipv4Addr::LOCALHOST.into(),
        rpc_port: None,
        bootnodes: Vec::new(),
        p2p_listen: Vec::new(),
        mdns: false,
    };
    let mut config = options.node_config(&datadir)?;
    config
        .network
        .as_mut()
        .context("a Byzantine provider needs a network: the data directory has no node.json")?
        .conduct = conduct;
    let node = Node::launch(config).await?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    node.shutdown().await;
    Ok(())
}
