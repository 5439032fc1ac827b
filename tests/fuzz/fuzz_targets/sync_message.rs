//! A peer's request envelope (sync or data) and a sync response, as the router and the
//! syncing driver decode them.
#![no_main]

use cairn_consensus::messages::SyncResponse;
use cairn_primitives::Canonical;
use cairn_primitives::wire::PeerRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = PeerRequest::decode(data) {
        assert_eq!(request.encode(), data, "canonical encoding");
    }
    if let Ok(response) = SyncResponse::decode(data) {
        assert_eq!(response.encode(), data, "canonical encoding");
        for block in &response.blocks {
            let _ = block.hash();
        }
    }
});
