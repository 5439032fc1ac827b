//! The whole network restarted, again and again: four validator processes under a stream of
//! transfers are all killed (a random mix of SIGKILL and SIGTERM, at random moments, a few
//! hundred milliseconds apart) and restarted on the same data directories and ports. Every node
//! must end with the same block at every finalized height, a block once reported final stays
//! final, finality must resume after every restart, and no validator may sign two conflicting
//! votes (a restarted validator that nullified a view it had voted to finalize would, and could
//! fork the chain; docs/threat-model.md).
//!
//! The moments and signals come from a seed printed at the start; `CAIRN_RESTART_SEED=<seed>`
//! replays them (the timing of the processes themselves cannot be replayed). On a failure the
//! testnet directory, with each node's `node.log`, is kept and its path printed.

use crate::support;

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_primitives::{AccountKey, Address, B256, Bytes, Canonical, TxBody, U256};
use cairn_rpc::{BlockId, CairnApiClient};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use nix::sys::signal::Signal;
use support::{Process, TestResult, cairn, node_pid, signal};

const NODES: usize = 4;
/// Whole-network kills (`CAIRN_RESTART_ROUNDS` for a longer run).
const ROUNDS: usize = 6;
const BLOCK_TIME_MS: u64 = 100;
/// How far finality must move past everything final before a kill for the round to count.
const ADVANCE: u64 = 2;
/// How long the network may take to finalize again after a restart.
const RESUME_WITHIN: Duration = Duration::from_secs(40);
/// How long a killed node may take to exit (SIGTERM: a clean shutdown).
const EXIT_WITHIN: Duration = Duration::from_secs(20);
/// The restarted nodes' logging: consensus at info, so that a failure has something to read.
const NODE_LOG: &str = "warn,cairn_consensus=info,libp2p_gossipsub=error";
/// What a node logs when it sees one validator sign two conflicting votes in a view.
const EQUIVOCATION: &str = "a validator signed two conflicting votes";

type Error = Box<dyn std::error::Error>;

#[tokio::test(flavor = "multi_thread")]
async fn whole_network_restarts_never_fork_and_finality_resumes() -> TestResult {
    let seed = match std::env::var("CAIRN_RESTART_SEED") {
        Ok(text) => text.trim().parse()?,
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64,
    };
    let rounds = match std::env::var("CAIRN_RESTART_ROUNDS") {
        Ok(text) => text.trim().parse()?,
        Err(_) => ROUNDS,
    };
    eprintln!(
        "network_restart: seed {seed}, {rounds} rounds (replay with CAIRN_RESTART_SEED={seed})"
    );
    let tmp = tempfile::tempdir()?;
    let started = Instant::now();
    let result = restarts(tmp.path(), seed, rounds).await;
    eprintln!(
        "network_restart: seed {seed}: {} in {:.1} s",
        if result.is_ok() { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    if result.is_err() {
        // Every process is stopped by now (their guards were dropped with `restarts`).
        let dir = tmp.keep().join("testnet");
        for node in 1..=NODES {
            let log = dir.join(format!("node-{node}")).join("node.log");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<_> = text.lines().collect();
            eprintln!(
                "--- {} (last 40 of {} lines) ---",
                log.display(),
                lines.len()
            );
            for line in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{line}");
            }
        }
        eprintln!("network_restart: the testnet is kept in {}", dir.display());
    }
    result
}

async fn restarts(tmp: &Path, seed: u64, rounds: usize) -> TestResult {
    let mut rng = SplitMix64(seed);
    let (dir, testnet, _supervisor) =
        support::start_testnet(tmp, &["--block-time", &BLOCK_TIME_MS.to_string()], |_| {
            Ok(())
        })?;
    let clients = testnet
        .nodes
        .iter()
        .map(|node| {
            HttpClientBuilder::default()
                .request_timeout(Duration::from_secs(5))
                .build(&node.rpc_url)
        })
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(clients.len(), NODES);

    wait_finalized(&clients, ADVANCE + 1, Duration::from_secs(60), "at start").await?;
    // Started by the `cairn testnet start` supervisor; from the first restart on, by this test.
    let mut nodes = (1..=NODES)
        .map(|node| Ok(Node::Supervised(node_pid(&dir, node)?)))
        .collect::<Result<Vec<_>, Error>>()?;

    // A stream of transfers from the first funded account, to every node in turn, for the whole
    // test; while the nodes are down they fail, which is expected.
    let key = AccountKey::from_hex(
        &testnet
            .accounts
            .first()
            .ok_or("the testnet funds no account")?
            .private_key,
    )?;
    let sender = key.address();
    let stop = Arc::new(AtomicBool::new(false));
    let stream = tokio::spawn(transfers(
        clients.clone(),
        key,
        testnet.chain_id,
        Arc::clone(&stop),
    ));
    // Let some transfers land before the first kill.
    let included_before = eventually_nonce(&clients[0], sender, 1).await?;

    // Every block seen final (node, height, hash): it must still be there at the end.
    let mut seen_final: Vec<(usize, u64, B256)> = Vec::new();
    let mut resumed: Vec<String> = Vec::new();
    for round in 1..=rounds {
        // A random moment: up to a few blocks after finality moved.
        let delay = rng.below(5 * BLOCK_TIME_MS);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        for (index, node) in nodes.iter_mut().enumerate() {
            if node.gone() {
                return Err(format!(
                    "round {round}: node {} (pid {}) exited by itself before the kill",
                    index + 1,
                    node.pid()
                )
                .into());
            }
        }
        let before = final_blocks(&clients).await;
        seen_final.extend(
            before
                .iter()
                .enumerate()
                .filter_map(|(index, seen)| seen.map(|(height, hash)| (index + 1, height, hash))),
        );

        // Kill all four, in a random order, each with a random signal, 0-300 ms apart.
        let mut order: Vec<usize> = (0..NODES).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut kills = Vec::new();
        for (i, &index) in order.iter().enumerate() {
            let gap = if i == 0 { 0 } else { rng.below(301) };
            tokio::time::sleep(Duration::from_millis(gap)).await;
            let how = if rng.below(2) == 0 {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            };
            signal(nodes[index].pid(), how)?;
            kills.push(format!("+{gap} ms node {} {how:?}", index + 1));
        }
        let kill_started = Instant::now();
        loop {
            let alive: Vec<_> = (1..)
                .zip(nodes.iter_mut())
                .filter_map(|(number, node)| (!node.gone()).then_some(number))
                .collect();
            if alive.is_empty() {
                break;
            }
            if kill_started.elapsed() > EXIT_WITHIN {
                return Err(format!(
                    "round {round}: nodes {alive:?} still running {EXIT_WITHIN:?} after the kill \
                     ({})",
                    kills.join(", ")
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!(
            "network_restart: round {round}: killed {delay} ms after finality moved ({}); all \
             down {} ms after the last kill; final before {:?}",
            kills.join(", "),
            kill_started.elapsed().as_millis(),
            before.iter().map(|b| b.map(|(h, _)| h)).collect::<Vec<_>>(),
        );

        // Restart all four on the same data directories (and so the same ports and keys).
        for (index, node) in nodes.iter_mut().enumerate() {
            *node = Node::Own(restart(&dir, index + 1, round)?);
        }

        // What each node finalized before the kill, it still has; then finality moves on past
        // everything any node had finalized.
        let recovered = wait_answering(&clients, round).await?;
        for (index, (old, new)) in before.iter().zip(&recovered).enumerate() {
            if let Some((height, _)) = old
                && new < height
            {
                return Err(format!(
                    "round {round}: node {} reported height {height} final before the kill and \
                     {new} after the restart",
                    index + 1
                )
                .into());
            }
        }
        let highest = before
            .iter()
            .flatten()
            .map(|(height, _)| *height)
            .chain(recovered.iter().copied())
            .max()
            .unwrap_or(0);
        let target = highest + ADVANCE;
        eprintln!(
            "network_restart: round {round}: restarted; final after the restart {recovered:?}; \
             waiting for {target} on every node"
        );
        let waited = Instant::now();
        let reached = wait_finalized(
            &clients,
            target,
            RESUME_WITHIN,
            &format!("round {round}, after the restart"),
        )
        .await?;
        let line = format!(
            "round {round}: all reached {target} in {:.1} s ({reached:?})",
            waited.elapsed().as_secs_f64()
        );
        eprintln!("network_restart: {line}");
        resumed.push(line);
    }

    stop.store(true, Ordering::Relaxed);
    let (accepted, refused) = stream.await?;
    let included = clients[0].get_nonce(sender, Some(false)).await?;
    eprintln!(
        "network_restart: transfers: {accepted} accepted, {refused} refused, {included} final \
         on node 1 ({included_before} before the first kill)"
    );
    // Finality resumed after every one of the restarts (each round returned early otherwise).
    assert_eq!(resumed.len(), rounds);
    if included <= included_before {
        return Err(format!(
            "no transfer was included after the first restart: the account's nonce stayed at \
             {included_before}"
        )
        .into());
    }

    // Every node has the same block at every height that all of them have finalized.
    let mut lowest = u64::MAX;
    for (index, client) in clients.iter().enumerate() {
        let status = client
            .chain_status()
            .await
            .map_err(|e| format!("node {} does not answer at the end: {e}", index + 1))?;
        lowest = lowest.min(status.finalized_height);
    }
    for height in 1..=lowest {
        let mut hashes = Vec::new();
        for client in &clients {
            let block = client
                .get_block_by_number(BlockId::Number(height))
                .await?
                .ok_or_else(|| format!("a node has no block at finalized height {height}"))?;
            hashes.push(block.hash);
        }
        if hashes.iter().any(|hash| *hash != hashes[0]) {
            let listed: Vec<_> = (1..)
                .zip(&hashes)
                .map(|(node, hash)| format!("node {node}: {hash}"))
                .collect();
            return Err(format!(
                "FORK at finalized height {height}: {} (seed {seed})",
                listed.join(", ")
            )
            .into());
        }
    }
    // What was final before a kill is what is final now.
    for (node, height, hash) in &seen_final {
        let now = clients[0]
            .get_block_by_number(BlockId::Number(*height))
            .await?
            .ok_or_else(|| format!("no block at height {height}, final on node {node} before"))?
            .hash;
        if now != *hash {
            return Err(format!(
                "height {height} was final on node {node} with {hash} before a kill, and is \
                 {now} at the end (seed {seed})"
            )
            .into());
        }
    }
    // No validator signed two conflicting votes (finalize and nullify in one view among them).
    for node in 1..=NODES {
        let log = std::fs::read_to_string(dir.join(format!("node-{node}")).join("node.log"))?;
        let seen: Vec<_> = log.lines().filter(|l| l.contains(EQUIVOCATION)).collect();
        if !seen.is_empty() {
            return Err(format!(
                "node {node} saw a validator equivocate (seed {seed}):\n{}",
                seen.join("\n")
            )
            .into());
        }
    }
    eprintln!(
        "network_restart: {rounds} whole-network restarts; {lowest} finalized heights agree on \
         all {NODES} nodes"
    );
    Ok(())
}

/// One validator process: started by the `cairn testnet start` supervisor (known by its pid),
/// or restarted by this test (its guard stops it when the test ends).
enum Node {
    Supervised(i32),
    Own(Process),
}

impl Node {
    fn pid(&self) -> i32 {
        match self {
            Node::Supervised(pid) => *pid,
            Node::Own(process) => process.0.id() as i32,
        }
    }

    /// Whether the process has exited (a supervised one may stay a zombie until the supervisor
    /// reaps it, within a second).
    fn gone(&mut self) -> bool {
        match self {
            Node::Own(process) => !matches!(process.0.try_wait(), Ok(None)),
            Node::Supervised(pid) => {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), None).is_err()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .is_ok_and(|stat| stat.contains(") Z "))
            }
        }
    }
}

/// Starts node `node` again, as `cairn testnet start` does: `cairn node run` on its data
/// directory, appending to its `node.log`.
fn restart(dir: &Path, node: usize, round: usize) -> Result<Process, Error> {
    let datadir = dir.join(format!("node-{node}"));
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(datadir.join("node.log"))?;
    writeln!(
        log,
        "=== network_restart: started again after kill {round} ==="
    )?;
    let process = Process(
        cairn()
            .args(["node", "run", "--datadir"])
            .arg(&datadir)
            .env("RUST_LOG", NODE_LOG)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    );
    std::fs::write(datadir.join("node.pid"), process.0.id().to_string())?;
    Ok(process)
}

/// Each node's finalized height and the hash of its block there (`None`: no answer).
async fn final_blocks(clients: &[HttpClient]) -> Vec<Option<(u64, B256)>> {
    let mut out = Vec::new();
    for client in clients {
        let seen = async {
            let height = client.chain_status().await.ok()?.finalized_height;
            let block = client
                .get_block_by_number(BlockId::Number(height))
                .await
                .ok()??;
            Some((height, block.hash))
        };
        out.push(seen.await);
    }
    out
}

/// "node 1: final 12, head 13, view 20; node 2: no answer; ..."
async fn describe(clients: &[HttpClient]) -> String {
    let mut parts = Vec::new();
    for (node, client) in (1..).zip(clients) {
        parts.push(match client.chain_status().await {
            Ok(s) => format!(
                "node {node}: final {}, head {}, view {}, peers {}",
                s.finalized_height, s.height, s.view, s.peers
            ),
            Err(e) => format!("node {node}: no answer ({e})"),
        });
    }
    parts.join("; ")
}

/// Waits until every node's finalized height is at least `target`; returns the heights.
async fn wait_finalized(
    clients: &[HttpClient],
    target: u64,
    within: Duration,
    when: &str,
) -> Result<Vec<u64>, Error> {
    let deadline = Instant::now() + within;
    loop {
        let mut heights = Vec::new();
        for client in clients {
            if let Ok(status) = client.chain_status().await {
                heights.push(status.finalized_height);
            }
        }
        if heights.len() == clients.len() && heights.iter().all(|h| *h >= target) {
            return Ok(heights);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{when}: finality did not reach height {target} on every node within \
                 {within:?}; last seen: {}",
                describe(clients).await
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every restarted node answers; returns their finalized heights then.
async fn wait_answering(clients: &[HttpClient], round: usize) -> Result<Vec<u64>, Error> {
    let deadline = Instant::now() + RESUME_WITHIN;
    let mut heights = vec![None; clients.len()];
    loop {
        for (height, client) in heights.iter_mut().zip(clients) {
            if height.is_none() {
                *height = client.chain_status().await.ok().map(|s| s.finalized_height);
            }
        }
        if heights.iter().all(Option::is_some) {
            return Ok(heights.into_iter().flatten().collect());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "round {round}: the restarted nodes did not all answer within {RESUME_WITHIN:?}: \
                 {}",
                describe(clients).await
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `sender`'s final nonce on `client` is at least `nonce`; returns it.
async fn eventually_nonce(client: &HttpClient, sender: Address, nonce: u64) -> Result<u64, Error> {
    support::eventually(Duration::from_secs(30), || async {
        let now = client.get_nonce(sender, Some(false)).await.ok()?;
        (now >= nonce).then_some(now)
    })
    .await
    .map_err(|e| format!("no transfer was included before the first kill: {e}").into())
}

/// Sends transfers from `key` to the nodes in turn until `stop`; each takes its nonce from the
/// node's pending count, so transfers lost with a node's mempool are simply replaced. Returns
/// how many were accepted and how many failed.
async fn transfers(
    clients: Vec<HttpClient>,
    key: AccountKey,
    chain_id: u64,
    stop: Arc<AtomicBool>,
) -> (u64, u64) {
    let sender = key.address();
    let (mut accepted, mut refused) = (0u64, 0u64);
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let client = &clients[(sent % clients.len() as u64) as usize];
        sent += 1;
        let result = async {
            let nonce = client.get_nonce(sender, Some(true)).await.ok()?;
            let base_fee = client.chain_status().await.ok()?.base_fee_per_gas;
            let tx = TxBody {
                chain_id,
                nonce,
                gas_limit: 21_000,
                max_fee_per_gas: u128::from(base_fee) * 2,
                max_priority_fee_per_gas: 0,
                to: Some(Address::repeat_byte((sent % 200) as u8 + 1)),
                value: U256::from(sent),
                input: Bytes::new(),
            }
            .sign(&key);
            client.send_raw_transaction(tx.encode().into()).await.ok()
        };
        match result.await {
            Some(_) => accepted += 1,
            None => refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    (accepted, refused)
}

/// A small seeded generator (SplitMix64): the same seed, the same moments and signals.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
