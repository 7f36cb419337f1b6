//! PC/SC transport (pcsc-lite's `pcscd`, through the `pcsc` crate).
//!
//! Three things here are deliberate because the defaults are wrong for a PIN-bearing card:
//! - The `pcsc::Card` destructor resets the card, and a warm reset does not clear a verified PIN
//!   on a real My Number Card. The card handle therefore lives in a [`Session`] whose own
//!   destructor disconnects — `UnpowerCard` once the session was held for a PIN, `LeaveCard`
//!   otherwise — and whoever drops the last reference to it (the request, or an exchange still
//!   running after its request gave up) ends the session that way. No path leaves it to the
//!   crate's default.
//! - `SCardTransmit` has no timeout of its own, and some readers (vpcd among them) wait forever
//!   for a mute card. Each exchange runs on a short-lived thread and the worker waits only until
//!   the request's deadline; an exchange it stops waiting for keeps its reference to the session
//!   (abandoned in the reader's [`Drain`]) and ends it when the card finally answers. The
//!   request ends with `Timeout`; whether the card is mute is the reader layer's call, from how
//!   long the abandoned exchange runs.
//! - A response shorter than a status word is what pcscd hands back when the card left during
//!   the exchange (measured with vpcd, `hw-fixtures/src/vpcd.rs`): it is a removal, not data.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use pcsc::{Context, Disposition, Error, Protocols, ShareMode};
use tracing::{debug, warn};
use zeroize::Zeroizing;

use super::{CardTransport, Drain, SessionEnd, Share, TransportError};

/// Largest response pcsc-lite passes (extended APDU: 65536 data bytes + SW).
const MAX_RESPONSE: usize = 65_538;

/// One connection to the card. Dropping the last reference disconnects it.
struct Session {
    card: Option<pcsc::Card>,
    /// Set once the session was held for a PIN: it must end with the card powered off.
    unpower: AtomicBool,
    reader: CString,
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(card) = self.card.take() else {
            return;
        };
        let disposition = if self.unpower.load(Ordering::SeqCst) {
            Disposition::UnpowerCard
        } else {
            Disposition::LeaveCard
        };
        if let Err((_card, e)) = card.disconnect(disposition) {
            // The card or reader is gone (nothing left to lock), or pcscd is: either way the
            // handle is dead; dropping it cannot reset a live card.
            warn!(reader = ?self.reader, error = %e, ?disposition, "could not end the card session");
        } else {
            debug!(reader = ?self.reader, ?disposition, "card session ended");
        }
    }
}

/// A connection to the card in one PC/SC reader.
pub struct PcscTransport {
    /// `None` once the session ended, or after an exchange this side stopped waiting for.
    session: Option<Arc<Session>>,
    reader: CString,
    atr: Vec<u8>,
    share: Share,
    /// Whether an APDU reached the card on this connection (see [`PcscTransport::transmit`]).
    exchanged: bool,
    drain: Drain,
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .field("connected", &self.session.is_some())
            .field("share", &self.share)
            .finish()
    }
}

impl PcscTransport {
    /// Connects to the card in `reader`. An [`Share::Exclusive`] connection ends unpowered.
    /// Exchanges abandoned at their deadline are counted in `drain`.
    ///
    /// # Errors
    /// [`TransportError::NoCard`], [`TransportError::ReaderGone`],
    /// [`TransportError::SharingViolation`], [`TransportError::NoService`], …
    pub fn connect(
        ctx: &Context,
        reader: &CStr,
        share: Share,
        drain: Drain,
    ) -> Result<PcscTransport, TransportError> {
        let mode = match share {
            Share::Shared => ShareMode::Shared,
            Share::Exclusive => ShareMode::Exclusive,
        };
        let mut card = ctx
            .connect(reader, mode, Protocols::ANY)
            .map_err(|e| map_error(e, "connecting to the card"))?;
        let status = match card.status2_owned() {
            // Powered or reset since the last session: renew the handle (see `transmit`).
            Err(Error::ResetCard) => {
                card.reconnect(mode, Protocols::ANY, Disposition::LeaveCard)
                    .map_err(|e| map_error(e, "renewing the card connection"))?;
                card.status2_owned()
            }
            other => other,
        };
        // From here the card is in a Session, so every failure below still ends it properly.
        let session = Arc::new(Session {
            card: Some(card),
            unpower: AtomicBool::new(share == Share::Exclusive),
            reader: reader.to_owned(),
        });
        let atr = status
            .map(|s| s.atr().to_vec())
            .map_err(|e| map_error(e, "reading the card status"))?;
        Ok(PcscTransport {
            session: Some(session),
            reader: reader.to_owned(),
            atr,
            share,
            exchanged: false,
            drain,
        })
    }

    /// The session while this side still owns it alone: gone once an exchange was abandoned
    /// (it ended this request's use of the card).
    fn own_session(&mut self) -> Result<&mut Session, TransportError> {
        let arc = self.session.as_mut().ok_or(TransportError::Abandoned)?;
        Arc::get_mut(arc).ok_or(TransportError::Abandoned)
    }

    /// Renews the connection in `mode` without touching the card (`LeaveCard`).
    fn reconnect(&mut self, mode: ShareMode) -> Result<(), TransportError> {
        let session = self.own_session()?;
        let card = session.card.as_mut().ok_or(TransportError::Abandoned)?;
        card.reconnect(mode, Protocols::ANY, Disposition::LeaveCard)
            .map_err(|e| map_error(e, "renewing the card connection"))
    }

    fn transmit_once(
        &mut self,
        apdu: &[u8],
        deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        let session = Arc::clone(self.session.as_ref().ok_or(TransportError::Abandoned)?);
        let started = Instant::now();
        let wait = deadline.saturating_duration_since(started);
        let (tx, rx) = mpsc::sync_channel(1);
        let command = Zeroizing::new(apdu.to_vec());
        let running = self.drain.enter();
        let exchange = running.id();
        std::thread::Builder::new()
            .name("pcsc-transmit".into())
            .spawn(move || {
                let mut buf = Zeroizing::new(vec![0u8; MAX_RESPONSE]);
                let result = match &session.card {
                    Some(card) => card
                        .transmit(&command, &mut buf)
                        .map(|r| Zeroizing::new(r.to_vec())),
                    None => Err(Error::InvalidHandle),
                };
                // Gone if the thread died: reported as the reader failing, below.
                // The session first (this may be its last reference: it ends here, unpowered
                // after a PIN), then the count of running exchanges.
                drop(session);
                drop(running);
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
            Err(mpsc::RecvTimeoutError::Timeout) => {
                debug!(reader = ?self.reader, waited = ?started.elapsed(), "card did not answer before the deadline");
                // The exchange keeps the session until pcscd returns; this side is done with it.
                self.drain.abandon(exchange, started);
                self.session = None;
                Err(TransportError::Timeout)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(TransportError::Other {
                context: "exchanging an APDU",
                source: "the exchange thread ended without an answer".into(),
            }),
        }
    }
}

impl CardTransport for PcscTransport {
    /// pcscd answers the first exchange of a new connection with `SCARD_W_RESET_CARD` when the
    /// card was powered or reset since its last session (ours ends unpowered after a PIN). No
    /// state of ours can be lost before the first APDU, so the connection is renewed and the
    /// APDU sent once more; a reset later in a session is reported, since it ends the session.
    fn transmit(
        &mut self,
        apdu: &[u8],
        deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        match self.transmit_once(apdu, deadline) {
            Err(TransportError::CardReset) if !self.exchanged => {
                debug!(reader = ?self.reader, "card was reset since the last session; reconnecting");
                let mode = match self.share {
                    Share::Shared => ShareMode::Shared,
                    Share::Exclusive => ShareMode::Exclusive,
                };
                self.reconnect(mode)?;
                self.transmit_once(apdu, deadline)
            }
            other => other,
        }
        .inspect(|_| self.exchanged = true)
    }

    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn hold_exclusive(&mut self) -> Result<(), TransportError> {
        // Marked first: from here on the session ends unpowered, whatever happens.
        if let Some(s) = &self.session {
            s.unpower.store(true, Ordering::SeqCst);
        }
        if self.share == Share::Exclusive {
            return Ok(());
        }
        self.reconnect(ShareMode::Exclusive)?;
        self.share = Share::Exclusive;
        Ok(())
    }

    fn end_session(&mut self, end: SessionEnd) -> Result<(), TransportError> {
        if let Some(s) = self.session.take() {
            if end == SessionEnd::Unpower {
                s.unpower.store(true, Ordering::SeqCst);
            }
            // The last reference disconnects (see `Session`); an exchange still running
            // holds another and ends the session when the card answers.
            drop(s);
        }
        Ok(())
    }
}

/// The current event counter of `reader` (pcscd counts card insertions and removals): a card
/// swapped since a known value shows as a different count.
///
/// # Errors
/// The PC/SC error, mapped.
pub fn event_count(ctx: &Context, reader: &CStr) -> Result<u32, TransportError> {
    let mut states = [pcsc::ReaderState::new(
        reader.to_owned(),
        pcsc::State::UNAWARE,
    )];
    ctx.get_status_change(std::time::Duration::ZERO, &mut states)
        .map_err(|e| map_error(e, "reading the reader's state"))?;
    Ok(states[0].event_count())
}

/// What [`unpower_all`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpowered {
    /// Cards powered off.
    pub cards: usize,
    /// Readers whose card stayed powered: another client held it exclusively until the
    /// deadline, or the reader refused.
    pub failed: Vec<String>,
}

/// Powers off the card in every reader not `skip`ped: what a stopped daemon leaves behind must
/// be locked, and only a power-off clears a verified PIN. Each card is taken exclusively, so
/// that the power-off is not skipped for another client sharing it (pcsc-lite applies a
/// disposition only to a card nobody else holds). A card still held exclusively — by the
/// killed daemon's own handle, which pcscd keeps until the exchange it was running returns —
/// is tried again until `deadline`.
///
/// # Errors
/// [`TransportError::NoService`] when pcscd cannot be reached.
pub fn unpower_all(
    skip: impl Fn(&str) -> bool,
    deadline: Instant,
) -> Result<Unpowered, TransportError> {
    let ctx = Context::establish(pcsc::Scope::User)
        .map_err(|e| TransportError::NoService(Some(Box::new(e))))?;
    let readers = match ctx.list_readers_owned() {
        Ok(r) => r,
        Err(Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(map_error(e, "listing the readers")),
    };
    let mut done = Unpowered::default();
    for reader in readers {
        let name = reader.to_string_lossy().into_owned();
        if skip(&name) {
            continue;
        }
        loop {
            match ctx.connect(&reader, ShareMode::Exclusive, Protocols::ANY) {
                Ok(card) => match card.disconnect(Disposition::UnpowerCard) {
                    Ok(()) => done.cards += 1,
                    Err((_, e)) => {
                        warn!(reader = %name, error = %e, "could not power the card off");
                        done.failed.push(name.clone());
                    }
                },
                Err(Error::NoSmartcard | Error::RemovedCard) => {}
                Err(Error::SharingViolation) if Instant::now() < deadline => {
                    debug!(reader = %name, "the card is held by another handle; trying again");
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    continue;
                }
                Err(e) => {
                    warn!(reader = %name, error = %e, "could not reach the card to power it off");
                    done.failed.push(name.clone());
                }
            }
            break;
        }
    }
    Ok(done)
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
