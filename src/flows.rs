//! The card requests jpkid serves, each one [`Flow`] on one card session: PIN status, reading a
//! certificate, signing a digest, reading the basic four with their integrity check.
//!
//! A flow is built from validated values — a checked secret ([`crate::jpki::pin`]), a digest of
//! the right length ([`DigestInfo`]), an enum for each choice — where the request enters (the
//! service), and those values travel to the card unchanged. Each flow has its own typed output.
//! A flow that presents a PIN says so ([`Flow::presents_pin`]): the reader layer then opens the
//! session exclusively, and the session ends with the card unpowered however the flow ends.
//!
//! Knows nothing of D-Bus; the reader layer runs these on its worker threads.

use zeroize::Zeroizing;

use crate::api::PinCounters;
use crate::card::Card;
use crate::digest::DigestInfo;
use crate::jpki::ap::{self, UnlockedKey};
use crate::jpki::pin::{FourDigitPin, KeySecret, SignPassword};
use crate::jpki::text::{self, BasicFour, Integrity};
use crate::jpki::{CardInfo, CardKind, CertKind, JpkiError, PinGuard, PinKind};
use crate::transport::CardTransport;

/// What a flow knows of its card and caller before the first APDU.
#[derive(Debug, Clone)]
pub struct FlowContext {
    /// The guard for any VERIFY.
    pub guard: PinGuard,
    /// What detection learned when the card was inserted.
    pub card: CardInfo,
}

/// One request kind: its name, whether it presents a PIN, what it needs of the card, and how it
/// runs on a session.
pub trait Flow: Send + 'static {
    /// The typed reply.
    type Output: Send + 'static;

    /// Name for logs, state reasons and the audit (`sign`, `read-certificate`, …).
    fn name(&self) -> &'static str;

    /// Whether the flow sends a PIN: its session is then held exclusively from the start and
    /// ends with the card unpowered.
    fn presents_pin(&self) -> bool;

    /// Refuses, before any APDU, a request this token cannot serve.
    ///
    /// # Errors
    /// The [`JpkiError`] the caller gets.
    fn admit(&self, _card: &CardInfo) -> Result<(), JpkiError> {
        Ok(())
    }

    /// Runs on the session.
    ///
    /// # Errors
    /// The [`JpkiError`] of the step that failed.
    fn run<T: CardTransport>(
        self,
        card: &mut Card<T>,
        ctx: &FlowContext,
    ) -> Result<Self::Output, JpkiError>;
}

/// Detects the token on a fresh session: 3 APDUs on a card.
///
/// # Errors
/// A [`JpkiError`] when the card fails.
pub fn detect<T: CardTransport>(card: &mut Card<T>) -> Result<CardInfo, JpkiError> {
    ap::detect(card)
}

/// All retry counters without spending a try: 5 APDUs on a card (JPKI AP, two counters,
/// text AP, one counter), 4 on a smartphone token (its text AP SELECT fails).
#[derive(Debug, Clone, Copy, Default)]
pub struct GetPinStatus;

impl Flow for GetPinStatus {
    type Output = PinCounters;

    fn name(&self) -> &'static str {
        "pin-status"
    }

    fn presents_pin(&self) -> bool {
        false
    }

    fn run<T: CardTransport>(
        self,
        card: &mut Card<T>,
        _ctx: &FlowContext,
    ) -> Result<PinCounters, JpkiError> {
        let sign_password = ap::pin_retries(card, PinKind::SignPassword)?;
        let auth_pin = ap::pin_retries(card, PinKind::AuthPin)?;
        let text_pin = match ap::pin_retries(card, PinKind::TextPin) {
            Ok(n) => Some(n),
            Err(JpkiError::NoTextApplication) => None,
            Err(e) => return Err(e),
        };
        Ok(PinCounters {
            sign_password,
            auth_pin,
            text_pin,
        })
    }
}

/// Which certificate, with the secret it needs: the one place that says which needs which.
#[derive(Debug)]
pub enum CertificateRequest {
    /// A certificate free to read (`auth` on a card, `auth-ca`, `sign-ca`).
    Free(CertKind),
    /// The signing certificate, behind the signing password.
    Sign(SignPassword),
    /// The authentication certificate of a token that guards it with the auth PIN (the Android
    /// token, `reference/jpki-protocol.md` §13.1).
    AuthWithPin(FourDigitPin),
}

impl CertificateRequest {
    /// Validates `secret` for `which`: the signing password for `sign`, the auth PIN or nothing
    /// for `auth`, nothing for the CA certificates.
    ///
    /// # Errors
    /// [`JpkiError::PinFormat`] or [`JpkiError::SecretNotWanted`]; nothing reaches the card.
    pub fn new(which: CertKind, secret: &[u8]) -> Result<CertificateRequest, JpkiError> {
        let format = |pin| move |source| JpkiError::PinFormat { pin, source };
        match which {
            CertKind::Sign => SignPassword::new(secret)
                .map(CertificateRequest::Sign)
                .map_err(format(PinKind::SignPassword)),
            CertKind::Auth if !secret.is_empty() => FourDigitPin::new(secret)
                .map(CertificateRequest::AuthWithPin)
                .map_err(format(PinKind::AuthPin)),
            other if !secret.is_empty() => Err(JpkiError::SecretNotWanted(other)),
            other => Ok(CertificateRequest::Free(other)),
        }
    }

    /// The certificate asked for.
    pub fn which(&self) -> CertKind {
        match self {
            CertificateRequest::Free(k) => *k,
            CertificateRequest::Sign(_) => CertKind::Sign,
            CertificateRequest::AuthWithPin(_) => CertKind::Auth,
        }
    }
}

/// Reads one certificate: 3 APDUs for a free one (2 + ⌈N/256⌉ where extended APDUs are
/// refused), 5 for the signing certificate.
#[derive(Debug)]
pub struct ReadCertificate(pub CertificateRequest);

impl Flow for ReadCertificate {
    type Output = Zeroizing<Vec<u8>>;

    fn name(&self) -> &'static str {
        "read-certificate"
    }

    fn presents_pin(&self) -> bool {
        !matches!(self.0, CertificateRequest::Free(_))
    }

    /// Only the Android token guards its authentication certificate with a PIN: a PIN for a
    /// card's free certificate is refused unsent (it would cost a try), and the Android
    /// token's is asked for.
    fn admit(&self, card: &CardInfo) -> Result<(), JpkiError> {
        let guarded = card.kind == CardKind::Android;
        match &self.0 {
            CertificateRequest::AuthWithPin(_) if !guarded => {
                Err(JpkiError::SecretNotWanted(CertKind::Auth))
            }
            CertificateRequest::Free(CertKind::Auth) if guarded => {
                Err(JpkiError::PinRequired(PinKind::AuthPin))
            }
            _ => Ok(()),
        }
    }

    fn run<T: CardTransport>(
        self,
        card: &mut Card<T>,
        ctx: &FlowContext,
    ) -> Result<Zeroizing<Vec<u8>>, JpkiError> {
        let secret = match self.0 {
            CertificateRequest::Free(kind) => return ap::read_certificate(card, kind),
            CertificateRequest::Sign(p) => KeySecret::Sign(p),
            CertificateRequest::AuthWithPin(p) => KeySecret::Auth(p),
        };
        ap::unlock(card, &secret, ctx.guard)?.read_certificate()
    }
}

/// Verifies the key's PIN and signs the digest: 4 APDUs with the SFI forms (SELECT AP, retry
/// counter, VERIFY, SIGN).
#[derive(Debug)]
pub struct Sign {
    /// The key's secret (which says which key).
    pub secret: KeySecret,
    /// What to sign.
    pub digest: DigestInfo,
}

impl Flow for Sign {
    type Output = Vec<u8>;

    fn name(&self) -> &'static str {
        "sign"
    }

    fn presents_pin(&self) -> bool {
        true
    }

    fn run<T: CardTransport>(
        self,
        card: &mut Card<T>,
        ctx: &FlowContext,
    ) -> Result<Vec<u8>, JpkiError> {
        let mut key: UnlockedKey<'_, T> = ap::unlock(card, &self.secret, ctx.guard)?;
        key.sign(&self.digest)
    }
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
#[derive(Debug)]
pub struct ReadText {
    /// The text PIN.
    pub pin: FourDigitPin,
    /// Also check the record's signature with the CV certificate's key.
    pub check_signature: bool,
}

impl Flow for ReadText {
    type Output = TextAttributes;

    fn name(&self) -> &'static str {
        "read-text-attributes"
    }

    fn presents_pin(&self) -> bool {
        true
    }

    fn admit(&self, card: &CardInfo) -> Result<(), JpkiError> {
        match card.kind {
            CardKind::Card | CardKind::Unknown => Ok(()),
            _ => Err(JpkiError::NoTextApplication),
        }
    }

    fn run<T: CardTransport>(
        self,
        card: &mut Card<T>,
        ctx: &FlowContext,
    ) -> Result<TextAttributes, JpkiError> {
        let mut text = text::unlock(card, &self.pin, ctx.guard)?;
        let attributes = text.read_basic_four()?;
        let record = text.read_integrity_record()?;
        let cvc = if self.check_signature {
            Some(text.read_cv_certificate()?)
        } else {
            None
        };
        let integrity = text::check_integrity(&attributes, &record, cvc.as_ref());
        Ok(TextAttributes {
            attributes,
            integrity,
        })
    }
}

/// Runs `flow` on `card` as the reader layer does, minus the reader: for tests and tools that
/// hold a session themselves. `kind` stands in for detection.
///
/// # Errors
/// The flow's error, or its refusal by [`Flow::admit`].
pub fn run_on<T: CardTransport, F: Flow>(
    card: &mut Card<T>,
    flow: F,
    info: &CardInfo,
    guard: PinGuard,
) -> Result<F::Output, JpkiError> {
    flow.admit(info)?;
    let ctx = FlowContext {
        guard,
        card: info.clone(),
    };
    flow.run(card, &ctx)
}

/// Ends the session: unpowered when it was held for a PIN, else left as it is.
///
/// # Errors
/// A card error when the reader refuses.
pub fn finish<T: CardTransport>(card: Card<T>) -> Result<T, JpkiError> {
    Ok(card.finish()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn info(kind: CardKind) -> CardInfo {
        CardInfo {
            kind,
            label: String::new(),
            has_sign_cert: true,
            has_auth_cert: true,
        }
    }

    #[test]
    fn which_certificate_needs_which_secret() {
        assert!(matches!(
            CertificateRequest::new(CertKind::Sign, b"abc123").unwrap(),
            CertificateRequest::Sign(_)
        ));
        assert!(matches!(
            CertificateRequest::new(CertKind::Sign, b""),
            Err(JpkiError::PinFormat {
                pin: PinKind::SignPassword,
                ..
            })
        ));
        assert!(matches!(
            CertificateRequest::new(CertKind::Auth, b"").unwrap(),
            CertificateRequest::Free(CertKind::Auth)
        ));
        assert!(matches!(
            CertificateRequest::new(CertKind::Auth, b"12"),
            Err(JpkiError::PinFormat { .. })
        ));
        assert!(matches!(
            CertificateRequest::new(CertKind::SignCa, b"1234"),
            Err(JpkiError::SecretNotWanted(CertKind::SignCa))
        ));
    }

    /// Defect: a PIN for a card's free authentication certificate was sent (and a try spent).
    #[test]
    fn a_pin_for_a_cards_free_auth_certificate_is_refused_before_any_apdu() {
        let with_pin = ReadCertificate(CertificateRequest::new(CertKind::Auth, b"0000").unwrap());
        assert!(matches!(
            with_pin.admit(&info(CardKind::Card)),
            Err(JpkiError::SecretNotWanted(CertKind::Auth))
        ));
        assert!(with_pin.admit(&info(CardKind::Android)).is_ok());
        let free = ReadCertificate(CertificateRequest::Free(CertKind::Auth));
        assert!(free.admit(&info(CardKind::Card)).is_ok());
        assert!(matches!(
            free.admit(&info(CardKind::Android)),
            Err(JpkiError::PinRequired(PinKind::AuthPin))
        ));
        assert!(!free.presents_pin());
        assert!(with_pin.presents_pin());
    }
}
