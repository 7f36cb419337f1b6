//! CRL import (outer DER walk, issuer selection) and the entry walker on arbitrary bytes.
#![no_main]

use jpkid::pki::crl::{build_index, inspect};
use jpkid::pki::{Hierarchy, TrustAnchors};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let anchors = TrustAnchors::new(Hierarchy::Test);
    let _ = build_index(data, &anchors);
    // The entry walker, which build_index only reaches after a valid signature.
    let _ = inspect(data);
});
