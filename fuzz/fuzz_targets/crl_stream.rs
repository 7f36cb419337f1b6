//! The streaming CRL reader on arbitrary bytes read in arbitrary pieces: it never panics, and
//! reading in pieces gives what reading all at once gives. The first byte chooses the piece
//! sizes, the rest is the CRL.
#![no_main]

use jpkid::pki::crl::{inspect, inspect_reader};
use libfuzzer_sys::fuzz_target;

/// Hands out `data` in pieces of 1 + (a byte of the key) bytes, in turn.
struct Pieces<'a> {
    data: &'a [u8],
    key: u8,
    turn: u32,
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.turn = self.turn.wrapping_add(1);
        let want =
            1 + usize::from(self.key.rotate_left(self.turn % 8)) * (1 + self.turn as usize % 3);
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&key, crl)) = data.split_first() else {
        return;
    };
    let whole = inspect(crl);
    let pieces = inspect_reader(Pieces {
        data: crl,
        key,
        turn: 0,
    });
    assert_eq!(whole.is_ok(), pieces.is_ok(), "{whole:?} / {pieces:?}");
    if let (Ok(a), Ok(b)) = (whole, pieces) {
        assert_eq!(a, b);
    }
});
