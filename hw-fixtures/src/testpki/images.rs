//! Tiny synthetic images for the visual AP: 1-bit greyscale PNGs (the card renders its text
//! fields that way, myna-card 3.3.4 `src/data.rs` `ImageFormat`) and a JPEG 2000 placeholder for
//! the face photo (greyscale JP2, the card's photo format).
//!
//! Nothing here renders text or a face: every pixel comes from a SHA-256 stream seeded with a
//! label, so the images differ between personas and carry no person's data. The PNGs are valid
//! (chunk CRCs, a zlib stream of stored deflate blocks with its Adler-32); the JP2 file is a
//! complete codestream whose only packet is empty, which decodes to a uniform mid-grey image.

use sha2::{Digest, Sha256};

use super::TestPkiError;

/// CRC-32 (ISO 3309 / ITU-T V.42, reflected polynomial `EDB88320`), as PNG chunks use it.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = crc_table();
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = TABLE[usize::from((c as u8) ^ b)] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[n] = c;
        n += 1;
    }
    t
}

/// Adler-32 (RFC 1950).
pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4): no compression.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(0xFFFF).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xFF, 0xFF]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        // chunk.len() <= 0xFFFF by construction.
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// `n` pseudo-random bytes from SHA-256 of `label` and a counter.
pub fn stream(label: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    let mut i = 0u32;
    while out.len() < n {
        let mut h = Sha256::new();
        h.update(label.as_bytes());
        h.update(i.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        i += 1;
    }
    out.truncate(n);
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) -> Result<(), TestPkiError> {
    let len = u32::try_from(data.len()).map_err(|_| TestPkiError::TooLong(data.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// A `width` × `height` 1-bit greyscale PNG whose pixels come from [`stream`]`(label)`.
pub fn png_1bit(width: u32, height: u32, label: &str) -> Result<Vec<u8>, TestPkiError> {
    let row_bytes = usize::try_from(width.div_ceil(8)).map_err(|_| TestPkiError::Layout("PNG"))?;
    let rows = usize::try_from(height).map_err(|_| TestPkiError::Layout("PNG"))?;
    let bits = stream(label, row_bytes * rows);
    let mut raw = Vec::with_capacity((row_bytes + 1) * rows);
    let spare = (row_bytes * 8) as u32 - width;
    let last_mask = (0xFFu16 << spare) as u8;
    for row in bits.chunks(row_bytes.max(1)).take(rows) {
        raw.push(0); // filter type None
        raw.extend_from_slice(row);
        if let Some(last) = raw.last_mut() {
            *last &= last_mask;
        }
    }
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // bit depth 1, colour type 0 (greyscale), deflate, filter method 0, no interlace.
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, b"IHDR", &ihdr)?;
    png_chunk(&mut out, b"IDAT", &zlib_stored(&raw))?;
    png_chunk(&mut out, b"IEND", &[])?;
    Ok(out)
}

fn jp2_box(kind: &[u8; 4], data: &[u8]) -> Result<Vec<u8>, TestPkiError> {
    let len = u32::try_from(data.len() + 8).map_err(|_| TestPkiError::TooLong(data.len()))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    Ok(out)
}

fn marker(code: u8, body: &[u8]) -> Result<Vec<u8>, TestPkiError> {
    let len = u16::try_from(body.len() + 2).map_err(|_| TestPkiError::TooLong(body.len()))?;
    let mut out = vec![0xFF, code];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// A greyscale JPEG 2000 file (ISO/IEC 15444-1 Annex I, JP2) of `width` × `height` 8-bit
/// pixels: signature box, `ftyp`, `jp2h` (`ihdr`, `colr` enumerated greyscale), and a
/// codestream (SIZ, COD with no decomposition, QCD, a COM segment carrying `comment`, one tile
/// whose single packet is empty, EOC). The comment makes the bytes differ between personas.
pub fn jp2_placeholder(width: u32, height: u32, comment: &str) -> Result<Vec<u8>, TestPkiError> {
    let mut out = jp2_box(b"jP  ", &[0x0D, 0x0A, 0x87, 0x0A])?;
    out.extend(jp2_box(b"ftyp", b"jp2 \x00\x00\x00\x00jp2 ")?);
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&width.to_be_bytes());
    // 1 component, 8-bit unsigned, compression type 7, colourspace known, no IPR.
    ihdr.extend_from_slice(&[0x00, 0x01, 0x07, 0x07, 0x00, 0x00]);
    let mut header = jp2_box(b"ihdr", &ihdr)?;
    // Enumerated colourspace 17 = greyscale.
    header.extend(jp2_box(
        b"colr",
        &[0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11],
    )?);
    out.extend(jp2_box(b"jp2h", &header)?);

    let mut cs = vec![0xFF, 0x4F]; // SOC
    let mut siz = vec![0x00, 0x00]; // Rsiz
    for v in [width, height, 0, 0, width, height, 0, 0] {
        siz.extend_from_slice(&v.to_be_bytes());
    }
    siz.extend_from_slice(&[0x00, 0x01, 0x07, 0x01, 0x01]); // 1 component, 8 bit, 1:1
    cs.extend(marker(0x51, &siz)?);
    // COD: Scod 0; LRCP, 1 layer, no MCT; 0 decompositions, 64×64 code-blocks, style 0, 5-3.
    cs.extend(marker(
        0x52,
        &[0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x04, 0x04, 0x00, 0x01],
    )?);
    // QCD: no quantisation, 2 guard bits; the one (LL) band's exponent 8.
    cs.extend(marker(0x5C, &[0x40, 0x40])?);
    let mut com = vec![0x00, 0x01]; // Rcom 1: Latin text
    com.extend_from_slice(comment.as_bytes());
    cs.extend(marker(0x64, &com)?);
    // SOT: tile 0, Psot = SOT segment (12) + SOD (2) + 1 byte of data, tile-part 0 of 1.
    cs.extend(marker(
        0x90,
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x0F, 0x00, 0x01],
    )?);
    cs.extend_from_slice(&[0xFF, 0x93]); // SOD
    cs.push(0x00); // the one packet: empty (first header bit 0)
    cs.extend_from_slice(&[0xFF, 0xD9]); // EOC
    out.extend(jp2_box(b"jp2c", &cs)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(
            zlib_stored(b""),
            [0x78, 0x01, 0x01, 0, 0, 0xFF, 0xFF, 0, 0, 0, 1]
        );
    }

    #[test]
    fn png_shape() {
        let p = png_1bit(20, 3, "x").unwrap();
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&p[12..16], b"IHDR");
        assert_eq!(&p[p.len() - 8..p.len() - 4], b"IEND");
        assert_ne!(p, png_1bit(20, 3, "y").unwrap());
    }

    #[test]
    fn jp2_shape() {
        let j = jp2_placeholder(24, 32, "c").unwrap();
        assert_eq!(
            &j[..12],
            &[0, 0, 0, 12, b'j', b'P', b' ', b' ', 13, 10, 0x87, 10]
        );
        assert_eq!(&j[j.len() - 2..], &[0xFF, 0xD9]);
    }
}
