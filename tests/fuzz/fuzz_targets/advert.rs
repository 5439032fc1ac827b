//! A provider advert from gossip: decoded and checked (chain, field bounds, signature).
#![no_main]

use cairn_primitives::Canonical;
use cairn_providers::adverts::SignedAdvert;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(advert) = SignedAdvert::decode(data) {
        assert_eq!(advert.encode(), data, "canonical encoding");
        let _ = advert.check(7);
        let _ = advert.advert.digest();
    }
});
