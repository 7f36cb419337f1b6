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
//! Records, `count` × (W + 1 + D) bytes, sorted ascending by serial: serial magnitude big-endian
//! left-padded with zeros to W; reason code (0xFF = no reasonCode); revocation date (u32 LE).

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rsa::sha2::{Digest, Sha256};

use super::RevocationReason;
use super::derwalk::{self, DerError};
use super::roots::TrustAnchors;
use super::sig::{self, SigAlg};

const MAGIC: &[u8; 8] = b"JPKICRL\0";
const VERSION: u16 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 160;
const MAX_SERIAL: usize = 32;
const MAX_KEY_ID: usize = 32;
const MAX_CRL_NUMBER: usize = 24;
const DATE_WIDTH: usize = 4;
const NO_REASON: u8 = 0xFF;
/// File name extension of index files.
pub const INDEX_EXT: &str = "crlidx";

const OID_AKI: &[u8] = &[0x55, 0x1D, 0x23];
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1D, 0x14];
const OID_DELTA_CRL: &[u8] = &[0x55, 0x1D, 0x1B];
const OID_IDP: &[u8] = &[0x55, 0x1D, 0x1C];
const OID_REASON: &[u8] = &[0x55, 0x1D, 0x15];
const OID_INVALIDITY_DATE: &[u8] = &[0x55, 0x1D, 0x18];

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
    #[error("the existing index is newer (thisUpdate {existing} > {new})")]
    Older { existing: i64, new: i64 },
    #[error("index file {path}: {reason}")]
    BadIndex { path: PathBuf, reason: &'static str },
}

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

/// One decoded CRL entry.
struct Entry<'a> {
    serial: &'a [u8],
    reason: u8,
    date: u32,
}

/// The parts of a CertificateList that `import` needs, borrowed from the file bytes.
struct CrlParts<'a> {
    tbs_raw: &'a [u8],
    alg_oid: String,
    signature: &'a [u8],
    issuer_raw: &'a [u8],
    this_update: i64,
    next_update: i64,
    entries: &'a [u8],
    aki: Option<&'a [u8]>,
    crl_number: &'a [u8],
}

fn split_crl(data: &[u8]) -> Result<CrlParts<'_>, CrlError> {
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
                // An IDP only narrows the scope (e.g. onlyContainsUserCerts); entries stay valid.
                OID_IDP => {}
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
fn walk_entries<'a>(mut list: &'a [u8], mut f: impl FnMut(Entry<'a>)) -> Result<(), CrlError> {
    while !list.is_empty() {
        let (e, rest) = read_entry(list)?;
        f(e);
        list = rest;
    }
    Ok(())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CrlError + '_ {
    move |source| CrlError::Io {
        path: path.to_path_buf(),
        source,
    }
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
    let data = std::fs::read(path_in).map_err(io_err(path_in))?;
    let built = build_index(&data, anchors)?;
    let file_name = format!("{}.{INDEX_EXT}", hex::encode_upper(&built.key_id));
    let final_path = crl_dir.join(&file_name);
    if let Some(h) = read_header(&final_path)
        && h.this_update > built.header.this_update
    {
        return Err(CrlError::Older {
            existing: h.this_update,
            new: built.header.this_update,
        });
    }
    let tmp_path = crl_dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let write = || -> Result<(), std::io::Error> {
        // World-readable whatever root's umask: the daemon runs as its own user and must read
        // what an administrator imported (an index it cannot read would make every check
        // `revocation-unknown`). A CRL is public data.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp_path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        w.write_all(&built.header_bytes)?;
        w.write_all(&built.records)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp_path, &final_path)?;
        std::fs::File::open(crl_dir)?.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(CrlError::Io {
            path: final_path,
            source: e,
        });
    }
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

fn is_sorted(records: &[u8], width: usize, rec: usize) -> bool {
    let mut prev: Option<&[u8]> = None;
    for r in records.chunks_exact(rec) {
        let key = &r[..width];
        if prev.is_some_and(|p| p > key) {
            return false;
        }
        prev = Some(key);
    }
    true
}

/// Sort fixed-width records in place by their serial prefix (big-endian, so byte order is
/// numeric order). Dispatches to a const record size to sort arrays, not slices.
fn sort_records(records: &mut [u8], width: usize, rec: usize) -> Result<(), CrlError> {
    if is_sorted(records, width, rec) {
        return Ok(());
    }
    macro_rules! by_size {
        ($($n:literal)*) => {
            match rec {
                $($n => {
                    let (chunks, _) = records.as_chunks_mut::<$n>();
                    chunks.sort_unstable_by(|a, b| a[..width].cmp(&b[..width]));
                })*
                _ => return Err(CrlError::SerialTooLong),
            }
        };
    }
    by_size!(6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37);
    Ok(())
}

/// Decoded index header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexHeader {
    pub width: u8,
    pub key_id: Vec<u8>,
    pub crl_number: Vec<u8>,
    pub this_update: i64,
    pub next_update: i64,
    pub count: u64,
    pub source_sha256: [u8; 32],
}

impl IndexHeader {
    fn encode(&self, records: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..10].copy_from_slice(&VERSION.to_le_bytes());
        h[10] = self.width;
        h[11] = DATE_WIDTH as u8;
        h[12] = self.key_id.len() as u8;
        h[13] = self.crl_number.len() as u8;
        h[16..16 + self.key_id.len()].copy_from_slice(&self.key_id);
        h[48..48 + self.crl_number.len()].copy_from_slice(&self.crl_number);
        h[72..80].copy_from_slice(&self.this_update.to_le_bytes());
        h[80..88].copy_from_slice(&self.next_update.to_le_bytes());
        h[88..96].copy_from_slice(&self.count.to_le_bytes());
        h[96..128].copy_from_slice(&self.source_sha256);
        let sum = integrity(&h[..128], records);
        h[128..160].copy_from_slice(&sum);
        h
    }
}

fn integrity(header: &[u8], records: &[u8]) -> [u8; 32] {
    let mut d = Sha256::new();
    d.update(header);
    d.update(records);
    d.finalize().into()
}

fn le_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_le_bytes(a)
}

/// The header of an existing index file, if it has a readable one.
fn read_header(path: &Path) -> Option<IndexHeader> {
    use std::io::Read;
    let mut buf = [0u8; HEADER_LEN];
    std::fs::File::open(path).ok()?.read_exact(&mut buf).ok()?;
    parse_header(&buf).ok()
}

/// Decode and sanity-check the header (not the records). Never panics on short input.
fn parse_header(bytes: &[u8]) -> Result<IndexHeader, &'static str> {
    let h = bytes.get(..HEADER_LEN).ok_or("shorter than the header")?;
    if &h[0..8] != MAGIC {
        return Err("bad magic");
    }
    if u16::from_le_bytes([h[8], h[9]]) != VERSION {
        return Err("unsupported version");
    }
    let width = h[10];
    if width == 0 || usize::from(width) > MAX_SERIAL || usize::from(h[11]) != DATE_WIDTH {
        return Err("bad record layout");
    }
    let (kl, nl) = (usize::from(h[12]), usize::from(h[13]));
    if kl > MAX_KEY_ID || nl > MAX_CRL_NUMBER || h[14] != 0 || h[15] != 0 {
        return Err("bad field lengths");
    }
    let mut source_sha256 = [0u8; 32];
    source_sha256.copy_from_slice(&h[96..128]);
    Ok(IndexHeader {
        width,
        key_id: h[16..16 + kl].to_vec(),
        crl_number: h[48..48 + nl].to_vec(),
        this_update: le_i64(&h[72..80]),
        next_update: le_i64(&h[80..88]),
        count: u64::from_le_bytes({
            let mut a = [0u8; 8];
            a.copy_from_slice(&h[88..96]);
            a
        }),
        source_sha256,
    })
}

/// Records per fence: the in-memory fence table holds the 8-byte key prefix of every
/// `FENCE`-th record, so a lookup searches a small cache-resident table first and then one
/// block of `FENCE` records instead of the whole array.
const FENCE: usize = 32;

/// Where an index's bytes live: a read-only memory map of the file (the daemon: pages come
/// in on demand and stay evictable, so a 30-million-entry list costs no heap) or a buffer.
enum IndexBytes {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for IndexBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            IndexBytes::Owned(v) => v,
            IndexBytes::Mapped(m) => m,
        }
    }
}

/// Maps an index file read-only.
///
/// The one `unsafe` of the crate. A mapping is undefined behaviour if the file is truncated
/// or rewritten in place while mapped. jpkid never does either: [`import`] writes a new file
/// and renames it over the old one, so a mapped index keeps its own inode until the last
/// lookup holding it is done, and `revocation.crl_dir` belongs to the service user (the unit's
/// `StateDirectory`). The bytes are checked (length, integrity hash, order) after mapping.
#[allow(unsafe_code)]
fn map_read_only(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: see above; the file is replaced by rename, never modified in place.
    unsafe { memmap2::Mmap::map(file) }
}

/// One loaded index: header plus sorted records.
pub struct CrlIndex {
    header: IndexHeader,
    bytes: IndexBytes,
    rec: usize,
    fences: Vec<u64>,
}

/// First 8 bytes of a record key (big-endian, zero-extended): monotone in the key order.
fn prefix8(key: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = key.len().min(8);
    a[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(a)
}

impl fmt::Debug for CrlIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrlIndex")
            .field("header", &self.header)
            .finish()
    }
}

impl CrlIndex {
    /// Check an index file's bytes: header fields, exact length, integrity hash, sort order.
    /// Any failure is an error (never a panic).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<CrlIndex, &'static str> {
        CrlIndex::checked(IndexBytes::Owned(bytes))
    }

    fn checked(bytes: IndexBytes) -> Result<CrlIndex, &'static str> {
        let header = parse_header(&bytes)?;
        let rec = usize::from(header.width) + 1 + DATE_WIDTH;
        let expected = usize::try_from(header.count)
            .ok()
            .and_then(|c| c.checked_mul(rec))
            .and_then(|n| n.checked_add(HEADER_LEN))
            .ok_or("record count overflows")?;
        if bytes.len() != expected {
            return Err("length does not match the record count (truncated?)");
        }
        let records = &bytes[HEADER_LEN..];
        if integrity(&bytes[..128], records)[..] != bytes[128..160] {
            return Err("integrity hash mismatch (corrupt)");
        }
        if !is_sorted(records, usize::from(header.width), rec) {
            return Err("records not sorted");
        }
        let w = usize::from(header.width);
        let fences = records
            .chunks(rec * FENCE)
            .map(|block| prefix8(&block[..w.min(block.len())]))
            .collect();
        Ok(CrlIndex {
            header,
            bytes,
            rec,
            fences,
        })
    }

    /// Map and check an index file.
    pub fn load(path: &Path) -> Result<CrlIndex, CrlError> {
        let file = std::fs::File::open(path).map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        // An empty file cannot be mapped; it is a (bad) index all the same.
        let bytes = if len == 0 {
            IndexBytes::Owned(Vec::new())
        } else {
            IndexBytes::Mapped(map_read_only(&file).map_err(io_err(path))?)
        };
        CrlIndex::checked(bytes).map_err(|reason| CrlError::BadIndex {
            path: path.to_path_buf(),
            reason,
        })
    }

    pub fn header(&self) -> &IndexHeader {
        &self.header
    }

    /// Binary search for a serial (unsigned magnitude, leading zeros allowed). Returns the
    /// reason (None = entry without reasonCode) and the revocation date.
    pub fn find(&self, serial: &[u8]) -> Option<(Option<RevocationReason>, i64)> {
        let first = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
        let serial = &serial[first..];
        let w = usize::from(self.header.width);
        if serial.len() > w {
            return None;
        }
        let mut key = [0u8; MAX_SERIAL];
        key[w - serial.len()..w].copy_from_slice(serial);
        let key = &key[..w];
        let records = self.bytes.get(HEADER_LEN..)?;
        let n = records.len() / self.rec;
        // Blocks that can hold the key: from the last block starting below its prefix to the
        // last block starting at or below it.
        let kp = prefix8(key);
        let first = self.fences.partition_point(|&f| f < kp).saturating_sub(1);
        let last = self.fences.partition_point(|&f| f <= kp);
        let (mut lo, mut hi) = (first * FENCE, (last * FENCE).min(n));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = records.get(mid * self.rec..(mid + 1) * self.rec)?;
            match r[..w].cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let reason = RevocationReason::from_code(r[w]);
                    let date = u32::from_le_bytes([r[w + 1], r[w + 2], r[w + 3], r[w + 4]]);
                    return Some((reason, i64::from(date)));
                }
            }
        }
        None
    }
}

/// Answer of the CRL store for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlAnswer {
    Revoked {
        reason: Option<RevocationReason>,
        date: i64,
    },
    /// Not listed in a fresh CRL.
    Good { this_update: i64, next_update: i64 },
    /// The index is past its nextUpdate (and stale CRLs are not accepted).
    Stale { next_update: i64 },
    /// No index for this issuer key.
    NoIndex,
    /// The index exists but cannot be used (corrupt, unreadable).
    Unusable(String),
}

impl fmt::Display for CrlAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrlAnswer::Revoked { .. } => f.write_str("revoked"),
            CrlAnswer::Good { .. } => f.write_str("not listed"),
            CrlAnswer::Stale { next_update } => write!(f, "index stale since {next_update}"),
            CrlAnswer::NoIndex => f.write_str("no index for this issuer key"),
            CrlAnswer::Unusable(e) => write!(f, "index unusable: {e}"),
        }
    }
}

/// (device, inode, length, mtime ns): changes whenever `import` renames a new file in place.
type FileStamp = (u64, u64, u64, i128);

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.len(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    ))
}

struct Loaded {
    stamp: FileStamp,
    index: Result<Arc<CrlIndex>, String>,
}

/// All indexes of `revocation.crl_dir`, keyed by issuer key id. Lookups check the file's stamp
/// and reload it when `import` replaced it, so a new CRL takes effect without a restart; a
/// replacement that fails its checks makes that issuer's index unusable (→ no CRL answer),
/// never a panic.
///
/// Indexes are memory-mapped ([`map_read_only`]). A replaced index is swapped in by replacing
/// the `Arc` in the map: lookups in flight finish on the old mapping, later ones see the new.
pub struct CrlStore {
    dir: PathBuf,
    loaded: RwLock<HashMap<Vec<u8>, Loaded>>,
}

impl fmt::Debug for CrlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrlStore").field("dir", &self.dir).finish()
    }
}

impl CrlStore {
    /// Open a store over `dir` and load every `*.crlidx` in it.
    pub fn open(dir: &Path) -> Result<CrlStore, CrlError> {
        let store = CrlStore {
            dir: dir.to_path_buf(),
            loaded: RwLock::new(HashMap::new()),
        };
        store.refresh()?;
        Ok(store)
    }

    fn path_for(&self, key_id: &[u8]) -> PathBuf {
        self.dir
            .join(format!("{}.{INDEX_EXT}", hex::encode_upper(key_id)))
    }

    /// Rescan the directory; load new or changed indexes, drop removed ones. Returns the key ids
    /// (hex) of indexes that failed their checks.
    pub fn refresh(&self) -> Result<Vec<String>, CrlError> {
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = name.strip_suffix(&format!(".{INDEX_EXT}")) else {
                continue;
            };
            if let Ok(k) = hex::decode(stem) {
                keys.push(k);
            }
        }
        let mut bad = Vec::new();
        for k in &keys {
            if let Err(e) = self.reload_if_changed(k) {
                bad.push(format!("{}: {e}", hex::encode_upper(k)));
            }
        }
        if let Ok(mut map) = self.loaded.write() {
            map.retain(|k, _| keys.contains(k));
        }
        Ok(bad)
    }

    /// Reload the index for `key_id` if its file changed. Err = the current file is unusable.
    fn reload_if_changed(&self, key_id: &[u8]) -> Result<(), String> {
        let path = self.path_for(key_id);
        let Some(st) = stamp(&path) else {
            if let Ok(mut map) = self.loaded.write() {
                map.remove(key_id);
            }
            return Ok(());
        };
        if let Ok(map) = self.loaded.read()
            && let Some(l) = map.get(key_id)
            && l.stamp == st
        {
            return l.index.as_ref().map(|_| ()).map_err(Clone::clone);
        }
        let index = CrlIndex::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|i| {
                if i.header.key_id == key_id {
                    Ok(Arc::new(i))
                } else {
                    Err("key id in header differs from the file name".to_owned())
                }
            });
        let result = index.as_ref().map(|_| ()).map_err(Clone::clone);
        if let Ok(mut map) = self.loaded.write() {
            map.insert(key_id.to_vec(), Loaded { stamp: st, index });
        }
        result
    }

    /// The current index for an issuer key, reloading it if the file changed.
    pub fn index(&self, key_id: &[u8]) -> Result<Option<Arc<CrlIndex>>, String> {
        self.reload_if_changed(key_id)?;
        let map = self.loaded.read().map_err(|_| "lock poisoned".to_owned())?;
        Ok(map.get(key_id).and_then(|l| l.index.as_ref().ok().cloned()))
    }

    /// Look a serial up in the index of `key_id`: whether it was revoked at time `at`, from an
    /// index that is fresh at the real time `now` (a stale list says nothing about any time:
    /// it may lack a revocation of a date before `at`).
    pub fn lookup(
        &self,
        key_id: &[u8],
        serial: &[u8],
        at: i64,
        now: i64,
        accept_stale: bool,
    ) -> CrlAnswer {
        let index = match self.index(key_id) {
            Ok(Some(i)) => i,
            Ok(None) => return CrlAnswer::NoIndex,
            Err(e) => return CrlAnswer::Unusable(e),
        };
        let h = index.header();
        if now > h.next_update && !accept_stale {
            return CrlAnswer::Stale {
                next_update: h.next_update,
            };
        }
        match index.find(serial) {
            Some((reason, date)) if date <= at => CrlAnswer::Revoked { reason, date },
            // Listed, but revoked after `at`: it was not revoked then.
            Some(_) | None => CrlAnswer::Good {
                this_update: h.this_update,
                next_update: h.next_update,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index bytes for sorted keys of width `w` (all with reason 3, date = position).
    fn index_of(keys: &[Vec<u8>], w: u8) -> CrlIndex {
        let mut records = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            records.extend_from_slice(k);
            records.push(3);
            records.extend_from_slice(&(i as u32).to_le_bytes());
        }
        let header = IndexHeader {
            width: w,
            key_id: vec![1; 20],
            crl_number: vec![1],
            this_update: 0,
            next_update: 1,
            count: keys.len() as u64,
            source_sha256: [0; 32],
        };
        let bytes = [header.encode(&records), records].concat();
        CrlIndex::from_bytes(bytes).unwrap()
    }

    #[test]
    fn fence_search_with_shared_prefixes_and_wide_serials() {
        // W = 10; many keys share their first 8 bytes, spanning several fence blocks.
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for hi in 0..5u8 {
            for lo in (0..200u16).step_by(2) {
                let mut k = vec![0u8, 0, 0, 0, 0, 0, 0, hi];
                k.extend_from_slice(&lo.to_be_bytes());
                keys.push(k);
            }
        }
        let idx = index_of(&keys, 10);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                idx.find(k),
                Some((Some(RevocationReason::AffiliationChanged), i as i64))
            );
        }
        for hi in 0..6u8 {
            let k = [0u8, 0, 0, 0, 0, 0, 0, hi, 0, 1];
            assert_eq!(idx.find(&k), None);
        }
        assert_eq!(idx.find(&[0xFF; 11]), None);
        // An empty magnitude is serial 0, which is listed here (hi = 0, lo = 0).
        assert_eq!(idx.find(&[]).map(|r| r.1), Some(0));
    }

    #[test]
    fn fence_search_narrow() {
        let keys: Vec<Vec<u8>> = (0..1000u16)
            .map(|i| (i * 3).to_be_bytes().to_vec())
            .collect();
        let idx = index_of(&keys, 2);
        for i in 0..3000u16 {
            assert_eq!(idx.find(&i.to_be_bytes()).is_some(), i % 3 == 0, "{i}");
        }
        assert_eq!(idx.find(&[0, 0, 0, 3]).map(|r| r.1), Some(1));
    }
}
