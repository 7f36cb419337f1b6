//! Certificate assembly: a TBSCertificate with exactly the extensions asked for, signed.
//!
//! The x509-cert builder adds fixed extensions per profile (and `Profile::Manual` needs the
//! `hazmat` feature); assembling the TBS ourselves keeps the JPKI shape under our control.

use der::asn1::{BitString, ObjectIdentifier, OctetString, Utf8StringRef};
use der::oid::AssociatedOid;
use der::{Any, DateTime, Encode};
use sha2::{Digest, Sha256};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName, OtherName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlDistributionPoints,
    ExtendedKeyUsage, KeyUsage, SubjectAltName, SubjectKeyIdentifier,
    certpolicy::PolicyInformation,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use super::TestPkiError;
use super::keys::{SigAlg, TestKey};

/// JPKI signing-certificate policy (class 20).
pub const POLICY_SIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.1.1.20");
/// JPKI user-authentication certificate policy (class 30).
pub const POLICY_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.1.3.30");
/// id-kp-OCSPSigning.
pub const KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// id-pkix-ocsp-nocheck.
pub const OCSP_NOCHECK: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");
/// Arc of the JPKI personal-data SAN attributes; `.1`–`.6` follow.
pub const SAN_ARC: &str = "1.2.392.200149.8.5.5";

/// A UTC time at a fixed instant (no clock is read anywhere in the test PKI).
pub fn utc(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> Result<Time, TestPkiError> {
    let dt = DateTime::new(y, mo, d, h, mi, s)?;
    Ok(Time::UtcTime(der::asn1::UtcTime::from_date_time(dt)?))
}

/// Key identifier: leftmost 160 bits of SHA-256 of the subjectPublicKey bits (RFC 7093 method 1).
pub fn key_id(key: &TestKey) -> Result<Vec<u8>, TestPkiError> {
    let spki = key.spki()?;
    let digest = Sha256::digest(spki.subject_public_key.raw_bytes());
    Ok(digest[..20].to_vec())
}

/// Wraps an encodable value as an extension.
pub fn ext<T: Encode>(
    oid: ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension, TestPkiError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// BasicConstraints (always critical here, as in JPKI roots).
pub fn basic_constraints(ca: bool) -> Result<Extension, TestPkiError> {
    let bc = BasicConstraints {
        ca,
        path_len_constraint: None,
    };
    ext(BasicConstraints::OID, true, &bc)
}

/// KeyUsage, critical.
pub fn key_usage(usages: KeyUsage) -> Result<Extension, TestPkiError> {
    ext(KeyUsage::OID, true, &usages)
}

/// SubjectKeyIdentifier from the subject key.
pub fn ski(key: &TestKey) -> Result<Extension, TestPkiError> {
    let v = SubjectKeyIdentifier(OctetString::new(key_id(key)?)?);
    ext(SubjectKeyIdentifier::OID, false, &v)
}

/// AuthorityKeyIdentifier (keyIdentifier only) from the issuer key.
pub fn aki(issuer_key: &TestKey) -> Result<Extension, TestPkiError> {
    let v = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_id(issuer_key)?)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    ext(AuthorityKeyIdentifier::OID, false, &v)
}

/// CRLDistributionPoints with one directoryName full name, as JPKI does.
pub fn crldp_dirname(dn: &Name) -> Result<Extension, TestPkiError> {
    let dp = DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::DirectoryName(dn.clone()),
        ])),
        reasons: None,
        crl_issuer: None,
    };
    ext(
        CrlDistributionPoints::OID,
        false,
        &CrlDistributionPoints(vec![dp]),
    )
}

/// certificatePolicies with one policy OID; criticality varies because the real one is unknown.
pub fn policies(oid: ObjectIdentifier, critical: bool) -> Result<Extension, TestPkiError> {
    let v = CertificatePolicies(vec![PolicyInformation {
        policy_identifier: oid,
        policy_qualifiers: None,
    }]);
    ext(CertificatePolicies::OID, critical, &v)
}

/// subjectAltName with one directoryName.
pub fn san_dirname(dn: &Name) -> Result<Extension, TestPkiError> {
    let v = SubjectAltName(vec![GeneralName::DirectoryName(dn.clone())]);
    ext(SubjectAltName::OID, false, &v)
}

/// The six JPKI personal-data attributes of a signing certificate, in SAN order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SanAttributes {
    /// `.1` 氏名.
    pub name: String,
    /// `.2` 氏名の代替文字 (empty when not needed).
    pub name_alt: String,
    /// `.3` 性別, an ISO 5218 digit.
    pub sex: String,
    /// `.4` 生年月日, `EYYYYMMDD`.
    pub birth: String,
    /// `.5` 住所.
    pub address: String,
    /// `.6` 住所の代替文字 (empty when not needed).
    pub address_alt: String,
}

/// subjectAltName with six otherName entries, each `[0] EXPLICIT UTF8String`.
pub fn san_jpki(a: &SanAttributes) -> Result<Extension, TestPkiError> {
    let values = [
        &a.name,
        &a.name_alt,
        &a.sex,
        &a.birth,
        &a.address,
        &a.address_alt,
    ];
    let mut names = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let type_id =
            ObjectIdentifier::new(&format!("{SAN_ARC}.{}", i + 1)).map_err(der::Error::from)?;
        let value = Any::encode_from(&Utf8StringRef::new(v)?)?;
        names.push(GeneralName::OtherName(OtherName { type_id, value }));
    }
    ext(SubjectAltName::OID, false, &SubjectAltName(names))
}

/// ExtendedKeyUsage with id-kp-OCSPSigning, plus id-pkix-ocsp-nocheck.
pub fn ocsp_signing() -> Result<Vec<Extension>, TestPkiError> {
    Ok(vec![
        ext(
            ExtendedKeyUsage::OID,
            false,
            &ExtendedKeyUsage(vec![KP_OCSP_SIGNING]),
        )?,
        ext(OCSP_NOCHECK, false, &der::asn1::Null)?,
    ])
}

/// What goes into one certificate.
#[derive(Debug)]
pub struct CertSpec<'a> {
    /// Serial (big-endian magnitude; a leading 00 is added when the high bit is set).
    pub serial: &'a [u8],
    /// Subject DN.
    pub subject: Name,
    /// Subject key.
    pub subject_key: &'a TestKey,
    /// notBefore, notAfter.
    pub validity: (Time, Time),
    /// Extensions, in order.
    pub extensions: Vec<Extension>,
}

/// Issues a certificate signed by `issuer_key` with `alg`, returning its DER.
pub fn issue(
    spec: CertSpec<'_>,
    issuer: &Name,
    issuer_key: &TestKey,
    alg: SigAlg,
) -> Result<Vec<u8>, TestPkiError> {
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(spec.serial)?,
        signature: alg.identifier(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: spec.validity.0,
            not_after: spec.validity.1,
        },
        subject: spec.subject,
        subject_public_key_info: spec.subject_key.spki()?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(spec.extensions),
    };
    let sig = issuer_key.sign(alg, &tbs.to_der()?)?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg.identifier(),
        signature: BitString::from_bytes(&sig)?,
    };
    Ok(cert.to_der()?)
}
