//! The audit log (DESIGN §7): one record per card method and certificate verification, as a
//! `tracing` event with target `audit` (the journal when the daemon runs under systemd).
//!
//! A record names who (uid, unique bus name), which reader, which operation, the result (the
//! D-Bus error's short name or `ok`), what a check found where the method is one (the
//! `outcome`, e.g. `CheckAuthenticity`'s verdict) and the duration. A certificate serial appears only as a
//! keyed tag: HMAC-SHA-256 over the serial's upper-case hex text, under a key of the daemon's
//! ([`AuditKey`], created at first start, readable by the daemon's user and root only), its
//! first 8 bytes in hex. JPKI serials are short enough to try them all, so an unkeyed hash would
//! give the serials to everyone who reads the journal; with the key, root can match a record
//! against a known serial (`jpkictl audit-tag SERIAL`) and nobody else can. Never a PIN, an
//! attribute or a subject.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Where the daemon keeps its audit key when systemd gives it no `STATE_DIRECTORY`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/jpkid/state";
/// The key's file name in the state directory.
pub const KEY_FILE: &str = "audit.key";
const KEY_LEN: usize = 32;

/// The key of the audit's serial tags.
pub struct AuditKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey([REDACTED])")
    }
}

/// Why the audit key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a {KEY_LEN}-byte key file")]
    Size(String),
    #[error("{0}: readable or writable by group or others (mode {1:o}); it must be 0400 or 0600")]
    Exposed(String, u32),
}

impl AuditKey {
    /// A key for this process only (no state directory): tags cannot be matched after a
    /// restart, but are no less secret.
    pub fn ephemeral() -> AuditKey {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, k.as_mut());
        AuditKey(k)
    }

    /// Reads the key in `path`, or creates it (mode 0400, never through a symbolic link) when
    /// there is none.
    ///
    /// # Errors
    /// [`KeyError`]: the file cannot be read or created, has the wrong size, or is exposed.
    pub fn load_or_create(path: &Path) -> Result<AuditKey, KeyError> {
        let shown = || path.display().to_string();
        let io = |source| KeyError::Io {
            path: shown(),
            source,
        };
        match AuditKey::load(path) {
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                let key = AuditKey::ephemeral();
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o400)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(io)?;
                f.write_all(key.0.as_ref())
                    .and_then(|()| f.sync_all())
                    .map_err(io)?;
                Ok(key)
            }
            other => other,
        }
    }

    /// Reads the key in `path` (never through a symbolic link).
    ///
    /// # Errors
    /// [`KeyError`]: the file cannot be read, has the wrong size, or is exposed.
    pub fn load(path: &Path) -> Result<AuditKey, KeyError> {
        let shown = || path.display().to_string();
        let io = |source| KeyError::Io {
            path: shown(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
            .map_err(io)?;
        let meta = f.metadata().map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed(shown(), mode));
        }
        if meta.size() != KEY_LEN as u64 {
            return Err(KeyError::Size(shown()));
        }
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        f.read_exact(k.as_mut()).map_err(io)?;
        Ok(AuditKey(k))
    }

    /// The tag of a serial: HMAC-SHA-256 over its upper-case hex text, first 8 bytes in hex.
    pub fn tag(&self, serial: &str) -> String {
        // HMAC takes a key of any length: this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.as_ref()) else {
            return String::new();
        };
        mac.update(serial.to_ascii_uppercase().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..8])
    }
}

/// The tracing target of audit records.
pub const TARGET: &str = "audit";

/// Writes audit records when `audit.enabled`.
#[derive(Debug)]
pub struct Audit {
    enabled: bool,
    key: AuditKey,
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
    /// What a check found (`genuine`, `not-genuine: card-face`), for the methods that judge;
    /// never a secret or personal value.
    pub outcome: Option<&'a str>,
    /// How long the call took.
    pub duration: Duration,
    /// The certificate serial involved (upper-case hex), hashed before it is written.
    pub serial: Option<&'a str>,
}

impl Audit {
    /// An audit log that writes when `enabled`, tagging serials under `key`.
    pub fn new(enabled: bool, key: AuditKey) -> Audit {
        Audit { enabled, key }
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
        let serial = r.serial.map(|s| self.key.tag(s)).unwrap_or_default();
        tracing::info!(
            target: TARGET,
            uid = %uid,
            bus_name = r.bus_name,
            reader = %reader,
            operation = r.operation,
            result = r.result,
            outcome = r.outcome.unwrap_or_default(),
            duration_ms,
            serial_tag = %serial,
            "audit"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn tags_are_keyed_short_and_case_blind() {
        let key = AuditKey::ephemeral();
        let t = key.tag("1A2B3C01");
        assert_eq!(t.len(), 16);
        assert_eq!(t, key.tag("1a2b3c01"));
        assert_ne!(
            t,
            AuditKey::ephemeral().tag("1A2B3C01"),
            "another key, another tag"
        );
    }

    #[test]
    fn the_key_is_made_once_private_and_refused_when_exposed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let made = AuditKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
        let again = AuditKey::load_or_create(&path).unwrap();
        assert_eq!(made.tag("01"), again.tag("01"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        assert!(matches!(
            AuditKey::load_or_create(&path),
            Err(KeyError::Exposed(..))
        ));
        // A symbolic link where the key should be is not followed.
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(AuditKey::load_or_create(&link).is_err());
        assert!(!dir.path().join("elsewhere").exists());
    }
}
