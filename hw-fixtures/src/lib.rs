//! `jpki-vcard`: a virtual My Number Card for jpkid's tests, its vpcd client, the personas it
//! loads and the synthetic test PKI they are made from.
//!
//! The card answers APDUs the way `shared/reference/jpki-protocol.md` §15 says a real card does.
//! It does not share code with jpkid's card layer on purpose: a bug in one should not hide the
//! same bug in the other. The persona format is described in `PERSONAS.md`.

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
