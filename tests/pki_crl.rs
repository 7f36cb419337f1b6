//! CRL import and the index store: signature and issuer selection across same-DN generations,
//! reason codes, stale lists, atomic replacement, corrupt indexes, and `verify` using the CRL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use jpkid::pki::crl::{self, CrlAnswer, CrlError, CrlIndex, CrlStore};
use jpkid::pki::{
    self, Purpose, RevocationMode, RevocationPolicy, RevocationReason, RevocationSource,
    VerifyOutcome,
};
use pki_support::crlgen::{self, CrlEntry, CrlSpec, build_crl, idp};
use pki_support::*;

const DAY: i64 = 86_400;

fn entry(serial: u64, date: i64, reason: Option<u8>) -> CrlEntry {
    let b = serial.to_be_bytes();
    let skip = b.iter().position(|&x| x != 0).unwrap_or(7);
    CrlEntry {
        serial: b[skip..].to_vec(),
        date,
        reason,
    }
}

/// A CRL by sign root `gen` listing the `revoked` cert (affiliationChanged) and one entry of
/// every other reason, plus one without reason; deliberately unsorted.
fn crl_g(g: u8, this_update: i64, next_update: i64, aki: bool) -> Vec<u8> {
    let root = read(&format!("sign_root_g{g}.der"));
    let key = read(&format!("sign_root_g{g}.pk8.der"));
    let t = this_update - DAY;
    let mut entries = vec![entry(0x10000005, t, Some(3))];
    for (i, r) in [0u8, 1, 2, 4, 5, 6, 8, 9, 10].iter().enumerate() {
        entries.push(entry(0x20000000 - i as u64, t - i as i64, Some(*r)));
    }
    entries.push(entry(0x0F, t, None));
    entries.push(entry(u64::MAX, t, Some(4))); // widest serial: 8 bytes + sign pad
    let spec = CrlSpec {
        issuer_cert_der: &root,
        key_pk8_der: &key,
        this_update,
        next_update: Some(next_update),
        crl_number: 7,
        aki,
    };
    build_crl(&spec, &entries)
}

/// A CRL by sign root g2 (AKI, cRLNumber `number`, nextUpdate a day after `this_update`) with
/// these entries and `extra` (encoded Extensions) added to its crlExtensions.
fn crl_g2_with(entries: &[CrlEntry], this_update: i64, number: u64, extra: &[u8]) -> Vec<u8> {
    let root = read("sign_root_g2.der");
    let key = read("sign_root_g2.pk8.der");
    let spec = CrlSpec {
        issuer_cert_der: &root,
        key_pk8_der: &key,
        this_update,
        next_update: Some(this_update + DAY),
        crl_number: number,
        aki: true,
    };
    let mut enc = Vec::new();
    for e in entries {
        crlgen::encode_entry(&mut enc, e);
    }
    crlgen::build_crl_with_extensions(&spec, &enc, extra)
}

/// The files of a CRL directory but the import lock (`.lock`, made by the first import).
fn indexes_and_temporaries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != ".lock")
        .count()
}

fn write_tmp(dir: &std::path::Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn openssl_accepts_the_generated_crl() {
    let dir = tempfile::tempdir().unwrap();
    let now = now();
    let p = write_tmp(dir.path(), "g2.crl", &crl_g(2, now, now + DAY, true));
    let out = std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-CAfile"])
        .arg(pki_dir().join("sign_root_g2.pem"))
        .arg("-in")
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("verify OK"));
}

#[test]
fn import_and_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let crl_dir = dir.path().join("crl");
    std::fs::create_dir(&crl_dir).unwrap();
    let a = anchors();
    let sign_ok = read("sign_ok.der");
    let at = mid(&sign_ok);
    let p = write_tmp(dir.path(), "g2.crl", &crl_g(2, at - DAY, at + DAY, true));
    let report = crl::import(&p, &crl_dir, &a).unwrap();
    assert_eq!(report.entries, 12);
    assert_eq!(report.serial_width, 8);
    assert_eq!(report.crl_number, "07");
    assert_eq!(report.issuer_key_id, key_id_hex(&read("sign_root_g2.der")));
    assert!(
        report
            .index_path
            .ends_with(format!("{}.crlidx", report.issuer_key_id))
    );
    // Index size = header + 12 × (8 + 1 + 4).
    assert_eq!(
        std::fs::metadata(&report.index_path).unwrap().len(),
        160 + 12 * 13
    );

    let store = CrlStore::open(&crl_dir).unwrap();
    let policy = RevocationPolicy {
        crl: Some(&store),
        ..RevocationPolicy::new(RevocationMode::Require, now())
    };
    let revoked = read("sign_revoked.der");
    let v = pki::verify(&a, &revoked, Purpose::Sign, at, &policy);
    assert_eq!(
        v.outcome,
        VerifyOutcome::Revoked {
            reason: Some(RevocationReason::AffiliationChanged),
            date: at - 2 * DAY
        }
    );
    assert_eq!(v.details.revocation_source, Some(RevocationSource::Crl));
    assert_eq!(
        v.details.revocation_reason.unwrap().as_str(),
        "affiliationChanged"
    );
    assert_eq!(v.details.revoked_at, Some(at - 2 * DAY));

    let v = pki::verify(&a, &sign_ok, Purpose::Sign, at, &policy);
    assert_eq!(v.outcome, VerifyOutcome::Valid);
    assert_eq!(v.details.revocation_source, Some(RevocationSource::Crl));

    // Expired and listed: expired wins, revocation is not even consulted.
    let (_, na) = validity(&revoked);
    let v = pki::verify(&a, &revoked, Purpose::Sign, na + 1, &policy);
    assert_eq!(v.outcome, VerifyOutcome::Expired);

    // The g1 certificate has no index: revocation unknown (require) / valid (prefer).
    let g1 = read("sign_ok_g1.der");
    assert_eq!(
        pki::verify(&a, &g1, Purpose::Sign, at, &policy).outcome,
        VerifyOutcome::RevocationUnknown
    );

    // Every reason code survives the index; an entry without reason reports None.
    let key = hex::decode(&report.issuer_key_id).unwrap();
    let idx = store.index(&key).unwrap().unwrap();
    for (i, r) in [0u8, 1, 2, 4, 5, 6, 8, 9, 10].iter().enumerate() {
        let serial = (0x20000000u64 - i as u64).to_be_bytes();
        let (reason, _) = idx.find(&serial).unwrap();
        assert_eq!(reason.unwrap().code(), *r);
    }
    assert_eq!(idx.find(&[0x0F]).unwrap().0, None);
    assert_eq!(idx.find(&[0, 0, 0x0F]).unwrap().0, None);
    assert!(idx.find(&u64::MAX.to_be_bytes()).is_some());
    assert!(idx.find(&[0x0E]).is_none());
    assert!(idx.find(&[1; 20]).is_none());
}

#[test]
fn stale_index() {
    let dir = tempfile::tempdir().unwrap();
    let a = anchors();
    let sign_ok = read("sign_ok.der");
    let at = mid(&sign_ok);
    let p = write_tmp(
        dir.path(),
        "old.crl",
        &crl_g(2, at - 3 * DAY, at - DAY, true),
    );
    let crl_dir = dir.path().join("c");
    std::fs::create_dir(&crl_dir).unwrap();
    crl::import(&p, &crl_dir, &a).unwrap();
    let store = CrlStore::open(&crl_dir).unwrap();
    let mut policy = RevocationPolicy {
        crl: Some(&store),
        ..RevocationPolicy::new(RevocationMode::Require, at)
    };
    assert_eq!(
        pki::verify(&a, &sign_ok, Purpose::Sign, at, &policy).outcome,
        VerifyOutcome::RevocationUnknown
    );
    policy.accept_stale_crl = true;
    assert_eq!(
        pki::verify(&a, &sign_ok, Purpose::Sign, at, &policy).outcome,
        VerifyOutcome::Valid
    );
    policy.accept_stale_crl = false;
    policy.mode = RevocationMode::Prefer;
    let v = pki::verify(&a, &sign_ok, Purpose::Sign, at, &policy);
    assert_eq!(v.outcome, VerifyOutcome::Valid);
    assert_eq!(v.details.revocation_source, Some(RevocationSource::None));
}

#[test]
fn issuer_selected_by_signature_without_aki_and_refused_when_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let a = anchors();
    let now = now();
    // g1 CRL without AKI: both same-DN sign roots are candidates; the signature decides.
    let p = write_tmp(dir.path(), "g1.crl", &crl_g(1, now, now + DAY, false));
    let r = crl::import(&p, dir.path(), &a).unwrap();
    assert_eq!(r.issuer_key_id, key_id_hex(&read("sign_root_g1.der")));
    assert_eq!(r.root, {
        use rsa::sha2::{Digest, Sha256};
        hex::encode_upper(Sha256::digest(read("sign_root_g1.der")))
    });

    // Signature damaged.
    let mut bad = crl_g(2, now, now + DAY, true);
    let n = bad.len();
    bad[n - 5] ^= 0x01;
    let p = write_tmp(dir.path(), "bad.crl", &bad);
    assert!(matches!(
        crl::import(&p, dir.path(), &a),
        Err(CrlError::BadSignature)
    ));

    // Signed by a root with the same DN that is not an anchor.
    let rogue = read("rogue_sign_root.der");
    let key = read("rogue_sign_root.pk8.der");
    for aki in [true, false] {
        let spec = CrlSpec {
            issuer_cert_der: &rogue,
            key_pk8_der: &key,
            this_update: now,
            next_update: Some(now + DAY),
            crl_number: 1,
            aki,
        };
        let p = write_tmp(
            dir.path(),
            "rogue.crl",
            &build_crl(&spec, &[entry(1, now, None)]),
        );
        let e = crl::import(&p, dir.path(), &a).unwrap_err();
        assert!(
            matches!(e, CrlError::UnknownIssuer | CrlError::BadSignature),
            "{e}"
        );
    }

    // Garbage, truncated, a certificate instead of a CRL, missing file.
    let good = crl_g(2, now, now + DAY, true);
    for (name, data) in [
        ("empty", Vec::new()),
        ("trunc", good[..good.len() - 10].to_vec()),
        ("cert", read("sign_ok.der")),
        ("junk", b"not a crl at all".to_vec()),
    ] {
        let p = write_tmp(dir.path(), name, &data);
        assert!(crl::import(&p, dir.path(), &a).is_err(), "{name}");
    }
    assert!(matches!(
        crl::import(&dir.path().join("missing"), dir.path(), &a),
        Err(CrlError::Io { .. })
    ));
}

#[test]
fn new_index_replaces_old_atomically_and_older_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let crl_dir = dir.path().join("c");
    std::fs::create_dir(&crl_dir).unwrap();
    let a = anchors();
    let sign_ok = read("sign_ok.der");
    let at = mid(&sign_ok);
    let p1 = write_tmp(dir.path(), "1.crl", &crl_g(2, at - DAY, at + DAY, true));
    crl::import(&p1, &crl_dir, &a).unwrap();
    let store = CrlStore::open(&crl_dir).unwrap();
    let key = hex::decode(key_id_hex(&read("sign_root_g2.der"))).unwrap();
    assert!(matches!(
        store.lookup(&key, &[0x10, 0, 0, 1], at, at, false),
        CrlAnswer::Good { .. }
    ));

    // A newer CRL that also lists sign_ok: picked up at the next lookup, no reopen.
    let root = read("sign_root_g2.der");
    let k = read("sign_root_g2.pk8.der");
    let spec = CrlSpec {
        issuer_cert_der: &root,
        key_pk8_der: &k,
        this_update: at - DAY / 2,
        next_update: Some(at + DAY),
        crl_number: 8,
        aki: true,
    };
    let newer = build_crl(&spec, &[entry(0x10000001, at - DAY, Some(1))]);
    let p2 = write_tmp(dir.path(), "2.crl", &newer);
    crl::import(&p2, &crl_dir, &a).unwrap();
    assert_eq!(
        store.lookup(&key, &[0x10, 0, 0, 1], at, at, false),
        CrlAnswer::Revoked {
            reason: Some(RevocationReason::KeyCompromise),
            date: at - DAY
        }
    );
    // Importing the older one again is refused; the newer index stays.
    assert!(matches!(
        crl::import(&p1, &crl_dir, &a),
        Err(CrlError::Older { .. })
    ));
    assert!(matches!(
        store.lookup(&key, &[0x10, 0, 0, 1], at, at, false),
        CrlAnswer::Revoked { .. }
    ));
    // No temporary files left behind.
    assert_eq!(indexes_and_temporaries(&crl_dir), 1);
}

#[test]
fn corrupt_or_truncated_index_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let crl_dir = dir.path().join("c");
    std::fs::create_dir(&crl_dir).unwrap();
    let a = anchors();
    let now = now();
    let p = write_tmp(dir.path(), "g2.crl", &crl_g(2, now, now + DAY, true));
    let r = crl::import(&p, &crl_dir, &a).unwrap();
    let good = std::fs::read(&r.index_path).unwrap();
    assert!(CrlIndex::from_bytes(good.clone()).is_ok());
    let store = CrlStore::open(&crl_dir).unwrap();
    let key = hex::decode(&r.issuer_key_id).unwrap();

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x80;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() - 3].to_vec()),
        ("header only", good[..100].to_vec()),
        ("flipped", flipped),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in cases {
        assert!(CrlIndex::from_bytes(bytes.clone()).is_err(), "{what}");
        // Replace the file behind the store (new inode, like a bad copy would).
        let tmp = crl_dir.join("x.tmp");
        std::fs::write(&tmp, &bytes).unwrap();
        std::fs::rename(&tmp, &r.index_path).unwrap();
        assert!(
            matches!(
                store.lookup(&key, &[0x0F], now, now, false),
                CrlAnswer::Unusable(_)
            ),
            "{what}"
        );
    }
    // Store refresh reports the bad file; a store opened on it still works for others.
    assert_eq!(store.refresh().unwrap().len(), 1);
}

/// A newer CRL swaps in under a lookup that still holds the old index: the holder finishes on
/// the old mapping, every later lookup sees the new list.
#[test]
fn newer_index_swaps_in_while_the_old_one_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let crl_dir = dir.path().join("c");
    std::fs::create_dir(&crl_dir).unwrap();
    let a = anchors();
    let now = now();
    let sign = |entries: &[CrlEntry], this_update: i64, number: u64| {
        let root = read("sign_root_g2.der");
        let key = read("sign_root_g2.pk8.der");
        let spec = CrlSpec {
            issuer_cert_der: &root,
            key_pk8_der: &key,
            this_update,
            next_update: Some(this_update + DAY),
            crl_number: number,
            aki: true,
        };
        build_crl(&spec, entries)
    };
    let old = write_tmp(
        dir.path(),
        "old.crl",
        &sign(&[entry(0x0A, now - DAY, Some(1))], now - 10, 1),
    );
    let r = crl::import(&old, &crl_dir, &a).unwrap();
    let key = hex::decode(&r.issuer_key_id).unwrap();
    let store = CrlStore::open(&crl_dir).unwrap();
    let held = store.index(&key).unwrap().unwrap();
    assert!(held.find(&[0x0A]).is_some());

    let new = write_tmp(
        dir.path(),
        "new.crl",
        &sign(&[entry(0x0B, now - DAY, Some(3))], now, 2),
    );
    crl::import(&new, &crl_dir, &a).unwrap();
    // The held index is the old list, intact (its file was replaced by rename, not rewritten).
    assert!(held.find(&[0x0A]).is_some());
    assert!(held.find(&[0x0B]).is_none());
    // New lookups see the new list.
    assert!(matches!(
        store.lookup(&key, &[0x0A], now, now, false),
        CrlAnswer::Good { .. }
    ));
    assert!(matches!(
        store.lookup(&key, &[0x0B], now, now, false),
        CrlAnswer::Revoked {
            reason: Some(RevocationReason::AffiliationChanged),
            ..
        }
    ));
    // The older list cannot come back over the newer one.
    assert!(matches!(
        crl::import(&old, &crl_dir, &a),
        Err(CrlError::Older { .. })
    ));
}

/// A CRL whose issuingDistributionPoint limits its scope is one part of the issuer's list: as an
/// index it would answer "not listed" for every serial outside its part, and it would replace
/// the complete index of that key. Each kind of limit is refused by name, the complete index
/// stays in place, and nothing is left in the directory.
#[test]
fn partitioned_crl_is_refused_and_the_complete_index_stays() {
    let dir = tempfile::tempdir().unwrap();
    let crl_dir = dir.path().join("c");
    std::fs::create_dir(&crl_dir).unwrap();
    let a = anchors();
    let sign_ok = read("sign_ok.der");
    let at = mid(&sign_ok);
    let full = write_tmp(dir.path(), "full.crl", &crl_g(2, at - DAY, at + DAY, true));
    let r = crl::import(&full, &crl_dir, &a).unwrap();
    let key = hex::decode(&r.issuer_key_id).unwrap();
    let store = CrlStore::open(&crl_dir).unwrap();
    let revoked_serial = [0x10, 0, 0, 5];
    let is_revoked = || {
        matches!(
            store.lookup(&key, &revoked_serial, at, at, false),
            CrlAnswer::Revoked { .. }
        )
    };
    assert!(is_revoked());

    let cases: Vec<(Vec<Vec<u8>>, Vec<&str>)> = vec![
        (
            vec![idp::distribution_point("http://crl.example/part-1.crl")],
            vec!["distributionPoint"],
        ),
        (vec![idp::only_user_certs()], vec!["onlyContainsUserCerts"]),
        (vec![idp::only_ca_certs()], vec!["onlyContainsCACerts"]),
        (vec![idp::only_some_reasons()], vec!["onlySomeReasons"]),
        (vec![idp::indirect_crl()], vec!["indirectCRL"]),
        (
            vec![idp::only_attribute_certs()],
            vec!["onlyContainsAttributeCerts"],
        ),
        (
            vec![
                idp::distribution_point("http://crl.example/part-2.crl"),
                idp::only_user_certs(),
            ],
            vec!["distributionPoint", "onlyContainsUserCerts"],
        ),
    ];
    for (i, (fields, expected)) in cases.iter().enumerate() {
        // Newer than the complete list, and without the revoked serial.
        let part = crl_g2_with(
            &[entry(0x10000009, at - DAY, Some(1))],
            at - DAY / 2,
            8 + i as u64,
            &idp::extension(fields),
        );
        let p = write_tmp(dir.path(), "part.crl", &part);
        let e = crl::import(&p, &crl_dir, &a).unwrap_err();
        match &e {
            CrlError::PartitionedCrl { limits } => assert_eq!(limits, expected, "{e}"),
            other => panic!("{expected:?}: {other}"),
        }
        for name in expected {
            assert!(e.to_string().contains(name), "{e}");
        }
        assert!(is_revoked(), "{expected:?}");
        assert_eq!(indexes_and_temporaries(&crl_dir), 1);
        // Without its signature check too (inspect) the structure is refused the same way.
        assert!(matches!(
            crl::inspect(&part),
            Err(CrlError::PartitionedCrl { .. })
        ));
    }

    // An IDP that sets no field limits nothing (RFC 5280 forbids issuers to write it, but it
    // narrows no scope): imported like any complete list.
    let whole = crl_g2_with(&[], at - DAY / 4, 20, &idp::extension(&[]));
    let p = write_tmp(dir.path(), "whole.crl", &whole);
    let r = crl::import(&p, &crl_dir, &a).unwrap();
    assert_eq!(r.entries, 0);
    assert!(!is_revoked());
}

/// A serial listed twice is ambiguous (two dates, perhaps two reasons): a binary search would
/// report either entry, so an entry dated after the time asked about could hide one dated
/// before it. Such a CRL is refused by name, wherever the two entries stand; the index in place
/// stays.
#[test]
fn serial_listed_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let crl_dir = dir.path().join("c");
    std::fs::create_dir(&crl_dir).unwrap();
    let a = anchors();
    let at = mid(&read("sign_ok.der"));
    let first = write_tmp(
        dir.path(),
        "first.crl",
        &crl_g2_with(&[entry(0x0A, at - DAY, Some(1))], at - DAY, 1, &[]),
    );
    crl::import(&first, &crl_dir, &a).unwrap();
    let key = hex::decode(key_id_hex(&read("sign_root_g2.der"))).unwrap();
    let store = CrlStore::open(&crl_dir).unwrap();
    for (i, entries) in [
        // Adjacent, in order of serial.
        vec![
            entry(0x0F, at - DAY, Some(1)),
            entry(0x10000001, at + DAY, Some(5)),
            entry(0x10000001, at - DAY, Some(1)),
            entry(0x20000000, at - DAY, None),
        ],
        // Far apart, unsorted, the second one with a leading-zero-free wider encoding.
        vec![
            entry(0x10000001, at - DAY, Some(1)),
            entry(0x30, at - DAY, None),
            entry(0x05, at - DAY, None),
            entry(0x10000001, at + DAY, Some(5)),
            entry(0x01, at - DAY, None),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let p = write_tmp(
            dir.path(),
            "dup.crl",
            &crl_g2_with(&entries, at - DAY / 2, 2 + i as u64, &[]),
        );
        let e = crl::import(&p, &crl_dir, &a).unwrap_err();
        assert!(
            matches!(&e, CrlError::DuplicateSerial { serial } if serial == "10000001"),
            "{e}"
        );
        assert!(e.to_string().contains("10000001"), "{e}");
        assert!(matches!(
            crl::build_index(&std::fs::read(&p).unwrap(), &a),
            Err(CrlError::DuplicateSerial { .. })
        ));
        // The first list is still the one in use.
        assert!(matches!(
            store.lookup(&key, &[0x0A], at, at, false),
            CrlAnswer::Revoked { .. }
        ));
        assert_eq!(indexes_and_temporaries(&crl_dir), 1);
    }
}

/// Whether this test runs as root (the CI does); the directory-safety tests need it to give a
/// directory to another user and to plant what another user could.
fn as_root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        println!("SKIP {test}: needs root (chown to another user; the import runs as root)");
    }
    root
}

/// The uid and gid of `nobody`, the "other user" of these tests.
const NOBODY: u32 = 65_534;

/// `jpkictl crl import` runs as root. A symbolic link planted in the CRL directory — at the
/// name the temporary index had (`.<key>.crlidx.<pid>.tmp`), at the index's own name, or
/// anywhere else — is never followed: the file it points to (here a stand-in for /etc/shadow)
/// is not changed, and the import either ignores the link or fails with a named error.
#[test]
fn import_as_root_follows_no_symlink_in_the_crl_dir() {
    if !as_root("import_as_root_follows_no_symlink_in_the_crl_dir") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let crl_dir = dir.path().join("crl");
    std::fs::create_dir(&crl_dir).unwrap();
    let victim = dir.path().join("shadow");
    let secret = b"root:$6$not-to-be-overwritten:19000:0:99999:7:::\n";
    std::fs::write(&victim, secret).unwrap();
    let a = anchors();
    let now = now();
    let key_hex = key_id_hex(&read("sign_root_g2.der"));
    let index_name = format!("{key_hex}.crlidx");
    let crl = write_tmp(dir.path(), "g2.crl", &crl_g(2, now, now + DAY, true));
    let unchanged = || assert_eq!(std::fs::read(&victim).unwrap(), secret);

    // The old temporary name, and a few others an attacker might guess.
    let planted = [
        format!(".{index_name}.{}.tmp", std::process::id()),
        format!(".{index_name}.tmp"),
        format!("{index_name}.tmp"),
        "x.tmp".to_owned(),
    ];
    for name in &planted {
        std::os::unix::fs::symlink(&victim, crl_dir.join(name)).unwrap();
    }
    let r = crl::import(&crl, &crl_dir, &a).unwrap();
    unchanged();
    for name in &planted {
        let m = std::fs::symlink_metadata(crl_dir.join(name)).unwrap();
        assert!(m.file_type().is_symlink(), "{name}");
    }
    assert!(CrlIndex::load(&r.index_path).is_ok());

    // A link at the index's own name: refused by name, the link and its target untouched.
    std::fs::remove_file(&r.index_path).unwrap();
    std::os::unix::fs::symlink(&victim, &r.index_path).unwrap();
    let e = crl::import(&crl, &crl_dir, &a).unwrap_err();
    assert!(matches!(e, CrlError::UnsafeDirectory { .. }), "{e}");
    assert!(e.to_string().contains(&index_name), "{e}");
    unchanged();
    assert!(
        std::fs::symlink_metadata(&r.index_path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Nothing else was left behind: the planted links, the one at the index name.
    assert_eq!(indexes_and_temporaries(&crl_dir), planted.len() + 1);
}

/// A CRL directory that another user can write (owned by them, or group/other-writable) lets
/// that user plant files for root's import: refused by name, before anything is written.
#[test]
fn import_as_root_refuses_a_crl_dir_another_user_can_write() {
    use std::os::unix::fs::PermissionsExt;
    if !as_root("import_as_root_refuses_a_crl_dir_another_user_can_write") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = anchors();
    let now = now();
    let crl = write_tmp(dir.path(), "g2.crl", &crl_g(2, now, now + DAY, true));
    // (directory, owner uid/gid if not root's, mode, what the refusal names)
    type Case = (&'static str, Option<(u32, u32)>, u32, &'static str);
    let cases: [Case; 5] = [
        (
            "owned-by-nobody",
            Some((NOBODY, NOBODY)),
            0o755,
            "uid 65534",
        ),
        (
            "owned-by-nobody-0700",
            Some((NOBODY, 0)),
            0o700,
            "uid 65534",
        ),
        ("group-writable", Some((0, NOBODY)), 0o775, "group"),
        ("world-writable", None, 0o777, "others"),
        ("sticky-world-writable", None, 0o1777, "others"),
    ];
    for (name, owner, mode, why) in cases {
        let crl_dir = dir.path().join(name);
        std::fs::create_dir(&crl_dir).unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&crl_dir, Some(uid), Some(gid)).unwrap();
        }
        std::fs::set_permissions(&crl_dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = crl::import(&crl, &crl_dir, &a).unwrap_err();
        assert!(matches!(e, CrlError::UnsafeDirectory { .. }), "{name}: {e}");
        assert!(e.to_string().contains(why), "{name}: {e}");
        assert_eq!(std::fs::read_dir(&crl_dir).unwrap().count(), 0, "{name}");
    }
    // Root's own 0755 (the tmpfiles.d layout) and 0700 are fine.
    for (name, mode) in [("root-0755", 0o755), ("root-0700", 0o700)] {
        let crl_dir = dir.path().join(name);
        std::fs::create_dir(&crl_dir).unwrap();
        std::fs::set_permissions(&crl_dir, std::fs::Permissions::from_mode(mode)).unwrap();
        crl::import(&crl, &crl_dir, &a).unwrap();
    }
}

/// `revocation.crl_dir` that is itself a symbolic link (to a directory someone else controls,
/// or to /etc) is refused, with or without a trailing slash; the target is not written.
#[test]
fn import_as_root_refuses_a_symlinked_crl_dir() {
    if !as_root("import_as_root_refuses_a_symlinked_crl_dir") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = anchors();
    let now = now();
    let crl = write_tmp(dir.path(), "g2.crl", &crl_g(2, now, now + DAY, true));
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("crl");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for p in [
        link.clone(),
        dir.path().join("crl/"),
        dir.path().join("crl/."),
    ] {
        let e = crl::import(&crl, &p, &a).unwrap_err();
        assert!(
            matches!(e, CrlError::UnsafeDirectory { .. }),
            "{}: {e}",
            p.display()
        );
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
    // A file where the directory should be: a named error too.
    let file = write_tmp(dir.path(), "not-a-dir", b"x");
    assert!(matches!(
        crl::import(&crl, &file, &a),
        Err(CrlError::UnsafeDirectory { .. })
    ));
}

/// Review finding: a replayed, validly signed CRL with the same thisUpdate but a lower
/// cRLNumber replaced the newer index (only thisUpdate was compared).
#[test]
fn a_crl_with_a_lower_number_does_not_replace_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let crl_dir = dir.path().join("c");
    std::fs::create_dir(&crl_dir).unwrap();
    let a = anchors();
    let at = mid(&read("sign_ok.der"));
    let listed = [entry(0x10000001, at - DAY, Some(1))];
    let newer = write_tmp(dir.path(), "8.crl", &crl_g2_with(&listed, at - DAY, 8, &[]));
    let replay = write_tmp(dir.path(), "7.crl", &crl_g2_with(&[], at - DAY, 7, &[]));
    crl::import(&newer, &crl_dir, &a).unwrap();
    let e = crl::import(&replay, &crl_dir, &a).unwrap_err();
    assert!(matches!(e, CrlError::LowerNumber { .. }), "{e}");
    let store = CrlStore::open(&crl_dir).unwrap();
    let key = hex::decode(key_id_hex(&read("sign_root_g2.der"))).unwrap();
    assert!(matches!(
        store.lookup(&key, &[0x10, 0, 0, 1], at, at, false),
        CrlAnswer::Revoked { .. }
    ));
    // The same number again (a re-import of the same list) is fine.
    crl::import(&newer, &crl_dir, &a).unwrap();
}

/// Review finding: an import killed mid-way (Ctrl-C, OOM) left its temporary files (the
/// index's size each) in the CRL directory for ever.
#[test]
fn an_import_removes_what_an_interrupted_one_left() {
    let dir = tempfile::tempdir().unwrap();
    let crl_dir = dir.path().join("c");
    std::fs::create_dir(&crl_dir).unwrap();
    let left = [
        ".import.0123456789abcdef.tmp",
        ".merge.fedcba9876543210.tmp",
    ];
    for name in left {
        std::fs::write(crl_dir.join(name), b"half an index").unwrap();
    }
    let at = mid(&read("sign_ok.der"));
    let p = write_tmp(dir.path(), "1.crl", &crl_g2_with(&[], at - DAY, 1, &[]));
    crl::import(&p, &crl_dir, &anchors()).unwrap();
    for name in left {
        assert!(!crl_dir.join(name).exists(), "{name} left behind");
    }
}

/// Review finding: a CRL given through a pipe (`jpkictl crl import <(curl …)`, /dev/stdin) was
/// refused as "truncated, the file has 0 bytes": a pipe's size is not its length.
#[test]
fn a_crl_through_a_pipe_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let crl_dir = dir.path().join("c");
    std::fs::create_dir(&crl_dir).unwrap();
    let fifo = dir.path().join("crl.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let at = mid(&read("sign_ok.der"));
    let bytes = crl_g2_with(&[entry(0x10000001, at - DAY, Some(1))], at - DAY, 1, &[]);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, bytes))
    };
    crl::import(&fifo, &crl_dir, &anchors()).unwrap();
    writer.join().unwrap().unwrap();
}

/// Review finding: the import locked the CRL directory itself, which the daemon's user can
/// open (it reads the indexes there): holding that lock, it stopped every import, so the CRLs
/// went stale. The lock is now a file only root can open. (Root only: runs as uid 65534.)
#[test]
fn the_daemon_user_cannot_hold_up_an_import() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let crl_dir = dir.path().join("c");
    std::fs::create_dir(&crl_dir).unwrap();
    let at = mid(&read("sign_ok.der"));
    let p = write_tmp(dir.path(), "1.crl", &crl_g2_with(&[], at - DAY, 1, &[]));
    // An import first, so a lock file exists if the import uses one.
    crl::import(&p, &crl_dir, &anchors()).unwrap();
    let mut holder = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(r#"for f in "$1" "$1"/.lock; do flock -n -x "$f" sleep 30 & done; sleep 30"#)
        .arg("sh")
        .arg(&crl_dir)
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let (p, crl_dir) = (p.clone(), crl_dir.clone());
        std::thread::spawn(move || {
            let _ = tx.send(crl::import(&p, &crl_dir, &anchors()).map(|_| ()));
        });
    }
    let got = rx.recv_timeout(std::time::Duration::from_secs(10));
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(holder.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = holder.wait();
    match got {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("the import waited on a lock held by uid 65534"),
    }
}
