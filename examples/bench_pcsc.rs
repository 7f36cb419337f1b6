//! Where the time of a card request goes through pcscd (BENCHMARKS.md): connect, each flow's
//! APDUs, and the end of the session (left as is, or unpowered after a PIN), measured on the
//! card in `READER` (default "Virtual PCD 00 00") without the daemon around it.
//!
//! `bench_pcsc [N] [READER]` — run inside `scripts/pcsc-ns.sh` with a virtual card inserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::CString;
use std::time::{Duration, Instant};

use jpkid::card::Card;
use jpkid::flows;
use jpkid::jpki::PinGuard;
use jpkid::jpki::ap::{HashAlg, KeyKind};
use jpkid::transport::pcsc::PcscTransport;

fn p50(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().map_or(100, |a| a.parse().unwrap());
    let reader = CString::new(args.get(1).map_or("Virtual PCD 00 00", String::as_str)).unwrap();
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let guard = PinGuard {
        min_remaining: 2,
        allow_last_try: false,
    };
    type Flow = fn(&mut Card<PcscTransport>, PinGuard);
    let flows: [(&str, Flow); 3] = [
        ("pin-status (no PIN, session left)", |c, _| {
            flows::pin_status(c).unwrap();
        }),
        ("sign with the auth key (PIN, session unpowered)", |c, g| {
            flows::sign(c, KeyKind::Auth, HashAlg::Sha256, &[1; 32], b"1234", g).unwrap();
        }),
        ("read auth certificate (no PIN)", |c, g| {
            flows::read_certificate(c, jpkid::jpki::CertKind::Auth, b"", g).unwrap();
        }),
    ];
    for (name, flow) in flows {
        let (mut connect, mut work, mut end, mut total) = (vec![], vec![], vec![], vec![]);
        let mut apdus = 0;
        for _ in 0..n {
            let t0 = Instant::now();
            let t = PcscTransport::connect(&ctx, &reader, Duration::from_secs(5)).unwrap();
            let t1 = Instant::now();
            let mut card = Card::new(t, None);
            flow(&mut card, guard);
            apdus = card.apdu_count();
            let t2 = Instant::now();
            flows::finish(card).unwrap();
            let t3 = Instant::now();
            connect.push(t1 - t0);
            work.push(t2 - t1);
            end.push(t3 - t2);
            total.push(t3 - t0);
        }
        println!(
            "{name}: {apdus} APDUs; p50 connect {:.2} ms, APDUs {:.2} ms, end {:.2} ms, total {:.2} ms",
            p50(connect),
            p50(work),
            p50(end),
            p50(total)
        );
    }
}
