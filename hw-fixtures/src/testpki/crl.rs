//! CRL assembly: x509-cert 0.2 has no CRL builder, so the TBSCertList is built and signed here.

use der::Encode;
use der::asn1::{BitString, Uint};
use der::oid::AssociatedOid;
use x509_cert::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::pkix::crl::CrlNumber;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use super::TestPkiError;
use super::keys::{SigAlg, TestKey};
use super::x509::{aki, ext};

/// One revoked certificate.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Serial magnitude, big-endian.
    pub serial: Vec<u8>,
    /// Revocation date.
    pub date: Time,
    /// reasonCode entry extension; `None` leaves it out (means unspecified per RFC 5280).
    pub reason: Option<CrlReason>,
}

/// What goes into one CRL.
#[derive(Clone, Debug)]
pub struct CrlSpec {
    /// thisUpdate.
    pub this_update: Time,
    /// nextUpdate.
    pub next_update: Time,
    /// cRLNumber.
    pub number: u32,
    /// Entries, in the order written.
    pub entries: Vec<Entry>,
}

/// Builds a v2 CRL with AKI and cRLNumber, signed by `issuer_key`.
pub fn build_crl(
    spec: &CrlSpec,
    issuer: &Name,
    issuer_key: &TestKey,
    alg: SigAlg,
) -> Result<Vec<u8>, TestPkiError> {
    let mut revoked = Vec::with_capacity(spec.entries.len());
    for e in &spec.entries {
        let crl_entry_extensions = match e.reason {
            Some(r) => Some(vec![ext(CrlReason::OID, false, &r)?]),
            None => None,
        };
        revoked.push(RevokedCert {
            serial_number: SerialNumber::new(&e.serial)?,
            revocation_date: e.date,
            crl_entry_extensions,
        });
    }
    let number = CrlNumber(Uint::new(&spec.number.to_be_bytes())?);
    let tbs = TbsCertList {
        version: Version::V2,
        signature: alg.identifier(),
        issuer: issuer.clone(),
        this_update: spec.this_update,
        next_update: Some(spec.next_update),
        revoked_certificates: if revoked.is_empty() {
            None
        } else {
            Some(revoked)
        },
        crl_extensions: Some(vec![aki(issuer_key)?, ext(CrlNumber::OID, false, &number)?]),
    };
    let sig = issuer_key.sign(alg, &tbs.to_der()?)?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: alg.identifier(),
        signature: BitString::from_bytes(&sig)?,
    };
    Ok(crl.to_der()?)
}
