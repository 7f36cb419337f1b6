//! No PIN digit (照合番号B included), no attribute value and no byte of the face photo may
//! appear in the trace or the log, at any level (DESIGN §7). The flows run with the APDU trace on and every event captured.
#![cfg(feature = "virtual-card")]
// Test helpers outside #[test] functions may panic: a panic is a test failure here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support {
    pub mod run;
}

use jpki_vcard::{Persona, PinId, VirtualCard};
use jpkid::api::{HashAlg, KeyKind};
use jpkid::card::Card;
use jpkid::flows;
use jpkid::jpki::{CardKind, CertKind, PinGuard};
use jpkid::transport::r#virtual::{VirtualSlot, VirtualTransport};
use support::run;
use zeroize::Zeroizing;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The secrets: chosen so that neither they nor their hex form occur by chance.
const SIGN_PW: &[u8] = b"QZ7XK9WV";
const AUTH_PIN: &[u8] = b"8071";
const TEXT_PIN: &[u8] = b"6952";
/// 照合番号B: 14 digits, none of its 8-digit runs a date or a count a trace would print.
const CODE_B: &[u8] = b"73914682059317";

#[test]
fn trace_and_log_show_no_pin_and_no_attribute() {
    let mut p = Persona::load(&jpki_vcard::persona_dir("ordinary")).unwrap();
    p.pins[PinId::Sign as usize].value = Zeroizing::new(SIGN_PW.to_vec());
    p.pins[PinId::Auth as usize].value = Zeroizing::new(AUTH_PIN.to_vec());
    p.pins[PinId::Text as usize].value = Zeroizing::new(TEXT_PIN.to_vec());
    p.pins[PinId::CodeB as usize].value = Zeroizing::new(CODE_B.to_vec());
    let slot = VirtualSlot::with_card(VirtualCard::new(p));

    let out = Captured::default();
    let writer = out.clone();
    // No timestamps: their digits would contain a 4-digit PIN by chance (they did, 2 runs in
    // 30). Every event and field is kept.
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let guard = PinGuard::default();
    let mut values: Vec<String> = Vec::new();
    let mut digests: Vec<String> = Vec::new();
    let mut photo: Vec<u8> = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let card = || {
            Card::new(
                VirtualTransport::connect(slot.clone(), Duration::ZERO).unwrap(),
                None,
            )
        };
        let mut c = card();
        flows::detect(&mut c).unwrap();
        run::pin_status(&mut c).unwrap();
        let sign_cert =
            run::read_certificate(&mut c, CardKind::Card, CertKind::Sign, SIGN_PW, guard).unwrap();
        run::sign(
            &mut c,
            KeyKind::Sign,
            HashAlg::Sha256,
            &[7; 32],
            SIGN_PW,
            guard,
        )
        .unwrap();
        flows::finish(c).unwrap();
        let mut c = card();
        run::sign(
            &mut c,
            KeyKind::Auth,
            HashAlg::Sha384,
            &[7; 48],
            AUTH_PIN,
            guard,
        )
        .unwrap();
        // A wrong PIN's error is logged as callers would log it.
        let err = run::sign(
            &mut c,
            KeyKind::Auth,
            HashAlg::Sha256,
            &[7; 32],
            b"0000",
            guard,
        )
        .unwrap_err();
        tracing::error!("sign failed: {err} / {err:?}");
        flows::finish(c).unwrap();
        let mut c = card();
        let text = run::read_text(&mut c, TEXT_PIN, guard).unwrap();
        tracing::info!("attributes: {:?}", text);
        flows::finish(c).unwrap();
        // EF 0003's digests: DF31 is the SHA-256 of the My Number file, which a search over
        // 10^11 numbers inverts; every text AP response is personal (DESIGN §3).
        digests.push(hex::encode_upper(text.record.my_number_digest));
        digests.push(hex::encode_upper(text.record.basic_four_digest));
        values.push(text.attributes.name.to_string());
        values.push(text.attributes.address.to_string());
        values.push(text.attributes.birth_date.to_string());
        // The subject of the signing certificate is personal too.
        let attrs = jpkid::pki::attributes::from_certificate(&sign_cert).unwrap();
        values.push(attrs.name.to_string());
        values.push(attrs.address.to_string());
        // The visual AP: 照合番号B, then the card face (the photo) and its verdict, logged as
        // a caller would; a wrong code's error too.
        let mut c = card();
        let checked = run::check_authenticity(&mut c, CardKind::Card, CODE_B, true, guard).unwrap();
        assert!(checked.verdict.genuine());
        tracing::info!("authenticity: {checked:?}");
        photo = checked.photo.as_deref().unwrap().to_vec();
        flows::finish(c).unwrap();
        let mut c = card();
        let err = run::check_authenticity(&mut c, CardKind::Card, b"73914682059318", false, guard)
            .unwrap_err();
        tracing::error!("authenticity failed: {err} / {err:?}");
        flows::finish(c).unwrap();
    });

    let log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("VERIFY"), "the trace ran: {log}");
    assert!(log.contains("READ BINARY"));
    let upper = log.to_uppercase();
    assert!(
        log.contains("SELECT VISUAL AP"),
        "the visual AP's trace ran"
    );
    for secret in [SIGN_PW, AUTH_PIN, TEXT_PIN, CODE_B, b"73914682059318"] {
        let text = std::str::from_utf8(secret).unwrap();
        assert!(!contains_token(&log, text), "PIN {text} in the log");
        let hex = hex::encode_upper(secret);
        assert!(!upper.replace(' ', "").contains(&hex), "PIN hex in the log");
    }
    let compact = upper.replace(' ', "");
    // The photo: no 8 bytes of it past the JP2 signature box (its COM text names the persona).
    assert!(photo.len() > 100);
    for piece in photo[12..]
        .chunks_exact(8)
        .filter(|p| p.iter().any(|b| *b != p[0]))
    {
        let hex = hex::encode_upper(piece);
        assert!(!compact.contains(&hex), "photo bytes in the log: {hex}");
    }
    let com = String::from_utf8_lossy(&photo);
    assert!(
        !log.contains("synthetic photo placeholder"),
        "the photo's text in the log: {com}"
    );
    assert_eq!(digests.len(), 2);
    for d in digests {
        // Any 8 bytes of either digest.
        for start in (0..d.len() - 16).step_by(16) {
            assert!(
                !compact.contains(&d[start..start + 16]),
                "integrity record bytes in the log"
            );
        }
    }
    for v in values {
        assert!(!v.is_empty());
        assert!(!log.contains(&v), "attribute value in the log");
        let hex = hex::encode_upper(v.as_bytes());
        assert!(
            !upper.replace(' ', "").contains(&hex[..hex.len().min(16)]),
            "attribute bytes in the log"
        );
        // Not even a part of a name or address: their first few characters. (A birth date's
        // first digits would match timestamps by chance; its whole value is checked above.)
        if !v.is_ascii() {
            let prefix: String = v.chars().take(3).collect();
            assert!(!log.contains(&prefix), "attribute prefix in the log");
        }
    }
}

/// Whether `needle` occurs in `log` on its own, not inside a longer run of letters or digits
/// (an APDU counter or a duration can hold a 4-digit PIN's digits by chance; a leaked PIN
/// stands alone: `pin=8071`, `"8071"`).
fn contains_token(log: &str, needle: &str) -> bool {
    log.match_indices(needle).any(|(i, _)| {
        let before = log[..i].chars().next_back();
        let after = log[i + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[test]
fn a_token_is_found_alone_and_not_inside_other_digits() {
    assert!(contains_token("pin=8071 ok", "8071"));
    assert!(contains_token("\"8071\"", "8071"));
    assert!(!contains_token("2026-12-01T08:07:12.180712Z", "8071"));
    assert!(!contains_token("n=18071", "8071"));
}
