//! Robustness: the certificate reader, `verify`, the attribute reader, the CRL importer, the CRL
//! index reader, the CMS verifier and the card-face and CV certificate readers (with the whole
//! `CheckAuthenticity` judgement) never panic on random or mutated input (seeded from the
//! test PKI's DER files).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use std::sync::OnceLock;

use jpkid::pki::crl::{CrlIndex, build_index, inspect, inspect_reader};
use jpkid::pki::{self, Purpose, RevocationPolicy, TrustAnchors, attributes, cms};
use pki_support::crlgen::{CrlEntry, CrlSpec, build_crl};
use pki_support::*;
use proptest::prelude::*;

/// Committed hw-fixtures files used as extra seeds.
const FIXTURE_CERTS: &[&str] = &[
    "personas/ordinary/jpki/0001.bin",
    "personas/moved/jpki/0001.bin",
    "personas/substitute-chars/jpki/0001.bin",
    "personas/revoked/jpki/000A.bin",
    "testpki/ec/p384_sign_ee.der",
];

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/hw-fixtures/").to_owned() + rel).unwrap()
}

struct Seeds {
    anchors: TrustAnchors,
    certs: Vec<Vec<u8>>,
    crl: Vec<u8>,
    index: Vec<u8>,
    cms: Vec<u8>,
}

fn seeds() -> &'static Seeds {
    static S: OnceLock<Seeds> = OnceLock::new();
    S.get_or_init(|| {
        let anchors = anchors();
        let certs = [
            "sign_ok.der",
            "auth_ok.der",
            "ec384_ee.der",
            "sign_noncrit.der",
            "sign_root_g2.der",
        ]
        .iter()
        .map(|n| read(n))
        .chain(FIXTURE_CERTS.iter().map(|f| fixture(f)))
        .collect();
        let root = read("sign_root_g2.der");
        let key = read("sign_root_g2.pk8.der");
        let spec = CrlSpec {
            issuer_cert_der: &root,
            key_pk8_der: &key,
            this_update: 1_790_000_000,
            next_update: Some(1_790_086_400),
            crl_number: 3,
            aki: true,
        };
        let entries: Vec<CrlEntry> = (0..20u32)
            .map(|i| CrlEntry {
                serial: (0x1000_0000 + 3 * i).to_be_bytes().to_vec(),
                date: 1_780_000_000 + i64::from(i),
                reason: (i % 3 != 0).then_some((i % 7) as u8),
            })
            .collect();
        let crl = build_crl(&spec, &entries);
        let index = build_index(&crl, &anchors).unwrap().to_bytes();
        let key = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_der(&read(
            "sign_ok.pk8.der",
        ))
        .unwrap();
        let signer = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(key);
        let cms = cms::sign(b"doc", &read("sign_ok.der"), 1_790_000_000, &signer).unwrap();
        Seeds {
            anchors,
            certs,
            crl,
            index,
            cms,
        }
    })
}

/// Apply byte changes and an optional truncation/extension to a seed.
fn mutate(seed: &[u8], edits: &[(usize, u8)], cut: Option<usize>, tail: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for &(pos, val) in edits {
        if !v.is_empty() {
            let i = pos % v.len();
            v[i] = val;
        }
    }
    if let Some(c) = cut {
        v.truncate(c % (v.len() + 1));
    }
    v.extend_from_slice(tail);
    v
}

fn edits() -> impl Strategy<Value = (Vec<(usize, u8)>, Option<usize>, Vec<u8>)> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        prop::option::of(any::<usize>()),
        prop::collection::vec(any::<u8>(), 0..4),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verify_never_panics_on_random(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let s = seeds();
        let v = pki::verify(&s.anchors, &bytes, Purpose::Sign, 1_790_000_000, &RevocationPolicy::off());
        let _ = v.outcome.as_str();
        let _ = attributes::from_certificate(&bytes);
    }

    #[test]
    fn verify_never_panics_on_mutated_certs(which in 0usize..10, (e, cut, tail) in edits(), purpose in any::<bool>()) {
        let s = seeds();
        let der = mutate(&s.certs[which], &e, cut, &tail);
        let purpose = if purpose { Purpose::Sign } else { Purpose::Auth };
        let _ = pki::verify(&s.anchors, &der, purpose, 1_790_000_000, &RevocationPolicy::off());
        let _ = attributes::from_certificate(&der);
    }

    #[test]
    fn crl_import_never_panics_on_mutated((e, cut, tail) in edits()) {
        let s = seeds();
        let crl = mutate(&s.crl, &e, cut, &tail);
        let _ = build_index(&crl, &s.anchors);
        let _ = inspect(&crl);
    }

    #[test]
    fn fixture_crl_walk_never_panics_on_mutated((e, cut, tail) in edits()) {
        let crl = mutate(&fixture("testpki/sign_g2.crl"), &e, cut, &tail);
        let _ = inspect(&crl);
        let _ = build_index(&crl, &seeds().anchors);
    }

    #[test]
    fn crl_read_in_pieces_reads_as_in_one((e, cut, tail) in edits(), sizes in prop::collection::vec(1usize..400, 1..24)) {
        let crl = mutate(&seeds().crl, &e, cut, &tail);
        let whole = inspect(&crl);
        let pieces = inspect_reader(Pieces { data: &crl, sizes: &sizes, turn: 0 });
        prop_assert_eq!(whole.is_ok(), pieces.is_ok(), "{:?} / {:?}", whole, pieces);
        if let (Ok(a), Ok(b)) = (whole, pieces) {
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn crl_import_never_panics_on_random(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = build_index(&bytes, &seeds().anchors);
        let _ = inspect(&bytes);
    }

    #[test]
    fn index_reader_never_panics((e, cut, tail) in edits(), probe in prop::collection::vec(any::<u8>(), 0..40)) {
        let idx = mutate(&seeds().index, &e, cut, &tail);
        if let Ok(i) = CrlIndex::from_bytes(idx) {
            let _ = i.find(&probe);
        }
    }

    #[test]
    fn card_face_check_never_panics_on_mutated((e, cut, tail) in edits(), which in 0usize..3, sig in prop::collection::vec(any::<u8>(), 0..300)) {
        let face = fixture("personas/ordinary/visual/0002.bin");
        let cvc = fixture("personas/ordinary/visual/0004.bin");
        let (face, cvc) = match which {
            0 => (mutate(&face, &e, cut, &tail), cvc),
            1 => (face, mutate(&cvc, &e, cut, &tail)),
            _ => (mutate(&face, &e, cut, &tail), mutate(&cvc, &e, cut, &tail)),
        };
        let keys = card_ca();
        let (v, _) = jpkid::pki::face::check(&face, &cvc, &[7; 32], Some(&sig), keys);
        let _ = v.genuine();
        let _ = jpkid::pki::cvc::CvCertificate::parse(&cvc);
    }

    #[test]
    fn card_face_parse_never_panics_on_random(bytes in prop::collection::vec(any::<u8>(), 0..1500)) {
        let _ = jpkid::pki::face::CardFace::parse(&bytes);
        let _ = jpkid::pki::cvc::CvCertificate::parse(&bytes);
    }

    #[test]
    fn cms_verify_never_panics((e, cut, tail) in edits()) {
        let der = mutate(&seeds().cms, &e, cut, &tail);
        let _ = cms::verify_signed_data(&der, Some(1_790_000_000));
    }
}

fn card_ca() -> &'static jpkid::pki::cvc::CardCaKeys {
    static K: OnceLock<jpkid::pki::cvc::CardCaKeys> = OnceLock::new();
    K.get_or_init(|| {
        jpkid::pki::cvc::CardCaKeys::load(
            jpkid::pki::Hierarchy::Test,
            std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/hw-fixtures/testpki/card_ca"
            )),
        )
        .unwrap()
    })
}

#[test]
fn seeds_are_sound() {
    let s = seeds();
    assert_eq!(
        CrlIndex::from_bytes(s.index.clone())
            .unwrap()
            .header()
            .count,
        20
    );
    assert!(cms::verify_signed_data(&s.cms, None).is_ok());
    assert_eq!(inspect(&s.crl).unwrap().entries, 20);
    let (v, _) = jpkid::pki::face::check(
        &fixture("personas/ordinary/visual/0002.bin"),
        &fixture("personas/ordinary/visual/0004.bin"),
        &[7; 32],
        None,
        card_ca(),
    );
    assert_eq!(
        (v.cv_certificate.as_str(), v.card_face.as_str()),
        ("verified", "verified")
    );
}

/// A reader that hands out `data` in pieces of the given sizes, in turn.
struct Pieces<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    turn: usize,
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.turn % self.sizes.len()];
        self.turn += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
