//! Basic four from the signing certificate's SAN and the comparison with text-AP values.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use jpkid::pki::attributes::{self, AttributeError, Era, TextApFour};
use zeroize::Zeroizing;

fn text(name: &str, address: &str, birth: &str, sex: &str) -> TextApFour {
    TextApFour {
        name: Zeroizing::new(name.into()),
        address: Zeroizing::new(address.into()),
        birth_date: Zeroizing::new(birth.into()),
        sex: Zeroizing::new(sex.into()),
    }
}

#[test]
fn reads_the_four_and_compares_exactly() {
    let a = attributes::from_certificate(&pki_support::read("sign_ok.der")).unwrap();
    assert_eq!(&*a.name, "試験　太郎");
    assert_eq!(&*a.address, "東京都千代田区霞が関二丁目１番２号");
    assert_eq!(a.birth_date.era, Era::Heisei);
    assert_eq!(&*a.birth_date.date, "19900102");
    assert_eq!(&*a.sex, "1");
    assert!(a.name_substitute.is_none() && a.address_substitute.is_none());
    let dbg = format!("{a:?}");
    assert!(!dbg.contains("太郎") && !dbg.contains("1990"), "{dbg}");

    let same = text(
        "試験　太郎",
        "東京都千代田区霞が関二丁目１番２号",
        "19900102",
        "1",
    );
    let c = attributes::compare(&a, &same);
    assert!(c.all_exact());

    // Half-width digits and an ASCII space: not a match, but a normalisation hint.
    let near = text(
        "試験 太郎",
        "東京都千代田区霞が関二丁目1番2号",
        "19900102",
        "2",
    );
    let c = attributes::compare(&a, &near);
    assert!(!c.all_exact());
    assert!(!c.name.exact && c.name.after_normalisation);
    assert!(!c.address.exact && c.address.after_normalisation);
    assert!(c.birth_date.exact);
    assert!(!c.sex.exact && !c.sex.after_normalisation);
}

#[test]
fn substitute_characters_are_reported_not_used() {
    let a = attributes::from_certificate(&pki_support::read("sign_noncrit.der")).unwrap();
    assert_eq!(a.birth_date.era, Era::Reiwa);
    assert!(a.name_substitute.is_some() && a.address_substitute.is_some());
    let c = attributes::compare(&a, &text("試験　花子", "大阪府大阪市北区", "20200102", "2"));
    assert!(c.all_exact());
    assert!(c.name_substitute_present && c.address_substitute_present);
}

#[test]
fn certificates_without_the_four() {
    assert_eq!(
        attributes::from_certificate(&pki_support::read("auth_ok.der")).unwrap_err(),
        AttributeError::NoSubjectAltName
    );
    assert_eq!(
        attributes::from_certificate(b"junk").unwrap_err(),
        AttributeError::Certificate
    );
}
