//! The one seam between card logic and the reader: bytes in, bytes out. PC/SC and the in-process
//! virtual card both implement [`CardTransport`], so every flow runs unchanged on either.

#[cfg(feature = "pcsc")]
pub mod pcsc;
#[cfg(feature = "virtual-card")]
pub mod r#virtual;

use zeroize::Zeroizing;

/// How a session with a card ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Leave the card as it is (nothing secret was unlocked).
    Leave,
    /// Power the card off: the only thing that clears a verified PIN on a real card
    /// (a warm reset does not; `reference/jpki-protocol.md` §7, §14).
    Unpower,
}

/// Why an exchange with the card failed below the APDU level. Each case is distinct because
/// the reader layer and the D-Bus errors treat them differently.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The smart-card service (pcscd) is not running or went away.
    #[error("smart-card service not available")]
    NoService(#[source] Option<Box<dyn std::error::Error + Send + Sync>>),
    /// The reader is not (or no longer) there.
    #[error("reader not available")]
    ReaderGone,
    /// No card in the reader.
    #[error("no card in the reader")]
    NoCard,
    /// The card was removed during the exchange.
    #[error("card removed")]
    CardRemoved,
    /// The card was reset by another client; its state is lost.
    #[error("card was reset by another application")]
    CardReset,
    /// Another process holds the card exclusively.
    #[error("card is in use by another application")]
    SharingViolation,
    /// The card did not answer in time.
    #[error("card did not answer in time")]
    Timeout,
    /// The card answers nothing at all (no ATR, no response).
    #[error("card does not respond")]
    Mute,
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// Any other failure of the reader stack, with its cause.
    #[error("reader error during {context}")]
    Other {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A connected card. Implementations are used from one thread at a time (the reader's worker).
pub trait CardTransport: Send {
    /// Sends one command APDU and returns the raw response (data, SW1, SW2).
    ///
    /// # Errors
    /// A [`TransportError`] when the exchange did not complete.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Zeroizing<Vec<u8>>, TransportError>;

    /// The card's answer to reset.
    fn atr(&self) -> Vec<u8>;

    /// Whether the reader is known to pass extended-length APDUs (`None`: unknown, try once).
    fn extended_length_hint(&self) -> Option<bool> {
        None
    }

    /// Takes the card exclusively before a PIN is verified, so no other client can use the
    /// unlocked key. Transports without other clients do nothing.
    ///
    /// # Errors
    /// [`TransportError::SharingViolation`] when another client holds the card.
    fn hold_exclusive(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    /// Ends the session, powering the card off when a PIN was verified.
    ///
    /// # Errors
    /// A [`TransportError`] when the reader refused.
    fn end_session(&mut self, end: SessionEnd) -> Result<(), TransportError>;
}

impl<T: CardTransport + ?Sized> CardTransport for Box<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        (**self).transmit(apdu)
    }
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }
    fn extended_length_hint(&self) -> Option<bool> {
        (**self).extended_length_hint()
    }
    fn hold_exclusive(&mut self) -> Result<(), TransportError> {
        (**self).hold_exclusive()
    }
    fn end_session(&mut self, end: SessionEnd) -> Result<(), TransportError> {
        (**self).end_session(end)
    }
}
