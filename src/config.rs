//! `/etc/jpkid/jpkid.toml` (DESIGN §8). Every key is optional; an unknown key or a value of the
//! wrong type is an error at start-up, naming the key, so that a typo never silently weakens a
//! setting such as `pin_guard.min_remaining` or `access.allowed_groups`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::pki::{Hierarchy, RevocationMode};

/// Where the daemon and `jpkictl` look when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/jpkid/jpkid.toml";
/// Bounds of `limits.op_timeout_ms`: a request gets at least a second (the floor of option
/// `timeout-ms`), and at most what the unit's `TimeoutStopSec` leaves room to drain.
pub const MIN_OP_TIMEOUT_MS: u64 = 1_000;
/// See [`MIN_OP_TIMEOUT_MS`].
pub const MAX_OP_TIMEOUT_MS: u64 = 60_000;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub trust: Trust,
    pub revocation: Revocation,
    pub pin_guard: PinGuard,
    pub access: Access,
    pub readers: Readers,
    pub limits: Limits,
    pub audit: Audit,
}

/// `[trust]`: which hierarchy is trusted and where its root certificates are.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Trust {
    /// `production` (pinned J-LIS roots only) or `test` (every certificate in `roots_dir`).
    /// `roots_dir` defaults to the package's copy of the six published J-LIS roots.
    #[serde(deserialize_with = "from_name")]
    pub hierarchy: Hierarchy,
    pub roots_dir: PathBuf,
    /// J-LIS card CA public keys that sign the 券面 APs' CV certificates (DESIGN §8): one file
    /// per key, named by the 32 hex digits of its 証明者鍵ID.
    pub card_ca_dir: PathBuf,
}

impl Default for Trust {
    fn default() -> Self {
        Trust {
            hierarchy: Hierarchy::Production,
            roots_dir: PathBuf::from("/usr/share/jpkid/roots"),
            card_ca_dir: PathBuf::from("/usr/share/jpkid/card-ca"),
        }
    }
}

/// `[revocation]`: CRL index directory, OCSP responder, and what an unanswered check means.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Revocation {
    #[serde(deserialize_with = "from_name")]
    pub mode: RevocationMode,
    pub crl_dir: PathBuf,
    pub ocsp_url: Option<String>,
    /// Use a CRL whose nextUpdate has passed instead of answering `revocation-unknown`.
    pub accept_stale_crl: bool,
}

impl Default for Revocation {
    fn default() -> Self {
        Revocation {
            mode: RevocationMode::Require,
            crl_dir: PathBuf::from("/var/lib/jpkid/crl"),
            ocsp_url: None,
            accept_stale_crl: false,
        }
    }
}

/// `[pin_guard]`: refuse a VERIFY that could block a PIN (DESIGN §3).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PinGuard {
    pub min_remaining: u8,
}

impl Default for PinGuard {
    fn default() -> Self {
        PinGuard { min_remaining: 2 }
    }
}

/// `[access]`: groups whose members (and root) may call the daemon.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Access {
    pub allowed_groups: Vec<String>,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            allowed_groups: vec!["jpki".to_owned()],
        }
    }
}

/// `[readers]`: reader names (globs) the daemon leaves alone, e.g. a built-in contactless pad.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Readers {
    pub ignore: Vec<String>,
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Upper bound of one card request, queue wait excluded.
    pub op_timeout_ms: u64,
    /// Requests per reader, the running one included; one more gives `ReaderBusy`.
    pub queue_depth: usize,
    /// A claim lapses after this many seconds without a call from the claimant.
    pub claim_idle_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            op_timeout_ms: 30_000,
            queue_depth: 4,
            claim_idle_s: 120,
        }
    }
}

impl Limits {
    pub fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.op_timeout_ms)
    }
    pub fn claim_idle(&self) -> Duration {
        Duration::from_secs(self.claim_idle_s)
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    pub enabled: bool,
}

impl Default for Audit {
    fn default() -> Self {
        Audit { enabled: true }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Parse configuration text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        config.check(path)?;
        Ok(config)
    }

    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// `--config PATH` when given (must exist); otherwise the default path when it exists, else
    /// the built-in defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::load(p),
            None => {
                let p = Path::new(DEFAULT_PATH);
                if p.exists() {
                    Config::load(p)
                } else {
                    Ok(Config::default())
                }
            }
        }
    }

    /// Values that parse but cannot work.
    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: &str| ConfigError::Invalid {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        if !(MIN_OP_TIMEOUT_MS..=MAX_OP_TIMEOUT_MS).contains(&self.limits.op_timeout_ms) {
            return Err(invalid(&format!(
                "limits.op_timeout_ms must be {MIN_OP_TIMEOUT_MS} to {MAX_OP_TIMEOUT_MS}"
            )));
        }
        if self.limits.claim_idle_s == 0 {
            return Err(invalid("limits.claim_idle_s must be greater than 0"));
        }
        if self.pin_guard.min_remaining > 15 {
            return Err(invalid("pin_guard.min_remaining must be at most 15"));
        }
        for pattern in &self.readers.ignore {
            if glob::Pattern::new(pattern).is_err() {
                return Err(invalid(&format!(
                    "readers.ignore: {pattern:?} is not a valid glob"
                )));
            }
        }
        if let Some(url) = &self.revocation.ocsp_url
            && !url.starts_with("http://")
        {
            return Err(invalid("revocation.ocsp_url must be an http:// URL"));
        }
        Ok(())
    }
}

/// Deserialize a value through its `FromStr` (the names used on D-Bus and in the file agree).
fn from_name<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let s = String::deserialize(deserializer)?;
    s.parse().map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.pin_guard.min_remaining, 2);
        assert_eq!(c.trust.hierarchy, Hierarchy::Production);
        assert_eq!(c.revocation.mode, RevocationMode::Require);
        assert_eq!(c.access.allowed_groups, vec!["jpki".to_owned()]);
        assert!(c.audit.enabled);
    }

    /// The file the package installs (`packaging/jpkid.toml`) parses, and each value it shows
    /// commented out is the default: uncommented, it gives `Config::default()`.
    #[test]
    fn the_packaged_example_shows_the_defaults() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/jpkid.toml"),
        )
        .unwrap();
        assert_eq!(parse(&text).unwrap(), Config::default());
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix('#')
                    .filter(|r| !r.starts_with([' ', '#']))
                    .unwrap_or(l)
            })
            .filter(|l| !l.contains("ocsp_url"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            parse(&uncommented).unwrap(),
            Config::default(),
            "{uncommented}"
        );
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            r#"
            [trust]
            hierarchy = "test"
            roots_dir = "/tmp/roots"
            card_ca_dir = "/tmp/card-ca"
            [revocation]
            mode = "prefer"
            crl_dir = "/tmp/crl"
            ocsp_url = "http://127.0.0.1:8888/"
            accept_stale_crl = true
            [pin_guard]
            min_remaining = 1
            [access]
            allowed_groups = ["jpki", "counter"]
            [readers]
            ignore = ["*Contactless*"]
            [limits]
            op_timeout_ms = 5000
            queue_depth = 2
            claim_idle_s = 30
            [audit]
            enabled = false
            "#,
        )
        .unwrap();
        assert_eq!(c.trust.hierarchy, Hierarchy::Test);
        assert_eq!(c.trust.roots_dir, PathBuf::from("/tmp/roots"));
        assert_eq!(c.trust.card_ca_dir, PathBuf::from("/tmp/card-ca"));
        assert_eq!(c.revocation.mode, RevocationMode::Prefer);
        assert_eq!(c.revocation.crl_dir, PathBuf::from("/tmp/crl"));
        assert_eq!(
            c.revocation.ocsp_url.as_deref(),
            Some("http://127.0.0.1:8888/")
        );
        assert!(c.revocation.accept_stale_crl);
        assert_eq!(c.pin_guard.min_remaining, 1);
        assert_eq!(c.access.allowed_groups, vec!["jpki", "counter"]);
        assert_eq!(c.readers.ignore, vec!["*Contactless*"]);
        assert_eq!(c.limits.op_timeout(), Duration::from_secs(5));
        assert_eq!(c.limits.queue_depth, 2);
        assert_eq!(c.limits.claim_idle(), Duration::from_secs(30));
        assert!(!c.audit.enabled);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        for (text, needle) in [
            ("[pin_guard]\nmin_remainig = 1", "min_remainig"),
            ("[nonsense]\n", "nonsense"),
            ("[trust]\nhierarchy = \"staging\"", "staging"),
            ("[revocation]\nmode = \"maybe\"", "maybe"),
            ("[limits]\nqueue_depth = \"four\"", "queue_depth"),
            ("[limits]\nop_timeout_ms = 0", "op_timeout_ms"),
            ("[limits]\nop_timeout_ms = 999", "op_timeout_ms"),
            ("[limits]\nop_timeout_ms = 60001", "op_timeout_ms"),
            ("[readers]\nignore = [\"[\"]", "readers.ignore"),
            ("[revocation]\nocsp_url = \"ftp://x\"", "ocsp_url"),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(needle), "{text:?} -> {err}");
        }
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Config::load_or_default(Some(Path::new("/nonexistent/jpkid.toml"))).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }
}
