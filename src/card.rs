//! One card session: the single point where APDUs go out. It handles GET RESPONSE (61xx), one
//! re-issue for 6Cxx, the 6F00 some cards give right after power-on, counts every APDU, remembers
//! which application is selected and what the card and reader support, keeps the request's
//! deadline (no VERIFY or signature is started without enough of it left), and writes a trace
//! that never shows PINs or personal files.

use std::time::{Duration, Instant};

use tracing::trace;
use zeroize::Zeroizing;

use crate::apdu::{ApduError, Command, MAX_SHORT_LE, Response, StatusWord};
use crate::tlv::TlvError;
use crate::transport::{CardTransport, SessionEnd, TransportError};

/// Most GET RESPONSE rounds accepted for one command (a card that keeps answering 61xx is broken).
const MAX_GET_RESPONSE: usize = 256;
/// The deadline of a session that was given none.
const NO_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// Appends to a buffer of personal bytes without leaving a copy behind: when the buffer must
/// grow, the bytes move into a new zeroizing buffer and the old one is wiped as it drops (a
/// plain `Vec` growth frees the old allocation as it is).
pub fn append_zeroizing(buf: &mut Zeroizing<Vec<u8>>, more: &[u8]) {
    let needed = buf.len() + more.len();
    if needed > buf.capacity() {
        let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(buf.capacity() * 2)));
        bigger.extend_from_slice(buf);
        std::mem::swap(buf, &mut bigger);
    }
    buf.extend_from_slice(more);
}

/// Why a card operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The reader or card went away or refused.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A command could not be encoded.
    #[error("command could not be encoded")]
    Encoding(#[from] ApduError),
    /// The card answered with an unexpected status word.
    #[error("{command} failed with status {sw}")]
    Status {
        /// The command's name.
        command: &'static str,
        /// What the card answered.
        sw: StatusWord,
    },
    /// The card answered with bytes that are not what the specification says.
    #[error("malformed {what}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// The parse error, when there is one.
        #[source]
        source: Option<TlvError>,
    },
    /// The card answered 61xx without end.
    #[error("{0} never finished GET RESPONSE")]
    EndlessResponse(&'static str),
    /// Too little of the request's deadline is left to start a command that must not be
    /// abandoned halfway; it was not sent.
    #[error("too little time left to start {command} (needs {needed:?}, {left:?} left)")]
    NoTimeLeft {
        /// The command's name.
        command: &'static str,
        /// What it needs.
        needed: Duration,
        /// What was left.
        left: Duration,
    },
}

impl CardError {
    /// A malformed-data error with its TLV cause.
    pub fn malformed(what: &'static str, source: TlvError) -> CardError {
        CardError::Malformed {
            what,
            source: Some(source),
        }
    }
}

/// What the session has learned about the card and the reader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Whether the card accepts the short-EF-identifier forms (per card).
    pub sfi: Option<bool>,
    /// Whether reader and card pass extended-length APDUs (per reader).
    pub extended: Option<bool>,
}

/// A session with one card over some transport.
#[derive(Debug)]
pub struct Card<T: CardTransport> {
    transport: T,
    apdus: u64,
    selected: Option<Vec<u8>>,
    /// The EF current in the selected application, as far as this session knows.
    current_ef: Option<u16>,
    caps: Capabilities,
    exclusive: bool,
    unpower_at_end: bool,
    deadline: Instant,
    slowest: Duration,
}

impl<T: CardTransport> Card<T> {
    /// Starts a session without a deadline of its own (tests, tools). `extended` is what the
    /// reader layer remembers about this reader.
    pub fn new(transport: T, extended: Option<bool>) -> Card<T> {
        Card::with_deadline(transport, extended, Instant::now() + NO_DEADLINE)
    }

    /// Starts a session whose exchanges must all end by `deadline`.
    pub fn with_deadline(transport: T, extended: Option<bool>, deadline: Instant) -> Card<T> {
        let extended = extended.or(transport.extended_length_hint());
        Card {
            transport,
            apdus: 0,
            selected: None,
            current_ef: None,
            caps: Capabilities {
                sfi: None,
                extended,
            },
            exclusive: false,
            unpower_at_end: false,
            deadline,
            slowest: Duration::ZERO,
        }
    }

    /// The session's deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// APDUs sent in this session, GET RESPONSE and re-issues included.
    pub fn apdu_count(&self) -> u64 {
        self.apdus
    }

    /// What has been learned about the card and reader.
    pub fn capabilities(&self) -> Capabilities {
        self.caps
    }

    /// Records whether the SFI forms work on this card.
    pub fn set_sfi(&mut self, supported: bool) {
        self.caps.sfi = Some(supported);
    }

    /// Records whether extended-length APDUs work through this reader.
    pub fn set_extended(&mut self, supported: bool) {
        self.caps.extended = Some(supported);
    }

    /// The card's ATR.
    pub fn atr(&self) -> Vec<u8> {
        self.transport.atr()
    }

    /// The transport, e.g. for tests that inspect the virtual card.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutable.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The AID of the application currently selected, as far as this session knows.
    pub fn selected(&self) -> Option<&[u8]> {
        self.selected.as_deref()
    }

    /// Refuses a critical command when less is left of the deadline than it may take: its own
    /// least time ([`Command::least_time`]), or twice the card's slowest answer so far.
    fn check_time(&self, cmd: &Command) -> Result<(), CardError> {
        if cmd.least_time.is_zero() {
            return Ok(());
        }
        let needed = cmd.least_time.max(self.slowest * 2);
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < needed {
            return Err(CardError::NoTimeLeft {
                command: cmd.name,
                needed,
                left,
            });
        }
        Ok(())
    }

    /// Sends one raw command (no GET RESPONSE handling), counting and tracing it.
    fn send(&mut self, cmd: &Command) -> Result<Response, CardError> {
        let bytes = cmd.to_bytes()?;
        self.check_time(cmd)?;
        self.apdus += 1;
        trace!(target: "apdu", n = self.apdus, "> {cmd:?}");
        let started = Instant::now();
        let sent = self.transport.transmit(&bytes, self.deadline);
        self.slowest = self.slowest.max(started.elapsed());
        let raw = match sent {
            Ok(raw) => raw,
            Err(e) => {
                trace!(target: "apdu", n = self.apdus, "< transport error: {e}");
                // After a transport failure nothing is known about the card's state.
                self.selected = None;
                self.current_ef = None;
                return Err(e.into());
            }
        };
        let resp = Response::from_bytes(&raw).map_err(|_| CardError::Malformed {
            what: "response without status word",
            source: None,
        })?;
        if cmd.personal_response {
            trace!(target: "apdu", n = self.apdus, "< sw={} data=[{} bytes personal]", resp.sw, resp.data.len());
        } else {
            trace!(target: "apdu", n = self.apdus, "< sw={} data={}", resp.sw, hex::encode_upper(&resp.data[..resp.data.len().min(32)]));
        }
        Ok(resp)
    }

    /// Sends a command and returns the complete response: 61xx is followed by GET RESPONSE,
    /// 6Cxx by one re-issue with the corrected Le, and a 6F00 to a command that carries no
    /// secret is retried once (seen right after power-on). A VERIFY is never sent twice.
    ///
    /// # Errors
    /// [`CardError::Transport`] when the exchange failed; the status is returned as it is.
    pub fn exchange(&mut self, cmd: &Command) -> Result<Response, CardError> {
        let mut resp = self.send(cmd)?;
        let carries_secret = matches!(cmd.data, crate::apdu::Data::Sensitive(_));
        if resp.sw == StatusWord::NoPreciseDiagnosis && !carries_secret {
            resp = self.send(cmd)?;
        }
        if let StatusWord::WrongLe(n) = resp.sw
            && !carries_secret
        {
            let le = if n == 0 { MAX_SHORT_LE } else { usize::from(n) };
            let again = cmd.clone().with_le(le);
            resp = self.send(&again)?;
        }
        if let StatusWord::MoreData(_) = resp.sw {
            let mut data = Zeroizing::new(std::mem::take(&mut *resp.data));
            let mut rounds = 0;
            while let StatusWord::MoreData(n) = resp.sw {
                rounds += 1;
                if rounds > MAX_GET_RESPONSE {
                    return Err(CardError::EndlessResponse(cmd.name));
                }
                let le = if n == 0 { MAX_SHORT_LE } else { usize::from(n) };
                let mut get = Command::new("GET RESPONSE", 0x00, 0xC0, 0x00, 0x00).with_le(le);
                get.personal_response = cmd.personal_response;
                resp = self.send(&get)?;
                append_zeroizing(&mut data, &resp.data);
            }
            resp.data = data;
        }
        Ok(resp)
    }

    /// Like [`Card::exchange`] but requires 9000.
    ///
    /// # Errors
    /// [`CardError::Status`] naming the command for any other status.
    pub fn exchange_ok(&mut self, cmd: &Command) -> Result<Zeroizing<Vec<u8>>, CardError> {
        let resp = self.exchange(cmd)?;
        if resp.sw != StatusWord::Success {
            return Err(CardError::Status {
                command: cmd.name,
                sw: resp.sw,
            });
        }
        Ok(resp.data)
    }

    /// Selects an application by its full DF name unless this session knows it is selected.
    /// Returns the status (9000, or 6A82 when the card has no such application).
    ///
    /// # Errors
    /// [`CardError::Transport`] when the exchange failed.
    pub fn select_application(
        &mut self,
        name: &'static str,
        aid: &[u8],
    ) -> Result<StatusWord, CardError> {
        if self.selected.as_deref() == Some(aid) {
            return Ok(StatusWord::Success);
        }
        let cmd = Command::new(name, 0x00, 0xA4, 0x04, 0x0C).with_data(aid.to_vec());
        let resp = self.exchange(&cmd)?;
        self.current_ef = None;
        self.selected = if resp.sw == StatusWord::Success {
            Some(aid.to_vec())
        } else {
            None
        };
        Ok(resp.sw)
    }

    /// Selects an EF of the current application (`00 A4 02 0C 02 <id>`) unless this session
    /// knows it is current. Returns the status (9000, or 6A82 for a missing file).
    ///
    /// # Errors
    /// [`CardError::Transport`] when the exchange failed.
    pub fn select_file(&mut self, ef: u16) -> Result<StatusWord, CardError> {
        if self.current_ef == Some(ef) {
            return Ok(StatusWord::Success);
        }
        let cmd =
            Command::new("SELECT EF", 0x00, 0xA4, 0x02, 0x0C).with_data(ef.to_be_bytes().to_vec());
        let sw = self.exchange(&cmd)?.sw;
        self.current_ef = (sw == StatusWord::Success).then_some(ef);
        Ok(sw)
    }

    /// Notes that a command addressing `ef` by its short identifier made it current (ISO/IEC
    /// 7816-4 §7.2.2).
    pub fn note_current_ef(&mut self, ef: u16) {
        self.current_ef = Some(ef);
    }

    /// Takes the card exclusively and marks the session to end unpowered; called before a PIN
    /// flow reads its retry counter, so nobody else can spend a try between that read and the
    /// VERIFY, or use the key it unlocks.
    ///
    /// # Errors
    /// [`CardError::Transport`] when another client holds the card.
    pub fn hold_exclusive(&mut self) -> Result<(), CardError> {
        if !self.exclusive {
            // Noted before the transport is asked: whatever it answers, the session ends
            // unpowered.
            self.unpower_at_end = true;
            self.transport.hold_exclusive()?;
            self.exclusive = true;
        }
        Ok(())
    }

    /// Whether this session was held for a PIN (it ends unpowered).
    pub fn pin_presented(&self) -> bool {
        self.unpower_at_end
    }

    /// Ends the session: powers the card off if a PIN was presented, so the next client starts
    /// locked (DESIGN §3), and returns the transport.
    ///
    /// # Errors
    /// The transport's error; the transport is lost then, which is what a failed power-off means.
    pub fn finish(mut self) -> Result<T, CardError> {
        let end = if self.unpower_at_end {
            SessionEnd::Unpower
        } else {
            SessionEnd::Leave
        };
        self.transport.end_session(end)?;
        Ok(self.transport)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A transport that answers from a script and records what it was sent.
    struct Scripted {
        answers: VecDeque<Vec<u8>>,
        sent: Vec<Vec<u8>>,
        ended: Option<SessionEnd>,
    }

    impl Scripted {
        fn new(answers: &[&[u8]]) -> Scripted {
            Scripted {
                answers: answers.iter().map(|a| a.to_vec()).collect(),
                sent: vec![],
                ended: None,
            }
        }
    }

    impl CardTransport for Scripted {
        fn transmit(
            &mut self,
            apdu: &[u8],
            _deadline: Instant,
        ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
            self.sent.push(apdu.to_vec());
            self.answers
                .pop_front()
                .map(Zeroizing::new)
                .ok_or(TransportError::CardRemoved)
        }
        fn atr(&self) -> Vec<u8> {
            vec![0x3B]
        }
        fn hold_exclusive(&mut self) -> Result<(), TransportError> {
            Ok(())
        }
        fn end_session(&mut self, end: SessionEnd) -> Result<(), TransportError> {
            self.ended = Some(end);
            Ok(())
        }
    }

    #[test]
    fn get_response_reassembles() {
        let t = Scripted::new(&[&[0x61, 0x02], &[1, 2, 0x61, 0x01], &[3, 0x90, 0x00]]);
        let mut card = Card::new(t, None);
        let cmd = Command::new("READ", 0, 0xB0, 0, 0).with_le(256);
        let data = card.exchange_ok(&cmd).unwrap();
        assert_eq!(&data[..], &[1, 2, 3]);
        assert_eq!(card.apdu_count(), 3);
        assert_eq!(card.transport().sent[1], vec![0x00, 0xC0, 0x00, 0x00, 0x02]);
        assert_eq!(card.transport().sent[2], vec![0x00, 0xC0, 0x00, 0x00, 0x01]);
    }

    #[test]
    fn wrong_le_reissued_once() {
        let t = Scripted::new(&[&[0x6C, 0x04], &[9, 9, 9, 9, 0x90, 0x00]]);
        let mut card = Card::new(t, None);
        let cmd = Command::new("READ", 0, 0xB0, 0, 0).with_le(256);
        assert_eq!(&card.exchange_ok(&cmd).unwrap()[..], &[9, 9, 9, 9]);
        assert_eq!(card.transport().sent[1], vec![0x00, 0xB0, 0x00, 0x00, 0x04]);
        assert_eq!(card.apdu_count(), 2);
    }

    #[test]
    fn verify_is_never_repeated() {
        let t = Scripted::new(&[&[0x6F, 0x00]]);
        let mut card = Card::new(t, None);
        let cmd = Command::new("VERIFY", 0, 0x20, 0, 0x9B)
            .with_secret(Zeroizing::new(b"ABC123".to_vec()));
        let resp = card.exchange(&cmd).unwrap();
        assert_eq!(resp.sw, StatusWord::NoPreciseDiagnosis);
        assert_eq!(card.apdu_count(), 1);
    }

    #[test]
    fn six_f00_retried_for_plain_commands() {
        let t = Scripted::new(&[&[0x6F, 0x00], &[0x90, 0x00]]);
        let mut card = Card::new(t, None);
        let sw = card.select_application("SELECT", &[1, 2, 3]).unwrap();
        assert_eq!(sw, StatusWord::Success);
        assert_eq!(card.apdu_count(), 2);
    }

    #[test]
    fn selected_application_is_not_reselected() {
        let t = Scripted::new(&[&[0x90, 0x00], &[0x6A, 0x82], &[0x90, 0x00]]);
        let mut card = Card::new(t, None);
        card.select_application("SELECT A", &[1]).unwrap();
        card.select_application("SELECT A", &[1]).unwrap();
        assert_eq!(card.apdu_count(), 1);
        assert_eq!(
            card.select_application("SELECT B", &[2]).unwrap(),
            StatusWord::FileNotFound
        );
        assert_eq!(card.selected(), None);
        card.select_application("SELECT A", &[1]).unwrap();
        assert_eq!(card.apdu_count(), 3);
    }

    #[test]
    fn transport_error_forgets_selection() {
        let t = Scripted::new(&[&[0x90, 0x00]]);
        let mut card = Card::new(t, None);
        card.select_application("SELECT A", &[1]).unwrap();
        let err = card.exchange(&Command::new("X", 0, 0, 0, 0)).unwrap_err();
        assert!(matches!(
            err,
            CardError::Transport(TransportError::CardRemoved)
        ));
        assert_eq!(card.selected(), None);
    }

    #[test]
    fn endless_get_response_is_an_error() {
        let answers: Vec<&[u8]> = vec![&[0x61, 0x01]; MAX_GET_RESPONSE + 2];
        let t = Scripted::new(&answers);
        let mut card = Card::new(t, None);
        let err = card
            .exchange(&Command::new("READ", 0, 0xB0, 0, 0))
            .unwrap_err();
        assert!(matches!(err, CardError::EndlessResponse("READ")));
    }

    #[test]
    fn finish_unpowers_after_a_pin_hold() {
        let card = Card::new(Scripted::new(&[]), None);
        assert_eq!(card.finish().unwrap().ended, Some(SessionEnd::Leave));
        let mut card = Card::new(Scripted::new(&[]), None);
        card.hold_exclusive().unwrap();
        assert_eq!(card.finish().unwrap().ended, Some(SessionEnd::Unpower));
    }

    #[test]
    fn critical_commands_need_time_left_plain_ones_do_not() {
        let t = Scripted::new(&[&[0x90, 0x00]]);
        let soon = Instant::now() + Duration::from_millis(100);
        let mut card = Card::with_deadline(t, None, soon);
        let verify = Command::new("VERIFY", 0, 0x20, 0, 0x9B)
            .with_secret(Zeroizing::new(b"ABC123".to_vec()));
        let err = card.exchange(&verify).unwrap_err();
        assert!(
            matches!(
                err,
                CardError::NoTimeLeft {
                    command: "VERIFY",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(card.apdu_count(), 0, "not sent");
        let sign = Command::new("SIGN", 0x80, 0x2A, 0, 0x9A).needs(crate::apdu::SIGNATURE_TIME);
        assert!(card.exchange(&sign).is_err());
        assert!(
            card.exchange(&Command::new("SELECT", 0, 0xA4, 4, 0x0C))
                .is_ok()
        );
        assert_eq!(card.apdu_count(), 1);
    }

    #[test]
    fn growing_personal_buffers_moves_them_whole() {
        let mut buf = Zeroizing::new(Vec::with_capacity(2));
        append_zeroizing(&mut buf, &[1, 2]);
        let before = buf.as_ptr();
        append_zeroizing(&mut buf, &[3]);
        assert_ne!(buf.as_ptr(), before, "grown into a new buffer");
        assert_eq!(&buf[..], &[1, 2, 3]);
        assert!(buf.capacity() >= 4);
    }
}
