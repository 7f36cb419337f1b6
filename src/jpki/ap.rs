//! JPKI AP operations (`docs/reference/jpki-protocol.md` §2, §6): detection, certificates, retry
//! counters, VERIFY behind the PIN guard, and signing a DigestInfo.
//!
//! Every function takes the [`Card`] session, so the AP stays selected between calls and the
//! session's APDU counter sees everything. SFI forms are tried first and the card's refusal
//! (6A86/6A82/6D00 — the command was not evaluated) switches the session to SELECT EF + P2=80
//! for good.
//!
//! Signing needs a key whose PIN this session verified, and the types say so: [`unlock`] is the
//! only way to an [`UnlockedKey`], and only an `UnlockedKey` signs (the typestate of
//! openpgp-card). It borrows the session, so "sign without verify" and "verify twice" cannot be
//! written.

use zeroize::Zeroizing;

use crate::apdu::{Command, MAX_SHORT_LE, SIGNATURE_TIME, StatusWord};
use crate::card::{Card, CardError, append_zeroizing};
use crate::digest::DigestInfo;
use crate::tlv;
use crate::transport::CardTransport;

use super::pin::KeySecret;
use super::{
    CardInfo, CardKind, CertKind, EF_CERT_AVAILABILITY, EF_TOKEN_INFO, JPKI_AP_AID, JpkiError,
    KeyKind, PinGuard, PinKind, TEXT_AP_AID, VISUAL_AP_AID, sfi,
};

/// Length of the token label at the start of EF 0006 (§2.2).
const LABEL_LEN: usize = 0x20;
/// EF 0008 marks a present certificate with this byte (§2.1).
const CERT_PRESENT: u8 = 0x8F;
/// Largest response an extended READ BINARY asks for.
const MAX_EXTENDED_READ: usize = 65_536;
/// Largest file jpkid reads from a card; a certificate header claiming more is malformed.
const MAX_FILE: usize = 16 * 1024;

/// Whether a status word says the card did not understand an SFI form (it evaluated nothing).
fn refuses_sfi(sw: StatusWord) -> bool {
    matches!(
        sw,
        StatusWord::IncorrectP1P2 | StatusWord::FileNotFound | StatusWord::InsNotSupported
    )
}

/// Selects the JPKI AP; a card without it is not a My Number Card.
///
/// # Errors
/// [`JpkiError::NotJpkiCard`] when the card refuses the SELECT.
pub fn select<T: CardTransport>(card: &mut Card<T>) -> Result<(), JpkiError> {
    match card.select_application("SELECT JPKI AP", &JPKI_AP_AID)? {
        StatusWord::Success => Ok(()),
        _ => Err(JpkiError::NotJpkiCard),
    }
}

/// Selects the application a PIN belongs to.
fn select_for_pin<T: CardTransport>(card: &mut Card<T>, pin: PinKind) -> Result<(), JpkiError> {
    match pin {
        PinKind::SignPassword | PinKind::AuthPin => select(card),
        PinKind::TextPin => match card.select_application("SELECT TEXT AP", &TEXT_AP_AID)? {
            StatusWord::Success => Ok(()),
            _ => Err(JpkiError::NoTextApplication),
        },
        PinKind::CodeB => match card.select_application("SELECT VISUAL AP", &VISUAL_AP_AID)? {
            StatusWord::Success => Ok(()),
            _ => Err(JpkiError::NoVisualApplication),
        },
    }
}

/// Sends a command in its SFI form when the session allows, else SELECT EF + the `P2 = 80`
/// form built by `current_ef`. The SFI refusal is remembered for the rest of the session.
fn exchange_with_sfi<T: CardTransport>(
    card: &mut Card<T>,
    ef: u16,
    by_sfi: impl Fn(u8) -> Command,
    current_ef: impl Fn() -> Command,
) -> Result<crate::apdu::Response, CardError> {
    if let Some(short_id) = sfi(ef)
        && card.capabilities().sfi != Some(false)
    {
        let resp = card.exchange(&by_sfi(short_id))?;
        if !refuses_sfi(resp.sw) {
            card.set_sfi(true);
            card.note_current_ef(ef);
            return Ok(resp);
        }
        if card.capabilities().sfi == Some(true) {
            // The card takes SFI forms, so the refusal is about this file (e.g. it is absent).
            return Ok(resp);
        }
        // The command was not evaluated (no PIN counted); fall back below. Only a successful
        // SELECT EF proves that the card lacks SFI support rather than the file.
        let sw = card.select_file(ef)?;
        if sw != StatusWord::Success {
            return Ok(crate::apdu::Response {
                data: Zeroizing::new(Vec::new()),
                sw,
            });
        }
        card.set_sfi(false);
        return card.exchange(&current_ef());
    }
    let sw = card.select_file(ef)?;
    if sw != StatusWord::Success {
        return Ok(crate::apdu::Response {
            data: Zeroizing::new(Vec::new()),
            sw,
        });
    }
    card.exchange(&current_ef())
}

/// What a READ should ask for first.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FirstRead {
    /// One short READ (Le 256) whose BER header tells the length; the rest follows.
    Header,
    /// The file has a known size: read it whole, in one extended READ where allowed.
    Whole(usize),
}

/// Reads a transparent EF in the current application: SFI READ at offset 0, then the rest by
/// 15-bit offset (the SFI READ made the EF current), in one extended READ where the session
/// allows it. Returns the bytes up to the end of the first TLV (filler dropped).
///
/// # Errors
/// [`CardError::Status`] for a refusal (6982 behind a PIN, 6A82 missing file),
/// [`CardError::Malformed`] when the header is not BER or the file is shorter than it says.
pub(crate) fn read_ef<T: CardTransport>(
    card: &mut Card<T>,
    ef: u16,
    what: &'static str,
    personal: bool,
    first: FirstRead,
) -> Result<Zeroizing<Vec<u8>>, CardError> {
    let first_le = match first {
        FirstRead::Whole(n) if n > MAX_SHORT_LE && card.capabilities().extended != Some(false) => n,
        FirstRead::Whole(n) => n.min(MAX_SHORT_LE),
        FirstRead::Header => MAX_SHORT_LE,
    };
    let mark = |c: Command| if personal { c.personal() } else { c };
    let read_sfi = |short_id: u8| {
        mark(Command::new("READ BINARY", 0x00, 0xB0, 0x80 | short_id, 0x00).with_le(first_le))
    };
    let read_cur = || mark(Command::new("READ BINARY", 0x00, 0xB0, 0x00, 0x00).with_le(first_le));
    let resp = exchange_with_sfi(card, ef, read_sfi, read_cur)?;
    if resp.sw == StatusWord::WrongLength && first_le > MAX_SHORT_LE {
        // The reader or card refused the extended form: short reads from now on.
        card.set_extended(false);
        return read_ef(card, ef, what, personal, FirstRead::Header);
    }
    if resp.sw == StatusWord::WrongOffset {
        // Nothing at offset 0: the file is empty.
        return Err(CardError::malformed(
            what,
            tlv::TlvError::TruncatedTag { offset: 0 },
        ));
    }
    if resp.sw != StatusWord::Success && resp.sw != StatusWord::EndOfFile {
        return Err(CardError::Status {
            command: what,
            sw: resp.sw,
        });
    }
    let header = tlv::read_header(&resp.data, 0).map_err(|e| CardError::malformed(what, e))?;
    let total = header.total_len();
    if total > MAX_FILE {
        return Err(CardError::Malformed { what, source: None });
    }
    // The whole file's room up front, so that the reads below never reallocate (a growing
    // buffer would leave unwiped copies of personal files behind).
    let mut data = Zeroizing::new(Vec::with_capacity(total.max(resp.data.len())));
    append_zeroizing(&mut data, &resp.data);
    while data.len() < total {
        let offset = data.len();
        let rest = total - offset;
        let extended_ok = card.capabilities().extended != Some(false);
        let le = if rest > MAX_SHORT_LE && extended_ok {
            rest.min(MAX_EXTENDED_READ)
        } else {
            rest.min(MAX_SHORT_LE)
        };
        let [p1, p2] = u16::try_from(offset)
            .map_err(|_| CardError::Malformed { what, source: None })?
            .to_be_bytes();
        let cmd = mark(Command::new("READ BINARY", 0x00, 0xB0, p1, p2).with_le(le));
        let resp = card.exchange(&cmd)?;
        if resp.sw == StatusWord::WrongLength && le > MAX_SHORT_LE {
            card.set_extended(false);
            continue;
        }
        if le > MAX_SHORT_LE && resp.sw == StatusWord::Success {
            card.set_extended(true);
        }
        match resp.sw {
            StatusWord::Success | StatusWord::EndOfFile if !resp.data.is_empty() => {
                append_zeroizing(&mut data, &resp.data);
            }
            // 6B00 or an empty answer before the length the header promised: truncated file.
            StatusWord::Success | StatusWord::EndOfFile | StatusWord::WrongOffset => {
                return Err(CardError::Malformed {
                    what,
                    source: Some(tlv::TlvError::TruncatedValue {
                        tag: header.tag,
                        needed: header.value_len,
                        available: offset.saturating_sub(header.header_len),
                        offset: header.header_len,
                    }),
                });
            }
            sw => return Err(CardError::Status { command: what, sw }),
        }
    }
    data.truncate(total);
    Ok(data)
}

/// Detects the token: SELECT of the JPKI AP, the label in EF 0006, and which certificates
/// EF 0008 says exist. A card without the JPKI AP gives `kind: None` rather than an error, so
/// the reader layer can show it as unsupported.
///
/// # Errors
/// A [`CardError`] when the exchange fails or the files are malformed.
pub fn detect<T: CardTransport>(card: &mut Card<T>) -> Result<CardInfo, JpkiError> {
    match select(card) {
        Ok(()) => {}
        Err(JpkiError::NotJpkiCard) => {
            return Ok(CardInfo {
                kind: CardKind::None,
                label: String::new(),
                has_sign_cert: false,
                has_auth_cert: false,
            });
        }
        Err(e) => return Err(e),
    }
    let token = read_fixed(
        card,
        EF_TOKEN_INFO,
        "token information (EF 0006)",
        LABEL_LEN,
    )?;
    let label: String = String::from_utf8_lossy(&token)
        .trim_end_matches([' ', '\0'])
        .to_string();
    let avail = read_fixed(
        card,
        EF_CERT_AVAILABILITY,
        "certificate availability (EF 0008)",
        3,
    )?;
    let (Some(&sign), Some(&auth)) = (avail.first(), avail.get(1)) else {
        return Err(CardError::Malformed {
            what: "certificate availability (EF 0008)",
            source: None,
        }
        .into());
    };
    Ok(CardInfo {
        kind: CardKind::from_label(&label),
        label,
        has_sign_cert: sign == CERT_PRESENT,
        has_auth_cert: auth == CERT_PRESENT,
    })
}

/// Reads `len` bytes at offset 0 of an EF that has no TLV framing.
fn read_fixed<T: CardTransport>(
    card: &mut Card<T>,
    ef: u16,
    what: &'static str,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, CardError> {
    let read_sfi =
        |short_id: u8| Command::new("READ BINARY", 0x00, 0xB0, 0x80 | short_id, 0x00).with_le(len);
    let read_cur = || Command::new("READ BINARY", 0x00, 0xB0, 0x00, 0x00).with_le(len);
    let resp = exchange_with_sfi(card, ef, read_sfi, read_cur)?;
    match resp.sw {
        StatusWord::Success | StatusWord::EndOfFile if resp.data.len() == len => Ok(resp.data),
        StatusWord::Success | StatusWord::EndOfFile => {
            Err(CardError::Malformed { what, source: None })
        }
        sw => Err(CardError::Status { command: what, sw }),
    }
}

/// Reads one certificate (DER, filler removed). The signing certificate needs the signing
/// password verified first in this session ([`UnlockedKey::read_certificate`]).
///
/// # Errors
/// [`JpkiError::CertificateMissing`] when the card has no such file,
/// [`JpkiError::Card`] with 6982 when the signing password was not verified,
/// [`JpkiError::Card`] with [`CardError::Malformed`] for a truncated or non-BER file.
pub fn read_certificate<T: CardTransport>(
    card: &mut Card<T>,
    kind: CertKind,
) -> Result<Zeroizing<Vec<u8>>, JpkiError> {
    select(card)?;
    let what = kind.describe();
    match read_ef(card, kind.ef(), what, kind.is_personal(), FirstRead::Header) {
        Err(CardError::Status {
            sw: StatusWord::FileNotFound,
            ..
        }) => Err(JpkiError::CertificateMissing(kind)),
        other => Ok(other?),
    }
}

/// Tries left for a PIN, with the non-consuming case-1 empty VERIFY (never with Le, §6.2).
/// 0 means blocked.
///
/// # Errors
/// [`JpkiError::NoTextApplication`] for the text PIN on a token without text AP,
/// [`JpkiError::NoVisualApplication`] for 照合番号B on one without visual AP;
/// [`JpkiError::Card`] for an unexpected status.
pub fn pin_retries<T: CardTransport>(card: &mut Card<T>, pin: PinKind) -> Result<u8, JpkiError> {
    select_for_pin(card, pin)?;
    let by_sfi =
        |short_id: u8| Command::new("VERIFY (retry counter)", 0x00, 0x20, 0x00, 0x80 | short_id);
    let current = || Command::new("VERIFY (retry counter)", 0x00, 0x20, 0x00, 0x80);
    let resp = exchange_with_sfi(card, pin.ef(), by_sfi, current)?;
    match resp.sw {
        StatusWord::RetriesLeft(n) => Ok(n),
        StatusWord::ReferenceDataBlocked | StatusWord::AuthMethodBlocked => Ok(0),
        // Already verified in this session (the counter was reset), or a key without limit.
        StatusWord::Success | StatusWord::NoRetryLimit => Ok(pin.max_tries()),
        sw => Err(CardError::Status {
            command: "VERIFY (retry counter)",
            sw,
        }
        .into()),
    }
}

/// Verifies a PIN whose format the caller has already checked (a [`super::pin`] type). Takes
/// the card exclusively first — before the retry counter is read, so nobody can spend a try
/// between the guard's look and the VERIFY — then refuses, without sending the PIN, when the
/// guard forbids the try. Never repeats the VERIFY.
///
/// # Errors
/// [`JpkiError::PinGuard`], [`JpkiError::PinIncorrect`] with the tries left,
/// [`JpkiError::PinBlocked`], or a card error.
pub(crate) fn verify_pin<T: CardTransport>(
    card: &mut Card<T>,
    pin: PinKind,
    secret: &[u8],
    guard: PinGuard,
) -> Result<(), JpkiError> {
    card.hold_exclusive()?;
    let remaining = pin_retries(card, pin)?;
    if remaining == 0 {
        return Err(JpkiError::PinBlocked { pin });
    }
    if !guard.permits(remaining) {
        return Err(JpkiError::PinGuard { pin, remaining });
    }
    let data = Zeroizing::new(secret.to_vec());
    let by_sfi = |short_id: u8| {
        Command::new("VERIFY", 0x00, 0x20, 0x00, 0x80 | short_id).with_secret(data.clone())
    };
    let current = || Command::new("VERIFY", 0x00, 0x20, 0x00, 0x80).with_secret(data.clone());
    let resp = exchange_with_sfi(card, pin.ef(), by_sfi, current)?;
    match resp.sw {
        StatusWord::Success => Ok(()),
        sw if sw.means_blocked() => Err(JpkiError::PinBlocked { pin }),
        StatusWord::RetriesLeft(remaining) => Err(JpkiError::PinIncorrect { pin, remaining }),
        sw => Err(CardError::Status {
            command: "VERIFY",
            sw,
        }
        .into()),
    }
}

/// A private key whose PIN this session verified: the only thing that signs.
#[derive(Debug)]
pub struct UnlockedKey<'c, T: CardTransport> {
    card: &'c mut Card<T>,
    key: KeyKind,
}

/// Verifies the key's PIN behind the guard and returns the key, ready to sign.
///
/// # Errors
/// As [`verify_pin`].
pub fn unlock<'c, T: CardTransport>(
    card: &'c mut Card<T>,
    secret: &KeySecret,
    guard: PinGuard,
) -> Result<UnlockedKey<'c, T>, JpkiError> {
    select(card)?;
    let key = secret.key();
    verify_pin(card, key.pin(), secret.bytes(), guard)?;
    Ok(UnlockedKey { card, key })
}

impl<T: CardTransport> UnlockedKey<'_, T> {
    /// Which key.
    pub fn key(&self) -> KeyKind {
        self.key
    }

    /// Reads the key's own certificate (the signing certificate needs this unlock; the
    /// Android token's authentication certificate too).
    ///
    /// # Errors
    /// As [`read_certificate`].
    pub fn read_certificate(&mut self) -> Result<Zeroizing<Vec<u8>>, JpkiError> {
        read_certificate(self.card, self.key.certificate())
    }

    /// Signs: the card PKCS#1 v1.5-pads the DigestInfo (`80 2A 00 9A|97`, §6.6) and returns
    /// the signature.
    ///
    /// # Errors
    /// A card error (6982 when the card forgot the PIN, e.g. after a reset by another client).
    pub fn sign(&mut self, digest: &DigestInfo) -> Result<Vec<u8>, JpkiError> {
        let card = &mut *self.card;
        select(card)?;
        let data = digest.as_bytes();
        let by_sfi = |short_id: u8| {
            Command::new(
                "COMPUTE DIGITAL SIGNATURE",
                0x80,
                0x2A,
                0x00,
                0x80 | short_id,
            )
            .with_data(data.to_vec())
            .with_le(MAX_SHORT_LE)
            .needs(SIGNATURE_TIME)
        };
        let current = || {
            Command::new("COMPUTE DIGITAL SIGNATURE", 0x80, 0x2A, 0x00, 0x80)
                .with_data(data.to_vec())
                .with_le(MAX_SHORT_LE)
                .needs(SIGNATURE_TIME)
        };
        let resp = exchange_with_sfi(card, self.key.ef(), by_sfi, current)?;
        if resp.sw != StatusWord::Success {
            return Err(CardError::Status {
                command: "COMPUTE DIGITAL SIGNATURE",
                sw: resp.sw,
            }
            .into());
        }
        if resp.data.is_empty() {
            return Err(CardError::Malformed {
                what: "signature",
                source: None,
            }
            .into());
        }
        Ok(resp.data.to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::VecDeque;
    use std::time::Instant;

    use super::*;
    use crate::transport::{SessionEnd, TransportError};

    /// A transport that answers from a script and records every call in order.
    #[derive(Debug, Default)]
    struct Recording {
        answers: VecDeque<Vec<u8>>,
        log: Vec<String>,
    }

    impl CardTransport for Recording {
        fn transmit(
            &mut self,
            apdu: &[u8],
            _deadline: Instant,
        ) -> Result<Zeroizing<Vec<u8>>, TransportError> {
            self.log
                .push(format!("transmit {}", hex::encode_upper(&apdu[..4])));
            self.answers
                .pop_front()
                .map(Zeroizing::new)
                .ok_or(TransportError::CardRemoved)
        }
        fn atr(&self) -> Vec<u8> {
            vec![0x3B]
        }
        fn hold_exclusive(&mut self) -> Result<(), TransportError> {
            self.log.push("hold exclusive".into());
            Ok(())
        }
        fn end_session(&mut self, end: SessionEnd) -> Result<(), TransportError> {
            self.log.push(format!("end {end:?}"));
            Ok(())
        }
    }

    /// Defect: the guard read the retry counter on a shared connection and took the card only
    /// afterwards, so another client could spend a try in between.
    #[test]
    fn the_card_is_held_before_the_retry_counter_is_read() {
        let t = Recording {
            answers: [vec![0x90, 0x00], vec![0x63, 0xC2], vec![0x90, 0x00]].into(),
            ..Recording::default()
        };
        let mut card = Card::new(t, None);
        let secret = KeySecret::new(KeyKind::Auth, b"1234").unwrap();
        unlock(&mut card, &secret, PinGuard::default()).unwrap();
        let t = card.finish().unwrap();
        assert_eq!(
            t.log,
            [
                "transmit 00A4040C",
                "hold exclusive",
                "transmit 00200098",
                "transmit 00200098",
                "end Unpower"
            ]
        );
    }

    #[test]
    fn a_guard_refusal_still_ends_the_held_session_unpowered() {
        let t = Recording {
            answers: [vec![0x90, 0x00], vec![0x63, 0xC1]].into(),
            ..Recording::default()
        };
        let mut card = Card::new(t, None);
        let secret = KeySecret::new(KeyKind::Sign, b"ABC123").unwrap();
        let err = unlock(&mut card, &secret, PinGuard::default()).unwrap_err();
        assert!(
            matches!(err, JpkiError::PinGuard { remaining: 1, .. }),
            "{err}"
        );
        let t = card.finish().unwrap();
        assert_eq!(t.log.len(), 4, "{:?}", t.log);
        assert_eq!(t.log[3], "end Unpower");
    }
}
