//! Card-verifiable certificates of the text and visual APs (`docs/reference/jpki-protocol.md` §3.5,
//! §4.1) and the J-LIS card CA keys they chain to (`trust.card_ca_dir`, DESIGN §8).
//!
//! A CV certificate is `7F21 { 5F4E body; 5F37 signature }`; the body is the issuing key's
//! 16-byte 証明者鍵ID, the certified key's 被証明者鍵ID and an RSA key (`90` exponent, `91`
//! modulus); the signature is PKCS#1 v1.5 with SHA-256 over the body, by a CA key that is not
//! on the card. The certified key then signs the AP's records (the text AP's integrity record,
//! the visual AP's card face). Without a configured CA key a record can be consistent but not
//! shown genuine: a forged AP can sign its own record with its own key.
//!
//! Production CA keys are accepted only when the SHA-256 of their SubjectPublicKeyInfo is one
//! pinned here (like the roots, [`super::roots`]); under `trust.hierarchy = "test"` any key file
//! is accepted. Pure: [`CardCaKeys::load`] reads a directory, everything else works on bytes.

use std::fmt;
use std::path::{Path, PathBuf};

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::signature::Verifier;
use rsa::{BigUint, RsaPublicKey};
use sha2::{Digest, Sha256};

use super::Hierarchy;
use crate::api::IntegrityStatus;
use crate::tlv;

const TAG_CVC: u32 = 0x7F21;
const TAG_BODY: u32 = 0x5F4E;
const TAG_SIGNATURE: u32 = 0x5F37;
const TAG_EXPONENT: u32 = 0x90;
const TAG_MODULUS: u32 = 0x91;

/// A 16-byte key identifier (証明者鍵ID / 被証明者鍵ID): 7 ASCII digits, `08 05`, 3 ASCII
/// digits and 4 bytes of padding; compared on all 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// The 32 upper-case hex digits a key file is named by.
    pub fn hex(&self) -> String {
        hex::encode_upper(self.0)
    }

    /// From a file stem of 32 hex digits.
    pub fn from_hex(s: &str) -> Option<KeyId> {
        let bytes = hex::decode(s).ok()?;
        Some(KeyId(bytes.try_into().ok()?))
    }

    /// The printable part (`5000033`), for messages.
    pub fn name(&self) -> String {
        self.0[..7]
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() {
                    char::from(b)
                } else {
                    '?'
                }
            })
            .collect()
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({} {})", self.name(), self.hex())
    }
}

/// Why bytes are no CV certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed CV certificate: {0}")]
pub struct CvError(&'static str);

/// A parsed CV certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct CvCertificate {
    /// 証明者鍵ID: the key that signed it.
    pub issuer: KeyId,
    /// 被証明者鍵ID: the key it certifies.
    pub holder: KeyId,
    /// The certified RSA key.
    pub public_key: RsaPublicKey,
    body: Vec<u8>,
    signature: Vec<u8>,
}

impl fmt::Debug for CvCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CvCertificate")
            .field("issuer", &self.issuer)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

fn key_id(bytes: &[u8]) -> Option<KeyId> {
    Some(KeyId(bytes.try_into().ok()?))
}

impl CvCertificate {
    /// Parses `7F21 { 5F4E body; 5F37 signature }` (filler after it is ignored).
    ///
    /// # Errors
    /// [`CvError`] naming the part that is wrong.
    pub fn parse(file: &[u8]) -> Result<CvCertificate, CvError> {
        let outer = tlv::expect(file, TAG_CVC).map_err(|_| CvError("no 7F21 object"))?;
        let body = outer
            .child(TAG_BODY)
            .map_err(|_| CvError("no body (5F4E)"))?;
        let signature = outer
            .child(TAG_SIGNATURE)
            .map_err(|_| CvError("no signature (5F37)"))?;
        let (issuer, rest) = body
            .value
            .split_at_checked(16)
            .ok_or(CvError("body shorter than its key ids"))?;
        let (holder, key) = rest
            .split_at_checked(16)
            .ok_or(CvError("body shorter than its key ids"))?;
        let (exponent, after) = tlv::read(key).map_err(|_| CvError("no exponent (90)"))?;
        let (modulus, _) = tlv::read(after).map_err(|_| CvError("no modulus (91)"))?;
        if exponent.tag != TAG_EXPONENT || modulus.tag != TAG_MODULUS {
            return Err(CvError("key is not 90 exponent, 91 modulus"));
        }
        let public_key = RsaPublicKey::new(
            BigUint::from_bytes_be(modulus.value),
            BigUint::from_bytes_be(exponent.value),
        )
        .map_err(|_| CvError("the key is no RSA public key"))?;
        Ok(CvCertificate {
            issuer: key_id(issuer).ok_or(CvError("issuer key id"))?,
            holder: key_id(holder).ok_or(CvError("holder key id"))?,
            public_key,
            body: body.value.to_vec(),
            signature: signature.value.to_vec(),
        })
    }

    /// Whether `issuer` signed it.
    pub fn signed_by(&self, issuer: &RsaPublicKey) -> bool {
        verify_sha256(issuer, &self.body, &self.signature)
    }

    /// Whether the certified key signed `message` (PKCS#1 v1.5, SHA-256).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        verify_sha256(&self.public_key, message, signature)
    }
}

/// A card's RSA public key as the card writes it (`90` exponent, `91` modulus: DF24 of the face,
/// the key of a CV certificate's body); `None` for anything else.
pub(crate) fn card_public_key(bytes: &[u8]) -> Option<RsaPublicKey> {
    let (exponent, after) = tlv::read(bytes).ok()?;
    let (modulus, _) = tlv::read(after).ok()?;
    if exponent.tag != TAG_EXPONENT || modulus.tag != TAG_MODULUS {
        return None;
    }
    RsaPublicKey::new(
        BigUint::from_bytes_be(modulus.value),
        BigUint::from_bytes_be(exponent.value),
    )
    .ok()
}

/// PKCS#1 v1.5 with SHA-256.
pub(crate) fn verify_sha256(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = Signature::try_from(signature) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(message, &sig)
        .is_ok()
}

/// A published J-LIS card CA key, pinned by the SHA-256 of its SubjectPublicKeyInfo (DER).
#[derive(Debug, Clone, Copy)]
pub struct PinnedCardCa {
    /// Its 証明者鍵ID.
    pub key_id: [u8; 16],
    /// What it signs.
    pub label: &'static str,
    /// SHA-256 of the SPKI DER.
    pub sha256: [u8; 32],
}

/// The production card CA keys of the 券面 APs (moduli from the myna-card crate 3.3.4
/// `src/ca.rs`, who read them off issued cards; the repository carries them as
/// `card-ca/jlis/*.pem`, source in `card-ca/README.md`).
pub const PINNED_CARD_CA: &[PinnedCardCa] = &[
    PinnedCardCa {
        key_id: *b"5000023\x08\x05001\0\0\0\0",
        label: "J-LIS card CA 5000023 (券面事項確認AP)",
        sha256: [
            0x15, 0xA2, 0x3F, 0x54, 0xD0, 0xA8, 0x08, 0xD0, 0xC2, 0x25, 0x43, 0x6D, 0x09, 0x65,
            0xA2, 0xD5, 0x41, 0x15, 0xBB, 0x42, 0xB7, 0xBE, 0xAF, 0xF0, 0x1D, 0x15, 0x16, 0xE0,
            0xB1, 0x35, 0x60, 0x84,
        ],
    },
    PinnedCardCa {
        key_id: *b"5000033\x08\x05001\0\0\0\0",
        label: "J-LIS card CA 5000033 (券面事項入力補助AP)",
        sha256: [
            0x37, 0xFC, 0xFB, 0xCC, 0x4D, 0xC3, 0xDF, 0xFB, 0x58, 0x18, 0x31, 0x36, 0x59, 0x5C,
            0x31, 0x61, 0xEB, 0xDA, 0x8E, 0x33, 0x2A, 0x4A, 0x76, 0x7E, 0x6F, 0x8B, 0xEA, 0x9F,
            0x93, 0xB8, 0x11, 0x5A,
        ],
    },
];

/// A key file that was not taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedKey {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// One card CA key.
#[derive(Debug, Clone)]
pub struct CardCaKey {
    /// Its 証明者鍵ID (from the file name).
    pub key_id: KeyId,
    /// The key.
    pub key: RsaPublicKey,
    /// Whether it is one of [`PINNED_CARD_CA`].
    pub pinned: bool,
}

/// The configured card CA keys.
#[derive(Debug, Clone)]
pub struct CardCaKeys {
    hierarchy: Hierarchy,
    keys: Vec<CardCaKey>,
    rejected: Vec<RejectedKey>,
}

/// Most key files read from a directory (a directory of thousands is a mistake, not keys).
const MAX_KEY_FILES: usize = 64;
/// Largest key file read.
const MAX_KEY_FILE: u64 = 16 * 1024;

impl CardCaKeys {
    /// No keys: every CV certificate is untrusted.
    pub fn none(hierarchy: Hierarchy) -> CardCaKeys {
        CardCaKeys {
            hierarchy,
            keys: Vec::new(),
            rejected: Vec::new(),
        }
    }

    /// Reads every `<32 hex digits>.pem|.der` in `dir`; an absent directory gives no keys.
    /// Files that do not qualify are listed in [`CardCaKeys::rejected`].
    ///
    /// # Errors
    /// The I/O error of a directory that exists but cannot be listed.
    pub fn load(hierarchy: Hierarchy, dir: &Path) -> std::io::Result<CardCaKeys> {
        let mut out = CardCaKeys::none(hierarchy);
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths.into_iter().take(MAX_KEY_FILES) {
            if let Err(reason) = out.add_file(&path) {
                out.rejected.push(RejectedKey { path, reason });
            }
        }
        Ok(out)
    }

    fn add_file(&mut self, path: &Path) -> Result<(), String> {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let key_id = KeyId::from_hex(stem)
            .ok_or_else(|| "the name is not the key's 32 hex digit 証明者鍵ID".to_owned())?;
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if !meta.is_file() || meta.len() > MAX_KEY_FILE {
            return Err("not a key file of a sane size".to_owned());
        }
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        self.add(key_id, &bytes)
    }

    /// Adds one key (SubjectPublicKeyInfo, PEM or DER) for `key_id`.
    ///
    /// # Errors
    /// Why the key is refused: not an RSA SPKI, or (production) not pinned for this id.
    pub fn add(&mut self, key_id: KeyId, bytes: &[u8]) -> Result<(), String> {
        let key = match std::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN") => RsaPublicKey::from_public_key_pem(text),
            _ => RsaPublicKey::from_public_key_der(bytes),
        }
        .map_err(|_| "not an RSA SubjectPublicKeyInfo (PEM or DER)".to_owned())?;
        let spki = key
            .to_public_key_der()
            .map_err(|_| "the key cannot be encoded".to_owned())?;
        let sha256: [u8; 32] = Sha256::digest(spki.as_bytes()).into();
        let pinned = PINNED_CARD_CA
            .iter()
            .any(|p| p.key_id == key_id.0 && p.sha256 == sha256);
        if self.hierarchy == Hierarchy::Production && !pinned {
            return Err(format!(
                "not a pinned J-LIS card CA key for {} (SHA-256 {})",
                key_id.name(),
                hex::encode_upper(sha256)
            ));
        }
        self.keys.retain(|k| k.key_id != key_id);
        self.keys.push(CardCaKey {
            key_id,
            key,
            pinned,
        });
        Ok(())
    }

    /// The keys taken.
    pub fn keys(&self) -> &[CardCaKey] {
        &self.keys
    }

    /// The files refused.
    pub fn rejected(&self) -> &[RejectedKey] {
        &self.rejected
    }

    /// The key of `id`, all 16 bytes compared.
    pub fn find(&self, id: &KeyId) -> Option<&RsaPublicKey> {
        self.keys.iter().find(|k| k.key_id == *id).map(|k| &k.key)
    }

    /// Whether `cvc` is signed by a configured key.
    pub fn certifies(&self, cvc: &CvCertificate) -> CvStatus {
        match self.find(&cvc.issuer) {
            None => CvStatus::UnknownIssuer,
            Some(key) if cvc.signed_by(key) => CvStatus::Verified,
            Some(_) => CvStatus::BadSignature,
        }
    }
}

/// What a CV certificate's issuer check says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CvStatus {
    /// Signed by a configured card CA key.
    Verified,
    /// Its 証明者鍵ID names no configured key.
    UnknownIssuer,
    /// A configured key of that id did not sign it: forged.
    BadSignature,
}

/// What the text AP's integrity record says of the basic four read with it (DESIGN §6.2
/// `integrity`): the record's digest of the basic four (DF32) against theirs, the record's
/// signature (DF33 over `signed`) by the key of the AP's CV certificate, and that certificate
/// against the configured card CA keys. Without such a key the answer is at best
/// `unverifiable`: a forged AP that signs its own record with its own key would pass the rest.
pub fn text_integrity(
    basic_four_digest: &[u8; 32],
    record_digest: &[u8; 32],
    signed: &[u8],
    signature: &[u8],
    cv_certificate: &[u8],
    keys: &CardCaKeys,
) -> IntegrityStatus {
    if basic_four_digest != record_digest {
        return IntegrityStatus::Mismatch;
    }
    let Ok(cvc) = CvCertificate::parse(cv_certificate) else {
        return IntegrityStatus::Mismatch;
    };
    if !cvc.verifies(signed, signature) {
        return IntegrityStatus::Mismatch;
    }
    match keys.certifies(&cvc) {
        CvStatus::Verified => IntegrityStatus::Verified,
        CvStatus::UnknownIssuer => IntegrityStatus::Unverifiable,
        CvStatus::BadSignature => IntegrityStatus::Mismatch,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn repo(p: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
    }

    #[test]
    fn key_ids_name_files_and_compare_whole() {
        let id = KeyId(*b"5000033\x08\x05001\0\0\0\0");
        assert_eq!(id.hex(), "35303030303333080530303100000000");
        assert_eq!(KeyId::from_hex(&id.hex()), Some(id));
        assert_eq!(id.name(), "5000033");
        assert!(KeyId::from_hex("3530").is_none());
        assert!(KeyId::from_hex("zz303030303333080530303100000000").is_none());
    }

    #[test]
    fn the_published_card_ca_keys_are_pinned_in_production() {
        let keys = CardCaKeys::load(Hierarchy::Production, &repo("card-ca/jlis")).unwrap();
        assert_eq!(keys.rejected(), [], "{:?}", keys.rejected());
        assert_eq!(keys.keys().len(), PINNED_CARD_CA.len());
        assert!(keys.keys().iter().all(|k| k.pinned));
        // The test hierarchy's keys are not production keys.
        let test =
            CardCaKeys::load(Hierarchy::Production, &repo("hw-fixtures/testpki/card_ca")).unwrap();
        assert!(test.keys().is_empty());
        assert_eq!(test.rejected().len(), 2);
        let test = CardCaKeys::load(Hierarchy::Test, &repo("hw-fixtures/testpki/card_ca")).unwrap();
        assert_eq!(test.keys().len(), 2);
        assert!(test.keys().iter().all(|k| !k.pinned));
    }

    /// Real bytes of a J-LIS test card (`hw-fixtures/jlis-test-card/`): the text AP's CV
    /// certificate chains to the test card CA 6000033 and certifies the key that signed the
    /// integrity record.
    #[test]
    fn a_jlis_test_card_text_ap_chains_to_its_ca() {
        let cvc = std::fs::read(repo("hw-fixtures/jlis-test-card/text-0004.bin")).unwrap();
        let cvc = CvCertificate::parse(&cvc).unwrap();
        assert_eq!(cvc.issuer.name(), "6000033");
        let keys =
            CardCaKeys::load(Hierarchy::Test, &repo("hw-fixtures/jlis-test-card/card_ca")).unwrap();
        assert_eq!(keys.certifies(&cvc), CvStatus::Verified);
        let ours = CardCaKeys::load(Hierarchy::Test, &repo("hw-fixtures/testpki/card_ca")).unwrap();
        assert_eq!(ours.certifies(&cvc), CvStatus::UnknownIssuer);
    }

    #[test]
    fn malformed_cv_certificates_are_named_never_a_panic() {
        for bad in [
            &b""[..],
            b"\x7F\x21\x00",
            b"\x7F\x21\x03\x5F\x4E\x00",
            b"garbage",
        ] {
            assert!(CvCertificate::parse(bad).is_err());
        }
        let good = std::fs::read(repo("hw-fixtures/jlis-test-card/text-0004.bin")).unwrap();
        for cut in 0..good.len().min(600) {
            let _ = CvCertificate::parse(&good[..cut]);
        }
    }
}
