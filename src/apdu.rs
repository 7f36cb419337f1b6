//! ISO 7816-4 command and response APDUs: encoding, decoding and the status words the My Number
//! Card answers with (`docs/reference/jpki-protocol.md` §8). Pure: no I/O.

use std::fmt;
use std::time::Duration;

use zeroize::Zeroizing;

/// Largest Lc of an extended APDU.
pub const MAX_EXTENDED_LC: usize = 65_535;
/// Largest Le of an extended APDU (encoded as `00 00`).
pub const MAX_EXTENDED_LE: usize = 65_536;
/// Largest Le of a short APDU (encoded as `00`).
pub const MAX_SHORT_LE: usize = 256;
/// Largest Lc of a short APDU.
pub const MAX_SHORT_LC: usize = 255;
/// Least time a VERIFY needs left of its request's deadline to be sent.
pub const VERIFY_TIME: Duration = Duration::from_millis(500);
/// Least time a COMPUTE DIGITAL SIGNATURE needs left: well above what a real card takes for an
/// RSA-2048 signature (under a second), so that a signature is not started only to be
/// abandoned with the key unlocked.
pub const SIGNATURE_TIME: Duration = Duration::from_millis(1500);

/// Why an APDU could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    /// The command data is longer than an extended APDU can carry.
    #[error("command data of {0} bytes is longer than 65535")]
    DataTooLong(usize),
    /// Le is zero or larger than 65536.
    #[error("expected length {0} is outside 1..=65536")]
    BadLe(usize),
    /// A response needs at least SW1 SW2.
    #[error("response of {0} bytes has no status word")]
    ResponseTooShort(usize),
}

/// Command data, either plain or secret. Secret data (PINs) is zeroized on drop and never shown.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Data {
    /// No data field (Lc absent).
    #[default]
    None,
    /// Data that may appear in a trace.
    Plain(Vec<u8>),
    /// Data that must never appear anywhere: shown as its length only.
    Sensitive(Zeroizing<Vec<u8>>),
}

impl Data {
    /// The bytes, whatever their kind.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Data::None => &[],
            Data::Plain(d) => d,
            Data::Sensitive(d) => d,
        }
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::None => f.write_str("-"),
            Data::Plain(d) => f.write_str(&hex::encode_upper(d)),
            Data::Sensitive(d) => write!(f, "[{} bytes redacted]", d.len()),
        }
    }
}

/// A command APDU. `name` says what the command is for (traces and errors name it).
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Short human name, e.g. `"SELECT JPKI AP"`.
    pub name: &'static str,
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Data field.
    pub data: Data,
    /// Expected response length (Le), 1..=65536, or `None` for no Le.
    pub le: Option<usize>,
    /// Whether the response data is personal and must not be traced.
    pub personal_response: bool,
    /// The least time the command must have left of the request's deadline to be sent: for a
    /// command that abandoning halfway leaves the card in a state that matters (a VERIFY may or
    /// may not have counted a try; a signature is being made); zero for the others.
    pub least_time: Duration,
}

impl Command {
    /// A command without data and without Le (ISO case 1).
    pub fn new(name: &'static str, cla: u8, ins: u8, p1: u8, p2: u8) -> Command {
        Command {
            name,
            cla,
            ins,
            p1,
            p2,
            data: Data::None,
            le: None,
            personal_response: false,
            least_time: Duration::ZERO,
        }
    }

    /// Sets plain command data.
    #[must_use]
    pub fn with_data(mut self, data: Vec<u8>) -> Command {
        self.data = Data::Plain(data);
        self
    }

    /// Sets secret command data (a PIN); the command needs [`VERIFY_TIME`] left.
    #[must_use]
    pub fn with_secret(mut self, data: Zeroizing<Vec<u8>>) -> Command {
        self.data = Data::Sensitive(data);
        self.least_time = self.least_time.max(VERIFY_TIME);
        self
    }

    /// Marks the command as one not to start with less than `least` of the deadline left.
    #[must_use]
    pub fn needs(mut self, least: Duration) -> Command {
        self.least_time = self.least_time.max(least);
        self
    }

    /// Sets Le.
    #[must_use]
    pub fn with_le(mut self, le: usize) -> Command {
        self.le = Some(le);
        self
    }

    /// Marks the response as personal data (never traced).
    #[must_use]
    pub fn personal(mut self) -> Command {
        self.personal_response = true;
        self
    }

    /// Whether this command needs the extended-length encoding.
    pub fn is_extended(&self) -> bool {
        self.data.bytes().len() > MAX_SHORT_LC || self.le.is_some_and(|le| le > MAX_SHORT_LE)
    }

    /// Encodes the command, short when everything fits and extended otherwise (ISO 7816-4 §5.1).
    /// The buffer is zeroized on drop because it may hold a PIN.
    ///
    /// # Errors
    /// [`ApduError::DataTooLong`] or [`ApduError::BadLe`] when a field does not fit.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, ApduError> {
        let data = self.data.bytes();
        if data.len() > MAX_EXTENDED_LC {
            return Err(ApduError::DataTooLong(data.len()));
        }
        if let Some(le) = self.le
            && (le == 0 || le > MAX_EXTENDED_LE)
        {
            return Err(ApduError::BadLe(le));
        }
        let extended = self.is_extended();
        let mut out = Zeroizing::new(Vec::with_capacity(4 + 3 + data.len() + 3));
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if !data.is_empty() {
            if extended {
                out.push(0);
                out.extend_from_slice(&len_u16(data.len()));
            } else {
                out.push(low_byte(data.len()));
            }
            out.extend_from_slice(data);
        }
        if let Some(le) = self.le {
            if extended {
                if data.is_empty() {
                    out.push(0);
                }
                out.extend_from_slice(&len_u16(le % MAX_EXTENDED_LE));
            } else {
                out.push(low_byte(le % MAX_SHORT_LE));
            }
        }
        Ok(out)
    }
}

/// Two big-endian bytes of a length already known to be at most 65536 (65536 itself encodes as 0).
fn len_u16(n: usize) -> [u8; 2] {
    let v = u16::try_from(n % MAX_EXTENDED_LE).unwrap_or(0);
    v.to_be_bytes()
}

/// The low byte of a length already known to be at most 256 (256 encodes as 0).
fn low_byte(n: usize) -> u8 {
    u8::try_from(n % MAX_SHORT_LE).unwrap_or(0)
}

/// Redacted view: header, data (or its length when secret), Le.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{:02X} {:02X} {:02X} {:02X}] data={:?}",
            self.name, self.cla, self.ins, self.p1, self.p2, self.data
        )?;
        if let Some(le) = self.le {
            write!(f, " le={le}")?;
        }
        Ok(())
    }
}

/// A response APDU: data (zeroized on drop, it may be personal) and status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// Response data without SW1 SW2.
    pub data: Zeroizing<Vec<u8>>,
    /// The status word.
    pub sw: StatusWord,
}

impl Response {
    /// Splits SW1 SW2 off a raw response.
    ///
    /// # Errors
    /// [`ApduError::ResponseTooShort`] for fewer than two bytes.
    pub fn from_bytes(raw: &[u8]) -> Result<Response, ApduError> {
        let split = raw
            .len()
            .checked_sub(2)
            .ok_or(ApduError::ResponseTooShort(raw.len()))?;
        let (data, sw) = raw.split_at(split);
        let sw = match sw {
            [a, b] => StatusWord::from_bytes(*a, *b),
            _ => return Err(ApduError::ResponseTooShort(raw.len())),
        };
        Ok(Response {
            data: Zeroizing::new(data.to_vec()),
            sw,
        })
    }

    /// Whether the status is 9000.
    pub fn is_ok(&self) -> bool {
        self.sw == StatusWord::Success
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Response {{ {} data bytes, sw: {} }}",
            self.data.len(),
            self.sw
        )
    }
}

/// Every status word of `docs/reference/jpki-protocol.md` §8, plus a fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusWord {
    /// `9000` success.
    Success,
    /// `61xx` more data available; GET RESPONSE with Le = xx (00 = 256).
    MoreData(u8),
    /// `6282` end of file reached before Le bytes (tolerated as a short read).
    EndOfFile,
    /// `6300` VERIFY failed for a key without retry limit.
    NoRetryLimit,
    /// `63Cx` VERIFY failed or retry query: x tries left (`63C0` = just blocked).
    RetriesLeft(u8),
    /// `66F1` SET SESSION KEY where the AP delivers no key.
    NoKeyDelivery,
    /// `6700` wrong length (e.g. empty VERIFY sent with Le; extended APDU refused).
    WrongLength,
    /// `6881` logical channel other than 0.
    LogicalChannelNotSupported,
    /// `6882` secure messaging not supported.
    SecureMessagingNotSupported,
    /// `6981` command incompatible with file structure.
    IncompatibleFileStructure,
    /// `6982` security status not satisfied (PIN not verified).
    SecurityStatusNotSatisfied,
    /// `6983` authentication method blocked (ISO; not reported from this card).
    AuthMethodBlocked,
    /// `6984` referenced data blocked: the PIN is blocked.
    ReferenceDataBlocked,
    /// `6985` conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// `6986` command not allowed: no current EF.
    NoCurrentEf,
    /// `69FC` secure-messaging CLA on READ BINARY / VERIFY.
    SecureMessagingRefused,
    /// `6A80` incorrect data.
    IncorrectData,
    /// `6A81` function not supported.
    FunctionNotSupported,
    /// `6A82` file or application not found.
    FileNotFound,
    /// `6A83` record not found.
    RecordNotFound,
    /// `6A86` incorrect P1-P2.
    IncorrectP1P2,
    /// `6A88` referenced data (GET DATA object) not found.
    ReferencedDataNotFound,
    /// `6B00` offset outside the EF.
    WrongOffset,
    /// `6Cxx` wrong Le; re-issue with Le = xx.
    WrongLe(u8),
    /// `6D00` instruction not supported.
    InsNotSupported,
    /// `6E00` class not supported.
    ClaNotSupported,
    /// `6F00` no precise diagnosis (seen as the first answer after a power cycle).
    NoPreciseDiagnosis,
    /// Anything else.
    Other(u16),
}

impl StatusWord {
    /// Decodes SW1 SW2.
    pub fn from_bytes(sw1: u8, sw2: u8) -> StatusWord {
        StatusWord::from(u16::from_be_bytes([sw1, sw2]))
    }

    /// The two-byte value.
    pub fn to_u16(self) -> u16 {
        match self {
            StatusWord::Success => 0x9000,
            StatusWord::MoreData(n) => 0x6100 | u16::from(n),
            StatusWord::EndOfFile => 0x6282,
            StatusWord::NoRetryLimit => 0x6300,
            StatusWord::RetriesLeft(n) => 0x63C0 | u16::from(n & 0x0F),
            StatusWord::NoKeyDelivery => 0x66F1,
            StatusWord::WrongLength => 0x6700,
            StatusWord::LogicalChannelNotSupported => 0x6881,
            StatusWord::SecureMessagingNotSupported => 0x6882,
            StatusWord::IncompatibleFileStructure => 0x6981,
            StatusWord::SecurityStatusNotSatisfied => 0x6982,
            StatusWord::AuthMethodBlocked => 0x6983,
            StatusWord::ReferenceDataBlocked => 0x6984,
            StatusWord::ConditionsNotSatisfied => 0x6985,
            StatusWord::NoCurrentEf => 0x6986,
            StatusWord::SecureMessagingRefused => 0x69FC,
            StatusWord::IncorrectData => 0x6A80,
            StatusWord::FunctionNotSupported => 0x6A81,
            StatusWord::FileNotFound => 0x6A82,
            StatusWord::RecordNotFound => 0x6A83,
            StatusWord::IncorrectP1P2 => 0x6A86,
            StatusWord::ReferencedDataNotFound => 0x6A88,
            StatusWord::WrongOffset => 0x6B00,
            StatusWord::WrongLe(n) => 0x6C00 | u16::from(n),
            StatusWord::InsNotSupported => 0x6D00,
            StatusWord::ClaNotSupported => 0x6E00,
            StatusWord::NoPreciseDiagnosis => 0x6F00,
            StatusWord::Other(v) => v,
        }
    }

    /// Whether a VERIFY answer means the PIN is blocked (`63C0` or `6984`; `6983` too, by ISO).
    pub fn means_blocked(self) -> bool {
        matches!(
            self,
            StatusWord::RetriesLeft(0)
                | StatusWord::ReferenceDataBlocked
                | StatusWord::AuthMethodBlocked
        )
    }
}

impl From<u16> for StatusWord {
    fn from(v: u16) -> StatusWord {
        let [sw1, sw2] = v.to_be_bytes();
        match (sw1, sw2) {
            (0x90, 0x00) => StatusWord::Success,
            (0x61, n) => StatusWord::MoreData(n),
            (0x62, 0x82) => StatusWord::EndOfFile,
            (0x63, 0x00) => StatusWord::NoRetryLimit,
            (0x63, n) if n & 0xF0 == 0xC0 => StatusWord::RetriesLeft(n & 0x0F),
            (0x66, 0xF1) => StatusWord::NoKeyDelivery,
            (0x67, 0x00) => StatusWord::WrongLength,
            (0x68, 0x81) => StatusWord::LogicalChannelNotSupported,
            (0x68, 0x82) => StatusWord::SecureMessagingNotSupported,
            (0x69, 0x81) => StatusWord::IncompatibleFileStructure,
            (0x69, 0x82) => StatusWord::SecurityStatusNotSatisfied,
            (0x69, 0x83) => StatusWord::AuthMethodBlocked,
            (0x69, 0x84) => StatusWord::ReferenceDataBlocked,
            (0x69, 0x85) => StatusWord::ConditionsNotSatisfied,
            (0x69, 0x86) => StatusWord::NoCurrentEf,
            (0x69, 0xFC) => StatusWord::SecureMessagingRefused,
            (0x6A, 0x80) => StatusWord::IncorrectData,
            (0x6A, 0x81) => StatusWord::FunctionNotSupported,
            (0x6A, 0x82) => StatusWord::FileNotFound,
            (0x6A, 0x83) => StatusWord::RecordNotFound,
            (0x6A, 0x86) => StatusWord::IncorrectP1P2,
            (0x6A, 0x88) => StatusWord::ReferencedDataNotFound,
            (0x6B, 0x00) => StatusWord::WrongOffset,
            (0x6C, n) => StatusWord::WrongLe(n),
            (0x6D, 0x00) => StatusWord::InsNotSupported,
            (0x6E, 0x00) => StatusWord::ClaNotSupported,
            (0x6F, 0x00) => StatusWord::NoPreciseDiagnosis,
            _ => StatusWord::Other(v),
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.to_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case1_is_four_bytes() {
        let c = Command::new("VERIFY", 0x00, 0x20, 0x00, 0x9B);
        assert_eq!(&c.to_bytes().unwrap()[..], &[0x00, 0x20, 0x00, 0x9B]);
    }

    #[test]
    fn short_case2_le_256_is_00() {
        let c = Command::new("READ", 0x00, 0xB0, 0x8A, 0x00).with_le(256);
        assert_eq!(&c.to_bytes().unwrap()[..], &[0x00, 0xB0, 0x8A, 0x00, 0x00]);
    }

    #[test]
    fn extended_case2() {
        let c = Command::new("READ", 0x00, 0xB0, 0x01, 0x00).with_le(1327);
        assert_eq!(
            &c.to_bytes().unwrap()[..],
            &[0x00, 0xB0, 0x01, 0x00, 0x00, 0x05, 0x2F]
        );
        let c = Command::new("READ", 0x00, 0xB0, 0x83, 0x00).with_le(65536);
        assert_eq!(
            &c.to_bytes().unwrap()[..],
            &[0x00, 0xB0, 0x83, 0x00, 0x00, 0x00, 0x00]
        );
    }

    #[test]
    fn short_case4() {
        let c = Command::new("SIGN", 0x80, 0x2A, 0x00, 0x9A)
            .with_data(vec![1, 2])
            .with_le(256);
        assert_eq!(
            &c.to_bytes().unwrap()[..],
            &[0x80, 0x2A, 0x00, 0x9A, 2, 1, 2, 0]
        );
    }

    #[test]
    fn extended_case4() {
        let c = Command::new("X", 0x00, 0x2A, 0, 0)
            .with_data(vec![7; 300])
            .with_le(256);
        let b = c.to_bytes().unwrap();
        assert_eq!(&b[..7], &[0, 0x2A, 0, 0, 0, 0x01, 0x2C]);
        assert_eq!(&b[b.len() - 2..], &[0x01, 0x00]);
        assert_eq!(b.len(), 4 + 3 + 300 + 2);
    }

    #[test]
    fn bad_lengths_are_errors() {
        let c = Command::new("X", 0, 0, 0, 0).with_le(0);
        assert_eq!(c.to_bytes(), Err(ApduError::BadLe(0)));
        let c = Command::new("X", 0, 0, 0, 0).with_le(65537);
        assert_eq!(c.to_bytes(), Err(ApduError::BadLe(65537)));
        let c = Command::new("X", 0, 0, 0, 0).with_data(vec![0; 65536]);
        assert_eq!(c.to_bytes(), Err(ApduError::DataTooLong(65536)));
    }

    #[test]
    fn secret_data_is_redacted_in_debug() {
        let c = Command::new("VERIFY", 0, 0x20, 0, 0x9B)
            .with_secret(Zeroizing::new(b"SECRET123".to_vec()));
        let shown = format!("{c:?}");
        assert!(shown.contains("[9 bytes redacted]"), "{shown}");
        assert!(!shown.contains("534543524554"), "{shown}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn response_split() {
        let r = Response::from_bytes(&[1, 2, 0x90, 0x00]).unwrap();
        assert_eq!(&r.data[..], &[1, 2]);
        assert!(r.is_ok());
        assert_eq!(
            Response::from_bytes(&[0x90]),
            Err(ApduError::ResponseTooShort(1))
        );
        assert_eq!(
            Response::from_bytes(&[]),
            Err(ApduError::ResponseTooShort(0))
        );
    }

    #[test]
    fn status_word_round_trips_every_value() {
        for v in 0..=u16::MAX {
            assert_eq!(StatusWord::from(v).to_u16(), v, "{v:04X}");
        }
    }

    #[test]
    fn named_status_words() {
        assert_eq!(StatusWord::from(0x63C3), StatusWord::RetriesLeft(3));
        assert_eq!(StatusWord::from(0x6984), StatusWord::ReferenceDataBlocked);
        assert!(StatusWord::from(0x63C0).means_blocked());
        assert!(StatusWord::from(0x6984).means_blocked());
        assert!(!StatusWord::from(0x63C1).means_blocked());
        assert_eq!(StatusWord::from(0x6A82).to_string(), "6A82");
    }
}
