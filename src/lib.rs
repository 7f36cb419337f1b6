//! jpkid

pub mod pki;
