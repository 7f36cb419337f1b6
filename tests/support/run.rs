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
use jpkid::flows::{self, CertificateRequest, ReadCertificate, TextAttributes};
use jpkid::jpki::pin::{self, KeySecret};
use jpkid::jpki::{CardInfo, CardKind, CertKind, JpkiError, PinGuard};
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

/// The text AP's basic four with their integrity check.
pub fn read_text<T: CardTransport>(
    card: &mut Card<T>,
    text_pin: &[u8],
    guard: PinGuard,
    check_signature: bool,
) -> Result<TextAttributes, JpkiError> {
    let flow = flows::ReadText {
        pin: pin::text_pin(text_pin)?,
        check_signature,
    };
    flows::run_on(card, flow, &info(CardKind::Card), guard)
}
