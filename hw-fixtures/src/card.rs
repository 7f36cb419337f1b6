//! The virtual My Number Card: JPKI AP, text AP and visual AP answering APDUs the way
//! `docs/reference/jpki-protocol.md` (cited as "ref §n") says a physical card does.
//!
//! Decisions where the reference is silent or conflicting (each is also noted at its code):
//! - **Empty VERIFY on a blocked PIN answers `63C0`** (ref §6.2, §16.1: soltia48 `Retries`
//!   lists `63C0` = blocked; the text-AP key 0012, blocked on every card examined, answers the
//!   empty VERIFY with `63C0` and VERIFY with data with `6984`, ref §3.1).
//! - **Empty VERIFY after a successful VERIFY answers `63Cx`**, not `9000` (ref §16.10: only
//!   "some cards" answer 9000; myna/opensc would treat 9000 as an error).
//! - **SELECT by DF name with P2 = `00`/`04`/`08` (FCI/FCP/FMD requested) answers a bare `9000`**
//!   without a template when the AID is known (no tool reads an FCI from this card; ref §1.1
//!   only documents P2 = `0C`). Foreign AIDs answer `6A82` whatever P2 says.
//! - SELECT by DF name needs the full 10-byte AID (no prefix match, ref §1.1).
//! - READ BINARY at an offset equal to the EF size answers `6B00` (nothing is there).
//! - The SW for a protected READ BINARY is `6982` (ref §16.9, ISO).
//! - A GET RESPONSE with nothing pending answers `6985`.
//! - Visual AP (ref §4, §4.1): EF 0001 opens with the 生年月日 key `0011` only; EF 0002, 0003,
//!   0004 and 0006 with 照合番号B `0012` or 照合番号A `0013`; EF 0005 with `0013` only. EF 0003
//!   and 0004 are modelled as **protected**, the stricter of the two readings of myna-card 3.3.4
//!   (`src/ap/surface.rs` module doc: "照合番号A reaches 0002 0003 0004 0005 0006, and 照合番号B the
//!   same set without 0005"; the same file's `read_certificate` doc and its fixtures README say
//!   EF 0004 reads with nothing presented): a reader that works here works on either card.
//! - The visual AP's `80 2A 00 00` signs with the card key (DF24) without any credential, like
//!   the text AP's (ref §6.7); no key EF of the visual AP can be selected.
//! - Selecting another AP does **not** clear a verified PIN here (ref §15 says real cards do);
//!   only power-off does. That is the model the JPKI and text APs have always had; the visual
//!   AP follows it.

mod apdu;

use rsa::Pkcs1v15Sign;
use rsa::traits::PublicKeyParts;

use crate::persona::{Ap, Faults, Persona, PersonaError, PinId, parse_file_name};
use apdu::{Command, parse};

/// JPKI AP DF name (ref §1).
pub const AID_JPKI: [u8; 10] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
/// Text AP (券面事項入力補助AP) DF name (ref §1).
pub const AID_TEXT: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08];
/// Visual AP (券面事項確認AP) DF name (ref §1, §4.1).
pub const AID_VISUAL: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02];

/// Number of key references with a retry counter ([`PinId::ALL`]).
const PINS: usize = PinId::ALL.len();

/// JPKI signature key EF (ref §2.1).
const EF_SIGN_KEY: u16 = 0x001A;
/// JPKI authentication key EF (ref §2.1).
const EF_AUTH_KEY: u16 = 0x0017;

/// What the card did with an APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A response APDU: data followed by SW1 SW2.
    Response(Vec<u8>),
    /// The card has left the reader (fault `remove_after`); no response.
    Removed,
    /// The card does not answer (fault `mute_after`).
    Mute,
}

/// A file as the card sees it in the current DF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ef {
    /// Transparent EF with data.
    Binary(u16),
    /// A PIN (key EF used by VERIFY).
    Pin(PinId),
    /// A private key (used by COMPUTE DIGITAL SIGNATURE).
    Key(PinId),
}

/// Status words.
mod sw {
    pub const OK: u16 = 0x9000;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const CHANNEL: u16 = 0x6881;
    pub const SM: u16 = 0x6882;
    pub const INCOMPATIBLE_FILE: u16 = 0x6981;
    pub const SECURITY: u16 = 0x6982;
    pub const BLOCKED: u16 = 0x6984;
    pub const CONDITIONS: u16 = 0x6985;
    pub const NO_CURRENT_EF: u16 = 0x6986;
    pub const NOT_FOUND: u16 = 0x6A82;
    pub const BAD_P1P2: u16 = 0x6A86;
    pub const DATA_NOT_FOUND: u16 = 0x6A88;
    pub const OFFSET: u16 = 0x6B00;
    pub const INS: u16 = 0x6D00;
    pub const CLA: u16 = 0x6E00;
    pub const NO_DIAG: u16 = 0x6F00;
}

fn status(sw: u16) -> Vec<u8> {
    sw.to_be_bytes().to_vec()
}

fn with_data(mut data: Vec<u8>, sw: u16) -> Vec<u8> {
    data.extend_from_slice(&sw.to_be_bytes());
    data
}

/// A virtual My Number Card built from a [`Persona`].
///
/// Non-volatile state (retry counters) lives as long as the value; volatile state (selected DF
/// and EF, verified PINs, pending GET RESPONSE data) follows the power rules of ref §7 and §14.
#[derive(Debug)]
pub struct VirtualCard {
    persona: Persona,
    faults: Faults,
    /// Selected AP; `None` = MF level after a reset.
    df: Option<Ap>,
    /// Current EF within `df`.
    ef: Option<Ef>,
    verified: [bool; PINS],
    remaining: [u8; PINS],
    /// Next APDU answers 6F00 (armed by power-on when the fault is set).
    fresh_power_on: bool,
    /// Data + SW left for GET RESPONSE (fault `chain_61xx`).
    pending: Option<(Vec<u8>, u16)>,
    apdus_seen: u64,
    removed: bool,
    muted: bool,
    mute_fired: bool,
}

impl VirtualCard {
    /// A freshly powered card for `persona`; the persona's `[faults]` are the initial faults.
    pub fn new(persona: Persona) -> VirtualCard {
        let remaining = PinId::ALL.map(|p| persona.pin(p).remaining);
        let faults = persona.faults.clone();
        let mut card = VirtualCard {
            persona,
            faults,
            df: None,
            ef: None,
            verified: [false; PINS],
            remaining,
            fresh_power_on: false,
            pending: None,
            apdus_seen: 0,
            removed: false,
            muted: false,
            mute_fired: false,
        };
        card.power_on();
        card
    }

    /// Loads a persona directory and makes a card of it.
    pub fn load(dir: &std::path::Path) -> Result<VirtualCard, PersonaError> {
        Persona::load(dir).map(VirtualCard::new)
    }

    /// The persona the card was made from.
    pub fn persona(&self) -> &Persona {
        &self.persona
    }

    /// The ATR (ref §11).
    pub fn atr(&self) -> &[u8] {
        &self.persona.atr
    }

    /// Power on (cold reset): nothing selected, no PIN verified (ref §1.1, §7).
    pub fn power_on(&mut self) {
        self.clear_volatile();
        self.fresh_power_on = self.faults.sw_6f00_after_power_on;
    }

    /// Power off: clears the security state and the selection (ref §7 "Security status lasts
    /// until the card is powered off"). A muted card recovers at the next power-on.
    pub fn power_off(&mut self) {
        self.clear_volatile();
        self.muted = false;
    }

    /// Warm reset: the selection is reset, but a verified PIN **survives** (ref §7, soltia48:
    /// "A warm reset does not [clear it]").
    pub fn warm_reset(&mut self) {
        self.df = None;
        self.ef = None;
        self.pending = None;
    }

    fn clear_volatile(&mut self) {
        self.df = None;
        self.ef = None;
        self.pending = None;
        self.verified = [false; PINS];
    }

    /// Current faults.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Faults, to change them while the card runs.
    pub fn faults_mut(&mut self) -> &mut Faults {
        &mut self.faults
    }

    /// Tries left for `pin`.
    pub fn pin_remaining(&self, pin: PinId) -> u8 {
        self.remaining[pin.index()]
    }

    /// APDUs the card executed (answered with a response, including 6F00 / GET RESPONSE).
    pub fn apdus_seen(&self) -> u64 {
        self.apdus_seen
    }

    /// Whether the card is mute (fault `mute_after` fired and no power-off since).
    pub fn is_muted(&self) -> bool {
        self.muted
    }

    /// Whether the card has left (fault `remove_after` fired).
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// Whether `pin` is verified in the current power session.
    pub fn is_verified(&self, pin: PinId) -> bool {
        self.verified[pin.index()]
    }

    /// Answers one APDU, with the fault switches applied. `delay_ms` is **not** slept here.
    ///
    /// - `remove_after = N`: the APDU after the N-th executed one, and every later one, gets
    ///   [`Answer::Removed`].
    /// - `mute_after = N`: the APDU after the N-th gets [`Answer::Mute`], and so does everything
    ///   until the next power-off (the fault fires once per card).
    /// - `sw_6f00_after_power_on`: the first APDU after power-on answers `6F00`, doing nothing.
    /// - `chain_61xx = N`: a response with more than N data bytes answers `61xx` and hands the
    ///   data out through GET RESPONSE in pieces of at most N bytes.
    /// - `corrupt`: READ BINARY of the named files returns one flipped byte (see
    ///   [`corrupt_offset`]).
    pub fn exchange(&mut self, apdu: &[u8]) -> Answer {
        if self.removed {
            return Answer::Removed;
        }
        if self.faults.remove_after != 0 && self.apdus_seen >= self.faults.remove_after {
            self.removed = true;
            return Answer::Removed;
        }
        if self.muted {
            return Answer::Mute;
        }
        if !self.mute_fired
            && self.faults.mute_after != 0
            && self.apdus_seen >= self.faults.mute_after
        {
            self.mute_fired = true;
            self.muted = true;
            return Answer::Mute;
        }
        self.apdus_seen = self.apdus_seen.saturating_add(1);
        if self.fresh_power_on {
            self.fresh_power_on = false;
            return Answer::Response(status(sw::NO_DIAG));
        }
        Answer::Response(self.process(apdu))
    }

    /// How long the answer to `apdu` takes (faults `delay_ms` and `sign_delay_ms`); whoever
    /// carries the answer (the vpcd loop, the in-process transport) sleeps it.
    pub fn answer_delay(&self, apdu: &[u8]) -> std::time::Duration {
        let sign = matches!(apdu, [0x80, 0x2A, ..]);
        let extra = if sign { self.faults.sign_delay_ms } else { 0 };
        std::time::Duration::from_millis(self.faults.delay_ms.saturating_add(extra))
    }

    /// [`exchange`](Self::exchange) without the remove/mute outcome: those give an empty vector.
    pub fn execute(&mut self, apdu: &[u8]) -> Vec<u8> {
        match self.exchange(apdu) {
            Answer::Response(r) => r,
            Answer::Removed | Answer::Mute => Vec::new(),
        }
    }

    /// Command dispatch plus 61xx chaining.
    fn process(&mut self, raw: &[u8]) -> Vec<u8> {
        let cmd = match parse(raw) {
            Ok(c) => c,
            Err(_) => {
                self.pending = None;
                return status(sw::WRONG_LENGTH);
            }
        };
        let chain = self.faults.chain_61xx;
        if chain != 0 && cmd.cla == 0x00 && cmd.ins == 0xC0 {
            return self.get_response(&cmd, chain);
        }
        self.pending = None;
        let resp = self.dispatch(&cmd);
        if chain != 0 && resp.len() > chain + 2 {
            let split = resp.len() - 2;
            let sw = u16::from_be_bytes([resp[split], resp[split + 1]]);
            let mut data = resp;
            data.truncate(split);
            let avail = data.len();
            self.pending = Some((data, sw));
            return sw61(avail);
        }
        resp
    }

    /// GET RESPONSE `00 C0 00 00 Le` (ref §6.7) while chaining is on.
    fn get_response(&mut self, cmd: &Command<'_>, chain: usize) -> Vec<u8> {
        let Some((mut data, final_sw)) = self.pending.take() else {
            return status(sw::CONDITIONS);
        };
        if cmd.p1 != 0 || cmd.p2 != 0 {
            self.pending = Some((data, final_sw));
            return status(sw::BAD_P1P2);
        }
        let Some(le) = cmd.le.filter(|_| cmd.data.is_empty()) else {
            self.pending = Some((data, final_sw));
            return status(sw::WRONG_LENGTH);
        };
        let n = le.min(chain).min(data.len());
        let rest = data.split_off(n);
        if rest.is_empty() {
            return with_data(data, final_sw);
        }
        let left = rest.len();
        self.pending = Some((rest, final_sw));
        let mut out = data;
        out.extend_from_slice(&sw61(left));
        out
    }

    fn dispatch(&mut self, cmd: &Command<'_>) -> Vec<u8> {
        // CLA (ref §8): 00 inter-industry, 80 proprietary (JICSAP). Channel ≠ 0 → 6881,
        // secure messaging → 6882, anything else → 6E00.
        let cla = cmd.cla;
        let class = match cla {
            0x00..=0x0F => cla & 0xF0,
            0x80..=0x8F => 0x80,
            0x40..=0x7F => return status(sw::CHANNEL),
            _ => return status(sw::CLA),
        };
        if cla & 0x10 != 0 {
            // Command chaining is not supported.
            return status(sw::CLA);
        }
        if cla & 0x03 != 0 {
            return status(sw::CHANNEL);
        }
        if cla & 0x0C != 0 {
            return status(sw::SM);
        }
        if cmd.extended && !self.persona.extended {
            return status(sw::WRONG_LENGTH);
        }
        match (class, cmd.ins) {
            (0x00, 0xA4) => self.select(cmd),
            (0x00, 0xB0) => self.read_binary(cmd),
            (0x00, 0x20) => self.verify(cmd),
            (0x00, 0xCA | 0xCB) => status(sw::DATA_NOT_FOUND),
            (0x00, 0xC0) => status(sw::CONDITIONS),
            (0x80, 0x2A) => self.sign(cmd),
            // Last-command indicator: the iPhone token's profile has it, physical cards answer
            // 6700 (ref §6.7, §13.1). The token kind is told by the EF 0006 label (ref §2.2).
            (0x80, 0xFC) if self.is_iphone_token() && cmd.p1 == 0 && cmd.p2 == 0 => status(sw::OK),
            (0x80, 0xFC) => status(sw::WRONG_LENGTH),
            _ => status(sw::INS),
        }
    }

    fn is_iphone_token(&self) -> bool {
        self.persona
            .file(Ap::Jpki, 0x0006)
            .is_some_and(|t| t.starts_with(b"JPKIAPIOSTOKEN "))
    }

    fn ap_present(&self, ap: Ap) -> bool {
        match ap {
            Ap::Jpki => self.persona.jpki_ap,
            Ap::Text => self.persona.text_ap,
            Ap::Visual => self.persona.visual_ap,
        }
    }

    /// The EF `fid` in `ap`, if it exists.
    fn lookup(&self, ap: Ap, fid: u16) -> Option<Ef> {
        if self.persona.file(ap, fid).is_some() {
            return Some(Ef::Binary(fid));
        }
        match (ap, fid) {
            (Ap::Jpki, 0x001B) => Some(Ef::Pin(PinId::Sign)),
            (Ap::Jpki, 0x0018) => Some(Ef::Pin(PinId::Auth)),
            (Ap::Text, 0x0011) => Some(Ef::Pin(PinId::Text)),
            (Ap::Visual, 0x0011) => Some(Ef::Pin(PinId::Birth)),
            (Ap::Visual, 0x0012) => Some(Ef::Pin(PinId::CodeB)),
            (Ap::Visual, 0x0013) => Some(Ef::Pin(PinId::CodeA)),
            (Ap::Jpki, EF_SIGN_KEY) if self.persona.sign_key.is_some() => {
                Some(Ef::Key(PinId::Sign))
            }
            (Ap::Jpki, EF_AUTH_KEY) if self.persona.auth_key.is_some() => {
                Some(Ef::Key(PinId::Auth))
            }
            _ => None,
        }
    }

    /// SELECT FILE (ref §1.1, §1.2).
    fn select(&mut self, cmd: &Command<'_>) -> Vec<u8> {
        match cmd.p1 {
            // By DF name.
            0x04 => {
                if !matches!(cmd.p2, 0x00 | 0x04 | 0x08 | 0x0C) {
                    return status(sw::BAD_P1P2);
                }
                let ap = if cmd.data == AID_JPKI {
                    Ap::Jpki
                } else if cmd.data == AID_TEXT {
                    Ap::Text
                } else if cmd.data == AID_VISUAL {
                    Ap::Visual
                } else {
                    return status(sw::NOT_FOUND);
                };
                if !self.ap_present(ap) {
                    return status(sw::NOT_FOUND);
                }
                self.df = Some(ap);
                self.ef = None;
                status(sw::OK)
            }
            // EF under the current DF.
            0x02 => {
                if !matches!(cmd.p2, 0x00 | 0x04 | 0x08 | 0x0C) {
                    return status(sw::BAD_P1P2);
                }
                let [hi, lo] = cmd.data else {
                    return status(sw::WRONG_LENGTH);
                };
                let fid = u16::from_be_bytes([*hi, *lo]);
                let Some(ap) = self.df else {
                    return status(sw::NOT_FOUND);
                };
                match self.lookup(ap, fid) {
                    Some(ef) => {
                        self.ef = Some(ef);
                        status(sw::OK)
                    }
                    None => status(sw::NOT_FOUND),
                }
            }
            // MF: `00 A4 00 00` answers 6A86 after a cold reset and 9000 without changing
            // anything when an AP is selected; SELECT 3F00 answers 6A82 (ref §1.1, soltia48).
            0x00 => {
                if !cmd.data.is_empty() {
                    return status(sw::NOT_FOUND);
                }
                if cmd.p2 == 0x00 && self.df.is_some() {
                    status(sw::OK)
                } else {
                    status(sw::BAD_P1P2)
                }
            }
            _ => status(sw::BAD_P1P2),
        }
    }

    /// Resolves `(80|SFI)`-style references: returns the EF for `sfi` in the current DF.
    fn by_sfi(&self, sfi: u8) -> Option<Ef> {
        self.df.and_then(|ap| self.lookup(ap, u16::from(sfi)))
    }

    /// READ BINARY (ref §6.4): 15-bit offset in the current EF, or `(80|SFI) off8` which also
    /// makes the EF current. Returns up to the EF end within Le; `6B00` past the end.
    fn read_binary(&mut self, cmd: &Command<'_>) -> Vec<u8> {
        let (ef, offset) = if cmd.p1 & 0x80 != 0 {
            if cmd.p1 & 0x60 != 0 {
                return status(sw::BAD_P1P2);
            }
            if !self.persona.sfi {
                return status(sw::BAD_P1P2);
            }
            let sfi = cmd.p1 & 0x1F;
            match self.by_sfi(sfi) {
                Some(ef) if sfi != 0 => {
                    self.ef = Some(ef);
                    (ef, usize::from(cmd.p2))
                }
                _ => return status(sw::NOT_FOUND),
            }
        } else {
            match self.ef {
                Some(ef) => (ef, usize::from(u16::from_be_bytes([cmd.p1, cmd.p2]))),
                None => return status(sw::NO_CURRENT_EF),
            }
        };
        if !cmd.data.is_empty() {
            return status(sw::WRONG_LENGTH);
        }
        let Some(le) = cmd.le else {
            return status(sw::WRONG_LENGTH);
        };
        let (Ef::Binary(fid), Some(ap)) = (ef, self.df) else {
            return status(sw::INCOMPATIBLE_FILE);
        };
        if !self.may_read(ap, fid) {
            return status(sw::SECURITY);
        }
        let Some(content) = self.persona.file(ap, fid) else {
            return status(sw::NOT_FOUND);
        };
        if offset >= content.len() {
            return status(sw::OFFSET);
        }
        let end = content.len().min(offset.saturating_add(le));
        let mut out = content[offset..end].to_vec();
        if self.is_corrupt(ap, fid)
            && let Some(at) = corrupt_offset(content)
            && (offset..end).contains(&at)
        {
            out[at - offset] ^= 0xFF;
        }
        with_data(out, sw::OK)
    }

    /// Whether the security state allows a READ BINARY of `fid` (ref §2.1, §3.1, §4.1, §13.1).
    fn may_read(&self, ap: Ap, fid: u16) -> bool {
        let any = |pins: &[PinId]| pins.iter().any(|p| self.is_verified(*p));
        match (ap, fid) {
            (Ap::Jpki, 0x0001) => any(&[PinId::Sign]),
            (Ap::Jpki, 0x000A) if self.persona.auth_cert_requires_pin => any(&[PinId::Auth]),
            (Ap::Text, 0x0001..=0x0003) => any(&[PinId::Text]),
            (Ap::Visual, 0x0001) => any(&[PinId::Birth]),
            (Ap::Visual, 0x0002..=0x0004 | 0x0006) => any(&[PinId::CodeB, PinId::CodeA]),
            (Ap::Visual, 0x0005) => any(&[PinId::CodeA]),
            _ => true,
        }
    }

    fn is_corrupt(&self, ap: Ap, fid: u16) -> bool {
        self.faults
            .corrupt
            .iter()
            .any(|n| parse_file_name(n) == Some((ap, fid)))
    }

    /// VERIFY (ref §6.1, §6.2, §7).
    fn verify(&mut self, cmd: &Command<'_>) -> Vec<u8> {
        if cmd.p1 != 0x00 {
            return status(sw::BAD_P1P2);
        }
        let pin = match cmd.p2 {
            0x80 => match self.ef {
                Some(Ef::Pin(pin)) => pin,
                Some(_) => return status(sw::INCOMPATIBLE_FILE),
                None => return status(sw::NO_CURRENT_EF),
            },
            0x81..=0x9E => {
                if !self.persona.sfi {
                    return status(sw::BAD_P1P2);
                }
                match self.by_sfi(cmd.p2 & 0x1F) {
                    Some(Ef::Pin(pin)) => pin,
                    _ => return status(sw::NOT_FOUND),
                }
            }
            _ => return status(sw::BAD_P1P2),
        };
        // A trailing Le makes the real card answer 6700 (ref §6.2, lulitech).
        if cmd.le.is_some() {
            return status(sw::WRONG_LENGTH);
        }
        let i = pin.index();
        if cmd.data.is_empty() {
            // Case 1: tries left, nothing spent. Blocked → 63C0 (see module doc).
            return status(0x63C0 | u16::from(self.remaining[i].min(15)));
        }
        if cmd.data.len() > 16 {
            return status(sw::WRONG_LENGTH);
        }
        if self.remaining[i] == 0 {
            return status(sw::BLOCKED);
        }
        let reference = &self.persona.pin(pin).value;
        if ct_eq(cmd.data, reference) {
            self.remaining[i] = self.persona.pin(pin).max;
            self.verified[i] = true;
            status(sw::OK)
        } else {
            self.remaining[i] -= 1;
            self.verified[i] = false;
            status(0x63C0 | u16::from(self.remaining[i].min(15)))
        }
    }

    /// COMPUTE DIGITAL SIGNATURE `80 2A 00 80` / `80 2A 00 9A` / `80 2A 00 97` (ref §6.6):
    /// PKCS#1 v1.5 padding of exactly the given bytes (P1 `00`; other P1 → 6A86).
    fn sign(&mut self, cmd: &Command<'_>) -> Vec<u8> {
        if cmd.p1 != 0x00 {
            return status(sw::BAD_P1P2);
        }
        if cmd.p2 == 0x00 && self.df == Some(Ap::Text) {
            return self.sign_text_ap(cmd);
        }
        if cmd.p2 == 0x00 && self.df == Some(Ap::Visual) {
            return self.sign_visual_ap(cmd);
        }
        let which = match cmd.p2 {
            0x80 => match self.ef {
                Some(Ef::Key(k)) => k,
                Some(_) => return status(sw::INCOMPATIBLE_FILE),
                None => return status(sw::NO_CURRENT_EF),
            },
            0x9A | 0x97 => {
                if !self.persona.sfi {
                    return status(sw::BAD_P1P2);
                }
                match self.by_sfi(cmd.p2 & 0x1F) {
                    Some(Ef::Key(k)) => k,
                    _ => return status(sw::NOT_FOUND),
                }
            }
            _ => return status(sw::BAD_P1P2),
        };
        if cmd.data.is_empty() {
            return status(sw::WRONG_LENGTH);
        }
        if !self.is_verified(which) {
            return status(sw::SECURITY);
        }
        let key = match which {
            PinId::Sign => self.persona.sign_key.as_ref(),
            _ => self.persona.auth_key.as_ref(),
        };
        let Some(key) = key else {
            return status(sw::NOT_FOUND);
        };
        if cmd.data.len() > key.size().saturating_sub(11) {
            return status(sw::WRONG_LENGTH);
        }
        match key.sign(Pkcs1v15Sign::new_unprefixed(), cmd.data) {
            Ok(sig) => with_data(sig, sw::OK),
            Err(_) => status(sw::NO_DIAG),
        }
    }
}

impl VirtualCard {
    /// 券面 AP card-key signature `80 2A 00 00 Lc <DigestInfo> 00` in the text AP: the AP's own
    /// key, no credential (ref §6.7, soltia48 `TextAp::sign`); PKCS#1 v1.5 over the given bytes.
    fn sign_text_ap(&self, cmd: &Command<'_>) -> Vec<u8> {
        sign_without_credential(self.persona.textap_key.as_ref(), cmd)
    }

    /// 券面 AP card-key signature `80 2A 00 00 Lc <DigestInfo> 00` in the visual AP: the card
    /// key, whose public half is EF 0002 DF24, no credential (ref §4.1, §6.7, soltia48
    /// `SurfaceAp::sign`); PKCS#1 v1.5 over exactly the given bytes.
    fn sign_visual_ap(&self, cmd: &Command<'_>) -> Vec<u8> {
        sign_without_credential(self.persona.card_key.as_ref(), cmd)
    }
}

/// `80 2A 00 00` of the 券面 APs: `6A88` without a key, `6700` for no data or more than k − 11
/// bytes, else the PKCS#1 v1.5 signature of exactly the given bytes.
fn sign_without_credential(key: Option<&rsa::RsaPrivateKey>, cmd: &Command<'_>) -> Vec<u8> {
    let Some(key) = key else {
        return status(sw::DATA_NOT_FOUND);
    };
    if cmd.data.is_empty() || cmd.data.len() > key.size().saturating_sub(11) {
        return status(sw::WRONG_LENGTH);
    }
    match key.sign(Pkcs1v15Sign::new_unprefixed(), cmd.data) {
        Ok(sig) => with_data(sig, sw::OK),
        Err(_) => status(sw::NO_DIAG),
    }
}

/// `61 xx`: xx = bytes still available, `00` for 256 or more.
fn sw61(avail: usize) -> Vec<u8> {
    vec![0x61, u8::try_from(avail).unwrap_or(0)]
}

/// Comparison that does not stop at the first differing byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads one BER tag + length at `at`; returns (header length, content length).
fn tlv_header(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut i = at;
    let first = *buf.get(i)?;
    i += 1;
    if first & 0x1F == 0x1F {
        while *buf.get(i)? & 0x80 != 0 {
            i += 1;
        }
        i += 1;
    }
    let l0 = *buf.get(i)?;
    i += 1;
    let len = if l0 < 0x80 {
        usize::from(l0)
    } else {
        let n = usize::from(l0 & 0x7F);
        if n == 0 || n > 3 {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..n {
            len = (len << 8) | usize::from(*buf.get(i)?);
            i += 1;
        }
        len
    };
    (i.checked_add(len)? <= buf.len()).then_some((i - at, len))
}

/// The byte the `corrupt` fault flips (XOR `FF`) in a card file.
///
/// For a certificate (`SEQUENCE { tbsCertificate SEQUENCE, … }`): the middle content byte of the
/// first BIT STRING inside the TBS, i.e. the subject public key. The TBS stays parseable, the
/// issuer's signature no longer verifies and the key no longer matches the card's. For any other
/// file: the middle byte of the first TLV's content (or of the file).
pub fn corrupt_offset(file: &[u8]) -> Option<usize> {
    if file.is_empty() {
        return None;
    }
    let fallback = || match tlv_header(file, 0) {
        Some((h, l)) if l > 0 => Some(h + l / 2),
        _ => Some(file.len() / 2),
    };
    if file.first() != Some(&0x30) {
        return fallback();
    }
    let Some((h, _)) = tlv_header(file, 0) else {
        return fallback();
    };
    let Some((th, tl)) = tlv_header(file, h).filter(|_| file.get(h) == Some(&0x30)) else {
        return fallback();
    };
    find_bit_string(file, h + th, h + th + tl, 0).or_else(fallback)
}

/// Depth-first search for the first BIT STRING between `start` and `end`; returns the middle
/// of its content.
fn find_bit_string(buf: &[u8], start: usize, end: usize, depth: u8) -> Option<usize> {
    if depth > 8 {
        return None;
    }
    let mut i = start;
    while i < end {
        let tag = *buf.get(i)?;
        let (h, l) = tlv_header(buf, i)?;
        if tag == 0x03 && l > 1 {
            return Some(i + h + 1 + (l - 1) / 2);
        }
        if tag & 0x20 != 0
            && let Some(found) = find_bit_string(buf, i + h, i + h + l, depth + 1)
        {
            return Some(found);
        }
        i += h + l;
    }
    None
}
