//! Certificate parse + verify (both purposes) + attribute extraction on arbitrary bytes,
//! against the published J-LIS roots when present beside the repository.
#![no_main]

use std::sync::OnceLock;

use jpkid::pki::{self, Hierarchy, Purpose, RevocationPolicy, TrustAnchors, attributes};
use libfuzzer_sys::fuzz_target;

fn anchors() -> &'static TrustAnchors {
    static A: OnceLock<TrustAnchors> = OnceLock::new();
    A.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../roots/jlis");
        TrustAnchors::load(Hierarchy::Production, std::path::Path::new(dir))
            .unwrap_or_else(|_| TrustAnchors::new(Hierarchy::Test))
    })
}

fuzz_target!(|data: &[u8]| {
    for purpose in [Purpose::Sign, Purpose::Auth] {
        let v = pki::verify(anchors(), data, purpose, 1_790_000_000, &RevocationPolicy::off());
        let _ = v.outcome.as_str();
    }
    let _ = attributes::from_certificate(data);
});
