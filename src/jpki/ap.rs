//! JPKI AP operations (`reference/jpki-protocol.md` §2, §6): detection, certificates, retry
//! counters, VERIFY behind the PIN guard, and signing a DigestInfo.
//!
//! Every function takes the [`Card`] session, so the AP stays selected between calls and the
//! session's APDU counter sees everything. SFI forms are tried first and the card's refusal
//! (6A86/6A82/6D00 — the command was not evaluated) switches the session to SELECT EF + P2=80
//! for good.

use zeroize::Zeroizing;

use crate::apdu::{Command, MAX_SHORT_LE, StatusWord};
use crate::card::{Card, CardError};
use crate::tlv;
use crate::transport::CardTransport;

use super::{
    CardInfo, CardKind, CertKind, EF_AUTH_KEY, EF_CERT_AVAILABILITY, EF_SIGN_KEY, EF_TOKEN_INFO,
    JPKI_AP_AID, JpkiError, PinGuard, PinKind, TEXT_AP_AID, sfi,
};

/// Length of the token label at the start of EF 0006 (§2.2).
const LABEL_LEN: usize = 0x20;
/// EF 0008 marks a present certificate with this byte (§2.1).
const CERT_PRESENT: u8 = 0x8F;
/// Largest response an extended READ BINARY asks for.
const MAX_EXTENDED_READ: usize = 65_536;
/// Largest file jpkid reads from a card; a certificate header claiming more is malformed.
const MAX_FILE: usize = 16 * 1024;

/// Which private key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// 署名用秘密鍵 (EF 001A), unlocked by the signing password.
    Sign,
    /// 利用者証明用秘密鍵 (EF 0017), unlocked by the auth PIN.
    Auth,
}

impl KeyKind {
    /// The key's EF.
    pub fn ef(self) -> u16 {
        match self {
            KeyKind::Sign => EF_SIGN_KEY,
            KeyKind::Auth => EF_AUTH_KEY,
        }
    }

    /// The PIN that unlocks the key.
    pub fn pin(self) -> PinKind {
        match self {
            KeyKind::Sign => PinKind::SignPassword,
            KeyKind::Auth => PinKind::AuthPin,
        }
    }

    /// The D-Bus value (`sign`, `auth`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Sign => "sign",
            KeyKind::Auth => "auth",
        }
    }

    /// From the D-Bus value.
    pub fn parse(s: &str) -> Option<KeyKind> {
        [KeyKind::Sign, KeyKind::Auth]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Hash algorithm of a digest to be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// The D-Bus value (`sha256`, `sha384`, `sha512`).
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// From the D-Bus value.
    pub fn parse(s: &str) -> Option<HashAlg> {
        [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512]
            .into_iter()
            .find(|h| h.as_str() == s)
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// DER prefix of the DigestInfo (§6.6).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// The DigestInfo the card pads and signs (P1 `00`).
    ///
    /// # Errors
    /// [`JpkiError::DigestLength`] when the digest does not have this hash's length.
    pub fn digest_info(self, digest: &[u8]) -> Result<Vec<u8>, JpkiError> {
        if digest.len() != self.digest_len() {
            return Err(JpkiError::DigestLength {
                hash: self.as_str(),
                expected: self.digest_len(),
                got: digest.len(),
            });
        }
        let mut out = self.digest_info_prefix().to_vec();
        out.extend_from_slice(digest);
        Ok(out)
    }
}

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
    }
}

/// SELECT EF in the current application (`00 A4 02 0C 02 <id>`).
fn select_ef<T: CardTransport>(card: &mut Card<T>, ef: u16) -> Result<StatusWord, CardError> {
    let cmd =
        Command::new("SELECT EF", 0x00, 0xA4, 0x02, 0x0C).with_data(ef.to_be_bytes().to_vec());
    Ok(card.exchange(&cmd)?.sw)
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
            return Ok(resp);
        }
        if card.capabilities().sfi == Some(true) {
            // The card takes SFI forms, so the refusal is about this file (e.g. it is absent).
            return Ok(resp);
        }
        // The command was not evaluated (no PIN counted); fall back below. Only a successful
        // SELECT EF proves that the card lacks SFI support rather than the file.
        let sw = select_ef(card, ef)?;
        if sw != StatusWord::Success {
            return Ok(crate::apdu::Response {
                data: Zeroizing::new(Vec::new()),
                sw,
            });
        }
        card.set_sfi(false);
        return card.exchange(&current_ef());
    }
    let sw = select_ef(card, ef)?;
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
    let mut resp = exchange_with_sfi(card, ef, read_sfi, read_cur)?;
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
    let mut data = Zeroizing::new(std::mem::take(&mut *resp.data));
    let header = tlv::read_header(&data, 0).map_err(|e| CardError::malformed(what, e))?;
    let total = header.total_len();
    if total > MAX_FILE {
        return Err(CardError::Malformed { what, source: None });
    }
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
                data.extend_from_slice(&resp.data);
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
/// password verified first in this session ([`verify`]).
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
    let what = match kind {
        CertKind::Auth => "auth certificate (EF 000A)",
        CertKind::AuthCa => "auth CA certificate (EF 000B)",
        CertKind::Sign => "signing certificate (EF 0001)",
        CertKind::SignCa => "signing CA certificate (EF 0002)",
    };
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
/// [`JpkiError::NoTextApplication`] for the text PIN on a token without text AP;
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

/// Verifies a PIN whose format the caller has already checked (a [`super::pin`] type). Reads
/// the retry counter first and refuses, without sending the PIN, when the guard forbids the
/// try. Takes the card exclusively before the PIN is sent. Never repeats the VERIFY.
///
/// # Errors
/// [`JpkiError::PinGuard`], [`JpkiError::PinIncorrect`] with the tries left,
/// [`JpkiError::PinBlocked`], or a card error.
pub fn verify<T: CardTransport>(
    card: &mut Card<T>,
    pin: PinKind,
    secret: &[u8],
    guard: PinGuard,
) -> Result<(), JpkiError> {
    let remaining = pin_retries(card, pin)?;
    if remaining == 0 {
        return Err(JpkiError::PinBlocked { pin });
    }
    if !guard.permits(remaining) {
        return Err(JpkiError::PinGuard { pin, remaining });
    }
    card.hold_exclusive()?;
    card.note_pin_presented();
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

/// Signs a digest with a key whose PIN was verified in this session: the card PKCS#1 v1.5-pads
/// the DigestInfo (`80 2A 00 9A|97`, §6.6) and returns the signature.
///
/// # Errors
/// [`JpkiError::DigestLength`] before any APDU when the digest does not fit the hash;
/// a card error (6982 when the PIN was not verified).
pub fn sign<T: CardTransport>(
    card: &mut Card<T>,
    key: KeyKind,
    hash: HashAlg,
    digest: &[u8],
) -> Result<Vec<u8>, JpkiError> {
    let digest_info = hash.digest_info(digest)?;
    select(card)?;
    let by_sfi = |short_id: u8| {
        Command::new(
            "COMPUTE DIGITAL SIGNATURE",
            0x80,
            0x2A,
            0x00,
            0x80 | short_id,
        )
        .with_data(digest_info.clone())
        .with_le(MAX_SHORT_LE)
    };
    let current = || {
        Command::new("COMPUTE DIGITAL SIGNATURE", 0x80, 0x2A, 0x00, 0x80)
            .with_data(digest_info.clone())
            .with_le(MAX_SHORT_LE)
    };
    let resp = exchange_with_sfi(card, key.ef(), by_sfi, current)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_info_lengths() {
        assert_eq!(HashAlg::Sha256.digest_info(&[0; 32]).unwrap().len(), 51);
        assert_eq!(HashAlg::Sha384.digest_info(&[0; 48]).unwrap().len(), 67);
        assert_eq!(HashAlg::Sha512.digest_info(&[0; 64]).unwrap().len(), 83);
        assert!(matches!(
            HashAlg::Sha256.digest_info(&[0; 31]),
            Err(JpkiError::DigestLength {
                expected: 32,
                got: 31,
                ..
            })
        ));
        assert!(HashAlg::Sha512.digest_info(&[]).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(HashAlg::parse("sha384"), Some(HashAlg::Sha384));
        assert_eq!(HashAlg::parse("sha1"), None);
        assert_eq!(KeyKind::parse("auth"), Some(KeyKind::Auth));
        assert_eq!(KeyKind::parse("Sign"), None);
    }
}
