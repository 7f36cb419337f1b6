//! A persona: one virtual card's files, keys, PINs and fault switches, loaded from a directory
//! laid out as `hw-fixtures/PERSONAS.md` describes.
//!
//! Loading is strict about what it understands (unknown keys in `persona.toml` are an error, so a
//! typo in a fault switch does not silently test nothing) and lenient about what may be absent
//! (every key except `description` has the default given in `PERSONAS.md`).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use serde::Deserialize;
use zeroize::Zeroizing;

/// The JPKI contact ATR `3B E0 00 FF 81 31 FE 45 14` (jpki-protocol.md §11): T=1 only, no
/// historical bytes; the only JPKI ATR in OpenSC's table.
pub const DEFAULT_ATR: [u8; 9] = [0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14];

/// The PINs (key references) the virtual card knows (jpki-protocol.md §7). The discriminants
/// are the indices of [`Persona::pins`]: new variants are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PinId {
    /// 署名用パスワード, JPKI AP EF `001B` (6–16 characters, 5 tries).
    Sign,
    /// 利用者証明用暗証番号, JPKI AP EF `0018` (4 digits, 3 tries).
    Auth,
    /// 券面事項入力補助用暗証番号, text AP EF `0011` (4 digits, 3 tries).
    Text,
    /// 生年月日 key of the visual AP, EF `0011` (`YYMMDD`, Japanese-era year; opens EF 0001).
    Birth,
    /// 照合番号B of the visual AP, EF `0012` (14 digits; opens EF 0002, 0003, 0004, 0006).
    CodeB,
    /// 照合番号A of the visual AP, EF `0013` (the 12-digit My Number; also opens EF 0005).
    CodeA,
}

impl PinId {
    /// All PINs, in index order.
    pub const ALL: [PinId; 6] = [
        PinId::Sign,
        PinId::Auth,
        PinId::Text,
        PinId::Birth,
        PinId::CodeB,
        PinId::CodeA,
    ];

    /// Index into per-PIN arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            PinId::Sign => 0,
            PinId::Auth => 1,
            PinId::Text => 2,
            PinId::Birth => 3,
            PinId::CodeB => 4,
            PinId::CodeA => 5,
        }
    }

    /// The PIN EF's file ID inside its AP ([`PinId::ap`]).
    pub fn ef(self) -> u16 {
        match self {
            PinId::Sign => 0x001B,
            PinId::Auth => 0x0018,
            PinId::Text | PinId::Birth => 0x0011,
            PinId::CodeB => 0x0012,
            PinId::CodeA => 0x0013,
        }
    }

    /// The AP the PIN lives in.
    pub fn ap(self) -> Ap {
        match self {
            PinId::Sign | PinId::Auth => Ap::Jpki,
            PinId::Text => Ap::Text,
            PinId::Birth | PinId::CodeB | PinId::CodeA => Ap::Visual,
        }
    }

    /// The table name in `persona.toml` (`[pins.<name>]`).
    pub fn toml_name(self) -> &'static str {
        match self {
            PinId::Sign => "sign",
            PinId::Auth => "auth",
            PinId::Text => "text",
            PinId::Birth => "birth",
            PinId::CodeB => "code_b",
            PinId::CodeA => "code_a",
        }
    }
}

/// Tries of the visual AP's three keys when `persona.toml` does not say (PERSONAS.md).
pub const VISUAL_TRIES: u8 = 10;

/// One PIN's reference value and retry counter as loaded from `[pins.*]`.
#[derive(Clone, PartialEq, Eq)]
pub struct PinConfig {
    /// The reference value (the ASCII bytes VERIFY must carry).
    pub value: Zeroizing<Vec<u8>>,
    /// Tries left when the card is made.
    pub remaining: u8,
    /// Counter value after a successful VERIFY.
    pub max: u8,
}

impl fmt::Debug for PinConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinConfig")
            .field("value", &"<redacted>")
            .field("remaining", &self.remaining)
            .field("max", &self.max)
            .finish()
    }
}

impl PinConfig {
    fn new(value: &str, tries: u8) -> PinConfig {
        PinConfig {
            value: Zeroizing::new(value.as_bytes().to_vec()),
            remaining: tries,
            max: tries,
        }
    }

    /// The default for a PIN whose table is absent: the values of the `PERSONAS.md` example.
    pub fn default_for(pin: PinId) -> PinConfig {
        match pin {
            PinId::Sign => PinConfig::new("TESTPW1", 5),
            PinId::Auth | PinId::Text => PinConfig::new("1234", 3),
            // The visual AP's counters are not published (jpki-protocol.md §7); PERSONAS.md
            // explains the choice of 10.
            PinId::Birth => PinConfig::new("000101", VISUAL_TRIES),
            PinId::CodeB => PinConfig::new("00010120350000", VISUAL_TRIES),
            PinId::CodeA => PinConfig::new("000000000000", VISUAL_TRIES),
        }
    }
}

/// Fault switches (`[faults]` in `persona.toml`, also settable on the `vcard` command line).
/// `Default` is "no faults".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The card disappears after answering this many APDUs (0 = never).
    pub remove_after: u64,
    /// The card stops answering after this many APDUs (0 = never).
    pub mute_after: u64,
    /// Delay before every answer, in milliseconds. `VirtualCard::exchange` does not sleep; the
    /// caller (e.g. the vpcd loop) does.
    pub delay_ms: u64,
    /// Extra delay before the answer to COMPUTE DIGITAL SIGNATURE (`80 2A`), in milliseconds,
    /// on top of `delay_ms`: a card whose RSA is slow, so that a deadline can pass while the
    /// signature is being computed (after the PIN was verified).
    pub sign_delay_ms: u64,
    /// The first APDU after power-on answers `6F00` (jpki-protocol.md §14, one measured card).
    pub sw_6f00_after_power_on: bool,
    /// Answers with more than this many data bytes come as `61xx` + GET RESPONSE (0 = off).
    pub chain_61xx: usize,
    /// Card files whose certificate bytes are corrupted, e.g. `"jpki/000A"`.
    pub corrupt: Vec<String>,
}

/// `[expect]`: what tests may assert about the persona. The card itself ignores it. Keys the
/// generator adds later land in `other` instead of failing the load.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Expect {
    /// `card | android | iphone | no-sign-cert | not-jpki`.
    pub card_kind: Option<String>,
    /// Verification outcome of the sign cert at `at`: `valid | expired | revoked | absent`.
    pub sign_status: Option<String>,
    /// Unix seconds the expectations hold at.
    pub at: Option<i64>,
    /// Card basic four == sign cert SAN.
    pub attributes_match: Option<bool>,
    /// SAN carries 代替文字 entries.
    pub substitute_characters: Option<bool>,
    /// Root generation that issued EF 0001 (`g1`, `g2`).
    pub sign_issuer: Option<String>,
    /// EF 0001 serial, hex.
    pub sign_serial: Option<String>,
    /// CRL reason of a revoked sign certificate.
    pub revocation_reason: Option<String>,
    /// Root generation that issued EF 000A.
    pub auth_issuer: Option<String>,
    /// The digits of text EF 0001 (synthetic).
    pub my_number: Option<String>,
    /// Text AP integrity as `MatchAttributes` reports it with the test PKI's `card_ca/`
    /// configured: `verified | unverifiable` (only on personas with a text AP).
    pub integrity: Option<String>,
    /// Outcome of `CheckAuthenticity` with the right 照合番号B and `card_ca/` configured:
    /// `genuine | card-face-mismatch | cv-untrusted | challenge-failed` (only with a visual AP).
    pub authenticity: Option<String>,
    /// The signing key (EF 001A) belongs to the signing certificate (EF 0001); only on
    /// personas with a signing certificate.
    pub key_matches_certificate: Option<bool>,
    /// Card expiry (visual EF 0002 DF29) as an ISO date, only with a visual AP.
    pub expiry: Option<String>,
    /// Any other key.
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Value>,
}

/// Where a card file lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ap {
    /// 公的個人認証AP, `D392F000260100000001` (directory `jpki/`).
    Jpki,
    /// 券面事項入力補助AP, `D3921000310001010408` (directory `text/`).
    Text,
    /// 券面事項確認AP, `D3921000310001010402` (directory `visual/`).
    Visual,
}

impl Ap {
    /// The persona subdirectory holding this AP's files.
    pub fn dir_name(self) -> &'static str {
        match self {
            Ap::Jpki => "jpki",
            Ap::Text => "text",
            Ap::Visual => "visual",
        }
    }
}

/// Error while loading a persona. Each variant keeps its cause.
#[derive(Debug, thiserror::Error)]
pub enum PersonaError {
    /// A file or directory could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `persona.toml` is not valid TOML or has unknown / mistyped keys.
    #[error("invalid {path}")]
    Toml {
        /// The path of `persona.toml`.
        path: PathBuf,
        /// The cause.
        #[source]
        source: toml::de::Error,
    },
    /// The `atr` key is not hex.
    #[error("persona.toml: atr is not hex")]
    AtrHex(#[source] hex::FromHexError),
    /// A private key file is not a PKCS#8 RSA key.
    #[error("invalid private key {path}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rsa::pkcs8::Error,
    },
    /// Anything else the contract forbids (bad file name, bad value).
    #[error("invalid persona {path}: {reason}")]
    Invalid {
        /// The offending path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinToml {
    value: String,
    remaining: Option<u8>,
    max: Option<u8>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PinsToml {
    sign: Option<PinToml>,
    auth: Option<PinToml>,
    text: Option<PinToml>,
    birth: Option<PinToml>,
    code_b: Option<PinToml>,
    code_a: Option<PinToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonaToml {
    description: String,
    atr: Option<String>,
    jpki_ap: Option<bool>,
    text_ap: Option<bool>,
    visual_ap: Option<bool>,
    sfi: Option<bool>,
    extended: Option<bool>,
    auth_cert_requires_pin: Option<bool>,
    #[serde(default)]
    pins: PinsToml,
    #[serde(default)]
    expect: Expect,
    #[serde(default)]
    faults: Faults,
}

/// A loaded persona directory.
#[derive(Clone)]
pub struct Persona {
    /// The directory it was loaded from.
    pub dir: PathBuf,
    /// `description`.
    pub description: String,
    /// The ATR the card presents.
    pub atr: Vec<u8>,
    /// JPKI AP present (`jpki_ap`).
    pub jpki_ap: bool,
    /// Text AP present (`text_ap`).
    pub text_ap: bool,
    /// Visual AP present (`visual_ap`; default: whether `visual/` exists).
    pub visual_ap: bool,
    /// SFI forms of READ BINARY / VERIFY / SIGN supported (`sfi`).
    pub sfi: bool,
    /// Extended-length APDUs supported (`extended`).
    pub extended: bool,
    /// EF 000A needs VERIFY 0018 first (the Android token, jpki-protocol.md §13.1).
    pub auth_cert_requires_pin: bool,
    /// PINs indexed by [`PinId`] order (sign, auth, text, birth, code B, code A).
    pub pins: [PinConfig; 6],
    /// `[expect]`.
    pub expect: Expect,
    /// `[faults]`.
    pub faults: Faults,
    /// Transparent EFs of the JPKI AP, by file ID.
    pub jpki_files: BTreeMap<u16, Vec<u8>>,
    /// Transparent EFs of the text AP, by file ID.
    pub text_files: BTreeMap<u16, Vec<u8>>,
    /// Transparent EFs of the visual AP, by file ID.
    pub visual_files: BTreeMap<u16, Vec<u8>>,
    /// JPKI signing key (EF 001A), if `keys/sign.pk8.der` exists.
    pub sign_key: Option<RsaPrivateKey>,
    /// JPKI authentication key (EF 0017), if `keys/auth.pk8.der` exists.
    pub auth_key: Option<RsaPrivateKey>,
    /// The text AP's own key (`80 2A 00 00` in the text AP), if `keys/textap.pk8.der` exists.
    pub textap_key: Option<RsaPrivateKey>,
    /// The card key of the visual AP (public half in EF 0002 DF24; `80 2A 00 00` in the visual
    /// AP), if `keys/card.pk8.der` exists.
    pub card_key: Option<RsaPrivateKey>,
}

impl fmt::Debug for Persona {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Persona")
            .field("dir", &self.dir)
            .field("description", &self.description)
            .field("atr", &hex::encode_upper(&self.atr))
            .field("jpki_ap", &self.jpki_ap)
            .field("text_ap", &self.text_ap)
            .field("visual_ap", &self.visual_ap)
            .field("sfi", &self.sfi)
            .field("extended", &self.extended)
            .field("auth_cert_requires_pin", &self.auth_cert_requires_pin)
            .field("pins", &self.pins)
            .field("faults", &self.faults)
            .field("jpki_files", &self.jpki_files.keys().collect::<Vec<_>>())
            .field("text_files", &self.text_files.keys().collect::<Vec<_>>())
            .field(
                "visual_files",
                &self.visual_files.keys().collect::<Vec<_>>(),
            )
            .field("sign_key", &self.sign_key.is_some())
            .field("auth_key", &self.auth_key.is_some())
            .field("textap_key", &self.textap_key.is_some())
            .field("card_key", &self.card_key.is_some())
            .finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PersonaError + '_ {
    move |source| PersonaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn pin_from(t: Option<PinToml>, id: PinId, path: &Path) -> Result<PinConfig, PersonaError> {
    let Some(t) = t else {
        return Ok(PinConfig::default_for(id));
    };
    let def = PinConfig::default_for(id);
    let max = t.max.unwrap_or(def.max);
    let remaining = t.remaining.unwrap_or(max);
    let len = t.value.len();
    if !(1..=16).contains(&len) || max > 15 || remaining > max {
        return Err(PersonaError::Invalid {
            path: path.to_path_buf(),
            reason: format!(
                "pins.{id:?}: value must be 1-16 bytes and 0 <= remaining <= max <= 15 \
                 (got {len} bytes, remaining {remaining}, max {max})"
            ),
        });
    }
    Ok(PinConfig {
        value: Zeroizing::new(t.value.into_bytes()),
        remaining,
        max,
    })
}

/// Loads `<dir>/<ap>/*.bin`; a missing AP directory is an empty AP.
fn load_files(dir: &Path) -> Result<BTreeMap<u16, Vec<u8>>, PersonaError> {
    let mut files = BTreeMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".bin") else {
            continue;
        };
        let fid = match (stem.len(), u16::from_str_radix(stem, 16)) {
            (4, Ok(fid)) => fid,
            _ => {
                return Err(PersonaError::Invalid {
                    path,
                    reason: "card file names are 4 hex digits + .bin".into(),
                });
            }
        };
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        files.insert(fid, bytes);
    }
    Ok(files)
}

fn load_key(path: &Path) -> Result<Option<RsaPrivateKey>, PersonaError> {
    let der = match fs::read(path) {
        Ok(d) => Zeroizing::new(d),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    RsaPrivateKey::from_pkcs8_der(&der)
        .map(Some)
        .map_err(|source| PersonaError::Key {
            path: path.to_path_buf(),
            source,
        })
}

impl Persona {
    /// Loads a persona directory (`PERSONAS.md`).
    pub fn load(dir: &Path) -> Result<Persona, PersonaError> {
        let toml_path = dir.join("persona.toml");
        let text = fs::read_to_string(&toml_path).map_err(io_err(&toml_path))?;
        let t: PersonaToml = toml::from_str(&text).map_err(|source| PersonaError::Toml {
            path: toml_path.clone(),
            source,
        })?;
        let atr = match &t.atr {
            Some(h) => hex::decode(h.trim()).map_err(PersonaError::AtrHex)?,
            None => DEFAULT_ATR.to_vec(),
        };
        if atr.is_empty() || atr.len() > 33 {
            return Err(PersonaError::Invalid {
                path: toml_path,
                reason: format!("atr must be 1-33 bytes, got {}", atr.len()),
            });
        }
        let pins = [
            pin_from(t.pins.sign, PinId::Sign, &toml_path)?,
            pin_from(t.pins.auth, PinId::Auth, &toml_path)?,
            pin_from(t.pins.text, PinId::Text, &toml_path)?,
            pin_from(t.pins.birth, PinId::Birth, &toml_path)?,
            pin_from(t.pins.code_b, PinId::CodeB, &toml_path)?,
            pin_from(t.pins.code_a, PinId::CodeA, &toml_path)?,
        ];
        for name in &t.faults.corrupt {
            if parse_file_name(name).is_none() {
                return Err(PersonaError::Invalid {
                    path: toml_path,
                    reason: format!("faults.corrupt: {name:?} is not like \"jpki/000A\""),
                });
            }
        }
        Ok(Persona {
            dir: dir.to_path_buf(),
            description: t.description,
            atr,
            jpki_ap: t.jpki_ap.unwrap_or(true),
            text_ap: t.text_ap.unwrap_or(true),
            visual_ap: t.visual_ap.unwrap_or_else(|| dir.join("visual").is_dir()),
            sfi: t.sfi.unwrap_or(true),
            extended: t.extended.unwrap_or(true),
            auth_cert_requires_pin: t.auth_cert_requires_pin.unwrap_or(false),
            pins,
            expect: t.expect,
            faults: t.faults,
            jpki_files: load_files(&dir.join("jpki"))?,
            text_files: load_files(&dir.join("text"))?,
            visual_files: load_files(&dir.join("visual"))?,
            sign_key: load_key(&dir.join("keys").join("sign.pk8.der"))?,
            auth_key: load_key(&dir.join("keys").join("auth.pk8.der"))?,
            textap_key: load_key(&dir.join("keys").join("textap.pk8.der"))?,
            card_key: load_key(&dir.join("keys").join("card.pk8.der"))?,
        })
    }

    /// The persona's name (the directory's last component).
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// One PIN's configuration.
    pub fn pin(&self, pin: PinId) -> &PinConfig {
        &self.pins[pin.index()]
    }

    /// The bytes of one card file, e.g. `file(Ap::Jpki, 0x000A)`.
    pub fn file(&self, ap: Ap, fid: u16) -> Option<&[u8]> {
        match ap {
            Ap::Jpki => self.jpki_files.get(&fid),
            Ap::Text => self.text_files.get(&fid),
            Ap::Visual => self.visual_files.get(&fid),
        }
        .map(Vec::as_slice)
    }
}

/// Parses a card file name as used in `faults.corrupt`: `"jpki/000A"` (also `"jpki/000a.bin"`,
/// `"text/0002"`, `"visual/0002"`).
pub fn parse_file_name(name: &str) -> Option<(Ap, u16)> {
    let (ap, file) = name.split_once('/')?;
    let ap = match ap {
        "jpki" => Ap::Jpki,
        "text" => Ap::Text,
        "visual" => Ap::Visual,
        _ => return None,
    };
    let file = file.strip_suffix(".bin").unwrap_or(file);
    if file.len() != 4 {
        return None;
    }
    u16::from_str_radix(file, 16).ok().map(|fid| (ap, fid))
}
