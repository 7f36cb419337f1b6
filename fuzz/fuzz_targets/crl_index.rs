//! CRL index reader (header checks, integrity, binary search) on arbitrary bytes.
#![no_main]

use jpkid::pki::crl::CrlIndex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = CrlIndex::from_bytes(data.to_vec()) {
        let probe = data.get(..data.len().min(8)).unwrap_or_default();
        let _ = index.find(probe);
    }
});
