//! Checks of the committed test PKI and personas: reproducible, accepted by OpenSSL, and the
//! card files internally consistent.

// Test helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use der::asn1::Utf8StringRef;
use der::{Decode, Encode};
use jpki_vcard::testpki::{self, cardfiles, personas};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

const PERSONAS: [&str; 18] = [
    "ordinary",
    "moved",
    "expired",
    "revoked",
    "blocked",
    "under15",
    "android",
    "long-address",
    "substitute-chars",
    "not-jpki",
    "no-sfi",
    "no-extended",
    "iphone",
    "face-altered",
    "unknown-card-ca",
    "cloned-chip",
    "text-self-signed",
    "forged",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn toml_of(name: &str) -> toml::Table {
    let text = String::from_utf8(read(&format!("personas/{name}/persona.toml"))).unwrap();
    text.parse().unwrap()
}

fn walk(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, base, out);
        } else {
            let rel = p
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(rel);
        }
    }
}

/// Full regeneration (≈30 s in debug: ~90 RSA-2048 keys) must reproduce the committed bytes,
/// and nothing committed may be left over from an older generator.
#[test]
fn generator_reproduces_committed_files() {
    let files = testpki::generate().unwrap();
    for (rel, data) in &files {
        assert_eq!(
            &read(rel),
            data,
            "{rel} differs from the generator's output"
        );
    }
    let mut committed = BTreeSet::new();
    walk(&root().join("testpki"), &root(), &mut committed);
    walk(&root().join("personas"), &root(), &mut committed);
    let generated: BTreeSet<String> = files.keys().cloned().collect();
    assert_eq!(committed, generated);

    // Writing works too (into a temp dir) and gives the same bytes.
    let tmp = tempfile::tempdir().unwrap();
    testpki::write_files(tmp.path(), &files).unwrap();
    let rel = "personas/ordinary/text/0003.bin";
    assert_eq!(std::fs::read(tmp.path().join(rel)).unwrap(), read(rel));
}

#[test]
fn every_contract_persona_exists() {
    for p in PERSONAS {
        let t = toml_of(p);
        assert!(
            t.get("description").and_then(|v| v.as_str()).is_some(),
            "{p}"
        );
        let expect = t["expect"].as_table().unwrap();
        assert_eq!(
            expect["at"].as_integer().unwrap(),
            personas::EXPECT_AT as i64
        );
        assert!(expect["card_kind"].as_str().is_some());
        assert!(expect["sign_status"].as_str().is_some());
    }
}

/// The DER prefix of a possibly FF-padded certificate EF.
fn der_prefix(ef: &[u8]) -> &[u8] {
    assert_eq!(ef[0], 0x30);
    let (hdr, len) = match ef[1] {
        0x82 => (4, usize::from(u16::from_be_bytes([ef[2], ef[3]]))),
        0x81 => (3, usize::from(ef[2])),
        n => (2, usize::from(n)),
    };
    let end = hdr + len;
    assert!(ef[end..].iter().all(|&b| b == 0xFF), "filler must be FF");
    &ef[..end]
}

fn to_pem(der: &[u8], dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.pem"));
    let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap();
    std::fs::write(&path, pem).unwrap();
    path
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn verify(ca: &str, cert: &Path, at: i64) -> (bool, String) {
    let ca = root().join(ca);
    let at = at.to_string();
    openssl(&[
        "verify",
        "-attime",
        &at,
        "-CAfile",
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
    ])
}

#[test]
fn openssl_verifies_end_entities_against_their_generation_only() {
    let tmp = tempfile::tempdir().unwrap();
    let at = personas::EXPECT_AT as i64;
    for p in PERSONAS {
        let t = toml_of(p);
        let expect = t["expect"].as_table().unwrap();
        if let Some(issuer) = expect.get("sign_issuer").and_then(|v| v.as_str()) {
            let ef = read(&format!("personas/{p}/jpki/0001.bin"));
            let pem = to_pem(der_prefix(&ef), tmp.path(), &format!("{p}-sign"));
            let when = if expect["sign_status"].as_str() == Some("expired") {
                1_700_000_000 // 2023-11, inside the expired certificate's validity
            } else {
                at
            };
            let (ok, text) = verify(&format!("testpki/sign_root_{issuer}.pem"), &pem, when);
            assert!(ok, "{p}: {text}");
            let other = if issuer == "g1" { "g2" } else { "g1" };
            let (ok, _) = verify(&format!("testpki/sign_root_{other}.pem"), &pem, when);
            assert!(!ok, "{p}: must not verify under sign root {other}");
            if expect["sign_status"].as_str() == Some("expired") {
                let (ok, text) = verify(&format!("testpki/sign_root_{issuer}.pem"), &pem, at);
                assert!(!ok && text.contains("expired"), "{p}: {text}");
            }
            // The CA EF is the issuing root.
            let ca = read(&format!("personas/{p}/jpki/0002.bin"));
            assert_eq!(
                der_prefix(&ca),
                read(&format!("testpki/sign_root_{issuer}.der"))
            );
        }
        if let Some(issuer) = expect.get("auth_issuer").and_then(|v| v.as_str()) {
            let ef = read(&format!("personas/{p}/jpki/000A.bin"));
            let pem = to_pem(der_prefix(&ef), tmp.path(), &format!("{p}-auth"));
            let (ok, text) = verify(&format!("testpki/auth_root_{issuer}.pem"), &pem, at);
            assert!(ok, "{p}: {text}");
        }
    }
    for (ca, ee) in [
        ("testpki/sign_root_g2.pem", "testpki/ocsp_sign_g2.pem"),
        (
            "testpki/sign_root_g2.pem",
            "testpki/alg/rsa_sha384_sign_ee.pem",
        ),
        (
            "testpki/sign_root_g2.pem",
            "testpki/alg/rsa_sha512_sign_ee.pem",
        ),
        ("testpki/ec/p256_root.pem", "testpki/ec/p256_sign_ee.pem"),
        ("testpki/ec/p384_root.pem", "testpki/ec/p384_sign_ee.pem"),
    ] {
        let (ok, text) = verify(ca, &root().join(ee), at);
        assert!(ok, "{ee}: {text}");
    }
    let (_, text) = openssl(&[
        "x509",
        "-noout",
        "-text",
        "-in",
        root().join("testpki/ocsp_sign_g2.pem").to_str().unwrap(),
    ]);
    assert!(text.contains("OCSP Signing"), "{text}");
}

#[test]
fn openssl_accepts_crls() {
    for (crl, ca) in [
        ("sign_g2", "sign_root_g2"),
        ("sign_g2_stale", "sign_root_g2"),
        ("sign_g1", "sign_root_g1"),
        ("auth_g1", "auth_root_g1"),
        ("auth_g2", "auth_root_g2"),
    ] {
        let crl_path = root().join(format!("testpki/{crl}.crl"));
        let ca_path = root().join(format!("testpki/{ca}.pem"));
        let (ok, text) = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            crl_path.to_str().unwrap(),
            "-CAfile",
            ca_path.to_str().unwrap(),
            "-noout",
            "-text",
        ]);
        assert!(ok && text.contains("verify OK"), "{crl}: {text}");
        if crl == "sign_g2" {
            let serial = toml_of("revoked")["expect"]["sign_serial"]
                .as_str()
                .unwrap()
                .to_owned();
            let i = text.find(&format!("Serial Number: {serial}")).unwrap();
            assert!(text[i..].contains("Affiliation Changed"));
            for reason in [
                "Unspecified",
                "Key Compromise",
                "CA Compromise",
                "Superseded",
                "Cessation Of Operation",
                "Certificate Hold",
            ] {
                assert!(text.contains(reason), "{reason}");
            }
        }
    }
}

/// With `sign_g2.crl`, OpenSSL reports the `revoked` persona revoked and the others fine.
#[test]
fn openssl_crl_check_finds_the_revoked_persona() {
    let tmp = tempfile::tempdir().unwrap();
    let crl = root().join("testpki/sign_g2.crl");
    let crl_pem = tmp.path().join("crl.pem");
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-out",
        crl_pem.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let ca = root().join("testpki/sign_root_g2.pem");
    for (p, revoked) in [("revoked", true), ("ordinary", false)] {
        let ef = read(&format!("personas/{p}/jpki/0001.bin"));
        let pem = to_pem(der_prefix(&ef), tmp.path(), p);
        let (ok, text) = openssl(&[
            "verify",
            "-attime",
            &personas::EXPECT_AT.to_string(),
            "-crl_check",
            "-CRLfile",
            crl_pem.to_str().unwrap(),
            "-CAfile",
            ca.to_str().unwrap(),
            pem.to_str().unwrap(),
        ]);
        assert_eq!(ok, !revoked, "{p}: {text}");
        assert_eq!(text.contains("certificate revoked"), revoked, "{p}: {text}");
    }
}

fn san_values(cert_der: &[u8]) -> Vec<(String, String)> {
    let cert = Certificate::from_der(cert_der).unwrap();
    let exts = cert.tbs_certificate.extensions.unwrap();
    let san = exts
        .iter()
        .find(|e| e.extn_id.to_string() == "2.5.29.17")
        .unwrap();
    let san = SubjectAltName::from_der(san.extn_value.as_bytes()).unwrap();
    san.0
        .iter()
        .map(|g| match g {
            GeneralName::OtherName(o) => (
                o.type_id.to_string(),
                Utf8StringRef::try_from(&o.value)
                    .unwrap()
                    .as_str()
                    .to_owned(),
            ),
            other => panic!("unexpected SAN entry {other:?}"),
        })
        .collect()
}

#[test]
fn san_values_are_single_encoded_utf8() {
    let ef = read("personas/ordinary/jpki/0001.bin");
    let der = der_prefix(&ef).to_vec();
    let path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(path.path(), &der).unwrap();
    let p = path.path().to_str().unwrap();
    let (ok, text) = openssl(&["asn1parse", "-inform", "DER", "-in", p]);
    assert!(ok);
    // The line after the SAN OID is the OCTET STRING holding the extension value.
    let lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains("X509v3 Subject Alternative Name"))
        .unwrap();
    let offset = lines[i + 1].split(':').next().unwrap().trim().to_owned();
    let (ok, text) = openssl(&[
        "asn1parse",
        "-inform",
        "DER",
        "-in",
        p,
        "-strparse",
        &offset,
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("UTF8STRING        :試験　太郎"), "{text}");
    assert!(text.contains("UTF8STRING        :419900102"), "{text}");
    // Double encoding would turn 試 (E8 A9 A6) into C3 A8 C2 A9 ….
    assert!(!der.windows(2).any(|w| w == [0xC3, 0xA8]));

    let values = san_values(&der);
    assert_eq!(values.len(), 6);
    for (i, (oid, _)) in values.iter().enumerate() {
        assert_eq!(oid, &format!("1.2.392.200149.8.5.5.{}", i + 1));
    }
    assert_eq!(values[1].1, "");
    assert_eq!(values[5].1, "");
}

fn tlv_at(data: &[u8], at: usize, tag: &[u8]) -> (usize, usize) {
    assert_eq!(&data[at..at + tag.len()], tag, "tag at {at}");
    let l = at + tag.len();
    match data[l] {
        0x81 => (l + 2, usize::from(data[l + 1])),
        0x82 => (
            l + 3,
            usize::from(u16::from_be_bytes([data[l + 1], data[l + 2]])),
        ),
        n => (l + 1, usize::from(n)),
    }
}

/// The public key `testpki/card_ca/` holds for a 16-byte id, if any.
fn card_ca(id: &[u8]) -> Option<RsaPublicKey> {
    let path = root().join(format!("testpki/card_ca/{}.pem", hex::encode_upper(id)));
    let pem = std::fs::read_to_string(path).ok()?;
    Some(RsaPublicKey::from_public_key_pem(&pem).unwrap())
}

#[test]
fn text_ap_files_are_consistent() {
    for p in PERSONAS {
        let t = toml_of(p);
        if t.get("text_ap").and_then(|v| v.as_bool()) != Some(true) {
            assert!(!root().join(format!("personas/{p}/text")).exists(), "{p}");
            continue;
        }
        let ef1 = read(&format!("personas/{p}/text/0001.bin"));
        let ef2 = read(&format!("personas/{p}/text/0002.bin"));
        let ef3 = read(&format!("personas/{p}/text/0003.bin"));
        let ef4 = read(&format!("personas/{p}/text/0004.bin"));
        let ef5 = read(&format!("personas/{p}/text/0005.bin"));

        // EF 0001.
        assert_eq!(ef1.len(), 17);
        assert_eq!(&ef1[..3], &[0xFF, 0x10, 0x0C]);
        assert_eq!(&ef1[15..], &[0xFF, 0xFF]);
        let number = std::str::from_utf8(&ef1[3..15]).unwrap();
        assert_eq!(t["expect"]["my_number"].as_str(), Some(number));
        assert_eq!(
            testpki::holder::my_number(&number[..11]).unwrap(),
            number,
            "check digit"
        );

        // EF 0002: outer TLV spans the file, offsets point at DF22..DF25.
        let (value, len) = tlv_at(&ef2, 0, &[0xFF, 0x20]);
        assert_eq!(value + len, ef2.len(), "{p}");
        assert_eq!(&ef2[value..value + 3], &[0xDF, 0x21, 0x08]);

        // EF 0003: digests and signature.
        assert_eq!(&ef3[..5], &[0xFF, 0x30, 0x82, 0x01, 0x4B]);
        assert_eq!(ef3.len(), 336);
        assert_eq!(&ef3[5..8], &[0xDF, 0x31, 0x20]);
        assert_eq!(&ef3[8..40], &Sha256::digest(&ef1)[..]);
        assert_eq!(&ef3[40..43], &[0xDF, 0x32, 0x20]);
        let part = &ef2[value + 11..value + len];
        assert_eq!(&ef3[43..75], &Sha256::digest(part)[..]);
        assert_eq!(&ef3[75..80], &[0xDF, 0x33, 0x82, 0x01, 0x00]);
        let card_key =
            RsaPrivateKey::from_pkcs8_der(&read(&format!("personas/{p}/keys/textap.pk8.der")))
                .unwrap()
                .to_public_key();
        let sig = Signature::try_from(&ef3[80..336]).unwrap();
        VerifyingKey::<Sha256>::new(card_key.clone())
            .verify(&ef3[5..75], &sig)
            .unwrap();

        // EF 0004: CV certificate of the card key, signed by the text-AP card CA
        // ("9000033" 08 05 "001" …), or by itself on text-self-signed.
        assert_eq!(ef4.len(), 568);
        assert_eq!(
            &ef4[..10],
            &[0x7F, 0x21, 0x82, 0x02, 0x33, 0x5F, 0x4E, 0x82, 0x01, 0x29]
        );
        let body = &ef4[10..307];
        assert_eq!(&body[32..37], &[0x90, 0x03, 0x01, 0x00, 0x01]);
        assert_eq!(&body[37..41], &[0x91, 0x82, 0x01, 0x00]);
        assert_eq!(&body[41..], card_key.n().to_bytes_be().as_slice());
        assert_eq!(&ef4[307..312], &[0x5F, 0x37, 0x82, 0x01, 0x00]);
        let sig = Signature::try_from(&ef4[312..]).unwrap();
        let self_signed = p == "text-self-signed";
        let issuer = if self_signed {
            assert_eq!(&body[..16], &body[16..32], "{p}: issuer id = its own");
            assert!(card_ca(&body[..16]).is_none());
            card_key.clone()
        } else {
            assert_eq!(&body[..16], b"9000033\x08\x05001\x00\x00\x00\x00", "{p}");
            card_ca(&body[..16]).unwrap()
        };
        VerifyingKey::<Sha256>::new(issuer)
            .verify(body, &sig)
            .unwrap();
        let want = if self_signed {
            "unverifiable"
        } else {
            "verified"
        };
        assert_eq!(t["expect"]["integrity"].as_str(), Some(want), "{p}");
        // The holder id: "99" + idx (3 digits) + "31", 08 05, "000", zero padding.
        assert_eq!(&body[16..18], b"99", "{p}");
        assert_eq!(&body[21..32], b"31\x08\x05000\x00\x00\x00\x00", "{p}");

        // EF 0005.
        assert_eq!(&ef5[..5], &[0xFF, 0x40, 0x82, 0x00, 0x9F]);
        assert_eq!(ef5.len(), 164);
        assert_eq!(&ef5[5..12], &[0xDF, 0x41, 0x04, 0x01, 0x03, 0x0E, 0x01]);
        assert_eq!(&ef5[12..15], &[0xDF, 0x42, 0x10]);
        assert_eq!(&ef5[15..31], &body[16..32]);
        assert_eq!(&ef5[31..36], &[0xDF, 0x43, 0x82, 0x00, 0x80]);
        assert!(ef5[68..].iter().all(|&b| b == 0xFF));
    }
}

#[test]
fn basic_four_offsets_and_attribute_agreement() {
    for p in PERSONAS {
        let t = toml_of(p);
        let dir = root().join(format!("personas/{p}"));
        if !dir.join("text/0002.bin").exists() {
            continue;
        }
        let ef2 = read(&format!("personas/{p}/text/0002.bin"));
        let hdr = if ef2[2] == 0x81 { 4 } else { 3 };
        let fields: Vec<String> = (0..4)
            .map(|i| {
                let o = usize::from(u16::from_be_bytes([
                    ef2[hdr + 3 + 2 * i],
                    ef2[hdr + 4 + 2 * i],
                ]));
                let (v, n) = tlv_at(&ef2, o, &[0xDF, 0x22 + i as u8]);
                String::from_utf8(ef2[v..v + n].to_vec()).unwrap()
            })
            .collect();
        if p == "long-address" {
            assert_eq!(ef2[2], 0x81, "outer length must be long form");
            assert!(ef2[3] > 127);
            assert!(ef2.len() < 256);
        }
        assert!(fields[0].contains('\u{3000}'), "{p}: name separator");

        let Some(matches) = t["expect"]
            .get("attributes_match")
            .and_then(|v| v.as_bool())
        else {
            continue;
        };
        let ef = read(&format!("personas/{p}/jpki/0001.bin"));
        let san = san_values(der_prefix(&ef));
        let era = testpki::holder::era_digit(testpki::holder::Date {
            y: fields[2][..4].parse().unwrap(),
            m: fields[2][4..6].parse().unwrap(),
            d: fields[2][6..].parse().unwrap(),
        })
        .unwrap();
        assert_eq!(san[3].1, format!("{era}{}", fields[2]), "{p}: birth");
        assert_eq!(san[2].1, fields[3], "{p}: sex");
        let same = san[0].1 == fields[0] && san[4].1 == fields[1];
        assert_eq!(same, matches, "{p}: attributes_match");
        let subs = !san[1].1.is_empty() || !san[5].1.is_empty();
        assert_eq!(
            t["expect"]["substitute_characters"].as_bool(),
            Some(subs),
            "{p}"
        );
    }
}

#[test]
fn jpki_ap_files_follow_the_persona() {
    for p in PERSONAS {
        let t = toml_of(p);
        let dir = root().join(format!("personas/{p}"));
        if t["jpki_ap"].as_bool() == Some(false) {
            assert!(!dir.join("jpki").exists());
            assert_eq!(t["expect"]["card_kind"].as_str(), Some("not-jpki"));
            continue;
        }
        let info = read(&format!("personas/{p}/jpki/0006.bin"));
        assert_eq!(info.len(), 160);
        let label = std::str::from_utf8(&info[..32]).unwrap().trim_end();
        let kind = t["expect"]["card_kind"].as_str().unwrap();
        let expected = match kind {
            "android" => "JPKIAPGPSETOKEN",
            "iphone" => "JPKIAPIOSTOKEN",
            _ => "JPKIAPICCTOKEN2",
        };
        assert_eq!(label, expected, "{p}");
        let avail = read(&format!("personas/{p}/jpki/0008.bin"));
        let has_sign = dir.join("jpki/0001.bin").exists();
        assert_eq!(has_sign, dir.join("keys/sign.pk8.der").exists());
        if kind == "no-sign-cert" {
            assert!(!has_sign);
            assert_eq!(avail, [0x00, 0x8F, 0x00]);
        } else {
            assert!(has_sign, "{p}");
            assert_eq!(avail, [0x8F, 0x8F, 0x00]);
        }
        // The certificate on the card belongs to the private key next to it.
        let auth = Certificate::from_der(der_prefix(&read(&format!("personas/{p}/jpki/000A.bin"))))
            .unwrap();
        let key = RsaPrivateKey::from_pkcs8_der(&read(&format!("personas/{p}/keys/auth.pk8.der")))
            .unwrap();
        let spki = auth
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap();
        assert_eq!(
            RsaPublicKey::from_public_key_der(&spki).unwrap(),
            key.to_public_key()
        );
        let serial = auth.tbs_certificate.serial_number.as_bytes().to_vec();
        assert!(
            serial.len() == 4 || (serial.len() == 5 && serial[0] == 0),
            "{p}"
        );
    }
    assert_eq!(
        toml_of("android")["auth_cert_requires_pin"].as_bool(),
        Some(true)
    );
    assert_eq!(
        toml_of("blocked")["pins"]["sign"]["remaining"].as_integer(),
        Some(0)
    );
    assert_eq!(
        toml_of("blocked")["pins"]["auth"]["remaining"].as_integer(),
        Some(1)
    );
    assert_eq!(toml_of("no-sfi")["sfi"].as_bool(), Some(false));
    assert_eq!(toml_of("no-extended")["extended"].as_bool(), Some(false));
    assert!(toml_of("not-jpki").get("atr").is_some());
    let padded = read("personas/revoked/jpki/0001.bin");
    assert_eq!(padded.len(), personas::CERT_EF_SIZE);
    assert_eq!(cardfiles::ff_pad(vec![1], Some(3)), vec![1, 0xFF, 0xFF]);
}

/// Card files of the visual AP as the generator wrote them: layout, signatures, keys, and the
/// relations between personas (cloned-chip, face-altered, unknown-card-ca).
#[test]
fn visual_ap_files_are_consistent() {
    let key_of = |v: &[u8]| -> RsaPublicKey {
        assert_eq!(
            &v[..9],
            &[0x90, 0x03, 0x01, 0x00, 0x01, 0x91, 0x82, 0x01, 0x00]
        );
        RsaPublicKey::new(BigUint::from_bytes_be(&v[9..265]), 65537u32.into()).unwrap()
    };
    for p in PERSONAS {
        let t = toml_of(p);
        let dir = root().join(format!("personas/{p}"));
        let visual = t["visual_ap"].as_bool().unwrap();
        assert_eq!(visual, dir.join("visual").exists(), "{p}");
        assert_eq!(visual, t["expect"].get("authenticity").is_some(), "{p}");
        assert_eq!(
            visual,
            t["text_ap"].as_bool().unwrap(),
            "{p}: visual AP iff text AP"
        );
        if !visual {
            assert!(t.get("pins").and_then(|x| x.get("code_b")).is_none(), "{p}");
            continue;
        }
        let f = |n: u8| read(&format!("personas/{p}/visual/000{n}.bin"));
        let (ef1, ef2, ef3, ef4, ef5, ef6) = (f(1), f(2), f(3), f(4), f(5), f(6));
        // EF 0002: outer 82 form, DF21 table, FF filler to 2048 bytes.
        assert_eq!(ef2.len(), 2048);
        let (value, len) = tlv_at(&ef2, 0, &[0xFF, 0x20]);
        assert_eq!(value, 5);
        assert!(ef2[value + len..].iter().all(|&b| b == 0xFF));
        assert_eq!(&ef2[5..8], &[0xDF, 0x21, 0x12]);
        let mut at = 26;
        let mut objs = Vec::new();
        for i in 0..9usize {
            let o = usize::from(u16::from_be_bytes([ef2[8 + 2 * i], ef2[9 + 2 * i]]));
            assert_eq!(o, at, "{p}: DF{:02X}", 0x22 + i);
            let (v, n) = tlv_at(&ef2, o, &[0xDF, 0x22 + i as u8]);
            objs.push((&ef2[o..v + n], &ef2[v..v + n]));
            at = v + n;
        }
        assert_eq!(at, value + len);
        // EF 0004 certifies the AP key that signs the records; its issuer is the visual card CA.
        let cert_body = &ef4[10..307];
        let ap_key = key_of(&cert_body[32..]);
        let ca = match p {
            "unknown-card-ca" => {
                assert!(card_ca(&cert_body[..16]).is_none());
                let file = format!(
                    "testpki/card_ca_unconfigured/{}.pem",
                    hex::encode_upper(&cert_body[..16])
                );
                RsaPublicKey::from_public_key_pem(&String::from_utf8(read(&file)).unwrap()).unwrap()
            }
            _ => {
                assert_eq!(
                    &cert_body[..16],
                    b"9000023\x08\x05001\x00\x00\x00\x00",
                    "{p}"
                );
                card_ca(&cert_body[..16]).unwrap()
            }
        };
        let sig = Signature::try_from(&ef4[312..]).unwrap();
        VerifyingKey::<Sha256>::new(ca)
            .verify(cert_body, &sig)
            .unwrap();
        // DF28: the three-digest DigestInfo.
        let mut di = hex::decode("3071300D060960864801650304020105000460").unwrap();
        di.extend(Sha256::digest([objs[0].0, objs[1].0, objs[2].0].concat()));
        di.extend(Sha256::digest([objs[3].0, objs[4].0].concat()));
        di.extend(Sha256::digest(objs[5].0));
        let face_ok = ap_key
            .verify(Pkcs1v15Sign::new_unprefixed(), &di, objs[6].1)
            .is_ok();
        assert_eq!(face_ok, p != "face-altered", "{p}");
        // Keys next to the files: the card key is DF24's, the AP key EF 0004's (none for the
        // cloned chip, which has neither the source's AP key nor its card key).
        let card_key =
            RsaPrivateKey::from_pkcs8_der(&read(&format!("personas/{p}/keys/card.pk8.der")))
                .unwrap()
                .to_public_key();
        assert_eq!(card_key == key_of(objs[2].1), p != "cloned-chip", "{p}");
        let ap_file = dir.join("keys/visualap.pk8.der");
        assert_eq!(ap_file.exists(), p != "cloned-chip", "{p}");
        if ap_file.exists() {
            let k = RsaPrivateKey::from_pkcs8_der(&std::fs::read(ap_file).unwrap()).unwrap();
            assert_eq!(k.to_public_key(), ap_key, "{p}");
        }
        // EF 0001, 0003, 0005, 0006.
        assert_eq!(ef1.len(), 547);
        assert_eq!(
            &ef1[5..15],
            &[&[0xDF, 0x11, 0x08][..], objs[0].1].concat()[..10]
        );
        assert_eq!(ef3.len(), 320);
        assert_eq!(&ef3[5..12], &[0xDF, 0x31, 0x04, 0x06, 0x03, 0x0E, 0x01]);
        assert_eq!(&ef5[..2], &[0xFF, 0x40]);
        assert_eq!(ef6, vec![0xFF; 16]);
        // The face prints what 照合番号B is made of.
        let code_b = t["pins"]["code_b"]["value"].as_str().unwrap();
        let birth = t["pins"]["birth"]["value"].as_str().unwrap();
        assert_eq!(&code_b[..6], birth, "{p}");
        assert_eq!(&code_b.as_bytes()[6..10], &objs[7].1[..4], "{p}");
        for k in ["birth", "code_b", "code_a"] {
            assert_eq!(t["pins"][k]["max"].as_integer(), Some(10), "{p}");
        }
    }
    // The cloned chip carries ordinary's visual files byte for byte.
    for n in 1..=6 {
        let rel = |who: &str| format!("personas/{who}/visual/000{n}.bin");
        assert_eq!(
            read(&rel("cloned-chip")),
            read(&rel("ordinary")),
            "EF 000{n}"
        );
    }
    assert_eq!(
        toml_of("cloned-chip")["pins"]["code_b"],
        toml_of("ordinary")["pins"]["code_b"]
    );
    // forged: ordinary's signing certificate, its own key.
    assert_eq!(
        read("personas/forged/jpki/0001.bin"),
        read("personas/ordinary/jpki/0001.bin")
    );
    assert_ne!(
        read("personas/forged/keys/sign.pk8.der"),
        read("personas/ordinary/keys/sign.pk8.der")
    );
}
