//! OCSP (RFC 6960) without I/O: one request per certificate with a SHA-1 CertID and a 16-byte
//! nonce, sent by a [`Fetch`] the caller injects (the daemon's is `crate::http`, with one
//! deadline for the whole exchange); the response is accepted only if the nonce matches, the
//! signer is the CA itself or a certificate issued by the CA for OCSP signing, the signature
//! verifies, and the real time `now` lies within thisUpdate..nextUpdate (freshness is the
//! answer's, not the verification time's); the status is then read for the verification time
//! `at` (a revocation after `at` is not one at `at`).

use std::time::Instant;

use der::asn1::{Any, OctetString};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::serial_number::SerialNumber;
use x509_ocsp::builder::OcspRequestBuilder;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspResponse, OcspResponseStatus, Request, ResponderId,
    Version,
};
use x509_parser::prelude::*;

use super::RevocationReason;
use super::derwalk;
use super::roots::{Anchor, sha1_of};
use super::sig::{self, SigAlg};

/// `revocation.ocsp_url` and the clock skew tolerated.
#[derive(Debug, Clone)]
pub struct OcspConfig {
    /// `http://host[:port]/path` (no TLS: OCSP responses are signed).
    pub url: String,
    /// Clock skew tolerated around thisUpdate/nextUpdate, seconds.
    pub max_skew: i64,
}

impl OcspConfig {
    pub fn new(url: impl Into<String>) -> Self {
        OcspConfig {
            url: url.into(),
            max_skew: 300,
        }
    }
}

/// Largest OCSP answer taken (a responder's answer is a few KiB).
pub const MAX_RESPONSE: usize = 1 << 20;

/// How an OCSP request reaches its responder: injected, so that `pki` does no I/O and a caller
/// bounds the whole exchange with one deadline.
pub trait Fetch: Send + Sync {
    /// POSTs `request` (`application/ocsp-request`) to `url`; the response body, at most
    /// [`MAX_RESPONSE`] bytes, before `deadline`.
    ///
    /// # Errors
    /// The [`FetchError`] of what failed.
    fn post(&self, url: &str, request: &[u8], deadline: Instant) -> Result<Vec<u8>, FetchError>;
}

/// Why a fetch brought no answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("OCSP URL must look like http://host[:port]/path")]
    Url,
    #[error("cannot reach the OCSP responder: {0}")]
    Unreachable(String),
    #[error("the OCSP responder did not answer in time")]
    Timeout,
    #[error("the OCSP responder's HTTP answer is not 200 with a body")]
    Http,
    #[error("OCSP answer larger than the limit")]
    TooLarge,
}

/// OCSP as one verification may use it: where to ask, how, and until when.
#[derive(Clone, Copy)]
pub struct Ocsp<'a> {
    pub config: &'a OcspConfig,
    pub fetch: &'a dyn Fetch,
    /// The whole exchange ends by this instant.
    pub deadline: Instant,
}

impl std::fmt::Debug for Ocsp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ocsp")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

/// Status of one certificate according to a verified response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspStatus {
    Good {
        this_update: i64,
        next_update: Option<i64>,
    },
    Revoked {
        reason: Option<RevocationReason>,
        date: i64,
    },
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum OcspError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("certificate cannot be parsed")]
    Certificate,
    #[error("cannot encode the request")]
    Encode(#[source] der::Error),
    #[error("OCSP response is not valid DER")]
    Decode(#[source] der::Error),
    #[error("responder answered {0:?}")]
    Status(OcspResponseStatus),
    #[error("response is not a BasicOCSPResponse")]
    NotBasic,
    #[error("response carries no nonce")]
    NonceMissing,
    #[error("response nonce differs from the request (replay?)")]
    NonceMismatch,
    #[error("no authorised signer: neither the CA nor an OCSPSigning certificate issued by it")]
    SignerNotAuthorized,
    #[error("response signature does not verify")]
    BadSignature,
    #[error("response has no answer for this certificate")]
    NoMatchingResponse,
    #[error("response is outside its thisUpdate/nextUpdate window now")]
    NotFresh,
}

const OID_SHA1: &str = "1.3.14.3.2.26";
const OID_OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";

/// Asks the responder about `cert_der`, issued by `anchor`: its status at `at`, from an answer
/// that is fresh at the real time `now`.
///
/// # Errors
/// The [`OcspError`] of the step that failed ([`OcspError::Fetch`] for the exchange itself).
pub fn check(
    ocsp: &Ocsp<'_>,
    cert_der: &[u8],
    anchor: &Anchor,
    at: i64,
    now: i64,
) -> Result<OcspStatus, OcspError> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|_| OcspError::Certificate)?;
    let cert_id = cert_id_for(anchor, cert.raw_serial())?;
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let request = build_request(&cert_id, &nonce)?;
    let body = ocsp.fetch.post(&ocsp.config.url, &request, ocsp.deadline)?;
    verify_response(
        &body,
        &cert_id,
        &nonce,
        anchor,
        at,
        now,
        ocsp.config.max_skew,
    )
}

/// CertID with SHA-1 over the issuer's DN and public key bits (what responders index by).
pub(crate) fn cert_id_for(anchor: &Anchor, raw_serial: &[u8]) -> Result<CertId, OcspError> {
    let oid =
        der::asn1::ObjectIdentifier::new(OID_SHA1).map_err(|e| OcspError::Encode(e.into()))?;
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid,
            parameters: Some(Any::null()),
        },
        issuer_name_hash: OctetString::new(sha1_of(&anchor.subject_raw))
            .map_err(OcspError::Encode)?,
        issuer_key_hash: OctetString::new(sha1_of(&anchor.public_key_bits))
            .map_err(OcspError::Encode)?,
        serial_number: SerialNumber::new(raw_serial).map_err(OcspError::Encode)?,
    })
}

/// DER OCSPRequest for one CertID with a nonce extension.
pub fn build_request(cert_id: &CertId, nonce: &[u8]) -> Result<Vec<u8>, OcspError> {
    let nonce = x509_ocsp::ext::Nonce::new(nonce.to_vec()).map_err(OcspError::Encode)?;
    let req = OcspRequestBuilder::new(Version::V1)
        .with_request(Request::new(cert_id.clone()))
        .with_extension(nonce)
        .map_err(|_| OcspError::Encode(der::ErrorKind::Failed.into()))?
        .build();
    req.to_der().map_err(OcspError::Encode)
}

fn gt_unix(t: &x509_ocsp::OcspGeneralizedTime) -> i64 {
    i64::try_from(t.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// Verify a DER OCSPResponse for `cert_id` and `nonce` at the real time `now`, and map the
/// certificate's status at `at`.
#[allow(clippy::too_many_arguments)]
pub fn verify_response(
    der: &[u8],
    cert_id: &CertId,
    nonce: &[u8],
    anchor: &Anchor,
    at: i64,
    now: i64,
    max_skew: i64,
) -> Result<OcspStatus, OcspError> {
    let resp = OcspResponse::from_der(der).map_err(OcspError::Decode)?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(OcspError::Status(resp.response_status));
    }
    let bytes = resp.response_bytes.ok_or(OcspError::NotBasic)?;
    if bytes.response_type.to_string() != OID_OCSP_BASIC {
        return Err(OcspError::NotBasic);
    }
    let basic_der = bytes.response.as_bytes();
    let basic = BasicOcspResponse::from_der(basic_der).map_err(OcspError::Decode)?;

    match basic.nonce() {
        None => return Err(OcspError::NonceMissing),
        Some(n) if n.0.as_bytes() != nonce => return Err(OcspError::NonceMismatch),
        Some(_) => {}
    }

    // The signed bytes as received (not re-encoded).
    let tbs_raw = derwalk::expect(basic_der, derwalk::TAG_SEQUENCE)
        .and_then(|(outer, _)| derwalk::expect(outer.content, derwalk::TAG_SEQUENCE))
        .map(|(tbs, _)| tbs.raw)
        .map_err(|_| OcspError::NotBasic)?;
    let alg = SigAlg::from_oid(&basic.signature_algorithm.oid.to_string())
        .ok_or(OcspError::BadSignature)?;
    let signature = basic.signature.as_bytes().ok_or(OcspError::BadSignature)?;
    let signer_spki = find_signer(&basic, anchor, now)?;
    sig::verify(&signer_spki, alg, tbs_raw, signature).map_err(|_| OcspError::BadSignature)?;

    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| {
            r.cert_id.issuer_name_hash == cert_id.issuer_name_hash
                && r.cert_id.issuer_key_hash == cert_id.issuer_key_hash
                && r.cert_id.serial_number == cert_id.serial_number
        })
        .ok_or(OcspError::NoMatchingResponse)?;
    let this_update = gt_unix(&single.this_update);
    let next_update = single.next_update.as_ref().map(gt_unix);
    let fresh = this_update <= now.saturating_add(max_skew)
        && match next_update {
            Some(n) => now <= n.saturating_add(max_skew),
            None => now <= this_update.saturating_add(max_skew),
        };
    if !fresh {
        return Err(OcspError::NotFresh);
    }
    Ok(match &single.cert_status {
        CertStatus::Good(_) => OcspStatus::Good {
            this_update,
            next_update,
        },
        // Revoked after `at`: it was good then.
        CertStatus::Revoked(info) if gt_unix(&info.revocation_time) > at => OcspStatus::Good {
            this_update,
            next_update,
        },
        CertStatus::Revoked(info) => OcspStatus::Revoked {
            reason: info
                .revocation_reason
                .and_then(|r| RevocationReason::from_code(r as u8)),
            date: gt_unix(&info.revocation_time),
        },
        CertStatus::Unknown(_) => OcspStatus::Unknown,
    })
}

/// SPKI of the key allowed to sign this response: the responder named by ResponderId, which
/// must be the CA itself or a certificate in `certs` issued (and signed) by the CA, carrying
/// id-kp-OCSPSigning (and a keyUsage that allows signing, if it has one), valid at the real time
/// `now` at which the answer is taken.
fn find_signer(basic: &BasicOcspResponse, anchor: &Anchor, now: i64) -> Result<Vec<u8>, OcspError> {
    let responder_matches =
        |subject_raw: &[u8], key_bits: &[u8]| match &basic.tbs_response_data.responder_id {
            ResponderId::ByName(name) => name.to_der().is_ok_and(|d| d == subject_raw),
            ResponderId::ByKey(hash) => hash.as_bytes() == sha1_of(key_bits).as_slice(),
        };
    if responder_matches(&anchor.subject_raw, &anchor.public_key_bits) {
        return Ok(anchor.spki().to_vec());
    }
    for c in basic.certs.iter().flatten() {
        let Ok(der) = c.to_der() else { continue };
        let Ok((_, cert)) = X509Certificate::from_der(&der) else {
            continue;
        };
        if !responder_matches(
            cert.subject().as_raw(),
            &cert.public_key().subject_public_key.data,
        ) {
            continue;
        }
        if cert.issuer().as_raw() != anchor.subject_raw.as_slice() {
            return Err(OcspError::SignerNotAuthorized);
        }
        let Some(alg) = SigAlg::from_oid(&cert.signature_algorithm.algorithm.to_id_string()) else {
            return Err(OcspError::SignerNotAuthorized);
        };
        let signed_by_ca = sig::verify(
            anchor.spki(),
            alg,
            cert.tbs_certificate.as_ref(),
            &cert.signature_value.data,
        )
        .is_ok();
        let eku_ok = matches!(cert.extended_key_usage(), Ok(Some(e)) if e.value.ocsp_signing);
        // A keyUsage, when present, must allow signing (RFC 6960 §4.2.2.2, RFC 5280 §4.2.1.3).
        let ku_ok = match cert.key_usage() {
            Ok(Some(ku)) => ku.value.digital_signature() || ku.value.non_repudiation(),
            Ok(None) => true,
            Err(_) => false,
        };
        let valid = cert.validity().not_before.timestamp() <= now
            && now <= cert.validity().not_after.timestamp();
        if signed_by_ca && eku_ok && ku_ok && valid {
            return Ok(cert.public_key().raw.to_vec());
        }
        return Err(OcspError::SignerNotAuthorized);
    }
    Err(OcspError::SignerNotAuthorized)
}
