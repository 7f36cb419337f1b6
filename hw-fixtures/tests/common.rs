//! Shared helpers: small personas of our own, written into temp directories.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use jpki_vcard::VirtualCard;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rsa::RsaPrivateKey;
use rsa::pkcs8::EncodePrivateKey;

pub const JPKI_AID: &str = "D392F000260100000001";
pub const TEXT_AID: &str = "D3921000310001010408";
pub const VISUAL_AID: &str = "D3921000310001010402";

/// The visual AP's key values of the temp persona (those of the J-LIS test card myna-card
/// documents: born 1980-02-17 = 昭和55, expiry 2035, security code 2285; 照合番号A = the
/// temp persona's text EF 0001 digits).
pub const BIRTH_KEY: &str = "550217";
pub const CODE_B: &str = "55021720352285";
pub const CODE_A: &str = "123456789018";

/// The visual AP's files of the temp persona: tiny stand-ins, distinct per EF.
pub fn visual_file(fid: u16) -> Vec<u8> {
    match fid {
        1 => [vec![0xFF, 0x10, 0x03, 0xDF, 0x11, 0x00], vec![0xFF; 4]].concat(),
        2 => {
            // Longer than 256 bytes, as real card-face files are.
            let mut v = vec![0xFF, 0x20, 0x82, 0x01, 0x2C];
            v.extend((0..300u16).map(|i| (i % 251) as u8 ^ 0x20));
            v.extend([0xFF; 40]);
            v
        }
        3 => vec![0xFF, 0x30, 0x02, 0xDF, 0x31],
        4 => vec![0x7F, 0x21, 0x02, 0x5F, 0x4E],
        5 => vec![0xFF, 0x40, 0x02, 0xDF, 0x41],
        _ => vec![0xFF; 16],
    }
}

/// Two RSA-2048 keys (sign, auth) from a seeded RNG, generated once per test binary.
pub fn keys() -> &'static (RsaPrivateKey, RsaPrivateKey) {
    static KEYS: OnceLock<(RsaPrivateKey, RsaPrivateKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x4A504B49);
        let sign = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let auth = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        (sign, auth)
    })
}

/// The visual AP's card key of the temp persona (`keys/card.pk8.der`).
pub fn card_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x5649_5355);
        RsaPrivateKey::new(&mut rng, 2048).unwrap()
    })
}

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend([0x81, n as u8]);
    } else {
        v.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(content);
    v
}

/// A certificate-shaped DER blob (not a real certificate) of roughly `size` bytes, followed by
/// `filler` FF bytes. The TBS holds a 270-byte BIT STRING where a public key would be.
pub fn fake_cert(seed: u8, size: usize, filler: usize) -> Vec<u8> {
    let alg = tlv(
        0x30,
        &[
            0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B, 0x05, 0x00,
        ],
    );
    let mut spki_bits = vec![0u8];
    spki_bits.extend((0..269).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
    let spki = tlv(0x30, &[alg.clone(), tlv(0x03, &spki_bits)].concat());
    let pad = size.saturating_sub(600);
    let name = tlv(0x30, &tlv(0x0C, &vec![b'A' + seed % 26; pad.max(4)]));
    let tbs = tlv(
        0x30,
        &[
            tlv(0xA0, &tlv(0x02, &[2])),
            tlv(0x02, &[seed, 1, 2, 3]),
            alg.clone(),
            name.clone(),
            name,
            spki,
        ]
        .concat(),
    );
    let sig = tlv(0x03, &[[0u8].as_slice(), &[seed ^ 0x5A; 256]].concat());
    let mut cert = tlv(0x30, &[tbs, alg, sig].concat());
    cert.extend(std::iter::repeat_n(0xFF, filler));
    cert
}

#[derive(Debug)]
pub struct Opts<'a> {
    pub toml_extra: &'a str,
    pub sign_cert: bool,
    pub keys: bool,
    /// Write `visual/` and `keys/card.pk8.der` (the visual AP).
    pub visual: bool,
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Opts {
            toml_extra: "",
            sign_cert: true,
            keys: true,
            visual: true,
        }
    }
}

/// Writes a persona into `dir`.
pub fn write_persona(dir: &Path, o: &Opts<'_>) {
    fs::create_dir_all(dir.join("jpki")).unwrap();
    fs::create_dir_all(dir.join("text")).unwrap();
    fs::create_dir_all(dir.join("keys")).unwrap();
    let w = |p: &str, b: &[u8]| fs::write(dir.join(p), b).unwrap();
    if o.sign_cert {
        w("jpki/0001.bin", &fake_cert(1, 1800, 10));
    }
    w("jpki/0002.bin", &fake_cert(2, 1200, 0));
    w("jpki/000A.bin", &fake_cert(3, 1500, 3));
    w("jpki/000B.bin", &fake_cert(4, 1200, 0));
    let mut token = b"JPKIAPICCTOKEN2".to_vec();
    token.resize(160, b' ');
    w("jpki/0006.bin", &token);
    w(
        "jpki/0008.bin",
        if o.sign_cert {
            &[0x8F, 0x8F, 0x00]
        } else {
            &[0x00, 0x8F, 0x00]
        },
    );
    w("text/0001.bin", b"\xFF\x10\x0C123456789018\xFF\xFF");
    w("text/0002.bin", &[0xFF, 0x20, 0x03, 0xDF, 0x21, 0x00]);
    w("text/0003.bin", &[0xFF, 0x30, 0x00]);
    w("text/0004.bin", &[0x7F, 0x21, 0x00]);
    w("text/0005.bin", &[0xFF, 0x40, 0x00]);
    if o.keys {
        let (s, a) = keys();
        w("keys/sign.pk8.der", s.to_pkcs8_der().unwrap().as_bytes());
        w("keys/auth.pk8.der", a.to_pkcs8_der().unwrap().as_bytes());
    }
    if o.visual {
        fs::create_dir_all(dir.join("visual")).unwrap();
        for fid in 1..=6u16 {
            w(&format!("visual/{fid:04X}.bin"), &visual_file(fid));
        }
        if o.keys {
            w(
                "keys/card.pk8.der",
                card_key().to_pkcs8_der().unwrap().as_bytes(),
            );
        }
    }
    let toml = format!(
        "description = \"test persona\"\n{}\n[pins.sign]\nvalue = \"TESTPW1\"\nremaining = 5\nmax = 5\n\
         [pins.birth]\nvalue = \"{BIRTH_KEY}\"\n[pins.code_b]\nvalue = \"{CODE_B}\"\n\
         [pins.code_a]\nvalue = \"{CODE_A}\"\n",
        o.toml_extra
    );
    w("persona.toml", toml.as_bytes());
}

/// A card from a fresh temp persona. The TempDir must outlive nothing: the card loads eagerly.
pub fn card_with(o: &Opts<'_>) -> VirtualCard {
    let dir = tempfile::tempdir().unwrap();
    write_persona(dir.path(), o);
    VirtualCard::load(dir.path()).unwrap()
}

pub fn card() -> VirtualCard {
    card_with(&Opts::default())
}

pub fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// Runs a hex APDU, returns the response as upper-case hex.
pub fn run(card: &mut VirtualCard, apdu: &str) -> String {
    hex::encode_upper(card.execute(&h(apdu)))
}

/// SW of the response, as hex.
pub fn sw(card: &mut VirtualCard, apdu: &str) -> String {
    let r = card.execute(&h(apdu));
    hex::encode_upper(&r[r.len().saturating_sub(2)..])
}
