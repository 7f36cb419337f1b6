//! The one place where reader-layer, card and transport errors become the D-Bus errors of
//! DESIGN §6.4 ([`crate::api::Error`]).
//!
//! Mapping choices (the table is repeated in the report of the service work):
//! - A mute card (`RequestError::Mute`, `TransportError::Mute`/`Timeout`) is `Timeout`: the card
//!   did not answer in time, there is no status word to name, and the client's remedy (wait,
//!   re-insert) is the one for a timeout.
//! - `TransportError::SharingViolation` is `ReaderBusy`: another application holds the card.
//! - `RequestError::Stopping` and `TransportError::Cancelled` are `ReaderGone`: the daemon is
//!   stopping (a caller that went away never sees the answer).
//! - `RequestError::CardReplaced` (option `insertion`) and `RequestError::CardSwapped` (the
//!   reader's event counter moved) are `CardRemoved`: the card the caller meant is not there.
//! - `TransportError::Abandoned` (the session's exchange was given up at the deadline) is
//!   `Timeout`, like the deadline itself.
//! - `CardError::NoTimeLeft` is `Timeout`: too little of the deadline was left to start a
//!   VERIFY or a signature, which was therefore not sent.
//! - `JpkiError::KeyMismatch` is `KeyMismatch` (a card that cannot prove it holds its
//!   certificate's key); `JpkiError::WrongToken` (a smartphone token where only a card is
//!   accepted) is `UnsupportedCard`.
//! - `JpkiError::SecretNotWanted` is `InvalidArgument`, `JpkiError::PinRequired`
//!   `InvalidPinFormat` (an empty PIN where the token needs one).
//! - `TransportError::NoService` (pcscd gone) is `ReaderGone`: no reader can be reached.
//! - `JpkiError::NoTextApplication`, `JpkiError::NoVisualApplication` and
//!   `JpkiError::Unsupported` are `UnsupportedCard`.
//! - Every status word, malformed answer, reset by another application or other reader failure
//!   is `CardError`, whose message names the command and the SW.
//! - An APDU that cannot be encoded is `Internal` (a bug, not the card).
//! - Every `TermsError` (an impossible date, an unknown holding or item, a day before the
//!   consent, …) is `InvalidArgument`: the question had no answer as asked.
//!
//! The matches are exhaustive (the enums are `non_exhaustive` only for other crates), so a new
//! variant below needs a decision here.
//!
//! Messages are built from the errors' `Display`, which never holds a PIN or personal data.

use crate::api::Error;
use crate::card::CardError;
use crate::digest::DigestLength;
use crate::jpki::JpkiError;
use crate::readers::RequestError;
use crate::terms::TermsError;
use crate::transport::TransportError;

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Error {
        let text = e.to_string();
        match e {
            RequestError::NoCard => Error::NoCard(text),
            RequestError::NotJpkiCard => Error::NotJpkiCard(text),
            RequestError::ReaderGone => Error::ReaderGone(text),
            RequestError::ReaderBusy => Error::ReaderBusy(text),
            RequestError::Mute => Error::Timeout(text),
            RequestError::CardReplaced { .. } | RequestError::CardSwapped => {
                Error::CardRemoved(text)
            }
            RequestError::Stopping => Error::ReaderGone(text),
            RequestError::Panicked => Error::Internal(text),
            RequestError::Flow(e) => Error::from(e),
        }
    }
}

impl From<DigestLength> for Error {
    fn from(e: DigestLength) -> Error {
        Error::InvalidArgument(e.to_string())
    }
}

/// `Testing.InsertCard`/`RemoveCard` on a reader that is not virtual is `ReaderGone`; a persona
/// that does not load is `InvalidArgument`.
#[cfg(feature = "virtual-card")]
impl From<crate::readers::VirtualError> for Error {
    fn from(e: crate::readers::VirtualError) -> Error {
        use crate::readers::VirtualError;
        match e {
            VirtualError::NotVirtual(id) => {
                Error::ReaderGone(format!("reader {id} is not a virtual reader"))
            }
            VirtualError::Persona(p) => {
                Error::InvalidArgument(format!("persona could not be loaded: {p}"))
            }
        }
    }
}

impl From<TermsError> for Error {
    fn from(e: TermsError) -> Error {
        Error::InvalidArgument(e.to_string())
    }
}

impl From<JpkiError> for Error {
    fn from(e: JpkiError) -> Error {
        let text = e.to_string();
        match e {
            JpkiError::NotJpkiCard => Error::NotJpkiCard(text),
            JpkiError::NoTextApplication
            | JpkiError::NoVisualApplication
            | JpkiError::Unsupported(_) => Error::UnsupportedCard(text),
            JpkiError::SecretNotWanted(_) => Error::InvalidArgument(text),
            JpkiError::KeyMismatch => Error::KeyMismatch(text),
            JpkiError::WrongToken(_) => Error::UnsupportedCard(text),
            JpkiError::PinRequired(_) => Error::InvalidPinFormat(text),
            JpkiError::CertificateMissing(_) => Error::CertificateMissing(text),
            JpkiError::PinIncorrect { .. } => Error::PinIncorrect(text),
            JpkiError::PinBlocked { .. } => Error::PinBlocked(text),
            JpkiError::PinGuard { .. } => Error::PinGuard(text),
            JpkiError::PinFormat { .. } => Error::InvalidPinFormat(text),
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
            CardError::NoTimeLeft { .. } => Error::Timeout(text),
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
            TransportError::Timeout | TransportError::Mute | TransportError::Abandoned => {
                Error::Timeout(text)
            }
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
    use crate::jpki::{CertKind, PinKind};

    #[test]
    fn pin_errors_keep_remaining_first() {
        let e = Error::from(RequestError::Flow(JpkiError::PinIncorrect {
            pin: PinKind::AuthPin,
            remaining: 2,
        }));
        assert!(matches!(&e, Error::PinIncorrect(m) if m.starts_with("remaining=2")));
        assert_eq!(e.remaining(), Some(2));
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
    fn transport_state_and_request_errors() {
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
        assert!(matches!(
            Error::from(RequestError::CardReplaced {
                expected: 1,
                now: 2
            }),
            Error::CardRemoved(_)
        ));
        assert!(matches!(
            Error::from(RequestError::Flow(JpkiError::SecretNotWanted(
                CertKind::Auth
            ))),
            Error::InvalidArgument(_)
        ));
        assert!(matches!(
            Error::from(JpkiError::Card(CardError::NoTimeLeft {
                command: "VERIFY",
                needed: std::time::Duration::from_millis(500),
                left: std::time::Duration::ZERO,
            })),
            Error::Timeout(_)
        ));
    }
}
