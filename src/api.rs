//! The D-Bus contract in types (DESIGN §6), used by the service, the client and `jpkictl` alike
//! so that nothing about it is written twice: the bus name and object paths, the interfaces'
//! names, an enum for every choice a caller or a result makes (certificate, key, hash, purpose,
//! reader state, card kind, certificate status), the option keys of the card methods, typed
//! `a{sv}` results, and the one error enum — which the service raises and the client's proxies
//! return (the oo7 pattern; `#[zbus(error)]` carries transport failures).
//!
//! This module depends on no other module of the crate: the lower layers use its enums as their
//! vocabulary and add their own facts to them (`jpki` the EF of a certificate, for instance).
//!
//! zbus takes interface names in its attribute macros as literals only; `service.rs` repeats
//! each interface name there once, and a test there pins it to the constant here.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zbus::{DBusError, DeserializeDict, ObjectPath, OwnedVariant, SerializeDict, Type, Variant};
use zeroize::Zeroizing;

/// The well-known bus name.
pub const BUS_NAME: &str = "io.jpkid.Jpki1";
/// Path of the Manager, the ObjectManager and the Testing interface.
pub const MANAGER_PATH: &str = "/io/jpkid/Jpki1";
/// Prefix of the reader objects' paths; the reader id follows.
pub const READER_PATH_PREFIX: &str = "/io/jpkid/Jpki1/reader/";
/// The Manager interface (§6.1).
pub const MANAGER_INTERFACE: &str = "io.jpkid.Jpki1.Manager";
/// The Reader interface (§6.2).
pub const READER_INTERFACE: &str = "io.jpkid.Jpki1.Reader";
/// The Testing interface (§6.3, only with `jpkid --virtual`).
pub const TESTING_INTERFACE: &str = "io.jpkid.Jpki1.Testing";
/// Prefix of the error names (§6.4); [`Error`]'s variants follow it.
pub const ERROR_PREFIX: &str = "io.jpkid.Jpki1.Error";

/// The object path of reader `id`.
pub fn reader_path(id: u32) -> String {
    format!("{READER_PATH_PREFIX}{id}")
}

/// The reader id in a reader object path.
pub fn reader_id(path: &str) -> Option<u32> {
    let id: u32 = path.strip_prefix(READER_PATH_PREFIX)?.parse().ok()?;
    // One spelling per reader: no `+1`, no `01`.
    (reader_path(id) == path).then_some(id)
}

/// A name that is none of a choice's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?} ({allowed})")]
pub struct UnknownName {
    /// What was being chosen (`certificate`, `key`, …).
    pub kind: &'static str,
    /// What was given.
    pub name: String,
    /// The values there are, `a | b | c`.
    pub allowed: String,
}

/// Defines a choice: a unit enum whose D-Bus form is one string per variant (signature `s`),
/// with `as_str`, `FromStr`, `Display`, `ALL` and `clap::ValueEnum` from that one table.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $name:ident ($kind:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Type,
        )]
        #[zbus(signature = "s")]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in the order of the contract.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The D-Bus value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<$name, UnknownName> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownName {
                        kind: $kind,
                        name: other.to_owned(),
                        allowed: [$($text),+].join(" | "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                $name::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.as_str()))
            }
        }
    };
}

choice! {
    /// The four certificates of the JPKI AP (`ReadCertificate`'s `which`).
    CertKind ("certificate") {
        /// 利用者証明用電子証明書.
        Auth = "auth",
        /// 利用者証明用CA証明書.
        AuthCa = "auth-ca",
        /// 署名用電子証明書 (needs the signing password).
        Sign = "sign",
        /// 署名用CA証明書.
        SignCa = "sign-ca",
    }
}

choice! {
    /// Which private key signs (`Sign`'s `key`).
    KeyKind ("key") {
        /// 署名用秘密鍵, unlocked by the signing password.
        Sign = "sign",
        /// 利用者証明用秘密鍵, unlocked by the authentication PIN.
        Auth = "auth",
    }
}

choice! {
    /// Hash algorithm of a digest to be signed (`Sign`'s `hash`).
    HashAlg ("hash") {
        /// SHA-256 (32 bytes).
        Sha256 = "sha256",
        /// SHA-384 (48 bytes).
        Sha384 = "sha384",
        /// SHA-512 (64 bytes).
        Sha512 = "sha512",
    }
}

choice! {
    /// Which JPKI hierarchy a certificate must chain to (`VerifyCertificate`'s `purpose`).
    Purpose ("purpose") {
        /// 署名用電子証明書: the digital-signature CA.
        Sign = "sign",
        /// 利用者証明用電子証明書: the user-authentication CA.
        Auth = "auth",
    }
}

choice! {
    /// A reader's state (§6.2 `State`).
    ReaderState ("reader state") {
        /// No card.
        Empty = "empty",
        /// A card was inserted and is being identified.
        Probing = "probing",
        /// A JPKI token is ready for requests.
        Ready = "ready",
        /// A request is running.
        Busy = "busy",
        /// The card is not a My Number Card (or smartphone token).
        Unsupported = "unsupported",
        /// The card does not answer.
        Mute = "mute",
    }
}

choice! {
    /// What kind of JPKI token is in a reader (§6.2 `CardKind`, from EF 0006's label).
    CardKind ("card kind") {
        /// A physical My Number Card (個人番号カード).
        Card = "card",
        /// The Android smartphone certificate (移動端末設備用).
        Android = "android",
        /// The iPhone smartphone certificate.
        Iphone = "iphone",
        /// No JPKI application, or no card.
        None = "none",
        /// A JPKI application with an unknown label (e.g. the old 住基カード).
        Unknown = "unknown",
    }
}

choice! {
    /// The outcome of a certificate verification (§5; `status` of §6.1). Expiry and revocation
    /// are different outcomes (service terms 001 §5).
    CertStatus ("certificate status") {
        /// Chain, validity and revocation all good.
        Valid = "valid",
        /// Past its notAfter.
        Expired = "expired",
        /// Before its notBefore.
        NotYetValid = "not-yet-valid",
        /// Listed by a CRL or reported by OCSP.
        Revoked = "revoked",
        /// No configured anchor issued it.
        Untrusted = "untrusted",
        /// An anchor of its issuer's name exists, but its signature does not verify.
        BadSignature = "bad-signature",
        /// Not a certificate of the requested purpose.
        WrongPurpose = "wrong-purpose",
        /// Not a certificate jpkid can process.
        Malformed = "malformed",
        /// No fresh revocation answer, and `revocation.mode = "require"`.
        RevocationUnknown = "revocation-unknown",
    }
}

choice! {
    /// Where a revocation answer came from (`revocation-source`).
    RevocationSource ("revocation source") {
        /// The imported CRL index.
        Crl = "crl",
        /// The OCSP responder.
        Ocsp = "ocsp",
        /// No source answered (or revocation checking is off).
        None = "none",
    }
}

choice! {
    /// Why no source answered about revocation (`revocation-detail`, with `revocation-source`
    /// `none`): what a technician acts on.
    RevocationDetail ("revocation detail") {
        /// Revocation checking is off (`revocation.mode = "off"`).
        Off = "off",
        /// No CRL index for the certificate's issuer (none imported, or it is unusable).
        CrlMissing = "crl-missing",
        /// The CRL index is past its nextUpdate: import a current CRL.
        CrlStale = "crl-stale",
        /// The OCSP responder could not be reached in time.
        OcspUnreachable = "ocsp-unreachable",
        /// The OCSP responder answered, but not acceptably (signature, signer, nonce, age).
        OcspError = "ocsp-error",
        /// The OCSP responder does not know the certificate.
        OcspUnknown = "ocsp-unknown",
    }
}

choice! {
    /// What the text AP's integrity record says of the basic four (`MatchAttributes`'s
    /// `integrity`).
    IntegrityStatus ("integrity") {
        /// The record's digests and signature are right, and its CV certificate is signed by
        /// a configured J-LIS card CA key.
        Verified = "verified",
        /// A digest or a signature is wrong: the data is not what J-LIS wrote.
        Mismatch = "mismatch",
        /// Consistent, but its CV certificate chains to no configured card CA key: the record
        /// could be a forgery's own.
        Unverifiable = "unverifiable",
    }
}

choice! {
    /// What `CheckAuthenticity` says of the visual AP's CV certificate (`cv-certificate`).
    CvCertificateStatus ("cv-certificate status") {
        /// Signed by the configured J-LIS card CA key its 証明者鍵ID names (all 16 bytes).
        Verified = "verified",
        /// Its issuer is no configured card CA key, or that key did not sign it.
        Untrusted = "untrusted",
        /// Not a CV certificate (`7F21 { 5F4E body; 5F37 signature }` with an RSA key).
        Malformed = "malformed",
    }
}

choice! {
    /// What `CheckAuthenticity` says of the card face (`card-face`): its signature DF28 by the
    /// key the CV certificate certifies, over the three digests of the face data.
    CardFaceStatus ("card-face status") {
        /// DF28 verifies over DF22–DF24, DF25–DF26 and DF27 as the card holds them.
        Verified = "verified",
        /// It does not: the face data was altered after J-LIS signed it, another key signed
        /// it, or the file or the CV certificate is not what §4.1 describes (nothing to check
        /// the signature with).
        Mismatch = "mismatch",
    }
}

choice! {
    /// What `CheckAuthenticity` says of the chip's presence (`challenge`): the card signed a
    /// fresh random challenge from jpkid with the card key whose public half is the face data's
    /// DF24.
    ChallengeStatus ("challenge status") {
        /// The signature verifies with DF24: this chip holds the face data's key.
        Verified = "verified",
        /// It does not, or the card refused to sign, or the face data has no usable DF24: the
        /// face data may have been copied onto another chip.
        Failed = "failed",
    }
}

choice! {
    /// Whether a CMS signature verifies over its content (`VerifyConsent`'s `signature`).
    SignatureStatus ("signature status") {
        /// The signature verifies with the signer's certificate over the content.
        Valid = "valid",
        /// It does not: content or signature changed, or another key signed.
        Invalid = "invalid",
    }
}

/// Bounds of option `timeout-ms`: a request never gets less than this, whatever it asks, and a
/// reader is called `mute` only when one exchange went unanswered this long.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1000);

/// The option keys of the card methods (§6): one definition for the client that writes them
/// and the service that reads them.
pub mod option {
    /// `b`: let the daemon risk a PIN's last tries (below `pin_guard.min_remaining`).
    pub const ALLOW_LAST_TRY: &str = "allow-last-try";
    /// `u`: the request's deadline, clamped to 1000 ..= `limits.op_timeout_ms`; queue wait is
    /// not counted.
    pub const TIMEOUT_MS: &str = "timeout-ms";
    /// `u`: the reader's `Insertions` the caller saw; a card inserted since ends the request
    /// with `CardRemoved` before any APDU.
    pub const INSERTION: &str = "insertion";
    /// `x`: `VerifyCertificate` at this time (unix seconds) instead of now.
    pub const AT: &str = "at";
    /// `s`: `SignConsent`: a reference of the caller's copied into the document.
    pub const REFERENCE: &str = "reference";
    /// `b`: `SignConsent`: sign a withdrawal of the consent instead.
    pub const WITHDRAW: &str = "withdraw";
    /// `o`: `MatchAttributes`: the reader whose token gives the signing certificate.
    pub const SIGN_READER: &str = "sign-reader";
    /// `u`: `MatchAttributes`: the sign reader's `Insertions` the caller saw, as `insertion`
    /// is this reader's.
    pub const SIGN_INSERTION: &str = "sign-insertion";
    /// `CheckAuthenticity`: also return the face photo (b).
    pub const PHOTO: &str = "photo";
}

/// The keys of the `facts` of `ConsentStatus`, `LinkRequirement` and `Eligibility` (§6.1).
pub mod fact {
    /// `s`, ISO date: the day asked about (`ConsentStatus`; default today in Japan).
    pub const ON: &str = "on";
    /// `s`: what the holder carries (`ConsentStatus`, `LinkRequirement`).
    pub const HOLDING: &str = "holding";
    /// `s`: `none` | `expiry` | `other` (`ConsentStatus`).
    pub const CERTIFICATE_LAPSE: &str = "certificate-lapse";
    /// `b`: a new signing certificate was issued after the lapse (`ConsentStatus`).
    pub const NEW_CERTIFICATE: &str = "new-certificate";
    /// `s`, ISO date: the consent was withdrawn that day (`ConsentStatus`).
    pub const WITHDRAWN_ON: &str = "withdrawn-on";
    /// `b`: the licence is suspended (`Eligibility`).
    pub const SUSPENDED: &str = "suspended";
    /// `b`: the one-stop service was started at a counter (`LinkRequirement`).
    pub const ONE_STOP_STARTED: &str = "one-stop-started";
    /// `b`: linked before (`LinkRequirement`).
    pub const LINKED_BEFORE: &str = "linked-before";
    /// `b`: the link was cancelled in マイナポータル (`LinkRequirement`).
    pub const UNLINKED: &str = "unlinked";
    /// `b`: the licence lapsed or was revoked after that cancellation (`LinkRequirement`).
    pub const LICENCE_LAPSED_AFTER_UNLINK: &str = "licence-lapsed-after-unlink";
}

/// Reads an `a{sv}` of `what`s (`option`, `fact`): `take` handles the keys it knows and
/// returns `false` for the others, which are refused by name.
fn read_dict(
    dict: &Dict,
    what: &str,
    mut take: impl FnMut(&str, &Variant<'_>) -> Result<bool, Error>,
) -> Result<(), Error> {
    for (key, value) in dict {
        if !take(key, value)? {
            return Err(Error::InvalidArgument(format!("unknown {what} {key:?}")));
        }
    }
    Ok(())
}

/// Refuses every option: for a method that takes none yet (its `a{sv}` is there to grow).
///
/// # Errors
/// [`Error::InvalidArgument`] naming the first key.
pub fn refuse_options(dict: &Dict) -> Result<(), Error> {
    read_dict(dict, "option", |_, _| Ok(false))
}

fn bool_value(what: &str, key: &str, value: &Variant<'_>) -> Result<bool, Error> {
    match value {
        Variant::Bool(b) => Ok(*b),
        v => Err(typed(what, key, "b", v)),
    }
}

fn str_value(what: &str, key: &str, value: &Variant<'_>) -> Result<String, Error> {
    match value {
        Variant::Str(s) => Ok(s.as_str().to_owned()),
        v => Err(typed(what, key, "s", v)),
    }
}

fn typed(what: &str, key: &str, want: &str, value: &Variant<'_>) -> Error {
    Error::InvalidArgument(format!(
        "{what} {key:?} must be of type {want}, got {}",
        value.value_signature()
    ))
}

fn put(d: &mut Dict, key: &str, value: impl Into<Variant<'static>>) {
    if let Ok(v) = OwnedVariant::try_from(value.into()) {
        d.insert(key.to_owned(), v);
    }
}

/// The facts of `ConsentStatus`, as the caller states them (checked by the service).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentStatusFacts {
    /// [`fact::ON`]; `None`: today in Japan.
    pub on: Option<String>,
    /// [`fact::HOLDING`]; `None`: unchanged since the consent.
    pub holding: Option<String>,
    /// [`fact::CERTIFICATE_LAPSE`]; `None`: `none`.
    pub certificate_lapse: Option<String>,
    /// [`fact::NEW_CERTIFICATE`].
    pub new_certificate: bool,
    /// [`fact::WITHDRAWN_ON`].
    pub withdrawn_on: Option<String>,
}

impl ConsentStatusFacts {
    /// The `a{sv}` to send.
    pub fn to_dict(&self) -> Dict {
        let mut d = Dict::new();
        for (key, value) in [
            (fact::ON, &self.on),
            (fact::HOLDING, &self.holding),
            (fact::CERTIFICATE_LAPSE, &self.certificate_lapse),
            (fact::WITHDRAWN_ON, &self.withdrawn_on),
        ] {
            if let Some(v) = value {
                put(&mut d, key, v.clone());
            }
        }
        if self.new_certificate {
            put(&mut d, fact::NEW_CERTIFICATE, true);
        }
        d
    }

    /// Reads the facts a caller sent.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the key.
    pub fn from_dict(dict: &Dict) -> Result<ConsentStatusFacts, Error> {
        let mut out = ConsentStatusFacts::default();
        read_dict(dict, "fact", |key, v| {
            let slot = match key {
                fact::ON => &mut out.on,
                fact::HOLDING => &mut out.holding,
                fact::CERTIFICATE_LAPSE => &mut out.certificate_lapse,
                fact::WITHDRAWN_ON => &mut out.withdrawn_on,
                fact::NEW_CERTIFICATE => {
                    out.new_certificate = bool_value("fact", key, v)?;
                    return Ok(true);
                }
                _ => return Ok(false),
            };
            *slot = Some(str_value("fact", key, v)?);
            Ok(true)
        })?;
        Ok(out)
    }
}

/// The facts of `LinkRequirement`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkRequirementFacts {
    /// [`fact::HOLDING`]; required.
    pub holding: Option<String>,
    /// [`fact::ONE_STOP_STARTED`].
    pub one_stop_started: bool,
    /// [`fact::LINKED_BEFORE`].
    pub linked_before: bool,
    /// [`fact::UNLINKED`].
    pub unlinked: bool,
    /// [`fact::LICENCE_LAPSED_AFTER_UNLINK`].
    pub licence_lapsed_after_unlink: bool,
}

impl LinkRequirementFacts {
    fn flags(&mut self) -> [(&'static str, &mut bool); 4] {
        [
            (fact::ONE_STOP_STARTED, &mut self.one_stop_started),
            (fact::LINKED_BEFORE, &mut self.linked_before),
            (fact::UNLINKED, &mut self.unlinked),
            (
                fact::LICENCE_LAPSED_AFTER_UNLINK,
                &mut self.licence_lapsed_after_unlink,
            ),
        ]
    }

    /// The `a{sv}` to send.
    pub fn to_dict(&self) -> Dict {
        let mut d = Dict::new();
        if let Some(h) = &self.holding {
            put(&mut d, fact::HOLDING, h.clone());
        }
        for (key, value) in self.clone().flags() {
            if *value {
                put(&mut d, key, true);
            }
        }
        d
    }

    /// Reads the facts a caller sent.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the key.
    pub fn from_dict(dict: &Dict) -> Result<LinkRequirementFacts, Error> {
        let mut out = LinkRequirementFacts::default();
        read_dict(dict, "fact", |key, v| {
            if key == fact::HOLDING {
                out.holding = Some(str_value("fact", key, v)?);
                return Ok(true);
            }
            match out.flags().into_iter().find(|(k, _)| *k == key) {
                Some((_, slot)) => {
                    *slot = bool_value("fact", key, v)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })?;
        Ok(out)
    }
}

/// The facts of `Eligibility`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EligibilityFacts {
    /// [`fact::SUSPENDED`].
    pub suspended: bool,
}

impl EligibilityFacts {
    /// The `a{sv}` to send.
    pub fn to_dict(&self) -> Dict {
        let mut d = Dict::new();
        if self.suspended {
            put(&mut d, fact::SUSPENDED, true);
        }
        d
    }

    /// Reads the facts a caller sent.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the key.
    pub fn from_dict(dict: &Dict) -> Result<EligibilityFacts, Error> {
        let mut out = EligibilityFacts::default();
        read_dict(dict, "fact", |key, v| match key {
            fact::SUSPENDED => {
                out.suspended = bool_value("fact", key, v)?;
                Ok(true)
            }
            _ => Ok(false),
        })?;
        Ok(out)
    }
}

/// The options of `SignConsent`: the card's, `reference` and `withdraw`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentOptions {
    /// The options of every card method.
    pub card: CardOptions,
    /// [`option::REFERENCE`].
    pub reference: Option<String>,
    /// [`option::WITHDRAW`].
    pub withdraw: bool,
}

impl ConsentOptions {
    /// The `a{sv}` to send.
    pub fn to_dict(&self) -> Dict {
        let mut d = self.card.to_dict();
        if let Some(r) = &self.reference {
            put(&mut d, option::REFERENCE, r.clone());
        }
        if self.withdraw {
            put(&mut d, option::WITHDRAW, true);
        }
        d
    }

    /// Reads the options a caller sent.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the key.
    pub fn from_dict(dict: &Dict) -> Result<ConsentOptions, Error> {
        let mut reference = None;
        let mut withdraw = false;
        let card = CardOptions::from_dict_with(dict, |key, v| match key {
            option::REFERENCE => {
                reference = Some(str_value("option", key, v)?);
                Ok(true)
            }
            option::WITHDRAW => {
                withdraw = bool_value("option", key, v)?;
                Ok(true)
            }
            _ => Ok(false),
        })?;
        Ok(ConsentOptions {
            card,
            reference,
            withdraw,
        })
    }
}

/// The options of `MatchAttributes`: the card's and `sign-reader`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchOptions {
    /// The options of every card method (for this reader's card).
    pub card: CardOptions,
    /// [`option::SIGN_READER`]: the id of the reader whose token gives the signing certificate.
    pub sign_reader: Option<u32>,
    /// [`option::SIGN_INSERTION`]: that reader's `Insertions` the caller saw.
    pub sign_insertion: Option<u32>,
}

impl MatchOptions {
    /// The `a{sv}` to send.
    pub fn to_dict(&self) -> Dict {
        let mut d = self.card.to_dict();
        if let Some(id) = self.sign_reader
            && let Ok(path) = ObjectPath::try_from(reader_path(id))
        {
            put(&mut d, option::SIGN_READER, path);
        }
        if let Some(n) = self.sign_insertion {
            put(&mut d, option::SIGN_INSERTION, n);
        }
        d
    }

    /// Reads the options a caller sent.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the key, or a path that is no reader's.
    pub fn from_dict(dict: &Dict) -> Result<MatchOptions, Error> {
        let mut sign_reader = None;
        let mut sign_insertion = None;
        let card = CardOptions::from_dict_with(dict, |key, v| match (key, v) {
            (option::SIGN_INSERTION, Variant::U32(n)) => {
                sign_insertion = Some(*n);
                Ok(true)
            }
            (option::SIGN_INSERTION, v) => Err(wrong_type(key, "u", v)),
            (option::SIGN_READER, Variant::ObjectPath(p)) => {
                let id = reader_id(p.as_str()).ok_or_else(|| {
                    Error::InvalidArgument(format!("option {key:?}: {p} is not a reader's path"))
                })?;
                sign_reader = Some(id);
                Ok(true)
            }
            (option::SIGN_READER, v) => Err(wrong_type(key, "o", v)),
            _ => Ok(false),
        })?;
        if sign_insertion.is_some() && sign_reader.is_none() {
            return Err(Error::InvalidArgument(format!(
                "option {:?} needs option {:?}",
                option::SIGN_INSERTION,
                option::SIGN_READER
            )));
        }
        Ok(MatchOptions {
            card,
            sign_reader,
            sign_insertion,
        })
    }
}

/// The options of `CheckAuthenticity`: the card's and `photo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthenticityOptions {
    /// The options of every card method.
    pub card: CardOptions,
    /// [`option::PHOTO`]: also return the face photo.
    pub photo: bool,
}

impl AuthenticityOptions {
    /// The `a{sv}` to send.
    pub fn to_dict(&self) -> Dict {
        let mut d = self.card.to_dict();
        if self.photo {
            put(&mut d, option::PHOTO, true);
        }
        d
    }

    /// Reads the options a caller sent.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the key.
    pub fn from_dict(dict: &Dict) -> Result<AuthenticityOptions, Error> {
        let mut photo = false;
        let card = CardOptions::from_dict_with(dict, |key, v| match (key, v) {
            (option::PHOTO, Variant::Bool(b)) => {
                photo = *b;
                Ok(true)
            }
            (option::PHOTO, v) => Err(wrong_type(key, "b", v)),
            _ => Ok(false),
        })?;
        Ok(AuthenticityOptions { card, photo })
    }
}

/// The options every card method accepts, as the caller means them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CardOptions {
    /// [`option::ALLOW_LAST_TRY`].
    pub allow_last_try: bool,
    /// [`option::TIMEOUT_MS`]; `None`: `limits.op_timeout_ms`.
    pub timeout_ms: Option<u32>,
    /// [`option::INSERTION`].
    pub insertion: Option<u32>,
}

/// `a{sv}` as a method receives it.
pub type Dict = HashMap<String, OwnedVariant>;

impl CardOptions {
    /// The `a{sv}` to send.
    pub fn to_dict(&self) -> Dict {
        let mut d = Dict::new();
        if self.allow_last_try {
            d.insert(option::ALLOW_LAST_TRY.to_owned(), OwnedVariant::from(true));
        }
        if let Some(ms) = self.timeout_ms {
            d.insert(option::TIMEOUT_MS.to_owned(), OwnedVariant::from(ms));
        }
        if let Some(n) = self.insertion {
            d.insert(option::INSERTION.to_owned(), OwnedVariant::from(n));
        }
        d
    }

    /// Reads the options a caller sent: known keys with their exact types, nothing else.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the key.
    pub fn from_dict(dict: &Dict) -> Result<CardOptions, Error> {
        CardOptions::from_dict_with(dict, |_, _| Ok(false))
    }

    /// Like [`CardOptions::from_dict`], with a method's own options: `extra` takes the keys
    /// it knows (returning `true`) and refuses wrong types.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the key.
    pub fn from_dict_with(
        dict: &Dict,
        mut extra: impl FnMut(&str, &Variant<'_>) -> Result<bool, Error>,
    ) -> Result<CardOptions, Error> {
        let mut out = CardOptions::default();
        for (key, value) in dict {
            if extra(key, value)? {
                continue;
            }
            match (key.as_str(), &**value) {
                (option::ALLOW_LAST_TRY, Variant::Bool(b)) => out.allow_last_try = *b,
                (option::TIMEOUT_MS, Variant::U32(ms)) => out.timeout_ms = Some(*ms),
                (option::INSERTION, Variant::U32(n)) => out.insertion = Some(*n),
                (option::ALLOW_LAST_TRY, v) => return Err(wrong_type(key, "b", v)),
                (option::TIMEOUT_MS | option::INSERTION, v) => return Err(wrong_type(key, "u", v)),
                _ => return Err(unknown_option(key)),
            }
        }
        Ok(out)
    }
}

/// The options of `VerifyCertificate`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// [`option::AT`]; `None`: now.
    pub at: Option<i64>,
}

impl VerifyOptions {
    /// The `a{sv}` to send.
    pub fn to_dict(&self) -> Dict {
        let mut d = Dict::new();
        if let Some(t) = self.at {
            d.insert(option::AT.to_owned(), OwnedVariant::from(t));
        }
        d
    }

    /// Reads the options a caller sent.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the key.
    pub fn from_dict(dict: &Dict) -> Result<VerifyOptions, Error> {
        let mut out = VerifyOptions::default();
        for (key, value) in dict {
            match (key.as_str(), &**value) {
                (option::AT, Variant::I64(t)) => out.at = Some(*t),
                (option::AT, v) => return Err(wrong_type(key, "x", v)),
                _ => return Err(unknown_option(key)),
            }
        }
        Ok(out)
    }
}

fn unknown_option(key: &str) -> Error {
    Error::InvalidArgument(format!("unknown option {key:?}"))
}

/// The error of an option `key` whose value is not of type `want`.
fn wrong_type(key: &str, want: &str, value: &Variant<'_>) -> Error {
    typed("option", key, want, value)
}

/// Tries left per PIN (`GetPinStatus`, `a{sy}`); 0 = blocked. A PIN the token does not have is
/// absent (smartphone tokens have no text AP and no visual AP), and so is 照合番号B where the
/// card does not report its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sy}", rename_all = "kebab-case")]
pub struct PinCounters {
    /// 署名用パスワード.
    pub sign_password: u8,
    /// 利用者証明用暗証番号.
    pub auth_pin: u8,
    /// 券面事項入力補助用暗証番号.
    pub text_pin: Option<u8>,
    /// 照合番号B (visual AP).
    pub code_b: Option<u8>,
}

/// `VerifyCertificate`'s result (§6.1). The subject may name a place of residence: it is wiped
/// when the value is dropped.
#[derive(Clone, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sv}", rename_all = "kebab-case")]
pub struct VerifyResult {
    /// The outcome.
    pub status: CertStatus,
    /// Serial number, upper-case hex (発行番号).
    pub serial: String,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// notBefore, unix seconds (absent for `malformed`).
    pub not_before: Option<i64>,
    /// notAfter, unix seconds (absent for `malformed`).
    pub not_after: Option<i64>,
    /// SHA-256 of the anchor, upper-case hex; empty when none was found.
    pub root: String,
    /// Where the revocation answer came from.
    pub revocation_source: Option<RevocationSource>,
    /// For `revoked`: the RFC 5280 CRLReason name (`affiliationChanged`, …).
    pub revocation_reason: Option<String>,
    /// For `revoked`: the revocation time, unix seconds.
    pub revoked_at: Option<i64>,
    /// With `revocation-source` `none`: why no source answered.
    pub revocation_detail: Option<RevocationDetail>,
}

impl fmt::Debug for VerifyResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyResult")
            .field("status", &self.status)
            .field("serial", &self.serial)
            .field("subject", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("root", &self.root)
            .field("revocation_source", &self.revocation_source)
            .field("revocation_reason", &self.revocation_reason)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

impl Drop for VerifyResult {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.subject);
    }
}

/// `Link`'s result (§6.2): the signing certificate's issue number (発行番号) and its
/// verification, after the card proved it holds the certificate's key. The certificate carries
/// name, address and birth date: it is wiped when dropped.
#[derive(Clone, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sv}", rename_all = "kebab-case")]
pub struct LinkResult {
    /// The certificate's status (§5).
    pub status: CertStatus,
    /// Serial number, upper-case hex: the 発行番号 linked to the licence record.
    pub serial: String,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// notBefore, unix seconds.
    pub not_before: Option<i64>,
    /// notAfter, unix seconds.
    pub not_after: Option<i64>,
    /// SHA-256 of the anchor, upper-case hex.
    pub root: String,
    /// Where the revocation answer came from.
    pub revocation_source: Option<RevocationSource>,
    /// For `revoked`: the CRLReason name.
    pub revocation_reason: Option<String>,
    /// For `revoked`: when.
    pub revoked_at: Option<i64>,
    /// With `revocation-source` `none`: why no source answered.
    pub revocation_detail: Option<RevocationDetail>,
    /// The signing certificate, DER.
    pub certificate: SecretBytes,
}

impl LinkResult {
    /// The verification of [`VerifyResult`] with the certificate it was made of.
    pub fn new(v: VerifyResult, certificate: SecretBytes) -> LinkResult {
        LinkResult {
            status: v.status,
            serial: v.serial.clone(),
            subject: v.subject.clone(),
            issuer: v.issuer.clone(),
            not_before: v.not_before,
            not_after: v.not_after,
            root: v.root.clone(),
            revocation_source: v.revocation_source,
            revocation_reason: v.revocation_reason.clone(),
            revoked_at: v.revoked_at,
            revocation_detail: v.revocation_detail,
            certificate,
        }
    }
}

impl fmt::Debug for LinkResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkResult")
            .field("status", &self.status)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl Drop for LinkResult {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.subject);
    }
}

/// `SignConsent`'s result (§6.2). The CMS carries the signing certificate (personal): wiped
/// when dropped.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sv}", rename_all = "kebab-case")]
pub struct ConsentResult {
    /// DER ContentInfo(SignedData) with the document as content.
    pub cms: SecretBytes,
    /// The canonical JSON document that was signed.
    pub document: String,
    /// The signing certificate's serial, upper-case hex.
    pub serial: String,
    /// The signing certificate's status now (§5).
    pub status: CertStatus,
    /// The signing time, unix seconds.
    pub signed_at: i64,
}

/// `VerifyConsent`'s result (§6.1). `kind`, `items`, `reference` and `document` are those of
/// the signed document; with `signature` `invalid` they appear only when the content still has
/// the form of a consent document (and are then not to be trusted).
#[derive(Debug, Clone, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sv}", rename_all = "kebab-case")]
pub struct ConsentCheck {
    /// Whether the signature verifies over the document.
    pub signature: SignatureStatus,
    /// The signer's certificate now.
    pub status: CertStatus,
    /// The signer's certificate at the signing time.
    pub status_at_signing: CertStatus,
    /// `consent` or `withdrawal`.
    pub kind: Option<String>,
    /// The items consented to (or withdrawn).
    pub items: Option<Vec<String>>,
    /// The caller's reference, when the document has one.
    pub reference: Option<String>,
    /// The signing time (the signingTime attribute), unix seconds.
    pub signed_at: i64,
    /// The signer certificate's serial, upper-case hex.
    pub serial: String,
    /// The document.
    pub document: Option<String>,
}

/// `MatchAttributes`' result (§6.2): booleans only; no attribute value leaves the daemon.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sv}", rename_all = "kebab-case")]
pub struct MatchResult {
    /// All four identical.
    #[zbus(rename = "match")]
    pub all: bool,
    /// 氏名.
    pub name: bool,
    /// 住所.
    pub address: bool,
    /// 生年月日.
    pub birth_date: bool,
    /// 性別.
    pub sex: bool,
    /// What the text AP's integrity record says of the four it gave.
    pub integrity: IntegrityStatus,
    /// The signing certificate's serial, upper-case hex.
    pub serial: String,
    /// The signing certificate's status (§5).
    pub status: CertStatus,
}

/// `CheckAuthenticity`'s result (§6.2): is this a genuine card, made by J-LIS, and is its chip
/// here? The photo (personal) is there only with option `photo` and is wiped when dropped.
#[derive(Clone, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sv}", rename_all = "kebab-case")]
pub struct AuthenticityResult {
    /// All three below `verified`.
    pub genuine: bool,
    /// The visual AP's CV certificate against the configured J-LIS card CA keys.
    pub cv_certificate: CvCertificateStatus,
    /// The card-face signature over the face data.
    pub card_face: CardFaceStatus,
    /// The card key's signature of a fresh challenge, against the face data's key.
    pub challenge: ChallengeStatus,
    /// The card's expiry (DF29), ISO date; **not covered by the signature**. Absent when the
    /// face data holds no date there.
    pub expiry: Option<String>,
    /// The face photo as stored (JPEG 2000), with option `photo` only.
    pub photo: Option<SecretBytes>,
}

impl fmt::Debug for AuthenticityResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticityResult")
            .field("genuine", &self.genuine)
            .field("cv_certificate", &self.cv_certificate)
            .field("card_face", &self.card_face)
            .field("challenge", &self.challenge)
            .field("expiry", &self.expiry)
            .field("photo", &self.photo)
            .finish()
    }
}

/// `ConsentStatus`' result (§6.1).
#[derive(Debug, Clone, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sv}", rename_all = "kebab-case")]
pub struct ConsentStatusResult {
    /// First day of the period, ISO.
    pub first_day: String,
    /// Last day of the period, ISO.
    pub last_day: String,
    /// The day lies within the consent's period.
    pub in_period: bool,
    /// J-LIS changes reach the licence record on that day.
    pub updates: bool,
    /// What to do (`none`, `issue-certificate`, `consent-again`, `not-eligible`,
    /// `report-changes`).
    pub action: String,
    /// The clause that decided.
    pub clause: String,
}

/// `LinkRequirement`'s result (§6.1).
#[derive(Debug, Clone, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sv}", rename_all = "kebab-case")]
pub struct LinkRequirementResult {
    /// `needed`, `not-needed`, `may-be-needed`, `not-eligible`.
    pub counter_submission: String,
    /// The clause that decided.
    pub clause: String,
}

/// `Eligibility`'s result (§6.1, `a{sb}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sb}", rename_all = "kebab-case")]
pub struct EligibilityResult {
    /// マイナポータル連携.
    pub mynaportal_link: bool,
    /// Licence information in マイナポータル.
    pub license_info: bool,
    /// The online renewal lecture.
    pub online_lecture: bool,
    /// 本籍 changes online.
    pub domicile_change: bool,
    /// The address-change one-stop service.
    pub address_one_stop: bool,
    /// Notifications.
    pub notifications: bool,
}

/// Bytes that may be personal (a signing certificate carries name, address and birth date):
/// `ay` on the wire, wiped when dropped on either side of the bus.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(pub Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

impl Type for SecretBytes {
    const SIGNATURE: &'static zbus::Signature = <Vec<u8> as Type>::SIGNATURE;
}

impl Serialize for SecretBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    /// Straight into one buffer of the exact size: a `Vec` grown element by element (the D-Bus
    /// deserializer gives no size hint) would free its smaller copies unwiped.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SecretBytes, D::Error> {
        d.deserialize_bytes(SecretVisitor)
    }
}

struct SecretVisitor;

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = SecretBytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte array")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<SecretBytes, E> {
        let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
        out.extend_from_slice(bytes);
        Ok(SecretBytes(out))
    }

    /// A format without byte strings: element by element, into a buffer that is wiped
    /// whenever it has to grow.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<SecretBytes, A::Error> {
        let mut out = Zeroizing::new(Vec::with_capacity(seq.size_hint().unwrap_or(0)));
        while let Some(b) = seq.next_element::<u8>()? {
            if out.len() == out.capacity() {
                let mut bigger = Zeroizing::new(Vec::with_capacity((out.len() * 2).max(64)));
                bigger.extend_from_slice(&out);
                out = bigger;
            }
            out.push(b);
        }
        Ok(SecretBytes(out))
    }
}

/// The errors of every method, `io.jpkid.Jpki1.Error.<Name>` (§6.4). Each carries the
/// human-readable message, which never holds a PIN or personal data; `ZBus` is a failure of
/// the bus itself, seen by clients only.
#[derive(Debug, Clone, DBusError)]
#[zbus(prefix = "io.jpkid.Jpki1.Error")]
#[non_exhaustive]
pub enum Error {
    /// The bus failed (client side): not connected, no reply, refused by the policy, …
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The reader is empty.
    NoCard(String),
    /// The card is not a My Number Card.
    NotJpkiCard(String),
    /// The card was removed (or replaced) during or before the request.
    CardRemoved(String),
    /// The reader's queue is full, or another application holds the card.
    ReaderBusy(String),
    /// The reader is gone (or the daemon is stopping).
    ReaderGone(String),
    /// Another client has claimed the reader.
    Claimed(String),
    /// Wrong PIN; the message starts with `remaining=N`.
    PinIncorrect(String),
    /// The PIN is blocked.
    PinBlocked(String),
    /// The PIN guard refused to risk a try; the message starts with `remaining=N`.
    PinGuard(String),
    /// The PIN's format is wrong; the card never saw it.
    InvalidPinFormat(String),
    /// A bad argument or option; nothing was sent to the card.
    InvalidArgument(String),
    /// The certificate is not on the card.
    CertificateMissing(String),
    /// Not possible with this kind of token.
    UnsupportedCard(String),
    /// The caller may not use the daemon.
    NotAuthorized(String),
    /// The request or the card did not finish in time.
    Timeout(String),
    /// The card answered with an error; the message names the command and the SW.
    CardError(String),
    /// The card's key does not belong to its certificate.
    KeyMismatch(String),
    /// A failure inside the daemon.
    Internal(String),
}

impl Error {
    /// The name after the prefix (`PinIncorrect`), as the audit log writes it; `ZBus` for a
    /// failure of the bus.
    pub fn short_name(&self) -> &'static str {
        match self {
            Error::ZBus(_) => "ZBus",
            Error::NoCard(_) => "NoCard",
            Error::NotJpkiCard(_) => "NotJpkiCard",
            Error::CardRemoved(_) => "CardRemoved",
            Error::ReaderBusy(_) => "ReaderBusy",
            Error::ReaderGone(_) => "ReaderGone",
            Error::Claimed(_) => "Claimed",
            Error::PinIncorrect(_) => "PinIncorrect",
            Error::PinBlocked(_) => "PinBlocked",
            Error::PinGuard(_) => "PinGuard",
            Error::InvalidPinFormat(_) => "InvalidPinFormat",
            Error::InvalidArgument(_) => "InvalidArgument",
            Error::CertificateMissing(_) => "CertificateMissing",
            Error::UnsupportedCard(_) => "UnsupportedCard",
            Error::NotAuthorized(_) => "NotAuthorized",
            Error::Timeout(_) => "Timeout",
            Error::CardError(_) => "CardError",
            Error::KeyMismatch(_) => "KeyMismatch",
            Error::Internal(_) => "Internal",
        }
    }

    /// The message (for `ZBus`, the bus error's text).
    pub fn message(&self) -> String {
        match self {
            Error::ZBus(e) => e.to_string(),
            Error::NoCard(m)
            | Error::NotJpkiCard(m)
            | Error::CardRemoved(m)
            | Error::ReaderBusy(m)
            | Error::ReaderGone(m)
            | Error::Claimed(m)
            | Error::PinIncorrect(m)
            | Error::PinBlocked(m)
            | Error::PinGuard(m)
            | Error::InvalidPinFormat(m)
            | Error::InvalidArgument(m)
            | Error::CertificateMissing(m)
            | Error::UnsupportedCard(m)
            | Error::NotAuthorized(m)
            | Error::Timeout(m)
            | Error::CardError(m)
            | Error::KeyMismatch(m)
            | Error::Internal(m) => m.clone(),
        }
    }

    /// `N` of a `PinIncorrect` or `PinGuard` message that starts `remaining=N`.
    pub fn remaining(&self) -> Option<u8> {
        match self {
            Error::PinIncorrect(m) | Error::PinGuard(m) => {
                let rest = m.strip_prefix("remaining=")?;
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            }
            _ => None,
        }
    }
}

impl From<UnknownName> for Error {
    fn from(e: UnknownName) -> Error {
        Error::InvalidArgument(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn choices_round_trip_and_name_what_they_accept() {
        for k in CertKind::ALL {
            assert_eq!(k.as_str().parse::<CertKind>(), Ok(*k));
        }
        let e = "signature".parse::<CertKind>().unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"unknown certificate "signature" (auth | auth-ca | sign | sign-ca)"#
        );
        assert_eq!("sha384".parse::<HashAlg>(), Ok(HashAlg::Sha384));
        assert!("Sign".parse::<KeyKind>().is_err());
        assert_eq!(CertStatus::NotYetValid.as_str(), "not-yet-valid");
    }

    #[test]
    fn choices_are_strings_on_the_wire() {
        assert_eq!(CertKind::SIGNATURE, "s");
        use zbus::wire::{LE, serialized::Context, to_bytes};
        let bytes = to_bytes(Context::new(LE, 0), &ReaderState::Mute).unwrap();
        let (text, _): (String, _) = bytes.deserialize().unwrap();
        assert_eq!(text, "mute");
        let bytes = to_bytes(Context::new(LE, 0), &"auth-ca").unwrap();
        let (back, _): (CertKind, _) = bytes.deserialize().unwrap();
        assert_eq!(back, CertKind::AuthCa);
    }

    #[test]
    fn error_names_carry_the_prefix_and_the_remaining_count() {
        let e = Error::PinIncorrect("remaining=2 wrong auth-pin".into());
        assert_eq!(e.name().as_str(), "io.jpkid.Jpki1.Error.PinIncorrect");
        assert_eq!(e.description(), Some("remaining=2 wrong auth-pin"));
        assert_eq!(e.remaining(), Some(2));
        assert_eq!(Error::Timeout(String::new()).remaining(), None);
        assert!(e.name().as_str().starts_with(ERROR_PREFIX));
    }

    /// The eighteen names of DESIGN §6.4, to the letter, and a method error with one of them
    /// becomes that variant on the client side.
    #[test]
    fn every_design_name_exists_and_comes_back() {
        let design = "NoCard NotJpkiCard CardRemoved ReaderBusy ReaderGone Claimed PinIncorrect \
                      PinBlocked PinGuard InvalidPinFormat InvalidArgument CertificateMissing \
                      UnsupportedCard NotAuthorized Timeout CardError KeyMismatch Internal";
        for short in design.split_whitespace() {
            let name = format!("{ERROR_PREFIX}.{short}");
            let back = Error::from(zbus::Error::MethodError(
                zbus::names::OwnedErrorName::try_from(name.as_str()).unwrap(),
                Some("why".into()),
                zbus::message::Message::method_call("/", "M")
                    .build(&())
                    .unwrap(),
            ));
            assert_eq!(back.short_name(), short, "{name}");
            assert_eq!(back.name().as_str(), name);
            assert_eq!(back.message(), "why");
        }
        let foreign = Error::from(zbus::Error::MethodError(
            zbus::names::OwnedErrorName::try_from("org.freedesktop.DBus.Error.AccessDenied")
                .unwrap(),
            None,
            zbus::message::Message::method_call("/", "M")
                .build(&())
                .unwrap(),
        ));
        assert!(matches!(foreign, Error::ZBus(_)));
    }

    #[test]
    fn options_are_read_with_their_exact_types_only() {
        let opts = CardOptions {
            allow_last_try: true,
            timeout_ms: Some(1500),
            insertion: Some(3),
        };
        assert_eq!(CardOptions::from_dict(&opts.to_dict()).unwrap(), opts);
        for (k, v) in [
            (option::ALLOW_LAST_TRY, OwnedVariant::from(1u32)),
            (option::TIMEOUT_MS, OwnedVariant::from(15i64)),
            (option::INSERTION, OwnedVariant::from(true)),
            ("colour", OwnedVariant::from(true)),
        ] {
            let d = Dict::from([(k.to_owned(), v)]);
            let e = CardOptions::from_dict(&d).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidArgument(m) if m.contains(k)),
                "{k}: {e:?}"
            );
        }
        let at = VerifyOptions { at: Some(5) };
        assert_eq!(VerifyOptions::from_dict(&at.to_dict()).unwrap(), at);
        let d = Dict::from([(option::AT.to_owned(), OwnedVariant::from(5u32))]);
        assert!(VerifyOptions::from_dict(&d).is_err());
    }

    #[test]
    fn reader_paths_round_trip() {
        assert_eq!(reader_path(3), "/io/jpkid/Jpki1/reader/3");
        assert_eq!(reader_id("/io/jpkid/Jpki1/reader/3"), Some(3));
        assert_eq!(reader_id("/io/jpkid/Jpki1"), None);
        assert_eq!(reader_id("/io/jpkid/Jpki1/reader/x"), None);
    }

    #[test]
    fn secret_bytes_hide_their_content() {
        let s = SecretBytes::new(b"SECRET".to_vec());
        assert!(!format!("{s:?}").contains("SECRET"));
        assert_eq!(SecretBytes::SIGNATURE, "ay");
    }
}
