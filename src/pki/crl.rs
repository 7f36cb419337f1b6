//! CRLs at national scale (design size 30 M entries, > 1 GB DER): `import` checks the signature
//! once and streams the entries into a sorted index of fixed-width records; the daemon's
//! [`CrlStore`] loads the indexes and answers lookups by binary search.
//!
//! The CRL is never materialised, nor even held: `import` reads the file once, in 1 MiB pieces,
//! through a reader that walks the DER by hand (der 0.7 caps lengths at 256 MiB), decodes each
//! entry as it completes, and hashes the file and the tbsCertList as it goes; the signature is
//! checked over that digest at the end, and only then is the index completed and renamed into
//! place. Memory is bounded whatever the CRL's size: the read buffer, at most one element
//! carried across two pieces (≤ 1 MiB), and at most 8 MiB of records (and as much scratch to
//! sort them).
//!
//! Entries need not be in serial order. They are sorted *in memory by record*, 8 MiB at a time
//! (radix for serials of up to 8 bytes), each sorted run written to a temporary file of the CRL
//! directory; when the runs follow each other (a CRL sorted by serial, the usual case) that
//! file already is the index, otherwise the runs are merged into a second one. A serial listed
//! twice is refused either way.
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
//! - `parse`: the streaming CRL reader (TBS fields, extensions, entries, digests), [`inspect`];
//! - `index`: the index file format, building it from a stream of entries in bounded memory,
//!   [`CrlIndex`] (load, integrity, find);
//! - `store`: [`CrlStore`], the daemon's view of the directory (reload on change, lookup), and
//!   the directory handle `import` writes through;
//! - `import`: [`import`], [`build_index`] and [`inspect_reader`].

use std::path::{Path, PathBuf};

use super::derwalk::DerError;
use index::MAX_SERIAL;

mod import;
mod index;
mod parse;
mod store;

pub use import::{BuiltIndex, ImportReport, build_index, import, inspect_reader};
pub use index::{CrlIndex, HEADER_LEN, INDEX_EXT, IndexHeader};
pub use parse::{CrlSummary, inspect};
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
    /// The file ends before the CertificateList its first bytes announce (an interrupted
    /// download, a file cut by a full disk). `declared` is the length the outer DER header
    /// gives, `read` what the file holds.
    #[error(
        "CRL file is truncated: its DER header announces {declared} bytes, the file has {read}"
    )]
    Truncated { declared: u64, read: u64 },
    #[error("a serial number is longer than {MAX_SERIAL} bytes")]
    SerialTooLong,
    /// An entry's serial number is negative (its INTEGER's first bit is set). RFC 5280
    /// serials are positive, and the index keys serials by magnitude, where this entry would
    /// stand for the positive serial with the same bytes; skipping it would leave a revoked
    /// certificate reported as not listed. The whole CRL is refused (the index in place stays).
    /// `entry` counts from 1 in the CRL's order; `serial` is the INTEGER's content in hex.
    #[error(
        "CRL entry {entry}: the serial number is negative (INTEGER {serial}); serials must be positive"
    )]
    NegativeSerial { entry: u64, serial: String },
    /// An entry's serial number is an INTEGER without content (not DER). Refused like
    /// [`CrlError::NegativeSerial`].
    #[error("CRL entry {entry}: the serial number is an empty INTEGER")]
    EmptySerial { entry: u64 },
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
    #[error(
        "the existing index is from a later CRL (cRLNumber {existing} > {new}, same thisUpdate or later): a replayed list"
    )]
    LowerNumber { existing: String, new: String },
    #[error("index file {path}: {reason}")]
    BadIndex { path: PathBuf, reason: &'static str },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CrlError + '_ {
    move |source| CrlError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The CRL writer of the integration tests (hand-assembled TBS, RSA test keys).
#[cfg(test)]
#[path = "../../tests/pki_support/crlgen.rs"]
mod crlgen;

/// Fixtures for the unit tests of the submodules.
#[cfg(test)]
mod testing {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::crlgen::{self, CrlEntry, CrlSpec};
    use crate::pki::{Hierarchy, TrustAnchors};

    pub(super) fn fixture(rel: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/hw-fixtures/testpki/").to_owned() + rel;
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The committed test roots: sign and auth, generations 1 and 2, and the EC roots.
    pub(super) fn anchors() -> TrustAnchors {
        let mut a = TrustAnchors::new(Hierarchy::Test);
        for f in [
            "sign_root_g1.der",
            "sign_root_g2.der",
            "auth_root_g1.der",
            "auth_root_g2.der",
            "ec/p256_root.der",
            "ec/p384_root.der",
        ] {
            // The EC roots' subjects name no purpose.
            let hint = f.starts_with("ec/").then_some(crate::pki::Purpose::Sign);
            a.add_bytes_for(&fixture(f), hint).unwrap();
        }
        a
    }

    /// xorshift64*: deterministic test data without a dependency.
    pub(super) struct Rng(pub(super) u64);
    impl Rng {
        pub(super) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    pub(super) fn entry(serial: &[u8], date: i64, reason: Option<u8>) -> CrlEntry {
        CrlEntry {
            serial: serial.to_vec(),
            date,
            reason,
        }
    }

    /// A CRL by sign root g2 over already encoded entries.
    pub(super) fn crl_g2_encoded(entries_der: &[u8]) -> Vec<u8> {
        let root = fixture("sign_root_g2.der");
        let key = fixture("keys/sign_root_g2.pk8.der");
        let spec = CrlSpec {
            issuer_cert_der: &root,
            key_pk8_der: &key,
            this_update: 1_790_000_000,
            next_update: Some(1_790_086_400),
            crl_number: 9,
            aki: true,
        };
        crlgen::build_crl_from_encoded(&spec, entries_der)
    }

    pub(super) fn crl_g2(entries: &[CrlEntry]) -> Vec<u8> {
        let mut enc = Vec::new();
        for e in entries {
            crlgen::encode_entry(&mut enc, e);
        }
        crl_g2_encoded(&enc)
    }

    /// `n` entries with distinct serials of 1..=`max_width` bytes, in random order unless
    /// `sorted`; reasons of every kind and none.
    pub(super) fn entries(n: usize, max_width: usize, sorted: bool, seed: u64) -> Vec<CrlEntry> {
        let mut rng = Rng(seed);
        let mut serials = std::collections::BTreeSet::new();
        while serials.len() < n {
            let w = 1 + (rng.next() as usize) % max_width;
            let mut s: Vec<u8> = (0..w).map(|_| rng.next() as u8).collect();
            // Magnitudes without leading zeros (0x00 alone is serial zero).
            while s.len() > 1 && s[0] == 0 {
                s.remove(0);
            }
            serials.insert((s.len(), s));
        }
        let mut out: Vec<CrlEntry> = serials
            .into_iter()
            .map(|(_, s)| {
                let reason = match rng.next() % 10 {
                    0 => None,
                    r => Some([0u8, 1, 2, 3, 4, 5, 6, 8, 9, 10][r as usize]),
                };
                entry(&s, 1_700_000_000 + (rng.next() % 90_000_000) as i64, reason)
            })
            .collect();
        if !sorted {
            for i in (1..out.len()).rev() {
                out.swap(i, (rng.next() as usize) % (i + 1));
            }
        }
        out
    }
}
