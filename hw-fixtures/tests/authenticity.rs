//! What the counter flows will check, done here with `rsa`/`sha2` directly against every
//! committed persona through the virtual card's APDUs, compared with the persona's `[expect]`:
//!
//! - `authenticity` (`CheckAuthenticity`, jpki-protocol.md §4.1): the visual AP's CV certificate
//!   chains to a key in `testpki/card_ca/`, the card-face signature DF28 holds over the face
//!   data, and the card signs a challenge with the key of DF24;
//! - `integrity` (`MatchAttributes`): the text AP's record (EF 0003) is right and signed by the
//!   key its CV certificate (EF 0004) certifies, and that certificate chains to `card_ca/`;
//! - `key_matches_certificate` (`Link`): the signing key signs what the signing certificate's
//!   key verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use der::{Decode, Encode};
use jpki_vcard::{Persona, PinId, VirtualCard};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::Verifier;
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

const SEL_JPKI: &[u8] = &[
    0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01,
];
const SEL_TEXT: &[u8] = &[
    0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08,
];
const SEL_VISUAL: &[u8] = &[
    0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02,
];

fn personas() -> Vec<(String, Persona)> {
    let mut v: Vec<(String, Persona)> = std::fs::read_dir(jpki_vcard::personas_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("persona.toml").exists())
        .map(|p: PathBuf| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, Persona::load(&p).unwrap())
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(v.len() >= 18, "{}", v.len());
    v
}

fn x(card: &mut VirtualCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut r = card.execute(apdu);
    assert!(r.len() >= 2);
    let sw = r.split_off(r.len() - 2);
    (r, u16::from_be_bytes([sw[0], sw[1]]))
}

/// Reads a whole EF of the current AP: SELECT EF, one short READ, then the rest in one
/// extended READ (or 256-byte pieces on a card without extended length), as the daemon will.
fn read_ef(card: &mut VirtualCard, p: &Persona, fid: u16) -> (Vec<u8>, u16) {
    let [hi, lo] = fid.to_be_bytes();
    assert_eq!(x(card, &[0x00, 0xA4, 0x02, 0x0C, 0x02, hi, lo]).1, 0x9000);
    let (mut data, sw) = x(card, &[0x00, 0xB0, 0x00, 0x00, 0x00]);
    if sw != 0x9000 || data.len() < 256 {
        return (data, sw);
    }
    loop {
        let [oh, ol] = u16::try_from(data.len()).unwrap().to_be_bytes();
        let apdu = if p.extended {
            vec![0x00, 0xB0, oh, ol, 0x00, 0x00, 0x00]
        } else {
            vec![0x00, 0xB0, oh, ol, 0x00]
        };
        match x(card, &apdu) {
            (d, 0x9000) if !d.is_empty() => data.extend(d),
            (_, 0x6B00) | (_, 0x9000) => return (data, 0x9000),
            (d, other) => return (d, other),
        }
    }
}

fn verify(card: &mut VirtualCard, p: &Persona, pin: PinId) -> u16 {
    let [hi, lo] = pin.ef().to_be_bytes();
    assert_eq!(x(card, &[0x00, 0xA4, 0x02, 0x0C, 0x02, hi, lo]).1, 0x9000);
    let value = p.pin(pin).value.to_vec();
    let mut apdu = vec![0x00, 0x20, 0x00, 0x80, value.len() as u8];
    apdu.extend(value);
    x(card, &apdu).1
}

/// BER TLV at `at`: (tag, header length, value length).
fn tlv(b: &[u8], at: usize) -> (u32, usize, usize) {
    let mut i = at;
    let mut tag = u32::from(b[i]);
    if b[i] & 0x1F == 0x1F {
        i += 1;
        tag = (tag << 8) | u32::from(b[i]);
    }
    i += 1;
    let len = match b[i] {
        n if n < 0x80 => {
            i += 1;
            usize::from(n)
        }
        0x81 => {
            i += 2;
            usize::from(b[i - 1])
        }
        0x82 => {
            i += 3;
            usize::from(u16::from_be_bytes([b[i - 2], b[i - 1]]))
        }
        other => panic!("length byte {other:02X}"),
    };
    (tag, i - at, len)
}

/// The objects inside the outer TLV at 0: (tag, whole object, value, offset in the file).
fn objects(file: &[u8]) -> Vec<(u32, &[u8], &[u8], usize)> {
    let (_, h, len) = tlv(file, 0);
    let mut out = Vec::new();
    let mut i = h;
    while i < h + len {
        let (tag, oh, ol) = tlv(file, i);
        out.push((tag, &file[i..i + oh + ol], &file[i + oh..i + oh + ol], i));
        i += oh + ol;
    }
    assert_eq!(i, h + len, "objects fill the outer value exactly");
    out
}

fn field<'a>(objs: &[(u32, &'a [u8], &'a [u8], usize)], tag: u32) -> &'a [u8] {
    objs.iter().find(|o| o.0 == tag).unwrap().2
}

/// A public key in the card's `90`/`91` form.
fn card_rsa(value: &[u8]) -> RsaPublicKey {
    let (t, h, l) = tlv(value, 0);
    assert_eq!(t, 0x90);
    let e = &value[h..h + l];
    let (t, h2, l2) = tlv(value, h + l);
    assert_eq!(t, 0x91);
    assert_eq!(l2, 256);
    let n = &value[h + l + h2..h + l + h2 + l2];
    RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e)).unwrap()
}

/// A parsed CV certificate: issuer id, subject id, certified key, body, signature.
struct Cvc {
    issuer: [u8; 16],
    subject: [u8; 16],
    key: RsaPublicKey,
    body: Vec<u8>,
    sig: Vec<u8>,
}

fn cvc(file: &[u8]) -> Cvc {
    assert_eq!(&file[..5], &[0x7F, 0x21, 0x82, 0x02, 0x33]);
    let objs = objects(file);
    let body = field(&objs, 0x5F4E);
    assert_eq!(body.len(), 297);
    Cvc {
        issuer: body[..16].try_into().unwrap(),
        subject: body[16..32].try_into().unwrap(),
        key: card_rsa(&body[32..]),
        body: body.to_vec(),
        sig: field(&objs, 0x5F37).to_vec(),
    }
}

fn is_jlis_form(id: &[u8; 16]) -> bool {
    id[..7].iter().all(u8::is_ascii_digit)
        && id[7..9] == [0x08, 0x05]
        && id[9..12].iter().all(u8::is_ascii_digit)
}

/// The key `trust.card_ca_dir` holds for `id`, looked up by file name as the daemon will.
fn card_ca_key(id: &[u8; 16]) -> Option<RsaPublicKey> {
    let path: PathBuf = jpki_vcard::card_ca_dir().join(format!("{}.pem", hex::encode_upper(id)));
    let pem = std::fs::read_to_string(path).ok()?;
    Some(RsaPublicKey::from_public_key_pem(&pem).unwrap())
}

fn pkcs1_sha256_ok(key: &RsaPublicKey, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = Signature::try_from(sig) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(msg, &sig)
        .is_ok()
}

/// Whether the CV certificate is signed by a key of `card_ca/` (all 16 id bytes matched).
fn chains_to_card_ca(c: &Cvc) -> bool {
    card_ca_key(&c.issuer).is_some_and(|k| pkcs1_sha256_ok(&k, &c.body, &c.sig))
}

fn sha256_digest_info(data: &[u8]) -> Vec<u8> {
    let mut di = hex::decode("3031300D060960864801650304020105000420").unwrap();
    di.extend_from_slice(&Sha256::digest(data));
    di
}

/// Japanese-era `YYMMDD` of a Gregorian `YYYYMMDD` (independent of the generator's code).
fn era_yymmdd(ymd: &str) -> String {
    let (y, md): (u32, &str) = (ymd[..4].parse().unwrap(), &ymd[4..]);
    let key = (y, md);
    let start = if key >= (2019, "0501") {
        2019
    } else if key >= (1989, "0108") {
        1989
    } else if key >= (1926, "1225") {
        1926
    } else if key >= (1912, "0730") {
        1912
    } else {
        1868
    };
    format!("{:02}{md}", y - start + 1)
}

/// DF21: nine u16 offsets, from the first byte of the file, of DF22 … DF2A; `FF` filler after
/// the object; the whole EF longer than 256 bytes.
fn check_face_layout(name: &str, file: &[u8]) {
    assert!(file.len() > 256, "{name}");
    assert_eq!(&file[..3], &[0xFF, 0x20, 0x82], "{name}");
    let objs = objects(file);
    let tags: Vec<u32> = objs.iter().map(|o| o.0).collect();
    assert_eq!(tags, (0xDF21..=0xDF2A).collect::<Vec<u32>>(), "{name}");
    let table = objs[0].2;
    assert_eq!(table.len(), 18, "{name}");
    for (i, o) in objs[1..].iter().enumerate() {
        let off = usize::from(u16::from_be_bytes([table[2 * i], table[2 * i + 1]]));
        assert_eq!(off, o.3, "{name}: DF{:02X}", 0x22 + i);
        assert_eq!(&file[off..off + 2], &[0xDF, 0x22 + i as u8]);
    }
    let (_, h, l) = tlv(file, 0);
    assert!(file[h + l..].iter().all(|&b| b == 0xFF), "{name}: filler");
    assert!(h + l < file.len(), "{name}: some filler");
}

#[test]
fn check_authenticity_as_expected() {
    let mut seen = std::collections::BTreeMap::new();
    for (name, p) in personas() {
        let mut card = VirtualCard::new(p.clone());
        let (_, sw) = x(&mut card, SEL_VISUAL);
        let expect = p.expect.authenticity.as_deref();
        if !p.visual_ap {
            assert_eq!(sw, 0x6A82, "{name}");
            assert_eq!(expect, None, "{name}");
            assert!(p.expect.card_kind.as_deref() != Some("card"), "{name}");
            continue;
        }
        assert_eq!(sw, 0x9000, "{name}");
        let code_b = String::from_utf8(p.pin(PinId::CodeB).value.to_vec()).unwrap();
        assert_eq!(code_b.len(), 14, "{name}");
        assert!(code_b.bytes().all(|b| b.is_ascii_digit()), "{name}");
        // Before 照合番号B nothing is readable (the stricter reading, see card.rs).
        for fid in [2u16, 4] {
            assert_eq!(read_ef(&mut card, &p, fid).1, 0x6982, "{name}");
        }
        assert_eq!(verify(&mut card, &p, PinId::CodeB), 0x9000, "{name}");
        let (ef4, sw) = read_ef(&mut card, &p, 0x0004);
        assert_eq!(sw, 0x9000, "{name}");
        let (ef2, sw) = read_ef(&mut card, &p, 0x0002);
        assert_eq!(sw, 0x9000, "{name}");
        assert_eq!(
            Some(ef2.as_slice()),
            p.file(jpki_vcard::persona::Ap::Visual, 2)
        );
        check_face_layout(&name, &ef2);
        // 照合番号B never opens the rendered My Number.
        assert_eq!(read_ef(&mut card, &p, 0x0005).1, 0x6982, "{name}");

        let cert = cvc(&ef4);
        assert!(
            is_jlis_form(&cert.issuer) && is_jlis_form(&cert.subject),
            "{name}"
        );
        assert_eq!(cert.issuer[0], b'9', "{name}: never a J-LIS id");
        let cv_ok = chains_to_card_ca(&cert);

        let objs = objects(&ef2);
        let whole = |tags: &[u32]| -> Vec<u8> {
            tags.iter()
                .flat_map(|t| objs.iter().find(|o| o.0 == *t).unwrap().1.to_vec())
                .collect()
        };
        let mut di = hex::decode("3071300D060960864801650304020105000460").unwrap();
        di.extend(Sha256::digest(whole(&[0xDF22, 0xDF23, 0xDF24])));
        di.extend(Sha256::digest(whole(&[0xDF25, 0xDF26])));
        di.extend(Sha256::digest(whole(&[0xDF27])));
        let face_ok = cert
            .key
            .verify(Pkcs1v15Sign::new_unprefixed(), &di, field(&objs, 0xDF28))
            .is_ok();

        // The challenge: a nonce of ours, its SHA-256 DigestInfo, signed with no credential
        // (a fresh power-on: nothing verified), checked against DF24.
        let nonce = Sha256::digest(format!("challenge for {name}"));
        let di = sha256_digest_info(&nonce);
        let mut fresh = VirtualCard::new(p.clone());
        x(&mut fresh, SEL_VISUAL);
        let mut apdu = vec![0x80, 0x2A, 0x00, 0x00, di.len() as u8];
        apdu.extend_from_slice(&di);
        apdu.push(0x00);
        let (sig, sw) = x(&mut fresh, &apdu);
        assert_eq!((sig.len(), sw), (256, 0x9000), "{name}");
        let card_key = card_rsa(field(&objs, 0xDF24));
        let challenge_ok = card_key
            .verify(Pkcs1v15Sign::new_unprefixed(), &di, &sig)
            .is_ok();

        let verdict = match (cv_ok, face_ok, challenge_ok) {
            (true, true, true) => "genuine",
            (false, true, true) => "cv-untrusted",
            (true, false, true) => "card-face-mismatch",
            (true, true, false) => "challenge-failed",
            other => panic!("{name}: more than one check fails: {other:?}"),
        };
        assert_eq!(Some(verdict), expect, "{name}");
        *seen.entry(verdict).or_insert(0) += 1;

        // 照合番号B is made of what the face prints: era birth date, expiry year, code.
        let birth = std::str::from_utf8(field(&objs, 0xDF22)).unwrap();
        let expiry = std::str::from_utf8(field(&objs, 0xDF29)).unwrap();
        assert_eq!(&code_b[..6], era_yymmdd(birth), "{name}");
        assert_eq!(&code_b[6..10], &expiry[..4], "{name}");
        let iso = format!("{}-{}-{}", &expiry[..4], &expiry[4..6], &expiry[6..]);
        assert_eq!(p.expect.expiry.as_deref(), Some(iso.as_str()), "{name}");
        assert_eq!(
            p.pin(PinId::Birth).value.as_slice(),
            era_yymmdd(birth).as_bytes()
        );
        // Images: PNG, PNG, JP2, PNG.
        for tag in [0xDF25, 0xDF26, 0xDF2A] {
            assert!(
                field(&objs, tag).starts_with(b"\x89PNG\r\n\x1a\n"),
                "{name}"
            );
        }
        assert!(
            field(&objs, 0xDF27).starts_with(&hex::decode("0000000C6A5020200D0A870A").unwrap()),
            "{name}"
        );
        // A genuine face agrees with the text AP's basic four (birth date, sex).
        if p.text_ap {
            let t2 = p.file(jpki_vcard::persona::Ap::Text, 2).unwrap();
            let to = objects(t2);
            assert_eq!(field(&to, 0xDF24), birth.as_bytes(), "{name}");
            assert_eq!(field(&to, 0xDF25), field(&objs, 0xDF23), "{name}");
        }
    }
    for v in [
        "genuine",
        "cv-untrusted",
        "card-face-mismatch",
        "challenge-failed",
    ] {
        assert!(seen.contains_key(v), "no persona is {v}");
    }
}

#[test]
fn age_record_and_my_number_image_open_only_with_their_keys() {
    for (name, p) in personas() {
        if !p.visual_ap {
            continue;
        }
        let mut card = VirtualCard::new(p.clone());
        x(&mut card, SEL_VISUAL);
        assert_eq!(read_ef(&mut card, &p, 1).1, 0x6982, "{name}");
        assert_eq!(read_ef(&mut card, &p, 5).1, 0x6982, "{name}");
        assert_eq!(verify(&mut card, &p, PinId::Birth), 0x9000, "{name}");
        let (ef1, sw) = read_ef(&mut card, &p, 1);
        assert_eq!(sw, 0x9000, "{name}");
        assert_eq!(
            read_ef(&mut card, &p, 2).1,
            0x6982,
            "{name}: birth key opens EF 0001 only"
        );
        assert_eq!(read_ef(&mut card, &p, 5).1, 0x6982, "{name}");
        assert_eq!(verify(&mut card, &p, PinId::CodeA), 0x9000, "{name}");
        let (ef5, sw) = read_ef(&mut card, &p, 5);
        assert_eq!(sw, 0x9000, "{name}");
        let (ef2, _) = read_ef(&mut card, &p, 2);
        let (ef4, _) = read_ef(&mut card, &p, 4);
        let (ef6, _) = read_ef(&mut card, &p, 6);
        assert_eq!(ef6, vec![0xFF; 16], "{name}");
        let (ef3, sw) = read_ef(&mut card, &p, 3);
        assert_eq!((ef3.len(), sw), (320, 0x9000), "{name}");
        assert_eq!(&ef3[..5], &[0xFF, 0x30, 0x82, 0x01, 0x3B], "{name}");
        let cert = cvc(&ef4);
        let face = objects(&ef2);

        // EF 0001: DF11 = DF22, DF12 = DF24, DF13 over DF11 ‖ DF12 as written.
        assert_eq!(&ef1[..5], &[0xFF, 0x10, 0x82, 0x02, 0x1E], "{name}");
        assert_eq!(ef1.len(), 547, "{name}");
        let age = objects(&ef1);
        assert_eq!(field(&age, 0xDF11), field(&face, 0xDF22), "{name}");
        assert_eq!(field(&age, 0xDF12), field(&face, 0xDF24), "{name}");
        let signed: Vec<u8> = age[..2].iter().flat_map(|o| o.1.to_vec()).collect();
        assert!(
            pkcs1_sha256_ok(&cert.key, &signed, field(&age, 0xDF13)),
            "{name}: age record"
        );
        // EF 0005: a PNG, the card key, a signature over both.
        let img = objects(&ef5);
        assert!(field(&img, 0xDF41).starts_with(b"\x89PNG"), "{name}");
        assert_eq!(field(&img, 0xDF42), field(&face, 0xDF24), "{name}");
        let signed: Vec<u8> = img[..2].iter().flat_map(|o| o.1.to_vec()).collect();
        assert!(
            pkcs1_sha256_ok(&cert.key, &signed, field(&img, 0xDF43)),
            "{name}: My Number image"
        );
        // 照合番号A is the text AP's My Number (the cloned chip's is the source's).
        if let (Some(n), false) = (&p.expect.my_number, name == "cloned-chip") {
            assert_eq!(p.pin(PinId::CodeA).value.as_slice(), n.as_bytes(), "{name}");
        }
    }
}

#[test]
fn text_ap_integrity_as_expected() {
    for (name, p) in personas() {
        if !p.text_ap {
            assert_eq!(p.expect.integrity, None, "{name}");
            continue;
        }
        let mut card = VirtualCard::new(p.clone());
        assert_eq!(x(&mut card, SEL_TEXT).1, 0x9000);
        assert_eq!(verify(&mut card, &p, PinId::Text), 0x9000, "{name}");
        let ef1 = read_ef(&mut card, &p, 1).0;
        let ef2 = read_ef(&mut card, &p, 2).0;
        let ef3 = read_ef(&mut card, &p, 3).0;
        let (ef4, sw) = read_ef(&mut card, &p, 4);
        assert_eq!(sw, 0x9000, "{name}");
        let cert = cvc(&ef4);
        assert!(
            is_jlis_form(&cert.issuer) && is_jlis_form(&cert.subject),
            "{name}"
        );
        assert_eq!(cert.issuer[0], b'9', "{name}");
        // The record: digests right and signed by the key EF 0004 certifies (always).
        let (_, h2, l2) = tlv(&ef2, 0);
        assert_eq!(&ef3[8..40], &Sha256::digest(&ef1)[..], "{name}");
        assert_eq!(&ef3[43..75], &Sha256::digest(&ef2[h2 + 11..h2 + l2])[..]);
        assert!(
            pkcs1_sha256_ok(&cert.key, &ef3[5..75], &ef3[80..336]),
            "{name}"
        );
        let verdict = if chains_to_card_ca(&cert) {
            "verified"
        } else {
            "unverifiable"
        };
        assert_eq!(p.expect.integrity.as_deref(), Some(verdict), "{name}");
        if verdict == "unverifiable" {
            // text-self-signed: issued by itself.
            assert_eq!(cert.issuer, cert.subject, "{name}");
            assert!(pkcs1_sha256_ok(&cert.key, &cert.body, &cert.sig), "{name}");
        }
    }
}

fn cert_key(ef: &[u8]) -> RsaPublicKey {
    let (_, h, l) = tlv(ef, 0);
    let cert = x509_cert::Certificate::from_der(&ef[..h + l]).unwrap();
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    RsaPublicKey::from_public_key_der(&spki).unwrap()
}

#[test]
fn signing_key_matches_certificate_as_expected() {
    let mut falses = 0;
    for (name, p) in personas() {
        let Some(ef1) = p.file(jpki_vcard::persona::Ap::Jpki, 1) else {
            assert_eq!(p.expect.key_matches_certificate, None, "{name}");
            continue;
        };
        let want = p.expect.key_matches_certificate.unwrap();
        falses += usize::from(!want);
        let key =
            RsaPrivateKey::from_pkcs8_der(&std::fs::read(p.dir.join("keys/sign.pk8.der")).unwrap())
                .unwrap();
        assert_eq!(key.to_public_key() == cert_key(ef1), want, "{name}");
        if p.pin(PinId::Sign).remaining == 0 {
            continue;
        }
        // Proof of possession through the card: sign a challenge, check it with EF 0001's key.
        let mut card = VirtualCard::new(p.clone());
        x(&mut card, SEL_JPKI);
        assert_eq!(verify(&mut card, &p, PinId::Sign), 0x9000, "{name}");
        let (cert, sw) = read_ef(&mut card, &p, 1);
        assert_eq!(sw, 0x9000, "{name}");
        let di = sha256_digest_info(format!("link {name}").as_bytes());
        let [hi, lo] = 0x001Au16.to_be_bytes();
        x(&mut card, &[0x00, 0xA4, 0x02, 0x0C, 0x02, hi, lo]);
        let mut apdu = vec![0x80, 0x2A, 0x00, 0x80, di.len() as u8];
        apdu.extend_from_slice(&di);
        apdu.push(0);
        let (sig, sw) = x(&mut card, &apdu);
        assert_eq!(sw, 0x9000, "{name}");
        let ok = cert_key(&cert)
            .verify(Pkcs1v15Sign::new_unprefixed(), &di, &sig)
            .is_ok();
        assert_eq!(ok, want, "{name}");
    }
    assert_eq!(
        falses, 1,
        "exactly one persona (forged) cannot prove possession"
    );
}

#[test]
fn card_ca_directory_holds_the_two_configured_keys() {
    let dir = jpki_vcard::card_ca_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "39303030303233080530303100000000.pem",
            "39303030303333080530303100000000.pem"
        ]
    );
    let keys_dir = jpki_vcard::testpki_dir().join("keys");
    for (file, stem) in [
        (&names[0], "card_ca_visualap"),
        (&names[1], "card_ca_textap"),
    ] {
        let public =
            RsaPublicKey::from_public_key_pem(&std::fs::read_to_string(dir.join(file)).unwrap())
                .unwrap();
        let private = RsaPrivateKey::from_pkcs8_der(
            &std::fs::read(keys_dir.join(format!("{stem}.pk8.der"))).unwrap(),
        )
        .unwrap();
        assert_eq!(private.to_public_key(), public, "{file}");
        assert_eq!(rsa::traits::PublicKeyParts::size(&public), 256);
        let id: [u8; 16] = hex::decode(&file[..32]).unwrap().try_into().unwrap();
        assert!(
            is_jlis_form(&id) && id[0] == b'9' && id[12..] == [0; 4],
            "{file}"
        );
    }
    // The key unknown-card-ca's certificate names is kept apart, for tests that configure it.
    let other = jpki_vcard::testpki_dir().join("card_ca_unconfigured");
    let files: Vec<_> = std::fs::read_dir(&other).unwrap().collect();
    assert_eq!(files.len(), 1);
    let p = Persona::load(&jpki_vcard::persona_dir("unknown-card-ca")).unwrap();
    let cert = cvc(p.file(jpki_vcard::persona::Ap::Visual, 4).unwrap());
    let path = other.join(format!("{}.pem", hex::encode_upper(cert.issuer)));
    let key = RsaPublicKey::from_public_key_pem(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(pkcs1_sha256_ok(&key, &cert.body, &cert.sig));
    assert!(card_ca_key(&cert.issuer).is_none());
    // Same CA number and group as a configured key except the group: all 16 bytes count.
    assert_eq!(&cert.issuer[..7], b"9000023");
}
