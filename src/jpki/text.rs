//! Text AP (券面事項入力補助AP, `docs/reference/jpki-protocol.md` §3): the basic four attributes
//! (EF 0002), the integrity record over them (EF 0003) and the AP's CV certificate (EF 0004),
//! read as the card holds them; [`crate::pki::cvc`] says whether they are J-LIS's.
//!
//! The My Number file (EF 0001) is never read: jpkid does not collect the number (DESIGN §1).
//! Its digest in the integrity record is therefore covered only by the record's signature.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::card::{Card, CardError};
use crate::tlv::{self, Tlv, TlvError};
use crate::transport::CardTransport;

use super::ap::{FirstRead, read_ef, verify_pin};
use super::pin::TextPin;
use super::{EF_BASIC_FOUR, EF_INTEGRITY, EF_TEXT_CVC, JpkiError, PinGuard, PinKind, TEXT_AP_AID};
use crate::apdu::StatusWord;

/// Size of EF 0003 on every card (§3.4): `FF 30 82 01 4B` + 0x14B.
const INTEGRITY_LEN: usize = 5 + 0x14B;
/// Size of EF 0004 (§3.5): `7F 21 82 02 33` + 0x233.
const CVC_LEN: usize = 5 + 0x233;

const TAG_BASIC_FOUR: u32 = 0xFF20;
const TAG_OFFSETS: u32 = 0xDF21;
const TAG_NAME: u32 = 0xDF22;
const TAG_ADDRESS: u32 = 0xDF23;
const TAG_BIRTH: u32 = 0xDF24;
const TAG_SEX: u32 = 0xDF25;
const TAG_INTEGRITY: u32 = 0xFF30;
const TAG_MYNUMBER_DIGEST: u32 = 0xDF31;
const TAG_BASIC_FOUR_DIGEST: u32 = 0xDF32;
const TAG_RECORD_SIGNATURE: u32 = 0xDF33;

/// The basic four attributes (基本4情報) as written on the card. Zeroized on drop; `Debug`
/// shows only lengths.
pub struct BasicFour {
    /// 氏名 (family and given name separated by U+3000).
    pub name: Zeroizing<String>,
    /// 住所.
    pub address: Zeroizing<String>,
    /// 生年月日, Gregorian `YYYYMMDD`.
    pub birth_date: Zeroizing<String>,
    /// 性別 code: `1` male, `2` female, `9` not applicable, `0` not known.
    pub sex: Zeroizing<String>,
    /// SHA-256 over DF22..DF25 as written (the range the integrity record's DF32 covers).
    pub digest: [u8; 32],
}

impl fmt::Debug for BasicFour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BasicFour {{ name: [{} bytes], address: [{} bytes], birth_date: [{} bytes], sex: [{} bytes] }}",
            self.name.len(),
            self.address.len(),
            self.birth_date.len(),
            self.sex.len()
        )
    }
}

impl Drop for BasicFour {
    fn drop(&mut self) {
        self.digest.zeroize();
    }
}

/// The integrity record (EF 0003). Personal (DESIGN §3): DF31 is the SHA-256 of the My Number
/// file, which a search over every number inverts, so the record is wiped when dropped and
/// never shown.
pub struct IntegrityRecord {
    /// DF31: SHA-256 of EF 0001 (not checked: jpkid never reads the My Number).
    pub my_number_digest: Zeroizing<[u8; 32]>,
    /// DF32: SHA-256 of the basic four TLVs.
    pub basic_four_digest: Zeroizing<[u8; 32]>,
    /// The bytes DF33 signs (DF31 and DF32 TLVs as written).
    pub signed_bytes: Zeroizing<Vec<u8>>,
    /// DF33: RSA signature by the key in EF 0004.
    pub signature: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for IntegrityRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntegrityRecord([REDACTED])")
    }
}

/// Selects the text AP.
fn select<T: CardTransport>(card: &mut Card<T>) -> Result<(), JpkiError> {
    match card.select_application("SELECT TEXT AP", &TEXT_AP_AID)? {
        StatusWord::Success => Ok(()),
        _ => Err(JpkiError::NoTextApplication),
    }
}

fn malformed(what: &'static str) -> impl Fn(TlvError) -> JpkiError {
    move |e| CardError::malformed(what, e).into()
}

/// The text AP with its PIN verified in this session: the only way to its personal files.
#[derive(Debug)]
pub struct UnlockedText<'c, T: CardTransport> {
    card: &'c mut Card<T>,
}

/// Verifies the text PIN behind the guard.
///
/// # Errors
/// [`JpkiError::NoTextApplication`] on smartphone tokens, PIN errors, or a card error.
pub fn unlock<'c, T: CardTransport>(
    card: &'c mut Card<T>,
    pin: &TextPin,
    guard: PinGuard,
) -> Result<UnlockedText<'c, T>, JpkiError> {
    select(card)?;
    verify_pin(card, PinKind::TextPin, pin.bytes(), guard)?;
    Ok(UnlockedText { card })
}

impl<T: CardTransport> UnlockedText<'_, T> {
    /// The basic four (EF 0002).
    ///
    /// # Errors
    /// As [`read_basic_four`].
    pub fn read_basic_four(&mut self) -> Result<BasicFour, JpkiError> {
        read_basic_four(self.card)
    }

    /// The integrity record (EF 0003).
    ///
    /// # Errors
    /// As [`read_integrity_record`].
    pub fn read_integrity_record(&mut self) -> Result<IntegrityRecord, JpkiError> {
        read_integrity_record(self.card)
    }

    /// The AP's CV certificate (EF 0004, free to read), as the card holds it.
    ///
    /// # Errors
    /// As [`read_cv_certificate`].
    pub fn read_cv_certificate(&mut self) -> Result<Zeroizing<Vec<u8>>, JpkiError> {
        read_cv_certificate(self.card)
    }
}

/// Reads and parses the basic four (EF 0002). The text PIN must be verified in this session.
///
/// # Errors
/// [`JpkiError::NoTextApplication`], a card error (6982 without the PIN), or
/// [`CardError::Malformed`] naming the field that is wrong.
fn read_basic_four<T: CardTransport>(card: &mut Card<T>) -> Result<BasicFour, JpkiError> {
    select(card)?;
    let file = read_ef(
        card,
        EF_BASIC_FOUR,
        "basic four (EF 0002)",
        true,
        FirstRead::Header,
    )?;
    parse_basic_four(&file)
}

/// Parses EF 0002: `FF20 { DF21 offsets; DF22 name; DF23 address; DF24 birth date; DF25 sex }`.
/// Each offset in DF21 must point at its field's tag (§3.3).
///
/// # Errors
/// [`CardError::Malformed`] with the TLV cause or the field that is wrong.
pub fn parse_basic_four(file: &[u8]) -> Result<BasicFour, JpkiError> {
    const WHAT: &str = "basic four (EF 0002)";
    let outer = tlv::expect(file, TAG_BASIC_FOUR).map_err(malformed(WHAT))?;
    let mut children = outer.children();
    let offsets = match children.next() {
        Some(Ok(t)) if t.tag == TAG_OFFSETS && t.value.len() == 8 => t,
        Some(Ok(t)) => {
            return Err(malformed("basic four offset table (DF21)")(
                TlvError::Unexpected {
                    expected: TAG_OFFSETS,
                    found: t.tag,
                },
            ));
        }
        Some(Err(e)) => return Err(malformed(WHAT)(e)),
        None => return Err(malformed(WHAT)(TlvError::Missing(TAG_OFFSETS))),
    };
    let digest_start = offsets.header_len + offsets.value.len() + outer.header_len;
    let mut fields: Vec<Tlv<'_>> = Vec::with_capacity(4);
    let mut position = digest_start;
    let mut table = offsets.value.chunks_exact(2);
    for (tag, what) in [
        (TAG_NAME, "name (DF22)"),
        (TAG_ADDRESS, "address (DF23)"),
        (TAG_BIRTH, "birth date (DF24)"),
        (TAG_SEX, "sex (DF25)"),
    ] {
        let field = match children.next() {
            Some(Ok(t)) if t.tag == tag => t,
            Some(Ok(t)) => {
                return Err(malformed(what)(TlvError::Unexpected {
                    expected: tag,
                    found: t.tag,
                }));
            }
            Some(Err(e)) => return Err(malformed(what)(e)),
            None => return Err(malformed(what)(TlvError::Missing(tag))),
        };
        let declared = table
            .next()
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        if declared != Some(position) {
            return Err(CardError::Malformed {
                what: "basic four offset table (DF21) disagrees with the fields",
                source: None,
            }
            .into());
        }
        position += field.total_len();
        fields.push(field);
    }
    let end = outer.header_len + outer.value.len();
    let digest: [u8; 32] = Sha256::digest(file.get(digest_start..end).unwrap_or_default()).into();
    let text = |t: &Tlv<'_>, what: &'static str| -> Result<Zeroizing<String>, JpkiError> {
        std::str::from_utf8(t.value)
            .map(|s| Zeroizing::new(s.to_owned()))
            .map_err(|_| CardError::Malformed { what, source: None }.into())
    };
    let [name, address, birth, sex] = fields.as_slice() else {
        return Err(CardError::Malformed {
            what: WHAT,
            source: None,
        }
        .into());
    };
    let birth_date = text(birth, "birth date (DF24) is not UTF-8")?;
    if birth_date.len() != 8 || !birth_date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CardError::Malformed {
            what: "birth date (DF24) is not YYYYMMDD",
            source: None,
        }
        .into());
    }
    let sex = text(sex, "sex (DF25) is not UTF-8")?;
    if sex.len() != 1 || !sex.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CardError::Malformed {
            what: "sex (DF25) is not one digit",
            source: None,
        }
        .into());
    }
    Ok(BasicFour {
        name: text(name, "name (DF22) is not UTF-8")?,
        address: text(address, "address (DF23) is not UTF-8")?,
        birth_date,
        sex,
        digest,
    })
}

/// Reads and parses the integrity record (EF 0003) in one extended READ where the reader
/// allows it. Needs the text PIN verified in this session.
///
/// # Errors
/// A card error, or [`CardError::Malformed`] naming what is wrong.
fn read_integrity_record<T: CardTransport>(
    card: &mut Card<T>,
) -> Result<IntegrityRecord, JpkiError> {
    select(card)?;
    let file = read_ef(
        card,
        EF_INTEGRITY,
        "integrity record (EF 0003)",
        true,
        FirstRead::Whole(INTEGRITY_LEN),
    )?;
    parse_integrity_record(&file)
}

/// Parses EF 0003: `FF30 { DF31 32 bytes; DF32 32 bytes; DF33 signature }`.
///
/// # Errors
/// [`CardError::Malformed`] naming the part that is wrong.
pub fn parse_integrity_record(file: &[u8]) -> Result<IntegrityRecord, JpkiError> {
    const WHAT: &str = "integrity record (EF 0003)";
    let outer = tlv::expect(file, TAG_INTEGRITY).map_err(malformed(WHAT))?;
    let digest =
        |tag: u32, what: &'static str| -> Result<(Zeroizing<[u8; 32]>, usize), JpkiError> {
            let t = outer.child(tag).map_err(malformed(what))?;
            let mut value = Zeroizing::new([0u8; 32]);
            if t.value.len() != 32 {
                return Err(CardError::Malformed { what, source: None }.into());
            }
            value.copy_from_slice(t.value);
            Ok((value, t.total_len()))
        };
    let (my_number_digest, len31) = digest(TAG_MYNUMBER_DIGEST, "My Number digest (DF31)")?;
    let (basic_four_digest, len32) = digest(TAG_BASIC_FOUR_DIGEST, "basic four digest (DF32)")?;
    let signature = outer
        .child(TAG_RECORD_SIGNATURE)
        .map_err(malformed("integrity signature (DF33)"))?;
    let signed_bytes = Zeroizing::new(
        outer
            .value
            .get(..len31 + len32)
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
    );
    Ok(IntegrityRecord {
        my_number_digest,
        basic_four_digest,
        signed_bytes,
        signature: Zeroizing::new(signature.value.to_vec()),
    })
}

/// Reads the CV certificate (EF 0004), which is free to read; [`crate::pki::cvc`] parses and
/// checks it. Traced and kept as personal like every text AP response (DESIGN §3).
///
/// # Errors
/// A card error, or [`CardError::Malformed`] when the file is no TLV.
pub fn read_cv_certificate<T: CardTransport>(
    card: &mut Card<T>,
) -> Result<Zeroizing<Vec<u8>>, JpkiError> {
    select(card)?;
    Ok(read_ef(
        card,
        EF_TEXT_CVC,
        "CV certificate (EF 0004)",
        true,
        FirstRead::Whole(CVC_LEN),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// soltia48's synthetic test-card vector layout (§3.3), with made-up values.
    fn sample() -> Vec<u8> {
        let name = "試験\u{3000}花子".as_bytes();
        let address = "東京都千代田区霞が関２丁目１番".as_bytes();
        let mut fields = Vec::new();
        let mut offsets = Vec::new();
        let mut pos = 3 + 11;
        for (tag, v) in [
            (0x22u8, name),
            (0x23, address),
            (0x24, b"19800217".as_slice()),
            (0x25, b"2".as_slice()),
        ] {
            offsets.extend_from_slice(&u16::try_from(pos).unwrap().to_be_bytes());
            fields.extend_from_slice(&[0xDF, tag, u8::try_from(v.len()).unwrap()]);
            fields.extend_from_slice(v);
            pos += 3 + v.len();
        }
        let mut value = vec![0xDF, 0x21, 0x08];
        value.extend_from_slice(&offsets);
        value.extend_from_slice(&fields);
        let mut file = vec![0xFF, 0x20, u8::try_from(value.len()).unwrap()];
        file.extend_from_slice(&value);
        file.extend_from_slice(&[0xFF; 10]);
        file
    }

    #[test]
    fn parses_and_digests_the_field_range() {
        let file = sample();
        let four = parse_basic_four(&file).unwrap();
        assert_eq!(four.name.as_str(), "試験\u{3000}花子");
        assert_eq!(four.birth_date.as_str(), "19800217");
        assert_eq!(four.sex.as_str(), "2");
        let expected: [u8; 32] = Sha256::digest(&file[14..file.len() - 10]).into();
        assert_eq!(four.digest, expected);
        assert!(!format!("{four:?}").contains("花子"));
    }

    #[test]
    fn wrong_offset_table_is_named() {
        let mut file = sample();
        file[6] = 0x10; // DF22 offset 0x000E -> 0x100E
        let err = parse_basic_four(&file).unwrap_err().to_string();
        assert!(err.contains("DF21"), "{err}");
    }

    #[test]
    fn truncated_file_is_a_parse_error() {
        let file = sample();
        for cut in 0..file.len() - 10 {
            assert!(parse_basic_four(&file[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn bad_birth_date_is_named() {
        let mut file = sample();
        let at = file.windows(8).position(|w| w == b"19800217").unwrap();
        file[at] = b'X';
        let err = parse_basic_four(&file).unwrap_err().to_string();
        assert!(err.contains("birth date"), "{err}");
    }
}
