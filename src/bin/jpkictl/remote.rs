//! The commands that talk to the daemon: readers, status, pins, cert, sign, verify, monitor;
//! the counter flows are in `counter`.

use std::io::{BufRead, Read};
use std::path::Path;

use futures_util::StreamExt;
use jpkid::api::{CardKind, CardOptions, CertKind, HashAlg, KeyKind, ReaderState, VerifyOptions};
use jpkid::client::{self, BusChoice, Client, ClientError, Connection, Event, Reader};
use serde_json::json;
use sha2::Digest;
use zeroize::Zeroizing;

use crate::counter;
use crate::msg::M;
use crate::out::{self, Ctx, Failure};
use crate::{CertArgs, Command, SecretArgs, SignArgs, VerifyArgs};

/// One reader as the daemon shows it.
#[derive(Debug, Clone)]
pub struct ReaderView {
    pub number: u32,
    pub path: String,
    pub name: String,
    pub state: ReaderState,
    pub card_kind: CardKind,
    pub atr: Vec<u8>,
    pub claimant: String,
    /// Process of the claimant (pid, command line) when the bus tells.
    pub claimant_process: Option<(u32, String)>,
    pub insertions: u32,
}

impl ReaderView {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "reader": self.number,
            "path": self.path,
            "name": self.name,
            "state": self.state.as_str(),
            "card-kind": self.card_kind.as_str(),
            "atr": hex::encode_upper(&self.atr),
            "claimant": self.claimant,
            "claimant-pid": self.claimant_process.as_ref().map(|p| p.0),
            "claimant-command": self.claimant_process.as_ref().map(|p| p.1.clone()),
            "insertions": self.insertions,
        })
    }
}

pub(crate) fn fail(ctx: &Ctx) -> impl Fn(ClientError) -> Failure + '_ {
    move |e| Failure::from_client(&e, ctx.lang)
}

/// Connects and checks that the daemon owns its name or that the bus can start it (exit 3
/// otherwise): with the shipped activation file the first call starts `jpkid.service`.
pub async fn connect(ctx: &Ctx, bus: &BusChoice) -> Result<Connection, Failure> {
    let conn = client::connect(bus).await.map_err(fail(ctx))?;
    if client::daemon_owner(&conn)
        .await
        .map_err(fail(ctx))?
        .is_some()
        || client::daemon_activatable(&conn).await.map_err(fail(ctx))?
    {
        return Ok(conn);
    }
    Err(Failure::from_client(
        &ClientError::NotRunning {
            message: format!("no owner of {} on the {bus} bus", jpkid::api::BUS_NAME),
        },
        ctx.lang,
    ))
}

/// All readers with their properties.
pub async fn readers(conn: &Connection) -> Result<Vec<ReaderView>, ClientError> {
    let daemon = Client::new(conn).await?;
    let mut out = Vec::new();
    for r in daemon.readers().await? {
        let claimant = r.claimant().await?;
        let claimant_process = if claimant.is_empty() {
            None
        } else {
            client::peer_pid(conn, &claimant)
                .await
                .map(|pid| (pid, command_of(pid)))
        };
        out.push(ReaderView {
            number: r.id(),
            path: r.path(),
            name: r.name().await?,
            state: r.state().await?,
            card_kind: r.card_kind().await?,
            atr: r.atr().await?,
            claimant,
            claimant_process,
            insertions: r.insertions().await?,
        });
    }
    Ok(out)
}

/// The reader to use: `--reader N`, else the only ready one (the only one at all if none is
/// ready, so that the daemon names the problem).
pub(crate) async fn pick(
    ctx: &Ctx,
    conn: &Connection,
    wanted: Option<u32>,
) -> Result<(Reader, ReaderView), Failure> {
    pick_besides(ctx, conn, wanted, None).await
}

/// As [`pick`], choosing among the readers other than `besides` (the one a smartphone is in,
/// for `match --sign-reader`) when no reader is named.
pub(crate) async fn pick_besides(
    ctx: &Ctx,
    conn: &Connection,
    wanted: Option<u32>,
    besides: Option<u32>,
) -> Result<(Reader, ReaderView), Failure> {
    let mut all = readers(conn).await.map_err(fail(ctx))?;
    if wanted.is_none() {
        all.retain(|r| Some(r.number) != besides);
    }
    let chosen = match wanted {
        Some(n) => all.iter().find(|r| r.number == n).cloned().ok_or_else(|| {
            Failure::usage(ctx.t(M::NoSuchReader, &[&n.to_string(), &numbers(&all)]))
        })?,
        None => {
            let ready: Vec<&ReaderView> = all
                .iter()
                .filter(|r| r.state == ReaderState::Ready)
                .collect();
            match (ready.as_slice(), all.as_slice()) {
                ([one], _) => (*one).clone(),
                ([], [only]) => only.clone(),
                ([], []) => {
                    return Err(Failure::failed("NoReader", ctx.t(M::NoReaders, &[]))
                        .with_hint(ctx.t(M::HintNoReaders, &[])));
                }
                ([], _) => {
                    return Err(Failure::failed("NoCard", ctx.t(M::NoReadyReader, &[]))
                        .with_hint(ctx.t(M::HintNoCard, &[])));
                }
                (many, _) => {
                    let list: Vec<String> = many.iter().map(|r| r.number.to_string()).collect();
                    return Err(Failure::usage(
                        ctx.t(M::AmbiguousReader, &[&list.join(", ")]),
                    ));
                }
            }
        }
    };
    let reader = Client::new(conn)
        .await
        .map_err(fail(ctx))?
        .reader(chosen.number)
        .await
        .map_err(fail(ctx))?;
    Ok((reader, chosen))
}

/// The options of a card request for the card `view` showed: tied to that very card
/// (`insertion`), so that a PIN typed for it never reaches a card inserted since.
pub(crate) fn card_options(view: &ReaderView, secret: &SecretArgs) -> CardOptions {
    CardOptions {
        allow_last_try: secret.allow_last_try,
        timeout_ms: None,
        insertion: Some(view.insertions),
    }
}

/// The command line of a local process (`/proc/PID/cmdline`), or `?` when hidden.
fn command_of(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".to_owned())
}

fn numbers(all: &[ReaderView]) -> String {
    let v: Vec<String> = all.iter().map(|r| r.number.to_string()).collect();
    if v.is_empty() {
        "-".to_owned()
    } else {
        v.join(", ")
    }
}

/// Asks for a secret: one line of stdin with `--pin-stdin`, else the terminal without echo.
pub(crate) fn secret(ctx: &Ctx, args: &SecretArgs, what: M) -> Result<Zeroizing<Vec<u8>>, Failure> {
    // Room for any PIN up front, so that reading never reallocates (and leaves a copy behind).
    let mut line = Zeroizing::new(String::with_capacity(256));
    if args.pin_stdin {
        // At most the reserved room: a longer line is no PIN (the daemon names the format
        // error), and an endless stdin neither hangs nor grows the buffer.
        std::io::stdin()
            .lock()
            .take(255)
            .read_line(&mut line)
            .map_err(|e| Failure::usage(format!("stdin: {e}")))?;
    } else {
        let prompt = format!("{}: ", ctx.t(what, &[]));
        *line = rpassword::prompt_password(prompt)
            .map_err(|e| Failure::usage(ctx.t(M::NoTerminal, &[&e.to_string()])))?;
    }
    let trimmed = line.trim_end_matches(['\r', '\n']);
    Ok(Zeroizing::new(trimmed.as_bytes().to_vec()))
}

/// Writes an output file, created readable by its owner only: the signing certificate carries
/// the holder's name, address and birth date, and the umask is often 022.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| {
            // A file cut short is not left behind as if it were the whole photo.
            std::io::Write::write_all(&mut f, bytes).inspect_err(|_| {
                let _ = std::fs::remove_file(path);
            })
        })
        .map_err(|e| Failure::failed("io", format!("{}: {}", path.display(), out::chain(&e))))
}

/// Writes a new output file readable by its owner only, never over an existing file or through
/// a link (`O_EXCL|O_NOFOLLOW`): the face photo is personal.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .and_then(|mut f| {
            // A file cut short is not left behind as if it were the whole photo.
            std::io::Write::write_all(&mut f, bytes).inspect_err(|_| {
                let _ = std::fs::remove_file(path);
            })
        })
        .map_err(|e| Failure::failed("io", format!("{}: {}", path.display(), out::chain(&e))))
}

/// Runs a daemon command.
pub async fn run(ctx: &Ctx, bus: &BusChoice, command: Command) -> Result<(), Failure> {
    let conn = connect(ctx, bus).await?;
    match command {
        Command::Readers => cmd_readers(ctx, &conn).await,
        Command::Status => cmd_status(ctx, &conn, bus).await,
        Command::Pins(r) => cmd_pins(ctx, &conn, r.reader).await,
        Command::Cert(a) => cmd_cert(ctx, &conn, a).await,
        Command::Sign(a) => cmd_sign(ctx, &conn, a).await,
        Command::Verify(a) => cmd_verify(ctx, &conn, a).await,
        Command::Monitor => cmd_monitor(ctx, &conn).await,
        Command::Link(a) => counter::link(ctx, &conn, a).await,
        Command::Consent(a) => counter::consent(ctx, &conn, a).await,
        Command::VerifyConsent(a) => counter::verify_consent(ctx, &conn, a).await,
        Command::Match(a) => counter::match_attributes(ctx, &conn, a).await,
        Command::Authenticity(a) => counter::authenticity(ctx, &conn, a).await,
        Command::ConsentPeriod(a) => counter::consent_period(ctx, &conn, a).await,
        Command::ConsentStatus(a) => counter::consent_status(ctx, &conn, a).await,
        Command::LinkRequirement(a) => counter::link_requirement(ctx, &conn, a).await,
        Command::Eligibility(a) => counter::eligibility(ctx, &conn, a).await,
        Command::Check
        | Command::Crl(_)
        | Command::AuditTag { .. }
        | Command::GenerateManual { .. } => Ok(()),
    }
}

fn print_readers(ctx: &Ctx, all: &[ReaderView]) {
    if all.is_empty() {
        outln!("  {}", ctx.t(M::NoReaders, &[]));
    }
    for r in all {
        outln!("  [{}] {}", r.number, r.name);
        outln!(
            "      {}: {}  {}: {}  {}: {}",
            ctx.t(M::State, &[]),
            r.state,
            ctx.t(M::CardKind, &[]),
            r.card_kind,
            ctx.t(M::Insertions, &[]),
            r.insertions
        );
        if !r.atr.is_empty() {
            outln!("      ATR: {}", hex::encode_upper(&r.atr));
        }
        if !r.claimant.is_empty() {
            match &r.claimant_process {
                Some((pid, cmd)) => outln!(
                    "      {}: {} (pid {pid}: {cmd})",
                    ctx.t(M::Claimant, &[]),
                    r.claimant
                ),
                None => outln!("      {}: {}", ctx.t(M::Claimant, &[]), r.claimant),
            }
        }
    }
}

async fn cmd_readers(ctx: &Ctx, conn: &Connection) -> Result<(), Failure> {
    let all = readers(conn).await.map_err(fail(ctx))?;
    if ctx.json {
        ctx.print_json(&json!(
            all.iter().map(ReaderView::to_json).collect::<Vec<_>>()
        ));
    } else {
        outln!("{}", ctx.t(M::ReadersTitle, &[]));
        print_readers(ctx, &all);
    }
    Ok(())
}

async fn cmd_status(ctx: &Ctx, conn: &Connection, bus: &BusChoice) -> Result<(), Failure> {
    let daemon = Client::new(conn).await.map_err(fail(ctx))?;
    let version = daemon.version().await.map_err(fail(ctx))?;
    let hierarchy = daemon.trust_hierarchy().await.map_err(fail(ctx))?;
    let all = readers(conn).await.map_err(fail(ctx))?;
    if ctx.json {
        ctx.print_json(&json!({
            "bus": bus.to_string(),
            "version": version,
            "trust-hierarchy": hierarchy,
            "readers": all.iter().map(ReaderView::to_json).collect::<Vec<_>>(),
        }));
    } else {
        outln!("jpkid {version} ({}: {bus})", ctx.t(M::Bus, &[]));
        outln!("{}: {hierarchy}", ctx.t(M::TrustHierarchy, &[]));
        if hierarchy == "test" {
            outln!("  {}", ctx.t(M::TestHierarchyWarning, &[]));
        }
        outln!("{}", ctx.t(M::ReadersTitle, &[]));
        print_readers(ctx, &all);
    }
    Ok(())
}

async fn cmd_pins(ctx: &Ctx, conn: &Connection, reader: Option<u32>) -> Result<(), Failure> {
    let (r, view) = pick(ctx, conn, reader).await?;
    let pins = r.pin_status().await.map_err(fail(ctx))?;
    let order = [
        ("sign-password", M::SignPassword, Some(pins.sign_password)),
        ("auth-pin", M::AuthPin, Some(pins.auth_pin)),
        ("text-pin", M::TextPin, pins.text_pin),
        ("code-b", M::CodeB, pins.code_b),
    ];
    if ctx.json {
        let mut v = json!({ "reader": view.number });
        for (k, _, n) in order {
            if let Some(n) = n {
                v[k] = json!(n);
            }
        }
        ctx.print_json(&v);
    } else {
        outln!("[{}] {}", view.number, view.name);
        for (_, m, n) in order {
            if let Some(n) = n {
                let note = if n == 0 {
                    format!("  ({})", ctx.t(M::Blocked, &[]))
                } else {
                    String::new()
                };
                outln!(
                    "  {} {}{note}",
                    out::pad(&ctx.t(m, &[]), 28),
                    ctx.t(M::TriesLeft, &[&n.to_string()])
                );
            }
        }
    }
    Ok(())
}

/// Summary of a certificate for display (parsed locally, nothing verified).
fn summary(der: &[u8]) -> Option<serde_json::Value> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(json!({
        "subject": c.subject().to_string(),
        "issuer": c.issuer().to_string(),
        "serial": hex::encode_upper(c.raw_serial()),
        "not-before": c.validity().not_before.timestamp(),
        "not-after": c.validity().not_after.timestamp(),
    }))
}

fn pem(der: &[u8]) -> Result<String, Failure> {
    pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der)
        .map_err(|e| Failure::internal(format!("PEM encoding: {e}")))
}

async fn cmd_cert(ctx: &Ctx, conn: &Connection, a: CertArgs) -> Result<(), Failure> {
    let (r, view) = pick(ctx, conn, a.reader.reader).await?;
    let secret = match a.which {
        CertKind::Sign => secret(ctx, &a.secret, M::PromptSignPassword)?,
        // The Android token guards its auth certificate with the auth PIN.
        CertKind::Auth if view.card_kind == CardKind::Android => {
            secret(ctx, &a.secret, M::PromptAuthPin)?
        }
        _ => Zeroizing::new(Vec::new()),
    };
    let options = card_options(&view, &a.secret);
    let der = r
        .read_certificate(a.which, &secret, &options)
        .await
        .map_err(fail(ctx))?;
    drop(secret);
    let cert = der;
    let der: &[u8] = cert.as_slice();
    if let Some(path) = &a.out {
        if a.pem {
            write_file(path, pem(der)?.as_bytes())?;
        } else {
            write_file(path, der)?;
        }
    }
    let info = summary(der);
    if ctx.json {
        let mut v = json!({
            "reader": view.number,
            "which": a.which.as_str(),
            "der": hex::encode_upper(der),
        });
        if let Some(i) = info {
            v["certificate"] = i;
        }
        if let Some(p) = &a.out {
            v["out"] = json!(p.display().to_string());
        }
        ctx.print_json(&v);
    } else if a.pem && a.out.is_none() {
        out!("{}", pem(der)?);
    } else {
        outln!(
            "{} ({}, {} bytes)",
            ctx.t(M::Certificate, &[]),
            a.which.as_str(),
            der.len()
        );
        if let Some(i) = info {
            print_cert_fields(ctx, &i);
        }
        if let Some(p) = &a.out {
            outln!("  {}", ctx.t(M::WrittenTo, &[&p.display().to_string()]));
        }
    }
    Ok(())
}

fn print_cert_fields(ctx: &Ctx, v: &serde_json::Value) {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let t = |k: &str| v[k].as_i64().map(out::time).unwrap_or_default();
    outln!(
        "  {} {}",
        out::pad(&ctx.t(M::Subject, &[]), 12),
        s("subject")
    );
    outln!("  {} {}", out::pad(&ctx.t(M::Issuer, &[]), 12), s("issuer"));
    outln!("  {} {}", out::pad(&ctx.t(M::Serial, &[]), 12), s("serial"));
    outln!(
        "  {} {}",
        out::pad(&ctx.t(M::NotBefore, &[]), 12),
        t("not-before")
    );
    outln!(
        "  {} {}",
        out::pad(&ctx.t(M::NotAfter, &[]), 12),
        t("not-after")
    );
}

fn hash_file(path: &Path, hash: HashAlg) -> Result<Vec<u8>, Failure> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| Failure::usage(format!("{}: {}", path.display(), out::chain(&e))))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut h256 = sha2::Sha256::new();
    let mut h384 = sha2::Sha384::new();
    let mut h512 = sha2::Sha512::new();
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Failure::usage(format!("{}: {}", path.display(), out::chain(&e))))?;
        if n == 0 {
            break;
        }
        match hash {
            HashAlg::Sha256 => h256.update(&buf[..n]),
            HashAlg::Sha384 => h384.update(&buf[..n]),
            HashAlg::Sha512 => h512.update(&buf[..n]),
        }
    }
    Ok(match hash {
        HashAlg::Sha256 => h256.finalize().to_vec(),
        HashAlg::Sha384 => h384.finalize().to_vec(),
        HashAlg::Sha512 => h512.finalize().to_vec(),
    })
}

async fn cmd_sign(ctx: &Ctx, conn: &Connection, a: SignArgs) -> Result<(), Failure> {
    let digest = match (&a.digest, &a.file) {
        (Some(d), _) => d.0.clone(),
        (None, Some(f)) => hash_file(f, a.hash)?,
        (None, None) => return Err(Failure::usage(ctx.t(M::DigestOrFile, &[]))),
    };
    let (r, view) = pick(ctx, conn, a.reader.reader).await?;
    let prompt = match a.key {
        KeyKind::Sign => M::PromptSignPassword,
        KeyKind::Auth => M::PromptAuthPin,
    };
    let secret = secret(ctx, &a.secret, prompt)?;
    let options = card_options(&view, &a.secret);
    let sig = r
        .sign(a.key, a.hash, &digest, &secret, &options)
        .await
        .map_err(fail(ctx))?;
    drop(secret);
    if let Some(p) = &a.out {
        write_file(p, &sig)?;
    }
    if ctx.json {
        let mut v = json!({
            "reader": view.number,
            "key": a.key.as_str(),
            "hash": a.hash.as_str(),
            "digest": hex::encode(&digest),
            "signature": hex::encode(&sig),
        });
        if let Some(p) = &a.out {
            v["out"] = json!(p.display().to_string());
        }
        ctx.print_json(&v);
    } else if let Some(p) = &a.out {
        outln!("{}", ctx.t(M::WrittenTo, &[&p.display().to_string()]));
    } else {
        outln!("{}", hex::encode(&sig));
    }
    Ok(())
}

/// DER of a certificate file, PEM or DER.
fn read_certificate_file(ctx: &Ctx, path: &Path) -> Result<Vec<u8>, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("{}: {}", path.display(), out::chain(&e))))?;
    if bytes.starts_with(b"-----BEGIN") {
        let (_, p) = x509_parser::pem::parse_x509_pem(&bytes).map_err(|e| {
            Failure::usage(ctx.t(
                M::NotACertificate,
                &[&path.display().to_string(), &e.to_string()],
            ))
        })?;
        return Ok(p.contents);
    }
    Ok(bytes)
}

async fn cmd_verify(ctx: &Ctx, conn: &Connection, a: VerifyArgs) -> Result<(), Failure> {
    let der = read_certificate_file(ctx, &a.file)?;
    let daemon = Client::new(conn).await.map_err(fail(ctx))?;
    let v = daemon
        .verify_certificate(&der, a.purpose, &VerifyOptions { at: a.at })
        .await
        .map_err(fail(ctx))?;
    let status = v.status;
    if ctx.json {
        let mut j = json!({
            "status": status.as_str(),
            "serial": v.serial,
            "subject": v.subject,
            "issuer": v.issuer,
            "root": v.root,
        });
        let optional = [
            ("not-before", v.not_before.map(|t| json!(t))),
            ("not-after", v.not_after.map(|t| json!(t))),
            (
                "revocation-source",
                v.revocation_source.map(|s| json!(s.as_str())),
            ),
            (
                "revocation-reason",
                v.revocation_reason.clone().map(|r| json!(r)),
            ),
            ("revoked-at", v.revoked_at.map(|t| json!(t))),
            (
                "revocation-detail",
                v.revocation_detail.map(|d| json!(d.as_str())),
            ),
        ];
        for (k, value) in optional {
            if let Some(value) = value {
                j[k] = value;
            }
        }
        ctx.print_json(&j);
    } else {
        outln!("{}: {status}", ctx.t(M::VerifyResult, &[]));
        if let Some(m) = crate::msg::status_meaning(status.as_str()) {
            outln!("  {}", ctx.t(m, &[]));
        }
        let time = |t: Option<i64>| t.map(out::time);
        let rows = [
            ("issuer", Some(v.issuer.clone())),
            ("not-after", time(v.not_after)),
            ("not-before", time(v.not_before)),
            ("revocation-reason", v.revocation_reason.clone()),
            (
                "revocation-source",
                v.revocation_source.map(|s| s.as_str().to_owned()),
            ),
            ("revoked-at", time(v.revoked_at)),
            ("root", Some(v.root.clone())),
            ("serial", Some(v.serial.clone())),
            ("subject", Some(v.subject.clone())),
        ];
        for (k, text) in rows {
            if let Some(text) = text {
                outln!("  {k:<18} {text}");
            }
        }
        if let Some(d) = v.revocation_detail {
            let words = ctx.t(crate::msg::revocation_detail_meaning(d), &[]);
            outln!("  {:<18} {}: {words}", "revocation-detail", d.as_str());
        }
    }
    if status == jpkid::api::CertStatus::Valid {
        Ok(())
    } else {
        let mut f = Failure::failed("verify", ctx.t(M::NotValid, &[status.as_str()]));
        f.json_printed = ctx.json;
        Err(f)
    }
}

async fn cmd_monitor(ctx: &Ctx, conn: &Connection) -> Result<(), Failure> {
    let mut events = client::events(conn).await.map_err(fail(ctx))?;
    use tokio::signal::unix::{SignalKind, signal};
    let handler =
        |kind| signal(kind).map_err(|e| Failure::internal(format!("signal handler: {e}")));
    let mut term = handler(SignalKind::terminate())?;
    let mut int = handler(SignalKind::interrupt())?;
    // The starting state, so that the log reads on its own.
    let all = readers(conn).await.map_err(fail(ctx))?;
    for r in &all {
        line(
            ctx,
            "reader",
            &r.path,
            &json!({"state": r.state, "card-kind": r.card_kind, "name": r.name}),
            &format!("{} ({}) {}", r.state, r.card_kind, r.name),
        );
    }
    if !ctx.json {
        eprintln!("{}", ctx.t(M::MonitorReady, &[]));
    }
    loop {
        tokio::select! {
            _ = int.recv() => break,
            _ = term.recv() => break,
            ev = events.next() => match ev {
                None => {
                    return Err(Failure::new(out::EXIT_UNREACHABLE, "unreachable", ctx.t(M::MonitorLost, &[])));
                }
                Some(ev) => show(ctx, ev),
            }
        }
    }
    Ok(())
}

/// Prints one event.
fn show(ctx: &Ctx, ev: Event) {
    match ev {
        Event::ReaderAdded { path } => {
            line(
                ctx,
                "reader-added",
                &path,
                &json!({}),
                &ctx.t(M::ReaderAdded, &[]),
            );
        }
        Event::ReaderRemoved { path } => {
            let text = ctx.t(M::ReaderRemoved, &[]);
            line(ctx, "reader-removed", &path, &json!({}), &text);
        }
        Event::DaemonStopped => {
            let text = ctx.t(M::DaemonStopped, &[]);
            line(ctx, "daemon-stopped", "", &json!({}), &text);
        }
        Event::DaemonStarted { owner } => {
            let text = ctx.t(M::DaemonStarted, &[&owner]);
            line(ctx, "daemon-started", "", &json!({ "owner": owner }), &text);
        }
        Event::StateChanged {
            path,
            old,
            new,
            reason,
        } => {
            let text = format!("{old} -> {new} ({reason})");
            let extra = json!({"old": old.as_str(), "new": new.as_str(), "reason": reason});
            line(ctx, "state-changed", &path, &extra, &text);
        }
        _ => {}
    }
}

/// One line per event: a JSON object with `--json`, else time, reader and text.
fn line(ctx: &Ctx, event: &str, path: &str, extra: &serde_json::Value, text: &str) {
    let number = jpkid::api::reader_id(path);
    let n = number.map_or_else(|| "-".to_owned(), |n| n.to_string());
    if ctx.json {
        let mut v = json!({"time": out::now(), "event": event, "reader": number, "path": path});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        outln!("{v}");
    } else {
        outln!("{} [{n}] {text}", out::time(out::now()));
    }
}
