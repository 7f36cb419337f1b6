//! The one seam between card logic and the reader: bytes in, bytes out. PC/SC and the in-process
//! virtual card both implement [`CardTransport`], so every flow runs unchanged on either.
//!
//! A session that presented a PIN must end with the card powered off, whichever way it ends
//! (DESIGN §3). Transports make that structural: the handle's last owner ends the session, and
//! it unpowers once [`CardTransport::hold_exclusive`] was called. An exchange the caller stopped
//! waiting for keeps the handle until the card answers; [`Drain`] counts the running exchanges
//! and tells abandoned ones apart, so that the daemon can wait for them before it exits, and the
//! reader layer can tell a card that is slow for one caller from one that stopped answering.

#[cfg(feature = "pcsc")]
pub mod pcsc;
#[cfg(feature = "virtual-card")]
pub mod r#virtual;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

/// An exchange still unanswered this long after it started means the card is mute. Measured
/// from the exchange's start, whatever the deadline of the request that sent it: a request's
/// deadline only ends that request (one caller's short deadline must not take the reader from
/// everyone). Several times the slowest command of a real card (an RSA-2048 signature, well
/// under a second).
pub const MUTE_AFTER: Duration = Duration::from_secs(5);

/// How a session with a card ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Leave the card as it is (nothing secret was unlocked).
    Leave,
    /// Power the card off: the only thing that clears a verified PIN on a real card
    /// (a warm reset does not; `docs/reference/jpki-protocol.md` §7, §14).
    Unpower,
}

/// How a connection shares the card with other PC/SC clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// Others may use the card at the same time (no PIN in this session).
    Shared,
    /// Nobody else may touch the card until the session ends unpowered: for every session
    /// that presents a PIN, from before the retry counter is read.
    Exclusive,
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
    /// The card was removed during the exchange, or replaced since it was identified.
    #[error("card removed")]
    CardRemoved,
    /// The card was reset by another client; its state is lost.
    #[error("card was reset by another application")]
    CardReset,
    /// Another process holds the card exclusively.
    #[error("card is in use by another application")]
    SharingViolation,
    /// The request's deadline came before the card answered (the exchange may still be
    /// running on the card; the session ends when it does).
    #[error("card did not answer before the request's deadline")]
    Timeout,
    /// The card answers nothing at all (no ATR, a mute card, or pcscd says so).
    #[error("card does not respond")]
    Mute,
    /// An exchange of this session was abandoned at the request's deadline: the session is
    /// over for this side (the exchange ends it when the card answers).
    #[error("an exchange of this session is still running on the card")]
    Abandoned,
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
    /// Sends one command APDU and returns the raw response (data, SW1, SW2), waiting for the
    /// card until `deadline` at most.
    ///
    /// # Errors
    /// A [`TransportError`] when the exchange did not complete.
    fn transmit(
        &mut self,
        apdu: &[u8],
        deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError>;

    /// The card's answer to reset.
    fn atr(&self) -> Vec<u8>;

    /// Whether the reader is known to pass extended-length APDUs (`None`: unknown, try once).
    fn extended_length_hint(&self) -> Option<bool> {
        None
    }

    /// Takes the card exclusively (a no-op when the session already has it) and marks the
    /// session for power-off at its end, whatever else happens: called before a PIN flow reads
    /// a retry counter. Transports without other clients only mark the session.
    ///
    /// # Errors
    /// [`TransportError::SharingViolation`] when another client holds the card.
    fn hold_exclusive(&mut self) -> Result<(), TransportError>;

    /// Ends the session, powering the card off when asked to or when the session was held
    /// exclusively. An exchange still running on the card ends the session when it returns.
    ///
    /// # Errors
    /// A [`TransportError`] when the reader refused.
    fn end_session(&mut self, end: SessionEnd) -> Result<(), TransportError>;
}

impl<T: CardTransport + ?Sized> CardTransport for Box<T> {
    fn transmit(
        &mut self,
        apdu: &[u8],
        deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        (**self).transmit(apdu, deadline)
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

type OnIdle = Box<dyn Fn() + Send + Sync>;

struct DrainState {
    /// Each running exchange, with the time it started once its request stopped waiting.
    running: std::collections::BTreeMap<u64, Option<Instant>>,
    next: u64,
    /// An abandoned exchange ended since the card was last idle.
    answered_late: bool,
    on_idle: Option<OnIdle>,
}

/// Counts the exchanges running on a reader's card, and which of them their request stopped
/// waiting for (abandoned). Each keeps the card's handle (and with it the session) until the
/// card answers; the daemon waits here before it exits, the reader worker before it opens the
/// next session, and the worker calls the card mute when an abandoned exchange has run for
/// [`MUTE_AFTER`].
#[derive(Clone)]
pub struct Drain(Arc<(Mutex<DrainState>, Condvar)>);

impl Default for Drain {
    fn default() -> Drain {
        Drain(Arc::new((
            Mutex::new(DrainState {
                running: std::collections::BTreeMap::new(),
                next: 0,
                answered_late: false,
                on_idle: None,
            }),
            Condvar::new(),
        )))
    }
}

impl std::fmt::Debug for Drain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Drain({} running)", self.lock().running.len())
    }
}

/// One running exchange, held by whatever runs it; dropping it (after the card handle) ends its
/// count.
#[derive(Debug)]
pub struct DrainGuard {
    drain: Drain,
    id: u64,
}

/// The waiting side's name for a running exchange, to [`Drain::abandon`] it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeId(u64);

impl DrainGuard {
    /// The id the waiting side keeps.
    pub fn id(&self) -> ExchangeId {
        ExchangeId(self.id)
    }
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        let (_, idle) = &*self.drain.0;
        let mut s = self.drain.lock();
        if s.running.remove(&self.id).flatten().is_some() {
            s.answered_late = true;
        }
        if s.running.is_empty() {
            idle.notify_all();
            // Only the end of an abandoned exchange is news: the card answered after all.
            if std::mem::take(&mut s.answered_late)
                && let Some(f) = &s.on_idle
            {
                f();
            }
        }
    }
}

impl Drain {
    fn lock(&self) -> MutexGuard<'_, DrainState> {
        // The state is a map and a callback, never half-written.
        self.0.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls `f` each time the last running exchange ends after one of them was abandoned.
    pub fn on_idle(&self, f: impl Fn() + Send + Sync + 'static) {
        self.lock().on_idle = Some(Box::new(f));
    }

    /// Counts one exchange until the guard drops.
    pub fn enter(&self) -> DrainGuard {
        let mut s = self.lock();
        let id = s.next;
        s.next += 1;
        s.running.insert(id, None);
        DrainGuard {
            drain: self.clone(),
            id,
        }
    }

    /// Notes that the request of exchange `id`, started at `started`, stopped waiting for it
    /// (nothing when it has ended meanwhile).
    pub fn abandon(&self, id: ExchangeId, started: Instant) {
        if let Some(slot) = self.lock().running.get_mut(&id.0) {
            *slot = Some(started);
        }
    }

    /// Exchanges still running.
    pub fn running(&self) -> usize {
        self.lock().running.len()
    }

    /// When the oldest abandoned exchange still running started.
    pub fn oldest_abandoned(&self) -> Option<Instant> {
        self.lock().running.values().flatten().min().copied()
    }

    /// Waits until no exchange runs, at most `timeout`; whether none runs.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (_, idle) = &*self.0;
        let mut s = self.lock();
        while !s.running.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = match idle.wait_timeout(s, left) {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn drain_counts_guards_and_tells_when_an_abandoned_exchange_ends() {
        let d = Drain::default();
        let idle = Arc::new(AtomicUsize::new(0));
        let seen = idle.clone();
        d.on_idle(move || {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        assert!(d.wait_idle(Duration::ZERO));
        // Exchanges answered in time: no news, however many.
        for _ in 0..3 {
            drop(d.enter());
        }
        assert_eq!(idle.load(Ordering::SeqCst), 0);
        let a = d.enter();
        let b = d.enter();
        assert_eq!(d.running(), 2);
        assert_eq!(d.oldest_abandoned(), None);
        let started = Instant::now();
        d.abandon(b.id(), started);
        assert_eq!(d.oldest_abandoned(), Some(started));
        assert!(!d.wait_idle(Duration::from_millis(10)));
        drop(a);
        assert_eq!(idle.load(Ordering::SeqCst), 0);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(b);
        });
        assert!(d.wait_idle(Duration::from_secs(5)));
        t.join().unwrap();
        assert_eq!(idle.load(Ordering::SeqCst), 1);
        assert_eq!(d.oldest_abandoned(), None);
        // Abandoning an exchange that has ended changes nothing.
        let c = d.enter();
        let id = c.id();
        drop(c);
        d.abandon(id, Instant::now());
        assert_eq!(d.running(), 0);
        assert_eq!(idle.load(Ordering::SeqCst), 1);
    }
}
