//! The RPC's parameter decoding: the JSON `params` of every `cairn_*` method, parsed as the
//! server parses them (jsonrpsee reads a positional array into the method's argument types).
#![no_main]

use cairn_chain::CallRequest;
use cairn_primitives::{Address, B256, Bytes};
use cairn_rpc::BlockId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = serde_json::from_str::<(Bytes,)>(text);
    let _ = serde_json::from_str::<(Address,)>(text);
    let _ = serde_json::from_str::<(Address, Option<bool>)>(text);
    let _ = serde_json::from_str::<(CallRequest,)>(text);
    let _ = serde_json::from_str::<(BlockId,)>(text);
    let _ = serde_json::from_str::<(B256,)>(text);
    let _ = serde_json::from_str::<(B256, u64)>(text);
    let _ = serde_json::from_str::<(B256, u64, Bytes, Vec<B256>)>(text);
});
