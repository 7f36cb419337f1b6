//! CMS SignedData (RFC 5652) around a signature computed by the card. Signing is two-phase
//! because the private key never leaves the card: [`prepare`] builds the signed attributes and
//! the DigestInfo the card must sign; [`PreparedSignedData::finish`] inserts the card's RSA
//! signature and returns the DER ContentInfo. [`verify_signed_data`] checks such a structure
//! (messageDigest, signature over the DER SET of signed attributes, signer certificate = sid);
//! whether the signer certificate itself is trusted is [`super::verify`]'s job.

use std::fmt;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedAttributes, SignedData, SignerIdentifier,
    SignerInfo, SignerInfos,
};
use der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode, Tag, Tagged};
use rsa::sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
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
const ID_SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// DER prefix of a SHA-256 DigestInfo (RFC 8017 §9.2 note 1).
const DIGEST_INFO_SHA256: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    #[error("signer certificate cannot be decoded")]
    Certificate(#[source] der::Error),
    #[error("DER encoding or decoding failed")]
    Der(#[from] der::Error),
    #[error("signing time cannot be represented")]
    Time,
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

/// Phase 1 result: what the card must sign, and the state needed to finish.
pub struct PreparedSignedData {
    content: Vec<u8>,
    certificate: Certificate,
    signed_attrs: SignedAttributes,
    signed_attrs_der: Vec<u8>,
    digest: [u8; 32],
}

impl fmt::Debug for PreparedSignedData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedSignedData")
            .field("content_len", &self.content.len())
            .field("digest", &hex::encode_upper(self.digest))
            .finish()
    }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, CmsError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

fn sha256_alg() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ID_SHA256,
        parameters: Some(Any::null()),
    }
}

/// Phase 1: signed attributes (contentType id-data, messageDigest SHA-256, signingTime) for
/// `content` signed by the holder of `signer_cert_der` at `signing_time` (unix seconds).
pub fn prepare(
    content: &[u8],
    signer_cert_der: &[u8],
    signing_time: i64,
) -> Result<PreparedSignedData, CmsError> {
    let certificate = Certificate::from_der(signer_cert_der).map_err(CmsError::Certificate)?;
    let secs = u64::try_from(signing_time).map_err(|_| CmsError::Time)?;
    let time = Time::try_from(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .map_err(|_| CmsError::Time)?;
    let content_digest = Sha256::digest(content);
    let signed_attrs: SignedAttributes = SetOfVec::try_from(vec![
        attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA)?)?,
        attribute(
            ID_MESSAGE_DIGEST,
            Any::new(Tag::OctetString, &content_digest[..])?,
        )?,
        attribute(ID_SIGNING_TIME, Any::encode_from(&time)?)?,
    ])?;
    let signed_attrs_der = signed_attrs.to_der()?;
    let digest: [u8; 32] = Sha256::digest(&signed_attrs_der).into();
    Ok(PreparedSignedData {
        content: content.to_vec(),
        certificate,
        signed_attrs,
        signed_attrs_der,
        digest,
    })
}

impl PreparedSignedData {
    /// DER of the `SET OF Attribute` whose SHA-256 is signed.
    pub fn signed_attributes_der(&self) -> &[u8] {
        &self.signed_attrs_der
    }
    /// SHA-256 of [`Self::signed_attributes_der`] — what the card's `Sign(sha256, digest)` takes.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
    /// DER DigestInfo(SHA-256, digest) — what a raw PKCS#1 v1.5 card operation pads and signs.
    pub fn digest_info(&self) -> Vec<u8> {
        let mut v = DIGEST_INFO_SHA256.to_vec();
        v.extend_from_slice(&self.digest);
        v
    }

    /// Phase 2: assemble ContentInfo(SignedData) with the card's PKCS#1 v1.5 `signature`,
    /// content and certificate included, sid = issuerAndSerialNumber. The signature is checked
    /// against the certificate first, so a wrong key or PIN mix-up never yields a CMS.
    pub fn finish(self, signature: &[u8]) -> Result<Vec<u8>, CmsError> {
        let spki = self
            .certificate
            .tbs_certificate
            .subject_public_key_info
            .to_der()?;
        sig::verify_rsa_prehashed(&spki, HashAlg::Sha256, &self.digest, signature)
            .map_err(|_| CmsError::BadSignature)?;
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: self.certificate.tbs_certificate.issuer.clone(),
            serial_number: self.certificate.tbs_certificate.serial_number.clone(),
        });
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid,
            digest_alg: sha256_alg(),
            signed_attrs: Some(self.signed_attrs),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: ID_SHA256_RSA,
                parameters: Some(Any::null()),
            },
            signature: OctetString::new(signature)?,
            unsigned_attrs: None,
        };
        let signed_data = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![sha256_alg()])?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_DATA,
                econtent: Some(Any::new(Tag::OctetString, self.content)?),
            },
            certificates: Some(CertificateSet(SetOfVec::try_from(vec![
                CertificateChoices::Certificate(self.certificate),
            ])?)),
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
        };
        let ci = ContentInfo {
            content_type: ID_SIGNED_DATA,
            content: Any::encode_from(&signed_data)?,
        };
        Ok(ci.to_der()?)
    }
}

/// What a verified SignedData carried.
pub struct VerifiedCms {
    pub content: Vec<u8>,
    pub signer_cert_der: Vec<u8>,
    /// signingTime attribute, unix seconds, if present.
    pub signing_time: Option<i64>,
}

impl fmt::Debug for VerifiedCms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedCms")
            .field("content_len", &self.content.len())
            .field("signing_time", &self.signing_time)
            .finish()
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

/// Verify a DER ContentInfo(SignedData) with one signer and encapsulated content. With `at`,
/// a signingTime later than `at` is refused.
pub fn verify_signed_data(der: &[u8], at: Option<i64>) -> Result<VerifiedCms, CmsError> {
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
    let content = econtent.value().to_vec();

    let hash = hash_of(&si.digest_alg.oid).ok_or(CmsError::Algorithm)?;
    let attrs = si.signed_attrs.as_ref().ok_or(CmsError::Attributes)?;
    let single = |oid: ObjectIdentifier| -> Result<&Any, CmsError> {
        let mut it = attrs.iter().filter(|a| a.oid == oid);
        match (it.next(), it.next()) {
            (Some(a), None) if a.values.len() == 1 => a.values.get(0).ok_or(CmsError::Attributes),
            _ => Err(CmsError::Attributes),
        }
    };
    let ct: ObjectIdentifier = single(ID_CONTENT_TYPE)?
        .decode_as()
        .map_err(|_| CmsError::Attributes)?;
    if ct != sd.encap_content_info.econtent_type {
        return Err(CmsError::ContentType);
    }
    let md = single(ID_MESSAGE_DIGEST)?;
    if md.tag() != Tag::OctetString || md.value() != hash.digest(&content).as_slice() {
        return Err(CmsError::DigestMismatch);
    }
    let signing_time = match attrs.iter().any(|a| a.oid == ID_SIGNING_TIME) {
        false => None,
        true => {
            let t = Time::from_der(&single(ID_SIGNING_TIME)?.to_der()?)
                .map_err(|_| CmsError::Attributes)?;
            Some(i64::try_from(t.to_unix_duration().as_secs()).map_err(|_| CmsError::Time)?)
        }
    };
    if let (Some(t), Some(at)) = (signing_time, at)
        && t > at
    {
        return Err(CmsError::SigningTimeInFuture(t));
    }

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
    let spki = cert.tbs_certificate.subject_public_key_info.to_der()?;
    let attrs_der = attrs.to_der()?;
    let sig_oid = si.signature_algorithm.oid;
    let signature = si.signature.as_bytes();
    let ok = if sig_oid == ID_RSA {
        sig::verify_rsa_prehashed(&spki, hash, &hash.digest(&attrs_der), signature).is_ok()
    } else {
        let alg = SigAlg::from_oid(&sig_oid.to_string()).ok_or(CmsError::Algorithm)?;
        let expected = match alg {
            SigAlg::RsaPkcs1(h) | SigAlg::Ecdsa(h) => h,
        };
        if expected != hash {
            return Err(CmsError::Algorithm);
        }
        sig::verify(&spki, alg, &attrs_der, signature).is_ok()
    };
    if !ok {
        return Err(CmsError::BadSignature);
    }
    Ok(VerifiedCms {
        content,
        signer_cert_der: cert.to_der()?,
        signing_time,
    })
}
