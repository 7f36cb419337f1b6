//! Signature verification shared by certificates, CRLs, OCSP responses and CMS: one place that
//! maps algorithm OIDs to RustCrypto verifiers. Only the algorithms JPKI uses or is expected to
//! use are accepted (DESIGN §5).

use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::{Sha256, Sha384, Sha512};
use rsa::{Pkcs1v15Sign, RsaPublicKey};

pub(crate) const OID_SHA256_RSA: &str = "1.2.840.113549.1.1.11";
pub(crate) const OID_SHA384_RSA: &str = "1.2.840.113549.1.1.12";
pub(crate) const OID_SHA512_RSA: &str = "1.2.840.113549.1.1.13";
pub(crate) const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
pub(crate) const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";

/// The hash functions of the signature algorithms below: the one definition of the API's.
pub(crate) use crate::api::HashAlg;

/// A supported signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigAlg {
    RsaPkcs1(HashAlg),
    Ecdsa(HashAlg),
}

impl SigAlg {
    /// From the dotted OID of an AlgorithmIdentifier; `None` = unsupported.
    pub(crate) fn from_oid(oid: &str) -> Option<SigAlg> {
        Some(match oid {
            OID_SHA256_RSA => SigAlg::RsaPkcs1(HashAlg::Sha256),
            OID_SHA384_RSA => SigAlg::RsaPkcs1(HashAlg::Sha384),
            OID_SHA512_RSA => SigAlg::RsaPkcs1(HashAlg::Sha512),
            OID_ECDSA_SHA256 => SigAlg::Ecdsa(HashAlg::Sha256),
            OID_ECDSA_SHA384 => SigAlg::Ecdsa(HashAlg::Sha384),
            _ => return None,
        })
    }
}

impl SigAlg {
    /// The hash the signature is computed over.
    pub(crate) fn hash(self) -> HashAlg {
        match self {
            SigAlg::RsaPkcs1(h) | SigAlg::Ecdsa(h) => h,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SigError {
    #[error("public key cannot be decoded for this algorithm")]
    Key,
    #[error("signature value cannot be decoded")]
    Encoding,
    #[error("signature does not verify")]
    Invalid,
}

/// Verify `sig` over `msg` with the key in `spki_der` (a DER SubjectPublicKeyInfo).
pub(crate) fn verify(spki_der: &[u8], alg: SigAlg, msg: &[u8], sig: &[u8]) -> Result<(), SigError> {
    match alg {
        SigAlg::RsaPkcs1(hash) => verify_rsa_prehashed(spki_der, hash, &hash.digest(msg), sig),
        SigAlg::Ecdsa(HashAlg::Sha256) => {
            use p256::ecdsa::signature::Verifier;
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|_| SigError::Key)?;
            let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| SigError::Encoding)?;
            key.verify(msg, &sig).map_err(|_| SigError::Invalid)
        }
        SigAlg::Ecdsa(HashAlg::Sha384) => {
            use p384::ecdsa::signature::Verifier;
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|_| SigError::Key)?;
            let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| SigError::Encoding)?;
            key.verify(msg, &sig).map_err(|_| SigError::Invalid)
        }
        // P-521 is not expected on JPKI cards; ecdsa-with-SHA512 is refused by `from_oid`.
        SigAlg::Ecdsa(HashAlg::Sha512) => Err(SigError::Key),
    }
}

/// [`verify`] of a message hashed beforehand with `alg.hash()` (a CRL too large to hold in
/// memory is hashed while it is read).
pub(crate) fn verify_digest(
    spki_der: &[u8],
    alg: SigAlg,
    digest: &[u8],
    sig: &[u8],
) -> Result<(), SigError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    match alg {
        SigAlg::RsaPkcs1(hash) => verify_rsa_prehashed(spki_der, hash, digest, sig),
        SigAlg::Ecdsa(HashAlg::Sha256) => {
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|_| SigError::Key)?;
            let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| SigError::Encoding)?;
            key.verify_prehash(digest, &sig)
                .map_err(|_| SigError::Invalid)
        }
        SigAlg::Ecdsa(HashAlg::Sha384) => {
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|_| SigError::Key)?;
            let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| SigError::Encoding)?;
            key.verify_prehash(digest, &sig)
                .map_err(|_| SigError::Invalid)
        }
        SigAlg::Ecdsa(HashAlg::Sha512) => Err(SigError::Key),
    }
}

/// PKCS#1 v1.5 verification of an already computed digest (CMS with `rsaEncryption`).
pub(crate) fn verify_rsa_prehashed(
    spki_der: &[u8],
    hash: HashAlg,
    digest: &[u8],
    sig: &[u8],
) -> Result<(), SigError> {
    let key = RsaPublicKey::from_public_key_der(spki_der).map_err(|_| SigError::Key)?;
    let scheme = match hash {
        HashAlg::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
        HashAlg::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
        HashAlg::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
    };
    key.verify(scheme, digest, sig)
        .map_err(|_| SigError::Invalid)
}
