//! `import`: a CRL file in, its signature checked against the trust anchors, an index file out,
//! replaced atomically; and the same work on bytes in memory ([`build_index`], [`inspect`]).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use rsa::sha2::{Digest, Sha256};

use super::index::{DATE_WIDTH, INDEX_EXT, IndexHeader, MAX_KEY_ID, sort_records};
use super::parse::{split_crl, walk_entries};
use super::store::CrlDir;
use super::{CrlError, io_err};
use crate::pki::roots::TrustAnchors;
use crate::pki::sig::{self, SigAlg};

/// What `import` did, for the technician CLI.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub index_path: PathBuf,
    /// Issuer key id, upper-case hex.
    pub issuer_key_id: String,
    /// SHA-256 of the anchor that signed the CRL, upper-case hex.
    pub root: String,
    /// CRL number, upper-case hex (empty if the CRL has none).
    pub crl_number: String,
    pub this_update: i64,
    pub next_update: i64,
    pub entries: u64,
    pub serial_width: u8,
    pub source_sha256: String,
}

/// Import the DER CRL at `path_in` into `crl_dir`: verify its signature against the anchor
/// chosen by issuer name, AKI and signature; stream the entries into a sorted index; write it to
/// a temporary file, fsync, and rename it atomically to `<key id>.crlidx`. An index built from a
/// CRL with an older thisUpdate than the one in place is refused ([`CrlError::Older`]).
///
/// Memory: the file bytes plus `W + 5` bytes per entry (the record array), nothing per entry
/// beyond that.
pub fn import(
    path_in: &Path,
    crl_dir: &Path,
    anchors: &TrustAnchors,
) -> Result<ImportReport, CrlError> {
    let dir = CrlDir::open(crl_dir)?;
    let data = std::fs::read(path_in).map_err(io_err(path_in))?;
    let built = build_index(&data, anchors)?;
    let file_name = format!("{}.{INDEX_EXT}", hex::encode_upper(&built.key_id));
    if let Some(h) = dir.existing_header(&file_name)?
        && h.this_update > built.header.this_update
    {
        return Err(CrlError::Older {
            existing: h.this_update,
            new: built.header.this_update,
        });
    }
    let tmp = dir.create_temp(&file_name)?;
    let file = tmp.file()?;
    let write = || -> Result<(), std::io::Error> {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        w.write_all(&built.header_bytes)?;
        w.write_all(&built.records)?;
        w.flush()
    };
    write().map_err(io_err(&tmp.path()))?;
    let final_path = dir.commit(tmp, &file_name)?;
    let h = &built.header;
    Ok(ImportReport {
        index_path: final_path,
        issuer_key_id: hex::encode_upper(&built.key_id),
        root: built.root,
        crl_number: hex::encode_upper(&h.crl_number),
        this_update: h.this_update,
        next_update: h.next_update,
        entries: h.count,
        serial_width: h.width,
        source_sha256: hex::encode_upper(h.source_sha256),
    })
}

/// An index built in memory, ready to be written.
pub struct BuiltIndex {
    key_id: Vec<u8>,
    root: String,
    header: IndexHeader,
    header_bytes: Vec<u8>,
    records: Vec<u8>,
}

/// Structure of a CRL as read without any signature check (for diagnostics and fuzzing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSummary {
    pub entries: u64,
    pub serial_width: u8,
    pub this_update: i64,
    pub next_update: i64,
    /// AKI key id, upper-case hex (empty without AKI).
    pub authority_key_id: String,
}

/// Walk a CRL's structure and every entry, **without** verifying its signature: never use the
/// result for revocation decisions.
pub fn inspect(data: &[u8]) -> Result<CrlSummary, CrlError> {
    let parts = split_crl(data)?;
    let (mut entries, mut width) = (0u64, 1usize);
    walk_entries(parts.entries, |e| {
        entries += 1;
        width = width.max(e.serial.len());
    })?;
    Ok(CrlSummary {
        entries,
        serial_width: width as u8,
        this_update: parts.this_update,
        next_update: parts.next_update,
        authority_key_id: parts.aki.map(hex::encode_upper).unwrap_or_default(),
    })
}

impl fmt::Debug for BuiltIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltIndex")
            .field("header", &self.header)
            .finish()
    }
}

impl BuiltIndex {
    pub fn header(&self) -> &IndexHeader {
        &self.header
    }
    /// The index file's bytes (header + records).
    pub fn to_bytes(&self) -> Vec<u8> {
        [&self.header_bytes[..], &self.records[..]].concat()
    }
}

/// Parse, verify and index CRL bytes: the part of [`import`] that does not touch the disk.
pub fn build_index(data: &[u8], anchors: &TrustAnchors) -> Result<BuiltIndex, CrlError> {
    let parts = split_crl(data)?;
    let alg = SigAlg::from_oid(&parts.alg_oid)
        .ok_or_else(|| CrlError::Algorithm(parts.alg_oid.clone()))?;
    let candidates = anchors.candidates(parts.issuer_raw, parts.aki);
    if candidates.is_empty() {
        return Err(CrlError::UnknownIssuer);
    }
    let anchor = candidates
        .into_iter()
        .find(|a| sig::verify(a.spki(), alg, parts.tbs_raw, parts.signature).is_ok())
        .ok_or(CrlError::BadSignature)?;
    let key_id = anchor.key_id().to_vec();
    if key_id.len() > MAX_KEY_ID {
        return Err(CrlError::Unsupported("key identifier longer than 32 bytes"));
    }

    // Pass 1: width and count (and full validation of every entry).
    let mut count: u64 = 0;
    let mut width = 1usize;
    walk_entries(parts.entries, |e| {
        count += 1;
        width = width.max(e.serial.len());
    })?;
    let rec = width + 1 + DATE_WIDTH;
    let total = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(rec))
        .ok_or(CrlError::Structure("too many entries"))?;
    // Pass 2: fill the record array.
    let mut records = vec![0u8; total];
    let mut pos = 0usize;
    walk_entries(parts.entries, |e| {
        if let Some(r) = records.get_mut(pos..pos + rec) {
            let pad = width - e.serial.len();
            r[pad..width].copy_from_slice(e.serial);
            r[width] = e.reason;
            r[width + 1..].copy_from_slice(&e.date.to_le_bytes());
        }
        pos += rec;
    })?;
    sort_records(&mut records, width, rec)?;

    let header = IndexHeader {
        width: width as u8,
        key_id: key_id.clone(),
        crl_number: parts.crl_number.to_vec(),
        this_update: parts.this_update,
        next_update: parts.next_update,
        count,
        source_sha256: Sha256::digest(data).into(),
    };
    let header_bytes = header.encode(&records);
    Ok(BuiltIndex {
        key_id,
        root: anchor.sha256_hex(),
        header,
        header_bytes,
        records,
    })
}
