//! The DigestInfo of RFC 8017 §9.2: what a PKCS#1 v1.5 signature covers. The card pads exactly
//! the bytes it is given (`80 2A 00 …`, `docs/reference/jpki-protocol.md` §6.6), so jpkid hands it a
//! DigestInfo; `pki` checks signatures over the same structure. One definition for both. Pure.

use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::api::HashAlg;

impl HashAlg {
    /// The hash of `msg`.
    pub fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha256 => Sha256::digest(msg).to_vec(),
            HashAlg::Sha384 => Sha384::digest(msg).to_vec(),
            HashAlg::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// DER of `DigestInfo { AlgorithmIdentifier(hash, NULL), OCTET STRING (len) }` up to the
    /// digest (RFC 8017 §9.2 note 1; the same bytes every JPKI tool sends, §6.6).
    pub fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// A digest of the right length for its hash, wrapped as a DigestInfo: the validated form of
/// "sign this digest", built once where a request enters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestInfo {
    hash: HashAlg,
    der: Vec<u8>,
}

/// A digest whose length does not fit its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {hash} digest has {expected} bytes, got {got}")]
pub struct DigestLength {
    /// The hash algorithm named.
    pub hash: HashAlg,
    /// Its digest length.
    pub expected: usize,
    /// The length given.
    pub got: usize,
}

impl DigestInfo {
    /// Wraps `digest` for `hash`.
    ///
    /// # Errors
    /// [`DigestLength`] when the digest does not have the hash's length.
    pub fn new(hash: HashAlg, digest: &[u8]) -> Result<DigestInfo, DigestLength> {
        if digest.len() != hash.digest_len() {
            return Err(DigestLength {
                hash,
                expected: hash.digest_len(),
                got: digest.len(),
            });
        }
        let mut der = Vec::with_capacity(hash.digest_info_prefix().len() + digest.len());
        der.extend_from_slice(hash.digest_info_prefix());
        der.extend_from_slice(digest);
        Ok(DigestInfo { hash, der })
    }

    /// The DigestInfo of SHA-256 over `message`.
    pub fn sha256_of(message: &[u8]) -> DigestInfo {
        let digest = Sha256::digest(message);
        let mut der = Vec::with_capacity(51);
        der.extend_from_slice(HashAlg::Sha256.digest_info_prefix());
        der.extend_from_slice(&digest);
        DigestInfo {
            hash: HashAlg::Sha256,
            der,
        }
    }

    /// The hash algorithm.
    pub fn hash(&self) -> HashAlg {
        self.hash
    }

    /// The digest alone.
    pub fn digest(&self) -> &[u8] {
        self.der
            .get(self.hash.digest_info_prefix().len()..)
            .unwrap_or_default()
    }

    /// The DER the card pads and signs.
    pub fn as_bytes(&self) -> &[u8] {
        &self.der
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn lengths_and_refusals() {
        assert_eq!(
            DigestInfo::new(HashAlg::Sha256, &[0; 32])
                .unwrap()
                .as_bytes()
                .len(),
            51
        );
        assert_eq!(
            DigestInfo::new(HashAlg::Sha384, &[0; 48])
                .unwrap()
                .as_bytes()
                .len(),
            67
        );
        assert_eq!(
            DigestInfo::new(HashAlg::Sha512, &[0; 64])
                .unwrap()
                .as_bytes()
                .len(),
            83
        );
        let e = DigestInfo::new(HashAlg::Sha256, &[0; 31]).unwrap_err();
        assert_eq!((e.expected, e.got), (32, 31));
        assert_eq!(e.to_string(), "a sha256 digest has 32 bytes, got 31");
        assert!(DigestInfo::new(HashAlg::Sha512, &[]).is_err());
    }

    /// Each prefix is the DER of the DigestInfo header (RFC 8017 §9.2 note 1).
    #[test]
    fn prefixes_are_the_der_headers() {
        for h in HashAlg::ALL {
            let d = DigestInfo::new(*h, &vec![7; h.digest_len()]).unwrap();
            let der = d.as_bytes();
            assert_eq!(usize::from(der[1]) + 2, der.len(), "{h}");
            assert_eq!(d.digest(), vec![7; h.digest_len()].as_slice());
        }
        let m = DigestInfo::sha256_of(b"abc");
        assert_eq!(
            hex::encode(m.digest()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
