//! The streaming CRL import: its memory does not grow with the file (measured by a counting
//! allocator, not by time), bad files of every kind are refused by name and change nothing in
//! the CRL directory, and entries out of serial order give the same records as sorted ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use jpkid::pki::crl::{self, CrlError, CrlIndex, HEADER_LEN};
use pki_support::crlgen::{self, CrlEntry, CrlSpec};
use pki_support::*;

/// Counts the heap bytes the current thread holds while `MEASURING` is set, and their peak.
/// Per thread, so that the other tests of this binary running beside it do not count.
struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = MEASURING.try_with(|m| {
        if m.get() {
            let held = HELD.get() + delta;
            HELD.set(held);
            PEAK.set(PEAK.get().max(held));
        }
    });
}

// SAFETY: every call is passed on to the system allocator unchanged; the counting only reads
// sizes and touches thread-local cells that need no allocation.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The result of `f` and the peak of heap bytes the thread held above its level at the start.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    HELD.set(0);
    PEAK.set(0);
    MEASURING.set(true);
    let r = f();
    MEASURING.set(false);
    (r, PEAK.get().max(0) as usize)
}

const T0: i64 = 1_790_000_000;

/// `n` entries as the benchmark makes them: 4-byte serials `0x10000000 + 7i + (0..7)`,
/// ascending, reasons on almost all, dates over five years.
fn bench_entries(n: u64) -> Vec<CrlEntry> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..n)
        .map(|i| CrlEntry {
            serial: ((0x1000_0000 + 7 * i + next() % 7) as u32)
                .to_be_bytes()
                .to_vec(),
            date: T0 - (next() % (5 * 365 * 86_400)) as i64,
            reason: (next() % 20 != 0).then_some([3u8, 5, 4, 1, 6][(next() % 5) as usize]),
        })
        .collect()
}

/// A CRL by sign root g2 with these entries (in this order), thisUpdate `this_update`.
fn crl(entries: &[CrlEntry], this_update: i64) -> Vec<u8> {
    let root = read("sign_root_g2.der");
    let key = read("sign_root_g2.pk8.der");
    let spec = CrlSpec {
        issuer_cert_der: &root,
        key_pk8_der: &key,
        this_update,
        next_update: Some(this_update + 86_400),
        crl_number: 1,
        aki: true,
    };
    crlgen::build_crl(&spec, entries)
}

fn crl_dir(root: &Path) -> std::path::PathBuf {
    let d = root.join("crl");
    std::fs::create_dir(&d).unwrap();
    d
}

/// The names in `dir` and the bytes of each file.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The import holds a read buffer and the index records, never the CRL: for a 300,000-entry
/// CRL (11 MB) its heap peak stays under half the file and within the budget of
/// 12 bytes per entry (+ 3 MiB for the read and write buffers). Reading the whole file, as the
/// import did before it streamed, fails both.
#[test]
fn import_memory_does_not_grow_with_the_file() {
    let n = 300_000u64;
    let dir = tempfile::tempdir().unwrap();
    let out = crl_dir(dir.path());
    let input = dir.path().join("big.crl");
    let data = crl(&bench_entries(n), T0);
    std::fs::write(&input, &data).unwrap();
    let file_len = data.len();
    drop(data);
    let anchors = anchors();
    let (report, peak) = peak_heap(|| crl::import(&input, &out, &anchors).unwrap());
    assert_eq!(report.entries, n);
    let budget = (3 << 20) + 12 * n as usize;
    println!(
        "import of {n} entries ({file_len} bytes): heap peak {peak} bytes (budget {budget}, half the file {})",
        file_len / 2
    );
    assert!(peak < file_len / 2, "peak {peak} of a {file_len}-byte file");
    assert!(peak <= budget, "peak {peak} > {budget}");
    // The same index as from memory.
    let built = crl::build_index(&std::fs::read(&input).unwrap(), &anchors).unwrap();
    assert!(std::fs::read(&report.index_path).unwrap() == built.to_bytes());
}

/// Bad files are refused with a named error, and the CRL directory keeps exactly what it had:
/// the index in place, and no temporary file.
#[test]
fn bad_files_are_refused_by_name_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = crl_dir(dir.path());
    let anchors = anchors();
    let entries = bench_entries(20_000);
    let good = dir.path().join("good.crl");
    std::fs::write(&good, crl(&entries, T0)).unwrap();
    crl::import(&good, &out, &anchors).unwrap();
    let before = snapshot(&out);
    // The index and the import lock.
    assert_eq!(
        before.len(),
        2,
        "{:?}",
        before.iter().map(|f| &f.0).collect::<Vec<_>>()
    );

    let newer = crl(&entries, T0 + 3600);
    let check = |name: &str, bytes: &[u8], ok: &dyn Fn(&CrlError) -> bool| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = crl::import(&p, &out, &anchors).unwrap_err();
        assert!(ok(&e), "{name}: {e:?}");
        assert!(
            snapshot(&out) == before,
            "{name}: the CRL directory changed"
        );
    };
    // Truncated (an interrupted download): named with both lengths once the outer header
    // (tag, 0x83, three length bytes) is there.
    assert_eq!(newer[1], 0x83);
    for cut in [1, 4, 5, 100, newer.len() / 2, newer.len() - 1] {
        check("cut.crl", &newer[..cut], &|e| match e {
            CrlError::Truncated { declared, read } => {
                *declared == newer.len() as u64 && *read == cut as u64
            }
            CrlError::Der(_) => cut < 5,
            _ => false,
        });
    }
    // Trailing bytes.
    check("tail.crl", &[&newer[..], b"\n"].concat(), &|e| {
        matches!(e, CrlError::Structure(_))
    });
    // Garbage.
    let mut x = 7u32;
    let junk: Vec<u8> = (0..100_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect();
    check("junk.crl", &junk, &|e| {
        matches!(e, CrlError::Der(_) | CrlError::Structure(_))
    });
    // A wrong signature (its last byte changed), and an entry changed under the signature.
    let mut bad_sig = newer.clone();
    *bad_sig.last_mut().unwrap() ^= 1;
    check("sig.crl", &bad_sig, &|e| {
        matches!(e, CrlError::BadSignature)
    });
    let mut bad_tbs = newer.clone();
    let at = bad_tbs.len() / 2;
    // A revocation date (UTCTime YYMMDDhhmmssZ): its year moves by one, still a valid time.
    let i = (at..)
        .find(|&i| {
            bad_tbs[i..i + 2] == [0x17, 0x0D]
                && bad_tbs[i + 2..i + 14].iter().all(u8::is_ascii_digit)
                && bad_tbs[i + 14] == b'Z'
        })
        .unwrap();
    bad_tbs[i + 3] = if bad_tbs[i + 3] == b'1' { b'2' } else { b'1' };
    check("tbs.crl", &bad_tbs, &|e| {
        matches!(e, CrlError::BadSignature)
    });
    // A length far beyond the file, in the outer header and in an entry.
    let huge = [&[0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF][..], &newer[5..]].concat();
    check("huge.crl", &huge, &|e| {
        matches!(e, CrlError::Truncated { .. })
    });
    let mut long_entry = newer.clone();
    let i = (long_entry.len() / 2..)
        .find(|&i| long_entry[i] == 0x30 && long_entry[i + 2] == 0x02)
        .unwrap();
    long_entry[i + 1] = 0x7F;
    check("entry.crl", &long_entry, &|e| {
        matches!(e, CrlError::Structure(_) | CrlError::Der(_))
    });
    // A negative serial (in the middle of the list).
    let mut enc = Vec::new();
    for (k, e) in entries.iter().enumerate() {
        if k == 10_000 {
            let date = crlgen::time(T0 - 86_400);
            enc.extend(crlgen::tlv(
                0x30,
                &[&[0x02, 0x04, 0x90, 0, 0, 1][..], &date].concat(),
            ));
        }
        crlgen::encode_entry(&mut enc, e);
    }
    let root = read("sign_root_g2.der");
    let key = read("sign_root_g2.pk8.der");
    let spec = CrlSpec {
        issuer_cert_der: &root,
        key_pk8_der: &key,
        this_update: T0 + 3600,
        next_update: Some(T0 + 90_000),
        crl_number: 2,
        aki: true,
    };
    check(
        "negative.crl",
        &crlgen::build_crl_from_encoded(&spec, &enc),
        &|e| matches!(e, CrlError::NegativeSerial { entry: 10_001, serial } if serial == "90000001"),
    );
}

/// Entries in any order give the records of the sorted list (sorted in memory in runs of
/// 16 MiB, merged from a temporary file of the CRL directory when there are several).
#[test]
fn entries_out_of_order_give_the_sorted_records() {
    let dir = tempfile::tempdir().unwrap();
    let anchors = anchors();
    let sorted = bench_entries(50_000);
    let mut shuffled: Vec<CrlEntry> = sorted
        .iter()
        .map(|e| CrlEntry {
            serial: e.serial.clone(),
            date: e.date,
            reason: e.reason,
        })
        .collect();
    let mut x = 99u64;
    for i in (1..shuffled.len()).rev() {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        shuffled.swap(i, (x >> 33) as usize % (i + 1));
    }
    let mut records = Vec::new();
    for (name, entries) in [("sorted", &sorted), ("shuffled", &shuffled)] {
        let out = dir.path().join(name);
        std::fs::create_dir(&out).unwrap();
        let p = dir.path().join(format!("{name}.crl"));
        std::fs::write(&p, crl(entries, T0)).unwrap();
        let r = crl::import(&p, &out, &anchors).unwrap();
        let index = CrlIndex::load(&r.index_path).unwrap();
        for e in entries.iter().step_by(97) {
            assert_eq!(index.find(&e.serial).map(|f| f.1), Some(e.date));
        }
        records.push(std::fs::read(&r.index_path).unwrap()[HEADER_LEN..].to_vec());
    }
    assert!(records[0] == records[1]);
}
