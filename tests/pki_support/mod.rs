//! Shared helpers of the `pki_*` integration tests: a test PKI made once per test binary with
//! OpenSSL (tests/pki_support/mkpki.sh), and a CRL writer.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod crlgen;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jpkid::pki::{Hierarchy, TrustAnchors};
use x509_parser::prelude::*;

/// Directory with the generated test PKI (made on first use; left in the target dir).
pub fn pki_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Inside the target directory (removed by `cargo clean`), one per test process.
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pki_support/mkpki.sh");
        let st = std::process::Command::new("sh")
            .arg(script)
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "mkpki.sh failed");
        dir
    })
}

pub fn read(name: &str) -> Vec<u8> {
    std::fs::read(pki_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Test anchors: sign g1 + g2, auth g1, EC P-256 and P-384 sign roots.
pub fn anchors() -> TrustAnchors {
    let a = TrustAnchors::load(Hierarchy::Test, &pki_dir().join("anchors")).unwrap();
    assert!(a.rejected().is_empty(), "{:?}", a.rejected());
    a
}

/// (notBefore, notAfter) of a certificate.
pub fn validity(der: &[u8]) -> (i64, i64) {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    (
        c.validity().not_before.timestamp(),
        c.validity().not_after.timestamp(),
    )
}

/// A time inside the validity of every generated certificate.
pub fn mid(der: &[u8]) -> i64 {
    let (a, b) = validity(der);
    a + (b - a) / 2
}

pub fn key_id_hex(root_der: &[u8]) -> String {
    let (_, c) = X509Certificate::from_der(root_der).unwrap();
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(hex::encode_upper(k.0)),
            _ => None,
        })
        .unwrap()
}

/// The real time, at which the revocation sources' freshness is judged.
pub fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// OCSP for `cfg` over the daemon's own HTTP client, with a deadline of 10 s.
pub fn ocsp_via_http(cfg: &jpkid::pki::OcspConfig) -> jpkid::pki::ocsp::Ocsp<'_> {
    jpkid::pki::ocsp::Ocsp {
        config: cfg,
        fetch: &jpkid::http::HttpFetch,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(10),
    }
}
