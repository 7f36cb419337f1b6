//! Reading a CRL as a stream: [`CrlReader`] is fed the file in chunks of any size and walks
//! the outer DER by hand (der 0.7 caps lengths at 256 MiB; a national CRL is larger), the TBS
//! fields and extensions, and the revokedCertificates entries, each decoded in place and handed
//! to the caller as it completes. While it reads it hashes the file (SHA-256, for the index
//! header) and the tbsCertList (with the hash of the signature algorithm), so the signature can
//! be checked at the end without the CRL ever being in memory.
//!
//! Memory: one element at most is held across two chunks (an entry, the issuer name, the
//! crlExtensions, the signature; each at most [`MAX_ELEMENT`] bytes). Pure: bytes in, fields
//! out; no file I/O, no signature check.

use rsa::sha2::{Digest, Sha256, Sha384, Sha512};

use super::CrlError;
use super::index::{MAX_CRL_NUMBER, MAX_SERIAL, NO_REASON};
use crate::pki::RevocationReason;
use crate::pki::derwalk::{self, DerError, Tlv};
use crate::pki::sig::{HashAlg, SigAlg};

const OID_AKI: &[u8] = &[0x55, 0x1D, 0x23];
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1D, 0x14];
const OID_DELTA_CRL: &[u8] = &[0x55, 0x1D, 0x1B];
const OID_IDP: &[u8] = &[0x55, 0x1D, 0x1C];
const OID_REASON: &[u8] = &[0x55, 0x1D, 0x15];
const OID_INVALIDITY_DATE: &[u8] = &[0x55, 0x1D, 0x18];

/// The largest single element the reader holds at once (an entry, the issuer name, the
/// crlExtensions, the signature). Larger ones are refused; CRL elements are far smaller.
pub(super) const MAX_ELEMENT: usize = 1 << 20;
/// A TLV header is at most 10 bytes (tag, 0x88, 8 length bytes).
const MAX_HEADER: usize = 10;

/// One decoded CRL entry.
pub(super) struct Entry<'a> {
    pub(super) serial: &'a [u8],
    pub(super) reason: u8,
    pub(super) date: u32,
}

/// Everything but the entries, once the whole CertificateList was read.
#[derive(Debug, Clone)]
pub(super) struct CrlParts {
    /// Dotted OID of the signature algorithm.
    pub(super) alg_oid: String,
    /// The signature algorithm, `None` when jpkid does not support it.
    pub(super) alg: Option<SigAlg>,
    /// Digest of the tbsCertList with the algorithm's hash (`None` with `alg`).
    pub(super) tbs_digest: Option<Vec<u8>>,
    pub(super) signature: Vec<u8>,
    pub(super) issuer_raw: Vec<u8>,
    pub(super) this_update: i64,
    pub(super) next_update: i64,
    pub(super) aki: Option<Vec<u8>>,
    pub(super) crl_number: Vec<u8>,
    /// SHA-256 of the whole file.
    pub(super) file_sha256: [u8; 32],
    pub(super) entries: u64,
    /// Longest serial magnitude of any entry (0 without entries).
    pub(super) max_serial_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// CertificateList SEQUENCE header.
    Outer,
    /// tbsCertList SEQUENCE header.
    Tbs,
    /// version (optional INTEGER) or, without it, the signature AlgorithmIdentifier.
    Version,
    Algorithm,
    Issuer,
    ThisUpdate,
    /// nextUpdate (optional), then as `AfterNextUpdate`.
    AfterThisUpdate,
    /// revokedCertificates header, crlExtensions, or the end of the TBS.
    AfterNextUpdate,
    Entries,
    /// crlExtensions or the end of the TBS.
    AfterEntries,
    /// The end of the TBS.
    AfterExtensions,
    OuterAlgorithm,
    Signature,
    /// The end of the CertificateList.
    AfterSignature,
    Done,
}

/// The running digest of the tbsCertList: its first bytes are read before the algorithm that
/// says which hash to use.
enum TbsHash {
    Pending(Vec<u8>),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
    Unsupported,
}

impl TbsHash {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            TbsHash::Pending(v) => v.extend_from_slice(bytes),
            TbsHash::Sha256(h) => h.update(bytes),
            TbsHash::Sha384(h) => h.update(bytes),
            TbsHash::Sha512(h) => h.update(bytes),
            TbsHash::Unsupported => {}
        }
    }

    fn start(&mut self, alg: Option<HashAlg>) {
        let pending = match self {
            TbsHash::Pending(v) => std::mem::take(v),
            _ => return,
        };
        *self = match alg {
            Some(HashAlg::Sha256) => TbsHash::Sha256(Sha256::new()),
            Some(HashAlg::Sha384) => TbsHash::Sha384(Sha384::new()),
            Some(HashAlg::Sha512) => TbsHash::Sha512(Sha512::new()),
            None => TbsHash::Unsupported,
        };
        self.update(&pending);
    }

    fn finish(self) -> Option<Vec<u8>> {
        match self {
            TbsHash::Sha256(h) => Some(h.finalize().to_vec()),
            TbsHash::Sha384(h) => Some(h.finalize().to_vec()),
            TbsHash::Sha512(h) => Some(h.finalize().to_vec()),
            TbsHash::Pending(_) | TbsHash::Unsupported => None,
        }
    }
}

/// A CRL reader fed in chunks: [`CrlReader::feed`] each chunk in file order (any sizes), then
/// [`CrlReader::finish`].
pub(super) struct CrlReader {
    state: State,
    /// File offset of the next byte not yet consumed.
    pos: u64,
    /// The start of an element that straddles two chunks (at most `MAX_HEADER + MAX_ELEMENT`).
    carry: Vec<u8>,
    file_hash: Sha256,
    tbs_hash: TbsHash,
    /// [start, end) of the tbsCertList in the file, once its header was read.
    tbs: Option<(u64, u64)>,
    outer_end: u64,
    /// The length of the whole input, when known beforehand (a file's size).
    input_len: Option<u64>,
    list_end: u64,
    alg_raw: Vec<u8>,
    alg_oid: String,
    alg: Option<SigAlg>,
    issuer_raw: Option<Vec<u8>>,
    this_update: i64,
    next_update: Option<i64>,
    aki: Option<Vec<u8>>,
    crl_number: Vec<u8>,
    signature: Vec<u8>,
    entries: u64,
    max_serial_len: usize,
}

impl std::fmt::Debug for CrlReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlReader")
            .field("state", &self.state)
            .field("pos", &self.pos)
            .finish()
    }
}

/// Tag, content length and header length of the TLV at the front of `input`; `None` when
/// `input` is too short to tell. Same rules as [`derwalk::read_tlv`].
fn header(input: &[u8]) -> Result<Option<(u8, u64, usize)>, DerError> {
    let (Some(&tag), Some(&first)) = (input.first(), input.get(1)) else {
        return Ok(None);
    };
    if tag & 0x1F == 0x1F {
        return Err(DerError::Encoding);
    }
    if first < 0x80 {
        return Ok(Some((tag, u64::from(first), 2)));
    }
    let n = usize::from(first & 0x7F);
    if n == 0 || n > 8 {
        return Err(DerError::Encoding);
    }
    let Some(bytes) = input.get(2..2 + n) else {
        return Ok(None);
    };
    if bytes[0] == 0 {
        return Err(DerError::Encoding);
    }
    let len = bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
    if len < 0x80 {
        return Err(DerError::Encoding);
    }
    Ok(Some((tag, len, 2 + n)))
}

/// What a step of the reader did.
enum Step {
    /// `input` holds no complete element: more bytes are needed.
    More,
    /// That many bytes were consumed.
    Used(usize),
}

impl CrlReader {
    pub(super) fn new() -> CrlReader {
        CrlReader {
            state: State::Outer,
            pos: 0,
            carry: Vec::new(),
            file_hash: Sha256::new(),
            tbs_hash: TbsHash::Pending(Vec::new()),
            tbs: None,
            outer_end: 0,
            input_len: None,
            list_end: 0,
            alg_raw: Vec::new(),
            alg_oid: String::new(),
            alg: None,
            issuer_raw: None,
            this_update: 0,
            next_update: None,
            aki: None,
            crl_number: Vec::new(),
            signature: Vec::new(),
            entries: 0,
            max_serial_len: 0,
        }
    }

    /// The input will be `len` bytes long (a file's size): a CertificateList header that
    /// announces another length is refused as soon as it is read, not at the end of the file.
    pub(super) fn expect_len(&mut self, len: u64) {
        self.input_len = Some(len);
    }

    /// The length of the whole CertificateList, as soon as its header was read.
    pub(super) fn declared_len(&self) -> Option<u64> {
        (self.state != State::Outer).then_some(self.outer_end)
    }

    /// The signature algorithm once it was read: `Err(oid)` when jpkid does not support it.
    pub(super) fn algorithm(&self) -> Option<Result<SigAlg, &str>> {
        if self.alg_oid.is_empty() {
            return None;
        }
        Some(self.alg.ok_or(self.alg_oid.as_str()))
    }

    /// The issuer name (DER), as soon as it was read.
    pub(super) fn issuer(&self) -> Option<&[u8]> {
        self.issuer_raw.as_deref()
    }

    /// Read the next `chunk` of the file, calling `sink` for each entry that completes in it.
    pub(super) fn feed<F>(&mut self, chunk: &[u8], sink: &mut F) -> Result<(), CrlError>
    where
        F: FnMut(Entry<'_>) -> Result<(), CrlError>,
    {
        let mut ci = 0usize;
        // First complete the element carried over from the previous chunk: append as few
        // bytes of this chunk as it takes (doubling), so a boundary costs about the size of
        // the element that straddles it, not of the chunk.
        while !self.carry.is_empty() {
            let old = self.carry.len();
            let room = (MAX_HEADER + MAX_ELEMENT).saturating_sub(old);
            let rest = chunk.len() - ci;
            let mut take = rest.min(room).min(old.max(64) * 2);
            let mut carry = std::mem::take(&mut self.carry);
            loop {
                carry.truncate(old);
                carry.extend_from_slice(&chunk[ci..ci + take]);
                match self.step(&carry, sink)? {
                    Step::More if take < rest.min(room) => {
                        take = rest.min(room).min(take * 2);
                    }
                    Step::More => {
                        if take < rest {
                            // Cannot happen: `step` refuses elements over MAX_ELEMENT first.
                            return Err(CrlError::Structure("a CRL element is larger than 1 MiB"));
                        }
                        self.carry = carry;
                        return Ok(());
                    }
                    Step::Used(used) => {
                        self.hash(&carry[..used], self.pos - used as u64);
                        if used >= old {
                            ci += used - old;
                        } else {
                            // Not expected (the carried bytes alone were too few for a step),
                            // but keep what is left of them.
                            carry.truncate(old);
                            carry.drain(..used);
                            self.carry = carry;
                        }
                        break;
                    }
                }
            }
        }
        // Then the chunk in place.
        let (start, start_pos) = (ci, self.pos);
        while let Step::Used(used) = self.step(&chunk[ci..], sink)? {
            ci += used;
        }
        self.hash(&chunk[start..ci], start_pos);
        self.carry.extend_from_slice(&chunk[ci..]);
        Ok(())
    }

    /// The CRL's fields once the whole file was fed; a file that ended early is an error.
    pub(super) fn finish(self) -> Result<CrlParts, CrlError> {
        if self.state != State::Done || !self.carry.is_empty() {
            let read = self.pos + self.carry.len() as u64;
            return Err(match self.declared_len() {
                Some(declared) if read < declared => CrlError::Truncated { declared, read },
                _ => DerError::Truncated.into(),
            });
        }
        Ok(CrlParts {
            alg_oid: self.alg_oid,
            alg: self.alg,
            tbs_digest: self.tbs_hash.finish(),
            signature: self.signature,
            issuer_raw: self.issuer_raw.unwrap_or_default(),
            this_update: self.this_update,
            next_update: self.next_update.unwrap_or_default(),
            aki: self.aki,
            crl_number: self.crl_number,
            file_sha256: self.file_hash.finalize().into(),
            entries: self.entries,
            max_serial_len: self.max_serial_len,
        })
    }

    /// Hash consumed bytes that start at file offset `at`.
    fn hash(&mut self, bytes: &[u8], at: u64) {
        self.file_hash.update(bytes);
        if let Some((start, end)) = self.tbs {
            let lo = start.max(at);
            let hi = end.min(at + bytes.len() as u64);
            if lo < hi {
                // Both within `bytes`, so they fit in usize.
                let (a, b) = ((lo - at) as usize, (hi - at) as usize);
                if let Some(part) = bytes.get(a..b) {
                    self.tbs_hash.update(part);
                }
            }
        }
    }

    /// The header of the element at the front of `input`, which must end by `end`.
    fn element_header(&self, input: &[u8], end: u64) -> Result<Option<(u8, u64, usize)>, CrlError> {
        let Some((tag, len, hl)) = header(input)? else {
            return Ok(None);
        };
        let total = len.checked_add(hl as u64);
        if total
            .and_then(|t| self.pos.checked_add(t))
            .is_none_or(|e| e > end)
        {
            return Err(CrlError::Structure(
                "an element runs past the end of the structure holding it",
            ));
        }
        Ok(Some((tag, len, hl)))
    }

    /// The whole element at the front of `input` (at most MAX_ELEMENT bytes), ending by `end`.
    fn element<'a>(&self, input: &'a [u8], end: u64) -> Result<Option<Tlv<'a>>, CrlError> {
        let Some((_, len, hl)) = self.element_header(input, end)? else {
            return Ok(None);
        };
        if len > MAX_ELEMENT as u64 {
            return Err(CrlError::Structure("a CRL element is larger than 1 MiB"));
        }
        let total = hl + len as usize;
        let Some(bytes) = input.get(..total) else {
            return Ok(None);
        };
        Ok(Some(derwalk::read_tlv(bytes)?.0))
    }

    fn tbs_end(&self) -> u64 {
        self.tbs.map_or(0, |(_, end)| end)
    }

    /// Consume one element (or a constructed header) from `input`, which starts at `self.pos`.
    fn step<F>(&mut self, input: &[u8], sink: &mut F) -> Result<Step, CrlError>
    where
        F: FnMut(Entry<'_>) -> Result<(), CrlError>,
    {
        use derwalk::*;
        macro_rules! whole {
            ($end:expr) => {
                match self.element(input, $end)? {
                    Some(t) => t,
                    None => return Ok(Step::More),
                }
            };
        }
        loop {
            let tbs_end = self.tbs_end();
            // Transitions at the end of a structure consume nothing.
            match self.state {
                State::Entries if self.pos == self.list_end => {
                    self.state = State::AfterEntries;
                    continue;
                }
                State::AfterNextUpdate | State::AfterEntries | State::AfterExtensions
                    if self.pos == tbs_end =>
                {
                    self.state = State::OuterAlgorithm;
                    continue;
                }
                State::AfterSignature if self.pos == self.outer_end => {
                    self.state = State::Done;
                    continue;
                }
                _ => {}
            }
            if input.is_empty() {
                return Ok(Step::More);
            }
            let tag = input[0];
            let used = match self.state {
                State::Outer => {
                    let Some((tag, len, hl)) = header(input)? else {
                        return Ok(Step::More);
                    };
                    if tag != TAG_SEQUENCE {
                        return Err(DerError::UnexpectedTag(tag).into());
                    }
                    self.outer_end = len
                        .checked_add(hl as u64)
                        .ok_or(CrlError::Structure("CRL length overflows"))?;
                    match self.input_len {
                        Some(read) if read < self.outer_end => {
                            return Err(CrlError::Truncated {
                                declared: self.outer_end,
                                read,
                            });
                        }
                        Some(read) if read > self.outer_end => {
                            return Err(CrlError::Structure(
                                "trailing bytes after CertificateList",
                            ));
                        }
                        _ => {}
                    }
                    self.state = State::Tbs;
                    hl
                }
                State::Tbs => {
                    let Some((tag, len, hl)) = self.element_header(input, self.outer_end)? else {
                        return Ok(Step::More);
                    };
                    if tag != TAG_SEQUENCE {
                        return Err(DerError::UnexpectedTag(tag).into());
                    }
                    // Within outer_end, checked above.
                    self.tbs = Some((self.pos, self.pos + hl as u64 + len));
                    self.state = State::Version;
                    hl
                }
                State::Version if tag == TAG_INTEGER => {
                    let v = whole!(tbs_end);
                    if v.content != [1] {
                        return Err(CrlError::Unsupported("CRL version other than v2"));
                    }
                    self.state = State::Algorithm;
                    v.raw.len()
                }
                State::Version | State::Algorithm => {
                    let alg = whole!(tbs_end);
                    if alg.tag != TAG_SEQUENCE {
                        return Err(DerError::UnexpectedTag(alg.tag).into());
                    }
                    let (oid, _) = expect(alg.content, TAG_OID)?;
                    self.alg_oid = der::asn1::ObjectIdentifier::from_bytes(oid.content)
                        .map_err(|_| CrlError::Structure("bad algorithm OID"))?
                        .to_string();
                    self.alg = SigAlg::from_oid(&self.alg_oid);
                    self.tbs_hash.start(self.alg.map(SigAlg::hash));
                    self.alg_raw = alg.raw.to_vec();
                    self.state = State::Issuer;
                    alg.raw.len()
                }
                State::Issuer => {
                    let issuer = whole!(tbs_end);
                    if issuer.tag != TAG_SEQUENCE {
                        return Err(DerError::UnexpectedTag(issuer.tag).into());
                    }
                    self.issuer_raw = Some(issuer.raw.to_vec());
                    self.state = State::ThisUpdate;
                    issuer.raw.len()
                }
                State::ThisUpdate => {
                    let t = whole!(tbs_end);
                    self.this_update = time_to_unix(&t)?;
                    self.state = State::AfterThisUpdate;
                    t.raw.len()
                }
                State::AfterThisUpdate if matches!(tag, TAG_UTC_TIME | TAG_GENERALIZED_TIME) => {
                    let t = whole!(tbs_end);
                    self.next_update = Some(time_to_unix(&t)?);
                    self.state = State::AfterNextUpdate;
                    t.raw.len()
                }
                State::AfterThisUpdate => {
                    return Err(CrlError::Unsupported("CRL without nextUpdate"));
                }
                State::AfterNextUpdate if tag == TAG_SEQUENCE => {
                    let Some((_, len, hl)) = self.element_header(input, tbs_end)? else {
                        return Ok(Step::More);
                    };
                    // Within the TBS, checked above.
                    self.list_end = self.pos + hl as u64 + len;
                    self.state = State::Entries;
                    hl
                }
                State::AfterNextUpdate | State::AfterEntries if tag == 0xA0 => {
                    let wrap = whole!(tbs_end);
                    let (exts, after) = expect(wrap.content, TAG_SEQUENCE)?;
                    if !after.is_empty() {
                        return Err(CrlError::Structure("bytes after crlExtensions"));
                    }
                    let (aki, number) = crl_extensions(exts.content)?;
                    self.aki = aki.map(<[u8]>::to_vec);
                    self.crl_number = number.to_vec();
                    self.state = State::AfterExtensions;
                    wrap.raw.len()
                }
                State::AfterNextUpdate | State::AfterEntries | State::AfterExtensions => {
                    return Err(CrlError::Structure("unexpected fields in tbsCertList"));
                }
                State::Entries => {
                    let e = whole!(self.list_end);
                    let (entry, _) = read_entry(e.raw, self.entries + 1)?;
                    self.entries += 1;
                    self.max_serial_len = self.max_serial_len.max(entry.serial.len());
                    sink(entry)?;
                    e.raw.len()
                }
                State::OuterAlgorithm => {
                    let alg = whole!(self.outer_end);
                    if alg.raw != self.alg_raw.as_slice() {
                        return Err(CrlError::Structure(
                            "inner and outer signature algorithms differ",
                        ));
                    }
                    self.state = State::Signature;
                    alg.raw.len()
                }
                State::Signature => {
                    let sig = whole!(self.outer_end);
                    if sig.tag != TAG_BIT_STRING {
                        return Err(DerError::UnexpectedTag(sig.tag).into());
                    }
                    self.signature = match sig.content.split_first() {
                        Some((0, s)) => s.to_vec(),
                        _ => {
                            return Err(CrlError::Structure(
                                "signature BIT STRING has unused bits",
                            ));
                        }
                    };
                    self.state = State::AfterSignature;
                    sig.raw.len()
                }
                State::AfterSignature => {
                    return Err(CrlError::Structure("extra fields in CertificateList"));
                }
                State::Done => {
                    return Err(CrlError::Structure("trailing bytes after CertificateList"));
                }
            };
            self.pos += used as u64;
            return Ok(Step::Used(used));
        }
    }
}

/// AKI key id and CRL number (magnitude) from the crlExtensions; delta CRLs, partitioned CRLs
/// and unknown critical extensions are refused.
pub(super) fn crl_extensions(exts: &[u8]) -> Result<(Option<&[u8]>, &[u8]), CrlError> {
    use derwalk::*;
    let mut aki = None;
    let mut crl_number: &[u8] = &[];
    for_each_extension(exts, |oid, critical, value| {
        match oid {
            OID_AKI => {
                let (seq, _) = expect(value, TAG_SEQUENCE)?;
                let (first, _) = read_tlv(seq.content)?;
                if first.tag == 0x80 {
                    aki = Some(first.content);
                }
            }
            OID_CRL_NUMBER => {
                let (n, _) = expect(value, TAG_INTEGER)?;
                crl_number = derwalk::integer_magnitude(n.content)?;
                if crl_number.len() > MAX_CRL_NUMBER {
                    return Err(CrlError::Structure("CRL number too long"));
                }
            }
            OID_DELTA_CRL => return Err(CrlError::Unsupported("delta CRL")),
            // A partition of the issuer's list (RFC 5280 §5.2.5): as an index it would say
            // "not listed" for every serial outside its part, and replace the whole list.
            OID_IDP => {
                let limits = idp_limits(value)?;
                if !limits.is_empty() {
                    return Err(CrlError::PartitionedCrl { limits });
                }
            }
            _ if critical => {
                return Err(CrlError::Unsupported("unknown critical CRL extension"));
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok((aki, crl_number))
}

/// What an issuingDistributionPoint (the extnValue content) limits the CRL's scope to, by field
/// name in the order of RFC 5280 §5.2.5; empty when it sets no field (a complete CRL). A boolean
/// written out as FALSE (BER's default, not DER) limits nothing either.
fn idp_limits(value: &[u8]) -> Result<Vec<&'static str>, CrlError> {
    use derwalk::*;
    let (seq, rest) = expect(value, TAG_SEQUENCE)?;
    if !rest.is_empty() {
        return Err(CrlError::Structure("bytes after issuingDistributionPoint"));
    }
    let mut limits = Vec::new();
    let (mut fields, mut previous) = (seq.content, None);
    while !fields.is_empty() {
        let (field, rest) = read_tlv(fields)?;
        fields = rest;
        let number = field.tag & 0x1F;
        if previous.is_some_and(|p| p >= number) {
            return Err(CrlError::Structure(
                "issuingDistributionPoint fields repeated or out of order",
            ));
        }
        previous = Some(number);
        let name = match field.tag {
            0xA0 => "distributionPoint",
            0x81 => "onlyContainsUserCerts",
            0x82 => "onlyContainsCACerts",
            0x83 => "onlySomeReasons",
            0x84 => "indirectCRL",
            0x85 => "onlyContainsAttributeCerts",
            _ => {
                return Err(CrlError::Structure(
                    "unknown field in issuingDistributionPoint",
                ));
            }
        };
        let limits_scope = match field.tag {
            0xA0 | 0x83 => true,
            _ => match field.content {
                [0xFF] => true,
                [0x00] => false,
                _ => return Err(CrlError::Structure("issuingDistributionPoint boolean")),
            },
        };
        if limits_scope {
            limits.push(name);
        }
    }
    Ok(limits)
}

/// Call `f(oid_content, critical, extnValue_content)` for each Extension in a SEQUENCE OF.
fn for_each_extension<'a>(
    mut exts: &'a [u8],
    mut f: impl FnMut(&'a [u8], bool, &'a [u8]) -> Result<(), CrlError>,
) -> Result<(), CrlError> {
    use derwalk::*;
    while !exts.is_empty() {
        let (ext, rest) = expect(exts, TAG_SEQUENCE)?;
        exts = rest;
        let (oid, r) = expect(ext.content, TAG_OID)?;
        let (mut critical, mut r) = (false, r);
        if peek_tag(r) == Some(TAG_BOOLEAN) {
            let (b, rest) = read_tlv(r)?;
            critical = b.content == [0xFF];
            r = rest;
        }
        let (value, r) = expect(r, TAG_OCTET_STRING)?;
        if !r.is_empty() {
            return Err(CrlError::Structure("extra fields in Extension"));
        }
        f(oid.content, critical, value.content)?;
    }
    Ok(())
}

/// Decode one revokedCertificates entry, the `number`th of the list (from 1, for errors).
pub(super) fn read_entry(input: &[u8], number: u64) -> Result<(Entry<'_>, &[u8]), CrlError> {
    use derwalk::*;
    let (seq, rest) = expect(input, TAG_SEQUENCE)?;
    let (serial, r) = expect(seq.content, TAG_INTEGER)?;
    match serial.content.first() {
        None => return Err(CrlError::EmptySerial { entry: number }),
        Some(b) if b & 0x80 != 0 => {
            // At most the first 32 bytes in the message: the INTEGER may be up to 1 MiB long.
            let shown = &serial.content[..serial.content.len().min(MAX_SERIAL)];
            return Err(CrlError::NegativeSerial {
                entry: number,
                serial: hex::encode_upper(shown),
            });
        }
        Some(_) => {}
    }
    let serial = integer_magnitude(serial.content)?;
    if serial.len() > MAX_SERIAL {
        return Err(CrlError::SerialTooLong);
    }
    let (date_tlv, r) = read_tlv(r)?;
    let date = time_to_unix(&date_tlv)?;
    let date = u32::try_from(date).map_err(|_| CrlError::DateOutOfRange)?;
    let mut reason = NO_REASON;
    if !r.is_empty() {
        let (exts, after) = expect(r, TAG_SEQUENCE)?;
        if !after.is_empty() {
            return Err(CrlError::Structure("extra fields in CRL entry"));
        }
        for_each_extension(exts.content, |oid, critical, value| {
            match oid {
                OID_REASON => {
                    let (e, _) = expect(value, TAG_ENUMERATED)?;
                    let code = u8::try_from(small_uint(e.content)?)
                        .map_err(|_| CrlError::Structure("reason code out of range"))?;
                    if RevocationReason::from_code(code).is_none() {
                        return Err(CrlError::Structure("unknown reason code"));
                    }
                    reason = code;
                }
                OID_INVALIDITY_DATE => {}
                _ if critical => {
                    return Err(CrlError::Unsupported(
                        "critical entry extension (e.g. indirect CRL certificateIssuer)",
                    ));
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok((
        Entry {
            serial,
            reason,
            date,
        },
        rest,
    ))
}

/// Structure of a CRL as read without any signature check (for diagnostics and fuzzing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSummary {
    pub entries: u64,
    pub serial_width: u8,
    pub this_update: i64,
    pub next_update: i64,
    /// AKI key id, upper-case hex (empty without AKI).
    pub authority_key_id: String,
}

/// Walk a CRL's structure and every entry, **without** verifying its signature: never use the
/// result for revocation decisions.
pub fn inspect(data: &[u8]) -> Result<CrlSummary, CrlError> {
    let mut reader = CrlReader::new();
    reader.expect_len(data.len() as u64);
    reader.feed(data, &mut |_| Ok(()))?;
    Ok(CrlSummary::from(&reader.finish()?))
}

impl From<&CrlParts> for CrlSummary {
    fn from(parts: &CrlParts) -> CrlSummary {
        CrlSummary {
            entries: parts.entries,
            // At most MAX_SERIAL (32), checked per entry.
            serial_width: parts.max_serial_len.max(1) as u8,
            this_update: parts.this_update,
            next_update: parts.next_update,
            authority_key_id: parts
                .aki
                .as_deref()
                .map(hex::encode_upper)
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::crlgen::{push_len, tlv};
    use super::super::testing::{Rng, crl_g2, crl_g2_encoded, entries, fixture};
    use super::*;

    /// Entries (serial, reason, date) and fields of `data` fed in pieces cut at `cuts`
    /// (ascending offsets), and the largest number of bytes the reader carried between pieces.
    type Read = (Vec<(Vec<u8>, u8, u32)>, String, usize);

    fn read_cut(data: &[u8], cuts: &[usize]) -> Result<Read, CrlError> {
        let mut reader = CrlReader::new();
        let mut got = Vec::new();
        let mut max_carry = 0;
        let mut from = 0;
        for &to in cuts.iter().chain([&data.len()]) {
            reader.feed(&data[from..to], &mut |e| {
                got.push((e.serial.to_vec(), e.reason, e.date));
                Ok(())
            })?;
            max_carry = max_carry.max(reader.carry.len());
            from = to;
        }
        let parts = reader.finish()?;
        Ok((got, format!("{parts:?}"), max_carry))
    }

    fn sample() -> Vec<u8> {
        crl_g2(&entries(50, 20, false, 11))
    }

    #[test]
    fn pieces_of_any_size_read_the_same() {
        for data in [sample(), fixture("sign_g2.crl"), crl_g2(&[])] {
            let (whole, fields, _) = read_cut(&data, &[]).unwrap();
            // Every single cut.
            for cut in 0..=data.len() {
                let (got, f, _) = read_cut(&data, &[cut]).unwrap();
                assert!(got == whole && f == fields, "cut at {cut}");
            }
            // One byte at a time: never more carried than the largest element (an entry, the
            // issuer, the extensions, the signature: all well under 600 bytes here).
            let ones: Vec<usize> = (1..data.len()).collect();
            let (got, f, max_carry) = read_cut(&data, &ones).unwrap();
            assert!(got == whole && f == fields);
            assert!(max_carry < 600, "{max_carry}");
            // Random pieces.
            let mut rng = Rng(12);
            for _ in 0..50 {
                let mut cuts: Vec<usize> = (0..(rng.next() % 20))
                    .map(|_| (rng.next() as usize) % (data.len() + 1))
                    .collect();
                cuts.sort_unstable();
                let (got, f, _) = read_cut(&data, &cuts).unwrap();
                assert!(got == whole && f == fields, "{cuts:?}");
            }
        }
    }

    #[test]
    fn a_truncated_file_is_refused_by_name_at_every_length() {
        let data = sample();
        for n in 0..data.len() {
            for cuts in [&[][..], &[n / 2][..]] {
                match read_cut(&data[..n], cuts) {
                    // Too short to hold the outer header (tag, 0x82, two length bytes).
                    Err(CrlError::Der(DerError::Truncated)) if n < 4 => {}
                    Err(CrlError::Truncated { declared, read })
                        if declared == data.len() as u64 && read == n as u64 => {}
                    other => panic!("{n} bytes: {:?}", other.map(|r| r.1)),
                }
            }
        }
    }

    #[test]
    fn trailing_bytes_and_garbage_are_refused() {
        let mut data = sample();
        data.push(0);
        assert!(matches!(
            read_cut(&data, &[]),
            Err(CrlError::Structure("trailing bytes after CertificateList"))
        ));
        let mut rng = Rng(13);
        for len in [0usize, 1, 2, 5, 100, 5000] {
            for _ in 0..20 {
                let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                assert!(read_cut(&junk, &[len / 3]).is_err());
            }
        }
        // Garbage behind a valid-looking header: refused at the first field.
        let mut data = vec![0x30, 0x82, 0x01, 0x00];
        data.extend_from_slice(&[0x04; 0x100]);
        assert!(matches!(
            read_cut(&data, &[]),
            Err(CrlError::Der(DerError::UnexpectedTag(0x04)))
        ));
    }

    #[test]
    fn huge_lengths_are_refused_without_buffering() {
        // The CertificateList claims 2^62 bytes: a truncated file, named as such.
        let data = [0x30, 0x88, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x30, 0x00];
        assert!(matches!(
            read_cut(&data, &[]),
            Err(CrlError::Truncated { declared, .. }) if declared == (1 << 62) + 10
        ));
        // Nine length bytes, or a non-minimal length: not DER.
        for bad in [
            &[0x30, 0x89, 1, 0, 0, 0, 0, 0, 0, 0, 0][..],
            &[0x30, 0x81, 0x05],
        ] {
            assert!(matches!(
                read_cut(bad, &[]),
                Err(CrlError::Der(DerError::Encoding))
            ));
        }
        // An entry that runs past the end of the list holding it.
        let mut entry = Vec::new();
        super::super::crlgen::encode_entry(
            &mut entry,
            &super::super::testing::entry(&[1, 2, 3], 1_700_000_000, None),
        );
        let mut long = entry.clone();
        long[1] += 1;
        let crl = crl_g2_encoded(&[entry.clone(), long].concat());
        let err = read_cut(&crl, &[]).err();
        assert!(
            matches!(
                err,
                Some(CrlError::Structure(
                    "an element runs past the end of the structure holding it"
                ))
            ),
            "{err:?}"
        );
        // A tbsCertList of 3 MiB whose issuer name claims 2 MiB: refused when its header is
        // read (the first 64 KiB piece), not after buffering it.
        let mut tbs_c = vec![0x02, 0x01, 0x01];
        tbs_c.extend_from_slice(&[
            0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B, 0x05,
            0x00,
        ]);
        tbs_c.push(0x30);
        push_len(&mut tbs_c, 2 << 20);
        tbs_c.resize(3 << 20, 0x31);
        let data = tlv(0x30, &tlv(0x30, &tbs_c));
        let mut reader = CrlReader::new();
        let err = reader.feed(&data[..64 << 10], &mut |_| Ok(())).err();
        assert!(
            matches!(
                err,
                Some(CrlError::Structure("a CRL element is larger than 1 MiB"))
            ),
            "{err:?}"
        );
        assert!(reader.carry.capacity() < 64 << 10);
    }
}
