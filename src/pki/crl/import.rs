//! `import`: a CRL file in, read once in chunks (parsed, hashed and indexed as it streams), its
//! signature checked against the trust anchors, an index file out, replaced atomically; and
//! the same work on bytes in memory ([`build_index`]).

use std::fmt;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::index::{INDEX_EXT, IndexBuilder, IndexHeader, MAX_KEY_ID, Runs, Storage};
use super::parse::{CrlParts, CrlReader, CrlSummary, Entry};
use super::store::{CrlDir, TempFile};
use super::{CrlError, io_err};
use crate::pki::roots::{Anchor, TrustAnchors};
use crate::pki::sig;

/// Bytes read from the CRL file at a time.
const CHUNK: usize = 1 << 20;

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

impl Storage for TempFile<'_> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), CrlError> {
        self.file()?
            .write_all_at(data, offset)
            .map_err(io_err(&self.path()))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), CrlError> {
        self.file()?
            .read_exact_at(buf, offset)
            .map_err(io_err(&self.path()))
    }
}

/// The anchor whose key verifies the CRL's signature, chosen by issuer name and AKI.
fn signer<'a>(parts: &CrlParts, anchors: &'a TrustAnchors) -> Result<&'a Anchor, CrlError> {
    let (Some(alg), Some(digest)) = (parts.alg, parts.tbs_digest.as_deref()) else {
        return Err(CrlError::Algorithm(parts.alg_oid.clone()));
    };
    let candidates = anchors.candidates(&parts.issuer_raw, parts.aki.as_deref());
    if candidates.is_empty() {
        return Err(CrlError::UnknownIssuer);
    }
    let anchor = candidates
        .into_iter()
        .find(|a| sig::verify_digest(a.spki(), alg, digest, &parts.signature).is_ok())
        .ok_or(CrlError::BadSignature)?;
    if anchor.key_id().len() > MAX_KEY_ID {
        return Err(CrlError::Unsupported("key identifier longer than 32 bytes"));
    }
    Ok(anchor)
}

fn header_for(parts: &CrlParts, anchor: &Anchor, runs: &Runs) -> IndexHeader {
    IndexHeader {
        // At most MAX_SERIAL (32): longer serials are refused per entry.
        width: runs.width() as u8,
        key_id: anchor.key_id().to_vec(),
        crl_number: parts.crl_number.clone(),
        this_update: parts.this_update,
        next_update: parts.next_update,
        count: runs.count(),
        source_sha256: parts.file_sha256,
    }
}

fn index_name(key_id: &[u8]) -> String {
    format!("{}.{INDEX_EXT}", hex::encode_upper(key_id))
}

/// Import the DER CRL at `path_in` into `crl_dir`.
///
/// `crl_dir` is opened once and checked ([`CrlError::UnsafeDirectory`]: a symbolic link, or
/// writable by a user other than the importing one and root); every file operation is relative
/// to that handle. The CRL is read once, in 1 MiB chunks: each entry is decoded as it completes
/// and added to sorted runs of records in a temporary file of the directory (random name,
/// `O_CREAT|O_EXCL|O_NOFOLLOW`), while the file and the tbsCertList are hashed. At the end the
/// signature is verified against the anchor chosen by issuer name, AKI and signature; only then
/// is the index completed (runs merged if the CRL was not sorted by serial), fsynced and renamed
/// to `<key id>.crlidx`, and the directory fsynced. An index built from a CRL with an older
/// thisUpdate than the one in place is refused ([`CrlError::Older`]). Any error leaves the
/// directory as it was (the temporary files are removed). Imports into one directory run one
/// at a time (an exclusive `flock` on it). A header that announces another length than the
/// file's ([`CrlError::Truncated`]), an unsupported signature algorithm and an issuer name no
/// anchor has are refused after the first piece, not after reading the whole file.
///
/// Memory: bounded, not proportional to the CRL: the 1 MiB read buffer, one element carried
/// between two pieces (≤ 1 MiB), one run of records (≤ 8 MiB, about 930,000 entries with
/// 4-byte serials) and, if they came unsorted, as much scratch to sort it; while merging,
/// 256 KiB per run. Disk:
/// the index's size in the CRL directory, twice while runs are merged.
pub fn import(
    path_in: &Path,
    crl_dir: &Path,
    anchors: &TrustAnchors,
) -> Result<ImportReport, CrlError> {
    import_with(path_in, crl_dir, anchors, IndexBuilder::new())
}

/// Two cRLNumbers (big-endian magnitudes) in numeric order.
fn number_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let trim = |x: &[u8]| -> Vec<u8> { x.iter().copied().skip_while(|&b| b == 0).collect() };
    let (a, b) = (trim(a), trim(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

/// [`import`] with this builder (tests: small runs, to take the merge path on files).
fn import_with(
    path_in: &Path,
    crl_dir: &Path,
    anchors: &TrustAnchors,
    mut builder: IndexBuilder,
) -> Result<ImportReport, CrlError> {
    let dir = CrlDir::open(crl_dir)?;
    let _lock = dir.lock()?;
    let mut input = std::fs::File::open(path_in).map_err(io_err(path_in))?;
    let meta = input.metadata().map_err(io_err(path_in))?;
    // A pipe's size says nothing of its length: only a regular file's is checked up front.
    let file_len = meta.is_file().then_some(meta.len());
    let mut spill = dir.create_temp("import")?;
    let parts = stream(
        &mut input,
        file_len,
        path_in,
        CHUNK,
        &mut |e| builder.push(&mut spill, e.serial, e.reason, e.date),
        |reader| fail_fast(reader, anchors),
    )?;
    let anchor = signer(&parts, anchors)?;
    let runs = builder.finish(&mut spill)?;
    let header = header_for(&parts, anchor, &runs);
    let name = index_name(&header.key_id);
    if let Some(h) = dir.existing_header(&name)? {
        if h.this_update > header.this_update {
            return Err(CrlError::Older {
                existing: h.this_update,
                new: header.this_update,
            });
        }
        // cRLNumber only grows (RFC 5280 §5.2.3): a lower one is a replay of an older list.
        if number_order(&h.crl_number, &header.crl_number) == std::cmp::Ordering::Greater {
            return Err(CrlError::LowerNumber {
                existing: hex::encode_upper(&h.crl_number),
                new: hex::encode_upper(&header.crl_number),
            });
        }
    }
    let index = if runs.in_place() {
        runs.finish_in_place(&mut spill, &header)?;
        spill
    } else {
        let mut out = dir.create_temp("merge")?;
        runs.merge_into(&spill, &mut out, &header)?;
        drop(spill);
        out
    };
    let index_path = dir.commit(index, &name)?;
    Ok(ImportReport {
        index_path,
        issuer_key_id: hex::encode_upper(&header.key_id),
        root: anchor.sha256_hex(),
        crl_number: hex::encode_upper(&header.crl_number),
        this_update: header.this_update,
        next_update: header.next_update,
        entries: header.count,
        serial_width: header.width,
        source_sha256: hex::encode_upper(header.source_sha256),
    })
}

/// Read `input` to its end in pieces of at most `chunk` bytes through a [`CrlReader`], handing
/// each entry to `sink` and calling `check` after each piece; the CRL's fields at the end.
/// `len` is the input's length if known. I/O errors name `path`.
fn stream<R, F>(
    input: &mut R,
    len: Option<u64>,
    path: &Path,
    chunk: usize,
    sink: &mut F,
    mut check: impl FnMut(&CrlReader) -> Result<(), CrlError>,
) -> Result<CrlParts, CrlError>
where
    R: Read,
    F: FnMut(Entry<'_>) -> Result<(), CrlError>,
{
    let mut reader = CrlReader::new();
    if let Some(len) = len {
        reader.expect_len(len);
    }
    let mut buf = vec![0u8; chunk.max(1)];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(CrlError::Io {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        };
        reader.feed(&buf[..n], sink)?;
        check(&reader)?;
    }
    reader.finish()
}

/// What can be refused before the rest of a large file is read (besides a length that does
/// not match the file's, which the reader refuses): an unsupported signature algorithm, an
/// issuer name no anchor has.
fn fail_fast(reader: &CrlReader, anchors: &TrustAnchors) -> Result<(), CrlError> {
    if let Some(Err(oid)) = reader.algorithm() {
        return Err(CrlError::Algorithm(oid.to_owned()));
    }
    if let Some(issuer) = reader.issuer()
        && !anchors.has_subject(issuer)
    {
        return Err(CrlError::UnknownIssuer);
    }
    Ok(())
}

/// [`inspect`](super::inspect) of a CRL read from `input` as `import` reads a file (in
/// pieces, within bounded memory); I/O errors are reported for the path `<input>`.
pub fn inspect_reader(mut input: impl Read) -> Result<CrlSummary, CrlError> {
    let parts = stream(
        &mut input,
        None,
        Path::new("<input>"),
        CHUNK,
        &mut |_| Ok(()),
        |_| Ok(()),
    )?;
    Ok(CrlSummary::from(&parts))
}

/// An index built in memory.
pub struct BuiltIndex {
    root: String,
    header: IndexHeader,
    bytes: Vec<u8>,
}

impl fmt::Debug for BuiltIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltIndex")
            .field("header", &self.header)
            .field("root", &self.root)
            .finish()
    }
}

impl BuiltIndex {
    pub fn header(&self) -> &IndexHeader {
        &self.header
    }
    /// The index file's bytes (header + records).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

/// Parse, verify and index CRL bytes: the same work as [`import`] in memory (for tests and
/// fuzzing; `import` never holds the CRL or the index).
pub fn build_index(data: &[u8], anchors: &TrustAnchors) -> Result<BuiltIndex, CrlError> {
    build_index_with(data, anchors, IndexBuilder::new(), CHUNK)
}

/// [`build_index`] with this builder, fed `chunk` bytes at a time (tests).
fn build_index_with(
    data: &[u8],
    anchors: &TrustAnchors,
    mut builder: IndexBuilder,
    chunk: usize,
) -> Result<BuiltIndex, CrlError> {
    let mut spill: Vec<u8> = Vec::new();
    let parts = stream(
        &mut &data[..],
        Some(data.len() as u64),
        Path::new("<memory>"),
        chunk,
        &mut |e| builder.push(&mut spill, e.serial, e.reason, e.date),
        |reader| fail_fast(reader, anchors),
    )?;
    let anchor = signer(&parts, anchors)?;
    let runs = builder.finish(&mut spill)?;
    let header = header_for(&parts, anchor, &runs);
    let bytes = if runs.in_place() {
        runs.finish_in_place(&mut spill, &header)?;
        spill
    } else {
        let mut out = Vec::new();
        runs.merge_into(&spill, &mut out, &header)?;
        out
    };
    Ok(BuiltIndex {
        root: anchor.sha256_hex(),
        header,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::crlgen;
    use super::super::index::{RUN_BYTES, sort_records};
    use super::super::parse::{crl_extensions, read_entry};
    use super::super::testing::{Rng, anchors, crl_g2, crl_g2_encoded, entries, fixture};
    use super::*;
    use crate::pki::derwalk::{self, *};
    use crate::pki::sig::SigAlg;

    /// The import as it was before it streamed (commit ef572ab, `build_index`): the whole CRL
    /// in memory and split into slices, the signature checked over the tbsCertList's bytes,
    /// the entries into one record array, sorted, and the header encoded over it.
    /// The oracle the streaming import must equal byte for byte.
    fn old_build_index(data: &[u8], anchors: &TrustAnchors) -> Result<Vec<u8>, CrlError> {
        let (outer, rest) = expect(data, TAG_SEQUENCE)?;
        if !rest.is_empty() {
            return Err(CrlError::Structure("trailing bytes after CertificateList"));
        }
        let (tbs, r) = expect(outer.content, TAG_SEQUENCE)?;
        let (alg, r) = expect(r, TAG_SEQUENCE)?;
        let (sigval, r) = expect(r, TAG_BIT_STRING)?;
        assert!(r.is_empty());
        let signature = match sigval.content.split_first() {
            Some((0, s)) => s,
            _ => return Err(CrlError::Structure("signature BIT STRING has unused bits")),
        };
        let (oid, _) = expect(alg.content, TAG_OID)?;
        let alg_oid = der::asn1::ObjectIdentifier::from_bytes(oid.content)
            .unwrap()
            .to_string();
        let mut r = tbs.content;
        if peek_tag(r) == Some(TAG_INTEGER) {
            r = read_tlv(r)?.1;
        }
        let (inner_alg, rest) = expect(r, TAG_SEQUENCE)?;
        assert_eq!(inner_alg.raw, alg.raw);
        let (issuer, rest) = expect(rest, TAG_SEQUENCE)?;
        let (this_tlv, r) = read_tlv(rest)?;
        let this_update = derwalk::time_to_unix(&this_tlv)?;
        let (next_tlv, mut r) = read_tlv(r)?;
        let next_update = derwalk::time_to_unix(&next_tlv)?;
        let mut list: &[u8] = &[];
        if peek_tag(r) == Some(TAG_SEQUENCE) {
            let (l, rest) = read_tlv(r)?;
            list = l.content;
            r = rest;
        }
        let (wrap, _) = expect(r, 0xA0)?;
        let (exts, _) = expect(wrap.content, TAG_SEQUENCE)?;
        let (aki, crl_number) = crl_extensions(exts.content)?;

        let alg = SigAlg::from_oid(&alg_oid).ok_or(CrlError::Algorithm(alg_oid))?;
        let anchor = anchors
            .candidates(issuer.raw, aki)
            .into_iter()
            .find(|a| sig::verify(a.spki(), alg, tbs.raw, signature).is_ok())
            .ok_or(CrlError::BadSignature)?;

        let mut decoded = Vec::new();
        let (mut l, mut n) = (list, 0);
        while !l.is_empty() {
            n += 1;
            let (e, rest) = read_entry(l, n)?;
            decoded.push(e);
            l = rest;
        }
        let count = decoded.len() as u64;
        let width = decoded
            .iter()
            .map(|e| e.serial.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let rec = width + 1 + 4;
        let mut records = Vec::new();
        for e in &decoded {
            records.extend(std::iter::repeat_n(0, width - e.serial.len()));
            records.extend_from_slice(e.serial);
            records.push(e.reason);
            records.extend_from_slice(&e.date.to_le_bytes());
        }
        sort_records(&mut records, width, rec)?;
        let header = IndexHeader {
            width: width as u8,
            key_id: anchor.key_id().to_vec(),
            crl_number: crl_number.to_vec(),
            this_update,
            next_update,
            count,
            source_sha256: rsa::sha2::Sha256::digest(data).into(),
        };
        Ok([header.encode(&records), records].concat())
    }

    use rsa::sha2::Digest;

    /// Streaming builds of `crl` at these chunk and run sizes all equal the old path's index.
    fn assert_as_before(crl: &[u8], chunks: &[usize], runs: &[usize]) {
        let anchors = anchors();
        let old = old_build_index(crl, &anchors).unwrap();
        for &chunk in chunks {
            for &run in runs {
                let new = build_index_with(crl, &anchors, IndexBuilder::with_run_bytes(run), chunk)
                    .unwrap_or_else(|e| panic!("chunk {chunk}, run {run}: {e}"));
                assert!(
                    new.to_bytes() == old,
                    "chunk {chunk}, run {run}: index differs from the in-memory path's"
                );
            }
        }
        assert_eq!(build_index(crl, &anchors).unwrap().to_bytes(), old);
    }

    #[test]
    fn fixture_crls_index_byte_identical_to_the_in_memory_path() {
        for f in [
            "sign_g1.crl",
            "sign_g2.crl",
            "sign_g2_stale.crl",
            "auth_g1.crl",
            "auth_g2.crl",
        ] {
            let crl = fixture(f);
            let chunks: Vec<usize> = (1..=crl.len().min(40)).chain([97, 500, CHUNK]).collect();
            assert_as_before(&crl, &chunks, &[64, 100, RUN_BYTES]);
        }
    }

    #[test]
    fn generated_crls_index_byte_identical_to_the_in_memory_path() {
        // Sorted (the usual case: runs in order, finished in place), shuffled (runs merged),
        // serials of many widths (runs widened), and no entries at all.
        let cases = [
            crl_g2(&entries(3000, 4, true, 1)),
            crl_g2(&entries(3000, 4, false, 2)),
            crl_g2(&entries(2000, 20, true, 3)),
            crl_g2(&entries(2000, 20, false, 4)),
            crl_g2(&[]),
        ];
        for crl in &cases {
            assert_as_before(crl, &[1, 13, 4096, CHUNK], &[64, 1000, 50_000, RUN_BYTES]);
        }
        // A wider serial after a full run of narrow ones (the first runs must be widened
        // when merged), and serial zero.
        let mut e = entries(500, 3, true, 5);
        e.insert(
            0,
            crlgen::CrlEntry {
                serial: vec![0],
                date: 1_700_000_000,
                reason: None,
            },
        );
        e.push(crlgen::CrlEntry {
            serial: vec![0x7F; 19],
            date: 1_700_000_000,
            reason: Some(1),
        });
        assert_as_before(&crl_g2(&e), &[7, CHUNK], &[64, 300, RUN_BYTES]);
    }

    /// An ECDSA CRL over `entries_der`, by the committed P-256 or P-384 test root.
    fn ec_crl(p384: bool, entries_der: &[u8]) -> Vec<u8> {
        use crlgen::tlv;
        use p256::pkcs8::DecodePrivateKey;
        let (root, key) = if p384 {
            ("ec/p384_root.der", "ec/keys/p384_root.pk8.der")
        } else {
            ("ec/p256_root.der", "ec/keys/p256_root.pk8.der")
        };
        let root = fixture(root);
        let key = fixture(key);
        let (_, cert) = x509_parser::parse_x509_certificate(&root).unwrap();
        let alg = tlv(
            0x30,
            &tlv(
                0x06,
                &[
                    0x2A,
                    0x86,
                    0x48,
                    0xCE,
                    0x3D,
                    0x04,
                    0x03,
                    if p384 { 3 } else { 2 },
                ],
            ),
        );
        let mut t = tlv(0x02, &[1]);
        t.extend_from_slice(&alg);
        t.extend_from_slice(cert.subject().as_raw());
        t.extend(crlgen::time(1_790_000_000));
        t.extend(crlgen::time(1_790_086_400));
        t.extend(tlv(0x30, entries_der));
        let num = crlgen::extension(&[0x55, 0x1D, 0x14], false, &crlgen::integer(&[5]));
        t.extend(tlv(0xA0, &tlv(0x30, &num)));
        let tbs = tlv(0x30, &t);
        let sig = if p384 {
            use p384::ecdsa::signature::Signer;
            let k = p384::ecdsa::SigningKey::from_pkcs8_der(&key).unwrap();
            let s: p384::ecdsa::Signature = k.sign(&tbs);
            s.to_der().as_bytes().to_vec()
        } else {
            use p256::ecdsa::signature::Signer;
            let k = p256::ecdsa::SigningKey::from_pkcs8_der(&key).unwrap();
            let s: p256::ecdsa::Signature = k.sign(&tbs);
            s.to_der().as_bytes().to_vec()
        };
        let mut body = tbs;
        body.extend_from_slice(&alg);
        body.extend(tlv(0x03, &[&[0u8][..], &sig].concat()));
        tlv(0x30, &body)
    }

    #[test]
    fn ecdsa_crls_are_verified_over_the_streamed_digest() {
        let mut enc = Vec::new();
        for e in entries(300, 8, false, 6) {
            crlgen::encode_entry(&mut enc, &e);
        }
        for p384 in [false, true] {
            let crl = ec_crl(p384, &enc);
            assert_as_before(&crl, &[1, 50, CHUNK], &[64, RUN_BYTES]);
            // One bit of the TBS changed: the digest no longer matches the signature.
            let mut bad = crl.clone();
            let at = bad.len() / 2;
            bad[at] ^= 0x01;
            assert!(matches!(
                build_index(&bad, &anchors()),
                Err(CrlError::BadSignature | CrlError::Der(_) | CrlError::Structure(_))
            ));
            // The signature itself changed.
            let mut bad = crl.clone();
            let last = bad.len() - 3;
            bad[last] ^= 0x01;
            assert!(matches!(
                build_index(&bad, &anchors()),
                Err(CrlError::BadSignature)
            ));
        }
    }

    #[test]
    fn a_serial_listed_twice_is_found_across_runs() {
        let mut e = entries(400, 4, true, 7);
        let dup = e[123].serial.clone();
        // Once in order (the duplicate in the next record or the next run), once shuffled.
        e.insert(
            124,
            crlgen::CrlEntry {
                serial: dup.clone(),
                date: 1_700_000_000,
                reason: None,
            },
        );
        let sorted = crl_g2(&e);
        let mut rng = Rng(8);
        for i in (1..e.len()).rev() {
            e.swap(i, (rng.next() as usize) % (i + 1));
        }
        let shuffled = crl_g2(&e);
        for crl in [&sorted, &shuffled] {
            for run in [64, 9 * 124, 9 * 125, 1000, RUN_BYTES] {
                let r = build_index_with(crl, &anchors(), IndexBuilder::with_run_bytes(run), 100);
                assert!(
                    matches!(&r, Err(CrlError::DuplicateSerial { serial }) if *serial == hex::encode_upper(&dup)),
                    "run {run}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn import_writes_the_same_index_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let anchors = anchors();
        for (i, crl) in [
            crl_g2(&entries(2000, 4, true, 9)),
            crl_g2(&entries(2000, 12, false, 10)),
        ]
        .iter()
        .enumerate()
        {
            let old = old_build_index(crl, &anchors).unwrap();
            let input = dir.path().join(format!("{i}.crl"));
            std::fs::write(&input, crl).unwrap();
            for run in [64, 5000, RUN_BYTES] {
                let out = dir.path().join(format!("out-{i}-{run}"));
                std::fs::create_dir(&out).unwrap();
                let r =
                    import_with(&input, &out, &anchors, IndexBuilder::with_run_bytes(run)).unwrap();
                assert!(
                    std::fs::read(&r.index_path).unwrap() == old,
                    "{i} run {run}"
                );
                // Only the index (and the import lock) is left: the spill and merge files
                // are gone.
                let mut names: Vec<_> = std::fs::read_dir(&out)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                names.sort();
                assert_eq!(names.len(), 2, "{i} run {run}: {names:?}");
                assert_eq!(names[0], ".lock", "{i} run {run}");
            }
        }
    }

    #[test]
    fn a_negative_or_empty_serial_is_refused_by_name() {
        let mut enc = Vec::new();
        crlgen::encode_entry(
            &mut enc,
            &crlgen::CrlEntry {
                serial: vec![0x10],
                date: 1_700_000_000,
                reason: None,
            },
        );
        let good = enc.clone();
        let date = crlgen::time(1_700_000_000);
        // INTEGER -255 (FF 01) as the second entry.
        let neg = crlgen::tlv(0x30, &[&[0x02, 0x02, 0xFF, 0x01][..], &date].concat());
        enc.extend_from_slice(&neg);
        let r = build_index(&crl_g2_encoded(&enc), &anchors());
        assert!(
            matches!(&r, Err(CrlError::NegativeSerial { entry: 2, serial }) if serial == "FF01"),
            "{r:?}"
        );
        // An INTEGER without content as the first entry.
        let empty = crlgen::tlv(0x30, &[&[0x02, 0x00][..], &date].concat());
        let r = build_index(&crl_g2_encoded(&[empty, good.clone()].concat()), &anchors());
        assert!(
            matches!(r, Err(CrlError::EmptySerial { entry: 1 })),
            "{r:?}"
        );
        // Serial zero is not negative: listed (as the empty magnitude).
        let zero = crlgen::tlv(0x30, &[&[0x02, 0x01, 0x00][..], &date].concat());
        let built = build_index(&crl_g2_encoded(&[zero, good].concat()), &anchors()).unwrap();
        let index = super::super::CrlIndex::from_bytes(built.to_bytes()).unwrap();
        assert!(index.find(&[]).is_some());
        assert!(index.find(&[0x10]).is_some());
        assert!(index.find(&[0xFF, 0x01]).is_none());
    }
}
