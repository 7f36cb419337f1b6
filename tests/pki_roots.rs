//! Trust anchors: the published J-LIS roots are accepted only through their pinned fingerprints
//! and sorted by purpose; test roots are accepted only with the test hierarchy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use std::path::Path;

use jpkid::pki::roots::{AnchorError, RootsError};
use jpkid::pki::{Hierarchy, Purpose, TrustAnchors};

/// The published J-LIS roots, which the project uses from the workplace's shared folder and
/// does not commit: `$JLIS_ROOTS_DIR` when set, else `shared/jlis-roots` beside the repository
/// or beside one of its ancestors (worktrees, CI clones).
#[allow(clippy::expect_used)]
fn jlis() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("JLIS_ROOTS_DIR") {
        return dir.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/jlis-roots"))
        .find(|p| p.is_dir())
        .expect("J-LIS roots not found: set JLIS_ROOTS_DIR or clone beside shared/")
}

#[test]
fn published_roots_are_pinned_with_their_purpose() {
    let a = TrustAnchors::load(Hierarchy::Production, &jlis()).unwrap();
    assert_eq!(a.anchors().len(), 4, "rejected: {:?}", a.rejected());
    assert!(a.anchors().iter().all(|x| x.is_pinned()));
    let sign = a
        .anchors()
        .iter()
        .filter(|x| x.purpose() == Purpose::Sign)
        .count();
    let auth = a
        .anchors()
        .iter()
        .filter(|x| x.purpose() == Purpose::Auth)
        .count();
    assert_eq!((sign, auth), (2, 2));
    // README.md in that directory is not a certificate.
    assert_eq!(a.rejected().len(), 1);
    assert_eq!(a.rejected()[0].reason, AnchorError::NotCertificate);
    let fp: Vec<String> = a.anchors().iter().map(|x| x.sha256_hex()).collect();
    assert!(fp.contains(
        &"D227F6CDE11D35C5252178F106F843D246519449754 13B539FA2FB68DBFA365F".replace(' ', "")
    ));
}

#[test]
fn test_roots_refused_in_production() {
    let dir = pki_support::pki_dir().join("anchors");
    match TrustAnchors::load(Hierarchy::Production, &dir) {
        Err(RootsError::NoAnchors { rejected, .. }) => assert_eq!(rejected, 5),
        other => panic!("expected NoAnchors, got {other:?}"),
    }
    let mut a = TrustAnchors::new(Hierarchy::Production);
    assert!(matches!(
        a.add_bytes(&pki_support::read("sign_root_g2.der")),
        Err(AnchorError::NotPinned(_))
    ));
}

#[test]
fn test_hierarchy_accepts_pem_and_der_and_rejects_end_entities() {
    let a = pki_support::anchors();
    assert_eq!(a.anchors().len(), 5);
    assert!(a.anchors().iter().all(|x| !x.is_pinned()));
    let mut t = TrustAnchors::new(Hierarchy::Test);
    assert_eq!(
        t.add_bytes(&pki_support::read("sign_ok.der")),
        Err(AnchorError::NoPurpose)
    );
    assert_eq!(t.add_bytes(b"garbage"), Err(AnchorError::NotCertificate));
    // The published production roots are usable under the test hierarchy too.
    let pem = std::fs::read(jlis().join("sign_ca_2023.pem")).unwrap();
    t.add_bytes(&pem).unwrap();
    assert!(t.anchors()[0].is_pinned());
}
