//! The persona catalogue (`PERSONAS.md`) and the files of one persona directory.

use x509_cert::time::Time;

use super::cardca::{self, CardCas};
use super::cardfiles::{self, BasicFour, TokenLabel};
use super::holder::{self, Date};
use super::images;
use super::keys::{SigAlg, TestKey};
use super::names::Purpose;
use super::persona_toml;
use super::pki::{self, EeParams, Gen, Hierarchy, SignSubject};
use super::visual::{self, FaceData};
use super::x509::{self, SanAttributes};
use super::{Files, TestPkiError};

/// `expect.at`: 2026-11-18T07:33:20Z, inside every "valid" certificate and after the revocation.
pub const EXPECT_AT: u64 = 1_795_000_000;
/// Size certificate EFs are padded to (with `FF`) on the personas that pad.
pub const CERT_EF_SIZE: usize = 2048;
/// Day every physical card of the catalogue was issued (start of its validity).
pub const CARD_ISSUED: Date = Date {
    y: 2025,
    m: 4,
    d: 1,
};

/// The visual AP of a persona.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visual {
    /// No visual AP (SELECT answers 6A82): smartphone tokens, the non-JPKI card.
    Absent,
    /// Genuine: CV certificate by the visual-AP card CA, face data as signed, own card key.
    Genuine,
    /// The photo (DF27) was replaced after DF28 was made.
    FaceAltered,
    /// EF 0004 issued by the card CA key that `card_ca/` does not hold.
    UnconfiguredCa,
    /// Every visual EF copied from the named persona, with a card key of its own.
    ClonedFrom(&'static str),
}

/// Who issued the text AP's CV certificate (EF 0004).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextCv {
    /// The text-AP card CA of `card_ca/`.
    CardCa,
    /// The text AP's own key (issuer id = holder id).
    SelfSigned,
}

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
    /// The visual AP.
    pub visual: Visual,
    /// Issuer of the text AP's CV certificate.
    pub text_cv: TextCv,
    /// EF 0001 (and EF 0002) are the named persona's files, while EF 001A is this persona's own
    /// key (`forged`). `sign` must then describe the copied certificate.
    pub sign_copied_from: Option<&'static str>,
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
        visual: Visual::Genuine,
        text_cv: TextCv::CardCa,
        sign_copied_from: None,
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
    s.visual = Visual::Absent;
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
    s.visual = Visual::Absent;
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
    s.visual = Visual::Absent;
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

    let mut s = base(
        "face-altered",
        14,
        "visual AP: the face photo (DF27) was replaced after the card-face signature was made",
    );
    s.holder_name = "試験　改子";
    s.sex = "2";
    s.birth = d(1975, 7, 20);
    s.visual = Visual::FaceAltered;
    v.push(with_sign(s, |c| c.serial = [0x4F, 0xAC, 0xE0, 0x0E]));

    let mut s = base(
        "unknown-card-ca",
        15,
        "visual AP: the CV certificate is issued by a card CA key not in testpki/card_ca/",
    );
    s.holder_name = "試験　未知男";
    s.birth = d(1982, 10, 10);
    s.visual = Visual::UnconfiguredCa;
    v.push(with_sign(s, |c| c.serial = [0xCA, 0x00, 0x00, 0x0F]));

    let mut s = base(
        "cloned-chip",
        16,
        "visual AP files copied from ordinary onto a chip with another card key: the challenge fails",
    );
    s.visual = Visual::ClonedFrom("ordinary");
    v.push(with_sign(s, |c| c.serial = [0xC1, 0x0E, 0x00, 0x10]));

    let mut s = base(
        "text-self-signed",
        17,
        "text AP: the CV certificate is self-issued (issuer id = its own), not by a card CA",
    );
    s.holder_name = "試験　自子";
    s.sex = "2";
    s.birth = d(2001, 3, 3);
    s.text_cv = TextCv::SelfSigned;
    v.push(with_sign(s, |c| c.serial = [0x5E, 0x1F, 0x00, 0x11]));

    let mut s = base(
        "forged",
        18,
        "EF 0001 is ordinary's signing certificate, EF 001A this card's own key: no proof of possession",
    );
    s.sign_copied_from = Some("ordinary");
    v.push(with_sign(s, |c| c.serial = [0x1A, 0x2B, 0x3C, 0x01]));
    v
}

/// The catalogue entry called `name`.
pub fn spec_named(name: &str) -> Result<Spec, TestPkiError> {
    catalogue()
        .into_iter()
        .find(|s| s.name == name)
        .ok_or(TestPkiError::Layout(
            "persona named as a source is not in the catalogue",
        ))
}

/// The values printed on a card face that the visual AP's keys are made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisualCodes {
    /// 生年月日 key `0011`: `YYMMDD`, Japanese-era year.
    pub birth: String,
    /// Card expiry (DF29).
    pub expiry: Date,
    /// 4-digit security code (rendered in DF2A).
    pub security_code: String,
    /// 照合番号B `0012`: birth ‖ expiry year ‖ security code.
    pub code_b: String,
    /// 照合番号A `0013`: the My Number.
    pub code_a: String,
}

/// The codes of the card face the persona's visual AP carries: its own, or for
/// [`Visual::ClonedFrom`] the source persona's (the copied face prints them). `None` without a
/// visual AP.
pub fn visual_codes(spec: &Spec) -> Result<Option<VisualCodes>, TestPkiError> {
    let owner = match spec.visual {
        Visual::Absent => return Ok(None),
        Visual::ClonedFrom(src) => spec_named(src)?,
        _ => spec.clone(),
    };
    let birth = owner.birth.era_yymmdd()?;
    let expiry = owner.birth.card_expiry(CARD_ISSUED);
    let h = images::stream(&format!("jpki-vcard security code: {}", owner.name), 2);
    let security_code = format!("{:04}", u16::from_be_bytes([h[0], h[1]]) % 10_000);
    Ok(Some(VisualCodes {
        code_b: visual::code_b(&birth, expiry.y, &security_code),
        birth,
        expiry,
        security_code,
        code_a: my_number(owner.idx)?,
    }))
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
    cas: &CardCas,
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
            let der = match spec.sign_copied_from {
                None => cardfiles::ff_pad(pki::sign_ee(root, &subject, params)?, pad),
                Some(src) => copied_sign_cert(spec, sign, src, files)?,
            };
            files.insert(format!("{dir}/jpki/0001.bin"), der);
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
        let holder_id = ap_key_id(spec.idx, '3')?;
        let (issuer_id, issuer_key) = match spec.text_cv {
            TextCv::CardCa => (cas.text.id, &cas.text.key),
            TextCv::SelfSigned => (holder_id, &card_key),
        };
        let ef4 = cardfiles::cv_certificate(&issuer_id, &holder_id, &card_key, issuer_key)?;
        let ef5 = cardfiles::ap_basic_info(&holder_id)?;
        for (n, data) in [(1, ef1), (2, ef2), (3, ef3), (4, ef4), (5, ef5)] {
            files.insert(format!("{dir}/text/000{n}.bin"), data);
        }
        files.insert(format!("{dir}/keys/textap.pk8.der"), card_key.pkcs8_der()?);
    }
    visual_files(spec, cas, files)?;
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

/// The 被証明者鍵ID of a persona's text (`ap = '3'`) or visual (`'2'`) AP key, shaped like a
/// real card's (`"1322131" 08 05 "000"…`: municipality code, AP digit, `1`): `"99" idx ap "1"`
/// ‖ `08 05` ‖ `"000"` ‖ `00 00 00 00`.
pub fn ap_key_id(idx: u8, ap: char) -> Result<[u8; 16], TestPkiError> {
    cardca::key_id(&format!("{}{ap}1", municipality(idx)), "000")
}

/// The persona's synthetic 全国地方公共団体コード (visual EF 0003 DF34): `"99"` + idx.
pub fn municipality(idx: u8) -> String {
    format!("99{idx:03}")
}

/// EF 0001 of `src` for a persona whose signing key is not the certificate's.
fn copied_sign_cert(
    spec: &Spec,
    sign: &SignCert,
    src: &str,
    files: &Files,
) -> Result<Vec<u8>, TestPkiError> {
    let source = spec_named(src)?;
    let same = source.sign.as_ref().is_some_and(|s| {
        s.serial == sign.serial && s.generation == sign.generation && s.state == sign.state
    });
    if !same || source.sign_copied_from.is_some() || spec.pad != source.pad {
        return Err(TestPkiError::Layout(
            "copied signing certificate differs from its spec",
        ));
    }
    files
        .get(&format!("personas/{src}/jpki/0001.bin"))
        .cloned()
        .ok_or(TestPkiError::Layout(
            "source persona generated after its copy",
        ))
}

/// Width × height of the synthetic images: name, address, security code, My Number (1-bit PNG)
/// and the photo (JPEG 2000).
const NAME_PNG: (u32, u32) = (32, 12);
const ADDRESS_PNG: (u32, u32) = (48, 12);
const SECURITY_CODE_PNG: (u32, u32) = (24, 12);
const MY_NUMBER_PNG: (u32, u32) = (48, 12);
const PHOTO: (u32, u32) = (24, 32);

/// Writes `visual/0001.bin` … `visual/0006.bin`, `keys/visualap.pk8.der` and `keys/card.pk8.der`.
fn visual_files(spec: &Spec, cas: &CardCas, files: &mut Files) -> Result<(), TestPkiError> {
    let dir = format!("personas/{}", spec.name);
    let Some(codes) = visual_codes(spec)? else {
        return Ok(());
    };
    let card_key = TestKey::rsa(&format!("persona-{}-card", spec.name))?;
    files.insert(format!("{dir}/keys/card.pk8.der"), card_key.pkcs8_der()?);
    if let Visual::ClonedFrom(src) = spec.visual {
        // The chip holds the source's files byte for byte; not the source's AP key.
        let prefix = format!("personas/{src}/visual/");
        let copied: Vec<(String, Vec<u8>)> = files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (format!("{dir}/visual/{}", &k[prefix.len()..]), v.clone()))
            .collect();
        if copied.len() != 6 {
            return Err(TestPkiError::Layout(
                "source persona generated after its clone",
            ));
        }
        files.extend(copied);
        return Ok(());
    }
    let ap_key = TestKey::rsa(&format!("persona-{}-visualap", spec.name))?;
    let card_pub = visual::card_public(&card_key)?;
    let label = |what: &str| format!("jpki-vcard {what}: {}", spec.name);

    let ef1 = visual::age_record_ef(&spec.birth.yyyymmdd(), &card_pub, &ap_key)?;
    let comment = format!("jpki-vcard synthetic photo placeholder: {}", spec.name);
    let face = FaceData {
        birth: spec.birth.yyyymmdd(),
        sex: spec.sex.to_owned(),
        card_key: card_pub.clone(),
        name_image: images::png_1bit(NAME_PNG.0, NAME_PNG.1, &label("name image"))?,
        address_image: images::png_1bit(ADDRESS_PNG.0, ADDRESS_PNG.1, &label("address image"))?,
        photo: images::jp2_placeholder(PHOTO.0, PHOTO.1, &comment)?,
        expiry: codes.expiry.yyyymmdd(),
        security_code_image: images::png_1bit(
            SECURITY_CODE_PNG.0,
            SECURITY_CODE_PNG.1,
            &label("security code image"),
        )?,
    };
    let altered = match spec.visual {
        Visual::FaceAltered => Some(images::jp2_placeholder(
            PHOTO.0,
            PHOTO.1,
            &comment.to_ascii_uppercase(),
        )?),
        _ => None,
    };
    let ef2 = visual::card_face_ef(&face, &ap_key, altered.as_deref())?;
    let ef3 = visual::ap_basic_data_ef(
        &cardca::key_id("9000024", "001")?,
        &municipality(spec.idx),
        &cardca::key_id("9900025", "001")?,
        &label("visual EF 0003 DF35"),
    )?;
    let ca = match spec.visual {
        Visual::UnconfiguredCa => &cas.unconfigured,
        _ => &cas.visual,
    };
    let ef4 = cardfiles::cv_certificate(&ca.id, &ap_key_id(spec.idx, '2')?, &ap_key, &ca.key)?;
    let image = images::png_1bit(MY_NUMBER_PNG.0, MY_NUMBER_PNG.1, &label("My Number image"))?;
    let ef5 = visual::my_number_image_ef(&image, &card_pub, &ap_key)?;
    let ef6 = visual::unknown_0006_ef();
    for (n, data) in [(1, ef1), (2, ef2), (3, ef3), (4, ef4), (5, ef5), (6, ef6)] {
        files.insert(format!("{dir}/visual/000{n}.bin"), data);
    }
    files.insert(format!("{dir}/keys/visualap.pk8.der"), ap_key.pkcs8_der()?);
    Ok(())
}
