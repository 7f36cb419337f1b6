//! Personal bytes read from a card leave no copy behind in freed memory: every buffer that held
//! them is wiped before it is freed, growing ones included (defect: a `Zeroizing<Vec>` that
//! grows by `extend` frees its old allocation unwiped). A global allocator looks into every
//! block freed while a read runs.
// The allocator is the one place a test needs `unsafe`: it forwards to the system allocator.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use jpkid::api::CertKind;
use jpkid::card::Card;
use jpkid::transport::{CardTransport, SessionEnd, TransportError};
use zeroize::Zeroizing;

/// Bytes that stand for a holder's data; no other memory of the test holds them.
const MARKER: &[u8; 8] = b"\xA7NAME\xA7\x5A\xC3";

static ARMED: AtomicBool = AtomicBool::new(false);
/// The allocator's counters are global: one test at a time arms it.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
static LEFT_BEHIND: AtomicUsize = AtomicUsize::new(0);

struct Scanning;

// SAFETY: every call forwards to `System` with the caller's own arguments; `dealloc` reads the
// block it is handed (valid for `layout.size()` bytes until it is freed) before freeing it.
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::SeqCst) {
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if block.windows(MARKER.len()).any(|w| w == MARKER) {
                LEFT_BEHIND.fetch_add(1, Ordering::SeqCst);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Scanning = Scanning;

/// A card holding one personal file (EF 0001, the signing certificate), answering the SFI READ
/// and later offset READs in small pieces and with 61xx chaining, so that the reader's buffers
/// have to grow. Its own copy of the file is made before the test arms the allocator.
struct ChattyCard {
    file: Zeroizing<Vec<u8>>,
    /// What GET RESPONSE still has to hand out.
    pending: Zeroizing<Vec<u8>>,
}

impl ChattyCard {
    fn new() -> ChattyCard {
        let body_len = 900usize;
        let mut file = Zeroizing::new(Vec::with_capacity(body_len + 4));
        file.extend_from_slice(&[0x30, 0x82]);
        file.extend_from_slice(&u16::try_from(body_len).unwrap().to_be_bytes());
        while file.len() < body_len + 4 {
            file.extend_from_slice(MARKER);
        }
        file.truncate(body_len + 4);
        ChattyCard {
            file,
            pending: Zeroizing::new(Vec::new()),
        }
    }

    /// Data + SW in a buffer of exactly the right size.
    fn answer(data: &[u8], sw: [u8; 2]) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(data.len() + 2));
        out.extend_from_slice(data);
        out.extend_from_slice(&sw);
        out
    }

    /// Hands out at most 100 bytes now, the rest by GET RESPONSE.
    fn chained(&mut self, data: &[u8]) -> Zeroizing<Vec<u8>> {
        let (now, later) = data.split_at(data.len().min(100));
        let mut rest = Zeroizing::new(Vec::with_capacity(later.len()));
        rest.extend_from_slice(later);
        self.pending = rest;
        if self.pending.is_empty() {
            ChattyCard::answer(now, [0x90, 0x00])
        } else {
            let left = u8::try_from(self.pending.len().min(255)).unwrap();
            ChattyCard::answer(now, [0x61, left])
        }
    }
}

impl CardTransport for ChattyCard {
    fn transmit(
        &mut self,
        apdu: &[u8],
        _deadline: Instant,
    ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        let ok = [0x90, 0x00];
        Ok(match apdu {
            // SELECT JPKI AP.
            [0x00, 0xA4, 0x04, ..] => ChattyCard::answer(&[], ok),
            // GET RESPONSE.
            [0x00, 0xC0, 0x00, 0x00, le] => {
                let n = usize::from(*le).max(1).min(self.pending.len());
                let now: Zeroizing<Vec<u8>> = Zeroizing::new(self.pending[..n].to_vec());
                let rest: Zeroizing<Vec<u8>> = Zeroizing::new(self.pending[n..].to_vec());
                self.pending = rest;
                if self.pending.is_empty() {
                    ChattyCard::answer(&now, ok)
                } else {
                    let left = u8::try_from(self.pending.len().min(255)).unwrap();
                    ChattyCard::answer(&now, [0x61, left])
                }
            }
            // READ BINARY by SFI at offset 0 (Le 256), chained.
            [0x00, 0xB0, 0x81, 0x00, _] => {
                let first: Zeroizing<Vec<u8>> =
                    Zeroizing::new(self.file[..256.min(self.file.len())].to_vec());
                self.chained(&first)
            }
            // READ BINARY at an offset: extended Le refused (6700), short ones chained.
            [0x00, 0xB0, _, _, 0x00, _, _] => ChattyCard::answer(&[], [0x67, 0x00]),
            [0x00, 0xB0, hi, lo, le] => {
                let at = usize::from(u16::from_be_bytes([*hi, *lo]));
                let n = if *le == 0 { 256 } else { usize::from(*le) };
                let end = (at + n).min(self.file.len());
                let part: Zeroizing<Vec<u8>> = Zeroizing::new(self.file[at..end].to_vec());
                self.chained(&part)
            }
            _ => ChattyCard::answer(&[], [0x6D, 0x00]),
        })
    }

    fn atr(&self) -> Vec<u8> {
        vec![0x3B]
    }

    fn hold_exclusive(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    fn end_session(&mut self, _end: SessionEnd) -> Result<(), TransportError> {
        Ok(())
    }
}

#[test]
fn a_personal_file_read_in_pieces_leaves_no_copy_in_freed_memory() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut card = Card::new(ChattyCard::new(), None);
    ARMED.store(true, Ordering::SeqCst);
    let cert = jpkid::jpki::ap::read_certificate(&mut card, CertKind::Sign).unwrap();
    let len = cert.len();
    drop(cert);
    ARMED.store(false, Ordering::SeqCst);
    assert_eq!(len, 904);
    assert!(
        card.apdu_count() > 8,
        "read in pieces: {}",
        card.apdu_count()
    );
    assert_eq!(
        LEFT_BEHIND.swap(0, Ordering::SeqCst),
        0,
        "freed memory still held personal bytes"
    );
}

/// Defect: a secret received as `ay` was deserialized by growing a `Vec` (zbus gives no size
/// hint), so every smaller copy was freed unwiped — the first bytes of a signing password, or
/// of a certificate handed to `VerifyCertificate`, stayed in freed memory.
#[test]
fn a_secret_received_over_dbus_leaves_no_copy_in_freed_memory() {
    use zbus::wire::{Endian, serialized::Context, to_bytes};
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let secret: Vec<u8> = MARKER.iter().copied().cycle().take(1200).collect();
    let ctxt = Context::new(Endian::Little, 0);
    let encoded = to_bytes(ctxt, &secret).unwrap();
    ARMED.store(true, Ordering::SeqCst);
    let (got, _): (jpkid::api::SecretBytes, usize) = encoded.deserialize().unwrap();
    let len = got.as_slice().len();
    drop(got);
    ARMED.store(false, Ordering::SeqCst);
    drop(encoded);
    drop(secret);
    assert_eq!(len, 1200);
    assert_eq!(
        LEFT_BEHIND.swap(0, Ordering::SeqCst),
        0,
        "freed memory still held the secret's bytes"
    );
}
