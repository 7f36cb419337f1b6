//! Raw EF contents of the visual AP (券面事項確認AP, jpki-protocol.md §4, §4.1).
//!
//! Layouts follow the J-LIS test-card files myna-card 3.3.4 ships (`tests/fixtures/surface-*.bin`,
//! parsed by its `src/ap/surface.rs`): lengths below 128 in the short form, every longer one as
//! `82 xx xx` (the card writes `DF25 82 00 A9` for a 169-byte image, not `81 A9`).
//!
//! | EF | content |
//! |---|---|
//! | 0001 | `FF10 { DF11 birth YYYYMMDD; DF12 card key; DF13 sig }` |
//! | 0002 | `FF20 { DF21 offsets; DF22 … DF2A }` + `FF` filler (see [`card_face_ef`]) |
//! | 0003 | `FF30 { DF31 06 03 0E 01; DF32 key id; DF33 00; DF34 municipality; DF35 id ‖ 256 B }` |
//! | 0004 | CV certificate (`cardfiles::cv_certificate`) |
//! | 0005 | `FF40 { DF41 PNG; DF42 card key; DF43 sig }` |
//! | 0006 | 16 × `FF` |
//!
//! The signatures of 0001 and 0005 are PKCS#1 v1.5 SHA-256 over every object before the
//! signature, as written (myna-card `AgeRecord::verify`, `MyNumberImage::verify`); 0002's is
//! the three-digest signature of [`face_digest_info`]. All three are made by the AP key that
//! EF 0004 certifies, not by the card key the records carry.

use rsa::RsaPublicKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use super::TestPkiError;
use super::cardfiles::ff_pad;
use super::keys::{SigAlg, TestKey};

/// Size of EF 0002 on the virtual card: the face object, then `FF` filler up to this size.
pub const FACE_EF_SIZE: usize = 2048;

/// DigestInfo prefix of the card-face signature: SHA-256's AlgorithmIdentifier with an OCTET
/// STRING of 96 bytes (three digests) — `30 71 30 0D 06 09 60 86 48 01 65 03 04 02 01 05 00
/// 04 60` (jpki-protocol.md §4.1; myna-card `src/data.rs` `sha256_digest_info`).
pub const FACE_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x71, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x60,
];

/// A TLV as this AP writes it: short length below 128, else `82 xx xx`.
pub fn tlv(tag: &[u8], value: &[u8]) -> Result<Vec<u8>, TestPkiError> {
    let mut out = tag.to_vec();
    if value.len() < 0x80 {
        out.push(value.len() as u8);
    } else {
        let n = u16::try_from(value.len()).map_err(|_| TestPkiError::TooLong(value.len()))?;
        out.push(0x82);
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(value);
    Ok(out)
}

/// An RSA-2048 public key as the card stores it: `90 03 01 00 01`, `91 82 01 00 <modulus>`.
pub fn rsa_key_value(key: &RsaPublicKey) -> Result<Vec<u8>, TestPkiError> {
    let mut modulus = key.n().to_bytes_be();
    while modulus.len() < 256 {
        modulus.insert(0, 0);
    }
    let mut v = tlv(&[0x90], &key.e().to_bytes_be())?;
    v.extend(tlv(&[0x91], &modulus)?);
    Ok(v)
}

/// EF 0001, the age record: `FF 10 82 02 1E { DF11 08 YYYYMMDD; DF12 82 01 09 <card key>;
/// DF13 82 01 00 <sig> }`, 547 bytes.
pub fn age_record_ef(
    birth: &str,
    card_key: &RsaPublicKey,
    ap_key: &TestKey,
) -> Result<Vec<u8>, TestPkiError> {
    let mut value = tlv(&[0xDF, 0x11], birth.as_bytes())?;
    value.extend(tlv(&[0xDF, 0x12], &rsa_key_value(card_key)?)?);
    let sig = ap_key.sign(SigAlg::RsaSha256, &value)?;
    value.extend(tlv(&[0xDF, 0x13], &sig)?);
    tlv(&[0xFF, 0x10], &value)
}

/// What the face file carries (DF22 … DF2A except the offsets and the signature).
#[derive(Clone, Debug)]
pub struct FaceData {
    /// DF22 生年月日 `YYYYMMDD`.
    pub birth: String,
    /// DF23 性別 digit.
    pub sex: String,
    /// DF24 the card key.
    pub card_key: RsaPublicKey,
    /// DF25 氏名 image (PNG).
    pub name_image: Vec<u8>,
    /// DF26 住所 image (PNG).
    pub address_image: Vec<u8>,
    /// DF27 顔写真 (JPEG 2000).
    pub photo: Vec<u8>,
    /// DF29 有効期限 `YYYYMMDD` (not signed).
    pub expiry: String,
    /// DF2A セキュリティコード image (PNG, not signed).
    pub security_code_image: Vec<u8>,
}

/// The DigestInfo DF28 signs: [`FACE_DIGEST_INFO_PREFIX`] ‖ SHA-256(DF22‖DF23‖DF24) ‖
/// SHA-256(DF25‖DF26) ‖ SHA-256(DF27), each over the objects as written (tag, length, value).
pub fn face_digest_info(df22_24: &[u8], df25_26: &[u8], df27: &[u8]) -> Vec<u8> {
    let mut di = FACE_DIGEST_INFO_PREFIX.to_vec();
    for part in [df22_24, df25_26, df27] {
        di.extend_from_slice(&Sha256::digest(part));
    }
    di
}

/// EF 0002, the card face: `FF 20 82 LL LL { DF21 12 <9 u16 offsets>; DF22 … DF2A }`, then `FF`
/// filler to [`FACE_EF_SIZE`].
///
/// DF21 holds the big-endian offsets, from the first byte of the file, of the tags of DF22 …
/// DF2A. DF28 is the PKCS#1 v1.5 signature by `ap_key` of [`face_digest_info`]. With
/// `photo_after_signing`, DF27 is replaced by those bytes **after** the signature was made (the
/// `face-altered` persona); they must have the photo's length, so that DF21 stays right.
pub fn card_face_ef(
    face: &FaceData,
    ap_key: &TestKey,
    photo_after_signing: Option<&[u8]>,
) -> Result<Vec<u8>, TestPkiError> {
    let signed = [
        tlv(&[0xDF, 0x22], face.birth.as_bytes())?,
        tlv(&[0xDF, 0x23], face.sex.as_bytes())?,
        tlv(&[0xDF, 0x24], &rsa_key_value(&face.card_key)?)?,
        tlv(&[0xDF, 0x25], &face.name_image)?,
        tlv(&[0xDF, 0x26], &face.address_image)?,
        tlv(&[0xDF, 0x27], &face.photo)?,
    ];
    let di = face_digest_info(&signed[..3].concat(), &signed[3..5].concat(), &signed[5]);
    let sig = ap_key.sign_pkcs1_raw(&di)?;
    let mut objects = signed.to_vec();
    if let Some(photo) = photo_after_signing {
        if photo.len() != face.photo.len() {
            return Err(TestPkiError::Layout("altered photo of another length"));
        }
        objects[5] = tlv(&[0xDF, 0x27], photo)?;
    }
    objects.push(tlv(&[0xDF, 0x28], &sig)?);
    objects.push(tlv(&[0xDF, 0x29], face.expiry.as_bytes())?);
    objects.push(tlv(&[0xDF, 0x2A], &face.security_code_image)?);

    let objects_len: usize = objects.iter().map(Vec::len).sum();
    let table_len = 3 + 2 * objects.len();
    let inner = table_len + objects_len;
    let header = if inner < 0x80 { 3 } else { 5 };
    let mut offset = header + table_len;
    let mut table = Vec::with_capacity(2 * objects.len());
    for o in &objects {
        let at = u16::try_from(offset).map_err(|_| TestPkiError::TooLong(offset))?;
        table.extend_from_slice(&at.to_be_bytes());
        offset += o.len();
    }
    let mut value = tlv(&[0xDF, 0x21], &table)?;
    for o in objects {
        value.extend(o);
    }
    let file = tlv(&[0xFF, 0x20], &value)?;
    if file.len() >= FACE_EF_SIZE {
        return Err(TestPkiError::TooLong(file.len()));
    }
    Ok(ff_pad(file, Some(FACE_EF_SIZE)))
}

/// EF 0003, AP basic data (320 bytes): `FF 30 82 01 3B { DF31 04 06 03 0E 01; DF32 10
/// <key_ref>; DF33 01 00; DF34 05 <municipality>; DF35 82 01 10 <opaque_ref> ‖ 256 bytes }`.
/// The real card's DF32 and DF35 meanings are unknown (myna-card `ApBasicData`); here DF32 and
/// the first 16 bytes of DF35 are fixed test ids and the 256 bytes are a SHA-256 stream of
/// `label`.
pub fn ap_basic_data_ef(
    key_ref: &[u8; 16],
    municipality: &str,
    opaque_ref: &[u8; 16],
    label: &str,
) -> Result<Vec<u8>, TestPkiError> {
    if municipality.len() != 5 || !municipality.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TestPkiError::Layout("municipality code"));
    }
    let mut value = tlv(&[0xDF, 0x31], &[0x06, 0x03, 0x0E, 0x01])?;
    value.extend(tlv(&[0xDF, 0x32], key_ref)?);
    value.extend(tlv(&[0xDF, 0x33], &[0x00])?);
    value.extend(tlv(&[0xDF, 0x34], municipality.as_bytes())?);
    let mut block = opaque_ref.to_vec();
    block.extend(super::images::stream(label, 256));
    value.extend(tlv(&[0xDF, 0x35], &block)?);
    tlv(&[0xFF, 0x30], &value)
}

/// EF 0005, the rendered My Number: `FF 40 { DF41 <PNG>; DF42 <card key>; DF43 <sig> }`.
pub fn my_number_image_ef(
    image: &[u8],
    card_key: &RsaPublicKey,
    ap_key: &TestKey,
) -> Result<Vec<u8>, TestPkiError> {
    let mut value = tlv(&[0xDF, 0x41], image)?;
    value.extend(tlv(&[0xDF, 0x42], &rsa_key_value(card_key)?)?);
    let sig = ap_key.sign(SigAlg::RsaSha256, &value)?;
    value.extend(tlv(&[0xDF, 0x43], &sig)?);
    tlv(&[0xFF, 0x40], &value)
}

/// EF 0006: 16 × `FF` (purpose unknown, myna-card README "Not implemented yet").
pub fn unknown_0006_ef() -> Vec<u8> {
    vec![0xFF; 16]
}

/// 照合番号B: birth `YYMMDD` (Japanese-era year) ‖ expiry year `YYYY` ‖ 4-digit security code.
pub fn code_b(birth_era_yymmdd: &str, expiry_year: u16, security_code: &str) -> String {
    format!("{birth_era_yymmdd}{expiry_year:04}{security_code}")
}

/// The public half of an RSA test key (for the card key of a record).
pub fn card_public(key: &TestKey) -> Result<RsaPublicKey, TestPkiError> {
    key.rsa_public()
        .ok_or(TestPkiError::AlgMismatch(SigAlg::RsaSha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_forms() {
        assert_eq!(
            tlv(&[0xDF, 0x2A], &[0; 106]).unwrap()[..3],
            [0xDF, 0x2A, 0x6A]
        );
        assert_eq!(
            tlv(&[0xDF, 0x25], &[0; 169]).unwrap()[..5],
            [0xDF, 0x25, 0x82, 0x00, 0xA9]
        );
    }

    #[test]
    fn digest_info_prefix_is_der_for_96_bytes() {
        let di = face_digest_info(b"a", b"b", b"c");
        assert_eq!(di.len(), 19 + 96);
        assert_eq!(usize::from(di[1]) + 2, di.len());
        assert_eq!(usize::from(di[18]), 96);
    }

    #[test]
    fn code_b_of_the_jlis_test_card() {
        // myna-card 3.3.4 src/data.rs `verification_code_b`: 1980-02-17, 2035, 2285.
        assert_eq!(code_b("550217", 2035, "2285"), "55021720352285");
    }
}
