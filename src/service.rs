//! The D-Bus service (DESIGN §6): the Manager object with the ObjectManager at
//! `/io/jpkid/Jpki1`, one Reader object per reader at `/io/jpkid/Jpki1/reader/N`, and the
//! Testing interface with `--virtual`. Only this module knows zbus.
//!
//! Every method call is checked against the caller's credentials ([`access`]) and, for card
//! methods, against the reader's claim ([`claims`]); card methods and `VerifyCertificate` leave
//! an audit record. Handlers never block: card requests go to the [`ReaderManager`] and the
//! handler awaits the oneshot reply; certificate verification runs on tokio's blocking pool.
//! When the caller leaves the bus while its request waits, the receiver is dropped and the
//! reader layer skips the request.
//!
//! Secrets arrive as `ay` and are moved into [`Zeroizing`] before anything else happens. The
//! copy inside zbus's received message buffer is outside our reach (documented limitation).
//!
//! Property reads (`org.freedesktop.DBus.Properties`, `GetManagedObjects`) and introspection are
//! guarded by the bus policy only: they carry no secrets and their values are broadcast in
//! signals anyway.

mod access;
mod claims;
pub mod errors;
mod options;

use std::collections::{BTreeSet, HashMap};
#[cfg(feature = "virtual-card")]
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use zbus::fdo::{DBusProxy, ObjectManager, RequestNameFlags, RequestNameReply};
use zbus::message::Header;
use zbus::object_server::{InterfaceRef, SignalEmitter};
use zbus::wire::Str;
use zbus::{Connection, ObjectPath, OwnedObjectPath, OwnedVariant, interface};
use zeroize::Zeroizing;

use crate::audit::{self, Audit};
use crate::config::Config;
use crate::flows::Secret;
use crate::jpki::ap::{HashAlg, KeyKind};
use crate::jpki::{CertKind, PinKind};
use crate::pki::{
    self, CrlStore, Hierarchy, OcspConfig, Purpose, RevocationMode, RevocationPolicy, TrustAnchors,
    Verification, VerifyOutcome,
};
use crate::readers::{ReaderEvent, ReaderManager, ReaderSnapshot, Reply, Request, RequestOptions};

pub use errors::Error;

/// The well-known bus name.
pub const BUS_NAME: &str = "io.jpkid.Jpki1";
/// Path of the Manager, the ObjectManager and the Testing interface.
pub const MANAGER_PATH: &str = "/io/jpkid/Jpki1";
/// Prefix of the reader objects' paths; the reader id follows.
pub const READER_PATH_PREFIX: &str = "/io/jpkid/Jpki1/reader/";
/// The Manager interface.
pub const MANAGER_INTERFACE: &str = "io.jpkid.Jpki1.Manager";
/// The Reader interface.
pub const READER_INTERFACE: &str = "io.jpkid.Jpki1.Reader";
/// The Testing interface (only with `--virtual`).
pub const TESTING_INTERFACE: &str = "io.jpkid.Jpki1.Testing";
/// Prefix of the error names.
pub const ERROR_PREFIX: &str = "io.jpkid.Jpki1.Error";

/// Largest certificate `VerifyCertificate` accepts.
const MAX_CERTIFICATE: usize = 64 * 1024;
/// How long the service waits beyond a request's own timeout before it answers `Timeout`
/// itself (the reader layer normally answers first).
const TIMEOUT_GRACE: Duration = Duration::from_secs(1);
/// The message of the error a request ends with when its caller left the bus (nobody
/// receives it; the audit record says `cancelled`).
const CALLER_LEFT: &str = "the caller left the bus";
/// How often idle claims are looked for.
const CLAIM_SWEEP: Duration = Duration::from_millis(250);

/// The object path of reader `id`.
pub fn reader_path(id: u32) -> String {
    format!("{READER_PATH_PREFIX}{id}")
}

/// The reader id in a reader object path.
pub fn reader_id(path: &str) -> Option<u32> {
    path.strip_prefix(READER_PATH_PREFIX)?.parse().ok()
}

/// What the service needs besides the readers.
#[derive(Debug)]
pub struct ServiceOptions {
    /// The daemon's configuration.
    pub config: Config,
    /// Trust anchors for `VerifyCertificate`.
    pub anchors: TrustAnchors,
    /// CRL indexes, when `revocation.crl_dir` exists.
    pub crl: Option<CrlStore>,
    /// OCSP, when `revocation.ocsp_url` is set.
    pub ocsp: Option<OcspConfig>,
    /// Serve the Testing interface (`--virtual`).
    pub testing: bool,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A D-Bus operation failed.
    #[error("D-Bus: cannot {context}: {source}")]
    Bus {
        /// What was being done.
        context: &'static str,
        /// The zbus error.
        #[source]
        source: zbus::Error,
    },
    /// Another process owns the bus name.
    #[error("the bus name {0} is already owned by another process (is jpkid already running?)")]
    NameTaken(&'static str),
}

fn bus(context: &'static str) -> impl FnOnce(zbus::Error) -> ServiceError {
    move |source| ServiceError::Bus { context, source }
}

/// Certificate verification with the configured anchors and revocation sources.
#[derive(Debug)]
struct Verifier {
    anchors: TrustAnchors,
    crl: Option<CrlStore>,
    ocsp: Option<OcspConfig>,
    mode: RevocationMode,
    accept_stale_crl: bool,
}

impl Verifier {
    fn verify(&self, der: &[u8], purpose: Purpose, at: i64) -> Verification {
        let policy = RevocationPolicy {
            mode: self.mode,
            crl: self.crl.as_ref(),
            ocsp: self.ocsp.as_ref(),
            accept_stale_crl: self.accept_stale_crl,
        };
        pki::verify(&self.anchors, der, purpose, at, &policy)
    }
}

/// State shared by all objects and background tasks.
#[derive(Debug)]
struct Shared {
    readers: ReaderManager,
    access: access::Access,
    claims: claims::Claims,
    audit: Audit,
    verifier: Arc<Verifier>,
    hierarchy: Hierarchy,
    /// Reader ids with an object on the bus.
    objects: Mutex<BTreeSet<u32>>,
    /// Unique names that left the bus, for requests waiting on their behalf.
    vanished: broadcast::Sender<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One method call in progress: who, what, since when; ends with an audit record.
struct Call<'a> {
    shared: &'a Shared,
    conn: Connection,
    sender: String,
    caller: access::Caller,
    operation: &'static str,
    reader: Option<u32>,
    started: Instant,
}

impl Call<'_> {
    fn authorized(&self) -> Result<(), Error> {
        self.caller.verdict.clone()
    }

    /// Whether the caller is still on the bus (asked of the bus; `true` when it cannot say).
    /// Closes the window before the `NameOwnerChanged` watch covers a call.
    async fn caller_present(&self) -> bool {
        let Ok(name) = zbus::names::BusName::try_from(self.sender.as_str()) else {
            return false;
        };
        match DBusProxy::new(&self.conn).await {
            Ok(proxy) => proxy.name_has_owner(name).await.unwrap_or(true),
            Err(_) => true,
        }
    }

    /// Writes the audit record of this call.
    fn audit<T>(&self, result: &Result<T, Error>, serial: Option<&str>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(Error::Internal(m)) if m == CALLER_LEFT => "cancelled",
            Err(e) => e.short_name(),
        };
        self.shared.audit.record(&audit::Record {
            uid: self.caller.uid,
            bus_name: &self.sender,
            reader: self.reader,
            operation: self.operation,
            result: outcome,
            duration: self.started.elapsed(),
            serial,
        });
    }
}

impl Shared {
    async fn begin(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
        operation: &'static str,
        reader: Option<u32>,
    ) -> Call<'_> {
        let started = Instant::now();
        let sender = hdr.sender().map(|s| s.to_string()).unwrap_or_default();
        let caller = self.access.check(conn, &sender).await;
        Call {
            shared: self,
            conn: conn.clone(),
            sender,
            caller,
            operation,
            reader,
            started,
        }
    }

    fn reader_paths(&self) -> Vec<OwnedObjectPath> {
        lock(&self.objects)
            .iter()
            .filter_map(|id| OwnedObjectPath::try_from(reader_path(*id)).ok())
            .collect()
    }

    /// Runs one card request for `call` on reader `id`: claim check, submission, and the wait,
    /// which ends early when the caller leaves the bus.
    async fn run(
        &self,
        call: &Call<'_>,
        id: u32,
        request: Request,
        options: RequestOptions,
    ) -> Result<Reply, Error> {
        let _activity = self.claims.enter(id, &call.sender)?;
        // Subscribe first, then ask: a caller that left before is seen by the question, one
        // that leaves after by the subscription.
        let mut vanished = self.vanished.subscribe();
        if !call.caller_present().await {
            return Err(Error::Internal(CALLER_LEFT.to_owned()));
        }
        let rx = self.readers.submit(id, request, options)?;
        let sender = call.sender.as_str();
        let gone = async {
            loop {
                match vanished.recv().await {
                    Ok(name) if name == sender => break,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            reply = rx => match reply {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(e)) => Err(Error::from(e)),
                Err(_) => Err(Error::ReaderGone("the reader went away".to_owned())),
            },
            () = gone => {
                debug!(reader = id, "caller left the bus; request dropped");
                Err(Error::Internal(CALLER_LEFT.to_owned()))
            }
            () = tokio::time::sleep(options.timeout.saturating_add(TIMEOUT_GRACE)) => {
                Err(Error::Timeout("request timed out".to_owned()))
            }
        }
    }
}

/// `io.jpkid.Jpki1.Manager` at `/io/jpkid/Jpki1`.
#[derive(Debug)]
struct Manager {
    shared: Arc<Shared>,
}

#[interface(name = "io.jpkid.Jpki1.Manager")]
impl Manager {
    /// The reader objects.
    async fn get_readers(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<OwnedObjectPath>, Error> {
        let call = self.shared.begin(conn, &hdr, "get-readers", None).await;
        call.authorized()?;
        Ok(self.shared.reader_paths())
    }

    /// Verifies a certificate for `purpose` (`sign` | `auth`) at option `at` (default now).
    async fn verify_certificate(
        &self,
        der: Vec<u8>,
        purpose: String,
        options: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<HashMap<String, OwnedVariant>, Error> {
        let call = self
            .shared
            .begin(conn, &hdr, "verify-certificate", None)
            .await;
        let result = self.verify(&call, der, &purpose, &options).await;
        match result {
            Ok((map, serial)) => {
                let ok = Ok(map);
                call.audit(
                    &ok,
                    Some(&serial).filter(|s| !s.is_empty()).map(|s| s.as_str()),
                );
                ok
            }
            Err(e) => {
                let err = Err(e);
                call.audit(&err, None);
                err
            }
        }
    }

    /// Daemon version.
    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    /// `production` or `test`.
    #[zbus(property(emits_changed_signal = "const"))]
    fn trust_hierarchy(&self) -> String {
        match self.shared.hierarchy {
            Hierarchy::Production => "production",
            Hierarchy::Test => "test",
        }
        .to_owned()
    }

    /// The reader objects.
    #[zbus(property)]
    fn readers(&self) -> Vec<OwnedObjectPath> {
        self.shared.reader_paths()
    }

    /// A reader appeared.
    #[zbus(signal)]
    async fn reader_added(emitter: &SignalEmitter<'_>, reader: ObjectPath<'_>) -> zbus::Result<()>;

    /// A reader disappeared.
    #[zbus(signal)]
    async fn reader_removed(
        emitter: &SignalEmitter<'_>,
        reader: ObjectPath<'_>,
    ) -> zbus::Result<()>;
}

fn sv(s: impl Into<String>) -> OwnedVariant {
    OwnedVariant::from(Str::from(s.into()))
}

impl Manager {
    async fn verify(
        &self,
        call: &Call<'_>,
        der: Vec<u8>,
        purpose: &str,
        options: &HashMap<String, OwnedVariant>,
    ) -> Result<(HashMap<String, OwnedVariant>, String), Error> {
        call.authorized()?;
        let purpose: Purpose = purpose
            .parse()
            .map_err(|_| Error::invalid(format!("unknown purpose {purpose:?} (sign | auth)")))?;
        if der.is_empty() || der.len() > MAX_CERTIFICATE {
            return Err(Error::invalid(format!(
                "certificate must be 1 to {MAX_CERTIFICATE} bytes, got {}",
                der.len()
            )));
        }
        let at = match options::verify_options(options)? {
            Some(t) => t,
            None => now()?,
        };
        let verifier = self.shared.verifier.clone();
        let v = tokio::task::spawn_blocking(move || verifier.verify(&der, purpose, at))
            .await
            .map_err(|e| Error::Internal(format!("verification task failed: {e}")))?;
        let serial = v.details.serial.clone();
        Ok((verification_map(&v), serial))
    }
}

fn now() -> Result<i64, Error> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Error::Internal("system clock before 1970".to_owned()))?;
    i64::try_from(d.as_secs()).map_err(|_| Error::Internal("system clock out of range".to_owned()))
}

/// The result keys of DESIGN §6.1. `not-before`/`not-after` are left out when the certificate
/// could not be read (`malformed`); `revocation-reason`/`revoked-at` appear only for `revoked`.
fn verification_map(v: &Verification) -> HashMap<String, OwnedVariant> {
    let d = &v.details;
    let mut m = HashMap::new();
    m.insert("status".to_owned(), sv(v.outcome.as_str()));
    m.insert("serial".to_owned(), sv(d.serial.clone()));
    m.insert("subject".to_owned(), sv(d.subject.as_str()));
    m.insert("issuer".to_owned(), sv(d.issuer.clone()));
    if let Some(t) = d.not_before {
        m.insert("not-before".to_owned(), OwnedVariant::from(t));
    }
    if let Some(t) = d.not_after {
        m.insert("not-after".to_owned(), OwnedVariant::from(t));
    }
    m.insert("root".to_owned(), sv(d.root.clone()));
    let source = d
        .revocation_source
        .map_or("none", |s| s.as_str())
        .to_owned();
    m.insert("revocation-source".to_owned(), sv(source));
    if let VerifyOutcome::Revoked { reason, date } = v.outcome {
        let reason = reason
            .or(d.revocation_reason)
            .map_or("unspecified", |r| r.as_str());
        m.insert("revocation-reason".to_owned(), sv(reason));
        m.insert(
            "revoked-at".to_owned(),
            OwnedVariant::from(d.revoked_at.unwrap_or(date)),
        );
    }
    m
}

/// `io.jpkid.Jpki1.Reader` at `/io/jpkid/Jpki1/reader/N`.
#[derive(Debug)]
struct ReaderObject {
    id: u32,
    shared: Arc<Shared>,
    /// What the properties show; updated by the event task.
    snapshot: Mutex<ReaderSnapshot>,
}

#[interface(name = "io.jpkid.Jpki1.Reader")]
impl ReaderObject {
    /// Reader name.
    #[zbus(property(emits_changed_signal = "const"))]
    fn name(&self) -> String {
        lock(&self.snapshot).name.clone()
    }

    /// `empty`, `probing`, `ready`, `busy`, `unsupported`, `mute`.
    #[zbus(property)]
    fn state(&self) -> String {
        lock(&self.snapshot).state.as_str().to_owned()
    }

    /// `card`, `android`, `iphone`, `none`, `unknown`.
    #[zbus(property)]
    fn card_kind(&self) -> String {
        lock(&self.snapshot).card_kind.as_str().to_owned()
    }

    /// ATR of the card; empty without one.
    #[zbus(property)]
    fn atr(&self) -> Vec<u8> {
        lock(&self.snapshot).atr.clone()
    }

    /// Unique bus name of the claimant, or empty.
    #[zbus(property)]
    fn claimant(&self) -> String {
        self.shared.claims.claimant(self.id)
    }

    /// Card insertions since the daemon started.
    #[zbus(property)]
    fn insertions(&self) -> u32 {
        lock(&self.snapshot).insertions
    }

    /// The reader changed state.
    #[zbus(signal, name = "StateChanged")]
    async fn state_change(
        emitter: &SignalEmitter<'_>,
        old: &str,
        new: &str,
        reason: &str,
    ) -> zbus::Result<()>;

    /// Claims the reader for the caller.
    async fn claim(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        let call = self.shared.begin(conn, &hdr, "claim", Some(self.id)).await;
        let result = async {
            call.authorized()?;
            self.known()?;
            let changed = self.shared.claims.claim(self.id, &call.sender)?;
            // A claimant that left before the claim was recorded would hold it until it idles.
            if changed && !call.caller_present().await {
                self.shared.claims.release(self.id, &call.sender)?;
                return Err(Error::Internal(CALLER_LEFT.to_owned()));
            }
            Ok(changed)
        }
        .await;
        call.audit(&result, None);
        if let Ok(true) = result {
            emit_quietly(self.claimant_changed(&emitter).await);
        }
        result.map(|_| ())
    }

    /// Ends the caller's claim.
    async fn release(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        let call = self
            .shared
            .begin(conn, &hdr, "release", Some(self.id))
            .await;
        let result = async {
            call.authorized()?;
            self.shared.claims.release(self.id, &call.sender)
        }
        .await;
        call.audit(&result, None);
        if let Ok(true) = result {
            emit_quietly(self.claimant_changed(&emitter).await);
        }
        result.map(|_| ())
    }

    /// Tries left per PIN (`sign-password`, `auth-pin`, `text-pin`); spends no try.
    async fn get_pin_status(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<HashMap<String, u8>, Error> {
        let call = self
            .shared
            .begin(conn, &hdr, "pin-status", Some(self.id))
            .await;
        let result = async {
            call.authorized()?;
            let options = self.shared.readers.default_options();
            match self
                .shared
                .run(&call, self.id, Request::PinStatus, options)
                .await?
            {
                Reply::PinStatus(p) => Ok(p
                    .entries()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect()),
                other => Err(unexpected(&other)),
            }
        }
        .await;
        call.audit(&result, None);
        result
    }

    /// Reads a certificate (`auth`, `auth-ca`, `sign`, `sign-ca`); the secret is the signing
    /// password for `sign`, empty otherwise.
    async fn read_certificate(
        &self,
        which: String,
        secret: Vec<u8>,
        options: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<u8>, Error> {
        let secret = Zeroizing::new(secret);
        let call = self
            .shared
            .begin(conn, &hdr, "read-certificate", Some(self.id))
            .await;
        let result = async {
            call.authorized()?;
            let which = CertKind::parse(&which).ok_or_else(|| {
                Error::invalid(format!(
                    "unknown certificate {which:?} (auth | auth-ca | sign | sign-ca)"
                ))
            })?;
            let options = options::card_options(&options, self.shared.readers.default_options())?;
            match which {
                CertKind::Sign => check_secret(PinKind::SignPassword, &secret)?,
                // The Android token needs the auth PIN for its auth certificate; elsewhere the
                // secret must be empty, which the flow checks against the card kind.
                CertKind::Auth if !secret.is_empty() => check_secret(PinKind::AuthPin, &secret)?,
                CertKind::AuthCa | CertKind::SignCa if !secret.is_empty() => {
                    return Err(Error::invalid(format!(
                        "certificate {which} is read without a secret; pass an empty one"
                    )));
                }
                _ => {}
            }
            let request = Request::ReadCertificate { which, secret };
            match self.shared.run(&call, self.id, request, options).await? {
                Reply::Certificate(der) => Ok(der.to_vec()),
                other => Err(unexpected(&other)),
            }
        }
        .await;
        let serial = result.as_ref().ok().and_then(|der| certificate_serial(der));
        call.audit(&result, serial.as_deref());
        result
    }

    /// Signs a digest with the card's `sign` or `auth` key (PKCS#1 v1.5).
    #[allow(clippy::too_many_arguments)] // the D-Bus signature has five, zbus adds two
    async fn sign(
        &self,
        key: String,
        hash: String,
        digest: Vec<u8>,
        secret: Vec<u8>,
        options: HashMap<String, OwnedVariant>,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<u8>, Error> {
        let secret = Zeroizing::new(secret);
        let call = self.shared.begin(conn, &hdr, "sign", Some(self.id)).await;
        let result = async {
            call.authorized()?;
            let key = KeyKind::parse(&key)
                .ok_or_else(|| Error::invalid(format!("unknown key {key:?} (sign | auth)")))?;
            let hash = HashAlg::parse(&hash).ok_or_else(|| {
                Error::invalid(format!("unknown hash {hash:?} (sha256 | sha384 | sha512)"))
            })?;
            if digest.len() != hash.digest_len() {
                return Err(Error::invalid(format!(
                    "a {} digest has {} bytes, got {}",
                    hash.as_str(),
                    hash.digest_len(),
                    digest.len()
                )));
            }
            let options = options::card_options(&options, self.shared.readers.default_options())?;
            check_secret(key.pin(), &secret)?;
            let request = Request::Sign {
                key,
                hash,
                digest,
                secret,
            };
            match self.shared.run(&call, self.id, request, options).await? {
                Reply::Signature(s) => Ok(s),
                other => Err(unexpected(&other)),
            }
        }
        .await;
        call.audit(&result, None);
        result
    }
}

impl ReaderObject {
    /// Refuses calls on a reader the manager no longer knows.
    fn known(&self) -> Result<(), Error> {
        if self.shared.readers.reader(self.id).is_some() {
            Ok(())
        } else {
            Err(Error::ReaderGone(format!("reader {} is gone", self.id)))
        }
    }
}

/// Checks a secret's format before the reader sees it (the card never does).
fn check_secret(pin: PinKind, secret: &[u8]) -> Result<(), Error> {
    Secret::for_pin(pin, secret)
        .map(|_| ())
        .map_err(|e| Error::InvalidPinFormat(e.to_string()))
}

fn unexpected(reply: &Reply) -> Error {
    Error::Internal(format!("unexpected answer from the reader: {reply:?}"))
}

/// The serial (upper-case hex) of a certificate, for the audit record's short hash.
fn certificate_serial(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    let raw = cert.raw_serial();
    let first = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    Some(hex::encode_upper(&raw[first..]))
}

fn emit_quietly(r: zbus::Result<()>) {
    if let Err(e) = r {
        debug!(error = %e, "could not emit a signal");
    }
}

/// `io.jpkid.Jpki1.Testing` at `/io/jpkid/Jpki1` (only with `--virtual`; a build without the
/// `virtual-card` feature has no virtual readers and no Testing interface at all).
#[cfg(feature = "virtual-card")]
#[derive(Debug)]
struct Testing {
    shared: Arc<Shared>,
}

#[cfg(feature = "virtual-card")]
#[interface(name = "io.jpkid.Jpki1.Testing")]
impl Testing {
    /// Puts the persona in `persona_dir` into virtual reader `reader`.
    async fn insert_card(
        &self,
        reader: u32,
        persona_dir: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Error> {
        let call = self
            .shared
            .begin(conn, &hdr, "insert-card", Some(reader))
            .await;
        let result = async {
            call.authorized()?;
            let readers = self.shared.readers.clone();
            let dir = PathBuf::from(persona_dir);
            tokio::task::spawn_blocking(move || readers.insert_virtual(reader, &dir))
                .await
                .map_err(|e| Error::Internal(format!("task failed: {e}")))?
                .map_err(virtual_error)
        }
        .await;
        call.audit(&result, None);
        result
    }

    /// Takes the card out of virtual reader `reader`.
    async fn remove_card(
        &self,
        reader: u32,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Error> {
        let call = self
            .shared
            .begin(conn, &hdr, "remove-card", Some(reader))
            .await;
        let result = async {
            call.authorized()?;
            self.shared
                .readers
                .remove_virtual(reader)
                .map_err(virtual_error)
        }
        .await;
        call.audit(&result, None);
        result
    }
}

#[cfg(feature = "virtual-card")]
fn virtual_error(e: crate::readers::VirtualError) -> Error {
    use crate::readers::VirtualError;
    match e {
        VirtualError::NotVirtual(id) => {
            Error::ReaderGone(format!("reader {id} is not a virtual reader"))
        }
        VirtualError::Persona(p) => Error::invalid(format!("persona could not be loaded: {p}")),
    }
}

/// The running service: its objects on the connection and its background tasks.
#[derive(Debug)]
pub struct Service {
    connection: Connection,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Service {
    /// Registers the objects on `connection` and starts the tasks that follow the reader
    /// events, the callers leaving the bus and idle claims. Does not request the bus name
    /// (see [`Service::request_name`]), so that everything is in place before clients come.
    ///
    /// # Errors
    /// [`ServiceError::Bus`] when an object cannot be registered or the bus cannot be watched.
    pub async fn start(
        connection: &Connection,
        readers: ReaderManager,
        events: mpsc::UnboundedReceiver<ReaderEvent>,
        options: ServiceOptions,
    ) -> Result<Service, ServiceError> {
        let config = &options.config;
        let (vanished, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            readers,
            access: access::Access::new(&config.access.allowed_groups),
            claims: claims::Claims::new(config.limits.claim_idle()),
            audit: Audit::new(config.audit.enabled),
            hierarchy: options.anchors.hierarchy(),
            verifier: Arc::new(Verifier {
                anchors: options.anchors,
                crl: options.crl,
                ocsp: options.ocsp,
                mode: config.revocation.mode,
                accept_stale_crl: config.revocation.accept_stale_crl,
            }),
            objects: Mutex::new(BTreeSet::new()),
            vanished,
        });
        let server = connection.object_server();
        server
            .at(MANAGER_PATH, ObjectManager)
            .await
            .map_err(bus("register the ObjectManager"))?;
        server
            .at(
                MANAGER_PATH,
                Manager {
                    shared: shared.clone(),
                },
            )
            .await
            .map_err(bus("register the Manager"))?;
        #[cfg(feature = "virtual-card")]
        if options.testing {
            server
                .at(
                    MANAGER_PATH,
                    Testing {
                        shared: shared.clone(),
                    },
                )
                .await
                .map_err(bus("register the Testing interface"))?;
        }
        let owners = DBusProxy::new(connection)
            .await
            .map_err(bus("reach the bus driver"))?
            .receive_name_owner_changed()
            .await
            .map_err(bus("watch NameOwnerChanged"))?;
        let tasks = vec![
            tokio::spawn(pump_events(connection.clone(), shared.clone(), events)),
            tokio::spawn(watch_owners(connection.clone(), shared.clone(), owners)),
            tokio::spawn(sweep_claims(connection.clone(), shared.clone())),
        ];
        Ok(Service {
            connection: connection.clone(),
            shared,
            tasks,
        })
    }

    /// Requests [`BUS_NAME`] without queueing.
    ///
    /// # Errors
    /// [`ServiceError::NameTaken`] when another connection owns it; [`ServiceError::Bus`] when
    /// the bus refuses (e.g. its policy does not let this user own the name).
    pub async fn request_name(&self) -> Result<(), ServiceError> {
        let reply = self
            .connection
            .request_name_with_flags(BUS_NAME, RequestNameFlags::DO_NOT_QUEUE)
            .await
            .map_err(|e| match e {
                zbus::Error::NameTaken => ServiceError::NameTaken(BUS_NAME),
                other => bus("request the bus name")(other),
            })?;
        match reply {
            RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner => {
                info!(name = BUS_NAME, "bus name acquired");
                Ok(())
            }
            RequestNameReply::InQueue | RequestNameReply::Exists => {
                Err(ServiceError::NameTaken(BUS_NAME))
            }
        }
    }

    /// Stops the service: releases the bus name, stops the readers and the background tasks.
    pub async fn stop(self) {
        if let Err(e) = self.connection.release_name(BUS_NAME).await {
            debug!(error = %e, "could not release the bus name");
        }
        self.shared.readers.shutdown();
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn manager_ref(conn: &Connection) -> zbus::Result<InterfaceRef<Manager>> {
    conn.object_server()
        .interface::<_, Manager>(MANAGER_PATH)
        .await
}

async fn reader_ref(conn: &Connection, id: u32) -> zbus::Result<InterfaceRef<ReaderObject>> {
    conn.object_server()
        .interface::<_, ReaderObject>(reader_path(id))
        .await
}

/// Follows the reader layer: objects come and go, properties and `StateChanged` follow states.
async fn pump_events(
    conn: Connection,
    shared: Arc<Shared>,
    mut events: mpsc::UnboundedReceiver<ReaderEvent>,
) {
    while let Some(event) = events.recv().await {
        if let Err(e) = handle_event(&conn, &shared, event).await {
            warn!(error = %e, "could not publish a reader event");
        }
    }
    debug!("reader event stream ended");
}

async fn handle_event(
    conn: &Connection,
    shared: &Arc<Shared>,
    event: ReaderEvent,
) -> zbus::Result<()> {
    match event {
        ReaderEvent::Added(snapshot) => {
            let id = snapshot.id;
            let path = reader_path(id);
            let object = ReaderObject {
                id,
                shared: shared.clone(),
                snapshot: Mutex::new(snapshot.clone()),
            };
            if conn
                .object_server()
                .at(path.as_str(), object)
                .await?
                .is_some()
            {
                // Already there (a reader that came back): refresh what it shows.
                publish_snapshot(conn, id, snapshot, None).await?;
                return Ok(());
            }
            lock(&shared.objects).insert(id);
            let manager = manager_ref(conn).await?;
            Manager::reader_added(
                manager.signal_emitter(),
                ObjectPath::try_from(path.as_str())?,
            )
            .await?;
            manager
                .get()
                .await
                .readers_changed(manager.signal_emitter())
                .await?;
        }
        ReaderEvent::Removed(id) => {
            let path = reader_path(id);
            shared.claims.forget_reader(id);
            conn.object_server()
                .remove::<ReaderObject, _>(path.as_str())
                .await?;
            lock(&shared.objects).remove(&id);
            let manager = manager_ref(conn).await?;
            Manager::reader_removed(
                manager.signal_emitter(),
                ObjectPath::try_from(path.as_str())?,
            )
            .await?;
            manager
                .get()
                .await
                .readers_changed(manager.signal_emitter())
                .await?;
        }
        ReaderEvent::StateChanged {
            snapshot,
            old,
            reason,
        } => {
            let id = snapshot.id;
            publish_snapshot(conn, id, snapshot, Some((old.as_str(), reason.as_str()))).await?;
        }
    }
    Ok(())
}

/// Stores a reader's new snapshot, emits `PropertiesChanged` for what differs and then
/// `StateChanged` (so that a client reacting to the signal reads the new values).
async fn publish_snapshot(
    conn: &Connection,
    id: u32,
    new: ReaderSnapshot,
    change: Option<(&str, &str)>,
) -> zbus::Result<()> {
    let iface = reader_ref(conn, id).await?;
    let object = iface.get().await;
    let emitter = iface.signal_emitter();
    let before = {
        let mut s = lock(&object.snapshot);
        std::mem::replace(&mut *s, new.clone())
    };
    if before.state != new.state {
        object.state_changed(emitter).await?;
    }
    if before.card_kind != new.card_kind {
        object.card_kind_changed(emitter).await?;
    }
    if before.atr != new.atr {
        object.atr_changed(emitter).await?;
    }
    if before.insertions != new.insertions {
        object.insertions_changed(emitter).await?;
    }
    if let Some((old, reason)) = change {
        ReaderObject::state_change(emitter, old, new.state.as_str(), reason).await?;
    }
    Ok(())
}

async fn emit_claimant(conn: &Connection, id: u32) {
    let result = async {
        let iface = reader_ref(conn, id).await?;
        iface
            .get()
            .await
            .claimant_changed(iface.signal_emitter())
            .await
    }
    .await;
    emit_quietly(result);
}

/// Ends the claims of callers that leave the bus and wakes their waiting requests.
async fn watch_owners(
    conn: Connection,
    shared: Arc<Shared>,
    mut owners: zbus::fdo::NameOwnerChangedStream,
) {
    while let Some(signal) = owners.next().await {
        let Ok(args) = signal.args() else { continue };
        let name = args.name().to_string();
        if !name.starts_with(':') || args.new_owner().is_some() {
            continue;
        }
        shared.access.forget(&name);
        let _ = shared.vanished.send(name.clone());
        for id in shared.claims.drop_owner(&name) {
            info!(reader = id, claimant = %name, "claim ended: the claimant left the bus");
            emit_claimant(&conn, id).await;
        }
    }
    debug!("NameOwnerChanged stream ended");
}

/// Ends claims idle for longer than `limits.claim_idle_s`.
async fn sweep_claims(conn: Connection, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(CLAIM_SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for id in shared.claims.expire(Instant::now()) {
            info!(reader = id, "claim ended: idle");
            emit_claimant(&conn, id).await;
        }
    }
}
