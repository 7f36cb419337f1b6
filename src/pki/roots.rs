//! Trust anchors. Production roots are read from files but accepted only when their SHA-256
//! equals a fingerprint pinned here, so a file swapped on disk cannot add a root. Test roots
//! (any certificate in `trust.roots_dir`) are accepted only with `trust.hierarchy = "test"`.
//! The purpose of a root (sign/auth) comes from its DN, never from the file name.

use std::fmt;
use std::path::{Path, PathBuf};

use rsa::sha2::{Digest, Sha256};
use x509_parser::prelude::*;

use super::sig::{self, SigAlg};
use super::{Purpose, upper_hex};

/// `trust.hierarchy` (DESIGN §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hierarchy {
    /// Only the pinned J-LIS roots.
    #[default]
    Production,
    /// Every certificate in the roots directory, unpinned (integration labs, personas).
    Test,
}

impl std::str::FromStr for Hierarchy {
    type Err = super::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "production" => Ok(Self::Production),
            "test" => Ok(Self::Test),
            other => Err(super::UnknownName(other.to_owned())),
        }
    }
}

/// A pinned production root: purpose, label and SHA-256 of the DER certificate.
#[derive(Debug, Clone, Copy)]
pub struct PinnedRoot {
    pub purpose: Purpose,
    pub label: &'static str,
    pub sha256: [u8; 32],
}

/// The six published J-LIS roots, two purposes × three generations (`roots/README.md`, which
/// names their source; the repository carries the certificates in `roots/jlis/`).
pub const PINNED_ROOTS: &[PinnedRoot] = &[
    PinnedRoot {
        purpose: Purpose::Sign,
        label: "J-LIS sign CA 2015 (01)",
        sha256: [
            0x19, 0x64, 0x54, 0x05, 0xA1, 0xFE, 0x14, 0x37, 0x74, 0x34, 0xBD, 0x55, 0x95, 0x76,
            0x28, 0xAC, 0x40, 0x38, 0x55, 0x7C, 0x54, 0x24, 0x03, 0xA2, 0x24, 0x3F, 0x21, 0xC7,
            0x06, 0xFC, 0x93, 0x55,
        ],
    },
    PinnedRoot {
        purpose: Purpose::Sign,
        label: "J-LIS sign CA 2019 (0132C4AB)",
        sha256: [
            0x79, 0x67, 0x9C, 0x33, 0xE4, 0xCC, 0x93, 0x19, 0x44, 0x0F, 0x1A, 0xD1, 0x20, 0xA5,
            0x97, 0xFF, 0x18, 0x44, 0xE2, 0xEF, 0x21, 0x70, 0x63, 0xAD, 0xB1, 0x76, 0x96, 0x6F,
            0xD5, 0xE6, 0xFB, 0xEB,
        ],
    },
    PinnedRoot {
        purpose: Purpose::Sign,
        label: "J-LIS sign CA 2023 (067C6A21)",
        sha256: [
            0xD2, 0x27, 0xF6, 0xCD, 0xE1, 0x1D, 0x35, 0xC5, 0x25, 0x21, 0x78, 0xF1, 0x06, 0xF8,
            0x43, 0xD2, 0x46, 0x51, 0x94, 0x49, 0x75, 0x41, 0x3B, 0x53, 0x9F, 0xA2, 0xFB, 0x68,
            0xDB, 0xFA, 0x36, 0x5F,
        ],
    },
    PinnedRoot {
        purpose: Purpose::Auth,
        label: "J-LIS auth CA 2015 (01)",
        sha256: [
            0x4D, 0xCF, 0xC4, 0xCA, 0x0A, 0xAF, 0x9F, 0xB2, 0xA3, 0x08, 0x1B, 0x3F, 0x0C, 0x99,
            0x1C, 0x32, 0x0B, 0x3A, 0xCC, 0x00, 0x86, 0x67, 0xA3, 0x41, 0xEE, 0xAE, 0xC5, 0xAF,
            0x1D, 0x58, 0xCA, 0x7D,
        ],
    },
    PinnedRoot {
        purpose: Purpose::Auth,
        label: "J-LIS auth CA 2019 (0133C349)",
        sha256: [
            0x0D, 0x98, 0xDE, 0x47, 0xFC, 0x11, 0xB7, 0xF6, 0x71, 0x26, 0x87, 0x4B, 0x70, 0x28,
            0xB6, 0x02, 0x6A, 0x80, 0x3D, 0x26, 0x38, 0xD6, 0xED, 0xFE, 0x53, 0x17, 0x69, 0x53,
            0x96, 0x1F, 0xAD, 0xE6,
        ],
    },
    PinnedRoot {
        purpose: Purpose::Auth,
        label: "J-LIS auth CA 2023 (06D18006)",
        sha256: [
            0x64, 0x11, 0x4F, 0x29, 0x62, 0x0C, 0x24, 0xED, 0x26, 0x31, 0xD4, 0x64, 0x76, 0xA0,
            0x40, 0xE7, 0xEE, 0x74, 0x0D, 0x95, 0x60, 0x89, 0xC0, 0x0B, 0x03, 0x6A, 0x6A, 0x81,
            0x18, 0xC3, 0x22, 0xB5,
        ],
    },
];

const OU_SIGN: &str = "JPKI for digital signature";
const OU_AUTH: &str = "JPKI for user authentication";

#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error("cannot read roots directory {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no usable trust anchor in {path} ({rejected} file(s) rejected)")]
    NoAnchors { path: PathBuf, rejected: usize },
}

/// Why one candidate root was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    #[error("not a PEM or DER certificate")]
    NotCertificate,
    #[error("SHA-256 {0} is not a pinned production root")]
    NotPinned(String),
    #[error("subject has neither OU \"{OU_SIGN}\" nor \"{OU_AUTH}\"")]
    NoPurpose,
    #[error("pinned purpose and subject OU disagree")]
    PurposeMismatch,
    #[error("not a CA certificate (BasicConstraints cA / KeyUsage keyCertSign)")]
    NotCa,
    #[error("self-signature does not verify or uses an unsupported algorithm")]
    SelfSignature,
}

/// A root accepted as trust anchor.
#[derive(Clone)]
pub struct Anchor {
    pub(crate) der: Vec<u8>,
    pub(crate) sha256: [u8; 32],
    pub(crate) purpose: Purpose,
    pub(crate) pinned: bool,
    pub(crate) subject_raw: Vec<u8>,
    pub(crate) subject: String,
    /// SubjectKeyIdentifier, or SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 (1)).
    pub(crate) key_id: Vec<u8>,
    pub(crate) spki: Vec<u8>,
    /// The subjectPublicKey BIT STRING contents (for OCSP CertID issuerKeyHash).
    pub(crate) public_key_bits: Vec<u8>,
}

impl fmt::Debug for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anchor")
            .field("sha256", &self.sha256_hex())
            .field("purpose", &self.purpose)
            .field("pinned", &self.pinned)
            .field("subject", &self.subject)
            .field("key_id", &hex::encode_upper(&self.key_id))
            .finish()
    }
}

impl Anchor {
    /// Check one DER certificate and make it an anchor. `pinned` selects the production rule.
    /// `hint` gives the purpose of a test root whose DN carries no JPKI OU (e.g. a lab's ECDSA
    /// root); an OU in the DN always wins, and a hint that contradicts it is refused.
    pub fn from_der(
        der: &[u8],
        pinned: bool,
        hint: Option<Purpose>,
    ) -> Result<Anchor, AnchorError> {
        let sha256: [u8; 32] = Sha256::digest(der).into();
        let pin = PINNED_ROOTS.iter().find(|p| p.sha256 == sha256);
        if pinned && pin.is_none() {
            return Err(AnchorError::NotPinned(upper_hex(&sha256)));
        }
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|_| AnchorError::NotCertificate)?;
        if !rest.is_empty() {
            return Err(AnchorError::NotCertificate);
        }
        let purpose = match (purpose_from_name(cert.subject()), hint) {
            (Some(p), Some(h)) if p != h => return Err(AnchorError::PurposeMismatch),
            (Some(p), _) => p,
            (None, Some(h)) if !pinned => h,
            (None, _) => return Err(AnchorError::NoPurpose),
        };
        if pin.is_some_and(|p| p.purpose != purpose) {
            return Err(AnchorError::PurposeMismatch);
        }
        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        let can_sign = match cert.key_usage() {
            Ok(Some(ku)) => ku.value.key_cert_sign(),
            Ok(None) => true,
            Err(_) => false,
        };
        if !is_ca || !can_sign {
            return Err(AnchorError::NotCa);
        }
        let spki = cert.public_key().raw.to_vec();
        let alg = SigAlg::from_oid(&cert.signature_algorithm.algorithm.to_id_string())
            .ok_or(AnchorError::SelfSignature)?;
        sig::verify(
            &spki,
            alg,
            cert.tbs_certificate.as_ref(),
            &cert.signature_value.data,
        )
        .map_err(|_| AnchorError::SelfSignature)?;
        let public_key_bits = cert.public_key().subject_public_key.data.to_vec();
        let key_id = match cert
            .get_extension_unique(&x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
        {
            Ok(Some(ext)) => match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(ki) => ki.0.to_vec(),
                _ => return Err(AnchorError::NotCertificate),
            },
            Ok(None) => sha1_of(&public_key_bits),
            Err(_) => return Err(AnchorError::NotCertificate),
        };
        Ok(Anchor {
            der: der.to_vec(),
            sha256,
            purpose,
            pinned: pin.is_some(),
            subject_raw: cert.subject().as_raw().to_vec(),
            subject: cert.subject().to_string(),
            key_id,
            spki,
            public_key_bits,
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }
    /// True when the certificate is one of [`PINNED_ROOTS`].
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }
    /// SHA-256 of the certificate, upper-case hex (the `root` result key).
    pub fn sha256_hex(&self) -> String {
        upper_hex(&self.sha256)
    }
    /// The key identifier that names this root's CRL index.
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }
    pub fn subject(&self) -> &str {
        &self.subject
    }
    pub(crate) fn spki(&self) -> &[u8] {
        &self.spki
    }
}

pub(crate) fn sha1_of(data: &[u8]) -> Vec<u8> {
    use sha1::Digest as _;
    sha1::Sha1::digest(data).to_vec()
}

/// Sign or auth, from the OU attributes of a JPKI root's DN (`O=JPKI` or a test O).
fn purpose_from_name(name: &X509Name<'_>) -> Option<Purpose> {
    let mut found = None;
    for ou in name.iter_organizational_unit() {
        let p = match ou.as_str() {
            Ok(OU_SIGN) => Purpose::Sign,
            Ok(OU_AUTH) => Purpose::Auth,
            _ => continue,
        };
        if found.is_some_and(|f| f != p) {
            return None; // both OUs: refuse to guess
        }
        found = Some(p);
    }
    found
}

/// A candidate file that was not accepted, for start-up logging.
#[derive(Debug, Clone)]
pub struct RejectedRoot {
    pub path: PathBuf,
    pub reason: AnchorError,
}

/// The set of anchors the daemon trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    hierarchy: Hierarchy,
    anchors: Vec<Anchor>,
    rejected: Vec<RejectedRoot>,
}

impl TrustAnchors {
    /// Load every regular file in `dir` (PEM or DER, one certificate per file). Production:
    /// only pinned roots are kept; test: every CA certificate with a JPKI OU is kept, and with
    /// the test hierarchy the subdirectories `sign/` and `auth/` hold test roots whose DN has no
    /// JPKI OU (their purpose is the directory's). Files that fail are listed in
    /// [`TrustAnchors::rejected`]; no anchor at all is an error.
    pub fn load(hierarchy: Hierarchy, dir: &Path) -> Result<TrustAnchors, RootsError> {
        let mut paths = list_files(dir, None)?;
        if hierarchy == Hierarchy::Test {
            for (sub, p) in [("sign", Purpose::Sign), ("auth", Purpose::Auth)] {
                let d = dir.join(sub);
                if d.is_dir() {
                    paths.extend(list_files(&d, Some(p))?);
                }
            }
        }
        let mut set = TrustAnchors {
            hierarchy,
            ..Default::default()
        };
        for (path, hint) in paths {
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(_) => {
                    set.rejected.push(RejectedRoot {
                        path,
                        reason: AnchorError::NotCertificate,
                    });
                    continue;
                }
            };
            match set.add_bytes_for(&bytes, hint) {
                Ok(()) => {}
                Err(reason) => set.rejected.push(RejectedRoot { path, reason }),
            }
        }
        if set.anchors.is_empty() {
            return Err(RootsError::NoAnchors {
                path: dir.to_path_buf(),
                rejected: set.rejected.len(),
            });
        }
        Ok(set)
    }

    /// An empty set for `hierarchy`; fill with [`TrustAnchors::add_bytes`].
    pub fn new(hierarchy: Hierarchy) -> TrustAnchors {
        TrustAnchors {
            hierarchy,
            ..Default::default()
        }
    }

    /// Add one PEM or DER certificate under this set's rule.
    pub fn add_bytes(&mut self, bytes: &[u8]) -> Result<(), AnchorError> {
        self.add_bytes_for(bytes, None)
    }

    /// Add one certificate with a purpose hint (test hierarchy only; see [`Anchor::from_der`]).
    pub fn add_bytes_for(
        &mut self,
        bytes: &[u8],
        hint: Option<Purpose>,
    ) -> Result<(), AnchorError> {
        let der = pem_or_der(bytes).ok_or(AnchorError::NotCertificate)?;
        let anchor = Anchor::from_der(&der, self.hierarchy == Hierarchy::Production, hint)?;
        if !self.anchors.iter().any(|a| a.sha256 == anchor.sha256) {
            self.anchors.push(anchor);
        }
        Ok(())
    }

    pub fn hierarchy(&self) -> Hierarchy {
        self.hierarchy
    }
    pub fn anchors(&self) -> &[Anchor] {
        &self.anchors
    }
    pub fn rejected(&self) -> &[RejectedRoot] {
        &self.rejected
    }

    /// Anchors whose subject equals `issuer_raw`; those whose key id equals `aki` come first.
    /// With an AKI, anchors with another key id are left out (a different generation's key).
    pub(crate) fn candidates<'s>(
        &'s self,
        issuer_raw: &[u8],
        aki: Option<&[u8]>,
    ) -> Vec<&'s Anchor> {
        self.anchors
            .iter()
            .filter(|a| a.subject_raw == issuer_raw)
            .filter(|a| aki.is_none_or(|k| a.key_id == k))
            .collect()
    }

    /// Anchors with this subject, any key id (to tell "untrusted" from "bad signature").
    pub(crate) fn has_subject(&self, issuer_raw: &[u8]) -> bool {
        self.anchors.iter().any(|a| a.subject_raw == issuer_raw)
    }

    /// Find the anchor with this key identifier.
    pub fn by_key_id(&self, key_id: &[u8]) -> Option<&Anchor> {
        self.anchors.iter().find(|a| a.key_id == key_id)
    }
}

/// Regular files of `dir`, sorted, each with a purpose hint.
fn list_files(
    dir: &Path,
    hint: Option<Purpose>,
) -> Result<Vec<(PathBuf, Option<Purpose>)>, RootsError> {
    let io = |source| RootsError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_type().map_err(io)?.is_file() {
            paths.push((entry.path(), hint));
        }
    }
    paths.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(paths)
}

/// DER as is, or the first `CERTIFICATE` block of a PEM file.
pub(crate) fn pem_or_der(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.first() == Some(&0x30) {
        return Some(bytes.to_vec());
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(bytes).ok()?;
    (pem.label == "CERTIFICATE").then_some(pem.contents)
}
