//! Where the time of a card request goes through pcscd (BENCHMARKS.md): connect, each flow's
//! APDUs, and the end of the session (left as is, or unpowered after a PIN), measured on the
//! card in `READER` (default "Virtual PCD 00 00") without the daemon around it.
//!
//! `bench_pcsc [N] [READER]` — run inside `scripts/pcsc-ns.sh` with a virtual card inserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::CString;
use std::time::{Duration, Instant};

use jpkid::api::{CardKind, CertKind, HashAlg, KeyKind};
use jpkid::card::Card;
use jpkid::digest::DigestInfo;
use jpkid::flows::{self, CertificateRequest, Flow, ReadCertificate};
use jpkid::jpki::pin::KeySecret;
use jpkid::jpki::{CardInfo, PinGuard};
use jpkid::transport::pcsc::PcscTransport;
use jpkid::transport::{Drain, Share};

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
    let info = CardInfo {
        kind: CardKind::Card,
        label: String::new(),
        has_sign_cert: true,
        has_auth_cert: true,
    };
    type Run = fn(&mut Card<PcscTransport>, &CardInfo, PinGuard);
    let flows: [(&str, Share, Run); 3] = [
        (
            "pin-status (no PIN, session left)",
            Share::Shared,
            |c, i, g| {
                flows::run_on(c, flows::GetPinStatus, i, g).unwrap();
            },
        ),
        (
            "sign with the auth key (PIN, exclusive, session unpowered)",
            Share::Exclusive,
            |c, i, g| {
                let sign = flows::Sign {
                    secret: KeySecret::new(KeyKind::Auth, b"1234").unwrap(),
                    digest: DigestInfo::new(HashAlg::Sha256, &[1; 32]).unwrap(),
                };
                assert!(sign.presents_pin());
                flows::run_on(c, sign, i, g).unwrap();
            },
        ),
        (
            "read auth certificate (no PIN)",
            Share::Shared,
            |c, i, g| {
                let read = ReadCertificate(CertificateRequest::new(CertKind::Auth, b"").unwrap());
                flows::run_on(c, read, i, g).unwrap();
            },
        ),
    ];
    for (name, share, flow) in flows {
        let (mut connect, mut work, mut end, mut total) = (vec![], vec![], vec![], vec![]);
        let mut apdus = 0;
        for _ in 0..n {
            let t0 = Instant::now();
            let t = PcscTransport::connect(&ctx, &reader, share, Drain::default()).unwrap();
            let t1 = Instant::now();
            let mut card = Card::with_deadline(t, None, t1 + Duration::from_secs(5));
            flow(&mut card, &info, guard);
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
