//! The reader layer with in-process virtual readers: states and their reasons, the request
//! queue, cancellation, removal and mute cards. The same layer runs over PC/SC in
//! `tests/pcsc.rs`.
#![cfg(feature = "virtual-card")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use jpkid::jpki::ap::{HashAlg, KeyKind};
use jpkid::jpki::{CardKind, CertKind, JpkiError, PinKind};
use jpkid::readers::{
    ReaderEvent, ReaderManager, ReaderState, ReadersConfig, Reply, Request, RequestError,
    RequestOptions,
};
use tokio::sync::mpsc::UnboundedReceiver;
use zeroize::Zeroizing;

fn config(queue_depth: usize, timeout_ms: u64) -> ReadersConfig {
    ReadersConfig {
        pcsc: false,
        ignore: Vec::new(),
        op_timeout: Duration::from_millis(timeout_ms),
        queue_depth,
        pin_guard_min_remaining: 2,
    }
}

fn persona(name: &str) -> PathBuf {
    jpki_vcard::persona_dir(name)
}

/// A copy of a persona with fault switches added to its `persona.toml`.
fn with_faults(name: &str, faults: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = persona(name);
    copy_dir(&src, dir.path());
    let toml = dir.path().join("persona.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\n[faults]\n");
    text.push_str(faults);
    std::fs::write(&toml, text).unwrap();
    dir
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn opts(timeout_ms: u64) -> RequestOptions {
    RequestOptions {
        allow_last_try: false,
        timeout: Duration::from_millis(timeout_ms),
    }
}

/// Waits for the state change to `want`, returning its reason.
async fn until_state(events: &mut UnboundedReceiver<ReaderEvent>, want: ReaderState) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("state change in time")
            .expect("event stream open");
        if let ReaderEvent::StateChanged {
            snapshot, reason, ..
        } = ev
            && snapshot.state == want
        {
            return reason;
        }
    }
}

fn secret(s: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(s.to_vec())
}

#[tokio::test]
async fn insertion_probe_and_requests() {
    let (readers, mut events) = ReaderManager::start(config(4, 5000)).unwrap();
    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    assert!(
        matches!(events.recv().await, Some(ReaderEvent::Added(s)) if s.id == id && s.state == ReaderState::Empty)
    );
    assert!(matches!(
        readers.submit(id, Request::PinStatus, opts(5000)),
        Err(RequestError::NoCard)
    ));
    assert!(matches!(
        readers.submit(99, Request::PinStatus, opts(5000)),
        Err(RequestError::ReaderGone)
    ));

    readers.insert_virtual(id, &persona("ordinary")).unwrap();
    assert_eq!(
        until_state(&mut events, ReaderState::Probing).await,
        "card inserted"
    );
    let reason = until_state(&mut events, ReaderState::Ready).await;
    assert!(reason.contains("card"), "{reason}");
    let snap = readers.reader(id).unwrap();
    assert_eq!(snap.card_kind, CardKind::Card);
    assert_eq!(snap.insertions, 1);
    assert!(!snap.atr.is_empty());

    let reply = readers
        .submit(id, Request::PinStatus, opts(5000))
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    let Reply::PinStatus(status) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(status.sign_password, 5);
    assert!(
        until_state(&mut events, ReaderState::Busy)
            .await
            .contains("pin-status")
    );
    assert!(
        until_state(&mut events, ReaderState::Ready)
            .await
            .contains("finished")
    );

    let digest = vec![3u8; 32];
    let reply = readers
        .submit(
            id,
            Request::Sign {
                key: KeyKind::Auth,
                hash: HashAlg::Sha256,
                digest: digest.clone(),
                secret: secret(b"1234"),
            },
            opts(5000),
        )
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(reply, Reply::Signature(s) if s.len() == 256));

    let err = readers
        .submit(
            id,
            Request::Sign {
                key: KeyKind::Sign,
                hash: HashAlg::Sha256,
                digest,
                secret: secret(b"WRONG1"),
            },
            opts(5000),
        )
        .unwrap()
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Jpki(JpkiError::PinIncorrect {
                pin: PinKind::SignPassword,
                remaining: 4
            })
        ),
        "{err}"
    );
    // The reader is ready again after a failed request.
    let reply = readers
        .submit(
            id,
            Request::ReadCertificate {
                which: CertKind::Auth,
                secret: secret(b""),
            },
            opts(5000),
        )
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(reply, Reply::Certificate(c) if c.len() > 256));

    readers.remove_virtual(id).unwrap();
    assert_eq!(
        until_state(&mut events, ReaderState::Empty).await,
        "card removed"
    );
    assert_eq!(readers.reader(id).unwrap().card_kind, CardKind::None);

    readers.insert_virtual(id, &persona("not-jpki")).unwrap();
    let reason = until_state(&mut events, ReaderState::Unsupported).await;
    assert!(reason.contains("not a My Number Card"), "{reason}");
    assert!(matches!(
        readers.submit(id, Request::PinStatus, opts(5000)),
        Err(RequestError::NotJpkiCard)
    ));
    assert_eq!(readers.reader(id).unwrap().insertions, 2);
    assert!(
        readers
            .insert_virtual(id, std::path::Path::new("/nonexistent"))
            .is_err()
    );
    readers.shutdown();
}

#[tokio::test]
async fn queue_is_bounded_and_vanished_callers_are_skipped() {
    let slow = with_faults("ordinary", "delay_ms = 40\n");
    let (readers, mut events) = ReaderManager::start(config(2, 10_000)).unwrap();
    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    readers.insert_virtual(id, slow.path()).unwrap();
    until_state(&mut events, ReaderState::Ready).await;

    // 5 APDUs × 40 ms keep the first request busy while the others arrive.
    let first = readers
        .submit(id, Request::PinStatus, opts(10_000))
        .unwrap();
    let second = readers
        .submit(id, Request::PinStatus, opts(10_000))
        .unwrap();
    assert!(matches!(
        readers.submit(id, Request::PinStatus, opts(10_000)),
        Err(RequestError::ReaderBusy)
    ));
    // The second caller goes away before its turn: its request never touches the card.
    drop(second);
    assert!(first.await.unwrap().is_ok());
    let third = readers
        .submit(id, Request::PinStatus, opts(10_000))
        .unwrap();
    assert!(third.await.unwrap().is_ok());
    let mut started = 0;
    while let Ok(ev) = events.try_recv() {
        if let ReaderEvent::StateChanged { snapshot, .. } = ev
            && snapshot.state == ReaderState::Busy
        {
            started += 1;
        }
    }
    assert_eq!(started, 2, "the abandoned request did not run");
    readers.shutdown();
}

#[tokio::test]
async fn removal_mid_request_and_mute_card() {
    let (readers, mut events) = ReaderManager::start(config(4, 200)).unwrap();
    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    // Detection takes 3 APDUs; the request's second APDU meets an empty reader.
    let removing = with_faults("ordinary", "remove_after = 4\n");
    readers.insert_virtual(id, removing.path()).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    let err = readers
        .submit(
            id,
            Request::ReadCertificate {
                which: CertKind::Auth,
                secret: secret(b""),
            },
            opts(5000),
        )
        .unwrap()
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("removed"), "{err}");
    let reason = until_state(&mut events, ReaderState::Empty).await;
    assert!(reason.contains("removed"), "{reason}");

    let muting = with_faults("ordinary", "mute_after = 4\n");
    readers.insert_virtual(id, muting.path()).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    let err = readers
        .submit(id, Request::PinStatus, opts(300))
        .unwrap()
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RequestError::Timeout), "{err}");
    let reason = until_state(&mut events, ReaderState::Mute).await;
    assert!(reason.contains("stopped answering"), "{reason}");
    assert!(matches!(
        readers.submit(id, Request::PinStatus, opts(5000)),
        Err(RequestError::Mute)
    ));

    // A fresh card recovers the reader.
    readers.insert_virtual(id, &persona("ordinary")).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    assert!(
        readers
            .submit(id, Request::PinStatus, opts(5000))
            .unwrap()
            .await
            .unwrap()
            .is_ok()
    );
    readers.shutdown();
}

#[tokio::test]
async fn ignored_readers_and_bad_patterns() {
    let mut cfg = config(4, 1000);
    cfg.ignore = vec!["Yubico*".into(), "*Contactless*".into()];
    let (readers, _events) = ReaderManager::start(cfg).unwrap();
    assert!(readers.is_ignored("Yubico YubiKey OTP+FIDO+CCID 00 00"));
    assert!(readers.is_ignored("SONY FeliCa Contactless Reader"));
    assert!(!readers.is_ignored("Virtual PCD 00 00"));
    let mut cfg = config(4, 1000);
    cfg.ignore = vec!["[unclosed".into()];
    let err = ReaderManager::start(cfg).unwrap_err();
    assert!(err.to_string().contains("[unclosed"), "{err}");
}
