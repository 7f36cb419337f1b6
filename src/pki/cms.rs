//! CMS SignedData (RFC 5652) around a signature computed by the card. [`sign`] builds it with
//! the `cms` crate's builder for any [`Signer`] of PKCS#1 v1.5 SHA-256 signatures — the card's
//! signing key in a flow (its private key never leaves the card), a test key in tests: content
//! encapsulated as id-data, signed attributes contentType, messageDigest (SHA-256) and
//! signingTime, the signer's certificate included, sid = issuerAndSerialNumber. The result is
//! verified before it is returned, so a card whose key is not its certificate's never yields a
//! CMS. [`open`] takes such a structure apart (a malformed one is an error) and
//! [`Opened::check`] checks its signature (messageDigest, signature over the DER SET of signed
//! attributes, signer certificate = sid), so that a caller can tell "not a SignedData" from "a
//! SignedData whose signature fails"; whether the signer certificate itself is trusted is
//! [`super::verify`]'s job.

use std::fmt;

use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::ContentInfo;
use cms::signed_data::{EncapsulatedContentInfo, SignedData, SignerIdentifier};
use der::asn1::{Any, ObjectIdentifier, SetOfVec};
use der::{Decode, Encode, Tag, Tagged};
use rsa::pkcs1v15::Signature;
use rsa::signature::{Keypair, Signer};
use spki::{AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::time::Time;

use super::sig::{self, HashAlg, SigAlg};

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const ID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    #[error("signer certificate cannot be decoded")]
    Certificate(#[source] der::Error),
    #[error("DER encoding or decoding failed")]
    Der(#[from] der::Error),
    #[error("signing time cannot be represented")]
    Time,
    #[error("the signer failed")]
    Signer,
    #[error("the SignedData could not be built: {0}")]
    Build(String),
    #[error("not a CMS SignedData ContentInfo")]
    NotSignedData,
    #[error("SignedData must have exactly one SignerInfo")]
    SignerCount,
    #[error("content is detached or not an OCTET STRING")]
    NoContent,
    #[error("signed attributes are missing or lack contentType / messageDigest")]
    Attributes,
    #[error("contentType attribute differs from the encapsulated content type")]
    ContentType,
    #[error("messageDigest does not match the content")]
    DigestMismatch,
    #[error("no certificate in the SignedData matches the signer identifier")]
    SignerCertificateMissing,
    #[error("unsupported digest or signature algorithm")]
    Algorithm,
    #[error("signature does not verify")]
    BadSignature,
    #[error("signing time {0} is after the verification time")]
    SigningTimeInFuture(i64),
}

fn sha256_alg() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ID_SHA256,
        parameters: Some(Any::null()),
    }
}

fn build_error(e: cms::builder::Error) -> CmsError {
    CmsError::Build(format!("{e:?}"))
}

fn time_of(unix: i64) -> Result<Time, CmsError> {
    let secs = u64::try_from(unix).map_err(|_| CmsError::Time)?;
    Time::try_from(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .map_err(|_| CmsError::Time)
}

/// Builds a DER ContentInfo(SignedData) of `content`, signed by `signer` as the holder of
/// `signer_cert_der` at `signing_time` (unix seconds), and checks the result.
///
/// # Errors
/// [`CmsError::Certificate`] for a certificate that cannot be decoded, [`CmsError::Signer`]
/// when the signer fails (the card's own error is the signer's to keep), [`CmsError::BadSignature`]
/// when the signature does not verify with the certificate (the signer's key is not its).
pub fn sign<S>(
    content: &[u8],
    signer_cert_der: &[u8],
    signing_time: i64,
    signer: &S,
) -> Result<Vec<u8>, CmsError>
where
    S: Keypair + DynSignatureAlgorithmIdentifier + Signer<Signature>,
    S::VerifyingKey: EncodePublicKey,
{
    let certificate = Certificate::from_der(signer_cert_der).map_err(CmsError::Certificate)?;
    let content_info = EncapsulatedContentInfo {
        econtent_type: ID_DATA,
        econtent: Some(Any::new(Tag::OctetString, content)?),
    };
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: certificate.tbs_certificate.issuer.clone(),
        serial_number: certificate.tbs_certificate.serial_number.clone(),
    });
    let mut signer_info = SignerInfoBuilder::new(signer, sid, sha256_alg(), &content_info, None)
        .map_err(build_error)?;
    signer_info
        .add_signed_attribute(Attribute {
            oid: ID_SIGNING_TIME,
            values: SetOfVec::try_from(vec![Any::encode_from(&time_of(signing_time)?)?])?,
        })
        .map_err(build_error)?;
    let mut builder = SignedDataBuilder::new(&content_info);
    builder
        .add_digest_algorithm(sha256_alg())
        .map_err(build_error)?
        .add_certificate(CertificateChoices::Certificate(certificate))
        .map_err(build_error)?;
    builder
        .add_signer_info::<S, Signature>(signer_info)
        .map_err(|_| CmsError::Signer)?;
    let der = builder.build().map_err(build_error)?.to_der()?;
    // The card signed something: that it verifies with the certificate is the proof that the
    // card holds the certificate's key.
    verify_signed_data(&der, None)?;
    Ok(der)
}

/// A SignedData taken apart: what it carries, before its signature is checked
/// ([`Opened::check`]). Opening fails only on a structure that is not a one-signer SignedData
/// with encapsulated content and the signer's certificate.
pub struct Opened {
    /// The encapsulated content.
    pub content: Vec<u8>,
    /// The signer's certificate, DER.
    pub signer_cert_der: Vec<u8>,
    /// signingTime attribute, unix seconds, if present.
    pub signing_time: Option<i64>,
    content_type_signed: ObjectIdentifier,
    content_type: ObjectIdentifier,
    message_digest: Vec<u8>,
    hash: HashAlg,
    signed_attrs_der: Vec<u8>,
    signature_alg: ObjectIdentifier,
    signature: Vec<u8>,
    spki_der: Vec<u8>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("content_len", &self.content.len())
            .field("signing_time", &self.signing_time)
            .finish_non_exhaustive()
    }
}

fn hash_of(oid: &ObjectIdentifier) -> Option<HashAlg> {
    match *oid {
        ID_SHA256 => Some(HashAlg::Sha256),
        ID_SHA384 => Some(HashAlg::Sha384),
        ID_SHA512 => Some(HashAlg::Sha512),
        _ => None,
    }
}

/// Takes a DER ContentInfo(SignedData) apart: one signer, encapsulated content, signed
/// attributes with one contentType and one messageDigest (and at most one signingTime), a
/// supported digest, and the certificate the signer identifier names.
///
/// # Errors
/// The [`CmsError`] naming what is missing or malformed.
pub fn open(der: &[u8]) -> Result<Opened, CmsError> {
    let ci = ContentInfo::from_der(der).map_err(|_| CmsError::NotSignedData)?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(CmsError::NotSignedData);
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|_| CmsError::NotSignedData)?;
    let signers = sd.signer_infos.0.as_slice();
    let [si] = signers else {
        return Err(CmsError::SignerCount);
    };
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or(CmsError::NoContent)?;
    if econtent.tag() != Tag::OctetString {
        return Err(CmsError::NoContent);
    }
    let hash = hash_of(&si.digest_alg.oid).ok_or(CmsError::Algorithm)?;
    let attrs = si.signed_attrs.as_ref().ok_or(CmsError::Attributes)?;
    let single = |oid: ObjectIdentifier| -> Result<&Any, CmsError> {
        let mut it = attrs.iter().filter(|a| a.oid == oid);
        match (it.next(), it.next()) {
            (Some(a), None) if a.values.len() == 1 => a.values.get(0).ok_or(CmsError::Attributes),
            _ => Err(CmsError::Attributes),
        }
    };
    let content_type_signed: ObjectIdentifier = single(ID_CONTENT_TYPE)?
        .decode_as()
        .map_err(|_| CmsError::Attributes)?;
    let md = single(ID_MESSAGE_DIGEST)?;
    if md.tag() != Tag::OctetString {
        return Err(CmsError::Attributes);
    }
    let signing_time = match attrs.iter().any(|a| a.oid == ID_SIGNING_TIME) {
        false => None,
        true => {
            let t = Time::from_der(&single(ID_SIGNING_TIME)?.to_der()?)
                .map_err(|_| CmsError::Attributes)?;
            Some(i64::try_from(t.to_unix_duration().as_secs()).map_err(|_| CmsError::Time)?)
        }
    };
    let SignerIdentifier::IssuerAndSerialNumber(ias) = &si.sid else {
        return Err(CmsError::SignerCertificateMissing);
    };
    let cert = sd
        .certificates
        .iter()
        .flat_map(|s| s.0.iter())
        .find_map(|c| match c {
            CertificateChoices::Certificate(c)
                if c.tbs_certificate.issuer == ias.issuer
                    && c.tbs_certificate.serial_number == ias.serial_number =>
            {
                Some(c)
            }
            _ => None,
        })
        .ok_or(CmsError::SignerCertificateMissing)?;
    Ok(Opened {
        content: econtent.value().to_vec(),
        signer_cert_der: cert.to_der()?,
        signing_time,
        content_type_signed,
        content_type: sd.encap_content_info.econtent_type,
        message_digest: md.value().to_vec(),
        hash,
        signed_attrs_der: attrs.to_der()?,
        signature_alg: si.signature_algorithm.oid,
        signature: si.signature.as_bytes().to_vec(),
        spki_der: cert.tbs_certificate.subject_public_key_info.to_der()?,
    })
}

impl Opened {
    /// Checks the signature: the content type and digest the signed attributes name are the
    /// content's, and the signature over the signed attributes verifies with the signer's
    /// certificate. Whether that certificate is trusted is [`super::verify`]'s question.
    ///
    /// # Errors
    /// [`CmsError::ContentType`], [`CmsError::DigestMismatch`], [`CmsError::BadSignature`], or
    /// [`CmsError::Algorithm`] for a signature algorithm that is not the digest's.
    pub fn check(&self) -> Result<(), CmsError> {
        if self.content_type_signed != self.content_type {
            return Err(CmsError::ContentType);
        }
        if self.message_digest != self.hash.digest(&self.content).as_slice() {
            return Err(CmsError::DigestMismatch);
        }
        let hash = self.hash;
        let ok = if self.signature_alg == ID_RSA {
            sig::verify_rsa_prehashed(
                &self.spki_der,
                hash,
                &hash.digest(&self.signed_attrs_der),
                &self.signature,
            )
            .is_ok()
        } else {
            let alg =
                SigAlg::from_oid(&self.signature_alg.to_string()).ok_or(CmsError::Algorithm)?;
            let expected = match alg {
                SigAlg::RsaPkcs1(h) | SigAlg::Ecdsa(h) => h,
            };
            if expected != hash {
                return Err(CmsError::Algorithm);
            }
            sig::verify(&self.spki_der, alg, &self.signed_attrs_der, &self.signature).is_ok()
        };
        if ok {
            Ok(())
        } else {
            Err(CmsError::BadSignature)
        }
    }
}

/// Opens and checks a DER ContentInfo(SignedData) ([`open`], [`Opened::check`]). With `at`, a
/// signingTime later than `at` is refused.
///
/// # Errors
/// The [`CmsError`] of the first check that fails.
pub fn verify_signed_data(der: &[u8], at: Option<i64>) -> Result<Opened, CmsError> {
    let opened = open(der)?;
    opened.check()?;
    if let (Some(t), Some(at)) = (opened.signing_time, at)
        && t > at
    {
        return Err(CmsError::SigningTimeInFuture(t));
    }
    Ok(opened)
}
