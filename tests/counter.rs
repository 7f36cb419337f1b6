//! The counter flows of the service terms end to end over D-Bus: the `jpkid` binary on a private
//! bus with one virtual reader per persona, called through the typed client (`jpkid::client`),
//! `busctl` and `openssl`. Each persona's expected result is asserted (PERSONAS.md `[expect]`).

#![cfg(feature = "virtual-card")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support {
    pub mod bus;
    pub mod run;
}

use std::time::Duration;

use jpkid::api::{
    AuthenticityOptions, CardOptions, CertStatus, ConsentOptions, ConsentStatusFacts,
    EligibilityFacts, Error, IntegrityStatus, LinkRequirementFacts, MatchOptions, SignatureStatus,
};
use jpkid::client::{Client, ClientError, Reader};
use jpkid::terms::{ConsentDocument, ConsentItem, DocumentKind, Holding};
use support::bus::{Daemon, DaemonOptions, TestBus, ensure_group, persona, testpki};

/// No test may hang.
const TEST_LIMIT: Duration = Duration::from_secs(120);

async fn limited<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test did not finish in time");
}

/// The personas, one virtual reader each, in this order (reader N = `PERSONAS[N]`).
const PERSONAS: &[&str] = &[
    "ordinary",
    "moved",
    "expired",
    "revoked",
    "forged",
    "android",
    "iphone",
    "under15",
    "not-jpki",
    "blocked",
    "text-self-signed",
    "no-sfi",
    "no-extended",
    "substitute-chars",
    "long-address",
];

struct Counter {
    _bus: TestBus,
    _daemon: Daemon,
    client: Client,
}

impl Counter {
    async fn start(personas: &[&str]) -> Counter {
        ensure_group("jpki");
        let bus = TestBus::start();
        let daemon = Daemon::start(&bus, DaemonOptions::with_personas(personas)).await;
        let client = Client::new(&bus.connect().await).await.unwrap();
        Counter {
            _bus: bus,
            _daemon: daemon,
            client,
        }
    }

    async fn reader_of(&self, name: &str) -> Reader {
        let id = PERSONAS.iter().position(|p| *p == name).unwrap();
        self.client
            .reader(u32::try_from(id).unwrap())
            .await
            .unwrap()
    }
}

fn pin_of(name: &str, table: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(persona(name).join("persona.toml")).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    value["pins"][table]["value"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn expect_of(name: &str, key: &str) -> Option<toml::Value> {
    let text = std::fs::read_to_string(persona(name).join("persona.toml")).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    value["expect"].get(key).cloned()
}

fn daemon_error(r: Result<impl std::fmt::Debug, ClientError>) -> Error {
    match r {
        Err(ClientError::Daemon(e)) => e,
        other => panic!("expected a daemon error, got {other:?}"),
    }
}

fn short(e: &Error) -> &'static str {
    e.short_name()
}

/// `Link` for every persona: the certificate's issue number and status after possession was
/// proven; expired and revoked told apart; a forged card is `KeyMismatch`; the tokens the
/// counter does not take get their own errors; a wrong password costs one try and says so.
#[tokio::test]
async fn link_for_every_persona() {
    limited(async {
        let c = Counter::start(PERSONAS).await;
        for name in PERSONAS {
            let reader = c.reader_of(name).await;
            let kind = expect_of(name, "card_kind").unwrap();
            let got = reader
                .link(&pin_of_or_default(name), &CardOptions::default())
                .await;
            match kind.as_str().unwrap() {
                "android" | "iphone" => {
                    assert_eq!(short(&daemon_error(got)), "UnsupportedCard", "{name}");
                    continue;
                }
                "no-sign-cert" => {
                    assert_eq!(short(&daemon_error(got)), "CertificateMissing", "{name}");
                    continue;
                }
                "not-jpki" => {
                    assert_eq!(short(&daemon_error(got)), "NotJpkiCard", "{name}");
                    continue;
                }
                _ => {}
            }
            if *name == "blocked" {
                assert_eq!(short(&daemon_error(got)), "PinBlocked", "{name}");
                continue;
            }
            if *name == "forged" {
                assert_eq!(short(&daemon_error(got)), "KeyMismatch", "{name}");
                continue;
            }
            let link = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            let serial = expect_of(name, "sign_serial").unwrap();
            assert_eq!(link.serial, serial.as_str().unwrap(), "{name}");
            let status = expect_of(name, "sign_status").unwrap();
            assert_eq!(link.status.as_str(), status.as_str().unwrap(), "{name}");
            assert!(link.not_after.is_some(), "{name}");
            assert!(!link.certificate.as_slice().is_empty(), "{name}");
            if *name == "revoked" {
                assert_eq!(
                    link.revocation_reason.as_deref(),
                    Some("affiliationChanged")
                );
                assert!(link.revoked_at.is_some());
            }
        }
        // A wrong password: one try spent, reported; the guard then stops the last ones.
        let reader = c.reader_of("ordinary").await;
        let e = daemon_error(reader.link(b"WRONG1", &CardOptions::default()).await);
        assert_eq!(short(&e), "PinIncorrect");
        assert_eq!(e.remaining(), Some(4));
        assert_eq!(reader.pin_status().await.unwrap().sign_password, 4);
        // Badly formed: refused before the card, no try spent.
        let e = daemon_error(reader.link(b"no", &CardOptions::default()).await);
        assert_eq!(short(&e), "InvalidPinFormat");
        assert_eq!(reader.pin_status().await.unwrap().sign_password, 4);
    })
    .await;
}

/// A persona without a signing password table gets any well-formed one (it never reaches a
/// card that would check it: those flows end before the VERIFY).
fn pin_of_or_default(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(persona(name).join("persona.toml")).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    match value.get("pins").and_then(|p| p.get("sign")) {
        Some(_) => pin_of(name, "sign"),
        None => b"TESTPW1".to_vec(),
    }
}

fn openssl_verifies(cms: &[u8], root: &str) -> Option<Vec<u8>> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("c.p7m"), cms).unwrap();
    let st = std::process::Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any",
        ])
        .arg("-in")
        .arg(tmp.path().join("c.p7m"))
        .arg("-CAfile")
        .arg(testpki().join(root))
        .arg("-out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    st.status
        .success()
        .then(|| std::fs::read(tmp.path().join("out")).unwrap())
}

/// `SignConsent` then `VerifyConsent`: the CMS verifies with openssl and with the daemon, the
/// document says what was asked, a withdrawal says so, one changed byte is `invalid`, garbage
/// is `InvalidArgument`, and bad items are refused before the card.
#[tokio::test]
async fn sign_consent_and_verify_it() {
    limited(async {
        let c = Counter::start(PERSONAS).await;
        let reader = c.reader_of("ordinary").await;
        let password = pin_of("ordinary", "sign");
        let options = ConsentOptions {
            reference: Some("licence-centre/2026-12-01/0042".to_owned()),
            ..ConsentOptions::default()
        };
        let signed = reader
            .sign_consent(
                &[ConsentItem::Name, ConsentItem::Address],
                &password,
                &options,
            )
            .await
            .unwrap();
        assert_eq!(signed.status, CertStatus::Valid);
        assert_eq!(signed.serial, "1A2B3C01");
        let doc = ConsentDocument::parse_canonical(&signed.document).unwrap();
        assert_eq!(doc.kind, DocumentKind::Consent);
        assert_eq!(doc.items.names(), ["address", "name"]);
        assert_eq!(doc.serial, signed.serial);
        assert_eq!(doc.signed_at.unix_timestamp(), signed.signed_at);
        assert_eq!(
            doc.reference.as_deref(),
            Some("licence-centre/2026-12-01/0042")
        );
        assert!(!doc.terminal.is_empty());
        let content = openssl_verifies(signed.cms.as_slice(), "sign_root_g2.pem")
            .expect("openssl cms -verify accepts the consent");
        assert_eq!(content, signed.document.as_bytes());

        let check = c
            .client
            .verify_consent(signed.cms.as_slice())
            .await
            .unwrap();
        assert_eq!(check.signature, SignatureStatus::Valid);
        assert_eq!(check.status, CertStatus::Valid);
        assert_eq!(check.status_at_signing, CertStatus::Valid);
        assert_eq!(check.kind.as_deref(), Some("consent"));
        assert_eq!(
            check.items.as_deref(),
            Some(&["address".to_owned(), "name".to_owned()][..])
        );
        assert_eq!(check.serial, signed.serial);
        assert_eq!(check.signed_at, signed.signed_at);
        assert_eq!(check.document.as_deref(), Some(signed.document.as_str()));

        // One byte of the document changed (a digit of the serial): signature invalid.
        let cms = signed.cms.as_slice().to_vec();
        let at = cms
            .windows(signed.document.len())
            .position(|w| w == signed.document.as_bytes())
            .unwrap();
        let serial_at = signed.document.find("1A2B3C01").unwrap();
        let mut changed = cms.clone();
        changed[at + serial_at] = b'2';
        let check = c.client.verify_consent(&changed).await.unwrap();
        assert_eq!(check.signature, SignatureStatus::Invalid);
        assert!(openssl_verifies(&changed, "sign_root_g2.pem").is_none());
        // Garbage, a cut CMS, an empty one: InvalidArgument.
        for bad in [&b"not a cms"[..], &cms[..cms.len() / 2], &[]] {
            let e = daemon_error(c.client.verify_consent(bad).await);
            assert_eq!(short(&e), "InvalidArgument", "{e:?}");
        }

        // A withdrawal: items default to all three.
        let withdraw = ConsentOptions {
            withdraw: true,
            ..ConsentOptions::default()
        };
        let signed = reader
            .sign_consent(&[], &password, &withdraw)
            .await
            .unwrap();
        let check = c
            .client
            .verify_consent(signed.cms.as_slice())
            .await
            .unwrap();
        assert_eq!(check.signature, SignatureStatus::Valid);
        assert_eq!(check.kind.as_deref(), Some("withdrawal"));
        assert_eq!(check.items.unwrap().len(), 3);
        assert_eq!(check.reference, None);

        // Bad items and references are refused before the card: no try spent.
        let before = reader.pin_status().await.unwrap().sign_password;
        let proxy = reader.proxy();
        for items in [
            vec![],
            vec!["name", "name"],
            vec!["my-number"],
            vec!["sex"],
            vec!["Name"],
        ] {
            let items = items.into_iter().map(str::to_owned).collect();
            let r = proxy
                .sign_consent(
                    items,
                    jpkid::api::SecretBytes::new(password.clone()),
                    ConsentOptions::default().to_dict(),
                )
                .await;
            match r {
                Err(Error::InvalidArgument(_)) => {}
                other => panic!("expected InvalidArgument, got {other:?}"),
            }
        }
        let bad_reference = ConsentOptions {
            reference: Some("line\nbreak".to_owned()),
            ..ConsentOptions::default()
        };
        let e = daemon_error(
            reader
                .sign_consent(&[ConsentItem::Name], &password, &bad_reference)
                .await,
        );
        assert_eq!(short(&e), "InvalidArgument");
        // A wrong password for the consent: a try spent and reported.
        let e = daemon_error(
            reader
                .sign_consent(&[ConsentItem::Name], b"WRONG1", &ConsentOptions::default())
                .await,
        );
        assert_eq!(short(&e), "PinIncorrect");
        assert_eq!(reader.pin_status().await.unwrap().sign_password, before - 1);

        // The expired persona's consent: told apart now and at the signing time.
        let expired = c.reader_of("expired").await;
        let signed = expired
            .sign_consent(
                &[ConsentItem::BirthDate],
                &pin_of("expired", "sign"),
                &ConsentOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(signed.status, CertStatus::Expired);
        let check = c
            .client
            .verify_consent(signed.cms.as_slice())
            .await
            .unwrap();
        assert_eq!(check.signature, SignatureStatus::Valid);
        assert_eq!(check.status, CertStatus::Expired);
        assert_eq!(check.status_at_signing, CertStatus::Expired);
        // The revoked persona's: revoked, and the consent still verifies as a signature.
        let revoked = c.reader_of("revoked").await;
        let signed = revoked
            .sign_consent(
                &[ConsentItem::Address],
                &pin_of("revoked", "sign"),
                &ConsentOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(signed.status, CertStatus::Revoked);
        // The forged card makes no consent at all; a smartphone is not taken.
        let e = daemon_error(
            c.reader_of("forged")
                .await
                .sign_consent(
                    &[ConsentItem::Name],
                    &pin_of("forged", "sign"),
                    &ConsentOptions::default(),
                )
                .await,
        );
        assert_eq!(short(&e), "KeyMismatch");
        let e = daemon_error(
            c.reader_of("android")
                .await
                .sign_consent(
                    &[ConsentItem::Name],
                    &pin_of("android", "sign"),
                    &ConsentOptions::default(),
                )
                .await,
        );
        assert_eq!(short(&e), "UnsupportedCard");
    })
    .await;
}

/// `MatchAttributes` for every persona with a text AP: the moved persona reports an address
/// mismatch, the self-signed text AP is unverifiable, the forged card is `KeyMismatch`.
#[tokio::test]
async fn match_attributes_for_every_persona() {
    limited(async {
        let c = Counter::start(PERSONAS).await;
        for name in PERSONAS {
            let kind = expect_of(name, "card_kind").unwrap();
            if kind.as_str() != Some("card") || *name == "blocked" {
                continue;
            }
            let reader = c.reader_of(name).await;
            let got = reader
                .match_attributes(
                    &pin_of(name, "text"),
                    &pin_of(name, "sign"),
                    &MatchOptions::default(),
                )
                .await;
            if *name == "forged" {
                assert_eq!(short(&daemon_error(got)), "KeyMismatch", "{name}");
                continue;
            }
            let m = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            let matches = expect_of(name, "attributes_match").unwrap();
            assert_eq!(m.all, matches.as_bool().unwrap(), "{name}");
            let integrity = expect_of(name, "integrity").unwrap();
            assert_eq!(m.integrity.as_str(), integrity.as_str().unwrap(), "{name}");
            let status = expect_of(name, "sign_status").unwrap();
            assert_eq!(m.status.as_str(), status.as_str().unwrap(), "{name}");
            if *name == "moved" {
                assert!(!m.address && m.name && m.birth_date && m.sex, "{name}");
            }
        }
        let text_self_signed = c.reader_of("text-self-signed").await;
        let m = text_self_signed
            .match_attributes(
                &pin_of("text-self-signed", "text"),
                &pin_of("text-self-signed", "sign"),
                &MatchOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(m.integrity, IntegrityStatus::Unverifiable);

        // A smartphone has no text AP: only as the sign reader.
        let android = c.reader_of("android").await;
        let e = daemon_error(
            android
                .match_attributes(
                    b"1234",
                    &pin_of("android", "sign"),
                    &MatchOptions::default(),
                )
                .await,
        );
        assert_eq!(short(&e), "UnsupportedCard");
        // Option sign-reader: the basic four from the card, the certificate from the phone
        // (000 §4 なお) — here another holder's phone: name and birth date differ.
        let ordinary = c.reader_of("ordinary").await;
        let across = MatchOptions {
            sign_reader: Some(android.id()),
            ..MatchOptions::default()
        };
        let m = ordinary
            .match_attributes(
                &pin_of("ordinary", "text"),
                &pin_of("android", "sign"),
                &across,
            )
            .await
            .unwrap();
        assert!(!m.all && !m.name && !m.birth_date && m.address && m.sex);
        assert_eq!(m.integrity, IntegrityStatus::Verified);
        assert_eq!(m.status, CertStatus::Valid);
        // The phone the caller saw has been replaced (a stale sign-insertion): nothing reaches
        // the token in that reader, its password is never tried.
        let before = android.pin_status().await.unwrap().sign_password;
        let stale = MatchOptions {
            sign_reader: Some(android.id()),
            sign_insertion: Some(android.insertions().await.unwrap().wrapping_sub(1)),
            ..MatchOptions::default()
        };
        let e = daemon_error(
            ordinary
                .match_attributes(&pin_of("ordinary", "text"), b"WRONG1", &stale)
                .await,
        );
        assert_eq!(short(&e), "CardRemoved", "{e:?}");
        assert_eq!(android.pin_status().await.unwrap().sign_password, before);
        // A sign-reader that does not exist, or is no reader's path.
        let nowhere = MatchOptions {
            sign_reader: Some(99),
            ..MatchOptions::default()
        };
        let e = daemon_error(
            ordinary
                .match_attributes(&pin_of("ordinary", "text"), b"TESTPW1", &nowhere)
                .await,
        );
        assert_eq!(short(&e), "InvalidArgument");
        // A wrong text PIN: reported, and the signing password never sent.
        let before = ordinary.pin_status().await.unwrap();
        let e = daemon_error(
            ordinary
                .match_attributes(
                    b"9999",
                    &pin_of("ordinary", "sign"),
                    &MatchOptions::default(),
                )
                .await,
        );
        assert_eq!(short(&e), "PinIncorrect");
        let after = ordinary.pin_status().await.unwrap();
        assert_eq!(after.text_pin, before.text_pin.map(|n| n - 1));
        assert_eq!(after.sign_password, before.sign_password);
    })
    .await;
}

/// The card pulled between the two halves of a `sign-reader` match: `CardRemoved`, nothing
/// compared.
#[tokio::test]
async fn a_card_pulled_during_a_match_across_readers_is_card_removed() {
    limited(async {
        // The phone answers slowly, so that the card can be pulled while it is read.
        let slow_phone = support::bus::persona_with_faults("android", &["delay_ms = 40"]);
        ensure_group("jpki");
        let bus = TestBus::start();
        let mut options = DaemonOptions::with_personas(&["ordinary"]);
        options.personas.push(slow_phone.path().to_path_buf());
        let _daemon = Daemon::start(&bus, options).await;
        let client = Client::new(&bus.connect().await).await.unwrap();
        let card = client.reader(0).await.unwrap();
        let phone = client.reader(1).await.unwrap();
        let testing = client.testing().await.unwrap();
        let across = MatchOptions {
            sign_reader: Some(phone.id()),
            ..MatchOptions::default()
        };
        let text_pin = pin_of("ordinary", "text");
        let password = pin_of("android", "sign");
        let matching = card.match_attributes(&text_pin, &password, &across);
        let pull = async {
            // The text AP part takes a few ms; the phone's 6 APDUs at least 240 ms.
            tokio::time::sleep(Duration::from_millis(120)).await;
            testing.remove_card(0).await.unwrap();
        };
        let (got, ()) = tokio::join!(matching, pull);
        let e = daemon_error(got);
        assert_eq!(short(&e), "CardRemoved");
        assert!(e.message().contains("while reader 1 was read"), "{e:?}");
    })
    .await;
}

/// The rules of the terms over D-Bus (their clause-named tests are in `terms.rs`): answers and
/// the named errors for impossible dates and unknown holdings.
#[tokio::test]
async fn the_terms_rules_over_dbus() {
    limited(async {
        let c = Counter::start(&["ordinary"]).await;
        let m = &c.client;
        // 001 §4(2): the day after the consent date starts ten years; 民法 §143.
        assert_eq!(
            m.consent_period("2024-02-28").await.unwrap(),
            ("2024-02-29".to_owned(), "2034-02-28".to_owned())
        );
        assert_eq!(
            m.consent_period("2025-12-31").await.unwrap(),
            ("2026-01-01".to_owned(), "2035-12-31".to_owned())
        );
        for bad in ["2026-02-30", "2026-2-3", "", "2026-02-03x"] {
            let e = daemon_error(m.consent_period(bad).await);
            assert_eq!(short(&e), "InvalidArgument", "{bad}");
        }
        // 000 §2.
        let e = m
            .eligibility(Holding::MynaLicenseOnly, &EligibilityFacts::default())
            .await
            .unwrap();
        assert!(e.mynaportal_link && e.address_one_stop && e.domicile_change && e.online_lecture);
        let e = m
            .eligibility(Holding::LicenseOnly, &EligibilityFacts::default())
            .await
            .unwrap();
        assert!(!e.mynaportal_link && !e.address_one_stop);
        let suspended = EligibilityFacts { suspended: true };
        let e = m
            .eligibility(Holding::MynaLicenseOnly, &suspended)
            .await
            .unwrap();
        assert!(!e.online_lecture && !e.license_info && e.address_one_stop);
        let raw = m
            .manager()
            .eligibility(
                "licence-only".to_owned(),
                EligibilityFacts::default().to_dict(),
            )
            .await;
        assert!(matches!(raw, Err(Error::InvalidArgument(_))), "{raw:?}");

        // 001 §5(2): an expired certificate stops updates until a new consent.
        let status = m
            .consent_status(
                "2026-04-01",
                &ConsentStatusFacts {
                    on: Some("2027-06-01".to_owned()),
                    certificate_lapse: Some("expiry".to_owned()),
                    new_certificate: true,
                    ..ConsentStatusFacts::default()
                },
            )
            .await
            .unwrap();
        assert!(status.in_period && !status.updates);
        assert_eq!(status.action, "consent-again");
        assert_eq!(status.clause, "001 §5(2)");
        // Withdrawn: the holder reports changes themselves (000 利用解除).
        let status = m
            .consent_status(
                "2026-04-01",
                &ConsentStatusFacts {
                    on: Some("2027-06-01".to_owned()),
                    withdrawn_on: Some("2027-01-10".to_owned()),
                    ..ConsentStatusFacts::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(status.action, "report-changes");
        // Without `on`: today in Japan, which is within a consent made today.
        let today = jpkid::terms::format_date(jpkid::terms::today_in_japan(
            time::OffsetDateTime::now_utc(),
        ));
        let status = m
            .consent_status(&today, &ConsentStatusFacts::default())
            .await
            .unwrap();
        assert!(status.in_period && status.updates);
        for facts in [
            ConsentStatusFacts {
                on: Some("2026-02-30".to_owned()),
                ..ConsentStatusFacts::default()
            },
            ConsentStatusFacts {
                holding: Some("both".to_owned()),
                ..ConsentStatusFacts::default()
            },
            ConsentStatusFacts {
                on: Some("2020-01-01".to_owned()),
                ..ConsentStatusFacts::default()
            },
        ] {
            let e = daemon_error(m.consent_status("2026-04-01", &facts).await);
            assert_eq!(short(&e), "InvalidArgument", "{facts:?}");
        }

        // 000 §4 なお, §6 ただし, §2(1).
        let need = |facts: LinkRequirementFacts| async move {
            m.link_requirement(&facts).await.unwrap().counter_submission
        };
        assert_eq!(
            need(LinkRequirementFacts {
                holding: Some("myna-license-only".to_owned()),
                ..LinkRequirementFacts::default()
            })
            .await,
            "needed"
        );
        assert_eq!(
            need(LinkRequirementFacts {
                holding: Some("myna-license-only".to_owned()),
                one_stop_started: true,
                ..LinkRequirementFacts::default()
            })
            .await,
            "not-needed"
        );
        assert_eq!(
            need(LinkRequirementFacts {
                holding: Some("license-and-myna-license".to_owned()),
                unlinked: true,
                licence_lapsed_after_unlink: true,
                ..LinkRequirementFacts::default()
            })
            .await,
            "may-be-needed"
        );
        assert_eq!(
            need(LinkRequirementFacts {
                holding: Some("history-only".to_owned()),
                ..LinkRequirementFacts::default()
            })
            .await,
            "not-eligible"
        );
        let e = daemon_error(m.link_requirement(&LinkRequirementFacts::default()).await);
        assert_eq!(short(&e), "InvalidArgument");
        // An unknown fact, or a fact of the wrong type.
        let mut facts = ConsentStatusFacts::default().to_dict();
        facts.insert(
            "holdings".to_owned(),
            zbus::zvariant::OwnedVariant::from(true),
        );
        let raw = m
            .manager()
            .consent_status("2026-04-01".to_owned(), facts)
            .await;
        assert!(matches!(raw, Err(Error::InvalidArgument(_))), "{raw:?}");
    })
    .await;
}

/// The wire form, as a kiosk in another language sees it: `busctl` calls `MatchAttributes` and
/// gets the `a{sv}` keys of DESIGN §6.2 — booleans and statuses, no attribute value.
#[tokio::test]
async fn match_attributes_on_the_wire_carries_only_booleans_and_statuses() {
    limited(async {
        ensure_group("jpki");
        let bus = TestBus::start();
        let _daemon = Daemon::start(&bus, DaemonOptions::with_personas(&["ordinary"])).await;
        let out = bus
            .command("busctl")
            .args([
                "--json=short",
                "call",
                "io.jpkid.Jpki1",
                "/io/jpkid/Jpki1/reader/0",
                "io.jpkid.Jpki1.Reader",
                "MatchAttributes",
                "ayaya{sv}",
                "4",
                "49",
                "50",
                "51",
                "52",
                "7",
                "84",
                "69",
                "83",
                "84",
                "80",
                "87",
                "49",
                "0",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let dict = json["data"][0].as_object().unwrap();
        let mut keys: Vec<&str> = dict.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "address",
                "birth-date",
                "integrity",
                "match",
                "name",
                "serial",
                "sex",
                "status"
            ]
        );
        assert_eq!(dict["match"]["data"], true);
        assert_eq!(dict["integrity"]["data"], "verified");
        let text = String::from_utf8_lossy(&out.stdout);
        for value in ["試験", "東京都", "19900102"] {
            assert!(!text.contains(value), "an attribute value left the daemon");
        }
    })
    .await;
}

/// The personas of `CheckAuthenticity`, one virtual reader each (reader N = `AUTHENTICITY[N]`).
const AUTHENTICITY: &[&str] = &[
    "ordinary",
    "face-altered",
    "unknown-card-ca",
    "cloned-chip",
    "no-sfi",
    "no-extended",
    "text-self-signed",
    "android",
];

/// `CheckAuthenticity` over D-Bus for every persona with a visual AP: the persona's verdict
/// (PERSONAS.md `authenticity`, `expiry`), the photo only with option `photo`; a smartphone
/// token is `UnsupportedCard`, a malformed code `InvalidPinFormat` before the card, a wrong
/// one `PinIncorrect remaining=N`. The APDU trace never names 照合番号A or EF 0005, and the
/// log holds neither the code nor the photo; the audit names the verdict.
#[tokio::test]
async fn check_authenticity_for_every_persona() {
    limited(async {
        ensure_group("jpki");
        let bus = TestBus::start();
        let daemon = Daemon::start(
            &bus,
            DaemonOptions {
                log: "info,apdu=trace".to_owned(),
                ..DaemonOptions::with_personas(AUTHENTICITY)
            },
        )
        .await;
        let client = Client::new(&bus.connect().await).await.unwrap();
        let reader = |name: &str| {
            let id = AUTHENTICITY.iter().position(|p| *p == name).unwrap();
            client.reader(u32::try_from(id).unwrap())
        };
        let mut photo_bytes = Vec::new();
        for name in AUTHENTICITY {
            let r = reader(name).await.unwrap();
            if *name == "android" {
                let got = r
                    .check_authenticity(b"02010220357333", &AuthenticityOptions::default())
                    .await;
                assert_eq!(short(&daemon_error(got)), "UnsupportedCard", "{name}");
                continue;
            }
            let code = pin_of(name, "code_b");
            let expected = expect_of(name, "authenticity").unwrap();
            let expected = expected.as_str().unwrap();
            let got = r
                .check_authenticity(&code, &AuthenticityOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let (cv, face, challenge) = support::run::expected_verdicts(expected);
            assert_eq!(
                (
                    got.cv_certificate.as_str(),
                    got.card_face.as_str(),
                    got.challenge.as_str()
                ),
                (cv, face, challenge),
                "{name}"
            );
            assert_eq!(got.genuine, expected == "genuine", "{name}");
            let expiry = expect_of(name, "expiry").unwrap();
            assert_eq!(got.expiry.as_deref(), expiry.as_str(), "{name}");
            assert!(got.photo.is_none(), "{name}: no photo unless asked");
            if *name == "ordinary" {
                let with = r
                    .check_authenticity(
                        &code,
                        &AuthenticityOptions {
                            photo: true,
                            ..AuthenticityOptions::default()
                        },
                    )
                    .await
                    .unwrap();
                assert!(with.genuine);
                let photo = with.photo.expect("the photo with option photo");
                assert_eq!(&photo.as_slice()[..12], b"\0\0\0\x0CjP  \r\n\x87\n");
                photo_bytes = photo.as_slice().to_vec();
            }
        }
        // Bad input never reaches the card; a wrong code costs one try and says so, and
        // GetPinStatus shows it (`code-b`).
        let r = reader("ordinary").await.unwrap();
        assert_eq!(r.pin_status().await.unwrap().code_b, Some(10));
        for bad in [&b"0201022035733"[..], b"0201022035733A", b""] {
            let e = daemon_error(
                r.check_authenticity(bad, &AuthenticityOptions::default())
                    .await,
            );
            assert_eq!(short(&e), "InvalidPinFormat", "{bad:?}");
        }
        let e = daemon_error(
            r.check_authenticity(b"99999999999999", &AuthenticityOptions::default())
                .await,
        );
        assert_eq!(short(&e), "PinIncorrect");
        assert_eq!(e.remaining(), Some(9));
        assert_eq!(r.pin_status().await.unwrap().code_b, Some(9));
        let phone = reader("android").await.unwrap();
        assert_eq!(phone.pin_status().await.unwrap().code_b, None);
        // An option of the wrong type is refused by name.
        let e = daemon_error(
            r.proxy()
                .check_authenticity(
                    jpkid::api::SecretBytes::new(pin_of("ordinary", "code_b")),
                    [("photo".to_owned(), zbus::OwnedVariant::from(1u32))].into(),
                )
                .await
                .map_err(ClientError::Daemon),
        );
        assert_eq!(short(&e), "InvalidArgument");

        let log = daemon.stderr();
        assert!(log.contains("SELECT VISUAL AP"), "the APDU trace ran");
        let named = support::run::trace_names_code_a_or_my_number(&log);
        assert!(named.is_empty(), "照合番号A or EF 0005 named: {named:?}");
        let code = String::from_utf8(pin_of("ordinary", "code_b")).unwrap();
        assert!(!log.contains(&code), "照合番号B in the log");
        assert!(
            !log.to_uppercase()
                .contains(&hex::encode_upper(code.as_bytes()))
        );
        let compact = log.to_uppercase().replace(' ', "");
        for piece in photo_bytes[12..].chunks(16).take(8) {
            assert!(
                !compact.contains(&hex::encode_upper(piece)),
                "photo bytes in the log"
            );
        }
        let audit: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" audit: ") && l.contains("check-authenticity"))
            .collect();
        assert!(
            audit.iter().any(|l| l.contains("outcome=\"genuine\"")),
            "{audit:?}"
        );
        assert!(
            audit
                .iter()
                .any(|l| l.contains("outcome=\"not-genuine: challenge=failed\"")),
            "{audit:?}"
        );
        assert!(
            audit.iter().any(|l| l.contains("result=\"PinIncorrect\"")),
            "{audit:?}"
        );
    })
    .await;
}
