//! The committed personas (`hw-fixtures/personas`, or `$JPKI_PERSONAS_DIR`) through the virtual
//! card: each loads, answers as its `persona.toml` says, and signs with the key matching its
//! certificates. Skips (passes) when there is no personas directory yet.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use der::{Decode, Encode};
use jpki_vcard::persona::Ap;
use jpki_vcard::{Persona, PinId, VirtualCard};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};

fn personas() -> Vec<PathBuf> {
    let dir = std::env::var_os("JPKI_PERSONAS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(jpki_vcard::personas_dir);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!("no personas in {}; skipping", dir.display());
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("persona.toml").exists())
        .collect();
    v.sort();
    v
}

fn x(card: &mut VirtualCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut r = card.execute(apdu);
    assert!(r.len() >= 2, "no response to {}", hex::encode_upper(apdu));
    let sw = r.split_off(r.len() - 2);
    (r, u16::from_be_bytes([sw[0], sw[1]]))
}

/// Reads a whole EF with short APDUs: first by SFI (or SELECT when SFI is off), then offsets.
fn read_ef(card: &mut VirtualCard, fid: u8, sfi: bool) -> (Vec<u8>, u16) {
    let (mut data, sw) = if sfi {
        x(card, &[0x00, 0xB0, 0x80 | fid, 0x00, 0x00])
    } else {
        let (_, sw) = x(card, &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, fid]);
        assert_eq!(sw, 0x9000);
        x(card, &[0x00, 0xB0, 0x00, 0x00, 0x00])
    };
    if sw != 0x9000 {
        return (data, sw);
    }
    loop {
        let off = u16::try_from(data.len()).unwrap().to_be_bytes();
        let (d, sw) = x(card, &[0x00, 0xB0, off[0], off[1], 0x00]);
        match sw {
            0x9000 => data.extend(d),
            0x6B00 => return (data, 0x9000),
            other => return (data, other),
        }
    }
}

fn tlv_len(b: &[u8]) -> usize {
    match b[1] {
        n if n < 0x80 => 2 + n as usize,
        0x81 => 3 + b[2] as usize,
        0x82 => 4 + u16::from_be_bytes([b[2], b[3]]) as usize,
        _ => panic!("unexpected length"),
    }
}

fn cert_key(file: &[u8]) -> RsaPublicKey {
    let cert = x509_cert::Certificate::from_der(&file[..tlv_len(file)]).unwrap();
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    RsaPublicKey::from_public_key_der(&spki).unwrap()
}

fn verify_pin(card: &mut VirtualCard, persona: &Persona, pin: PinId, sfi: bool) -> u16 {
    let value = persona.pin(pin).value.to_vec();
    let mut apdu = if sfi {
        vec![0x00, 0x20, 0x00, 0x80 | pin.ef() as u8]
    } else {
        let (_, sw) = x(card, &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, pin.ef() as u8]);
        assert_eq!(sw, 0x9000);
        vec![0x00, 0x20, 0x00, 0x80]
    };
    apdu.push(value.len() as u8);
    apdu.extend(value);
    x(card, &apdu).1
}

fn empty_verify(card: &mut VirtualCard, pin: PinId, sfi: bool) -> u16 {
    if sfi {
        x(card, &[0x00, 0x20, 0x00, 0x80 | pin.ef() as u8]).1
    } else {
        let (_, sw) = x(card, &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, pin.ef() as u8]);
        assert_eq!(sw, 0x9000);
        x(card, &[0x00, 0x20, 0x00, 0x80]).1
    }
}

fn sign(card: &mut VirtualCard, key_ef: u8, sfi: bool, di: &[u8]) -> (Vec<u8>, u16) {
    let p2 = if sfi {
        0x80 | key_ef
    } else {
        let (_, sw) = x(card, &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, key_ef]);
        assert_eq!(sw, 0x9000);
        0x80
    };
    let mut apdu = vec![0x80, 0x2A, 0x00, p2, di.len() as u8];
    apdu.extend_from_slice(di);
    apdu.push(0);
    x(card, &apdu)
}

const SEL_JPKI: &[u8] = &[
    0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01,
];
const SEL_TEXT: &[u8] = &[
    0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08,
];
const SEL_VISUAL: &[u8] = &[
    0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02,
];

#[test]
fn every_persona_behaves_as_described() {
    let mut di = hex::decode("3031300D060960864801650304020105000420").unwrap();
    di.extend([0x42; 32]);
    for dir in personas() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let persona = Persona::load(&dir).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let sfi = persona.sfi;
        let mut card = VirtualCard::new(persona.clone());
        let kind = persona.expect.card_kind.clone().unwrap_or_default();
        eprintln!("{name}: {kind}, {:?}", persona.description);

        let (_, sw) = x(&mut card, SEL_JPKI);
        if !persona.jpki_ap {
            assert_eq!(sw, 0x6A82, "{name}");
            assert_eq!(x(&mut card, SEL_TEXT).1, 0x6A82, "{name}");
            continue;
        }
        assert_eq!(sw, 0x9000, "{name}");
        let (token, sw) = read_ef(&mut card, 0x06, sfi);
        assert_eq!((token.len(), sw), (160, 0x9000), "{name}");
        let label = String::from_utf8_lossy(&token[..32]).trim_end().to_string();
        let want = match kind.as_str() {
            "android" => "JPKIAPGPSETOKEN",
            "iphone" => "JPKIAPIOSTOKEN",
            _ => "JPKIAPICCTOKEN2",
        };
        assert_eq!(label, want, "{name}");
        // 80 FC: 9000 on the iPhone token only.
        let fc = x(&mut card, &[0x80, 0xFC, 0x00, 0x00]).1;
        assert_eq!(fc, if kind == "iphone" { 0x9000 } else { 0x6700 }, "{name}");

        let (avail, _) = read_ef(&mut card, 0x08, sfi);
        let has_sign = persona.file(Ap::Jpki, 0x0001).is_some();
        assert_eq!(avail[0] == 0x8F, has_sign, "{name}: EF 0008 {avail:02X?}");

        // Auth certificate and auth key.
        let (auth_cert, sw) = read_ef(&mut card, 0x0A, sfi);
        if persona.auth_cert_requires_pin {
            assert_eq!(sw, 0x6982, "{name}");
        } else {
            assert_eq!(sw, 0x9000, "{name}");
            assert_eq!(
                Some(&auth_cert[..]),
                persona.file(Ap::Jpki, 0x000A),
                "{name}"
            );
        }
        let auth_left = card.pin_remaining(PinId::Auth);
        assert_eq!(
            empty_verify(&mut card, PinId::Auth, sfi),
            0x63C0 | auth_left as u16,
            "{name}"
        );
        if auth_left > 0 {
            assert_eq!(
                verify_pin(&mut card, &persona, PinId::Auth, sfi),
                0x9000,
                "{name}"
            );
            let (auth_cert, sw) = read_ef(&mut card, 0x0A, sfi);
            assert_eq!(sw, 0x9000, "{name}");
            let (sig, sw) = sign(&mut card, 0x17, sfi, &di);
            assert_eq!((sig.len(), sw), (256, 0x9000), "{name}");
            cert_key(&auth_cert)
                .verify(Pkcs1v15Sign::new_unprefixed(), &di, &sig)
                .unwrap_or_else(|e| panic!("{name}: auth signature: {e}"));
        }

        // Sign certificate and sign key.
        let sign_left = card.pin_remaining(PinId::Sign);
        if has_sign {
            assert_eq!(read_ef(&mut card, 0x01, sfi).1, 0x6982, "{name}");
        }
        if sign_left == 0 {
            assert_eq!(empty_verify(&mut card, PinId::Sign, sfi), 0x63C0, "{name}");
            assert_eq!(
                verify_pin(&mut card, &persona, PinId::Sign, sfi),
                0x6984,
                "{name}"
            );
        } else if has_sign {
            assert_eq!(
                verify_pin(&mut card, &persona, PinId::Sign, sfi),
                0x9000,
                "{name}"
            );
            let (sign_cert, sw) = read_ef(&mut card, 0x01, sfi);
            assert_eq!(sw, 0x9000, "{name}");
            let (sig, sw) = sign(&mut card, 0x1A, sfi, &di);
            assert_eq!((sig.len(), sw), (256, 0x9000), "{name}");
            // `forged` carries another persona's certificate: its key cannot match.
            let matches = cert_key(&sign_cert)
                .verify(Pkcs1v15Sign::new_unprefixed(), &di, &sig)
                .is_ok();
            assert_eq!(
                matches,
                persona.expect.key_matches_certificate == Some(true),
                "{name}: sign signature"
            );
            // The corrupt fault keeps the certificate parseable but changes its key.
            let corrupt = {
                let mut c = VirtualCard::new(persona.clone());
                c.faults_mut().corrupt = vec!["jpki/0001".into()];
                x(&mut c, SEL_JPKI);
                verify_pin(&mut c, &persona, PinId::Sign, sfi);
                read_ef(&mut c, 0x01, sfi).0
            };
            assert_ne!(corrupt, sign_cert);
            assert_ne!(cert_key(&corrupt), cert_key(&sign_cert), "{name}");
        } else {
            // No sign certificate: no sign key either.
            assert_eq!(
                x(&mut card, &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x1A]).1,
                0x6A82,
                "{name}"
            );
        }

        // Visual AP: present with the text AP on physical cards; 照合番号B opens the face.
        let (_, sw) = x(&mut card, SEL_VISUAL);
        if persona.visual_ap {
            assert_eq!(sw, 0x9000, "{name}");
            assert_eq!(read_ef(&mut card, 0x02, sfi).1, 0x6982, "{name}");
            assert_eq!(
                verify_pin(&mut card, &persona, PinId::CodeB, sfi),
                0x9000,
                "{name}"
            );
            let (face, sw) = read_ef(&mut card, 0x02, sfi);
            assert_eq!(sw, 0x9000, "{name}");
            assert_eq!(Some(&face[..]), persona.file(Ap::Visual, 0x0002), "{name}");
            assert_eq!(read_ef(&mut card, 0x05, sfi).1, 0x6982, "{name}");
            let mut apdu = vec![0x80, 0x2A, 0x00, 0x00, di.len() as u8];
            apdu.extend_from_slice(&di);
            apdu.push(0);
            let (sig, sw) = x(&mut card, &apdu);
            assert_eq!((sig.len(), sw), (256, 0x9000), "{name}");
        } else {
            assert_eq!(sw, 0x6A82, "{name}");
            assert!(!persona.text_ap, "{name}");
        }

        // Text AP.
        let (_, sw) = x(&mut card, SEL_TEXT);
        if !persona.text_ap {
            assert_eq!(sw, 0x6A82, "{name}");
            continue;
        }
        assert_eq!(sw, 0x9000, "{name}");
        assert_eq!(read_ef(&mut card, 0x01, sfi).1, 0x6982, "{name}");
        assert_eq!(
            verify_pin(&mut card, &persona, PinId::Text, sfi),
            0x9000,
            "{name}"
        );
        let (mn, sw) = read_ef(&mut card, 0x01, sfi);
        assert_eq!(sw, 0x9000, "{name}");
        if let Some(want) = &persona.expect.my_number {
            assert_eq!(&mn[3..15], want.as_bytes(), "{name}");
        }
        let (basic4, sw) = read_ef(&mut card, 0x02, sfi);
        assert_eq!(sw, 0x9000, "{name}");
        assert_eq!(&basic4[..2], &[0xFF, 0x20], "{name}");
        if persona.textap_key.is_some() {
            let mut apdu = vec![0x80, 0x2A, 0x00, 0x00, di.len() as u8];
            apdu.extend_from_slice(&di);
            apdu.push(0);
            let (sig, sw) = x(&mut card, &apdu);
            assert_eq!((sig.len(), sw), (256, 0x9000), "{name}");
        }
    }
}
