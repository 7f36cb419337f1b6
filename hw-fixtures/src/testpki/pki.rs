//! The test hierarchy: roots (two generations per purpose, same DN), JPKI-shaped end entities,
//! the OCSP responder certificate.

use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::time::Time;

use super::TestPkiError;
use super::keys::{SigAlg, TestKey};
use super::names::{self, C, CN, L, O, OU, Purpose, Str};
use super::x509::{self, CertSpec, SanAttributes};

/// Root key generation. Generations share one DN, so only AKI/SKI and the signature tell them
/// apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gen {
    /// First generation (older key).
    G1,
    /// Second generation (current key).
    G2,
}

impl Gen {
    /// `g1` / `g2`, as used in file names and `persona.toml`.
    pub fn stem(self) -> &'static str {
        match self {
            Gen::G1 => "g1",
            Gen::G2 => "g2",
        }
    }
}

/// A self-signed root with its key.
#[derive(Clone, Debug)]
pub struct Root {
    /// Subject = issuer DN.
    pub name: Name,
    /// Private key.
    pub key: TestKey,
    /// Certificate DER.
    pub der: Vec<u8>,
}

/// Issues a self-signed root in the JPKI root shape.
pub fn build_root(
    name: Name,
    alt: Option<Name>,
    key: TestKey,
    serial: &[u8],
    validity: (Time, Time),
) -> Result<Root, TestPkiError> {
    let mut extensions = vec![
        x509::basic_constraints(true)?,
        x509::key_usage(KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
        x509::ski(&key)?,
    ];
    if let Some(alt) = alt {
        extensions.push(x509::san_dirname(&alt)?);
    }
    extensions.push(x509::crldp_dirname(&name)?);
    let spec = CertSpec {
        serial,
        subject: name.clone(),
        subject_key: &key,
        validity,
        extensions,
    };
    let der = x509::issue(spec, &name, &key, key.default_alg())?;
    Ok(Root { name, key, der })
}

/// The four RSA roots of the JPKI-shaped test hierarchy.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    /// Signing root, generation 1.
    pub sign_g1: Root,
    /// Signing root, generation 2.
    pub sign_g2: Root,
    /// Authentication root, generation 1.
    pub auth_g1: Root,
    /// Authentication root, generation 2.
    pub auth_g2: Root,
}

impl Hierarchy {
    /// Generates the four roots (four RSA-2048 key generations).
    pub fn generate() -> Result<Self, TestPkiError> {
        let root = |purpose: Purpose, generation: Gen| -> Result<Root, TestPkiError> {
            let key = TestKey::rsa(&format!("{}_root_{}", purpose.stem(), generation.stem()))?;
            let (serial, validity): (&[u8], _) = match generation {
                Gen::G1 => (
                    &[0x01],
                    (
                        x509::utc(2015, 10, 20, 0, 0, 0)?,
                        x509::utc(2035, 10, 19, 14, 59, 59)?,
                    ),
                ),
                Gen::G2 => (
                    match purpose {
                        Purpose::Sign => &[0x02, 0x10, 0xC4, 0xAB],
                        Purpose::Auth => &[0x02, 0x11, 0xC3, 0x49],
                    },
                    (
                        x509::utc(2019, 9, 14, 0, 0, 0)?,
                        x509::utc(2039, 9, 14, 14, 59, 59)?,
                    ),
                ),
            };
            build_root(
                names::root_dn(purpose)?,
                Some(names::root_alt_dn(purpose)?),
                key,
                serial,
                validity,
            )
        };
        Ok(Hierarchy {
            sign_g1: root(Purpose::Sign, Gen::G1)?,
            sign_g2: root(Purpose::Sign, Gen::G2)?,
            auth_g1: root(Purpose::Auth, Gen::G1)?,
            auth_g2: root(Purpose::Auth, Gen::G2)?,
        })
    }

    /// The root of one purpose and generation.
    pub fn root(&self, purpose: Purpose, generation: Gen) -> &Root {
        match (purpose, generation) {
            (Purpose::Sign, Gen::G1) => &self.sign_g1,
            (Purpose::Sign, Gen::G2) => &self.sign_g2,
            (Purpose::Auth, Gen::G1) => &self.auth_g1,
            (Purpose::Auth, Gen::G2) => &self.auth_g2,
        }
    }
}

/// What varies between end-entity certificates.
#[derive(Clone, Copy, Debug)]
pub struct EeParams<'a> {
    /// 4-byte serial (some with the high bit set).
    pub serial: [u8; 4],
    /// The holder's key.
    pub key: &'a TestKey,
    /// notBefore, notAfter.
    pub validity: (Time, Time),
    /// Whether certificatePolicies is critical (the real criticality is unknown).
    pub policies_critical: bool,
    /// Signature algorithm of the issuer.
    pub alg: SigAlg,
}

/// The subject of a signing certificate.
#[derive(Clone, Debug)]
pub struct SignSubject {
    /// First L: prefecture (romanised).
    pub prefecture: String,
    /// Second L: municipality (romanised).
    pub municipality: String,
    /// Opaque CN.
    pub cn: String,
    /// The six SAN attributes.
    pub san: SanAttributes,
}

/// Signing EE: `C=JP, L, L, CN`; KU nonRepudiation+digitalSignature critical; policy class 20;
/// six otherName SAN attributes; DirName CRLDP = issuer DN; AKI/SKI.
pub fn sign_ee(root: &Root, s: &SignSubject, p: EeParams<'_>) -> Result<Vec<u8>, TestPkiError> {
    let subject = names::name(&[
        (C, Str::Printable("JP")),
        (L, Str::Printable(&s.prefecture)),
        (L, Str::Printable(&s.municipality)),
        (CN, Str::Printable(&s.cn)),
    ])?;
    let extensions = vec![
        x509::basic_constraints(false)?,
        x509::key_usage(KeyUsage(
            KeyUsages::NonRepudiation | KeyUsages::DigitalSignature,
        ))?,
        x509::policies(x509::POLICY_SIGN, p.policies_critical)?,
        x509::san_jpki(&s.san)?,
        x509::crldp_dirname(&root.name)?,
        x509::aki(&root.key)?,
        x509::ski(p.key)?,
    ];
    issue_ee(root, subject, p, extensions)
}

/// Authentication EE: `C=JP, CN`; KU digitalSignature critical; policy class 30; no SAN.
pub fn auth_ee(root: &Root, cn: &str, p: EeParams<'_>) -> Result<Vec<u8>, TestPkiError> {
    let subject = names::name(&[(C, Str::Printable("JP")), (CN, Str::Printable(cn))])?;
    let extensions = vec![
        x509::basic_constraints(false)?,
        x509::key_usage(KeyUsage(KeyUsages::DigitalSignature.into()))?,
        x509::policies(x509::POLICY_AUTH, p.policies_critical)?,
        x509::crldp_dirname(&root.name)?,
        x509::aki(&root.key)?,
        x509::ski(p.key)?,
    ];
    issue_ee(root, subject, p, extensions)
}

fn issue_ee(
    root: &Root,
    subject: Name,
    p: EeParams<'_>,
    extensions: Vec<x509_cert::ext::Extension>,
) -> Result<Vec<u8>, TestPkiError> {
    let spec = CertSpec {
        serial: &p.serial,
        subject,
        subject_key: p.key,
        validity: p.validity,
        extensions,
    };
    x509::issue(spec, &root.name, &root.key, p.alg)
}

/// OCSP responder certificate issued by `root`: EKU id-kp-OCSPSigning, ocsp-nocheck.
pub fn ocsp_responder(
    root: &Root,
    key: &TestKey,
    serial: [u8; 4],
) -> Result<Vec<u8>, TestPkiError> {
    let subject = names::name(&[
        (C, Str::Printable("JP")),
        (O, Str::Printable("JPKI-TESTPKI")),
        (OU, Str::Printable("JPKI for digital signature")),
        (CN, Str::Printable("JPKI-TESTPKI OCSP responder sign g2")),
    ])?;
    let mut extensions = vec![
        x509::basic_constraints(false)?,
        x509::key_usage(KeyUsage(KeyUsages::DigitalSignature.into()))?,
    ];
    extensions.extend(x509::ocsp_signing()?);
    extensions.push(x509::aki(&root.key)?);
    extensions.push(x509::ski(key)?);
    let p = EeParams {
        serial,
        key,
        validity: (
            x509::utc(2025, 4, 1, 0, 0, 0)?,
            x509::utc(2030, 3, 31, 14, 59, 59)?,
        ),
        policies_critical: false,
        alg: SigAlg::RsaSha256,
    };
    issue_ee(root, subject, p, extensions)
}
