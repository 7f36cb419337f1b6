//! A clone stands alone: no file of the repository refers to anything outside it, and every
//! document it names is in it. `scripts/test.sh` also runs this (with the tests that read the
//! roots) in a copy of the repository with nothing around it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's own files: everything below the root but build output, VCS data and
/// fuzzing's generated corpora.
fn files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if entry.file_type().unwrap().is_dir() {
                if !matches!(name.as_ref(), ".git" | "target" | "corpus" | "artifacts") {
                    walk(&path, out);
                }
            } else if entry.file_type().unwrap().is_file() {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &mut out);
    assert!(out.len() > 100, "the walk found only {} files", out.len());
    out
}

fn text(path: &Path) -> Option<String> {
    String::from_utf8(std::fs::read(path).ok()?).ok()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// The workplace's folder beside the clone, spelt so this file does not name it itself.
fn outside_names() -> Vec<String> {
    let shared = ["sha", "red"].concat();
    vec![
        format!("../{shared}"),
        format!("{shared}/reference"),
        format!("{shared}/seeds"),
        format!("{shared}/jlis-roots"),
        format!("{shared}/DESIGN"),
    ]
}

#[test]
fn no_file_refers_outside_the_repository() {
    let names = outside_names();
    let mut found = Vec::new();
    for path in files() {
        let Some(text) = text(&path) else { continue };
        for (n, line) in text.lines().enumerate() {
            if names.iter().any(|name| line.contains(name.as_str())) {
                found.push(format!("{}:{}: {}", relative(&path), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "references outside the repository:\n{}",
        found.join("\n")
    );
}

/// `[text](target)` links of a Markdown line that point at a file (not a URL or an anchor).
fn markdown_links(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or("").trim();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(target);
        }
        rest = &rest[end..];
    }
    out
}

/// Inside the repository, after resolving `..`.
fn resolve(base: &Path, target: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in base.join(target).components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out.starts_with(root()).then_some(out)
}

#[test]
fn every_link_of_the_documents_leads_to_a_file_of_the_repository() {
    let mut broken = Vec::new();
    let mut seen = 0;
    for path in files()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let text = text(&path).unwrap();
        let base = path.parent().unwrap();
        for (n, line) in text.lines().enumerate() {
            for target in markdown_links(line) {
                seen += 1;
                if !resolve(base, target).is_some_and(|p| p.exists()) {
                    broken.push(format!("{}:{}: {target}", relative(&path), n + 1));
                }
            }
        }
    }
    assert!(seen > 0, "no links found: the link reader is broken");
    assert!(
        broken.is_empty(),
        "links that lead nowhere:\n{}",
        broken.join("\n")
    );
}

/// Every `docs/<path>.md` named in code comments, scripts and documents is a file of the
/// repository. (The research notes in `docs/reference/` are left out: they also cite other
/// projects' `docs/` files.)
#[test]
fn every_document_the_code_cites_exists() {
    let mut missing = Vec::new();
    let mut seen = 0;
    let research = root().join("docs/reference");
    for path in files().into_iter().filter(|p| !p.starts_with(&research)) {
        let Some(text) = text(&path) else { continue };
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(i) = rest.find("docs/") {
                // Only a path of its own, not the tail of another (`foo/docs/…`, URLs).
                let before = rest[..i].chars().last();
                let tail = &rest[i..];
                let len = tail
                    .find(|c: char| !(c.is_alphanumeric() || "/._-".contains(c) || !c.is_ascii()))
                    .unwrap_or(tail.len());
                let cited = tail[..len].trim_end_matches(['.', '/']);
                rest = &tail[len.max(5)..];
                if before.is_some_and(|c| c.is_alphanumeric() || "/.-_:".contains(c)) {
                    continue;
                }
                if !cited.ends_with(".md") {
                    continue;
                }
                seen += 1;
                if !root().join(cited).is_file() {
                    missing.push(format!("{}:{}: {cited}", relative(&path), n + 1));
                }
            }
        }
    }
    assert!(
        seen > 10,
        "only {seen} citations of docs/ found: the reader is broken"
    );
    assert!(
        missing.is_empty(),
        "cited documents that are not in docs/:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_link_reader_finds_what_it_should() {
    assert_eq!(
        markdown_links("see [a](docs/DESIGN.md#x), [b](https://x/y) and [c](../up.md)"),
        ["docs/DESIGN.md", "../up.md"]
    );
    assert!(resolve(&root(), "../elsewhere.md").is_none());
    assert!(resolve(&root(), "docs/../README.md").is_some());
}
