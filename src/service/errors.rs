//! The D-Bus errors of DESIGN §6.4 and the one place where reader-layer and card errors become
//! them.
//!
//! Mapping choices (the table is repeated in the report of the service work):
//! - A mute card (`RequestError::Mute`, `TransportError::Mute`/`Timeout`) is `Timeout`: the card
//!   did not answer in time, there is no status word to name, and the client's remedy (wait,
//!   re-insert) is the one for a timeout.
//! - `TransportError::SharingViolation` is `ReaderBusy`: another application holds the card.
//! - `RequestError::Cancelled` and `TransportError::Cancelled` are `ReaderGone`: the daemon is
//!   stopping (a caller that went away never sees the answer).
//! - `TransportError::NoService` (pcscd gone) is `ReaderGone`: no reader can be reached.
//! - `JpkiError::NoTextApplication` and `JpkiError::Unsupported` are `UnsupportedCard`.
//! - Every status word, malformed answer, reset by another application or other reader failure
//!   is `CardError`, whose message names the command and the SW.
//! - An APDU that cannot be encoded is `Internal` (a bug, not the card).
//!
//! The matches are exhaustive (the enums are `non_exhaustive` only for other crates), so a new
//! variant below needs a decision here.
//!
//! Messages are built from the errors' `Display`, which never holds a PIN or personal data.

use zbus::DBusError;

use crate::card::CardError;
use crate::jpki::JpkiError;
use crate::readers::RequestError;
use crate::transport::TransportError;

/// `io.jpkid.Jpki1.Error.*`. Each variant carries the human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, DBusError)]
#[zbus(prefix = "io.jpkid.Jpki1.Error")]
pub enum Error {
    /// The reader is empty.
    NoCard(String),
    /// The card is not a My Number Card.
    NotJpkiCard(String),
    /// The card was removed during the request.
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
    /// A bad argument or option.
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
    /// A failure inside the daemon.
    Internal(String),
}

impl Error {
    /// The short name (`NoCard`, …), as written to the audit log.
    pub fn short_name(&self) -> &'static str {
        match self {
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
            Error::Internal(_) => "Internal",
        }
    }

    /// An `InvalidArgument` with this message.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument(message.into())
    }
}

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Error {
        let text = e.to_string();
        match e {
            RequestError::NoCard => Error::NoCard(text),
            RequestError::NotJpkiCard => Error::NotJpkiCard(text),
            RequestError::ReaderGone => Error::ReaderGone(text),
            RequestError::ReaderBusy => Error::ReaderBusy(text),
            RequestError::Mute => Error::Timeout(text),
            RequestError::Timeout => Error::Timeout(text),
            RequestError::Cancelled => Error::ReaderGone(format!("{text}: the daemon is stopping")),
            RequestError::Jpki(e) => Error::from(e),
        }
    }
}

impl From<JpkiError> for Error {
    fn from(e: JpkiError) -> Error {
        let text = e.to_string();
        match e {
            JpkiError::NotJpkiCard => Error::NotJpkiCard(text),
            JpkiError::NoTextApplication | JpkiError::Unsupported(_) => {
                Error::UnsupportedCard(text)
            }
            JpkiError::CertificateMissing(_) => Error::CertificateMissing(text),
            JpkiError::PinIncorrect { .. } => Error::PinIncorrect(text),
            JpkiError::PinBlocked { .. } => Error::PinBlocked(text),
            JpkiError::PinGuard { .. } => Error::PinGuard(text),
            JpkiError::PinFormat { .. } => Error::InvalidPinFormat(text),
            JpkiError::DigestLength { .. } => Error::InvalidArgument(text),
            JpkiError::IntegrityMismatch(_) => Error::CardError(text),
            JpkiError::Card(c) => Error::from(c),
        }
    }
}

impl From<CardError> for Error {
    fn from(e: CardError) -> Error {
        let text = e.to_string();
        match e {
            CardError::Transport(t) => Error::from(t),
            CardError::Encoding(_) => Error::Internal(text),
            CardError::Status { .. }
            | CardError::Malformed { .. }
            | CardError::EndlessResponse(_) => Error::CardError(text),
        }
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Error {
        let text = e.to_string();
        match e {
            TransportError::CardRemoved | TransportError::NoCard => Error::CardRemoved(text),
            TransportError::ReaderGone | TransportError::NoService(_) => Error::ReaderGone(text),
            TransportError::Cancelled => Error::ReaderGone(text),
            TransportError::Timeout | TransportError::Mute => Error::Timeout(text),
            TransportError::SharingViolation => Error::ReaderBusy(text),
            TransportError::CardReset | TransportError::Other { .. } => Error::CardError(text),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::apdu::StatusWord;
    use crate::jpki::PinKind;

    #[test]
    fn names_carry_the_prefix() {
        let e = Error::PinIncorrect("remaining=2 wrong auth-pin".into());
        assert_eq!(e.name().as_str(), "io.jpkid.Jpki1.Error.PinIncorrect");
        assert_eq!(e.description(), Some("remaining=2 wrong auth-pin"));
        assert_eq!(e.short_name(), "PinIncorrect");
    }

    /// The seventeen names of DESIGN §6.4, to the letter.
    #[test]
    fn every_design_name_exists() {
        let all = [
            Error::NoCard(String::new()),
            Error::NotJpkiCard(String::new()),
            Error::CardRemoved(String::new()),
            Error::ReaderBusy(String::new()),
            Error::ReaderGone(String::new()),
            Error::Claimed(String::new()),
            Error::PinIncorrect(String::new()),
            Error::PinBlocked(String::new()),
            Error::PinGuard(String::new()),
            Error::InvalidPinFormat(String::new()),
            Error::InvalidArgument(String::new()),
            Error::CertificateMissing(String::new()),
            Error::UnsupportedCard(String::new()),
            Error::NotAuthorized(String::new()),
            Error::Timeout(String::new()),
            Error::CardError(String::new()),
            Error::Internal(String::new()),
        ];
        let names: Vec<String> = all.iter().map(|e| e.name().to_string()).collect();
        let design = "NoCard NotJpkiCard CardRemoved ReaderBusy ReaderGone Claimed PinIncorrect \
                      PinBlocked PinGuard InvalidPinFormat InvalidArgument CertificateMissing \
                      UnsupportedCard NotAuthorized Timeout CardError Internal";
        let want: Vec<String> = design
            .split_whitespace()
            .map(|n| format!("io.jpkid.Jpki1.Error.{n}"))
            .collect();
        assert_eq!(names, want);
        for e in &all {
            assert_eq!(
                e.name().as_str(),
                format!("io.jpkid.Jpki1.Error.{}", e.short_name())
            );
        }
    }

    #[test]
    fn pin_errors_keep_remaining_first() {
        let e = Error::from(RequestError::Jpki(JpkiError::PinIncorrect {
            pin: PinKind::AuthPin,
            remaining: 2,
        }));
        assert!(matches!(&e, Error::PinIncorrect(m) if m.starts_with("remaining=2")));
        let e = Error::from(JpkiError::PinGuard {
            pin: PinKind::SignPassword,
            remaining: 1,
        });
        assert!(matches!(&e, Error::PinGuard(m) if m.starts_with("remaining=1")));
    }

    #[test]
    fn status_words_name_command_and_sw() {
        let e = Error::from(JpkiError::Card(CardError::Status {
            command: "SELECT FILE",
            sw: StatusWord::from_bytes(0x6A, 0x82),
        }));
        let Error::CardError(m) = e else {
            panic!("{e:?}")
        };
        assert!(m.contains("SELECT FILE") && m.contains("6A82"), "{m}");
    }

    #[test]
    fn transport_and_state_errors() {
        assert!(matches!(Error::from(RequestError::Mute), Error::Timeout(_)));
        assert!(matches!(
            Error::from(JpkiError::Card(CardError::Transport(
                TransportError::CardRemoved
            ))),
            Error::CardRemoved(_)
        ));
        assert!(matches!(
            Error::from(RequestError::ReaderBusy),
            Error::ReaderBusy(_)
        ));
    }
}
