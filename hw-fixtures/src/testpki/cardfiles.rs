//! Raw EF contents of the JPKI AP and the text AP (`jpki-protocol.md` §2.1–2.2, §3.2–3.6).
//!
//! Lengths are BER definite: short form below 128, `81 xx` up to 255, `82 xx xx` above.

use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use super::TestPkiError;
use super::keys::{SigAlg, TestKey};

/// EF 0006 token label: which kind of JPKI token this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenLabel {
    /// Physical My Number Card.
    Card,
    /// Android smartphone token.
    Android,
    /// iPhone smartphone token.
    Iphone,
}

impl TokenLabel {
    /// The label text before space padding.
    pub fn text(self) -> &'static str {
        match self {
            TokenLabel::Card => "JPKIAPICCTOKEN2",
            TokenLabel::Android => "JPKIAPGPSETOKEN",
            TokenLabel::Iphone => "JPKIAPIOSTOKEN",
        }
    }
}

/// BER definite length.
pub fn ber_len(n: usize, out: &mut Vec<u8>) -> Result<(), TestPkiError> {
    match n {
        0..=0x7F => out.push(n as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, n as u8]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        _ => return Err(TestPkiError::TooLong(n)),
    }
    Ok(())
}

/// A TLV with a (possibly multi-byte) tag.
pub fn tlv(tag: &[u8], value: &[u8]) -> Result<Vec<u8>, TestPkiError> {
    let mut out = tag.to_vec();
    ber_len(value.len(), &mut out)?;
    out.extend_from_slice(value);
    Ok(out)
}

/// A TLV whose length is always written `82 xx xx`, as the card does for the 256-byte blocks.
fn tlv82(tag: &[u8], value: &[u8]) -> Result<Vec<u8>, TestPkiError> {
    let n = u16::try_from(value.len()).map_err(|_| TestPkiError::TooLong(value.len()))?;
    let mut out = tag.to_vec();
    out.push(0x82);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(value);
    Ok(out)
}

/// Copies `s` into a `len`-byte field padded with spaces (PKCS#11 style).
fn padded(s: &str, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = s.bytes().take(len).collect();
    v.resize(len, b' ');
    v
}

/// EF 0006: a 160-byte `CK_TOKEN_INFO` with 4-byte big-endian `CK_ULONG`s.
pub fn token_info(label: TokenLabel, serial: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(160);
    v.extend(padded(label.text(), 32));
    v.extend(padded("JPKI-VCARD TEST TOKEN", 32));
    v.extend(padded("TEST", 16));
    v.extend(padded(serial, 16));
    // flags: RNG | LOGIN_REQUIRED | USER_PIN_INITIALIZED | TOKEN_INITIALIZED.
    for x in [0x0000_040Du32, 0, 0, 0, 0, 16, 6] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    // total/free public/private memory: unavailable.
    v.extend_from_slice(&[0xFF; 16]);
    v.extend_from_slice(b"03");
    v.extend_from_slice(b"01");
    v.extend(padded("", 16));
    v
}

/// EF 0008: certificate availability (`8F` present, `00` absent; third byte unknown, 00).
pub fn cert_availability(sign: bool, auth: bool) -> Vec<u8> {
    let b = |p: bool| if p { 0x8F } else { 0x00 };
    vec![b(sign), b(auth), 0x00]
}

/// Pads a file with `FF` to `size` bytes (no-op when already that long or longer).
pub fn ff_pad(mut data: Vec<u8>, size: Option<usize>) -> Vec<u8> {
    if let Some(size) = size.filter(|&s| data.len() < s) {
        data.resize(size, 0xFF);
    }
    data
}

/// Text AP EF 0001: `FF 10 0C` + 12 ASCII digits + `FF FF` (17 physical bytes).
pub fn my_number_ef(number: &str) -> Result<Vec<u8>, TestPkiError> {
    if number.len() != 12 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TestPkiError::MyNumberBase(number.to_owned()));
    }
    let mut v = vec![0xFF, 0x10, 0x0C];
    v.extend_from_slice(number.as_bytes());
    v.extend_from_slice(&[0xFF, 0xFF]);
    Ok(v)
}

/// The basic four as the text AP stores them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicFour {
    /// 氏名, family and given names separated by U+3000.
    pub name: String,
    /// 住所, block numbers in full-width digits.
    pub address: String,
    /// 生年月日 `YYYYMMDD`.
    pub birth: String,
    /// 性別, ISO 5218 digit.
    pub sex: String,
}

/// Text AP EF 0002: `FF 20 <len> { DF21 08 <four u16 offsets> DF22 DF23 DF24 DF25 }`.
///
/// Each offset is the file offset of the tag of DF22…DF25, so it depends on whether the outer
/// length needs the `81 xx` form.
pub fn basic_four_ef(b: &BasicFour) -> Result<Vec<u8>, TestPkiError> {
    let fields = [
        tlv(&[0xDF, 0x22], b.name.as_bytes())?,
        tlv(&[0xDF, 0x23], b.address.as_bytes())?,
        tlv(&[0xDF, 0x24], b.birth.as_bytes())?,
        tlv(&[0xDF, 0x25], b.sex.as_bytes())?,
    ];
    let fields_len: usize = fields.iter().map(Vec::len).sum();
    let inner_len = 11 + fields_len;
    let mut header = vec![0xFF, 0x20];
    ber_len(inner_len, &mut header)?;
    let mut offset = header.len() + 11;
    let mut table = Vec::with_capacity(8);
    for f in &fields {
        let o = u16::try_from(offset).map_err(|_| TestPkiError::TooLong(offset))?;
        table.extend_from_slice(&o.to_be_bytes());
        offset += f.len();
    }
    let mut out = header;
    out.extend(tlv(&[0xDF, 0x21], &table)?);
    for f in fields {
        out.extend(f);
    }
    Ok(out)
}

/// The bytes DF32 hashes: EF 0002's outer value with the DF21 TLV skipped (DF22..DF25 TLVs).
pub fn basic_four_digest_input(ef0002: &[u8]) -> Result<&[u8], TestPkiError> {
    let bad = || TestPkiError::Layout("EF 0002");
    let (value_start, len) = match ef0002.get(2) {
        Some(0x81) => (4, usize::from(*ef0002.get(3).ok_or_else(bad)?)),
        Some(&n) if n < 0x80 => (3, usize::from(n)),
        _ => return Err(bad()),
    };
    let end = value_start + len;
    // DF21 08 + 8 bytes.
    ef0002.get(value_start + 11..end).ok_or_else(bad)
}

/// Text AP EF 0003: `FF 30 82 01 4B { DF31 20 h(EF0001) DF32 20 h(EF0002 part) DF33 82 01 00 sig }`.
///
/// DF33 is RSA PKCS#1 v1.5 SHA-256 by `card_key` over the 68 bytes `DF31 TLV ‖ DF32 TLV`
/// (tags and lengths included; the outer `FF 30 82 01 4B` header is not signed).
pub fn integrity_ef(
    ef0001: &[u8],
    ef0002: &[u8],
    card_key: &TestKey,
) -> Result<Vec<u8>, TestPkiError> {
    let mut signed = tlv(&[0xDF, 0x31], &Sha256::digest(ef0001))?;
    signed.extend(tlv(
        &[0xDF, 0x32],
        &Sha256::digest(basic_four_digest_input(ef0002)?),
    )?);
    let sig = card_key.sign(SigAlg::RsaSha256, &signed)?;
    let mut value = signed;
    value.extend(tlv82(&[0xDF, 0x33], &sig)?);
    tlv82(&[0xFF, 0x30], &value)
}

/// Text AP EF 0004: `7F21 { 5F4E body, 5F37 sig }`, body = issuer key id (16) ‖ holder key id
/// (16) ‖ `90 03 010001` ‖ `91 82 0100 <modulus>`, signed (PKCS#1 v1.5 SHA-256) by the issuer.
pub fn cv_certificate(
    issuer_key_id: &[u8; 16],
    holder_key_id: &[u8; 16],
    holder: &TestKey,
    issuer: &TestKey,
) -> Result<Vec<u8>, TestPkiError> {
    let public = holder
        .rsa_public()
        .ok_or(TestPkiError::AlgMismatch(SigAlg::RsaSha256))?;
    let mut modulus = public.n().to_bytes_be();
    // Left-pad to 256 bytes so the layout is fixed.
    while modulus.len() < 256 {
        modulus.insert(0, 0);
    }
    let mut body = Vec::with_capacity(297);
    body.extend_from_slice(issuer_key_id);
    body.extend_from_slice(holder_key_id);
    body.extend(tlv(&[0x90], &public.e().to_bytes_be())?);
    body.extend(tlv82(&[0x91], &modulus)?);
    let sig = issuer.sign(SigAlg::RsaSha256, &body)?;
    let mut value = tlv82(&[0x5F, 0x4E], &body)?;
    value.extend(tlv82(&[0x5F, 0x37], &sig)?);
    tlv82(&[0x7F, 0x21], &value)
}

/// Text AP EF 0005: `FF 40 82 00 9F { DF41 04 01 03 0E 01, DF42 10 <key id>, DF43 82 00 80
/// <32 bytes then 96 × FF> }` (the 32 bytes are a digest here; their real meaning is unknown).
pub fn ap_basic_info(key_id: &[u8; 16]) -> Result<Vec<u8>, TestPkiError> {
    let mut value = tlv(&[0xDF, 0x41], &[0x01, 0x03, 0x0E, 0x01])?;
    value.extend(tlv(&[0xDF, 0x42], key_id)?);
    let mut block = Sha256::digest(key_id).to_vec();
    block.resize(128, 0xFF);
    value.extend(tlv82(&[0xDF, 0x43], &block)?);
    tlv82(&[0xFF, 0x40], &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_four_matches_reference_offsets() {
        // Shape of the reference vector: a 15-byte name and a 0x36-byte address.
        let b = BasicFour {
            name: "試験　太郎".into(),
            address: "東京都千代田区霞が関二丁目１番２号試験".into(),
            birth: "19900102".into(),
            sex: "1".into(),
        };
        let ef = basic_four_ef(&b).unwrap();
        assert_eq!(&ef[..2], &[0xFF, 0x20]);
        assert_eq!(usize::from(ef[2]) + 3, ef.len());
        assert_eq!(&ef[3..6], &[0xDF, 0x21, 0x08]);
        for i in 0..4 {
            let o = usize::from(u16::from_be_bytes([ef[6 + 2 * i], ef[7 + 2 * i]]));
            assert_eq!(ef[o], 0xDF);
            assert_eq!(ef[o + 1], 0x22 + i as u8);
        }
        assert_eq!(u16::from_be_bytes([ef[6], ef[7]]), 0x000E);
    }

    #[test]
    fn long_form_outer_length() {
        let b = BasicFour {
            name: "試験　太郎".into(),
            address: "東".repeat(50),
            birth: "19900102".into(),
            sex: "1".into(),
        };
        let ef = basic_four_ef(&b).unwrap();
        assert_eq!(ef[2], 0x81);
        assert_eq!(usize::from(ef[3]) + 4, ef.len());
        let o = usize::from(u16::from_be_bytes([ef[9], ef[10]]));
        assert_eq!(&ef[o..o + 3], &[0xDF, 0x23, 0x81]);
    }

    #[test]
    fn token_info_layout() {
        let t = token_info(TokenLabel::Android, "X");
        assert_eq!(t.len(), 160);
        assert_eq!(&t[..16], b"JPKIAPGPSETOKEN ");
        assert_eq!(&t[96..100], &[0, 0, 4, 0x0D]);
        assert_eq!(&t[140..144], b"0301");
    }
}
