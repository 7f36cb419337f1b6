//! CMS SignedData: built by `cms::sign` with the `cms` crate's builder around a signer (here a
//! test key standing in for the card's signing key), verification by `open`/`check` and by
//! `openssl cms -verify` with the test root as CA file; tampering is rejected by both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use jpkid::pki::cms::{self, CmsError};
use jpkid::pki::{self, Purpose, RevocationPolicy, VerifyOutcome};
use pki_support::*;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;

const DOC: &[u8] = br#"{"consent":["address","name"],"reference":"R-1"}"#;

/// What the card holds: the signing key of `sign_ok.der`.
fn card_key(name: &str) -> SigningKey<Sha256> {
    SigningKey::new(RsaPrivateKey::from_pkcs8_der(&read(name)).unwrap())
}

fn build(signing_time: i64) -> Vec<u8> {
    cms::sign(
        DOC,
        &read("sign_ok.der"),
        signing_time,
        &card_key("sign_ok.pk8.der"),
    )
    .unwrap()
}

fn openssl_verify(der: &[u8]) -> (bool, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.p7m");
    let out = dir.path().join("out");
    std::fs::write(&p, der).unwrap();
    let st = std::process::Command::new("openssl")
        .args(["cms", "-verify", "-inform", "DER", "-in"])
        .arg(&p)
        .arg("-CAfile")
        .arg(pki_dir().join("sign_root_g2.pem"))
        .args(["-purpose", "any", "-out"])
        .arg(&out)
        .output()
        .unwrap();
    (st.status.success(), std::fs::read(&out).unwrap_or_default())
}

#[test]
fn round_trip_and_openssl_accepts() {
    let cert = read("sign_ok.der");
    let t = mid(&cert);
    let der = build(t);
    let v = cms::verify_signed_data(&der, Some(t + 1)).unwrap();
    assert_eq!(v.content, DOC);
    assert_eq!(v.signer_cert_der, cert);
    assert_eq!(v.signing_time, Some(t));
    // The signer certificate is then verified as usual.
    let out = pki::verify(
        &anchors(),
        &v.signer_cert_der,
        Purpose::Sign,
        t,
        &RevocationPolicy::off(),
    );
    assert_eq!(out.outcome, VerifyOutcome::Valid);
    let (ok, content) = openssl_verify(&der);
    assert!(ok, "openssl cms -verify failed");
    assert_eq!(content, DOC);
}

#[test]
fn tampering_is_rejected_by_both() {
    let der = build(mid(&read("sign_ok.der")));
    let pos = der.windows(DOC.len()).position(|w| w == DOC).unwrap();
    let mut bad = der.clone();
    bad[pos + 3] ^= 0x20;
    assert!(matches!(
        cms::verify_signed_data(&bad, None),
        Err(CmsError::DigestMismatch)
    ));
    assert!(!openssl_verify(&bad).0);
    // Damaged signature.
    let mut bad = der.clone();
    let n = bad.len();
    // the signature is the last field of the SignerInfo, at the very end of the structure
    bad[n - 3] ^= 0x01;
    assert!(matches!(
        cms::verify_signed_data(&bad, None),
        Err(CmsError::BadSignature)
    ));
    assert!(!openssl_verify(&bad).0);
}

/// A card whose key is not its certificate's (a forged card) gets no CMS.
#[test]
fn a_signer_whose_key_is_not_the_certificates_gets_no_cms() {
    let forged = cms::sign(
        DOC,
        &read("sign_ok.der"),
        1_800_000_000,
        &card_key("rogue_sign_root.pk8.der"),
    );
    assert!(matches!(forged, Err(CmsError::BadSignature)), "{forged:?}");
}

/// `open` takes a SignedData apart whatever its signature; `check` tells a good one from a
/// changed one. Garbage does not open.
#[test]
fn open_tells_structure_from_signature() {
    let der = build(mid(&read("sign_ok.der")));
    let opened = cms::open(&der).unwrap();
    assert_eq!(opened.content, DOC);
    assert!(opened.check().is_ok());
    let pos = der.windows(DOC.len()).position(|w| w == DOC).unwrap();
    let mut changed = der.clone();
    changed[pos] ^= 0x01;
    let opened = cms::open(&changed).unwrap();
    assert!(matches!(opened.check(), Err(CmsError::DigestMismatch)));
    assert!(matches!(cms::open(b"junk"), Err(CmsError::NotSignedData)));
    assert!(cms::open(&der[..der.len() / 2]).is_err());
}

#[test]
fn signing_time_after_at_and_garbage() {
    let der = build(1_800_000_000);
    assert!(matches!(
        cms::verify_signed_data(&der, Some(1_700_000_000)),
        Err(CmsError::SigningTimeInFuture(1_800_000_000))
    ));
    assert!(matches!(
        cms::verify_signed_data(b"junk", None),
        Err(CmsError::NotSignedData)
    ));
    assert!(cms::verify_signed_data(&der[..der.len() - 1], None).is_err());
    assert!(matches!(
        cms::sign(DOC, b"not a cert", 0, &card_key("sign_ok.pk8.der")),
        Err(CmsError::Certificate(_))
    ));
}
