//! Trust anchors: the published J-LIS roots are accepted only through their pinned fingerprints
//! and sorted by purpose; test roots are accepted only with the test hierarchy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use std::path::Path;

use jpkid::pki::roots::{AnchorError, RootsError};
use jpkid::pki::{Hierarchy, Purpose, TrustAnchors};

/// The published J-LIS roots the repository carries (`roots/jlis/`, source in `roots/README.md`).
fn jlis() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("roots/jlis")
}

#[test]
fn all_six_published_roots_are_pinned_with_their_purpose() {
    let a = TrustAnchors::load(Hierarchy::Production, &jlis()).unwrap();
    assert_eq!(a.rejected().len(), 0, "rejected: {:?}", a.rejected());
    assert_eq!(a.anchors().len(), 6);
    assert!(a.anchors().iter().all(|x| x.is_pinned()));
    // Each file is the root its name says: purpose and the fingerprint of roots/README.md.
    let readme = std::fs::read_to_string(jlis().join("../README.md")).unwrap();
    for file in [
        "sign_ca_2015.pem",
        "sign_ca_2019.pem",
        "sign_ca_2023.pem",
        "auth_ca_2015.pem",
        "auth_ca_2019.pem",
        "auth_ca_2023.pem",
    ] {
        let mut one = TrustAnchors::new(Hierarchy::Production);
        one.add_bytes(&std::fs::read(jlis().join(file)).unwrap())
            .unwrap_or_else(|e| panic!("{file}: {e:?}"));
        let anchor = &one.anchors()[0];
        let want = if file.starts_with("sign") {
            Purpose::Sign
        } else {
            Purpose::Auth
        };
        assert_eq!(anchor.purpose(), want, "{file}");
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| {file} ")))
            .unwrap_or_else(|| panic!("{file} not in roots/README.md"));
        let fp = anchor
            .sha256_hex()
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        assert!(row.contains(&fp), "{file}: {fp} not in {row}");
    }
}

#[test]
fn the_2019_authentication_root_is_a_production_anchor() {
    // Certificates issued 2019-09 .. 2023-07 chain to it; unpinned, they were all `untrusted`.
    let mut a = TrustAnchors::new(Hierarchy::Production);
    a.add_bytes(&std::fs::read(jlis().join("auth_ca_2019.pem")).unwrap())
        .unwrap();
    assert_eq!(a.anchors()[0].purpose(), Purpose::Auth);
    assert_eq!(
        a.anchors()[0].sha256_hex().to_uppercase(),
        "0D98DE47FC11B7F67126874B7028B6026A803D2638D6EDFE53176953961FADE6"
    );
}

#[test]
fn jlis_test_card_roots_are_refused_in_production_and_accepted_for_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("roots/jlis-test");
    assert!(TrustAnchors::load(Hierarchy::Production, &dir).is_err());
    let t = TrustAnchors::load(Hierarchy::Test, &dir).unwrap();
    assert_eq!(t.anchors().len(), 4, "rejected: {:?}", t.rejected());
    assert!(t.anchors().iter().all(|x| !x.is_pinned()));
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

/// A chain ends at each of the six: every root's own certificate, verified as if it were an end
/// entity, is resolved to that very anchor among the three of its purpose that share one DN (by
/// key identifier and signature) — and then refused as a CA. Without a J-LIS key no end entity
/// can be made under them; this is the step of the chain that differs per root. (Review: the
/// 2019 authentication root was not pinned, so its certificates were `untrusted`.)
#[test]
fn a_chain_ends_at_each_of_the_six_roots() {
    let a = TrustAnchors::load(Hierarchy::Production, &jlis()).unwrap();
    let off = jpkid::pki::RevocationPolicy::off();
    for file in [
        "sign_ca_2015.pem",
        "sign_ca_2019.pem",
        "sign_ca_2023.pem",
        "auth_ca_2015.pem",
        "auth_ca_2019.pem",
        "auth_ca_2023.pem",
    ] {
        let pem = std::fs::read(jlis().join(file)).unwrap();
        let der = pem_rfc7468::decode_vec(&pem).unwrap().1;
        let purpose = if file.starts_with("sign") {
            Purpose::Sign
        } else {
            Purpose::Auth
        };
        let mut one = TrustAnchors::new(Hierarchy::Production);
        one.add_bytes(&pem).unwrap();
        let fingerprint = one.anchors()[0].sha256_hex();
        // Within its validity period.
        let (_, cert) =
            <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<_>>::from_der(&der).unwrap();
        let at = cert.validity().not_before.timestamp() + 86_400;
        let v = jpkid::pki::verify(&a, &der, purpose, at, &off);
        assert_eq!(
            v.details.root, fingerprint,
            "{file}: resolved to another root"
        );
        assert_eq!(
            v.outcome,
            jpkid::pki::VerifyOutcome::WrongPurpose,
            "{file}: {:?}",
            v.details
        );
    }
}
