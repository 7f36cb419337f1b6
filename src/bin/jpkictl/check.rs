//! `jpkictl check`: a step-by-step diagnosis for a technician. Every step prints OK, NG or SKIP
//! with the likely cause and the remedy. Nothing here sends an APDU: the daemon owns the
//! readers; PC/SC is asked only for the reader list and each reader's state and ATR.

use std::path::Path;

use jpkid::api::ReaderState;
use jpkid::client::{self, BusChoice};
use jpkid::config::Config;
use jpkid::pki::{Hierarchy, Purpose, RevocationMode, TrustAnchors};
use serde_json::json;

use crate::crl;
use crate::msg::M;
use crate::out::{self, Ctx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Ng,
    Skip,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Ng => "NG",
            Verdict::Skip => "SKIP",
        }
    }
}

/// The steps so far; printed as they come (human) or at the end (JSON).
struct Report<'a> {
    ctx: &'a Ctx,
    steps: Vec<serde_json::Value>,
    ng: usize,
}

impl Report<'_> {
    fn step(
        &mut self,
        id: &str,
        title: &str,
        verdict: Verdict,
        detail: &str,
        remedy: Option<&str>,
    ) {
        if verdict == Verdict::Ng {
            self.ng += 1;
        }
        if self.ctx.json {
            let mut v =
                json!({"step": id, "title": title, "result": verdict.as_str(), "detail": detail});
            if let Some(r) = remedy {
                v["remedy"] = json!(r);
            }
            self.steps.push(v);
            return;
        }
        outln!("[{:<4}] {title}: {detail}", verdict.as_str());
        if let Some(r) = remedy {
            outln!("       -> {r}");
        }
    }

    fn ok(&mut self, id: &str, title: M, detail: &str) {
        let t = self.ctx.t(title, &[]);
        self.step(id, &t, Verdict::Ok, detail, None);
    }

    fn ng(&mut self, id: &str, title: M, detail: &str, remedy: &str) {
        let t = self.ctx.t(title, &[]);
        self.step(id, &t, Verdict::Ng, detail, Some(remedy));
    }

    fn skip(&mut self, id: &str, title: M, detail: &str, remedy: Option<&str>) {
        let t = self.ctx.t(title, &[]);
        self.step(id, &t, Verdict::Skip, detail, remedy);
    }
}

/// Runs every step; returns the exit code (0 all OK/SKIP, 1 any NG).
pub fn run(ctx: &Ctx, config_path: Option<&Path>, bus: &BusChoice) -> u8 {
    let mut r = Report {
        ctx,
        steps: Vec::new(),
        ng: 0,
    };
    let t = |m: M, a: &[&str]| ctx.t(m, a);

    // 1. Configuration.
    let shown = config_path.map_or_else(
        || jpkid::config::DEFAULT_PATH.to_owned(),
        |p| p.display().to_string(),
    );
    let config = match Config::load_or_default(config_path) {
        Ok(c) => {
            let detail =
                if config_path.is_none() && !Path::new(jpkid::config::DEFAULT_PATH).exists() {
                    t(M::CheckConfigDefaults, &[&shown])
                } else {
                    shown.clone()
                };
            r.ok("config", M::CheckConfig, &detail);
            c
        }
        Err(e) => {
            r.ng(
                "config",
                M::CheckConfig,
                &out::chain(&e),
                &t(M::HintConfig, &[]),
            );
            Config::default()
        }
    };

    // 2. Clock, and installed CRL indexes (needed by the clock step).
    let now = out::now();
    let indexes = crl::list(&config.revocation.crl_dir, now);
    let newest_this_update = indexes.as_ref().ok().and_then(|l| {
        l.iter()
            .filter_map(|i| i.as_ref().ok())
            .map(|i| i.this_update)
            .max()
    });
    let year = time::OffsetDateTime::from_unix_timestamp(now).map_or(0, |d| d.year());
    if year < 2025 {
        r.ng(
            "clock",
            M::CheckClock,
            &out::time(now),
            &t(M::HintClock, &[]),
        );
    } else if let Some(tu) = newest_this_update.filter(|tu| now < *tu) {
        r.ng(
            "clock",
            M::CheckClock,
            &t(M::ClockBeforeCrl, &[&out::time(now), &out::time(tu)]),
            &t(M::HintClock, &[]),
        );
    } else {
        r.ok("clock", M::CheckClock, &out::time(now));
    }

    // 3. Trust roots.
    let roots_dir = config.trust.roots_dir.display().to_string();
    let anchors = match TrustAnchors::load(config.trust.hierarchy, &config.trust.roots_dir) {
        Ok(a) => {
            let count = |p: Purpose| a.anchors().iter().filter(|x| x.purpose() == p).count();
            let (s, au) = (count(Purpose::Sign), count(Purpose::Auth));
            let pinned = a.anchors().iter().all(|x| x.is_pinned());
            let kind = match config.trust.hierarchy {
                Hierarchy::Production if pinned => t(M::Pinned, &[]),
                Hierarchy::Production => t(M::NotPinned, &[]),
                Hierarchy::Test => t(M::TestUnpinned, &[]),
            };
            let detail = t(
                M::RootsFound,
                &[&s.to_string(), &au.to_string(), &kind, &roots_dir],
            );
            if s == 0 || au == 0 {
                r.ng(
                    "roots",
                    M::CheckRoots,
                    &detail,
                    &t(M::HintRoots, &[&roots_dir]),
                );
            } else {
                r.ok("roots", M::CheckRoots, &detail);
            }
            for rej in a.rejected() {
                r.ng(
                    "roots",
                    M::CheckRootRejected,
                    &format!("{}: {}", rej.path.display(), rej.reason),
                    &t(M::HintRootRejected, &[]),
                );
            }
            Some(a)
        }
        Err(e) => {
            r.ng(
                "roots",
                M::CheckRoots,
                &out::chain(&e),
                &t(M::HintRoots, &[&roots_dir]),
            );
            None
        }
    };

    // 4. CRL indexes.
    let crl_dir = config.revocation.crl_dir.display().to_string();
    match (&indexes, config.revocation.mode) {
        (_, RevocationMode::Off) => r.skip("crl", M::CheckCrl, &t(M::CrlOff, &[]), None),
        (Err(e), _) => r.ng(
            "crl",
            M::CheckCrl,
            &format!("{crl_dir}: {e}"),
            &t(M::HintCrlDir, &[&crl_dir]),
        ),
        (Ok(list), _) if list.is_empty() => {
            let remedy = t(M::HintCrlNone, &[]);
            if config.revocation.ocsp_url.is_some() {
                r.skip(
                    "crl",
                    M::CheckCrl,
                    &t(M::CrlNoneOcsp, &[&crl_dir]),
                    Some(&remedy),
                );
            } else {
                r.ng("crl", M::CheckCrl, &t(M::CrlNone, &[]), &remedy);
            }
        }
        (Ok(list), _) => {
            for item in list {
                match item {
                    Ok(i) => {
                        let who = anchors
                            .as_ref()
                            .and_then(|a| {
                                hex::decode(&i.issuer_key_id).ok().and_then(|k| {
                                    a.by_key_id(&k).map(|x| x.purpose().as_str().to_owned())
                                })
                            })
                            .unwrap_or_else(|| "?".to_owned());
                        let detail = t(
                            M::CrlLine,
                            &[
                                &i.issuer_key_id,
                                &who,
                                &out::time(i.next_update),
                                &i.entries.to_string(),
                            ],
                        );
                        if i.stale && !config.revocation.accept_stale_crl {
                            r.ng("crl", M::CheckCrlStale, &detail, &t(M::HintStale, &[]));
                        } else {
                            r.ok("crl", M::CheckCrl, &detail);
                        }
                    }
                    Err((p, why)) => r.ng(
                        "crl",
                        M::CheckCrl,
                        &format!("{}: {why}", p.display()),
                        &t(M::HintCrlImport, &[]),
                    ),
                }
            }
        }
    }

    // 4b. The OCSP responder, when one is configured: reachable within a few seconds? (An empty
    // request gets an HTTP error from a live responder: that is an answer.)
    if let Some(url) = &config.revocation.ocsp_url {
        use jpkid::pki::ocsp::{Fetch, FetchError};
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        match jpkid::http::HttpFetch.post(url, &[], deadline) {
            Ok(_) | Err(FetchError::Http | FetchError::TooLarge) => {
                r.ok("ocsp", M::CheckOcsp, url);
            }
            Err(e) => r.ng(
                "ocsp",
                M::CheckOcsp,
                &format!("{url}: {e}"),
                &t(M::DetailOcspUnreachable, &[]),
            ),
        }
    }

    // 5. USB readers (sysfs).
    usb_steps(&mut r);

    // 6–8. PC/SC.
    pcsc_steps(&mut r);

    // 9–10. The daemon.
    daemon_steps(&mut r, bus, config.trust.hierarchy);

    if ctx.json {
        ctx.print_json(&json!({"ng": r.ng, "steps": r.steps}));
    } else if r.ng == 0 {
        outln!("{}", t(M::CheckAllOk, &[]));
    } else {
        outln!("{}", t(M::CheckSomeNg, &[&r.ng.to_string()]));
    }
    if r.ng == 0 { 0 } else { out::EXIT_FAILED }
}

fn usb_steps(r: &mut Report<'_>) {
    let ctx = r.ctx;
    let t = |m: M, a: &[&str]| ctx.t(m, a);
    let Some(found) = crate::usb::scan() else {
        r.skip("usb", M::CheckUsb, &t(M::UsbNoBus, &[]), None);
        return;
    };
    if found.is_empty() {
        r.skip(
            "usb",
            M::CheckUsb,
            &t(M::UsbNone, &[]),
            Some(&t(M::HintNoReaders, &[])),
        );
        return;
    }
    for u in found {
        let detail = format!("{} {}", u.id, u.name);
        match u.unsupported {
            Some(what) => r.ng(
                "usb",
                M::CheckUsb,
                &t(M::UsbNotPcsc, &[&detail, what]),
                &t(M::HintNotPcsc, &[]),
            ),
            None => r.ok("usb", M::CheckUsb, &t(M::UsbCcid, &[&detail])),
        }
    }
}

#[cfg(feature = "pcsc")]
fn pcsc_steps(r: &mut Report<'_>) {
    use std::time::Duration;

    use pcsc::{Context, Error, ReaderState, Scope, State};

    let ctx = r.ctx;
    let t = |m: M, a: &[&str]| ctx.t(m, a);
    let pc = match Context::establish(Scope::User) {
        Ok(c) => {
            r.ok("pcscd", M::CheckPcscd, &t(M::PcscdUp, &[]));
            c
        }
        Err(e) => {
            let remedy = match e {
                Error::NoService | Error::ServiceStopped => t(M::HintPcscd, &[]),
                Error::NoAccess | Error::SecurityViolation => t(M::HintPolkit, &[]),
                _ => t(M::HintPcscd, &[]),
            };
            r.ng("pcscd", M::CheckPcscd, &e.to_string(), &remedy);
            r.skip(
                "pcsc-readers",
                M::CheckPcscReaders,
                &t(M::SkippedAbove, &[]),
                None,
            );
            return;
        }
    };
    let names = match pc.list_readers_owned() {
        Ok(n) => n,
        Err(Error::NoReadersAvailable) => Vec::new(),
        Err(e) => {
            r.ng(
                "pcsc-readers",
                M::CheckPcscReaders,
                &e.to_string(),
                &t(M::HintNoReaders, &[]),
            );
            return;
        }
    };
    if names.is_empty() {
        // A CCID reader on USB that pcscd does not list: the driver is missing.
        let ccid_on_usb = crate::usb::scan().is_some_and(|l| l.iter().any(|u| u.ccid));
        let remedy = if ccid_on_usb {
            t(M::HintLibccid, &[])
        } else {
            t(M::HintNoReaders, &[])
        };
        r.ng(
            "pcsc-readers",
            M::CheckPcscReaders,
            &t(M::NoReaders, &[]),
            &remedy,
        );
        return;
    }
    let list: Vec<String> = names
        .iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    r.ok("pcsc-readers", M::CheckPcscReaders, &list.join(", "));
    let mut states: Vec<ReaderState> = names
        .into_iter()
        .map(|n| ReaderState::new(n, State::UNAWARE))
        .collect();
    if let Err(e) = pc.get_status_change(Duration::from_millis(0), &mut states) {
        r.ng("card", M::CheckCard, &e.to_string(), &t(M::HintPcscd, &[]));
        return;
    }
    for s in &states {
        let name = s.name().to_string_lossy().into_owned();
        let ev = s.event_state();
        if ev.contains(State::MUTE) {
            r.ng(
                "card",
                M::CheckCard,
                &t(M::CardMute, &[&name]),
                &t(M::HintTimeout, &[]),
            );
        } else if ev.contains(State::PRESENT) {
            let mut detail = t(M::CardPresent, &[&name, &hex::encode_upper(s.atr())]);
            if ev.contains(State::EXCLUSIVE) {
                detail.push_str(&t(M::CardExclusive, &[]));
            }
            r.ok("card", M::CheckCard, &detail);
        } else if ev.contains(State::UNAVAILABLE) {
            r.ng(
                "card",
                M::CheckCard,
                &t(M::ReaderUnavailable, &[&name]),
                &t(M::HintNoReaders, &[]),
            );
        } else {
            r.skip(
                "card",
                M::CheckCard,
                &t(M::CardAbsent, &[&name]),
                Some(&t(M::HintNoCard, &[])),
            );
        }
    }
}

#[cfg(not(feature = "pcsc"))]
fn pcsc_steps(r: &mut Report<'_>) {
    let d = r.ctx.t(M::NoPcscFeature, &[]);
    r.skip("pcscd", M::CheckPcscd, &d, None);
}

fn daemon_steps(r: &mut Report<'_>, bus: &BusChoice, local: Hierarchy) {
    let ctx = r.ctx;
    let t = |m: M, a: &[&str]| ctx.t(m, a);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            r.ng(
                "daemon",
                M::CheckDaemon,
                &e.to_string(),
                &t(M::HintInternal, &[]),
            );
            return;
        }
    };
    rt.block_on(async {
        let conn = match client::connect(bus).await {
            Ok(c) => c,
            Err(e) => {
                r.ng(
                    "daemon",
                    M::CheckDaemon,
                    &out::chain(&e),
                    &t(M::HintBus, &[&bus.to_string()]),
                );
                return;
            }
        };
        match client::daemon_owner(&conn).await {
            Ok(Some(owner)) => {
                let props = async {
                    let daemon = client::Client::new(&conn).await?;
                    let v = daemon.version().await?;
                    let h = daemon.trust_hierarchy().await?;
                    Ok::<_, client::ClientError>((v, h))
                };
                match props.await {
                    Ok((v, h)) => {
                        r.ok(
                            "daemon",
                            M::CheckDaemon,
                            &t(M::DaemonUp, &[&v, &owner, &bus.to_string()]),
                        );
                        let local = match local {
                            Hierarchy::Production => "production",
                            Hierarchy::Test => "test",
                        };
                        if h != local {
                            r.ng(
                                "daemon",
                                M::CheckDaemonHierarchy,
                                &t(M::HierarchyDiffers, &[&h, local]),
                                &t(M::HintHierarchy, &[]),
                            );
                        }
                    }
                    Err(e) => {
                        let f = out::Failure::from_client(&e, ctx.lang);
                        r.ng(
                            "daemon",
                            M::CheckDaemon,
                            &out::chain(&e),
                            &f.hint.clone().unwrap_or_else(|| t(M::HintInternal, &[])),
                        );
                        return;
                    }
                }
            }
            Ok(None) if client::daemon_activatable(&conn).await.unwrap_or(false) => {
                r.ok(
                    "daemon",
                    M::CheckDaemon,
                    &t(
                        M::DaemonActivatable,
                        &[&bus.to_string(), jpkid::api::BUS_NAME],
                    ),
                );
                return;
            }
            Ok(None) => {
                r.ng(
                    "daemon",
                    M::CheckDaemon,
                    &t(M::DaemonAbsent, &[jpkid::api::BUS_NAME, &bus.to_string()]),
                    &t(M::HintNotRunning, &[]),
                );
                return;
            }
            Err(e) => {
                r.ng(
                    "daemon",
                    M::CheckDaemon,
                    &out::chain(&e),
                    &t(M::HintBus, &[&bus.to_string()]),
                );
                return;
            }
        }
        match crate::remote::readers(&conn).await {
            Err(e) => {
                let f = out::Failure::from_client(&e, ctx.lang);
                r.ng(
                    "daemon-readers",
                    M::CheckDaemonReaders,
                    &out::chain(&e),
                    &f.hint.clone().unwrap_or_else(|| t(M::HintInternal, &[])),
                );
            }
            Ok(list) if list.is_empty() => {
                r.ng(
                    "daemon-readers",
                    M::CheckDaemonReaders,
                    &t(M::NoReaders, &[]),
                    &t(M::HintDaemonNoReaders, &[]),
                );
            }
            Ok(list) => {
                for v in list {
                    let mut detail =
                        format!("[{}] {}: {} / {}", v.number, v.name, v.state, v.card_kind);
                    if let Some((pid, cmd)) = &v.claimant_process {
                        detail.push_str(&t(M::ClaimedBy, &[&v.claimant, &pid.to_string(), cmd]));
                    }
                    match v.state {
                        ReaderState::Mute => r.ng(
                            "daemon-readers",
                            M::CheckDaemonReaders,
                            &detail,
                            &t(M::HintTimeout, &[]),
                        ),
                        ReaderState::Unsupported => r.ng(
                            "daemon-readers",
                            M::CheckDaemonReaders,
                            &detail,
                            &t(M::HintNotJpki, &[]),
                        ),
                        ReaderState::Empty => r.skip(
                            "daemon-readers",
                            M::CheckDaemonReaders,
                            &detail,
                            Some(&t(M::HintNoCard, &[])),
                        ),
                        _ => r.ok("daemon-readers", M::CheckDaemonReaders, &detail),
                    }
                }
            }
        }
    });
}
