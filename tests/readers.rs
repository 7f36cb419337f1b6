//! The reader layer with in-process virtual readers: states and their reasons, the request
//! queue, cancellation, removal and mute cards. The same layer runs over PC/SC in
//! `tests/pcsc.rs`.
#![cfg(feature = "virtual-card")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use jpki_vcard::PinId;
use jpkid::api::{CardOptions, HashAlg, KeyKind};
use jpkid::card::{Card, CardError};
use jpkid::digest::DigestInfo;
use jpkid::flows::{self, CertificateRequest, Flow, FlowContext, ReadCertificate};
use jpkid::jpki::pin::KeySecret;
use jpkid::jpki::{CardKind, CertKind, JpkiError, PinKind};
use jpkid::readers::{
    ReaderEvent, ReaderManager, ReaderState, ReadersConfig, RequestError, RequestOptions,
};
use jpkid::transport::{CardTransport, TransportError};
use tokio::sync::mpsc::UnboundedReceiver;

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
        insertion: None,
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

fn sign(key: KeyKind, secret: &[u8]) -> flows::Sign {
    flows::Sign {
        secret: KeySecret::new(key, secret).unwrap(),
        digest: DigestInfo::new(HashAlg::Sha256, &[3; 32]).unwrap(),
    }
}

fn read(which: CertKind) -> ReadCertificate {
    ReadCertificate(CertificateRequest::new(which, b"").unwrap())
}

async fn run<F: Flow>(
    readers: &ReaderManager,
    id: u32,
    flow: F,
    options: RequestOptions,
) -> Result<F::Output, RequestError> {
    match readers.submit(id, flow, options) {
        Ok(rx) => rx.await.expect("the worker answers every request"),
        Err(e) => Err(e),
    }
}

fn is_transport(e: &RequestError, want: fn(&TransportError) -> bool) -> bool {
    matches!(e, RequestError::Flow(JpkiError::Card(CardError::Transport(t))) if want(t))
}

const GRACE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn insertion_probe_and_requests() {
    let (readers, mut events) = ReaderManager::start(config(4, 5000)).unwrap();
    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    assert!(
        matches!(events.recv().await, Some(ReaderEvent::Added(s)) if s.id == id && s.state == ReaderState::Empty)
    );
    assert!(matches!(
        readers.submit(id, flows::GetPinStatus, opts(5000)),
        Err(RequestError::NoCard)
    ));
    assert!(matches!(
        readers.submit(99, flows::GetPinStatus, opts(5000)),
        Err(RequestError::ReaderGone)
    ));

    // Insertions start anywhere (random per daemon instance) and count each insertion.
    let base = readers.reader(id).unwrap().insertions;
    readers.insert_virtual(id, &persona("ordinary")).unwrap();
    assert_eq!(
        until_state(&mut events, ReaderState::Probing).await,
        "card inserted"
    );
    let reason = until_state(&mut events, ReaderState::Ready).await;
    assert!(reason.contains("card"), "{reason}");
    let snap = readers.reader(id).unwrap();
    assert_eq!(snap.card_kind, CardKind::Card);
    assert_eq!(snap.insertions, base.wrapping_add(1));
    assert!(!snap.atr.is_empty());

    let status = run(&readers, id, flows::GetPinStatus, opts(5000))
        .await
        .unwrap();
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

    let sig = run(&readers, id, sign(KeyKind::Auth, b"1234"), opts(5000))
        .await
        .unwrap();
    assert_eq!(sig.len(), 256);
    let err = run(&readers, id, sign(KeyKind::Sign, b"WRONG1"), opts(5000))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Flow(JpkiError::PinIncorrect {
                pin: PinKind::SignPassword,
                remaining: 4
            })
        ),
        "{err}"
    );
    // The reader is ready again after a failed request.
    let cert = run(&readers, id, read(CertKind::Auth), opts(5000))
        .await
        .unwrap();
    assert!(cert.len() > 256);

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
        readers.submit(id, flows::GetPinStatus, opts(5000)),
        Err(RequestError::NotJpkiCard)
    ));
    assert_eq!(readers.reader(id).unwrap().insertions, base.wrapping_add(2));
    assert!(
        readers
            .insert_virtual(id, std::path::Path::new("/nonexistent"))
            .is_err()
    );
    assert!(readers.shutdown(GRACE));
}

#[tokio::test]
async fn queue_is_bounded_and_vanished_callers_are_skipped() {
    let slow = with_faults("ordinary", "delay_ms = 40\n");
    let (readers, mut events) = ReaderManager::start(config(2, 10_000)).unwrap();
    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    readers.insert_virtual(id, slow.path()).unwrap();
    until_state(&mut events, ReaderState::Ready).await;

    // 7 APDUs × 40 ms keep the first request busy while the others arrive.
    let first = readers
        .submit(id, flows::GetPinStatus, opts(10_000))
        .unwrap();
    let second = readers
        .submit(id, flows::GetPinStatus, opts(10_000))
        .unwrap();
    assert!(matches!(
        readers.submit(id, flows::GetPinStatus, opts(10_000)),
        Err(RequestError::ReaderBusy)
    ));
    // The second caller goes away before its turn: its request never touches the card.
    drop(second);
    assert!(first.await.unwrap().is_ok());
    let third = readers
        .submit(id, flows::GetPinStatus, opts(10_000))
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
    assert!(readers.shutdown(GRACE));
}

#[tokio::test]
async fn removal_mid_request_and_mute_card() {
    let (readers, mut events) = ReaderManager::start(config(4, 5000)).unwrap();
    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    // Detection takes 3 APDUs; the request's second APDU meets an empty reader.
    let removing = with_faults("ordinary", "remove_after = 4\n");
    readers.insert_virtual(id, removing.path()).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    let err = run(&readers, id, read(CertKind::Auth), opts(5000))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("removed"), "{err}");
    let reason = until_state(&mut events, ReaderState::Empty).await;
    assert!(reason.contains("removed"), "{reason}");

    // Mute: one exchange unanswered for the mute floor (1 s) marks the reader.
    let muting = with_faults("ordinary", "mute_after = 4\n");
    readers.insert_virtual(id, muting.path()).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    let err = run(&readers, id, flows::GetPinStatus, opts(1200))
        .await
        .unwrap_err();
    assert!(
        is_transport(&err, |t| matches!(t, TransportError::Mute)),
        "{err}"
    );
    let reason = until_state(&mut events, ReaderState::Mute).await;
    assert!(reason.contains("stopped answering"), "{reason}");
    assert!(matches!(
        readers.submit(id, flows::GetPinStatus, opts(5000)),
        Err(RequestError::Mute)
    ));

    // A fresh card recovers the reader.
    readers.insert_virtual(id, &persona("ordinary")).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    assert!(
        run(&readers, id, flows::GetPinStatus, opts(5000))
            .await
            .is_ok()
    );
    assert!(readers.shutdown(GRACE));
}

/// Defect: a caller's short deadline marked the reader `mute` for everyone; the queue wait
/// counted against a request's own timeout; a huge `timeout-ms` pinned the worker.
#[tokio::test]
async fn deadlines_are_clamped_start_with_the_request_and_do_not_mute() {
    let (readers, mut events) = ReaderManager::start(config(4, 3000)).unwrap();
    let clamp = |ms: Option<u32>| {
        readers
            .options(&CardOptions {
                timeout_ms: ms,
                ..CardOptions::default()
            })
            .timeout
    };
    assert_eq!(clamp(Some(1)), Duration::from_millis(1000));
    assert_eq!(clamp(Some(1500)), Duration::from_millis(1500));
    assert_eq!(clamp(Some(u32::MAX)), Duration::from_millis(3000));
    assert_eq!(clamp(None), Duration::from_millis(3000));

    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    let slow = with_faults("ordinary", "delay_ms = 200\n");
    readers.insert_virtual(id, slow.path()).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    // 7 × 200 ms do not fit 1 s: Timeout for this caller, the reader stays ready.
    let err = run(&readers, id, flows::GetPinStatus, opts(1000))
        .await
        .unwrap_err();
    assert!(
        is_transport(&err, |t| matches!(t, TransportError::Timeout)),
        "{err}"
    );
    assert_eq!(readers.reader(id).unwrap().state, ReaderState::Ready);
    // Queued behind a 1.4 s request, a 1.6 s request still gets its 1.6 s.
    let first = readers.submit(id, flows::GetPinStatus, opts(3000)).unwrap();
    let second = readers.submit(id, flows::GetPinStatus, opts(1600)).unwrap();
    assert!(first.await.unwrap().is_ok());
    let second = second.await.unwrap();
    assert!(second.is_ok(), "{second:?}");
    assert!(readers.shutdown(GRACE));
}

/// A request that runs out of time before VERIFY is not sent at all: no try in doubt.
#[tokio::test]
async fn no_verify_without_enough_time_left() {
    let (readers, mut events) = ReaderManager::start(config(4, 5000)).unwrap();
    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    let slow = with_faults("ordinary", "delay_ms = 350\n");
    readers.insert_virtual(id, slow.path()).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    // SELECT and the retry counter take 700 ms of 1000: VERIFY needs twice the slowest answer.
    let err = run(&readers, id, sign(KeyKind::Auth, b"0000"), opts(1000))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Flow(JpkiError::Card(CardError::NoTimeLeft {
                command: "VERIFY",
                ..
            }))
        ),
        "{err}"
    );
    let slot = readers.virtual_slot(id).unwrap();
    assert_eq!(slot.with(|c| c.pin_remaining(PinId::Auth)).unwrap(), 3);
    assert!(readers.shutdown(GRACE));
}

/// Defect: a request was not tied to the card it was meant for.
#[tokio::test]
async fn a_request_for_another_card_ends_before_any_apdu() {
    let (readers, mut events) = ReaderManager::start(config(4, 5000)).unwrap();
    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    readers.insert_virtual(id, &persona("ordinary")).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    let seen = readers.reader(id).unwrap().insertions;
    let tied = |n: u32| RequestOptions {
        insertion: Some(n),
        ..opts(5000)
    };
    // The caller's insertion is stale: nothing reaches the card.
    readers.remove_virtual(id).unwrap();
    readers.insert_virtual(id, &persona("moved")).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    let slot = readers.virtual_slot(id).unwrap();
    let before = slot.with(|c| c.apdus_seen()).unwrap();
    let err = run(&readers, id, sign(KeyKind::Auth, b"1234"), tied(seen))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::CardReplaced { .. }), "{err}");
    assert_eq!(slot.with(|c| c.apdus_seen()).unwrap(), before);
    assert!(
        run(&readers, id, sign(KeyKind::Auth, b"1234"), tied(seen + 1))
            .await
            .is_ok()
    );

    // A card swapped faster than the reader layer heard of it: the slot's own count moved.
    let now = readers.reader(id).unwrap().insertions;
    slot.insert(jpki_vcard::VirtualCard::load(&persona("ordinary")).unwrap());
    let err = run(&readers, id, sign(KeyKind::Auth, b"1234"), tied(now))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::CardSwapped), "{err}");
    assert_eq!(slot.with(|c| c.apdus_seen()).unwrap(), 0);
    assert!(readers.shutdown(GRACE));
}

/// A flow that panics after its PIN was presented.
struct Panics;

impl Flow for Panics {
    type Output = ();
    fn name(&self) -> &'static str {
        "panics"
    }
    fn presents_pin(&self) -> bool {
        true
    }
    fn run<T: CardTransport>(self, card: &mut Card<T>, ctx: &FlowContext) -> Result<(), JpkiError> {
        let secret = KeySecret::new(KeyKind::Auth, b"1234").unwrap();
        let _key = jpkid::jpki::ap::unlock(card, &secret, ctx.guard)?;
        panic!("a bug inside a flow");
    }
}

/// Defect: a panicking worker left its reader `busy` forever (and its session open).
#[tokio::test]
async fn a_panicking_flow_ends_its_session_locked_and_the_reader_serves_on() {
    let (readers, mut events) = ReaderManager::start(config(4, 5000)).unwrap();
    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    readers.insert_virtual(id, &persona("ordinary")).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    let err = run(&readers, id, Panics, opts(5000)).await.unwrap_err();
    assert!(matches!(err, RequestError::Panicked), "{err}");
    let slot = readers.virtual_slot(id).unwrap();
    assert!(
        !slot.with(|c| c.is_verified(PinId::Auth)).unwrap(),
        "left unlocked"
    );
    assert_eq!(readers.reader(id).unwrap().state, ReaderState::Ready);
    assert!(
        run(&readers, id, flows::GetPinStatus, opts(5000))
            .await
            .is_ok()
    );
    assert!(readers.shutdown(GRACE));
}

/// Stopping drains: the request in flight finishes (its card locked again), queued ones are
/// refused, and nothing new is taken.
#[tokio::test]
async fn shutdown_drains_the_request_in_flight_and_refuses_the_queue() {
    let (readers, mut events) = ReaderManager::start(config(4, 5000)).unwrap();
    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    let slow = with_faults("ordinary", "sign_delay_ms = 800\n");
    readers.insert_virtual(id, slow.path()).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    let slot = readers.virtual_slot(id).unwrap();
    let in_flight = readers
        .submit(id, sign(KeyKind::Auth, b"1234"), opts(5000))
        .unwrap();
    let queued = readers.submit(id, flows::GetPinStatus, opts(5000)).unwrap();
    until_state(&mut events, ReaderState::Busy).await;
    let stopper = readers.clone();
    let drained = tokio::task::spawn_blocking(move || stopper.shutdown(GRACE))
        .await
        .unwrap();
    assert!(drained);
    assert!(
        in_flight.await.unwrap().is_ok(),
        "the request in flight ran to its end"
    );
    assert!(matches!(queued.await.unwrap(), Err(RequestError::Stopping)));
    assert!(!slot.with(|c| c.is_verified(PinId::Auth)).unwrap());
    assert!(matches!(
        readers.submit(id, flows::GetPinStatus, opts(5000)),
        Err(RequestError::Stopping)
    ));
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

#[tokio::test]
async fn a_removed_reader_reports_nothing_after_its_removal() {
    let (readers, mut events) = ReaderManager::start(config(4, 5000)).unwrap();
    let id = readers.add_virtual_reader("Virtual Reader 0").unwrap();
    let slow = with_faults("ordinary", "delay_ms = 100\n");
    readers.insert_virtual(id, slow.path()).unwrap();
    until_state(&mut events, ReaderState::Ready).await;
    let in_flight = readers
        .submit(id, read(CertKind::Auth), opts(5000))
        .unwrap();
    until_state(&mut events, ReaderState::Busy).await;
    readers.remove_reader(id);
    // The worker finishes (or abandons) the request after the reader is gone…
    let _ = in_flight.await;
    // …and says nothing more about it: a later event for this id would describe a reader
    // that no longer exists, and a returning reader reuses the id.
    let mut after_removal = Vec::new();
    let mut removed = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), events.recv()).await {
        match ev {
            ReaderEvent::Removed(r) if r == id => removed = true,
            ReaderEvent::StateChanged { snapshot, .. } if removed && snapshot.id == id => {
                after_removal.push(snapshot.state);
            }
            _ => {}
        }
    }
    assert!(removed, "no Removed event");
    assert!(after_removal.is_empty(), "{after_removal:?}");
    assert!(readers.shutdown(GRACE));
}
