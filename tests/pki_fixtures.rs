//! `pki` against the committed test PKI and personas of hw-fixtures (PERSONAS.md): every
//! persona's signing certificate gets the status its `persona.toml` expects at `expect.at`, with
//! the committed CRLs imported; the basic four of the certificate are compared with the card's
//! text-AP file; ECDSA and RSA-SHA384/512 end entities verify.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jpkid::pki::attributes::{self, TextApFour};
use jpkid::pki::crl::{self, CrlStore};
use jpkid::pki::{
    self, Hierarchy, Purpose, RevocationMode, RevocationPolicy, RevocationSource, TrustAnchors,
    VerifyOutcome,
};
use zeroize::Zeroizing;

fn hw() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hw-fixtures")
}

fn testpki(name: &str) -> Vec<u8> {
    std::fs::read(hw().join("testpki").join(name)).unwrap()
}

/// Anchors as a lab would configure them: the JPKI-shaped roots by DN, the ECDSA roots (whose
/// DN has no JPKI OU) in `sign/`.
fn anchors() -> &'static TrustAnchors {
    static A: OnceLock<(tempfile::TempDir, TrustAnchors)> = OnceLock::new();
    &A.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sign")).unwrap();
        for f in [
            "sign_root_g1.der",
            "sign_root_g2.pem",
            "auth_root_g1.der",
            "auth_root_g2.pem",
        ] {
            std::fs::write(dir.path().join(f), testpki(f)).unwrap();
        }
        for f in ["p256_root.der", "p384_root.pem"] {
            std::fs::write(dir.path().join("sign").join(f), testpki(&format!("ec/{f}"))).unwrap();
        }
        let a = TrustAnchors::load(Hierarchy::Test, dir.path()).unwrap();
        assert!(a.rejected().is_empty(), "{:?}", a.rejected());
        assert_eq!(a.anchors().len(), 6);
        (dir, a)
    })
    .1
}

/// A CRL directory with the committed current CRLs of all four roots imported.
fn crl_dir() -> &'static Path {
    static D: OnceLock<tempfile::TempDir> = OnceLock::new();
    D.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        for f in ["sign_g1.crl", "sign_g2.crl", "auth_g1.crl", "auth_g2.crl"] {
            crl::import(&hw().join("testpki").join(f), d.path(), anchors()).unwrap();
        }
        d
    })
    .path()
}

fn personas() -> Vec<(String, toml::Value)> {
    let mut v: Vec<_> = std::fs::read_dir(hw().join("personas"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let t: toml::Value =
                toml::from_str(&std::fs::read_to_string(p.join("persona.toml")).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), t)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(v.len() >= 12);
    v
}

#[test]
fn every_persona_gets_its_expected_status() {
    let store = CrlStore::open(crl_dir()).unwrap();
    let policy = RevocationPolicy {
        crl: Some(&store),
        ..RevocationPolicy::new(RevocationMode::Require, pki_support::now())
    };
    let mut checked = 0;
    for (name, t) in personas() {
        let expect = &t["expect"];
        let Some(status) = expect.get("sign_status").and_then(|s| s.as_str()) else {
            continue;
        };
        let at = expect["at"].as_integer().unwrap();
        let dir = hw().join("personas").join(&name);
        let sign = std::fs::read(dir.join("jpki/0001.bin"));
        if status == "absent" {
            assert!(sign.is_err(), "{name}");
            continue;
        }
        let v = pki::verify(anchors(), &sign.unwrap(), Purpose::Sign, at, &policy);
        assert_eq!(v.outcome.as_str(), status, "{name}: {:?}", v.details);
        if let Some(serial) = expect.get("sign_serial").and_then(|s| s.as_str()) {
            assert_eq!(v.details.serial, serial.to_uppercase(), "{name}");
        }
        if let Some(reason) = expect.get("revocation_reason").and_then(|s| s.as_str()) {
            assert_eq!(
                v.details.revocation_reason.unwrap().as_str(),
                reason,
                "{name}"
            );
            assert_eq!(v.details.revocation_source, Some(RevocationSource::Crl));
        }
        // The sign certificate is never good for authentication.
        let again = pki::verify(
            anchors(),
            &std::fs::read(dir.join("jpki/0001.bin")).unwrap(),
            Purpose::Auth,
            at,
            &policy,
        );
        assert_eq!(again.outcome, VerifyOutcome::WrongPurpose, "{name}");
        // Auth certificate (all personas with a sign cert have a valid one).
        if let Ok(auth) = std::fs::read(dir.join("jpki/000A.bin")) {
            let v = pki::verify(anchors(), &auth, Purpose::Auth, at, &policy);
            assert_eq!(
                v.outcome,
                VerifyOutcome::Valid,
                "{name} auth: {:?}",
                v.details
            );
        }
        checked += 1;
    }
    assert!(checked >= 9, "{checked}");
}

#[test]
fn stale_crl_gives_revocation_unknown() {
    let d = tempfile::tempdir().unwrap();
    crl::import(&hw().join("testpki/sign_g2_stale.crl"), d.path(), anchors()).unwrap();
    let store = CrlStore::open(d.path()).unwrap();
    let policy = RevocationPolicy {
        crl: Some(&store),
        ..RevocationPolicy::new(RevocationMode::Require, pki_support::now())
    };
    let der = std::fs::read(hw().join("personas/ordinary/jpki/0001.bin")).unwrap();
    let v = pki::verify(anchors(), &der, Purpose::Sign, 1_795_000_000, &policy);
    assert_eq!(v.outcome, VerifyOutcome::RevocationUnknown);
    // Importing the stale CRL over the current one is refused (older thisUpdate).
    assert!(matches!(
        crl::import(
            &hw().join("testpki/sign_g2_stale.crl"),
            crl_dir(),
            anchors()
        ),
        Err(crl::CrlError::Older { .. })
    ));
}

/// Defect (review): freshness was judged at the caller's `at`, so a stale CRL counted as
/// current for an `at` inside its old window — the revoked persona came out `valid`, source
/// `crl`, although the current CRL lists it. Freshness is the real time's; `at` only says "valid
/// then, revoked by then?".
#[test]
fn a_stale_crl_is_stale_at_any_verification_time() {
    let d = tempfile::tempdir().unwrap();
    crl::import(&hw().join("testpki/sign_g2_stale.crl"), d.path(), anchors()).unwrap();
    let store = CrlStore::open(d.path()).unwrap();
    let policy = RevocationPolicy {
        crl: Some(&store),
        ..RevocationPolicy::new(RevocationMode::Require, pki_support::now())
    };
    let der = std::fs::read(hw().join("personas/revoked/jpki/0001.bin")).unwrap();
    // 2025-05-01T12:00Z, inside the stale list's own window (2025-05-01 .. 2025-05-02).
    let v = pki::verify(anchors(), &der, Purpose::Sign, 1_746_100_800, &policy);
    assert_eq!(
        v.outcome,
        VerifyOutcome::RevocationUnknown,
        "{:?}",
        v.details
    );
    // The current CRL answers for any `at`: revoked since 2026-06-15, good before.
    let current_store = CrlStore::open(crl_dir()).unwrap();
    let current = RevocationPolicy {
        crl: Some(&current_store),
        ..RevocationPolicy::new(RevocationMode::Require, pki_support::now())
    };
    let v = pki::verify(anchors(), &der, Purpose::Sign, 1_795_000_000, &current);
    assert_eq!(v.outcome.as_str(), "revoked");
    let v = pki::verify(anchors(), &der, Purpose::Sign, 1_770_000_000, &current);
    assert_eq!(
        v.outcome,
        VerifyOutcome::Valid,
        "revoked only from 2026-06-15"
    );
}

/// DF22..DF25 of the text AP's basic-four file (tolerant BER: 1-byte and 81/82 lengths).
fn text_four(bytes: &[u8]) -> TextApFour {
    fn len(b: &[u8], i: &mut usize) -> usize {
        let first = b[*i];
        *i += 1;
        match first {
            0x81 => {
                *i += 1;
                b[*i - 1] as usize
            }
            0x82 => {
                *i += 2;
                (b[*i - 2] as usize) << 8 | b[*i - 1] as usize
            }
            n => n as usize,
        }
    }
    let mut i = 2; // FF 20
    let _outer = len(bytes, &mut i);
    let mut vals = std::collections::HashMap::new();
    while i + 2 < bytes.len() && bytes[i] != 0xFF {
        let tag = (bytes[i], bytes[i + 1]);
        i += 2;
        let l = len(bytes, &mut i);
        vals.insert(tag.1, bytes[i..i + l].to_vec());
        i += l;
    }
    let s = |t: u8| Zeroizing::new(String::from_utf8(vals[&t].clone()).unwrap());
    TextApFour {
        name: s(0x22),
        address: s(0x23),
        birth_date: s(0x24),
        sex: s(0x25),
    }
}

#[test]
fn basic_four_compared_with_the_text_ap() {
    let mut checked = 0;
    for (name, t) in personas() {
        let expect = &t["expect"];
        let Some(matches) = expect.get("attributes_match").and_then(|v| v.as_bool()) else {
            continue;
        };
        let dir = hw().join("personas").join(&name);
        let Ok(text) = std::fs::read(dir.join("text/0002.bin")) else {
            continue;
        };
        let cert = attributes::from_certificate(&std::fs::read(dir.join("jpki/0001.bin")).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = attributes::compare(&cert, &text_four(&text));
        assert_eq!(c.all_exact(), matches, "{name}: {c:?}");
        let subst = expect["substitute_characters"].as_bool().unwrap();
        assert_eq!(
            c.name_substitute_present || c.address_substitute_present,
            subst,
            "{name}"
        );
        checked += 1;
    }
    assert!(checked >= 8, "{checked}");
}

#[test]
fn algorithms() {
    let at = 1_795_000_000;
    for f in [
        "ec/p256_sign_ee.der",
        "ec/p384_sign_ee.der",
        "alg/rsa_sha384_sign_ee.der",
        "alg/rsa_sha512_sign_ee.der",
    ] {
        let v = pki::verify(
            anchors(),
            &testpki(f),
            Purpose::Sign,
            at,
            &RevocationPolicy::off(),
        );
        assert_eq!(v.outcome, VerifyOutcome::Valid, "{f}: {:?}", v.details);
    }
}

/// One `openssl ocsp` responder with the committed responder certificate of sign root g2; the
/// index lists the `revoked` persona's serial as affiliationChanged.
#[test]
fn ocsp_with_the_committed_responder() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("index.txt");
    std::fs::write(
        &idx,
        "R\t300331145959Z\t260615030000Z,affiliationChanged\tC0000004\tunknown\t/CN=revoked\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = hw().join("testpki");
    let mut child = std::process::Command::new("openssl")
        .args(["ocsp", "-index"])
        .arg(&idx)
        .args(["-port", &port.to_string(), "-rsigner"])
        .arg(t.join("ocsp_sign_g2.pem"))
        .arg("-rkey")
        .arg(t.join("keys/ocsp_sign_g2.pem"))
        .arg("-CA")
        .arg(t.join("sign_root_g2.pem"))
        .args(["-nrequest", "1", "-ndays", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("waiting for OCSP client") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "openssl ocsp exited");
    }
    let cfg = pki::OcspConfig::new(format!("http://127.0.0.1:{port}/ocsp"));
    let policy = RevocationPolicy {
        ocsp: Some(pki_support::ocsp_via_http(&cfg)),
        ..RevocationPolicy::new(RevocationMode::Require, pki_support::now())
    };
    let der = std::fs::read(hw().join("personas/revoked/jpki/0001.bin")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let v = pki::verify(anchors(), &der, Purpose::Sign, now, &policy);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(v.outcome.as_str(), "revoked", "{:?}", v.details);
    assert_eq!(v.details.revocation_source, Some(RevocationSource::Ocsp));
    assert_eq!(
        v.details.revocation_reason.unwrap().as_str(),
        "affiliationChanged"
    );
    assert_eq!(v.details.revoked_at, Some(1_781_492_400)); // 2026-06-15T03:00:00Z
}

/// A consent document signed with the ordinary persona's card key; `openssl cms -verify`
/// checks it against the committed sign root g2.
#[test]
fn cms_with_the_ordinary_persona() {
    use rsa::pkcs8::DecodePrivateKey;
    let dir = hw().join("personas/ordinary");
    let cert = std::fs::read(dir.join("jpki/0001.bin")).unwrap();
    // Card EFs may carry FF filler; CMS needs the exact DER.
    let cert = {
        let len = match (cert[1], cert[2], cert[3]) {
            (0x82, h, l) => 4 + ((h as usize) << 8 | l as usize),
            (0x81, l, _) => 3 + l as usize,
            (l, _, _) => 2 + l as usize,
        };
        cert[..len].to_vec()
    };
    let doc = br#"{"items":["address","birth-date","name"]}"#;
    let key =
        rsa::RsaPrivateKey::from_pkcs8_der(&std::fs::read(dir.join("keys/sign.pk8.der")).unwrap())
            .unwrap();
    let signer = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(key);
    let der = jpkid::pki::cms::sign(doc, &cert, 1_795_000_000, &signer).unwrap();
    let v = jpkid::pki::cms::verify_signed_data(&der, Some(1_795_000_000)).unwrap();
    assert_eq!(v.content, doc);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("c.p7m"), &der).unwrap();
    let st = std::process::Command::new("openssl")
        .args(["cms", "-verify", "-inform", "DER", "-purpose", "any", "-in"])
        .arg(tmp.path().join("c.p7m"))
        .arg("-CAfile")
        .arg(hw().join("testpki/sign_root_g2.pem"))
        .args(["-attime", "1795000000", "-out"])
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert_eq!(std::fs::read(tmp.path().join("out")).unwrap(), doc);
}
