//! The visual AP (券面事項確認AP) of the virtual card: SELECT, access rules of its six EFs, its
//! three keys (生年月日 `0011`, 照合番号B `0012`, 照合番号A `0013`) and the card-key signature,
//! per `docs/reference/jpki-protocol.md` §4, §4.1, §6.7, §7.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use jpki_vcard::{PinId, VirtualCard};
use rsa::Pkcs1v15Sign;

const SEL_JPKI: &str = "00A4040C0AD392F000260100000001";
const SEL_TEXT: &str = "00A4040C0AD3921000310001010408";
const SEL_VISUAL: &str = "00A4040C0AD3921000310001010402";

fn pin_hex(s: &str) -> String {
    format!("{:02X}{}", s.len(), hex::encode_upper(s))
}

fn sel_ef(card: &mut VirtualCard, fid: u16) -> String {
    sw(card, &format!("00A4020C02{fid:04X}"))
}

/// READ BINARY of a whole visual EF by SFI (short Le 00), then the rest by offset.
fn read_sfi(card: &mut VirtualCard, fid: u16) -> (Vec<u8>, String) {
    let r = card.execute(&h(&format!("00B0{:02X}0000", 0x80 | fid)));
    let (d, s) = r.split_at(r.len() - 2);
    let status = hex::encode_upper(s);
    if status != "9000" {
        return (d.to_vec(), status);
    }
    let mut data = d.to_vec();
    loop {
        let r = card.execute(&h(&format!("00B0{:04X}00", data.len())));
        let (d, s) = r.split_at(r.len() - 2);
        match hex::encode_upper(s).as_str() {
            "9000" => data.extend_from_slice(d),
            "6B00" => return (data, "9000".into()),
            other => return (data, other.into()),
        }
    }
}

/// Which of EF 0001..0006 a READ BINARY opens right now: by SFI, and by SELECT + P1P2.
fn readable(card: &mut VirtualCard) -> Vec<u16> {
    let mut open = Vec::new();
    for fid in 1..=6u16 {
        let (data, s) = read_sfi(card, fid);
        assert_eq!(sel_ef(card, fid), "9000");
        let s2 = sw(card, "00B0000001");
        assert_eq!(
            s == "9000",
            s2 == "9000",
            "EF {fid:04X}: SFI {s}, P1P2 {s2}"
        );
        match s.as_str() {
            "9000" => {
                assert_eq!(data, visual_file(fid), "EF {fid:04X}");
                open.push(fid);
            }
            other => assert_eq!(other, "6982", "EF {fid:04X}"),
        }
    }
    open
}

#[test]
fn select_visual_ap() {
    let mut c = card();
    assert_eq!(sw(&mut c, SEL_VISUAL), "9000");
    assert_eq!(run(&mut c, "00A404000AD3921000310001010402"), "9000");
    // Prefix of the AID, the AID with the last byte changed: not the visual AP.
    assert_eq!(sw(&mut c, "00A4040C09D39210003100010104"), "6A82");
    assert_eq!(sw(&mut c, "00A4040C0AD3921000310001010403"), "6A82");
    // Unknown EF; the JPKI AP's EFs are not here.
    sw(&mut c, SEL_VISUAL);
    assert_eq!(sel_ef(&mut c, 0x0007), "6A82");
    assert_eq!(sel_ef(&mut c, 0x000A), "6A82");
    assert_eq!(sel_ef(&mut c, 0x001A), "6A82");
    assert_eq!(sel_ef(&mut c, 0x0014), "6A82");
    for fid in [0x0011, 0x0012, 0x0013] {
        assert_eq!(sel_ef(&mut c, fid), "9000");
    }
    // A persona without it answers 6A82 (smartphone tokens, non-JPKI cards).
    let mut c = card_with(&Opts {
        toml_extra: "visual_ap = false",
        ..Opts::default()
    });
    assert_eq!(sw(&mut c, SEL_VISUAL), "6A82");
    assert_eq!(sw(&mut c, SEL_TEXT), "9000");
    let mut c = card_with(&Opts {
        visual: false,
        ..Opts::default()
    });
    assert!(!c.persona().visual_ap, "default: whether visual/ exists");
    assert_eq!(sw(&mut c, SEL_VISUAL), "6A82");
}

#[test]
fn each_key_opens_exactly_its_files() {
    let mut c = card();
    sw(&mut c, SEL_VISUAL);
    assert_eq!(readable(&mut c), Vec::<u16>::new(), "nothing without a key");

    assert_eq!(
        sw(&mut c, &format!("00200091{}", pin_hex(BIRTH_KEY))),
        "9000"
    );
    assert_eq!(
        readable(&mut c),
        vec![1],
        "生年月日 opens the age record only"
    );

    c.power_off();
    c.power_on();
    sw(&mut c, SEL_VISUAL);
    assert_eq!(sw(&mut c, &format!("00200092{}", pin_hex(CODE_B))), "9000");
    assert_eq!(
        readable(&mut c),
        vec![2, 3, 4, 6],
        "照合番号B: never EF 0005"
    );

    c.power_off();
    c.power_on();
    sw(&mut c, SEL_VISUAL);
    assert_eq!(sw(&mut c, &format!("00200093{}", pin_hex(CODE_A))), "9000");
    assert_eq!(
        readable(&mut c),
        vec![2, 3, 4, 5, 6],
        "照合番号A: also EF 0005"
    );

    // Together: everything.
    assert_eq!(
        sw(&mut c, &format!("00200091{}", pin_hex(BIRTH_KEY))),
        "9000"
    );
    assert_eq!(readable(&mut c), vec![1, 2, 3, 4, 5, 6]);
    // The key EFs are not transparent.
    sel_ef(&mut c, 0x0012);
    assert_eq!(sw(&mut c, "00B0000001"), "6981");
}

#[test]
fn the_face_file_needs_a_short_then_an_extended_read() {
    let mut c = card();
    sw(&mut c, SEL_VISUAL);
    sw(&mut c, &format!("00200092{}", pin_hex(CODE_B)));
    let face = visual_file(2);
    assert!(face.len() > 256);
    let r = c.execute(&h("00B0820000"));
    assert_eq!(&r[..256], &face[..256]);
    assert_eq!(&r[256..], &[0x90, 0x00]);
    let r = c.execute(&h(&format!("00B00100 00{:04X}", face.len() - 256)));
    assert_eq!(&r[..r.len() - 2], &face[256..]);
    let r = c.execute(&h("00B08200000000"));
    assert_eq!(&r[..r.len() - 2], &face[..]);
    assert_eq!(sw(&mut c, &format!("00B0{:04X}01", face.len())), "6B00");
}

fn check_counter(pin: PinId, value: &str, p2: &str) {
    let mut c = card();
    sw(&mut c, SEL_VISUAL);
    let verify = |c: &mut VirtualCard, v: &str| sw(c, &format!("002000{p2}{}", pin_hex(v)));
    let wrong = value.replace(|ch: char| ch.is_ascii_digit(), "9");
    let wrong = if wrong == value {
        value.replace('9', "8")
    } else {
        wrong
    };
    assert_eq!(c.pin_remaining(pin), 10);
    // Empty VERIFY: tries left, nothing spent; with Le → 6700.
    assert_eq!(sw(&mut c, &format!("002000{p2}")), "63CA");
    assert_eq!(sw(&mut c, &format!("002000{p2}00")), "6700");
    assert_eq!(verify(&mut c, &wrong), "63C9");
    assert_eq!(sw(&mut c, &format!("002000{p2}")), "63C9");
    // The SELECT + P2 80 form counts on the same counter.
    sel_ef(&mut c, pin.ef());
    assert_eq!(sw(&mut c, "00200080"), "63C9");
    assert_eq!(sw(&mut c, &format!("00200080{}", pin_hex(&wrong))), "63C8");
    // Success resets the counter; a wrong value then clears the verified state.
    assert_eq!(verify(&mut c, value), "9000");
    assert!(c.is_verified(pin));
    assert_eq!(c.pin_remaining(pin), 10);
    assert_eq!(verify(&mut c, &wrong), "63C9");
    assert!(!c.is_verified(pin));
    // 17 bytes: 6700, no try spent.
    assert_eq!(verify(&mut c, "12345678901234567"), "6700");
    assert_eq!(c.pin_remaining(pin), 9);
    for left in (0..9u8).rev() {
        assert_eq!(verify(&mut c, &wrong), format!("63C{left:X}"));
    }
    // Blocked: 6984 even for the right value, 63C0 for the empty VERIFY, across power cycles.
    assert_eq!(verify(&mut c, value), "6984");
    assert_eq!(sw(&mut c, &format!("002000{p2}")), "63C0");
    c.power_off();
    c.power_on();
    sw(&mut c, SEL_VISUAL);
    assert_eq!(sw(&mut c, &format!("002000{p2}")), "63C0");
    assert!(!c.is_verified(pin));
    // The other visual keys are untouched.
    for other in [PinId::Birth, PinId::CodeB, PinId::CodeA] {
        if other != pin {
            assert_eq!(c.pin_remaining(other), 10);
        }
    }
}

#[test]
fn birth_date_key_counter() {
    check_counter(PinId::Birth, BIRTH_KEY, "91");
}

#[test]
fn code_b_counter() {
    check_counter(PinId::CodeB, CODE_B, "92");
}

#[test]
fn code_a_counter() {
    check_counter(PinId::CodeA, CODE_A, "93");
}

#[test]
fn visual_keys_are_not_the_text_aps() {
    let mut c = card();
    // In the text AP, P2 91 is the text PIN; 92/93 are no keys there.
    sw(&mut c, SEL_TEXT);
    assert_eq!(sw(&mut c, "00200091"), "63C3");
    assert_eq!(sw(&mut c, "00200092"), "6A82");
    assert_eq!(
        sw(&mut c, &format!("00200091{}", pin_hex(BIRTH_KEY))),
        "63C2"
    );
    assert_eq!(c.pin_remaining(PinId::Text), 2);
    assert_eq!(c.pin_remaining(PinId::Birth), 10);
    sw(&mut c, SEL_JPKI);
    assert_eq!(sw(&mut c, "00200092"), "6A82");
    sw(&mut c, SEL_VISUAL);
    assert_eq!(sw(&mut c, "00200091"), "63CA");
    assert_eq!(sw(&mut c, "0020009B"), "6A82");
    assert_eq!(sw(&mut c, "00200098"), "6A82");
    // 照合番号A does not open the JPKI signing certificate, nor the text AP.
    assert_eq!(sw(&mut c, &format!("00200093{}", pin_hex(CODE_A))), "9000");
    sw(&mut c, SEL_TEXT);
    assert_eq!(sw(&mut c, "00B0810000"), "6982");
    sw(&mut c, SEL_JPKI);
    assert_eq!(sw(&mut c, "00B0810000"), "6982");
}

fn digest_info(fill: u8) -> Vec<u8> {
    let mut di = h("3031300D060960864801650304020105000420");
    di.extend([fill; 32]);
    di
}

#[test]
fn card_key_signs_challenges_without_credential() {
    let mut c = card();
    let di = digest_info(0x5C);
    let apdu = format!("802A0000{:02X}{}00", di.len(), hex::encode_upper(&di));
    sw(&mut c, SEL_VISUAL);
    let r = c.execute(&h(&apdu));
    assert_eq!(r.len(), 258);
    assert_eq!(&r[256..], &[0x90, 0x00]);
    card_key()
        .to_public_key()
        .verify(Pkcs1v15Sign::new_unprefixed(), &di, &r[..256])
        .unwrap();
    // Exactly the bytes given: any DigestInfo (or none) up to k − 11 bytes.
    let raw = "01".repeat(245);
    let r = c.execute(&h(&format!("802A0000F5{raw}00")));
    card_key()
        .to_public_key()
        .verify(Pkcs1v15Sign::new_unprefixed(), &h(&raw), &r[..256])
        .unwrap();
    assert_eq!(
        sw(&mut c, &format!("802A0000F6{}00", "01".repeat(246))),
        "6700"
    );
    assert_eq!(sw(&mut c, "802A000000"), "6700");
    assert_eq!(sw(&mut c, &format!("802A0100{}", &apdu[8..])), "6A86");
    // P2 9A / 97 / 80 are JPKI key references: nothing of the kind here.
    assert_eq!(sw(&mut c, &format!("802A009A{}", &apdu[8..])), "6A82");
    assert_eq!(sw(&mut c, &format!("802A0080{}", &apdu[8..])), "6986");
    // Nothing was verified for that.
    for p in [PinId::Birth, PinId::CodeB, PinId::CodeA] {
        assert!(!c.is_verified(p));
    }
    // The JPKI AP's P2 00 is no key; a visual AP without a card key answers 6A88.
    sw(&mut c, SEL_JPKI);
    assert_eq!(sw(&mut c, &apdu), "6A86");
    let mut c = card_with(&Opts {
        keys: false,
        ..Opts::default()
    });
    sw(&mut c, SEL_VISUAL);
    assert_eq!(sw(&mut c, &apdu), "6A88");
}

#[test]
fn warm_reset_keeps_power_off_clears() {
    let mut c = card();
    sw(&mut c, SEL_VISUAL);
    assert_eq!(sw(&mut c, &format!("00200092{}", pin_hex(CODE_B))), "9000");
    c.warm_reset();
    assert!(c.is_verified(PinId::CodeB));
    assert_eq!(
        sw(&mut c, "00B0820000"),
        "6A82",
        "nothing selected after a warm reset"
    );
    sw(&mut c, SEL_VISUAL);
    assert_eq!(sw(&mut c, "00B0820001"), "9000");
    // Selecting another AP and coming back keeps it too (the card's model, see card.rs).
    sw(&mut c, SEL_JPKI);
    sw(&mut c, SEL_VISUAL);
    assert_eq!(sw(&mut c, "00B0820001"), "9000");
    c.power_off();
    assert!(!c.is_verified(PinId::CodeB));
    c.power_on();
    sw(&mut c, SEL_VISUAL);
    assert_eq!(sw(&mut c, "00B0820001"), "6982");
    assert_eq!(c.pin_remaining(PinId::CodeB), 10);
}

#[test]
fn sfi_and_extended_switches_apply() {
    let mut c = card_with(&Opts {
        toml_extra: "sfi = false\nextended = false",
        ..Opts::default()
    });
    sw(&mut c, SEL_VISUAL);
    assert_eq!(sw(&mut c, "00200092"), "6A86");
    assert_eq!(sw(&mut c, &format!("00200092{}", pin_hex(CODE_B))), "6A86");
    assert_eq!(c.pin_remaining(PinId::CodeB), 10);
    sel_ef(&mut c, 0x0012);
    assert_eq!(sw(&mut c, &format!("00200080{}", pin_hex(CODE_B))), "9000");
    assert_eq!(sw(&mut c, "00B0820000"), "6A86");
    sel_ef(&mut c, 0x0002);
    assert_eq!(sw(&mut c, "00B00000000000"), "6700");
    let r = c.execute(&h("00B0000000"));
    assert_eq!(r.len(), 258);
}

#[test]
fn corrupt_fault_names_visual_files() {
    let mut c = card_with(&Opts {
        toml_extra: "[faults]\ncorrupt = [\"visual/0002\"]",
        ..Opts::default()
    });
    sw(&mut c, SEL_VISUAL);
    sw(&mut c, &format!("00200092{}", pin_hex(CODE_B)));
    let r = c.execute(&h("00B08200000000"));
    let got = &r[..r.len() - 2];
    let want = visual_file(2);
    let diffs: Vec<usize> = (0..want.len()).filter(|&i| got[i] != want[i]).collect();
    assert_eq!(
        diffs,
        vec![jpki_vcard::card::corrupt_offset(&want).unwrap()]
    );
    // Untouched elsewhere.
    let r = c.execute(&h("00B0860000"));
    assert_eq!(&r[..r.len() - 2], &visual_file(6)[..]);
}
