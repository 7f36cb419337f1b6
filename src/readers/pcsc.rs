//! The PC/SC side of the reader manager: one monitor thread on `SCardGetStatusChange` with the
//! PnP pseudo-reader, which adds and removes readers and tells their workers about cards. When
//! pcscd goes away the monitor drops its readers (their requests end with `ReaderGone`) and
//! re-establishes the context with a back-off, so jpkid survives a pcscd restart.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::time::Duration;

use pcsc::{Context, Error, PNP_NOTIFICATION, ReaderState as PcscReaderState, Scope, State};
use tracing::{debug, info, warn};

use super::{Connector, ReaderManager, WorkerMsg};
use crate::transport::pcsc::{PcscTransport, event_count};
use crate::transport::{CardTransport, Drain, Share, TransportError};

/// How long one status-change wait lasts before the monitor checks for shutdown.
const WAIT: Duration = Duration::from_millis(1000);
/// Longest pause between attempts to reach pcscd.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Starts the monitor thread.
pub(crate) fn spawn_monitor(manager: ReaderManager) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("pcsc-monitor".into())
        .spawn(move || monitor(&manager))
        .map(|_| ())
}

fn monitor(manager: &ReaderManager) {
    let mut backoff = Duration::from_millis(100);
    let mut said_unavailable = false;
    while !manager.is_stopping() {
        match Context::establish(Scope::User) {
            Ok(ctx) => {
                info!("connected to the smart-card service (pcscd)");
                said_unavailable = false;
                backoff = Duration::from_millis(100);
                let ended = watch(manager, &ctx);
                forget_pcsc_readers(manager);
                match ended {
                    Ok(()) => return,
                    Err(e) => warn!(error = %e, "lost the smart-card service; reconnecting"),
                }
            }
            Err(e) => {
                if !said_unavailable {
                    warn!(error = %e, "smart-card service (pcscd) not reachable; retrying");
                    said_unavailable = true;
                }
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The PC/SC readers the monitor added, so they can be dropped when pcscd goes away.
fn forget_pcsc_readers(manager: &ReaderManager) {
    for id in manager.pcsc_reader_ids() {
        manager.remove_reader(id);
    }
}

/// Watches readers and cards until pcscd fails (`Err`) or the manager stops (`Ok`).
fn watch(manager: &ReaderManager, ctx: &Context) -> Result<(), Error> {
    let mut states: Vec<PcscReaderState> =
        vec![PcscReaderState::new(PNP_NOTIFICATION(), State::UNAWARE)];
    let mut ids: BTreeMap<CString, u32> = BTreeMap::new();
    let mut present: BTreeMap<CString, (bool, u32)> = BTreeMap::new();
    sync_readers(manager, ctx, &mut states, &mut ids, &mut present)?;
    while !manager.is_stopping() {
        for s in &mut states {
            s.sync_current_state();
        }
        match ctx.get_status_change(WAIT, &mut states) {
            Ok(()) => {}
            Err(Error::Timeout) => continue,
            Err(Error::UnknownReader) => {
                sync_readers(manager, ctx, &mut states, &mut ids, &mut present)?;
                continue;
            }
            Err(e) => return Err(e),
        }
        let mut relist = false;
        for s in &states {
            if !s.event_state().contains(State::CHANGED) {
                continue;
            }
            if s.name() == PNP_NOTIFICATION() {
                relist = true;
                continue;
            }
            if s.event_state()
                .intersects(State::UNKNOWN | State::UNAVAILABLE | State::IGNORE)
            {
                relist = true;
                continue;
            }
            let name = s.name().to_owned();
            let Some(&id) = ids.get(&name) else { continue };
            // pcscd counts insertions and removals; a card swapped between two waits shows
            // as PRESENT again with a higher count, which is a removal and an insertion.
            let now = (s.event_state().contains(State::PRESENT), s.event_count());
            let before = present.get(&name).copied().unwrap_or((false, 0));
            let swapped = now.0 && before.0 && now.1 != before.1;
            if (!now.0 && before.0) || swapped {
                debug!(reader = id, "card absent");
                manager.notify(id, WorkerMsg::CardRemoved);
            }
            if (now.0 && !before.0) || swapped {
                debug!(reader = id, "card present");
                let atr = s.atr().to_vec();
                manager.notify(id, WorkerMsg::CardInserted { atr });
            }
            present.insert(name, now);
        }
        if relist {
            sync_readers(manager, ctx, &mut states, &mut ids, &mut present)?;
        }
    }
    Ok(())
}

/// Brings the watched set in line with pcscd's reader list: adds new readers (unless ignored)
/// and removes vanished ones.
fn sync_readers(
    manager: &ReaderManager,
    ctx: &Context,
    states: &mut Vec<PcscReaderState>,
    ids: &mut BTreeMap<CString, u32>,
    present: &mut BTreeMap<CString, (bool, u32)>,
) -> Result<(), Error> {
    let names: Vec<CString> = match ctx.list_readers_owned() {
        Ok(n) => n,
        Err(Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(e),
    };
    let gone: Vec<CString> = ids.keys().filter(|n| !names.contains(n)).cloned().collect();
    for name in gone {
        if let Some(id) = ids.remove(&name) {
            manager.remove_reader(id);
        }
        present.remove(&name);
    }
    states.retain(|s| {
        s.name() == PNP_NOTIFICATION() || names.iter().any(|n| n.as_c_str() == s.name())
    });
    for name in names {
        if ids.contains_key(&name) {
            continue;
        }
        let reader_name = name.to_string_lossy().into_owned();
        if manager.is_ignored(&reader_name) {
            debug!(reader = %reader_name, "ignored by readers.ignore");
            continue;
        }
        let connector = PcscConnector {
            context: None,
            reader: name.clone(),
            drain: Drain::default(),
        };
        match manager.add_reader(&reader_name, Box::new(connector), None) {
            Ok(id) => {
                manager.mark_pcsc(id);
                ids.insert(name.clone(), id);
                present.insert(name.clone(), (false, 0));
                states.push(PcscReaderState::new(name, State::UNAWARE));
            }
            Err(e) => warn!(error = %e, reader = %reader_name, "could not start the reader worker"),
        }
    }
    Ok(())
}

/// Connects to the card in one PC/SC reader, with its own context (re-established after pcscd
/// restarts) so the worker never shares a context with the monitor.
struct PcscConnector {
    context: Option<Context>,
    reader: CString,
    drain: Drain,
}

impl PcscConnector {
    fn context(&mut self) -> Result<Context, TransportError> {
        if let Some(ctx) = &self.context
            && ctx.is_valid().is_ok()
        {
            return Ok(ctx.clone());
        }
        let ctx = Context::establish(Scope::User)
            .map_err(|e| TransportError::NoService(Some(Box::new(e))))?;
        self.context = Some(ctx.clone());
        Ok(ctx)
    }

    fn reader(&self) -> &CStr {
        &self.reader
    }
}

impl Connector for PcscConnector {
    fn connect(&mut self, share: Share) -> Result<Box<dyn CardTransport>, TransportError> {
        let ctx = self.context()?;
        match PcscTransport::connect(&ctx, self.reader(), share, self.drain.clone()) {
            Err(TransportError::NoService(_)) => {
                self.context = None;
                let ctx = self.context()?;
                Ok(Box::new(PcscTransport::connect(
                    &ctx,
                    self.reader(),
                    share,
                    self.drain.clone(),
                )?))
            }
            other => Ok(Box::new(other?)),
        }
    }

    fn generation(&mut self) -> Option<u32> {
        let ctx = self.context().ok()?;
        event_count(&ctx, &self.reader).ok()
    }

    fn drain(&self) -> Drain {
        self.drain.clone()
    }
}
