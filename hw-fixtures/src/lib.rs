//! `jpki-vcard`: a virtual My Number Card for jpkid's tests, its vpcd client, the personas it
//! loads and the synthetic test PKI they are made from.
//!
//! The card answers APDUs the way `docs/reference/jpki-protocol.md` §15 says a real card does,
//! in three applications: the JPKI AP (certificates, signing and authentication keys), the text
//! AP (券面事項入力補助AP: basic four, integrity record, CV certificate) and the visual AP
//! (券面事項確認AP: card face with its three-digest signature, age record, rendered My Number,
//! CV certificate, and the card key that signs challenges; opened by the 生年月日 key,
//! 照合番号B or 照合番号A). It does not share code with jpkid's card layer on purpose: a bug in
//! one should not hide the same bug in the other.
//!
//! The persona format, the test PKI (roots, CRLs, the card CA keys of [`card_ca_dir`]) and the
//! `[expect]` keys tests assert on are described in `PERSONAS.md`; real J-LIS test-card files
//! for parser tests are in [`jlis_test_card_dir`].

pub mod card;
pub mod persona;
pub mod testpki;
pub mod vpcd;

pub use card::{Answer, VirtualCard};
pub use persona::{Faults, Persona, PersonaError, PinId};

use std::path::PathBuf;

/// Directory of the committed personas (`hw-fixtures/personas`).
pub fn personas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("personas")
}

/// Directory of one committed persona, e.g. `persona_dir("ordinary")`.
pub fn persona_dir(name: &str) -> PathBuf {
    personas_dir().join(name)
}

/// Directory of the committed test PKI (`hw-fixtures/testpki`).
pub fn testpki_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testpki")
}

/// The test PKI's card CA public keys (`hw-fixtures/testpki/card_ca`): what a test
/// configuration points `trust.card_ca_dir` at (DESIGN §8). One SPKI PEM file per key, named by
/// the 32 upper-case hex digits of its 16-byte 証明者鍵ID.
pub fn card_ca_dir() -> PathBuf {
    testpki_dir().join("card_ca")
}

/// Files read off a J-LIS test card, as shipped by myna-card 3.3.4, and the two J-LIS test
/// card CA keys in `card_ca` form (`hw-fixtures/jlis-test-card`, see its README).
pub fn jlis_test_card_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jlis-test-card")
}
