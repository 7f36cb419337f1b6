//! The D-Bus service (DESIGN §6): the Manager object with the ObjectManager at
//! `/io/jpkid/Jpki1`, one Reader object per reader at `/io/jpkid/Jpki1/reader/N`, and the
//! Testing interface with `--virtual`. Only this module and `client` know zbus; the names,
//! choices, results and errors are `api`'s.
//!
//! Every method call is checked against the caller's credentials ([`access`]) and, for card
//! methods, against the reader's claim ([`claims`]); card methods and `VerifyCertificate` leave
//! an audit record. Every card method has the same skeleton ([`Reader::card`]): its arguments
//! are validated once, here, into the typed values of a [`Flow`]; then authorization, the
//! claim, the submission to the reader's worker, the wait (which ends early when the caller
//! leaves the bus) and the audit. Handlers never block; certificate verification runs on
//! tokio's blocking pool.
//!
//! The client proxies are generated from these same impls (`proxy(...)` below), so a method,
//! property or signal exists once. Secrets and certificates arrive as `ay` straight into
//! [`SecretBytes`] (one buffer of the exact size, wiped when dropped). The copy inside zbus's
//! received message buffer is outside our reach; the daemon's allocator wipes it when freed
//! (`bin/jpkid.rs`).
//!
//! Property reads (`org.freedesktop.DBus.Properties`, `GetManagedObjects`) and introspection are
//! guarded by the bus policy only: they carry no secrets and their values are broadcast in
//! signals anyway.

mod access;
mod claims;
pub mod errors;

use std::collections::BTreeSet;
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
use zbus::{Connection, ObjectPath, OwnedObjectPath, interface};
use zeroize::Zeroizing;

use crate::api::{
    self, AuthenticityOptions, AuthenticityResult, BUS_NAME, CardFaceStatus, CardKind, CardOptions,
    CertKind, ChallengeStatus, ConsentCheck, ConsentOptions, ConsentResult, ConsentStatusFacts,
    ConsentStatusResult, CvCertificateStatus, Dict, EligibilityFacts, EligibilityResult, Error,
    HashAlg, KeyKind, LinkRequirementFacts, LinkRequirementResult, LinkResult, MANAGER_PATH,
    MatchOptions, MatchResult, PinCounters, Purpose, ReaderState, SecretBytes, SignatureStatus,
    VerifyOptions, VerifyResult,
};
use crate::audit::{self, Audit};
use crate::config::Config;
use crate::digest::DigestInfo;
use crate::flows::{self, AttributesMatched, CertificateRequest, ConsentDraft, Flow};
use crate::jpki::pin::{self, KeySecret};
use crate::pki::cvc::CardCaKeys;
use crate::pki::{
    self, CrlStore, Hierarchy, OcspConfig, RevocationMode, RevocationPolicy, TrustAnchors,
    Verification, VerifyOutcome, cms,
};
use crate::readers::{ReaderEvent, ReaderManager, ReaderSnapshot, RequestOptions};
use crate::terms::{self, ConsentDocument, ConsentItems, DocumentKind};

/// Largest certificate `VerifyCertificate` accepts.
const MAX_CERTIFICATE: usize = 64 * 1024;
/// Largest CMS `VerifyConsent` accepts: a certificate and a document with room to spare.
const MAX_CONSENT_CMS: usize = 128 * 1024;
/// The message of the error a request ends with when its caller left the bus (nobody
/// receives it; the audit record says `cancelled`).
const CALLER_LEFT: &str = "the caller left the bus";
/// How often idle claims are looked for.
const CLAIM_SWEEP: Duration = Duration::from_millis(250);
/// Beyond the longest a reader can take, the service answers `Timeout` itself (a backstop:
/// the reader layer answers every request).
const BACKSTOP_GRACE: Duration = Duration::from_secs(2);

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
    /// The J-LIS card CA keys from `trust.card_ca_dir`, for the text AP's CV certificate.
    pub card_ca: CardCaKeys,
    /// This counter terminal's name in consent documents (the host name).
    pub terminal: String,
    /// The key of the audit's serial tags.
    pub audit_key: audit::AuditKey,
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
    /// How long one verification may take, OCSP included (`limits.op_timeout_ms`).
    budget: Duration,
}

impl Verifier {
    /// Verifies `der` for `purpose` at time `at`; the revocation sources' freshness is judged
    /// at the real time `now`. An OCSP exchange ends by `deadline`.
    fn verify(
        &self,
        der: &[u8],
        purpose: Purpose,
        at: i64,
        now: i64,
        deadline: Instant,
    ) -> Verification {
        let policy = RevocationPolicy {
            crl: self.crl.as_ref(),
            ocsp: self.ocsp.as_ref().map(|config| pki::ocsp::Ocsp {
                config,
                fetch: &crate::http::HttpFetch,
                deadline,
            }),
            accept_stale_crl: self.accept_stale_crl,
            ..RevocationPolicy::new(self.mode, now)
        };
        let v = pki::verify(&self.anchors, der, purpose, at, &policy);
        if let Some(detail) = v.details.revocation_detail {
            // A technician's first question about `revocation-unknown`; no personal data.
            warn!(
                detail = detail.as_str(),
                cause = %v.details.note,
                "no revocation answer"
            );
        }
        v
    }
}

/// Certificate verifications running at once (each may wait for an OCSP responder on a thread
/// of the blocking pool); more wait for a turn, within their call's deadline.
const MAX_VERIFICATIONS: usize = 4;

/// State shared by all objects and background tasks.
#[derive(Debug)]
struct Shared {
    readers: ReaderManager,
    access: access::Access,
    claims: claims::Claims,
    audit: Audit,
    verifier: Arc<Verifier>,
    /// Turns for certificate verifications ([`MAX_VERIFICATIONS`]).
    verifications: Arc<tokio::sync::Semaphore>,
    hierarchy: Hierarchy,
    /// The J-LIS card CA keys.
    card_ca: Arc<CardCaKeys>,
    /// This terminal's name in consent documents.
    terminal: String,
    /// Reader ids with an object on the bus.
    objects: Mutex<BTreeSet<u32>>,
    /// Unique names that left the bus, for requests waiting on their behalf.
    vanished: broadcast::Sender<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What an audit record may name about a result: a certificate serial (hashed when written),
/// and the verdict of a method that judges (never a secret, never personal data).
trait Audited {
    fn serial(&self) -> Option<String> {
        None
    }
    fn outcome(&self) -> Option<String> {
        None
    }
}

impl Audited for PinCounters {}
impl Audited for Vec<u8> {}
impl Audited for SecretBytes {
    fn serial(&self) -> Option<String> {
        pki::certificate_serial(self.as_slice())
    }
}
impl Audited for LinkResult {
    fn serial(&self) -> Option<String> {
        Some(self.serial.clone()).filter(|s| !s.is_empty())
    }
}
impl Audited for ConsentResult {
    fn serial(&self) -> Option<String> {
        Some(self.serial.clone())
    }
}
impl Audited for MatchResult {
    fn serial(&self) -> Option<String> {
        Some(self.serial.clone()).filter(|s| !s.is_empty())
    }
}
impl Audited for AuthenticityResult {
    /// `genuine`, or `not-genuine:` and the parts that failed (the code and the photo never).
    fn outcome(&self) -> Option<String> {
        if self.genuine {
            return Some("genuine".to_owned());
        }
        let mut failed = Vec::new();
        if self.cv_certificate != CvCertificateStatus::Verified {
            failed.push(format!("cv-certificate={}", self.cv_certificate));
        }
        if self.card_face != CardFaceStatus::Verified {
            failed.push(format!("card-face={}", self.card_face));
        }
        if self.challenge != ChallengeStatus::Verified {
            failed.push(format!("challenge={}", self.challenge));
        }
        Some(format!("not-genuine: {}", failed.join(" ")))
    }
}
impl Audited for ConsentCheck {
    fn serial(&self) -> Option<String> {
        Some(self.serial.clone()).filter(|s| !s.is_empty())
    }
}

/// A successful answer to return as it is (for [`Reader::card`]'s last step).
fn returned<T>(value: T) -> std::future::Ready<Result<T, Error>> {
    std::future::ready(Ok(value))
}

/// 32 fresh random bytes for a card to sign: the proof that it holds its certificate's key.
fn challenge() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes
}

/// The caller of a method: its connection's unique name, and our connection to ask the bus
/// about it.
#[derive(Debug, Clone)]
struct Who {
    conn: Connection,
    sender: String,
}

impl Who {
    /// Overwrites zbus's read-ahead buffer (4 KiB, kept for the life of the connection), which
    /// still holds the bytes of the calls that came in through it — PINs and certificates among
    /// them — until later traffic covers them: the bus driver's introspection (about 4.7 KiB
    /// with dbus-daemon) fills it. Best effort: an error changes nothing for the caller.
    async fn scrub_read_buffer(&self) {
        let reply = self
            .conn
            .call_method(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                Some("org.freedesktop.DBus.Introspectable"),
                "Introspect",
                &(),
            )
            .await;
        if let Err(e) = reply {
            debug!(error = %e, "could not overwrite the read buffer");
        }
    }

    /// Whether the caller is still on the bus (asked of the bus; `true` when it cannot say).
    /// Closes the window before the `NameOwnerChanged` watch covers a call.
    async fn present(&self) -> bool {
        let Ok(name) = zbus::names::BusName::try_from(self.sender.as_str()) else {
            return false;
        };
        match DBusProxy::new(&self.conn).await {
            Ok(proxy) => proxy.name_has_owner(name).await.unwrap_or(true),
            Err(_) => true,
        }
    }
}

/// One method call in progress: who, what, since when; ends with an audit record.
struct Call<'a> {
    shared: &'a Shared,
    who: Who,
    caller: access::Caller,
    operation: &'static str,
    reader: Option<u32>,
    started: Instant,
}

impl Call<'_> {
    fn authorized(&self) -> Result<(), Error> {
        self.caller.verdict.clone().map_err(Error::NotAuthorized)
    }

    async fn caller_present(&self) -> bool {
        self.who.present().await
    }

    /// Writes the audit record of this call.
    fn audit<T>(&self, result: &Result<T, Error>, serial: Option<&str>) {
        self.audit_with(result, serial, None);
    }

    /// Writes the audit record of this call, with what a check found.
    fn audit_with<T>(&self, result: &Result<T, Error>, serial: Option<&str>, found: Option<&str>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(Error::Internal(m)) if m == CALLER_LEFT => "cancelled",
            Err(e) => e.short_name(),
        };
        self.shared.audit.record(&audit::Record {
            uid: self.caller.uid,
            bus_name: &self.who.sender,
            reader: self.reader,
            operation: self.operation,
            result: outcome,
            outcome: found,
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
            who: Who {
                conn: conn.clone(),
                sender,
            },
            caller,
            operation,
            reader,
            started,
        }
    }

    fn reader_paths(&self) -> Vec<OwnedObjectPath> {
        lock(&self.objects)
            .iter()
            .filter_map(|id| OwnedObjectPath::try_from(api::reader_path(*id)).ok())
            .collect()
    }

    /// Verifies `der` for `purpose` at `at`; hands the certificate back with the answer.
    async fn verify(
        &self,
        der: Zeroizing<Vec<u8>>,
        purpose: Purpose,
        at: i64,
    ) -> Result<(Zeroizing<Vec<u8>>, Verification), Error> {
        let now = now()?;
        self.verifying(move |verifier, deadline| {
            let v = verifier.verify(&der, purpose, at, now, deadline);
            (der, v)
        })
        .await
    }

    /// Runs `work` on tokio's blocking pool, at most [`MAX_VERIFICATIONS`] at once, answered
    /// within the verifier's budget (`limits.op_timeout_ms`) whatever a responder does: the
    /// OCSP exchange gets the budget less a margin for the signature checks.
    async fn verifying<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Verifier, Instant) -> R + Send + 'static,
    ) -> Result<R, Error> {
        let budget = self.verifier.budget;
        let started = Instant::now();
        let late = || Error::Timeout("certificate verification did not finish in time".to_owned());
        let permit = tokio::time::timeout(budget, self.verifications.clone().acquire_owned())
            .await
            .map_err(|_| late())?
            .map_err(|_| Error::Internal("the verification limit is closed".to_owned()))?;
        let left = budget.saturating_sub(started.elapsed());
        let deadline = Instant::now() + left.mul_f32(0.8);
        let verifier = self.verifier.clone();
        let task = tokio::task::spawn_blocking(move || {
            let r = work(&verifier, deadline);
            drop(permit);
            r
        });
        tokio::time::timeout(left, task)
            .await
            .map_err(|_| late())?
            .map_err(|e| Error::Internal(format!("verification task failed: {e}")))
    }

    /// `MatchAttributes`' answer: the comparison's booleans and the signing certificate's
    /// verification. The certificate is wiped when this returns.
    async fn match_result(&self, matched: AttributesMatched) -> Result<MatchResult, Error> {
        let c = matched.comparison;
        let (_, v) = self
            .verify(matched.certificate, Purpose::Sign, now()?)
            .await?;
        Ok(MatchResult {
            all: c.all_exact(),
            name: c.name.exact,
            address: c.address.exact,
            birth_date: c.birth_date.exact,
            sex: c.sex.exact,
            integrity: matched.integrity,
            serial: v.details.serial.clone(),
            status: v.outcome.status(),
        })
    }

    /// Submits `flow` for `call` on reader `id` and waits for its output; the wait ends early
    /// when the caller leaves the bus.
    async fn submit<F: Flow>(
        &self,
        who: &Who,
        id: u32,
        flow: F,
        options: RequestOptions,
    ) -> Result<F::Output, Error> {
        let _activity = self.claims.enter(id, &who.sender)?;
        // Subscribe first, then ask: a caller that left before is seen by the question, one
        // that leaves after by the subscription.
        let mut vanished = self.vanished.subscribe();
        if !who.present().await {
            return Err(Error::Internal(CALLER_LEFT.to_owned()));
        }
        let rx = self.readers.submit(id, flow, options)?;
        let sender = who.sender.as_str();
        let gone = async {
            loop {
                match vanished.recv().await {
                    Ok(name) if name == sender => break,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        let backstop = self.readers.longest_wait() + BACKSTOP_GRACE;
        tokio::select! {
            reply = rx => match reply {
                Ok(result) => result.map_err(Error::from),
                // The worker dropped the request without answering: it stopped abnormally.
                Err(_) => Err(Error::Internal("the reader's worker ended without answering".to_owned())),
            },
            () = gone => {
                debug!(reader = id, "caller left the bus; request dropped");
                Err(Error::Internal(CALLER_LEFT.to_owned()))
            }
            () = tokio::time::sleep(backstop) => {
                Err(Error::Timeout("no answer from the reader".to_owned()))
            }
        }
    }
}

/// `io.jpkid.Jpki1.Manager` at `/io/jpkid/Jpki1`.
#[derive(Debug)]
pub struct Manager {
    shared: Arc<Shared>,
}

#[interface(name = "io.jpkid.Jpki1.Manager", proxy(visibility = "pub"))]
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
        der: SecretBytes,
        purpose: String,
        options: Dict,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<VerifyResult, Error> {
        // The certificate may carry a holder's name and address: ours is wiped after use.
        let der = der.0;
        let call = self
            .shared
            .begin(conn, &hdr, "verify-certificate", None)
            .await;
        let result = self.verify(&call, der, &purpose, &options).await;
        let serial = result.as_ref().ok().map(|r| r.serial.clone());
        call.audit(&result, serial.as_deref().filter(|s| !s.is_empty()));
        call.who.scrub_read_buffer().await;
        result
    }

    /// The police-side check of a consent made by `SignConsent` (001 §3): its signature, the
    /// signer's certificate at the signing time and now, the document's form.
    async fn verify_consent(
        &self,
        cms: SecretBytes,
        options: Dict,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<ConsentCheck, Error> {
        // The CMS carries the signer's certificate (name, address, birth date).
        let cms = cms.0;
        let call = self.shared.begin(conn, &hdr, "verify-consent", None).await;
        let result = async {
            call.authorized()?;
            api::refuse_options(&options)?;
            if cms.is_empty() || cms.len() > MAX_CONSENT_CMS {
                return Err(Error::InvalidArgument(format!(
                    "a consent CMS is 1 to {MAX_CONSENT_CMS} bytes, got {}",
                    cms.len()
                )));
            }
            let now = now()?;
            self.shared
                .verifying(move |verifier, deadline| check_consent(verifier, &cms, now, deadline))
                .await?
        }
        .await;
        let serial = result.as_ref().ok().and_then(Audited::serial);
        let found = result.as_ref().ok().and_then(Audited::outcome);
        call.audit_with(&result, serial.as_deref(), found.as_deref());
        call.who.scrub_read_buffer().await;
        result
    }

    /// The validity period of a consent made on `consent_date` (001 §4(2)): first and last
    /// day, ISO dates.
    async fn consent_period(
        &self,
        consent_date: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(String, String), Error> {
        self.rule(&hdr, conn).await?;
        let period = terms::consent_period(terms::parse_date(&consent_date)?)?;
        Ok((
            terms::format_date(period.first_day),
            terms::format_date(period.last_day),
        ))
    }

    /// Which services a holding may use (000 §2, 001 §2).
    async fn eligibility(
        &self,
        holding: String,
        facts: Dict,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<EligibilityResult, Error> {
        self.rule(&hdr, conn).await?;
        let holding: terms::Holding = holding.parse()?;
        let facts = EligibilityFacts::from_dict(&facts)?;
        let e = terms::eligibility(holding, facts.suspended);
        Ok(EligibilityResult {
            mynaportal_link: e.mynaportal_link,
            license_info: e.license_info,
            online_lecture: e.online_lecture,
            domicile_change: e.domicile_change,
            address_one_stop: e.address_one_stop,
            notifications: e.notifications,
        })
    }

    /// Where a consent made on `consent_date` stands on a day (001 §4(2), §4(3), §5).
    async fn consent_status(
        &self,
        consent_date: String,
        facts: Dict,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<ConsentStatusResult, Error> {
        self.rule(&hdr, conn).await?;
        let consent_date = terms::parse_date(&consent_date)?;
        let given = ConsentStatusFacts::from_dict(&facts)?;
        let on = match &given.on {
            Some(day) => terms::parse_date(day)?,
            None => terms::today_in_japan(time::OffsetDateTime::now_utc()),
        };
        let facts = terms::ConsentFacts {
            on,
            holding: given.holding.as_deref().map(str::parse).transpose()?,
            certificate_lapse: given
                .certificate_lapse
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or(terms::CertificateLapse::None),
            new_certificate: given.new_certificate,
            withdrawn_on: given
                .withdrawn_on
                .as_deref()
                .map(terms::parse_date)
                .transpose()?,
        };
        let status = terms::consent_status(consent_date, &facts)?;
        Ok(ConsentStatusResult {
            first_day: terms::format_date(status.first_day),
            last_day: terms::format_date(status.last_day),
            in_period: status.in_period,
            updates: status.updates,
            action: status.action.as_str().to_owned(),
            clause: status.clause.to_owned(),
        })
    }

    /// Whether マイナポータル連携 still needs the counter submission of the signing certificate
    /// (000 §4 1回目 and なお, §5, §6).
    async fn link_requirement(
        &self,
        facts: Dict,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<LinkRequirementResult, Error> {
        self.rule(&hdr, conn).await?;
        let given = LinkRequirementFacts::from_dict(&facts)?;
        let holding = given.holding.as_deref().ok_or_else(|| {
            Error::InvalidArgument(format!("fact {:?} is required", api::fact::HOLDING))
        })?;
        let answer = terms::link_requirement(&terms::LinkFacts {
            holding: holding.parse()?,
            one_stop_started: given.one_stop_started,
            linked_before: given.linked_before,
            unlinked: given.unlinked,
            licence_lapsed_after_unlink: given.licence_lapsed_after_unlink,
        });
        Ok(LinkRequirementResult {
            counter_submission: answer.counter_submission.as_str().to_owned(),
            clause: answer.clause.to_owned(),
        })
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

impl Manager {
    /// Admits a caller of a rule method (no card, nothing personal: not audited).
    async fn rule(&self, hdr: &Header<'_>, conn: &Connection) -> Result<(), Error> {
        self.shared
            .begin(conn, hdr, "rule", None)
            .await
            .authorized()
    }

    async fn verify(
        &self,
        call: &Call<'_>,
        der: Zeroizing<Vec<u8>>,
        purpose: &str,
        options: &Dict,
    ) -> Result<VerifyResult, Error> {
        call.authorized()?;
        let purpose: Purpose = purpose.parse()?;
        if der.is_empty() || der.len() > MAX_CERTIFICATE {
            return Err(Error::InvalidArgument(format!(
                "certificate must be 1 to {MAX_CERTIFICATE} bytes, got {}",
                der.len()
            )));
        }
        let at = match VerifyOptions::from_dict(options)?.at {
            Some(t) => t,
            None => now()?,
        };
        let (_, v) = self.shared.verify(der, purpose, at).await?;
        Ok(verify_result(&v))
    }
}

/// `VerifyConsent`'s check, on the blocking pool: a CMS that is not a SignedData, or one whose
/// valid signature covers something other than a consent document of its signer, is
/// `InvalidArgument`; a signature that fails is `signature` `invalid`, with what the content
/// still says.
fn check_consent(
    verifier: &Verifier,
    der: &[u8],
    now: i64,
    deadline: Instant,
) -> Result<ConsentCheck, Error> {
    let not_a_consent = |why: String| Error::InvalidArgument(format!("not a consent CMS: {why}"));
    let opened = cms::open(der).map_err(|e| not_a_consent(e.to_string()))?;
    let signed_at = opened
        .signing_time
        .ok_or_else(|| not_a_consent("no signingTime attribute".to_owned()))?;
    let serial = pki::certificate_serial(&opened.signer_cert_der)
        .ok_or_else(|| not_a_consent("the signer's certificate cannot be read".to_owned()))?;
    let signature = match opened.check() {
        Ok(()) => SignatureStatus::Valid,
        Err(_) => SignatureStatus::Invalid,
    };
    let document = std::str::from_utf8(&opened.content)
        .map_err(|_| terms::TermsError::DocumentForm("not UTF-8".to_owned()))
        .and_then(|text| ConsentDocument::parse_canonical(text).map(|d| (text, d)));
    let document = match (signature, document) {
        (SignatureStatus::Valid, Ok((text, doc))) => {
            if doc.serial != serial {
                return Err(not_a_consent(format!(
                    "the document names certificate {}, the signer's is {serial}",
                    doc.serial
                )));
            }
            if doc.signed_at.unix_timestamp() != signed_at {
                return Err(not_a_consent(
                    "the document's signed-at differs from the signingTime attribute".to_owned(),
                ));
            }
            Some((text.to_owned(), doc))
        }
        (SignatureStatus::Valid, Err(e)) => {
            return Err(not_a_consent(format!(
                "signed, but not a consent document: {e}"
            )));
        }
        (SignatureStatus::Invalid, d) => d.ok().map(|(text, doc)| (text.to_owned(), doc)),
    };
    let certificate = &opened.signer_cert_der;
    let status = verifier
        .verify(certificate, Purpose::Sign, now, now, deadline)
        .outcome
        .status();
    let status_at_signing = verifier
        .verify(certificate, Purpose::Sign, signed_at, now, deadline)
        .outcome
        .status();
    let (text, doc) = document.unzip();
    Ok(ConsentCheck {
        signature,
        status,
        status_at_signing,
        kind: doc.as_ref().map(|d| d.kind.as_str().to_owned()),
        items: doc
            .as_ref()
            .map(|d| d.items.names().into_iter().map(str::to_owned).collect()),
        reference: doc.and_then(|d| d.reference),
        signed_at,
        serial,
        document: text,
    })
}

/// The signing time of a consent document: now, in whole seconds.
fn signing_time() -> Result<time::OffsetDateTime, Error> {
    time::OffsetDateTime::from_unix_timestamp(now()?)
        .map_err(|_| Error::Internal("system clock out of range".to_owned()))
}

fn now() -> Result<i64, Error> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Error::Internal("system clock before 1970".to_owned()))?;
    i64::try_from(d.as_secs()).map_err(|_| Error::Internal("system clock out of range".to_owned()))
}

/// The result of DESIGN §6.1. `not-before`/`not-after` are left out when the certificate
/// could not be read (`malformed`); `revocation-reason`/`revoked-at` appear only for `revoked`.
fn verify_result(v: &Verification) -> VerifyResult {
    let d = &v.details;
    let (revocation_reason, revoked_at) = match v.outcome {
        VerifyOutcome::Revoked { reason, date } => (
            Some(
                reason
                    .or(d.revocation_reason)
                    .map_or("unspecified", |r| r.as_str())
                    .to_owned(),
            ),
            Some(d.revoked_at.unwrap_or(date)),
        ),
        _ => (None, None),
    };
    VerifyResult {
        status: v.outcome.status(),
        serial: d.serial.clone(),
        subject: d.subject.as_str().to_owned(),
        issuer: d.issuer.clone(),
        not_before: d.not_before,
        not_after: d.not_after,
        root: d.root.clone(),
        revocation_source: Some(d.revocation_source.unwrap_or(api::RevocationSource::None)),
        revocation_reason,
        revoked_at,
        revocation_detail: d.revocation_detail,
    }
}

/// `io.jpkid.Jpki1.Reader` at `/io/jpkid/Jpki1/reader/N`.
#[derive(Debug)]
pub struct Reader {
    id: u32,
    shared: Arc<Shared>,
    /// What the properties show; updated by the event task.
    snapshot: Mutex<ReaderSnapshot>,
}

#[interface(name = "io.jpkid.Jpki1.Reader", proxy(visibility = "pub"))]
impl Reader {
    /// Reader name.
    #[zbus(property(emits_changed_signal = "const"))]
    fn name(&self) -> String {
        lock(&self.snapshot).name.clone()
    }

    /// `empty`, `probing`, `ready`, `busy`, `unsupported`, `mute`.
    #[zbus(property)]
    fn state(&self) -> ReaderState {
        lock(&self.snapshot).state
    }

    /// `card`, `android`, `iphone`, `none`, `unknown`.
    #[zbus(property)]
    fn card_kind(&self) -> CardKind {
        lock(&self.snapshot).card_kind
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

    /// Card insertions since the daemon started; pass it back as option `insertion` to tie a
    /// request to the card the caller saw.
    #[zbus(property)]
    fn insertions(&self) -> u32 {
        lock(&self.snapshot).insertions
    }

    /// The reader changed state.
    #[zbus(signal, name = "StateChanged")]
    async fn state_change(
        emitter: &SignalEmitter<'_>,
        old: ReaderState,
        new: ReaderState,
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
            let changed = self.shared.claims.claim(self.id, &call.who.sender)?;
            // A claimant that left before the claim was recorded would hold it until it idles.
            if changed && !call.caller_present().await {
                self.shared.claims.release(self.id, &call.who.sender)?;
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
            self.shared.claims.release(self.id, &call.who.sender)
        }
        .await;
        call.audit(&result, None);
        if let Ok(true) = result {
            emit_quietly(self.claimant_changed(&emitter).await);
        }
        result.map(|_| ())
    }

    /// Tries left per PIN (`sign-password`, `auth-pin`, `text-pin`, `code-b`); spends no try.
    async fn get_pin_status(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<PinCounters, Error> {
        self.card(
            &hdr,
            conn,
            |readers| {
                Ok((
                    flows::GetPinStatus,
                    readers.options(&CardOptions::default()),
                ))
            },
            returned,
        )
        .await
    }

    /// Reads a certificate (`auth`, `auth-ca`, `sign`, `sign-ca`); the secret is the signing
    /// password for `sign`, empty otherwise (the Android token's `auth` takes the auth PIN).
    async fn read_certificate(
        &self,
        which: String,
        secret: SecretBytes,
        options: Dict,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<SecretBytes, Error> {
        let secret = secret.0;
        self.card(
            &hdr,
            conn,
            |readers| {
                let which: CertKind = which.parse()?;
                let request = CertificateRequest::new(which, &secret)?;
                let options = readers.options(&CardOptions::from_dict(&options)?);
                Ok((flows::ReadCertificate(request), options))
            },
            |der| returned(SecretBytes(der)),
        )
        .await
    }

    /// Signs a digest with the card's `sign` or `auth` key (PKCS#1 v1.5).
    #[allow(clippy::too_many_arguments)] // the D-Bus signature has five, zbus adds two
    async fn sign(
        &self,
        key: String,
        hash: String,
        digest: Vec<u8>,
        secret: SecretBytes,
        options: Dict,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<u8>, Error> {
        let secret = secret.0;
        self.card(
            &hdr,
            conn,
            |readers| {
                let key: KeyKind = key.parse()?;
                let hash: HashAlg = hash.parse()?;
                let digest = DigestInfo::new(hash, &digest)?;
                let secret = KeySecret::new(key, &secret)?;
                let options = readers.options(&CardOptions::from_dict(&options)?);
                Ok((flows::Sign { secret, digest }, options))
            },
            returned,
        )
        .await
    }

    /// The signing certificate of this reader's 個人番号カード for マイナポータル連携 (000 §4
    /// 1回目): the card proves it holds the certificate's key, then the certificate is verified.
    async fn link(
        &self,
        sign_password: SecretBytes,
        options: Dict,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<LinkResult, Error> {
        let secret = sign_password.0;
        let shared = self.shared.clone();
        self.card(
            &hdr,
            conn,
            |readers| {
                let password = pin::sign_password(&secret)?;
                let options = readers.options(&CardOptions::from_dict(&options)?);
                let challenge = challenge();
                Ok((
                    flows::Link {
                        password,
                        challenge,
                    },
                    options,
                ))
            },
            |proven| async move {
                let (certificate, v) = shared
                    .verify(proven.certificate, Purpose::Sign, now()?)
                    .await?;
                Ok(LinkResult::new(verify_result(&v), SecretBytes(certificate)))
            },
        )
        .await
    }

    /// Signs the consent to the address-change one-stop service (001 §4(1)) — or, with option
    /// `withdraw`, its withdrawal (001 §4(3)イ) — with this card's signing key, as a CMS.
    async fn sign_consent(
        &self,
        items: Vec<String>,
        sign_password: SecretBytes,
        options: Dict,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<ConsentResult, Error> {
        let secret = sign_password.0;
        let shared = self.shared.clone();
        self.card(
            &hdr,
            conn,
            |readers| {
                let options = ConsentOptions::from_dict(&options)?;
                let (kind, items) = if options.withdraw {
                    // 001 §4(3)イ: a withdrawal names what it withdraws, by default everything.
                    let items = match items.is_empty() {
                        true => ConsentItems::all(),
                        false => ConsentItems::parse(&items)?,
                    };
                    (DocumentKind::Withdrawal, items)
                } else {
                    (DocumentKind::Consent, ConsentItems::parse(&items)?)
                };
                let draft = ConsentDraft {
                    kind,
                    items,
                    terminal: self.shared.terminal.clone(),
                    reference: options.reference,
                    signed_at: signing_time()?,
                };
                draft.check()?;
                let password = pin::sign_password(&secret)?;
                Ok((
                    flows::SignConsent { password, draft },
                    readers.options(&options.card),
                ))
            },
            |signed| async move {
                let signed_at = signed.signed_at;
                let (_, v) = shared
                    .verify(signed.certificate, Purpose::Sign, now()?)
                    .await?;
                Ok(ConsentResult {
                    cms: SecretBytes(signed.cms),
                    document: signed.document,
                    serial: signed.serial,
                    status: v.outcome.status(),
                    signed_at,
                })
            },
        )
        .await
    }

    /// Compares the basic four of this reader's card (text AP, integrity checked) with those
    /// of a signing certificate whose key was proven (000 §4 2回目); only booleans come back.
    async fn match_attributes(
        &self,
        text_pin: SecretBytes,
        sign_password: SecretBytes,
        options: Dict,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<MatchResult, Error> {
        let text_pin = text_pin.0;
        let sign_password = sign_password.0;
        let prepared = MatchOptions::from_dict(&options).and_then(|options| {
            let text = flows::ReadText {
                pin: pin::text_pin(&text_pin)?,
            };
            let key = flows::ProveKey {
                password: pin::sign_password(&sign_password)?,
                challenge: challenge(),
            };
            Ok((options, text, key))
        });
        let other = match &prepared {
            Ok((options, _, _)) => options.sign_reader.filter(|r| *r != self.id),
            Err(_) => None,
        };
        match (other, prepared) {
            (Some(other), Ok((options, text, key))) => {
                self.audited(&hdr, conn, "match-attributes", |who| {
                    self.match_across(who, other, options.card, options.sign_insertion, text, key)
                })
                .await
            }
            (_, prepared) => {
                let shared = self.shared.clone();
                let card_ca = self.shared.card_ca.clone();
                self.card(
                    &hdr,
                    conn,
                    |readers| {
                        let (options, text, key) = prepared?;
                        let flow = flows::MatchAttributes { text, key, card_ca };
                        Ok((flow, readers.options(&options.card)))
                    },
                    |matched| async move { shared.match_result(matched).await },
                )
                .await
            }
        }
    }
    /// The counter's 対面確認 (DESIGN §6.2): 照合番号B opens the visual AP; the CV certificate
    /// is checked against the J-LIS card CA keys, the card-face signature over the face data,
    /// and the chip signs a fresh challenge with the face data's key. The photo only with
    /// option `photo`. 照合番号A and the My Number image are never touched.
    async fn check_authenticity(
        &self,
        code_b: SecretBytes,
        options: Dict,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<AuthenticityResult, Error> {
        let code = code_b.0;
        let card_ca = self.shared.card_ca.clone();
        self.card(
            &hdr,
            conn,
            |readers| {
                let options = AuthenticityOptions::from_dict(&options)?;
                let flow = flows::CheckAuthenticity {
                    code: pin::code_b(&code)?,
                    challenge: challenge(),
                    photo: options.photo,
                    card_ca,
                };
                Ok((flow, readers.options(&options.card)))
            },
            |checked| {
                let v = &checked.verdict;
                returned(AuthenticityResult {
                    genuine: v.genuine(),
                    cv_certificate: v.cv_certificate,
                    card_face: v.card_face,
                    challenge: v.challenge,
                    expiry: v.expiry.clone(),
                    photo: checked.photo.map(SecretBytes),
                })
            },
        )
        .await
    }
}

impl Reader {
    /// Refuses calls on a reader the manager no longer knows.
    fn known(&self) -> Result<(), Error> {
        if self.shared.readers.reader(self.id).is_some() {
            Ok(())
        } else {
            Err(Error::ReaderGone(format!("reader {} is gone", self.id)))
        }
    }

    /// The skeleton of every card method: the caller is checked, `prepare` validates the
    /// arguments into a flow and its options (nothing reaches the card when it fails), the
    /// flow runs on this reader for the caller, `done` makes the reply of its output (verifying
    /// a certificate, say), and the call is audited.
    async fn card<F, P, D, Fut, R>(
        &self,
        hdr: &Header<'_>,
        conn: &Connection,
        prepare: P,
        done: D,
    ) -> Result<R, Error>
    where
        F: Flow,
        P: FnOnce(&ReaderManager) -> Result<(F, RequestOptions), Error>,
        D: FnOnce(F::Output) -> Fut,
        Fut: Future<Output = Result<R, Error>>,
        R: Audited,
    {
        let prepared = prepare(&self.shared.readers);
        let operation = match &prepared {
            Ok((flow, _)) => flow.name(),
            Err(_) => "invalid-request",
        };
        self.audited(hdr, conn, operation, |who| async move {
            let (flow, options) = prepared?;
            let output = self.shared.submit(&who, self.id, flow, options).await?;
            done(output).await
        })
        .await
    }

    /// A method call checked, run and audited.
    async fn audited<B, Fut, R>(
        &self,
        hdr: &Header<'_>,
        conn: &Connection,
        operation: &'static str,
        body: B,
    ) -> Result<R, Error>
    where
        B: FnOnce(Who) -> Fut,
        Fut: Future<Output = Result<R, Error>>,
        R: Audited,
    {
        let call = self.shared.begin(conn, hdr, operation, Some(self.id)).await;
        let result = match call.authorized() {
            Ok(()) => body(call.who.clone()).await,
            Err(e) => Err(e),
        };
        let serial = result.as_ref().ok().and_then(Audited::serial);
        let found = result.as_ref().ok().and_then(Audited::outcome);
        call.audit_with(&result, serial.as_deref(), found.as_deref());
        call.who.scrub_read_buffer().await;
        result
    }

    /// `MatchAttributes` with option `sign-reader`: the basic four from this reader's card,
    /// the signing certificate from the token in reader `other` (a smartphone, 000 §4 なお).
    /// Each reader's request is tied to its card (options `insertion` and `sign-insertion`, else
    /// the card there when the call began), and this reader's card must still be there when the
    /// other's half is done: the four compared are of the card the staff sees.
    async fn match_across(
        &self,
        who: Who,
        other: u32,
        asked: CardOptions,
        sign_insertion: Option<u32>,
        text: flows::ReadText,
        key: flows::ProveKey,
    ) -> Result<MatchResult, Error> {
        let readers = &self.shared.readers;
        let here = readers
            .reader(self.id)
            .ok_or_else(|| Error::ReaderGone(format!("reader {} is gone", self.id)))?;
        let there = readers.reader(other).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "option {:?}: there is no reader {other}",
                api::option::SIGN_READER
            ))
        })?;
        let card_here = asked.insertion.unwrap_or(here.insertions);
        let card_there = sign_insertion.unwrap_or(there.insertions);
        let options = readers.options(&asked);
        let text = self
            .shared
            .submit(
                &who,
                self.id,
                text,
                RequestOptions {
                    insertion: Some(card_here),
                    ..options
                },
            )
            .await?;
        let signer = self
            .shared
            .submit(
                &who,
                other,
                key,
                RequestOptions {
                    insertion: Some(card_there),
                    ..options
                },
            )
            .await?;
        let still_here = readers
            .reader(self.id)
            .is_some_and(|r| r.insertions == card_here && r.state != ReaderState::Empty);
        if !still_here {
            return Err(Error::CardRemoved(format!(
                "the card in reader {} was removed while reader {other} was read",
                self.id
            )));
        }
        let matched = flows::compare_attributes(text, signer, &self.shared.card_ca)?;
        self.shared.match_result(matched).await
    }
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
pub struct Testing {
    shared: Arc<Shared>,
}

#[cfg(feature = "virtual-card")]
#[interface(name = "io.jpkid.Jpki1.Testing", proxy(visibility = "pub"))]
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
                .map_err(Error::from)
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
                .map_err(Error::from)
        }
        .await;
        call.audit(&result, None);
        result
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
            audit: Audit::new(config.audit.enabled, options.audit_key),
            hierarchy: options.anchors.hierarchy(),
            verifier: Arc::new(Verifier {
                anchors: options.anchors,
                crl: options.crl,
                ocsp: options.ocsp,
                mode: config.revocation.mode,
                accept_stale_crl: config.revocation.accept_stale_crl,
                budget: config.limits.op_timeout(),
            }),
            verifications: Arc::new(tokio::sync::Semaphore::new(MAX_VERIFICATIONS)),
            card_ca: Arc::new(options.card_ca),
            terminal: options.terminal,
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

    /// Stops the service: releases the bus name (no new callers), then drains the readers —
    /// every request in flight runs to its end and every session that presented a PIN ends
    /// with the card unpowered — waiting at most `grace`; then stops the background tasks.
    /// `true` when everything ended in time.
    pub async fn stop(self, grace: Duration) -> bool {
        if let Err(e) = self.connection.release_name(BUS_NAME).await {
            debug!(error = %e, "could not release the bus name");
        }
        let readers = self.shared.readers.clone();
        let drained = tokio::task::spawn_blocking(move || readers.shutdown(grace))
            .await
            .unwrap_or(false);
        if !drained {
            warn!(
                ?grace,
                "requests or card exchanges still running after the stop grace"
            );
        }
        for t in &self.tasks {
            t.abort();
        }
        drained
    }
}

async fn manager_ref(conn: &Connection) -> zbus::Result<InterfaceRef<Manager>> {
    conn.object_server()
        .interface::<_, Manager>(MANAGER_PATH)
        .await
}

async fn reader_ref(conn: &Connection, id: u32) -> zbus::Result<InterfaceRef<Reader>> {
    conn.object_server()
        .interface::<_, Reader>(api::reader_path(id))
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
            let path = api::reader_path(id);
            let object = Reader {
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
            let path = api::reader_path(id);
            shared.claims.forget_reader(id);
            conn.object_server()
                .remove::<Reader, _>(path.as_str())
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
            publish_snapshot(conn, id, snapshot, Some((old, reason.as_str()))).await?;
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
    change: Option<(ReaderState, &str)>,
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
        Reader::state_change(emitter, old, new.state, reason).await?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use zbus::object_server::Interface;

    use super::*;

    /// zbus takes the interface names in its attributes as literals; they are the contract's.
    #[test]
    fn the_interface_attributes_name_the_contracts_interfaces() {
        assert_eq!(
            <Manager as Interface>::name().as_str(),
            api::MANAGER_INTERFACE
        );
        assert_eq!(
            <Reader as Interface>::name().as_str(),
            api::READER_INTERFACE
        );
        #[cfg(feature = "virtual-card")]
        assert_eq!(
            <Testing as Interface>::name().as_str(),
            api::TESTING_INTERFACE
        );
    }
}
