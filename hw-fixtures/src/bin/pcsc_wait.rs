//! `pcsc-wait`: waits until a PC/SC reader shows a card (`present`) or none (`empty`), through
//! `SCardGetStatusChange` rather than a sleep, so scripts follow pcscd's own view (its 400 ms
//! poll of vpcd included). Exit 0 when reached, 1 on timeout, 2 on a usage or PC/SC error.

use std::ffi::CString;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use pcsc::{Context, ReaderState, Scope, State};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Want {
    Present,
    Empty,
}

#[derive(Debug, Parser)]
#[command(about = "Wait until a PC/SC reader shows a card or none")]
struct Args {
    /// `present` or `empty`.
    want: Want,
    /// Reader name; default the vpcd slot given by --slot.
    #[arg(long)]
    reader: Option<String>,
    /// vpcd slot (0 = "Virtual PCD 00 00", 1 = "Virtual PCD 00 01").
    #[arg(long, default_value_t = 0)]
    slot: u8,
    /// Seconds to wait.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let name = args
        .reader
        .unwrap_or_else(|| format!("Virtual PCD 00 {:02}", args.slot));
    let Ok(name) = CString::new(name) else {
        eprintln!("pcsc-wait: reader name contains NUL");
        return ExitCode::from(2);
    };
    let ctx = match Context::establish(Scope::User) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pcsc-wait: pcscd not reachable: {e}");
            return ExitCode::from(2);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut states = [ReaderState::new(name.clone(), State::UNAWARE)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ctx.get_status_change(left.min(Duration::from_millis(500)), &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            // The reader is not there yet (pcscd still loading the driver): ask again.
            Err(pcsc::Error::UnknownReader) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                eprintln!("pcsc-wait: {e}");
                return ExitCode::from(2);
            }
        }
        let ev = states[0].event_state();
        let present = ev.contains(State::PRESENT);
        let known = !ev.intersects(State::UNKNOWN | State::UNAVAILABLE) && !ev.is_empty();
        if known && present == (args.want == Want::Present) {
            return ExitCode::SUCCESS;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "pcsc-wait: {name:?} not {:?} after {} s",
                args.want, args.timeout
            );
            return ExitCode::from(1);
        }
        states[0].sync_current_state();
    }
}
