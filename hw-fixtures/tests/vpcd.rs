//! The vpcd client: framing and control bytes against a fake vpcd (always runs), and the real
//! thing through pcscd + vsmartcard-vpcd (`#[ignore]`; run with `scripts/pcsc-ns.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use jpki_vcard::vpcd::{self, Outcome, ServeOptions};
use jpki_vcard::{PinId, VirtualCard};

/// A fake vpcd: listens, accepts the card, then speaks the protocol like vpcd 0.8 (length and
/// body in two writes).
struct FakeVpcd {
    s: TcpStream,
}

impl FakeVpcd {
    fn send(&mut self, body: &[u8]) {
        self.s
            .write_all(&(body.len() as u16).to_be_bytes())
            .unwrap();
        self.s.flush().unwrap();
        self.s.write_all(body).unwrap();
    }
    fn recv(&mut self) -> Option<Vec<u8>> {
        let mut l = [0u8; 2];
        self.s.read_exact(&mut l).ok()?;
        let n = u16::from_be_bytes(l) as usize;
        assert_ne!(n, 0, "the card must never send an empty frame");
        let mut b = vec![0; n];
        self.s.read_exact(&mut b).ok()?;
        Some(b)
    }
    fn apdu(&mut self, hex: &str) -> String {
        self.send(&h(hex));
        hex::encode_upper(self.recv().unwrap())
    }
}

fn start(card: VirtualCard, once: bool) -> (FakeVpcd, vpcd::CardThread, TcpListener) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = vpcd::spawn(
        Arc::new(Mutex::new(card)),
        addr,
        ServeOptions {
            connect_timeout: Duration::from_secs(2),
            once,
            on_connect: None,
        },
    );
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (FakeVpcd { s }, t, l)
}

#[test]
fn framing_control_bytes_and_apdus() {
    let (mut v, t, _l) = start(card(), true);
    v.send(&[0x04]);
    assert_eq!(v.recv().unwrap(), h("3BE000FF8131FE4514"));
    v.send(&[0x01]);
    assert_eq!(v.apdu("00A4040C0AD392F000260100000001"), "9000");
    assert_eq!(v.apdu("0020009B0754455354505731"), "9000");
    // Warm reset: PIN survives, selection does not.
    v.send(&[0x02]);
    assert_eq!(v.apdu("00B0810004"), "6A82");
    assert_eq!(v.apdu("00A4040C0AD392F000260100000001"), "9000");
    assert_eq!(v.apdu("00B0810004").len(), 12);
    // Power off clears it.
    v.send(&[0x00]);
    v.send(&[0x01]);
    assert_eq!(v.apdu("00A4040C0AD392F000260100000001"), "9000");
    assert_eq!(v.apdu("00B0810004"), "6982");
    // Extended response of ~1.8 kB in one frame.
    let r = v.apdu("00B08A00000000");
    assert!(r.len() > 3000 && r.ends_with("9000"));
    assert!(t.card().lock().unwrap().pin_remaining(PinId::Sign) == 5);
    drop(v);
    assert_eq!(t.join().unwrap(), Outcome::Eof);
}

#[test]
fn remove_after_closes_the_connection() {
    let mut c = card();
    c.faults_mut().remove_after = 1;
    let (mut v, t, _l) = start(c, true);
    assert_eq!(v.apdu("00A4040C0AD392F000260100000001"), "9000");
    v.send(&h("00A4040C0AD392F000260100000001"));
    assert_eq!(v.recv(), None);
    assert_eq!(t.join().unwrap(), Outcome::Removed);
}

#[test]
fn mute_answers_nothing_until_power_off() {
    let mut c = card();
    c.faults_mut().mute_after = 1;
    let (mut v, t, _l) = start(c, true);
    assert_eq!(v.apdu("00A4040C0AD392F000260100000001"), "9000");
    v.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    v.send(&h("00A4040C0AD392F000260100000001"));
    assert_eq!(v.recv(), None);
    v.send(&[0x04]);
    assert_eq!(v.recv(), None);
    v.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    v.send(&[0x00]);
    v.send(&[0x01]);
    v.send(&[0x04]);
    assert_eq!(v.recv().unwrap(), h("3BE000FF8131FE4514"));
    assert_eq!(v.apdu("00A4040C0AD392F000260100000001"), "9000");
    assert_eq!(t.remove().unwrap(), Outcome::Stopped);
}

#[test]
fn delay_is_applied_by_the_loop() {
    let mut c = card();
    c.faults_mut().delay_ms = 60;
    let (mut v, t, _l) = start(c, true);
    let t0 = Instant::now();
    assert_eq!(v.apdu("00A4040C0AD392F000260100000001"), "9000");
    assert!(t0.elapsed() >= Duration::from_millis(60));
    assert_eq!(t.remove().unwrap(), Outcome::Stopped);
}

#[test]
fn reconnects_after_eof_unless_once() {
    let (v, t, l) = start(card(), false);
    drop(v);
    // The card comes back to the same listener.
    let (s, _) = l.accept().unwrap();
    let mut v = FakeVpcd { s };
    v.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    v.send(&[0x04]);
    assert_eq!(v.recv().unwrap(), h("3BE000FF8131FE4514"));
    assert_eq!(t.remove().unwrap(), Outcome::Stopped);
}

#[test]
fn connect_timeout_without_vpcd() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let r = vpcd::serve(
        card(),
        addr,
        &ServeOptions {
            connect_timeout: Duration::from_millis(200),
            ..ServeOptions::default()
        },
    );
    assert!(matches!(r, Err(vpcd::VpcdError::Connect { .. })), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Through pcscd + vpcd. Needs a private pcscd (see scripts/pcsc-ns.sh).

const VPCD: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 35963);

fn wait_present(ctx: &pcsc::Context, reader: &std::ffi::CStr, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rs = vec![pcsc::ReaderState::new(reader, pcsc::State::UNAWARE)];
    loop {
        ctx.get_status_change(Duration::from_millis(500), &mut rs)
            .ok();
        let ev = rs[0].event_state();
        if ev.contains(pcsc::State::PRESENT) == present && !ev.contains(pcsc::State::MUTE) {
            return;
        }
        if ev.contains(pcsc::State::PRESENT) && ev.contains(pcsc::State::MUTE) && present {
            // keep waiting for a proper ATR
        }
        assert!(Instant::now() < deadline, "reader state {:?}", ev);
        rs[0].sync_current_state();
    }
}

fn reader0(ctx: &pcsc::Context) -> std::ffi::CString {
    let mut buf = [0u8; 2048];
    let readers: Vec<_> = ctx
        .list_readers(&mut buf)
        .unwrap()
        .map(|r| r.to_owned())
        .collect();
    readers
        .into_iter()
        .find(|r| r.to_string_lossy().starts_with("Virtual PCD 00 00"))
        .expect("no vpcd reader; is pcscd running (scripts/pcsc-ns.sh)?")
}

#[test]
#[ignore = "needs pcscd + vpcd: scripts/pcsc-ns.sh"]
fn pcscd_opensc_names_it_jpki_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    write_persona(dir.path(), &Opts::default());
    let card = Arc::new(Mutex::new(VirtualCard::load(dir.path()).unwrap()));
    let t = vpcd::spawn(card.clone(), VPCD, ServeOptions::default());
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let reader = reader0(&ctx);
    wait_present(&ctx, &reader, true);

    let before = card.lock().unwrap().apdus_seen();
    let out = Command::new("opensc-tool")
        .args(["-r", "0", "-n"])
        .output()
        .unwrap();
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let sent = card.lock().unwrap().apdus_seen() - before;
    eprintln!("opensc-tool -r 0 -n printed {name:?} after {sent} APDUs");
    assert_eq!(
        name,
        "jpki",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new("opensc-tool")
        .args(["-r", "0", "-s", "00A4040C0AD392F000260100000001"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("opensc-tool -s printed {text:?}");
    assert!(text.contains("SW1=0x90, SW2=0x00"), "{text}");

    // Round trip through pcscd + vpcd.
    let c = ctx
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap();
    let mut rbuf = [0u8; 300];
    let sel = h("00A4040C0AD392F000260100000001");
    assert_eq!(c.transmit(&sel, &mut rbuf).unwrap(), &[0x90, 0x00]);
    let n = 1000;
    let t0 = Instant::now();
    for _ in 0..n {
        c.transmit(&sel, &mut rbuf).unwrap();
    }
    let per = t0.elapsed() / n;
    eprintln!("round trip: {per:?} per APDU over {n} SELECTs");
    assert!(per < Duration::from_millis(1), "{per:?}");
    // Extended READ through pcscd.
    let mut big = [0u8; 4000];
    let r = c.transmit(&h("00B08A00000000"), &mut big).unwrap();
    assert!(r.len() > 1500 && r.ends_with(&[0x90, 0x00]));
    // A verified PIN survives SCardReconnect(RESET) (warm reset), not UNPOWER.
    assert_eq!(
        c.transmit(&h("0020009B0754455354505731"), &mut rbuf)
            .unwrap(),
        &[0x90, 0x00]
    );
    let mut c = c;
    c.reconnect(
        pcsc::ShareMode::Shared,
        pcsc::Protocols::ANY,
        pcsc::Disposition::ResetCard,
    )
    .unwrap();
    assert!(card.lock().unwrap().is_verified(PinId::Sign));
    c.reconnect(
        pcsc::ShareMode::Shared,
        pcsc::Protocols::ANY,
        pcsc::Disposition::UnpowerCard,
    )
    .unwrap();
    assert!(!card.lock().unwrap().is_verified(PinId::Sign));
    c.disconnect(pcsc::Disposition::LeaveCard).ok();

    assert_eq!(t.remove().unwrap(), Outcome::Stopped);
    wait_present(&ctx, &reader, false);
}

#[test]
#[ignore = "needs pcscd + vpcd: scripts/pcsc-ns.sh"]
fn pcscd_sees_remove_and_mute() {
    let dir = tempfile::tempdir().unwrap();
    write_persona(dir.path(), &Opts::default());
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let reader = reader0(&ctx);
    let sel = h("00A4040C0AD392F000260100000001");
    let mut rbuf = [0u8; 300];

    // remove_after: the card leaves, transmit fails, the reader becomes empty.
    let mut vc = VirtualCard::load(dir.path()).unwrap();
    vc.faults_mut().remove_after = 1;
    let t = vpcd::spawn(Arc::new(Mutex::new(vc)), VPCD, ServeOptions::default());
    wait_present(&ctx, &reader, true);
    let c = ctx
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap();
    assert_eq!(c.transmit(&sel, &mut rbuf).unwrap(), &[0x90, 0x00]);
    // vpcd 0.8 reports the removal as an empty response (no SW), then the reader empties.
    let r = c.transmit(&sel, &mut rbuf).map(<[u8]>::to_vec);
    eprintln!("transmit after removal: {r:?}");
    assert!(r.map_or(true, |r| r.is_empty()));
    let r = c.transmit(&sel, &mut rbuf).map(<[u8]>::to_vec);
    eprintln!("next transmit after removal: {r:?}");
    assert_eq!(t.join().unwrap(), Outcome::Removed);
    wait_present(&ctx, &reader, false);
    drop(c);

    // mute_after: what pcscd reports.
    let mut vc = VirtualCard::load(dir.path()).unwrap();
    vc.faults_mut().mute_after = 1;
    let t = vpcd::spawn(Arc::new(Mutex::new(vc)), VPCD, ServeOptions::default());
    wait_present(&ctx, &reader, true);
    let c = ctx
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap();
    assert_eq!(c.transmit(&sel, &mut rbuf).unwrap(), &[0x90, 0x00]);
    // vpcd 0.8 has no receive timeout: SCardTransmit to a mute card blocks (and with it the
    // reader) until the card goes away.
    let (tx, rx) = std::sync::mpsc::channel();
    let th = std::thread::spawn(move || {
        let mut rbuf = [0u8; 300];
        let t0 = Instant::now();
        let r = c
            .transmit(&h("00A4040C0AD392F000260100000001"), &mut rbuf)
            .map(<[u8]>::to_vec);
        tx.send((r, t0.elapsed())).ok();
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(3)).is_err(),
        "a mute card answered"
    );
    eprintln!("transmit to a mute card: no answer within 3 s; removing the card");
    let t0 = Instant::now();
    assert_eq!(t.remove().unwrap(), Outcome::Stopped);
    let (r, d) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("transmit still blocked");
    eprintln!(
        "after removal the blocked transmit returned {r:?} ({d:?} in total, {:?} after removal)",
        t0.elapsed()
    );
    assert!(r.map_or(true, |r| r.is_empty()));
    th.join().unwrap();
    wait_present(&ctx, &reader, false);
}

#[test]
#[ignore = "needs pcscd + vpcd: scripts/pcsc-ns.sh"]
fn pcscd_vcard_binary() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    write_persona(dir.path(), &Opts::default());
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let reader = reader0(&ctx);
    let mut child = Command::new(env!("CARGO_BIN_EXE_vcard"))
        .arg("--persona")
        .arg(dir.path())
        .args([
            "--port",
            "35963",
            "--chain-61xx",
            "200",
            "--corrupt",
            "jpki/000B",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    wait_present(&ctx, &reader, true);
    let out = Command::new("opensc-tool")
        .args(["-r", "0", "-n"])
        .output()
        .unwrap();
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    eprintln!("vcard binary: opensc-tool -r 0 -n printed {name:?}");
    assert_eq!(name, "jpki");
    // 61xx chaining is handled by pcscd's clients (the pcsc crate does not: we see 61xx).
    let c = ctx
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap();
    let mut rbuf = [0u8; 300];
    c.transmit(&h("00A4040C0AD392F000260100000001"), &mut rbuf)
        .unwrap();
    assert_eq!(
        c.transmit(&h("00B08A0000"), &mut rbuf).unwrap(),
        &[0x61, 0x00]
    );
    let r = c.transmit(&h("00C0000000"), &mut rbuf).unwrap();
    assert_eq!(r.len(), 202);
    c.disconnect(pcsc::Disposition::LeaveCard).ok();
    // SIGTERM ends it with the card removed.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let st = child.wait().unwrap();
    eprintln!("vcard after SIGTERM: {st:?}");
    assert!(st.success());
    wait_present(&ctx, &reader, false);
}
