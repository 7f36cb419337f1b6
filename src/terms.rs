//! The rules of the National Police Agency's service terms that jpkid applies or reports
//! (DESIGN §1, §6.1 `ConsentPeriod`, `Eligibility`, `ConsentStatus`, `LinkRequirement`).
//!
//! Two sets of terms are cited, by the number of their file in `docs/terms/`:
//! - **000** — 規約(マイナポータル連携・住所変更等ワンストップサービス等): §2 対象者,
//!   §4 マイナポータル連携の手続 (1回目, 2回目, なお), §5 引き継ぎ, §6 解除手続, and the closing
//!   規約(住所変更ワンストップサービス等の利用解除(同意の取消)手続) cited as `000 利用解除`;
//! - **001** — 規約(住所変更ワンストップサービスの利用開始手続): §2 対象者, §4(1) 同意の方法,
//!   §4(2) 同意の有効期間, §4(3) 同意状況の確認・同意の取消, §5(1)–(3) 同意期間中の取得.
//!
//! Period arithmetic follows 民法 §140–143, which the terms rely on by saying "同意の日の翌日を
//! 起算日として10年" (001 §4(2)).
//!
//! Pure: no I/O, and the clock is never read — every question about a day takes that day (or
//! the time) from its caller. Every function answers bad input with a [`TermsError`] that names
//! it, never with a panic.

use time::{Date, Month, OffsetDateTime, UtcOffset, macros::offset};

/// Why a question to this module has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("not a date of the form YYYY-MM-DD: {0:?}")]
    InvalidDate(String),
    #[error("the consent period of a consent on {0} does not fit the supported dates")]
    DateOutOfRange(String),
    #[error(
        "unknown holding {0:?} (license-only, myna-license-only, license-and-myna-license, history-only, myna-history-only, history-and-myna-history)"
    )]
    UnknownHolding(String),
    #[error("unknown certificate lapse {0:?} (none, expiry, other)")]
    UnknownLapse(String),
    #[error("{on} is before the consent date {consent_date}: no consent stood then")]
    BeforeConsent { on: String, consent_date: String },
    #[error(
        "a withdrawal on {withdrawn_on} precedes the consent date {consent_date}: it withdrew an earlier consent, not this one"
    )]
    WithdrawnBeforeConsent {
        withdrawn_on: String,
        consent_date: String,
    },
    #[error(
        "new-certificate without a certificate lapse: a new certificate is a fact only after the old one lapsed"
    )]
    NewCertificateWithoutLapse,
    #[error("no consent items: choose at least one of address, name, birth-date")]
    NoItems,
    #[error("consent item {0:?} given more than once")]
    RepeatedItem(String),
    #[error("unknown consent item {0:?} (address, name, birth-date)")]
    UnknownItem(String),
    #[error("unknown document kind {0:?} (consent, withdrawal)")]
    UnknownKind(String),
    #[error("unknown service {0:?} (address-one-stop)")]
    UnknownService(String),
    #[error("invalid terminal: {0}")]
    InvalidTerminal(String),
    #[error("invalid reference: {0}")]
    InvalidReference(String),
    #[error("invalid serial: {0}")]
    InvalidSerial(String),
    #[error("invalid signed-at: {0}")]
    InvalidSignedAt(String),
    #[error("not a consent document of jpkid: {0}")]
    DocumentForm(String),
}

/// The caller's text as an error names it: whole up to 64 characters, cut with `…` beyond, so
/// that an error never carries an unbounded input back over D-Bus.
fn shown(s: &str) -> String {
    const MAX_SHOWN: usize = 64;
    match s.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or_default()),
        None => s.to_owned(),
    }
}

/// Japan Standard Time: UTC+9 all year (Japan has no daylight saving time).
const JAPAN: UtcOffset = offset!(+9);

/// A consent is valid for ten years (001 §4(2) "10年").
const CONSENT_YEARS: i32 = 10;

/// Parse a date in the strict ISO 8601 calendar form `YYYY-MM-DD` (four-digit year, two-digit
/// month and day, nothing before or after). The D-Bus API carries dates this way (DESIGN §6.1);
/// a lax parser would let `2026-2-3` or `2026-02-03x` mean something the caller did not write.
pub fn parse_date(s: &str) -> Result<Date, TermsError> {
    let bad = || TermsError::InvalidDate(shown(s));
    let b = s.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return Err(bad());
    };
    let year = i32::try_from(year).map_err(|_| bad())?;
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let day = u8::try_from(day).map_err(|_| bad())?;
    Date::from_calendar_date(year, month, day).map_err(|_| bad())
}

/// Format a date as `YYYY-MM-DD`, the form [`parse_date`] reads. Years outside 0000–9999 (which
/// only arithmetic on the ends of `time`'s range produces) get ISO 8601's expanded form with a
/// sign, e.g. `-0001-12-31`; [`parse_date`] never accepts those.
pub fn format_date(d: Date) -> String {
    let (year, month, day) = (d.year(), u8::from(d.month()), d.day());
    if (0..=9999).contains(&year) {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        let sign = if year < 0 { '-' } else { '+' };
        format!("{sign}{:04}-{month:02}-{day:02}", year.unsigned_abs())
    }
}

/// The calendar day in Japan at `now`, whatever the offset `now` carries and whatever the
/// machine's zone: consent dates are J-LIS's days (001 §4(2) なお), i.e. days in Japan. At the
/// very ends of `time`'s range, where that day cannot be represented, the answer is
/// `Date::MAX` or `Date::MIN`.
pub fn today_in_japan(now: OffsetDateTime) -> Date {
    match now.checked_to_offset(JAPAN) {
        Some(t) => t.date(),
        None if now.year() > 0 => Date::MAX,
        None => Date::MIN,
    }
}

/// The validity period of a consent: from its 起算日 to the last day on which it is still valid,
/// both inclusive (民法 §141: a period ends at the end of its last day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentPeriod {
    /// 起算日: the day after the consent date (001 §4(2); 民法 §140 leaves the first, partial,
    /// day out of the count).
    pub first_day: Date,
    /// 満了日: the last day of the ten years (民法 §141, §143).
    pub last_day: Date,
}

/// The period of a consent made on `consent_date` (the day J-LIS recorded it, 001 §4(2) なお).
///
/// 001 §4(2): "同意の日の翌日を起算日として10年". 民法 §143: a period in years is counted by the
/// calendar; it ends on the day before the day of the last year that corresponds to the first
/// day (応当日); when the last month has no such day (a first day of 29 February, the tenth
/// year never being a leap year), on the last day of that month. A first day of 1 January
/// counts from the start of a year, which §143(2) leaves to §143(1)'s count by the calendar:
/// ten whole years, ending on 31 December of the tenth — the day the 応当日 rule gives too.
/// 民法 §142 (a last day on a Sunday or holiday moves to the next day where no business is done
/// on such days) is not applied: it concerns acts that fall due, not how long a recorded
/// consent lasts, and the terms give the end as a date (同意の有効期限, 001 §4(3)ア).
///
/// A consent whose period would end beyond `time`'s dates is [`TermsError::DateOutOfRange`].
pub fn consent_period(consent_date: Date) -> Result<ConsentPeriod, TermsError> {
    let out_of_range = || TermsError::DateOutOfRange(format_date(consent_date));
    let first_day = consent_date.next_day().ok_or_else(out_of_range)?;
    let year = first_day
        .year()
        .checked_add(CONSENT_YEARS)
        .ok_or_else(out_of_range)?;
    let month = first_day.month();
    let length = month.length(year);
    // The day before the 応当日 is built directly, so that a 応当日 just past `time`'s last date
    // still gives a last day that fits.
    let (year, month, day) = match first_day.day() {
        // 民法 §143(2) ただし: no 応当日 in the last month — the period ends on its last day.
        day if day > length => (year, month, length),
        // 民法 §143(2): the day before a 応当日 on the 1st is the previous month's last day.
        1 if month == Month::January => (
            year.checked_sub(1).ok_or_else(out_of_range)?,
            Month::December,
            31,
        ),
        1 => (year, month.previous(), month.previous().length(year)),
        // 民法 §143(2): the day before the 応当日.
        day => (year, month, day - 1),
    };
    let last_day = Date::from_calendar_date(year, month, day).map_err(|_| out_of_range())?;
    Ok(ConsentPeriod {
        first_day,
        last_day,
    })
}

/// What the holder carries: a plastic driving licence (運転免許証), a マイナ免許証
/// (免許情報記録個人番号カード), a plastic 運転経歴証明書 or a マイナ経歴証明書
/// (運転経歴情報記録個人番号カード), alone or the plastic one and the card together
/// (000 §2(2): "免許証やマイナ免許証、運転経歴証明書やマイナ経歴証明書の保有状況によって異なります").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holding {
    LicenseOnly,
    MynaLicenseOnly,
    LicenseAndMynaLicense,
    HistoryOnly,
    MynaHistoryOnly,
    HistoryAndMynaHistory,
}

impl Holding {
    /// Every holding, in the order of the D-Bus documentation (DESIGN §6.1).
    pub const ALL: [Holding; 6] = [
        Holding::LicenseOnly,
        Holding::MynaLicenseOnly,
        Holding::LicenseAndMynaLicense,
        Holding::HistoryOnly,
        Holding::MynaHistoryOnly,
        Holding::HistoryAndMynaHistory,
    ];

    /// The D-Bus name (DESIGN §6.1 `Eligibility`).
    pub fn as_str(self) -> &'static str {
        match self {
            Holding::LicenseOnly => "license-only",
            Holding::MynaLicenseOnly => "myna-license-only",
            Holding::LicenseAndMynaLicense => "license-and-myna-license",
            Holding::HistoryOnly => "history-only",
            Holding::MynaHistoryOnly => "myna-history-only",
            Holding::HistoryAndMynaHistory => "history-and-myna-history",
        }
    }

    /// Holds a マイナ免許証 (alone or beside a plastic licence).
    fn myna_license(self) -> bool {
        matches!(
            self,
            Holding::MynaLicenseOnly | Holding::LicenseAndMynaLicense
        )
    }

    /// Holds a マイナ経歴証明書 (alone or beside a plastic 運転経歴証明書).
    fn myna_history(self) -> bool {
        matches!(
            self,
            Holding::MynaHistoryOnly | Holding::HistoryAndMynaHistory
        )
    }

    /// マイナ免許証のみ or マイナ経歴証明書のみ: the only holdings the address-change one-stop
    /// service is for (001 §2), and outside which its updates stop (001 §5(3)).
    fn one_stop(self) -> bool {
        matches!(self, Holding::MynaLicenseOnly | Holding::MynaHistoryOnly)
    }
}

impl std::fmt::Display for Holding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Holding {
    type Err = TermsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Holding::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| TermsError::UnknownHolding(shown(s)))
    }
}

/// Which services of 000 §1 a holder may use (000 §2; 001 §2 for the one-stop service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eligibility {
    /// 000 §2(1) マイナポータル連携.
    pub mynaportal_link: bool,
    /// 000 §2(2)① 免許情報等の確認.
    pub license_info: bool,
    /// 000 §2(2)② オンライン更新時講習の受講.
    pub online_lecture: bool,
    /// 000 §2(2)③ 本籍のオンライン変更.
    pub domicile_change: bool,
    /// 000 §2(2)④ and 001 §2 住所変更ワンストップサービス等.
    pub address_one_stop: bool,
    /// 000 §2(2)⑤ お知らせ情報の受信.
    pub notifications: bool,
}

impl Eligibility {
    /// The answer under its D-Bus keys (DESIGN §6.1 `Eligibility`), in the order of 000 §2.
    pub fn entries(&self) -> [(&'static str, bool); 6] {
        [
            ("mynaportal-link", self.mynaportal_link),
            ("license-info", self.license_info),
            ("online-lecture", self.online_lecture),
            ("domicile-change", self.domicile_change),
            ("address-one-stop", self.address_one_stop),
            ("notifications", self.notifications),
        ]
    }
}

/// Which services a holder may use, from the holding and whether the licence's effect is
/// suspended (免許の効力が停止中又は仮停止中).
///
/// Every service rides on the マイナポータル link, so each needs a マイナ免許証 or a
/// マイナ経歴証明書 (000 §2(1)). A suspension takes away only the two services that 000 §2(2)①
/// and ② deny to a suspended licence holder ("免許の効力が停止中又は仮停止中の方は利用できません"):
/// the licence information and the online lecture. The link itself (§2(1)), 本籍 changes (③),
/// the one-stop service (④) and notifications (⑤) carry no such proviso. A 経歴証明書 holder has
/// no licence to suspend, so `suspended` changes nothing for them (① grants the マイナ経歴証明書
/// holder the licence-history information without a proviso).
pub fn eligibility(holding: Holding, suspended: bool) -> Eligibility {
    let license = holding.myna_license();
    let history = holding.myna_history();
    let active_license = license && !suspended;
    Eligibility {
        // 000 §2(1): マイナ免許証又はマイナ経歴証明書を有する方.
        mynaportal_link: license || history,
        // 000 §2(2)①: マイナ免許証 (not while suspended), or マイナ経歴証明書.
        license_info: active_license || history,
        // 000 §2(2)②: マイナ免許証 only, not while suspended.
        online_lecture: active_license,
        // 000 §2(2)③: マイナ免許証のみを有する方.
        domicile_change: holding == Holding::MynaLicenseOnly,
        // 000 §2(2)④, 001 §2: マイナ免許証のみ or マイナ経歴証明書のみ.
        address_one_stop: holding.one_stop(),
        // 000 §2(2)⑤: マイナ免許証 or マイナ経歴証明書.
        notifications: license || history,
    }
}

/// How the signing certificate (署名用電子証明書) of a consent lapsed, which 001 §5 treats in
/// two different ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateLapse {
    /// Still valid.
    None,
    /// Lapsed at the end of its validity (有効期間満了), 001 §5(2).
    Expiry,
    /// Lapsed for any other reason (revoked, card returned, …), 001 §5(1).
    Other,
}

impl CertificateLapse {
    pub const ALL: [CertificateLapse; 3] = [
        CertificateLapse::None,
        CertificateLapse::Expiry,
        CertificateLapse::Other,
    ];

    /// The D-Bus name (DESIGN §6.1 `ConsentStatus`, fact `certificate-lapse`).
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateLapse::None => "none",
            CertificateLapse::Expiry => "expiry",
            CertificateLapse::Other => "other",
        }
    }
}

impl std::fmt::Display for CertificateLapse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CertificateLapse {
    type Err = TermsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CertificateLapse::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| TermsError::UnknownLapse(shown(s)))
    }
}

/// What is known on a day about a consent of 001 (DESIGN §6.1 `ConsentStatus` facts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentFacts {
    /// The day asked about (the caller's "today in Japan" by default, [`today_in_japan`]).
    pub on: Date,
    /// The holding on `on`; `None` when not stated, taken as unchanged since the consent, which
    /// needed a one-stop holding (001 §2).
    pub holding: Option<Holding>,
    /// How the signing certificate the consent was made with lapsed, if it did.
    pub certificate_lapse: CertificateLapse,
    /// A new signing certificate was issued after that lapse (only meaningful with a lapse).
    pub new_certificate: bool,
    /// The day the consent was withdrawn (001 §4(3)イ), if it was.
    pub withdrawn_on: Option<Date>,
}

impl ConsentFacts {
    /// The facts of a day on which nothing has happened to the consent: holding not stated,
    /// certificate valid, not withdrawn.
    pub fn on(day: Date) -> ConsentFacts {
        ConsentFacts {
            on: day,
            holding: None,
            certificate_lapse: CertificateLapse::None,
            new_certificate: false,
            withdrawn_on: None,
        }
    }
}

/// What the holder (or the counter staff) should do about a consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Nothing: updates flow.
    None,
    /// Have a new signing certificate issued (001 §5(1)).
    IssueCertificate,
    /// Consent again — the period ended (001 §4(2)), or the certificate expired (001 §5(2));
    /// a new consent is signed with a valid signing certificate, so an expired one is renewed
    /// first.
    ConsentAgain,
    /// The holding is not one the service is for (001 §2, §5(3)).
    NotEligible,
    /// The consent was withdrawn: changes are reported to the licence centre
    /// (000 利用解除).
    ReportChanges,
}

impl Action {
    /// The D-Bus name (DESIGN §6.1 `ConsentStatus`, key `action`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::IssueCertificate => "issue-certificate",
            Action::ConsentAgain => "consent-again",
            Action::NotEligible => "not-eligible",
            Action::ReportChanges => "report-changes",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a consent stands on a day (DESIGN §6.1 `ConsentStatus` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentStatus {
    /// 起算日 of the consent period.
    pub first_day: Date,
    /// Last day of the consent period.
    pub last_day: Date,
    /// The day lies between the consent date and the last day, both inclusive — a fact of the
    /// calendar alone, whatever else happened (withdrawal, lapse, holding).
    pub in_period: bool,
    /// J-LIS address, name and birth-date changes reach the licence record on that day.
    pub updates: bool,
    pub action: Action,
    /// The clause that decided, e.g. `001 §5(2)`.
    pub clause: &'static str,
}

const CLAUSE_PERIOD: &str = "001 §4(2)";
const CLAUSE_OTHER_LAPSE: &str = "001 §5(1)";
const CLAUSE_EXPIRY: &str = "001 §5(2)";
const CLAUSE_HOLDING_CHANGED: &str = "001 §5(3)";
const CLAUSE_ONE_STOP_HOLDERS: &str = "001 §2";
const CLAUSE_WITHDRAWN: &str = "000 利用解除";

/// Where a consent made on `consent_date` stands on `facts.on`. `consent_date` is that of the
/// latest consent: a new consent within the period restarts the ten years (001 §4(2)
/// "再度行った利用開始手続を基準に有効期間が10年").
///
/// The rules, each from its clause:
/// - the period is [`consent_period`] (001 §4(2)); the consent is in force from the consent
///   date itself — the day J-LIS recorded it — through the last day: 民法 §140 leaves that
///   partial day out of the ten years' count, it does not postpone the consent;
/// - a lapse of the signing certificate does not end the consent (001 §4(2) なお: "失効しても、
///   同意については引き続き有効"), but it stops updates until: after a lapse other than expiry,
///   a new certificate is issued (001 §5(1)); after expiry, never with a new certificate alone —
///   only a new consent restarts the service (001 §5(2));
/// - a holding other than マイナ免許証のみ / マイナ経歴証明書のみ stops updates even within the
///   period (001 §5(3) "同意期間中であっても…停止します");
/// - a withdrawal on or before the day ends the consent (001 §4(3)イ): the holder reports
///   changes to the licence centre themselves (000 利用解除).
///
/// When several apply, the first of these decides `action` and `clause` (`updates` is false in
/// all of them):
/// 1. withdrawn on or before `on` → `report-changes`, `000 利用解除`: the holder ended the
///    consent; suggesting anything else would go against that choice;
/// 2. a holding outside マイナ免許証のみ / マイナ経歴証明書のみ → `not-eligible`, `001 §5(3)`
///    within the period, `001 §2` after it: neither a new certificate nor a new consent helps
///    such a holder, a new consent being only for those holdings;
/// 3. past the last day → `consent-again`, `001 §4(2)`;
/// 4. certificate expired → `consent-again`, `001 §5(2)`, with or without a new certificate;
/// 5. certificate lapsed otherwise, no new one → `issue-certificate`, `001 §5(1)`;
///
/// otherwise updates flow (`none`): `001 §5(1)` after a new certificate, `001 §4(2)` else.
///
/// Questions with no answer are errors: a day before the consent date (no consent stood then,
/// [`TermsError::BeforeConsent`]); a withdrawal before the consent date (it withdrew an earlier
/// consent, and a later consent is not withdrawn by it, [`TermsError::WithdrawnBeforeConsent`]);
/// a new certificate with no lapse ([`TermsError::NewCertificateWithoutLapse`]); a period out
/// of range ([`TermsError::DateOutOfRange`]). A withdrawal after `on` is not yet a fact on `on`
/// and is ignored.
pub fn consent_status(
    consent_date: Date,
    facts: &ConsentFacts,
) -> Result<ConsentStatus, TermsError> {
    let period = consent_period(consent_date)?;
    if facts.on < consent_date {
        return Err(TermsError::BeforeConsent {
            on: format_date(facts.on),
            consent_date: format_date(consent_date),
        });
    }
    if let Some(withdrawn_on) = facts.withdrawn_on.filter(|w| *w < consent_date) {
        return Err(TermsError::WithdrawnBeforeConsent {
            withdrawn_on: format_date(withdrawn_on),
            consent_date: format_date(consent_date),
        });
    }
    if facts.new_certificate && facts.certificate_lapse == CertificateLapse::None {
        return Err(TermsError::NewCertificateWithoutLapse);
    }
    let in_period = facts.on <= period.last_day;
    let stopped = |action, clause| (false, action, clause);
    let (updates, action, clause) = if facts.withdrawn_on.is_some_and(|w| w <= facts.on) {
        stopped(Action::ReportChanges, CLAUSE_WITHDRAWN)
    } else if facts.holding.is_some_and(|h| !h.one_stop()) {
        let clause = if in_period {
            CLAUSE_HOLDING_CHANGED
        } else {
            CLAUSE_ONE_STOP_HOLDERS
        };
        stopped(Action::NotEligible, clause)
    } else if !in_period {
        stopped(Action::ConsentAgain, CLAUSE_PERIOD)
    } else {
        match (facts.certificate_lapse, facts.new_certificate) {
            (CertificateLapse::Expiry, _) => stopped(Action::ConsentAgain, CLAUSE_EXPIRY),
            (CertificateLapse::Other, false) => {
                stopped(Action::IssueCertificate, CLAUSE_OTHER_LAPSE)
            }
            (CertificateLapse::Other, true) => (true, Action::None, CLAUSE_OTHER_LAPSE),
            (CertificateLapse::None, _) => (true, Action::None, CLAUSE_PERIOD),
        }
    };
    Ok(ConsentStatus {
        first_day: period.first_day,
        last_day: period.last_day,
        in_period,
        updates,
        action,
        clause,
    })
}

/// What is known about a holder's マイナポータル link (DESIGN §6.1 `LinkRequirement` facts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFacts {
    pub holding: Holding,
    /// The one-stop service was started at a licence centre or police station, which linked
    /// the certificate's issue number to the licence record then (000 §4 なお).
    pub one_stop_started: bool,
    /// Linked in the past under a holding whose link 000 §5 carries over.
    pub linked_before: bool,
    /// The link was cancelled in マイナポータル (000 §6).
    pub unlinked: bool,
    /// After that cancellation the licence lapsed or was revoked, and the holder holds a
    /// マイナ免許証 again (000 §6 ただし). Considered only with `unlinked`.
    pub licence_lapsed_after_unlink: bool,
}

/// Whether the counter submission of the signing certificate (000 §4 1回目) is still needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterSubmission {
    Needed,
    NotNeeded,
    /// 000 §6 ただし "必要な場合があります": the licence centre decides.
    MayBeNeeded,
    /// Neither a マイナ免許証 nor a マイナ経歴証明書: no link at all (000 §2(1)).
    NotEligible,
}

impl CounterSubmission {
    /// The D-Bus name (DESIGN §6.1 `LinkRequirement`, key `counter-submission`).
    pub fn as_str(self) -> &'static str {
        match self {
            CounterSubmission::Needed => "needed",
            CounterSubmission::NotNeeded => "not-needed",
            CounterSubmission::MayBeNeeded => "may-be-needed",
            CounterSubmission::NotEligible => "not-eligible",
        }
    }
}

impl std::fmt::Display for CounterSubmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of [`link_requirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRequirement {
    pub counter_submission: CounterSubmission,
    /// The clause that decided, e.g. `000 §6 ただし`.
    pub clause: &'static str,
}

/// Whether マイナポータル連携 still needs the signing certificate submitted at the licence
/// centre (000 §4 1回目); the second submission, from マイナポータル (2回目), is always the
/// holder's own and is not asked about here.
///
/// The first rule that applies decides:
/// 1. neither マイナ免許証 nor マイナ経歴証明書 → `not-eligible` (000 §2(1));
/// 2. the link was cancelled in マイナポータル (000 §6): re-linking needs no counter submission
///    ("住所地の免許センター等での…提出は不要"), `not-needed`, unless the licence lapsed or was
///    revoked after the cancellation and the holder holds a マイナ免許証 again — then
///    "提出が必要な場合があります", `may-be-needed` (§6 ただし). This comes before the rules
///    below because §6 ただし is the one case where an earlier link (or an earlier one-stop
///    start) may no longer count;
/// 3. linked before under a holding §5 carries over → `not-needed` (000 §5 "再度、マイナポータル
///    連携の手続を行う必要はありません": not even the 2回目);
/// 4. the one-stop service was started at a counter → `not-needed` (000 §4 なお: that start
///    already linked the issue number, "本手続を行う必要はありません");
/// 5. otherwise → `needed` (000 §4 1回目).
pub fn link_requirement(facts: &LinkFacts) -> LinkRequirement {
    let answer = |counter_submission, clause| LinkRequirement {
        counter_submission,
        clause,
    };
    if !(facts.holding.myna_license() || facts.holding.myna_history()) {
        answer(CounterSubmission::NotEligible, "000 §2(1)")
    } else if facts.unlinked && facts.licence_lapsed_after_unlink {
        answer(CounterSubmission::MayBeNeeded, "000 §6 ただし")
    } else if facts.unlinked {
        answer(CounterSubmission::NotNeeded, "000 §6")
    } else if facts.linked_before {
        answer(CounterSubmission::NotNeeded, "000 §5")
    } else if facts.one_stop_started {
        answer(CounterSubmission::NotNeeded, "000 §4 なお")
    } else {
        answer(CounterSubmission::Needed, "000 §4 1回目")
    }
}

/// One of the items J-LIS may provide, which the holder chooses one by one (001 §4(1):
/// "住所等のうち、提供に同意する事項として利用者が選択したもの"). 性別 and the My Number are
/// never among them (001 §1, §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConsentItem {
    /// 住所.
    Address,
    /// 氏名.
    Name,
    /// 生年月日.
    BirthDate,
}

impl ConsentItem {
    /// Every item, in the fixed order of documents and answers (that of 001 §1 "住所、氏名及び
    /// 生年月日").
    pub const ALL: [ConsentItem; 3] = [
        ConsentItem::Address,
        ConsentItem::Name,
        ConsentItem::BirthDate,
    ];

    /// The D-Bus and document name (DESIGN §6.2 `SignConsent`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentItem::Address => "address",
            ConsentItem::Name => "name",
            ConsentItem::BirthDate => "birth-date",
        }
    }

    fn bit(self) -> u8 {
        match self {
            ConsentItem::Address => 1,
            ConsentItem::Name => 2,
            ConsentItem::BirthDate => 4,
        }
    }
}

impl std::fmt::Display for ConsentItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ConsentItem {
    type Err = TermsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConsentItem::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| TermsError::UnknownItem(shown(s)))
    }
}

/// A non-empty set of [`ConsentItem`]s: a consent to provide nothing is no consent, and a
/// withdrawal names what it withdraws (DESIGN §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsentItems {
    /// [`ConsentItem::bit`]s; never 0.
    bits: u8,
}

impl ConsentItems {
    /// Read the items a caller chose. The names are exact (`address`, `name`, `birth-date`):
    /// anything else — `my-number`, `sex`, `Address` — is [`TermsError::UnknownItem`]; a name
    /// given twice is [`TermsError::RepeatedItem`] (the caller's list is not what it meant);
    /// none at all is [`TermsError::NoItems`]. The order given does not matter.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<ConsentItems, TermsError> {
        let mut bits = 0u8;
        for name in items {
            let item: ConsentItem = name.as_ref().parse()?;
            if bits & item.bit() != 0 {
                return Err(TermsError::RepeatedItem(item.as_str().to_owned()));
            }
            bits |= item.bit();
        }
        if bits == 0 {
            return Err(TermsError::NoItems);
        }
        Ok(ConsentItems { bits })
    }

    /// All three items.
    pub fn all() -> ConsentItems {
        ConsentItems { bits: 7 }
    }

    pub fn contains(&self, item: ConsentItem) -> bool {
        self.bits & item.bit() != 0
    }

    /// The items in the fixed order address, name, birth-date.
    pub fn iter(&self) -> impl Iterator<Item = ConsentItem> + use<> {
        let set = *self;
        ConsentItem::ALL
            .into_iter()
            .filter(move |i| set.contains(*i))
    }

    /// The names in the fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(ConsentItem::as_str).collect()
    }
}

/// Whether a signed document gives or withdraws a consent (001 §4(1), §4(3)イ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    Consent,
    Withdrawal,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 2] = [DocumentKind::Consent, DocumentKind::Withdrawal];

    /// The document and D-Bus name (DESIGN §6.1 `VerifyConsent`, key `kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Consent => "consent",
            DocumentKind::Withdrawal => "withdrawal",
        }
    }
}

impl std::fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DocumentKind {
    type Err = TermsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DocumentKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| TermsError::UnknownKind(shown(s)))
    }
}

/// The one service a consent document is for: the address-change one-stop service of 001.
pub const ONE_STOP_SERVICE: &str = "address-one-stop";

/// The longest `reference` or `terminal`, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 256;

/// The longest serial: 20 octets (RFC 5280 §4.1.2.2) as hex.
const MAX_SERIAL_HEX: usize = 40;

/// No canonical document is longer (every field at its limit, each byte escaped, is far less);
/// [`ConsentDocument::parse_canonical`] reads nothing longer.
pub const MAX_DOCUMENT_BYTES: usize = 4096;

/// The document a consent or its withdrawal signs: the holder's will, item by item, made sure by
/// the signature with the card's signing key (001 §4(1) "本人の意思に基づくものであることを確実
/// に示すため、…電子署名を行います"). Its bytes are [`ConsentDocument::to_canonical_json`], so
/// that the police-side check (DESIGN §6.1 `VerifyConsent`) can rebuild and compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentDocument {
    pub kind: DocumentKind,
    pub items: ConsentItems,
    /// Always [`ONE_STOP_SERVICE`].
    pub service: String,
    /// When it was signed; any offset (written in UTC), whole seconds, years 0000–9999.
    pub signed_at: OffsetDateTime,
    /// The counter terminal that made it: 1–[`MAX_TEXT_BYTES`] bytes, no control character.
    pub terminal: String,
    /// The signing certificate's serial: upper-case hex of its magnitude, as DESIGN §6.1
    /// reports serials (even length, no leading `00` octet, at most 20 octets).
    pub serial: String,
    /// The caller's reference (DESIGN §6.2 option `reference`), copied as given:
    /// 1–[`MAX_TEXT_BYTES`] bytes, no control character; absent from the document when `None`.
    pub reference: Option<String>,
}

/// The document's JSON, as RFC 8785 orders it. Keys sort by UTF-16 code units; for these ASCII
/// keys that is the order written here.
#[derive(serde::Serialize)]
struct WireDocument<'a> {
    items: Vec<&'static str>,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
    serial: &'a str,
    service: &'a str,
    #[serde(rename = "signed-at")]
    signed_at: String,
    terminal: &'a str,
}

const DOCUMENT_KEYS: [&str; 7] = [
    "items",
    "kind",
    "reference",
    "serial",
    "service",
    "signed-at",
    "terminal",
];

impl ConsentDocument {
    /// The canonical JSON (RFC 8785, JCS) of the document: keys `items` (the names in the
    /// fixed order), `kind`, `reference` (absent when `None`), `serial`, `service`, `signed-at`
    /// (RFC 3339 in UTC, whole seconds, `Z`), `terminal`; no whitespace; strings with RFC 8785's
    /// minimal escaping (only `"`, `\` and U+0000–U+001F, those as `\b \f \n \r \t` or
    /// `\u00xx`; everything else, non-ASCII included, as UTF-8 — the fields' own rules keep
    /// control characters out in any case).
    ///
    /// Every field is checked first: a document that could not be read back by
    /// [`ConsentDocument::parse_canonical`] is never produced.
    pub fn to_canonical_json(&self) -> Result<String, TermsError> {
        if self.service != ONE_STOP_SERVICE {
            return Err(TermsError::UnknownService(shown(&self.service)));
        }
        check_text(&self.terminal, "terminal").map_err(TermsError::InvalidTerminal)?;
        if let Some(reference) = &self.reference {
            check_text(reference, "reference").map_err(TermsError::InvalidReference)?;
        }
        check_serial(&self.serial).map_err(TermsError::InvalidSerial)?;
        let wire = WireDocument {
            items: self.items.names(),
            kind: self.kind.as_str(),
            reference: self.reference.as_deref(),
            serial: &self.serial,
            service: &self.service,
            signed_at: format_signed_at(self.signed_at)?,
            terminal: &self.terminal,
        };
        serde_json_canonicalizer::to_string(&wire)
            .map_err(|e| TermsError::DocumentForm(format!("cannot be serialised: {e}")))
    }

    /// Read a document, accepting only what [`ConsentDocument::to_canonical_json`] produces:
    /// one JSON object with exactly the document's keys (`reference` optional), each of its type,
    /// a known kind, items and service, fields within their rules, and the whole text equal,
    /// byte for byte, to the document's canonical form (so no whitespace, other key order,
    /// other escaping, duplicate key, item order or time form slips through a signature check).
    /// Anything else is [`TermsError::DocumentForm`] saying what is wrong.
    pub fn parse_canonical(text: &str) -> Result<ConsentDocument, TermsError> {
        let form = TermsError::DocumentForm;
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(form(format!(
                "{} bytes long, at most {MAX_DOCUMENT_BYTES}",
                text.len()
            )));
        }
        let StrictObject(entries) = serde_json::from_str(text)
            .map_err(|e| form(format!("not one JSON object with distinct keys: {e}")))?;
        for (key, _) in &entries {
            if !DOCUMENT_KEYS.contains(&key.as_str()) {
                return Err(form(format!("unknown key {key:?}")));
            }
        }
        let field = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let string = |key: &'static str| -> Result<Option<&str>, TermsError> {
            match field(key) {
                None => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(form(format!("{key:?} is not a string"))),
            }
        };
        let required = |key: &'static str| -> Result<&str, TermsError> {
            string(key)?.ok_or_else(|| form(format!("missing key {key:?}")))
        };
        let items = match field("items") {
            None => return Err(form("missing key \"items\"".to_owned())),
            Some(serde_json::Value::Array(values)) => values
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| form("\"items\" holds a value that is not a string".into()))
                })
                .collect::<Result<Vec<&str>, TermsError>>()?,
            Some(_) => return Err(form("\"items\" is not an array".to_owned())),
        };
        let items = ConsentItems::parse(&items).map_err(|e| form(format!("items: {e}")))?;
        let kind = required("kind")?
            .parse::<DocumentKind>()
            .map_err(|e| form(e.to_string()))?;
        let service = required("service")?;
        let signed_at = required("signed-at")?;
        let doc = ConsentDocument {
            kind,
            items,
            service: service.to_owned(),
            signed_at: time::PrimitiveDateTime::parse(signed_at, SIGNED_AT_FORMAT)
                .map_err(|e| {
                    form(format!(
                        "\"signed-at\" {signed_at:?} is not YYYY-MM-DDThh:mm:ssZ: {e}"
                    ))
                })?
                .assume_utc(),
            terminal: required("terminal")?.to_owned(),
            serial: required("serial")?.to_owned(),
            reference: string("reference")?.map(str::to_owned),
        };
        let canonical = doc.to_canonical_json().map_err(|e| match e {
            TermsError::DocumentForm(m) => TermsError::DocumentForm(m),
            other => form(other.to_string()),
        })?;
        if canonical != text {
            let at = canonical
                .bytes()
                .zip(text.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(canonical.len().min(text.len()));
            return Err(form(format!(
                "not in the canonical form (RFC 8785): it differs from the canonical text at byte {at}"
            )));
        }
        Ok(doc)
    }
}

/// `signed-at`: RFC 3339 in UTC with whole seconds, e.g. `2026-02-03T01:02:03Z`.
const SIGNED_AT_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

fn format_signed_at(at: OffsetDateTime) -> Result<String, TermsError> {
    let bad = |why: &str| TermsError::InvalidSignedAt(format!("{at}: {why}"));
    if at.nanosecond() != 0 {
        return Err(bad("a document carries whole seconds"));
    }
    let utc = at
        .checked_to_offset(UtcOffset::UTC)
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(|| bad("outside the years 0000–9999 in UTC"))?;
    utc.format(SIGNED_AT_FORMAT)
        .map_err(|e| bad(&e.to_string()))
}

/// A `terminal` or `reference`: present, bounded, and printable as one line.
fn check_text(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "{what} is {} bytes long, at most {MAX_TEXT_BYTES}",
            s.len()
        ));
    }
    if let Some((at, c)) = s.char_indices().find(|(_, c)| c.is_control()) {
        return Err(format!(
            "{what} has the control character U+{:04X} at byte {at}",
            u32::from(c)
        ));
    }
    Ok(())
}

/// The serial as DESIGN §6.1 writes it: upper-case hex of the unsigned magnitude.
fn check_serial(s: &str) -> Result<(), String> {
    let shown: String = s.chars().take(MAX_SERIAL_HEX + 2).collect();
    let bad = |why: &str| Err(format!("serial {shown:?} {why}"));
    if s.is_empty() || !s.len().is_multiple_of(2) || s.len() > MAX_SERIAL_HEX {
        return bad("is not 1 to 20 octets of hex");
    }
    if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
        return bad("is not upper-case hex");
    }
    if s.starts_with("00") {
        return bad("starts with a 00 octet");
    }
    Ok(())
}

/// A JSON object read with its keys in order and duplicates refused: `serde_json::Value` would
/// keep one of two equal keys silently.
struct StrictObject(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for StrictObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StrictObject;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StrictObject, A::Error> {
                let mut entries: Vec<(String, serde_json::Value)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                    }
                    entries.push((key, value));
                }
                Ok(StrictObject(entries))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    fn period(consent: Date) -> (Date, Date) {
        let p = consent_period(consent).unwrap();
        (p.first_day, p.last_day)
    }

    #[test]
    fn parse_date_accepts_strict_iso_and_round_trips() {
        assert_eq!(parse_date("2026-02-03").unwrap(), date!(2026 - 02 - 03));
        assert_eq!(parse_date("2028-02-29").unwrap(), date!(2028 - 02 - 29));
        assert_eq!(parse_date("0000-01-01").unwrap(), date!(0000 - 01 - 01));
        assert_eq!(parse_date("9999-12-31").unwrap(), date!(9999 - 12 - 31));
        assert_eq!(format_date(date!(2026 - 02 - 03)), "2026-02-03");
        assert_eq!(format_date(date!(0033 - 01 - 09)), "0033-01-09");
    }

    #[test]
    fn parse_date_rejects_everything_else_naming_the_text() {
        for s in [
            "2026-02-30",
            "2027-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "2026-2-3",
            "2026-02-3",
            "20260203",
            "2026-02-03x",
            " 2026-02-03",
            "2026-02-03\n",
            "2026/02/03",
            "+2026-02-03",
            "-202-02-03",
            "２０２６-02-03",
            "2026-02-03T00:00:00",
            "",
        ] {
            assert_eq!(
                parse_date(s),
                Err(TermsError::InvalidDate(s.to_owned())),
                "{s:?}"
            );
        }
        let msg = parse_date("2026-02-30").unwrap_err().to_string();
        assert!(msg.contains("2026-02-30"), "{msg}");
        // A long input is named by its first 64 characters only.
        let long = format!("2026-02-03{}", "日".repeat(1000));
        let expected = format!("2026-02-03{}…", "日".repeat(54));
        assert_eq!(parse_date(&long), Err(TermsError::InvalidDate(expected)));
        assert_eq!(
            "x".repeat(65).parse::<Holding>(),
            Err(TermsError::UnknownHolding(format!("{}…", "x".repeat(64))))
        );
        assert_eq!(
            "x".repeat(64).parse::<ConsentItem>(),
            Err(TermsError::UnknownItem("x".repeat(64)))
        );
    }

    #[test]
    fn format_date_marks_years_outside_four_digits() {
        assert_eq!(format_date(date!(-0001 - 12 - 31)), "-0001-12-31");
        assert_eq!(format_date(Date::MIN), "-9999-01-01");
        assert!(parse_date(&format_date(Date::MIN)).is_err());
    }

    #[test]
    fn today_in_japan_001_4_2_nao_consent_days_are_days_in_japan_utc_plus_nine() {
        // 14:59:59 UTC is 23:59:59 in Japan; 15:00 UTC is already the next day.
        assert_eq!(
            today_in_japan(datetime!(2026-03-31 14:59:59 UTC)),
            date!(2026 - 03 - 31)
        );
        assert_eq!(
            today_in_japan(datetime!(2026-03-31 15:00:00 UTC)),
            date!(2026 - 04 - 01)
        );
        // The same instant written in another zone gives the same day in Japan.
        assert_eq!(
            today_in_japan(datetime!(2026-03-31 08:00:00 -07:00)),
            date!(2026 - 04 - 01)
        );
        assert_eq!(
            today_in_japan(datetime!(2026-04-01 00:59:59 +10:00)),
            date!(2026 - 03 - 31)
        );
        // No daylight saving time: midsummer is the same +9.
        assert_eq!(
            today_in_japan(datetime!(2026-07-31 14:59:59 UTC)),
            date!(2026 - 07 - 31)
        );
        // The ends of the range do not panic.
        assert_eq!(
            today_in_japan(datetime!(9999-12-31 23:00:00 UTC)),
            Date::MAX
        );
        assert_eq!(
            today_in_japan(datetime!(-9999-01-01 00:00:00 +23:59:59)),
            Date::MIN
        );
    }

    #[test]
    fn consent_period_001_4_2_ordinary_day_ends_the_day_before_the_anniversary_of_the_first_day() {
        // Consent 3 Feb 2026: 起算日 4 Feb 2026, 応当日 4 Feb 2036, last day 3 Feb 2036.
        assert_eq!(
            period(date!(2026 - 02 - 03)),
            (date!(2026 - 02 - 04), date!(2036 - 02 - 03))
        );
    }

    #[test]
    fn consent_period_001_4_2_first_day_29_february_ends_28_february() {
        // Consent 28 Feb 2028 (leap year): 起算日 29 Feb 2028; 2038 has no 29 February, so the
        // period ends on the last day of February 2038 (民法 §143(2) ただし).
        assert_eq!(
            period(date!(2028 - 02 - 28)),
            (date!(2028 - 02 - 29), date!(2038 - 02 - 28))
        );
    }

    #[test]
    fn consent_period_001_4_2_consent_on_29_february_ends_28_february() {
        // Consent 29 Feb 2028: 起算日 1 Mar 2028, 応当日 1 Mar 2038, last day 28 Feb 2038.
        assert_eq!(
            period(date!(2028 - 02 - 29)),
            (date!(2028 - 03 - 01), date!(2038 - 02 - 28))
        );
    }

    #[test]
    fn consent_period_001_4_2_consent_1_march_after_a_leap_day_ends_1_march() {
        assert_eq!(
            period(date!(2028 - 03 - 01)),
            (date!(2028 - 03 - 02), date!(2038 - 03 - 01))
        );
    }

    #[test]
    fn consent_period_001_4_2_first_day_1_march_ends_29_february_when_the_tenth_year_is_leap() {
        // Consent 28 Feb 2030: 起算日 1 Mar 2030, 応当日 1 Mar 2040; 2040 is a leap year.
        assert_eq!(
            period(date!(2030 - 02 - 28)),
            (date!(2030 - 03 - 01), date!(2040 - 02 - 29))
        );
    }

    #[test]
    fn consent_period_001_4_2_first_day_1_january_ends_31_december_of_the_tenth_year() {
        // Consent 31 Dec 2026: 起算日 1 Jan 2027 (年の初めから起算), ends 31 Dec 2036.
        assert_eq!(
            period(date!(2026 - 12 - 31)),
            (date!(2027 - 01 - 01), date!(2036 - 12 - 31))
        );
    }

    #[test]
    fn consent_period_001_4_2_year_end_first_day_31_december_ends_30_december() {
        assert_eq!(
            period(date!(2026 - 12 - 30)),
            (date!(2026 - 12 - 31), date!(2036 - 12 - 30))
        );
        // Month ends that exist in every year are ordinary 応当日.
        assert_eq!(
            period(date!(2026 - 04 - 29)),
            (date!(2026 - 04 - 30), date!(2036 - 04 - 29))
        );
    }

    #[test]
    fn consent_period_001_4_2_largest_and_smallest_dates_are_named_errors_or_exact() {
        // The latest consent whose period still fits ends on the last supported day.
        let latest = date!(9989 - 12 - 31);
        assert_eq!(
            period(latest),
            (date!(9990 - 01 - 01), date!(9999 - 12 - 31))
        );
        for consent in [date!(9990 - 01 - 01), date!(9999 - 12 - 30), Date::MAX] {
            assert_eq!(
                consent_period(consent),
                Err(TermsError::DateOutOfRange(format_date(consent))),
                "{consent}"
            );
        }
        let msg = consent_period(Date::MAX).unwrap_err().to_string();
        assert!(msg.contains("9999-12-31"), "{msg}");
        assert_eq!(
            period(Date::MIN),
            (date!(-9999 - 01 - 02), date!(-9989 - 01 - 01))
        );
    }

    #[test]
    fn holding_000_2_2_names_round_trip_and_unknown_names_are_named_errors() {
        let names: Vec<&str> = Holding::ALL.iter().map(|h| h.as_str()).collect();
        assert_eq!(
            names,
            [
                "license-only",
                "myna-license-only",
                "license-and-myna-license",
                "history-only",
                "myna-history-only",
                "history-and-myna-history"
            ]
        );
        for h in Holding::ALL {
            assert_eq!(h.as_str().parse::<Holding>().unwrap(), h);
            assert_eq!(h.to_string(), h.as_str());
        }
        for s in [
            "",
            "License-only",
            "license_only",
            "myna-license",
            " license-only",
        ] {
            assert_eq!(
                s.parse::<Holding>(),
                Err(TermsError::UnknownHolding(s.to_owned()))
            );
        }
        let msg = "card".parse::<Holding>().unwrap_err().to_string();
        assert!(msg.contains("card"), "{msg}");
    }

    /// (mynaportal-link, license-info, online-lecture, domicile-change, address-one-stop,
    /// notifications).
    fn services(e: Eligibility) -> [bool; 6] {
        e.entries().map(|(_, v)| v)
    }

    #[test]
    fn eligibility_000_2_1_link_needs_a_myna_license_or_a_myna_history() {
        for h in Holding::ALL {
            let expected = !matches!(h, Holding::LicenseOnly | Holding::HistoryOnly);
            for suspended in [false, true] {
                assert_eq!(eligibility(h, suspended).mynaportal_link, expected, "{h}");
            }
        }
    }

    #[test]
    fn eligibility_000_2_plastic_cards_alone_get_nothing() {
        for h in [Holding::LicenseOnly, Holding::HistoryOnly] {
            for suspended in [false, true] {
                assert_eq!(services(eligibility(h, suspended)), [false; 6], "{h}");
            }
        }
    }

    #[test]
    fn eligibility_000_2_2_myna_license_only_gets_every_service() {
        assert_eq!(
            services(eligibility(Holding::MynaLicenseOnly, false)),
            [true; 6]
        );
    }

    #[test]
    fn eligibility_000_2_2_3_4_license_beside_myna_license_loses_domicile_and_one_stop() {
        // ③ and ④ are for マイナ免許証「のみ」: a plastic licence beside it takes both away.
        assert_eq!(
            services(eligibility(Holding::LicenseAndMynaLicense, false)),
            [true, true, true, false, false, true]
        );
    }

    #[test]
    fn eligibility_000_2_2_myna_history_gets_information_and_notifications() {
        // ② and ③ are for マイナ免許証 holders only; ④ for マイナ経歴証明書のみ.
        assert_eq!(
            services(eligibility(Holding::MynaHistoryOnly, false)),
            [true, true, false, false, true, true]
        );
        assert_eq!(
            services(eligibility(Holding::HistoryAndMynaHistory, false)),
            [true, true, false, false, false, true]
        );
    }

    #[test]
    fn eligibility_000_2_2_1_2_suspension_removes_licence_information_and_online_lecture_only() {
        assert_eq!(
            services(eligibility(Holding::MynaLicenseOnly, true)),
            [true, false, false, true, true, true]
        );
        assert_eq!(
            services(eligibility(Holding::LicenseAndMynaLicense, true)),
            [true, false, false, false, false, true]
        );
    }

    #[test]
    fn eligibility_000_2_2_1_suspension_is_no_fact_for_a_history_holder() {
        for h in [Holding::MynaHistoryOnly, Holding::HistoryAndMynaHistory] {
            assert_eq!(eligibility(h, true), eligibility(h, false), "{h}");
        }
    }

    #[test]
    fn eligibility_001_2_one_stop_is_for_myna_license_only_or_myna_history_only() {
        for h in Holding::ALL {
            let expected = matches!(h, Holding::MynaLicenseOnly | Holding::MynaHistoryOnly);
            assert_eq!(eligibility(h, false).address_one_stop, expected, "{h}");
        }
    }

    #[test]
    fn eligibility_000_2_entries_use_the_dbus_keys() {
        let keys = eligibility(Holding::LicenseOnly, false)
            .entries()
            .map(|(k, _)| k);
        assert_eq!(
            keys,
            [
                "mynaportal-link",
                "license-info",
                "online-lecture",
                "domicile-change",
                "address-one-stop",
                "notifications"
            ]
        );
        let e = Eligibility {
            mynaportal_link: false,
            license_info: true,
            online_lecture: false,
            domicile_change: false,
            address_one_stop: true,
            notifications: false,
        };
        assert_eq!(
            e.entries(),
            [
                ("mynaportal-link", false),
                ("license-info", true),
                ("online-lecture", false),
                ("domicile-change", false),
                ("address-one-stop", true),
                ("notifications", false)
            ]
        );
    }

    const CONSENT: Date = date!(2026 - 02 - 03);
    /// The last day of [`CONSENT`]'s period.
    const LAST: Date = date!(2036 - 02 - 03);

    fn status(facts: ConsentFacts) -> ConsentStatus {
        consent_status(CONSENT, &facts).unwrap()
    }

    fn outcome(s: ConsentStatus) -> (bool, bool, Action, &'static str) {
        (s.in_period, s.updates, s.action, s.clause)
    }

    fn in_period_day() -> ConsentFacts {
        ConsentFacts::on(date!(2030 - 06 - 01))
    }

    #[test]
    fn consent_status_001_5_names_round_trip() {
        for l in CertificateLapse::ALL {
            assert_eq!(l.as_str().parse::<CertificateLapse>().unwrap(), l);
        }
        assert_eq!(
            CertificateLapse::ALL.map(CertificateLapse::as_str),
            ["none", "expiry", "other"]
        );
        assert_eq!(
            "revoked".parse::<CertificateLapse>(),
            Err(TermsError::UnknownLapse("revoked".into()))
        );
        assert_eq!(
            [
                Action::None,
                Action::IssueCertificate,
                Action::ConsentAgain,
                Action::NotEligible,
                Action::ReportChanges
            ]
            .map(Action::as_str),
            [
                "none",
                "issue-certificate",
                "consent-again",
                "not-eligible",
                "report-changes"
            ]
        );
    }

    #[test]
    fn consent_status_001_4_2_updates_flow_within_the_period_and_report_it() {
        let s = status(in_period_day());
        assert_eq!((s.first_day, s.last_day), (date!(2026 - 02 - 04), LAST));
        assert_eq!(outcome(s), (true, true, Action::None, "001 §4(2)"));
        for h in [Holding::MynaLicenseOnly, Holding::MynaHistoryOnly] {
            let facts = ConsentFacts {
                holding: Some(h),
                ..in_period_day()
            };
            assert_eq!(
                outcome(status(facts)),
                (true, true, Action::None, "001 §4(2)")
            );
        }
    }

    #[test]
    fn consent_status_001_4_2_consent_date_itself_is_in_force() {
        // J-LIS recorded the consent that day; 民法 §140 only leaves it out of the count.
        assert_eq!(
            outcome(status(ConsentFacts::on(CONSENT))),
            (true, true, Action::None, "001 §4(2)")
        );
    }

    #[test]
    fn consent_status_001_4_2_last_day_is_in_and_the_next_day_asks_for_a_new_consent() {
        assert_eq!(
            outcome(status(ConsentFacts::on(LAST))),
            (true, true, Action::None, "001 §4(2)")
        );
        let after = LAST.next_day().unwrap();
        assert_eq!(
            outcome(status(ConsentFacts::on(after))),
            (false, false, Action::ConsentAgain, "001 §4(2)")
        );
    }

    #[test]
    fn consent_status_001_4_2_past_the_period_a_new_certificate_does_not_help() {
        let facts = ConsentFacts {
            certificate_lapse: CertificateLapse::Other,
            new_certificate: true,
            ..ConsentFacts::on(date!(2040 - 01 - 01))
        };
        assert_eq!(
            outcome(status(facts)),
            (false, false, Action::ConsentAgain, "001 §4(2)")
        );
    }

    #[test]
    fn consent_status_001_4_2_nao_a_lapsed_certificate_does_not_end_the_consent() {
        for lapse in [CertificateLapse::Expiry, CertificateLapse::Other] {
            let s = status(ConsentFacts {
                certificate_lapse: lapse,
                ..in_period_day()
            });
            assert!(s.in_period, "{lapse}");
            assert_eq!(s.last_day, LAST, "{lapse}");
        }
    }

    #[test]
    fn consent_status_001_5_1_other_lapse_stops_updates_until_a_new_certificate() {
        let lapsed = ConsentFacts {
            certificate_lapse: CertificateLapse::Other,
            ..in_period_day()
        };
        assert_eq!(
            outcome(status(lapsed)),
            (true, false, Action::IssueCertificate, "001 §5(1)")
        );
        let renewed = ConsentFacts {
            new_certificate: true,
            ..lapsed
        };
        assert_eq!(
            outcome(status(renewed)),
            (true, true, Action::None, "001 §5(1)")
        );
    }

    #[test]
    fn consent_status_001_5_2_expiry_needs_a_new_consent_even_with_a_new_certificate() {
        for new_certificate in [false, true] {
            let facts = ConsentFacts {
                certificate_lapse: CertificateLapse::Expiry,
                new_certificate,
                ..in_period_day()
            };
            assert_eq!(
                outcome(status(facts)),
                (true, false, Action::ConsentAgain, "001 §5(2)"),
                "new certificate: {new_certificate}"
            );
        }
    }

    #[test]
    fn consent_status_001_5_3_other_holdings_stop_updates_within_the_period() {
        for h in Holding::ALL {
            let facts = ConsentFacts {
                holding: Some(h),
                ..in_period_day()
            };
            let expected = if matches!(h, Holding::MynaLicenseOnly | Holding::MynaHistoryOnly) {
                (true, true, Action::None, "001 §4(2)")
            } else {
                (true, false, Action::NotEligible, "001 §5(3)")
            };
            assert_eq!(outcome(status(facts)), expected, "{h}");
        }
    }

    #[test]
    fn consent_status_001_5_3_not_eligible_beats_certificate_and_period_rules() {
        // Neither a new certificate nor a new consent helps a holder the service is not for.
        for lapse in CertificateLapse::ALL {
            let facts = ConsentFacts {
                holding: Some(Holding::LicenseAndMynaLicense),
                certificate_lapse: lapse,
                ..in_period_day()
            };
            assert_eq!(
                outcome(status(facts)),
                (true, false, Action::NotEligible, "001 §5(3)"),
                "{lapse}"
            );
        }
        // After the period the rule is the one for a new consent: 001 §2.
        let facts = ConsentFacts {
            holding: Some(Holding::HistoryAndMynaHistory),
            ..ConsentFacts::on(date!(2037 - 01 - 01))
        };
        assert_eq!(
            outcome(status(facts)),
            (false, false, Action::NotEligible, "001 §2")
        );
    }

    #[test]
    fn consent_status_000_riyou_kaijo_withdrawal_stops_updates_from_its_day() {
        let withdrawn = date!(2030 - 06 - 01);
        let facts = |on| ConsentFacts {
            withdrawn_on: Some(withdrawn),
            ..ConsentFacts::on(on)
        };
        // The day before, the consent still stood.
        assert_eq!(
            outcome(status(facts(date!(2030 - 05 - 31)))),
            (true, true, Action::None, "001 §4(2)")
        );
        for on in [withdrawn, date!(2031 - 01 - 01)] {
            assert_eq!(
                outcome(status(facts(on))),
                (true, false, Action::ReportChanges, "000 利用解除"),
                "{on}"
            );
        }
        // A withdrawal on the consent date itself is one.
        let same_day = ConsentFacts {
            withdrawn_on: Some(CONSENT),
            ..ConsentFacts::on(CONSENT)
        };
        assert_eq!(status(same_day).action, Action::ReportChanges);
    }

    #[test]
    fn consent_status_000_riyou_kaijo_withdrawal_decides_before_every_other_rule() {
        for (holding, lapse, on) in [
            (
                Some(Holding::LicenseOnly),
                CertificateLapse::None,
                date!(2030 - 06 - 01),
            ),
            (None, CertificateLapse::Expiry, date!(2030 - 06 - 01)),
            (None, CertificateLapse::Other, date!(2030 - 06 - 01)),
            (None, CertificateLapse::None, date!(2040 - 01 - 01)),
        ] {
            let facts = ConsentFacts {
                holding,
                certificate_lapse: lapse,
                withdrawn_on: Some(date!(2029 - 01 - 01)),
                ..ConsentFacts::on(on)
            };
            let s = status(facts);
            assert_eq!(
                (s.updates, s.action, s.clause),
                (false, Action::ReportChanges, "000 利用解除"),
                "{facts:?}"
            );
        }
    }

    #[test]
    fn consent_status_001_4_2_questions_before_the_consent_are_named_errors() {
        let before = date!(2026 - 02 - 02);
        assert_eq!(
            consent_status(CONSENT, &ConsentFacts::on(before)),
            Err(TermsError::BeforeConsent {
                on: "2026-02-02".into(),
                consent_date: "2026-02-03".into()
            })
        );
        let facts = ConsentFacts {
            withdrawn_on: Some(before),
            ..in_period_day()
        };
        let err = consent_status(CONSENT, &facts).unwrap_err();
        assert_eq!(
            err,
            TermsError::WithdrawnBeforeConsent {
                withdrawn_on: "2026-02-02".into(),
                consent_date: "2026-02-03".into()
            }
        );
        assert!(err.to_string().contains("2026-02-02"), "{err}");
        let facts = ConsentFacts {
            new_certificate: true,
            ..in_period_day()
        };
        assert_eq!(
            consent_status(CONSENT, &facts),
            Err(TermsError::NewCertificateWithoutLapse)
        );
        assert_eq!(
            consent_status(Date::MAX, &ConsentFacts::on(Date::MAX)),
            Err(TermsError::DateOutOfRange("9999-12-31".into()))
        );
    }

    fn link(holding: Holding) -> LinkFacts {
        LinkFacts {
            holding,
            one_stop_started: false,
            linked_before: false,
            unlinked: false,
            licence_lapsed_after_unlink: false,
        }
    }

    fn requirement(facts: LinkFacts) -> (CounterSubmission, &'static str) {
        let r = link_requirement(&facts);
        (r.counter_submission, r.clause)
    }

    #[test]
    fn link_requirement_000_4_names() {
        assert_eq!(
            [
                CounterSubmission::Needed,
                CounterSubmission::NotNeeded,
                CounterSubmission::MayBeNeeded,
                CounterSubmission::NotEligible
            ]
            .map(CounterSubmission::as_str),
            ["needed", "not-needed", "may-be-needed", "not-eligible"]
        );
    }

    #[test]
    fn link_requirement_000_4_first_submission_is_needed_for_every_myna_holding() {
        for h in [
            Holding::MynaLicenseOnly,
            Holding::LicenseAndMynaLicense,
            Holding::MynaHistoryOnly,
            Holding::HistoryAndMynaHistory,
        ] {
            assert_eq!(
                requirement(link(h)),
                (CounterSubmission::Needed, "000 §4 1回目"),
                "{h}"
            );
        }
    }

    #[test]
    fn link_requirement_000_2_1_plastic_cards_alone_cannot_link_whatever_the_history() {
        for h in [Holding::LicenseOnly, Holding::HistoryOnly] {
            let facts = LinkFacts {
                one_stop_started: true,
                linked_before: true,
                unlinked: true,
                licence_lapsed_after_unlink: true,
                ..link(h)
            };
            assert_eq!(
                requirement(facts),
                (CounterSubmission::NotEligible, "000 §2(1)"),
                "{h}"
            );
            assert_eq!(requirement(link(h)).0, CounterSubmission::NotEligible);
        }
    }

    #[test]
    fn link_requirement_000_4_nao_one_stop_start_already_linked_the_issue_number() {
        let facts = LinkFacts {
            one_stop_started: true,
            ..link(Holding::MynaLicenseOnly)
        };
        assert_eq!(
            requirement(facts),
            (CounterSubmission::NotNeeded, "000 §4 なお")
        );
    }

    #[test]
    fn link_requirement_000_5_carried_over_link_needs_nothing_again() {
        for h in [
            Holding::MynaLicenseOnly,
            Holding::LicenseAndMynaLicense,
            Holding::MynaHistoryOnly,
            Holding::HistoryAndMynaHistory,
        ] {
            for one_stop_started in [false, true] {
                let facts = LinkFacts {
                    linked_before: true,
                    one_stop_started,
                    ..link(h)
                };
                assert_eq!(
                    requirement(facts),
                    (CounterSubmission::NotNeeded, "000 §5"),
                    "{h}"
                );
            }
        }
    }

    #[test]
    fn link_requirement_000_6_relinking_after_cancellation_needs_no_counter() {
        let facts = LinkFacts {
            unlinked: true,
            ..link(Holding::MynaHistoryOnly)
        };
        assert_eq!(requirement(facts), (CounterSubmission::NotNeeded, "000 §6"));
        let facts = LinkFacts {
            linked_before: true,
            one_stop_started: true,
            ..facts
        };
        assert_eq!(requirement(facts), (CounterSubmission::NotNeeded, "000 §6"));
    }

    #[test]
    fn link_requirement_000_6_tadashi_licence_lapse_after_cancellation_may_need_the_counter() {
        // The ただし outranks an earlier link and an earlier one-stop start.
        for (linked_before, one_stop_started) in
            [(false, false), (true, false), (false, true), (true, true)]
        {
            let facts = LinkFacts {
                unlinked: true,
                licence_lapsed_after_unlink: true,
                linked_before,
                one_stop_started,
                ..link(Holding::MynaLicenseOnly)
            };
            assert_eq!(
                requirement(facts),
                (CounterSubmission::MayBeNeeded, "000 §6 ただし")
            );
        }
    }

    #[test]
    fn link_requirement_000_6_tadashi_applies_only_after_a_cancellation() {
        let facts = LinkFacts {
            licence_lapsed_after_unlink: true,
            ..link(Holding::MynaLicenseOnly)
        };
        assert_eq!(
            requirement(facts),
            (CounterSubmission::Needed, "000 §4 1回目")
        );
    }

    proptest! {
        /// Updates flow only in force (001 §4(2)) and only with the action `none`.
        #[test]
        fn consent_status_001_4_2_updates_only_within_the_period_and_without_action(
            offset in 0i64..8000,
            holding in proptest::option::of(proptest::sample::select(Holding::ALL.to_vec())),
            lapse in proptest::sample::select(CertificateLapse::ALL.to_vec()),
            new_certificate in any::<bool>(),
            withdrawn in proptest::option::of(0i64..8000),
        ) {
            let day = |d: i64| CONSENT + time::Duration::days(d);
            let facts = ConsentFacts {
                on: day(offset),
                holding,
                certificate_lapse: lapse,
                new_certificate: new_certificate && lapse != CertificateLapse::None,
                withdrawn_on: withdrawn.map(day),
            };
            let s = consent_status(CONSENT, &facts).unwrap();
            prop_assert_eq!(s.in_period, facts.on <= LAST);
            prop_assert_eq!(s.updates, s.action == Action::None);
            if s.updates {
                prop_assert!(s.in_period);
            }
        }
    }

    proptest! {
        /// 民法 §143(2): the day after the last day is the 応当日 of the first day in the tenth
        /// year, or — when that month has no such day — the first of the next month.
        #[test]
        fn consent_period_001_4_2_day_after_last_day_is_the_anniversary_or_the_next_month(
            days in 0i32..=Date::from_calendar_date(9989, Month::December, 31).unwrap().to_julian_day()
                - Date::MIN.to_julian_day(),
        ) {
            let consent = Date::from_julian_day(Date::MIN.to_julian_day() + days).unwrap();
            let p = consent_period(consent).unwrap();
            prop_assert_eq!(p.first_day, consent.next_day().unwrap());
            let after = p.last_day.next_day().unwrap();
            prop_assert_eq!(after.year(), p.first_day.year() + 10);
            if after.day() == p.first_day.day() {
                prop_assert_eq!(after.month(), p.first_day.month());
            } else {
                // Only a first day of 29 February lacks its 応当日.
                prop_assert_eq!((p.first_day.month(), p.first_day.day()), (Month::February, 29));
                prop_assert_eq!((after.month(), after.day()), (Month::March, 1));
            }
            // Ten calendar years hold 3650 days and one to three leap days (one only across a
            // century that is not a leap year, such as 2100).
            let len = (after - p.first_day).whole_days();
            prop_assert!((3651..=3653).contains(&len), "{len}");
        }

        #[test]
        fn parse_date_round_trips_format_date_for_four_digit_years(
            days in 0i32..=date!(9999 - 12 - 31).to_julian_day() - date!(0000 - 01 - 01).to_julian_day(),
        ) {
            let d = Date::from_julian_day(date!(0000 - 01 - 01).to_julian_day() + days).unwrap();
            prop_assert_eq!(parse_date(&format_date(d)).unwrap(), d);
        }

        #[test]
        fn parse_date_never_panics(s in "\\PC{0,14}") {
            let _ = parse_date(&s);
        }
    }

    #[test]
    fn consent_items_001_4_1_are_chosen_one_by_one_in_any_order() {
        let items = ConsentItems::parse(&["birth-date", "address"]).unwrap();
        assert!(items.contains(ConsentItem::Address));
        assert!(!items.contains(ConsentItem::Name));
        assert!(items.contains(ConsentItem::BirthDate));
        assert_eq!(items.names(), ["address", "birth-date"]);
        assert_eq!(
            items.iter().collect::<Vec<_>>(),
            [ConsentItem::Address, ConsentItem::BirthDate]
        );
        let owned: Vec<String> = vec!["name".into()];
        assert_eq!(ConsentItems::parse(&owned).unwrap().names(), ["name"]);
        assert_eq!(
            ConsentItems::parse(&["name", "birth-date", "address"]).unwrap(),
            ConsentItems::all()
        );
        assert_eq!(
            ConsentItems::all().names(),
            ["address", "name", "birth-date"]
        );
        for i in ConsentItem::ALL {
            assert_eq!(i.as_str().parse::<ConsentItem>().unwrap(), i);
        }
    }

    #[test]
    fn consent_items_001_4_1_nothing_twice_nothing_else_and_not_none() {
        assert_eq!(ConsentItems::parse::<&str>(&[]), Err(TermsError::NoItems));
        assert_eq!(
            ConsentItems::parse(&["name", "address", "name"]),
            Err(TermsError::RepeatedItem("name".into()))
        );
        // 性別 and the My Number are never provided (001 §1, §3); names are exact.
        for bad in [
            "my-number",
            "sex",
            "Address",
            "birth_date",
            "birthdate",
            "",
            " name",
        ] {
            assert_eq!(
                ConsentItems::parse(&["address", bad]),
                Err(TermsError::UnknownItem(bad.into())),
                "{bad:?}"
            );
        }
        let msg = ConsentItems::parse(&["my-number"]).unwrap_err().to_string();
        assert!(msg.contains("my-number"), "{msg}");
    }

    #[test]
    fn document_kind_001_4_1_and_4_3_i_names() {
        assert_eq!(
            DocumentKind::ALL.map(DocumentKind::as_str),
            ["consent", "withdrawal"]
        );
        for k in DocumentKind::ALL {
            assert_eq!(k.as_str().parse::<DocumentKind>().unwrap(), k);
        }
        assert_eq!(
            "revocation".parse::<DocumentKind>(),
            Err(TermsError::UnknownKind("revocation".into()))
        );
    }

    fn document() -> ConsentDocument {
        ConsentDocument {
            kind: DocumentKind::Consent,
            items: ConsentItems::parse(&["name", "address"]).unwrap(),
            service: ONE_STOP_SERVICE.to_owned(),
            signed_at: datetime!(2026-02-03 10:04:05 +09:00),
            terminal: "counter-01".to_owned(),
            serial: "0A1B2C".to_owned(),
            reference: Some("受付 42".to_owned()),
        }
    }

    const DOCUMENT: &str = r#"{"items":["address","name"],"kind":"consent","reference":"受付 42","serial":"0A1B2C","service":"address-one-stop","signed-at":"2026-02-03T01:04:05Z","terminal":"counter-01"}"#;

    #[test]
    fn consent_document_001_4_1_canonical_json_is_exact() {
        assert_eq!(document().to_canonical_json().unwrap(), DOCUMENT);
        let withdrawal = ConsentDocument {
            kind: DocumentKind::Withdrawal,
            items: ConsentItems::all(),
            reference: None,
            signed_at: datetime!(2036-12-31 23:59:59 UTC),
            ..document()
        };
        assert_eq!(
            withdrawal.to_canonical_json().unwrap(),
            r#"{"items":["address","name","birth-date"],"kind":"withdrawal","serial":"0A1B2C","service":"address-one-stop","signed-at":"2036-12-31T23:59:59Z","terminal":"counter-01"}"#
        );
    }

    #[test]
    fn consent_document_001_4_1_round_trips() {
        let doc = ConsentDocument::parse_canonical(DOCUMENT).unwrap();
        assert_eq!(doc, document());
        assert_eq!(doc.signed_at.offset(), UtcOffset::UTC);
        assert_eq!(doc.to_canonical_json().unwrap(), DOCUMENT);
    }

    #[test]
    fn consent_document_001_4_1_strings_use_rfc_8785_minimal_escaping() {
        let doc = ConsentDocument {
            terminal: "窓口\"1\"\\東/😀\u{2028}é".to_owned(),
            reference: Some("a\u{a0}b".to_owned()),
            ..document()
        };
        let json = doc.to_canonical_json().unwrap();
        // `"` and `\` escaped; `/`, non-ASCII (also U+2028 and the no-break space) raw UTF-8.
        assert!(json.contains(r#""terminal":"窓口\"1\"\\東/😀"#), "{json}");
        assert!(json.contains("😀\u{2028}é\"}"), "{json}");
        assert!(json.contains("\"reference\":\"a\u{a0}b\""), "{json}");
        assert_eq!(ConsentDocument::parse_canonical(&json).unwrap(), doc);
    }

    #[test]
    fn consent_document_001_4_1_jcs_escapes_control_characters_as_rfc_8785_says() {
        // The fields refuse control characters, but the serialiser the document relies on is
        // pinned here to RFC 8785 §3.2.2.2: \b \t \n \f \r short, other U+0000–U+001F as
        // \u00xx in lower-case hex, U+007F and everything above raw.
        let s = "\u{0}\u{8}\t\n\u{b}\u{c}\r\u{1b}\u{1f} \u{7f}\u{80}é";
        assert_eq!(
            serde_json_canonicalizer::to_string(&s).unwrap(),
            "\"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001b\\u001f \u{7f}\u{80}é\""
        );
        // The string of RFC 8785 §3.2.4's example.
        let rfc = "\u{20ac}$\u{f}\nA'B\"\\\\\"/";
        assert_eq!(
            serde_json_canonicalizer::to_string(&rfc).unwrap(),
            r#""€$\u000f\nA'B\"\\\\\"/""#
        );
    }

    #[test]
    fn consent_document_001_4_1_fields_are_checked_with_named_errors() {
        let with = |f: fn(&mut ConsentDocument)| {
            let mut d = document();
            f(&mut d);
            d.to_canonical_json()
        };
        assert_eq!(
            with(|d| d.service = "mynaportal-link".into()),
            Err(TermsError::UnknownService("mynaportal-link".into()))
        );
        for f in [
            (|d: &mut ConsentDocument| d.terminal = String::new()) as fn(&mut ConsentDocument),
            |d| d.terminal = "a".repeat(MAX_TEXT_BYTES + 1),
            |d| d.terminal = "counter\n01".into(),
            |d| d.terminal = "counter\u{7f}".into(),
            |d| d.terminal = "counter\u{85}".into(),
        ] {
            assert!(
                matches!(with(f), Err(TermsError::InvalidTerminal(_))),
                "{:?}",
                with(f)
            );
        }
        for f in [
            (|d: &mut ConsentDocument| d.reference = Some(String::new()))
                as fn(&mut ConsentDocument),
            |d| d.reference = Some("窓".repeat(86)),
            |d| d.reference = Some("a\tb".into()),
        ] {
            assert!(
                matches!(with(f), Err(TermsError::InvalidReference(_))),
                "{:?}",
                with(f)
            );
        }
        for f in [
            (|d: &mut ConsentDocument| d.serial = String::new()) as fn(&mut ConsentDocument),
            |d| d.serial = "0a1b".into(),
            |d| d.serial = "A1B".into(),
            |d| d.serial = "001A".into(),
            |d| d.serial = "AB".repeat(21),
            |d| d.serial = "0X1B".into(),
        ] {
            assert!(
                matches!(with(f), Err(TermsError::InvalidSerial(_))),
                "{:?}",
                with(f)
            );
        }
        for f in [
            (|d: &mut ConsentDocument| d.signed_at = datetime!(2026-02-03 01:04:05.5 UTC))
                as fn(&mut ConsentDocument),
            |d| d.signed_at = datetime!(0000-01-01 00:30:00 +01:00),
            |d| d.signed_at = datetime!(-0001-06-01 00:00:00 UTC),
        ] {
            assert!(
                matches!(with(f), Err(TermsError::InvalidSignedAt(_))),
                "{:?}",
                with(f)
            );
        }
        // The limits are inclusive, counted in bytes.
        let doc = ConsentDocument {
            terminal: format!("{}a", "窓".repeat(85)),
            reference: Some("R".repeat(MAX_TEXT_BYTES)),
            serial: "7F".repeat(20),
            ..document()
        };
        assert_eq!(doc.terminal.len(), MAX_TEXT_BYTES);
        let json = doc.to_canonical_json().unwrap();
        assert_eq!(ConsentDocument::parse_canonical(&json).unwrap(), doc);
        let msg = with(|d| d.terminal = "a\u{7}".into())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("U+0007"), "{msg}");
    }

    #[test]
    fn consent_document_001_4_1_the_largest_document_fits_the_parse_limit() {
        let doc = ConsentDocument {
            terminal: "\"".repeat(MAX_TEXT_BYTES),
            reference: Some("\\".repeat(MAX_TEXT_BYTES)),
            serial: "FF".repeat(20),
            items: ConsentItems::all(),
            kind: DocumentKind::Withdrawal,
            ..document()
        };
        let json = doc.to_canonical_json().unwrap();
        assert!(json.len() < MAX_DOCUMENT_BYTES, "{}", json.len());
        assert_eq!(ConsentDocument::parse_canonical(&json).unwrap(), doc);
    }

    #[test]
    fn consent_document_001_4_1_parse_canonical_refuses_every_other_form() {
        let swap = |from: &str, to: &str| {
            assert!(DOCUMENT.contains(from), "{from}");
            DOCUMENT.replacen(from, to, 1)
        };
        let cases: Vec<(String, &str)> = vec![
            (format!("{DOCUMENT}\n"), "canonical form"),
            (format!(" {DOCUMENT}"), "canonical form"),
            (format!("\u{feff}{DOCUMENT}"), "JSON"),
            (swap(",", ", "), "canonical form"),
            (
                swap(
                    r#""items":["address","name"],"kind":"consent""#,
                    r#""kind":"consent","items":["address","name"]"#,
                ),
                "canonical form",
            ),
            (
                swap(r#"["address","name"]"#, r#"["name","address"]"#),
                "canonical form",
            ),
            (
                swap(r#"["address","name"]"#, r#"["address","address"]"#),
                "more than once",
            ),
            (swap(r#"["address","name"]"#, "[]"), "no consent items"),
            (
                swap(r#"["address","name"]"#, r#"["address","sex"]"#),
                "\"sex\"",
            ),
            (
                swap(r#"["address","name"]"#, r#""address""#),
                "\"items\" is not an array",
            ),
            (
                swap(r#"["address","name"]"#, r#"["address",1]"#),
                "not a string",
            ),
            (swap(r#""consent""#, r#""revocation""#), "revocation"),
            (swap(r#""consent""#, "1"), "\"kind\" is not a string"),
            (
                swap(r#""受付 42""#, "null"),
                "\"reference\" is not a string",
            ),
            (swap(r#""受付 42""#, r#""受付\u0020""#), "canonical form"),
            (swap(r#""受付 42""#, r#""\u53d7付 42""#), "canonical form"),
            (
                swap(r#""counter-01""#, r#""counter\/01""#),
                "canonical form",
            ),
            (
                swap(r#""counter-01""#, r#""counter\u000a01""#),
                "control character U+000A",
            ),
            (swap(r#""counter-01""#, r#""""#), "terminal is empty"),
            (swap(r#""0A1B2C""#, r#""0a1b2c""#), "upper-case hex"),
            (swap("address-one-stop", "mynaportal"), "mynaportal"),
            (swap("T01:04:05Z", "T01:04:05.000Z"), "signed-at"),
            (swap("T01:04:05Z", "T01:04:05+00:00"), "signed-at"),
            (swap("T01:04:05Z", "T01:04:05z"), "signed-at"),
            (swap("T01:04:05Z", "t01:04:05Z"), "signed-at"),
            (swap("2026-02-03T", "2026-02-30T"), "signed-at"),
            (
                swap(r#","terminal":"counter-01""#, ""),
                "missing key \"terminal\"",
            ),
            (
                swap(r#""items":["address","name"],"#, ""),
                "missing key \"items\"",
            ),
            (
                swap(r#""terminal""#, r#""terminals""#),
                "unknown key \"terminals\"",
            ),
            (
                swap(r#"{"items""#, r#"{"extra":1,"items""#),
                "unknown key \"extra\"",
            ),
            (
                swap(
                    r#","terminal":"counter-01""#,
                    r#","terminal":"counter-01","terminal":"counter-01""#,
                ),
                "duplicate key \"terminal\"",
            ),
            (format!("[{DOCUMENT}]"), "JSON object"),
            ("".to_owned(), "JSON"),
            ("{".to_owned(), "JSON"),
            (format!("{DOCUMENT}{DOCUMENT}"), "JSON"),
            (" ".repeat(MAX_DOCUMENT_BYTES + 1), "at most 4096"),
        ];
        for (text, says) in cases {
            match ConsentDocument::parse_canonical(&text) {
                Err(TermsError::DocumentForm(msg)) => {
                    assert!(
                        msg.contains(says),
                        "{text:?}: {msg:?} does not say {says:?}"
                    )
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    fn arb_text() -> impl Strategy<Value = String> {
        // Printable text of any script, within the byte limit.
        "[^\\p{Cc}]{1,80}".prop_filter("at most 256 bytes", |s| s.len() <= MAX_TEXT_BYTES)
    }

    proptest! {
        #[test]
        fn consent_document_001_4_1_any_valid_document_round_trips_and_is_plain_json(
            bits in 1u8..8,
            withdrawal in any::<bool>(),
            seconds in 0i64..253_402_300_799,
            offset_minutes in -(23 * 60)..=(23 * 60i32),
            terminal in arb_text(),
            reference in proptest::option::of(arb_text()),
            serial in "[1-9A-F][0-9A-F]([0-9A-F]{2}){0,19}",
        ) {
            let names: Vec<&str> = ConsentItem::ALL
                .into_iter()
                .filter(|i| bits & i.bit() != 0)
                .map(ConsentItem::as_str)
                .collect();
            let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            let signed_at = OffsetDateTime::from_unix_timestamp(seconds).unwrap();
            let Some(signed_at) = signed_at.checked_to_offset(offset) else {
                return Ok(());
            };
            let doc = ConsentDocument {
                kind: if withdrawal { DocumentKind::Withdrawal } else { DocumentKind::Consent },
                items: ConsentItems::parse(&names).unwrap(),
                service: ONE_STOP_SERVICE.to_owned(),
                signed_at,
                terminal,
                serial,
                reference,
            };
            let json = doc.to_canonical_json().unwrap();
            prop_assert_eq!(&ConsentDocument::parse_canonical(&json).unwrap(), &doc);
            // The same text read as ordinary JSON gives the same fields.
            let value: serde_json::Value = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(value["terminal"].as_str(), Some(doc.terminal.as_str()));
            prop_assert_eq!(value["reference"].as_str(), doc.reference.as_deref());
            prop_assert_eq!(value["items"].as_array().map(Vec::len), Some(names.len()));
        }

        #[test]
        fn consent_document_001_4_1_parse_canonical_never_panics(s in "\\PC{0,300}") {
            let _ = ConsentDocument::parse_canonical(&s);
        }
    }
}
