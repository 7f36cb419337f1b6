//! Synthetic test PKI and persona generator: JPKI-shaped roots and certificates, CRLs, the card
//! CA keys of the 券面 APs, the raw card files of the JPKI, text and visual APs, and the persona
//! directories built from them.
//!
//! Everything is deterministic: keys come from fixed labels, dates are fixed, no clock is read.
//! `gen-personas` writes [`generate`]'s output; tests compare it with the committed tree.

pub mod cardca;
pub mod cardfiles;
pub mod crl;
pub mod holder;
pub mod images;
pub mod keys;
pub mod names;
pub mod persona_toml;
pub mod personas;
pub mod pki;
pub mod tree;
pub mod visual;
pub mod x509;

use std::collections::BTreeMap;
use std::path::Path;

pub use keys::{SigAlg, TestKey};
pub use tree::generate;

/// Generated files: path relative to the output directory (`/`-separated) → contents.
pub type Files = BTreeMap<String, Vec<u8>>;

/// Why generating or writing the test PKI failed.
#[derive(Debug, thiserror::Error)]
pub enum TestPkiError {
    /// RSA key generation failed.
    #[error("generating RSA key {label:?}")]
    KeyGen {
        /// Key label.
        label: String,
        /// Cause.
        #[source]
        source: rsa::Error,
    },
    /// Encoding a public key failed.
    #[error("encoding a SubjectPublicKeyInfo")]
    Spki {
        /// Cause.
        #[source]
        source: spki::Error,
    },
    /// Encoding a private key failed.
    #[error("encoding a PKCS#8 private key")]
    Pkcs8 {
        /// Cause.
        #[source]
        source: rsa::pkcs8::Error,
    },
    /// DER encoding failed.
    #[error("DER encoding")]
    Der(#[from] der::Error),
    /// Signing failed.
    #[error("signing")]
    Sign(#[from] rsa::signature::Error),
    /// A raw PKCS#1 v1.5 signature failed.
    #[error("signing a DigestInfo")]
    RawSign(#[source] rsa::Error),
    /// A card key id is not 7 digits + 3 digits.
    #[error("bad card key id {0:?}")]
    KeyId(String),
    /// The key cannot sign with this algorithm.
    #[error("key type does not match {0:?}")]
    AlgMismatch(SigAlg),
    /// A date before the Meiji era has no era digit.
    #[error("date {0} is before the Meiji era")]
    BeforeMeiji(String),
    /// A My Number base or value is not made of the right number of digits.
    #[error("bad My Number digits {0:?}")]
    MyNumberBase(String),
    /// A value is too long for its length field.
    #[error("value of {0} bytes too long")]
    TooLong(usize),
    /// A generated structure does not have the expected layout.
    #[error("unexpected layout of {0}")]
    Layout(&'static str),
    /// Writing the output failed.
    #[error("writing {path}")]
    Io {
        /// File or directory.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Writes `files` under `out`, creating directories.
pub fn write_files(out: &Path, files: &Files) -> Result<(), TestPkiError> {
    for (rel, data) in files {
        let path = out.join(rel);
        let io = |source| TestPkiError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, data).map_err(io)?;
    }
    Ok(())
}
