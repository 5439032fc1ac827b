//! Running real `cairn` processes for the integration tests.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod chain;

use cairn_node::datadir::DevAccount;
use cairn_primitives::{Address, U256};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The `cairn` binary built for these tests.
pub fn cairn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
}

/// Runs a client command against `node`, with the keystore and password file in `dir`.
pub fn run(node: &DevNode, dir: &Path, args: &[&str]) -> Output {
    run_at(&node.url, dir, args)
}

/// Runs a client command against the node at `url`, with the keystore and password file in
/// `dir`.
pub fn run_at(url: &str, dir: &Path, args: &[&str]) -> Output {
    let output = cairn()
        .args(args)
        .arg("--rpc")
        .arg(url)
        .arg("--keystore")
        .arg(dir.join("keystore"))
        .arg("--password-file")
        .arg(dir.join("password"))
        .env("RUST_LOG", "warn")
        .output();
    output.unwrap_or_else(|e| panic!("cannot run cairn: {e}"))
}

/// The JSON a successful command printed.
pub fn ok_json(output: Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The error a failed command printed.
pub fn failure(output: Output) -> String {
    assert!(
        !output.status.success(),
        "should have failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A `cairn dev` process on an ephemeral loopback port.
pub struct DevNode {
    child: Child,
    pub url: String,
    pub datadir: PathBuf,
}

impl DevNode {
    /// Starts `cairn dev` on `datadir` and waits for its RPC URL.
    pub fn start(datadir: &Path, block_time_ms: u64) -> Result<Self, Box<dyn std::error::Error>> {
        let mut child = cairn()
            .args([
                "dev",
                "--rpc-port",
                "0",
                "--block-time",
                &block_time_ms.to_string(),
                "--datadir",
            ])
            .arg(datadir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .ok_or("cairn dev exited before printing its RPC URL")??;
            if let Some(url) = line.trim().strip_prefix("RPC") {
                break url.trim().to_string();
            }
        };
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            child,
            url,
            datadir: datadir.to_path_buf(),
        })
    }

    pub fn client(&self) -> Result<HttpClient, Box<dyn std::error::Error>> {
        Ok(HttpClientBuilder::default().build(&self.url)?)
    }

    pub fn accounts(&self) -> Result<Vec<DevAccount>, Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(self.datadir.join("dev-accounts.json"))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> Result<(), Box<dyn std::error::Error>> {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("cairn dev exited with {status}").into())
                };
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return Err("cairn dev did not stop within 20 s of SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A dev node in this process with `block_time_ms` blocks, and a client of its RPC. The node
/// stops when dropped; the directory goes with the returned guard.
pub async fn in_process_dev_node(
    block_time_ms: u64,
) -> Result<(tempfile::TempDir, cairn_node::Node, HttpClient), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let loopback: std::net::SocketAddr = "127.0.0.1:0".parse()?;
    let (mut config, _) = cairn_node::config::prepare_dev_datadir(dir.path(), loopback)?;
    config.block_time = Some(Duration::from_millis(block_time_ms));
    let node = cairn_node::Node::launch(config).await?;
    let client = HttpClientBuilder::default().build(format!("http://{}", node.rpc_addr()))?;
    Ok((dir, node, client))
}

/// Polls `check` until it returns `Some`, for at most `timeout`.
pub async fn eventually<T, F, Fut>(
    timeout: Duration,
    mut check: F,
) -> Result<T, Box<dyn std::error::Error>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(format!("condition not met within {timeout:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops a process when dropped, so a test (failed or not) leaves nothing running: SIGTERM
/// first, so that a `cairn testnet start` supervisor stops the nodes it started, then SIGKILL.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        // A process already reaped has given up its pid, which another may now have.
        if matches!(self.0.try_wait(), Ok(None))
            && let Ok(pid) = i32::try_from(self.0.id())
        {
            let _ = signal(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while matches!(self.0.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn signal(pid: i32, signal: nix::sys::signal::Signal) -> TestResult {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)?;
    Ok(())
}

/// Writes a testnet of four validators with `cairn testnet init` and the extra `init_args`,
/// lets `adjust` edit its directory (a node's `node.json`, say), then starts it with
/// `cairn testnet start` (the returned process is the supervisor).
pub fn start_testnet(
    tmp: &Path,
    init_args: &[&str],
    adjust: impl FnOnce(&Path) -> TestResult,
) -> Result<(PathBuf, cairn_node::testnet::Testnet, Process), Box<dyn std::error::Error>> {
    start_testnet_except(tmp, init_args, adjust, None)
}

/// As [`start_testnet`], but node `node` (as in `node-N`) runs `cairn-byzantine` with `cheat`
/// (its flag: how its providers cheat) instead of `cairn node run`. The second process returned
/// is the Byzantine node; its pid is in its data directory's `node.pid`, as the others'.
pub fn start_testnet_with_byzantine(
    tmp: &Path,
    init_args: &[&str],
    adjust: impl FnOnce(&Path) -> TestResult,
    node: usize,
    cheat: &str,
) -> Result<(PathBuf, cairn_node::testnet::Testnet, Process, Process), Box<dyn std::error::Error>> {
    let (dir, testnet, supervisor) = start_testnet_except(tmp, init_args, adjust, Some(node))?;
    let datadir = dir.join(format!("node-{node}"));
    let log = std::fs::File::create(datadir.join("node.log"))?;
    let byzantine = Process(
        Command::new(env!("CARGO_BIN_EXE_cairn-byzantine"))
            .arg("--datadir")
            .arg(&datadir)
            .arg(cheat)
            .env("RUST_LOG", "warn,libp2p_gossipsub=error")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    );
    std::fs::write(datadir.join("node.pid"), byzantine.0.id().to_string())?;
    Ok((dir, testnet, supervisor, byzantine))
}

fn start_testnet_except(
    tmp: &Path,
    init_args: &[&str],
    adjust: impl FnOnce(&Path) -> TestResult,
    except: Option<usize>,
) -> Result<(PathBuf, cairn_node::testnet::Testnet, Process), Box<dyn std::error::Error>> {
    let dir = tmp.join("testnet");
    let init = cairn()
        .args(["testnet", "init", "--nodes", "4"])
        .args(init_args)
        .arg("--dir")
        .arg(&dir)
        .output()?;
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    adjust(&dir)?;
    let testnet = cairn_node::testnet::Testnet::load(&dir)?;
    let mut start = cairn();
    start.args(["testnet", "start", "--dir"]).arg(&dir);
    if let Some(node) = except {
        start.args(["--except", &node.to_string()]);
    }
    let supervisor = Process(
        start
            .env("RUST_LOG", "warn,libp2p_gossipsub=error")
            .stdout(Stdio::null())
            .spawn()?,
    );
    Ok((dir, testnet, supervisor))
}

/// Imports the testnet's first funded account as the key `client` into the keystore in `work`
/// (password file included), through the node at `url`; returns its address.
pub fn import_client(
    testnet: &cairn_node::testnet::Testnet,
    url: &str,
    work: &Path,
) -> Result<cairn_primitives::Address, Box<dyn std::error::Error>> {
    std::fs::write(work.join("password"), "pw")?;
    let secret = testnet
        .accounts
        .first()
        .ok_or("the testnet funds no account")?
        .private_key
        .trim_start_matches("0x")
        .to_string();
    let key_file = work.join("client.key");
    std::fs::write(&key_file, &secret)?;
    let key_file = key_file.to_str().ok_or("path")?;
    ok_json(run_at(
        url,
        work,
        &[
            "wallet",
            "import",
            "--name",
            "client",
            "--private-key-file",
            key_file,
            "--json",
        ],
    ));
    Ok(cairn_primitives::AccountKey::from_hex(&secret)?.address())
}

/// A read-only contract call through the node's RPC, decoded.
pub async fn view<C: alloy_sol_types::SolCall>(
    client: &HttpClient,
    to: cairn_primitives::Address,
    call: C,
) -> Result<C::Return, Box<dyn std::error::Error>> {
    use cairn_rpc::CairnApiClient;
    let result = client
        .call(cairn_chain::chain::CallRequest {
            to: Some(to),
            input: Some(call.abi_encode().into()),
            ..Default::default()
        })
        .await?;
    Ok(C::abi_decode_returns(&result.output)?)
}

/// The process id of node `node` (1-based) of a testnet started by `cairn testnet start`.
pub fn node_pid(dir: &Path, node: usize) -> Result<i32, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(dir.join(format!("node-{node}")).join("node.pid"))?;
    Ok(text.trim().parse()?)
}

/// A contract that logs the word 42 under `topic` whenever it is called: its runtime code and
/// the init code that deploys it.
pub fn logging_contract(topic: alloy_primitives::B256) -> (Vec<u8>, Vec<u8>) {
    // PUSH1 42, PUSH1 0, MSTORE, PUSH32 topic, PUSH1 32, PUSH1 0, LOG1, STOP.
    let runtime = [
        &[0x60, 0x2a, 0x60, 0x00, 0x52, 0x7f][..],
        topic.as_slice(),
        &[0x60, 0x20, 0x60, 0x00, 0xa1, 0x00],
    ]
    .concat();
    // CODECOPY the runtime (after these 12 bytes) to memory 0 and RETURN it.
    let init = [
        &[0x60, runtime.len() as u8, 0x60, 0x0c, 0x60, 0x00, 0x39][..],
        &[0x60, runtime.len() as u8, 0x60, 0x00, 0xf3],
        &runtime,
    ]
    .concat();
    (runtime, init)
}

/// A transfer of `value` wei to `to` on the dev chain, at twice the base fee and a tip of 1 wei.
pub fn dev_transfer(nonce: u64, to: Address, value: u64) -> cairn_primitives::TxBody {
    let genesis = cairn_chain::genesis::Genesis::dev();
    cairn_primitives::TxBody {
        chain_id: genesis.chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 2 * u128::from(genesis.base_fee_per_gas),
        max_priority_fee_per_gas: 1,
        to: Some(to),
        value: U256::from(value),
        input: Default::default(),
    }
}

/// An HTTP GET of `url` (`http://host:port/path`) naming `host` (the URL's own if `None`):
/// the status code and the body. Enough HTTP for the node's metrics listener.
pub fn http_get(
    url: &str,
    host: Option<&str>,
) -> Result<(u16, String), Box<dyn std::error::Error>> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or("an http:// URL")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = std::net::TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let host = host.unwrap_or(authority);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8(response)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no HTTP header")?;
    let status = head.split_whitespace().nth(1).ok_or("no status")?.parse()?;
    Ok((status, body.to_string()))
}

/// The value of the sample `name` (with its labels, as written: `cairn_peers` or
/// `cairn_rpc_requests_total{method="eth_chainId"}`) in Prometheus text, if present.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Runs `promtool` with `args` in `dir`, `input` on its standard input; its complaint, if any.
pub fn promtool(args: &[&str], dir: &Path, input: &str) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run promtool: {e} (scripts/test fetches it)"))?;
    child
        .stdin
        .take()
        .ok_or("promtool's stdin")?
        .write_all(input.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(format!(
            "promtool {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}

/// Runs `promtool check metrics` over `text`; its complaint, if any.
pub fn promtool_check_metrics(text: &str) -> Result<(), Box<dyn std::error::Error>> {
    promtool(&["check", "metrics"], Path::new("."), text)
}

/// Loads `url` in headless Chromium (Debian's `chromium`, installed by scripts/test), lets its
/// scripts run, and returns the page's DOM as they left it; a screenshot of the page is kept as
/// `name`.png in the artifacts directory (`CAIRN_ARTIFACTS`, else `$CARGO_TARGET_DIR/artifacts`
/// or `target/artifacts`), whose path is printed.
pub fn browse(url: &str, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let artifacts = std::env::var_os("CAIRN_ARTIFACTS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|t| PathBuf::from(t).join("artifacts"))
        })
        .unwrap_or_else(|| PathBuf::from("target/artifacts"));
    std::fs::create_dir_all(&artifacts)?;
    let profile = tempfile::tempdir()?;
    let chromium = |extra: &[String]| -> Result<Output, Box<dyn std::error::Error>> {
        let output = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                // Virtual time: the page's first fetch and render are done before the dump.
                "--virtual-time-budget=8000",
                "--window-size=1280,1400",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .output()
            .map_err(|e| format!("cannot run chromium: {e} (scripts/test installs it)"))?;
        if !output.status.success() {
            return Err(format!(
                "chromium failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(output)
    };
    let screenshot = artifacts.join(format!("{name}.png"));
    chromium(&[format!("--screenshot={}", screenshot.display())])?;
    println!("screenshot of {url}: {}", screenshot.display());
    let dom = chromium(&["--dump-dom".to_string()])?;
    Ok(String::from_utf8(dom.stdout)?)
}

/// The `cairn_` metric names a file in `deploy/` queries (a Grafana dashboard, alert rules).
pub fn deployed_metric_names(file: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file);
    let text = std::fs::read_to_string(&path)?;
    let mut names: Vec<String> = text
        .match_indices("cairn_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Whether Prometheus text `text` has samples or a family named `name`.
pub fn serves_metric(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        matches!(before, None | Some(' ' | '\n')) && matches!(after, Some(' ' | '{'))
    })
}
