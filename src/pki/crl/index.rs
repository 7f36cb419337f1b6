//! The index file format (version 1, see the module docs of [`super`]), building its header,
//! and [`CrlIndex`]: checking an index's bytes and finding a serial in them.

use std::fmt;
use std::path::Path;

use rsa::sha2::{Digest, Sha256};

use super::{CrlError, io_err};
use crate::pki::RevocationReason;

const MAGIC: &[u8; 8] = b"JPKICRL\0";
const VERSION: u16 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 160;
pub(super) const MAX_SERIAL: usize = 32;
pub(super) const MAX_KEY_ID: usize = 32;
pub(super) const MAX_CRL_NUMBER: usize = 24;
pub(super) const DATE_WIDTH: usize = 4;
pub(super) const NO_REASON: u8 = 0xFF;
/// File name extension of index files.
pub const INDEX_EXT: &str = "crlidx";

/// The first serial (key) that is not strictly above the one before it, if any: `None` means
/// the records are sorted and every serial is listed once.
fn first_out_of_order(records: &[u8], width: usize, rec: usize) -> Option<&[u8]> {
    let mut prev: Option<&[u8]> = None;
    for r in records.chunks_exact(rec) {
        let key = &r[..width];
        if prev.is_some_and(|p| p >= key) {
            return Some(key);
        }
        prev = Some(key);
    }
    None
}

/// A serial (padded key) as the CRL writes it: upper-case hex without leading zero bytes.
pub(super) fn serial_hex(key: &[u8]) -> String {
    let first = key.iter().position(|&b| b != 0).unwrap_or(key.len());
    hex::encode_upper(&key[first..])
}

/// Sort fixed-width records in place by their serial prefix (big-endian, so byte order is
/// numeric order), and refuse a serial listed twice ([`CrlError::DuplicateSerial`]: which of
/// the two entries a lookup found would be chance). Dispatches to a const record size to sort
/// arrays, not slices.
pub(super) fn sort_records(records: &mut [u8], width: usize, rec: usize) -> Result<(), CrlError> {
    if first_out_of_order(records, width, rec).is_none() {
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
    match first_out_of_order(records, width, rec) {
        Some(key) => Err(CrlError::DuplicateSerial {
            serial: serial_hex(key),
        }),
        None => Ok(()),
    }
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
    pub(super) fn encode(&self, records: &[u8]) -> Vec<u8> {
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

/// Decode and sanity-check the header (not the records). Never panics on short input.
pub(super) fn parse_header(bytes: &[u8]) -> Result<IndexHeader, &'static str> {
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
/// or rewritten in place while mapped. jpkid never does either: [`super::import`] writes a new
/// file and renames it over the old one, so a mapped index keeps its own inode until the last
/// lookup holding it is done; `revocation.crl_dir` belongs to root, the daemon only reads it,
/// and `import` refuses a directory that anyone else can write. The bytes are checked (length,
/// integrity hash, order) after mapping.
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
        if first_out_of_order(records, usize::from(header.width), rec).is_some() {
            return Err("records not sorted, or a serial listed twice");
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
    fn records_out_of_order_or_listed_twice_are_refused() {
        let bytes = |keys: &[[u8; 2]]| {
            let mut records = Vec::new();
            for k in keys {
                records.extend_from_slice(k);
                records.extend_from_slice(&[NO_REASON, 0, 0, 0, 0]);
            }
            let header = IndexHeader {
                width: 2,
                key_id: vec![1; 20],
                crl_number: vec![1],
                this_update: 0,
                next_update: 1,
                count: keys.len() as u64,
                source_sha256: [0; 32],
            };
            [header.encode(&records), records].concat()
        };
        assert!(CrlIndex::from_bytes(bytes(&[[0, 1], [0, 2], [1, 0]])).is_ok());
        assert!(CrlIndex::from_bytes(bytes(&[[0, 2], [0, 1]])).is_err());
        assert_eq!(
            CrlIndex::from_bytes(bytes(&[[0, 1], [0, 2], [0, 2]])).err(),
            Some("records not sorted, or a serial listed twice")
        );
        let mut records = [
            [0u8, 7, 1, 0, 0, 0, 0],
            [0, 3, 2, 0, 0, 0, 0],
            [0, 7, 3, 0, 0, 0, 0],
        ]
        .concat();
        assert!(matches!(
            sort_records(&mut records, 2, 7),
            Err(CrlError::DuplicateSerial { serial }) if serial == "07"
        ));
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
