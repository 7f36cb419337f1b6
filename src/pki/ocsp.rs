//! OCSP client (RFC 6960): one request per certificate with a SHA-1 CertID and a 16-byte nonce,
//! POSTed over plain HTTP/1.0 on a `TcpStream` with timeouts. The response is accepted only if
//! the nonce matches, the signer is the CA itself or a certificate issued by the CA with
//! id-kp-OCSPSigning, the signature verifies and the real time `now` lies within
//! thisUpdate..nextUpdate (freshness is the answer's, not the verification time's); the status
//! is then read for the verification time `at` (a revocation after `at` is not one at `at`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

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

/// `revocation.ocsp_url` plus transport limits.
#[derive(Debug, Clone)]
pub struct OcspConfig {
    /// `http://host[:port]/path` (no TLS: OCSP responses are signed).
    pub url: String,
    /// Connect, read and write timeout each.
    pub timeout: Duration,
    /// Clock skew tolerated around thisUpdate/nextUpdate, seconds.
    pub max_skew: i64,
}

impl OcspConfig {
    pub fn new(url: impl Into<String>) -> Self {
        OcspConfig {
            url: url.into(),
            timeout: Duration::from_secs(5),
            max_skew: 300,
        }
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
    #[error("OCSP URL must look like http://host[:port]/path")]
    Url,
    #[error("cannot reach the OCSP responder")]
    Connect(#[source] std::io::Error),
    #[error("I/O error talking to the OCSP responder")]
    Io(#[source] std::io::Error),
    #[error("HTTP answer is not 200 with a body")]
    Http,
    #[error("OCSP answer larger than the limit")]
    TooLarge,
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
    #[error("response is outside its thisUpdate/nextUpdate window at the given time")]
    NotFresh,
}

const OID_SHA1: &str = "1.3.14.3.2.26";
const OID_OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";
const MAX_RESPONSE: u64 = 1 << 20;

/// Ask the responder of `cfg` about `cert_der`, issued by `anchor`: its status at `at`, from an
/// answer that is fresh at the real time `now`.
pub fn check(
    cfg: &OcspConfig,
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
    let body = http_post(cfg, &request)?;
    verify_response(&body, &cert_id, &nonce, anchor, at, now, cfg.max_skew)
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

/// (host, port, path) of an `http://` URL.
fn parse_url(url: &str) -> Result<(String, u16, String), OcspError> {
    let rest = url.strip_prefix("http://").ok_or(OcspError::Url)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| OcspError::Url)?),
        None => (authority, 80),
    };
    if host.is_empty() || path.contains(['\r', '\n', ' ']) || host.contains(['\r', '\n', ' ']) {
        return Err(OcspError::Url);
    }
    Ok((host.to_owned(), port, path.to_owned()))
}

fn http_post(cfg: &OcspConfig, body: &[u8]) -> Result<Vec<u8>, OcspError> {
    let (host, port, path) = parse_url(&cfg.url)?;
    let addrs = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(OcspError::Connect)?;
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, cfg.timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = stream.ok_or_else(|| {
        OcspError::Connect(last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()))
    })?;
    stream
        .set_read_timeout(Some(cfg.timeout))
        .map_err(OcspError::Io)?;
    stream
        .set_write_timeout(Some(cfg.timeout))
        .map_err(OcspError::Io)?;
    let head = format!(
        "POST {path} HTTP/1.0\r\nHost: {host}:{port}\r\nContent-Type: application/ocsp-request\r\n\
         Accept: application/ocsp-response\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(OcspError::Io)?;
    stream.write_all(body).map_err(OcspError::Io)?;
    stream.flush().map_err(OcspError::Io)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_RESPONSE + 1)
        .read_to_end(&mut answer)
        .map_err(OcspError::Io)?;
    if answer.len() as u64 > MAX_RESPONSE {
        return Err(OcspError::TooLarge);
    }
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(OcspError::Http)?;
    let status_line = answer[..split]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let mut parts = status_line.split(|&b| b == b' ');
    let proto_ok = parts.next().is_some_and(|p| p.starts_with(b"HTTP/1."));
    if !proto_ok || parts.next() != Some(b"200".as_slice()) {
        return Err(OcspError::Http);
    }
    let body = answer.split_off(split + 4);
    if body.is_empty() {
        return Err(OcspError::Http);
    }
    Ok(body)
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
/// id-kp-OCSPSigning and valid at `at`.
fn find_signer(basic: &BasicOcspResponse, anchor: &Anchor, at: i64) -> Result<Vec<u8>, OcspError> {
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
        let valid = cert.validity().not_before.timestamp() <= at
            && at <= cert.validity().not_after.timestamp();
        if signed_by_ca && eku_ok && valid {
            return Ok(cert.public_key().raw.to_vec());
        }
        return Err(OcspError::SignerNotAuthorized);
    }
    Err(OcspError::SignerNotAuthorized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/ocsp").unwrap(),
            ("127.0.0.1".into(), 8080, "/ocsp".into())
        );
        assert_eq!(parse_url("http://h").unwrap(), ("h".into(), 80, "/".into()));
        assert!(parse_url("https://h/").is_err());
        assert!(parse_url("http://h:99999/").is_err());
    }
}
