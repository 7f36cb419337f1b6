//! Behaviour of the virtual card, per `docs/reference/jpki-protocol.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use jpki_vcard::{Answer, Persona, PinId, VirtualCard};
use proptest::prelude::*;
use rsa::Pkcs1v15Sign;
use rsa::traits::PublicKeyParts;

const SEL_JPKI: &str = "00A4040C0AD392F000260100000001";
const SEL_TEXT: &str = "00A4040C0AD3921000310001010408";
const SEL_VISUAL: &str = "00A4040C0AD3921000310001010402";

fn sel_ef(card: &mut VirtualCard, fid: &str) -> String {
    sw(card, &format!("00A4020C02{fid}"))
}

fn pin_hex(s: &str) -> String {
    format!("{:02X}{}", s.len(), hex::encode_upper(s))
}

#[test]
fn card_is_send() {
    fn is_send<T: Send>() {}
    is_send::<VirtualCard>();
}

#[test]
fn select_aids() {
    let mut c = card();
    assert_eq!(sw(&mut c, SEL_JPKI), "9000");
    assert_eq!(sw(&mut c, SEL_TEXT), "9000");
    // Foreign AIDs (OpenSC's probes) → 6A82, with any P2.
    assert_eq!(sw(&mut c, "00A4040007A0000000030000"), "6A82");
    assert_eq!(sw(&mut c, "00A4040C07627601FF000000"), "6A82");
    assert_eq!(sw(&mut c, "00A4040006A0000000010100"), "6A82");
    assert_eq!(sw(&mut c, "00A404000BE82B0601040181C31F0201"), "6A82");
    // Prefix of the JPKI AID is not enough.
    assert_eq!(sw(&mut c, "00A4040C05D392F00026"), "6A82");
    // P2 = 00 (FCI requested) for a known AID: bare 9000, with or without Le.
    assert_eq!(run(&mut c, "00A404000AD392F000260100000001"), "9000");
    assert_eq!(run(&mut c, "00A404000AD392F00026010000000100"), "9000");
    assert_eq!(sw(&mut c, "00A404020AD392F000260100000001"), "6A86");
}

#[test]
fn select_absent_aps() {
    let mut c = card_with(&Opts {
        toml_extra: "jpki_ap = false\ntext_ap = false",
        ..Opts::default()
    });
    assert_eq!(sw(&mut c, SEL_JPKI), "6A82");
    assert_eq!(sw(&mut c, SEL_TEXT), "6A82");
}

#[test]
fn select_mf_and_ef() {
    let mut c = card();
    assert_eq!(sw(&mut c, "00A40000"), "6A86");
    assert_eq!(sel_ef(&mut c, "000A"), "6A82"); // no DF selected
    assert_eq!(sw(&mut c, SEL_JPKI), "9000");
    assert_eq!(sel_ef(&mut c, "000A"), "9000");
    assert_eq!(sw(&mut c, "00A40000"), "9000");
    // Still in the JPKI AP with 000A current.
    let cert = fake_cert(3, 1500, 3);
    assert_eq!(
        run(&mut c, "00B0000004"),
        hex::encode_upper(&cert[..4]) + "9000"
    );
    assert_eq!(sw(&mut c, "00A40000023F00"), "6A82");
    assert_eq!(sel_ef(&mut c, "0003"), "6A82");
    assert_eq!(sel_ef(&mut c, "001B"), "9000");
    assert_eq!(sel_ef(&mut c, "001A"), "9000");
    assert_eq!(sel_ef(&mut c, "0017"), "9000");
    assert_eq!(sw(&mut c, "00A4020C03000A00"), "6700");
}

#[test]
fn read_binary_basics() {
    let mut c = card();
    let cert = fake_cert(3, 1500, 3);
    assert_eq!(sw(&mut c, "00B0000004"), "6986"); // no current EF
    sw(&mut c, SEL_JPKI);
    assert_eq!(sw(&mut c, "00B0000004"), "6986");
    sel_ef(&mut c, "000A");
    let r = c.execute(&h("00B0000004"));
    assert_eq!(&r[..4], &cert[..4]);
    assert_eq!(&r[4..], &[0x90, 0x00]);
    // Le 00 = 256
    let r = c.execute(&h("00B0010000"));
    assert_eq!(r.len(), 258);
    assert_eq!(&r[..256], &cert[256..512]);
    // Up to the end within Le.
    let last = cert.len() - 5;
    let r = c.execute(&h(&format!("00B0{:04X}00", last)));
    assert_eq!(&r[..r.len() - 2], &cert[last..]);
    assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
    // Offset at / past the end.
    assert_eq!(sw(&mut c, &format!("00B0{:04X}01", cert.len())), "6B00");
    assert_eq!(sw(&mut c, "00B07FFF01"), "6B00");
    // Extended Le, whole file.
    let r = c.execute(&h("00B00000000000"));
    assert_eq!(&r[..r.len() - 2], &cert[..]);
    let r = c.execute(&h("00B0000400 0010"));
    assert_eq!(&r[..16], &cert[4..20]);
    assert_eq!(r.len(), 18);
    // Case 1 READ BINARY and READ BINARY with data: wrong length.
    assert_eq!(sw(&mut c, "00B00000"), "6700");
    assert_eq!(sw(&mut c, "00B000000100"), "6700");
    // PIN EF / key EF are not transparent.
    sel_ef(&mut c, "0018");
    assert_eq!(sw(&mut c, "00B0000004"), "6981");
}

#[test]
fn plain_token_and_availability_files() {
    let mut c = card();
    sw(&mut c, SEL_JPKI);
    sel_ef(&mut c, "0006");
    let r = c.execute(&h("00B0000000"));
    assert_eq!(r.len(), 162);
    assert!(r.starts_with(b"JPKIAPICCTOKEN2 "));
    sel_ef(&mut c, "0008");
    assert_eq!(run(&mut c, "00B0000000"), "8F8F009000");
}

#[test]
fn sfi_read_makes_ef_current() {
    let mut c = card();
    let cert = fake_cert(3, 1500, 3);
    sw(&mut c, SEL_JPKI);
    let r = c.execute(&h("00B08A0004"));
    assert_eq!(&r[..4], &cert[..4]);
    // Now EF 000A is current: a 15-bit offset read continues in it.
    let r = c.execute(&h("00B0010000"));
    assert_eq!(&r[..256], &cert[256..512]);
    // SFI with offset 0x04 + extended Le (miyamori form).
    let r = c.execute(&h("00B08A04000010"));
    assert_eq!(&r[..16], &cert[4..20]);
    // SFI of an absent EF, and SFI with bits 6-7 set.
    assert_eq!(sw(&mut c, "00B0830004"), "6A82");
    assert_eq!(sw(&mut c, "00B0CA0004"), "6A86");
    // SFI read without any AP selected.
    let mut c = card();
    assert_eq!(sw(&mut c, "00B08A0004"), "6A82");
}

#[test]
fn sign_cert_needs_sign_pin() {
    let mut c = card();
    sw(&mut c, SEL_JPKI);
    sel_ef(&mut c, "0001");
    assert_eq!(sw(&mut c, "00B0000004"), "6982");
    assert_eq!(sw(&mut c, "00B0810004"), "6982");
    // Free certificates.
    for ef in ["0002", "000A", "000B"] {
        sel_ef(&mut c, ef);
        assert_eq!(sw(&mut c, "00B0000004"), "9000", "{ef}");
    }
    assert_eq!(
        sw(&mut c, &format!("0020009B{}", pin_hex("TESTPW1"))),
        "9000"
    );
    assert_eq!(sw(&mut c, "00B0810004"), "9000");
}

#[test]
fn android_auth_cert_needs_auth_pin() {
    let mut c = card_with(&Opts {
        toml_extra: "auth_cert_requires_pin = true",
        ..Opts::default()
    });
    sw(&mut c, SEL_JPKI);
    assert_eq!(sw(&mut c, "00B08A0004"), "6982");
    assert_eq!(sw(&mut c, "00B08B0004"), "9000");
    assert_eq!(sw(&mut c, &format!("00200098{}", pin_hex("1234"))), "9000");
    assert_eq!(sw(&mut c, "00B08A0004"), "9000");
}

#[test]
fn text_ap_access() {
    let mut c = card();
    sw(&mut c, SEL_TEXT);
    for ef in ["0001", "0002", "0003"] {
        sel_ef(&mut c, ef);
        assert_eq!(sw(&mut c, "00B0000000"), "6982", "{ef}");
    }
    for ef in ["0004", "0005"] {
        sel_ef(&mut c, ef);
        assert_eq!(sw(&mut c, "00B0000000"), "9000", "{ef}");
    }
    assert_eq!(sw(&mut c, &format!("00200091{}", pin_hex("1234"))), "9000");
    assert_eq!(
        run(&mut c, "00B081030C"),
        hex::encode_upper(b"123456789018") + "9000"
    );
    sel_ef(&mut c, "0002");
    assert_eq!(sw(&mut c, "00B0000000"), "9000");
}

#[test]
fn verify_counters_block_then_6984() {
    let mut c = card();
    sw(&mut c, SEL_JPKI);
    sel_ef(&mut c, "0018");
    assert_eq!(sw(&mut c, "00200080"), "63C3");
    assert_eq!(c.pin_remaining(PinId::Auth), 3);
    // Empty VERIFY with a trailing Le → 6700, no try spent.
    assert_eq!(sw(&mut c, "0020008000"), "6700");
    assert_eq!(c.pin_remaining(PinId::Auth), 3);
    assert_eq!(sw(&mut c, &format!("00200080{}", pin_hex("0000"))), "63C2");
    assert_eq!(sw(&mut c, "00200080"), "63C2");
    // Success resets the counter.
    assert_eq!(sw(&mut c, &format!("00200080{}", pin_hex("1234"))), "9000");
    assert!(c.is_verified(PinId::Auth));
    assert_eq!(c.pin_remaining(PinId::Auth), 3);
    // Wrong value clears the verified state.
    assert_eq!(sw(&mut c, &format!("00200080{}", pin_hex("0000"))), "63C2");
    assert!(!c.is_verified(PinId::Auth));
    assert_eq!(sw(&mut c, &format!("00200080{}", pin_hex("0000"))), "63C1");
    assert_eq!(sw(&mut c, &format!("00200080{}", pin_hex("0000"))), "63C0");
    assert_eq!(c.pin_remaining(PinId::Auth), 0);
    // Blocked: every later VERIFY with data → 6984, even the right value; empty → 63C0.
    assert_eq!(sw(&mut c, &format!("00200080{}", pin_hex("1234"))), "6984");
    assert_eq!(sw(&mut c, &format!("00200098{}", pin_hex("0000"))), "6984");
    assert_eq!(sw(&mut c, "00200080"), "63C0");
    assert_eq!(sw(&mut c, "00200098"), "63C0");
    assert!(!c.is_verified(PinId::Auth));
    // Blocked survives power cycles.
    c.power_off();
    c.power_on();
    sw(&mut c, SEL_JPKI);
    assert_eq!(sw(&mut c, "00200098"), "63C0");
}

#[test]
fn verify_sfi_forms_and_lengths() {
    let mut c = card();
    sw(&mut c, SEL_JPKI);
    assert_eq!(sw(&mut c, "0020009B"), "63C5");
    assert_eq!(sw(&mut c, "00200098"), "63C3");
    assert_eq!(sw(&mut c, "00200091"), "6A82"); // text PIN is not in the JPKI AP
    assert_eq!(sw(&mut c, "00200080"), "6986"); // no current EF
    sel_ef(&mut c, "000A");
    assert_eq!(sw(&mut c, "00200080"), "6981"); // current EF is not a PIN
    assert_eq!(sw(&mut c, "00200180"), "6A86");
    assert_eq!(sw(&mut c, "002000A0"), "6A86");
    // 17 bytes → 6700 without spending a try.
    assert_eq!(
        sw(&mut c, &format!("0020009B{}", pin_hex("ABCDEFGHIJKLMNOPQ"))),
        "6700"
    );
    assert_eq!(c.pin_remaining(PinId::Sign), 5);
    // VERIFY with data and Le → 6700.
    assert_eq!(
        sw(&mut c, &format!("0020009B{}00", pin_hex("TESTPW1"))),
        "6700"
    );
    assert_eq!(c.pin_remaining(PinId::Sign), 5);
    // Case matters (the card compares bytes).
    assert_eq!(
        sw(&mut c, &format!("0020009B{}", pin_hex("testpw1"))),
        "63C4"
    );
    sw(&mut c, SEL_TEXT);
    assert_eq!(sw(&mut c, "00200091"), "63C3");
    assert_eq!(sw(&mut c, "0020009B"), "6A82");
}

#[test]
fn warm_reset_keeps_pin_power_off_clears_it() {
    let mut c = card();
    sw(&mut c, SEL_JPKI);
    assert_eq!(
        sw(&mut c, &format!("0020009B{}", pin_hex("TESTPW1"))),
        "9000"
    );
    c.warm_reset();
    assert!(c.is_verified(PinId::Sign));
    // Selection is gone after the warm reset…
    assert_eq!(sw(&mut c, "00B0000004"), "6986");
    assert_eq!(sw(&mut c, "00A40000"), "6A86");
    // …but the password still opens EF 0001.
    sw(&mut c, SEL_JPKI);
    assert_eq!(sw(&mut c, "00B0810004"), "9000");
    c.power_off();
    assert!(!c.is_verified(PinId::Sign));
    c.power_on();
    sw(&mut c, SEL_JPKI);
    assert_eq!(sw(&mut c, "00B0810004"), "6982");
}

fn digest_info() -> Vec<u8> {
    let mut di = h("3031300D060960864801650304020105000420");
    di.extend([0xAB; 32]);
    di
}

#[test]
fn sign_with_both_keys() {
    let (sk, ak) = keys();
    let mut c = card();
    let di = digest_info();
    let body = format!("{:02X}{}00", di.len(), hex::encode_upper(&di));
    sw(&mut c, SEL_JPKI);
    // Before VERIFY → 6982.
    assert_eq!(sw(&mut c, &format!("802A009A{body}")), "6982");
    sel_ef(&mut c, "001A");
    assert_eq!(sw(&mut c, &format!("802A0080{body}")), "6982");
    assert_eq!(c.pin_remaining(PinId::Sign), 5);
    sw(&mut c, &format!("0020009B{}", pin_hex("TESTPW1")));
    sel_ef(&mut c, "001A");
    let r = c.execute(&h(&format!("802A0080{body}")));
    assert_eq!(r.len(), 258);
    assert_eq!(&r[256..], &[0x90, 0x00]);
    sk.to_public_key()
        .verify(Pkcs1v15Sign::new_unprefixed(), &di, &r[..256])
        .unwrap();
    // SFI form gives the same bytes.
    let r2 = c.execute(&h(&format!("802A009A{body}")));
    assert_eq!(r, r2);
    // Auth key needs the auth PIN.
    assert_eq!(sw(&mut c, &format!("802A0097{body}")), "6982");
    sw(&mut c, &format!("00200098{}", pin_hex("1234")));
    let r = c.execute(&h(&format!("802A0097{body}")));
    ak.to_public_key()
        .verify(Pkcs1v15Sign::new_unprefixed(), &di, &r[..256])
        .unwrap();
    assert_eq!(ak.size(), 256);
    // Other P1 → 6A86; input longer than k-11 → 6700; no data → 6700.
    assert_eq!(sw(&mut c, &format!("802A0197{body}")), "6A86");
    assert_eq!(
        sw(&mut c, &format!("802A0097F6{}00", "00".repeat(246))),
        "6700"
    );
    assert_eq!(
        sw(&mut c, &format!("802A0097F5{}00", "00".repeat(245))),
        "9000"
    );
    assert_eq!(sw(&mut c, "802A009700"), "6700");
    // Key EF 0017 via P2 80, current EF not a key → 6981.
    sel_ef(&mut c, "0017");
    assert_eq!(sw(&mut c, &format!("802A0080{body}")), "9000");
    sel_ef(&mut c, "000A");
    assert_eq!(sw(&mut c, &format!("802A0080{body}")), "6981");
    assert_eq!(sw(&mut c, &format!("802A0099{body}")), "6A86");
}

#[test]
fn misc_status_words() {
    let mut c = card();
    assert_eq!(sw(&mut c, "80FC0000"), "6700");
    assert_eq!(sw(&mut c, "01A4040C0AD392F000260100000001"), "6881");
    assert_eq!(sw(&mut c, "41A4040C0AD392F000260100000001"), "6881");
    assert_eq!(sw(&mut c, "0CB0000004"), "6882");
    assert_eq!(sw(&mut c, "00E00000"), "6D00");
    assert_eq!(sw(&mut c, "002A9E9A"), "6D00");
    assert_eq!(sw(&mut c, "A0A40000"), "6E00");
    assert_eq!(sw(&mut c, "FFCA000000"), "6E00");
    assert_eq!(sw(&mut c, "00CADF3005"), "6A88");
    assert_eq!(sw(&mut c, "00C0000010"), "6985");
    assert_eq!(sw(&mut c, "00A4"), "6700");
    assert_eq!(sw(&mut c, "00B0000000000000"), "6700");
    assert_eq!(c.apdus_seen(), 12);
}

#[test]
fn no_sfi_switch() {
    let mut c = card_with(&Opts {
        toml_extra: "sfi = false",
        ..Opts::default()
    });
    let di = digest_info();
    let body = format!("{:02X}{}00", di.len(), hex::encode_upper(&di));
    sw(&mut c, SEL_JPKI);
    assert_eq!(sw(&mut c, "00B08A0004"), "6A86");
    assert_eq!(sw(&mut c, "0020009B"), "6A86");
    assert_eq!(
        sw(&mut c, &format!("0020009B{}", pin_hex("TESTPW1"))),
        "6A86"
    );
    assert_eq!(c.pin_remaining(PinId::Sign), 5);
    assert_eq!(sw(&mut c, &format!("802A009A{body}")), "6A86");
    // P1/P2 forms still work.
    sel_ef(&mut c, "001B");
    assert_eq!(
        sw(&mut c, &format!("00200080{}", pin_hex("TESTPW1"))),
        "9000"
    );
    sel_ef(&mut c, "001A");
    assert_eq!(sw(&mut c, &format!("802A0080{body}")), "9000");
    sel_ef(&mut c, "000A");
    assert_eq!(sw(&mut c, "00B0000004"), "9000");
}

#[test]
fn no_extended_switch() {
    let mut c = card_with(&Opts {
        toml_extra: "extended = false",
        ..Opts::default()
    });
    sw(&mut c, SEL_JPKI);
    sel_ef(&mut c, "000A");
    assert_eq!(sw(&mut c, "00B00000000000"), "6700");
    assert_eq!(sw(&mut c, "00B08A04000010"), "6700");
    assert_eq!(sw(&mut c, "0020009B000007544553545057310000"), "6700");
    assert_eq!(c.pin_remaining(PinId::Sign), 5);
    assert_eq!(sw(&mut c, "00B0000000"), "9000");
}

#[test]
fn no_sign_key_card() {
    let mut c = card_with(&Opts {
        sign_cert: false,
        keys: false,
        ..Opts::default()
    });
    sw(&mut c, SEL_JPKI);
    assert_eq!(sel_ef(&mut c, "0001"), "6A82");
    assert_eq!(sel_ef(&mut c, "001A"), "6A82");
    assert_eq!(run(&mut c, "00B0880000"), "008F009000");
}

#[test]
fn fault_remove_after() {
    let mut c = card_with(&Opts {
        toml_extra: "[faults]\nremove_after = 2",
        ..Opts::default()
    });
    assert_eq!(c.faults().remove_after, 2);
    assert_eq!(c.exchange(&h(SEL_JPKI)), Answer::Response(h("9000")));
    assert_eq!(c.exchange(&h(SEL_JPKI)), Answer::Response(h("9000")));
    assert_eq!(c.exchange(&h(SEL_JPKI)), Answer::Removed);
    c.power_off();
    c.power_on();
    assert_eq!(c.exchange(&h(SEL_JPKI)), Answer::Removed);
    assert_eq!(c.execute(&h(SEL_JPKI)), Vec::<u8>::new());
    assert_eq!(c.apdus_seen(), 2);
}

#[test]
fn fault_mute_after() {
    let mut c = card();
    c.faults_mut().mute_after = 1;
    assert_eq!(c.exchange(&h(SEL_JPKI)), Answer::Response(h("9000")));
    assert_eq!(c.exchange(&h(SEL_JPKI)), Answer::Mute);
    c.warm_reset();
    assert_eq!(c.exchange(&h(SEL_JPKI)), Answer::Mute);
    // A power cycle revives it; the fault fires once.
    c.power_off();
    c.power_on();
    assert_eq!(c.exchange(&h(SEL_JPKI)), Answer::Response(h("9000")));
    assert_eq!(c.exchange(&h(SEL_JPKI)), Answer::Response(h("9000")));
}

#[test]
fn fault_6f00_after_power_on_and_delay() {
    let mut c = card_with(&Opts {
        toml_extra: "[faults]\nsw_6f00_after_power_on = true\ndelay_ms = 7",
        ..Opts::default()
    });
    assert_eq!(c.faults().delay_ms, 7);
    assert_eq!(sw(&mut c, SEL_JPKI), "6F00");
    assert_eq!(sw(&mut c, SEL_JPKI), "9000");
    c.warm_reset();
    assert_eq!(sw(&mut c, SEL_JPKI), "9000");
    c.power_off();
    c.power_on();
    // The 6F00 APDU did nothing: no AP selected.
    assert_eq!(sw(&mut c, SEL_JPKI), "6F00");
    assert_eq!(sw(&mut c, "00A40000"), "6A86");
}

#[test]
fn fault_sign_delay_applies_to_compute_digital_signature_only() {
    use std::time::Duration;
    let c = card_with(&Opts {
        toml_extra: "[faults]\ndelay_ms = 5\nsign_delay_ms = 400",
        ..Opts::default()
    });
    assert_eq!(c.answer_delay(&h(SEL_JPKI)), Duration::from_millis(5));
    assert_eq!(c.answer_delay(&h("0020009B")), Duration::from_millis(5));
    assert_eq!(
        c.answer_delay(&h("802A009A0102")),
        Duration::from_millis(405)
    );
    assert_eq!(card().answer_delay(&h("802A009A0102")), Duration::ZERO);
}

#[test]
fn fault_chain_61xx() {
    let mut c = card_with(&Opts {
        toml_extra: "[faults]\nchain_61xx = 100",
        ..Opts::default()
    });
    let cert = fake_cert(3, 1500, 3);
    sw(&mut c, SEL_JPKI);
    sel_ef(&mut c, "000A");
    // Short answers pass through.
    let r = c.execute(&h("00B0000004"));
    assert_eq!(&r[..4], &cert[..4]);
    assert_eq!(run(&mut c, "00B0000000"), "6100");
    let mut got = Vec::new();
    let mut le = "00".to_string();
    loop {
        let r = c.execute(&h(&format!("00C00000{le}")));
        let (d, s) = r.split_at(r.len() - 2);
        assert!(d.len() <= 100);
        got.extend_from_slice(d);
        if s == [0x90, 0x00] {
            break;
        }
        assert_eq!(s[0], 0x61);
        le = format!("{:02X}", s[1]);
    }
    assert_eq!(got, &cert[..256]);
    // Nothing pending any more.
    assert_eq!(sw(&mut c, "00C0000010"), "6985");
    // Another command drops pending data.
    assert_eq!(run(&mut c, "00B0000000"), "6100");
    assert_eq!(sw(&mut c, "00B0000004"), "9000");
    assert_eq!(sw(&mut c, "00C0000010"), "6985");
    // Error SWs are not chained.
    assert_eq!(run(&mut c, "00B07FFF00"), "6B00");
}

#[test]
fn fault_corrupt() {
    let plain = card();
    let mut c = card_with(&Opts {
        toml_extra: "[faults]\ncorrupt = [\"jpki/000A\"]",
        ..Opts::default()
    });
    let mut p = plain;
    let read_all = |c: &mut VirtualCard, sfi: &str| {
        sw(c, SEL_JPKI);
        let r = c.execute(&h(&format!("00B0{sfi}00000000")));
        r[..r.len() - 2].to_vec()
    };
    let good = read_all(&mut p, "8A");
    let bad = read_all(&mut c, "8A");
    assert_eq!(good.len(), bad.len());
    let diffs: Vec<usize> = (0..good.len()).filter(|&i| good[i] != bad[i]).collect();
    assert_eq!(diffs.len(), 1);
    let at = diffs[0];
    assert_eq!(Some(at), jpki_vcard::card::corrupt_offset(&good));
    // Inside the TBS (which starts at 4), not in the outer header nor the signature.
    assert!(at > 8 && at < good.len() - 260, "{at}");
    // Chunked reads see the same flipped byte; deterministic.
    let mut chunked = Vec::new();
    sw(&mut c, SEL_JPKI);
    sel_ef(&mut c, "000A");
    let mut off = 0;
    loop {
        let r = c.execute(&h(&format!("00B0{off:04X}00")));
        if r.len() == 2 {
            break;
        }
        chunked.extend_from_slice(&r[..r.len() - 2]);
        off += r.len() - 2;
    }
    assert_eq!(chunked, bad);
    // Other files untouched.
    assert_eq!(read_all(&mut p, "8B"), read_all(&mut c, "8B"));
    // Switchable at run time.
    c.faults_mut().corrupt.clear();
    assert_eq!(read_all(&mut c, "8A"), good);
}

#[test]
fn persona_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(VirtualCard::load(dir.path()).is_err());
    write_persona(
        dir.path(),
        &Opts {
            toml_extra: "[faults]\nremove_aftre = 1",
            ..Opts::default()
        },
    );
    let e = VirtualCard::load(dir.path()).unwrap_err();
    assert!(matches!(e, jpki_vcard::PersonaError::Toml { .. }), "{e:?}");
    write_persona(
        dir.path(),
        &Opts {
            toml_extra: "atr = \"3BZZ\"",
            ..Opts::default()
        },
    );
    assert!(VirtualCard::load(dir.path()).is_err());
    write_persona(
        dir.path(),
        &Opts {
            toml_extra: "atr = \"3B00\"",
            ..Opts::default()
        },
    );
    assert_eq!(VirtualCard::load(dir.path()).unwrap().atr(), &[0x3B, 0x00]);
    std::fs::write(dir.path().join("jpki/zz.bin"), b"x").unwrap();
    assert!(VirtualCard::load(dir.path()).is_err());
}

#[test]
fn default_atr() {
    assert_eq!(card().atr(), &h("3BE000FF8131FE4514")[..]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn never_panics(apdus in proptest::collection::vec(
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..12),
            proptest::collection::vec(any::<u8>(), 0..300),
            // Plausible headers with random tails.
            (prop_oneof![Just(0x00u8), Just(0x80), any::<u8>()],
             prop_oneof![Just(0xA4u8), Just(0xB0), Just(0x20), Just(0x2A), Just(0xC0), any::<u8>()],
             any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20))
                .prop_map(|(a, b, c, d, t)| [vec![a, b, c, d], t].concat()),
            // The visual AP: its SELECT, VERIFY 91/92/93, SFI READs, the 80 2A 00 00 signature.
            Just(h(SEL_VISUAL)),
            (prop_oneof![Just([0x00u8, 0x20, 0x00]), Just([0x00, 0xB0, 0x82]),
                         Just([0x00, 0xB0, 0x85]), Just([0x80, 0x2A, 0x00])],
             prop_oneof![Just(0x91u8), Just(0x92), Just(0x93), Just(0x00), any::<u8>()],
             proptest::collection::vec(any::<u8>(), 0..270))
                .prop_map(|(head, p2, t)| [head.to_vec(), vec![p2], t].concat()),
        ], 1..20),
        chain in 0usize..300,
        verified in any::<bool>(),
        sfi in any::<bool>(),
        extended in any::<bool>(),
        ap in 0u8..3,
        visual in any::<bool>())
    {
        thread_local! {
            static BASE: Persona = {
                let dir = tempfile::tempdir().unwrap();
                write_persona(dir.path(), &Opts::default());
                Persona::load(dir.path()).unwrap()
            };
        }
        let mut c = BASE.with(|p| {
            let mut p = p.clone();
            p.sfi = sfi;
            p.extended = extended;
            p.visual_ap = visual;
            VirtualCard::new(p)
        });
        if verified {
            sw(&mut c, SEL_VISUAL);
            sw(&mut c, &format!("00200091{}", pin_hex(BIRTH_KEY)));
            sw(&mut c, &format!("00200092{}", pin_hex(CODE_B)));
            sw(&mut c, &format!("00200093{}", pin_hex(CODE_A)));
            sw(&mut c, SEL_TEXT);
            sel_ef(&mut c, "0011");
            sw(&mut c, &format!("00200080{}", pin_hex("1234")));
            sw(&mut c, SEL_JPKI);
            sel_ef(&mut c, "001B");
            sw(&mut c, &format!("00200080{}", pin_hex("TESTPW1")));
            sel_ef(&mut c, "0018");
            sw(&mut c, &format!("00200080{}", pin_hex("1234")));
        }
        c.faults_mut().chain_61xx = chain;
        c.faults_mut().corrupt = vec![
            "jpki/000A".into(),
            "text/0001".into(),
            "visual/0002".into(),
        ];
        sw(&mut c, [SEL_JPKI, SEL_TEXT, SEL_VISUAL][usize::from(ap)]);
        for a in &apdus {
            let r = c.execute(a);
            prop_assert!(r.len() >= 2);
        }
    }
}

#[test]
fn iphone_token_accepts_last_command_indicator() {
    let dir = tempfile::tempdir().unwrap();
    write_persona(dir.path(), &Opts::default());
    let mut token = b"JPKIAPIOSTOKEN".to_vec();
    token.resize(160, b' ');
    std::fs::write(dir.path().join("jpki/0006.bin"), token).unwrap();
    let mut c = VirtualCard::load(dir.path()).unwrap();
    assert_eq!(sw(&mut c, "80FC0000"), "9000");
    assert_eq!(sw(&mut c, "80FC0100"), "6700");
}

#[test]
fn text_ap_card_key_signature() {
    let dir = tempfile::tempdir().unwrap();
    write_persona(dir.path(), &Opts::default());
    let di = digest_info();
    let apdu = format!("802A0000{:02X}{}00", di.len(), hex::encode_upper(&di));
    let mut c = VirtualCard::load(dir.path()).unwrap();
    sw(&mut c, SEL_TEXT);
    assert_eq!(sw(&mut c, &apdu), "6A88"); // no keys/textap.pk8.der
    std::fs::copy(
        dir.path().join("keys/auth.pk8.der"),
        dir.path().join("keys/textap.pk8.der"),
    )
    .unwrap();
    let mut c = VirtualCard::load(dir.path()).unwrap();
    sw(&mut c, SEL_TEXT);
    let r = c.execute(&h(&apdu));
    assert_eq!(r.len(), 258);
    keys()
        .1
        .to_public_key()
        .verify(Pkcs1v15Sign::new_unprefixed(), &di, &r[..256])
        .unwrap();
    // In the JPKI AP, P2 00 is not a key reference.
    sw(&mut c, SEL_JPKI);
    assert_eq!(sw(&mut c, &apdu), "6A86");
}
