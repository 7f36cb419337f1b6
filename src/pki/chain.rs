//! The checks of one end-entity certificate against the anchors: JPKI has no intermediates, so a
//! chain is EE → root. Order of checks = precedence of outcomes (see the `pki` module docs).

use x509_parser::oid_registry::{
    OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS,
    OID_X509_EXT_CERTIFICATE_POLICIES, OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE,
};
use x509_parser::prelude::*;
use zeroize::Zeroizing;

use super::crl::CrlAnswer;
use super::ocsp::{FetchError, OcspError, OcspStatus};
use super::roots::{Anchor, TrustAnchors};
use super::sig::{self, SigAlg};
use super::{
    Purpose, RevocationDetail, RevocationMode, RevocationPolicy, RevocationSource, Verification,
    VerifyDetails, VerifyOutcome, upper_hex,
};

/// Signing-certificate policy arc (`…8.5.1.1`, class 20 = `…8.5.1.1.20`).
pub const POLICY_SIGN_ARC: &str = "1.2.392.200149.8.5.1.1";
/// Policy seen on J-LIS test-card signing certificates; accepted only under test anchors.
pub const POLICY_SIGN_TEST_CARD: &str = "1.2.392.200149.8.5.1.0.20";
/// Authentication-certificate policy arc (`…8.5.1.3`, class 30 = `…8.5.1.3.30`).
pub const POLICY_AUTH_ARC: &str = "1.2.392.200149.8.5.1.3";

/// Extensions whose criticality we can honour; any other critical extension is `malformed`.
const UNDERSTOOD: &[&str] = &[
    "2.5.29.14",         // subjectKeyIdentifier
    "2.5.29.15",         // keyUsage
    "2.5.29.17",         // subjectAltName
    "2.5.29.19",         // basicConstraints
    "2.5.29.31",         // cRLDistributionPoints
    "2.5.29.32",         // certificatePolicies
    "2.5.29.35",         // authorityKeyIdentifier
    "2.5.29.37",         // extKeyUsage
    "1.3.6.1.5.5.7.1.1", // authorityInfoAccess
];

/// The parsed facts of an end-entity certificate that the checks need.
pub(crate) struct EeCert<'a> {
    pub cert: X509Certificate<'a>,
    /// Serial as unsigned magnitude (leading zero bytes stripped): the CRL index key.
    pub serial_key: Vec<u8>,
}

/// Parse a certificate; trailing `FF` filler (card EFs) is tolerated, other trailing bytes not.
pub(crate) fn parse_ee(der: &[u8]) -> Option<EeCert<'_>> {
    let (rest, cert) = X509Certificate::from_der(der).ok()?;
    if rest.iter().any(|&b| b != 0xFF) {
        return None;
    }
    let raw = cert.raw_serial();
    let first = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    let serial_key = raw[first..].to_vec();
    Some(EeCert { cert, serial_key })
}

/// Verify an end-entity certificate for `purpose` at `at` (unix seconds) against `anchors`,
/// consulting the revocation sources in `revocation`. Never panics; every problem is an outcome.
pub fn verify(
    anchors: &TrustAnchors,
    der: &[u8],
    purpose: Purpose,
    at: i64,
    revocation: &RevocationPolicy<'_>,
) -> Verification {
    let mut details = VerifyDetails::default();
    let outcome = verify_inner(anchors, der, purpose, at, revocation, &mut details);
    Verification { outcome, details }
}

fn fail(details: &mut VerifyDetails, outcome: VerifyOutcome, note: &str) -> VerifyOutcome {
    details.note = note.to_owned();
    outcome
}

fn verify_inner(
    anchors: &TrustAnchors,
    der: &[u8],
    purpose: Purpose,
    at: i64,
    revocation: &RevocationPolicy<'_>,
    details: &mut VerifyDetails,
) -> VerifyOutcome {
    use VerifyOutcome::*;
    let Some(ee) = parse_ee(der) else {
        return fail(details, Malformed, "not a DER X.509 certificate");
    };
    let cert = &ee.cert;
    // RFC 5280 §4.1.2.2: a positive integer. A negative one would share its bytes — the CRL
    // and OCSP key — with a positive serial of another certificate.
    if cert.raw_serial().first().is_some_and(|b| b & 0x80 != 0) {
        return fail(details, Malformed, "negative serial number");
    }
    details.serial = upper_hex(&ee.serial_key);
    if details.serial.is_empty() {
        details.serial = "00".to_owned();
    }
    details.subject = Zeroizing::new(cert.subject().to_string());
    details.issuer = cert.issuer().to_string();
    details.not_before = Some(cert.validity().not_before.timestamp());
    details.not_after = Some(cert.validity().not_after.timestamp());

    // 1. malformed: structure we cannot process.
    if cert.tbs_certificate.signature != cert.signature_algorithm {
        return fail(
            details,
            Malformed,
            "inner and outer signature algorithms differ",
        );
    }
    let Some(alg) = SigAlg::from_oid(&cert.signature_algorithm.algorithm.to_id_string()) else {
        return fail(details, Malformed, "unsupported signature algorithm");
    };
    for ext in cert.extensions() {
        if matches!(ext.parsed_extension(), ParsedExtension::ParseError { .. }) {
            return fail(details, Malformed, "extension cannot be parsed");
        }
        if ext.critical && !UNDERSTOOD.contains(&ext.oid.to_id_string().as_str()) {
            return fail(details, Malformed, "unknown critical extension");
        }
    }
    let aki = match cert.get_extension_unique(&OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER) {
        Ok(Some(ext)) => match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0),
            _ => return fail(details, Malformed, "bad authorityKeyIdentifier"),
        },
        Ok(None) => None,
        Err(_) => return fail(details, Malformed, "duplicate extension"),
    };

    // 2. untrusted / bad-signature: find the anchor by name, AKI, then signature.
    let candidates = anchors.candidates(cert.issuer().as_raw(), aki);
    if candidates.is_empty() {
        let note = if anchors.has_subject(cert.issuer().as_raw()) {
            "issuer name known but no anchor has this key identifier"
        } else {
            "issuer is not a configured trust anchor"
        };
        return fail(details, Untrusted, note);
    }
    let tbs = cert.tbs_certificate.as_ref();
    let sig_bytes = &cert.signature_value.data;
    let Some(anchor) = candidates
        .into_iter()
        .find(|a| sig::verify(a.spki(), alg, tbs, sig_bytes).is_ok())
    else {
        return fail(
            details,
            BadSignature,
            "signature does not verify with any matching anchor",
        );
    };
    details.root = anchor.sha256_hex();

    // 3. wrong-purpose.
    if let Some(note) = purpose_problem(cert, anchor, purpose) {
        return fail(details, WrongPurpose, note);
    }

    // 4. validity, from the certificate alone.
    if at < cert.validity().not_before.timestamp() {
        return fail(details, NotYetValid, "before notBefore");
    }
    if at > cert.validity().not_after.timestamp() {
        return fail(details, Expired, "after notAfter");
    }

    // 5./6. revocation.
    revocation_outcome(&ee, der, anchor, at, revocation, details)
}

/// KeyUsage, BasicConstraints, policies and the anchor's purpose; `Some(reason)` = wrong purpose.
fn purpose_problem(
    cert: &X509Certificate<'_>,
    anchor: &Anchor,
    purpose: Purpose,
) -> Option<&'static str> {
    if anchor.purpose() != purpose {
        return Some("certificate chains to a root of the other purpose");
    }
    match cert.get_extension_unique(&OID_X509_EXT_BASIC_CONSTRAINTS) {
        Ok(Some(ext)) => {
            if let ParsedExtension::BasicConstraints(bc) = ext.parsed_extension()
                && bc.ca
            {
                return Some("end-entity certificate is a CA");
            }
        }
        Ok(None) => {}
        Err(_) => return Some("duplicate basicConstraints"),
    }
    // A critical extKeyUsage is honoured: it must allow any usage or this purpose's (client
    // authentication for `auth`, e-mail protection — signed documents — for `sign`).
    match cert.get_extension_unique(&OID_X509_EXT_EXTENDED_KEY_USAGE) {
        Ok(Some(ext)) if ext.critical => {
            let ParsedExtension::ExtendedKeyUsage(eku) = ext.parsed_extension() else {
                return Some("extKeyUsage cannot be read");
            };
            let allowed = eku.any
                || match purpose {
                    Purpose::Auth => eku.client_auth,
                    Purpose::Sign => eku.email_protection,
                };
            if !allowed {
                return Some("critical extKeyUsage does not allow this purpose");
            }
        }
        Ok(_) => {}
        Err(_) => return Some("duplicate extKeyUsage"),
    }
    let ku_ok = match cert.get_extension_unique(&OID_X509_EXT_KEY_USAGE) {
        Ok(Some(ext)) => match ext.parsed_extension() {
            ParsedExtension::KeyUsage(ku) => match purpose {
                Purpose::Sign => ku.non_repudiation() || ku.digital_signature(),
                Purpose::Auth => ku.digital_signature(),
            },
            _ => false,
        },
        _ => false,
    };
    if !ku_ok {
        return Some("keyUsage missing or does not allow this purpose");
    }
    let policies: Vec<String> = match cert.get_extension_unique(&OID_X509_EXT_CERTIFICATE_POLICIES)
    {
        Ok(Some(ext)) => match ext.parsed_extension() {
            ParsedExtension::CertificatePolicies(p) => {
                p.iter().map(|pi| pi.policy_id.to_id_string()).collect()
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let in_arc =
        |p: &str, arc: &str| p == arc || p.strip_prefix(arc).is_some_and(|r| r.starts_with('.'));
    let policy_ok = policies.iter().any(|p| match purpose {
        Purpose::Sign => {
            in_arc(p, POLICY_SIGN_ARC) || (!anchor.is_pinned() && p == POLICY_SIGN_TEST_CARD)
        }
        Purpose::Auth => in_arc(p, POLICY_AUTH_ARC),
    });
    if !policy_ok {
        return Some("no JPKI certificate policy for this purpose");
    }
    None
}

fn revocation_outcome(
    ee: &EeCert<'_>,
    der: &[u8],
    anchor: &Anchor,
    at: i64,
    policy: &RevocationPolicy<'_>,
    details: &mut VerifyDetails,
) -> VerifyOutcome {
    if policy.mode == RevocationMode::Off {
        details.revocation_source = Some(RevocationSource::None);
        details.revocation_detail = Some(RevocationDetail::Off);
        return VerifyOutcome::Valid;
    }
    let mut notes: Vec<String> = Vec::new();
    // Why no source answered: the last one asked says it (OCSP is asked after the CRL).
    let mut detail = RevocationDetail::CrlMissing;
    if let Some(store) = policy.crl {
        match store.lookup(
            anchor.key_id(),
            &ee.serial_key,
            at,
            policy.now,
            policy.accept_stale_crl,
        ) {
            CrlAnswer::Revoked { reason, date } => {
                return revoked(details, RevocationSource::Crl, reason, date);
            }
            CrlAnswer::Good { .. } => {
                details.revocation_source = Some(RevocationSource::Crl);
                return VerifyOutcome::Valid;
            }
            other => {
                detail = match other {
                    CrlAnswer::Stale { .. } => RevocationDetail::CrlStale,
                    _ => RevocationDetail::CrlMissing,
                };
                notes.push(format!("crl: {other}"));
            }
        }
    }
    if let Some(ocsp) = &policy.ocsp {
        match super::ocsp::check(ocsp, der, anchor, at, policy.now) {
            Ok(OcspStatus::Good { .. }) => {
                details.revocation_source = Some(RevocationSource::Ocsp);
                return VerifyOutcome::Valid;
            }
            Ok(OcspStatus::Revoked { reason, date }) => {
                return revoked(details, RevocationSource::Ocsp, reason, date);
            }
            Ok(OcspStatus::Unknown) => {
                detail = RevocationDetail::OcspUnknown;
                notes.push("ocsp: responder does not know the certificate".into());
            }
            Err(e) => {
                detail = match e {
                    OcspError::Fetch(
                        FetchError::Unreachable(_) | FetchError::Timeout | FetchError::Url,
                    ) => RevocationDetail::OcspUnreachable,
                    _ => RevocationDetail::OcspError,
                };
                notes.push(format!("ocsp: {e}"));
            }
        }
    }
    details.revocation_source = Some(RevocationSource::None);
    details.revocation_detail = Some(detail);
    if notes.is_empty() {
        notes.push("no revocation source configured".into());
    }
    details.note = notes.join("; ");
    match policy.mode {
        RevocationMode::Prefer => VerifyOutcome::Valid,
        _ => VerifyOutcome::RevocationUnknown,
    }
}

fn revoked(
    details: &mut VerifyDetails,
    source: RevocationSource,
    reason: Option<super::RevocationReason>,
    date: i64,
) -> VerifyOutcome {
    details.revocation_source = Some(source);
    details.revocation_reason = reason;
    details.revoked_at = Some(date);
    VerifyOutcome::Revoked { reason, date }
}
