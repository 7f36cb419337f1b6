//! A tolerant BER-TLV reader for card files. Card files are BER, not DER: tags may be written in
//! non-minimal long form (`FF 10` for private constructed tag 16), lengths may carry leading
//! zeros (`82 00 9F`), and files end in `FF` filler (`docs/reference/jpki-protocol.md` §3.2, §14).
//! Pure: no I/O, never panics.

/// Why a TLV could not be read. Each names what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    /// The input ended inside the tag.
    #[error("truncated tag at offset {offset}")]
    TruncatedTag {
        /// Byte offset of the TLV in the input.
        offset: usize,
    },
    /// The tag has more than four bytes.
    #[error("tag longer than 4 bytes at offset {offset}")]
    TagTooLong {
        /// Byte offset of the TLV in the input.
        offset: usize,
    },
    /// The input ended inside the length.
    #[error("truncated length at offset {offset}")]
    TruncatedLength {
        /// Byte offset of the TLV in the input.
        offset: usize,
    },
    /// Indefinite length (`80`) or a length of more than four bytes.
    #[error("unsupported length form 0x{first:02X} at offset {offset}")]
    BadLength {
        /// The first length byte.
        first: u8,
        /// Byte offset of the TLV in the input.
        offset: usize,
    },
    /// The value runs past the end of the input.
    #[error("value of tag {tag:X} needs {needed} bytes at offset {offset}, {available} available")]
    TruncatedValue {
        /// The tag.
        tag: u32,
        /// Bytes the length promises.
        needed: usize,
        /// Bytes there are.
        available: usize,
        /// Byte offset of the TLV in the input.
        offset: usize,
    },
    /// A required tag was not found.
    #[error("tag {0:X} not found")]
    Missing(u32),
    /// A different tag was found where one was required.
    #[error("expected tag {expected:X}, found {found:X}")]
    Unexpected {
        /// The tag that was required.
        expected: u32,
        /// The tag found.
        found: u32,
    },
}

/// One TLV, borrowing its value from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag bytes as a big-endian number, e.g. `0xFF20`, `0xDF21`, `0x7F21`, `0x30`.
    pub tag: u32,
    /// The value.
    pub value: &'a [u8],
    /// Length of tag and length fields.
    pub header_len: usize,
}

impl<'a> Tlv<'a> {
    /// Total encoded size: header plus value.
    pub fn total_len(&self) -> usize {
        self.header_len + self.value.len()
    }

    /// Whether the tag's first byte says "constructed".
    pub fn is_constructed(&self) -> bool {
        let first = self
            .tag
            .to_be_bytes()
            .into_iter()
            .find(|b| *b != 0)
            .unwrap_or(0);
        first & 0x20 != 0
    }

    /// The children of a constructed value, stopping at filler.
    pub fn children(&self) -> Children<'a> {
        Children {
            rest: self.value,
            offset: self.header_len,
        }
    }

    /// The first child with `tag`.
    ///
    /// # Errors
    /// [`TlvError::Missing`] when absent, or the error of a malformed child before it.
    pub fn child(&self, tag: u32) -> Result<Tlv<'a>, TlvError> {
        for c in self.children() {
            let c = c?;
            if c.tag == tag {
                return Ok(c);
            }
        }
        Err(TlvError::Missing(tag))
    }
}

/// The header of a TLV: tag, header length and value length, without needing the value. Used to
/// learn a file's length from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The tag bytes as a big-endian number.
    pub tag: u32,
    /// Length of tag and length fields.
    pub header_len: usize,
    /// Length of the value.
    pub value_len: usize,
}

impl Header {
    /// Header plus value.
    pub fn total_len(&self) -> usize {
        self.header_len.saturating_add(self.value_len)
    }
}

/// Reads the tag and length at the start of `input` (`offset` is only for error messages).
///
/// # Errors
/// A [`TlvError`] naming the malformed field.
pub fn read_header(input: &[u8], offset: usize) -> Result<Header, TlvError> {
    let first = *input.first().ok_or(TlvError::TruncatedTag { offset })?;
    let mut tag = u32::from(first);
    let mut pos = 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = *input.get(pos).ok_or(TlvError::TruncatedTag { offset })?;
            if pos >= 4 {
                return Err(TlvError::TagTooLong { offset });
            }
            tag = (tag << 8) | u32::from(b);
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let len_first = *input.get(pos).ok_or(TlvError::TruncatedLength { offset })?;
    pos += 1;
    let value_len = if len_first < 0x80 {
        usize::from(len_first)
    } else {
        let n = usize::from(len_first & 0x7F);
        if n == 0 || n > 4 {
            return Err(TlvError::BadLength {
                first: len_first,
                offset,
            });
        }
        let bytes = input
            .get(pos..pos + n)
            .ok_or(TlvError::TruncatedLength { offset })?;
        pos += n;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    Ok(Header {
        tag,
        header_len: pos,
        value_len,
    })
}

/// Reads one TLV at the start of `input`; returns it and the bytes after it.
///
/// # Errors
/// A [`TlvError`] naming the malformed field.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    read_at(input, 0)
}

fn read_at(input: &[u8], offset: usize) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let h = read_header(input, offset)?;
    let end = h
        .header_len
        .checked_add(h.value_len)
        .filter(|e| *e <= input.len())
        .ok_or(TlvError::TruncatedValue {
            tag: h.tag,
            needed: h.value_len,
            available: input.len().saturating_sub(h.header_len),
            offset,
        })?;
    let value = input.get(h.header_len..end).unwrap_or_default();
    let rest = input.get(end..).unwrap_or_default();
    Ok((
        Tlv {
            tag: h.tag,
            value,
            header_len: h.header_len,
        },
        rest,
    ))
}

/// Reads the first TLV of a file and requires its tag; trailing filler is ignored.
///
/// # Errors
/// [`TlvError::Unexpected`] for another tag, or the read error.
pub fn expect(input: &[u8], tag: u32) -> Result<Tlv<'_>, TlvError> {
    let (t, _) = read(input)?;
    if t.tag != tag {
        return Err(TlvError::Unexpected {
            expected: tag,
            found: t.tag,
        });
    }
    Ok(t)
}

/// Whether the rest of a value is filler (`FF` or `00` bytes only, or nothing).
fn is_filler(rest: &[u8]) -> bool {
    rest.iter().all(|b| *b == 0xFF) || rest.iter().all(|b| *b == 0x00)
}

/// Iterator over sibling TLVs; ends at the end of input or at filler.
#[derive(Debug, Clone)]
pub struct Children<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Children<'a> {
    /// Iterates over the TLVs of `input`.
    pub fn new(input: &'a [u8]) -> Children<'a> {
        Children {
            rest: input,
            offset: 0,
        }
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if is_filler(self.rest) {
            return None;
        }
        match read_at(self.rest, self.offset) {
            Ok((t, rest)) => {
                self.offset += t.total_len();
                self.rest = rest;
                Some(Ok(t))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_minimal_tag_and_length() {
        // FF10 (private constructed tag 16, long form), length 82 00 03
        let input = [0xFF, 0x10, 0x82, 0x00, 0x03, 1, 2, 3, 0xFF, 0xFF];
        let (t, rest) = read(&input).unwrap();
        assert_eq!(t.tag, 0xFF10);
        assert_eq!(t.value, &[1, 2, 3]);
        assert_eq!(t.header_len, 5);
        assert_eq!(rest, &[0xFF, 0xFF]);
        assert!(t.is_constructed());
    }

    #[test]
    fn children_stop_at_filler() {
        let input = [
            0xFF, 0x20, 0x08, 0xDF, 0x22, 0x01, b'A', 0xDF, 0x25, 0x01, b'1',
        ];
        let t = expect(&input, 0xFF20).unwrap();
        let kids: Vec<_> = t.children().map(|c| c.unwrap().tag).collect();
        assert_eq!(kids, vec![0xDF22, 0xDF25]);
        assert_eq!(t.child(0xDF25).unwrap().value, b"1");
        assert_eq!(t.child(0xDF23), Err(TlvError::Missing(0xDF23)));
        let filler = [0xDF, 0x22, 0x01, b'A', 0xFF, 0xFF, 0xFF];
        assert_eq!(Children::new(&filler).count(), 1);
    }

    #[test]
    fn header_of_certificate() {
        let h = read_header(&[0x30, 0x82, 0x06, 0x2B, 0x30], 0).unwrap();
        assert_eq!(h.total_len(), 4 + 0x062B);
        assert_eq!(h.tag, 0x30);
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(read(&[]).unwrap_err(), TlvError::TruncatedTag { offset: 0 });
        assert_eq!(
            read(&[0xDF]).unwrap_err(),
            TlvError::TruncatedTag { offset: 0 }
        );
        assert_eq!(
            read(&[0x30]).unwrap_err(),
            TlvError::TruncatedLength { offset: 0 }
        );
        assert_eq!(
            read(&[0x30, 0x80]).unwrap_err(),
            TlvError::BadLength {
                first: 0x80,
                offset: 0
            }
        );
        assert_eq!(
            read(&[0x30, 0x82, 0x01]).unwrap_err(),
            TlvError::TruncatedLength { offset: 0 }
        );
        assert_eq!(
            read(&[0x30, 0x05, 1, 2]).unwrap_err(),
            TlvError::TruncatedValue {
                tag: 0x30,
                needed: 5,
                available: 2,
                offset: 0
            }
        );
        assert_eq!(
            read(&[0xFF, 0x81, 0x81, 0x81, 0x01, 0x00]).unwrap_err(),
            TlvError::TagTooLong { offset: 0 }
        );
        assert_eq!(
            expect(&[0x04, 0x00], 0x30).unwrap_err(),
            TlvError::Unexpected {
                expected: 0x30,
                found: 0x04
            }
        );
    }
}
