//! The wall clock, in the one unit Cairn uses for it.

/// Milliseconds since the Unix epoch by this machine's clock. Only a proposer stamping its
/// block and a provider sequencing its adverts read it; execution and validation never do.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
