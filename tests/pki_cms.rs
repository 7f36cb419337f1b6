//! CMS SignedData: two-phase build around an externally computed RSA signature (here a test key
//! standing in for the card), verification by `verify_signed_data` and by `openssl cms -verify`
//! with the test root as CA file; tampering is rejected by both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use jpkid::pki::cms::{self, CmsError};
use jpkid::pki::{self, Purpose, RevocationPolicy, VerifyOutcome};
use pki_support::*;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};

const DOC: &[u8] = br#"{"consent":["address","name"],"reference":"R-1"}"#;

/// What the card does: PKCS#1 v1.5 over the given SHA-256 digest.
fn card_sign(digest: &[u8; 32]) -> Vec<u8> {
    let key = RsaPrivateKey::from_pkcs8_der(&read("sign_ok.pk8.der")).unwrap();
    key.sign(Pkcs1v15Sign::new::<Sha256>(), digest).unwrap()
}

fn build(signing_time: i64) -> Vec<u8> {
    let prepared = cms::prepare(DOC, &read("sign_ok.der"), signing_time).unwrap();
    let info = prepared.digest_info();
    assert_eq!(info.len(), 51);
    assert_eq!(&info[19..], &prepared.digest());
    assert_eq!(prepared.signed_attributes_der()[0], 0x31); // DER SET OF
    let sig = card_sign(&prepared.digest());
    prepared.finish(&sig).unwrap()
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

#[test]
fn wrong_card_signature_is_refused_at_assembly() {
    let prepared = cms::prepare(DOC, &read("sign_ok.der"), 1_800_000_000).unwrap();
    let other = cms::prepare(b"other", &read("sign_ok.der"), 1_800_000_000).unwrap();
    let sig = card_sign(&other.digest());
    assert!(matches!(prepared.finish(&sig), Err(CmsError::BadSignature)));
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
    assert!(cms::prepare(DOC, b"not a cert", 0).is_err());
}
