//! Printing results for people or, with `--json`, for programs.

use serde::Serialize;

/// Prints `value` as pretty JSON when `json` is set, else the human text.
pub fn print<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", human());
    }
    Ok(())
}

/// A JSON-RPC client for `url`.
pub fn client(url: &str) -> anyhow::Result<jsonrpsee::http_client::HttpClient> {
    use anyhow::Context as _;
    jsonrpsee::http_client::HttpClientBuilder::default()
        .build(url)
        .with_context(|| format!("invalid RPC URL '{url}'"))
}
