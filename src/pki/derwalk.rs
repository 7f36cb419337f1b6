//! A minimal DER walker over byte slices: the CRL is too large for `der` 0.7 (256 MiB cap) and
//! too large to materialise with a full parser, so its outer structure and its entries are
//! walked here. Only what CRLs and small helper structures need: low tag numbers, definite
//! lengths, no constructed strings.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DerError {
    #[error("DER input ends early")]
    Truncated,
    #[error("unsupported or non-DER tag or length encoding")]
    Encoding,
    #[error("unexpected tag 0x{0:02X}")]
    UnexpectedTag(u8),
    #[error("malformed time value")]
    Time,
    #[error("malformed integer")]
    Integer,
}

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_ENUMERATED: u8 = 0x0A;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// One TLV: tag byte, content, and the full encoding (header + content).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Read one TLV from the front of `input`; returns it and the rest.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, after_tag) = input.split_first().ok_or(DerError::Truncated)?;
    if tag & 0x1F == 0x1F {
        return Err(DerError::Encoding); // high tag numbers never occur in what we walk
    }
    let (&first, mut rest) = after_tag.split_first().ok_or(DerError::Truncated)?;
    let len: usize = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 8 {
            return Err(DerError::Encoding); // indefinite or absurd length
        }
        if rest.len() < n {
            return Err(DerError::Truncated);
        }
        let (len_bytes, r) = rest.split_at(n);
        rest = r;
        if len_bytes[0] == 0 {
            return Err(DerError::Encoding); // non-minimal
        }
        let mut v: u64 = 0;
        for &b in len_bytes {
            v = (v << 8) | u64::from(b);
        }
        if v < 0x80 {
            return Err(DerError::Encoding);
        }
        usize::try_from(v).map_err(|_| DerError::Encoding)?
    };
    if rest.len() < len {
        return Err(DerError::Truncated);
    }
    let header = input.len() - rest.len();
    let (content, rest) = rest.split_at(len);
    Ok((
        Tlv {
            tag,
            content,
            raw: &input[..header + len],
        },
        rest,
    ))
}

/// Read one TLV that must carry `tag`.
pub(crate) fn expect(input: &[u8], tag: u8) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (tlv, rest) = read_tlv(input)?;
    if tlv.tag != tag {
        return Err(DerError::UnexpectedTag(tlv.tag));
    }
    Ok((tlv, rest))
}

/// Peek at the tag of the next TLV.
pub(crate) fn peek_tag(input: &[u8]) -> Option<u8> {
    input.first().copied()
}

/// INTEGER content as unsigned magnitude without leading zero bytes (the CRL index key form).
/// Zero-length content is invalid DER.
pub(crate) fn integer_magnitude(content: &[u8]) -> Result<&[u8], DerError> {
    if content.is_empty() {
        return Err(DerError::Integer);
    }
    let first_nonzero = content
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(content.len());
    Ok(&content[first_nonzero..])
}

/// Small non-negative INTEGER / ENUMERATED content as u64.
pub(crate) fn small_uint(content: &[u8]) -> Result<u64, DerError> {
    let mag = integer_magnitude(content)?;
    if content[0] & 0x80 != 0 || mag.len() > 8 {
        return Err(DerError::Integer);
    }
    Ok(mag.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// UTCTime or GeneralizedTime (both in the `…Z` form required by RFC 5280) to unix seconds.
pub(crate) fn time_to_unix(tlv: &Tlv<'_>) -> Result<i64, DerError> {
    let c = tlv.content;
    let digits = |s: &[u8]| -> Result<i64, DerError> {
        let mut v = 0i64;
        for &b in s {
            if !b.is_ascii_digit() {
                return Err(DerError::Time);
            }
            v = v * 10 + i64::from(b - b'0');
        }
        Ok(v)
    };
    let (year, rest) = match tlv.tag {
        TAG_UTC_TIME if c.len() == 13 => {
            let yy = digits(&c[0..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &c[2..])
        }
        TAG_GENERALIZED_TIME if c.len() == 15 => (digits(&c[0..4])?, &c[4..]),
        TAG_UTC_TIME | TAG_GENERALIZED_TIME => return Err(DerError::Time),
        t => return Err(DerError::UnexpectedTag(t)),
    };
    if rest[10] != b'Z' {
        return Err(DerError::Time);
    }
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let min = digits(&rest[6..8])?;
    let sec = digits(&rest[8..10])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return Err(DerError::Time);
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

pub(crate) fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(crate) fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = Tlv {
            tag: TAG_UTC_TIME,
            content: b"700101000000Z",
            raw: &[],
        };
        assert_eq!(time_to_unix(&t), Ok(0));
        let t = Tlv {
            tag: TAG_GENERALIZED_TIME,
            content: b"20330715145959Z",
            raw: &[],
        };
        assert_eq!(time_to_unix(&t), Ok(2_005_052_399));
        let t = Tlv {
            tag: TAG_UTC_TIME,
            content: b"250230000000Z",
            raw: &[],
        };
        assert_eq!(time_to_unix(&t), Err(DerError::Time));
    }

    #[test]
    fn lengths() {
        assert!(read_tlv(&[0x30, 0x81, 0x05]).is_err());
        assert!(read_tlv(&[0x30, 0x80]).is_err());
        let (t, rest) = read_tlv(&[0x02, 0x01, 0x05, 0xFF]).unwrap();
        assert_eq!(t.content, &[5]);
        assert_eq!(rest, &[0xFF]);
    }
}
