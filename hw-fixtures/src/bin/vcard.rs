//! `vcard`: a virtual My Number Card plugged into pcscd through vsmartcard-vpcd.
//!
//! Connects to vpcd as a TCP client (retrying while it does not listen), answers control bytes
//! and APDUs until the card is removed (fault `remove-after`), vpcd closes the connection, or
//! SIGTERM / SIGINT arrives (exit 0; the kernel closes the socket and pcscd sees the card
//! removed). Prints one line, `ready`, on stdout when connected.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use jpki_vcard::VirtualCard;
use jpki_vcard::vpcd::{self, Outcome, ServeOptions};

#[derive(Debug, Parser)]
#[command(about = "Virtual My Number Card for pcscd's vpcd driver")]
struct Args {
    /// Persona directory (hw-fixtures/personas/<name>).
    #[arg(long)]
    persona: PathBuf,
    /// vpcd port: 35963 = "Virtual PCD 00 00", 35964 = "Virtual PCD 00 01".
    #[arg(long, default_value_t = vpcd::DEFAULT_PORT)]
    port: u16,
    /// vpcd host.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Seconds to keep retrying the connection while vpcd does not listen.
    #[arg(long, default_value_t = 10)]
    connect_timeout: u64,
    /// The card disappears after N APDUs (overrides the persona).
    #[arg(long)]
    remove_after: Option<u64>,
    /// The card goes mute after N APDUs (overrides the persona).
    #[arg(long)]
    mute_after: Option<u64>,
    /// Delay before every answer, ms (overrides the persona).
    #[arg(long)]
    delay_ms: Option<u64>,
    /// Extra delay before the answer to COMPUTE DIGITAL SIGNATURE, ms (overrides the persona).
    #[arg(long)]
    sign_delay_ms: Option<u64>,
    /// The first APDU after power-on answers 6F00.
    #[arg(long)]
    sw_6f00_after_power_on: bool,
    /// Answers longer than N bytes come as 61xx + GET RESPONSE (overrides the persona).
    #[arg(long)]
    chain_61xx: Option<usize>,
    /// Corrupt this card file, e.g. jpki/000A or visual/0002 (repeatable; adds to the persona's list).
    #[arg(long)]
    corrupt: Vec<String>,
    /// Exit when vpcd closes the connection instead of waiting for it to come back.
    #[arg(long)]
    once: bool,
}

/// Blocks SIGTERM and SIGINT in every thread and waits for them on a dedicated one (sigwait:
/// no unsafe signal handler needed), then exits 0.
fn exit_on_signal() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        if set.wait().is_ok() {
            std::process::exit(0);
        }
    });
}

fn main() -> ExitCode {
    let args = Args::parse();
    exit_on_signal();
    let mut card = match VirtualCard::load(&args.persona) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vcard: {}", chain(&e));
            return ExitCode::from(2);
        }
    };
    for name in &args.corrupt {
        if jpki_vcard::persona::parse_file_name(name).is_none() {
            eprintln!("vcard: --corrupt {name:?}: expected e.g. jpki/000A, text/0002, visual/0002");
            return ExitCode::from(2);
        }
    }
    let f = card.faults_mut();
    if let Some(n) = args.remove_after {
        f.remove_after = n;
    }
    if let Some(n) = args.mute_after {
        f.mute_after = n;
    }
    if let Some(n) = args.delay_ms {
        f.delay_ms = n;
    }
    if let Some(n) = args.sign_delay_ms {
        f.sign_delay_ms = n;
    }
    if args.sw_6f00_after_power_on {
        f.sw_6f00_after_power_on = true;
    }
    if let Some(n) = args.chain_61xx {
        f.chain_61xx = n;
    }
    f.corrupt.extend(args.corrupt.iter().cloned());
    card.power_on();
    let opts = ServeOptions {
        connect_timeout: Duration::from_secs(args.connect_timeout),
        once: args.once,
        on_connect: Some(|| println!("ready")),
    };
    match vpcd::serve(card, SocketAddr::new(args.host, args.port), &opts) {
        Ok(Outcome::Removed | Outcome::Eof | Outcome::Stopped) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vcard: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
