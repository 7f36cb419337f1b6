//! The card CA keys of the test PKI: the keys that sign the CV certificates (EF 0004) of the
//! text and visual APs, and the 16-byte key ids that name them.
//!
//! A key id has the J-LIS form (jpki-protocol.md §4.1; myna-card 3.3.4 `src/data.rs` `KeyId`):
//! 7 ASCII digits, `08 05`, 3 ASCII digits, 4 bytes of padding. J-LIS production ids start with
//! `5`, its test hierarchy's with `6`; every id the test PKI makes starts with `9`, so it can
//! never be taken for one of theirs.

use super::TestPkiError;
use super::keys::TestKey;

/// A 16-byte key id: `number` (7 digits) ‖ `08 05` ‖ `group` (3 digits) ‖ `00 00 00 00`.
pub fn key_id(number: &str, group: &str) -> Result<[u8; 16], TestPkiError> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(number, 7) || !digits(group, 3) {
        return Err(TestPkiError::KeyId(format!("{number}/{group}")));
    }
    let mut id = [0u8; 16];
    id[..7].copy_from_slice(number.as_bytes());
    id[7..9].copy_from_slice(&[0x08, 0x05]);
    id[9..12].copy_from_slice(group.as_bytes());
    Ok(id)
}

/// The file name DESIGN §8 gives a card CA key in `trust.card_ca_dir`: the 32 upper-case hex
/// digits of the whole id, then `.pem`.
pub fn file_name(id: &[u8; 16]) -> String {
    format!("{}.pem", hex::encode_upper(id))
}

/// Text-AP card CA key id, `"9000033" 08 05 "001" 00 00 00 00` (J-LIS: `5000033`, `6000033`).
pub const TEXT_CA_NUMBER: &str = "9000033";
/// Visual-AP card CA key id, `"9000023" 08 05 "001" 00 00 00 00` (J-LIS: `5000023`, `6000023`).
pub const VISUAL_CA_NUMBER: &str = "9000023";
/// Group of the two configured card CA keys.
pub const CONFIGURED_GROUP: &str = "001";
/// Group of the card CA key no test configuration trusts: `"9000023" 08 05 "002" …`, as if it
/// were a later key generation a lab has not configured (persona `unknown-card-ca`).
pub const UNCONFIGURED_GROUP: &str = "002";

/// One card CA key with its id.
#[derive(Clone, Debug)]
pub struct CardCa {
    /// 証明者鍵ID as written into the CV certificates it issues.
    pub id: [u8; 16],
    /// The key (RSA-2048).
    pub key: TestKey,
    /// File stem of the private key under `testpki/keys/`.
    pub stem: &'static str,
}

/// The three card CA keys of the test PKI.
#[derive(Clone, Debug)]
pub struct CardCas {
    /// Signs every text-AP EF 0004 (except `text-self-signed`'s); in `card_ca/`.
    pub text: CardCa,
    /// Signs every visual-AP EF 0004 (except `unknown-card-ca`'s); in `card_ca/`.
    pub visual: CardCa,
    /// Signs `unknown-card-ca`'s visual EF 0004; **not** in `card_ca/` (its public key is in
    /// `card_ca_unconfigured/`).
    pub unconfigured: CardCa,
}

impl CardCas {
    /// Generates the three keys (labels `card_ca_textap`, `card_ca_visualap`,
    /// `card_ca_unconfigured`).
    pub fn generate() -> Result<CardCas, TestPkiError> {
        let ca = |stem: &'static str, number, group| -> Result<CardCa, TestPkiError> {
            Ok(CardCa {
                id: key_id(number, group)?,
                key: TestKey::rsa(stem)?,
                stem,
            })
        };
        Ok(CardCas {
            text: ca("card_ca_textap", TEXT_CA_NUMBER, CONFIGURED_GROUP)?,
            visual: ca("card_ca_visualap", VISUAL_CA_NUMBER, CONFIGURED_GROUP)?,
            unconfigured: ca("card_ca_unconfigured", VISUAL_CA_NUMBER, UNCONFIGURED_GROUP)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_file_names() {
        let id = key_id(TEXT_CA_NUMBER, CONFIGURED_GROUP).unwrap();
        assert_eq!(&id, b"9000033\x08\x05001\x00\x00\x00\x00");
        assert_eq!(file_name(&id), "39303030303333080530303100000000.pem");
        // DESIGN §8's own example.
        let jlis = key_id("5000023", "001").unwrap();
        assert_eq!(file_name(&jlis), "35303030303233080530303100000000.pem");
        assert!(key_id("900003", "001").is_err());
        assert!(key_id("9000033", "0a1").is_err());
    }
}
