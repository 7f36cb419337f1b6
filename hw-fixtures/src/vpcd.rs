//! The virtual card as a vpcd client (vsmartcard-vpcd 0.8, Debian's package), so pcscd sees it
//! as a card in the reader "Virtual PCD 00 00" (port 35963) or "… 00 01" (35964).
//!
//! Wire protocol (docs/reference/test-environment.md §4): the card connects over TCP; every
//! message both ways is a 2-byte big-endian length N plus N bytes. From vpcd, N = 1 is a control
//! byte (`00` power off, `01` power on, `02` warm reset, `04` ATR request → the ATR as a frame);
//! N ≥ 2 is a command APDU, answered with one response frame. The card never sends N = 0 (vpcd
//! takes it as removal). `TCP_QUICKACK` is re-armed after every read: vpcd 0.8 sends length and
//! body in two `send()`s, and without it Nagle + delayed ACK cost ~40 ms per message (§5).
//!
//! Removal (fault `remove_after`, [`CardThread::remove`], process exit): the connection is
//! closed. Measured with pcscd 1.9.9 + vpcd 0.8 (`tests/vpcd.rs`): the SCardTransmit in flight
//! returns *success with an empty response* (no SW), the next one `SCARD_E_NOT_TRANSACTED`, and
//! the reader shows EMPTY at the next 400 ms poll.
//!
//! Mute (fault `mute_after`): a mute physical card answers nothing, so from the APDU that finds
//! the card mute on, the loop answers neither APDUs nor ATR requests (control bytes are still
//! read; a power-off revives the model). Measured: vpcd 0.8 has no receive timeout, so
//! pcscd does **not** report the card MUTE — the client's SCardTransmit blocks, and with it the
//! reader, until the card goes away; then it returns success with an empty response (as for
//! removal). A test of a mute card therefore needs its own client-side timeout and must remove
//! the card (drop the [`CardThread`] / kill `vcard`) to release pcscd.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::card::{Answer, VirtualCard};

/// The first vpcd port (`0x8C7B`, slot 0).
pub const DEFAULT_PORT: u16 = 35963;

/// Error of the vpcd loop. Each variant keeps its cause.
#[derive(Debug, thiserror::Error)]
pub enum VpcdError {
    /// vpcd did not accept a connection within the connect timeout.
    #[error("cannot connect to vpcd at {addr} within {timeout:?}")]
    Connect {
        /// Where we tried.
        addr: SocketAddr,
        /// How long we tried.
        timeout: Duration,
        /// The last connect error.
        #[source]
        source: io::Error,
    },
    /// Reading or writing the connection failed other than by EOF.
    #[error("vpcd connection failed")]
    Io(#[source] io::Error),
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The card removed itself (fault `remove_after`); the connection was closed.
    Removed,
    /// vpcd closed the connection (pcscd stopped) and the loop was not to reconnect.
    Eof,
    /// [`CardThread::remove`] was called.
    Stopped,
}

/// Options of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long to retry connecting while vpcd does not listen (also after an EOF when
    /// `once` is false).
    pub connect_timeout: Duration,
    /// Exit at the first EOF instead of reconnecting.
    pub once: bool,
    /// Called after each successful connect (the `vcard` binary prints "ready").
    pub on_connect: Option<fn()>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            connect_timeout: Duration::from_secs(10),
            once: true,
            on_connect: None,
        }
    }
}

/// A card shared between the vpcd loop and a test that inspects it.
pub type SharedCard = Arc<Mutex<VirtualCard>>;

/// Serves `card` to vpcd at `addr` until it is removed, vpcd goes away, or an error occurs.
pub fn serve(
    card: VirtualCard,
    addr: SocketAddr,
    opts: &ServeOptions,
) -> Result<Outcome, VpcdError> {
    serve_shared(&Arc::new(Mutex::new(card)), addr, opts)
}

/// [`serve`] with a card the caller keeps a handle on.
pub fn serve_shared(
    card: &SharedCard,
    addr: SocketAddr,
    opts: &ServeOptions,
) -> Result<Outcome, VpcdError> {
    run(card, addr, opts, &Control::default())
}

#[derive(Debug, Default)]
struct Control {
    stop: AtomicBool,
    stream: Mutex<Option<TcpStream>>,
}

/// A card served on a thread (for tests). Dropping it removes the card, so a failed test does
/// not leave a card holding the vpcd slot (a later card would queue silently behind it).
#[derive(Debug)]
pub struct CardThread {
    card: SharedCard,
    control: Arc<Control>,
    handle: Option<thread::JoinHandle<Result<Outcome, VpcdError>>>,
}

impl CardThread {
    /// The served card, to inspect or change (faults) while it runs.
    pub fn card(&self) -> &SharedCard {
        &self.card
    }

    /// Pulls the card out of the reader: closes the connection and waits for the thread.
    pub fn remove(mut self) -> Result<Outcome, VpcdError> {
        self.stop();
        self.wait()
    }

    /// Waits for the loop to end by itself.
    pub fn join(mut self) -> Result<Outcome, VpcdError> {
        self.wait()
    }

    fn stop(&self) {
        self.control.stop.store(true, Ordering::SeqCst);
        if let Some(s) = lock(&self.control.stream).as_ref() {
            // Ignored: the socket may already be closed.
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn wait(&mut self) -> Result<Outcome, VpcdError> {
        match self.handle.take() {
            Some(h) => h.join().unwrap_or(Ok(Outcome::Stopped)),
            None => Ok(Outcome::Stopped),
        }
    }
}

impl Drop for CardThread {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.stop();
            let _ = self.wait();
        }
    }
}

/// Serves `card` on a new thread.
pub fn spawn(card: SharedCard, addr: SocketAddr, opts: ServeOptions) -> CardThread {
    let control = Arc::new(Control::default());
    let (c, ctl) = (card.clone(), control.clone());
    let handle = thread::spawn(move || run(&c, addr, &opts, &ctl));
    CardThread {
        card,
        control,
        handle: Some(handle),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn connect(addr: SocketAddr, timeout: Duration, ctl: &Control) -> Result<TcpStream, VpcdError> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => return Ok(s),
            Err(source) => {
                if Instant::now() >= deadline || ctl.stop.load(Ordering::SeqCst) {
                    return Err(VpcdError::Connect {
                        addr,
                        timeout,
                        source,
                    });
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn run(
    card: &SharedCard,
    addr: SocketAddr,
    opts: &ServeOptions,
    ctl: &Control,
) -> Result<Outcome, VpcdError> {
    let mut first = true;
    loop {
        let stream = match connect(addr, opts.connect_timeout, ctl) {
            Ok(s) => s,
            // After a reconnect attempt times out, the card simply ends.
            Err(_) if !first => return Ok(Outcome::Eof),
            Err(e) => return Err(e),
        };
        first = false;
        *lock(&ctl.stream) = stream.try_clone().ok();
        if ctl.stop.load(Ordering::SeqCst) {
            return Ok(Outcome::Stopped);
        }
        if let Some(f) = opts.on_connect {
            f();
        }
        let end = session(card, stream);
        *lock(&ctl.stream) = None;
        if ctl.stop.load(Ordering::SeqCst) {
            return Ok(Outcome::Stopped);
        }
        match end? {
            Outcome::Eof if !opts.once => {
                // pcscd went away; the card stays "in the reader" for the next one.
                lock(card).power_off();
            }
            other => return Ok(other),
        }
    }
}

fn quickack(s: &TcpStream) {
    // Best effort: without it every message is slow, not wrong.
    let _ = SockRef::from(s).set_quickack(true);
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean or abrupt EOF.
fn read_full(s: &mut TcpStream, buf: &mut [u8]) -> Result<bool, VpcdError> {
    match s.read_exact(buf) {
        Ok(()) => {
            quickack(s);
            Ok(true)
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::NotConnected
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(VpcdError::Io(e)),
    }
}

fn send_frame(s: &mut TcpStream, body: &[u8]) -> Result<(), VpcdError> {
    let Ok(n) = u16::try_from(body.len()) else {
        return Err(VpcdError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "response longer than 65535 bytes",
        )));
    };
    if n == 0 {
        // Never send an empty frame: vpcd would take it as removal.
        return Ok(());
    }
    let mut frame = Vec::with_capacity(body.len() + 2);
    frame.extend_from_slice(&n.to_be_bytes());
    frame.extend_from_slice(body);
    s.write_all(&frame).map_err(VpcdError::Io)
}

fn session(card: &SharedCard, mut s: TcpStream) -> Result<Outcome, VpcdError> {
    let _ = s.set_nodelay(true);
    quickack(&s);
    let mut buf = vec![0u8; 65535];
    loop {
        let mut len = [0u8; 2];
        if !read_full(&mut s, &mut len)? {
            return Ok(Outcome::Eof);
        }
        let n = usize::from(u16::from_be_bytes(len));
        let Some(msg) = buf.get_mut(..n) else {
            return Ok(Outcome::Eof);
        };
        if !read_full(&mut s, msg)? {
            return Ok(Outcome::Eof);
        }
        match msg {
            [] => {}
            [ctl] => {
                let mut c = lock(card);
                match ctl {
                    0x00 => c.power_off(),
                    0x01 => c.power_on(),
                    0x02 => c.warm_reset(),
                    0x04 if !c.is_muted() => {
                        let atr = c.atr().to_vec();
                        drop(c);
                        send_frame(&mut s, &atr)?;
                    }
                    _ => {}
                }
            }
            apdu => {
                let (answer, delay) = {
                    let mut c = lock(card);
                    let delay = c.answer_delay(apdu);
                    (c.exchange(apdu), delay)
                };
                if !delay.is_zero() {
                    thread::sleep(delay);
                }
                match answer {
                    Answer::Response(r) => send_frame(&mut s, &r)?,
                    Answer::Removed => {
                        let _ = s.shutdown(Shutdown::Both);
                        return Ok(Outcome::Removed);
                    }
                    Answer::Mute => {}
                }
            }
        }
    }
}
