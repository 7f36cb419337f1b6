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

use std::cell::RefCell;

use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::Sha256;
use rsa::signature::hazmat::PrehashVerifier;
use rsa::signature::{Keypair, Signer};

use crate::api::{HashAlg, IntegrityStatus, PinCounters};
use crate::card::Card;
use crate::digest::DigestInfo;
use crate::jpki::ap::{self, UnlockedKey};
use crate::jpki::pin::{CodeB, FourDigitPin, KeySecret, SignPassword, TextPin};
use crate::jpki::text::{self, BasicFour, IntegrityRecord};
use crate::jpki::visual;
use crate::jpki::{CardInfo, CardKind, CertKind, JpkiError, PinGuard, PinKind};
use crate::pki::attributes::{self, Comparison};
use crate::pki::cms;
use crate::pki::cvc::{self, CardCaKeys};
use crate::pki::face::{self, Authenticity};
use crate::terms::{ConsentDocument, TermsError};
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

/// All retry counters without spending a try: 7 APDUs on a card (JPKI AP, two counters, text
/// AP, one counter, visual AP, 照合番号B's counter), 5 on a smartphone token (its text and
/// visual AP SELECTs fail). 照合番号B is left out where the card answers its empty VERIFY with
/// no counter.
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
        let code_b = match ap::pin_retries(card, PinKind::CodeB) {
            Ok(n) => Some(n),
            Err(JpkiError::NoVisualApplication)
            | Err(JpkiError::Card(crate::card::CardError::Status { .. })) => None,
            Err(e) => return Err(e),
        };
        Ok(PinCounters {
            sign_password,
            auth_pin,
            text_pin,
            code_b,
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
    /// token, `docs/reference/jpki-protocol.md` §13.1).
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

/// The basic four with what the card gave to check them: the integrity record over them and
/// the text AP's CV certificate. Zeroized on drop, never shown.
pub struct TextAttributes {
    /// The four attributes.
    pub attributes: BasicFour,
    /// EF 0003.
    pub record: IntegrityRecord,
    /// EF 0004, as the card holds it.
    pub cv_certificate: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for TextAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextAttributes")
            .field("attributes", &self.attributes)
            .finish_non_exhaustive()
    }
}

impl TextAttributes {
    /// What the record says of the four, against the configured card CA keys (DESIGN §6.2).
    pub fn integrity(&self, keys: &CardCaKeys) -> IntegrityStatus {
        cvc::text_integrity(
            &self.attributes.digest,
            &self.record.basic_four_digest,
            &self.record.signed_bytes,
            &self.record.signature,
            &self.cv_certificate,
            keys,
        )
    }
}

/// Verifies the text PIN and reads the basic four, the integrity record and the CV
/// certificate: 6 APDUs (SELECT text AP, retry counter, VERIFY, READ EF 0002, one extended READ
/// each of EF 0003 and EF 0004).
#[derive(Debug)]
pub struct ReadText {
    /// The text PIN.
    pub pin: TextPin,
}

impl Flow for ReadText {
    type Output = TextAttributes;

    fn name(&self) -> &'static str {
        "read-text-attributes"
    }

    fn presents_pin(&self) -> bool {
        true
    }

    /// Only a physical card has a text AP (000 §4: the basic four come from the 個人番号カード).
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
        Ok(TextAttributes {
            attributes: text.read_basic_four()?,
            record: text.read_integrity_record()?,
            cv_certificate: text.read_cv_certificate()?,
        })
    }
}

/// Which tokens may give the signing certificate of a counter flow (service terms 000 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignToken {
    /// Only a 個人番号カード's own certificate (`Link`, `SignConsent`: 000 §4 1回目, 001 §4(1)).
    CardOnly,
    /// Also a smartphone's 移動端末設備用 certificate (`MatchAttributes`: 000 §4 2回目 なお).
    CardOrSmartphone,
}

impl SignToken {
    fn admit(self, card: &CardInfo) -> Result<(), JpkiError> {
        let allowed = match self {
            SignToken::CardOnly => card.kind == CardKind::Card,
            SignToken::CardOrSmartphone => {
                matches!(
                    card.kind,
                    CardKind::Card | CardKind::Android | CardKind::Iphone
                )
            }
        };
        if !allowed {
            return Err(JpkiError::WrongToken(match self {
                SignToken::CardOnly => {
                    "the counter accepts only the signing certificate of a 個人番号カード, not a smartphone's"
                }
                SignToken::CardOrSmartphone => "no JPKI signing certificate on this token",
            }));
        }
        if !card.has_sign_cert {
            return Err(JpkiError::CertificateMissing(CertKind::Sign));
        }
        Ok(())
    }
}

/// The signing certificate of a token that proved it holds its key.
pub struct ProvenCertificate {
    /// The certificate, DER (name, address and birth date in its subjectAltName).
    pub certificate: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ProvenCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProvenCertificate({} bytes)", self.certificate.len())
    }
}

/// The public key of a certificate, for RSA checks.
fn rsa_key_of(certificate: &[u8]) -> Result<RsaPublicKey, JpkiError> {
    use der::{Decode, Encode};
    let malformed = || {
        JpkiError::Card(crate::card::CardError::Malformed {
            what: "signing certificate (EF 0001)",
            source: None,
        })
    };
    let cert = x509_cert::Certificate::from_der(certificate).map_err(|_| malformed())?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| malformed())?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|_| malformed())
}

/// Verifies the signing password, reads the signing certificate and makes the card prove it
/// holds that certificate's key: it signs `challenge` (fresh random bytes from the caller, taken
/// as a SHA-256 value) and the signature must verify with the certificate's public key — a
/// card carrying a copied certificate cannot. 6 APDUs (SELECT AP, retry counter, VERIFY, two
/// READs of EF 0001, SIGN).
fn prove_key<T: CardTransport>(
    card: &mut Card<T>,
    ctx: &FlowContext,
    password: SignPassword,
    challenge: &[u8; 32],
) -> Result<ProvenCertificate, JpkiError> {
    let secret = KeySecret::Sign(password);
    let mut key = ap::unlock(card, &secret, ctx.guard)?;
    let certificate = key.read_certificate()?;
    let public = rsa_key_of(&certificate)?;
    let digest = DigestInfo::new(HashAlg::Sha256, challenge).map_err(|_| JpkiError::KeyMismatch)?;
    let signature = key.sign(&digest)?;
    let verified = Signature::try_from(signature.as_slice())
        .ok()
        .is_some_and(|sig| {
            VerifyingKey::<Sha256>::new(public)
                .verify_prehash(challenge, &sig)
                .is_ok()
        });
    if !verified {
        return Err(JpkiError::KeyMismatch);
    }
    Ok(ProvenCertificate { certificate })
}

/// `Link`'s card part (000 §4 1回目, 001 §3): the signing certificate of a 個人番号カード that
/// proved it holds the certificate's key ([`prove_key`]): 6 APDUs.
#[derive(Debug)]
pub struct Link {
    /// The signing password.
    pub password: SignPassword,
    /// Fresh random bytes.
    pub challenge: [u8; 32],
}

impl Flow for Link {
    type Output = ProvenCertificate;

    fn name(&self) -> &'static str {
        "link"
    }

    fn presents_pin(&self) -> bool {
        true
    }

    fn admit(&self, card: &CardInfo) -> Result<(), JpkiError> {
        SignToken::CardOnly.admit(card)
    }

    fn run<T: CardTransport>(
        self,
        card: &mut Card<T>,
        ctx: &FlowContext,
    ) -> Result<ProvenCertificate, JpkiError> {
        prove_key(card, ctx, self.password, &self.challenge)
    }
}

/// The signing half of `MatchAttributes` (000 §4 2回目): as [`Link`], but a smartphone's
/// 移動端末設備用 certificate is accepted too (000 §4 なお).
#[derive(Debug)]
pub struct ProveKey {
    /// The signing password.
    pub password: SignPassword,
    /// Fresh random bytes.
    pub challenge: [u8; 32],
}

impl Flow for ProveKey {
    type Output = ProvenCertificate;

    fn name(&self) -> &'static str {
        "prove-signing-key"
    }

    fn presents_pin(&self) -> bool {
        true
    }

    fn admit(&self, card: &CardInfo) -> Result<(), JpkiError> {
        SignToken::CardOrSmartphone.admit(card)
    }

    fn run<T: CardTransport>(
        self,
        card: &mut Card<T>,
        ctx: &FlowContext,
    ) -> Result<ProvenCertificate, JpkiError> {
        prove_key(card, ctx, self.password, &self.challenge)
    }
}

/// The card's signing key as a [`Signer`] for the CMS builder: each signature is one
/// COMPUTE DIGITAL SIGNATURE over the SHA-256 DigestInfo of what the builder hands it. The
/// card's own error is kept for the flow to return.
struct CardSigner<'k, 'c, T: CardTransport> {
    key: RefCell<&'k mut UnlockedKey<'c, T>>,
    public: VerifyingKey<Sha256>,
    failure: RefCell<Option<JpkiError>>,
}

impl<T: CardTransport> Keypair for CardSigner<'_, '_, T> {
    type VerifyingKey = VerifyingKey<Sha256>;
    fn verifying_key(&self) -> VerifyingKey<Sha256> {
        self.public.clone()
    }
}

impl<T: CardTransport> spki::DynSignatureAlgorithmIdentifier for CardSigner<'_, '_, T> {
    fn signature_algorithm_identifier(&self) -> spki::Result<spki::AlgorithmIdentifierOwned> {
        use spki::SignatureAlgorithmIdentifier;
        rsa::pkcs1v15::SigningKey::<Sha256>::SIGNATURE_ALGORITHM_IDENTIFIER.to_owned_identifier()
    }
}

/// Turns a borrowed algorithm identifier into an owned one.
trait ToOwnedIdentifier {
    fn to_owned_identifier(&self) -> spki::Result<spki::AlgorithmIdentifierOwned>;
}

impl ToOwnedIdentifier for spki::AlgorithmIdentifier<der::AnyRef<'static>> {
    fn to_owned_identifier(&self) -> spki::Result<spki::AlgorithmIdentifierOwned> {
        Ok(spki::AlgorithmIdentifierOwned {
            oid: self.oid,
            parameters: self.parameters.map(der::Any::from),
        })
    }
}

impl<T: CardTransport> Signer<Signature> for CardSigner<'_, '_, T> {
    fn try_sign(&self, message: &[u8]) -> Result<Signature, rsa::signature::Error> {
        let digest = DigestInfo::sha256_of(message);
        let signed = self.key.borrow_mut().sign(&digest);
        match signed {
            Ok(bytes) => Signature::try_from(bytes.as_slice()),
            Err(e) => {
                *self.failure.borrow_mut() = Some(e);
                Err(rsa::signature::Error::new())
            }
        }
    }
}

/// What `SignConsent` signs, but for the certificate's serial, which the flow reads.
#[derive(Debug, Clone)]
pub struct ConsentDraft {
    /// Consent or withdrawal.
    pub kind: crate::terms::DocumentKind,
    /// The items.
    pub items: crate::terms::ConsentItems,
    /// The counter terminal (this machine).
    pub terminal: String,
    /// The caller's reference.
    pub reference: Option<String>,
    /// The signing time.
    pub signed_at: time::OffsetDateTime,
}

impl ConsentDraft {
    /// The document for the certificate with `serial`, canonical JSON.
    ///
    /// # Errors
    /// The [`TermsError`] of a field outside its rules.
    pub fn document(&self, serial: &str) -> Result<String, TermsError> {
        ConsentDocument {
            kind: self.kind,
            items: self.items,
            service: crate::terms::ONE_STOP_SERVICE.to_owned(),
            signed_at: self.signed_at,
            terminal: self.terminal.clone(),
            serial: serial.to_owned(),
            reference: self.reference.clone(),
        }
        .to_canonical_json()
    }

    /// Checks every field the caller and this machine give, before the card is asked for
    /// anything (only the serial, which the card gives, is left).
    ///
    /// # Errors
    /// The [`TermsError`] of a field outside its rules.
    pub fn check(&self) -> Result<(), TermsError> {
        self.document("01").map(drop)
    }
}

/// A signed consent: the CMS and what it holds.
pub struct SignedConsent {
    /// DER ContentInfo(SignedData).
    pub cms: zeroize::Zeroizing<Vec<u8>>,
    /// The canonical document signed.
    pub document: String,
    /// The signing certificate's serial, upper-case hex.
    pub serial: String,
    /// The signing certificate.
    pub certificate: zeroize::Zeroizing<Vec<u8>>,
    /// The signing time, unix seconds.
    pub signed_at: i64,
}

impl std::fmt::Debug for SignedConsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignedConsent(serial {})", self.serial)
    }
}

/// Signs a consent (or its withdrawal) with the card's signing key inside a CMS SignedData
/// (service terms 001 §4(1): the holder's will shown by a signature with the 個人番号カード's
/// signing certificate): 6 APDUs (SELECT AP, retry counter, VERIFY, two READs of EF 0001, SIGN).
/// A card whose key is not its certificate's yields [`JpkiError::KeyMismatch`], no CMS.
#[derive(Debug)]
pub struct SignConsent {
    /// The signing password.
    pub password: SignPassword,
    /// The document to be, but for the serial.
    pub draft: ConsentDraft,
}

impl Flow for SignConsent {
    type Output = SignedConsent;

    fn name(&self) -> &'static str {
        "sign-consent"
    }

    fn presents_pin(&self) -> bool {
        true
    }

    fn admit(&self, card: &CardInfo) -> Result<(), JpkiError> {
        SignToken::CardOnly.admit(card)
    }

    fn run<T: CardTransport>(
        self,
        card: &mut Card<T>,
        ctx: &FlowContext,
    ) -> Result<SignedConsent, JpkiError> {
        let secret = KeySecret::Sign(self.password);
        let mut key = ap::unlock(card, &secret, ctx.guard)?;
        let certificate = key.read_certificate()?;
        let serial = crate::pki::certificate_serial(&certificate).ok_or(JpkiError::Card(
            crate::card::CardError::Malformed {
                what: "signing certificate (EF 0001)",
                source: None,
            },
        ))?;
        let d = self.draft;
        let document = d
            .document(&serial)
            .map_err(|_| JpkiError::Unsupported("the consent document cannot be written"))?;
        let public = VerifyingKey::<Sha256>::new(rsa_key_of(&certificate)?);
        let signer = CardSigner {
            key: RefCell::new(&mut key),
            public,
            failure: RefCell::new(None),
        };
        let signed = cms::sign(
            document.as_bytes(),
            &certificate,
            d.signed_at.unix_timestamp(),
            &signer,
        );
        if let Some(card_error) = signer.failure.into_inner() {
            return Err(card_error);
        }
        let cms = signed.map_err(|e| match e {
            cms::CmsError::BadSignature => JpkiError::KeyMismatch,
            _ => JpkiError::Unsupported("the consent CMS cannot be built"),
        })?;
        Ok(SignedConsent {
            cms: zeroize::Zeroizing::new(cms),
            document,
            serial,
            certificate,
            signed_at: d.signed_at.unix_timestamp(),
        })
    }
}

/// What `MatchAttributes` learned: booleans and statuses, and the signing certificate for the
/// service to verify. The attribute values themselves never leave the flow.
pub struct AttributesMatched {
    /// Attribute by attribute.
    pub comparison: Comparison,
    /// What the integrity record says of the basic four.
    pub integrity: IntegrityStatus,
    /// The signing certificate, possession proven.
    pub certificate: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for AttributesMatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttributesMatched")
            .field("comparison", &self.comparison)
            .field("integrity", &self.integrity)
            .finish_non_exhaustive()
    }
}

/// Compares the basic four of the text AP with those of a signing certificate whose key was
/// proven (000 §4 2回目), by the rules of [`attributes::compare`]. Both inputs are consumed and
/// wiped when this returns, whatever it returns.
///
/// # Errors
/// [`JpkiError::Card`] when the certificate's subjectAltName does not hold the four.
pub fn compare_attributes(
    text: TextAttributes,
    signer: ProvenCertificate,
    card_ca: &CardCaKeys,
) -> Result<AttributesMatched, JpkiError> {
    let integrity = text.integrity(card_ca);
    let from_certificate = attributes::from_certificate(&signer.certificate).map_err(|_| {
        JpkiError::Card(crate::card::CardError::Malformed {
            what: "signing certificate's basic four (subjectAltName)",
            source: None,
        })
    })?;
    let a = &text.attributes;
    let from_card = attributes::TextApFour {
        name: a.name.clone(),
        address: a.address.clone(),
        birth_date: a.birth_date.clone(),
        sex: a.sex.clone(),
    };
    Ok(AttributesMatched {
        comparison: attributes::compare(&from_certificate, &from_card),
        integrity,
        certificate: signer.certificate,
    })
}

/// `MatchAttributes` on one card (000 §4 2回目): the basic four from the text AP with its
/// integrity record and CV certificate ([`ReadText`], 6 APDUs), then the signing certificate
/// with possession proven ([`ProveKey`], 6 APDUs): 12 APDUs on one session.
#[derive(Debug)]
pub struct MatchAttributes {
    /// The text AP half.
    pub text: ReadText,
    /// The signing half.
    pub key: ProveKey,
    /// The card CA keys the CV certificate is checked against.
    pub card_ca: std::sync::Arc<CardCaKeys>,
}

impl Flow for MatchAttributes {
    type Output = AttributesMatched;

    fn name(&self) -> &'static str {
        "match-attributes"
    }

    fn presents_pin(&self) -> bool {
        true
    }

    /// The basic four come from a 個人番号カード only; on one card the signing certificate is
    /// that card's too.
    fn admit(&self, card: &CardInfo) -> Result<(), JpkiError> {
        self.text.admit(card)?;
        self.key.admit(card)
    }

    fn run<T: CardTransport>(
        self,
        card: &mut Card<T>,
        ctx: &FlowContext,
    ) -> Result<AttributesMatched, JpkiError> {
        let text = self.text.run(card, ctx)?;
        let signer = self.key.run(card, ctx)?;
        compare_attributes(text, signer, &self.card_ca)
    }
}

/// What `CheckAuthenticity` found: the verdicts, and the face photo when it was asked for.
pub struct AuthenticityChecked {
    /// The three verdicts and the expiry.
    pub verdict: Authenticity,
    /// DF27 (JPEG 2000), only with option `photo`; zeroized on drop.
    pub photo: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for AuthenticityChecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticityChecked")
            .field("verdict", &self.verdict)
            .field("photo", &self.photo.as_ref().map(|p| p.len()))
            .finish()
    }
}

/// A file of the visual AP that is not a TLV at all is judged like one that is malformed
/// inside (its verdict says so), not an error: the answer names the part that failed.
fn or_empty(read: Result<Zeroizing<Vec<u8>>, JpkiError>) -> Result<Zeroizing<Vec<u8>>, JpkiError> {
    match read {
        Err(JpkiError::Card(crate::card::CardError::Malformed { .. })) => {
            Ok(Zeroizing::new(Vec::new()))
        }
        other => other,
    }
}

/// The counter's 対面確認 (DESIGN §6.2 `CheckAuthenticity`): 照合番号B opens the visual AP, the
/// card face and the CV certificate are read, the card key signs a fresh challenge, and
/// [`face::check`] judges the three against the configured card CA keys. 7 APDUs (SELECT
/// visual AP, retry counter, VERIFY, EF 0002 in a short and an extended READ, EF 0004 in one
/// extended READ, the challenge). 照合番号A and EF 0005 are never named.
#[derive(Debug)]
pub struct CheckAuthenticity {
    /// 照合番号B.
    pub code: CodeB,
    /// Fresh random bytes for the card key to sign.
    pub challenge: [u8; 32],
    /// Whether the photo is returned.
    pub photo: bool,
    /// The card CA keys the CV certificate is checked against.
    pub card_ca: std::sync::Arc<CardCaKeys>,
}

impl Flow for CheckAuthenticity {
    type Output = AuthenticityChecked;

    fn name(&self) -> &'static str {
        "check-authenticity"
    }

    fn presents_pin(&self) -> bool {
        true
    }

    /// Only a physical card has a visual AP; a smartphone token is refused before any APDU.
    fn admit(&self, card: &CardInfo) -> Result<(), JpkiError> {
        match card.kind {
            CardKind::Card | CardKind::Unknown => Ok(()),
            _ => Err(JpkiError::NoVisualApplication),
        }
    }

    fn run<T: CardTransport>(
        self,
        card: &mut Card<T>,
        ctx: &FlowContext,
    ) -> Result<AuthenticityChecked, JpkiError> {
        let mut ap = visual::unlock(card, &self.code, ctx.guard)?;
        let face_file = or_empty(ap.read_card_face())?;
        let cv_certificate = or_empty(ap.read_cv_certificate())?;
        let signature = ap.sign_challenge(&self.challenge)?;
        let (verdict, parsed) = face::check(
            &face_file,
            &cv_certificate,
            &self.challenge,
            signature.as_deref(),
            &self.card_ca,
        );
        let photo = match (self.photo, parsed) {
            (true, Some(f)) if verdict.face_signed_by_jlis() => Some(f.into_photo()),
            _ => None,
        };
        Ok(AuthenticityChecked { verdict, photo })
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
