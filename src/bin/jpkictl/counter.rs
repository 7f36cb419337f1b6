//! The counter flows of the service terms (000, 001): `link`, `consent`, `verify-consent`,
//! `match`, the counter's 対面確認 `authenticity`, and the rules `consent-period`, `consent-status`, `link-requirement`,
//! `eligibility`.
//!
//! What the holder's card says of them never reaches the output: `link` prints the signing
//! certificate's serial, issuer, status and validity, not its subject (name, address); `match`
//! prints one yes/no per attribute, never a value. Secrets are read as in `remote` (terminal
//! without echo, or `--pin-stdin`) and wiped after the call.

use jpkid::api::{
    AuthenticityOptions, CardFaceStatus, CertStatus, ChallengeStatus, ConsentOptions,
    ConsentStatusFacts, CvCertificateStatus, EligibilityFacts, IntegrityStatus,
    LinkRequirementFacts, MatchOptions, SignatureStatus,
};
use jpkid::client::{Client, ClientError, Connection};
use jpkid::terms::{ConsentDocument, Holding};
use serde_json::json;
use zeroize::Zeroizing;

use crate::msg::{self, M};
use crate::out::{self, Ctx, Failure};
use crate::remote::{
    card_options, fail, pick, pick_besides, readers, secret, write_file, write_new_file,
};
use crate::{
    AuthenticityArgs, ConsentArgs, ConsentPeriodArgs, ConsentStatusArgs, EligibilityArgs, LinkArgs,
    LinkRequirementArgs, MatchArgs, SecretArgs, VerifyConsentArgs,
};

/// Width of the label column.
const LABEL: usize = 24;

/// One `label value` line.
fn row(ctx: &Ctx, label: M, value: &str) {
    outln!("  {} {value}", out::pad(&ctx.t(label, &[]), LABEL));
}

/// A certificate status and, below it, what it means.
fn status_row(ctx: &Ctx, label: M, status: CertStatus) {
    row(ctx, label, status.as_str());
    if let Some(m) = msg::status_meaning(status.as_str()) {
        outln!("  {} {}", out::pad("", LABEL), ctx.t(m, &[]));
    }
}

/// Exit 1 (the JSON result already printed) unless the certificate is valid.
fn valid_or_fail(ctx: &Ctx, name: &str, status: CertStatus, m: M) -> Result<(), Failure> {
    if status == CertStatus::Valid {
        return Ok(());
    }
    let mut f = Failure::failed(name, ctx.t(m, &[status.as_str()]));
    f.json_printed = ctx.json;
    Err(f)
}

/// An item of a consent in words (`address` → 住所).
fn item_label(ctx: &Ctx, name: &str) -> String {
    match name {
        "address" => ctx.t(M::ItemAddress, &[]),
        "name" => ctx.t(M::ItemName, &[]),
        "birth-date" => ctx.t(M::ItemBirthDate, &[]),
        other => other.to_owned(),
    }
}

fn item_list(ctx: &Ctx, names: &[String]) -> String {
    let words: Vec<String> = names.iter().map(|n| item_label(ctx, n)).collect();
    words.join(&ctx.t(M::ListSeparator, &[]))
}

fn kind_label(ctx: &Ctx, kind: &str) -> String {
    match kind {
        "consent" => ctx.t(M::KindConsent, &[]),
        "withdrawal" => ctx.t(M::KindWithdrawal, &[]),
        other => other.to_owned(),
    }
}

/// Puts the keys whose value is present into a JSON object.
fn put_optional(v: &mut serde_json::Value, entries: Vec<(&str, Option<serde_json::Value>)>) {
    for (k, value) in entries {
        if let Some(value) = value {
            v[k] = value;
        }
    }
}

/// `link`: the signing certificate after the card proved it holds its key (000 §4 1回目).
pub async fn link(ctx: &Ctx, conn: &Connection, a: LinkArgs) -> Result<(), Failure> {
    let (r, view) = pick(ctx, conn, a.reader.reader).await?;
    let password = secret(ctx, &a.secret, M::PromptSignPassword)?;
    let options = card_options(&view, &a.secret);
    let link = r.link(&password, &options).await.map_err(fail(ctx))?;
    drop(password);
    if let Some(p) = &a.out {
        write_file(p, link.certificate.as_slice())?;
    }
    let status = link.status;
    if ctx.json {
        // The D-Bus keys but `subject` and `certificate` (personal: `--out` writes the latter).
        let mut v = json!({
            "reader": view.number,
            "status": status.as_str(),
            "serial": link.serial,
            "issuer": link.issuer,
            "root": link.root,
        });
        put_optional(
            &mut v,
            vec![
                ("not-before", link.not_before.map(|t| json!(t))),
                ("not-after", link.not_after.map(|t| json!(t))),
                (
                    "revocation-source",
                    link.revocation_source.map(|s| json!(s.as_str())),
                ),
                (
                    "revocation-reason",
                    link.revocation_reason.clone().map(|r| json!(r)),
                ),
                ("revoked-at", link.revoked_at.map(|t| json!(t))),
                (
                    "revocation-detail",
                    link.revocation_detail.map(|d| json!(d.as_str())),
                ),
                (
                    "out",
                    a.out.as_ref().map(|p| json!(p.display().to_string())),
                ),
            ],
        );
        ctx.print_json(&v);
    } else {
        outln!("{}", ctx.t(M::LinkDone, &[&view.number.to_string()]));
        row(ctx, M::IssueNumber, &link.serial);
        status_row(ctx, M::CertificateStatus, status);
        row(ctx, M::Issuer, &link.issuer);
        let time = |t: Option<i64>| t.map(out::time);
        let rows = [
            (M::NotBefore, time(link.not_before)),
            (M::NotAfter, time(link.not_after)),
            (M::RevocationReason, link.revocation_reason.clone()),
            (M::RevokedAt, time(link.revoked_at)),
        ];
        for (label, value) in rows {
            if let Some(value) = value {
                row(ctx, label, &value);
            }
        }
        if let Some(d) = link.revocation_detail {
            let words = ctx.t(crate::msg::revocation_detail_meaning(d), &[]);
            row(
                ctx,
                M::RevocationDetailLabel,
                &format!("{}: {words}", d.as_str()),
            );
        }
        if let Some(p) = &a.out {
            outln!("  {}", ctx.t(M::WrittenTo, &[&p.display().to_string()]));
        }
    }
    valid_or_fail(ctx, "link", status, M::NotValid)
}

/// `consent`: the consent (or its withdrawal) signed on the card, the CMS written to `--out`.
pub async fn consent(ctx: &Ctx, conn: &Connection, a: ConsentArgs) -> Result<(), Failure> {
    let (r, view) = pick(ctx, conn, a.reader.reader).await?;
    let password = secret(ctx, &a.secret, M::PromptSignPassword)?;
    let options = ConsentOptions {
        card: card_options(&view, &a.secret),
        reference: a.reference.clone(),
        withdraw: a.withdraw,
    };
    let signed = r
        .sign_consent(&a.items, &password, &options)
        .await
        .map_err(fail(ctx))?;
    drop(password);
    write_file(&a.out, signed.cms.as_slice())?;
    // What was signed, read back from the document itself.
    let doc = ConsentDocument::parse_canonical(&signed.document).ok();
    let withdrawal = doc.as_ref().map_or(a.withdraw, |d| {
        d.kind == jpkid::terms::DocumentKind::Withdrawal
    });
    let kind = if withdrawal { "withdrawal" } else { "consent" };
    let items: Vec<String> = match &doc {
        Some(d) => d.items.names().into_iter().map(str::to_owned).collect(),
        None => a.items.iter().map(ToString::to_string).collect(),
    };
    let reference = doc.as_ref().and_then(|d| d.reference.clone());
    let status = signed.status;
    if ctx.json {
        let mut v = json!({
            "reader": view.number,
            "kind": kind,
            "items": items,
            "document": signed.document,
            "serial": signed.serial,
            "status": status.as_str(),
            "signed-at": signed.signed_at,
            "out": a.out.display().to_string(),
        });
        put_optional(&mut v, vec![("reference", reference.map(|r| json!(r)))]);
        ctx.print_json(&v);
    } else {
        let title = if withdrawal {
            M::WithdrawalSigned
        } else {
            M::ConsentSigned
        };
        outln!(
            "{}",
            ctx.t(title, &[&view.number.to_string(), &item_list(ctx, &items)])
        );
        row(ctx, M::Document, &signed.document);
        row(ctx, M::IssueNumber, &signed.serial);
        status_row(ctx, M::CertificateStatus, status);
        row(ctx, M::SignedAt, &out::time(signed.signed_at));
        if let Some(r) = &reference {
            row(ctx, M::Reference, r);
        }
        outln!("  {}", ctx.t(M::WrittenTo, &[&a.out.display().to_string()]));
    }
    valid_or_fail(ctx, "consent", status, M::ConsentCertNotValid)
}

/// `verify-consent`: the police-side check of a consent CMS (001 §3), through the daemon.
pub async fn verify_consent(
    ctx: &Ctx,
    conn: &Connection,
    a: VerifyConsentArgs,
) -> Result<(), Failure> {
    // The CMS carries the signer's certificate (name, address, birth date).
    let cms = Zeroizing::new(
        std::fs::read(&a.file)
            .map_err(|e| Failure::usage(format!("{}: {}", a.file.display(), out::chain(&e))))?,
    );
    let daemon = Client::new(conn).await.map_err(fail(ctx))?;
    let check = daemon.verify_consent(&cms).await.map_err(fail(ctx))?;
    drop(cms);
    let mut reasons = Vec::new();
    if check.signature == SignatureStatus::Invalid {
        reasons.push(ctx.t(M::ReasonSignatureInvalid, &[]));
    }
    if check.status_at_signing != CertStatus::Valid {
        reasons.push(ctx.t(
            M::ReasonStatusAtSigning,
            &[check.status_at_signing.as_str()],
        ));
    }
    if check.status != CertStatus::Valid {
        reasons.push(ctx.t(M::ReasonStatusNow, &[check.status.as_str()]));
    }
    if ctx.json {
        let mut v = json!({
            "signature": check.signature.as_str(),
            "status": check.status.as_str(),
            "status-at-signing": check.status_at_signing.as_str(),
            "signed-at": check.signed_at,
            "serial": check.serial,
            "accepted": reasons.is_empty(),
        });
        put_optional(
            &mut v,
            vec![
                ("kind", check.kind.clone().map(|k| json!(k))),
                ("items", check.items.clone().map(|i| json!(i))),
                ("reference", check.reference.clone().map(|r| json!(r))),
                ("document", check.document.clone().map(|d| json!(d))),
            ],
        );
        ctx.print_json(&v);
    } else {
        outln!(
            "{}",
            ctx.t(M::ConsentCheckTitle, &[check.signature.as_str()])
        );
        let meaning = match check.signature {
            SignatureStatus::Valid => M::SignatureValid,
            SignatureStatus::Invalid => M::SignatureInvalid,
        };
        outln!("  {}", ctx.t(meaning, &[]));
        status_row(ctx, M::StatusNow, check.status);
        status_row(ctx, M::StatusAtSigning, check.status_at_signing);
        if let Some(k) = &check.kind {
            row(ctx, M::Kind, &kind_label(ctx, k));
        }
        if let Some(items) = &check.items {
            row(ctx, M::Items, &item_list(ctx, items));
        }
        if let Some(r) = &check.reference {
            row(ctx, M::Reference, r);
        }
        row(ctx, M::SignedAt, &out::time(check.signed_at));
        row(ctx, M::IssueNumber, &check.serial);
        if check.signature == SignatureStatus::Valid
            && check.status_at_signing == CertStatus::Valid
            && check.status != CertStatus::Valid
        {
            outln!("  {}", ctx.t(M::LapseNote, &[]));
        }
    }
    if reasons.is_empty() {
        return Ok(());
    }
    let joined = reasons.join(&ctx.t(M::ReasonSeparator, &[]));
    let mut f = Failure::failed("verify-consent", ctx.t(M::ConsentNotVerified, &[&joined]));
    f.json_printed = ctx.json;
    Err(f)
}

/// `match`: the basic four of the card against a signing certificate whose key was proven
/// (000 §4 2回目). Accepted only when all four match, the integrity is verified and the
/// certificate is valid.
pub async fn match_attributes(ctx: &Ctx, conn: &Connection, a: MatchArgs) -> Result<(), Failure> {
    if let Some(n) = a.sign_reader {
        let all = readers(conn).await.map_err(fail(ctx))?;
        if !all.iter().any(|r| r.number == n) {
            let list: Vec<String> = all.iter().map(|r| r.number.to_string()).collect();
            let list = if list.is_empty() {
                "-".to_owned()
            } else {
                list.join(", ")
            };
            return Err(Failure::usage(
                ctx.t(M::NoSuchSignReader, &[&n.to_string(), &list]),
            ));
        }
    }
    let (r, view) = pick_besides(ctx, conn, a.reader.reader, a.sign_reader).await?;
    let secrets = SecretArgs {
        pin_stdin: a.pin_stdin,
        allow_last_try: a.allow_last_try,
    };
    let text_pin = secret(ctx, &secrets, M::PromptTextPin)?;
    let password = secret(ctx, &secrets, M::PromptSignPassword)?;
    // The phone's request is tied to the token seen there now, as the card's is.
    let sign_insertion = match a.sign_reader.filter(|n| *n != view.number) {
        Some(n) => readers(conn)
            .await
            .map_err(fail(ctx))?
            .into_iter()
            .find(|r| r.number == n)
            .map(|r| r.insertions),
        None => None,
    };
    let options = MatchOptions {
        card: card_options(&view, &secrets),
        sign_reader: a.sign_reader,
        sign_insertion,
    };
    let m = r
        .match_attributes(&text_pin, &password, &options)
        .await
        .map_err(fail(ctx))?;
    drop(text_pin);
    drop(password);
    let attributes = [
        ("name", M::ItemName, m.name),
        ("address", M::ItemAddress, m.address),
        ("birth-date", M::ItemBirthDate, m.birth_date),
        ("sex", M::ItemSex, m.sex),
    ];
    let mut reasons = Vec::new();
    for (_, label, same) in attributes {
        if !same {
            reasons.push(ctx.t(M::ReasonMismatch, &[&ctx.t(label, &[])]));
        }
    }
    if m.integrity != IntegrityStatus::Verified {
        reasons.push(ctx.t(M::ReasonIntegrity, &[m.integrity.as_str()]));
    }
    if m.status != CertStatus::Valid {
        reasons.push(ctx.t(M::ReasonStatus, &[m.status.as_str()]));
    }
    // The daemon's `match` decides, should it ever disagree with the four answers.
    if !m.all && attributes.iter().all(|(_, _, same)| *same) {
        reasons.insert(0, ctx.t(M::ReasonNotAll, &[]));
    }
    let accepted = reasons.is_empty();
    if ctx.json {
        let mut v = json!({
            "reader": view.number,
            "match": m.all,
            "integrity": m.integrity.as_str(),
            "serial": m.serial,
            "status": m.status.as_str(),
            "accepted": accepted,
        });
        for (key, _, same) in attributes {
            v[key] = json!(same);
        }
        put_optional(
            &mut v,
            vec![("sign-reader", a.sign_reader.map(|n| json!(n)))],
        );
        ctx.print_json(&v);
    } else {
        let number = view.number.to_string();
        match a.sign_reader.filter(|n| *n != view.number) {
            Some(n) => outln!("{}", ctx.t(M::MatchTitleAcross, &[&number, &n.to_string()])),
            None => outln!("{}", ctx.t(M::MatchTitle, &[&number])),
        }
        for (_, label, same) in attributes {
            let word = if same { M::Matches } else { M::DoesNotMatch };
            row(ctx, label, &ctx.t(word, &[]));
        }
        row(ctx, M::Integrity, m.integrity.as_str());
        let meaning = match m.integrity {
            IntegrityStatus::Verified => M::IntegrityVerified,
            IntegrityStatus::Mismatch => M::IntegrityMismatch,
            IntegrityStatus::Unverifiable => M::IntegrityUnverifiable,
        };
        outln!("  {} {}", out::pad("", LABEL), ctx.t(meaning, &[]));
        row(ctx, M::IssueNumber, &m.serial);
        status_row(ctx, M::CertificateStatus, m.status);
        if accepted {
            outln!("{}", ctx.t(M::MatchAccepted, &[]));
        }
    }
    if accepted {
        return Ok(());
    }
    let joined = reasons.join(&ctx.t(M::ReasonSeparator, &[]));
    let mut f = Failure::failed("match", ctx.t(M::MatchRejected, &[&joined]));
    f.json_printed = ctx.json;
    Err(f)
}

/// `authenticity`: the counter's 対面確認 with 照合番号B only. Prints the three verdicts and
/// the expiry (marked as not signed); the photo goes to `--photo FILE` only, never to the
/// output. Exit 1 unless the card is genuine.
pub async fn authenticity(
    ctx: &Ctx,
    conn: &Connection,
    a: AuthenticityArgs,
) -> Result<(), Failure> {
    if let Some(p) = &a.photo
        && std::fs::symlink_metadata(p).is_ok()
    {
        // Refused before the card is asked (the file would be refused after).
        return Err(Failure::usage(format!("{}: already exists", p.display())));
    }
    let (r, view) = pick(ctx, conn, a.reader.reader).await?;
    let code = secret(ctx, &a.secret, M::PromptCodeB)?;
    let options = AuthenticityOptions {
        card: card_options(&view, &a.secret),
        photo: a.photo.is_some(),
    };
    let got = r
        .check_authenticity(&code, &options)
        .await
        .map_err(fail(ctx))?;
    drop(code);
    if let (Some(path), Some(photo)) = (&a.photo, &got.photo) {
        write_new_file(path, photo.as_slice())?;
    }
    let mut reasons = Vec::new();
    if got.cv_certificate != CvCertificateStatus::Verified {
        reasons.push(ctx.t(M::ReasonCv, &[got.cv_certificate.as_str()]));
    }
    if got.card_face != CardFaceStatus::Verified {
        reasons.push(ctx.t(M::ReasonFace, &[got.card_face.as_str()]));
    }
    if got.challenge != ChallengeStatus::Verified {
        reasons.push(ctx.t(M::ReasonChallenge, &[got.challenge.as_str()]));
    }
    if ctx.json {
        let mut v = json!({
            "reader": view.number,
            "genuine": got.genuine,
            "cv-certificate": got.cv_certificate.as_str(),
            "card-face": got.card_face.as_str(),
            "challenge": got.challenge.as_str(),
        });
        put_optional(
            &mut v,
            vec![
                ("expiry", got.expiry.clone().map(|e| json!(e))),
                (
                    "photo",
                    a.photo
                        .as_ref()
                        .filter(|_| got.photo.is_some())
                        .map(|p| json!(p.display().to_string())),
                ),
            ],
        );
        ctx.print_json(&v);
    } else {
        outln!(
            "{}",
            ctx.t(M::AuthenticityTitle, &[&view.number.to_string()])
        );
        let meaning = |label: M, word: &str, m: M| {
            row(ctx, label, word);
            outln!("  {} {}", out::pad("", LABEL), ctx.t(m, &[]));
        };
        meaning(
            M::CvCertificate,
            got.cv_certificate.as_str(),
            match got.cv_certificate {
                CvCertificateStatus::Verified => M::CvVerified,
                CvCertificateStatus::Untrusted => M::CvUntrusted,
                CvCertificateStatus::Malformed => M::CvMalformed,
            },
        );
        meaning(
            M::CardFace,
            got.card_face.as_str(),
            match got.card_face {
                CardFaceStatus::Verified => M::FaceVerified,
                CardFaceStatus::Mismatch => M::FaceMismatch,
            },
        );
        meaning(
            M::Challenge,
            got.challenge.as_str(),
            match got.challenge {
                ChallengeStatus::Verified => M::ChallengeVerified,
                ChallengeStatus::Failed => M::ChallengeFailed,
            },
        );
        if let Some(e) = &got.expiry {
            meaning(M::Expiry, e, M::ExpiryNotSigned);
        }
        if let (Some(path), Some(_)) = (&a.photo, &got.photo) {
            let shown = path.display().to_string();
            row(ctx, M::PhotoWritten, &ctx.t(M::PhotoNote, &[&shown]));
        }
        if got.genuine {
            outln!("{}", ctx.t(M::AuthenticityGenuine, &[]));
        }
    }
    if got.genuine {
        return Ok(());
    }
    let joined = reasons.join(&ctx.t(M::ReasonSeparator, &[]));
    let mut f = Failure::failed("authenticity", ctx.t(M::AuthenticityNotGenuine, &[&joined]));
    f.json_printed = ctx.json;
    Err(f)
}

/// The clause of an answer in words.
fn clause_text(clause: &str) -> Option<M> {
    Some(match clause {
        "001 §4(2)" => M::ClausePeriod,
        "001 §5(1)" => M::ClauseOtherLapse,
        "001 §5(2)" => M::ClauseExpiry,
        "001 §5(3)" => M::ClauseHoldingChanged,
        "001 §2" => M::ClauseOneStopHolders,
        "000 利用解除" => M::ClauseWithdrawn,
        "000 §2(1)" => M::ClauseLinkNotEligible,
        "000 §6 ただし" => M::ClauseUnlinkedLapsed,
        "000 §6" => M::ClauseUnlinked,
        "000 §5" => M::ClauseLinkedBefore,
        "000 §4 なお" => M::ClauseOneStopStarted,
        "000 §4 1回目" => M::ClauseFirstLink,
        _ => return None,
    })
}

fn clause_row(ctx: &Ctx, clause: &str) {
    match clause_text(clause) {
        Some(m) => row(ctx, M::Clause, &format!("{clause}: {}", ctx.t(m, &[]))),
        None => row(ctx, M::Clause, clause),
    }
}

fn holding_text(h: Holding) -> M {
    match h {
        Holding::LicenseOnly => M::HoldingLicenseOnly,
        Holding::MynaLicenseOnly => M::HoldingMynaLicenseOnly,
        Holding::LicenseAndMynaLicense => M::HoldingLicenseAndMynaLicense,
        Holding::HistoryOnly => M::HoldingHistoryOnly,
        Holding::MynaHistoryOnly => M::HoldingMynaHistoryOnly,
        Holding::HistoryAndMynaHistory => M::HoldingHistoryAndMynaHistory,
    }
}

/// The failure of a rule method; when the daemon found an argument invalid and one of the
/// `dates` given is no day of the calendar, the hint names that one.
fn rule_fail<'a>(
    ctx: &'a Ctx,
    dates: &'a [Option<&'a str>],
) -> impl Fn(ClientError) -> Failure + 'a {
    move |e| {
        let f = Failure::from_client(&e, ctx.lang);
        if !matches!(
            e.daemon_error(),
            Some(jpkid::api::Error::InvalidArgument(_))
        ) {
            return f;
        }
        let bad = dates
            .iter()
            .flatten()
            .find(|d| jpkid::terms::parse_date(d).is_err());
        match bad {
            Some(d) => f.with_hint(ctx.t(M::HintDate, &[d])),
            None => f,
        }
    }
}

/// `consent-period`: first and last day of a consent (001 §4(2)).
pub async fn consent_period(
    ctx: &Ctx,
    conn: &Connection,
    a: ConsentPeriodArgs,
) -> Result<(), Failure> {
    let daemon = Client::new(conn).await.map_err(fail(ctx))?;
    let dates = [Some(a.date.as_str())];
    let (first, last) = daemon
        .consent_period(&a.date)
        .await
        .map_err(rule_fail(ctx, &dates))?;
    if ctx.json {
        ctx.print_json(&json!({
            "consent-date": a.date,
            "first-day": first,
            "last-day": last,
            "clause": "001 §4(2)",
        }));
    } else {
        outln!("{}", ctx.t(M::ConsentPeriodLine, &[&a.date, &first, &last]));
    }
    Ok(())
}

/// `consent-status`: where a consent stands on a day (001 §4, §5).
pub async fn consent_status(
    ctx: &Ctx,
    conn: &Connection,
    a: ConsentStatusArgs,
) -> Result<(), Failure> {
    let facts = ConsentStatusFacts {
        on: a.on.clone(),
        holding: a.holding.map(|h| h.to_string()),
        certificate_lapse: a.certificate_lapse.map(|l| l.to_string()),
        new_certificate: a.new_certificate,
        withdrawn_on: a.withdrawn_on.clone(),
    };
    let daemon = Client::new(conn).await.map_err(fail(ctx))?;
    let dates = [
        Some(a.date.as_str()),
        a.on.as_deref(),
        a.withdrawn_on.as_deref(),
    ];
    let s = daemon
        .consent_status(&a.date, &facts)
        .await
        .map_err(rule_fail(ctx, &dates))?;
    if ctx.json {
        let mut v = json!({
            "consent-date": a.date,
            "first-day": s.first_day,
            "last-day": s.last_day,
            "in-period": s.in_period,
            "updates": s.updates,
            "action": s.action,
            "clause": s.clause,
        });
        put_optional(&mut v, vec![("on", a.on.clone().map(|d| json!(d)))]);
        ctx.print_json(&v);
        return Ok(());
    }
    let on = a.on.clone().unwrap_or_else(|| ctx.t(M::TodayInJapan, &[]));
    outln!("{}", ctx.t(M::ConsentStatusTitle, &[&a.date, &on]));
    let within = if s.in_period {
        M::WithinPeriod
    } else {
        M::PastPeriod
    };
    row(
        ctx,
        M::Period,
        &format!("{} – {} ({})", s.first_day, s.last_day, ctx.t(within, &[])),
    );
    let updates = if s.updates {
        M::UpdatesYes
    } else {
        M::UpdatesNo
    };
    row(ctx, M::Updates, &ctx.t(updates, &[]));
    let action = match s.action.as_str() {
        "none" => Some(M::ActionNone),
        "issue-certificate" => Some(M::ActionIssueCertificate),
        "consent-again" => Some(M::ActionConsentAgain),
        "not-eligible" => Some(M::ActionNotEligible),
        "report-changes" => Some(M::ActionReportChanges),
        _ => None,
    };
    match action {
        Some(m) => row(ctx, M::Action, &format!("{}: {}", s.action, ctx.t(m, &[]))),
        None => row(ctx, M::Action, &s.action),
    }
    clause_row(ctx, &s.clause);
    Ok(())
}

/// `link-requirement`: whether the Mynaportal link still needs the counter submission.
pub async fn link_requirement(
    ctx: &Ctx,
    conn: &Connection,
    a: LinkRequirementArgs,
) -> Result<(), Failure> {
    let facts = LinkRequirementFacts {
        holding: Some(a.holding.to_string()),
        one_stop_started: a.one_stop_started,
        linked_before: a.linked_before,
        unlinked: a.unlinked,
        licence_lapsed_after_unlink: a.licence_lapsed_after_unlink,
    };
    let daemon = Client::new(conn).await.map_err(fail(ctx))?;
    let answer = daemon.link_requirement(&facts).await.map_err(fail(ctx))?;
    if ctx.json {
        ctx.print_json(&json!({
            "holding": a.holding.as_str(),
            "counter-submission": answer.counter_submission,
            "clause": answer.clause,
        }));
        return Ok(());
    }
    let word = match answer.counter_submission.as_str() {
        "needed" => ctx.t(M::SubmissionNeeded, &[]),
        "not-needed" => ctx.t(M::SubmissionNotNeeded, &[]),
        "may-be-needed" => ctx.t(M::SubmissionMayBeNeeded, &[]),
        "not-eligible" => ctx.t(M::SubmissionNotEligible, &[]),
        other => other.to_owned(),
    };
    outln!("{}", ctx.t(M::LinkRequirementTitle, &[&word]));
    row(
        ctx,
        M::Holding,
        &format!("{}: {}", a.holding, ctx.t(holding_text(a.holding), &[])),
    );
    clause_row(ctx, &answer.clause);
    Ok(())
}

/// `eligibility`: which services a holding may use (000 §2, 001 §2).
pub async fn eligibility(ctx: &Ctx, conn: &Connection, a: EligibilityArgs) -> Result<(), Failure> {
    let facts = EligibilityFacts {
        suspended: a.suspended,
    };
    let daemon = Client::new(conn).await.map_err(fail(ctx))?;
    let e = daemon
        .eligibility(a.holding, &facts)
        .await
        .map_err(fail(ctx))?;
    let services = [
        (
            "mynaportal-link",
            M::ServiceMynaportalLink,
            "000 §2(1)",
            e.mynaportal_link,
        ),
        (
            "license-info",
            M::ServiceLicenseInfo,
            "000 §2(2)①",
            e.license_info,
        ),
        (
            "online-lecture",
            M::ServiceOnlineLecture,
            "000 §2(2)②",
            e.online_lecture,
        ),
        (
            "domicile-change",
            M::ServiceDomicileChange,
            "000 §2(2)③",
            e.domicile_change,
        ),
        (
            "address-one-stop",
            M::ServiceAddressOneStop,
            "000 §2(2)④, 001 §2",
            e.address_one_stop,
        ),
        (
            "notifications",
            M::ServiceNotifications,
            "000 §2(2)⑤",
            e.notifications,
        ),
    ];
    if ctx.json {
        let mut v = json!({
            "holding": a.holding.as_str(),
            "suspended": a.suspended,
        });
        for (key, _, _, available) in services {
            v[key] = json!(available);
        }
        ctx.print_json(&v);
        return Ok(());
    }
    let mut described = ctx.t(holding_text(a.holding), &[]);
    if a.suspended {
        described.push_str(&ctx.t(M::ListSeparator, &[]));
        described.push_str(&ctx.t(M::EligibilitySuspended, &[]));
    }
    outln!(
        "{}",
        ctx.t(M::EligibilityTitle, &[a.holding.as_str(), &described])
    );
    for (_, label, clause, available) in services {
        let word = if available {
            M::Available
        } else {
            M::NotAvailable
        };
        outln!(
            "  {} {}  ({clause})",
            out::pad(&ctx.t(label, &[]), 34),
            out::pad(&ctx.t(word, &[]), 14)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use jpkid::terms::{self, CertificateLapse, ConsentFacts, LinkFacts};

    /// Every clause the rules can answer with has its words in the catalogue: all the facts'
    /// combinations are asked.
    #[test]
    fn every_clause_of_the_rules_is_explained() {
        let consent = terms::parse_date("2026-04-01").unwrap();
        let days =
            ["2026-04-01", "2030-01-01", "2036-04-02"].map(|d| terms::parse_date(d).unwrap());
        let mut seen = std::collections::BTreeSet::new();
        for on in days {
            for holding in Holding::ALL.map(Some).into_iter().chain([None]) {
                for lapse in CertificateLapse::ALL {
                    for new_certificate in [false, true] {
                        for withdrawn_on in [None, Some(consent)] {
                            let facts = ConsentFacts {
                                holding,
                                certificate_lapse: lapse,
                                new_certificate,
                                withdrawn_on,
                                ..ConsentFacts::on(on)
                            };
                            if let Ok(s) = terms::consent_status(consent, &facts) {
                                seen.insert(s.clause);
                            }
                        }
                    }
                }
            }
        }
        for holding in Holding::ALL {
            for bits in 0..16u8 {
                let facts = LinkFacts {
                    holding,
                    one_stop_started: bits & 1 != 0,
                    linked_before: bits & 2 != 0,
                    unlinked: bits & 4 != 0,
                    licence_lapsed_after_unlink: bits & 8 != 0,
                };
                seen.insert(terms::link_requirement(&facts).clause);
            }
        }
        assert_eq!(seen.len(), 12, "{seen:?}");
        for clause in seen {
            assert!(clause_text(clause).is_some(), "no words for {clause:?}");
        }
    }
}
