//! The reader manager: one worker thread per reader owns that reader's card and serves
//! requests from a queue, one at a time; a monitor (PC/SC, [`pcsc`]) or the Testing interface
//! (virtual readers) tells the workers about readers and cards coming and going. Every state
//! change carries a reason, because a technician reading `jpkictl monitor` needs the why.
//!
//! Card I/O blocks, so it never runs on tokio threads: callers get a oneshot receiver and await
//! it. Dropping the receiver cancels a request that has not started yet.

// A build with neither PC/SC nor virtual readers (the CRL benchmark's) has no reader sources.
#![cfg_attr(not(any(feature = "pcsc", feature = "virtual-card")), allow(dead_code))]

#[cfg(feature = "pcsc")]
mod pcsc;

use std::collections::BTreeMap;
#[cfg(feature = "virtual-card")]
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc as tmpsc, oneshot};
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::card::{Card, CardError};
use crate::flows::{self, PinStatus, TextAttributes};
use crate::jpki::ap::{HashAlg, KeyKind};
use crate::jpki::{CardInfo, CardKind, CertKind, JpkiError, PinGuard};
use crate::transport::{CardTransport, TransportError};

/// DESIGN §6.2 reader states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderState {
    /// No card.
    Empty,
    /// A card was inserted and is being identified.
    Probing,
    /// A JPKI token is ready for requests.
    Ready,
    /// A request is running.
    Busy,
    /// The card is not a My Number Card (or smartphone token).
    Unsupported,
    /// The card does not answer.
    Mute,
}

impl ReaderState {
    /// The D-Bus value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReaderState::Empty => "empty",
            ReaderState::Probing => "probing",
            ReaderState::Ready => "ready",
            ReaderState::Busy => "busy",
            ReaderState::Unsupported => "unsupported",
            ReaderState::Mute => "mute",
        }
    }
}

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

/// One card request. Secrets are raw bytes; `flows` validates them before any APDU.
pub enum Request {
    /// Retry counters.
    PinStatus,
    /// Read a certificate.
    ReadCertificate {
        /// Which one.
        which: CertKind,
        /// The signing password for `sign`, empty otherwise.
        secret: Zeroizing<Vec<u8>>,
    },
    /// Sign a digest.
    Sign {
        /// Which key.
        key: KeyKind,
        /// Hash of the digest.
        hash: HashAlg,
        /// The digest.
        digest: Vec<u8>,
        /// The key's PIN.
        secret: Zeroizing<Vec<u8>>,
    },
    /// Read the basic four with their integrity check.
    ReadTextAttributes {
        /// The text PIN.
        text_pin: Zeroizing<Vec<u8>>,
        /// Also check the record's signature with the CV certificate.
        check_signature: bool,
    },
}

impl Request {
    /// Name for logs and audit.
    pub fn name(&self) -> &'static str {
        match self {
            Request::PinStatus => "pin-status",
            Request::ReadCertificate { .. } => "read-certificate",
            Request::Sign { .. } => "sign",
            Request::ReadTextAttributes { .. } => "read-text-attributes",
        }
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets and digests are never shown.
        write!(f, "Request({})", self.name())
    }
}

/// The answer to a [`Request`].
pub enum Reply {
    /// Retry counters.
    PinStatus(PinStatus),
    /// A certificate (DER).
    Certificate(Zeroizing<Vec<u8>>),
    /// A signature.
    Signature(Vec<u8>),
    /// The basic four.
    TextAttributes(TextAttributes),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::PinStatus(p) => write!(f, "Reply::PinStatus({p:?})"),
            Reply::Certificate(c) => write!(f, "Reply::Certificate({} bytes)", c.len()),
            Reply::Signature(s) => write!(f, "Reply::Signature({} bytes)", s.len()),
            Reply::TextAttributes(_) => f.write_str("Reply::TextAttributes(redacted)"),
        }
    }
}

/// Per-request options (D-Bus `a{sv}`).
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions {
    /// The caller accepts risking the last PIN tries.
    pub allow_last_try: bool,
    /// Deadline for the whole request, queueing included.
    pub timeout: Duration,
}

/// Why a request did not run or failed.
#[derive(Debug, thiserror::Error)]
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
    /// The request did not finish in time.
    #[error("request timed out")]
    Timeout,
    /// The caller went away or the daemon is stopping.
    #[error("request cancelled")]
    Cancelled,
    /// The card operation failed.
    #[error(transparent)]
    Jpki(#[from] JpkiError),
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
}

/// Reader-layer settings (from the configuration and the command line).
#[derive(Debug, Clone)]
pub struct ReadersConfig {
    /// Watch PC/SC readers (false with `--no-pcsc`).
    pub pcsc: bool,
    /// `readers.ignore` globs on reader names.
    pub ignore: Vec<String>,
    /// `limits.op_timeout_ms`: default deadline of a request, and the wait for a mute card.
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
    fn connect(&mut self, timeout: Duration) -> Result<Box<dyn CardTransport>, TransportError>;
    /// Whether a card is in the reader, as far as the connector can tell without I/O on it.
    fn card_present(&self) -> Option<bool> {
        None
    }
}

type ReplySender = oneshot::Sender<Result<Reply, RequestError>>;

/// Messages to a reader's worker.
pub(crate) enum WorkerMsg {
    Job {
        request: Request,
        options: RequestOptions,
        queued_at: Instant,
        reply: ReplySender,
    },
    CardInserted {
        atr: Vec<u8>,
    },
    CardRemoved,
    Stop,
}

struct ReaderEntry {
    snapshot: Arc<Mutex<ReaderSnapshot>>,
    queue: mpsc::Sender<WorkerMsg>,
    pending: Arc<AtomicUsize>,
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
    stopping: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // State behind these locks is replaced whole, never left half-written, so a panic elsewhere
    // does not make it unusable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The reader manager. Cheap to clone; every method is non-blocking.
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
                stopping: std::sync::atomic::AtomicBool::new(false),
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

    /// Queues a request on the reader's worker.
    ///
    /// # Errors
    /// [`RequestError::ReaderGone`] for an unknown reader, [`RequestError::ReaderBusy`] when its
    /// queue is full, and the state errors (`NoCard`, `NotJpkiCard`, `Mute`) at once rather than
    /// after queueing.
    pub fn submit(
        &self,
        id: u32,
        request: Request,
        options: RequestOptions,
    ) -> Result<oneshot::Receiver<Result<Reply, RequestError>>, RequestError> {
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
        let msg = WorkerMsg::Job {
            request,
            options,
            queued_at: Instant::now(),
            reply,
        };
        if entry.queue.send(msg).is_err() {
            entry.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(RequestError::ReaderGone);
        }
        Ok(rx)
    }

    /// The default options: no last try, the configured timeout.
    pub fn default_options(&self) -> RequestOptions {
        RequestOptions {
            allow_last_try: false,
            timeout: self.inner.config.op_timeout,
        }
    }

    /// Adds a reader with its worker; returns its id (the same id as before for a known name).
    pub(crate) fn add_reader(
        &self,
        name: &str,
        connector: Box<dyn Connector>,
        slot: Option<VirtualSlotHandle>,
    ) -> Result<u32, ReadersError> {
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
            insertions: 0,
        }));
        let (queue, rx) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            connector,
            snapshot: snapshot.clone(),
            pending: pending.clone(),
            events: self.inner.events.clone(),
            guard_min: self.inner.config.pin_guard_min_remaining,
            mute_wait: self.inner.config.op_timeout,
        };
        std::thread::Builder::new()
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
            let _ = self.inner.events.send(ReaderEvent::Removed(id));
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
        let connector = VirtualConnector { slot: slot.clone() };
        self.add_reader(name, Box::new(connector), Some(slot))
    }

    /// Puts the persona in `persona_dir` into a virtual reader.
    ///
    /// # Errors
    /// [`RequestError::ReaderGone`] for an unknown or non-virtual reader; the persona's load
    /// error as [`RequestError::Jpki`] is not possible, so a bad directory gives `NoCard`.
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

    #[cfg(feature = "virtual-card")]
    fn virtual_slot(&self, id: u32) -> Result<VirtualSlotHandle, VirtualError> {
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

    /// Stops every worker and the monitor; queued requests end with `ReaderGone`.
    pub fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        let ids: Vec<u32> = lock(&self.inner.readers).keys().copied().collect();
        for id in ids {
            if let Some(entry) = lock(&self.inner.readers).remove(&id) {
                let _ = entry.queue.send(WorkerMsg::Stop);
            }
        }
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
}

#[cfg(feature = "virtual-card")]
impl Connector for VirtualConnector {
    fn connect(&mut self, timeout: Duration) -> Result<Box<dyn CardTransport>, TransportError> {
        let t = crate::transport::r#virtual::VirtualTransport::connect(self.slot.clone(), timeout)?;
        Ok(Box::new(t))
    }

    fn card_present(&self) -> Option<bool> {
        Some(self.slot.is_present())
    }
}

/// One reader's worker: owns the connector and runs requests one at a time.
struct Worker {
    connector: Box<dyn Connector>,
    snapshot: Arc<Mutex<ReaderSnapshot>>,
    pending: Arc<AtomicUsize>,
    events: tmpsc::UnboundedSender<ReaderEvent>,
    guard_min: u8,
    mute_wait: Duration,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<WorkerMsg>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                WorkerMsg::Stop => break,
                WorkerMsg::CardInserted { atr } => self.probe(atr),
                WorkerMsg::CardRemoved => self.card_gone("card removed"),
                WorkerMsg::Job {
                    request,
                    options,
                    queued_at,
                    reply,
                } => {
                    let result = self.serve(request, options, queued_at, &reply);
                    self.pending.fetch_sub(1, Ordering::SeqCst);
                    if let Some(result) = result {
                        let _ = reply.send(result);
                    }
                }
            }
        }
        // Whatever is still queued ends with a clear answer, not silence.
        while let Ok(msg) = rx.try_recv() {
            if let WorkerMsg::Job { reply, .. } = msg {
                let _ = reply.send(Err(RequestError::ReaderGone));
            }
        }
        debug!("reader worker stopped");
    }

    fn set_state(&self, new: ReaderState, reason: &str, update: impl FnOnce(&mut ReaderSnapshot)) {
        let (old, snapshot) = {
            let mut s = lock(&self.snapshot);
            let old = s.state;
            s.state = new;
            update(&mut s);
            (old, s.clone())
        };
        info!(
            reader = snapshot.id,
            old = old.as_str(),
            new = new.as_str(),
            reason,
            "reader state"
        );
        let _ = self.events.send(ReaderEvent::StateChanged {
            snapshot,
            old,
            reason: reason.to_owned(),
        });
    }

    fn state(&self) -> ReaderState {
        lock(&self.snapshot).state
    }

    fn card_gone(&self, reason: &str) {
        if self.state() != ReaderState::Empty {
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
            s.insertions = s.insertions.saturating_add(1);
            s.atr = atr;
            s.card = None;
            s.card_kind = CardKind::None;
        });
        let result = self
            .connector
            .connect(self.mute_wait)
            .map_err(|e| JpkiError::Card(CardError::Transport(e)))
            .and_then(|t| {
                let mut card = Card::new(t, None);
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
            Err(e) => self.after_card_failure(&e, "identifying the card"),
        }
    }

    /// Moves to the state a card failure implies.
    fn after_card_failure(&self, e: &JpkiError, during: &str) {
        match e {
            JpkiError::Card(CardError::Transport(
                TransportError::CardRemoved | TransportError::NoCard,
            )) => self.card_gone(&format!("card removed while {during}")),
            JpkiError::Card(CardError::Transport(
                TransportError::Timeout | TransportError::Mute,
            )) => self.set_state(
                ReaderState::Mute,
                &format!("card stopped answering while {during}"),
                |_| {},
            ),
            JpkiError::Card(CardError::Transport(TransportError::ReaderGone)) => {
                self.card_gone("reader unplugged")
            }
            _ if self.connector.card_present() == Some(false) => {
                self.card_gone(&format!("card removed while {during}"))
            }
            _ => {
                if self.state() == ReaderState::Probing {
                    self.set_state(
                        ReaderState::Unsupported,
                        &format!("card failed while {during}: {e}"),
                        |_| {},
                    );
                }
            }
        }
    }

    /// Runs one request; `None` when the caller is gone and nothing was done.
    fn serve(
        &mut self,
        request: Request,
        options: RequestOptions,
        queued_at: Instant,
        reply: &ReplySender,
    ) -> Option<Result<Reply, RequestError>> {
        if reply.is_closed() {
            debug!(
                request = request.name(),
                "caller gone before the request started"
            );
            return None;
        }
        if queued_at.elapsed() >= options.timeout {
            return Some(Err(RequestError::Timeout));
        }
        match self.state() {
            ReaderState::Empty => return Some(Err(RequestError::NoCard)),
            ReaderState::Unsupported => return Some(Err(RequestError::NotJpkiCard)),
            ReaderState::Mute => return Some(Err(RequestError::Mute)),
            ReaderState::Probing | ReaderState::Ready | ReaderState::Busy => {}
        }
        let name = request.name();
        self.set_state(
            ReaderState::Busy,
            &format!("request started: {name}"),
            |_| {},
        );
        let guard = PinGuard {
            min_remaining: self.guard_min,
            allow_last_try: options.allow_last_try,
        };
        let wait = options.timeout.saturating_sub(queued_at.elapsed());
        let result = self
            .connector
            .connect(wait)
            .map_err(|e| JpkiError::Card(CardError::Transport(e)))
            .and_then(|t| {
                let mut card = Card::new(t, None);
                let out = run(&mut card, request, guard);
                // The session ends unpowered after a PIN, whatever the outcome.
                if let Err(e) = card.finish() {
                    warn!(error = %e, "could not end the card session cleanly");
                }
                out
            });
        match &result {
            Ok(_) => self.set_state(
                ReaderState::Ready,
                &format!("request finished: {name}"),
                |_| {},
            ),
            Err(e) => {
                self.after_card_failure(e, name);
                if self.state() == ReaderState::Busy {
                    self.set_state(
                        ReaderState::Ready,
                        &format!("request failed: {name}"),
                        |_| {},
                    );
                }
            }
        }
        Some(result.map_err(|e| match e {
            JpkiError::Card(CardError::Transport(TransportError::Timeout)) => RequestError::Timeout,
            // pcscd gone mid-request: the reader went with it.
            JpkiError::Card(CardError::Transport(
                TransportError::ReaderGone | TransportError::NoService(_),
            )) => RequestError::ReaderGone,
            JpkiError::Card(CardError::Transport(TransportError::NoCard)) => RequestError::NoCard,
            JpkiError::NotJpkiCard => RequestError::NotJpkiCard,
            other => RequestError::Jpki(other),
        }))
    }
}

/// Dispatches a request to its flow.
fn run<T: CardTransport>(
    card: &mut Card<T>,
    request: Request,
    guard: PinGuard,
) -> Result<Reply, JpkiError> {
    match request {
        Request::PinStatus => flows::pin_status(card).map(Reply::PinStatus),
        Request::ReadCertificate { which, secret } => {
            flows::read_certificate(card, which, &secret, guard).map(Reply::Certificate)
        }
        Request::Sign {
            key,
            hash,
            digest,
            secret,
        } => flows::sign(card, key, hash, &digest, &secret, guard).map(Reply::Signature),
        Request::ReadTextAttributes {
            text_pin,
            check_signature,
        } => flows::read_text_attributes(card, &text_pin, guard, check_signature)
            .map(Reply::TextAttributes),
    }
}
