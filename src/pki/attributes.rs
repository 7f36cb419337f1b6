//! The basic four (基本4情報) inside the signing certificate's subjectAltName, and their
//! comparison with the values read from the card's text AP (DESIGN §1, `MatchAttributes`).
//! Values are personal data: held in `Zeroizing<String>`, never printed by `Debug`.

use std::fmt;

use x509_parser::prelude::*;
use zeroize::Zeroizing;

use super::derwalk;

const OID_NAME: &str = "1.2.392.200149.8.5.5.1";
const OID_NAME_ALT: &str = "1.2.392.200149.8.5.5.2";
const OID_SEX: &str = "1.2.392.200149.8.5.5.3";
const OID_BIRTH: &str = "1.2.392.200149.8.5.5.4";
const OID_ADDRESS: &str = "1.2.392.200149.8.5.5.5";
const OID_ADDRESS_ALT: &str = "1.2.392.200149.8.5.5.6";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    #[error("certificate cannot be parsed")]
    Certificate,
    #[error("no subjectAltName")]
    NoSubjectAltName,
    #[error("attribute {0} missing")]
    Missing(&'static str),
    #[error("attribute {0} appears more than once")]
    Duplicate(&'static str),
    #[error("attribute {0} is not an [0] EXPLICIT UTF8String")]
    Encoding(&'static str),
    #[error("birth date is not EYYYYMMDD with a real date")]
    BirthDate,
    #[error("era digit {era} does not match the date")]
    Era { era: u8 },
    #[error("sex is not one ISO 5218 digit")]
    Sex,
}

/// Japanese era of a birth date (the first digit of `EYYYYMMDD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Meiji = 1,
    Taisho = 2,
    Showa = 3,
    Heisei = 4,
    Reiwa = 5,
}

impl Era {
    /// The era a Gregorian date `YYYYMMDD` falls in (as a number, e.g. 19890108).
    pub fn of(yyyymmdd: u32) -> Option<Era> {
        // 明治 starts 1868-01-25 (Gregorian); earlier dates have no era digit.
        let bounds = [
            (18680124, None),
            (19120729, Some(Era::Meiji)),
            (19261224, Some(Era::Taisho)),
            (19890107, Some(Era::Showa)),
            (20190430, Some(Era::Heisei)),
        ];
        bounds
            .iter()
            .find(|(last, _)| yyyymmdd <= *last)
            .map_or(Some(Era::Reiwa), |(_, era)| *era)
    }
}

/// A date of birth: era digit checked against the Gregorian date.
#[derive(Clone, PartialEq, Eq)]
pub struct BirthDate {
    pub era: Era,
    /// `YYYYMMDD`.
    pub date: Zeroizing<String>,
}

impl fmt::Debug for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BirthDate(<redacted>)")
    }
}

impl BirthDate {
    /// Parse `EYYYYMMDD`.
    pub fn parse(s: &str) -> Result<BirthDate, AttributeError> {
        let b = s.as_bytes();
        if b.len() != 9 || !b.iter().all(u8::is_ascii_digit) {
            return Err(AttributeError::BirthDate);
        }
        let date = &s[1..];
        let n: u32 = date.parse().map_err(|_| AttributeError::BirthDate)?;
        let (y, m, d) = (
            i64::from(n / 10000),
            i64::from(n / 100 % 100),
            i64::from(n % 100),
        );
        if !(1..=12).contains(&m) || d < 1 || d > derwalk::days_in_month(y, m) {
            return Err(AttributeError::BirthDate);
        }
        let era_digit = b[0] - b'0';
        let era = Era::of(n).ok_or(AttributeError::BirthDate)?;
        if era as u8 != era_digit {
            return Err(AttributeError::Era { era: era_digit });
        }
        Ok(BirthDate {
            era,
            date: Zeroizing::new(date.to_owned()),
        })
    }
}

/// The basic four from the signing certificate. 代替文字 entries are kept apart and never used
/// for matching.
#[derive(Clone)]
pub struct CertAttributes {
    pub name: Zeroizing<String>,
    pub address: Zeroizing<String>,
    pub birth_date: BirthDate,
    /// ISO 5218 digit: 1 male, 2 female, 9 not applicable (0 not known).
    pub sex: Zeroizing<String>,
    pub name_substitute: Option<Zeroizing<String>>,
    pub address_substitute: Option<Zeroizing<String>>,
}

impl fmt::Debug for CertAttributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAttributes")
            .field("values", &"<redacted>")
            .field("name_substitute", &self.name_substitute.is_some())
            .field("address_substitute", &self.address_substitute.is_some())
            .finish()
    }
}

/// `[0] EXPLICIT UTF8String` as x509-parser hands it over (with the `[0]` wrapper).
fn utf8_other_name(raw: &[u8], what: &'static str) -> Result<Zeroizing<String>, AttributeError> {
    let err = AttributeError::Encoding(what);
    let (wrap, rest) = derwalk::expect(raw, 0xA0).map_err(|_| err.clone())?;
    let (s, inner_rest) = derwalk::expect(wrap.content, 0x0C).map_err(|_| err.clone())?;
    if !rest.is_empty() || !inner_rest.is_empty() {
        return Err(err);
    }
    let s = std::str::from_utf8(s.content).map_err(|_| err)?;
    Ok(Zeroizing::new(s.to_owned()))
}

/// Read the basic four from a signing certificate (DER).
pub fn from_certificate(der: &[u8]) -> Result<CertAttributes, AttributeError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| AttributeError::Certificate)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| AttributeError::Certificate)?
        .ok_or(AttributeError::NoSubjectAltName)?;
    let mut slots: [(&str, &'static str, Option<Zeroizing<String>>); 6] = [
        (OID_NAME, "name", None),
        (OID_NAME_ALT, "name substitute", None),
        (OID_SEX, "sex", None),
        (OID_BIRTH, "birth date", None),
        (OID_ADDRESS, "address", None),
        (OID_ADDRESS_ALT, "address substitute", None),
    ];
    for gn in &san.value.general_names {
        let GeneralName::OtherName(oid, raw) = gn else {
            continue;
        };
        let oid = oid.to_id_string();
        if let Some(slot) = slots.iter_mut().find(|s| s.0 == oid) {
            if slot.2.is_some() {
                return Err(AttributeError::Duplicate(slot.1));
            }
            slot.2 = Some(utf8_other_name(raw, slot.1)?);
        }
    }
    let [name, name_alt, sex, birth, address, address_alt] = slots.map(|s| (s.1, s.2));
    let need = |(what, v): (&'static str, Option<Zeroizing<String>>)| {
        v.ok_or(AttributeError::Missing(what))
    };
    let sex = need(sex)?;
    if sex.len() != 1 || !matches!(sex.as_bytes()[0], b'0' | b'1' | b'2' | b'9') {
        return Err(AttributeError::Sex);
    }
    let birth = need(birth)?;
    let non_empty = |v: Option<Zeroizing<String>>| v.filter(|s| !s.is_empty());
    Ok(CertAttributes {
        name: need(name)?,
        address: need(address)?,
        birth_date: BirthDate::parse(&birth)?,
        sex,
        name_substitute: non_empty(name_alt.1),
        address_substitute: non_empty(address_alt.1),
    })
}

/// The basic four as the text AP gives them (birth date `YYYYMMDD`, sex one digit).
#[derive(Clone)]
pub struct TextApFour {
    pub name: Zeroizing<String>,
    pub address: Zeroizing<String>,
    pub birth_date: Zeroizing<String>,
    pub sex: Zeroizing<String>,
}

impl fmt::Debug for TextApFour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TextApFour(<redacted>)")
    }
}

/// Result for one attribute: exact equality, and whether they would be equal after
/// [`normalise`] (a hint for staff, never a match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeMatch {
    pub exact: bool,
    pub after_normalisation: bool,
}

impl AttributeMatch {
    fn of(a: &str, b: &str) -> Self {
        let exact = a == b;
        AttributeMatch {
            exact,
            after_normalisation: exact || *normalise(a) == *normalise(b),
        }
    }
}

/// Comparison report; contains no attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    pub name: AttributeMatch,
    pub address: AttributeMatch,
    pub birth_date: AttributeMatch,
    pub sex: AttributeMatch,
    /// The certificate carries 氏名の代替文字 (non-empty).
    pub name_substitute_present: bool,
    /// The certificate carries 住所の代替文字 (non-empty).
    pub address_substitute_present: bool,
}

impl Comparison {
    /// All four equal exactly.
    pub fn all_exact(&self) -> bool {
        self.name.exact && self.address.exact && self.birth_date.exact && self.sex.exact
    }
}

/// Compare certificate attributes with the text AP's values, attribute by attribute.
pub fn compare(cert: &CertAttributes, text: &TextApFour) -> Comparison {
    Comparison {
        name: AttributeMatch::of(&cert.name, &text.name),
        address: AttributeMatch::of(&cert.address, &text.address),
        birth_date: AttributeMatch::of(&cert.birth_date.date, &text.birth_date),
        sex: AttributeMatch::of(&cert.sex, &text.sex),
        name_substitute_present: cert.name_substitute.is_some(),
        address_substitute_present: cert.address_substitute.is_some(),
    }
}

/// Fold full-width ASCII (U+FF01–FF5E) to ASCII, U+3000 to U+0020, collapse runs of spaces and
/// trim. Used only for the "would match after normalisation" hint.
pub fn normalise(s: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(s.len()));
    let mut last_space = true;
    for c in s.chars() {
        let c = match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        };
        if c == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras() {
        assert_eq!(BirthDate::parse("419900102").unwrap().era, Era::Heisei);
        assert_eq!(BirthDate::parse("520200102").unwrap().era, Era::Reiwa);
        assert_eq!(BirthDate::parse("319890107").unwrap().era, Era::Showa);
        assert_eq!(BirthDate::parse("419890108").unwrap().era, Era::Heisei);
        assert_eq!(BirthDate::parse("420190430").unwrap().era, Era::Heisei);
        assert_eq!(BirthDate::parse("520190501").unwrap().era, Era::Reiwa);
        assert_eq!(BirthDate::parse("119120729").unwrap().era, Era::Meiji);
        assert_eq!(BirthDate::parse("219120730").unwrap().era, Era::Taisho);
        assert_eq!(BirthDate::parse("219261224").unwrap().era, Era::Taisho);
        assert_eq!(BirthDate::parse("319261225").unwrap().era, Era::Showa);
        assert_eq!(
            BirthDate::parse("319890108"),
            Err(AttributeError::Era { era: 3 })
        );
        assert_eq!(
            BirthDate::parse("419900230"),
            Err(AttributeError::BirthDate)
        );
        assert_eq!(BirthDate::parse("41990010"), Err(AttributeError::BirthDate));
        assert_eq!(
            BirthDate::parse("4199001０2"),
            Err(AttributeError::BirthDate)
        );
    }

    #[test]
    fn normalisation() {
        assert_eq!(&*normalise("試験　太郎"), "試験 太郎");
        assert_eq!(&*normalise("１２３ＡＢＣ"), "123ABC");
        assert_eq!(&*normalise("  a   b  "), "a b");
        let m = AttributeMatch::of("霞が関二丁目１番２号", "霞が関二丁目1番2号");
        assert!(!m.exact && m.after_normalisation);
        let m = AttributeMatch::of("a", "b");
        assert!(!m.exact && !m.after_normalisation);
    }
}
