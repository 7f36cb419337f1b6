//! OCSP against a real `openssl ocsp` responder on loopback (one responder per test, its own
//! port, `-nrequest` = the number of requests the test makes), plus a tiny replaying fake
//! responder for the wrong-nonce case.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use jpkid::pki::ocsp::{self, FetchError, OcspConfig, OcspError, OcspStatus};
use jpkid::pki::{
    self, Purpose, RevocationMode, RevocationPolicy, RevocationReason, RevocationSource,
    VerifyOutcome,
};
use pki_support::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Responder {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `openssl ocsp` with an index that has sign_revoked revoked (affiliationChanged) and
/// sign_ok valid, signed by `signer` (a responder certificate name in the test PKI).
fn responder(signer: &str, nrequest: u32) -> Responder {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("index.txt");
    std::fs::write(
        &idx,
        "R\t351231000000Z\t250101000000Z,affiliationChanged\t10000005\tunknown\t/CN=revoked\n\
         V\t351231000000Z\t\t10000001\tunknown\t/CN=ok\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("index.txt.attr"), "unique_subject = no\n").unwrap();
    let port = free_port();
    let pki = pki_dir();
    let mut child = Command::new("openssl")
        .args(["ocsp", "-index"])
        .arg(&idx)
        .args(["-port", &port.to_string(), "-rsigner"])
        .arg(pki.join(format!("{signer}.pem")))
        .arg("-rkey")
        .arg(pki.join(format!("{signer}.key")))
        .arg("-CA")
        .arg(pki.join("sign_root_g2.pem"))
        .args(["-nrequest", &nrequest.to_string(), "-ndays", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // openssl 3.0 prints "waiting for OCSP client connections" on stderr once it listens.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "openssl ocsp exited");
        if line.contains("waiting for OCSP client") {
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    Responder {
        child,
        port,
        _dir: dir,
    }
}

fn config(port: u16) -> OcspConfig {
    OcspConfig::new(format!("http://127.0.0.1:{port}/"))
}

fn g2_anchor() -> jpkid::pki::Anchor {
    let a = anchors();
    let root = read("sign_root_g2.der");
    a.anchors()
        .iter()
        .find(|x| x.der() == root)
        .unwrap()
        .clone()
}

#[test]
fn revoked_and_good_through_verify() {
    let r = responder("ocsp_g2", 2);
    let cfg = config(r.port);
    let a = anchors();
    let policy = RevocationPolicy {
        ocsp: Some(ocsp_via_http(&cfg)),
        ..RevocationPolicy::new(RevocationMode::Require, now())
    };
    let at = now();
    let v = pki::verify(&a, &read("sign_revoked.der"), Purpose::Sign, at, &policy);
    match v.outcome {
        VerifyOutcome::Revoked { reason, date } => {
            assert_eq!(reason, Some(RevocationReason::AffiliationChanged));
            assert_eq!(date, 1_735_689_600); // 2025-01-01T00:00:00Z
        }
        other => panic!("{other:?} {:?}", v.details),
    }
    assert_eq!(v.details.revocation_source, Some(RevocationSource::Ocsp));
    let v = pki::verify(&a, &read("sign_ok.der"), Purpose::Sign, at, &policy);
    assert_eq!(v.outcome, VerifyOutcome::Valid, "{:?}", v.details);
    assert_eq!(v.details.revocation_source, Some(RevocationSource::Ocsp));
}

#[test]
fn response_outside_its_window_is_refused() {
    let r = responder("ocsp_g2", 1);
    // Judged two days later: nextUpdate (1 day) has passed.
    let later = now() + 2 * 86_400;
    let e = ocsp::check(
        &ocsp_via_http(&config(r.port)),
        &read("sign_ok.der"),
        &g2_anchor(),
        later,
        later,
    )
    .unwrap_err();
    assert!(matches!(e, OcspError::NotFresh), "{e}");
}

/// Defect (review): freshness was judged at the verification time, so any `at` more than the
/// skew before the responder's thisUpdate made a fresh answer "not fresh". A fresh answer
/// answers for an earlier `at` too — revoked only from its revocation time.
#[test]
fn a_fresh_answer_answers_for_an_earlier_verification_time() {
    let r = responder("ocsp_g2", 2);
    let cfg = config(r.port);
    let a = anchors();
    let policy = RevocationPolicy {
        ocsp: Some(ocsp_via_http(&cfg)),
        ..RevocationPolicy::new(RevocationMode::Require, now())
    };
    // Verified for a time within the certificate's validity but far from the answer's window.
    let sign_ok = read("sign_ok.der");
    let later = mid(&sign_ok);
    assert!(later > now() + 30 * 86_400);
    let v = pki::verify(&a, &sign_ok, Purpose::Sign, later, &policy);
    assert_eq!(v.outcome, VerifyOutcome::Valid, "{:?}", v.details);
    assert_eq!(v.details.revocation_source, Some(RevocationSource::Ocsp));
    // The revoked certificate stays revoked for any later time.
    let v = pki::verify(&a, &read("sign_revoked.der"), Purpose::Sign, later, &policy);
    assert_eq!(v.outcome.as_str(), "revoked", "{:?}", v.details);
}

#[test]
fn signer_not_issued_by_the_ca_is_refused() {
    let r = responder("ocsp_rogue", 1);
    let e = ocsp::check(
        &ocsp_via_http(&config(r.port)),
        &read("sign_ok.der"),
        &g2_anchor(),
        now(),
        now(),
    )
    .unwrap_err();
    assert!(matches!(e, OcspError::SignerNotAuthorized), "{e}");
    // Through verify: no answer ⇒ revocation-unknown under `require`.
}

#[test]
fn unreachable_responder() {
    let port = free_port(); // nobody listens here
    let e = ocsp::check(
        &ocsp_via_http(&config(port)),
        &read("sign_ok.der"),
        &g2_anchor(),
        now(),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(e, OcspError::Fetch(FetchError::Unreachable(_))),
        "{e}"
    );
    let cfg = config(port);
    let policy = RevocationPolicy {
        ocsp: Some(ocsp_via_http(&cfg)),
        ..RevocationPolicy::new(RevocationMode::Require, now())
    };
    let v = pki::verify(
        &anchors(),
        &read("sign_ok.der"),
        Purpose::Sign,
        now(),
        &policy,
    );
    assert_eq!(v.outcome, VerifyOutcome::RevocationUnknown);
    assert!(v.details.note.contains("ocsp"), "{}", v.details.note);
    // What a technician reads: the responder could not be reached.
    assert_eq!(
        v.details.revocation_detail,
        Some(jpkid::api::RevocationDetail::OcspUnreachable)
    );
}

/// Read one HTTP/1.0 request (headers + Content-Length body).
fn read_request(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..p]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= p + 4 + len {
                return buf;
            }
        }
    }
}

#[test]
fn replayed_response_has_the_wrong_nonce() {
    let r = responder("ocsp_g2", 1);
    let upstream = r.port;
    // Proxy that records the real response, then replays it to the next request.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let req = read_request(&mut c);
        let mut up = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
        up.write_all(&req).unwrap();
        let mut resp = Vec::new();
        up.read_to_end(&mut resp).unwrap();
        c.write_all(&resp).unwrap();
        drop(c);
        let (mut c, _) = listener.accept().unwrap();
        read_request(&mut c);
        c.write_all(&resp).unwrap();
    });
    let anchor = g2_anchor();
    let cfg = config(port);
    let first = ocsp::check(
        &ocsp_via_http(&cfg),
        &read("sign_ok.der"),
        &anchor,
        now(),
        now(),
    )
    .unwrap();
    assert!(matches!(first, OcspStatus::Good { .. }));
    let e = ocsp::check(
        &ocsp_via_http(&cfg),
        &read("sign_ok.der"),
        &anchor,
        now(),
        now(),
    )
    .unwrap_err();
    assert!(matches!(e, OcspError::NonceMismatch), "{e}");
    server.join().unwrap();
}

/// A fetcher of the test's own: `pki` sends through whatever it is given and nothing else.
struct Canned {
    answer: fn() -> Result<Vec<u8>, FetchError>,
    calls: std::sync::atomic::AtomicUsize,
}

impl ocsp::Fetch for Canned {
    fn post(
        &self,
        url: &str,
        request: &[u8],
        _deadline: std::time::Instant,
    ) -> Result<Vec<u8>, FetchError> {
        assert_eq!(url, "http://responder.invalid/");
        assert_eq!(request.first(), Some(&0x30), "a DER OCSPRequest");
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (self.answer)()
    }
}

/// `pki` does no network I/O: the exchange is the injected fetcher's, and what it brings back
/// decides `revocation-detail`.
#[test]
fn the_exchange_is_the_injected_fetchers() {
    let cfg = OcspConfig::new("http://responder.invalid/");
    for (answer, want) in [
        (
            (|| Err(FetchError::Timeout)) as fn() -> Result<Vec<u8>, FetchError>,
            jpkid::api::RevocationDetail::OcspUnreachable,
        ),
        (
            || Ok(b"not an OCSP response".to_vec()),
            jpkid::api::RevocationDetail::OcspError,
        ),
    ] {
        let fetch = Canned {
            answer,
            calls: std::sync::atomic::AtomicUsize::new(0),
        };
        let policy = RevocationPolicy {
            ocsp: Some(ocsp::Ocsp {
                config: &cfg,
                fetch: &fetch,
                deadline: std::time::Instant::now(),
            }),
            ..RevocationPolicy::new(RevocationMode::Require, now())
        };
        let v = pki::verify(
            &anchors(),
            &read("sign_ok.der"),
            Purpose::Sign,
            now(),
            &policy,
        );
        assert_eq!(v.outcome, VerifyOutcome::RevocationUnknown);
        assert_eq!(v.details.revocation_detail, Some(want));
        assert_eq!(fetch.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
