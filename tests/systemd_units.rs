//! The shipped systemd, D-Bus activation, sysusers, tmpfiles and udev files: checked with the
//! systemd tools where they exist (`systemd-analyze verify` and `security`, `systemd-sysusers`
//! and `systemd-tmpfiles` into a scratch root), and for consistency with each other and with
//! DESIGN §6/§7. `udevadm verify` only exists from systemd 254; without it the rules get a
//! syntax check here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn read(p: &str) -> String {
    std::fs::read_to_string(repo(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Whether `tool` is installed. Under `scripts/test.sh` (which installs them and sets
/// `JPKID_REQUIRE_TOOLS=1`) a missing tool fails the test instead of skipping it.
fn have(tool: &str) -> bool {
    let found = installed(tool);
    assert!(
        found || std::env::var_os("JPKID_REQUIRE_TOOLS").is_none(),
        "{tool} is missing, and JPKID_REQUIRE_TOOLS is set"
    );
    found
}

/// Whether an optional tool is installed (`udevadm`: package udev, which `scripts/test.sh` does
/// not install into a container; the rule's syntax is checked by hand without it).
fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `KEY=VALUE` lines of an INI-style unit (all sections), in order.
fn directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn values<'a>(d: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    d.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The unit with ExecStart pointing at the built daemon, in a temporary directory.
fn unit_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let text = read("systemd/jpkid.service").replace(
        "=/usr/bin/jpkid ",
        &format!("={} ", env!("CARGO_BIN_EXE_jpkid")),
    );
    assert!(text.contains(env!("CARGO_BIN_EXE_jpkid")));
    let path = dir.path().join("jpkid.service");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    if !have("systemd-analyze") {
        println!("SKIP: systemd-analyze is not installed (Debian package systemd)");
        return;
    }
    let (_dir, path) = unit_copy();
    // `--man=no`: the unit's Documentation= is jpkid(8), which is installed with the package
    // (scripts/test-package.sh verifies the installed unit, man page and all), not here.
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "systemd-analyze verify failed:\n{err}");
    let about_us: Vec<&str> = err.lines().filter(|l| l.contains("jpkid")).collect();
    assert!(about_us.is_empty(), "warnings about the unit:\n{err}");
}

#[test]
fn unit_exposure_is_low() {
    if !have("systemd-analyze") {
        println!("SKIP: systemd-analyze is not installed (Debian package systemd)");
        return;
    }
    let (_dir, path) = unit_copy();
    // Exposure is 0.0 .. 10.0; --threshold is in tenths. 2.0 = "OK" in systemd's words.
    let o = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "exposure above 2.0:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn unit_has_the_design_settings() {
    let d = directives(&read("systemd/jpkid.service"));
    let one = |k: &str| -> String {
        let v = values(&d, k);
        assert_eq!(v.len(), 1, "{k} set {} times", v.len());
        v[0].to_owned()
    };
    assert_eq!(one("Type"), "dbus");
    assert_eq!(one("BusName"), "io.jpkid.Jpki1");
    assert_eq!(one("User"), "jpkid");
    assert_eq!(one("Group"), "jpkid");
    assert_eq!(
        one("ExecStart"),
        "/usr/bin/jpkid --config /etc/jpkid/jpkid.toml"
    );
    // A daemon that ended any way at all leaves no card unlocked (tests/pcsc_daemon.rs runs
    // the command after a SIGKILL).
    assert_eq!(
        one("ExecStopPost"),
        "/usr/bin/jpkid --config /etc/jpkid/jpkid.toml --unpower-cards"
    );
    // Room to drain: the longest request the configuration allows, plus the margin.
    let stop: u64 = one("TimeoutStopSec").trim_end_matches('s').parse().unwrap();
    assert!(
        stop * 1000 >= jpkid::config::MAX_OP_TIMEOUT_MS + 5_000,
        "TimeoutStopSec={stop}s"
    );
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        // The daemon's own state (the audit key), its and root's alone; not the CRL directory.
        ("StateDirectory", "jpkid/state"),
        ("StateDirectoryMode", "0700"),
        ("LimitCORE", "0"),
    ] {
        assert_eq!(one(k), v, "{k}");
    }
    assert!(values(&d, "SystemCallFilter").contains(&"@system-service"));
    assert!(
        values(&d, "Wants")
            .iter()
            .any(|v| v.contains("pcscd.socket"))
    );
    assert!(
        values(&d, "After")
            .iter()
            .any(|v| v.contains("pcscd.socket"))
    );
    // The comment tells how to open the network for OCSP.
    assert!(
        read("systemd/jpkid.service").contains("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6")
    );
    // The default CRL directory of the configuration is under the StateDirectory.
    let crl_dir = jpkid::config::Config::default().revocation.crl_dir;
    assert!(
        crl_dir.starts_with("/var/lib/jpkid"),
        "{}",
        crl_dir.display()
    );
    assert_eq!(
        jpkid::config::DEFAULT_PATH,
        "/etc/jpkid/jpkid.toml",
        "ExecStart's --config"
    );
}

#[test]
fn activation_file_policy_unit_and_users_agree() {
    let act = directives(&read("systemd/io.jpkid.Jpki1.service"));
    assert!(read("systemd/io.jpkid.Jpki1.service").contains("[D-BUS Service]"));
    assert_eq!(values(&act, "Name"), ["io.jpkid.Jpki1"]);
    assert_eq!(values(&act, "SystemdService"), ["jpkid.service"]);
    assert_eq!(
        values(&act, "Exec"),
        ["/bin/false"],
        "only systemd starts it"
    );
    // The same user as the unit (review: it said root).
    assert_eq!(values(&act, "User"), ["jpkid"]);
    assert_eq!(
        values(&directives(&read("systemd/jpkid.service")), "User"),
        ["jpkid"]
    );

    let policy = read("systemd/io.jpkid.Jpki1.conf");
    assert!(policy.contains(r#"<policy user="jpkid">"#), "{policy}");
    assert!(policy.contains(r#"<policy group="jpki">"#), "{policy}");

    let sysusers = read("systemd/sysusers.d/jpkid.conf");
    let entries: Vec<Vec<&str>> = sysusers
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(entries.iter().any(|e| e[0] == "u" && e[1] == "jpkid"));
    assert!(entries.iter().any(|e| e[0] == "g" && e[1] == "jpki"));
}

#[test]
fn sysusers_and_tmpfiles_apply_to_a_scratch_root() {
    if !have("systemd-sysusers") || !have("systemd-tmpfiles") {
        println!(
            "SKIP: systemd-sysusers/systemd-tmpfiles are not installed (Debian package systemd)"
        );
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    let o = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(repo("systemd/sysusers.d/jpkid.conf"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let group = std::fs::read_to_string(root.path().join("etc/group")).unwrap();
    assert!(passwd.lines().any(|l| l.starts_with("jpkid:")), "{passwd}");
    assert!(passwd.contains("nologin"), "{passwd}");
    assert!(group.lines().any(|l| l.starts_with("jpki:")), "{group}");
    assert!(group.lines().any(|l| l.starts_with("jpkid:")), "{group}");

    let o = Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", root.path().display()))
        .arg("--create")
        .arg(repo("systemd/tmpfiles.d/jpkid.conf"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for d in ["var/lib/jpkid", "var/lib/jpkid/crl"] {
        assert!(root.path().join(d).is_dir(), "{d}");
    }
    // The CRL directory and its parent: root's alone (jpkictl crl import, run as root, refuses
    // a directory another user can write), readable by the daemon.
    use std::os::unix::fs::MetadataExt;
    for d in ["var/lib/jpkid", "var/lib/jpkid/crl"] {
        let m = std::fs::symlink_metadata(root.path().join(d)).unwrap();
        assert!(m.is_dir(), "{d}");
        assert_eq!((m.uid(), m.gid()), (0, 0), "{d}");
        assert_eq!(m.mode() & 0o7777, 0o755, "{d}");
    }
}

/// Keys udev knows, and whether they match (`==`, `!=`) or assign (`=`, `+=`, `-=`, `:=`).
const UDEV_MATCH: &[&str] = &[
    "ACTION",
    "DEVPATH",
    "KERNEL",
    "KERNELS",
    "NAME",
    "SYMLINK",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "DRIVER",
    "DRIVERS",
    "ATTR",
    "ATTRS",
    "SYSCTL",
    "ENV",
    "CONST",
    "TAG",
    "TAGS",
    "TEST",
    "PROGRAM",
    "RESULT",
];
const UDEV_ASSIGN: &[&str] = &[
    "NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL", "ENV", "TAG", "RUN",
    "LABEL", "GOTO", "IMPORT", "OPTIONS",
];

/// Splits a rule line into `key{attr}`, operator, value; checks quoting and commas.
fn udev_items(line: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut items = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let op_at = rest
            .find(['=', '!', '+', '-', ':'])
            .ok_or_else(|| format!("no operator in {rest:?}"))?;
        let key = &rest[..op_at];
        let after = &rest[op_at..];
        let op = ["==", "!=", "+=", "-=", ":=", "="]
            .into_iter()
            .find(|o| after.starts_with(o))
            .ok_or_else(|| format!("bad operator in {rest:?}"))?;
        let after = &after[op.len()..];
        let after = after
            .strip_prefix('"')
            .ok_or_else(|| format!("value of {key} is not quoted"))?;
        let end = after
            .find('"')
            .ok_or_else(|| format!("unterminated value of {key}"))?;
        let value = &after[..end];
        items.push((key.to_owned(), op.to_owned(), value.to_owned()));
        rest = after[end + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
            if rest.is_empty() {
                return Err("trailing comma".to_owned());
            }
        } else if !rest.is_empty() {
            return Err(format!("missing comma before {rest:?}"));
        }
    }
    Ok(items)
}

#[test]
fn udev_rules_are_well_formed() {
    let path = repo("udev/60-jpkid-ccid.rules");
    if installed("udevadm") {
        let o = Command::new("udevadm")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if !err.contains("Unknown command") && !err.contains("unknown command") {
            assert!(o.status.success(), "udevadm verify:\n{err}");
        }
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let mut labels = Vec::new();
    let mut gotos = Vec::new();
    let mut tags_systemd = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let items = udev_items(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        for (key, op, value) in items {
            let base = key.split('{').next().unwrap();
            if key.contains('{') {
                assert!(key.ends_with('}'), "line {}: {key}", n + 1);
            }
            let matching = op == "==" || op == "!=";
            let known = if matching {
                UDEV_MATCH.contains(&base)
            } else {
                UDEV_ASSIGN.contains(&base)
            };
            assert!(known, "line {}: {key}{op} is not a udev rule item", n + 1);
            match base {
                "LABEL" => labels.push(value),
                "GOTO" => gotos.push(value),
                "TAG" if value == "systemd" => tags_systemd = true,
                _ => {}
            }
        }
    }
    for g in &gotos {
        assert!(labels.contains(g), "GOTO {g:?} has no LABEL");
    }
    assert!(tags_systemd, "the reader is tagged for systemd");
    assert!(text.contains(r#"ENV{ID_USB_INTERFACES}=="*:0b0000:*""#));

    // The checker itself rejects what udev rejects.
    assert!(udev_items(r#"ACTION=="add" SUBSYSTEM=="usb""#).is_err());
    assert!(udev_items(r#"ACTION==add"#).is_err());
    assert!(udev_items(r#"ACTION=="add","#).is_err());
}

#[test]
fn every_conf_beside_the_policy_is_dbus_policy() {
    // Test buses (and demo.sh) include systemd/ as a D-Bus policy directory: dbus-daemon reads
    // every *.conf there as busconfig XML, so nothing else may end in .conf at that level.
    for e in std::fs::read_dir(repo("systemd")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && p.extension().is_some_and(|x| x == "conf") {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(
                text.starts_with("<?xml") && text.contains("<busconfig>"),
                "{} is not D-Bus policy",
                p.display()
            );
        }
    }
}

/// Review finding: pcscd's socket, mode 0666 on Debian, let every local user reach the
/// citizen's card. The shipped drop-in gives it to root and group jpkid (the daemon's).
#[test]
fn pcscd_socket_is_root_and_jpkids_alone() {
    let d = directives(&read("systemd/pcscd.socket.d/jpkid.conf"));
    assert_eq!(values(&d, "SocketMode"), ["0660"]);
    assert_eq!(values(&d, "SocketGroup"), ["jpkid"]);
    let unit = directives(&read("systemd/jpkid.service"));
    assert_eq!(values(&unit, "Group"), ["jpkid"]);
    let users = read("systemd/sysusers.d/jpkid.conf");
    assert!(
        users.lines().any(|l| l.starts_with("u jpkid")),
        "the group comes with the user: {users}"
    );
}
