//! The visual AP's card face and CV certificate readers, and the whole `CheckAuthenticity`
//! judgement, on arbitrary bytes: the input is split into face, CV certificate and the card's
//! challenge signature, judged against the test PKI's card CA keys.
#![no_main]

use std::sync::OnceLock;

use jpkid::pki::Hierarchy;
use jpkid::pki::cvc::{CardCaKeys, CvCertificate};
use jpkid::pki::face::{self, CardFace};
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static CardCaKeys {
    static K: OnceLock<CardCaKeys> = OnceLock::new();
    K.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../hw-fixtures/testpki/card_ca");
        CardCaKeys::load(Hierarchy::Test, std::path::Path::new(dir))
            .unwrap_or_else(|_| CardCaKeys::none(Hierarchy::Test))
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = CardFace::parse(data);
    let _ = CvCertificate::parse(data);
    let (a, rest) = data.split_at(data.len() / 2);
    let (b, sig) = rest.split_at(rest.len() / 2);
    let (v, _) = face::check(a, b, &[7; 32], Some(sig), keys());
    let _ = v.genuine();
});
