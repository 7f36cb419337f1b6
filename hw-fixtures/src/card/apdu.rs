//! Command APDU parsing (ISO 7816-4 §5.1, short and extended length). Never panics.

/// A parsed command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command<'a> {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    /// Command data (empty for cases 1 and 2).
    pub data: &'a [u8],
    /// Le, decoded: `00` short = 256, `00 00` extended = 65536. `None` = no Le field.
    pub le: Option<usize>,
    /// Lc and/or Le were in extended form.
    pub extended: bool,
}

/// Why a byte string is not a command APDU. The card answers `6700` to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Fewer than 4 bytes.
    TooShort,
    /// Lc / Le do not match the length.
    BadLength,
}

pub(crate) fn parse(apdu: &[u8]) -> Result<Command<'_>, ParseError> {
    let [cla, ins, p1, p2, body @ ..] = apdu else {
        return Err(ParseError::TooShort);
    };
    let mut cmd = Command {
        cla: *cla,
        ins: *ins,
        p1: *p1,
        p2: *p2,
        data: &[],
        le: None,
        extended: false,
    };
    match body {
        // Case 1.
        [] => {}
        // Case 2 short.
        [le] => cmd.le = Some(short_le(*le)),
        // Extended: a leading 00 then at least two more bytes.
        [0, rest @ ..] if rest.len() >= 2 => {
            cmd.extended = true;
            match rest {
                // Case 2E.
                [h, l] => cmd.le = Some(ext_le(*h, *l)),
                [h, l, tail @ ..] => {
                    let lc = usize::from(u16::from_be_bytes([*h, *l]));
                    if lc == 0 {
                        return Err(ParseError::BadLength);
                    }
                    if tail.len() == lc {
                        cmd.data = tail;
                    } else if tail.len() == lc + 2 {
                        let (data, le) = tail.split_at(lc);
                        cmd.data = data;
                        if let [h, l] = le {
                            cmd.le = Some(ext_le(*h, *l));
                        }
                    } else {
                        return Err(ParseError::BadLength);
                    }
                }
                _ => return Err(ParseError::BadLength),
            }
        }
        // Short case 3 / 4.
        [lc, tail @ ..] => {
            let lc = usize::from(*lc);
            if lc == 0 {
                return Err(ParseError::BadLength);
            }
            if tail.len() == lc {
                cmd.data = tail;
            } else if tail.len() == lc + 1 {
                let (data, le) = tail.split_at(lc);
                cmd.data = data;
                cmd.le = le.first().map(|b| short_le(*b));
            } else {
                return Err(ParseError::BadLength);
            }
        }
    }
    Ok(cmd)
}

fn short_le(b: u8) -> usize {
    if b == 0 { 256 } else { usize::from(b) }
}

fn ext_le(h: u8, l: u8) -> usize {
    match u16::from_be_bytes([h, l]) {
        0 => 65536,
        n => usize::from(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        let c = parse(&[0, 0xA4, 0, 0]).unwrap();
        assert_eq!((c.data.len(), c.le, c.extended), (0, None, false));
        let c = parse(&[0, 0xB0, 0, 0, 0]).unwrap();
        assert_eq!(c.le, Some(256));
        let c = parse(&[0, 0xB0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((c.le, c.extended), (Some(65536), true));
        let c = parse(&[0, 0xB0, 0, 0, 0, 1, 2]).unwrap();
        assert_eq!(c.le, Some(258));
        let c = parse(&[0x80, 0x2A, 0, 0x80, 2, 1, 2, 0]).unwrap();
        assert_eq!((c.data, c.le), (&[1u8, 2][..], Some(256)));
        let c = parse(&[0, 0x20, 0, 0x80, 0, 0, 2, 1, 2]).unwrap();
        assert_eq!((c.data, c.le, c.extended), (&[1u8, 2][..], None, true));
        let c = parse(&[0, 0x20, 0, 0x80, 0, 0, 2, 1, 2, 0, 0]).unwrap();
        assert_eq!((c.le, c.extended), (Some(65536), true));
        assert_eq!(parse(&[0, 0, 0]), Err(ParseError::TooShort));
        assert_eq!(parse(&[0, 0, 0, 0, 0, 0]), Err(ParseError::BadLength));
        assert_eq!(parse(&[0, 0, 0, 0, 3, 1]), Err(ParseError::BadLength));
    }
}
