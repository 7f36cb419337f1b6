//! Reproducible test keys and the signature algorithms the test PKI signs with.
//!
//! Every key comes from a `ChaCha20Rng` seeded with the SHA-256 of a fixed label, so the same
//! label always gives the same key (for a fixed `rsa`/`p256`/`p384` version).

use der::asn1::ObjectIdentifier;
use der::{Any, Decode};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::TestPkiError;

/// sha256WithRSAEncryption.
pub const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// sha384WithRSAEncryption.
pub const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption.
pub const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
/// ecdsa-with-SHA256.
pub const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384.
pub const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// Signature algorithm of a certificate or CRL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigAlg {
    /// RSA PKCS#1 v1.5 with SHA-256 (what JPKI uses today).
    RsaSha256,
    /// RSA PKCS#1 v1.5 with SHA-384.
    RsaSha384,
    /// RSA PKCS#1 v1.5 with SHA-512.
    RsaSha512,
    /// ECDSA P-256 with SHA-256.
    EcdsaSha256,
    /// ECDSA P-384 with SHA-384 (reported for the next card generation).
    EcdsaSha384,
}

impl SigAlg {
    /// The AlgorithmIdentifier; RSA ones carry explicit NULL parameters, ECDSA ones none
    /// (RFC 4055 / RFC 5758).
    pub fn identifier(self) -> AlgorithmIdentifierOwned {
        let (oid, parameters) = match self {
            SigAlg::RsaSha256 => (SHA256_WITH_RSA, Some(Any::null())),
            SigAlg::RsaSha384 => (SHA384_WITH_RSA, Some(Any::null())),
            SigAlg::RsaSha512 => (SHA512_WITH_RSA, Some(Any::null())),
            SigAlg::EcdsaSha256 => (ECDSA_WITH_SHA256, None),
            SigAlg::EcdsaSha384 => (ECDSA_WITH_SHA384, None),
        };
        AlgorithmIdentifierOwned { oid, parameters }
    }
}

/// A private key of the test PKI.
#[derive(Clone, Debug)]
pub enum TestKey {
    /// RSA-2048, the only kind on today's cards.
    Rsa(Box<RsaPrivateKey>),
    /// NIST P-256.
    P256(p256::SecretKey),
    /// NIST P-384.
    P384(p384::SecretKey),
}

/// The deterministic RNG for one label.
fn rng_for(label: &str) -> ChaCha20Rng {
    let seed: [u8; 32] = Sha256::digest(format!("jpki-vcard testpki key: {label}")).into();
    ChaCha20Rng::from_seed(seed)
}

impl TestKey {
    /// RSA-2048 key derived from `label`.
    pub fn rsa(label: &str) -> Result<Self, TestPkiError> {
        let mut rng = rng_for(label);
        let key = RsaPrivateKey::new(&mut rng, 2048).map_err(|source| TestPkiError::KeyGen {
            label: label.to_owned(),
            source,
        })?;
        Ok(TestKey::Rsa(Box::new(key)))
    }

    /// P-256 key derived from `label`.
    pub fn p256(label: &str) -> Self {
        TestKey::P256(p256::SecretKey::random(&mut rng_for(label)))
    }

    /// P-384 key derived from `label`.
    pub fn p384(label: &str) -> Self {
        TestKey::P384(p384::SecretKey::random(&mut rng_for(label)))
    }

    /// The RSA public key, when this is an RSA key.
    pub fn rsa_public(&self) -> Option<RsaPublicKey> {
        match self {
            TestKey::Rsa(k) => Some(k.to_public_key()),
            _ => None,
        }
    }

    /// The signature algorithm this key signs with by default.
    pub fn default_alg(&self) -> SigAlg {
        match self {
            TestKey::Rsa(_) => SigAlg::RsaSha256,
            TestKey::P256(_) => SigAlg::EcdsaSha256,
            TestKey::P384(_) => SigAlg::EcdsaSha384,
        }
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> Result<Vec<u8>, TestPkiError> {
        let doc = match self {
            TestKey::Rsa(k) => k.to_public_key().to_public_key_der(),
            TestKey::P256(k) => k.public_key().to_public_key_der(),
            TestKey::P384(k) => k.public_key().to_public_key_der(),
        }
        .map_err(|source| TestPkiError::Spki { source })?;
        Ok(doc.as_bytes().to_vec())
    }

    /// SubjectPublicKeyInfo as the x509-cert type.
    pub fn spki(&self) -> Result<SubjectPublicKeyInfoOwned, TestPkiError> {
        Ok(SubjectPublicKeyInfoOwned::from_der(&self.spki_der()?)?)
    }

    /// PKCS#8 PrivateKeyInfo DER (test keys only: written to disk on purpose).
    pub fn pkcs8_der(&self) -> Result<Vec<u8>, TestPkiError> {
        let doc = match self {
            TestKey::Rsa(k) => k.to_pkcs8_der(),
            TestKey::P256(k) => k.to_pkcs8_der(),
            TestKey::P384(k) => k.to_pkcs8_der(),
        }
        .map_err(|source| TestPkiError::Pkcs8 { source })?;
        Ok(doc.as_bytes().to_vec())
    }

    /// RSA PKCS#1 v1.5 signature of exactly `payload` (no DigestInfo added): what the card's
    /// `80 2A P1=00` does, and how the card-face DF28 is signed.
    pub fn sign_pkcs1_raw(&self, payload: &[u8]) -> Result<Vec<u8>, TestPkiError> {
        match self {
            TestKey::Rsa(k) => k
                .sign(rsa::Pkcs1v15Sign::new_unprefixed(), payload)
                .map_err(TestPkiError::RawSign),
            _ => Err(TestPkiError::AlgMismatch(SigAlg::RsaSha256)),
        }
    }

    /// Signs `msg` with `alg`; the key type must match the algorithm family.
    pub fn sign(&self, alg: SigAlg, msg: &[u8]) -> Result<Vec<u8>, TestPkiError> {
        use rsa::pkcs1v15::SigningKey;
        let sig = match (self, alg) {
            (TestKey::Rsa(k), SigAlg::RsaSha256) => SigningKey::<Sha256>::new((**k).clone())
                .try_sign(msg)?
                .to_vec(),
            (TestKey::Rsa(k), SigAlg::RsaSha384) => SigningKey::<Sha384>::new((**k).clone())
                .try_sign(msg)?
                .to_vec(),
            (TestKey::Rsa(k), SigAlg::RsaSha512) => SigningKey::<Sha512>::new((**k).clone())
                .try_sign(msg)?
                .to_vec(),
            (TestKey::P256(k), SigAlg::EcdsaSha256) => {
                let sig: p256::ecdsa::DerSignature =
                    p256::ecdsa::SigningKey::from(k).try_sign(msg)?;
                sig.to_vec()
            }
            (TestKey::P384(k), SigAlg::EcdsaSha384) => {
                let sig: p384::ecdsa::DerSignature =
                    p384::ecdsa::SigningKey::from(k).try_sign(msg)?;
                sig.to_vec()
            }
            _ => return Err(TestPkiError::AlgMismatch(alg)),
        };
        Ok(sig)
    }
}
