//! CRLs at national scale (design size 30 M entries, > 1 GB DER): `import` checks the signature
//! once and streams the entries into a sorted index of fixed-width records; the daemon's
//! [`CrlStore`] loads the indexes and answers lookups by binary search.
//!
//! The CRL is never materialised as a parsed object: the outer DER is walked here (der 0.7 caps
//! lengths at 256 MiB) and each entry is decoded in place.
//!
//! # Index file format (version 1), `<crl_dir>/<key id hex>.crlidx`
//! Header, 160 bytes (integers little-endian):
//! ```text
//!   0  8  magic "JPKICRL\0"
//!   8  2  version = 1
//!  10  1  W: serial width in bytes (longest serial magnitude in this CRL, 1..=32)
//!  11  1  D: date width in bytes (4: u32 unix seconds)
//!  12  1  length of the issuer key id (<= 32)
//!  13  1  length of the CRL number magnitude (<= 24)
//!  14  2  reserved, 0
//!  16 32  issuer key id (AKI of the CRL = SKI of the anchor), zero padded
//!  48 24  CRL number magnitude, big-endian, zero padded after the length
//!  72  8  thisUpdate (i64 unix seconds)
//!  80  8  nextUpdate (i64 unix seconds)
//!  88  8  count of records (u64)
//!  96 32  SHA-256 of the source CRL file
//! 128 32  SHA-256 over header bytes 0..128 followed by all records (integrity)
//! ```
//! Records, `count` × (W + 1 + D) bytes, strictly ascending by serial (each serial once): serial
//! magnitude big-endian left-padded with zeros to W; reason code (0xFF = no reasonCode);
//! revocation date (u32 LE).
//!
//! # Layout
//! - `parse`: the CRL reader (TBS fields, extensions, entries);
//! - `index`: the index file format, building the header, [`CrlIndex`] (load, integrity, find);
//! - `store`: [`CrlStore`], the daemon's view of the directory (reload on change, lookup);
//! - `import`: [`import`], [`build_index`] and [`inspect`].

use std::path::{Path, PathBuf};

use super::derwalk::DerError;
use index::MAX_SERIAL;

mod import;
mod index;
mod parse;
mod store;

pub use import::{BuiltIndex, CrlSummary, ImportReport, build_index, import, inspect};
pub use index::{CrlIndex, HEADER_LEN, INDEX_EXT, IndexHeader};
pub use store::{CrlAnswer, CrlStore};

#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CRL is not valid DER: {0}")]
    Der(#[from] DerError),
    #[error("CRL structure: {0}")]
    Structure(&'static str),
    #[error("unsupported CRL: {0}")]
    Unsupported(&'static str),
    #[error("unsupported signature algorithm {0}")]
    Algorithm(String),
    #[error("CRL issuer is not a configured trust anchor")]
    UnknownIssuer,
    #[error("CRL signature does not verify with any matching anchor")]
    BadSignature,
    #[error("a serial number is longer than {MAX_SERIAL} bytes")]
    SerialTooLong,
    #[error("a revocation date is outside 1970..2106")]
    DateOutOfRange,
    /// The CRL's issuingDistributionPoint limits its scope (to one distribution point, some
    /// reasons, user or CA certificates, or other issuers' certificates): it is one part of the
    /// issuer's list, and an index of it would report every serial outside that part as not
    /// revoked. Only complete CRLs are imported. `limits` names the IDP fields that limit it.
    #[error(
        "partitioned CRL: its issuingDistributionPoint limits the scope ({}); only complete CRLs can be imported",
        .limits.join(", ")
    )]
    PartitionedCrl { limits: Vec<&'static str> },
    /// The same serial has two entries: which one a lookup found would be chance (an entry
    /// dated after the time asked about could hide one dated before it).
    #[error("serial {serial} is listed twice: the CRL is ambiguous")]
    DuplicateSerial { serial: String },
    /// `import` refuses to write into this directory: it is a symbolic link or not a
    /// directory, another user than the importing one (and root) can write it, or a name in it
    /// that `import` would read or replace is not a regular file.
    #[error("CRL directory {path} is not safe to write into: {reason}")]
    UnsafeDirectory { path: PathBuf, reason: String },
    #[error("the existing index is newer (thisUpdate {existing} > {new})")]
    Older { existing: i64, new: i64 },
    #[error("index file {path}: {reason}")]
    BadIndex { path: PathBuf, reason: &'static str },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CrlError + '_ {
    move |source| CrlError::Io {
        path: path.to_path_buf(),
        source,
    }
}
