//! The `jpkictl` binary: argument errors and exit codes, local CRL import and status, `check`
//! without pcscd or daemon, the locale switch, `--json`, and every daemon command against the
//! real `jpkid` on a private system-type bus with the shipped policy (tests/support/bus.rs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support {
    pub mod bus;
}
#[path = "pki_support/crlgen.rs"]
mod crlgen;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::{Digest, Sha256, Sha512};
use serde_json::Value;
use support::bus::{Daemon, DaemonOptions, TestBus, persona, testpki};
use x509_parser::prelude::*;

/// Verification time of the personas' `[expect]` sections.
const AT: i64 = 1_795_000_000;

/// `jpkictl` with a clean environment: English unless the test says otherwise, no pcscd
/// (the client socket points nowhere), no system bus, no USB readers (sysfs points nowhere).
fn jpkictl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jpkictl"));
    c.env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", "C")
        .env("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm")
        .env("SYSFS_PATH", "/nonexistent/sys")
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            "unix:path=/nonexistent/system_bus_socket",
        )
        .stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("jpkictl runs")
}

fn run_with_stdin(c: &mut Command, input: &str) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

/// A configuration with the test hierarchy over the committed roots and an empty CRL dir.
fn temp_config(dir: &Path) -> PathBuf {
    let roots = dir.join("roots");
    let crl = dir.join("crl");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::create_dir_all(&crl).unwrap();
    for f in [
        "sign_root_g1.der",
        "sign_root_g2.der",
        "auth_root_g1.der",
        "auth_root_g2.der",
    ] {
        std::fs::copy(testpki().join(f), roots.join(f)).unwrap();
    }
    let path = dir.join("jpkid.toml");
    std::fs::write(
        &path,
        format!(
            "[trust]\nhierarchy = \"test\"\nroots_dir = \"{}\"\n\n[revocation]\ncrl_dir = \"{}\"\n",
            roots.display(),
            crl.display()
        ),
    )
    .unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// Arguments and exit codes.

/// The files of a CRL directory but the import lock (`.lock`, which every import takes).
fn files_but_the_lock(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != ".lock")
        .count()
}

#[test]
fn argument_errors_exit_2_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["cert", "bogus"], "invalid value 'bogus'"),
        (
            &["sign", "--key", "auth", "--hash", "md5", "--digest", "00"],
            "invalid value 'md5'",
        ),
        (
            &["sign", "--key", "auth", "--digest", "zz"],
            "not a hexadecimal digest",
        ),
        (&["sign", "--key", "auth"], "--digest"),
        (
            &[
                "sign", "--key", "auth", "--hash", "sha256", "--digest", "0011",
            ],
            "a sha256 digest has 32 bytes, --digest has 2",
        ),
        (&["verify", "x.der"], "--purpose"),
        (&["--bus", "bogus", "readers"], "is not a bus"),
        (&["consent", "--out", "c.p7m"], "<ITEM>"),
        (
            &["consent", "my-number", "--out", "c.p7m"],
            "invalid value 'my-number'",
        ),
        (&["consent", "name"], "--out"),
        (&["link-requirement"], "--holding"),
        (&["eligibility", "both"], "invalid value 'both'"),
        (
            &[
                "consent-status",
                "2026-04-01",
                "--certificate-lapse",
                "lost",
            ],
            "invalid value 'lost'",
        ),
        (&["match", "--sign-reader", "x"], "invalid value 'x'"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, want) in cases {
        let o = run(jpkictl().args(*args));
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(want),
            "{args:?}: wanted {want:?} in:\n{}",
            stderr(&o)
        );
    }
}

#[test]
fn secrets_are_never_taken_from_argv() {
    let digest = "00".repeat(32);
    for flag in ["--pin", "--password", "--secret", "--pin=1234"] {
        let o = run(jpkictl().args(["sign", "--key", "auth", "--digest", &digest, flag, "1234"]));
        assert_eq!(code(&o), 2, "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains("unexpected argument"), "{}", stderr(&o));
    }
    // A PIN as a positional argument is refused too.
    let o = run(jpkictl().args(["cert", "sign", "TESTPW1"]));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    for args in [
        &["link", "--password", "TESTPW1"][..],
        &["match", "--pin", "1234"][..],
        &["match", "1234", "TESTPW1"][..],
        &["consent", "name", "--out", "c.p7m", "--password", "TESTPW1"][..],
    ] {
        let o = run(jpkictl().args(args));
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
    // Help says where secrets come from.
    let o = run(jpkictl().arg("--help"));
    assert_eq!(code(&o), 0);
    let help = stdout(&o);
    assert!(help.contains("--pin-stdin"), "{help}");
    assert!(
        help.contains("3  the daemon or the bus is unreachable"),
        "{help}"
    );
}

#[test]
fn unreachable_daemon_exits_3() {
    let o = run(jpkictl().args(["--bus", "unix:path=/nonexistent/bus", "readers"]));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("unreachable"), "{}", stderr(&o));

    let o = run(jpkictl().args(["--json", "status"]));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["error"], "unreachable");
    assert_eq!(v["exit-code"], 3);
    assert!(v["hint"].as_str().unwrap().contains("bus"));
}

#[test]
fn a_bus_without_the_daemon_exits_3_and_says_so() {
    let bus = TestBus::start();
    let o = run(jpkictl().args(["--bus", bus.address(), "pins"]));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("jpkid is not running"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("systemctl"), "{}", stderr(&o));
}

#[test]
fn config_errors_exit_2() {
    let o = run(jpkictl().args(["--config", "/nonexistent/jpkid.toml", "crl", "status"]));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/jpkid.toml"),
        "{}",
        stderr(&o)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[trust]\nhierachy = \"test\"\n").unwrap();
    let o = run(jpkictl().arg("--config").arg(&bad).args(["crl", "status"]));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("hierachy"), "{}", stderr(&o));
}

// ---------------------------------------------------------------------------------------------
// CRL import and status (local).

#[test]
fn crl_import_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let config = temp_config(dir.path());

    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["crl", "status"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("no CRL index installed"),
        "{}",
        stdout(&o)
    );

    for f in ["sign_g2.crl", "auth_g2.crl"] {
        let o = run(jpkictl()
            .arg("--config")
            .arg(&config)
            .args(["crl", "import"])
            .arg(testpki().join(f)));
        assert_eq!(code(&o), 0, "{f}: {}", stderr(&o));
        assert!(stdout(&o).contains("CRL imported"), "{}", stdout(&o));
    }
    // --json on import.
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["--json", "crl", "import"])
        .arg(testpki().join("sign_g1.crl")));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert!(v["index"].as_str().unwrap().ends_with(".crlidx"));
    assert_eq!(v["stale"], false);
    // Under a strict umask (root's 027 or 077 on hardened machines) the index is still
    // readable by the daemon's own user.
    let strict = tempfile::tempdir().unwrap();
    let strict_config = temp_config(strict.path());
    let o = run(std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 077; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_jpkictl"))
        .arg("--config")
        .arg(&strict_config)
        .args(["--json", "crl", "import"])
        .arg(testpki().join("auth_g1.crl")));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let index = json(&o)["index"].as_str().unwrap().to_owned();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&index).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644, "{index}");

    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["--json", "crl", "status"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    let idx = v["indexes"].as_array().unwrap();
    assert_eq!(idx.len(), 3, "{v}");
    for i in idx {
        assert_eq!(i["issuer-key-id"].as_str().unwrap().len(), 40, "{i}");
        assert!(i["next-update"].as_i64().unwrap() > i["this-update"].as_i64().unwrap());
        assert_eq!(i["stale"], false);
    }
    assert!(
        idx.iter().any(|i| i["entries"].as_u64().unwrap() > 0),
        "{v}"
    );

    // Human status: one line per index with the columns.
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["crl", "status"]));
    let text = stdout(&o);
    assert!(text.contains("issuer key id"), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|k| k.len() == 40 && k.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.contains(" UTC") && r.ends_with(" no")),
        "{text}"
    );
}

#[test]
fn crl_import_refuses_a_foreign_or_broken_crl() {
    let dir = tempfile::tempdir().unwrap();
    let config = temp_config(dir.path());
    // Only the sign roots: the auth CRL's issuer is unknown.
    for f in ["auth_root_g1.der", "auth_root_g2.der"] {
        std::fs::remove_file(dir.path().join("roots").join(f)).unwrap();
    }
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["crl", "import"])
        .arg(testpki().join("auth_g2.crl")));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a configured trust anchor"),
        "{}",
        stderr(&o)
    );

    let junk = dir.path().join("junk.crl");
    std::fs::write(&junk, b"not a crl").unwrap();
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["--json", "crl", "import"])
        .arg(&junk));
    assert_eq!(code(&o), 1);
    assert_eq!(json(&o)["error"], "crl");
    // Nothing was written.
    assert_eq!(files_but_the_lock(&dir.path().join("crl")), 0);
}

/// A CRL cut short (an interrupted download): refused with both lengths and the hint to fetch
/// it again, in English and in Japanese; nothing written.
#[test]
fn crl_import_refuses_a_truncated_crl() {
    let dir = tempfile::tempdir().unwrap();
    let config = temp_config(dir.path());
    let full = std::fs::read(testpki().join("sign_g2.crl")).unwrap();
    let file = dir.path().join("cut.crl");
    std::fs::write(&file, &full[..full.len() / 2]).unwrap();
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["crl", "import"])
        .arg(&file));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let announced = format!(
        "announces {} bytes, the file has {}",
        full.len(),
        full.len() / 2
    );
    assert!(
        stderr(&o).contains("truncated")
            && stderr(&o).contains(&announced)
            && stderr(&o).contains("fetch it again"),
        "{}",
        stderr(&o)
    );
    let o = run(jpkictl()
        .env("LANG", "ja_JP.UTF-8")
        .arg("--config")
        .arg(&config)
        .args(["crl", "import"])
        .arg(&file));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("もう一度取得"), "{}", stderr(&o));
    assert_eq!(files_but_the_lock(&dir.path().join("crl")), 0);
}

/// A partitioned CRL (issuingDistributionPoint with onlyContainsUserCerts) of a configured root,
/// correctly signed: refused with its own message and hint, nothing written.
#[test]
fn crl_import_refuses_a_partitioned_crl() {
    let dir = tempfile::tempdir().unwrap();
    let config = temp_config(dir.path());
    let root = std::fs::read(testpki().join("sign_root_g2.der")).unwrap();
    let key = std::fs::read(testpki().join("keys/sign_root_g2.pk8.der")).unwrap();
    let spec = crlgen::CrlSpec {
        issuer_cert_der: &root,
        key_pk8_der: &key,
        this_update: AT - 86_400,
        next_update: Some(AT + 86_400),
        crl_number: 1,
        aki: true,
    };
    let part = crlgen::build_crl_with_extensions(
        &spec,
        &[],
        &crlgen::idp::extension(&[crlgen::idp::only_user_certs()]),
    );
    let file = dir.path().join("part.crl");
    std::fs::write(&file, part).unwrap();
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["crl", "import"])
        .arg(&file));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("partitioned CRL")
            && stderr(&o).contains("onlyContainsUserCerts")
            && stderr(&o).contains("use the issuer's complete CRL file"),
        "{}",
        stderr(&o)
    );
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["--json", "crl", "import"])
        .arg(&file));
    assert_eq!(code(&o), 1);
    assert_eq!(json(&o)["error"], "crl");
    assert_eq!(files_but_the_lock(&dir.path().join("crl")), 0);
}

/// As root, a CRL directory that others can write is refused with its own message and hint.
#[test]
fn crl_import_as_root_refuses_a_writable_crl_dir() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        println!("SKIP crl_import_as_root_refuses_a_writable_crl_dir: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = temp_config(dir.path());
    let crl = dir.path().join("crl");
    std::fs::set_permissions(&crl, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["crl", "import"])
        .arg(testpki().join("sign_g2.crl")));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("is not safe to write into: it is writable by others (mode 0777)")
            && err.contains("chown root:root"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&crl).unwrap().count(), 0);
    // Put right, the same import works.
    std::fs::set_permissions(&crl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["crl", "import"])
        .arg(testpki().join("sign_g2.crl")));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn crl_status_marks_a_stale_index() {
    let dir = tempfile::tempdir().unwrap();
    let config = temp_config(dir.path());
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["crl", "import"])
        .arg(testpki().join("sign_g2_stale.crl")));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("past its nextUpdate"), "{}", stdout(&o));
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["--json", "crl", "status"]));
    assert_eq!(json(&o)["indexes"][0]["stale"], true);
    // check names it NG with the remedy.
    let o = run(jpkictl().arg("--config").arg(&config).arg("check"));
    assert_eq!(code(&o), 1);
    let text = stdout(&o);
    assert!(text.contains("[NG  ] CRL stale"), "{text}");
    assert!(text.contains("jpkictl crl import FILE"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// check, locale, JSON.

#[test]
fn check_without_pcscd_or_daemon_says_ng_and_the_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let config = temp_config(dir.path());
    let o = run(jpkictl().arg("--config").arg(&config).args([
        "--bus",
        "unix:path=/nonexistent/bus",
        "check",
    ]));
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("[OK  ] configuration file"), "{text}");
    assert!(text.contains("[OK  ] clock"), "{text}");
    assert!(
        text.contains("[OK  ] trust roots: 2 for signing, 2 for authentication"),
        "{text}"
    );
    // No CRL imported yet.
    assert!(
        text.contains("[NG  ] CRL: no CRL index installed"),
        "{text}"
    );
    assert!(text.contains("jpkictl crl import FILE"), "{text}");
    #[cfg(feature = "pcsc")]
    {
        assert!(text.contains("[NG  ] pcscd"), "{text}");
        assert!(
            text.contains("systemctl enable --now pcscd.socket"),
            "{text}"
        );
    }
    assert!(text.contains("[NG  ] jpkid on the bus"), "{text}");
    assert!(text.contains("is dbus running?"), "{text}");
    assert!(text.contains("check(s) NG"), "{text}");

    // A bus without the daemon.
    let bus = TestBus::start();
    let o = run(jpkictl()
        .arg("--config")
        .arg(&config)
        .args(["--bus", bus.address(), "check"]));
    assert_eq!(code(&o), 1);
    let text = stdout(&o);
    assert!(text.contains("nobody owns io.jpkid.Jpki1"), "{text}");
    assert!(text.contains("systemctl start jpkid"), "{text}");
}

/// A fake sysfs with one device: `bus/usb/devices/ID` with idVendor/idProduct/product and one
/// interface of the given class.
fn fake_usb(root: &Path, id: &str, vendor: &str, product: &str, name: &str, class: &str) {
    let dev = root.join("bus/usb/devices").join(id);
    let intf = dev.join(format!("{id}:1.0"));
    std::fs::create_dir_all(&intf).unwrap();
    std::fs::write(dev.join("idVendor"), format!("{vendor}\n")).unwrap();
    std::fs::write(dev.join("idProduct"), format!("{product}\n")).unwrap();
    std::fs::write(dev.join("product"), format!("{name}\n")).unwrap();
    std::fs::write(intf.join("bInterfaceClass"), format!("{class}\n")).unwrap();
}

#[test]
fn check_names_usb_readers_and_the_ones_that_are_not_pcsc() {
    let dir = tempfile::tempdir().unwrap();
    let config = temp_config(dir.path());
    let sys = dir.path().join("sys");
    let check = |sys: &Path| {
        stdout(&run(jpkictl()
            .env("SYSFS_PATH", sys)
            .arg("--config")
            .arg(&config)
            .args(["--bus", "unix:path=/nonexistent/bus", "check"])))
    };
    // No USB bus at all.
    let text = check(&sys);
    assert!(
        text.contains("[SKIP] USB reader: no USB bus visible"),
        "{text}"
    );
    // A USB bus with a hub only.
    fake_usb(&sys, "usb1", "1d6b", "0002", "EHCI Host Controller", "09");
    let text = check(&sys);
    assert!(
        text.contains("[SKIP] USB reader: no USB smart-card reader"),
        "{text}"
    );
    // An RC-S380 (vendor-specific interface) and an RC-S300 (CCID).
    fake_usb(&sys, "1-1", "054c", "06c3", "RC-S380/P", "ff");
    fake_usb(&sys, "1-2", "054c", "0dc9", "RC-S300/P", "0b");
    let text = check(&sys);
    assert!(
        text.contains("[NG  ] USB reader: 054c:06c3 RC-S380/P: Sony PaSoRi RC-S380/P, not a PC/SC (CCID) reader on Linux"),
        "{text}"
    );
    assert!(text.contains("replace it with a CCID reader"), "{text}");
    assert!(
        text.contains("[OK  ] USB reader: 054c:0dc9 RC-S300/P: CCID reader"),
        "{text}"
    );
}

#[test]
fn check_reports_a_broken_configuration_and_rejected_roots() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[pin_guard]\nmin_remaining = \"two\"\n").unwrap();
    let o = run(jpkictl().arg("--config").arg(&bad).arg("check"));
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("[NG  ] configuration file"),
        "{}",
        stdout(&o)
    );

    let config = temp_config(dir.path());
    std::fs::write(dir.path().join("roots/junk.pem"), b"not a certificate").unwrap();
    let o = run(jpkictl().arg("--config").arg(&config).arg("check"));
    let text = stdout(&o);
    assert!(text.contains("[NG  ] trust root rejected"), "{text}");
    assert!(
        text.contains("junk.pem: not a PEM or DER certificate"),
        "{text}"
    );
}

#[test]
fn locale_switches_the_human_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = temp_config(dir.path());
    let check = |env: &[(&str, &str)]| {
        let mut c = jpkictl();
        c.arg("--config").arg(&config).arg("check");
        for (k, v) in env {
            c.env(k, v);
        }
        stdout(&run(&mut c))
    };
    let en = check(&[("LANG", "C")]);
    let ja = check(&[("LANG", "ja_JP.UTF-8")]);
    assert!(en.contains("configuration file"), "{en}");
    assert!(!en.contains("設定ファイル"), "{en}");
    assert!(ja.contains("設定ファイル"), "{ja}");
    assert!(ja.contains("NG です"), "{ja}");
    // LC_ALL wins over LANG, LC_MESSAGES over LANG.
    let en2 = check(&[("LANG", "ja_JP.UTF-8"), ("LC_ALL", "C.UTF-8")]);
    assert!(en2.contains("configuration file"), "{en2}");
    let ja2 = check(&[("LANG", "C"), ("LC_MESSAGES", "ja_JP.UTF-8")]);
    assert!(ja2.contains("設定ファイル"), "{ja2}");

    // Error hints follow the locale; error names do not.
    let o = run(jpkictl().env("LANG", "ja_JP.UTF-8").args([
        "--bus",
        "unix:path=/nonexistent/bus",
        "readers",
    ]));
    assert!(stderr(&o).contains("unreachable"), "{}", stderr(&o));
    assert!(stderr(&o).contains("対処"), "{}", stderr(&o));
}

#[test]
fn check_json_parses() {
    let dir = tempfile::tempdir().unwrap();
    let config = temp_config(dir.path());
    let o = run(jpkictl().arg("--config").arg(&config).args([
        "--json",
        "--bus",
        "unix:path=/nonexistent/bus",
        "check",
    ]));
    assert_eq!(code(&o), 1);
    let v = json(&o);
    let steps = v["steps"].as_array().unwrap();
    assert!(v["ng"].as_u64().unwrap() >= 2, "{v}");
    for s in steps {
        let r = s["result"].as_str().unwrap();
        assert!(["OK", "NG", "SKIP"].contains(&r), "{s}");
        if r == "NG" {
            assert!(s["remedy"].as_str().is_some_and(|x| !x.is_empty()), "{s}");
        }
    }
    for id in ["config", "clock", "roots", "crl", "daemon"] {
        assert!(steps.iter().any(|s| s["step"] == id), "no step {id}: {v}");
    }
}

// ---------------------------------------------------------------------------------------------
// Against the real daemon.

struct Live {
    bus: TestBus,
    daemon: Daemon,
}

impl Live {
    fn start(personas: &[&str]) -> Live {
        Live::start_with(DaemonOptions::with_personas(personas))
    }

    fn start_with(options: DaemonOptions) -> Live {
        support::bus::ensure_group("jpki");
        let bus = TestBus::start();
        let n = options.personas.len();
        let daemon = Daemon::start_blocking(&bus, options);
        let live = Live { bus, daemon };
        live.wait_ready(n);
        live
    }

    fn ctl(&self) -> Command {
        let mut c = jpkictl();
        c.args(["--bus", self.bus.address()]);
        c
    }

    /// Waits until every reader has finished probing.
    fn wait_ready(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let o = run(self.ctl().args(["--json", "readers"]));
            if code(&o) == 0 {
                let v = json(&o);
                let list = v.as_array().unwrap();
                if list.len() == n && list.iter().all(|r| r["state"] != "probing") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "readers not ready: {}\n{}",
                stdout(&o),
                self.daemon.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn public_key(cert_der: &[u8]) -> rsa::RsaPublicKey {
    let (_, cert) = X509Certificate::from_der(cert_der).unwrap();
    rsa::RsaPublicKey::from_public_key_der(cert.public_key().raw).unwrap()
}

#[test]
fn status_readers_and_pins() {
    let live = Live::start(&["ordinary"]);
    let o = run(live.ctl().args(["--json", "status"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["trust-hierarchy"], "test");
    assert_eq!(v["readers"][0]["reader"], 0);
    assert_eq!(v["readers"][0]["state"], "ready");
    assert_eq!(v["readers"][0]["card-kind"], "card");
    assert_eq!(v["readers"][0]["claimant"], "");
    assert!(!v["readers"][0]["atr"].as_str().unwrap().is_empty());

    let o = run(live.ctl().arg("status"));
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    assert!(text.contains("trust hierarchy: test"), "{text}");
    assert!(text.contains("[0] "), "{text}");
    assert!(text.contains("state: ready"), "{text}");

    // The reader's Insertions (a count from a random start per daemon instance), as status
    // showed it.
    let o = run(live.ctl().args(["--json", "readers"]));
    let insertions = &json(&o)[0]["insertions"];
    assert!(insertions.is_u64(), "{insertions}");
    assert_eq!(*insertions, v["readers"][0]["insertions"]);

    let o = run(live.ctl().args(["--json", "pins"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["sign-password"], 5);
    assert_eq!(v["auth-pin"], 3);
    assert_eq!(v["text-pin"], 3);
    assert_eq!(v["code-b"], 10);
    let o = run(live.ctl().env("LANG", "ja_JP.UTF-8").arg("pins"));
    assert!(stdout(&o).contains("残り 5 回"), "{}", stdout(&o));

    // A claim shows who holds the reader: bus name, pid and command line.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = live.bus.connect().await;
        let reader = jpkid::client::Client::new(&conn)
            .await
            .unwrap()
            .reader(0)
            .await
            .unwrap();
        reader.claim().await.unwrap();
        let o = run(live.ctl().args(["--json", "readers"]));
        let v = json(&o);
        assert_eq!(v[0]["claimant"], conn.unique_name().unwrap().as_str());
        assert_eq!(v[0]["claimant-pid"], std::process::id());
        let o = run(live.ctl().arg("readers"));
        assert!(
            stdout(&o).contains(&format!("(pid {}: ", std::process::id())),
            "{}",
            stdout(&o)
        );
        // Another client's card call meets the claim, with the hint.
        let o = run(live.ctl().arg("pins"));
        assert_eq!(code(&o), 1);
        assert!(stderr(&o).contains("jpkictl: Claimed: "), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("has claimed this reader"),
            "{}",
            stderr(&o)
        );
        reader.release().await.unwrap();
    });

    // A reader that does not exist is a usage error.
    let o = run(live.ctl().args(["pins", "--reader", "7"]));
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("there is no reader 7"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn certificates_signatures_and_verification() {
    let live = Live::start(&["ordinary"]);
    let dir = tempfile::tempdir().unwrap();

    // auth certificate: no secret; DER to a file, summary on stdout.
    let auth = dir.path().join("auth.der");
    let o = run(live.ctl().args(["cert", "auth", "--out"]).arg(&auth));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("subject"), "{}", stdout(&o));
    let auth_der = std::fs::read(&auth).unwrap();
    let (_, cert) = X509Certificate::from_der(&auth_der).unwrap();
    assert!(stdout(&o).contains(&cert.subject().to_string()));

    // PEM on stdout.
    let o = run(live.ctl().args(["cert", "auth-ca", "--pem"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("-----BEGIN CERTIFICATE-----\n"),
        "{}",
        stdout(&o)
    );

    // sign certificate: the signing password from stdin.
    let sign = dir.path().join("sign.der");
    let o = run_with_stdin(
        live.ctl()
            .args(["--json", "cert", "sign", "--pin-stdin", "--out"])
            .arg(&sign),
        "TESTPW1\n",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["which"], "sign");
    let sign_der = std::fs::read(&sign).unwrap();
    assert_eq!(v["der"], hex::encode_upper(&sign_der));
    // It carries the holder's personal data: owner-only, whatever the umask.
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sign).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // A signature with the auth key over a digest, verified with the certificate.
    let digest = Sha256::digest(b"kiosk login challenge");
    let o = run_with_stdin(
        live.ctl().args([
            "sign",
            "--key",
            "auth",
            "--hash",
            "sha256",
            "--digest",
            &hex::encode(digest),
            "--pin-stdin",
        ]),
        "1234\n",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sig = hex::decode(stdout(&o).trim()).unwrap();
    // The same as JSON.
    let o = run_with_stdin(
        live.ctl().args([
            "--json",
            "sign",
            "--key",
            "auth",
            "--digest",
            &hex::encode(digest),
            "--pin-stdin",
        ]),
        "1234\n",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["hash"], "sha256");
    assert_eq!(v["digest"], hex::encode(digest));
    // PKCS#1 v1.5 is deterministic.
    assert_eq!(v["signature"], hex::encode(&sig));
    public_key(&auth_der)
        .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
        .expect("auth signature verifies");

    // A file signed with the sign key (sha512), signature to a file.
    let doc = dir.path().join("consent.txt");
    std::fs::write(&doc, "同意します").unwrap();
    let sig_path = dir.path().join("consent.sig");
    let o = run_with_stdin(
        live.ctl()
            .args(["sign", "--key", "sign", "--hash", "sha512", "--file"])
            .arg(&doc)
            .arg("--out")
            .arg(&sig_path)
            .arg("--pin-stdin"),
        "TESTPW1\n",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sig = std::fs::read(&sig_path).unwrap();
    let digest = Sha512::digest("同意します".as_bytes());
    public_key(&sign_der)
        .verify(Pkcs1v15Sign::new::<Sha512>(), &digest, &sig)
        .expect("sign signature verifies");

    // Verify what the card gave, as JSON and in words.
    let o = run(live.ctl().args(["--json", "verify"]).arg(&sign).args([
        "--purpose",
        "sign",
        "--at",
        &AT.to_string(),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["status"], "valid");
    assert_eq!(v["revocation-source"], "crl");
    assert!(v["not-after"].as_i64().unwrap() > AT);
    let o = run(live
        .ctl()
        .arg("verify")
        .arg(&auth)
        .args(["--purpose", "auth"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("Verification: valid"), "{}", stdout(&o));
    // PEM written by cert --pem --out verifies the same.
    let pem = dir.path().join("auth.pem");
    let o = run(live
        .ctl()
        .args(["cert", "auth", "--pem", "--out"])
        .arg(&pem));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&pem)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let o = run(live
        .ctl()
        .args(["--json", "verify"])
        .arg(&pem)
        .args(["--purpose", "auth"]));
    assert_eq!(json(&o)["status"], "valid");
    // The wrong purpose fails with exit 1.
    let o = run(live
        .ctl()
        .arg("verify")
        .arg(&auth)
        .args(["--purpose", "sign"]));
    assert_eq!(code(&o), 1, "{}", stdout(&o));

    // A revoked certificate from a file, reason in the result.
    let o = run(live
        .ctl()
        .args(["--json", "verify"])
        .arg(persona("revoked").join("jpki/0001.bin"))
        .args(["--purpose", "sign", "--at", &AT.to_string()]));
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["revocation-reason"], "affiliationChanged");
}

/// A technician seeing no revocation answer learns why, in words (`revocation-detail`).
#[test]
fn verify_says_why_there_is_no_revocation_answer() {
    let live = Live::start_with(DaemonOptions {
        import_crls: false,
        ..DaemonOptions::with_personas(&["ordinary"])
    });
    let cert = persona("ordinary").join("jpki/0001.bin");
    let o = run(live
        .ctl()
        .args(["--json", "verify"])
        .arg(&cert)
        .args(["--purpose", "sign"]));
    let v = json(&o);
    assert_eq!(v["revocation-source"], "none");
    assert_eq!(v["revocation-detail"], "crl-missing");
    let o = run(live
        .ctl()
        .arg("verify")
        .arg(&cert)
        .args(["--purpose", "sign"]));
    let text = stdout(&o);
    assert!(
        text.contains("crl-missing: no CRL for this certificate's issuer"),
        "{text}"
    );
}

#[test]
fn pin_errors_carry_the_tries_and_the_hint() {
    let live = Live::start(&["ordinary"]);
    let digest = hex::encode(Sha256::digest(b"x"));
    let sign = |pin: &str, json: bool, extra: &[&str]| {
        let mut c = live.ctl();
        if json {
            c.arg("--json");
        }
        c.args(["sign", "--key", "auth", "--digest", &digest, "--pin-stdin"])
            .args(extra);
        run_with_stdin(&mut c, &format!("{pin}\n"))
    };
    let o = sign("9999", true, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v: Value = json(&o);
    assert_eq!(v["error"], "PinIncorrect");
    assert_eq!(v["remaining"], 2);
    assert!(v["hint"].as_str().unwrap().contains("2 tries left"), "{v}");

    let o = sign("9999", false, &[]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("1 tries left"), "{}", stderr(&o));

    // Now 1 left, under the guard's floor (2): refused without trying, hint names
    // --allow-last-try.
    let o = sign("9999", false, &[]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.starts_with("jpkictl: PinGuard: remaining=1"), "{err}");
    assert!(err.contains("--allow-last-try"), "{err}");
    let o = run(live.ctl().args(["--json", "pins"]));
    assert_eq!(json(&o)["auth-pin"], 1);

    // Japanese hint.
    let mut c = live.ctl();
    c.env("LANG", "ja_JP.UTF-8").args([
        "sign",
        "--key",
        "auth",
        "--digest",
        &digest,
        "--pin-stdin",
    ]);
    let o = run_with_stdin(&mut c, "9999\n");
    assert!(
        stderr(&o).contains("--allow-last-try を付けて"),
        "{}",
        stderr(&o)
    );

    // With --allow-last-try and the right PIN the counter is back to 3.
    let o = sign("1234", false, &["--allow-last-try"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(live.ctl().args(["--json", "pins"]));
    assert_eq!(json(&o)["auth-pin"], 3);

    // A malformed PIN never reaches the card: exit 2.
    let o = sign("12", false, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("InvalidPinFormat"), "{}", stderr(&o));
    // An endless stdin without a newline (a wrong redirect) is read no further than a PIN
    // could be long, and is a format error too, not a hang.
    let o = run(live
        .ctl()
        .args(["sign", "--key", "auth", "--digest", &digest, "--pin-stdin"])
        .stdin(std::fs::File::open("/dev/zero").unwrap()));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("InvalidPinFormat"), "{}", stderr(&o));
    let o = run(live.ctl().args(["--json", "pins"]));
    assert_eq!(json(&o)["auth-pin"], 3, "a try was spent");

    // Without a terminal and without --pin-stdin: a clear usage error.
    let o = run(live
        .ctl()
        .args(["sign", "--key", "auth", "--digest", &digest])
        .stdin(Stdio::null()));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--pin-stdin"), "{}", stderr(&o));
}

#[test]
fn several_ready_readers_need_reader() {
    let live = Live::start(&["ordinary", "moved"]);
    let o = run(live.ctl().arg("pins"));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--reader N"), "{}", stderr(&o));
    let o = run(live.ctl().args(["--json", "pins", "--reader", "1"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["reader"], 1);
}

#[test]
fn callers_outside_group_jpki_get_the_group_hint() {
    let live = Live::start(&["ordinary"]);
    let o = live
        .bus
        .command_as_nobody(&[], env!("CARGO_BIN_EXE_jpkictl"))
        .env("LANG", "C")
        .args(["--bus", live.bus.address(), "readers"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("group jpki"), "{}", stderr(&o));
}

#[test]
fn check_with_the_daemon_running() {
    let live = Live::start(&["ordinary"]);
    let o = run(live
        .ctl()
        .arg("--config")
        .arg(live.daemon.dir().join("jpkid.toml"))
        .arg("check"));
    let text = stdout(&o);
    assert!(text.contains("[OK  ] jpkid on the bus: version"), "{text}");
    assert!(text.contains("[OK  ] jpkid's readers: [0]"), "{text}");
    assert!(text.contains("ready / card"), "{text}");
    assert!(text.contains("[OK  ] CRL: issuer"), "{text}");
    assert!(!text.contains("trust hierarchy"), "{text}");

    // Looking at another configuration than the daemon's: named.
    let dir = tempfile::tempdir().unwrap();
    let prod = dir.path().join("prod.toml");
    std::fs::write(&prod, "[trust]\nhierarchy = \"production\"\n").unwrap();
    let o = run(live.ctl().arg("--config").arg(&prod).arg("check"));
    let text = stdout(&o);
    assert!(
        text.contains("[NG  ] jpkid's trust hierarchy: the daemon trusts the test hierarchy, this configuration says production"),
        "{text}"
    );
    assert!(text.contains("systemctl restart jpkid"), "{text}");
}

#[cfg(feature = "virtual-card")]
#[test]
fn monitor_follows_card_events() {
    let live = Live::start(&["ordinary"]);
    let mut child = live
        .ctl()
        .args(["--json", "monitor"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Lines come through a thread, so that a missing event fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        rx.recv_timeout(Duration::from_secs(20))
            .expect("a monitor line within 20 s")
    };
    // The starting state comes first, after the subscription.
    let first: Value = serde_json::from_str(&next_line()).unwrap();
    assert_eq!(first["event"], "reader");
    assert_eq!(first["state"], "ready");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = live.bus.connect().await;
        let testing = jpkid::client::Client::new(&conn)
            .await
            .unwrap()
            .testing()
            .await
            .unwrap();
        testing.remove_card(0).await.unwrap();
        testing
            .insert_card(0, persona("ordinary").to_str().unwrap().to_owned())
            .await
            .unwrap();
    });

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let line = next_line();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "state-changed", "{v}");
        assert_eq!(v["reader"], 0);
        seen.push(v["new"].as_str().unwrap().to_owned());
        if seen.ends_with(&["ready".to_owned()]) && seen.contains(&"empty".to_owned()) {
            break;
        }
    }
    assert_eq!(seen.first().map(String::as_str), Some("empty"), "{seen:?}");
    assert!(seen.contains(&"probing".to_owned()), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("ready"), "{seen:?}");

    // The daemon going away is an event too.
    let mut live = live;
    live.daemon.stop();
    let v: Value = serde_json::from_str(&next_line()).unwrap();
    assert_eq!(v["event"], "daemon-stopped", "{v}");

    // SIGTERM (like Ctrl-C) ends it cleanly.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// Through a real pcscd + vpcd (run inside `scripts/pcsc-ns.sh`, which starts pcscd):
// `scripts/pcsc-ns.sh cargo test --test jpkictl -- --ignored --test-threads 1`.

#[cfg(all(feature = "pcsc", feature = "virtual-card"))]
#[test]
#[ignore = "needs pcscd + vpcd in a private namespace: scripts/pcsc-ns.sh"]
fn check_through_pcscd_with_and_without_the_daemon() {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use jpki_vcard::VirtualCard;
    use jpki_vcard::vpcd::{self, ServeOptions};

    assert_eq!(
        std::env::var("JPKID_PCSC_NS").as_deref(),
        Ok("inside"),
        "run through scripts/pcsc-ns.sh (a private pcscd per namespace)"
    );
    // Both vpcd readers listed.
    let ctx = pcsc::Context::establish(pcsc::Scope::User).expect("pcscd of scripts/pcsc-ns.sh");
    let t0 = Instant::now();
    while ctx.list_readers_owned().map(|r| r.len()).unwrap_or(0) < 2 {
        assert!(t0.elapsed() < Duration::from_secs(10), "vpcd readers");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A card in slot 0, none in slot 1.
    let card = VirtualCard::load(&persona("ordinary")).unwrap();
    let _slot0 = vpcd::spawn(
        Arc::new(Mutex::new(card)),
        SocketAddr::from(([127, 0, 0, 1], vpcd::DEFAULT_PORT)),
        ServeOptions {
            connect_timeout: Duration::from_secs(10),
            once: true,
            on_connect: None,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let config = support::bus::write_config(dir.path(), &DaemonOptions::default());
    let bus = TestBus::start();
    let check = || {
        run(Command::new(env!("CARGO_BIN_EXE_jpkictl"))
            .env("LANG", "C")
            .env("SYSFS_PATH", "/nonexistent/sys")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .arg("--config")
            .arg(&config)
            .args(["--bus", bus.address(), "check"]))
    };
    // pcscd and the card, no daemon yet.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = stdout(&check());
        if text.contains("card present") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(text.contains("[OK  ] pcscd: reachable"), "{text}");
    assert!(
        text.contains("[OK  ] PC/SC readers: Virtual PCD 00 00, Virtual PCD 00 01"),
        "{text}"
    );
    assert!(
        text.contains("[OK  ] card: Virtual PCD 00 00: card present, ATR 3B"),
        "{text}"
    );
    assert!(
        text.contains("[SKIP] card: Virtual PCD 00 01: no card"),
        "{text}"
    );
    assert!(
        text.contains("[NG  ] jpkid on the bus: nobody owns"),
        "{text}"
    );

    // The daemon on PC/SC (not --no-pcsc): its view of the same readers.
    support::bus::ensure_group("jpki");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_jpkid"))
        .arg("--config")
        .arg(&config)
        .args(["--bus", bus.address()])
        .env("JPKID_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (o, text) = loop {
        let o = check();
        let text = stdout(&o);
        if text.contains("ready / card") || Instant::now() > deadline {
            break (o, text);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(text.contains("[OK  ] jpkid on the bus: version"), "{text}");
    assert!(
        text.contains("[OK  ] jpkid's readers: [0] Virtual PCD 00 00: ready / card"),
        "{text}"
    );
    assert!(text.contains("Virtual PCD 00 01: empty / none"), "{text}");
    assert_eq!(code(&o), 0, "{text}");
}

#[test]
fn a_daemon_lost_mid_call_exits_3() {
    support::bus::ensure_group("jpki");
    let bus = TestBus::start();
    // A slow card: `pins` takes five APDUs of 300 ms each.
    let slow = support::bus::persona_with_faults("ordinary", &["delay_ms = 300"]);
    let mut daemon = Daemon::start_blocking(
        &bus,
        DaemonOptions {
            personas: vec![slow.path().to_path_buf()],
            ..DaemonOptions::default()
        },
    );
    let live_ctl = || {
        let mut c = jpkictl();
        c.args(["--bus", bus.address()]);
        c
    };
    // Wait for the probe to finish (it also runs at the slow card's pace).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stdout(&run(live_ctl().args(["--json", "readers"]))).contains("\"ready\"") {
        assert!(Instant::now() < deadline, "{}", daemon.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let child = live_ctl()
        .args(["--json", "pins"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // SIGKILL: no goodbye from the daemon, the call is simply never answered.
    let killed = Command::new("kill")
        .args(["-KILL", &daemon.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(daemon.wait_exit(Duration::from_secs(5)).is_some());
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["error"], "unreachable", "{v}");
    assert!(v["hint"].as_str().unwrap().contains("jpkictl pins"), "{v}");
}

#[test]
fn an_activatable_daemon_is_started_by_the_first_call() {
    // A bus that knows how to start jpkid (as the shipped activation file lets the system bus
    // hand over to jpkid.service) but where it is not running yet.
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}", dir.path().join("bus").display());
    let services = dir.path().join("services");
    std::fs::create_dir(&services).unwrap();
    let config = support::bus::write_config(dir.path(), &DaemonOptions::default());
    std::fs::write(
        services.join("io.jpkid.Jpki1.service"),
        format!(
            "[D-BUS Service]\nName=io.jpkid.Jpki1\nExec={} --bus {address} --no-pcsc --config {} --virtual {}\n",
            env!("CARGO_BIN_EXE_jpkid"),
            config.display(),
            persona("ordinary").display()
        ),
    )
    .unwrap();
    let conf = dir.path().join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{}</servicedir>
  <policy context="default">
    <allow own="*"/><allow send_destination="*"/><allow eavesdrop="false"/>
  </policy>
</busconfig>
"#,
            services.display()
        ),
    )
    .unwrap();
    let mut bus = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--nopidfile", "--print-address=1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(bus.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();

    // Without activation jpkictl said "not running" (exit 3) here; now the call starts it.
    let o = run(jpkictl().args(["--bus", &address, "--json", "status"]));
    let _ = bus.kill();
    let _ = bus.wait();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        json(&o)["version"],
        env!("CARGO_PKG_VERSION"),
        "{}",
        stdout(&o)
    );
}

// ---------------------------------------------------------------------------------------------
// The counter flows: link, consent, verify-consent, match, and the rules of the terms.

/// What no output of a counter command may contain: the personas' names, addresses and birth
/// dates (text AP and signing certificate of `ordinary` and `moved`), and the signing password
/// that went in on stdin.
const NEVER_SHOWN: &[&str] = &[
    "試験",
    "東京都",
    "神奈川県",
    "19900102",
    "19850615",
    "TESTPW1",
];

fn assert_nothing_personal(o: &Output, what: &str) {
    let all = format!("{}{}", stdout(o), stderr(o));
    for value in NEVER_SHOWN {
        assert!(
            !all.contains(value),
            "{what}: {value:?} in the output:\n{all}"
        );
    }
}

/// `link` on three cards: an ordinary one gives its issue number and `valid` (subject never
/// shown, `--out` writes the certificate owner-only), a revoked one exits 1 with the reason,
/// a forged one (key not of its certificate) is `KeyMismatch`.
#[test]
fn link_gives_the_issue_number_and_never_the_subject() {
    let live = Live::start(&["ordinary", "revoked", "forged"]);
    let dir = tempfile::tempdir().unwrap();
    let link = |reader: &str, json: bool, extra: &[&str], password: &str| {
        let mut c = live.ctl();
        if json {
            c.arg("--json");
        }
        c.args(["link", "--reader", reader, "--pin-stdin"])
            .args(extra);
        run_with_stdin(&mut c, &format!("{password}\n"))
    };

    let der = dir.path().join("sign.der");
    let o = link("0", false, &["--out", der.to_str().unwrap()], "TESTPW1");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("issue number"), "{text}");
    assert!(text.contains("1A2B3C01"), "{text}");
    assert!(text.contains("certificate              valid"), "{text}");
    assert!(text.contains("not after"), "{text}");
    assert!(text.contains("O=JPKI-TESTPKI"), "{text}");
    let written = std::fs::read(&der).unwrap();
    let (_, cert) = X509Certificate::from_der(&written).unwrap();
    assert_eq!(hex::encode_upper(cert.raw_serial()), "1A2B3C01");
    let subject = cert.subject().to_string();
    assert!(!text.contains(&subject), "the subject was printed:\n{text}");
    assert!(!text.contains("Tokyo"), "{text}");
    assert_nothing_personal(&o, "link");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&der).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    let o = link("0", true, &[], "TESTPW1");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["status"], "valid");
    assert_eq!(v["serial"], "1A2B3C01");
    assert_eq!(v["reader"], 0);
    assert_eq!(v["revocation-source"], "crl");
    assert!(v["not-after"].as_i64().unwrap() > v["not-before"].as_i64().unwrap());
    assert!(
        v.get("subject").is_none() && v.get("certificate").is_none(),
        "{v}"
    );
    assert_nothing_personal(&o, "link --json");

    // Japanese labels.
    let mut c = live.ctl();
    c.env("LANG", "ja_JP.UTF-8")
        .args(["link", "--reader", "0", "--pin-stdin"]);
    let o = run_with_stdin(&mut c, "TESTPW1\n");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("発行番号"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("有効: 証明書チェーン"),
        "{}",
        stdout(&o)
    );

    // Revoked: the result, then exit 1 saying why.
    let o = link("1", false, &[], "TESTPW1");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stdout(&o).contains("C0000004"), "{}", stdout(&o));
    assert!(stdout(&o).contains("affiliationChanged"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("jpkictl: link: the certificate is not valid: revoked"),
        "{}",
        stderr(&o)
    );
    let o = link("1", true, &[], "TESTPW1");
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["revocation-reason"], "affiliationChanged");

    // Forged: the card cannot prove it holds the certificate's key.
    let o = link("2", false, &[], "TESTPW1");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("jpkictl: KeyMismatch: "),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("forged"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    let o = link("2", true, &[], "TESTPW1");
    assert_eq!(code(&o), 1);
    assert_eq!(json(&o)["error"], "KeyMismatch");

    // A wrong password: a try spent and said so.
    let o = link("0", true, &[], "WRONG1");
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["error"], "PinIncorrect");
    assert_eq!(v["remaining"], 4);
    assert_nothing_personal(&o, "link with a wrong password");
}

/// `consent` writes a CMS that `verify-consent` (and openssl) accepts; one changed byte makes
/// it invalid (exit 1); a withdrawal without items withdraws all three.
#[test]
fn consent_and_verify_consent_round_trip() {
    let live = Live::start(&["ordinary"]);
    let dir = tempfile::tempdir().unwrap();
    let cms = dir.path().join("consent.p7m");
    let consent = |args: &[&str], json: bool| {
        let mut c = live.ctl();
        if json {
            c.arg("--json");
        }
        c.arg("consent").args(args).arg("--pin-stdin");
        run_with_stdin(&mut c, "TESTPW1\n")
    };
    let verify = |path: &Path, json: bool| {
        let mut c = live.ctl();
        if json {
            c.arg("--json");
        }
        run(c.arg("verify-consent").arg(path))
    };

    let o = consent(
        &[
            "name",
            "address",
            "--reference",
            "DEMO-1",
            "--out",
            cms.to_str().unwrap(),
        ],
        false,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("Consent signed on the card in reader 0: address, name"),
        "{text}"
    );
    assert!(
        text.contains(r#"{"items":["address","name"],"kind":"consent","reference":"DEMO-1","serial":"1A2B3C01""#),
        "{text}"
    );
    assert!(text.contains("signed at"), "{text}");
    assert_nothing_personal(&o, "consent");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cms).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let der = std::fs::read(&cms).unwrap();

    // openssl agrees that the file is a CMS over the document, under the test root.
    let st = Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any", "-in",
        ])
        .arg(&cms)
        .arg("-CAfile")
        .arg(testpki().join("sign_root_g2.pem"))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    let o = verify(&cms, false);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Consent check: signature valid"), "{text}");
    assert!(text.contains("certificate now          valid"), "{text}");
    assert!(text.contains("certificate at signing   valid"), "{text}");
    assert!(
        text.contains("items                    address, name"),
        "{text}"
    );
    assert!(text.contains("DEMO-1"), "{text}");
    assert_nothing_personal(&o, "verify-consent");
    let o = verify(&cms, true);
    assert_eq!(code(&o), 0);
    let v = json(&o);
    assert_eq!(v["signature"], "valid");
    assert_eq!(v["status"], "valid");
    assert_eq!(v["status-at-signing"], "valid");
    assert_eq!(v["kind"], "consent");
    assert_eq!(v["items"], serde_json::json!(["address", "name"]));
    assert_eq!(v["reference"], "DEMO-1");
    assert_eq!(v["serial"], "1A2B3C01");
    assert_eq!(v["accepted"], true);
    let signed_at = v["signed-at"].as_i64().unwrap();
    let document = v["document"].as_str().unwrap().to_owned();

    // The same consent as JSON from `consent` itself.
    let again = dir.path().join("again.p7m");
    let o = consent(&["birth-date", "--out", again.to_str().unwrap()], true);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["kind"], "consent");
    assert_eq!(v["items"], serde_json::json!(["birth-date"]));
    assert_eq!(v["status"], "valid");
    assert!(v["signed-at"].as_i64().unwrap() >= signed_at);
    assert!(v.get("cms").is_none(), "{v}");

    // One byte of the signed document changed: signature invalid, exit 1.
    let at = der
        .windows(document.len())
        .position(|w| w == document.as_bytes())
        .unwrap();
    let mut changed = der.clone();
    changed[at + document.find("1A2B3C01").unwrap()] = b'2';
    let bad = dir.path().join("changed.p7m");
    std::fs::write(&bad, &changed).unwrap();
    let o = verify(&bad, false);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("Consent check: signature invalid"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o)
            .contains("jpkictl: verify-consent: the consent does not verify: signature invalid"),
        "{}",
        stderr(&o)
    );
    let o = verify(&bad, true);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["signature"], "invalid");
    assert_eq!(v["accepted"], false);
    // Not a CMS at all: the daemon's InvalidArgument, a usage error.
    let junk = dir.path().join("junk.p7m");
    std::fs::write(&junk, b"not a cms").unwrap();
    let o = verify(&junk, false);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("InvalidArgument"), "{}", stderr(&o));
    let o = verify(&dir.path().join("missing.p7m"), false);
    assert_eq!(code(&o), 2, "{}", stderr(&o));

    // A withdrawal: no items = all three.
    let w = dir.path().join("withdrawal.p7m");
    let mut c = live.ctl();
    c.env("LANG", "ja_JP.UTF-8")
        .args(["consent", "--withdraw", "--pin-stdin", "--out"])
        .arg(&w);
    let o = run_with_stdin(&mut c, "TESTPW1\n");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("同意の撤回に署名しました: 住所、氏名、生年月日"),
        "{}",
        stdout(&o)
    );
    let o = verify(&w, true);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["kind"], "withdrawal");
    assert_eq!(
        v["items"],
        serde_json::json!(["address", "name", "birth-date"])
    );
    assert!(v.get("reference").is_none(), "{v}");

    // Items are checked: none without --withdraw, an unknown one, one twice (by the daemon,
    // before the card: no try spent).
    for (args, want) in [
        (&["--out", "x.p7m"][..], "<ITEM>"),
        (&["sex", "--out", "x.p7m"][..], "invalid value 'sex'"),
        (&["name", "name", "--out", "x.p7m"][..], "more than once"),
        (&["name"][..], "--out"),
    ] {
        // stdin stays closed: clap refuses before reading it, the daemon before the card.
        let o = run(live.ctl().arg("consent").args(args).arg("--pin-stdin"));
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    let o = run(live.ctl().args(["--json", "pins"]));
    assert_eq!(json(&o)["sign-password"], 5);
}

/// `match`: yes/no per attribute, never a value; the moved holder's address differs (exit 1,
/// named); a wrong text PIN is reported and the signing password never sent.
#[test]
fn match_says_yes_or_no_and_never_a_value() {
    let live = Live::start(&["ordinary", "moved"]);
    let matching = |reader: &str, json: bool, input: &str| {
        let mut c = live.ctl();
        if json {
            c.arg("--json");
        }
        c.args(["match", "--reader", reader, "--pin-stdin"]);
        run_with_stdin(&mut c, input)
    };
    let o = matching("0", false, "1234\nTESTPW1\n");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for attribute in ["name", "address", "birth date", "sex"] {
        assert!(
            text.contains(&format!("  {attribute:<24} matches\n")),
            "{attribute}: {text}"
        );
    }
    assert!(text.contains("integrity                verified"), "{text}");
    assert!(text.contains("1A2B3C01"), "{text}");
    assert!(text.contains("accepted: all four match"), "{text}");
    assert_nothing_personal(&o, "match");
    let o = matching("0", true, "1234\nTESTPW1\n");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    for key in ["match", "name", "address", "birth-date", "sex", "accepted"] {
        assert_eq!(v[key], true, "{key}: {v}");
    }
    assert_eq!(v["integrity"], "verified");
    assert_eq!(v["status"], "valid");
    assert_eq!(v["serial"], "1A2B3C01");
    assert_nothing_personal(&o, "match --json");

    // The moved holder: the card's address is not the certificate's.
    let o = matching("1", false, "1234\nTESTPW1\n");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("  address                  does not match\n"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("  name                     matches\n"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("accepted:"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("jpkictl: match: not accepted: address does not match"),
        "{}",
        stderr(&o)
    );
    assert_nothing_personal(&o, "match (moved)");
    let o = matching("1", true, "1234\nTESTPW1\n");
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["match"], false);
    assert_eq!(v["address"], false);
    assert_eq!(v["name"], true);
    assert_eq!(v["accepted"], false);
    assert_nothing_personal(&o, "match --json (moved)");
    let mut c = live.ctl();
    c.env("LANG", "ja_JP.UTF-8")
        .args(["match", "--reader", "1", "--pin-stdin"]);
    let o = run_with_stdin(&mut c, "1234\nTESTPW1\n");
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("住所"), "{}", stdout(&o));
    assert!(stdout(&o).contains("不一致"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("受付不可: 住所が一致しません"),
        "{}",
        stderr(&o)
    );
    assert_nothing_personal(&o, "match (ja)");

    // A wrong text PIN: reported; the signing password was never sent.
    let o = matching("0", true, "9999\nTESTPW1\n");
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["error"], "PinIncorrect");
    assert_eq!(v["remaining"], 2);
    let o = run(live.ctl().args(["--json", "pins", "--reader", "0"]));
    let v = json(&o);
    assert_eq!(v["text-pin"], 2);
    assert_eq!(v["sign-password"], 5);
    // Only one line: the signing password is empty, a format error before the card.
    let o = matching("0", false, "1234\n");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("InvalidPinFormat"), "{}", stderr(&o));
    // A --sign-reader that does not exist.
    let o = run(live.ctl().args([
        "match",
        "--reader",
        "0",
        "--sign-reader",
        "9",
        "--pin-stdin",
    ]));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("there is no reader 9 for --sign-reader"),
        "{}",
        stderr(&o)
    );
    // Nor did the daemon's log (audit records included) take any of it.
    let log = live.daemon.stderr();
    assert!(log.contains("match-attributes"), "{log}");
    for value in NEVER_SHOWN {
        assert!(
            !log.contains(value),
            "{value:?} in the daemon's log:\n{log}"
        );
    }
}

/// `match --sign-reader`: the basic four from the card, the signing certificate from the
/// smartphone in the other reader (here another holder's: name and birth date differ); the
/// card's reader is found without --reader.
#[test]
fn match_with_the_signing_certificate_in_another_reader() {
    let live = Live::start(&["ordinary", "android"]);
    let mut c = live.ctl();
    c.args(["--json", "match", "--sign-reader", "1", "--pin-stdin"]);
    let o = run_with_stdin(&mut c, "1234\nTESTPW1\n");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["reader"], 0);
    assert_eq!(v["sign-reader"], 1);
    assert_eq!(v["name"], false);
    assert_eq!(v["birth-date"], false);
    assert_eq!(v["address"], true);
    assert_eq!(v["integrity"], "verified");
    assert_nothing_personal(&o, "match --sign-reader");
    let mut c = live.ctl();
    c.args(["match", "--sign-reader", "1", "--pin-stdin"]);
    let o = run_with_stdin(&mut c, "1234\nTESTPW1\n");
    assert!(
        stdout(&o).contains("the card in reader 0 against the signing certificate in reader 1"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("not accepted: name does not match; birth date does not match"),
        "{}",
        stderr(&o)
    );
}

/// The rules of the terms: each answer explained with its clause, the D-Bus keys with --json,
/// and an impossible date is the daemon's InvalidArgument (exit 2) with a hint naming it.
#[test]
fn rule_commands_explain_their_answer() {
    let live = Live::start(&["ordinary"]);
    let o = run(live.ctl().args(["consent-period", "2024-02-28"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("A consent made on 2024-02-28 runs from 2024-02-29 to 2034-02-28"),
        "{}",
        stdout(&o)
    );
    let o = run(live.ctl().args(["--json", "consent-period", "2025-12-31"]));
    let v = json(&o);
    assert_eq!(v["first-day"], "2026-01-01");
    assert_eq!(v["last-day"], "2035-12-31");
    for args in [
        &["consent-period", "2026-02-30"][..],
        &["consent-status", "2026-04-01", "--on", "2026-02-30"][..],
        &["consent-status", "2026-02-30"][..],
    ] {
        let o = run(live.ctl().args(args));
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.starts_with("jpkictl: InvalidArgument: "), "{err}");
        assert!(
            err.contains("2026-02-30: dates are written YYYY-MM-DD and must exist"),
            "{err}"
        );
        let o = run(live.ctl().arg("--json").args(args));
        assert_eq!(code(&o), 2);
        assert_eq!(json(&o)["error"], "InvalidArgument");
    }

    // 001 §5(2): an expired certificate stops the updates until a new consent.
    let o = run(live.ctl().args([
        "consent-status",
        "2026-04-01",
        "--on",
        "2027-06-01",
        "--certificate-lapse",
        "expiry",
        "--new-certificate",
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("Consent of 2026-04-01, on 2027-06-01"),
        "{text}"
    );
    assert!(
        text.contains("2026-04-02 – 2036-04-01 (within the period)"),
        "{text}"
    );
    assert!(text.contains("updates                  no"), "{text}");
    assert!(text.contains("consent-again: consent again"), "{text}");
    assert!(
        text.contains("001 §5(2): a signing certificate that expired"),
        "{text}"
    );
    let o = run(live.ctl().args([
        "--json",
        "consent-status",
        "2026-04-01",
        "--on",
        "2027-06-01",
        "--withdrawn-on",
        "2027-01-10",
    ]));
    let v = json(&o);
    assert_eq!(v["action"], "report-changes");
    assert_eq!(v["clause"], "000 利用解除");
    assert_eq!(v["in-period"], true);
    assert_eq!(v["updates"], false);
    assert_eq!(v["first-day"], "2026-04-02");
    let o = run(live.ctl().env("LANG", "ja_JP.UTF-8").args([
        "consent-status",
        "2026-04-01",
        "--on",
        "2026-05-01",
        "--holding",
        "license-and-myna-license",
    ]));
    let text = stdout(&o);
    assert!(
        text.contains("なし: 変更は免許情報に反映されません"),
        "{text}"
    );
    assert!(text.contains("001 §5(3)"), "{text}");
    let o = run(live
        .ctl()
        .args(["consent-status", "2026-04-01", "--holding", "both"]));
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("possible values"), "{}", stderr(&o));

    // 000 §4 1回目, §6 ただし, §2(1).
    let o = run(live
        .ctl()
        .args(["link-requirement", "--holding", "myna-license-only"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(
            "Counter submission of the signing certificate for the Mynaportal link: needed"
        ),
        "{text}"
    );
    assert!(text.contains("000 §4 1回目"), "{text}");
    let o = run(live.ctl().args([
        "--json",
        "link-requirement",
        "--holding",
        "license-and-myna-license",
        "--unlinked",
        "--licence-lapsed-after-unlink",
    ]));
    let v = json(&o);
    assert_eq!(v["counter-submission"], "may-be-needed");
    assert_eq!(v["clause"], "000 §6 ただし");
    let o = run(live.ctl().args([
        "--json",
        "link-requirement",
        "--holding",
        "myna-license-only",
        "--one-stop-started",
    ]));
    assert_eq!(json(&o)["counter-submission"], "not-needed");
    let o = run(live.ctl().env("LANG", "ja_JP.UTF-8").args([
        "link-requirement",
        "--holding",
        "history-only",
    ]));
    assert!(stdout(&o).contains("対象外"), "{}", stdout(&o));
    let o = run(live.ctl().arg("link-requirement"));
    assert_eq!(code(&o), 2);

    // 000 §2: a suspended licence loses the licence information and the online lecture.
    let o = run(live
        .ctl()
        .args(["eligibility", "myna-license-only", "--suspended"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("licence suspended"), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no line {name}: {text}"))
            .to_owned()
    };
    assert!(
        line("online renewal lecture").contains("not available"),
        "{text}"
    );
    assert!(
        line("address-change one-stop").contains(" available"),
        "{text}"
    );
    assert!(
        !line("address-change one-stop").contains("not available"),
        "{text}"
    );
    let o = run(live.ctl().args(["--json", "eligibility", "license-only"]));
    let v = json(&o);
    for key in [
        "mynaportal-link",
        "license-info",
        "online-lecture",
        "domicile-change",
        "address-one-stop",
        "notifications",
    ] {
        assert_eq!(v[key], false, "{key}: {v}");
    }
    let o = run(live
        .ctl()
        .args(["--json", "eligibility", "myna-license-only"]));
    assert_eq!(json(&o)["address-one-stop"], true);
    let o = run(live.ctl().args(["eligibility", "licence-only"]));
    assert_eq!(code(&o), 2);
}

/// `authenticity` (the counter's 対面確認) with 照合番号B from stdin: a genuine card exits 0 and
/// says so, in English and Japanese; `--photo FILE` writes the photo (a new file, mode 0600,
/// never shown), refuses an existing file before the card is asked; a card whose chip is not
/// the face's exits 1 naming the part; a wrong code carries the tries left.
#[test]
fn authenticity_says_genuine_or_which_part_failed() {
    let live = Live::start(&["ordinary", "cloned-chip"]);
    let code_b = "02010220357333\n";
    let tmp = tempfile::tempdir().unwrap();
    let photo = tmp.path().join("face.jp2");
    let mut c = live.ctl();
    c.args(["authenticity", "--reader", "0", "--pin-stdin", "--photo"])
        .arg(&photo);
    let o = run_with_stdin(&mut c, code_b);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for line in [
        "CV certificate           verified",
        "card face                verified",
        "chip                     verified",
        "expiry                   2035-01-02",
        "not covered by the face signature",
        "genuine: a card made by J-LIS",
        "compare it with the person",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let written = std::fs::read(&photo).unwrap();
    assert_eq!(&written[..12], b"\0\0\0\x0CjP  \r\n\x87\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&photo).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_nothing_personal(&o, "authenticity");
    assert!(!text.contains("02010220357333"));
    // The photo file is never overwritten: refused before the card is asked.
    let mut c = live.ctl();
    c.args(["authenticity", "--reader", "0", "--pin-stdin", "--photo"])
        .arg(&photo);
    let o = run_with_stdin(&mut c, code_b);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    // JSON, and Japanese.
    let mut c = live.ctl();
    c.args(["--json", "authenticity", "--reader", "0", "--pin-stdin"]);
    let o = run_with_stdin(&mut c, code_b);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["genuine"], true);
    assert_eq!(v["cv-certificate"], "verified");
    assert_eq!(v["card-face"], "verified");
    assert_eq!(v["challenge"], "verified");
    assert_eq!(v["expiry"], "2035-01-02");
    assert!(v.get("photo").is_none(), "{v}");
    let mut c = live.ctl();
    c.env("LANG", "ja_JP.UTF-8")
        .args(["authenticity", "--reader", "0", "--pin-stdin"]);
    let o = run_with_stdin(&mut c, code_b);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("真正"), "{}", stdout(&o));
    assert!(stdout(&o).contains("有効期限"), "{}", stdout(&o));

    // The cloned chip: its face data is genuine, its key is not the face's.
    let mut c = live.ctl();
    c.args(["authenticity", "--reader", "1", "--pin-stdin"]);
    let o = run_with_stdin(&mut c, code_b);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("chip                     failed"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("jpkictl: authenticity: not genuine: chip failed"),
        "{}",
        stderr(&o)
    );
    let mut c = live.ctl();
    c.env("LANG", "ja_JP.UTF-8")
        .args(["authenticity", "--reader", "1", "--pin-stdin"]);
    let o = run_with_stdin(&mut c, code_b);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("真正ではありません"), "{}", stderr(&o));

    // A wrong code: the tries left; a malformed one: the card never saw it.
    let mut c = live.ctl();
    c.args(["--json", "authenticity", "--reader", "0", "--pin-stdin"]);
    let o = run_with_stdin(&mut c, "99999999999999\n");
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["error"], "PinIncorrect");
    assert_eq!(v["remaining"], 9);
    let mut c = live.ctl();
    c.args(["authenticity", "--reader", "0", "--pin-stdin"]);
    let o = run_with_stdin(&mut c, "1234\n");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("InvalidPinFormat"), "{}", stderr(&o));
    let log = live.daemon.stderr();
    assert!(log.contains("check-authenticity"), "{log}");
    assert!(
        !log.contains("02010220357333"),
        "照合番号B in the daemon's log"
    );
}
