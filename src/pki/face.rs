//! The card face of the visual AP (券面事項確認AP EF 0002, `docs/reference/jpki-protocol.md` §4,
//! §4.1) and the counter's 対面確認: is this chip a genuine card, made by J-LIS, and is it here?
//!
//! The face is `FF20 { DF21 offsets; DF22 birth date; DF23 sex; DF24 card key; DF25 name image;
//! DF26 address image; DF27 photo; DF28 signature; DF29 expiry; DF2A security-code image }`.
//! DF21 holds nine big-endian u16 offsets, from the first byte of the file, of DF22 … DF2A.
//! DF28 is an RSA PKCS#1 v1.5 block by the key the visual AP's CV certificate certifies; its
//! DigestInfo names SHA-256 and holds three SHA-256 digests (96 bytes): of DF22‖DF23‖DF24, of
//! DF25‖DF26 and of DF27, each over the objects as written. DF29 and DF2A follow the signature
//! and are **not covered by it**: the expiry is reported as the card holds it.
//!
//! [`check`] gives the three verdicts of `CheckAuthenticity` (DESIGN §6.2): the CV certificate
//! against the configured J-LIS card CA keys ([`super::cvc`]), the face signature with the key
//! it certifies, and the card's signature of a fresh challenge with DF24. Each is judged on its
//! own, so a fault names the one part that failed. Pure; the parser never panics on any input.
//!
//! The face data is personal (birth date, sex, the images and the photo): only the digests, the
//! signature, the card key, the expiry and the photo are kept, the photo zeroized on drop.

use std::fmt;

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::hazmat::PrehashVerifier;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::cvc::{self, CardCaKeys, CvCertificate, CvStatus};
use crate::api::{CardFaceStatus, ChallengeStatus, CvCertificateStatus, HashAlg};
use crate::tlv::{self, Tlv};

const TAG_FACE: u32 = 0xFF20;
const TAG_OFFSETS: u32 = 0xDF21;
/// DF22 … DF2A, in the order of the file and of DF21's table.
const FIELDS: [u32; 9] = [
    0xDF22, 0xDF23, 0xDF24, 0xDF25, 0xDF26, 0xDF27, 0xDF28, 0xDF29, 0xDF2A,
];
/// Index in [`FIELDS`] of DF24 (card key), DF27 (photo), DF28 (signature), DF29 (expiry).
const CARD_KEY: usize = 2;
const PHOTO: usize = 5;
const SIGNATURE: usize = 6;
const EXPIRY: usize = 7;
/// The objects each of DF28's three digests covers (indexes into [`FIELDS`]).
const DIGESTED: [std::ops::Range<usize>; 3] = [0..3, 3..5, 5..6];

/// Why bytes are no card face.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed card face (EF 0002): {0}")]
pub struct FaceError(&'static str);

/// A parsed card face: what the checks need, nothing else of the holder.
pub struct CardFace {
    /// SHA-256 of DF22‖DF23‖DF24, DF25‖DF26, DF27 as written.
    digests: [[u8; 32]; 3],
    signature: Vec<u8>,
    card_key: Option<RsaPublicKey>,
    expiry: Option<String>,
    photo: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for CardFace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardFace([photo {} bytes])", self.photo.len())
    }
}

impl Drop for CardFace {
    fn drop(&mut self) {
        self.digests.zeroize();
    }
}

impl CardFace {
    /// Parses EF 0002 as the card holds it (filler after the object is ignored). Every object
    /// DF22 … DF2A must be there, in order, at the offset DF21 gives for it.
    ///
    /// # Errors
    /// [`FaceError`] naming the part that is wrong.
    pub fn parse(file: &[u8]) -> Result<CardFace, FaceError> {
        let outer = tlv::expect(file, TAG_FACE).map_err(|_| FaceError("no FF20 object"))?;
        let mut children = outer.children();
        let table = match children.next() {
            Some(Ok(t)) if t.tag == TAG_OFFSETS && t.value.len() == 2 * FIELDS.len() => t,
            _ => return Err(FaceError("no offset table (DF21) of nine entries")),
        };
        let mut position = outer.header_len + table.total_len();
        let mut objects: Vec<(Tlv<'_>, &[u8])> = Vec::with_capacity(FIELDS.len());
        for (tag, declared) in FIELDS.iter().zip(table.value.chunks_exact(2)) {
            let object = match children.next() {
                Some(Ok(t)) if t.tag == *tag => t,
                _ => return Err(FaceError("the objects are not DF22 … DF2A in order")),
            };
            let declared = declared
                .first()
                .zip(declared.get(1))
                .map(|(hi, lo)| usize::from(u16::from_be_bytes([*hi, *lo])));
            if declared != Some(position) {
                return Err(FaceError(
                    "the offset table (DF21) disagrees with the objects",
                ));
            }
            let written = file
                .get(position..position + object.total_len())
                .ok_or(FaceError("an object runs past the file"))?;
            position += object.total_len();
            objects.push((object, written));
        }
        if children.next().is_some() {
            return Err(FaceError("objects after DF2A"));
        }
        let value = |i: usize| objects.get(i).map(|(t, _)| t.value).unwrap_or_default();
        let mut digests = [[0u8; 32]; 3];
        for (digest, range) in digests.iter_mut().zip(DIGESTED) {
            let mut h = Sha256::new();
            for (_, written) in objects.get(range).unwrap_or_default() {
                h.update(written);
            }
            *digest = h.finalize().into();
        }
        Ok(CardFace {
            digests,
            signature: value(SIGNATURE).to_vec(),
            card_key: cvc::card_public_key(value(CARD_KEY)),
            expiry: iso_date(value(EXPIRY)),
            photo: Zeroizing::new(value(PHOTO).to_vec()),
        })
    }

    /// The DigestInfo DF28 signs: SHA-256's prefix with the length of three digests (`04 60`),
    /// then the three.
    pub fn digest_info(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(19 + 96);
        let prefix = HashAlg::Sha256.digest_info_prefix();
        // The SHA-256 prefix says 0x31 bytes in all and a 0x20-byte digest; here 0x71 and 0x60.
        out.push(0x30);
        out.push(0x71);
        out.extend_from_slice(prefix.get(2..prefix.len() - 1).unwrap_or_default());
        out.push(0x60);
        for d in &self.digests {
            out.extend_from_slice(d);
        }
        out
    }

    /// Whether `key` made DF28 over this face (unprefixed PKCS#1 v1.5 over the DigestInfo).
    pub fn signed_by(&self, key: &RsaPublicKey) -> bool {
        key.verify(
            Pkcs1v15Sign::new_unprefixed(),
            &self.digest_info(),
            &self.signature,
        )
        .is_ok()
    }

    /// Whether the card key (DF24) signed `challenge`, taken as a SHA-256 value, the way the
    /// card signs the DigestInfo it is given.
    pub fn card_signed(&self, challenge: &[u8; 32], signature: &[u8]) -> bool {
        let (Some(key), Ok(sig)) = (&self.card_key, Signature::try_from(signature)) else {
            return false;
        };
        VerifyingKey::<Sha256>::new(key.clone())
            .verify_prehash(challenge, &sig)
            .is_ok()
    }

    /// DF29 as an ISO date (`2035-01-02`), when it is one. Not covered by the signature.
    pub fn expiry(&self) -> Option<&str> {
        self.expiry.as_deref()
    }

    /// DF27, the face photo as stored (JPEG 2000).
    pub fn photo(&self) -> &[u8] {
        &self.photo
    }

    /// Takes the photo out.
    pub fn into_photo(mut self) -> Zeroizing<Vec<u8>> {
        std::mem::take(&mut self.photo)
    }

    #[cfg(test)]
    fn set_digest(&mut self, i: usize, digest: [u8; 32]) {
        if let Some(d) = self.digests.get_mut(i) {
            *d = digest;
        }
    }
}

/// `YYYYMMDD` (ASCII) as `YYYY-MM-DD`, when it is a plausible date.
fn iso_date(v: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(v).ok()?;
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let month: u8 = text.get(4..6)?.parse().ok()?;
    let day: u8 = text.get(6..8)?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(format!(
        "{}-{}-{}",
        text.get(..4)?,
        text.get(4..6)?,
        text.get(6..)?
    ))
}

/// The verdicts of `CheckAuthenticity` (DESIGN §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticity {
    /// The visual AP's CV certificate against the configured card CA keys.
    pub cv_certificate: CvCertificateStatus,
    /// DF28 over the face data, by the key the CV certificate certifies.
    pub card_face: CardFaceStatus,
    /// The chip's signature of the challenge, by DF24's key.
    pub challenge: ChallengeStatus,
    /// DF29, ISO; not covered by the signature.
    pub expiry: Option<String>,
}

impl Authenticity {
    /// The face data is what a configured J-LIS card CA's key signed: only then may its photo
    /// leave the daemon (a forged card's image is never handed to a JPEG 2000 decoder).
    pub fn face_signed_by_jlis(&self) -> bool {
        self.cv_certificate == CvCertificateStatus::Verified
            && self.card_face == CardFaceStatus::Verified
    }

    /// All three verified: a card J-LIS made, and this chip is it.
    pub fn genuine(&self) -> bool {
        self.cv_certificate == CvCertificateStatus::Verified
            && self.card_face == CardFaceStatus::Verified
            && self.challenge == ChallengeStatus::Verified
    }
}

/// Judges what the visual AP gave: `cv_certificate` (EF 0004) against `keys`, `face` (EF 0002)
/// against the key it certifies, and `signature` (the card's answer to `80 2A 00 00` over the
/// SHA-256 DigestInfo of `challenge`; `None` when the card refused) against DF24. Returns the
/// verdicts and the parsed face (for its photo), when it parsed.
pub fn check(
    face: &[u8],
    cv_certificate: &[u8],
    challenge: &[u8; 32],
    signature: Option<&[u8]>,
    keys: &CardCaKeys,
) -> (Authenticity, Option<CardFace>) {
    let cvc = CvCertificate::parse(cv_certificate).ok();
    let cv_status = match &cvc {
        None => CvCertificateStatus::Malformed,
        Some(c) => match keys.certifies(c) {
            CvStatus::Verified => CvCertificateStatus::Verified,
            CvStatus::UnknownIssuer | CvStatus::BadSignature => CvCertificateStatus::Untrusted,
        },
    };
    let face = CardFace::parse(face).ok();
    let card_face = match (&face, &cvc) {
        (Some(f), Some(c)) if f.signed_by(&c.public_key) => CardFaceStatus::Verified,
        _ => CardFaceStatus::Mismatch,
    };
    let challenge = match (&face, signature) {
        (Some(f), Some(sig)) if f.card_signed(challenge, sig) => ChallengeStatus::Verified,
        _ => ChallengeStatus::Failed,
    };
    let verdict = Authenticity {
        cv_certificate: cv_status,
        card_face,
        challenge,
        expiry: face.as_ref().and_then(|f| f.expiry().map(str::to_owned)),
    };
    (verdict, face)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::pki::Hierarchy;

    fn repo(p: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
    }

    fn jlis(name: &str) -> Vec<u8> {
        std::fs::read(repo("hw-fixtures/jlis-test-card").join(name)).unwrap()
    }

    /// Real bytes of a J-LIS test card: its face photo is redacted, so DF28 verifies only with
    /// the recorded digest of the original photo, and not over the redacted one (a real-bytes
    /// case of a face altered after signing).
    #[test]
    fn a_jlis_test_card_face_verifies_with_the_recorded_photo_digest() {
        let cvc = CvCertificate::parse(&jlis("surface-0004.bin")).unwrap();
        let keys =
            CardCaKeys::load(Hierarchy::Test, &repo("hw-fixtures/jlis-test-card/card_ca")).unwrap();
        assert_eq!(keys.certifies(&cvc), CvStatus::Verified);
        let mut face = CardFace::parse(&jlis("surface-0002-photo-redacted.bin")).unwrap();
        assert_eq!(face.expiry(), Some("2035-02-17"));
        assert!(!face.signed_by(&cvc.public_key), "the redacted photo");
        let digests = String::from_utf8(jlis("surface-0002-digests.txt")).unwrap();
        let df27 = digests
            .lines()
            .find_map(|l| l.strip_prefix("df27 "))
            .unwrap();
        face.set_digest(2, hex::decode(df27).unwrap().try_into().unwrap());
        assert!(face.signed_by(&cvc.public_key));
        assert_eq!(&face.digest_info()[..19], {
            let mut p = HashAlg::Sha256.digest_info_prefix().to_vec();
            p[1] = 0x71;
            p[18] = 0x60;
            p
        });
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso_date(b"20350102").as_deref(), Some("2035-01-02"));
        assert_eq!(iso_date(b"20351302"), None);
        assert_eq!(iso_date(b"2035010"), None);
        assert_eq!(iso_date(b"2035-1-2"), None);
        assert_eq!(iso_date(&[0xFF; 8]), None);
    }

    #[test]
    fn malformed_faces_are_named_never_a_panic() {
        let good = jlis("surface-0002-photo-redacted.bin");
        assert!(CardFace::parse(&good).is_ok());
        for cut in (0..good.len()).step_by(7) {
            assert!(CardFace::parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        // A wrong offset in DF21.
        let mut bad = good.clone();
        bad[8] ^= 1;
        assert!(CardFace::parse(&bad).is_err());
        // Every byte flipped in turn in the headers: an error or a face, never a panic.
        for i in 0..64 {
            let mut b = good.clone();
            b[i] ^= 0xA5;
            let _ = CardFace::parse(&b);
        }
        for junk in [
            &b""[..],
            b"\xFF\x20\x00",
            b"\xFF\x20\x02\xDF\x21",
            &[0xFF; 300],
        ] {
            assert!(CardFace::parse(junk).is_err());
        }
        // Nothing parses, nothing is verified.
        let keys = CardCaKeys::none(Hierarchy::Test);
        let (v, face) = check(b"", b"", &[0; 32], None, &keys);
        assert!(face.is_none());
        assert_eq!(v.cv_certificate, CvCertificateStatus::Malformed);
        assert_eq!(v.card_face, CardFaceStatus::Mismatch);
        assert_eq!(v.challenge, ChallengeStatus::Failed);
        assert!(!v.genuine());
        assert_eq!(v.expiry, None);
    }
}
