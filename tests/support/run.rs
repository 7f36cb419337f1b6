//! The card flows as a test drives them without the reader layer: raw arguments validated into
//! the flows' typed values exactly as the service does, then run on a session the test holds.
//!
//! ```ignore
//! mod support {
//!     pub mod run;
//! }
//! ```

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jpkid::api::{HashAlg, KeyKind, PinCounters};
use jpkid::card::Card;
use jpkid::digest::DigestInfo;
use jpkid::flows::{
    self, AttributesMatched, AuthenticityChecked, CertificateRequest, ConsentDraft,
    ProvenCertificate, ReadCertificate, SignedConsent, TextAttributes,
};
use jpkid::jpki::pin::{self, KeySecret};
use jpkid::jpki::{CardInfo, CardKind, CertKind, JpkiError, PinGuard};
use jpkid::pki::Hierarchy;
use jpkid::pki::cvc::CardCaKeys;
use jpkid::terms::{ConsentItems, DocumentKind};
use jpkid::transport::{CardTransport, SessionEnd, TransportError};
use zeroize::Zeroizing;

/// What detection would have said of a token of `kind` with both certificates.
pub fn info(kind: CardKind) -> CardInfo {
    CardInfo {
        kind,
        label: String::new(),
        has_sign_cert: true,
        has_auth_cert: true,
    }
}

/// `GetPinStatus`.
pub fn pin_status<T: CardTransport>(card: &mut Card<T>) -> Result<PinCounters, JpkiError> {
    flows::run_on(
        card,
        flows::GetPinStatus,
        &info(CardKind::Card),
        PinGuard::default(),
    )
}

/// `ReadCertificate(which, secret)` on a token of `kind`.
pub fn read_certificate<T: CardTransport>(
    card: &mut Card<T>,
    kind: CardKind,
    which: CertKind,
    secret: &[u8],
    guard: PinGuard,
) -> Result<Zeroizing<Vec<u8>>, JpkiError> {
    let request = CertificateRequest::new(which, secret)?;
    flows::run_on(card, ReadCertificate(request), &info(kind), guard)
}

/// `Sign(key, hash, digest, secret)`; the digest must fit the hash.
pub fn sign<T: CardTransport>(
    card: &mut Card<T>,
    key: KeyKind,
    hash: HashAlg,
    digest: &[u8],
    secret: &[u8],
    guard: PinGuard,
) -> Result<Vec<u8>, JpkiError> {
    let digest = DigestInfo::new(hash, digest).expect("a digest of the hash's length");
    let secret = KeySecret::new(key, secret)?;
    flows::run_on(
        card,
        flows::Sign { secret, digest },
        &info(CardKind::Card),
        guard,
    )
}

/// The text AP's basic four with what checks them.
pub fn read_text<T: CardTransport>(
    card: &mut Card<T>,
    text_pin: &[u8],
    guard: PinGuard,
) -> Result<TextAttributes, JpkiError> {
    let flow = flows::ReadText {
        pin: pin::text_pin(text_pin)?,
    };
    flows::run_on(card, flow, &info(CardKind::Card), guard)
}

/// The test PKI's card CA keys (`hw-fixtures/testpki/card_ca`), as a test configuration has
/// them.
pub fn card_ca() -> CardCaKeys {
    CardCaKeys::load(Hierarchy::Test, &jpki_vcard::card_ca_dir()).unwrap()
}

/// A fresh challenge, as the service makes one.
pub fn challenge() -> [u8; 32] {
    let mut c = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut c);
    c
}

/// `Link`'s card part on a token of `kind`.
pub fn link<T: CardTransport>(
    card: &mut Card<T>,
    kind: CardKind,
    password: &[u8],
    guard: PinGuard,
) -> Result<ProvenCertificate, JpkiError> {
    let flow = flows::Link {
        password: pin::sign_password(password)?,
        challenge: challenge(),
    };
    flows::run_on(card, flow, &info(kind), guard)
}

/// A consent draft as the service makes one.
pub fn draft(kind: DocumentKind, items: &[&str], reference: Option<&str>) -> ConsentDraft {
    ConsentDraft {
        kind,
        items: ConsentItems::parse(items).unwrap(),
        terminal: "counter-1".to_owned(),
        reference: reference.map(str::to_owned),
        signed_at: time::OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap(),
    }
}

/// `SignConsent`'s card part on a token of `kind`.
pub fn sign_consent<T: CardTransport>(
    card: &mut Card<T>,
    kind: CardKind,
    password: &[u8],
    draft: ConsentDraft,
    guard: PinGuard,
) -> Result<SignedConsent, JpkiError> {
    let flow = flows::SignConsent {
        password: pin::sign_password(password)?,
        draft,
    };
    flows::run_on(card, flow, &info(kind), guard)
}

/// `MatchAttributes` on one card.
pub fn match_attributes<T: CardTransport>(
    card: &mut Card<T>,
    text_pin: &[u8],
    password: &[u8],
    guard: PinGuard,
) -> Result<AttributesMatched, JpkiError> {
    let flow = flows::MatchAttributes {
        text: flows::ReadText {
            pin: pin::text_pin(text_pin)?,
        },
        key: flows::ProveKey {
            password: pin::sign_password(password)?,
            challenge: challenge(),
        },
        card_ca: std::sync::Arc::new(card_ca()),
    };
    flows::run_on(card, flow, &info(CardKind::Card), guard)
}

/// `CheckAuthenticity`'s card part on a token of `kind`, against the test card CA keys.
pub fn check_authenticity<T: CardTransport>(
    card: &mut Card<T>,
    kind: CardKind,
    code_b: &[u8],
    photo: bool,
    guard: PinGuard,
) -> Result<AuthenticityChecked, JpkiError> {
    let flow = flows::CheckAuthenticity {
        code: pin::code_b(code_b)?,
        challenge: challenge(),
        photo,
        card_ca: std::sync::Arc::new(card_ca()),
    };
    flows::run_on(card, flow, &info(kind), guard)
}

/// The persona's expected `CheckAuthenticity` verdict (PERSONAS.md `authenticity`) as the
/// three D-Bus words `(cv-certificate, card-face, challenge)`.
pub fn expected_verdicts(authenticity: &str) -> (&'static str, &'static str, &'static str) {
    match authenticity {
        "genuine" => ("verified", "verified", "verified"),
        "cv-untrusted" => ("untrusted", "verified", "verified"),
        "card-face-mismatch" => ("verified", "mismatch", "verified"),
        "challenge-failed" => ("verified", "verified", "failed"),
        other => panic!("unknown authenticity expectation {other}"),
    }
}

/// Whether a command APDU names 照合番号A or the rendered My Number: SELECT of EF 0013 (visual
/// 照合番号A), 0014 (text 照合番号A) or 0005 (visual My Number image), VERIFY of SFI 13/14,
/// READ BINARY of SFI 5. `CheckAuthenticity` must never send one.
pub fn names_code_a_or_my_number(apdu: &[u8]) -> bool {
    let [_, ins, p1, p2, rest @ ..] = apdu else {
        return false;
    };
    let forbidden_ef = |d: &[u8]| matches!(d, [0x00, 0x13] | [0x00, 0x14] | [0x00, 0x05]);
    match (*ins, *p1, *p2) {
        (0xA4, 0x02, _) => rest.get(1..3).is_some_and(forbidden_ef),
        (0x20, _, 0x93 | 0x94) => true,
        (0xB0, 0x85, _) => true,
        _ => false,
    }
}

/// The same over the daemon's APDU trace (`> NAME [CLA INS P1 P2] data=HEX …` lines): the
/// lines that name 照合番号A or EF 0005.
pub fn trace_names_code_a_or_my_number(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter(|l| {
            let Some(start) = l.find(" [") else {
                return false;
            };
            let Some(head) = l.get(start + 2..start + 13) else {
                return false;
            };
            let mut apdu: Vec<u8> = head
                .split(' ')
                .filter_map(|b| u8::from_str_radix(b, 16).ok())
                .collect();
            if apdu.len() != 4 {
                return false;
            }
            if let Some(d) = l.split("data=").nth(1) {
                let hex: String = d.chars().take_while(char::is_ascii_hexdigit).collect();
                if let Ok(data) = hex::decode(&hex) {
                    apdu.push(u8::try_from(data.len()).unwrap_or(0xFF));
                    apdu.extend(data);
                }
            }
            names_code_a_or_my_number(&apdu)
        })
        .map(str::to_owned)
        .collect()
}

/// A transport that keeps every command APDU it passes on.
#[derive(Debug)]
pub struct Logged<T> {
    /// The transport.
    pub inner: T,
    /// Every APDU sent, in order.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl<T: CardTransport> CardTransport for Logged<T> {
    fn transmit(
        &mut self,
        apdu: &[u8],
        deadline: std::time::Instant,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(apdu.to_vec());
        self.inner.transmit(apdu, deadline)
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn extended_length_hint(&self) -> Option<bool> {
        self.inner.extended_length_hint()
    }
    fn hold_exclusive(&mut self) -> Result<(), TransportError> {
        self.inner.hold_exclusive()
    }
    fn end_session(&mut self, end: SessionEnd) -> Result<(), TransportError> {
        self.inner.end_session(end)
    }
}
