//! CRL benchmark driver (see scripts/bench-crl.sh and BENCHMARKS.md). Not a test.
//!
//!   bench_crl gen PKI_DIR OUT.crl N [shuffled]
//!                                         write an N-entry CRL signed by PKI_DIR's sign_root_g2,
//!                                         sorted by serial or (`shuffled`) in random order
//!   bench_crl import IN.crl CRL_DIR ANCHOR_DIR
//!   bench_crl lookup CRL_DIR PROBES       p50/p99 latency of CrlIndex::find over random serials

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/pki_support/crlgen.rs"]
mod crlgen;

use std::path::Path;
use std::time::Instant;

use jpkid::pki::crl::{self, CrlIndex, CrlStore};
use jpkid::pki::{Hierarchy, TrustAnchors};

/// xorshift64*: deterministic, dependency-free randomness for the generator and the probes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

const BASE: u64 = 0x1000_0000;

fn generate(pki: &Path, out: &Path, n: u64, shuffled: bool) {
    let t0 = Instant::now();
    let root = std::fs::read(pki.join("sign_root_g2.der")).unwrap();
    let key = std::fs::read(pki.join("sign_root_g2.pk8.der")).unwrap();
    let now = 1_790_000_000i64;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut enc = Vec::with_capacity(n as usize * 37);
    // The serials' order: ascending, or a random permutation (Fisher-Yates).
    let mut order: Vec<u64> = (0..if shuffled { n } else { 0 }).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    for k in 0..n {
        let i = if shuffled { order[k as usize] } else { k };
        let serial = BASE + 7 * i + rng.next() % 7; // 4-byte serials for n up to ~38 M
        let date = now - (rng.next() % (5 * 365 * 86_400)) as i64;
        let reason = match rng.next() % 100 {
            0..80 => Some(3u8),
            80..94 => Some(5),
            94..98 => Some(4),
            98 => Some(1),
            _ => Some(6),
        };
        crlgen::encode_entry(
            &mut enc,
            &crlgen::CrlEntry {
                serial: (serial as u32).to_be_bytes().to_vec(),
                date,
                reason,
            },
        );
    }
    let spec = crlgen::CrlSpec {
        issuer_cert_der: &root,
        key_pk8_der: &key,
        this_update: now,
        next_update: Some(now + 86_400),
        crl_number: 1,
        aki: true,
    };
    let crl = crlgen::build_crl_from_encoded(&spec, &enc);
    drop(enc);
    std::fs::write(out, &crl).unwrap();
    println!(
        "generated {n} entries, {} bytes ({:.1} B/entry) in {:.2} s",
        crl.len(),
        crl.len() as f64 / n as f64,
        t0.elapsed().as_secs_f64()
    );
}

fn import(input: &Path, crl_dir: &Path, anchor_dir: &Path) {
    let anchors = TrustAnchors::load(Hierarchy::Test, anchor_dir).unwrap();
    std::fs::create_dir_all(crl_dir).unwrap();
    let t0 = Instant::now();
    let r = crl::import(input, crl_dir, &anchors).unwrap();
    let dt = t0.elapsed();
    let size = std::fs::metadata(&r.index_path).unwrap().len();
    println!(
        "import: {} entries, W={}, in {:.3} s; index {} bytes ({:.2} B/entry)",
        r.entries,
        r.serial_width,
        dt.as_secs_f64(),
        size,
        size as f64 / r.entries as f64
    );
}

fn lookup(crl_dir: &Path, probes: usize) {
    let t0 = Instant::now();
    let store = CrlStore::open(crl_dir).unwrap();
    let path = std::fs::read_dir(crl_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "crlidx"))
        .unwrap();
    let index = CrlIndex::load(&path).unwrap();
    println!("open+check index: {:.3} s", t0.elapsed().as_secs_f64());
    let n = index.header().count;
    let key = index.header().key_id.clone();
    let mut rng = Rng(42);
    let serials: Vec<[u8; 4]> = (0..probes)
        .map(|_| ((BASE + rng.next() % (7 * n)) as u32).to_be_bytes())
        .collect();
    let mut lat = Vec::with_capacity(probes);
    let mut hits = 0usize;
    for s in &serials {
        let t = Instant::now();
        let r = std::hint::black_box(index.find(std::hint::black_box(s)));
        lat.push(t.elapsed().as_nanos() as u64);
        hits += usize::from(r.is_some());
    }
    // Timer overhead, to report alongside.
    let mut over = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let t = Instant::now();
        over.push(std::hint::black_box(t.elapsed().as_nanos() as u64));
    }
    let t = Instant::now();
    for s in &serials {
        std::hint::black_box(index.find(std::hint::black_box(s)));
    }
    let mean_batch = t.elapsed().as_nanos() as f64 / probes as f64;
    // Through the store (includes the stat() that detects a replaced file).
    let t = Instant::now();
    for s in serials.iter().take(100_000) {
        std::hint::black_box(store.lookup(&key, s, 1_790_000_000, 1_790_000_000, false));
    }
    let store_mean = t.elapsed().as_nanos() as f64 / 100_000f64;
    lat.sort_unstable();
    over.sort_unstable();
    let p = |v: &[u64], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    println!(
        "lookup over {probes} random probes ({hits} hits): p50 {} ns, p99 {} ns (timer overhead p50 {} ns); \
         batch mean {mean_batch:.0} ns; CrlStore::lookup mean {store_mean:.0} ns",
        p(&lat, 0.5),
        p(&lat, 0.99),
        p(&over, 0.5)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") => generate(
            Path::new(&args[2]),
            Path::new(&args[3]),
            args[4].parse().unwrap(),
            args.get(5).is_some_and(|a| a == "shuffled"),
        ),
        Some("import") => import(
            Path::new(&args[2]),
            Path::new(&args[3]),
            Path::new(&args[4]),
        ),
        Some("lookup") => lookup(Path::new(&args[2]), args[3].parse().unwrap()),
        _ => eprintln!("usage: bench_crl gen|import|lookup …"),
    }
}
