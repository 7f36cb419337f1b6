//! Reading a CRL: the outer DER walk (der 0.7 caps lengths at 256 MiB, a national CRL is
//! larger), the TBS fields and extensions, and the revokedCertificates entries, each decoded in
//! place. Pure: bytes in, fields out; no file I/O, no signature check.

use super::CrlError;
use super::index::{MAX_CRL_NUMBER, MAX_SERIAL, NO_REASON};
use crate::pki::RevocationReason;
use crate::pki::derwalk;

const OID_AKI: &[u8] = &[0x55, 0x1D, 0x23];
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1D, 0x14];
const OID_DELTA_CRL: &[u8] = &[0x55, 0x1D, 0x1B];
const OID_IDP: &[u8] = &[0x55, 0x1D, 0x1C];
const OID_REASON: &[u8] = &[0x55, 0x1D, 0x15];
const OID_INVALIDITY_DATE: &[u8] = &[0x55, 0x1D, 0x18];

/// One decoded CRL entry.
pub(super) struct Entry<'a> {
    pub(super) serial: &'a [u8],
    pub(super) reason: u8,
    pub(super) date: u32,
}

/// The parts of a CertificateList that `import` needs, borrowed from the file bytes.
pub(super) struct CrlParts<'a> {
    pub(super) tbs_raw: &'a [u8],
    pub(super) alg_oid: String,
    pub(super) signature: &'a [u8],
    pub(super) issuer_raw: &'a [u8],
    pub(super) this_update: i64,
    pub(super) next_update: i64,
    pub(super) entries: &'a [u8],
    pub(super) aki: Option<&'a [u8]>,
    pub(super) crl_number: &'a [u8],
}

pub(super) fn split_crl(data: &[u8]) -> Result<CrlParts<'_>, CrlError> {
    use derwalk::*;
    let (outer, rest) = expect(data, TAG_SEQUENCE)?;
    if !rest.is_empty() {
        return Err(CrlError::Structure("trailing bytes after CertificateList"));
    }
    let (tbs, r) = expect(outer.content, TAG_SEQUENCE)?;
    let (alg, r) = expect(r, TAG_SEQUENCE)?;
    let (sigval, r) = expect(r, TAG_BIT_STRING)?;
    if !r.is_empty() {
        return Err(CrlError::Structure("extra fields in CertificateList"));
    }
    let signature = match sigval.content.split_first() {
        Some((0, s)) => s,
        _ => return Err(CrlError::Structure("signature BIT STRING has unused bits")),
    };
    let (alg_oid_tlv, _) = expect(alg.content, TAG_OID)?;
    let alg_oid = der::asn1::ObjectIdentifier::from_bytes(alg_oid_tlv.content)
        .map_err(|_| CrlError::Structure("bad algorithm OID"))?
        .to_string();

    let mut r = tbs.content;
    if peek_tag(r) == Some(TAG_INTEGER) {
        let (v, rest) = read_tlv(r)?;
        if v.content != [1] {
            return Err(CrlError::Unsupported("CRL version other than v2"));
        }
        r = rest;
    }
    let (inner_alg, rest) = expect(r, TAG_SEQUENCE)?;
    if inner_alg.raw != alg.raw {
        return Err(CrlError::Structure(
            "inner and outer signature algorithms differ",
        ));
    }
    let (issuer, rest) = expect(rest, TAG_SEQUENCE)?;
    let (this_tlv, mut r) = read_tlv(rest)?;
    let this_update = derwalk::time_to_unix(&this_tlv)?;
    let mut next_update = None;
    if matches!(peek_tag(r), Some(TAG_UTC_TIME | TAG_GENERALIZED_TIME)) {
        let (t, rest) = read_tlv(r)?;
        next_update = Some(derwalk::time_to_unix(&t)?);
        r = rest;
    }
    let next_update = next_update.ok_or(CrlError::Unsupported("CRL without nextUpdate"))?;
    let mut entries: &[u8] = &[];
    if peek_tag(r) == Some(TAG_SEQUENCE) {
        let (list, rest) = read_tlv(r)?;
        entries = list.content;
        r = rest;
    }
    let mut aki = None;
    let mut crl_number: &[u8] = &[];
    if peek_tag(r) == Some(0xA0) {
        let (wrap, rest) = read_tlv(r)?;
        r = rest;
        let (exts, after) = expect(wrap.content, TAG_SEQUENCE)?;
        if !after.is_empty() {
            return Err(CrlError::Structure("bytes after crlExtensions"));
        }
        for_each_extension(exts.content, |oid, critical, value| {
            match oid {
                OID_AKI => {
                    let (seq, _) = expect(value, TAG_SEQUENCE)?;
                    let (first, _) = read_tlv(seq.content)?;
                    if first.tag == 0x80 {
                        aki = Some(first.content);
                    }
                }
                OID_CRL_NUMBER => {
                    let (n, _) = expect(value, TAG_INTEGER)?;
                    crl_number = derwalk::integer_magnitude(n.content)?;
                    if crl_number.len() > MAX_CRL_NUMBER {
                        return Err(CrlError::Structure("CRL number too long"));
                    }
                }
                OID_DELTA_CRL => return Err(CrlError::Unsupported("delta CRL")),
                // A partition of the issuer's list (RFC 5280 §5.2.5): as an index it would say
                // "not listed" for every serial outside its part, and replace the whole list.
                OID_IDP => {
                    let limits = idp_limits(value)?;
                    if !limits.is_empty() {
                        return Err(CrlError::PartitionedCrl { limits });
                    }
                }
                _ if critical => {
                    return Err(CrlError::Unsupported("unknown critical CRL extension"));
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    if !r.is_empty() {
        return Err(CrlError::Structure("unexpected fields in tbsCertList"));
    }
    Ok(CrlParts {
        tbs_raw: tbs.raw,
        alg_oid,
        signature,
        issuer_raw: issuer.raw,
        this_update,
        next_update,
        entries,
        aki,
        crl_number,
    })
}

/// What an issuingDistributionPoint (the extnValue content) limits the CRL's scope to, by field
/// name in the order of RFC 5280 §5.2.5; empty when it sets no field (a complete CRL). A boolean
/// written out as FALSE (BER's default, not DER) limits nothing either.
fn idp_limits(value: &[u8]) -> Result<Vec<&'static str>, CrlError> {
    use derwalk::*;
    let (seq, rest) = expect(value, TAG_SEQUENCE)?;
    if !rest.is_empty() {
        return Err(CrlError::Structure("bytes after issuingDistributionPoint"));
    }
    let mut limits = Vec::new();
    let (mut fields, mut previous) = (seq.content, None);
    while !fields.is_empty() {
        let (field, rest) = read_tlv(fields)?;
        fields = rest;
        let number = field.tag & 0x1F;
        if previous.is_some_and(|p| p >= number) {
            return Err(CrlError::Structure(
                "issuingDistributionPoint fields repeated or out of order",
            ));
        }
        previous = Some(number);
        let name = match field.tag {
            0xA0 => "distributionPoint",
            0x81 => "onlyContainsUserCerts",
            0x82 => "onlyContainsCACerts",
            0x83 => "onlySomeReasons",
            0x84 => "indirectCRL",
            0x85 => "onlyContainsAttributeCerts",
            _ => {
                return Err(CrlError::Structure(
                    "unknown field in issuingDistributionPoint",
                ));
            }
        };
        let limits_scope = match field.tag {
            0xA0 | 0x83 => true,
            _ => match field.content {
                [0xFF] => true,
                [0x00] => false,
                _ => return Err(CrlError::Structure("issuingDistributionPoint boolean")),
            },
        };
        if limits_scope {
            limits.push(name);
        }
    }
    Ok(limits)
}

/// Call `f(oid_content, critical, extnValue_content)` for each Extension in a SEQUENCE OF.
fn for_each_extension<'a>(
    mut exts: &'a [u8],
    mut f: impl FnMut(&'a [u8], bool, &'a [u8]) -> Result<(), CrlError>,
) -> Result<(), CrlError> {
    use derwalk::*;
    while !exts.is_empty() {
        let (ext, rest) = expect(exts, TAG_SEQUENCE)?;
        exts = rest;
        let (oid, r) = expect(ext.content, TAG_OID)?;
        let (mut critical, mut r) = (false, r);
        if peek_tag(r) == Some(TAG_BOOLEAN) {
            let (b, rest) = read_tlv(r)?;
            critical = b.content == [0xFF];
            r = rest;
        }
        let (value, r) = expect(r, TAG_OCTET_STRING)?;
        if !r.is_empty() {
            return Err(CrlError::Structure("extra fields in Extension"));
        }
        f(oid.content, critical, value.content)?;
    }
    Ok(())
}

/// Decode one revokedCertificates entry.
fn read_entry(input: &[u8]) -> Result<(Entry<'_>, &[u8]), CrlError> {
    use derwalk::*;
    let (seq, rest) = expect(input, TAG_SEQUENCE)?;
    let (serial, r) = expect(seq.content, TAG_INTEGER)?;
    let serial = integer_magnitude(serial.content)?;
    if serial.len() > MAX_SERIAL {
        return Err(CrlError::SerialTooLong);
    }
    let (date_tlv, r) = read_tlv(r)?;
    let date = time_to_unix(&date_tlv)?;
    let date = u32::try_from(date).map_err(|_| CrlError::DateOutOfRange)?;
    let mut reason = NO_REASON;
    if !r.is_empty() {
        let (exts, after) = expect(r, TAG_SEQUENCE)?;
        if !after.is_empty() {
            return Err(CrlError::Structure("extra fields in CRL entry"));
        }
        for_each_extension(exts.content, |oid, critical, value| {
            match oid {
                OID_REASON => {
                    let (e, _) = expect(value, TAG_ENUMERATED)?;
                    let code = u8::try_from(small_uint(e.content)?)
                        .map_err(|_| CrlError::Structure("reason code out of range"))?;
                    if RevocationReason::from_code(code).is_none() {
                        return Err(CrlError::Structure("unknown reason code"));
                    }
                    reason = code;
                }
                OID_INVALIDITY_DATE => {}
                _ if critical => {
                    return Err(CrlError::Unsupported(
                        "critical entry extension (e.g. indirect CRL certificateIssuer)",
                    ));
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok((
        Entry {
            serial,
            reason,
            date,
        },
        rest,
    ))
}

/// Walk all entries, calling `f` on each.
pub(super) fn walk_entries<'a>(
    mut list: &'a [u8],
    mut f: impl FnMut(Entry<'a>),
) -> Result<(), CrlError> {
    while !list.is_empty() {
        let (e, rest) = read_entry(list)?;
        f(e);
        list = rest;
    }
    Ok(())
}
