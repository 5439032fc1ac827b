//! A data-plane answer (a piece, a refusal, ...), as a fetching node decodes it.
#![no_main]

use cairn_primitives::Canonical;
use cairn_providers::wire::DataResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = DataResponse::decode(data) {
        assert_eq!(response.encode(), data, "canonical encoding");
    }
});
