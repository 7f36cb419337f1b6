//! PC/SC transport (pcsc-lite's `pcscd`, through the `pcsc` crate).
//!
//! Three things here are deliberate because the defaults are wrong for a PIN-bearing card:
//! - The `pcsc::Card` destructor resets the card, and a warm reset does not clear a verified PIN
//!   on a real My Number Card. Every session therefore ends with an explicit disconnect:
//!   `LeaveCard` when nothing was unlocked, `UnpowerCard` after a PIN (DESIGN §3).
//! - `SCardTransmit` has no timeout of its own, and some readers (vpcd among them) wait forever
//!   for a mute card. Each exchange runs on a short-lived thread and the worker waits only until
//!   the request's deadline; a stuck exchange is abandoned with [`TransportError::Timeout`] and
//!   the connection is not used again.
//! - A response shorter than a status word is what pcscd hands back when the card left during
//!   the exchange (measured with vpcd, `hw-fixtures/src/vpcd.rs`): it is a removal, not data.

use std::ffi::{CStr, CString};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Error, Protocols, ShareMode};
use tracing::debug;
use zeroize::Zeroizing;

use super::{CardTransport, SessionEnd, TransportError};

/// Largest response pcsc-lite passes (extended APDU: 65536 data bytes + SW).
const MAX_RESPONSE: usize = 65_538;

/// A connection to the card in one PC/SC reader.
pub struct PcscTransport {
    /// `None` once the session ended or an exchange was abandoned.
    card: Option<Arc<pcsc::Card>>,
    reader: CString,
    atr: Vec<u8>,
    deadline: Instant,
    /// Set once the card is held exclusively for a PIN: the session must end unpowered.
    unlocked: bool,
    /// Whether an APDU reached the card on this connection (see [`PcscTransport::transmit`]).
    exchanged: bool,
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .field("connected", &self.card.is_some())
            .field("unlocked", &self.unlocked)
            .finish()
    }
}

impl PcscTransport {
    /// Connects (shared) to the card in `reader`. Every exchange must finish within `timeout`
    /// from now.
    ///
    /// # Errors
    /// [`TransportError::NoCard`], [`TransportError::ReaderGone`],
    /// [`TransportError::SharingViolation`], [`TransportError::NoService`], …
    pub fn connect(
        ctx: &Context,
        reader: &CStr,
        timeout: Duration,
    ) -> Result<PcscTransport, TransportError> {
        let card = ctx
            .connect(reader, ShareMode::Shared, Protocols::ANY)
            .map_err(|e| map_error(e, "connecting to the card"))?;
        let mut card = card;
        let atr = match card.status2_owned() {
            // Powered or reset since the last session: renew the handle (see `transmit`).
            Err(Error::ResetCard) => {
                card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)
                    .map_err(|e| map_error(e, "renewing the card connection"))?;
                card.status2_owned()
            }
            other => other,
        }
        .map(|s| s.atr().to_vec())
        .map_err(|e| map_error(e, "reading the card status"))?;
        Ok(PcscTransport {
            card: Some(Arc::new(card)),
            reader: reader.to_owned(),
            atr,
            deadline: Instant::now() + timeout,
            unlocked: false,
            exchanged: false,
        })
    }

    fn card(&self) -> Result<&Arc<pcsc::Card>, TransportError> {
        self.card.as_ref().ok_or(TransportError::Timeout)
    }

    /// Ends the connection with `disposition`; a card still shared with an abandoned exchange
    /// is left to that exchange (its thread drops it when pcscd lets go).
    fn disconnect(&mut self, disposition: Disposition) -> Result<(), TransportError> {
        let Some(card) = self.card.take() else {
            return Ok(());
        };
        match Arc::try_unwrap(card) {
            Ok(card) => card
                .disconnect(disposition)
                .map_err(|(_, e)| map_error(e, "ending the card session")),
            Err(_) => Ok(()),
        }
    }
}

impl CardTransport for PcscTransport {
    /// pcscd answers the first exchange of a new connection with `SCARD_W_RESET_CARD` when the
    /// card was powered or reset since its last session (ours ends unpowered after a PIN). No
    /// state of ours can be lost before the first APDU, so the connection is renewed and the
    /// APDU sent once more; a reset later in a session is reported, since it ends the session.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        match self.transmit_once(apdu) {
            Err(TransportError::CardReset) if !self.exchanged => {
                debug!(reader = ?self.reader, "card was reset since the last session; reconnecting");
                self.reconnect(ShareMode::Shared)?;
                self.transmit_once(apdu)
            }
            other => other,
        }
        .inspect(|_| self.exchanged = true)
    }

    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn hold_exclusive(&mut self) -> Result<(), TransportError> {
        // From here on the session must end unpowered, whatever happens.
        self.unlocked = true;
        self.reconnect(ShareMode::Exclusive)
    }

    fn end_session(&mut self, end: SessionEnd) -> Result<(), TransportError> {
        let disposition = if end == SessionEnd::Unpower || self.unlocked {
            Disposition::UnpowerCard
        } else {
            Disposition::LeaveCard
        };
        self.disconnect(disposition)
    }
}

impl PcscTransport {
    /// Renews the connection in `mode` without touching the card (`LeaveCard`).
    fn reconnect(&mut self, mode: ShareMode) -> Result<(), TransportError> {
        let card = self.card.take().ok_or(TransportError::Timeout)?;
        let mut card = match Arc::try_unwrap(card) {
            Ok(card) => card,
            Err(shared) => {
                self.card = Some(shared);
                return Err(TransportError::Timeout);
            }
        };
        let result = card.reconnect(mode, Protocols::ANY, Disposition::LeaveCard);
        self.card = Some(Arc::new(card));
        result.map_err(|e| map_error(e, "renewing the card connection"))
    }

    fn transmit_once(&mut self, apdu: &[u8]) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        let card = Arc::clone(self.card()?);
        let wait = self.deadline.saturating_duration_since(Instant::now());
        let (tx, rx) = mpsc::sync_channel(1);
        let command = Zeroizing::new(apdu.to_vec());
        std::thread::Builder::new()
            .name("pcsc-transmit".into())
            .spawn(move || {
                let mut buf = Zeroizing::new(vec![0u8; MAX_RESPONSE]);
                let result = card
                    .transmit(&command, &mut buf)
                    .map(|r| Zeroizing::new(r.to_vec()));
                // Let go of the handle before answering, so the session can take it back.
                drop(card);
                let _ = tx.send(result);
            })
            .map_err(|e| TransportError::Other {
                context: "starting an exchange",
                source: Box::new(e),
            })?;
        match rx.recv_timeout(wait) {
            Ok(Ok(response)) if response.len() < 2 => Err(TransportError::CardRemoved),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(map_error(e, "exchanging an APDU")),
            Err(_) => {
                debug!(reader = ?self.reader, "card did not answer before the deadline");
                // The exchange thread keeps its handle until pcscd returns; this one is done.
                self.card = None;
                Err(TransportError::Timeout)
            }
        }
    }
}

impl Drop for PcscTransport {
    /// Never the crate's default reset: unpowered after a PIN, otherwise left as it is.
    fn drop(&mut self) {
        let disposition = if self.unlocked {
            Disposition::UnpowerCard
        } else {
            Disposition::LeaveCard
        };
        let _ = self.disconnect(disposition);
    }
}

/// Maps a PC/SC error to the transport error the reader layer acts on.
pub fn map_error(e: Error, context: &'static str) -> TransportError {
    match e {
        Error::NoService | Error::ServiceStopped | Error::CommError | Error::NoReadersAvailable => {
            TransportError::NoService(Some(Box::new(e)))
        }
        Error::UnknownReader | Error::ReaderUnavailable | Error::InvalidHandle => {
            TransportError::ReaderGone
        }
        Error::NoSmartcard => TransportError::NoCard,
        // vpcd reports a card that left mid-exchange as NOT_TRANSACTED on the next exchange.
        Error::RemovedCard | Error::NotTransacted => TransportError::CardRemoved,
        Error::ResetCard => TransportError::CardReset,
        Error::SharingViolation => TransportError::SharingViolation,
        Error::Timeout => TransportError::Timeout,
        Error::UnresponsiveCard | Error::UnpoweredCard | Error::UnsupportedCard => {
            TransportError::Mute
        }
        Error::Cancelled => TransportError::Cancelled,
        other => TransportError::Other {
            context,
            source: Box::new(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_distinct_transport_errors() {
        for (e, want) in [
            (Error::NoService, "NoService"),
            (Error::ServiceStopped, "NoService"),
            (Error::UnknownReader, "ReaderGone"),
            (Error::NoSmartcard, "NoCard"),
            (Error::RemovedCard, "CardRemoved"),
            (Error::NotTransacted, "CardRemoved"),
            (Error::ResetCard, "CardReset"),
            (Error::SharingViolation, "SharingViolation"),
            (Error::Timeout, "Timeout"),
            (Error::UnresponsiveCard, "Mute"),
            (Error::InsufficientBuffer, "Other"),
        ] {
            let mapped = format!("{:?}", map_error(e, "test"));
            assert!(mapped.starts_with(want), "{e:?} -> {mapped}");
        }
    }
}
