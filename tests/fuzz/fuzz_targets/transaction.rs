//! A transaction's canonical decoding, and the signature check of whatever decodes: never a
//! panic, and a transaction that decodes encodes back to the same bytes.
#![no_main]

use cairn_primitives::{Canonical, Transaction, VerifiedTransaction};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = Transaction::decode(data) {
        assert_eq!(tx.encode(), data, "canonical encoding");
        let _ = tx.hash();
        let _ = VerifiedTransaction::verify(tx);
    }
});
