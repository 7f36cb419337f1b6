//! A CRL writer for tests and the benchmark: assembles the TBS by hand (so that 10 M entries
//! take seconds, not minutes) and signs it with an RSA test key.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use x509_parser::prelude::*;

pub struct CrlEntry {
    /// Serial magnitude, big-endian.
    pub serial: Vec<u8>,
    pub date: i64,
    pub reason: Option<u8>,
}

pub fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().position(|&b| b != 0).unwrap();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(content.len() + 10);
    v.push(tag);
    push_len(&mut v, content.len());
    v.extend_from_slice(content);
    v
}

fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// UTCTime (1950..2049) or GeneralizedTime.
pub fn time(t: i64) -> Vec<u8> {
    let (y, mo, d) = civil(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    let (h, mi, se) = (s / 3600, s / 60 % 60, s % 60);
    if (1950..2050).contains(&y) {
        tlv(
            0x17,
            format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{se:02}Z", y % 100).as_bytes(),
        )
    } else {
        tlv(
            0x18,
            format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{se:02}Z").as_bytes(),
        )
    }
}

pub fn integer(mag: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(mag.len() + 1);
    if mag.is_empty() || mag[0] & 0x80 != 0 {
        c.push(0);
    }
    c.extend_from_slice(mag);
    tlv(0x02, &c)
}

const SHA256_RSA: &[u8] = &[
    0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B, 0x05, 0x00,
];

pub fn encode_entry(out: &mut Vec<u8>, e: &CrlEntry) {
    let mut c = integer(&e.serial);
    c.extend(time(e.date));
    if let Some(r) = e.reason {
        let ext = tlv(
            0x30,
            &[
                &[0x06, 0x03, 0x55, 0x1D, 0x15][..],
                &tlv(0x04, &[0x0A, 0x01, r]),
            ]
            .concat(),
        );
        c.extend(tlv(0x30, &ext));
    }
    out.push(0x30);
    push_len(out, c.len());
    out.extend_from_slice(&c);
}

pub struct CrlSpec<'a> {
    pub issuer_cert_der: &'a [u8],
    pub key_pk8_der: &'a [u8],
    pub this_update: i64,
    pub next_update: Option<i64>,
    pub crl_number: u64,
    /// Include an AKI equal to the issuer's SKI.
    pub aki: bool,
}

/// Build and sign a CRL whose entries are already encoded in `entries_der`.
pub fn build_crl_from_encoded(spec: &CrlSpec<'_>, entries_der: &[u8]) -> Vec<u8> {
    build_crl_with_extensions(spec, entries_der, &[])
}

/// One Extension (OID content bytes, criticality, extnValue content).
pub fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut c = tlv(0x06, oid);
    if critical {
        c.extend_from_slice(&[0x01, 0x01, 0xFF]);
    }
    c.extend(tlv(0x04, value));
    tlv(0x30, &c)
}

/// Fields of an issuingDistributionPoint (RFC 5280 §5.2.5), as context-tagged DER.
pub mod idp {
    use super::tlv;

    /// distributionPoint [0] fullName [0] { uniformResourceIdentifier [6] `uri` }.
    pub fn distribution_point(uri: &str) -> Vec<u8> {
        tlv(0xA0, &tlv(0xA0, &tlv(0x86, uri.as_bytes())))
    }
    pub fn only_user_certs() -> Vec<u8> {
        vec![0x81, 0x01, 0xFF]
    }
    pub fn only_ca_certs() -> Vec<u8> {
        vec![0x82, 0x01, 0xFF]
    }
    /// onlySomeReasons [3] ReasonFlags: keyCompromise (bit 1) and cACompromise (bit 2).
    pub fn only_some_reasons() -> Vec<u8> {
        vec![0x83, 0x02, 0x05, 0x60]
    }
    pub fn indirect_crl() -> Vec<u8> {
        vec![0x84, 0x01, 0xFF]
    }
    pub fn only_attribute_certs() -> Vec<u8> {
        vec![0x85, 0x01, 0xFF]
    }
    /// The critical issuingDistributionPoint extension with these fields, in order.
    pub fn extension(fields: &[Vec<u8>]) -> Vec<u8> {
        super::extension(&[0x55, 0x1D, 0x1C], true, &tlv(0x30, &fields.concat()))
    }
}

/// [`build_crl_from_encoded`] with `extra_extensions` (encoded Extensions) appended to the
/// crlExtensions after AKI and cRLNumber.
pub fn build_crl_with_extensions(
    spec: &CrlSpec<'_>,
    entries_der: &[u8],
    extra_extensions: &[u8],
) -> Vec<u8> {
    let (_, issuer) = X509Certificate::from_der(spec.issuer_cert_der).unwrap();
    let mut tbs_c = Vec::with_capacity(entries_der.len() + 512);
    tbs_c.extend(tlv(0x02, &[1]));
    tbs_c.extend_from_slice(SHA256_RSA);
    tbs_c.extend_from_slice(issuer.subject().as_raw());
    tbs_c.extend(time(spec.this_update));
    if let Some(n) = spec.next_update {
        tbs_c.extend(time(n));
    }
    if !entries_der.is_empty() {
        tbs_c.push(0x30);
        push_len(&mut tbs_c, entries_der.len());
        tbs_c.extend_from_slice(entries_der);
    }
    let mut exts = Vec::new();
    if spec.aki {
        let ski = issuer
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
            .unwrap();
        let aki = tlv(0x30, &tlv(0x80, &ski));
        exts.extend(tlv(
            0x30,
            &[&[0x06, 0x03, 0x55, 0x1D, 0x23][..], &tlv(0x04, &aki)].concat(),
        ));
    }
    let num =
        integer(&spec.crl_number.to_be_bytes()[spec.crl_number.leading_zeros() as usize / 8..]);
    exts.extend(tlv(
        0x30,
        &[&[0x06, 0x03, 0x55, 0x1D, 0x14][..], &tlv(0x04, &num)].concat(),
    ));
    exts.extend_from_slice(extra_extensions);
    tbs_c.extend(tlv(0xA0, &tlv(0x30, &exts)));
    let tbs = tlv(0x30, &tbs_c);
    drop(tbs_c);
    let key = rsa::RsaPrivateKey::from_pkcs8_der(spec.key_pk8_der).unwrap();
    let sig = SigningKey::<Sha256>::new(key).sign(&tbs).to_vec();
    let mut sigbits = vec![0u8];
    sigbits.extend(sig);
    let mut body = tbs;
    body.extend_from_slice(SHA256_RSA);
    body.extend(tlv(0x03, &sigbits));
    tlv(0x30, &body)
}

pub fn build_crl(spec: &CrlSpec<'_>, entries: &[CrlEntry]) -> Vec<u8> {
    let mut enc = Vec::new();
    for e in entries {
        encode_entry(&mut enc, e);
    }
    build_crl_from_encoded(spec, &enc)
}
