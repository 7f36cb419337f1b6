//! In-process transport over `jpki-vcard`'s [`VirtualCard`]: the fast path for tests and the
//! card behind `jpkid --virtual`. The card sits in a [`VirtualSlot`] shared with whoever inserts
//! and removes cards, so a removal during a flow looks to the flow as it would on a reader.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jpki_vcard::{Answer, VirtualCard};
use zeroize::Zeroizing;

use super::{CardTransport, SessionEnd, TransportError};

/// A virtual reader slot: empty or holding one card.
#[derive(Clone, Default)]
pub struct VirtualSlot {
    card: Arc<Mutex<Option<VirtualCard>>>,
    /// Counts insertions, like pcscd's event counter: a card swapped behind the reader
    /// layer's back shows as a different count.
    insertions: Arc<AtomicU32>,
}

impl std::fmt::Debug for VirtualSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VirtualSlot {{ present: {} }}", self.is_present())
    }
}

impl VirtualSlot {
    /// An empty slot.
    pub fn new() -> VirtualSlot {
        VirtualSlot::default()
    }

    /// A slot with a card in it.
    pub fn with_card(card: VirtualCard) -> VirtualSlot {
        let slot = VirtualSlot::new();
        slot.insert(card);
        slot
    }

    fn lock(&self) -> MutexGuard<'_, Option<VirtualCard>> {
        // A panic while holding the lock cannot leave the card half-updated in a way that
        // matters to a test double, so a poisoned lock is simply taken over.
        self.card.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts a card in (replacing any other), powered on.
    pub fn insert(&self, card: VirtualCard) {
        *self.lock() = Some(card);
        self.insertions.fetch_add(1, Ordering::SeqCst);
    }

    /// Cards inserted so far.
    pub fn insertions(&self) -> u32 {
        self.insertions.load(Ordering::SeqCst)
    }

    /// Takes the card out.
    pub fn remove(&self) -> Option<VirtualCard> {
        self.lock().take()
    }

    /// Whether a card is in the slot and not removed by a fault switch.
    pub fn is_present(&self) -> bool {
        self.lock().as_ref().is_some_and(|c| !c.is_removed())
    }

    /// Runs `f` on the card, e.g. to read its PIN counters in a test.
    pub fn with<R>(&self, f: impl FnOnce(&mut VirtualCard) -> R) -> Option<R> {
        self.lock().as_mut().map(f)
    }
}

/// A connection to the card in a [`VirtualSlot`].
#[derive(Debug)]
pub struct VirtualTransport {
    slot: VirtualSlot,
    atr: Vec<u8>,
    mute_timeout: Duration,
    /// Held for a PIN: the session ends with the card powered off.
    unpower: bool,
}

impl VirtualTransport {
    /// Connects to the card in the slot. A mute card makes each exchange wait `mute_timeout`
    /// (or until the deadline) and fail, as a real reader does.
    ///
    /// # Errors
    /// [`TransportError::NoCard`] when the slot is empty.
    pub fn connect(slot: VirtualSlot, mute_timeout: Duration) -> Result<Self, TransportError> {
        let atr = slot
            .with(|c| c.atr().to_vec())
            .ok_or(TransportError::NoCard)?;
        if !slot.is_present() {
            return Err(TransportError::NoCard);
        }
        Ok(VirtualTransport {
            slot,
            atr,
            mute_timeout,
            unpower: false,
        })
    }

    /// The slot this transport talks to.
    pub fn slot(&self) -> &VirtualSlot {
        &self.slot
    }
}

/// Sleeps `want`, but not past `deadline`; whether the whole `want` was slept.
fn sleep_until(want: Duration, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    std::thread::sleep(want.min(left));
    want <= left
}

impl CardTransport for VirtualTransport {
    /// The card answers at once and the answer is then delayed as its fault switches say; a
    /// deadline inside the delay loses the answer (the card has done the work), as an exchange
    /// abandoned on a reader does.
    fn transmit(
        &mut self,
        apdu: &[u8],
        deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        let (answer, delay) = self
            .slot
            .with(|c| {
                let delay = c.answer_delay(apdu);
                (c.exchange(apdu), delay)
            })
            .ok_or(TransportError::CardRemoved)?;
        if !delay.is_zero() && !sleep_until(delay, deadline) {
            // Slow, not mute: only this request's deadline passed.
            return Err(TransportError::Timeout);
        }
        match answer {
            Answer::Response(bytes) => Ok(Zeroizing::new(bytes)),
            Answer::Removed => Err(TransportError::CardRemoved),
            // The model knows the card will never answer (until powered off): what a reader
            // shows once the exchange has gone unanswered for the mute floor.
            Answer::Mute => {
                sleep_until(self.mute_timeout, deadline);
                Err(TransportError::Mute)
            }
        }
    }

    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn extended_length_hint(&self) -> Option<bool> {
        None
    }

    fn hold_exclusive(&mut self) -> Result<(), TransportError> {
        // Nobody else can reach an in-process card; the session still ends unpowered.
        self.unpower = true;
        Ok(())
    }

    fn end_session(&mut self, end: SessionEnd) -> Result<(), TransportError> {
        if end == SessionEnd::Unpower || self.unpower {
            self.unpower = false;
            self.slot.with(|c| {
                c.power_off();
                c.power_on();
            });
        }
        Ok(())
    }
}

impl Drop for VirtualTransport {
    /// A session dropped without `end_session` (a panic) still ends unpowered after a PIN.
    fn drop(&mut self) {
        let _ = self.end_session(SessionEnd::Leave);
    }
}
