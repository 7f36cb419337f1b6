//! Card flows against the in-process virtual card, for every persona: detection, retry
//! counters, certificates, signatures, the text AP, PIN errors and fault switches. APDU counts
//! are asserted exactly: they are the figures DESIGN §3 promises.
#![cfg(feature = "virtual-card")]
// Test helpers outside #[test] functions may panic: a panic is a test failure here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

mod support {
    pub mod run;
}

use jpki_vcard::{Persona, PinId, VirtualCard};
use jpkid::apdu::{Command, StatusWord};
use jpkid::api::{HashAlg, IntegrityStatus, KeyKind, PinCounters};
use jpkid::card::{Card, CardError};
use jpkid::digest::DigestInfo;
use jpkid::flows;
use jpkid::jpki::{CardKind, CertKind, JpkiError, PinGuard, PinKind};
use jpkid::pki::attributes;
use jpkid::transport::TransportError;
use jpkid::transport::r#virtual::{VirtualSlot, VirtualTransport};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::hazmat::PrehashVerifier;
use sha2::Digest;
use support::run;

const GUARD: PinGuard = PinGuard {
    min_remaining: 2,
    allow_last_try: false,
};
const LAST_TRY: PinGuard = PinGuard {
    min_remaining: 2,
    allow_last_try: true,
};

fn personas() -> Vec<(String, Persona)> {
    let dir = jpki_vcard::personas_dir();
    let mut out: Vec<(String, Persona)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("persona.toml").exists())
        .map(|p: PathBuf| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, Persona::load(&p).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 13, "personas missing: {}", out.len());
    out
}

fn persona(name: &str) -> Persona {
    Persona::load(&jpki_vcard::persona_dir(name)).unwrap()
}

fn session(slot: &VirtualSlot) -> Card<VirtualTransport> {
    let t = VirtualTransport::connect(slot.clone(), Duration::from_millis(20)).unwrap();
    Card::new(t, None)
}

fn open(p: Persona) -> (VirtualSlot, Card<VirtualTransport>) {
    let slot = VirtualSlot::with_card(VirtualCard::new(p));
    let card = session(&slot);
    (slot, card)
}

fn pin_value(p: &Persona, pin: PinId) -> Vec<u8> {
    p.pins[pin as usize].value.to_vec()
}

fn remaining(slot: &VirtualSlot, pin: PinId) -> u8 {
    slot.with(|c| c.pin_remaining(pin)).unwrap()
}

/// The certificate as the card holds it, without filler: the first TLV of the file.
fn file_cert(p: &Persona, ef: u16) -> Vec<u8> {
    let file = &p.jpki_files[&ef];
    let h = jpkid::tlv::read_header(file, 0).unwrap();
    file[..h.total_len()].to_vec()
}

fn ceil256(n: usize) -> u64 {
    n.div_ceil(256) as u64
}

#[test]
fn detection_tells_every_persona_apart() {
    for (name, p) in personas() {
        let expect = p.expect.card_kind.clone().unwrap();
        let sfi = p.sfi;
        let jpki = p.jpki_ap;
        let (_slot, mut card) = open(p);
        let info = flows::detect(&mut card).unwrap();
        let want = match expect.as_str() {
            "card" | "no-sign-cert" => CardKind::Card,
            "android" => CardKind::Android,
            "iphone" => CardKind::Iphone,
            "not-jpki" => CardKind::None,
            other => panic!("{name}: unknown expectation {other}"),
        };
        assert_eq!(info.kind, want, "{name}");
        assert_eq!(
            info.has_sign_cert,
            jpki && expect != "no-sign-cert",
            "{name}"
        );
        assert_eq!(info.has_auth_cert, jpki, "{name}");
        // SELECT + two READs; without SFI each READ needs its SELECT EF, and the first SFI
        // attempt is refused once; no JPKI AP: only the SELECT.
        let apdus = match (jpki, sfi) {
            (false, _) => 1,
            (true, true) => 3,
            (true, false) => 6,
        };
        assert_eq!(card.apdu_count(), apdus, "{name}");
    }
}

#[test]
fn pin_status_costs_seven_apdus_and_no_try() {
    for (name, p) in personas() {
        if !p.jpki_ap {
            let (_slot, mut card) = open(p);
            assert!(matches!(
                run::pin_status(&mut card),
                Err(JpkiError::NotJpkiCard)
            ));
            continue;
        }
        let want = PinCounters {
            sign_password: p.pins[0].remaining,
            auth_pin: p.pins[1].remaining,
            text_pin: p.text_ap.then_some(p.pins[2].remaining),
            code_b: p
                .visual_ap
                .then_some(p.pins[PinId::CodeB as usize].remaining),
        };
        let (sfi, text, visual) = (p.sfi, p.text_ap, p.visual_ap);
        let (slot, mut card) = open(p);
        let status = run::pin_status(&mut card).unwrap();
        assert_eq!(status, want, "{name}");
        let apdus = match (sfi, text, visual) {
            (true, true, true) => 7,
            (true, false, false) => 5, // the text and visual APs' SELECTs answer 6A82
            // Refused SFI once, then SELECT EF before each query.
            (false, true, true) => 12,
            other => panic!("{name}: no such persona {other:?}"),
        };
        assert_eq!(card.apdu_count(), apdus, "{name}");
        assert!(card.apdu_count() <= 7 || !sfi);
        // Asking again spends nothing either.
        let again = run::pin_status(&mut session(&slot)).unwrap();
        assert_eq!(again, want, "{name}");
    }
}

#[test]
fn certificates_read_whole_with_fewest_apdus() {
    for (name, p) in personas() {
        if !p.jpki_ap {
            continue;
        }
        let (sfi, extended) = (p.sfi, p.extended);
        let needs_pin = p.auth_cert_requires_pin;
        let auth = file_cert(&p, 0x000A);
        let n = auth.len();
        let auth_pin = pin_value(&p, PinId::Auth);
        let (_slot, mut card) = open(p.clone());
        if needs_pin {
            // Android: the auth certificate is behind the auth PIN (§13.1); the flow asks for
            // it before any APDU, and the card itself refuses without it.
            let err =
                run::read_certificate(&mut card, CardKind::Android, CertKind::Auth, b"", GUARD)
                    .unwrap_err();
            assert!(
                matches!(err, JpkiError::PinRequired(PinKind::AuthPin)),
                "{name}: {err}"
            );
            assert_eq!(card.apdu_count(), 0);
            let raw = jpkid::jpki::ap::read_certificate(&mut card, CertKind::Auth).unwrap_err();
            assert!(
                matches!(
                    raw,
                    JpkiError::Card(CardError::Status {
                        sw: StatusWord::SecurityStatusNotSatisfied,
                        ..
                    })
                ),
                "{name}: {raw}"
            );
            let (_slot, mut card) = open(p.clone());
            let got = run::read_certificate(
                &mut card,
                CardKind::Android,
                CertKind::Auth,
                &auth_pin,
                GUARD,
            )
            .unwrap();
            assert_eq!(*got, auth, "{name}");
            continue;
        }
        let got =
            run::read_certificate(&mut card, CardKind::Card, CertKind::Auth, b"", GUARD).unwrap();
        assert_eq!(*got, auth, "{name}");
        assert!(n > 256);
        let apdus = match (sfi, extended) {
            (true, true) => 3,
            // the refused extended READ, then 256-byte pieces
            (true, false) => 1 + 1 + 1 + ceil256(n - 256),
            (false, true) => 1 + 2 + 1 + 1,
            (false, false) => unreachable!(),
        };
        assert_eq!(card.apdu_count(), apdus, "{name}");
        if extended {
            assert!(card.apdu_count() <= 3 || !sfi, "{name}");
        } else {
            assert!(card.apdu_count() <= 2 + ceil256(n), "{name}");
        }
        // The reader's refusal is remembered: a second certificate costs no failed attempt.
        let ca =
            run::read_certificate(&mut card, CardKind::Card, CertKind::AuthCa, b"", GUARD).unwrap();
        assert_eq!(*ca, file_cert(&p, 0x000B), "{name}");
        let sign_ca =
            run::read_certificate(&mut card, CardKind::Card, CertKind::SignCa, b"", GUARD).unwrap();
        assert_eq!(*sign_ca, file_cert(&p, 0x0002), "{name}");
    }
}

#[test]
fn signing_certificate_needs_the_password() {
    for (name, p) in personas() {
        if !p.jpki_ap || p.pins[0].remaining < 2 {
            continue;
        }
        let password = pin_value(&p, PinId::Sign);
        let has = p.jpki_files.contains_key(&0x0001);
        let (slot, mut card) = open(p.clone());
        let result =
            run::read_certificate(&mut card, CardKind::Card, CertKind::Sign, &password, GUARD);
        if has {
            assert_eq!(*result.unwrap(), file_cert(&p, 0x0001), "{name}");
        } else {
            assert!(
                matches!(result, Err(JpkiError::CertificateMissing(CertKind::Sign))),
                "{name}"
            );
        }
        // Without the password the card refuses (6982) and no try is spent.
        let (slot2, mut card) = open(p.clone());
        let raw = jpkid::jpki::ap::read_certificate(&mut card, CertKind::Sign);
        if has {
            assert!(matches!(
                raw,
                Err(JpkiError::Card(CardError::Status {
                    sw: StatusWord::SecurityStatusNotSatisfied,
                    ..
                }))
            ));
        }
        assert_eq!(remaining(&slot2, PinId::Sign), p.pins[0].remaining);
        drop(slot);
    }
}

fn verify_signature(cert_der: &[u8], hash: HashAlg, digest: &[u8], sig: &[u8]) -> bool {
    use x509_cert::der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(cert_der).unwrap();
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    let key = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
    let sig = Signature::try_from(sig).unwrap();
    let ok = match hash {
        HashAlg::Sha256 => VerifyingKey::<sha2::Sha256>::new(key).verify_prehash(digest, &sig),
        HashAlg::Sha384 => VerifyingKey::<sha2::Sha384>::new(key).verify_prehash(digest, &sig),
        HashAlg::Sha512 => VerifyingKey::<sha2::Sha512>::new(key).verify_prehash(digest, &sig),
    };
    ok.is_ok()
}

#[test]
fn signatures_verify_with_the_certificate_and_cost_four_apdus() {
    for (name, p) in personas() {
        if !p.jpki_ap {
            continue;
        }
        for (key, pin, ef) in [
            (KeyKind::Sign, PinId::Sign, 0x0001u16),
            (KeyKind::Auth, PinId::Auth, 0x000A),
        ] {
            let left = p.pins[pin as usize].remaining;
            if left < 2 || !p.jpki_files.contains_key(&ef) {
                continue;
            }
            for hash in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
                let digest: Vec<u8> = match hash {
                    HashAlg::Sha256 => sha2::Sha256::digest(b"consent").to_vec(),
                    HashAlg::Sha384 => sha2::Sha384::digest(b"consent").to_vec(),
                    HashAlg::Sha512 => sha2::Sha512::digest(b"consent").to_vec(),
                };
                let (slot, mut card) = open(p.clone());
                let secret = pin_value(&p, pin);
                let sig = run::sign(&mut card, key, hash, &digest, &secret, GUARD).unwrap();
                // `forged` carries another card's signing certificate (PERSONAS.md): the card's
                // signature cannot verify with it.
                let matches =
                    key != KeyKind::Sign || p.expect.key_matches_certificate != Some(false);
                assert_eq!(
                    verify_signature(&file_cert(&p, ef), hash, &digest, &sig),
                    matches,
                    "{name} {key:?} {hash:?}"
                );
                // Without SFI: SELECT AP, the refused SFI counter query + SELECT EF + the
                // counter, VERIFY of the EF now current, SELECT key EF + SIGN.
                let want = if p.sfi { 4 } else { 1 + 3 + 1 + 2 };
                assert_eq!(card.apdu_count(), want, "{name} {key:?} {hash:?}");
                // The session ends unpowered: the key is locked for the next client.
                flows::finish(card).unwrap();
                assert!(!slot.with(|c| c.is_verified(pin)).unwrap());
                // (A signature without VERIFY cannot be written with the typed API: the raw
                // APDUs of another client.)
                let mut next = session(&slot);
                jpkid::jpki::ap::select(&mut next).unwrap();
                let info = DigestInfo::new(hash, &digest).unwrap();
                let p2 = 0x80 | (key.ef() as u8);
                let sign = Command::new("SIGN", 0x80, 0x2A, 0x00, p2)
                    .with_data(info.as_bytes().to_vec())
                    .with_le(256);
                let resp = next.exchange(&sign).unwrap();
                if p.sfi {
                    assert_eq!(resp.sw, StatusWord::SecurityStatusNotSatisfied, "{name}");
                }
                assert_eq!(remaining(&slot, pin), left);
            }
        }
    }
}

#[test]
fn text_attributes_with_their_integrity_check_in_six_apdus() {
    let card_ca = run::card_ca();
    for (name, p) in personas() {
        if !p.text_ap {
            if p.jpki_ap {
                let (_s, mut card) = open(p.clone());
                let err = run::read_text(&mut card, b"1234", GUARD);
                assert!(matches!(err, Err(JpkiError::NoTextApplication)), "{name}");
            }
            continue;
        }
        let text_pin = pin_value(&p, PinId::Text);
        let (sfi, extended) = (p.sfi, p.extended);
        let (_slot, mut card) = open(p.clone());
        let got = run::read_text(&mut card, &text_pin, GUARD).unwrap();
        let expected = p.expect.integrity.as_deref().unwrap();
        assert_eq!(got.integrity(&card_ca).as_str(), expected, "{name}");
        // SELECT, retry counter, VERIFY, then EF 0002, 0003 and 0004.
        let apdus = match (sfi, extended) {
            // One READ each (0002 by SFI with Le 00, 0003 and 0004 in one extended READ).
            (true, true) => 3 + 3,
            // A refused extended READ, then short READs: 0003 (336 bytes) in two, and then
            // the reader is known to refuse: 0004 (567 bytes) in three.
            (true, false) => 3 + 1 + 1 + 2 + 3,
            // The SFI counter query refused, SELECT EF 0011 + the counter, VERIFY of the EF
            // now current, then SELECT EF + one READ per file.
            (false, true) => 1 + 3 + 1 + 2 + 2 + 2,
            (false, false) => unreachable!(),
        };
        assert_eq!(card.apdu_count(), apdus, "{name}");

        // No CV certificate key configured: at best unverifiable, never verified.
        let none = jpkid::pki::cvc::CardCaKeys::none(jpkid::pki::Hierarchy::Test);
        assert_eq!(
            got.integrity(&none),
            IntegrityStatus::Unverifiable,
            "{name}"
        );

        // Compared with the signing certificate's subjectAltName, per the persona's expectation.
        if let (Some(expect), Some(cert)) = (p.expect.attributes_match, p.jpki_files.get(&1)) {
            let h = jpkid::tlv::read_header(cert, 0).unwrap();
            let from_cert = attributes::from_certificate(&cert[..h.total_len()]).unwrap();
            let text = attributes::TextApFour {
                name: got.attributes.name.clone(),
                address: got.attributes.address.clone(),
                birth_date: got.attributes.birth_date.clone(),
                sex: got.attributes.sex.clone(),
            };
            let cmp = attributes::compare(&from_cert, &text);
            assert_eq!(cmp.all_exact(), expect, "{name}");
        }
    }
}

#[test]
fn tampered_basic_four_or_record_is_an_integrity_mismatch() {
    let card_ca = run::card_ca();
    let mut p = persona("ordinary");
    let file = p.text_files.get_mut(&2).unwrap();
    let last = file.iter().rposition(|b| *b == b'1' || *b == b'2').unwrap();
    file[last] = b'9'; // the sex digit
    let (_slot, mut card) = open(p);
    let got = run::read_text(&mut card, b"1234", GUARD).unwrap();
    assert_eq!(got.integrity(&card_ca), IntegrityStatus::Mismatch);

    let mut p = persona("ordinary");
    let record = p.text_files.get_mut(&3).unwrap();
    let last = record.len() - 1;
    record[last] ^= 0x01; // the record's signature
    let (_slot, mut card) = open(p);
    let got = run::read_text(&mut card, b"1234", GUARD).unwrap();
    assert_eq!(got.integrity(&card_ca), IntegrityStatus::Mismatch);

    // The CV certificate's own signature broken: the record is no longer vouched for.
    let mut p = persona("ordinary");
    let cvc = p.text_files.get_mut(&4).unwrap();
    let last = cvc.iter().rposition(|b| *b != 0xFF).unwrap();
    cvc[last] ^= 0x01;
    let (_slot, mut card) = open(p);
    let got = run::read_text(&mut card, b"1234", GUARD).unwrap();
    assert_ne!(got.integrity(&card_ca), IntegrityStatus::Verified);
}

#[test]
fn wrong_pin_reports_tries_left_and_countdown_ends_blocked() {
    let (slot, mut card) = open(persona("ordinary"));
    let err = run::sign(
        &mut card,
        KeyKind::Sign,
        HashAlg::Sha256,
        &[0; 32],
        b"WRONG1",
        GUARD,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        JpkiError::PinIncorrect {
            pin: PinKind::SignPassword,
            remaining: 4
        }
    ));
    assert!(err.to_string().starts_with("remaining=4"), "{err}");
    flows::finish(card).unwrap();

    // 4 → 3 → 2 under the default guard; at 1 the guard refuses without sending the password.
    for left in [3u8, 2, 1] {
        let mut card = session(&slot);
        let err = run::sign(
            &mut card,
            KeyKind::Sign,
            HashAlg::Sha256,
            &[0; 32],
            b"WRONG1",
            GUARD,
        )
        .unwrap_err();
        assert!(
            matches!(err, JpkiError::PinIncorrect { remaining, .. } if remaining == left),
            "{err}"
        );
    }
    let mut card = session(&slot);
    let err = run::sign(
        &mut card,
        KeyKind::Sign,
        HashAlg::Sha256,
        &[0; 32],
        b"TESTPW1",
        GUARD,
    )
    .unwrap_err();
    assert!(
        matches!(err, JpkiError::PinGuard { remaining: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("remaining=1"));
    assert_eq!(card.apdu_count(), 2, "guard decided after the retry query");
    assert_eq!(remaining(&slot, PinId::Sign), 1);

    // With allow-last-try the last wrong attempt blocks (63C0) ...
    let err = run::sign(
        &mut card,
        KeyKind::Sign,
        HashAlg::Sha256,
        &[0; 32],
        b"WRONG1",
        LAST_TRY,
    )
    .unwrap_err();
    assert!(matches!(err, JpkiError::PinBlocked { .. }), "{err}");
    assert_eq!(remaining(&slot, PinId::Sign), 0);
    // ... every later VERIFY answers 6984, which also means blocked ...
    let raw = card
        .exchange(
            &Command::new("VERIFY", 0x00, 0x20, 0x00, 0x9B)
                .with_secret(zeroize::Zeroizing::new(b"TESTPW1".to_vec())),
        )
        .unwrap();
    assert_eq!(raw.sw, StatusWord::ReferenceDataBlocked);
    assert!(raw.sw.means_blocked());
    // ... and the flow stops at the counter, without sending the password.
    let mut card = session(&slot);
    let err = run::sign(
        &mut card,
        KeyKind::Sign,
        HashAlg::Sha256,
        &[0; 32],
        b"TESTPW1",
        LAST_TRY,
    )
    .unwrap_err();
    assert!(matches!(err, JpkiError::PinBlocked { .. }));
    assert_eq!(card.apdu_count(), 2);
    assert_eq!(
        run::pin_status(&mut session(&slot)).unwrap().sign_password,
        0
    );
}

#[test]
fn blocked_persona_and_last_auth_try() {
    let p = persona("blocked");
    let (slot, mut card) = open(p);
    let err = run::read_certificate(&mut card, CardKind::Card, CertKind::Sign, b"TESTPW1", GUARD)
        .unwrap_err();
    assert!(matches!(err, JpkiError::PinBlocked { .. }), "{err}");
    let mut card = session(&slot);
    let err = run::sign(
        &mut card,
        KeyKind::Auth,
        HashAlg::Sha256,
        &[1; 32],
        b"1234",
        GUARD,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            JpkiError::PinGuard {
                pin: PinKind::AuthPin,
                remaining: 1
            }
        ),
        "{err}"
    );
    assert_eq!(remaining(&slot, PinId::Auth), 1);
    let mut card = session(&slot);
    let sig = run::sign(
        &mut card,
        KeyKind::Auth,
        HashAlg::Sha256,
        &[1; 32],
        b"1234",
        LAST_TRY,
    )
    .unwrap();
    assert_eq!(sig.len(), 256);
    // A success resets the counter.
    assert_eq!(remaining(&slot, PinId::Auth), 3);
}

#[test]
fn badly_formed_pins_never_reach_the_card() {
    let bad_sign: [&[u8]; 6] = [
        b"",
        b"ABC12",
        b"ABCDEFGHIJ1234567",
        b"ABC 123",
        "ＴＥＳＴＰＷ１".as_bytes(),
        b"TEST-PW1",
    ];
    let bad_four: [&[u8]; 5] = [b"", b"123", b"12345", b"12a4", "１２３４".as_bytes()];
    let (slot, mut card) = open(persona("ordinary"));
    for s in bad_sign {
        let err = run::sign(
            &mut card,
            KeyKind::Sign,
            HashAlg::Sha256,
            &[0; 32],
            s,
            GUARD,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                JpkiError::PinFormat {
                    pin: PinKind::SignPassword,
                    ..
                }
            ),
            "{err}"
        );
        let err =
            run::read_certificate(&mut card, CardKind::Card, CertKind::Sign, s, GUARD).unwrap_err();
        assert!(matches!(err, JpkiError::PinFormat { .. }));
    }
    for s in bad_four {
        let err = run::sign(
            &mut card,
            KeyKind::Auth,
            HashAlg::Sha256,
            &[0; 32],
            s,
            GUARD,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                JpkiError::PinFormat {
                    pin: PinKind::AuthPin,
                    ..
                }
            ),
            "{err}"
        );
        let err = run::read_text(&mut card, s, GUARD).unwrap_err();
        assert!(matches!(
            err,
            JpkiError::PinFormat {
                pin: PinKind::TextPin,
                ..
            }
        ));
    }
    // Digest of the wrong length: no DigestInfo, so no flow at all.
    for (hash, len) in [
        (HashAlg::Sha256, 0),
        (HashAlg::Sha256, 48),
        (HashAlg::Sha384, 32),
        (HashAlg::Sha512, 65),
    ] {
        let err = DigestInfo::new(hash, &vec![0; len]).unwrap_err();
        assert_eq!(err.got, len);
    }
    // A non-empty secret for a free certificate is a caller mistake, not a PIN attempt; so is
    // the auth PIN for a card's free auth certificate (only the Android token wants it).
    let err = run::read_certificate(&mut card, CardKind::Card, CertKind::AuthCa, b"1234", GUARD)
        .unwrap_err();
    assert!(
        matches!(err, JpkiError::SecretNotWanted(CertKind::AuthCa)),
        "{err}"
    );
    let err = run::read_certificate(&mut card, CardKind::Card, CertKind::Auth, b"0000", GUARD)
        .unwrap_err();
    assert!(
        matches!(err, JpkiError::SecretNotWanted(CertKind::Auth)),
        "{err}"
    );
    assert_eq!(card.apdu_count(), 0, "the card saw nothing");
    assert_eq!(slot.with(|c| c.apdus_seen()).unwrap(), 0);
    for (pin, left) in [(PinId::Sign, 5), (PinId::Auth, 3), (PinId::Text, 3)] {
        assert_eq!(remaining(&slot, pin), left);
    }
    // Lower-case letters are upper-cased, as the card stores them.
    let sig = run::sign(
        &mut card,
        KeyKind::Sign,
        HashAlg::Sha256,
        &[0; 32],
        b"testpw1",
        GUARD,
    );
    assert!(sig.is_ok());
}

#[test]
fn removal_mid_read_is_card_removed() {
    for after in [1u64, 2] {
        let mut p = persona("ordinary");
        p.faults.remove_after = after;
        let (_slot, mut card) = open(p);
        let err = run::read_certificate(&mut card, CardKind::Card, CertKind::Auth, b"", GUARD)
            .unwrap_err();
        assert!(
            matches!(
                err,
                JpkiError::Card(CardError::Transport(TransportError::CardRemoved))
            ),
            "after {after}: {err}"
        );
    }
    // Removal between the retry query and VERIFY: the VERIFY is not repeated, nothing spent.
    let mut p = persona("ordinary");
    p.faults.remove_after = 2;
    let (slot, mut card) = open(p);
    let err = run::sign(
        &mut card,
        KeyKind::Sign,
        HashAlg::Sha256,
        &[0; 32],
        b"TESTPW1",
        GUARD,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        JpkiError::Card(CardError::Transport(TransportError::CardRemoved))
    ));
    assert_eq!(card.apdu_count(), 3);
    assert_eq!(remaining(&slot, PinId::Sign), 5);
}

/// The model knows a mute card never answers: it says `Mute` (a reader would after the mute
/// floor); a slow one that misses the deadline is only a `Timeout`.
#[test]
fn a_mute_card_is_mute_and_a_slow_one_times_out() {
    let mut p = persona("ordinary");
    p.faults.mute_after = 1;
    let (_slot, mut card) = open(p);
    let err = run::pin_status(&mut card).unwrap_err();
    assert!(
        matches!(
            err,
            JpkiError::Card(CardError::Transport(TransportError::Mute))
        ),
        "{err}"
    );
    let mut p = persona("ordinary");
    p.faults.delay_ms = 200;
    let slot = VirtualSlot::with_card(VirtualCard::new(p));
    let t = VirtualTransport::connect(slot, Duration::from_millis(20)).unwrap();
    let mut card = Card::with_deadline(
        t,
        None,
        std::time::Instant::now() + Duration::from_millis(300),
    );
    let err = run::pin_status(&mut card).unwrap_err();
    assert!(
        matches!(
            err,
            JpkiError::Card(CardError::Transport(TransportError::Timeout))
        ),
        "{err}"
    );
}

#[test]
fn delay_6f00_and_61xx_chaining_are_absorbed() {
    let reference = file_cert(&persona("ordinary"), 0x000A);

    let mut p = persona("ordinary");
    p.faults.delay_ms = 2;
    let (_s, mut card) = open(p);
    assert_eq!(
        *run::read_certificate(&mut card, CardKind::Card, CertKind::Auth, b"", GUARD).unwrap(),
        reference
    );
    assert_eq!(card.apdu_count(), 3);

    let mut p = persona("ordinary");
    p.faults.sw_6f00_after_power_on = true;
    let (_s, mut card) = open(p);
    let info = flows::detect(&mut card).unwrap();
    assert_eq!(info.kind, CardKind::Card);
    assert_eq!(card.apdu_count(), 4, "one repeated SELECT");

    let mut p = persona("ordinary");
    p.faults.chain_61xx = 200;
    let n = reference.len();
    let (_s, mut card) = open(p);
    assert_eq!(
        *run::read_certificate(&mut card, CardKind::Card, CertKind::Auth, b"", GUARD).unwrap(),
        reference
    );
    // SELECT; READ 256 answered 61xx, then GET RESPONSE 200 + 56; the extended READ of the
    // rest answered 61xx, then GET RESPONSE in 200-byte pieces.
    let rest = n - 256;
    assert_eq!(card.apdu_count(), 1 + 3 + 1 + rest.div_ceil(200) as u64);
}

#[test]
fn corrupt_and_truncated_certificates() {
    let reference = file_cert(&persona("ordinary"), 0x000A);
    let mut p = persona("ordinary");
    p.faults.corrupt = vec!["jpki/000A".into()];
    let (_s, mut card) = open(p);
    let got = run::read_certificate(&mut card, CardKind::Card, CertKind::Auth, b"", GUARD).unwrap();
    assert_eq!(got.len(), reference.len());
    assert_ne!(
        *got, reference,
        "the card layer returns what the card holds"
    );

    for cut in [0usize, 3, 300, 600] {
        let mut p = persona("ordinary");
        p.jpki_files.get_mut(&0x000A).unwrap().truncate(cut);
        let (_s, mut card) = open(p);
        let err = run::read_certificate(&mut card, CardKind::Card, CertKind::Auth, b"", GUARD)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, JpkiError::Card(CardError::Malformed { .. })),
            "cut {cut}: {text}"
        );
        assert!(text.contains("auth certificate"), "{text}");
    }
}

#[test]
fn verified_state_is_cleared_between_clients() {
    let (slot, mut card) = open(persona("ordinary"));
    run::read_certificate(&mut card, CardKind::Card, CertKind::Sign, b"TESTPW1", GUARD).unwrap();
    assert!(slot.with(|c| c.is_verified(PinId::Sign)).unwrap());
    flows::finish(card).unwrap();
    assert!(!slot.with(|c| c.is_verified(PinId::Sign)).unwrap());
    // A session that presented no PIN leaves the card powered.
    let mut card = session(&slot);
    run::pin_status(&mut card).unwrap();
    assert!(!card.pin_presented());
    flows::finish(card).unwrap();
}

/// What detection says of `p`, on a session of its own (as the reader layer probes a card when
/// it is inserted, before any request).
fn detected(p: &Persona) -> jpkid::jpki::CardInfo {
    let (_slot, mut card) = open(p.clone());
    flows::detect(&mut card).unwrap()
}

/// APDUs of "unlock the signing key, read its certificate, sign once" on `p`: SELECT AP +
/// counter + VERIFY (without SFI: the refused SFI query and SELECT EF 0011 more), the
/// certificate (as `certificates_read_whole_with_fewest_apdus` counts it, the SFI refusal
/// already known), and SIGN (without SFI after SELECT of the key EF).
fn prove_key_apdus(p: &Persona) -> u64 {
    prove_key_apdus_after(p, false)
}

/// As [`prove_key_apdus`]; with `known`, an earlier part of the session already learned that
/// the card refuses SFI forms or extended READs, so no refused attempt is repeated.
fn prove_key_apdus_after(p: &Persona, known: bool) -> u64 {
    let n = file_cert(p, 0x0001).len();
    let unlock = match (p.sfi, known) {
        (true, _) => 3,
        (false, false) => 5,
        (false, true) => 4,
    };
    let read = match (p.sfi, p.extended) {
        (true, true) => 2,
        (true, false) => 1 + u64::from(!known) + ceil256(n - 256),
        (false, true) => 3,
        (false, false) => unreachable!(),
    };
    let sign = if p.sfi { 1 } else { 2 };
    unlock + read + sign
}

/// APDUs of the text AP part (`ReadText`), as `text_attributes_with_their_integrity_check_in_six_apdus`
/// counts them.
fn text_apdus(p: &Persona) -> u64 {
    match (p.sfi, p.extended) {
        (true, true) => 6,
        (true, false) => 10,
        (false, true) => 11,
        (false, false) => unreachable!(),
    }
}

fn card_kind(p: &Persona) -> String {
    p.expect.card_kind.clone().unwrap()
}

/// `Link`'s card part for every persona: a card proves it holds its certificate's key (6
/// APDUs), a forged card cannot (`KeyMismatch`), and the tokens the counter does not accept are
/// refused before any APDU.
#[test]
fn link_proves_possession_of_the_signing_key_for_every_persona() {
    for (name, p) in personas() {
        let kind = card_kind(&p);
        if kind == "not-jpki" {
            continue;
        }
        let info = detected(&p);
        let password = pin_value(&p, PinId::Sign);
        let (slot, mut card) = open(p.clone());
        let flow = flows::Link {
            password: jpkid::jpki::pin::sign_password(&password).unwrap(),
            challenge: run::challenge(),
        };
        let got = flows::run_on(&mut card, flow, &info, GUARD);
        match kind.as_str() {
            "android" | "iphone" => {
                assert!(matches!(got, Err(JpkiError::WrongToken(_))), "{name}");
                assert_eq!(card.apdu_count(), 0, "{name}");
                continue;
            }
            "no-sign-cert" => {
                assert!(
                    matches!(got, Err(JpkiError::CertificateMissing(CertKind::Sign))),
                    "{name}"
                );
                assert_eq!(card.apdu_count(), 0, "{name}");
                continue;
            }
            _ => {}
        }
        if p.pins[PinId::Sign as usize].remaining == 0 {
            assert!(matches!(got, Err(JpkiError::PinBlocked { .. })), "{name}");
            assert_eq!(card.apdu_count(), 2, "{name}");
            continue;
        }
        if p.expect.key_matches_certificate == Some(false) {
            assert!(matches!(got, Err(JpkiError::KeyMismatch)), "{name}");
        } else {
            let proven = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(*proven.certificate, file_cert(&p, 0x0001), "{name}");
        }
        assert_eq!(card.apdu_count(), prove_key_apdus(&p), "{name}");
        if p.sfi && p.extended {
            assert_eq!(card.apdu_count(), 6, "{name}");
        }
        // No try spent, and the session ends unpowered.
        assert_eq!(
            remaining(&slot, PinId::Sign),
            p.pins[PinId::Sign as usize].remaining
        );
        flows::finish(card).unwrap();
        assert!(
            !slot.with(|c| c.is_verified(PinId::Sign)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn a_wrong_signing_password_in_link_reports_the_tries_left() {
    let (slot, mut card) = open(persona("ordinary"));
    let err = run::link(&mut card, CardKind::Card, b"WRONG1", GUARD).unwrap_err();
    assert!(
        matches!(
            err,
            JpkiError::PinIncorrect {
                pin: PinKind::SignPassword,
                remaining: 4
            }
        ),
        "{err}"
    );
    assert_eq!(remaining(&slot, PinId::Sign), 4);
    // Badly formed: refused before the card.
    let (_slot, mut card) = open(persona("ordinary"));
    let err = run::link(&mut card, CardKind::Card, b"short", GUARD).unwrap_err();
    assert!(matches!(err, JpkiError::PinFormat { .. }), "{err}");
    assert_eq!(card.apdu_count(), 0);
}

fn openssl_cms_verify(der: &[u8], root_pem: &std::path::Path, at: i64) -> (bool, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("c.p7m"), der).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any",
        ])
        .arg("-in")
        .arg(tmp.path().join("c.p7m"))
        .arg("-CAfile")
        .arg(root_pem)
        .args(["-attime", &at.to_string(), "-out"])
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    (
        out.status.success(),
        std::fs::read(tmp.path().join("out")).unwrap_or_default(),
    )
}

/// `SignConsent`'s card part: a CMS over the canonical document, in 6 APDUs, that openssl
/// verifies against the persona's root; a forged card yields `KeyMismatch` and no CMS.
#[test]
fn sign_consent_makes_a_cms_openssl_verifies() {
    use jpkid::terms::{ConsentDocument, DocumentKind};
    let testpki = jpki_vcard::testpki_dir();
    for (name, p) in personas() {
        let kind = card_kind(&p);
        if kind != "card" || p.pins[PinId::Sign as usize].remaining < 2 {
            continue;
        }
        let info = detected(&p);
        let password = pin_value(&p, PinId::Sign);
        let draft = run::draft(DocumentKind::Consent, &["name", "address"], Some("R-7"));
        let (slot, mut card) = open(p.clone());
        let flow = flows::SignConsent {
            password: jpkid::jpki::pin::sign_password(&password).unwrap(),
            draft,
        };
        let got = flows::run_on(&mut card, flow, &info, GUARD);
        assert_eq!(card.apdu_count(), prove_key_apdus(&p), "{name}");
        flows::finish(card).unwrap();
        assert!(
            !slot.with(|c| c.is_verified(PinId::Sign)).unwrap(),
            "{name}"
        );
        if p.expect.key_matches_certificate == Some(false) {
            assert!(matches!(got, Err(JpkiError::KeyMismatch)), "{name}");
            continue;
        }
        let signed = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        let doc = ConsentDocument::parse_canonical(&signed.document).unwrap();
        assert_eq!(doc.kind, DocumentKind::Consent);
        assert_eq!(doc.items.names(), ["address", "name"], "{name}");
        assert_eq!(doc.reference.as_deref(), Some("R-7"));
        assert_eq!(doc.serial, p.expect.sign_serial.clone().unwrap(), "{name}");
        assert_eq!(doc.serial, signed.serial);
        let opened = jpkid::pki::cms::verify_signed_data(&signed.cms, None).unwrap();
        assert_eq!(opened.content, signed.document.as_bytes());
        assert_eq!(opened.signer_cert_der, file_cert(&p, 0x0001));
        assert_eq!(opened.signing_time, Some(1_795_000_000));
        let issuer = p.expect.sign_issuer.clone().unwrap();
        let root = testpki.join(format!("sign_root_{issuer}.pem"));
        // Within the certificate's validity (the expired persona's ended in 2025).
        let at = if p.expect.sign_status.as_deref() == Some("expired") {
            1_700_000_000
        } else {
            1_795_000_000
        };
        let (ok, content) = openssl_cms_verify(&signed.cms, &root, at);
        assert!(ok, "{name}: openssl cms -verify refused the consent");
        assert_eq!(content, signed.document.as_bytes(), "{name}");
        // One byte of the document changed: neither openssl nor jpkid accept it.
        let at_doc = signed
            .cms
            .windows(signed.document.len())
            .position(|w| w == signed.document.as_bytes())
            .unwrap();
        let mut changed = signed.cms.to_vec();
        changed[at_doc + 2] ^= 0x01;
        assert!(!openssl_cms_verify(&changed, &root, at).0, "{name}");
        assert!(
            jpkid::pki::cms::open(&changed).unwrap().check().is_err(),
            "{name}"
        );
    }
}

/// `MatchAttributes` on one card for every persona: the persona's expected comparison and
/// integrity, possession proven, in 12 APDUs.
#[test]
fn match_attributes_reports_each_personas_expected_result() {
    for (name, p) in personas() {
        if card_kind(&p) != "card" || !p.text_ap || p.pins[PinId::Sign as usize].remaining < 2 {
            continue;
        }
        let info = detected(&p);
        let text_pin = pin_value(&p, PinId::Text);
        let password = pin_value(&p, PinId::Sign);
        let (slot, mut card) = open(p.clone());
        let flow = flows::MatchAttributes {
            text: flows::ReadText {
                pin: jpkid::jpki::pin::text_pin(&text_pin).unwrap(),
            },
            key: flows::ProveKey {
                password: jpkid::jpki::pin::sign_password(&password).unwrap(),
                challenge: run::challenge(),
            },
            card_ca: std::sync::Arc::new(run::card_ca()),
        };
        let got = flows::run_on(&mut card, flow, &info, GUARD);
        let apdus = text_apdus(&p) + prove_key_apdus_after(&p, true);
        assert_eq!(card.apdu_count(), apdus, "{name}");
        if p.sfi && p.extended {
            assert_eq!(apdus, 12, "{name}");
        }
        flows::finish(card).unwrap();
        assert!(
            !slot.with(|c| c.is_verified(PinId::Sign)).unwrap(),
            "{name}"
        );
        assert!(
            !slot.with(|c| c.is_verified(PinId::Text)).unwrap(),
            "{name}"
        );
        if p.expect.key_matches_certificate == Some(false) {
            assert!(matches!(got, Err(JpkiError::KeyMismatch)), "{name}");
            continue;
        }
        let m = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            m.comparison.all_exact(),
            p.expect.attributes_match.unwrap(),
            "{name}"
        );
        assert_eq!(
            m.integrity.as_str(),
            p.expect.integrity.as_deref().unwrap(),
            "{name}"
        );
        if name == "moved" {
            // The signing certificate still carries the old address (PERSONAS.md).
            assert!(!m.comparison.address.exact);
            assert!(m.comparison.name.exact && m.comparison.birth_date.exact);
        }
    }
}

/// APDUs of `CheckAuthenticity` on `p`: SELECT visual AP, retry counter, VERIFY, the face
/// (a short READ that tells its length, then the rest), the CV certificate, the challenge.
fn authenticity_apdus(p: &Persona) -> u64 {
    let face = jpkid::tlv::read_header(&p.visual_files[&2], 0)
        .unwrap()
        .total_len();
    match (p.sfi, p.extended) {
        (true, true) => 7,
        // The refused extended READ, then 256-byte pieces; EF 0004 (568 bytes) in three.
        (true, false) => 3 + 1 + 1 + ceil256(face - 256) + ceil256(568) + 1,
        // The SFI counter query refused, SELECT EF 0012 + the counter, VERIFY of the EF now
        // current, then SELECT EF + the READs of each file.
        (false, true) => 5 + 3 + 2 + 1,
        (false, false) => unreachable!(),
    }
}

/// Every APDU a session sent.
type ApduLog = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

fn logged_session(slot: &VirtualSlot) -> (Card<run::Logged<VirtualTransport>>, ApduLog) {
    let log = std::sync::Arc::default();
    let t = run::Logged {
        inner: VirtualTransport::connect(slot.clone(), Duration::from_millis(20)).unwrap(),
        log: std::sync::Arc::clone(&log),
    };
    (Card::new(t, None), log)
}

fn assert_no_code_a_or_my_number(log: &[Vec<u8>], what: &str) {
    for apdu in log {
        assert!(
            !run::names_code_a_or_my_number(apdu),
            "{what}: {}",
            hex::encode_upper(apdu)
        );
    }
}

/// `CheckAuthenticity` for every persona with a visual AP: the persona's expected verdict
/// (PERSONAS.md `authenticity`, `expiry`) in 7 APDUs, the card unpowered after, the photo only
/// when asked and only when J-LIS signed it, and no APDU naming 照合番号A or EF 0005.
#[test]
fn check_authenticity_gives_each_personas_verdict() {
    let mut seen = std::collections::BTreeSet::new();
    for (name, p) in personas() {
        if !p.visual_ap || card_kind(&p) == "not-jpki" {
            continue;
        }
        let expected = p.expect.authenticity.clone().unwrap();
        seen.insert(expected.clone());
        let code_b = pin_value(&p, PinId::CodeB);
        let apdus = authenticity_apdus(&p);
        let slot = VirtualSlot::with_card(VirtualCard::new(p.clone()));
        for photo in [false, true] {
            let (mut card, log) = logged_session(&slot);
            let got = run::check_authenticity(&mut card, CardKind::Card, &code_b, photo, GUARD)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(card.apdu_count(), apdus, "{name}");
            if p.sfi && p.extended {
                assert_eq!(apdus, 7, "{name}");
            }
            flows::finish(card).unwrap();
            assert!(
                !slot.with(|c| c.is_verified(PinId::CodeB)).unwrap(),
                "{name}: the card is unpowered after the request"
            );
            assert_no_code_a_or_my_number(&log.lock().unwrap(), &name);
            let v = &got.verdict;
            let (cv, face, challenge) = run::expected_verdicts(&expected);
            assert_eq!(
                (
                    v.cv_certificate.as_str(),
                    v.card_face.as_str(),
                    v.challenge.as_str()
                ),
                (cv, face, challenge),
                "{name}"
            );
            assert_eq!(v.genuine(), expected == "genuine", "{name}");
            assert_eq!(v.expiry, p.expect.expiry, "{name}");
            // The photo only when asked and only as J-LIS signed it (a forged face's image is
            // never handed to the counter's JPEG 2000 decoder).
            let signed = cv == "verified" && face == "verified";
            match (photo && signed, &got.photo) {
                (false, None) => {}
                (true, Some(jp2)) => {
                    // A JPEG 2000 file: the signature box.
                    assert_eq!(&jp2[..12], b"\0\0\0\x0CjP  \r\n\x87\n", "{name}");
                }
                other => panic!("{name}: photo {other:?}"),
            }
        }
        assert_eq!(
            remaining(&slot, PinId::CodeB),
            p.pins[PinId::CodeB as usize].remaining,
            "{name}: the right code costs no try"
        );
    }
    let all: std::collections::BTreeSet<String> = [
        "genuine",
        "cv-untrusted",
        "card-face-mismatch",
        "challenge-failed",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(seen, all, "every verdict has its persona");
}

/// Without the card CA keys configured, a genuine card's CV certificate is `untrusted` and the
/// card is not called genuine; a smartphone token or a card without the visual AP is refused.
#[test]
fn check_authenticity_needs_the_card_ca_keys_and_a_visual_ap() {
    let p = persona("ordinary");
    let code_b = pin_value(&p, PinId::CodeB);
    let (_slot, mut card) = open(p.clone());
    let flow = flows::CheckAuthenticity {
        code: jpkid::jpki::pin::code_b(&code_b).unwrap(),
        challenge: run::challenge(),
        photo: false,
        card_ca: std::sync::Arc::new(jpkid::pki::cvc::CardCaKeys::none(
            jpkid::pki::Hierarchy::Test,
        )),
    };
    let got = flows::run_on(&mut card, flow, &run::info(CardKind::Card), GUARD).unwrap();
    assert_eq!(got.verdict.cv_certificate.as_str(), "untrusted");
    assert_eq!(got.verdict.card_face.as_str(), "verified");
    assert!(!got.verdict.genuine());

    for kind in [CardKind::Android, CardKind::Iphone] {
        let (_slot, mut card) = open(persona("android"));
        let err = run::check_authenticity(&mut card, kind, &code_b, false, GUARD).unwrap_err();
        assert!(matches!(err, JpkiError::NoVisualApplication), "{err}");
        assert_eq!(card.apdu_count(), 0);
    }
    let mut without = p.clone();
    without.visual_ap = false;
    let (_slot, mut card) = open(without);
    let err =
        run::check_authenticity(&mut card, CardKind::Card, &code_b, false, GUARD).unwrap_err();
    assert!(matches!(err, JpkiError::NoVisualApplication), "{err}");
    assert_eq!(card.apdu_count(), 1);
}

/// 照合番号B of the wrong form never reaches the card; a wrong one costs one try and says how
/// many are left; the guard stops the last ones; blocked is blocked.
#[test]
fn code_b_errors() {
    let p = persona("ordinary");
    let max = p.pins[PinId::CodeB as usize].remaining;
    let slot = VirtualSlot::with_card(VirtualCard::new(p));
    for bad in [
        &b"0201022035733"[..],
        b"020102203573333",
        b"0201022035733X",
        b"",
    ] {
        let (mut card, log) = logged_session(&slot);
        let err =
            run::check_authenticity(&mut card, CardKind::Card, bad, false, GUARD).unwrap_err();
        assert!(
            matches!(
                err,
                JpkiError::PinFormat {
                    pin: PinKind::CodeB,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(card.apdu_count(), 0);
        assert!(log.lock().unwrap().is_empty());
    }
    assert_eq!(slot.with(|c| c.apdus_seen()).unwrap(), 0);
    let wrong = b"99999999999999";
    // From 10 tries down to 1, each wrong code reported with what is left.
    for left in (1..max).rev() {
        let (mut card, log) = logged_session(&slot);
        let got = run::check_authenticity(&mut card, CardKind::Card, wrong, false, GUARD);
        flows::finish(card).unwrap();
        assert_no_code_a_or_my_number(&log.lock().unwrap(), "wrong code");
        match got {
            Err(JpkiError::PinIncorrect {
                pin: PinKind::CodeB,
                remaining,
            }) => assert_eq!(remaining, left),
            other => panic!("{other:?}"),
        }
    }
    // One try left: the guard refuses without sending the code.
    let (mut card, _log) = logged_session(&slot);
    let err = run::check_authenticity(&mut card, CardKind::Card, wrong, false, GUARD).unwrap_err();
    assert!(
        matches!(
            err,
            JpkiError::PinGuard {
                pin: PinKind::CodeB,
                remaining: 1
            }
        ),
        "{err}"
    );
    assert_eq!(card.apdu_count(), 2, "SELECT and the retry counter only");
    flows::finish(card).unwrap();
    assert_eq!(remaining(&slot, PinId::CodeB), 1);
    // The last try, allowed: blocked.
    let (mut card, _log) = logged_session(&slot);
    let err =
        run::check_authenticity(&mut card, CardKind::Card, wrong, false, LAST_TRY).unwrap_err();
    assert!(matches!(err, JpkiError::PinBlocked { .. }), "{err}");
    flows::finish(card).unwrap();
    assert_eq!(remaining(&slot, PinId::CodeB), 0);
}

/// The scan of the APDU logs above finds what it is for.
#[test]
fn the_code_a_scan_sees_code_a_and_ef_0005() {
    for apdu in [
        &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x13][..],
        &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x05],
        &[0x00, 0x20, 0x00, 0x93],
        &[0x00, 0x20, 0x00, 0x93, 0x0C, 0x39],
        &[0x00, 0xB0, 0x85, 0x00, 0x00],
    ] {
        assert!(run::names_code_a_or_my_number(apdu), "{apdu:02X?}");
    }
    for apdu in [
        &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x12][..],
        &[0x00, 0x20, 0x00, 0x92],
        &[0x00, 0xB0, 0x82, 0x00, 0x00],
        &[0x00, 0xB0, 0x84, 0x00, 0x00, 0x02, 0x38],
    ] {
        assert!(!run::names_code_a_or_my_number(apdu), "{apdu:02X?}");
    }
    let trace = "TRACE apdu: n=4 > SELECT EF [00 A4 02 0C] data=0013\n\
                 TRACE apdu: n=5 > VERIFY [00 20 00 92] data=[14 bytes redacted]\n\
                 TRACE apdu: n=6 > READ BINARY [00 B0 85 00] data=- le=256\n";
    assert_eq!(run::trace_names_code_a_or_my_number(trace).len(), 2);
}
