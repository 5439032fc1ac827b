//! Printing results for people or, with `--json`, for programs.

use std::io::Write as _;

use serde::Serialize;

/// Prints `value` as pretty JSON when `json` is set, else the human text. A closed stdout
/// (`cairn ... | head`) ends the output quietly instead of failing.
pub fn print<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let text = if json {
        serde_json::to_string_pretty(value)?
    } else {
        human()
    };
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// A JSON-RPC client for `url`.
pub fn client(url: &str) -> anyhow::Result<jsonrpsee::http_client::HttpClient> {
    use anyhow::Context as _;
    jsonrpsee::http_client::HttpClientBuilder::default()
        .build(url)
        .with_context(|| format!("invalid RPC URL '{url}'"))
}
