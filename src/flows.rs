//! The card operations jpkid offers, each as one request on one card session: PIN status,
//! reading a certificate, signing a digest, reading the basic four with their integrity check.
//! Secrets arrive as raw bytes and are validated here, before any APDU, so a badly typed PIN
//! never costs a try. Every flow that presents a PIN ends with the card unpowered.
//!
//! Knows nothing of D-Bus; the reader layer runs these on its worker threads.

use zeroize::Zeroizing;

use crate::card::Card;
use crate::jpki::ap::{self, HashAlg, KeyKind};
use crate::jpki::pin::{FourDigitPin, SignPassword};
use crate::jpki::text::{self, BasicFour, Integrity};
use crate::jpki::{CardInfo, CardKind, CertKind, JpkiError, PinGuard, PinKind};
use crate::transport::{CardTransport, SessionEnd};

/// Tries left per PIN; `None` where the token has no such PIN (no text AP on smartphones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinStatus {
    /// 署名用パスワード.
    pub sign_password: u8,
    /// 利用者証明用暗証番号.
    pub auth_pin: u8,
    /// 券面事項入力補助用暗証番号, absent on smartphone tokens.
    pub text_pin: Option<u8>,
}

impl PinStatus {
    /// `(key, tries)` pairs with the D-Bus key names.
    pub fn entries(&self) -> Vec<(&'static str, u8)> {
        let mut out = vec![
            (PinKind::SignPassword.as_str(), self.sign_password),
            (PinKind::AuthPin.as_str(), self.auth_pin),
        ];
        if let Some(t) = self.text_pin {
            out.push((PinKind::TextPin.as_str(), t));
        }
        out
    }
}

/// A validated secret for a PIN, checked against that PIN's format rules.
pub enum Secret {
    /// The signing password.
    Sign(SignPassword),
    /// A four-digit PIN (auth or text).
    FourDigit(PinKind, FourDigitPin),
}

impl Secret {
    /// Validates raw bytes as the secret for `pin`.
    ///
    /// # Errors
    /// [`JpkiError::PinFormat`] naming the rule; the card is not touched.
    pub fn for_pin(pin: PinKind, raw: &[u8]) -> Result<Secret, JpkiError> {
        let format = |source| JpkiError::PinFormat { pin, source };
        match pin {
            PinKind::SignPassword => SignPassword::new(raw).map(Secret::Sign).map_err(format),
            PinKind::AuthPin | PinKind::TextPin => FourDigitPin::new(raw)
                .map(|p| Secret::FourDigit(pin, p))
                .map_err(format),
        }
    }

    /// Which PIN this secret is for.
    pub fn pin(&self) -> PinKind {
        match self {
            Secret::Sign(_) => PinKind::SignPassword,
            Secret::FourDigit(pin, _) => *pin,
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Secret::Sign(p) => p.bytes(),
            Secret::FourDigit(_, p) => p.bytes(),
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}, redacted)", self.pin())
    }
}

/// Detects the token on a fresh session.
///
/// # Errors
/// A [`JpkiError`] when the card fails.
pub fn detect<T: CardTransport>(card: &mut Card<T>) -> Result<CardInfo, JpkiError> {
    ap::detect(card)
}

/// Reads all retry counters without spending a try: 5 APDUs on a card (JPKI AP, two counters,
/// text AP, one counter), 4 on a smartphone token (its text AP SELECT fails).
///
/// # Errors
/// [`JpkiError::NotJpkiCard`] or a card error.
pub fn pin_status<T: CardTransport>(card: &mut Card<T>) -> Result<PinStatus, JpkiError> {
    let sign_password = ap::pin_retries(card, PinKind::SignPassword)?;
    let auth_pin = ap::pin_retries(card, PinKind::AuthPin)?;
    let text_pin = match ap::pin_retries(card, PinKind::TextPin) {
        Ok(n) => Some(n),
        Err(JpkiError::NoTextApplication) => None,
        Err(e) => return Err(e),
    };
    Ok(PinStatus {
        sign_password,
        auth_pin,
        text_pin,
    })
}

/// Verifies `secret` behind the guard.
fn unlock<T: CardTransport>(
    card: &mut Card<T>,
    secret: &Secret,
    guard: PinGuard,
) -> Result<(), JpkiError> {
    ap::verify(card, secret.pin(), secret.bytes(), guard)
}

/// Reads one certificate. `secret` is the signing password for [`CertKind::Sign`] and must be
/// empty otherwise — except on Android tokens, where the auth certificate needs the auth PIN
/// (`reference/jpki-protocol.md` §13.1).
///
/// # Errors
/// [`JpkiError::PinFormat`] before any APDU, PIN errors, [`JpkiError::CertificateMissing`],
/// or a card error.
pub fn read_certificate<T: CardTransport>(
    card: &mut Card<T>,
    which: CertKind,
    secret: &[u8],
    guard: PinGuard,
) -> Result<Zeroizing<Vec<u8>>, JpkiError> {
    match which {
        CertKind::Sign => {
            let secret = Secret::for_pin(PinKind::SignPassword, secret)?;
            unlock(card, &secret, guard)?;
        }
        CertKind::Auth if !secret.is_empty() => {
            let secret = Secret::for_pin(PinKind::AuthPin, secret)?;
            unlock(card, &secret, guard)?;
        }
        _ if !secret.is_empty() => {
            return Err(JpkiError::Unsupported(
                "this certificate is free to read; pass an empty secret",
            ));
        }
        _ => {}
    }
    ap::read_certificate(card, which)
}

/// Verifies the key's PIN and signs the digest: 4 APDUs with the SFI forms (SELECT AP,
/// retry counter, VERIFY, SIGN).
///
/// # Errors
/// [`JpkiError::DigestLength`] or [`JpkiError::PinFormat`] before any APDU; PIN errors; a card
/// error.
pub fn sign<T: CardTransport>(
    card: &mut Card<T>,
    key: KeyKind,
    hash: HashAlg,
    digest: &[u8],
    secret: &[u8],
    guard: PinGuard,
) -> Result<Vec<u8>, JpkiError> {
    hash.digest_info(digest)?;
    let secret = Secret::for_pin(key.pin(), secret)?;
    unlock(card, &secret, guard)?;
    ap::sign(card, key, hash, digest)
}

/// The basic four with the outcome of the integrity check.
#[derive(Debug)]
pub struct TextAttributes {
    /// The four attributes (zeroized on drop).
    pub attributes: BasicFour,
    /// Whether EF 0003 agrees with them.
    pub integrity: Integrity,
}

/// Verifies the text PIN and reads the basic four and the integrity record: 5 APDUs (SELECT
/// text AP, retry counter, VERIFY, READ EF 0002, one extended READ of EF 0003). With
/// `check_signature` the CV certificate is read too (one more) and the record's signature
/// checked with its key.
///
/// # Errors
/// [`JpkiError::PinFormat`] before any APDU, [`JpkiError::NoTextApplication`] on smartphone
/// tokens, PIN errors, or a card error.
pub fn read_text_attributes<T: CardTransport>(
    card: &mut Card<T>,
    text_pin: &[u8],
    guard: PinGuard,
    check_signature: bool,
) -> Result<TextAttributes, JpkiError> {
    let secret = Secret::for_pin(PinKind::TextPin, text_pin)?;
    unlock(card, &secret, guard)?;
    let attributes = text::read_basic_four(card)?;
    let record = text::read_integrity_record(card)?;
    let cvc = if check_signature {
        Some(text::read_cv_certificate(card)?)
    } else {
        None
    };
    let integrity = text::check_integrity(&attributes, &record, cvc.as_ref());
    Ok(TextAttributes {
        attributes,
        integrity,
    })
}

/// Whether the token may serve a counter flow that needs the card's own signing certificate
/// (smartphone certificates are not accepted there, service terms 000 §4).
pub fn is_physical_card(info: &CardInfo) -> bool {
    info.kind == CardKind::Card
}

/// Ends the session: unpowered when a PIN was presented, else left as it is.
///
/// # Errors
/// A card error when the reader refuses.
pub fn finish<T: CardTransport>(card: Card<T>) -> Result<T, JpkiError> {
    Ok(card.finish()?)
}

/// What [`finish`] will do with the card.
pub fn session_end<T: CardTransport>(card: &Card<T>) -> SessionEnd {
    if card.pin_presented() {
        SessionEnd::Unpower
    } else {
        SessionEnd::Leave
    }
}
