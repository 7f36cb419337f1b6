//! `pki::verify` against a generated JPKI-shaped test PKI: one test per outcome, the precedence
//! rules, both key generations with one DN, RSA and ECDSA, and the result details.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use jpkid::pki::{
    self, Hierarchy, Purpose, RevocationMode, RevocationPolicy, RevocationSource, TrustAnchors,
    VerifyOutcome,
};
use pki_support::*;

fn check(name: &str, purpose: Purpose) -> pki::Verification {
    let der = read(name);
    pki::verify(
        &anchors(),
        &der,
        purpose,
        mid(&der),
        &RevocationPolicy::off(),
    )
}

fn sha_hex(file: &str) -> String {
    use rsa::sha2::{Digest, Sha256};
    hex::encode_upper(Sha256::digest(read(file)))
}

#[test]
fn valid_under_both_generations_with_one_dn() {
    let v = check("sign_ok.der", Purpose::Sign);
    assert_eq!(v.outcome, VerifyOutcome::Valid, "{:?}", v.details);
    assert_eq!(v.details.root, sha_hex("sign_root_g2.der"));
    let v = check("sign_ok_g1.der", Purpose::Sign);
    assert_eq!(v.outcome, VerifyOutcome::Valid, "{:?}", v.details);
    assert_eq!(v.details.root, sha_hex("sign_root_g1.der"));
}

#[test]
fn details_are_filled() {
    let der = read("sign_ok.der");
    let (nb, na) = validity(&der);
    let v = check("sign_ok.der", Purpose::Sign);
    assert_eq!(v.outcome.as_str(), "valid");
    assert_eq!(v.details.serial, "10000001");
    assert!(v.details.subject.contains("CN=20260101000000000010001A"));
    assert!(v.details.issuer.contains("OU=JPKI for digital signature"));
    assert_eq!(v.details.not_before, Some(nb));
    assert_eq!(v.details.not_after, Some(na));
    assert_eq!(v.details.revocation_source, Some(RevocationSource::None));
    assert!(!format!("{:?}", v.details).contains("20260101000000000010001A"));
    // Serial with the high bit set: DER has a leading 00, the report does not.
    assert_eq!(
        check("sign_highbit.der", Purpose::Sign).details.serial,
        "80000009"
    );
}

#[test]
fn ecdsa_p256_and_p384() {
    assert_eq!(
        check("ec256_ee.der", Purpose::Sign).outcome,
        VerifyOutcome::Valid
    );
    assert_eq!(
        check("ec384_ee.der", Purpose::Sign).outcome,
        VerifyOutcome::Valid
    );
}

#[test]
fn non_critical_policies_accepted() {
    assert_eq!(
        check("sign_noncrit.der", Purpose::Sign).outcome,
        VerifyOutcome::Valid
    );
}

#[test]
fn auth_certificate() {
    assert_eq!(
        check("auth_ok.der", Purpose::Auth).outcome,
        VerifyOutcome::Valid
    );
    assert_eq!(
        check("auth_ok.der", Purpose::Sign).outcome,
        VerifyOutcome::WrongPurpose
    );
}

#[test]
fn wrong_purpose_cases() {
    // Sign certificate asked for as auth.
    assert_eq!(
        check("sign_ok.der", Purpose::Auth).outcome,
        VerifyOutcome::WrongPurpose
    );
    // A sign-profile certificate issued by the auth root.
    assert_eq!(
        check("sign_under_auth.der", Purpose::Sign).outcome,
        VerifyOutcome::WrongPurpose
    );
    // No JPKI policy.
    assert_eq!(
        check("sign_nopolicy.der", Purpose::Sign).outcome,
        VerifyOutcome::WrongPurpose
    );
    // End entity claiming to be a CA.
    assert_eq!(
        check("sign_ca.der", Purpose::Sign).outcome,
        VerifyOutcome::WrongPurpose
    );
}

/// Defect (review): a critical extKeyUsage was accepted but not enforced. It must allow any
/// usage, or the purpose's own (clientAuth for `auth`, emailProtection for `sign`).
#[test]
fn a_critical_ext_key_usage_is_honoured() {
    let v = check("sign_eku_server.der", Purpose::Sign);
    assert_eq!(v.outcome, VerifyOutcome::WrongPurpose, "{:?}", v.details);
    assert!(v.details.note.contains("extKeyUsage"), "{}", v.details.note);
    assert_eq!(
        check("sign_eku_any.der", Purpose::Sign).outcome,
        VerifyOutcome::Valid
    );
    assert_eq!(
        check("auth_eku_client.der", Purpose::Auth).outcome,
        VerifyOutcome::Valid
    );
}

/// Defect (review): serials were compared as magnitudes, so a negative serial (which RFC 5280
/// forbids) shared its CRL key with a positive one (-5 is `FB`, like 0x00FB).
#[test]
fn a_negative_serial_is_malformed() {
    let v = check("sign_negative.der", Purpose::Sign);
    assert_eq!(v.outcome, VerifyOutcome::Malformed, "{:?}", v.details);
    assert!(v.details.note.contains("negative"), "{}", v.details.note);
}

#[test]
fn untrusted_and_bad_signature() {
    // Same issuer DN as the sign roots, but a key no anchor has (AKI mismatch).
    let v = check("rogue_ee.der", Purpose::Sign);
    assert_eq!(v.outcome, VerifyOutcome::Untrusted);
    assert!(v.details.root.is_empty());
    // A byte of the subject changed: the anchor is found, the signature fails.
    let mut der = read("sign_ok.der");
    let pos = der
        .windows(24)
        .position(|w| w == b"20260101000000000010001A")
        .unwrap();
    der[pos + 23] = b'B';
    let v = pki::verify(
        &anchors(),
        &der,
        Purpose::Sign,
        mid(&der),
        &RevocationPolicy::off(),
    );
    assert_eq!(v.outcome, VerifyOutcome::BadSignature);
    // Issuer not configured at all.
    let mut only_auth = TrustAnchors::new(Hierarchy::Test);
    only_auth.add_bytes(&read("auth_root_g1.der")).unwrap();
    let der = read("sign_ok.der");
    let v = pki::verify(
        &only_auth,
        &der,
        Purpose::Sign,
        mid(&der),
        &RevocationPolicy::off(),
    );
    assert_eq!(v.outcome, VerifyOutcome::Untrusted);
}

#[test]
fn validity_window() {
    let der = read("sign_ok.der");
    let (nb, na) = validity(&der);
    let a = anchors();
    let off = RevocationPolicy::off();
    assert_eq!(
        pki::verify(&a, &der, Purpose::Sign, nb - 1, &off).outcome,
        VerifyOutcome::NotYetValid
    );
    assert_eq!(
        pki::verify(&a, &der, Purpose::Sign, nb, &off).outcome,
        VerifyOutcome::Valid
    );
    assert_eq!(
        pki::verify(&a, &der, Purpose::Sign, na, &off).outcome,
        VerifyOutcome::Valid
    );
    assert_eq!(
        pki::verify(&a, &der, Purpose::Sign, na + 1, &off).outcome,
        VerifyOutcome::Expired
    );
    // Precedence: wrong purpose beats expiry.
    assert_eq!(
        pki::verify(&a, &der, Purpose::Auth, na + 1, &off).outcome,
        VerifyOutcome::WrongPurpose
    );
}

#[test]
fn malformed_inputs() {
    let a = anchors();
    let off = RevocationPolicy::off();
    let der = read("sign_ok.der");
    for bad in [
        Vec::new(),
        vec![0x30],
        der[..der.len() / 2].to_vec(),
        b"-----BEGIN CERTIFICATE-----".to_vec(),
        [der.clone(), vec![0x00]].concat(),
    ] {
        assert_eq!(
            pki::verify(&a, &bad, Purpose::Sign, 0, &off).outcome,
            VerifyOutcome::Malformed
        );
    }
    // Card EFs end in FF filler: tolerated.
    let padded = [der.clone(), vec![0xFF; 40]].concat();
    assert_eq!(
        pki::verify(&a, &padded, Purpose::Sign, mid(&der), &off).outcome,
        VerifyOutcome::Valid
    );
    // An unknown critical extension cannot be honoured.
    assert_eq!(
        check("sign_unknown_crit.der", Purpose::Sign).outcome,
        VerifyOutcome::Malformed
    );
}

#[test]
fn revocation_modes_without_sources() {
    let der = read("sign_ok.der");
    let a = anchors();
    let require = RevocationPolicy {
        ..RevocationPolicy::new(RevocationMode::Require, now())
    };
    let v = pki::verify(&a, &der, Purpose::Sign, mid(&der), &require);
    assert_eq!(v.outcome, VerifyOutcome::RevocationUnknown);
    assert_eq!(v.outcome.as_str(), "revocation-unknown");
    let prefer = RevocationPolicy {
        ..RevocationPolicy::new(RevocationMode::Prefer, now())
    };
    let v = pki::verify(&a, &der, Purpose::Sign, mid(&der), &prefer);
    assert_eq!(v.outcome, VerifyOutcome::Valid);
    assert_eq!(v.details.revocation_source, Some(RevocationSource::None));
}

#[test]
fn outcome_names_are_stable() {
    let names: Vec<&str> = [
        VerifyOutcome::Valid,
        VerifyOutcome::Expired,
        VerifyOutcome::NotYetValid,
        VerifyOutcome::Revoked {
            reason: None,
            date: 0,
        },
        VerifyOutcome::Untrusted,
        VerifyOutcome::BadSignature,
        VerifyOutcome::WrongPurpose,
        VerifyOutcome::Malformed,
        VerifyOutcome::RevocationUnknown,
    ]
    .iter()
    .map(|o| o.as_str())
    .collect();
    assert_eq!(
        names,
        [
            "valid",
            "expired",
            "not-yet-valid",
            "revoked",
            "untrusted",
            "bad-signature",
            "wrong-purpose",
            "malformed",
            "revocation-unknown"
        ]
    );
}
