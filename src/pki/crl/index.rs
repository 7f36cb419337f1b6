//! The index file format (version 1, see the module docs of [`super`]); building an index from
//! a stream of entries within bounded memory ([`IndexBuilder`]); and [`CrlIndex`]: checking an
//! index's bytes and finding a serial in them.
//!
//! # Building
//! Entries arrive in CRL order, which need not be serial order, and the record width W (the
//! longest serial) is known only after the last one. The builder keeps one *run* of records in
//! memory (at most [`RUN_BYTES`], at the widest width seen so far, widened in place when a
//! longer serial comes) and writes each full run, sorted, to a spill [`Storage`] behind room for
//! the header. A run that came unsorted is sorted through a scratch buffer of its size (radix
//! for serials of up to 8 bytes), so the builder holds at most twice [`RUN_BYTES`]. At the end:
//! - the runs follow each other in order and all have width W (a CRL sorted by serial, the
//!   usual case): the spill already holds the index's records; the integrity hash is computed
//!   by reading them back and the header written in front ([`Runs::finish_in_place`]);
//! - otherwise the runs are merged (k-way, a read buffer per run) into a second storage, widened
//!   to W on the way, the integrity hash computed as they are written ([`Runs::merge_into`]).
//!
//! A serial listed twice is refused in either case. The storage is a file of the CRL directory
//! for `import` and memory for [`super::build_index`]; nothing here opens a file.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;
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
    if rec != width + 1 + DATE_WIDTH {
        return Err(CrlError::Structure("index record layout"));
    }
    macro_rules! by_size {
        ($($n:literal)*) => {
            match rec {
                $($n => sort_fixed::<$n>(records),)*
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

/// [`sort_records`] of one run of the builder, through `scratch` (grown to the run's length):
/// serials of up to 8 bytes are sorted by radix, a byte at a time from the last (stable, one
/// pass over the run per byte that is not the same in every record), which is several times
/// faster than comparing 9-byte records; wider ones by comparison.
fn sort_run(
    records: &mut [u8],
    scratch: &mut Vec<u8>,
    width: usize,
    rec: usize,
) -> Result<(), CrlError> {
    if width > 8 || rec != width + 1 + DATE_WIDTH {
        return sort_records(records, width, rec);
    }
    if first_out_of_order(records, width, rec).is_none() {
        return Ok(());
    }
    scratch.clear();
    scratch.reserve_exact(records.len());
    scratch.resize(records.len(), 0);
    match rec {
        6 => radix_fixed::<6>(records, scratch),
        7 => radix_fixed::<7>(records, scratch),
        8 => radix_fixed::<8>(records, scratch),
        9 => radix_fixed::<9>(records, scratch),
        10 => radix_fixed::<10>(records, scratch),
        11 => radix_fixed::<11>(records, scratch),
        12 => radix_fixed::<12>(records, scratch),
        13 => radix_fixed::<13>(records, scratch),
        _ => return sort_records(records, width, rec),
    }
    match first_out_of_order(records, width, rec) {
        Some(key) => Err(CrlError::DuplicateSerial {
            serial: serial_hex(key),
        }),
        None => Ok(()),
    }
}

/// LSD radix sort of records of `N` bytes by their first `N - 5` bytes; the result ends in
/// `records` (`scratch` is as long).
fn radix_fixed<const N: usize>(records: &mut [u8], scratch: &mut [u8]) {
    let w = N - 1 - DATE_WIDTH;
    let n = records.len() / N;
    // Whether the records are in `scratch` after the passes so far.
    let mut flipped = false;
    for p in (0..w).rev() {
        let (src, dst) = if flipped {
            (&*scratch, &mut *records)
        } else {
            (&*records, &mut *scratch)
        };
        let (src, _) = src.as_chunks::<N>();
        let (dst, _) = dst.as_chunks_mut::<N>();
        let mut at = [0usize; 256];
        for r in src {
            at[usize::from(r[p])] += 1;
        }
        if at.contains(&n) {
            continue; // every record has the same byte here
        }
        let mut sum = 0;
        for slot in &mut at {
            let c = *slot;
            *slot = sum;
            sum += c;
        }
        for r in src {
            let b = usize::from(r[p]);
            if let Some(d) = dst.get_mut(at[b]) {
                *d = *r;
            }
            at[b] += 1;
        }
        flipped = !flipped;
    }
    if flipped {
        records.copy_from_slice(scratch);
    }
}

/// Sort records of `N` bytes (serial of `N - 5` bytes, reason, date) by serial. With the
/// width a constant, a serial of up to 8 bytes becomes one integer to compare.
fn sort_fixed<const N: usize>(records: &mut [u8]) {
    let w = N - 1 - DATE_WIDTH;
    let (chunks, _) = records.as_chunks_mut::<N>();
    if w <= 8 {
        chunks.sort_unstable_by_key(|r| {
            let mut a = [0u8; 8];
            a[8 - w..].copy_from_slice(&r[..w]);
            u64::from_be_bytes(a)
        });
    } else {
        chunks.sort_unstable_by(|a, b| a[..w].cmp(&b[..w]));
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
    /// Header bytes 0..128: everything but the integrity hash.
    pub(super) fn prefix(&self) -> [u8; 128] {
        let mut h = [0u8; 128];
        h[0..8].copy_from_slice(MAGIC);
        h[8..10].copy_from_slice(&VERSION.to_le_bytes());
        h[10] = self.width;
        h[11] = DATE_WIDTH as u8;
        let kl = self.key_id.len().min(MAX_KEY_ID);
        let nl = self.crl_number.len().min(MAX_CRL_NUMBER);
        h[12] = kl as u8;
        h[13] = nl as u8;
        h[16..16 + kl].copy_from_slice(&self.key_id[..kl]);
        h[48..48 + nl].copy_from_slice(&self.crl_number[..nl]);
        h[72..80].copy_from_slice(&self.this_update.to_le_bytes());
        h[80..88].copy_from_slice(&self.next_update.to_le_bytes());
        h[88..96].copy_from_slice(&self.count.to_le_bytes());
        h[96..128].copy_from_slice(&self.source_sha256);
        h
    }

    /// The whole header given the integrity hash.
    fn with_integrity(&self, sum: [u8; 32]) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..128].copy_from_slice(&self.prefix());
        h[128..].copy_from_slice(&sum);
        h
    }

    /// The whole header for these records.
    #[cfg(test)]
    pub(super) fn encode(&self, records: &[u8]) -> Vec<u8> {
        self.with_integrity(integrity(&self.prefix(), records))
            .to_vec()
    }
}

fn integrity(header: &[u8], records: &[u8]) -> [u8; 32] {
    let mut d = Sha256::new();
    d.update(header);
    d.update(records);
    d.finalize().into()
}

/// Random-access bytes an index is built in: a temporary file of the CRL directory, or memory.
pub(super) trait Storage {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), CrlError>;
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), CrlError>;
}

impl Storage for Vec<u8> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), CrlError> {
        let start = usize::try_from(offset).map_err(|_| CrlError::Structure("index too large"))?;
        let end = start
            .checked_add(data.len())
            .ok_or(CrlError::Structure("index too large"))?;
        if self.len() < end {
            self.resize(end, 0);
        }
        self[start..end].copy_from_slice(data);
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), CrlError> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| self.get(start..start.checked_add(buf.len())?))
            .ok_or(CrlError::Structure("index storage read past its end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Bytes of records held in memory at once while building (one run): bounds the builder's
/// memory whatever the CRL's size.
/// An unsorted run is sorted through a scratch buffer as large: 16 MiB at most in all.
pub(super) const RUN_BYTES: usize = 8 << 20;
/// Read buffer per run while merging, and write buffer.
const MERGE_BUF: usize = 256 << 10;
const OUT_BUF: usize = 1 << 20;

/// A serial magnitude right-aligned in MAX_SERIAL bytes: comparable whatever the width.
type Key = [u8; MAX_SERIAL];

/// How the merge compares serials: as their value when the index's serials fit in 8 bytes
/// (one integer comparison), else as [`Key`]s.
trait MergeKey: Ord + Copy {
    /// From a serial magnitude of at most the index's width.
    fn of(serial: &[u8]) -> Self;
    /// Append the serial left-padded to `w` bytes.
    fn put(&self, w: usize, out: &mut Vec<u8>);
    fn hex(&self) -> String;
}

impl MergeKey for u64 {
    fn of(serial: &[u8]) -> u64 {
        serial.iter().fold(0, |v, &b| (v << 8) | u64::from(b))
    }
    fn put(&self, w: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes()[8 - w..]);
    }
    fn hex(&self) -> String {
        serial_hex(&self.to_be_bytes())
    }
}

impl MergeKey for Key {
    fn of(serial: &[u8]) -> Key {
        key_of(serial)
    }
    fn put(&self, w: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(&self[MAX_SERIAL - w..]);
    }
    fn hex(&self) -> String {
        serial_hex(self)
    }
}

fn key_of(serial: &[u8]) -> Key {
    let mut k = [0u8; MAX_SERIAL];
    let n = serial.len().min(MAX_SERIAL);
    k[MAX_SERIAL - n..].copy_from_slice(&serial[serial.len() - n..]);
    k
}

/// One sorted run of records written to the spill.
#[derive(Debug, Clone)]
struct Run {
    offset: u64,
    count: u64,
    width: usize,
    first: Key,
    last: Key,
}

/// Collects the entries of a CRL into sorted runs (see the module docs).
#[derive(Debug)]
pub(super) struct IndexBuilder {
    /// Records of the current run, `run_width + 5` bytes each.
    run: Vec<u8>,
    /// Where an unsorted run is sorted (as long as the run, allocated on first use).
    scratch: Vec<u8>,
    run_width: usize,
    /// Whether the current run is strictly ascending so far.
    run_sorted: bool,
    runs: Vec<Run>,
    /// Widest serial so far (at least 1).
    width: usize,
    count: u64,
    /// Next free offset of the spill (records start after the header's room).
    spill_end: u64,
    run_bytes: usize,
}

impl IndexBuilder {
    pub(super) fn new() -> IndexBuilder {
        IndexBuilder::with_run_bytes(RUN_BYTES)
    }

    /// With a smaller run size (tests: many runs from few entries).
    pub(super) fn with_run_bytes(run_bytes: usize) -> IndexBuilder {
        IndexBuilder {
            run: Vec::new(),
            scratch: Vec::new(),
            run_width: 1,
            run_sorted: true,
            runs: Vec::new(),
            width: 1,
            count: 0,
            spill_end: HEADER_LEN as u64,
            run_bytes: run_bytes.max(64),
        }
    }

    /// Add one entry; `serial` is the magnitude without leading zeros.
    pub(super) fn push(
        &mut self,
        spill: &mut impl Storage,
        serial: &[u8],
        reason: u8,
        date: u32,
    ) -> Result<(), CrlError> {
        if serial.len() > MAX_SERIAL {
            return Err(CrlError::SerialTooLong);
        }
        if serial.len() > self.run_width {
            // Re-laid wider, the run must still fit in `run_bytes` with this record.
            let n = self.run.len() / (self.run_width + 1 + DATE_WIDTH);
            if (n + 1) * (serial.len() + 1 + DATE_WIDTH) > self.run_bytes {
                self.flush(spill)?;
            }
            self.widen(serial.len());
        }
        self.width = self.width.max(serial.len());
        let w = self.run_width;
        let rec = w + 1 + DATE_WIDTH;
        self.reserve(rec);
        let mut r = [0u8; MAX_SERIAL + 1 + DATE_WIDTH];
        r[w - serial.len()..w].copy_from_slice(serial);
        r[w] = reason;
        r[w + 1..rec].copy_from_slice(&date.to_le_bytes());
        let start = self.run.len();
        if self.run_sorted
            && let Some(prev) = start.checked_sub(rec).and_then(|p| self.run.get(p..p + w))
        {
            match prev.cmp(&r[..w]) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    return Err(CrlError::DuplicateSerial {
                        serial: serial_hex(&r[..w]),
                    });
                }
                std::cmp::Ordering::Greater => self.run_sorted = false,
            }
        }
        self.run.extend_from_slice(&r[..rec]);
        self.count += 1;
        if self.run.len() + rec > self.run_bytes {
            self.flush(spill)?;
        }
        Ok(())
    }

    /// Room for `extra` more bytes in the run without its capacity passing `run_bytes` (the
    /// callers keep the length within it): doubling up to 1 MiB, then 1 MiB at a time, so a
    /// small CRL costs little and a large one at most `run_bytes`.
    fn reserve(&mut self, extra: usize) {
        let need = self.run.len() + extra;
        if need <= self.run.capacity() {
            return;
        }
        let cap = self.run.capacity();
        let grown = if cap < 1 << 20 {
            (cap * 2).max(4096)
        } else {
            cap + (1 << 20)
        };
        let target = grown.min(self.run_bytes).max(need);
        self.run.reserve_exact(target - self.run.len());
    }

    /// Re-lay the current run at width `new_w` (> run_width), in place, last record first.
    fn widen(&mut self, new_w: usize) {
        let (old_rec, new_rec) = (self.run_width + 1 + DATE_WIDTH, new_w + 1 + DATE_WIDTH);
        let pad = new_w - self.run_width;
        let n = self.run.len() / old_rec;
        self.reserve(n * new_rec - self.run.len());
        self.run.resize(n * new_rec, 0);
        for i in (0..n).rev() {
            self.run
                .copy_within(i * old_rec..(i + 1) * old_rec, i * new_rec + pad);
            self.run[i * new_rec..i * new_rec + pad].fill(0);
        }
        self.run_width = new_w;
    }

    /// Sort the current run (if needed) and write it to the spill.
    fn flush(&mut self, spill: &mut impl Storage) -> Result<(), CrlError> {
        let w = self.run_width;
        let rec = w + 1 + DATE_WIDTH;
        if self.run.is_empty() {
            return Ok(());
        }
        if !self.run_sorted {
            sort_run(&mut self.run, &mut self.scratch, w, rec)?;
        }
        let first = key_of(&self.run[..w]);
        let last_at = self.run.len() - rec;
        let last = key_of(&self.run[last_at..last_at + w]);
        spill.write_at(self.spill_end, &self.run)?;
        self.runs.push(Run {
            offset: self.spill_end,
            count: (self.run.len() / rec) as u64,
            width: w,
            first,
            last,
        });
        self.spill_end += self.run.len() as u64;
        self.run.clear();
        self.run_sorted = true;
        // Later runs are at least as wide: fewer widenings.
        self.run_width = self.width;
        Ok(())
    }

    /// The last run written; which way the index is completed.
    pub(super) fn finish(mut self, spill: &mut impl Storage) -> Result<Runs, CrlError> {
        self.flush(spill)?;
        let width = self.width;
        let mut in_place = self.runs.iter().all(|r| r.width == width);
        for pair in self.runs.windows(2) {
            match pair[0].last.cmp(&pair[1].first) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    return Err(CrlError::DuplicateSerial {
                        serial: serial_hex(&pair[1].first),
                    });
                }
                std::cmp::Ordering::Greater => in_place = false,
            }
        }
        Ok(Runs {
            runs: self.runs,
            width,
            count: self.count,
            in_place,
        })
    }
}

/// The sorted runs of a finished [`IndexBuilder`].
#[derive(Debug)]
pub(super) struct Runs {
    runs: Vec<Run>,
    width: usize,
    count: u64,
    in_place: bool,
}

/// Reads one run's records back in blocks.
struct RunReader {
    offset: u64,
    left: u64,
    width: usize,
    buf: Vec<u8>,
    at: usize,
}

impl RunReader {
    fn new(run: &Run) -> RunReader {
        RunReader {
            offset: run.offset,
            left: run.count,
            width: run.width,
            buf: Vec::new(),
            at: 0,
        }
    }

    fn rec(&self) -> usize {
        self.width + 1 + DATE_WIDTH
    }

    /// The next record (key, reason, date), or None at the end of the run.
    fn next<K: MergeKey>(
        &mut self,
        spill: &impl Storage,
    ) -> Result<Option<(K, u8, [u8; 4])>, CrlError> {
        let rec = self.rec();
        if self.at >= self.buf.len() {
            if self.left == 0 {
                return Ok(None);
            }
            let n = (MERGE_BUF / rec).max(1) as u64;
            let n = n.min(self.left);
            // n records of a run that is in memory-sized pieces: fits in usize.
            self.buf.resize(n as usize * rec, 0);
            spill.read_at(self.offset, &mut self.buf)?;
            self.offset += self.buf.len() as u64;
            self.left -= n;
            self.at = 0;
        }
        let r = &self.buf[self.at..self.at + rec];
        self.at += rec;
        let w = self.width;
        Ok(Some((
            K::of(&r[..w]),
            r[w],
            [r[w + 1], r[w + 2], r[w + 3], r[w + 4]],
        )))
    }
}

impl Runs {
    pub(super) fn width(&self) -> usize {
        self.width
    }

    pub(super) fn count(&self) -> u64 {
        self.count
    }

    /// Whether the spill already holds the final records (see the module docs).
    pub(super) fn in_place(&self) -> bool {
        self.in_place
    }

    /// Complete the index in the spill itself: hash the records read back, write the header.
    pub(super) fn finish_in_place(
        &self,
        spill: &mut impl Storage,
        header: &IndexHeader,
    ) -> Result<(), CrlError> {
        if !self.in_place {
            return Err(CrlError::Structure("index records need merging"));
        }
        let prefix = header.prefix();
        let mut sum = Sha256::new();
        sum.update(prefix);
        let total = self.count * (self.width + 1 + DATE_WIDTH) as u64;
        let mut buf = vec![0u8; OUT_BUF];
        let mut done = 0u64;
        while done < total {
            // At most OUT_BUF.
            let n = (total - done).min(OUT_BUF as u64) as usize;
            spill.read_at(HEADER_LEN as u64 + done, &mut buf[..n])?;
            sum.update(&buf[..n]);
            done += n as u64;
        }
        spill.write_at(0, &header.with_integrity(sum.finalize().into()))
    }

    /// Merge the runs of `spill` into `out` (header first), at the final width.
    pub(super) fn merge_into(
        &self,
        spill: &impl Storage,
        out: &mut impl Storage,
        header: &IndexHeader,
    ) -> Result<(), CrlError> {
        if self.width <= 8 {
            self.merge_keyed::<u64>(spill, out, header)
        } else {
            self.merge_keyed::<Key>(spill, out, header)
        }
    }

    fn merge_keyed<K: MergeKey>(
        &self,
        spill: &impl Storage,
        out: &mut impl Storage,
        header: &IndexHeader,
    ) -> Result<(), CrlError> {
        let w = self.width;
        let prefix = header.prefix();
        let mut sum = Sha256::new();
        sum.update(prefix);
        let mut readers: Vec<RunReader> = self.runs.iter().map(RunReader::new).collect();
        let mut heads = BinaryHeap::with_capacity(readers.len());
        let mut values = vec![(0u8, [0u8; 4]); readers.len()];
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some((key, reason, date)) = r.next::<K>(spill)? {
                values[i] = (reason, date);
                heads.push(Reverse((key, i)));
            }
        }
        let mut buf = Vec::with_capacity(OUT_BUF);
        let mut offset = HEADER_LEN as u64;
        let mut prev: Option<K> = None;
        // The smallest head is taken and, while its run has more, replaced in place (one
        // sift instead of a pop and a push).
        while let Some(mut top) = heads.peek_mut() {
            let Reverse((key, i)) = *top;
            if prev == Some(key) {
                return Err(CrlError::DuplicateSerial { serial: key.hex() });
            }
            prev = Some(key);
            let (reason, date) = values[i];
            key.put(w, &mut buf);
            buf.push(reason);
            buf.extend_from_slice(&date);
            if buf.len() + w + 1 + DATE_WIDTH > OUT_BUF {
                sum.update(&buf);
                out.write_at(offset, &buf)?;
                offset += buf.len() as u64;
                buf.clear();
            }
            match readers.get_mut(i) {
                Some(r) => match r.next::<K>(spill)? {
                    Some((key, reason, date)) => {
                        values[i] = (reason, date);
                        *top = Reverse((key, i));
                    }
                    None => {
                        PeekMut::pop(top);
                    }
                },
                None => {
                    PeekMut::pop(top);
                }
            }
        }
        sum.update(&buf);
        out.write_at(offset, &buf)?;
        out.write_at(0, &header.with_integrity(sum.finalize().into()))
    }
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

    #[test]
    fn a_run_never_holds_more_than_run_bytes() {
        // Serials growing wider as they come (each widening re-lays the run), out of order.
        let run_bytes = 4096;
        let mut b = IndexBuilder::with_run_bytes(run_bytes);
        let mut spill = Vec::new();
        let mut most = 0;
        for i in 0..20_000u32 {
            // Unique: i times an odd number is a permutation of u32.
            let mut serial = vec![1u8; (i as usize / 700).min(28)];
            serial.extend_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
            b.push(&mut spill, &serial, 3, i).unwrap();
            most = most.max(b.run.capacity());
        }
        assert!(most <= run_bytes, "{most}");
        assert!(b.scratch.capacity() <= run_bytes);
        let runs = b.finish(&mut spill).unwrap();
        assert_eq!(runs.count(), 20_000);
        assert_eq!(runs.width(), 32);
        // A large run (4.5 MB, one run) grows by at most 1 MiB beyond what it holds.
        let mut b = IndexBuilder::new();
        for i in 0..500_000u32 {
            b.push(&mut spill, &i.to_be_bytes(), 3, i).unwrap();
        }
        assert!(b.run.capacity() <= b.run.len() + (1 << 20));
    }

    #[test]
    fn radix_sort_orders_as_comparison_does() {
        let mut x = 5u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for w in 1..=8usize {
            let rec = w + 1 + DATE_WIDTH;
            for n in [0usize, 1, 2, 255, 4000] {
                let mut records = Vec::new();
                let mut seen = std::collections::HashSet::new();
                while seen.len() < n.min(if w == 1 { 256 } else { usize::MAX }) {
                    // Leading bytes often equal (passes skipped), the rest random.
                    let mut k: Vec<u8> = (0..w).map(|_| next() as u8).collect();
                    if w > 2 {
                        k[0] = 0x10;
                    }
                    if seen.insert(k.clone()) {
                        records.extend_from_slice(&k);
                        records.push(next() as u8);
                        records.extend_from_slice(&(next() as u32).to_le_bytes());
                    }
                }
                let mut by_cmp = records.clone();
                sort_records(&mut by_cmp, w, rec).unwrap();
                let mut scratch = Vec::new();
                sort_run(&mut records, &mut scratch, w, rec).unwrap();
                assert!(records == by_cmp, "w {w}, n {n}");
                // A duplicate is still found.
                if records.len() >= 2 * rec {
                    let first = records[..rec].to_vec();
                    records[rec..2 * rec].copy_from_slice(&first);
                    records.rotate_left(rec);
                    assert!(matches!(
                        sort_run(&mut records, &mut scratch, w, rec),
                        Err(CrlError::DuplicateSerial { .. })
                    ));
                }
            }
        }
    }
}
