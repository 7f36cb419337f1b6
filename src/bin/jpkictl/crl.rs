//! `jpkictl crl import FILE` and `jpkictl crl status`: local work on `revocation.crl_dir`.

use std::path::{Path, PathBuf};

use jpkid::config::Config;
use jpkid::pki::TrustAnchors;
use jpkid::pki::crl::{self, CrlIndex};
use serde_json::json;

use crate::msg::M;
use crate::out::{self, Ctx, Failure};

/// One installed index, as `crl status` and `check` show it.
#[derive(Debug, Clone)]
pub struct IndexInfo {
    pub path: PathBuf,
    pub issuer_key_id: String,
    pub crl_number: String,
    pub this_update: i64,
    pub next_update: i64,
    pub entries: u64,
    pub stale: bool,
}

/// The configuration, or a config failure (exit 2).
pub fn load_config(ctx: &Ctx, path: Option<&Path>) -> Result<Config, Failure> {
    Config::load_or_default(path)
        .map_err(|e| Failure::config(out::chain(&e)).with_hint(ctx.t(M::HintConfig, &[])))
}

/// The configured trust anchors.
pub fn load_anchors(ctx: &Ctx, config: &Config) -> Result<TrustAnchors, Failure> {
    TrustAnchors::load(config.trust.hierarchy, &config.trust.roots_dir).map_err(|e| {
        Failure::config(out::chain(&e)).with_hint(ctx.t(
            M::HintRoots,
            &[&config.trust.roots_dir.display().to_string()],
        ))
    })
}

/// Every `*.crlidx` of `dir`, sorted by file name; unreadable indexes as `Err((path, why))`.
pub fn list(dir: &Path, now: i64) -> std::io::Result<Vec<Result<IndexInfo, (PathBuf, String)>>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()) == Some(crl::INDEX_EXT)
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|p| match CrlIndex::load(&p) {
            Ok(i) => {
                let h = i.header();
                Ok(IndexInfo {
                    issuer_key_id: hex::encode_upper(&h.key_id),
                    crl_number: hex::encode_upper(&h.crl_number),
                    this_update: h.this_update,
                    next_update: h.next_update,
                    entries: h.count,
                    stale: now > h.next_update,
                    path: p,
                })
            }
            Err(e) => Err((p, out::chain(&e))),
        })
        .collect())
}

/// `crl import FILE`.
pub fn import(ctx: &Ctx, config: Option<&Path>, file: &Path) -> Result<(), Failure> {
    let config = load_config(ctx, config)?;
    let anchors = load_anchors(ctx, &config)?;
    let dir = &config.revocation.crl_dir;
    if !dir.is_dir() {
        return Err(
            Failure::config(ctx.t(M::CrlDirMissing, &[&dir.display().to_string()]))
                .with_hint(ctx.t(M::HintCrlDir, &[&dir.display().to_string()])),
        );
    }
    let r = crl::import(file, dir, &anchors).map_err(|e| {
        let hint = match &e {
            crl::CrlError::Io { path, source }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                ctx.t(M::HintCrlPermission, &[&path.display().to_string()])
            }
            crl::CrlError::Older { .. } | crl::CrlError::LowerNumber { .. } => {
                ctx.t(M::HintCrlOlder, &[])
            }
            crl::CrlError::PartitionedCrl { .. } => ctx.t(M::HintCrlPartitioned, &[]),
            crl::CrlError::Truncated { .. } => ctx.t(M::HintCrlTruncated, &[]),
            crl::CrlError::UnsafeDirectory { path, .. } => {
                ctx.t(M::HintCrlUnsafeDir, &[&path.display().to_string()])
            }
            _ => ctx.t(M::HintCrlImport, &[]),
        };
        Failure::failed("crl", format!("{}: {}", file.display(), out::chain(&e))).with_hint(hint)
    })?;
    let stale = out::now() > r.next_update;
    if ctx.json {
        ctx.print_json(&json!({
            "index": r.index_path.display().to_string(),
            "issuer-key-id": r.issuer_key_id,
            "root": r.root,
            "crl-number": r.crl_number,
            "this-update": r.this_update,
            "next-update": r.next_update,
            "entries": r.entries,
            "serial-width": r.serial_width,
            "source-sha256": r.source_sha256,
            "stale": stale,
        }));
    } else {
        outln!(
            "{}",
            ctx.t(M::CrlImported, &[&r.index_path.display().to_string()])
        );
        outln!(
            "  {} {}",
            out::pad(&ctx.t(M::IssuerKeyId, &[]), 16),
            r.issuer_key_id
        );
        outln!(
            "  {} {}",
            out::pad("thisUpdate", 16),
            out::time(r.this_update)
        );
        outln!(
            "  {} {}",
            out::pad("nextUpdate", 16),
            out::time(r.next_update)
        );
        outln!("  {} {}", out::pad(&ctx.t(M::Entries, &[]), 16), r.entries);
        outln!(
            "  {} {}",
            out::pad(&ctx.t(M::Stale, &[]), 16),
            yes_no(ctx, stale)
        );
        if stale {
            outln!("  {}", ctx.t(M::HintStale, &[]));
        }
    }
    Ok(())
}

/// `crl status`.
pub fn status(ctx: &Ctx, config: Option<&Path>) -> Result<(), Failure> {
    let config = load_config(ctx, config)?;
    let dir = &config.revocation.crl_dir;
    let entries = list(dir, out::now()).map_err(|e| {
        Failure::config(format!("{}: {}", dir.display(), out::chain(&e)))
            .with_hint(ctx.t(M::HintCrlDir, &[&dir.display().to_string()]))
    })?;
    if ctx.json {
        let items: Vec<_> = entries
            .iter()
            .map(|e| match e {
                Ok(i) => json!({
                    "file": i.path.display().to_string(),
                    "issuer-key-id": i.issuer_key_id,
                    "crl-number": i.crl_number,
                    "this-update": i.this_update,
                    "next-update": i.next_update,
                    "entries": i.entries,
                    "stale": i.stale,
                }),
                Err((p, why)) => json!({"file": p.display().to_string(), "error": why}),
            })
            .collect();
        ctx.print_json(&json!({
            "crl-dir": dir.display().to_string(),
            "indexes": items,
        }));
        return Ok(());
    }
    outln!("{}", ctx.t(M::CrlDir, &[&dir.display().to_string()]));
    if entries.is_empty() {
        outln!("  {}", ctx.t(M::CrlNone, &[]));
        return Ok(());
    }
    outln!(
        "  {} {:<24} {:<24} {} {}",
        out::pad(&ctx.t(M::IssuerKeyId, &[]), 42),
        "thisUpdate",
        "nextUpdate",
        pad_left(&ctx.t(M::Entries, &[]), 10),
        ctx.t(M::Stale, &[])
    );
    for e in &entries {
        match e {
            Ok(i) => outln!(
                "  {:<42} {:<24} {:<24} {:>10} {}",
                i.issuer_key_id,
                out::time(i.this_update),
                out::time(i.next_update),
                i.entries,
                yes_no(ctx, i.stale)
            ),
            Err((p, why)) => outln!("  {}: {why}", p.display()),
        }
    }
    Ok(())
}

fn yes_no(ctx: &Ctx, b: bool) -> String {
    ctx.t(if b { M::Yes } else { M::No }, &[])
}

/// `s` right-aligned in `width` terminal columns.
fn pad_left(s: &str, width: usize) -> String {
    let padded = out::pad(s, width);
    let spaces = padded.len() - s.len();
    format!("{}{s}", " ".repeat(spaces))
}
