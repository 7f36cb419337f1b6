//! Certificate verification for JPKI: trust anchors, chain checks, revocation (CRL index and
//! OCSP), the basic four attributes of the signing certificate, and CMS SignedData.
//!
//! This module knows nothing of cards, readers or D-Bus (DESIGN §2). It never reads the clock:
//! every time-dependent function takes `at` (unix seconds) from its caller.
//!
//! # Outcome precedence
//! [`verify`] reports exactly one [`VerifyOutcome`]. When several problems apply, the first in
//! this order wins (each later check only runs when the earlier ones passed):
//!
//! 1. `malformed` — the bytes are not a certificate we can process (bad DER, unknown critical
//!    extension, unsupported algorithm, trailing garbage);
//! 2. `untrusted` — no anchor with the issuer's name (and key identifier, when the certificate
//!    has an AKI) is configured; `bad-signature` — such an anchor exists but no candidate key
//!    verifies the signature;
//! 3. `wrong-purpose` — purpose of the anchor, KeyUsage, BasicConstraints or certificate policy
//!    do not fit the requested [`Purpose`];
//! 4. `not-yet-valid` / `expired` — from the certificate alone, so an expired certificate that is
//!    also on a CRL is `expired`, never `revoked` (expiry is not a revocation reason);
//! 5. `revoked` (CRL first, then OCSP);
//! 6. `revocation-unknown` — no fresh answer from any source and the mode is `require`;
//! 7. `valid`.
//!
//! Deliberate choices:
//! - The anchor's own validity period is not checked: RFC 5280 treats a trust anchor as a name
//!   and key, and certificates issued under the 2015 J-LIS generation must stay checkable after
//!   that root's expiry. The end entity's period is checked at `at`.
//! - A CRL or OCSP entry counts as revoked whatever its revocation date relative to `at`.
//! - J-LIS test-card policy `…8.5.1.0.20` is accepted only under unpinned (test) anchors.
//! - Revocation sources: the CRL index first (local); OCSP only when the CRL gave no fresh
//!   answer (no index, stale, unusable). `prefer` reports `valid` with source `none` when neither
//!   answered; `require` reports `revocation-unknown`.

pub mod attributes;
pub mod chain;
pub mod cms;
pub mod crl;
pub mod cvc;
mod derwalk;
pub mod face;
pub mod ocsp;
pub mod roots;
mod sig;

use std::fmt;

use zeroize::Zeroizing;

pub use chain::verify;
pub use crl::CrlStore;
pub use ocsp::OcspConfig;
pub use roots::{Anchor, Hierarchy, TrustAnchors};

pub use crate::api::{CertStatus, Purpose, RevocationDetail, RevocationSource};

/// A configuration string that names no known value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownName(pub String);

/// RFC 5280 §5.3.1 CRLReason. Code 7 is unused in the RFC; `removeFromCRL` (8) never occurs in
/// JPKI because holds are never lifted, but is kept so that any listed code maps to a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    RemoveFromCrl,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl RevocationReason {
    /// From the ENUMERATED value of a reasonCode extension.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            2 => Self::CaCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            6 => Self::CertificateHold,
            8 => Self::RemoveFromCrl,
            9 => Self::PrivilegeWithdrawn,
            10 => Self::AaCompromise,
            _ => return None,
        })
    }

    /// The ENUMERATED value.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::RemoveFromCrl => 8,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The RFC 5280 ASN.1 name, as reported on D-Bus (`affiliationChanged`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one result of [`verify`]. See the module documentation for the precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    Valid,
    Expired,
    NotYetValid,
    /// Listed by a CRL or reported by OCSP. `reason` is `None` when the source gave none.
    Revoked {
        reason: Option<RevocationReason>,
        /// Revocation time, unix seconds.
        date: i64,
    },
    Untrusted,
    BadSignature,
    WrongPurpose,
    Malformed,
    RevocationUnknown,
}

impl VerifyOutcome {
    /// The outcome's name in the contract (`status` of `VerifyCertificate`).
    pub fn status(&self) -> CertStatus {
        match self {
            Self::Valid => CertStatus::Valid,
            Self::Expired => CertStatus::Expired,
            Self::NotYetValid => CertStatus::NotYetValid,
            Self::Revoked { .. } => CertStatus::Revoked,
            Self::Untrusted => CertStatus::Untrusted,
            Self::BadSignature => CertStatus::BadSignature,
            Self::WrongPurpose => CertStatus::WrongPurpose,
            Self::Malformed => CertStatus::Malformed,
            Self::RevocationUnknown => CertStatus::RevocationUnknown,
        }
    }

    /// Stable name used in the D-Bus `status` key.
    pub fn as_str(&self) -> &'static str {
        self.status().as_str()
    }
}

impl fmt::Display for VerifyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything §6.1 `VerifyCertificate` reports besides `status`. Fields that could not be read
/// (e.g. for `malformed`) stay empty / `None`. The subject may name a place of residence, so it is
/// zeroized on drop and left out of `Debug`.
#[derive(Clone, Default)]
pub struct VerifyDetails {
    /// Serial number, upper-case hex without separators (`発行番号`).
    pub serial: String,
    pub subject: Zeroizing<String>,
    pub issuer: String,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    /// SHA-256 of the anchor certificate, upper-case hex; empty when no anchor was found.
    pub root: String,
    pub revocation_source: Option<RevocationSource>,
    pub revocation_reason: Option<RevocationReason>,
    pub revoked_at: Option<i64>,
    /// With `revocation_source` [`RevocationSource::None`]: why no source answered.
    pub revocation_detail: Option<RevocationDetail>,
    /// Human-readable cause for a non-`valid` outcome (never contains personal data).
    pub note: String,
}

impl fmt::Debug for VerifyDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyDetails")
            .field("serial", &self.serial)
            .field("subject", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("root", &self.root)
            .field("revocation_source", &self.revocation_source)
            .field("revocation_reason", &self.revocation_reason)
            .field("revoked_at", &self.revoked_at)
            .field("revocation_detail", &self.revocation_detail)
            .field("note", &self.note)
            .finish()
    }
}

/// Outcome plus details: what [`verify`] returns.
#[derive(Debug, Clone)]
pub struct Verification {
    pub outcome: VerifyOutcome,
    pub details: VerifyDetails,
}

/// `revocation.mode` (DESIGN §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RevocationMode {
    /// No fresh answer from any source ⇒ `revocation-unknown`.
    #[default]
    Require,
    /// Use what is available; no answer ⇒ `valid` with `revocation-source = none`.
    Prefer,
    /// Do not check revocation.
    Off,
}

impl std::str::FromStr for RevocationMode {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "require" => Ok(Self::Require),
            "prefer" => Ok(Self::Prefer),
            "off" => Ok(Self::Off),
            other => Err(UnknownName(other.to_owned())),
        }
    }
}

/// Which revocation sources [`verify`] may use. The CRL index is consulted first (local, cheap);
/// OCSP only when the CRL gave no fresh answer.
///
/// Freshness is a question about the sources, asked at the real time `now`: a CRL past its
/// nextUpdate is stale whatever time the certificate is verified at. The verification time
/// (`verify`'s `at`) moves only the validity period and "revoked by then?".
#[derive(Debug, Clone, Copy)]
pub struct RevocationPolicy<'a> {
    pub mode: RevocationMode,
    pub crl: Option<&'a CrlStore>,
    /// The OCSP responder, how to reach it and until when.
    pub ocsp: Option<ocsp::Ocsp<'a>>,
    /// Accept a CRL index whose nextUpdate has passed (normally stale ⇒ no answer).
    pub accept_stale_crl: bool,
    /// The real time, unix seconds, at which the sources' freshness is judged.
    pub now: i64,
}

impl<'a> RevocationPolicy<'a> {
    /// `mode` with no source yet, freshness judged at `now`.
    pub fn new(mode: RevocationMode, now: i64) -> RevocationPolicy<'a> {
        RevocationPolicy {
            mode,
            crl: None,
            ocsp: None,
            accept_stale_crl: false,
            now,
        }
    }

    /// Revocation checking switched off.
    pub fn off() -> Self {
        RevocationPolicy::new(RevocationMode::Off, 0)
    }
}

/// The serial number of a certificate (DER) in the form every result reports it: upper-case hex
/// of its octets without leading zero octets (the 発行番号).
pub fn certificate_serial(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    let raw = cert.raw_serial();
    let first = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    Some(hex::encode_upper(&raw[first..]))
}

/// Upper-case hex, the form used for serials and fingerprints.
pub(crate) fn upper_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}
