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
    self, AttributesMatched, CertificateRequest, ConsentDraft, ProvenCertificate, ReadCertificate,
    SignedConsent, TextAttributes,
};
use jpkid::jpki::pin::{self, KeySecret};
use jpkid::jpki::{CardInfo, CardKind, CertKind, JpkiError, PinGuard};
use jpkid::pki::Hierarchy;
use jpkid::pki::cvc::CardCaKeys;
use jpkid::terms::{ConsentItems, DocumentKind};
use jpkid::transport::CardTransport;
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
