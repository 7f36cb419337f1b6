//! jpkid: owns the smart-card readers of a counter or kiosk machine, runs the JPKI flows of the
//! My Number Card (個人番号カード) over PC/SC, verifies the card's certificates, compares the
//! holder's basic four attributes and serves all of it over D-Bus.
//!
//! "DESIGN §n" in the docs of this crate is `docs/DESIGN.md`, the design contract; the facts
//! about the card are cited from `docs/reference/`, the service terms from `docs/terms/`;
//! `ARCHITECTURE.md` walks through the code.
//!
//! Layers, never depending upwards (DESIGN §2):
//! `service -> readers -> flows -> {jpki, pki, terms}`, `jpki -> card -> transport -> apdu/tlv`.

pub mod apdu;
pub mod api;
pub mod audit;
pub mod card;
pub mod client;
pub mod config;
pub mod digest;
pub mod flows;
pub mod http;
pub mod jpki;
pub mod manual;
pub mod pki;
pub mod process;
pub mod readers;
pub mod service;
pub mod terms;
pub mod tlv;
pub mod transport;
