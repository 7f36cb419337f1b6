//! The reader manager: one worker thread per reader owns that reader's card and serves
//! requests from a queue, one at a time; a monitor (PC/SC, [`pcsc`]) or the Testing interface
//! (virtual readers) tells the workers about readers and cards coming and going. Every state
//! change carries a reason, because a technician reading `jpkictl monitor` needs the why.
//!
//! Card I/O blocks, so it never runs on tokio threads: [`ReaderManager::submit`] hands a
//! [`Flow`] to the reader's worker and returns a oneshot receiver of that flow's own output.
//! Dropping the receiver cancels a request that has not started yet.
//!
//! A request's deadline starts when its worker starts it (queue wait is not counted). A flow
//! that presents a PIN gets its session exclusively from the first APDU; whichever way it ends
//! — success, error, timeout, a panic inside the flow — the session ends with the card
//! unpowered, and [`ReaderManager::shutdown`] waits for every request in flight and every
//! exchange still running on a card before the daemon exits.

// A build with neither PC/SC nor virtual readers (the CRL benchmark's) has no reader sources.
#![cfg_attr(not(any(feature = "pcsc", feature = "virtual-card")), allow(dead_code))]

#[cfg(feature = "pcsc")]
mod pcsc;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
#[cfg(feature = "virtual-card")]
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc as tmpsc, oneshot};
use tracing::{debug, error, info, warn};

pub use crate::api::ReaderState;
use crate::api::{CardOptions, MIN_TIMEOUT};
use crate::card::{Card, CardError};
use crate::flows::{self, Flow, FlowContext};
use crate::jpki::{CardInfo, CardKind, JpkiError, PinGuard};
use crate::transport::{CardTransport, Drain, MUTE_AFTER, Share, TransportError};

/// What the daemon knows about one reader at a moment.
#[derive(Debug, Clone)]
pub struct ReaderSnapshot {
    /// N of `/io/jpkid/Jpki1/reader/N`, stable for a reader name while the daemon runs.
    pub id: u32,
    /// The reader's name (PC/SC name, or `Virtual Reader N`).
    pub name: String,
    /// Current state.
    pub state: ReaderState,
    /// Kind of token; [`CardKind::None`] when empty.
    pub card_kind: CardKind,
    /// What detection learned.
    pub card: Option<CardInfo>,
    /// ATR of the card, empty when there is none.
    pub atr: Vec<u8>,
    /// Card insertions seen since the daemon started.
    pub insertions: u32,
}

/// Something the service should tell its clients.
#[derive(Debug, Clone)]
pub enum ReaderEvent {
    /// A reader appeared.
    Added(ReaderSnapshot),
    /// A reader disappeared.
    Removed(u32),
    /// A reader changed state.
    StateChanged {
        /// The reader after the change.
        snapshot: ReaderSnapshot,
        /// The state before.
        old: ReaderState,
        /// Why, in words.
        reason: String,
    },
}

/// Per-request options, as the reader layer applies them.
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions {
    /// The caller accepts risking the last PIN tries.
    pub allow_last_try: bool,
    /// The request's deadline, counted from when its worker starts it.
    pub timeout: Duration,
    /// The reader's `Insertions` the caller saw; another card since ends the request.
    pub insertion: Option<u32>,
}

/// Why a request did not run or failed. A flow's own error passes through unchanged; the
/// service is the one place that names errors for callers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The reader is empty.
    #[error("no card in the reader")]
    NoCard,
    /// The card in the reader is not a My Number Card.
    #[error("the card is not a My Number Card")]
    NotJpkiCard,
    /// Unknown reader, or the reader was unplugged.
    #[error("reader not available")]
    ReaderGone,
    /// The reader's queue is full.
    #[error("reader busy: too many requests queued")]
    ReaderBusy,
    /// The card does not answer.
    #[error("the card does not answer")]
    Mute,
    /// The card the caller meant (option `insertion`) has been replaced by another; nothing
    /// was sent to the card in the reader.
    #[error("the card was replaced since the caller saw it (insertion {expected}, now {now})")]
    CardReplaced {
        /// The insertion the caller named.
        expected: u32,
        /// The reader's insertion count now.
        now: u32,
    },
    /// The reader's own event counter moved since the card was identified: it was swapped
    /// faster than the monitor reported; nothing was sent to the card in the reader.
    #[error("the card in the reader was swapped since it was identified")]
    CardSwapped,
    /// The daemon is stopping.
    #[error("the daemon is stopping")]
    Stopping,
    /// The flow panicked; the session was ended and the reader recovered.
    #[error("the request failed inside the daemon")]
    Panicked,
    /// The card operation failed.
    #[error(transparent)]
    Flow(#[from] JpkiError),
}

/// Why the reader layer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReadersError {
    /// A `readers.ignore` pattern is not a valid glob.
    #[error("invalid readers.ignore pattern {pattern:?}")]
    BadIgnorePattern {
        /// The pattern.
        pattern: String,
        /// The glob error.
        #[source]
        source: glob::PatternError,
    },
    /// A thread could not be started.
    #[error("could not start the reader thread")]
    Thread(#[source] std::io::Error),
    /// The reader layer is stopping: no reader is added any more.
    #[error("the reader layer is stopping")]
    Stopping,
}

/// Reader-layer settings (from the configuration and the command line).
#[derive(Debug, Clone)]
pub struct ReadersConfig {
    /// Watch PC/SC readers (false with `--no-pcsc`).
    pub pcsc: bool,
    /// `readers.ignore` globs on reader names.
    pub ignore: Vec<String>,
    /// `limits.op_timeout_ms`: the longest deadline of a request (and its default).
    pub op_timeout: Duration,
    /// `limits.queue_depth`: requests waiting per reader, the running one included.
    pub queue_depth: usize,
    /// `pin_guard.min_remaining`.
    pub pin_guard_min_remaining: u8,
}

impl Default for ReadersConfig {
    fn default() -> ReadersConfig {
        ReadersConfig {
            pcsc: true,
            ignore: Vec::new(),
            op_timeout: Duration::from_secs(30),
            queue_depth: 8,
            pin_guard_min_remaining: 2,
        }
    }
}

/// How a worker reaches its card.
pub(crate) trait Connector: Send + 'static {
    /// Opens a session with the card in the reader.
    fn connect(&mut self, share: Share) -> Result<Box<dyn CardTransport>, TransportError>;
    /// Whether a card is in the reader, as far as the connector can tell without I/O on it.
    fn card_present(&self) -> Option<bool> {
        None
    }
    /// A count that changes with every card insertion and removal (pcscd's event counter), so
    /// that a card swapped faster than the monitor reports is still noticed; `None` when the
    /// reader cannot tell.
    fn generation(&mut self) -> Option<u32> {
        None
    }
    /// The exchanges still running on this reader's card.
    fn drain(&self) -> Drain;
}

/// The answer channel of a request with output `O`.
type Reply<O> = oneshot::Sender<Result<O, RequestError>>;

/// A request with its reply channel, type-erased for the worker's queue.
pub(crate) trait Job: Send {
    fn name(&self) -> &'static str;
    fn options(&self) -> RequestOptions;
    fn caller_gone(&self) -> bool;
    fn presents_pin(&self) -> bool;
    fn admit(&self, card: &CardInfo) -> Result<(), JpkiError>;
    /// Runs the flow (a panic inside it is caught) and returns the answer, still unsent.
    fn run(
        self: Box<Self>,
        card: &mut Card<Box<dyn CardTransport>>,
        ctx: &FlowContext,
    ) -> Box<dyn Answer>;
    /// Answers without running.
    fn refuse(self: Box<Self>, e: RequestError);
}

/// A finished request's answer, sent once the reader's state says what happened.
pub(crate) trait Answer: Send {
    fn failure(&self) -> Option<&RequestError>;
    fn send(self: Box<Self>);
}

struct FlowJob<F: Flow> {
    flow: F,
    options: RequestOptions,
    reply: Reply<F::Output>,
}

struct FlowAnswer<O> {
    result: Result<O, RequestError>,
    reply: Reply<O>,
}

impl<O: Send> Answer for FlowAnswer<O> {
    fn failure(&self) -> Option<&RequestError> {
        self.result.as_ref().err()
    }
    fn send(self: Box<Self>) {
        let _ = self.reply.send(self.result);
    }
}

impl<F: Flow> Job for FlowJob<F> {
    fn name(&self) -> &'static str {
        self.flow.name()
    }
    fn options(&self) -> RequestOptions {
        self.options
    }
    fn caller_gone(&self) -> bool {
        self.reply.is_closed()
    }
    fn presents_pin(&self) -> bool {
        self.flow.presents_pin()
    }
    fn admit(&self, card: &CardInfo) -> Result<(), JpkiError> {
        self.flow.admit(card)
    }
    fn run(
        self: Box<Self>,
        card: &mut Card<Box<dyn CardTransport>>,
        ctx: &FlowContext,
    ) -> Box<dyn Answer> {
        let FlowJob { flow, reply, .. } = *self;
        // The card is ended by the worker afterwards whatever the flow left behind, so a
        // session unwound halfway is still finished (unpowered after a PIN).
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| flow.run(card, ctx))) {
            Ok(r) => r.map_err(RequestError::Flow),
            Err(_) => Err(RequestError::Panicked),
        };
        Box::new(FlowAnswer { result, reply })
    }
    fn refuse(self: Box<Self>, e: RequestError) {
        let _ = self.reply.send(Err(e));
    }
}

/// Messages to a reader's worker.
pub(crate) enum WorkerMsg {
    Job(Box<dyn Job>),
    CardInserted {
        atr: Vec<u8>,
    },
    CardRemoved,
    /// The last exchange still running on the card ended (it had been given up on).
    Drained,
    Stop,
}

struct ReaderEntry {
    snapshot: Arc<Mutex<ReaderSnapshot>>,
    queue: mpsc::Sender<WorkerMsg>,
    pending: Arc<AtomicUsize>,
    /// Set, under the snapshot lock, when the reader is removed: its worker may still be
    /// finishing a request, and a state change reported after `Removed` would describe a
    /// reader that no longer exists (and whose id a returning reader reuses).
    retired: Arc<AtomicBool>,
    drain: Drain,
    thread: JoinHandle<()>,
    #[cfg_attr(not(feature = "virtual-card"), allow(dead_code))]
    slot: Option<VirtualSlotHandle>,
}

#[cfg(feature = "virtual-card")]
type VirtualSlotHandle = crate::transport::r#virtual::VirtualSlot;
#[cfg(not(feature = "virtual-card"))]
type VirtualSlotHandle = ();

struct Inner {
    config: ReadersConfig,
    ignore: Vec<glob::Pattern>,
    readers: Mutex<BTreeMap<u32, ReaderEntry>>,
    ids_by_name: Mutex<BTreeMap<String, u32>>,
    events: tmpsc::UnboundedSender<ReaderEvent>,
    /// Readers the PC/SC monitor added (dropped together when pcscd goes away).
    pcsc_ids: Mutex<std::collections::BTreeSet<u32>>,
    stopping: Arc<AtomicBool>,
    /// Workers of removed readers, and their drains, that shutdown must still wait for.
    leaving: Mutex<Vec<(JoinHandle<()>, Drain)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // State behind these locks is replaced whole, never left half-written, so a panic elsewhere
    // does not make it unusable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The reader manager. Cheap to clone; every method but [`ReaderManager::shutdown`] is
/// non-blocking.
#[derive(Clone)]
pub struct ReaderManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ReaderManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ReaderManager({} readers)",
            lock(&self.inner.readers).len()
        )
    }
}

impl ReaderManager {
    /// Starts the reader layer (and the PC/SC monitor when configured) and returns the events.
    ///
    /// # Errors
    /// [`ReadersError`] for a bad ignore pattern or a thread that cannot start.
    pub fn start(
        config: ReadersConfig,
    ) -> Result<(ReaderManager, tmpsc::UnboundedReceiver<ReaderEvent>), ReadersError> {
        let ignore = config
            .ignore
            .iter()
            .map(|p| {
                glob::Pattern::new(p).map_err(|source| ReadersError::BadIgnorePattern {
                    pattern: p.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (events, rx) = tmpsc::unbounded_channel();
        let manager = ReaderManager {
            inner: Arc::new(Inner {
                config,
                ignore,
                readers: Mutex::new(BTreeMap::new()),
                ids_by_name: Mutex::new(BTreeMap::new()),
                events,
                pcsc_ids: Mutex::new(std::collections::BTreeSet::new()),
                stopping: Arc::new(AtomicBool::new(false)),
                leaving: Mutex::new(Vec::new()),
            }),
        };
        #[cfg(feature = "pcsc")]
        if manager.inner.config.pcsc {
            pcsc::spawn_monitor(manager.clone()).map_err(ReadersError::Thread)?;
        }
        Ok((manager, rx))
    }

    /// All readers, by id.
    pub fn readers(&self) -> Vec<ReaderSnapshot> {
        lock(&self.inner.readers)
            .values()
            .map(|e| lock(&e.snapshot).clone())
            .collect()
    }

    /// One reader.
    pub fn reader(&self, id: u32) -> Option<ReaderSnapshot> {
        lock(&self.inner.readers)
            .get(&id)
            .map(|e| lock(&e.snapshot).clone())
    }

    /// Whether a reader name matches `readers.ignore`.
    pub fn is_ignored(&self, name: &str) -> bool {
        self.inner.ignore.iter().any(|p| p.matches(name))
    }

    /// The options a request runs with: `timeout-ms` clamped to 1000 ..= `limits.op_timeout_ms`
    /// (a caller can neither take the reader from others with a tiny deadline nor pin the
    /// worker with a huge one), the configured timeout when none is asked for.
    pub fn options(&self, asked: &CardOptions) -> RequestOptions {
        let longest = self.inner.config.op_timeout.max(MIN_TIMEOUT);
        let timeout = asked.timeout_ms.map_or(longest, |ms| {
            Duration::from_millis(u64::from(ms)).clamp(MIN_TIMEOUT, longest)
        });
        RequestOptions {
            allow_last_try: asked.allow_last_try,
            timeout,
            insertion: asked.insertion,
        }
    }

    /// The longest a submitted request can take to be answered: the requests queued before it
    /// and its own, each at the longest deadline, and the exchanges they may leave running.
    pub fn longest_wait(&self) -> Duration {
        let per_request = self.inner.config.op_timeout.max(MIN_TIMEOUT) * 2;
        let queued = u32::try_from(self.inner.config.queue_depth.max(1)).unwrap_or(u32::MAX);
        per_request.saturating_mul(queued)
    }

    /// Queues `flow` on the reader's worker; the receiver gets the flow's own output.
    ///
    /// # Errors
    /// [`RequestError::ReaderGone`] for an unknown reader, [`RequestError::ReaderBusy`] when its
    /// queue is full, and the state errors (`NoCard`, `NotJpkiCard`, `Mute`) at once rather than
    /// after queueing.
    pub fn submit<F: Flow>(
        &self,
        id: u32,
        flow: F,
        options: RequestOptions,
    ) -> Result<oneshot::Receiver<Result<F::Output, RequestError>>, RequestError> {
        if self.is_stopping() {
            return Err(RequestError::Stopping);
        }
        let readers = lock(&self.inner.readers);
        let entry = readers.get(&id).ok_or(RequestError::ReaderGone)?;
        match lock(&entry.snapshot).state {
            ReaderState::Empty => return Err(RequestError::NoCard),
            ReaderState::Unsupported => return Err(RequestError::NotJpkiCard),
            ReaderState::Mute => return Err(RequestError::Mute),
            ReaderState::Probing | ReaderState::Ready | ReaderState::Busy => {}
        }
        let depth = self.inner.config.queue_depth.max(1);
        let before = entry.pending.fetch_add(1, Ordering::SeqCst);
        if before >= depth {
            entry.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(RequestError::ReaderBusy);
        }
        let (reply, rx) = oneshot::channel();
        let job = FlowJob {
            flow,
            options,
            reply,
        };
        if entry.queue.send(WorkerMsg::Job(Box::new(job))).is_err() {
            entry.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(RequestError::ReaderGone);
        }
        Ok(rx)
    }

    /// Adds a reader with its worker; returns its id (the same id as before for a known name).
    pub(crate) fn add_reader(
        &self,
        name: &str,
        connector: Box<dyn Connector>,
        slot: Option<VirtualSlotHandle>,
    ) -> Result<u32, ReadersError> {
        // A reader the monitor found while the layer stops would outlive its drain.
        if self.is_stopping() {
            return Err(ReadersError::Stopping);
        }
        let id = {
            let mut ids = lock(&self.inner.ids_by_name);
            let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            *ids.entry(name.to_owned()).or_insert(next)
        };
        let snapshot = Arc::new(Mutex::new(ReaderSnapshot {
            id,
            name: name.to_owned(),
            state: ReaderState::Empty,
            card_kind: CardKind::None,
            card: None,
            atr: Vec::new(),
            insertions: insertions_base(),
        }));
        let (queue, rx) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let retired = Arc::new(AtomicBool::new(false));
        let drain = connector.drain();
        let wake = queue.clone();
        drain.on_idle(move || {
            let _ = wake.send(WorkerMsg::Drained);
        });
        let worker = Worker {
            connector,
            snapshot: snapshot.clone(),
            pending: pending.clone(),
            retired: retired.clone(),
            stopping: self.inner.stopping.clone(),
            events: self.inner.events.clone(),
            guard_min: self.inner.config.pin_guard_min_remaining,
            op_timeout: self.inner.config.op_timeout.max(MIN_TIMEOUT),
            generation: None,
            extended: None,
        };
        let thread = std::thread::Builder::new()
            .name(format!("reader-{id}"))
            .spawn(move || worker.run(rx))
            .map_err(ReadersError::Thread)?;
        let first = lock(&snapshot).clone();
        lock(&self.inner.readers).insert(
            id,
            ReaderEntry {
                snapshot,
                queue,
                pending,
                retired,
                drain,
                thread,
                slot,
            },
        );
        info!(reader = id, name, "reader added");
        let _ = self.inner.events.send(ReaderEvent::Added(first));
        Ok(id)
    }

    /// Removes a reader; its queued requests end with `ReaderGone`.
    pub fn remove_reader(&self, id: u32) {
        if let Some(entry) = lock(&self.inner.readers).remove(&id) {
            let _ = entry.queue.send(WorkerMsg::Stop);
            info!(reader = id, "reader removed");
            {
                let _snapshot = lock(&entry.snapshot);
                entry.retired.store(true, Ordering::SeqCst);
                let _ = self.inner.events.send(ReaderEvent::Removed(id));
            }
            lock(&self.inner.leaving).push((entry.thread, entry.drain));
        }
    }

    /// Ids of readers, by name.
    pub fn id_of(&self, name: &str) -> Option<u32> {
        let id = *lock(&self.inner.ids_by_name).get(name)?;
        lock(&self.inner.readers).contains_key(&id).then_some(id)
    }

    /// Tells a worker about its card.
    pub(crate) fn notify(&self, id: u32, msg: WorkerMsg) {
        if let Some(entry) = lock(&self.inner.readers).get(&id) {
            let _ = entry.queue.send(msg);
        }
    }

    /// Adds an in-process virtual reader (`jpkid --virtual`, the Testing interface).
    ///
    /// # Errors
    /// [`ReadersError::Thread`] when the worker cannot start.
    #[cfg(feature = "virtual-card")]
    pub fn add_virtual_reader(&self, name: &str) -> Result<u32, ReadersError> {
        let slot = crate::transport::r#virtual::VirtualSlot::new();
        let connector = VirtualConnector {
            slot: slot.clone(),
            drain: Drain::default(),
        };
        self.add_reader(name, Box::new(connector), Some(slot))
    }

    /// Puts the persona in `persona_dir` into a virtual reader.
    ///
    /// # Errors
    /// [`VirtualError::NotVirtual`] for an unknown or non-virtual reader,
    /// [`VirtualError::Persona`] when the directory is no persona.
    #[cfg(feature = "virtual-card")]
    pub fn insert_virtual(&self, id: u32, persona_dir: &Path) -> Result<(), VirtualError> {
        let card = jpki_vcard::VirtualCard::load(persona_dir).map_err(VirtualError::Persona)?;
        let atr = card.atr().to_vec();
        let slot = self.virtual_slot(id)?;
        slot.insert(card);
        self.notify(id, WorkerMsg::CardInserted { atr });
        Ok(())
    }

    /// Takes the card out of a virtual reader.
    ///
    /// # Errors
    /// [`VirtualError::NotVirtual`] for an unknown or non-virtual reader.
    #[cfg(feature = "virtual-card")]
    pub fn remove_virtual(&self, id: u32) -> Result<(), VirtualError> {
        let slot = self.virtual_slot(id)?;
        slot.remove();
        self.notify(id, WorkerMsg::CardRemoved);
        Ok(())
    }

    /// The slot of a virtual reader, to act behind the reader layer's back (tests).
    ///
    /// # Errors
    /// [`VirtualError::NotVirtual`] for an unknown or non-virtual reader.
    #[cfg(feature = "virtual-card")]
    pub fn virtual_slot(&self, id: u32) -> Result<VirtualSlotHandle, VirtualError> {
        lock(&self.inner.readers)
            .get(&id)
            .and_then(|e| e.slot.clone())
            .ok_or(VirtualError::NotVirtual(id))
    }

    /// Whether [`ReaderManager::shutdown`] was called.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::SeqCst)
    }

    /// Records that the PC/SC monitor owns a reader.
    #[cfg_attr(not(feature = "pcsc"), allow(dead_code))]
    pub(crate) fn mark_pcsc(&self, id: u32) {
        lock(&self.inner.pcsc_ids).insert(id);
    }

    /// The readers the PC/SC monitor owns, forgetting them.
    #[cfg_attr(not(feature = "pcsc"), allow(dead_code))]
    pub(crate) fn pcsc_reader_ids(&self) -> Vec<u32> {
        std::mem::take(&mut *lock(&self.inner.pcsc_ids))
            .into_iter()
            .collect()
    }

    /// Stops the reader layer and drains it: queued requests end with `Stopping`, each request
    /// in flight runs to its end (its deadline at most), and every exchange still running on a
    /// card is waited for, so that each session that presented a PIN has ended with the card
    /// unpowered before this returns. Waits at most `grace`; `true` when everything ended.
    /// Blocks: call it from a thread that may.
    pub fn shutdown(&self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        self.inner.stopping.store(true, Ordering::SeqCst);
        let entries: Vec<ReaderEntry> = std::mem::take(&mut *lock(&self.inner.readers))
            .into_values()
            .collect();
        let mut waiting: Vec<(JoinHandle<()>, Drain)> =
            std::mem::take(&mut *lock(&self.inner.leaving));
        for entry in entries {
            let _ = entry.queue.send(WorkerMsg::Stop);
            waiting.push((entry.thread, entry.drain));
        }
        let mut all_ended = true;
        for (thread, drain) in waiting {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                all_ended = false;
            }
            if !drain.wait_idle(deadline.saturating_duration_since(Instant::now())) {
                all_ended = false;
            }
        }
        all_ended
    }
}

/// Why a virtual reader could not take a card.
#[cfg(feature = "virtual-card")]
#[derive(Debug, thiserror::Error)]
pub enum VirtualError {
    /// No virtual reader with this id.
    #[error("reader {0} is not a virtual reader")]
    NotVirtual(u32),
    /// The persona directory could not be loaded.
    #[error("persona could not be loaded")]
    Persona(#[source] jpki_vcard::PersonaError),
}

#[cfg(feature = "virtual-card")]
struct VirtualConnector {
    slot: crate::transport::r#virtual::VirtualSlot,
    drain: Drain,
}

#[cfg(feature = "virtual-card")]
impl Connector for VirtualConnector {
    fn connect(&mut self, _share: Share) -> Result<Box<dyn CardTransport>, TransportError> {
        // A mute card answers nothing until the request's deadline, as on a real reader.
        let t = crate::transport::r#virtual::VirtualTransport::connect(
            self.slot.clone(),
            Duration::MAX,
        )?;
        Ok(Box::new(t))
    }

    fn card_present(&self) -> Option<bool> {
        Some(self.slot.is_present())
    }

    fn generation(&mut self) -> Option<u32> {
        Some(self.slot.insertions())
    }

    fn drain(&self) -> Drain {
        self.drain.clone()
    }
}

/// What a failed request says about the card, for the reader's state.
enum CardEffect {
    /// The card left.
    Removed,
    /// The reader left (or pcscd).
    ReaderGone,
    /// The card says it answers nothing (pcscd's own verdict, a mute virtual card).
    Mute,
    /// The request's deadline passed before the card answered: slow for this request, and mute
    /// only if the exchange it left keeps running ([`Worker::mark_mute`]).
    Unanswered,
    /// Nothing about the card (a wrong PIN, a status word).
    None,
}

fn effect_of(e: &RequestError) -> CardEffect {
    let RequestError::Flow(JpkiError::Card(CardError::Transport(t))) = e else {
        return CardEffect::None;
    };
    match t {
        TransportError::CardRemoved | TransportError::NoCard => CardEffect::Removed,
        TransportError::ReaderGone | TransportError::NoService(_) => CardEffect::ReaderGone,
        TransportError::Mute => CardEffect::Mute,
        TransportError::Timeout | TransportError::Abandoned => CardEffect::Unanswered,
        _ => CardEffect::None,
    }
}

/// Where a reader's `Insertions` count starts: a random value for each daemon instance, so
/// that an `insertion` a client saw before a restart never names a card inserted after it.
fn insertions_base() -> u32 {
    rand_core::RngCore::next_u32(&mut rand_core::OsRng) >> 1
}

/// How a served request is answered, once it no longer counts against the queue.
type Delivery = Box<dyn FnOnce() + Send>;

/// The answer of a request refused with `e`.
fn refused(job: Box<dyn Job>, e: RequestError) -> Option<Delivery> {
    Some(Box::new(move || job.refuse(e)))
}

/// One reader's worker: owns the connector and runs requests one at a time.
struct Worker {
    connector: Box<dyn Connector>,
    snapshot: Arc<Mutex<ReaderSnapshot>>,
    pending: Arc<AtomicUsize>,
    retired: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    events: tmpsc::UnboundedSender<ReaderEvent>,
    guard_min: u8,
    /// The deadline of a probe (`limits.op_timeout_ms`).
    op_timeout: Duration,
    /// The connector's generation when the card in the reader was identified.
    generation: Option<u32>,
    /// Whether extended APDUs work with this card and reader, once a session learned it.
    extended: Option<bool>,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<WorkerMsg>) {
        while let Some(msg) = self.next_message(&rx) {
            if matches!(msg, WorkerMsg::Stop) {
                break;
            }
            // A panic anywhere (detection parses what the card says) must not end the worker:
            // the session it was in is ended by its drop; the reader says what happened.
            let was_job = matches!(msg, WorkerMsg::Job(_));
            let handled = std::panic::catch_unwind(AssertUnwindSafe(|| self.handle(msg)));
            if handled.is_err() {
                // A job whose serving panicked still counted (its caller gets no answer: the
                // dropped reply tells the service).
                if was_job {
                    self.pending.fetch_sub(1, Ordering::SeqCst);
                }
                error!("the reader worker failed; the card must be inserted again");
                self.set_state(
                    ReaderState::Unsupported,
                    "internal error: take the card out and insert it again",
                    |s| s.card = None,
                );
            }
        }
        // Whatever is still queued ends with a clear answer, not silence.
        let why = || {
            if self.stopping.load(Ordering::SeqCst) {
                RequestError::Stopping
            } else {
                RequestError::ReaderGone
            }
        };
        while let Ok(msg) = rx.try_recv() {
            if let WorkerMsg::Job(job) = msg {
                job.refuse(why());
            }
        }
        debug!("reader worker stopped");
    }

    fn handle(&mut self, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Stop => {}
            WorkerMsg::CardInserted { atr } => self.probe(atr),
            WorkerMsg::CardRemoved => self.card_gone("card removed"),
            WorkerMsg::Drained => self.recover_from_mute(),
            WorkerMsg::Job(job) => {
                let delivery = self.serve(job);
                self.pending.fetch_sub(1, Ordering::SeqCst);
                if let Some(deliver) = delivery {
                    deliver();
                }
            }
        }
    }

    /// The next message; meanwhile, once an abandoned exchange has run for [`MUTE_AFTER`], the
    /// reader is marked mute.
    fn next_message(&mut self, rx: &mpsc::Receiver<WorkerMsg>) -> Option<WorkerMsg> {
        loop {
            let watched = matches!(
                self.snapshot().state,
                ReaderState::Ready | ReaderState::Busy | ReaderState::Probing
            );
            let check_at = self
                .connector
                .drain()
                .oldest_abandoned()
                .filter(|_| watched)
                .map(|started| started + MUTE_AFTER);
            let Some(at) = check_at else {
                return rx.recv().ok();
            };
            match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(msg) => return Some(msg),
                Err(mpsc::RecvTimeoutError::Timeout) => self.mark_mute(),
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Marks the reader mute when an abandoned exchange has run for [`MUTE_AFTER`].
    fn mark_mute(&mut self) {
        let silent = self
            .connector
            .drain()
            .oldest_abandoned()
            .is_some_and(|started| started.elapsed() >= MUTE_AFTER);
        if silent {
            self.set_state(
                ReaderState::Mute,
                &format!("the card has not answered an exchange for {MUTE_AFTER:?}"),
                |_| {},
            );
        }
    }

    fn set_state(&self, new: ReaderState, reason: &str, update: impl FnOnce(&mut ReaderSnapshot)) {
        let mut s = lock(&self.snapshot);
        let old = s.state;
        s.state = new;
        update(&mut s);
        if self.retired.load(Ordering::SeqCst) {
            return;
        }
        info!(
            reader = s.id,
            old = old.as_str(),
            new = new.as_str(),
            reason,
            "reader state"
        );
        // Sent under the lock, so it cannot overtake the reader's `Removed`.
        let _ = self.events.send(ReaderEvent::StateChanged {
            snapshot: s.clone(),
            old,
            reason: reason.to_owned(),
        });
    }

    fn snapshot(&self) -> ReaderSnapshot {
        lock(&self.snapshot).clone()
    }

    fn card_gone(&mut self, reason: &str) {
        self.generation = None;
        self.extended = None;
        if self.snapshot().state != ReaderState::Empty {
            self.set_state(ReaderState::Empty, reason, |s| {
                s.card = None;
                s.card_kind = CardKind::None;
                s.atr.clear();
            });
        }
    }

    /// Identifies a newly inserted card.
    fn probe(&mut self, atr: Vec<u8>) {
        self.set_state(ReaderState::Probing, "card inserted", |s| {
            s.insertions = s.insertions.wrapping_add(1);
            s.atr = atr;
            s.card = None;
            s.card_kind = CardKind::None;
        });
        self.extended = None;
        self.identify("identifying the card");
    }

    /// Detects the token in the reader and moves to the state that follows.
    fn identify(&mut self, during: &str) {
        self.generation = self.connector.generation();
        let result = self
            .connector
            .connect(Share::Shared)
            .map_err(|e| JpkiError::Card(CardError::Transport(e)))
            .and_then(|t| {
                let mut card = Card::with_deadline(t, None, Instant::now() + self.op_timeout);
                let info = flows::detect(&mut card);
                let _ = card.finish();
                info
            });
        match result {
            Ok(info) if info.kind == CardKind::None => {
                self.set_state(
                    ReaderState::Unsupported,
                    "not a My Number Card (no JPKI application)",
                    |s| s.card_kind = CardKind::None,
                );
            }
            Ok(info) => {
                let reason = format!("JPKI token found ({})", info.kind.as_str());
                self.set_state(ReaderState::Ready, &reason, |s| {
                    s.card_kind = info.kind;
                    s.card = Some(info);
                });
            }
            Err(e) => {
                let e = RequestError::Flow(e);
                match effect_of(&e) {
                    // No caller's deadline here: a card silent for the whole probe is mute.
                    CardEffect::Unanswered => self.set_state(
                        ReaderState::Mute,
                        &format!("card did not answer while {during}"),
                        |_| {},
                    ),
                    CardEffect::None if self.connector.card_present() != Some(false) => self
                        .set_state(
                            ReaderState::Unsupported,
                            &format!("card failed while {during}: {e}"),
                            |_| {},
                        ),
                    _ => self.after_failure(&e, during),
                }
            }
        }
    }

    /// A card that had stopped answering finished its last exchange: identify it again.
    fn recover_from_mute(&mut self) {
        if self.snapshot().state == ReaderState::Mute && self.connector.drain().running() == 0 {
            info!("the card answered its last exchange after all; identifying it again");
            self.identify("identifying the card again");
        }
    }

    /// Moves to the state a failure implies about the card.
    fn after_failure(&mut self, e: &RequestError, during: &str) {
        match effect_of(e) {
            CardEffect::Removed => self.card_gone(&format!("card removed while {during}")),
            CardEffect::ReaderGone => self.card_gone("reader unplugged"),
            CardEffect::Mute => self.set_state(
                ReaderState::Mute,
                &format!("card stopped answering while {during}"),
                |_| {},
            ),
            CardEffect::None | CardEffect::Unanswered
                if self.connector.card_present() == Some(false) =>
            {
                self.card_gone(&format!("card removed while {during}"));
            }
            CardEffect::None | CardEffect::Unanswered => {}
        }
    }

    /// Checks a request against the reader before any APDU: caller still there, daemon not
    /// stopping, a card of the right kind, the very card the caller meant.
    fn admit(&mut self, job: &dyn Job) -> Result<FlowContext, RequestError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(RequestError::Stopping);
        }
        if self.retired.load(Ordering::SeqCst) {
            return Err(RequestError::ReaderGone);
        }
        let snapshot = self.snapshot();
        match snapshot.state {
            ReaderState::Empty => return Err(RequestError::NoCard),
            ReaderState::Unsupported => return Err(RequestError::NotJpkiCard),
            ReaderState::Mute => return Err(RequestError::Mute),
            ReaderState::Probing | ReaderState::Ready | ReaderState::Busy => {}
        }
        let info = snapshot.card.ok_or(RequestError::NoCard)?;
        if let Some(expected) = job.options().insertion
            && expected != snapshot.insertions
        {
            return Err(RequestError::CardReplaced {
                expected,
                now: snapshot.insertions,
            });
        }
        job.admit(&info)?;
        Ok(FlowContext {
            guard: PinGuard {
                min_remaining: self.guard_min,
                allow_last_try: job.options().allow_last_try,
            },
            card: info,
        })
    }

    /// Refuses a card swapped faster than the monitor reported it: the reader's own event
    /// counter moved since the card was identified.
    fn same_card(&mut self) -> Result<(), RequestError> {
        let now = self.connector.generation();
        if self.generation.is_some() && now != self.generation {
            debug!("the reader's event counter moved since the card was identified");
            return Err(RequestError::CardSwapped);
        }
        Ok(())
    }

    /// Runs one request; returns how to answer it (nothing when its caller is gone and nothing
    /// was done). The answer is delivered after the request stops counting against the queue,
    /// so that a caller answered can queue its next request at once.
    fn serve(&mut self, job: Box<dyn Job>) -> Option<Delivery> {
        let name = job.name();
        if job.caller_gone() {
            debug!(request = name, "caller gone before the request started");
            return None;
        }
        let ctx = match self.admit(job.as_ref()) {
            Ok(ctx) => ctx,
            Err(e) => return refused(job, e),
        };
        self.set_state(
            ReaderState::Busy,
            &format!("request started: {name}"),
            |_| {},
        );
        let deadline = Instant::now() + job.options().timeout;
        // An exchange given up on earlier still holds the card: let it end first.
        let drain = self.connector.drain();
        if !drain.wait_idle(deadline.saturating_duration_since(Instant::now())) {
            self.set_state(
                ReaderState::Ready,
                &format!("request not started: {name}"),
                |_| {},
            );
            return refused(
                job,
                RequestError::Flow(JpkiError::Card(CardError::Transport(
                    TransportError::Timeout,
                ))),
            );
        }
        // Only now that no exchange holds the card: pcscd answers a status query on a reader
        // only between exchanges.
        if let Err(e) = self.same_card() {
            self.set_state(
                ReaderState::Ready,
                &format!("request not started: {name}"),
                |_| {},
            );
            return refused(job, e);
        }
        let share = if job.presents_pin() {
            Share::Exclusive
        } else {
            Share::Shared
        };
        let answer = match self.connector.connect(share) {
            Ok(t) => {
                // Checked again now that the connection holds the card (exclusively for a
                // PIN): a swap between the first check and here is caught before any APDU.
                if let Err(e) = self.same_card() {
                    drop(t);
                    self.set_state(
                        ReaderState::Ready,
                        &format!("request not started: {name}"),
                        |_| {},
                    );
                    return refused(job, e);
                }
                let mut card = Card::with_deadline(t, self.extended, deadline);
                let answer = job.run(&mut card, &ctx);
                self.extended = card.capabilities().extended.or(self.extended);
                // The session ends unpowered after a PIN, whatever the outcome (an exchange
                // still running on the card ends it when it returns).
                if let Err(e) = card.finish() {
                    warn!(error = %e, "could not end the card session cleanly");
                }
                answer
            }
            Err(e) => {
                let e = RequestError::Flow(JpkiError::Card(CardError::Transport(e)));
                self.after_failure(&e, name);
                if self.snapshot().state == ReaderState::Busy {
                    self.set_state(
                        ReaderState::Ready,
                        &format!("request failed: {name}"),
                        |_| {},
                    );
                }
                return refused(job, e);
            }
        };
        match answer.failure() {
            None => self.set_state(
                ReaderState::Ready,
                &format!("request finished: {name}"),
                |_| {},
            ),
            Some(e) => {
                if matches!(e, RequestError::Panicked) {
                    error!(
                        request = name,
                        "the request panicked; its session was ended"
                    );
                }
                self.after_failure(e, name);
                if self.snapshot().state == ReaderState::Busy {
                    self.set_state(
                        ReaderState::Ready,
                        &format!("request failed: {name}"),
                        |_| {},
                    );
                }
            }
        }
        Some(Box::new(move || answer.send()))
    }
}
