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
use zbus::{DBusError, DeserializeDict, OwnedVariant, SerializeDict, Type, Variant};
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
    path.strip_prefix(READER_PATH_PREFIX)?.parse().ok()
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
        let mut out = CardOptions::default();
        for (key, value) in dict {
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

fn wrong_type(key: &str, want: &str, value: &Variant<'_>) -> Error {
    Error::InvalidArgument(format!(
        "option {key:?} must be of type {want}, got {}",
        value.value_signature()
    ))
}

/// Tries left per PIN (`GetPinStatus`, `a{sy}`); 0 = blocked. A PIN the token does not have is
/// absent (smartphone tokens have no text AP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zbus(signature = "a{sy}", rename_all = "kebab-case")]
pub struct PinCounters {
    /// 署名用パスワード.
    pub sign_password: u8,
    /// 利用者証明用暗証番号.
    pub auth_pin: u8,
    /// 券面事項入力補助用暗証番号.
    pub text_pin: Option<u8>,
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
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SecretBytes, D::Error> {
        Vec::<u8>::deserialize(d).map(SecretBytes::new)
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
