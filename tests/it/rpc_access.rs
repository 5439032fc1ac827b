//! The RPC as a stranger meets it: requests naming a foreign Host (DNS rebinding) or coming
//! from a web page's Origin are refused before any method runs, batches are bounded, and the
//! methods that change the node's data need the admin token from its data directory.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use cairn_node::Node;
use cairn_node::config::prepare_dev_datadir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Posts `body` to the node with these headers; the status code and the response body.
fn post(addr: SocketAddr, headers: &[(&str, &str)], body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    let mut request = format!(
        "POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn call(id: usize, method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_foreign_hosts_web_pages_big_batches_and_tokenless_admin_calls_are_refused()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let (config, _) = prepare_dev_datadir(dir.path(), loopback)?;
    let node = Node::launch(config).await?;
    let addr = node.rpc_addr();
    let host = addr.to_string();
    let status = call(1, "cairn_chainStatus", "[]");
    let post = move |headers: Vec<(&'static str, String)>, body: String| {
        tokio::task::spawn_blocking(move || {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            post(addr, &headers, &body)
        })
    };

    let (code, body) = post(vec![("Host", host.clone())], status.clone()).await??;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("chainId"), "{body}");

    // A name rebound to 127.0.0.1 by a web page's DNS: refused before any method runs.
    let rebound = format!("attacker.example:{}", addr.port());
    let (code, body) = post(vec![("Host", rebound)], status.clone()).await??;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("not allowed"), "{body}");

    // A web page the operator visits.
    let from_page = vec![
        ("Host", host.clone()),
        ("Origin", "https://attacker.example".to_string()),
    ];
    let (code, body) = post(from_page, status.clone()).await??;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("--rpc-allowed-origin"), "{body}");

    // A batch within the limit is answered whole; one past it is refused whole.
    let batch = |n: usize| {
        let calls: Vec<String> = (0..n)
            .map(|id| call(id, "cairn_chainStatus", "[]"))
            .collect();
        format!("[{}]", calls.join(","))
    };
    let limit = cairn_rpc::server::MAX_BATCH as usize;
    let (code, body) = post(vec![("Host", host.clone())], batch(limit)).await??;
    assert_eq!(code, 200);
    assert_eq!(body.matches("chainId").count(), limit);
    let (_, body) = post(vec![("Host", host.clone())], batch(limit + 1)).await??;
    assert_eq!(body.matches("chainId").count(), 0, "{body}");
    assert!(body.contains("error"), "{body}");

    // Changing the node's data takes the token from its data directory.
    let remove = call(
        2,
        "cairn_blobRemove",
        &format!("[\"0x{}\"]", "07".repeat(32)),
    );
    let (_, body) = post(vec![("Host", host.clone())], remove.clone()).await??;
    assert!(body.contains("admin token"), "{body}");
    let forged = vec![
        ("Host", host.clone()),
        ("Authorization", format!("Bearer {}", "0".repeat(64))),
    ];
    let (_, body) = post(forged, remove.clone()).await??;
    assert!(body.contains("admin token"), "{body}");
    let (_, body) = post(
        vec![("Host", host.clone())],
        call(3, "cairn_adminTokenFile", "[]"),
    )
    .await??;
    let file = dir.path().join("admin.token");
    assert!(body.contains(&*file.to_string_lossy()), "{body}");
    let token = std::fs::read_to_string(&file)?;
    let admin = vec![("Host", host), ("Authorization", format!("Bearer {token}"))];
    let (_, body) = post(admin, remove).await??;
    // Past the gate: a dev node has no chunk store, and says so.
    assert!(!body.contains("admin token"), "{body}");
    assert!(body.contains("networked node"), "{body}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)?.permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the token file is readable by its owner only"
        );
    }
    node.shutdown().await;
    Ok(())
}
