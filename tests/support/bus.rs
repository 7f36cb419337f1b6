//! A private system-type D-Bus bus whose configuration includes the shipped policy
//! (`systemd/*.conf`), and the `jpkid` binary running on it with virtual readers.
//!
//! Use it from an integration test with
//! ```ignore
//! mod support {
//!     pub mod bus;
//! }
//! ```
//! Everything started here is killed when its handle drops. Nothing sleeps as an assertion:
//! readiness is polled with a deadline.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use zbus::Connection;

/// The bus name of the daemon.
pub const BUS_NAME: &str = "io.jpkid.Jpki1";
/// Path of the Manager object.
pub const MANAGER_PATH: &str = "/io/jpkid/Jpki1";

/// How long start-up may take before a test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Directory of a committed persona (`hw-fixtures/personas/NAME`).
pub fn persona(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hw-fixtures/personas")
        .join(name)
}

/// Directory of the committed test PKI (`hw-fixtures/testpki`).
pub fn testpki() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hw-fixtures/testpki")
}

/// The shipped policy directory (`systemd/`).
pub fn policy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd")
}

/// Makes the group if it does not exist (`groupadd -r -f NAME`; tests run as root).
pub fn ensure_group(name: &str) {
    if nix::unistd::Group::from_name(name).ok().flatten().is_some() {
        return;
    }
    let st = Command::new("groupadd")
        .args(["-r", "-f", name])
        .status()
        .expect("groupadd");
    assert!(st.success(), "groupadd -r -f {name} failed");
}

fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// A private `dbus-daemon` of type system with the project's policy included.
#[derive(Debug)]
pub struct TestBus {
    dir: tempfile::TempDir,
    address: String,
    child: Child,
}

impl TestBus {
    /// Starts the bus; its socket lives in a fresh directory that every user may enter (so that
    /// tests can call as `nobody`).
    pub fn start() -> TestBus {
        let dir = tempfile::Builder::new()
            .prefix("jpkid-bus-")
            .tempdir()
            .unwrap();
        set_mode(dir.path(), 0o755);
        let conf = dir.path().join("bus.conf");
        std::fs::write(&conf, bus_config(dir.path(), &policy_dir())).unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dbus-daemon (Debian package dbus-daemon)");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let address = line.trim().to_owned();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed no address: {line:?}"
        );
        TestBus {
            dir,
            address,
            child,
        }
    }

    /// The bus address (`unix:path=…,guid=…`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A scratch directory that lives as long as the bus.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new client connection (as the test process's user, root).
    pub async fn connect(&self) -> Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .build()
            .await
            .unwrap()
    }

    /// A command whose system bus is this bus (`busctl --system`, `gdbus --system`, python's
    /// `dbus.SystemBus()`): `DBUS_SYSTEM_BUS_ADDRESS` is set.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DBUS_SYSTEM_BUS_ADDRESS", &self.address);
        c
    }

    /// Like [`TestBus::command`], run as `nobody:nogroup` with no supplementary groups, or
    /// with the given ones (`setpriv`).
    pub fn command_as_nobody(&self, groups: &[&str], program: &str) -> Command {
        let mut c = self.command("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup"]);
        if groups.is_empty() {
            c.arg("--clear-groups");
        } else {
            c.arg(format!("--groups={}", groups.join(",")));
        }
        c.arg(program);
        c
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(2));
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The configuration of a private system-type bus (`scripts/private-system-bus.conf.in`, the one
/// `scripts/demo.sh` uses too): the system bus's default policy with the project's policy
/// directory included.
pub fn bus_config(socket_dir: &Path, policy_dir: &Path) -> String {
    include_str!("../../scripts/private-system-bus.conf.in")
        .replace("@LISTEN_DIR@", &socket_dir.display().to_string())
        .replace("@POLICY_DIR@", &policy_dir.display().to_string())
        .replace("@EXTRA@", "")
}

/// What the daemon is started with.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// One virtual reader per persona directory (`--virtual`).
    pub personas: Vec<PathBuf>,
    /// `access.allowed_groups`.
    pub allowed_groups: Vec<String>,
    /// `pin_guard.min_remaining`.
    pub pin_guard_min_remaining: u8,
    /// `limits.claim_idle_s`.
    pub claim_idle_s: u64,
    /// `limits.op_timeout_ms`.
    pub op_timeout_ms: u64,
    /// `limits.queue_depth`.
    pub queue_depth: usize,
    /// `revocation.mode`.
    pub revocation_mode: String,
    /// Import the committed test CRLs into `revocation.crl_dir`.
    pub import_crls: bool,
    /// `audit.enabled`.
    pub audit: bool,
    /// `JPKID_LOG`.
    pub log: String,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Watch the PC/SC readers (inside `scripts/pcsc-ns.sh`); `--no-pcsc` otherwise.
    pub pcsc: bool,
    /// `revocation.ocsp_url`.
    pub ocsp_url: Option<String>,
}

impl Default for DaemonOptions {
    fn default() -> DaemonOptions {
        DaemonOptions {
            personas: vec![persona("ordinary")],
            allowed_groups: vec!["jpki".to_owned()],
            pin_guard_min_remaining: 2,
            claim_idle_s: 120,
            op_timeout_ms: 10_000,
            queue_depth: 4,
            revocation_mode: "prefer".to_owned(),
            import_crls: true,
            audit: true,
            log: "info".to_owned(),
            env: Vec::new(),
            pcsc: false,
            ocsp_url: None,
        }
    }
}

impl DaemonOptions {
    /// The defaults with these personas.
    pub fn with_personas(names: &[&str]) -> DaemonOptions {
        DaemonOptions {
            personas: names.iter().map(|n| persona(n)).collect(),
            ..DaemonOptions::default()
        }
    }
}

/// The `jpkid` binary running on a [`TestBus`] (`--bus ADDRESS [--no-pcsc] --virtual …`), with a
/// test configuration: `trust.hierarchy = "test"` over the committed test roots, CRL indexes
/// of the committed test CRLs.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    stderr_path: PathBuf,
}

impl Daemon {
    /// Writes the configuration, starts the daemon and waits until it owns the bus name.
    pub async fn start(bus: &TestBus, options: DaemonOptions) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("jpkid-daemon-")
            .tempdir()
            .unwrap();
        let config = write_config(dir.path(), &options);
        let stderr_path = dir.path().join("stderr.log");
        let stderr = File::create(&stderr_path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jpkid"));
        cmd.arg("--config")
            .arg(&config)
            .args(["--bus", bus.address()]);
        if !options.pcsc {
            cmd.arg("--no-pcsc");
        }
        for p in &options.personas {
            cmd.arg("--virtual").arg(p);
        }
        cmd.env("JPKID_LOG", &options.log)
            .env_remove("JOURNAL_STREAM")
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        let child = cmd.spawn().expect("jpkid binary");
        let mut daemon = Daemon {
            child,
            dir,
            stderr_path,
        };
        daemon.wait_ready(bus).await;
        daemon
    }

    /// [`Daemon::start`] for tests without an async runtime.
    pub fn start_blocking(bus: &TestBus, options: DaemonOptions) -> Daemon {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(Daemon::start(bus, options))
    }

    async fn wait_ready(&mut self, bus: &TestBus) {
        let conn = bus.connect().await;
        let proxy = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let name = zbus::names::BusName::try_from(BUS_NAME).unwrap();
            if proxy.name_has_owner(name).await.unwrap_or(false) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "jpkid exited with {st} before owning the name:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "jpkid did not own {BUS_NAME} within {START_TIMEOUT:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The daemon's configuration directory (config file, roots, CRL indexes).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the daemon to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and waits for the exit (killed after 10 s).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        terminate(&mut self.child, Duration::from_secs(10))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(2));
    }
}

/// Copies the committed test roots to `DIR/roots`, imports the committed CRLs into
/// `DIR/crl` when asked, and writes `DIR/jpkid.toml`; returns its path.
pub fn write_config(dir: &Path, options: &DaemonOptions) -> PathBuf {
    let roots = dir.join("roots");
    std::fs::create_dir_all(&roots).unwrap();
    for f in [
        "sign_root_g1.der",
        "sign_root_g2.der",
        "auth_root_g1.der",
        "auth_root_g2.der",
    ] {
        std::fs::copy(testpki().join(f), roots.join(f)).unwrap();
    }
    let crl = dir.join("crl");
    std::fs::create_dir_all(&crl).unwrap();
    if options.import_crls {
        let anchors = jpkid::pki::TrustAnchors::load(jpkid::pki::Hierarchy::Test, &roots).unwrap();
        for f in ["sign_g1.crl", "sign_g2.crl", "auth_g1.crl", "auth_g2.crl"] {
            jpkid::pki::crl::import(&testpki().join(f), &crl, &anchors).unwrap();
        }
    }
    let groups = options
        .allowed_groups
        .iter()
        .map(|g| format!("{g:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        r#"[trust]
hierarchy = "test"
roots_dir = "{roots}"
card_ca_dir = "{card_ca}"

[revocation]
mode = "{mode}"
crl_dir = "{crl}"
{ocsp}

[pin_guard]
min_remaining = {guard}

[access]
allowed_groups = [{groups}]

[limits]
op_timeout_ms = {op}
queue_depth = {depth}
claim_idle_s = {idle}

[audit]
enabled = {audit}
"#,
        roots = roots.display(),
        card_ca = testpki().join("card_ca").display(),
        mode = options.revocation_mode,
        crl = crl.display(),
        ocsp = options
            .ocsp_url
            .as_ref()
            .map(|u| format!("ocsp_url = {u:?}"))
            .unwrap_or_default(),
        guard = options.pin_guard_min_remaining,
        op = options.op_timeout_ms,
        depth = options.queue_depth,
        idle = options.claim_idle_s,
        audit = options.audit,
    );
    let path = dir.join("jpkid.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A copy of a committed persona with `[faults]` lines added (e.g. `"delay_ms = 60"`), in a
/// temporary directory that lives as long as the returned handle.
pub fn persona_with_faults(name: &str, faults: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&persona(name), dir.path());
    let toml = dir.path().join("persona.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\n[faults]\n");
    for f in faults {
        text.push_str(f);
        text.push('\n');
    }
    std::fs::write(&toml, text).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The D-Bus error name and message of a failed call.
pub fn error_of(e: &zbus::Error) -> (String, String) {
    use zbus::DBusError;
    match e {
        zbus::Error::MethodError(name, message, _) => {
            (name.to_string(), message.clone().unwrap_or_default())
        }
        zbus::Error::FDO(e) => (
            e.name().to_string(),
            e.description().unwrap_or_default().to_owned(),
        ),
        zbus::Error::DBus(e) => (
            e.name().to_string(),
            e.description().unwrap_or_default().to_owned(),
        ),
        other => (format!("(not a D-Bus error: {other})"), String::new()),
    }
}

/// Polls `check` every 20 ms until it returns `Some`, failing after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
