//! The D-Bus service end to end: the `jpkid` binary on a private system-type bus whose
//! configuration includes the shipped policy, virtual readers with the committed personas,
//! clients through zbus, `busctl`, `gdbus` and Python.

#![cfg(feature = "virtual-card")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support {
    pub mod bus;
}

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::{Digest, Sha256, Sha384};
use support::bus::{
    Daemon, DaemonOptions, MANAGER_PATH, TestBus, ensure_group, error_of, persona,
    persona_with_faults, wait_for,
};
use x509_parser::prelude::*;
use zbus::message::Type as MsgType;
use zbus::{Connection, MatchRule, MessageStream, OwnedObjectPath, OwnedVariant};

const DEST: &str = "io.jpkid.Jpki1";
const MANAGER: &str = "io.jpkid.Jpki1.Manager";
const READER: &str = "io.jpkid.Jpki1.Reader";
const TESTING: &str = "io.jpkid.Jpki1.Testing";
const R0: &str = "/io/jpkid/Jpki1/reader/0";
const R1: &str = "/io/jpkid/Jpki1/reader/1";
/// The time the personas' expectations hold at (`[expect] at`).
const AT: i64 = 1_795_000_000;

type Opts = HashMap<String, OwnedVariant>;

/// No test may hang: each one ends within this, whatever the daemon does.
const TEST_LIMIT: Duration = Duration::from_secs(120);

async fn limited<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test did not finish in time (a hung call?)");
}
type DbusErr = (String, String);

fn opts(entries: &[(&str, OwnedVariant)]) -> Opts {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.try_clone().unwrap()))
        .collect()
}

fn none() -> Opts {
    Opts::new()
}

async fn call<B, R>(
    conn: &Connection,
    path: &str,
    iface: &str,
    method: &str,
    body: &B,
) -> Result<R, DbusErr>
where
    B: serde::Serialize + zbus::DynamicType,
    R: for<'d> serde::Deserialize<'d> + zbus::Type,
{
    match conn
        .call_method(Some(DEST), path, Some(iface), method, body)
        .await
    {
        Ok(reply) => Ok(reply.body().deserialize::<R>().unwrap()),
        Err(e) => Err(error_of(&e)),
    }
}

async fn pin_status(conn: &Connection, path: &str) -> Result<HashMap<String, u8>, DbusErr> {
    call(conn, path, READER, "GetPinStatus", &()).await
}

async fn read_cert(
    conn: &Connection,
    path: &str,
    which: &str,
    secret: &[u8],
) -> Result<Vec<u8>, DbusErr> {
    call(
        conn,
        path,
        READER,
        "ReadCertificate",
        &(which, secret.to_vec(), none()),
    )
    .await
}

async fn sign(
    conn: &Connection,
    path: &str,
    key: &str,
    hash: &str,
    digest: &[u8],
    secret: &[u8],
    options: Opts,
) -> Result<Vec<u8>, DbusErr> {
    call(
        conn,
        path,
        READER,
        "Sign",
        &(key, hash, digest.to_vec(), secret.to_vec(), options),
    )
    .await
}

async fn prop(conn: &Connection, path: &str, iface: &str, name: &str) -> OwnedVariant {
    call(
        conn,
        path,
        "org.freedesktop.DBus.Properties",
        "Get",
        &(iface, name),
    )
    .await
    .unwrap()
}

async fn prop_str(conn: &Connection, path: &str, name: &str) -> String {
    String::try_from(prop(conn, path, READER, name).await).unwrap()
}

fn assert_err<T: std::fmt::Debug>(r: Result<T, DbusErr>, name: &str) -> String {
    match r {
        Err((n, m)) if n == format!("io.jpkid.Jpki1.Error.{name}") => m,
        other => panic!("expected {name}, got {other:?}"),
    }
}

/// A stream of signals matching `interface` (and `member`, when given) from anyone.
async fn signals(conn: &Connection, interface: &str, member: Option<&str>) -> MessageStream {
    let mut rule = MatchRule::builder()
        .msg_type(MsgType::Signal)
        .interface(interface.to_owned());
    if let Some(m) = member {
        rule = rule.member(m.to_owned());
    }
    MessageStream::for_match_rule(rule.build().unwrap(), conn, None)
        .await
        .unwrap()
}

/// The next signal of `stream` for which `f` gives `Some`, within 10 s.
async fn next_signal<T>(
    stream: &mut MessageStream,
    mut f: impl FnMut(&zbus::Message) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("signal in time")
            .expect("stream open")
            .unwrap();
        if let Some(v) = f(&msg) {
            return v;
        }
    }
}

fn state_changed(msg: &zbus::Message) -> Option<(String, String, String, String)> {
    let hdr = msg.header();
    let path = hdr.path()?.to_string();
    let (old, new, reason): (String, String, String) = msg.body().deserialize().ok()?;
    Some((path, old, new, reason))
}

fn public_key(der: &[u8]) -> rsa::RsaPublicKey {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    rsa::RsaPublicKey::from_public_key_der(cert.public_key().raw).unwrap()
}

async fn start(personas: &[&str]) -> (TestBus, Daemon, Connection) {
    let bus = TestBus::start();
    let daemon = Daemon::start(&bus, DaemonOptions::with_personas(personas)).await;
    let conn = bus.connect().await;
    (bus, daemon, conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_readers_and_properties() {
    limited(async {
        let (_bus, _daemon, conn) = start(&["ordinary", "not-jpki"]).await;
        let readers: Vec<OwnedObjectPath> = call(&conn, MANAGER_PATH, MANAGER, "GetReaders", &())
            .await
            .unwrap();
        let readers: Vec<String> = readers.iter().map(|p| p.to_string()).collect();
        assert_eq!(readers, vec![R0, R1]);
        let version =
            String::try_from(prop(&conn, MANAGER_PATH, MANAGER, "Version").await).unwrap();
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
        let hierarchy =
            String::try_from(prop(&conn, MANAGER_PATH, MANAGER, "TrustHierarchy").await).unwrap();
        assert_eq!(hierarchy, "test");
        let listed: Vec<OwnedObjectPath> =
            Vec::try_from(prop(&conn, MANAGER_PATH, MANAGER, "Readers").await).unwrap();
        assert_eq!(listed.len(), 2);

        let wait_ready = |path: &'static str, want: &'static str| {
            let conn = conn.clone();
            async move {
                wait_for("reader state", Duration::from_secs(10), || {
                    let conn = conn.clone();
                    async move { (prop_str(&conn, path, "State").await == want).then_some(()) }
                })
                .await
            }
        };
        wait_ready(R0, "ready").await;
        wait_ready(R1, "unsupported").await;
        assert_eq!(prop_str(&conn, R0, "Name").await, "jpkid Virtual Reader 0");
        assert_eq!(prop_str(&conn, R0, "CardKind").await, "card");
        assert_eq!(prop_str(&conn, R1, "CardKind").await, "none");
        assert_eq!(prop_str(&conn, R0, "Claimant").await, "");
        // A count from a random start per daemon instance: read, not assumed.
        let _insertions = u32::try_from(prop(&conn, R0, READER, "Insertions").await).unwrap();
        let atr: Vec<u8> = Vec::try_from(prop(&conn, R0, READER, "Atr").await).unwrap();
        assert!(!atr.is_empty());

        // The ObjectManager lists both readers with their properties.
        type Managed = HashMap<OwnedObjectPath, HashMap<String, HashMap<String, OwnedVariant>>>;
        let managed: Managed = call(
            &conn,
            MANAGER_PATH,
            "org.freedesktop.DBus.ObjectManager",
            "GetManagedObjects",
            &(),
        )
        .await
        .unwrap();
        let mut with_reader: Vec<&str> = managed
            .iter()
            .filter(|(_, ifaces)| ifaces.contains_key(READER))
            .map(|(p, _)| p.as_str())
            .collect();
        with_reader.sort_unstable();
        assert_eq!(with_reader, vec![R0, R1], "{managed:?}");
        assert!(managed[&OwnedObjectPath::try_from(R0).unwrap()][READER].contains_key("State"));
        // Not-JPKI card: the named error.
        assert_err(pin_status(&conn, R1).await, "NotJpkiCard");
        // A method the contract does not have.
        let (name, _) = call::<_, (String, String)>(
            &conn,
            MANAGER_PATH,
            MANAGER,
            "ConsentPeriods",
            &("2026-01-01",),
        )
        .await
        .unwrap_err();
        assert_eq!(name, "org.freedesktop.DBus.Error.UnknownMethod");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_status_certificates_and_signatures_verify() {
    limited(async {
        let (_bus, _daemon, conn) = start(&["ordinary"]).await;
        let before = pin_status(&conn, R0).await.unwrap();
        assert_eq!(before["sign-password"], 5);
        assert_eq!(before["auth-pin"], 3);
        assert_eq!(before["text-pin"], 3);

        let auth_cert = read_cert(&conn, R0, "auth", b"").await.unwrap();
        let digest = Sha256::digest(b"kiosk login challenge");
        let sig = sign(&conn, R0, "auth", "sha256", &digest, b"1234", none())
            .await
            .unwrap();
        public_key(&auth_cert)
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
            .expect("auth signature verifies with the auth certificate");

        let sign_cert = read_cert(&conn, R0, "sign", b"TESTPW1").await.unwrap();
        let digest = Sha384::digest(b"consent document");
        let sig = sign(&conn, R0, "sign", "sha384", &digest, b"TESTPW1", none())
            .await
            .unwrap();
        public_key(&sign_cert)
            .verify(Pkcs1v15Sign::new::<Sha384>(), &digest, &sig)
            .expect("sign signature verifies with the sign certificate");

        for which in ["auth-ca", "sign-ca"] {
            let der = read_cert(&conn, R0, which, b"").await.unwrap();
            assert!(X509Certificate::from_der(&der).is_ok(), "{which}");
        }
        // Correct PINs leave the counters where they were.
        assert_eq!(pin_status(&conn, R0).await.unwrap(), before);

        // VerifyCertificate on what the card gave.
        let result: HashMap<String, OwnedVariant> = call(
            &conn,
            MANAGER_PATH,
            MANAGER,
            "VerifyCertificate",
            &(
                sign_cert.clone(),
                "sign",
                opts(&[("at", OwnedVariant::from(AT))]),
            ),
        )
        .await
        .unwrap();
        let s = |k: &str| String::try_from(result[k].try_clone().unwrap()).unwrap();
        assert_eq!(s("status"), "valid", "{result:?}");
        assert_eq!(s("serial"), "1A2B3C01");
        assert!(s("issuer").contains("JPKI-TESTPKI"));
        assert!(!s("subject").is_empty());
        assert_eq!(s("root").len(), 64);
        assert_eq!(s("revocation-source"), "crl");
        assert!(i64::try_from(result["not-before"].try_clone().unwrap()).unwrap() < AT);
        assert!(i64::try_from(result["not-after"].try_clone().unwrap()).unwrap() > AT);
        let mut keys: Vec<&str> = result.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            vec![
                "issuer",
                "not-after",
                "not-before",
                "revocation-source",
                "root",
                "serial",
                "status",
                "subject"
            ]
        );
    })
    .await;
}

async fn verify_file(
    conn: &Connection,
    persona_name: &str,
    file: &str,
    purpose: &str,
) -> HashMap<String, OwnedVariant> {
    let der = std::fs::read(persona(persona_name).join(file)).unwrap();
    call(
        conn,
        MANAGER_PATH,
        MANAGER,
        "VerifyCertificate",
        &(der, purpose, opts(&[("at", OwnedVariant::from(AT))])),
    )
    .await
    .unwrap()
}

fn text(m: &HashMap<String, OwnedVariant>, k: &str) -> String {
    String::try_from(m[k].try_clone().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_certificate_outcomes() {
    limited(async {
        let (_bus, _daemon, conn) = start(&["ordinary"]).await;
        let revoked = verify_file(&conn, "revoked", "jpki/0001.bin", "sign").await;
        assert_eq!(text(&revoked, "status"), "revoked", "{revoked:?}");
        assert_eq!(text(&revoked, "serial"), "C0000004");
        assert_eq!(text(&revoked, "revocation-reason"), "affiliationChanged");
        assert_eq!(text(&revoked, "revocation-source"), "crl");
        assert!(i64::try_from(revoked["revoked-at"].try_clone().unwrap()).unwrap() > 0);

        let expired = verify_file(&conn, "expired", "jpki/0001.bin", "sign").await;
        assert_eq!(text(&expired, "status"), "expired", "{expired:?}");
        assert!(!expired.contains_key("revocation-reason"));

        let valid_auth = verify_file(&conn, "ordinary", "jpki/000A.bin", "auth").await;
        assert_eq!(text(&valid_auth, "status"), "valid", "{valid_auth:?}");
        let wrong = verify_file(&conn, "ordinary", "jpki/000A.bin", "sign").await;
        assert_ne!(text(&wrong, "status"), "valid");

        // Default `at` is now: the expired certificate stays expired.
        let der = std::fs::read(persona("expired").join("jpki/0001.bin")).unwrap();
        let now: HashMap<String, OwnedVariant> = call(
            &conn,
            MANAGER_PATH,
            MANAGER,
            "VerifyCertificate",
            &(der.clone(), "sign", none()),
        )
        .await
        .unwrap();
        assert_eq!(text(&now, "status"), "expired");

        let malformed: HashMap<String, OwnedVariant> = call(
            &conn,
            MANAGER_PATH,
            MANAGER,
            "VerifyCertificate",
            &(vec![0x30u8, 0x03, 1, 2, 3], "sign", none()),
        )
        .await
        .unwrap();
        assert_eq!(text(&malformed, "status"), "malformed");

        for (body_purpose, options) in [
            ("signing", none()),
            ("sign", opts(&[("at", OwnedVariant::from(5u32))])),
            ("sign", opts(&[("when", OwnedVariant::from(5i64))])),
        ] {
            assert_err(
                call::<_, HashMap<String, OwnedVariant>>(
                    &conn,
                    MANAGER_PATH,
                    MANAGER,
                    "VerifyCertificate",
                    &(der.clone(), body_purpose, options),
                )
                .await,
                "InvalidArgument",
            );
        }
        assert_err(
            call::<_, HashMap<String, OwnedVariant>>(
                &conn,
                MANAGER_PATH,
                MANAGER,
                "VerifyCertificate",
                &(Vec::<u8>::new(), "sign", none()),
            )
            .await,
            "InvalidArgument",
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_named_and_change_nothing() {
    limited(async {
        let (_bus, _daemon, conn) = start(&["ordinary"]).await;
        let before = pin_status(&conn, R0).await.unwrap();
        let d256 = [7u8; 32];
        for r in [
            read_cert(&conn, R0, "signature", b"").await,
            read_cert(&conn, R0, "auth-ca", b"1234").await,
            sign(&conn, R0, "encrypt", "sha256", &d256, b"1234", none()).await,
            sign(&conn, R0, "auth", "md5", &d256, b"1234", none()).await,
            sign(&conn, R0, "auth", "sha256", &[], b"1234", none()).await,
            sign(&conn, R0, "auth", "sha256", &[7u8; 33], b"1234", none()).await,
            sign(&conn, R0, "auth", "sha512", &[7u8; 4096], b"1234", none()).await,
            sign(
                &conn,
                R0,
                "auth",
                "sha256",
                &d256,
                b"1234",
                opts(&[("colour", OwnedVariant::from(true))]),
            )
            .await,
            sign(
                &conn,
                R0,
                "auth",
                "sha256",
                &d256,
                b"1234",
                opts(&[("allow-last-try", OwnedVariant::from(1u32))]),
            )
            .await,
            sign(
                &conn,
                R0,
                "auth",
                "sha256",
                &d256,
                b"1234",
                opts(&[("timeout-ms", OwnedVariant::from(-1i64))]),
            )
            .await,
        ] {
            assert_err(r, "InvalidArgument");
        }
        for r in [
            sign(&conn, R0, "auth", "sha256", &d256, b"12a4", none()).await,
            sign(&conn, R0, "auth", "sha256", &d256, b"12345", none()).await,
            sign(&conn, R0, "sign", "sha256", &d256, b"pw", none()).await,
            sign(&conn, R0, "sign", "sha256", &d256, b"PASS WORD", none()).await,
            read_cert(&conn, R0, "sign", b"").await,
        ] {
            let m = assert_err(r, "InvalidPinFormat");
            assert!(!m.contains("12a4") && !m.contains("PASS"), "{m}");
        }
        assert_eq!(
            pin_status(&conn, R0).await.unwrap(),
            before,
            "no try was spent"
        );

        // An object path no reader has: the bus library's own error.
        let (name, _) = pin_status(&conn, "/io/jpkid/Jpki1/reader/9")
            .await
            .unwrap_err();
        assert_eq!(name, "org.freedesktop.DBus.Error.UnknownObject");
        // Wrong D-Bus signature: the bus library's InvalidArgs.
        let (name, _) = call::<_, Vec<u8>>(&conn, R0, READER, "ReadCertificate", &("auth",))
            .await
            .unwrap_err();
        assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_blocked_pins_and_the_guard() {
    limited(async {
        let (_bus, _daemon, conn) = start(&["ordinary", "blocked"]).await;
        let d = [1u8; 32];
        let m = assert_err(
            sign(&conn, R0, "auth", "sha256", &d, b"9999", none()).await,
            "PinIncorrect",
        );
        assert!(m.starts_with("remaining=2"), "{m}");
        let m = assert_err(
            sign(&conn, R0, "auth", "sha256", &d, b"9999", none()).await,
            "PinIncorrect",
        );
        assert!(m.starts_with("remaining=1"), "{m}");
        // One try left, below pin_guard.min_remaining = 2: refused without touching the PIN.
        let m = assert_err(
            sign(&conn, R0, "auth", "sha256", &d, b"1234", none()).await,
            "PinGuard",
        );
        assert!(m.starts_with("remaining=1"), "{m}");
        assert_eq!(pin_status(&conn, R0).await.unwrap()["auth-pin"], 1);
        // The caller accepts the risk: the right PIN works and resets the counter.
        sign(
            &conn,
            R0,
            "auth",
            "sha256",
            &d,
            b"1234",
            opts(&[("allow-last-try", OwnedVariant::from(true))]),
        )
        .await
        .unwrap();
        assert_eq!(pin_status(&conn, R0).await.unwrap()["auth-pin"], 3);

        // The `blocked` persona: signing password blocked, one auth try left.
        let status = pin_status(&conn, R1).await.unwrap();
        assert_eq!(status["sign-password"], 0);
        assert_eq!(status["auth-pin"], 1);
        assert_err(
            sign(&conn, R1, "sign", "sha256", &d, b"TESTPW1", none()).await,
            "PinBlocked",
        );
        assert_err(read_cert(&conn, R1, "sign", b"TESTPW1").await, "PinBlocked");
        let m = assert_err(
            sign(&conn, R1, "auth", "sha256", &d, b"1234", none()).await,
            "PinGuard",
        );
        assert!(m.starts_with("remaining=1"), "{m}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testing_interface_drives_states_and_signals() {
    limited(async {
        let (_bus, _daemon, conn) = start(&["ordinary"]).await;
        let watcher = _bus.connect().await;
        let mut states = signals(&watcher, READER, Some("StateChanged")).await;
        let mut props = signals(
            &watcher,
            "org.freedesktop.DBus.Properties",
            Some("PropertiesChanged"),
        )
        .await;
        wait_for("ready", Duration::from_secs(10), || {
            let conn = conn.clone();
            async move { (prop_str(&conn, R0, "State").await == "ready").then_some(()) }
        })
        .await;

        call::<_, ()>(&conn, MANAGER_PATH, TESTING, "RemoveCard", &(0u32,))
            .await
            .unwrap();
        let (path, old, new, reason) = next_signal(&mut states, state_changed).await;
        assert_eq!(
            (path.as_str(), old.as_str(), new.as_str()),
            (R0, "ready", "empty")
        );
        assert_eq!(reason, "card removed");
        let changed = next_signal(&mut props, |m| {
            let (iface, changed, _): (String, HashMap<String, OwnedVariant>, Vec<String>) =
                m.body().deserialize().ok()?;
            (iface == READER && changed.contains_key("State")).then_some(changed)
        })
        .await;
        assert_eq!(
            String::try_from(changed["State"].try_clone().unwrap()).unwrap(),
            "empty"
        );
        assert_err(pin_status(&conn, R0).await, "NoCard");
        assert_eq!(prop_str(&conn, R0, "CardKind").await, "none");

        let before = u32::try_from(prop(&conn, R0, READER, "Insertions").await).unwrap();
        let not_jpki = persona("not-jpki");
        call::<_, ()>(
            &conn,
            MANAGER_PATH,
            TESTING,
            "InsertCard",
            &(0u32, not_jpki.to_str().unwrap()),
        )
        .await
        .unwrap();
        let (_, old, new, reason) = next_signal(&mut states, state_changed).await;
        assert_eq!(
            (old.as_str(), new.as_str(), reason.as_str()),
            ("empty", "probing", "card inserted")
        );
        let (_, _, new, _) = next_signal(&mut states, state_changed).await;
        assert_eq!(new, "unsupported");
        assert_err(pin_status(&conn, R0).await, "NotJpkiCard");
        assert_eq!(
            u32::try_from(prop(&conn, R0, READER, "Insertions").await).unwrap(),
            before.wrapping_add(1)
        );

        call::<_, ()>(&conn, MANAGER_PATH, TESTING, "RemoveCard", &(0u32,))
            .await
            .unwrap();
        let ordinary = persona("ordinary");
        call::<_, ()>(
            &conn,
            MANAGER_PATH,
            TESTING,
            "InsertCard",
            &(0u32, ordinary.to_str().unwrap()),
        )
        .await
        .unwrap();
        next_signal(&mut states, |m| {
            let (_, _, new, _) = state_changed(m)?;
            (new == "ready").then_some(())
        })
        .await;
        assert!(pin_status(&conn, R0).await.is_ok());

        assert_err(
            call::<_, ()>(
                &conn,
                MANAGER_PATH,
                TESTING,
                "InsertCard",
                &(0u32, "/nonexistent/persona"),
            )
            .await,
            "InvalidArgument",
        );
        assert_err(
            call::<_, ()>(&conn, MANAGER_PATH, TESTING, "RemoveCard", &(7u32,)).await,
            "ReaderGone",
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_appear_with_interfaces_added() {
    limited(async {
        // Subscribe before the daemon starts: InterfacesAdded and ReaderAdded for both readers.
        let bus = TestBus::start();
        let watcher = bus.connect().await;
        let mut added = signals(
            &watcher,
            "org.freedesktop.DBus.ObjectManager",
            Some("InterfacesAdded"),
        )
        .await;
        let mut reader_added = signals(&watcher, MANAGER, Some("ReaderAdded")).await;
        let _daemon =
            Daemon::start(&bus, DaemonOptions::with_personas(&["ordinary", "blocked"])).await;
        let mut paths = Vec::new();
        while paths.len() < 2 {
            let (path, ifaces) = next_signal(&mut added, |m| {
                let (path, ifaces): (
                    OwnedObjectPath,
                    HashMap<String, HashMap<String, OwnedVariant>>,
                ) = m.body().deserialize().ok()?;
                Some((path.to_string(), ifaces))
            })
            .await;
            assert!(ifaces.contains_key(READER), "{ifaces:?}");
            paths.push(path);
        }
        paths.sort();
        assert_eq!(paths, vec![R0, R1]);
        let first = next_signal(&mut reader_added, |m| {
            let (p,): (OwnedObjectPath,) = m.body().deserialize().ok()?;
            Some(p.to_string())
        })
        .await;
        assert_eq!(first, R0);
    })
    .await;
}

/// The library API the binary uses, in this process: readers that come and go become objects
/// that come and go (InterfacesAdded/Removed, ReaderAdded/Removed, the Readers property).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_leaving_remove_their_objects() {
    limited(async {
        use jpkid::readers::{ReaderManager, ReadersConfig};
        use jpkid::service::{Service, ServiceOptions};

        let bus = TestBus::start();
        let server = bus.connect().await;
        let client = bus.connect().await;
        let (readers, events) = ReaderManager::start(ReadersConfig {
            pcsc: false,
            ..ReadersConfig::default()
        })
        .unwrap();
        let id = readers.add_virtual_reader("In-process Reader").unwrap();
        let mut removed = signals(
            &client,
            "org.freedesktop.DBus.ObjectManager",
            Some("InterfacesRemoved"),
        )
        .await;
        let mut manager_signals = signals(&client, MANAGER, None).await;
        let service = Service::start(
            &server,
            readers.clone(),
            events,
            ServiceOptions {
                config: jpkid::config::Config::default(),
                anchors: jpkid::pki::TrustAnchors::new(jpkid::pki::Hierarchy::Test),
                crl: None,
                ocsp: None,
                card_ca: jpkid::pki::cvc::CardCaKeys::none(jpkid::pki::Hierarchy::Test),
                audit_key: jpkid::audit::AuditKey::ephemeral(),
                terminal: "test-counter".to_owned(),
                testing: true,
            },
        )
        .await
        .unwrap();
        service.request_name().await.unwrap();
        let path = jpkid::api::reader_path(id);
        let added = next_signal(&mut manager_signals, |m| {
            let member = m.header().member()?.to_string();
            let (p,): (OwnedObjectPath,) = m.body().deserialize().ok()?;
            (member == "ReaderAdded").then(|| p.to_string())
        })
        .await;
        assert_eq!(added, path);

        readers.remove_reader(id);
        let (gone, ifaces) = next_signal(&mut removed, |m| {
            let (p, ifaces): (OwnedObjectPath, Vec<String>) = m.body().deserialize().ok()?;
            Some((p.to_string(), ifaces))
        })
        .await;
        assert_eq!(gone, path);
        assert!(ifaces.contains(&READER.to_owned()), "{ifaces:?}");
        let removed_signal = next_signal(&mut manager_signals, |m| {
            let member = m.header().member()?.to_string();
            let (p,): (OwnedObjectPath,) = m.body().deserialize().ok()?;
            (member == "ReaderRemoved").then(|| p.to_string())
        })
        .await;
        assert_eq!(removed_signal, path);
        let listed: Vec<OwnedObjectPath> = call(&client, MANAGER_PATH, MANAGER, "GetReaders", &())
            .await
            .unwrap();
        assert!(listed.is_empty());

        // The same name comes back with the same id and a new object.
        let again = readers.add_virtual_reader("In-process Reader").unwrap();
        assert_eq!(again, id);
        let back = next_signal(&mut manager_signals, |m| {
            let member = m.header().member()?.to_string();
            let (p,): (OwnedObjectPath,) = m.body().deserialize().ok()?;
            (member == "ReaderAdded").then(|| p.to_string())
        })
        .await;
        assert_eq!(back, path);
        assert_eq!(jpkid::api::reader_id(&back), Some(id));
        service.stop(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_bind_to_the_caller_and_end_when_it_leaves() {
    limited(async {
        let (bus, _daemon, a) = start(&["ordinary"]).await;
        let b = bus.connect().await;
        let a_name = a.unique_name().unwrap().to_string();
        call::<_, ()>(&a, R0, READER, "Claim", &()).await.unwrap();
        assert_eq!(prop_str(&b, R0, "Claimant").await, a_name);
        let m = assert_err(pin_status(&b, R0).await, "Claimed");
        assert!(m.contains(&a_name), "{m}");
        assert_err(call::<_, ()>(&b, R0, READER, "Claim", &()).await, "Claimed");
        assert_err(
            call::<_, ()>(&b, R0, READER, "Release", &()).await,
            "Claimed",
        );
        assert_err(
            sign(&b, R0, "auth", "sha256", &[0u8; 32], b"1234", none()).await,
            "Claimed",
        );
        // The claimant itself works, and claiming twice is fine.
        pin_status(&a, R0).await.unwrap();
        call::<_, ()>(&a, R0, READER, "Claim", &()).await.unwrap();
        // Release, claim again, then leave the bus: the claim ends.
        call::<_, ()>(&a, R0, READER, "Release", &()).await.unwrap();
        assert_eq!(prop_str(&b, R0, "Claimant").await, "");
        call::<_, ()>(&a, R0, READER, "Claim", &()).await.unwrap();
        a.close().await.unwrap();
        wait_for("claim to end", Duration::from_secs(10), || {
            let b = b.clone();
            async move { prop_str(&b, R0, "Claimant").await.is_empty().then_some(()) }
        })
        .await;
        pin_status(&b, R0).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_claims_lapse() {
    limited(async {
        let bus = TestBus::start();
        let _daemon = Daemon::start(
            &bus,
            DaemonOptions {
                claim_idle_s: 1,
                ..DaemonOptions::default()
            },
        )
        .await;
        let a = bus.connect().await;
        let b = bus.connect().await;
        call::<_, ()>(&a, R0, READER, "Claim", &()).await.unwrap();
        assert_err(pin_status(&b, R0).await, "Claimed");
        wait_for("idle claim to lapse", Duration::from_secs(10), || {
            let b = b.clone();
            async move { prop_str(&b, R0, "Claimant").await.is_empty().then_some(()) }
        })
        .await;
        pin_status(&b, R0).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_call_leaves_the_daemon_serving() {
    limited(async {
        // Every APDU takes 60 ms, so a PIN status request (7 APDUs) runs for about 420 ms.
        let slow = persona_with_faults("ordinary", &["delay_ms = 60"]);

        let bus = TestBus::start();
        let _daemon = Daemon::start(
            &bus,
            DaemonOptions {
                personas: vec![slow.path().to_owned()],
                ..DaemonOptions::default()
            },
        )
        .await;
        let b = bus.connect().await;
        wait_for("ready", Duration::from_secs(20), || {
            let b = b.clone();
            async move { (prop_str(&b, R0, "State").await == "ready").then_some(()) }
        })
        .await;
        let mut states = signals(&b, READER, Some("StateChanged")).await;

        let a = bus.connect().await;
        let a_name = a.unique_name().unwrap().to_string();
        let first = tokio::spawn({
            let a = a.clone();
            async move { pin_status(&a, R0).await }
        });
        // Wait until the first request runs, then queue a second one and leave the bus.
        next_signal(&mut states, |m| {
            let (_, _, new, _) = state_changed(m)?;
            (new == "busy").then_some(())
        })
        .await;
        let second = tokio::spawn({
            let a = a.clone();
            async move { pin_status(&a, R0).await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        a.close().await.unwrap();
        let proxy = zbus::fdo::DBusProxy::new(&b).await.unwrap();
        wait_for("the client to be gone", Duration::from_secs(10), || {
            let proxy = proxy.clone();
            let name = a_name.clone();
            async move {
                let n = zbus::names::BusName::try_from(name.as_str()).unwrap();
                (!proxy.name_has_owner(n).await.unwrap_or(true)).then_some(())
            }
        })
        .await;
        assert!(first.await.unwrap().is_err());
        assert!(second.await.unwrap().is_err());

        // The daemon serves the next client; the abandoned queued request never ran.
        let status = pin_status(&b, R0).await.unwrap();
        assert_eq!(status["auth-pin"], 3);
        let mut busy = 1; // the first request, seen above
        while let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(300), states.next()).await
        {
            if let Some((_, _, new, reason)) = state_changed(&m)
                && new == "busy"
            {
                busy += 1;
                assert!(reason.contains("pin-status"));
            }
        }
        assert_eq!(
            busy, 2,
            "A's first request and B's ran; A's queued one was skipped"
        );
    })
    .await;
}

fn output(cmd: &mut std::process::Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busctl_and_gdbus_clients() {
    limited(async {
    let (bus, _daemon, conn) = start(&["ordinary"]).await;
    wait_for("ready", Duration::from_secs(10), || {
        let conn = conn.clone();
        async move { (prop_str(&conn, R0, "State").await == "ready").then_some(()) }
    })
    .await;
    let (ok, text) = output(bus.command("busctl").args([
        "--system",
        "call",
        DEST,
        MANAGER_PATH,
        MANAGER,
        "GetReaders",
    ]));
    assert!(ok, "{text}");
    assert_eq!(text.trim(), format!("ao 1 \"{R0}\""));
    let (ok, text) =
        output(
            bus.command("busctl")
                .args(["--system", "call", DEST, R0, READER, "GetPinStatus"]),
        );
    assert!(ok, "{text}");
    assert!(
        text.contains("\"auth-pin\" 3") && text.contains("\"sign-password\" 5"),
        "{text}"
    );
    let (ok, text) =
        output(
            bus.command("busctl")
                .args(["--system", "get-property", DEST, R0, READER, "State"]),
        );
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "s \"ready\"");

    let (ok, text) = output(bus.command("gdbus").args([
        "call",
        "--system",
        "--dest",
        DEST,
        "--object-path",
        R0,
        "--method",
        "io.jpkid.Jpki1.Reader.GetPinStatus",
    ]));
    assert!(ok, "{text}");
    assert!(
        text.contains("'auth-pin': byte 0x03") || text.contains("'auth-pin': 0x03"),
        "{text}"
    );
    // A named error through gdbus: an empty digest.
    let (ok, text) = output(bus.command("gdbus").args([
        "call",
        "--system",
        "--dest",
        DEST,
        "--object-path",
        R0,
        "--method",
        "io.jpkid.Jpki1.Reader.Sign",
        "auth",
        "sha256",
        "@ay []",
        "@ay []",
        "@a{sv} {}",
    ]));
    assert!(!ok);
    assert!(
        text.contains("io.jpkid.Jpki1.Error.InvalidArgument"),
        "{text}"
    );
    let (ok, text) = output(bus.command("gdbus").args([
        "call", "--system", "--dest", DEST, "--object-path", R0, "--method",
        "io.jpkid.Jpki1.Reader.Sign", "auth", "sha256",
        "@ay [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32]",
        "@ay [0x39,0x39,0x39,0x39]", "@a{sv} {}",
    ]));
    assert!(!ok);
    assert!(
        text.contains("io.jpkid.Jpki1.Error.PinIncorrect: remaining=2"),
        "{text}"
    );

    // The remaining methods, from the command line too.
    let busctl = |args: &[&str]| output(bus.command("busctl").arg("--system").args(args));
    let (ok, text) = busctl(&["call", DEST, R0, READER, "Claim"]);
    assert!(ok, "{text}");
    // busctl's connection ended with the command, and the claim with it.
    let (ok, text) = busctl(&["get-property", DEST, R0, READER, "Claimant"]);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "s \"\"", "a claim outlived its claimant");
    // Releasing what one does not hold is harmless (a kiosk may release defensively).
    let (ok, text) = busctl(&["call", DEST, R0, READER, "Release"]);
    assert!(ok, "{text}");
    // ReadCertificate through gdbus: the auth certificate needs no secret.
    let (ok, text) = output(bus.command("gdbus").args([
        "call",
        "--system",
        "--dest",
        DEST,
        "--object-path",
        R0,
        "--method",
        "io.jpkid.Jpki1.Reader.ReadCertificate",
        "auth",
        "@ay []",
        "@a{sv} {}",
    ]));
    assert!(ok, "{text}");
    let der = read_cert(&conn, R0, "auth", b"").await.unwrap();
    let bytes = text.matches("0x").count();
    assert_eq!(bytes, der.len(), "gdbus printed {bytes} bytes: {text:.200}");
    // VerifyCertificate through busctl: `ay N b1 b2 …` and an empty a{sv}.
    let mut args: Vec<String> = [
        "call",
        DEST,
        MANAGER_PATH,
        MANAGER,
        "VerifyCertificate",
        "aysa{sv}",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(der.len().to_string());
    args.extend(der.iter().map(u8::to_string));
    args.extend(["auth".to_owned(), "0".to_owned()]);
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = busctl(&arg_refs);
    assert!(ok, "{text}");
    assert!(text.contains("\"status\" s \"valid\""), "{text}");
    // The Testing interface: take the card out and put another in.
    let (ok, text) = busctl(&["call", DEST, MANAGER_PATH, TESTING, "RemoveCard", "u", "0"]);
    assert!(ok, "{text}");
    let (_, text) = busctl(&["get-property", DEST, R0, READER, "State"]);
    assert_eq!(text.trim(), "s \"empty\"");
    let dir = persona("ordinary").display().to_string();
    let (ok, text) = busctl(&[
        "call",
        DEST,
        MANAGER_PATH,
        TESTING,
        "InsertCard",
        "us",
        "0",
        &dir,
    ]);
    assert!(ok, "{text}");
    wait_for("ready again", Duration::from_secs(10), || {
        let conn = conn.clone();
        async move { (prop_str(&conn, R0, "State").await == "ready").then_some(()) }
    })
    .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_policy_refuses_strangers_and_daemon_refuses_other_groups() {
    limited(async {
        // The group must exist before the bus reads its policy.
        ensure_group("jpki");
        let bus = TestBus::start();
        let _daemon = Daemon::start(
            &bus,
            DaemonOptions {
                allowed_groups: vec!["some-other-group".to_owned()],
                ..DaemonOptions::default()
            },
        )
        .await;
        let get_readers = [
            "call",
            "--system",
            "--dest",
            DEST,
            "--object-path",
            MANAGER_PATH,
            "--method",
            "io.jpkid.Jpki1.Manager.GetReaders",
        ];
        // nobody without groups: the bus policy says no.
        let (ok, text) = output(bus.command_as_nobody(&[], "gdbus").args(get_readers));
        assert!(!ok);
        assert!(
            text.contains("org.freedesktop.DBus.Error.AccessDenied"),
            "{text}"
        );
        let (ok, text) = output(bus.command_as_nobody(&[], "busctl").args([
            "--system",
            "call",
            DEST,
            R0,
            READER,
            "GetPinStatus",
        ]));
        assert!(!ok);
        assert!(
            text.to_lowercase().contains("access denied") || text.contains("AccessDenied"),
            "{text}"
        );
        // nobody in group jpki passes the bus, but the daemon allows only some-other-group.
        let (ok, text) = output(bus.command_as_nobody(&["jpki"], "gdbus").args(get_readers));
        assert!(!ok);
        assert!(
            text.contains("io.jpkid.Jpki1.Error.NotAuthorized"),
            "{text}"
        );
        let (ok, text) = output(bus.command_as_nobody(&["jpki"], "gdbus").args([
            "call",
            "--system",
            "--dest",
            DEST,
            "--object-path",
            R0,
            "--method",
            "io.jpkid.Jpki1.Reader.GetPinStatus",
        ]));
        assert!(!ok);
        assert!(
            text.contains("io.jpkid.Jpki1.Error.NotAuthorized"),
            "{text}"
        );
        // Root may.
        let (ok, text) = output(bus.command("gdbus").args(get_readers));
        assert!(ok, "{text}");
    })
    .await;
}

/// Defect (review): a user outside group `jpki` received jpkid's signals — `StateChanged` with
/// "request started: sign", claimants, ATRs, card kinds: what happens at the counter. The policy
/// lets only root and `jpki` receive from jpkid; a member still hears everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_outside_the_group_hear_no_signal() {
    limited(async {
        ensure_group("jpki");
        let bus = TestBus::start();
        let _daemon = Daemon::start(&bus, DaemonOptions::default()).await;
        let conn = bus.connect().await;
        let monitor = |groups: &[&str]| {
            bus.command_as_nobody(groups, "gdbus")
                .args(["monitor", "--system", "--dest", DEST])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let outsider = monitor(&[]);
        let member = monitor(&["jpki"]);
        // Both have subscribed when gdbus has seen the name (it prints its owner first).
        tokio::time::sleep(Duration::from_millis(700)).await;
        for _ in 0..2 {
            call::<_, ()>(&conn, MANAGER_PATH, TESTING, "RemoveCard", &(0u32,))
                .await
                .unwrap();
            let p = persona("ordinary");
            call::<_, ()>(
                &conn,
                MANAGER_PATH,
                TESTING,
                "InsertCard",
                &(0u32, p.to_str().unwrap()),
            )
            .await
            .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let heard = |mut child: std::process::Child| {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let outsider = heard(outsider);
        let member = heard(member);
        assert!(
            member.contains("StateChanged"),
            "the member hears: {member}"
        );
        for what in [
            "StateChanged",
            "PropertiesChanged",
            "InterfacesAdded",
            "ready",
        ] {
            assert!(
                !outsider.contains(what),
                "an outsider heard {what}: {outsider}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_an_allowed_group_may_call() {
    limited(async {
        ensure_group("jpki");
        let bus = TestBus::start();
        let _daemon = Daemon::start(&bus, DaemonOptions::default()).await;
        let (ok, text) = output(bus.command_as_nobody(&["jpki"], "gdbus").args([
            "call",
            "--system",
            "--dest",
            DEST,
            "--object-path",
            R0,
            "--method",
            "io.jpkid.Jpki1.Reader.GetPinStatus",
        ]));
        assert!(ok, "{text}");
        assert!(text.contains("auth-pin"), "{text}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_hold_no_pin_and_no_attribute() {
    limited(async {
        let bus = TestBus::start();
        let state = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(
            &bus,
            DaemonOptions {
                log: "trace".to_owned(),
                env: vec![(
                    "STATE_DIRECTORY".to_owned(),
                    state.path().display().to_string(),
                )],
                ..DaemonOptions::default()
            },
        )
        .await;
        let conn = bus.connect().await;
        let d = Sha256::digest(b"x");
        // Wrong PINs with distinctive values, then the right ones.
        assert_err(
            sign(&conn, R0, "auth", "sha256", &d, b"8642", none()).await,
            "PinIncorrect",
        );
        assert_err(
            sign(&conn, R0, "sign", "sha256", &d, b"ZQXJ5948", none()).await,
            "PinIncorrect",
        );
        assert_err(
            sign(&conn, R0, "auth", "sha256", &d, b"86x2", none()).await,
            "InvalidPinFormat",
        );
        sign(&conn, R0, "auth", "sha256", &d, b"1234", none())
            .await
            .unwrap();
        let cert = read_cert(&conn, R0, "sign", b"TESTPW1").await.unwrap();
        let v: HashMap<String, OwnedVariant> = call(
            &conn,
            MANAGER_PATH,
            MANAGER,
            "VerifyCertificate",
            &(cert.clone(), "sign", none()),
        )
        .await
        .unwrap();
        let subject = text(&v, "subject");
        let (_, parsed) = X509Certificate::from_der(&cert).unwrap();
        let cn = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap()
            .to_owned();

        let log = daemon.stderr();
        assert!(
            log.contains("target") || log.contains("TRACE") || log.len() > 1000,
            "trace logging is on"
        );
        assert!(log.contains("audit"), "audit records are written");
        for secret in [
            "8642",
            "ZQXJ5948",
            "86x2",
            "TESTPW1",
            "38363432",
            "5A51584A35393438",
            "5a51584a35393438",
            "[56, 54, 52, 50]",
            "[49, 50, 51, 52]",
            "31323334",
            "[84, 69, 83, 84",
        ] {
            assert!(!contains_token(&log, secret), "the log contains {secret:?}");
        }
        assert!(!log.contains(&subject), "the log contains the subject");
        assert!(!log.contains(&cn), "the log contains the CN");
        // The audit record names the serial only by its keyed tag (review defect: an unkeyed
        // 32-bit hash of a 4-byte serial is reversed by trying them all), under the key the
        // daemon made in its state directory, mode 0400.
        assert!(!log.contains("1A2B3C01"));
        let key_file = state.path().join(jpkid::audit::KEY_FILE);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
        let key = jpkid::audit::AuditKey::load_or_create(&key_file).unwrap();
        assert!(
            log.contains(&format!("serial_tag={}", key.tag("1A2B3C01"))),
            "{log}"
        );
        use sha2::Digest as _;
        let unkeyed = hex::encode(&Sha256::digest(b"1A2B3C01")[..4]);
        assert!(!log.contains(&unkeyed), "the unkeyed hash is gone");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_taken_and_bad_configuration_fail_clearly() {
    limited(async {
        let (bus, daemon, _conn) = start(&["ordinary"]).await;
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_jpkid"))
            .args(["--config"])
            .arg(daemon.dir().join("jpkid.toml"))
            .args(["--bus", bus.address(), "--no-pcsc"])
            .env("JPKID_LOG", "off")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("already owned"), "{err}");

        let bad = bus.dir().join("bad.toml");
        std::fs::write(&bad, "[pin_guard]\nmin_remainig = 1\n").unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_jpkid"))
            .arg("--config")
            .arg(&bad)
            .args(["--bus", bus.address(), "--no-pcsc"])
            .env("JPKID_LOG", "off")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("min_remainig"), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_releases_the_name() {
    limited(async {
        let bus = TestBus::start();
        let mut daemon = Daemon::start(
            &bus,
            DaemonOptions {
                log: "info,jpkid=debug".to_owned(),
                ..DaemonOptions::default()
            },
        )
        .await;
        let conn = bus.connect().await;
        let status = daemon.stop().unwrap();
        let log = daemon.stderr();
        assert!(status.success(), "{status:?}\n{log}");
        // No core dump of a memory that held PINs (the unit also sets LimitCORE=0).
        assert!(log.contains("process marked not dumpable"), "{log}");
        assert!(log.contains("draining the requests in flight"), "{log}");
        let proxy = zbus::fdo::DBusProxy::new(&conn).await.unwrap();
        let name = zbus::names::BusName::try_from(DEST).unwrap();
        assert!(!proxy.name_has_owner(name).await.unwrap());
        drop(bus);
    })
    .await;
}

/// Defect (review): OCSP had per-step timeouts only — a responder that trickles its answer held
/// a `VerifyCertificate` (and a blocking thread) forever. One deadline ends the exchange: the
/// call answers within `limits.op_timeout_ms`, and says why there is no revocation answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_ocsp_responder_cannot_hold_a_verification() {
    limited(async {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    for _ in 0..600 {
                        if s.write_all(b"H").is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                });
            }
        });
        let bus = TestBus::start();
        let _daemon = Daemon::start(
            &bus,
            DaemonOptions {
                op_timeout_ms: 2_000,
                revocation_mode: "require".to_owned(),
                import_crls: false,
                ocsp_url: Some(format!("http://127.0.0.1:{port}/")),
                ..DaemonOptions::default()
            },
        )
        .await;
        let conn = bus.connect().await;
        let cert = std::fs::read(persona("ordinary").join("jpki/0001.bin")).unwrap();
        let h = jpkid::tlv::read_header(&cert, 0).unwrap();
        let der = cert[..h.total_len()].to_vec();
        let r: HashMap<String, OwnedVariant> = call(
            &conn,
            MANAGER_PATH,
            MANAGER,
            "VerifyCertificate",
            &(der, "sign", none()),
        )
        .await
        .unwrap();
        let text = |k: &str| String::try_from(r[k].try_clone().unwrap()).unwrap();
        assert_eq!(text("status"), "revocation-unknown");
        assert_eq!(text("revocation-source"), "none");
        assert_eq!(text("revocation-detail"), "ocsp-unreachable");
    })
    .await;
}

/// Defect (review): SIGHUP and SIGQUIT ended the daemon at once, without the drain that locks a
/// card in the middle of a PIN flow. Each stops it as SIGTERM does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_sigquit_drain_like_sigterm() {
    limited(async {
        for signal in [
            nix::sys::signal::Signal::SIGHUP,
            nix::sys::signal::Signal::SIGQUIT,
        ] {
            let bus = TestBus::start();
            let mut daemon = Daemon::start(&bus, DaemonOptions::default()).await;
            let pid = nix::unistd::Pid::from_raw(i32::try_from(daemon.pid()).unwrap());
            nix::sys::signal::kill(pid, signal).unwrap();
            let status = daemon.wait_exit(Duration::from_secs(10)).unwrap();
            let log = daemon.stderr();
            assert!(status.success(), "{signal}: {status:?}\n{log}");
            assert!(log.contains("draining the requests in flight"), "{log}");
            assert!(log.contains(signal.as_str()), "{log}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_bus_ends_the_daemon_with_an_error() {
    limited(async {
        let (bus, mut daemon, conn) = start(&["ordinary"]).await;
        drop(conn);
        drop(bus);
        let status = tokio::task::spawn_blocking(move || {
            let st = daemon.wait_exit(Duration::from_secs(10));
            (st, daemon.stderr())
        })
        .await
        .unwrap();
        let (st, stderr) = status;
        let st = st.expect("jpkid exits when its bus goes away");
        assert_eq!(st.code(), Some(2), "{stderr}");
        assert!(stderr.contains("D-Bus connection closed"), "{stderr}");
    })
    .await;
}

/// `examples/kiosk_client.py` (Debian python3-dbus) against the private bus: it waits for a
/// card, then reads the auth certificate and signs; its signature verifies. With `--counter` it
/// links and signs a consent that the daemon verifies, and releases the reader either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_kiosk_client() {
    limited(async {
        let python = "/usr/bin/python3";
        let has_dbus = std::process::Command::new(python)
            .args(["-c", "import dbus"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            has_dbus,
            "{python} needs the dbus module (Debian package python3-dbus)"
        );
        let (bus, _daemon, conn) = start(&["ordinary"]).await;
        // Start with an empty reader: the client waits for the card.
        call::<_, ()>(&conn, MANAGER_PATH, TESTING, "RemoveCard", &(0u32,))
            .await
            .unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/kiosk_client.py");
        let child = bus
            .command(python)
            .args([script, "--challenge", "counter 3 login", "--timeout", "20"])
            .env("JPKID_PIN", "1234")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let ordinary = persona("ordinary");
        call::<_, ()>(
            &conn,
            MANAGER_PATH,
            TESTING,
            "InsertCard",
            &(0u32, ordinary.to_str().unwrap()),
        )
        .await
        .unwrap();
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["reader"], R0);
        assert_eq!(v["card_kind"], "card");
        assert_eq!(v["pin_status"]["auth-pin"], 3);
        assert_eq!(v["readers"][0]["name"], "jpkid Virtual Reader 0");
        let cert = hex::decode(v["certificate"].as_str().unwrap()).unwrap();
        let digest = hex::decode(v["digest"].as_str().unwrap()).unwrap();
        assert_eq!(digest, Sha256::digest(b"counter 3 login").to_vec());
        let sig = hex::decode(v["signature"].as_str().unwrap()).unwrap();
        public_key(&cert)
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
            .expect("the kiosk's signature verifies");
        assert_eq!(prop_str(&conn, R0, "Claimant").await, "", "released");

        // A wrong PIN comes back as the named error, exit status 1.
        let out = bus
            .command(python)
            .args([script, "--timeout", "5"])
            .env("JPKID_PIN", "9999")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        assert_eq!(v["error"], "io.jpkid.Jpki1.Error.PinIncorrect");
        assert!(v["message"].as_str().unwrap().starts_with("remaining=2"));

        // The counter sequence: claim, Link, SignConsent of the items given (the CMS to an
        // owner-only file that VerifyConsent accepts), release; nothing personal printed.
        let dir = tempfile::tempdir().unwrap();
        let cms_path = dir.path().join("consent.p7m");
        let counter = |password: &str| {
            bus.command(python)
                .args([
                    script,
                    "--counter",
                    "--timeout",
                    "5",
                    "--reference",
                    "KIOSK-1",
                ])
                .arg("--consent-out")
                .arg(&cms_path)
                .args(["birth-date", "name"])
                .env("JPKID_SIGN_PASSWORD", password)
                .output()
                .unwrap()
        };
        let out = counter("TESTPW1");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for value in ["試験", "東京都", "Tokyo", "TESTPW1"] {
            assert!(!stdout.contains(value), "{value:?} printed: {stdout}");
        }
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["link"]["serial"], "1A2B3C01");
        assert_eq!(v["link"]["status"], "valid");
        assert_eq!(v["consent"]["status"], "valid");
        let document: serde_json::Value =
            serde_json::from_str(v["consent"]["document"].as_str().unwrap()).unwrap();
        assert_eq!(document["items"], serde_json::json!(["name", "birth-date"]));
        assert_eq!(document["reference"], "KIOSK-1");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&cms_path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let cms = std::fs::read(&cms_path).unwrap();
        let check: jpkid::api::ConsentCheck = call(
            &conn,
            MANAGER_PATH,
            MANAGER,
            "VerifyConsent",
            &(cms, none()),
        )
        .await
        .unwrap();
        assert_eq!(check.signature, jpkid::api::SignatureStatus::Valid);
        assert_eq!(check.kind.as_deref(), Some("consent"));
        assert_eq!(check.serial, "1A2B3C01");
        assert_eq!(prop_str(&conn, R0, "Claimant").await, "", "released");
        // A wrong password: the named error, and the reader released all the same.
        let out = counter("WRONG1");
        assert_eq!(out.status.code(), Some(1));
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        assert_eq!(v["error"], "io.jpkid.Jpki1.Error.PinIncorrect");
        assert_eq!(prop_str(&conn, R0, "Claimant").await, "", "released");
    })
    .await;
}

/// Card and reader faults and the request limits, each with its named error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_limits_have_named_errors() {
    limited(async {
        // Detection takes 3 APDUs; the request's second APDU meets an empty reader.
        let removing = persona_with_faults("ordinary", &["remove_after = 4"]);
        let muting = persona_with_faults("ordinary", &["mute_after = 4"]);
        let slow = persona_with_faults("ordinary", &["delay_ms = 60"]);
        let bus = TestBus::start();
        let _daemon = Daemon::start(
            &bus,
            DaemonOptions {
                personas: vec![
                    removing.path().to_owned(),
                    muting.path().to_owned(),
                    slow.path().to_owned(),
                    persona("under15"),
                    persona("android"),
                ],
                queue_depth: 2,
                ..DaemonOptions::default()
            },
        )
        .await;
        let conn = bus.connect().await;
        for r in 0..5 {
            let path = format!("/io/jpkid/Jpki1/reader/{r}");
            wait_for("ready", Duration::from_secs(20), || {
                let conn = conn.clone();
                let path = path.clone();
                async move { (prop_str(&conn, &path, "State").await == "ready").then_some(()) }
            })
            .await;
        }
        let [removed, mute, slow_r, under15, android] =
            [0, 1, 2, 3, 4].map(|r| format!("/io/jpkid/Jpki1/reader/{r}"));

        assert_err(read_cert(&conn, &removed, "auth", b"").await, "CardRemoved");
        wait_for("empty", Duration::from_secs(10), || {
            let conn = conn.clone();
            let path = removed.clone();
            async move { (prop_str(&conn, &path, "State").await == "empty").then_some(()) }
        })
        .await;
        assert_err(pin_status(&conn, &removed).await, "NoCard");

        let short = opts(&[("timeout-ms", OwnedVariant::from(300u32))]);
        let r: Result<Vec<u8>, DbusErr> = call(
            &conn,
            &mute,
            READER,
            "ReadCertificate",
            &("auth", Vec::<u8>::new(), short.clone()),
        )
        .await;
        assert_err(r, "Timeout");
        wait_for("mute", Duration::from_secs(10), || {
            let conn = conn.clone();
            let path = mute.clone();
            async move { (prop_str(&conn, &path, "State").await == "mute").then_some(()) }
        })
        .await;
        assert_err(pin_status(&conn, &mute).await, "Timeout");

        // queue_depth = 2: one running and one waiting; a third is ReaderBusy. The waiting one asks
        // for 100 ms: clamped to 1 s, counted from when it starts, so the queue does not eat it.
        let watcher = bus.connect().await;
        let mut states = signals(&watcher, READER, Some("StateChanged")).await;
        let running = tokio::spawn({
            let conn = conn.clone();
            let path = slow_r.clone();
            async move { pin_status(&conn, &path).await }
        });
        next_signal(&mut states, |m| {
            let (p, _, new, _) = state_changed(m)?;
            (p == slow_r && new == "busy").then_some(())
        })
        .await;
        let waiting = tokio::spawn({
            let conn = conn.clone();
            let path = slow_r.clone();
            let o = opts(&[("timeout-ms", OwnedVariant::from(100u32))]);
            async move {
                call::<_, Vec<u8>>(
                    &conn,
                    &path,
                    READER,
                    "ReadCertificate",
                    &("auth", Vec::<u8>::new(), o),
                )
                .await
            }
        });
        // Ordering only (the waiting call must reach the daemon first), not an assertion.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let busy = assert_err(pin_status(&conn, &slow_r).await, "ReaderBusy");
        assert!(busy.contains("busy"), "{busy}");
        assert!(running.await.unwrap().is_ok());
        assert!(waiting.await.unwrap().is_ok());

        // Under 15: no signing certificate.
        assert_err(
            read_cert(&conn, &under15, "sign", b"TESTPW1").await,
            "CertificateMissing",
        );
        // Android token: no text PIN; its auth certificate needs the auth PIN.
        let status = pin_status(&conn, &android).await.unwrap();
        assert!(!status.contains_key("text-pin"), "{status:?}");
        assert_eq!(prop_str(&conn, &android, "CardKind").await, "android");
        // Without it the daemon asks for it before sending anything (the card would answer 6982).
        let m = assert_err(
            read_cert(&conn, &android, "auth", b"").await,
            "InvalidPinFormat",
        );
        assert!(m.contains("auth-pin"), "{m}");
        // A card's authentication certificate is free: a PIN for it is refused, never sent.
        assert_err(
            read_cert(&conn, &slow_r, "auth", b"0000").await,
            "InvalidArgument",
        );
        let der = read_cert(&conn, &android, "auth", b"1234").await.unwrap();
        assert!(X509Certificate::from_der(&der).is_ok());
    })
    .await;
}

/// One interface of introspection XML (parsed with `zbus_xml`), or `None` when the document
/// has no interface of that name.
fn interface_in<'a>(
    node: &'a zbus_xml::Node<'_>,
    interface: &str,
) -> Option<&'a zbus_xml::Interface<'a>> {
    node.interfaces()
        .iter()
        .find(|i| i.name().as_str() == interface)
}

fn parse_introspection(xml: &str) -> zbus_xml::Node<'_> {
    zbus_xml::Node::try_from(xml).unwrap_or_else(|e| panic!("introspection XML: {e}\n{xml}"))
}

/// Members of one interface from introspection XML, by type only: `method Name(in)(out)`,
/// `signal Name(args)`, `property Name type`, sorted.
fn members(xml: &str, interface: &str) -> Vec<String> {
    let node = parse_introspection(xml);
    let Some(i) = interface_in(&node, interface) else {
        return Vec::new();
    };
    let types = |args: &[zbus_xml::Arg<'_>], out: bool| -> String {
        args.iter()
            .filter(|a| (a.direction() == Some(zbus_xml::ArgDirection::Out)) == out)
            .map(|a| a.ty().to_string())
            .collect()
    };
    let mut out: Vec<String> = i
        .methods()
        .map(|m| {
            format!(
                "method {}({})({})",
                m.name(),
                types(m.args(), false),
                types(m.args(), true)
            )
        })
        .chain(i.signals().map(|s| {
            let all: String = s.args().iter().map(|a| a.ty().to_string()).collect();
            format!("signal {}({all})", s.name())
        }))
        .chain(
            i.properties()
                .map(|p| format!("property {} {}", p.name(), p.ty())),
        )
        .collect();
    out.sort();
    out
}

/// The annotations of a member that say something about the interface itself: all but
/// `org.gtk.*` (documentation and binding hints, which the daemon does not serve), such as
/// `org.freedesktop.DBus.Property.EmitsChangedSignal`.
fn semantic_annotations(list: &[zbus_xml::Annotation<'_>]) -> String {
    list.iter()
        .filter(|a| !a.name().starts_with("org.gtk."))
        .map(|a| format!(" [{}={}]", a.name(), a.value()))
        .collect()
}

/// Members of one interface in full, one line each, sorted: a method's arguments in order with
/// direction, type and (for in-arguments) name — zbus names no out-argument —, a signal's with
/// type and name, a property's type and access, and the annotations of
/// [`semantic_annotations`]. `None` when the document has no such interface.
fn members_in_full(xml: &str, interface: &str) -> Option<Vec<String>> {
    let node = parse_introspection(xml);
    let i = interface_in(&node, interface)?;
    let arg = |a: &zbus_xml::Arg<'_>, signal: bool| -> String {
        let out = a.direction() == Some(zbus_xml::ArgDirection::Out);
        let direction = match (signal, out) {
            // A signal's arguments are the sender's: `out` or unstated.
            (true, _) => "",
            (false, true) => "out ",
            (false, false) => "in ",
        };
        let name = match (signal || !out, a.name()) {
            (true, Some(n)) => format!(" {n}"),
            (true, None) => " (unnamed)".to_owned(),
            (false, _) => String::new(),
        };
        format!(
            "{direction}{}{name}{}",
            a.ty(),
            semantic_annotations(a.annotations())
        )
    };
    let list = |args: &[zbus_xml::Arg<'_>], signal: bool| -> String {
        args.iter()
            .map(|a| arg(a, signal))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out: Vec<String> = i
        .methods()
        .map(|m| {
            let notes = semantic_annotations(m.annotations());
            format!("method {}({}){notes}", m.name(), list(m.args(), false))
        })
        .chain(i.signals().map(|s| {
            let notes = semantic_annotations(s.annotations());
            format!("signal {}({}){notes}", s.name(), list(s.args(), true))
        }))
        .chain(i.properties().map(|p| {
            let access = match p.access() {
                zbus_xml::PropertyAccess::Read => "read",
                zbus_xml::PropertyAccess::Write => "write",
                zbus_xml::PropertyAccess::ReadWrite => "readwrite",
            };
            let notes = semantic_annotations(p.annotations());
            format!("property {} {} {access}{notes}", p.name(), p.ty())
        }))
        .collect();
    out.sort();
    Some(out)
}

/// What an interface file leaves unsaid: an interface, method, signal, property or argument
/// without an `org.gtk.GDBus.DocString` annotation, or a method argument whose direction is
/// not written out.
fn undocumented(xml: &str) -> Vec<String> {
    const DOC: &str = "org.gtk.GDBus.DocString";
    let documented = |list: &[zbus_xml::Annotation<'_>]| {
        list.iter()
            .any(|a| a.name() == DOC && !a.value().trim().is_empty())
    };
    let node = parse_introspection(xml);
    let mut missing = Vec::new();
    for i in node.interfaces() {
        let annotations: Vec<_> = i.annotations().cloned().collect();
        if !documented(&annotations) {
            missing.push(format!("interface {}", i.name()));
        }
        // Each member: its label, its annotations, its arguments, whether it is a method.
        let members = i
            .methods()
            .map(|m| {
                (
                    format!("method {}", m.name()),
                    m.annotations(),
                    m.args(),
                    true,
                )
            })
            .chain(i.signals().map(|s| {
                (
                    format!("signal {}", s.name()),
                    s.annotations(),
                    s.args(),
                    false,
                )
            }))
            .chain(i.properties().map(|p| {
                (
                    format!("property {}", p.name()),
                    p.annotations(),
                    &[][..],
                    false,
                )
            }));
        for (label, annotations, args, method) in members {
            if !documented(annotations) {
                missing.push(label.clone());
            }
            for (n, a) in args.iter().enumerate() {
                let arg = format!(
                    "{label} arg {}",
                    a.name().map_or(n.to_string(), str::to_owned)
                );
                if !documented(a.annotations()) {
                    missing.push(arg.clone());
                }
                if method && a.direction().is_none() {
                    missing.push(format!("{arg}: direction"));
                }
            }
        }
    }
    missing
}

/// The API has exactly the names and signatures of DESIGN §6.1–6.3 (but `CheckAuthenticity`,
/// not built yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_matches_the_design() {
    limited(async {
        let (_bus, _daemon, conn) = start(&["ordinary"]).await;
        let intro = |path: &'static str| {
            let conn = conn.clone();
            async move {
                call::<_, String>(
                    &conn,
                    path,
                    "org.freedesktop.DBus.Introspectable",
                    "Introspect",
                    &(),
                )
                .await
                .unwrap()
            }
        };
        let root = intro(MANAGER_PATH).await;
        let mut want = vec![
            "method ConsentPeriod(s)(ss)",
            "method ConsentStatus(sa{sv})(a{sv})",
            "method Eligibility(sa{sv})(a{sb})",
            "method GetReaders()(ao)",
            "method LinkRequirement(a{sv})(a{sv})",
            "method VerifyCertificate(aysa{sv})(a{sv})",
            "method VerifyConsent(aya{sv})(a{sv})",
            "property Readers ao",
            "property TrustHierarchy s",
            "property Version s",
            "signal ReaderAdded(o)",
            "signal ReaderRemoved(o)",
        ];
        want.sort_unstable();
        assert_eq!(members(&root, MANAGER), want);
        assert_eq!(
            members(&root, TESTING),
            vec!["method InsertCard(us)()", "method RemoveCard(u)()"]
        );
        assert!(root.contains("org.freedesktop.DBus.ObjectManager"));
        let reader = intro(R0).await;
        let mut want = vec![
            "method CheckAuthenticity(aya{sv})(a{sv})",
            "method Claim()()",
            "method GetPinStatus()(a{sy})",
            "method Link(aya{sv})(a{sv})",
            "method MatchAttributes(ayaya{sv})(a{sv})",
            "method ReadCertificate(saya{sv})(ay)",
            "method Release()()",
            "method Sign(ssayaya{sv})(ay)",
            "method SignConsent(asaya{sv})(a{sv})",
            "property Atr ay",
            "property CardKind s",
            "property Claimant s",
            "property Insertions u",
            "property Name s",
            "property State s",
            "signal StateChanged(sss)",
        ];
        want.sort_unstable();
        assert_eq!(members(&reader, READER), want);

        // Without --virtual there is no Testing interface (and, here, no reader).
        let bus = TestBus::start();
        let _plain = Daemon::start(
            &bus,
            DaemonOptions {
                personas: Vec::new(),
                ..DaemonOptions::default()
            },
        )
        .await;
        let conn = bus.connect().await;
        let root: String = call(
            &conn,
            MANAGER_PATH,
            "org.freedesktop.DBus.Introspectable",
            "Introspect",
            &(),
        )
        .await
        .unwrap();
        assert!(members(&root, TESTING).is_empty(), "{root}");
        assert!(!members(&root, MANAGER).is_empty());
        let readers: Vec<OwnedObjectPath> = call(&conn, MANAGER_PATH, MANAGER, "GetReaders", &())
            .await
            .unwrap();
        assert!(readers.is_empty());
    })
    .await;
}

/// `dbus/NAME.xml` of the repository.
fn interface_file(name: &str) -> String {
    let path = format!("{}/dbus/{name}.xml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The names of the files in `dbus/` (each `INTERFACE.xml`), sorted.
fn interface_file_names() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dbus");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".xml").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// The jpkid interfaces (`io.jpkid.*`) in introspection XML.
fn jpkid_interfaces(xml: &str) -> Vec<String> {
    parse_introspection(xml)
        .interfaces()
        .iter()
        .map(|i| i.name().to_string())
        .filter(|n| n.starts_with("io.jpkid."))
        .collect()
}

/// The interface files in `dbus/` (installed to `/usr/share/dbus-1/interfaces/`) say exactly
/// what the running daemon serves, so that bindings made from them cannot drift from the code:
/// one file per jpkid interface the daemon serves and no other; in each, every method with its
/// arguments in order (direction, type, in-argument names), every signal with its arguments,
/// every property with its type, access and change annotation, and nothing more. Documentation
/// annotations are not compared (the daemon serves none), but each element must have one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interface_files_match_the_live_introspection() {
    limited(async {
        let (_bus, _daemon, conn) = start(&["ordinary"]).await;
        let mut served = Vec::new();
        for path in [MANAGER_PATH, R0] {
            let live: String = call(
                &conn,
                path,
                "org.freedesktop.DBus.Introspectable",
                "Introspect",
                &(),
            )
            .await
            .unwrap();
            for interface in jpkid_interfaces(&live) {
                let file = interface_file(&interface);
                assert_eq!(
                    jpkid_interfaces(&file),
                    [interface.as_str()],
                    "dbus/{interface}.xml must hold that one interface"
                );
                assert_eq!(
                    members_in_full(&file, &interface),
                    members_in_full(&live, &interface),
                    "dbus/{interface}.xml differs from what the daemon serves at {path}"
                );
                assert_eq!(
                    undocumented(&file),
                    Vec::<String>::new(),
                    "dbus/{interface}.xml"
                );
                served.push(interface);
            }
        }
        served.sort();
        assert_eq!(served, [MANAGER, READER, TESTING]);
        assert_eq!(
            interface_file_names(),
            served,
            "dbus/ holds a file for each interface the daemon serves, and no other"
        );
    })
    .await;
}

/// The comparison of `interface_files_match_the_live_introspection` sees every kind of drift
/// between a file and the daemon — a member missing or added, an argument's direction, type,
/// name or place, a property's access or change annotation — and ignores documentation.
#[test]
fn interface_comparison_sees_drift_and_ignores_documentation() {
    let original = interface_file(READER);
    let want = members_in_full(&original, READER).unwrap();
    // The element that starts with `start`, through its first `end`.
    let element = |start: &str, end: &str| -> String {
        let from = original.find(start).unwrap();
        let to = from + original[from..].find(end).unwrap() + end.len();
        original[from..to].to_owned()
    };
    let claim = element(r#"<method name="Claim">"#, "</method>");
    let reason = element(r#"<arg name="reason""#, "</arg>");
    let extra = r#"<method name="Eject"><arg name="how" type="s" direction="in"/></method>
  </interface>"#;
    let drifts: [(&str, &str, &str); 10] = [
        ("a method missing", &claim, ""),
        ("a method added", "</interface>", extra),
        (
            "an argument's direction",
            r#"<arg name="which" type="s" direction="in">"#,
            r#"<arg name="which" type="s" direction="out">"#,
        ),
        (
            "an argument's type",
            r#"<arg name="digest" type="ay""#,
            r#"<arg name="digest" type="s""#,
        ),
        ("an argument's name", r#"name="which""#, r#"name="kind""#),
        ("an argument missing", &reason, ""),
        (
            "a property's access",
            r#"<property name="State" type="s" access="read">"#,
            r#"<property name="State" type="s" access="readwrite">"#,
        ),
        (
            "a property's type",
            r#"<property name="Insertions" type="u""#,
            r#"<property name="Insertions" type="t""#,
        ),
        (
            "a property's change annotation",
            r#"<annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="const"/>"#,
            "",
        ),
        (
            "a signal's argument",
            r#"<arg name="old" type="s">"#,
            r#"<arg name="old" type="u">"#,
        ),
    ];
    for (what, from, to) in drifts {
        assert_eq!(original.matches(from).count(), 1, "{what}: {from:?}");
        let drifted = original.replacen(from, to, 1);
        assert_ne!(
            members_in_full(&drifted, READER).unwrap(),
            want,
            "{what} went unseen"
        );
    }
    let reworded = original.replace(
        r#"value="auth, auth-ca, sign or sign-ca.""#,
        r#"value="Which certificate.""#,
    );
    assert_ne!(reworded, original);
    assert_eq!(members_in_full(&reworded, READER).unwrap(), want);
    let undocumented_claim = original.replacen(&claim, r#"<method name="Claim"/>"#, 1);
    assert_eq!(undocumented(&undocumented_claim), ["method Claim"]);
}

/// `gdbus-codegen` (Debian package libglib2.0-dev-bin) accepts the interface files without a
/// warning and makes C bindings of them, as docs/dbus-api.md shows. Skipped where it is not
/// installed, unless `JPKID_REQUIRE_TOOLS` is set (`scripts/test.sh`).
#[test]
fn interface_files_make_gdbus_bindings() {
    // (`--help`: Debian 12's gdbus-codegen has no `--version`.)
    let have = std::process::Command::new("gdbus-codegen")
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have || std::env::var_os("JPKID_REQUIRE_TOOLS").is_none(),
        "gdbus-codegen (Debian package libglib2.0-dev-bin) is missing, and JPKID_REQUIRE_TOOLS is set"
    );
    if !have {
        eprintln!("skipped: gdbus-codegen is not installed (Debian package libglib2.0-dev-bin)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = interface_file_names()
        .iter()
        .map(|i| format!("{}/dbus/{i}.xml", env!("CARGO_MANIFEST_DIR")))
        .collect();
    let out = std::process::Command::new("gdbus-codegen")
        .args(["--interface-prefix", "io.jpkid.", "--c-namespace", "Jpkid"])
        .arg("--generate-c-code")
        .arg(dir.path().join("jpkid"))
        .args(&files)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gdbus-codegen: {stderr}");
    assert!(
        !stderr.to_lowercase().contains("warning"),
        "gdbus-codegen: {stderr}"
    );
    let header = std::fs::read_to_string(dir.path().join("jpkid.h")).unwrap();
    for function in [
        "jpkid_jpki1_manager_call_verify_certificate_sync",
        "jpkid_jpki1_reader_call_match_attributes_sync",
        "jpkid_jpki1_reader_get_insertions",
        "jpkid_jpki1_testing_call_insert_card_sync",
    ] {
        assert!(header.contains(function), "{function} not generated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_name_who_what_and_result_and_can_be_off() {
    limited(async {
        let bus = TestBus::start();
        let on = Daemon::start(&bus, DaemonOptions::default()).await;
        let conn = bus.connect().await;
        let me = conn.unique_name().unwrap().to_string();
        assert_err(
            sign(&conn, R0, "auth", "sha256", &[0u8; 32], b"9999", none()).await,
            "PinIncorrect",
        );
        pin_status(&conn, R0).await.unwrap();
        let log = on.stderr();
        let records: Vec<&str> = log.lines().filter(|l| l.contains(" audit: ")).collect();
        let sign_record = records
            .iter()
            .find(|l| l.contains("operation=\"sign\""))
            .unwrap_or_else(|| panic!("no sign record in:\n{log}"));
        for field in [
            "uid=0",
            &format!("bus_name=\"{me}\""),
            "reader=0",
            "result=\"PinIncorrect\"",
            "duration_ms=",
        ] {
            assert!(
                sign_record.contains(field),
                "{field} missing: {sign_record}"
            );
        }
        assert!(
            records
                .iter()
                .any(|l| l.contains("operation=\"pin-status\"") && l.contains("result=\"ok\""))
        );
        drop(on);

        let bus = TestBus::start();
        let off = Daemon::start(
            &bus,
            DaemonOptions {
                audit: false,
                ..DaemonOptions::default()
            },
        )
        .await;
        let conn = bus.connect().await;
        pin_status(&conn, R0).await.unwrap();
        assert!(!off.stderr().contains(" audit: "), "{}", off.stderr());
    })
    .await;
}

/// The support helpers also serve plain `#[test]`s (as CLI tests use them).
#[test]
fn sync_helpers_work_without_a_runtime() {
    let bus = TestBus::start();
    let _daemon = Daemon::start_blocking(&bus, DaemonOptions::default());
    let (ok, text) = output(bus.command("busctl").args([
        "--system",
        "get-property",
        DEST,
        MANAGER_PATH,
        MANAGER,
        "TrustHierarchy",
    ]));
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "s \"test\"");
}

/// Whether `needle` occurs in `log` not as part of a longer run of letters or digits: the
/// digits of a 4-digit PIN occur by chance inside timestamps and durations, a leaked PIN
/// stands on its own (`pin=8642`, `"8642"`, `[56, 54, 52, 50]`).
fn contains_token(log: &str, needle: &str) -> bool {
    log.match_indices(needle).any(|(i, _)| {
        let before = log[..i].chars().next_back();
        let after = log[i + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}
