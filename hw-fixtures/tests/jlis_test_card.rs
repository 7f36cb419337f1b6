//! The real J-LIS test-card files of `hw-fixtures/jlis-test-card/` verify as
//! `docs/reference/jpki-protocol.md` §3.4, §3.5 and §4.1 say (see that directory's README).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(jpki_vcard::jlis_test_card_dir().join(name)).unwrap()
}

/// BER TLV at `at` with a one- or two-byte tag: (tag, header length, value length).
fn tlv(b: &[u8], at: usize) -> (u32, usize, usize) {
    let two = b[at] & 0x1F == 0x1F;
    let tag = if two {
        u32::from(u16::from_be_bytes([b[at], b[at + 1]]))
    } else {
        u32::from(b[at])
    };
    let l = at + 1 + usize::from(two);
    match b[l] {
        n if n < 0x80 => (tag, l + 1 - at, usize::from(n)),
        0x81 => (tag, l + 2 - at, usize::from(b[l + 1])),
        0x82 => (
            tag,
            l + 3 - at,
            usize::from(u16::from_be_bytes([b[l + 1], b[l + 2]])),
        ),
        other => panic!("length {other:02X}"),
    }
}

/// The objects of the outer TLV: (tag, object as written, value, file offset).
fn objects(file: &[u8]) -> Vec<(u32, &[u8], &[u8], usize)> {
    let (_, h, len) = tlv(file, 0);
    let mut v = Vec::new();
    let mut i = h;
    while i < h + len {
        let (tag, oh, ol) = tlv(file, i);
        v.push((tag, &file[i..i + oh + ol], &file[i + oh..i + oh + ol], i));
        i += oh + ol;
    }
    assert_eq!(i, h + len);
    v
}

fn card_key(value: &[u8]) -> RsaPublicKey {
    assert_eq!(
        &value[..9],
        &[0x90, 0x03, 0x01, 0x00, 0x01, 0x91, 0x82, 0x01, 0x00]
    );
    RsaPublicKey::new(BigUint::from_bytes_be(&value[9..265]), 65537u32.into()).unwrap()
}

/// (issuer id, subject id, certified key, body, signature) of a CV certificate.
fn cvc(file: &[u8]) -> ([u8; 16], [u8; 16], RsaPublicKey, Vec<u8>, Vec<u8>) {
    assert_eq!(
        &file[..10],
        &[0x7F, 0x21, 0x82, 0x02, 0x33, 0x5F, 0x4E, 0x82, 0x01, 0x29]
    );
    assert_eq!(file.len(), 568);
    let body = &file[10..307];
    assert_eq!(&file[307..312], &[0x5F, 0x37, 0x82, 0x01, 0x00]);
    (
        body[..16].try_into().unwrap(),
        body[16..32].try_into().unwrap(),
        card_key(&body[32..]),
        body.to_vec(),
        file[312..].to_vec(),
    )
}

fn ca_key(id: &[u8; 16]) -> RsaPublicKey {
    let name = format!("card_ca/{}.pem", hex::encode_upper(id));
    RsaPublicKey::from_public_key_pem(&String::from_utf8(read(&name)).unwrap()).unwrap()
}

fn sha256_ok(key: &RsaPublicKey, msg: &[u8], sig: &[u8]) -> bool {
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(msg, &Signature::try_from(sig).unwrap())
        .is_ok()
}

#[test]
fn test_card_ca_keys_are_named_by_their_ids() {
    let mut names: Vec<String> =
        std::fs::read_dir(jpki_vcard::jlis_test_card_dir().join("card_ca"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    names.sort();
    let id = |n: &str| [n.as_bytes(), b"\x08\x05001\x00\x00\x00\x00"].concat();
    assert_eq!(
        names,
        [
            format!("{}.pem", hex::encode_upper(id("6000023"))),
            format!("{}.pem", hex::encode_upper(id("6000033"))),
        ]
    );
    for n in ["6000023", "6000033"] {
        let k = ca_key(&id(n).try_into().unwrap());
        assert_eq!((k.size(), k.e().to_bytes_be()), (256, vec![1, 0, 1]));
    }
}

#[test]
fn cv_certificates_verify_with_their_test_ca_only() {
    let (s_issuer, s_subject, _, s_body, s_sig) = cvc(&read("surface-0004.bin"));
    let (t_issuer, t_subject, _, t_body, t_sig) = cvc(&read("text-0004.bin"));
    assert_eq!(&s_issuer, b"6000023\x08\x05001\x00\x00\x00\x00");
    assert_eq!(&t_issuer, b"6000033\x08\x05001\x00\x00\x00\x00");
    assert_eq!(&s_subject[..12], b"1322121\x08\x05000");
    assert_eq!(&t_subject[..12], b"1322131\x08\x05000");
    assert!(sha256_ok(&ca_key(&s_issuer), &s_body, &s_sig));
    assert!(sha256_ok(&ca_key(&t_issuer), &t_body, &t_sig));
    assert!(!sha256_ok(&ca_key(&t_issuer), &s_body, &s_sig));
    assert!(!sha256_ok(&ca_key(&s_issuer), &t_body, &t_sig));
    let mut tampered = s_body.clone();
    tampered[40] ^= 1;
    assert!(!sha256_ok(&ca_key(&s_issuer), &tampered, &s_sig));
}

#[test]
fn card_face_offsets_and_three_digest_signature() {
    let face = read("surface-0002-photo-redacted.bin");
    assert_eq!(face.len(), 3070);
    assert_eq!(&face[..5], &[0xFF, 0x20, 0x82, 0x0B, 0xF9]);
    let objs = objects(&face);
    let tags: Vec<u32> = objs.iter().map(|o| o.0).collect();
    assert_eq!(tags, (0xDF21..=0xDF2A).collect::<Vec<u32>>());
    let table = objs[0].2;
    assert_eq!(table.len(), 18);
    for (i, o) in objs[1..].iter().enumerate() {
        let off = usize::from(u16::from_be_bytes([table[2 * i], table[2 * i + 1]]));
        assert_eq!(off, o.3, "DF{:02X}", 0x22 + i);
    }
    let field = |t: u32| objs.iter().find(|o| o.0 == t).unwrap();
    assert_eq!(field(0xDF22).2, b"19800217");
    assert_eq!(field(0xDF23).2, b"1");
    assert_eq!(field(0xDF29).2, b"20350217");
    // 照合番号B of this card is 55021720352285 (myna-card src/data.rs): 昭和55, 2035, 2285.
    assert!(field(0xDF25).2.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(&field(0xDF27).2[4..8], b"jP  ");

    let (.., ap_key, _, _) = cvc(&read("surface-0004.bin"));
    let digests = String::from_utf8(read("surface-0002-digests.txt")).unwrap();
    let df27: Vec<u8> = digests
        .lines()
        .find_map(|l| l.strip_prefix("df27 "))
        .map(|h| hex::decode(h).unwrap())
        .unwrap();
    let seg =
        |tags: &[u32]| -> Vec<u8> { tags.iter().flat_map(|t| field(*t).1.to_vec()).collect() };
    let mut di = hex::decode("3071300D060960864801650304020105000460").unwrap();
    di.extend(Sha256::digest(seg(&[0xDF22, 0xDF23, 0xDF24])));
    di.extend(Sha256::digest(seg(&[0xDF25, 0xDF26])));
    let mut with_recorded = di.clone();
    with_recorded.extend(&df27);
    let sig = field(0xDF28).2;
    ap_key
        .verify(Pkcs1v15Sign::new_unprefixed(), &with_recorded, sig)
        .unwrap();
    // Over the redacted photo itself it fails, as an altered face does.
    let mut with_redacted = di;
    with_redacted.extend(Sha256::digest(seg(&[0xDF27])));
    assert!(
        ap_key
            .verify(Pkcs1v15Sign::new_unprefixed(), &with_redacted, sig)
            .is_err()
    );
    // DF24 is the card's own key, not the key that signed the face.
    assert_ne!(card_key(field(0xDF24).2), ap_key);
}

#[test]
fn text_integrity_record_verifies_with_the_certified_key() {
    let record = read("text-0003.bin");
    assert_eq!(record.len(), 336);
    assert_eq!(
        &record[..8],
        &[0xFF, 0x30, 0x82, 0x01, 0x4B, 0xDF, 0x31, 0x20]
    );
    assert_eq!(&record[40..43], &[0xDF, 0x32, 0x20]);
    assert_eq!(&record[75..80], &[0xDF, 0x33, 0x82, 0x01, 0x00]);
    let (.., key, _, _) = cvc(&read("text-0004.bin"));
    assert!(sha256_ok(&key, &record[5..75], &record[80..]));
    let mut tampered = record.clone();
    tampered[20] ^= 1;
    assert!(!sha256_ok(&key, &tampered[5..75], &tampered[80..]));
    // Not by the visual AP's key.
    let (.., other, _, _) = cvc(&read("surface-0004.bin"));
    assert!(!sha256_ok(&other, &record[5..75], &record[80..]));
}
