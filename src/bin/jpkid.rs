//! `jpkid`: the daemon. Loads the configuration, the trust anchors and the revocation sources,
//! starts the reader layer, serves the D-Bus API (DESIGN §6) and stops cleanly on SIGTERM or
//! SIGINT, and with an error when its bus connection closes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing::{debug, error, info, warn};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use jpkid::config::Config;
use jpkid::pki::cvc::CardCaKeys;
use jpkid::pki::{CrlStore, Hierarchy, OcspConfig, TrustAnchors};
use jpkid::readers::{ReaderManager, ReadersConfig};
use jpkid::service::{Service, ServiceOptions};

/// Freed memory is wiped (secrets pass through buffers no zeroizing type owns).
#[global_allocator]
static ALLOCATOR: jpkid::process::WipingAllocator = jpkid::process::WIPING_ALLOCATOR;

/// Beyond `limits.op_timeout_ms`, how long a stop waits for exchanges still running on a card.
const STOP_MARGIN: Duration = Duration::from_secs(5);

/// Serves the JPKI functions of My Number Cards over D-Bus.
#[derive(Debug, Parser)]
#[command(name = "jpkid", version, about)]
struct Args {
    /// Configuration file (default /etc/jpkid/jpkid.toml when it exists).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Bus to serve on: `system`, `session`, or a D-Bus address.
    #[arg(long, value_name = "system|session|ADDRESS", default_value = "system")]
    bus: String,
    /// Add an in-process virtual reader with the persona in DIR inserted (repeatable); also
    /// serves the Testing interface.
    #[arg(long = "virtual", value_name = "DIR")]
    #[cfg_attr(not(feature = "virtual-card"), arg(hide = true))]
    virtual_personas: Vec<PathBuf>,
    /// Do not watch PC/SC readers.
    #[arg(long)]
    no_pcsc: bool,
    /// Power off the card in every PC/SC reader jpkid would own (not `readers.ignore`) and
    /// exit: the unit's ExecStopPost, so that a daemon killed mid-flow (SIGKILL, OOM, crash)
    /// cannot leave a citizen's card unlocked for the next PC/SC client.
    #[arg(long)]
    unpower_cards: bool,
    /// Write the manual page jpkid.8 and the shell completions into DIR and exit (packaging).
    #[arg(long, value_name = "DIR", hide = true)]
    generate_manual: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.generate_manual {
        use clap::CommandFactory;
        return match jpkid::manual::generate(Args::command(), "8", dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("jpkid: cannot write the manual into {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        };
    }
    init_logging();
    // No core dump and no ptrace by other processes of the same user: the memory holds PINs
    // and personal data for the length of a request (LimitCORE=0 in the unit does the same for
    // the dump).
    match jpkid::process::forbid_dumps() {
        Ok(()) => debug!("process marked not dumpable"),
        Err(e) => warn!(error = %e, "cannot mark the process not dumpable"),
    }
    if args.unpower_cards {
        return unpower_cards(args.config.as_deref());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jpkid: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            eprintln!("jpkid: {message}");
            ExitCode::from(2)
        }
    }
}

/// `JPKID_LOG` (EnvFilter syntax, default `info`); the journal when started by systemd with
/// its output connected to it (`JOURNAL_STREAM`), else stderr.
fn init_logging() {
    let filter = EnvFilter::try_from_env("JPKID_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(journald) => {
                registry.with(journald).init();
                return;
            }
            Err(e) => eprintln!("jpkid: journald not reachable ({e}); logging to stderr"),
        }
    }
    registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
}

fn load_anchors(config: &Config) -> TrustAnchors {
    let hierarchy = config.trust.hierarchy;
    let dir = &config.trust.roots_dir;
    if !dir.is_dir() {
        warn!(dir = %dir.display(), "trust.roots_dir does not exist; no certificate will verify");
        return TrustAnchors::new(hierarchy);
    }
    match TrustAnchors::load(hierarchy, dir) {
        Ok(anchors) => {
            for r in anchors.rejected() {
                warn!(file = %r.path.display(), reason = %r.reason, "root certificate not used");
            }
            info!(
                anchors = anchors.anchors().len(),
                hierarchy = match hierarchy {
                    Hierarchy::Production => "production",
                    Hierarchy::Test => "test",
                },
                "trust anchors loaded"
            );
            anchors
        }
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "no trust anchors; no certificate will verify");
            TrustAnchors::new(hierarchy)
        }
    }
}

fn load_card_ca(config: &Config) -> CardCaKeys {
    let hierarchy = config.trust.hierarchy;
    let dir = &config.trust.card_ca_dir;
    match CardCaKeys::load(hierarchy, dir) {
        Ok(keys) => {
            for r in keys.rejected() {
                warn!(file = %r.path.display(), reason = %r.reason, "card CA key refused");
            }
            info!(dir = %dir.display(), keys = keys.keys().len(), "card CA keys loaded");
            keys
        }
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "no card CA keys; text AP integrity will be unverifiable");
            CardCaKeys::none(hierarchy)
        }
    }
}

/// The key of the audit's serial tags, in the state directory systemd gives the unit
/// (`StateDirectory=jpkid/state`), made at first start; a key for this run only without one.
fn audit_key() -> jpkid::audit::AuditKey {
    use jpkid::audit::{AuditKey, DEFAULT_STATE_DIR, KEY_FILE};
    let dir = std::env::var_os("STATE_DIRECTORY")
        .and_then(|d| {
            std::env::split_paths(&d)
                .next()
                .filter(|p| !p.as_os_str().is_empty())
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    if !dir.is_dir() {
        info!(dir = %dir.display(), "no state directory: the audit's serial tags hold for this run only");
        return AuditKey::ephemeral();
    }
    match AuditKey::load_or_create(&dir.join(KEY_FILE)) {
        Ok(key) => key,
        Err(e) => {
            warn!(error = %e, "audit key unusable: the audit's serial tags hold for this run only");
            AuditKey::ephemeral()
        }
    }
}

/// The name consent documents give this counter: the host name.
fn terminal_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "jpkid".to_owned())
}

fn open_crl(dir: &Path) -> Option<CrlStore> {
    if !dir.is_dir() {
        info!(dir = %dir.display(), "no CRL directory; revocation by CRL unavailable");
        return None;
    }
    match CrlStore::open(dir) {
        Ok(store) => Some(store),
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "CRL directory unusable");
            None
        }
    }
}

async fn connect(bus: &str) -> Result<zbus::Connection, String> {
    let builder = match bus {
        "system" => zbus::connection::Builder::system(),
        "session" => zbus::connection::Builder::session(),
        address => zbus::connection::Builder::address(address),
    };
    builder
        .build()
        .await
        .map_err(|e| format!("cannot connect to the {bus} bus: {e}"))
}

async fn run(args: Args) -> Result<(), String> {
    let config = Config::load_or_default(args.config.as_deref()).map_err(|e| e.to_string())?;
    let anchors = load_anchors(&config);
    let card_ca = load_card_ca(&config);
    let crl = open_crl(&config.revocation.crl_dir);
    let ocsp = config.revocation.ocsp_url.clone().map(OcspConfig::new);

    // Requests in flight run to their deadline, then exchanges still running on a card end
    // theirs; the unit's TimeoutStopSec leaves room for this.
    let grace = config.limits.op_timeout() + STOP_MARGIN;
    let (readers, events) = ReaderManager::start(ReadersConfig {
        pcsc: !args.no_pcsc,
        ignore: config.readers.ignore.clone(),
        op_timeout: config.limits.op_timeout(),
        queue_depth: config.limits.queue_depth,
        pin_guard_min_remaining: config.pin_guard.min_remaining,
    })
    .map_err(|e| format!("cannot start the reader layer: {e}"))?;
    add_virtual_readers(&readers, &args.virtual_personas)?;

    let connection = connect(&args.bus).await?;
    let options = ServiceOptions {
        config,
        anchors,
        crl,
        ocsp,
        card_ca,
        terminal: terminal_name(),
        audit_key: audit_key(),
        testing: !args.virtual_personas.is_empty(),
    };
    let service = Service::start(&connection, readers.clone(), events, options)
        .await
        .map_err(|e| e.to_string())?;
    if let Err(e) = service.request_name().await {
        service.stop(grace).await;
        return Err(e.to_string());
    }
    info!(bus = %args.bus, "jpkid ready");

    tokio::select! {
        stop = wait_for_signal() => {
            info!(signal = stop, "stopping: draining the requests in flight");
            service.stop(grace).await;
            info!("stopped");
            Ok(())
        }
        () = connection.closed() => {
            // Without its bus the daemon serves nobody; exit so that systemd restarts it.
            service.stop(grace).await;
            Err("the D-Bus connection closed".to_owned())
        }
    }
}

#[cfg(feature = "virtual-card")]
fn add_virtual_readers(readers: &ReaderManager, personas: &[PathBuf]) -> Result<(), String> {
    for (i, dir) in personas.iter().enumerate() {
        let id = readers
            .add_virtual_reader(&format!("jpkid Virtual Reader {i}"))
            .map_err(|e| format!("cannot add a virtual reader: {e}"))?;
        readers
            .insert_virtual(id, dir)
            .map_err(|e| format!("--virtual {}: {e}", dir.display()))?;
    }
    Ok(())
}

#[cfg(not(feature = "virtual-card"))]
fn add_virtual_readers(_readers: &ReaderManager, personas: &[PathBuf]) -> Result<(), String> {
    if personas.is_empty() {
        Ok(())
    } else {
        Err("--virtual needs a build with the virtual-card feature".to_owned())
    }
}

/// `--unpower-cards`: powers off the card of every PC/SC reader the daemon would own.
#[cfg(feature = "pcsc")]
fn unpower_cards(config: Option<&Path>) -> ExitCode {
    let config = match Config::load_or_default(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jpkid: {e}");
            return ExitCode::from(2);
        }
    };
    let ignore: Vec<glob::Pattern> = config
        .readers
        .ignore
        .iter()
        .filter_map(|p| glob::Pattern::new(p).ok())
        .collect();
    // As long as a drain may take: the exchange a killed daemon left running holds the card.
    let deadline = std::time::Instant::now() + config.limits.op_timeout() + STOP_MARGIN;
    let skip = |name: &str| ignore.iter().any(|p| p.matches(name));
    match jpkid::transport::pcsc::unpower_all(skip, deadline) {
        Ok(done) if done.failed.is_empty() => {
            info!(cards = done.cards, "cards powered off");
            ExitCode::SUCCESS
        }
        Ok(done) => {
            error!(
                cards = done.cards,
                readers = ?done.failed,
                "a card could not be powered off: it may still hold a verified PIN; take it out"
            );
            ExitCode::from(1)
        }
        Err(e) => {
            // No pcscd means no card is powered by it either.
            warn!(error = %e, "could not reach the readers to power their cards off");
            ExitCode::SUCCESS
        }
    }
}

#[cfg(not(feature = "pcsc"))]
fn unpower_cards(_config: Option<&Path>) -> ExitCode {
    ExitCode::SUCCESS
}

/// Waits for a signal that ends the daemon — SIGTERM, SIGINT, SIGHUP or SIGQUIT, each of which
/// would otherwise end it without draining — and returns its name.
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let watched = [
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
    ];
    let mut streams = Vec::new();
    for (kind, name) in watched {
        match signal(kind) {
            Ok(s) => streams.push((s, name)),
            Err(e) => warn!(signal = name, error = %e, "cannot watch a signal"),
        }
    }
    if streams.is_empty() {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    }
    let waits = streams.iter_mut().map(|(s, name)| {
        let name: &'static str = name;
        Box::pin(async move {
            s.recv().await;
            name
        })
    });
    futures_util::future::select_all(waits).await.0
}
