//! The audit log (DESIGN §7): one record per card method and certificate verification, as a
//! `tracing` event with target `audit` (the journal when the daemon runs under systemd).
//!
//! A record names who (uid, unique bus name), which reader, which operation, the result (the
//! D-Bus error's short name or `ok`) and the duration. A certificate serial appears only as a
//! short hash: the first 8 hex digits of SHA-256 over the serial's upper-case hex text, so that
//! an operator can match a record against a known serial (`printf %s SERIAL | sha256sum`)
//! without the log listing serials. Never a PIN, an attribute or a subject.

use std::time::Duration;

use sha2::{Digest, Sha256};

/// The tracing target of audit records.
pub const TARGET: &str = "audit";

/// Writes audit records when `audit.enabled`.
#[derive(Debug, Clone, Copy)]
pub struct Audit {
    enabled: bool,
}

/// One audited call.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Caller's uid, when the bus told it.
    pub uid: Option<u32>,
    /// Caller's unique bus name.
    pub bus_name: &'a str,
    /// Reader id, for card methods.
    pub reader: Option<u32>,
    /// Operation (`sign`, `read-certificate`, `verify-certificate`, …).
    pub operation: &'a str,
    /// `ok` or the error's short name.
    pub result: &'a str,
    /// How long the call took.
    pub duration: Duration,
    /// The certificate serial involved (upper-case hex), hashed before it is written.
    pub serial: Option<&'a str>,
}

impl Audit {
    /// An audit log that writes when `enabled`.
    pub fn new(enabled: bool) -> Audit {
        Audit { enabled }
    }

    /// Whether records are written.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Writes one record.
    pub fn record(&self, r: &Record<'_>) {
        if !self.enabled {
            return;
        }
        let duration_ms = u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX);
        let uid = r
            .uid
            .map_or_else(|| "unknown".to_owned(), |u| u.to_string());
        let reader = r.reader.map_or_else(|| "-".to_owned(), |id| id.to_string());
        let serial = r.serial.map(serial_hash).unwrap_or_default();
        tracing::info!(
            target: TARGET,
            uid = %uid,
            bus_name = r.bus_name,
            reader = %reader,
            operation = r.operation,
            result = r.result,
            duration_ms,
            serial_hash = %serial,
            "audit"
        );
    }
}

/// First 8 hex digits of SHA-256 over the serial's upper-case hex text.
pub fn serial_hash(serial: &str) -> String {
    let digest = Sha256::digest(serial.to_ascii_uppercase().as_bytes());
    hex::encode(&digest[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_hash_is_short_and_case_blind() {
        let h = serial_hash("1A2B3C01");
        assert_eq!(h.len(), 8);
        assert_eq!(h, serial_hash("1a2b3c01"));
        assert!(!h.contains("1A2B3C01"));
    }
}
