//! The whole generated tree: `testpki/…` and `personas/…`, as relative path → bytes.

use der::pem::LineEnding;
use x509_cert::ext::pkix::CrlReason;

use super::cardca::{self, CardCa, CardCas};
use super::crl::{self, CrlSpec, Entry};
use super::keys::{SigAlg, TestKey};
use super::names::{self, C, O, OU, Str};
use super::personas::{self, current_validity};
use super::pki::{self, EeParams, Hierarchy, Root, SignSubject};
use super::x509;
use super::{Files, TestPkiError};

fn pem(label: &str, der: &[u8]) -> Result<Vec<u8>, TestPkiError> {
    Ok(der::pem::encode_string(label, LineEnding::LF, der)
        .map_err(der::Error::from)?
        .into_bytes())
}

/// Adds `<stem>.der` and `<stem>.pem` for a certificate.
fn cert(files: &mut Files, stem: &str, der: &[u8]) -> Result<(), TestPkiError> {
    files.insert(format!("{stem}.pem"), pem("CERTIFICATE", der)?);
    files.insert(format!("{stem}.der"), der.to_vec());
    Ok(())
}

/// Adds `<stem>.pk8.der` and `<stem>.pem` (PKCS#8) for a private key.
fn key(files: &mut Files, stem: &str, k: &TestKey) -> Result<(), TestPkiError> {
    let der = k.pkcs8_der()?;
    files.insert(format!("{stem}.pem"), pem("PRIVATE KEY", &der)?);
    files.insert(format!("{stem}.pk8.der"), der);
    Ok(())
}

/// A card CA key: its SubjectPublicKeyInfo as `<dir>/<32 hex digits of the id>.pem` (the
/// `trust.card_ca_dir` form, DESIGN §8) and its private key under `testpki/keys/`.
fn card_ca(files: &mut Files, dir: &str, ca: &CardCa) -> Result<(), TestPkiError> {
    files.insert(
        format!("{dir}/{}", cardca::file_name(&ca.id)),
        pem("PUBLIC KEY", &ca.key.spki_der()?)?,
    );
    key(files, &format!("testpki/keys/{}", ca.stem), &ca.key)
}

/// Generates every file: about 90 RSA-2048 keys, ≈25 s in release and ≈40 s in debug (the
/// workspace builds dependencies optimised).
pub fn generate() -> Result<Files, TestPkiError> {
    let mut files = Files::new();
    let h = Hierarchy::generate()?;
    for (stem, root) in [
        ("sign_root_g1", &h.sign_g1),
        ("sign_root_g2", &h.sign_g2),
        ("auth_root_g1", &h.auth_g1),
        ("auth_root_g2", &h.auth_g2),
    ] {
        cert(&mut files, &format!("testpki/{stem}"), &root.der)?;
        key(&mut files, &format!("testpki/keys/{stem}"), &root.key)?;
    }

    let ocsp_key = TestKey::rsa("ocsp_sign_g2")?;
    let ocsp = pki::ocsp_responder(&h.sign_g2, &ocsp_key, [0xB0, 0xC5, 0x00, 0x01])?;
    cert(&mut files, "testpki/ocsp_sign_g2", &ocsp)?;
    key(&mut files, "testpki/keys/ocsp_sign_g2", &ocsp_key)?;

    let cas = CardCas::generate()?;
    card_ca(&mut files, "testpki/card_ca", &cas.text)?;
    card_ca(&mut files, "testpki/card_ca", &cas.visual)?;
    card_ca(
        &mut files,
        "testpki/card_ca_unconfigured",
        &cas.unconfigured,
    )?;

    let mut revoked = Vec::new();
    for spec in personas::catalogue() {
        let made = personas::persona_files(&spec, &h, &cas, &mut files)?;
        revoked.extend(made.revoked_serial);
    }

    crls(&h, &revoked, &mut files)?;
    algorithm_certs(&h, &mut files)?;
    Ok(files)
}

/// `sign_g2.crl` (every reason code), `sign_g2_stale.crl`, and empty CRLs of the other roots.
fn crls(h: &Hierarchy, revoked: &[[u8; 4]], files: &mut Files) -> Result<(), TestPkiError> {
    let date = x509::utc(2026, 6, 15, 3, 0, 0)?;
    let mut entries: Vec<Entry> = revoked
        .iter()
        .map(|s| Entry {
            serial: s.to_vec(),
            date,
            reason: Some(CrlReason::AffiliationChanged),
        })
        .collect();
    let others = [
        Some(CrlReason::Unspecified),
        Some(CrlReason::KeyCompromise),
        Some(CrlReason::CaCompromise),
        Some(CrlReason::Superseded),
        Some(CrlReason::CessationOfOperation),
        Some(CrlReason::CertificateHold),
        None,
    ];
    for (i, reason) in others.into_iter().enumerate() {
        let hi = if i.is_multiple_of(2) { 0xF1 } else { 0x71 };
        entries.push(Entry {
            serial: vec![hi, 0x00, 0x01, i as u8],
            date: x509::utc(2026, 1 + i as u8, 10, 1, 0, 0)?,
            reason,
        });
    }
    let fresh = |number, entries| -> Result<CrlSpec, TestPkiError> {
        Ok(CrlSpec {
            this_update: x509::utc(2026, 11, 1, 0, 0, 0)?,
            next_update: x509::utc(2030, 3, 31, 14, 59, 59)?,
            number,
            entries,
        })
    };
    let sign = |root: &Root, spec: &CrlSpec| {
        crl::build_crl(spec, &root.name, &root.key, SigAlg::RsaSha256)
    };
    files.insert(
        "testpki/sign_g2.crl".into(),
        sign(&h.sign_g2, &fresh(120, entries.clone())?)?,
    );
    let stale = CrlSpec {
        this_update: x509::utc(2025, 5, 1, 0, 0, 0)?,
        next_update: x509::utc(2025, 5, 2, 0, 0, 0)?,
        number: 7,
        entries: entries
            .into_iter()
            .filter(|e| e.reason != Some(CrlReason::AffiliationChanged))
            .collect(),
    };
    files.insert(
        "testpki/sign_g2_stale.crl".into(),
        sign(&h.sign_g2, &stale)?,
    );
    for (stem, root) in [
        ("sign_g1", &h.sign_g1),
        ("auth_g1", &h.auth_g1),
        ("auth_g2", &h.auth_g2),
    ] {
        files.insert(
            format!("testpki/{stem}.crl"),
            sign(root, &fresh(120, Vec::new())?)?,
        );
    }
    Ok(())
}

/// ECDSA P-256/P-384 roots and signing EEs (`ec/`), RSA signing EEs with SHA-384/512 (`alg/`).
fn algorithm_certs(h: &Hierarchy, files: &mut Files) -> Result<(), TestPkiError> {
    let ordinary = personas::catalogue()
        .into_iter()
        .next()
        .ok_or(TestPkiError::Layout("persona catalogue"))?;
    let subject = |cn: &str| -> Result<SignSubject, TestPkiError> {
        Ok(SignSubject {
            prefecture: ordinary.locality.0.to_owned(),
            municipality: ordinary.locality.1.to_owned(),
            cn: cn.to_owned(),
            san: personas::san_for(&ordinary, ordinary.address, ("", ""))?,
        })
    };
    let root_validity = (
        x509::utc(2023, 7, 16, 0, 0, 0)?,
        x509::utc(2043, 7, 15, 14, 59, 59)?,
    );
    for (curve, root_key, ee_key) in [
        (
            "p256",
            TestKey::p256("ec-p256-root"),
            TestKey::p256("ec-p256-sign-ee"),
        ),
        (
            "p384",
            TestKey::p384("ec-p384-root"),
            TestKey::p384("ec-p384-sign-ee"),
        ),
    ] {
        let ou = format!("JPKI-TESTPKI ECDSA {} root", curve.to_uppercase());
        let dn = names::name(&[
            (C, Str::Printable("JP")),
            (O, Str::Printable("JPKI-TESTPKI")),
            (OU, Str::Printable(&ou)),
        ])?;
        let root = pki::build_root(dn, None, root_key, &[0x0E, 0xC0, 0x00, 0x01], root_validity)?;
        let params = EeParams {
            serial: [0x8E, 0xC0, 0x00, 0x02],
            key: &ee_key,
            validity: current_validity()?,
            policies_critical: false,
            alg: root.key.default_alg(),
        };
        let ee = pki::sign_ee(
            &root,
            &subject(&format!("ECDSA{}SIGNEE", curve.to_uppercase()))?,
            params,
        )?;
        cert(files, &format!("testpki/ec/{curve}_root"), &root.der)?;
        cert(files, &format!("testpki/ec/{curve}_sign_ee"), &ee)?;
        key(files, &format!("testpki/ec/keys/{curve}_root"), &root.key)?;
        key(files, &format!("testpki/ec/keys/{curve}_sign_ee"), &ee_key)?;
    }
    for (name, alg, serial) in [
        (
            "rsa_sha384_sign_ee",
            SigAlg::RsaSha384,
            [0x38, 0x40, 0x00, 0x01],
        ),
        (
            "rsa_sha512_sign_ee",
            SigAlg::RsaSha512,
            [0xD1, 0x20, 0x00, 0x01],
        ),
    ] {
        let ee_key = TestKey::rsa(name)?;
        let params = EeParams {
            serial,
            key: &ee_key,
            validity: current_validity()?,
            policies_critical: false,
            alg,
        };
        let ee = pki::sign_ee(
            &h.sign_g2,
            &subject(&name.to_uppercase().replace('_', ""))?,
            params,
        )?;
        cert(files, &format!("testpki/alg/{name}"), &ee)?;
        key(files, &format!("testpki/alg/keys/{name}"), &ee_key)?;
    }
    Ok(())
}
