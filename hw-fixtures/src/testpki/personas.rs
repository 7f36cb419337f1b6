//! The persona catalogue (`PERSONAS.md`) and the files of one persona directory.

use x509_cert::time::Time;

use super::cardfiles::{self, BasicFour, TokenLabel};
use super::holder::{self, Date};
use super::keys::{SigAlg, TestKey};
use super::names::Purpose;
use super::persona_toml;
use super::pki::{self, EeParams, Gen, Hierarchy, SignSubject};
use super::x509::{self, SanAttributes};
use super::{Files, TestPkiError};

/// `expect.at`: 2026-11-18T07:33:20Z, inside every "valid" certificate and after the revocation.
pub const EXPECT_AT: u64 = 1_795_000_000;
/// Size certificate EFs are padded to (with `FF`) on the personas that pad.
pub const CERT_EF_SIZE: usize = 2048;
/// Text-AP issuer key id (EF 0004 first 16 bytes).
pub const TEXTAP_ISSUER_ID: [u8; 16] = *b"TESTPKI-TXTAP-01";

/// Outcome of the signing certificate at `expect.at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignState {
    /// Within validity, not revoked.
    Valid,
    /// notAfter in 2025.
    Expired,
    /// On `sign_g2.crl`, reason affiliationChanged.
    Revoked,
}

/// The signing certificate of a persona.
#[derive(Clone, Debug)]
pub struct SignCert {
    /// Issuing root generation.
    pub generation: Gen,
    /// Serial.
    pub serial: [u8; 4],
    /// Validity outcome.
    pub state: SignState,
    /// Address in the certificate when it differs from the card (`moved`), with its two L.
    pub moved_to: Option<(&'static str, &'static str, &'static str)>,
    /// 氏名の代替文字 and 住所の代替文字 SAN values.
    pub substitutes: (&'static str, &'static str),
}

/// One persona.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Directory name.
    pub name: &'static str,
    /// `description`.
    pub description: &'static str,
    /// Small number that makes serials, keys and My Number unique.
    pub idx: u8,
    /// 氏名.
    pub holder_name: &'static str,
    /// 住所 on the card (text AP).
    pub address: &'static str,
    /// Romanised prefecture and municipality of `address` (subject L, L).
    pub locality: (&'static str, &'static str),
    /// 生年月日.
    pub birth: Date,
    /// 性別 digit.
    pub sex: &'static str,
    /// Signing certificate (`None`: under 15).
    pub sign: Option<SignCert>,
    /// Generation of the auth certificate's issuer.
    pub auth_gen: Gen,
    /// EF 0006 label.
    pub label: TokenLabel,
    /// ATR override (hex).
    pub atr: Option<&'static str>,
    /// JPKI AP present.
    pub jpki_ap: bool,
    /// Text AP present.
    pub text_ap: bool,
    /// SFI forms accepted.
    pub sfi: bool,
    /// Extended-length APDUs accepted.
    pub extended: bool,
    /// EF 000A needs VERIFY 0018 (Android token).
    pub auth_cert_requires_pin: bool,
    /// Tries left on 001B and 0018.
    pub remaining: (u8, u8),
    /// Pad certificate EFs to [`CERT_EF_SIZE`] with `FF`.
    pub pad: bool,
    /// certificatePolicies critical.
    pub policies_critical: bool,
}

fn d(y: u16, m: u8, d: u8) -> Date {
    Date { y, m, d }
}

fn base(name: &'static str, idx: u8, description: &'static str) -> Spec {
    Spec {
        name,
        description,
        idx,
        holder_name: "試験　太郎",
        address: "東京都千代田区霞が関二丁目１番２号",
        locality: ("Tokyo-to", "Chiyoda-ku"),
        birth: d(1990, 1, 2),
        sex: "1",
        sign: Some(SignCert {
            generation: Gen::G2,
            serial: [0x1A, 0x2B, 0x3C, idx],
            state: SignState::Valid,
            moved_to: None,
            substitutes: ("", ""),
        }),
        auth_gen: Gen::G2,
        label: TokenLabel::Card,
        atr: None,
        jpki_ap: true,
        text_ap: true,
        sfi: true,
        extended: true,
        auth_cert_requires_pin: false,
        remaining: (5, 3),
        pad: false,
        policies_critical: false,
    }
}

/// Applies `f` to the signing certificate, if any.
fn with_sign(mut s: Spec, f: impl FnOnce(&mut SignCert)) -> Spec {
    if let Some(c) = s.sign.as_mut() {
        f(c);
    }
    s
}

/// All personas, in `PERSONAS.md` order.
pub fn catalogue() -> Vec<Spec> {
    let mut v = Vec::new();
    v.push(base(
        "ordinary",
        1,
        "ordinary holder: valid sign and auth certificates from generation g2",
    ));

    let mut s = base(
        "moved",
        2,
        "holder moved: the sign certificate (issued by g1) still carries the old address",
    );
    s.holder_name = "試験　次郎";
    s.address = "神奈川県横浜市中区日本大通１番地";
    s.locality = ("Kanagawa-ken", "Yokohama-shi");
    s.birth = d(1985, 6, 15);
    s.auth_gen = Gen::G1;
    s.policies_critical = true;
    v.push(with_sign(s, |c| {
        c.generation = Gen::G1;
        c.serial = [0x90, 0x00, 0x00, 0x02];
        c.moved_to = Some((
            "東京都新宿区西新宿二丁目８番１号",
            "Tokyo-to",
            "Shinjuku-ku",
        ));
    }));

    let mut s = base(
        "expired",
        3,
        "sign certificate expired on 2025-03-31; auth certificate valid",
    );
    s.holder_name = "試験　花子";
    s.sex = "2";
    s.birth = d(1972, 3, 4);
    v.push(with_sign(s, |c| {
        c.serial = [0x0F, 0x00, 0x00, 0x03];
        c.state = SignState::Expired;
    }));

    let mut s = base(
        "revoked",
        4,
        "sign certificate revoked (affiliationChanged) on sign_g2.crl; certificate EFs FF-padded",
    );
    s.holder_name = "試験　三郎";
    s.birth = d(1995, 12, 31);
    s.pad = true;
    v.push(with_sign(s, |c| {
        c.serial = [0xC0, 0x00, 0x00, 0x04];
        c.state = SignState::Revoked;
    }));

    let mut s = base(
        "blocked",
        5,
        "sign password blocked (0 tries), one auth PIN try left; sign certificate from g1",
    );
    s.holder_name = "試験　四郎";
    s.birth = d(1960, 8, 8);
    s.remaining = (0, 1);
    v.push(with_sign(s, |c| {
        c.generation = Gen::G1;
        c.serial = [0x30, 0x00, 0x00, 0x05];
    }));

    let mut s = base(
        "under15",
        6,
        "holder under 15: no sign certificate (EF 0008 = 00 8F 00)",
    );
    s.holder_name = "試験　さくら";
    s.sex = "2";
    s.birth = d(2015, 5, 5);
    s.address = "大阪府大阪市北区中之島一丁目３番２０号";
    s.locality = ("Osaka-fu", "Osaka-shi");
    s.sign = None;
    v.push(s);

    let mut s = base(
        "android",
        7,
        "Android smartphone token: GPSE label, EF 000A needs the auth PIN, no text AP",
    );
    s.holder_name = "試験　五郎";
    s.birth = d(2000, 2, 29);
    s.label = TokenLabel::Android;
    s.text_ap = false;
    s.auth_cert_requires_pin = true;
    v.push(with_sign(s, |c| c.serial = [0xA0, 0x00, 0x00, 0x07]));

    let mut s = base(
        "iphone",
        8,
        "iPhone smartphone token: IOS label, no text AP",
    );
    s.holder_name = "試験　六子";
    s.sex = "2";
    s.birth = d(1999, 9, 9);
    s.label = TokenLabel::Iphone;
    s.text_ap = false;
    v.push(with_sign(s, |c| c.serial = [0x60, 0x00, 0x00, 0x08]));

    let mut s = base(
        "long-address",
        9,
        "long address: EF 0002 outer length > 127 (81 xx form), file < 256 bytes",
    );
    s.holder_name = "試験　長住";
    s.address = "北海道虻田郡洞爺湖町洞爺湖温泉１４２番地５　試験ハイツ洞爺湖温泉レイクサイドテラス第二号棟１２３４号室";
    s.locality = ("Hokkaido", "Abuta-gun Toyako-cho");
    s.birth = d(1980, 11, 30);
    s.pad = true;
    v.push(with_sign(s, |c| c.serial = [0xE0, 0x00, 0x00, 0x09]));

    let mut s = base(
        "substitute-chars",
        10,
        "name and address with characters outside JIS X 0208; SAN carries 代替文字 values",
    );
    s.holder_name = "𠮷田　試子";
    s.sex = "2";
    s.address = "東京都葛飾区髙砂一丁目２番３号";
    s.locality = ("Tokyo-to", "Katsushika-ku");
    s.birth = d(1988, 4, 1);
    s.pad = true;
    s.policies_critical = true;
    v.push(with_sign(s, |c| {
        c.serial = [0x50, 0x00, 0x00, 0x0A];
        c.substitutes = ("吉田　試子", "東京都葛飾区高砂一丁目２番３号");
    }));

    let mut s = base("not-jpki", 11, "a smart card without the JPKI and text APs");
    s.atr = Some("3B021450");
    s.jpki_ap = false;
    s.text_ap = false;
    s.sign = None;
    v.push(s);

    let mut s = base(
        "no-sfi",
        12,
        "card that rejects SFI forms (6A86); born on the last day of Showa",
    );
    s.holder_name = "試験　七郎";
    s.birth = d(1989, 1, 7);
    s.sfi = false;
    v.push(with_sign(s, |c| c.serial = [0x80, 0x00, 0x00, 0x0C]));

    let mut s = base(
        "no-extended",
        13,
        "card without extended-length APDUs (6700); born on the first day of Heisei; EFs FF-padded",
    );
    s.holder_name = "試験　八子";
    s.sex = "2";
    s.birth = d(1989, 1, 8);
    s.extended = false;
    s.pad = true;
    v.push(with_sign(s, |c| c.serial = [0x0D, 0x00, 0x00, 0x0D]));
    v
}

/// Validity of ordinary end-entity certificates.
pub fn current_validity() -> Result<(Time, Time), TestPkiError> {
    Ok((
        x509::utc(2025, 4, 1, 0, 0, 0)?,
        x509::utc(2030, 3, 31, 14, 59, 59)?,
    ))
}

fn expired_validity() -> Result<(Time, Time), TestPkiError> {
    Ok((
        x509::utc(2020, 4, 1, 0, 0, 0)?,
        x509::utc(2025, 3, 31, 14, 59, 59)?,
    ))
}

/// SAN attributes of a signing certificate for a holder at `address`.
pub fn san_for(
    spec: &Spec,
    address: &str,
    subs: (&str, &str),
) -> Result<SanAttributes, TestPkiError> {
    Ok(SanAttributes {
        name: spec.holder_name.to_owned(),
        name_alt: subs.0.to_owned(),
        sex: spec.sex.to_owned(),
        birth: spec.birth.era_yyyymmdd()?,
        address: address.to_owned(),
        address_alt: subs.1.to_owned(),
    })
}

/// The synthetic My Number of persona `idx` (prefix 9999 marks test data).
pub fn my_number(idx: u8) -> Result<String, TestPkiError> {
    holder::my_number(&format!("9999000{idx:04}"))
}

/// Everything the files of one persona were made from that other files need (CRL entries).
#[derive(Clone, Debug)]
pub struct Made {
    /// The persona's sign serial when revoked.
    pub revoked_serial: Option<[u8; 4]>,
}

/// Writes the files of one persona into `files` under `personas/<name>/`.
pub fn persona_files(
    spec: &Spec,
    h: &Hierarchy,
    textap_issuer: &TestKey,
    files: &mut Files,
) -> Result<Made, TestPkiError> {
    let dir = format!("personas/{}", spec.name);
    let mut made = Made {
        revoked_serial: None,
    };
    let pad = spec.pad.then_some(CERT_EF_SIZE);
    let current = current_validity()?;
    if spec.jpki_ap {
        if let Some(sign) = &spec.sign {
            let key = TestKey::rsa(&format!("persona-{}-sign", spec.name))?;
            let (address, pref, muni) =
                sign.moved_to
                    .unwrap_or((spec.address, spec.locality.0, spec.locality.1));
            let subject = SignSubject {
                prefecture: pref.to_owned(),
                municipality: muni.to_owned(),
                cn: format!("20250401093000{:05}TW001", spec.idx),
                san: san_for(spec, address, sign.substitutes)?,
            };
            let validity = match sign.state {
                SignState::Expired => expired_validity()?,
                _ => current,
            };
            if sign.state == SignState::Revoked {
                made.revoked_serial = Some(sign.serial);
            }
            let root = h.root(Purpose::Sign, sign.generation);
            let params = EeParams {
                serial: sign.serial,
                key: &key,
                validity,
                policies_critical: spec.policies_critical,
                alg: SigAlg::RsaSha256,
            };
            let der = pki::sign_ee(root, &subject, params)?;
            files.insert(format!("{dir}/jpki/0001.bin"), cardfiles::ff_pad(der, pad));
            files.insert(format!("{dir}/keys/sign.pk8.der"), key.pkcs8_der()?);
        }
        let sign_ca = h.root(
            Purpose::Sign,
            spec.sign.as_ref().map_or(Gen::G2, |s| s.generation),
        );
        files.insert(
            format!("{dir}/jpki/0002.bin"),
            cardfiles::ff_pad(sign_ca.der.clone(), pad),
        );

        let key = TestKey::rsa(&format!("persona-{}-auth", spec.name))?;
        let root = h.root(Purpose::Auth, spec.auth_gen);
        let hi = if spec.idx.is_multiple_of(2) {
            0xA5
        } else {
            0x25
        };
        let params = EeParams {
            serial: [hi, 0x5A, 0x00, spec.idx],
            key: &key,
            validity: current,
            policies_critical: spec.policies_critical,
            alg: SigAlg::RsaSha256,
        };
        let der = pki::auth_ee(root, &format!("20250401093500{:05}TW001", spec.idx), params)?;
        files.insert(format!("{dir}/jpki/000A.bin"), cardfiles::ff_pad(der, pad));
        files.insert(
            format!("{dir}/jpki/000B.bin"),
            cardfiles::ff_pad(root.der.clone(), pad),
        );
        files.insert(format!("{dir}/keys/auth.pk8.der"), key.pkcs8_der()?);
        files.insert(
            format!("{dir}/jpki/0006.bin"),
            cardfiles::token_info(spec.label, &format!("TESTCARD{:08}", spec.idx)),
        );
        files.insert(
            format!("{dir}/jpki/0008.bin"),
            cardfiles::cert_availability(spec.sign.is_some(), true),
        );
    }
    if spec.text_ap {
        let card_key = TestKey::rsa(&format!("persona-{}-textap", spec.name))?;
        let ef1 = cardfiles::my_number_ef(&my_number(spec.idx)?)?;
        let ef2 = cardfiles::basic_four_ef(&basic_four(spec))?;
        let ef3 = cardfiles::integrity_ef(&ef1, &ef2, &card_key)?;
        let holder_id = holder_key_id(spec.idx)?;
        let ef4 =
            cardfiles::cv_certificate(&TEXTAP_ISSUER_ID, &holder_id, &card_key, textap_issuer)?;
        let ef5 = cardfiles::ap_basic_info(&holder_id)?;
        for (n, data) in [(1, ef1), (2, ef2), (3, ef3), (4, ef4), (5, ef5)] {
            files.insert(format!("{dir}/text/000{n}.bin"), data);
        }
        files.insert(format!("{dir}/keys/textap.pk8.der"), card_key.pkcs8_der()?);
    }
    files.insert(
        format!("{dir}/persona.toml"),
        persona_toml::render(spec)?.into_bytes(),
    );
    Ok(made)
}

/// The basic four as the card's text AP holds them.
pub fn basic_four(spec: &Spec) -> BasicFour {
    BasicFour {
        name: spec.holder_name.to_owned(),
        address: spec.address.to_owned(),
        birth: spec.birth.yyyymmdd(),
        sex: spec.sex.to_owned(),
    }
}

fn holder_key_id(idx: u8) -> Result<[u8; 16], TestPkiError> {
    let id = format!("TXTAP-CARD-{idx:05}");
    id.as_bytes()
        .try_into()
        .map_err(|_| TestPkiError::Layout("holder key id"))
}
