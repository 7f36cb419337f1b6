//! Output: the context of a run, failures with their exit code and hint, time formatting.

use jpkid::api::Error;
use jpkid::client::ClientError;
use serde_json::json;

use crate::msg::{self, Lang, M};

/// Language and output mode of this run.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub lang: Lang,
    pub json: bool,
}

impl Ctx {
    /// A catalogue message with its arguments.
    pub fn t(&self, m: M, args: &[&str]) -> String {
        msg::f(self.lang, m, args)
    }

    /// Prints a JSON value (pretty) on stdout.
    pub fn print_json(&self, v: &serde_json::Value) {
        outln!(
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        );
    }
}

/// Exit codes (documented in `--help`).
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;

/// Why a command failed: what to print and which exit code to use.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    /// Short error name (`PinIncorrect`, `usage`, `config`, `unreachable`, …).
    pub name: String,
    pub message: String,
    pub hint: Option<String>,
    /// Tries left, for PIN errors.
    pub remaining: Option<u8>,
    /// The command already printed its JSON result (which says why it failed).
    pub json_printed: bool,
}

impl Failure {
    pub fn new(code: u8, name: &str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            name: name.to_owned(),
            message: message.into(),
            hint: None,
            remaining: None,
            json_printed: false,
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(EXIT_USAGE, "usage", message)
    }

    pub fn config(message: impl Into<String>) -> Failure {
        Failure::new(EXIT_USAGE, "config", message)
    }

    pub fn failed(name: &str, message: impl Into<String>) -> Failure {
        Failure::new(EXIT_FAILED, name, message)
    }

    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(EXIT_FAILED, "internal", message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// A daemon or bus error, with the hint for the person at the counter.
    pub fn from_client(e: &ClientError, lang: Lang) -> Failure {
        let t = |m: M, a: &[&str]| msg::f(lang, m, a);
        match e {
            ClientError::Connect { bus, .. } => {
                Failure::new(EXIT_UNREACHABLE, "unreachable", chain(e))
                    .with_hint(t(M::HintBus, &[bus]))
            }
            ClientError::NotRunning { .. } => {
                Failure::new(EXIT_UNREACHABLE, "unreachable", chain(e))
                    .with_hint(t(M::HintNotRunning, &[]))
            }
            ClientError::NoAnswer { .. } => Failure::new(EXIT_UNREACHABLE, "unreachable", chain(e))
                .with_hint(t(M::HintNoAnswer, &[])),
            ClientError::AccessDenied { .. } => {
                Failure::failed("AccessDenied", chain(e)).with_hint(t(M::HintNotAuthorized, &[]))
            }
            ClientError::Bus(_) => Failure::failed("dbus", chain(e)),
            ClientError::Daemon(err) => {
                let remaining = e.remaining();
                let n = remaining.map_or_else(|| "?".to_owned(), |r| r.to_string());
                let hint = match err {
                    Error::NoCard(_) => t(M::HintNoCard, &[]),
                    Error::NotJpkiCard(_) => t(M::HintNotJpki, &[]),
                    Error::CardRemoved(_) => t(M::HintCardRemoved, &[]),
                    Error::ReaderBusy(_) => t(M::HintReaderBusy, &[]),
                    Error::ReaderGone(_) => t(M::HintReaderGone, &[]),
                    Error::Claimed(_) => t(M::HintClaimed, &[]),
                    Error::PinIncorrect(_) => t(M::HintPinIncorrect, &[&n]),
                    Error::PinBlocked(_) => t(M::HintPinBlocked, &[]),
                    Error::PinGuard(_) => t(M::HintPinGuard, &[&n]),
                    Error::InvalidPinFormat(_) => t(M::HintPinFormat, &[]),
                    Error::InvalidArgument(_) => t(M::HintInvalidArgument, &[]),
                    Error::CertificateMissing(_) => t(M::HintCertificateMissing, &[]),
                    Error::UnsupportedCard(_) => t(M::HintUnsupported, &[]),
                    Error::NotAuthorized(_) => t(M::HintNotAuthorized, &[]),
                    Error::Timeout(_) => t(M::HintTimeout, &[]),
                    Error::CardError(_) => t(M::HintCardError, &[]),
                    Error::KeyMismatch(_) => t(M::HintKeyMismatch, &[]),
                    _ => t(M::HintInternal, &[]),
                };
                let code = match err {
                    Error::InvalidArgument(_) | Error::InvalidPinFormat(_) => EXIT_USAGE,
                    _ => EXIT_FAILED,
                };
                Failure {
                    code,
                    name: err.short_name().to_owned(),
                    message: err.message(),
                    hint: Some(hint),
                    remaining,
                    json_printed: false,
                }
            }
            _ => Failure::failed("dbus", chain(e)),
        }
    }

    /// Prints the failure: JSON on stdout with `--json`, else a line (and a hint) on stderr.
    pub fn print(&self, lang: Lang, json: bool) {
        if json && self.json_printed {
            return;
        }
        if json {
            let mut v = json!({
                "error": self.name,
                "message": self.message,
                "exit-code": self.code,
            });
            if let Some(h) = &self.hint {
                v["hint"] = json!(h);
            }
            if let Some(r) = self.remaining {
                v["remaining"] = json!(r);
            }
            outln!("{v}");
        } else {
            eprintln!("jpkictl: {}: {}", self.name, self.message);
            if let Some(h) = &self.hint {
                eprintln!("  {}: {h}", msg::f(lang, M::HintLabel, &[]));
            }
        }
    }
}

/// An error and its causes, `a: b: c`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

/// Columns a character takes on a terminal: 2 for East Asian wide and fullwidth forms.
fn columns(c: char) -> usize {
    match u32::from(c) {
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6 => 2,
        _ => 1,
    }
}

/// `s` padded with spaces to `width` terminal columns (labels in Japanese are twice as wide).
pub fn pad(s: &str, width: usize) -> String {
    let used: usize = s.chars().map(columns).sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(used)))
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn time(t: i64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&fmt).ok())
        .unwrap_or_else(|| t.to_string())
}

/// Now, unix seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
