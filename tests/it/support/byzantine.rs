//! `cairn-byzantine`: a Cairn node whose providers cheat, for the integration tests only.
//!
//! It runs like `cairn node run --datadir DIR` (from the data directory's `node.json`), with
//! a Byzantine [`Conduct`] chosen by flag:
//! - `--corrupt-served-pieces`: flips a byte in every piece it serves (its stored copy, and so
//!   its proofs, stay sound);
//! - `--lie-about-results`: returns a wrong output (a wrong first digit: a wrong class, a
//!   wrong count) for every job it runs.
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

/// Returns a wrong answer: the first digit of the output one higher (the word count off by a
/// power of ten, the first image's class wrong), or "a lie" appended to an output that does not
/// start with one. The verifier's re-execution must catch it.
#[derive(Debug)]
struct LieAboutResults;

impl Conduct for LieAboutResults {
    fn output(&self, mut output: Vec<u8>) -> Vec<u8> {
        match output.first_mut() {
            Some(digit) if digit.is_ascii_digit() => *digit = b'0' + (*digit - b'0' + 1) % 10,
            _ => output.extend_from_slice(b"a lie"),
        }
        output
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
