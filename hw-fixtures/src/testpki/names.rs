//! Distinguished names, built attribute by attribute in X.501 order.
//!
//! `Name::from_str` takes RFC 4514 (reversed) order and picks string types itself; building the
//! RDN sequence by hand keeps the order and the string type (PrintableString for ASCII,
//! UTF8String for Japanese) explicit.

use der::Any;
use der::asn1::{ObjectIdentifier, PrintableStringRef, SetOfVec, Utf8StringRef};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use super::TestPkiError;

/// id-at-countryName.
pub const C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
/// id-at-organizationName.
pub const O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
/// id-at-organizationalUnitName.
pub const OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
/// id-at-localityName.
pub const L: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.7");
/// id-at-commonName.
pub const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// One attribute value and the string type it is encoded with.
#[derive(Clone, Copy, Debug)]
pub enum Str<'a> {
    /// PrintableString (ASCII names, as in the production roots).
    Printable(&'a str),
    /// UTF8String (Japanese text).
    Utf8(&'a str),
}

/// Builds a Name with one attribute per RDN, in the order given (X.501 order, country first).
pub fn name(attrs: &[(ObjectIdentifier, Str<'_>)]) -> Result<Name, TestPkiError> {
    let mut rdns = Vec::with_capacity(attrs.len());
    for (oid, value) in attrs {
        let value = match value {
            Str::Printable(s) => Any::encode_from(&PrintableStringRef::new(s)?)?,
            Str::Utf8(s) => Any::encode_from(&Utf8StringRef::new(s)?)?,
        };
        let atv = AttributeTypeAndValue { oid: *oid, value };
        rdns.push(RelativeDistinguishedName(SetOfVec::try_from(vec![atv])?));
    }
    Ok(RdnSequence(rdns))
}

/// Purpose of a JPKI hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// 署名用 (digital signature, EF 0001/0002).
    Sign,
    /// 利用者証明用 (user authentication, EF 000A/000B).
    Auth,
}

impl Purpose {
    /// Lower-case file-name stem: `sign` or `auth`.
    pub fn stem(self) -> &'static str {
        match self {
            Purpose::Sign => "sign",
            Purpose::Auth => "auth",
        }
    }
}

/// Root DN: the production shape with `O=JPKI-TESTPKI`, shared by all generations.
pub fn root_dn(purpose: Purpose) -> Result<Name, TestPkiError> {
    let ou = match purpose {
        Purpose::Sign => "JPKI for digital signature",
        Purpose::Auth => "JPKI for user authentication",
    };
    name(&[
        (C, Str::Printable("JP")),
        (O, Str::Printable("JPKI-TESTPKI")),
        (OU, Str::Printable(ou)),
        (
            OU,
            Str::Printable("Japan Agency for Local Authority Information Systems"),
        ),
    ])
}

/// The root's subjectAltName directoryName (UTF-8 Japanese, marked as a test service).
pub fn root_alt_dn(purpose: Purpose) -> Result<Name, TestPkiError> {
    let ou = match purpose {
        Purpose::Sign => "公的個人認証サービス署名用（試験）",
        Purpose::Auth => "公的個人認証サービス利用者証明用（試験）",
    };
    name(&[
        (C, Str::Printable("JP")),
        (O, Str::Utf8("公的個人認証サービス（試験）")),
        (OU, Str::Utf8(ou)),
        (OU, Str::Utf8("地方公共団体情報システム機構（試験）")),
    ])
}
