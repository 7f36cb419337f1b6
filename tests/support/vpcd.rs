//! Virtual cards plugged into pcscd's vpcd slots, and a second PC/SC client (the "other
//! application" of an attack), for the tests that run inside `scripts/pcsc-ns.sh`.
//!
//! ```ignore
//! mod support {
//!     pub mod vpcd;
//! }
//! ```

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::{CStr, CString};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jpki_vcard::VirtualCard;
use jpki_vcard::vpcd::{self, CardThread, ServeOptions};

/// Fails unless the test runs in the private namespace of `scripts/pcsc-ns.sh`.
pub fn require_namespace() {
    assert_eq!(
        std::env::var("JPKID_PCSC_NS").as_deref(),
        Ok("inside"),
        "run through scripts/pcsc-ns.sh (a private pcscd per namespace)"
    );
}

/// The PC/SC name of vpcd slot `slot`.
pub fn reader_name(slot: u8) -> CString {
    CString::new(format!("Virtual PCD 00 {slot:02}")).unwrap()
}

fn vpcd_addr(slot: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], vpcd::DEFAULT_PORT + u16::from(slot)))
}

/// The card of a committed persona.
pub fn card(name: &str) -> VirtualCard {
    VirtualCard::load(&jpki_vcard::persona_dir(name)).unwrap()
}

/// The card of a persona directory.
pub fn card_at(dir: &Path) -> VirtualCard {
    VirtualCard::load(dir).unwrap()
}

/// Plugs a card into a vpcd slot and waits, through PC/SC, until pcscd shows it.
pub fn insert(ctx: &pcsc::Context, slot: u8, card: VirtualCard) -> CardThread {
    let opts = ServeOptions {
        connect_timeout: Duration::from_secs(10),
        once: true,
        on_connect: None,
    };
    let t = vpcd::spawn(Arc::new(Mutex::new(card)), vpcd_addr(slot), opts);
    wait_present(ctx, &reader_name(slot), true);
    t
}

/// Takes the card out and waits until pcscd has seen it go (a card put in before that would
/// look to pcscd like the same card still present).
pub fn remove(ctx: &pcsc::Context, slot: u8, t: CardThread) {
    let _ = t.remove();
    wait_present(ctx, &reader_name(slot), false);
}

/// Waits until pcscd reports the reader with (`want`) or without a card.
pub fn wait_present(ctx: &pcsc::Context, reader: &CStr, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut states = [pcsc::ReaderState::new(
        reader.to_owned(),
        pcsc::State::UNAWARE,
    )];
    loop {
        match ctx.get_status_change(Duration::from_millis(500), &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) | Err(pcsc::Error::UnknownReader) => {}
            Err(e) => panic!("get_status_change: {e}"),
        }
        if states[0].event_state().contains(pcsc::State::PRESENT) == want
            && !states[0].event_state().contains(pcsc::State::UNKNOWN)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{reader:?} present={want}");
        states[0].sync_current_state();
    }
}

/// SHA-256 DigestInfo (19-byte prefix + 32 bytes of 0x09).
pub const DIGEST_INFO_HEX: &str = "3031300d0609608648016503040201050004200909090909090909090909090909090909090909090909090909090909090909";

/// What another PC/SC client gets when it tries to sign with the key in `key_ef` (`0017` auth,
/// `001A` sign) without presenting any PIN: the status word of `80 2A 00 80`. It connects
/// shared as soon as the card is free (waiting out an exclusive holder, up to `wait`) and
/// renews its handle when pcscd says the card was reset or powered since.
pub fn sign_without_pin(
    ctx: &pcsc::Context,
    reader: &CStr,
    key_ef: &str,
    wait: Duration,
) -> String {
    let deadline = Instant::now() + wait;
    let mut card = loop {
        match ctx.connect(reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY) {
            Ok(c) => break c,
            Err(pcsc::Error::SharingViolation) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("the other client cannot connect: {e}"),
        }
    };
    let mut buf = [0u8; 600];
    let mut send = |card: &mut pcsc::Card, apdu: &str| -> String {
        let bytes = hex::decode(apdu).unwrap();
        for _ in 0..3 {
            match card.transmit(&bytes, &mut buf) {
                Ok(r) => {
                    let r = r.to_vec();
                    return hex::encode_upper(&r[r.len().saturating_sub(2)..]);
                }
                Err(pcsc::Error::ResetCard) => {
                    card.reconnect(
                        pcsc::ShareMode::Shared,
                        pcsc::Protocols::ANY,
                        pcsc::Disposition::LeaveCard,
                    )
                    .unwrap();
                }
                Err(e) => panic!("the other client's APDU {apdu}: {e}"),
            }
        }
        panic!("the card keeps being reset");
    };
    assert_eq!(send(&mut card, "00A4040C0AD392F000260100000001"), "9000");
    assert_eq!(send(&mut card, &format!("00A4020C02{key_ef}")), "9000");
    let sw = send(&mut card, &format!("802A008033{DIGEST_INFO_HEX}00"));
    let _ = card.disconnect(pcsc::Disposition::LeaveCard);
    sw
}
