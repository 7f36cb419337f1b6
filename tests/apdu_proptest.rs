//! The response parser and the TLV reader take bytes from the card, which may be anything:
//! they must never panic, never loop, and must agree with the encoder where one exists.

use jpkid::apdu::{Command, Response, StatusWord};
use jpkid::jpki::text;
use jpkid::tlv;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn response_parser_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        match Response::from_bytes(&raw) {
            Ok(r) => {
                prop_assert_eq!(r.data.len() + 2, raw.len());
                let sw = u16::from_be_bytes([raw[raw.len() - 2], raw[raw.len() - 1]]);
                prop_assert_eq!(r.sw.to_u16(), sw);
            }
            Err(_) => prop_assert!(raw.len() < 2),
        }
    }

    #[test]
    fn status_words_round_trip(sw in any::<u16>()) {
        prop_assert_eq!(StatusWord::from(sw).to_u16(), sw);
    }

    #[test]
    fn tlv_reader_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok((t, rest)) = tlv::read(&raw) {
            prop_assert_eq!(t.total_len() + rest.len(), raw.len());
            for child in t.children().take(1000) {
                if child.is_err() { break; }
            }
        }
        let _ = tlv::read_header(&raw, 0);
        let _ = text::parse_basic_four(&raw);
        let _ = text::parse_integrity_record(&raw);
        let _ = jpkid::pki::cvc::CvCertificate::parse(&raw);
    }

    #[test]
    fn tlv_reader_accepts_any_valid_length_form(
        value in proptest::collection::vec(any::<u8>(), 0..600),
        form in 0u8..3,
        filler in 0usize..20,
    ) {
        let len = value.len();
        let mut raw = vec![0xDF, 0x22];
        match form {
            0 if len < 128 => raw.push(u8::try_from(len).unwrap()),
            0 | 1 => { raw.push(0x82); raw.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes()); }
            // Non-minimal: three length bytes with leading zero.
            _ => { raw.push(0x83); raw.push(0); raw.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes()); }
        }
        raw.extend_from_slice(&value);
        raw.extend(std::iter::repeat_n(0xFF, filler));
        let (t, rest) = tlv::read(&raw).unwrap();
        prop_assert_eq!(t.tag, 0xDF22);
        prop_assert_eq!(t.value, &value[..]);
        prop_assert_eq!(rest.len(), filler);
    }

    #[test]
    fn command_encoding_round_trips_lengths(
        data_len in 0usize..600,
        le in proptest::option::of(1usize..=65536),
    ) {
        let mut cmd = Command::new("TEST", 0x00, 0xB0, 0x00, 0x00).with_data(vec![0xAB; data_len]);
        if let Some(le) = le { cmd = cmd.with_le(le); }
        let bytes = cmd.to_bytes().unwrap();
        let extended = data_len > 255 || le.is_some_and(|l| l > 256);
        let expected = 4
            + if data_len > 0 { (if extended { 3 } else { 1 }) + data_len } else { 0 }
            + match le { None => 0, Some(_) if !extended => 1, Some(_) if data_len > 0 => 2, Some(_) => 3 };
        prop_assert_eq!(bytes.len(), expected);
    }
}
