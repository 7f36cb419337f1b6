//! PIN types. Each validates its format before any APDU is built, so a badly typed PIN never
//! reaches the card and never costs a try. Values are zeroized on drop and never shown.

use std::fmt;

use zeroize::Zeroizing;

use super::{JpkiError, KeyKind, PinKind};

/// Why a PIN was refused before it reached the card. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinFormatError {
    /// Wrong number of characters.
    #[error("must be {min} to {max} characters, got {got}")]
    Length {
        /// Fewest characters allowed.
        min: usize,
        /// Most characters allowed.
        max: usize,
        /// Characters given.
        got: usize,
    },
    /// A character outside the allowed set.
    #[error("may contain only {allowed}")]
    Character {
        /// The allowed set, in words.
        allowed: &'static str,
    },
}

/// The signing password (署名用パスワード): 6–16 characters of `A–Z` and `0–9`.
///
/// Lower-case letters are accepted and sent upper-case: the card stores the password in upper
/// case only and a lower-case attempt would burn a try (`docs/reference/jpki-protocol.md` §7).
pub struct SignPassword(Zeroizing<Vec<u8>>);

impl SignPassword {
    /// Validates and wraps a signing password.
    ///
    /// # Errors
    /// [`PinFormatError`] naming the rule that failed.
    pub fn new(value: &[u8]) -> Result<SignPassword, PinFormatError> {
        if !(6..=16).contains(&value.len()) {
            return Err(PinFormatError::Length {
                min: 6,
                max: 16,
                got: value.len(),
            });
        }
        let upper = Zeroizing::new(value.to_ascii_uppercase());
        if !upper
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(PinFormatError::Character {
                allowed: "letters A-Z and digits 0-9",
            });
        }
        Ok(SignPassword(upper))
    }

    /// The bytes to send in VERIFY.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A 4-digit PIN: the user-authentication PIN (利用者証明用暗証番号) or the text-AP PIN
/// (券面事項入力補助用暗証番号).
pub struct FourDigitPin(Zeroizing<Vec<u8>>);

impl FourDigitPin {
    /// Validates and wraps a 4-digit PIN.
    ///
    /// # Errors
    /// [`PinFormatError`] naming the rule that failed.
    pub fn new(value: &[u8]) -> Result<FourDigitPin, PinFormatError> {
        if value.len() != 4 {
            return Err(PinFormatError::Length {
                min: 4,
                max: 4,
                got: value.len(),
            });
        }
        if !value.iter().all(u8::is_ascii_digit) {
            return Err(PinFormatError::Character {
                allowed: "digits 0-9",
            });
        }
        Ok(FourDigitPin(Zeroizing::new(value.to_vec())))
    }

    /// The bytes to send in VERIFY.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The secret that unlocks one of the JPKI AP's private keys; which key follows from the type,
/// so that a key can only be unlocked with a secret of its own format.
pub enum KeySecret {
    /// The signing password: the signing key (and certificate).
    Sign(SignPassword),
    /// The authentication PIN: the authentication key.
    Auth(FourDigitPin),
}

impl KeySecret {
    /// Validates raw bytes as the secret of `key`.
    ///
    /// # Errors
    /// [`JpkiError::PinFormat`] naming the rule; nothing reaches a card.
    pub fn new(key: KeyKind, raw: &[u8]) -> Result<KeySecret, JpkiError> {
        let format = |source| JpkiError::PinFormat {
            pin: key.pin(),
            source,
        };
        match key {
            KeyKind::Sign => SignPassword::new(raw).map(KeySecret::Sign).map_err(format),
            KeyKind::Auth => FourDigitPin::new(raw).map(KeySecret::Auth).map_err(format),
        }
    }

    /// The key it unlocks.
    pub fn key(&self) -> KeyKind {
        match self {
            KeySecret::Sign(_) => KeyKind::Sign,
            KeySecret::Auth(_) => KeyKind::Auth,
        }
    }

    /// The bytes VERIFY carries.
    pub fn bytes(&self) -> &[u8] {
        match self {
            KeySecret::Sign(p) => p.bytes(),
            KeySecret::Auth(p) => p.bytes(),
        }
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySecret({}, [REDACTED])", self.key())
    }
}

/// Validates raw bytes as the signing password (署名用パスワード).
///
/// # Errors
/// [`JpkiError::PinFormat`] naming the rule.
pub fn sign_password(raw: &[u8]) -> Result<SignPassword, JpkiError> {
    SignPassword::new(raw).map_err(|source| JpkiError::PinFormat {
        pin: PinKind::SignPassword,
        source,
    })
}

/// The text AP's PIN (券面事項入力補助用暗証番号): four digits like the auth PIN, but a type of
/// its own, so that one can never be sent where the other is meant.
pub struct TextPin(FourDigitPin);

impl TextPin {
    /// The bytes VERIFY carries.
    pub fn bytes(&self) -> &[u8] {
        self.0.bytes()
    }
}

impl fmt::Debug for TextPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TextPin([REDACTED])")
    }
}

/// Validates raw bytes as the text AP's PIN.
///
/// # Errors
/// [`JpkiError::PinFormat`] naming the rule.
pub fn text_pin(raw: &[u8]) -> Result<TextPin, JpkiError> {
    FourDigitPin::new(raw)
        .map(TextPin)
        .map_err(|source| JpkiError::PinFormat {
            pin: PinKind::TextPin,
            source,
        })
}

/// 照合番号B of the visual AP (券面事項確認AP EF 0012): exactly 14 ASCII digits, as printed on
/// the card face — the birth date `YYMMDD` with the Japanese-era year, the card's expiry year
/// `YYYY` and the 4-digit security code (`reference/jpki-protocol.md` §4.1, §7). It opens the
/// card face but never the My Number; 照合番号A is not a type here at all.
pub struct CodeB(Zeroizing<Vec<u8>>);

/// Digits in 照合番号B.
const CODE_B_LEN: usize = 14;

impl CodeB {
    /// Validates and wraps 照合番号B.
    ///
    /// # Errors
    /// [`PinFormatError`] naming the rule that failed.
    pub fn new(value: &[u8]) -> Result<CodeB, PinFormatError> {
        if value.len() != CODE_B_LEN {
            return Err(PinFormatError::Length {
                min: CODE_B_LEN,
                max: CODE_B_LEN,
                got: value.len(),
            });
        }
        if !value.iter().all(u8::is_ascii_digit) {
            return Err(PinFormatError::Character {
                allowed: "digits 0-9",
            });
        }
        Ok(CodeB(Zeroizing::new(value.to_vec())))
    }

    /// The bytes VERIFY carries.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for CodeB {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeB([REDACTED])")
    }
}

/// Validates raw bytes as 照合番号B.
///
/// # Errors
/// [`JpkiError::PinFormat`] naming the rule; nothing reaches a card.
pub fn code_b(raw: &[u8]) -> Result<CodeB, JpkiError> {
    CodeB::new(raw).map_err(|source| JpkiError::PinFormat {
        pin: PinKind::CodeB,
        source,
    })
}

impl fmt::Debug for SignPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignPassword([REDACTED])")
    }
}

impl fmt::Debug for FourDigitPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FourDigitPin([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_password_rules() {
        assert!(SignPassword::new(b"ABC123").is_ok());
        assert!(SignPassword::new(b"ABCDEFGHIJ123456").is_ok());
        assert_eq!(SignPassword::new(b"abc123").unwrap().bytes(), b"ABC123");
        assert_eq!(
            SignPassword::new(b"AB12").unwrap_err(),
            PinFormatError::Length {
                min: 6,
                max: 16,
                got: 4
            }
        );
        assert!(matches!(
            SignPassword::new(b"ABCDEFGHIJ1234567"),
            Err(PinFormatError::Length { .. })
        ));
        assert!(matches!(
            SignPassword::new(b"ABC 123"),
            Err(PinFormatError::Character { .. })
        ));
        assert!(SignPassword::new("ＡＢＣ１２３".as_bytes()).is_err());
        assert!(matches!(
            SignPassword::new(b"ABC-123"),
            Err(PinFormatError::Character { .. })
        ));
    }

    #[test]
    fn four_digit_rules() {
        assert!(FourDigitPin::new(b"0000").is_ok());
        assert!(matches!(
            FourDigitPin::new(b"123"),
            Err(PinFormatError::Length { .. })
        ));
        assert!(matches!(
            FourDigitPin::new(b"12345"),
            Err(PinFormatError::Length { .. })
        ));
        assert!(matches!(
            FourDigitPin::new(b"12a4"),
            Err(PinFormatError::Character { .. })
        ));
    }

    #[test]
    fn code_b_is_fourteen_digits() {
        assert_eq!(
            CodeB::new(b"55021720352285").unwrap().bytes(),
            b"55021720352285"
        );
        assert_eq!(
            CodeB::new(b"5502172035228").unwrap_err(),
            PinFormatError::Length {
                min: 14,
                max: 14,
                got: 13
            }
        );
        assert!(matches!(
            CodeB::new(b"550217203522850"),
            Err(PinFormatError::Length { got: 15, .. })
        ));
        for bad in [
            &b"5502172035228A"[..],
            b"55021720 52285",
            "５５０２１７２０３５２２".as_bytes(),
        ] {
            assert!(CodeB::new(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            CodeB::new(b"550217-0352285"),
            Err(PinFormatError::Character { .. })
        ));
        assert!(matches!(
            code_b(b"123"),
            Err(JpkiError::PinFormat {
                pin: PinKind::CodeB,
                ..
            })
        ));
        let c = CodeB::new(b"55021720352285").unwrap();
        assert!(!format!("{c:?}").contains("5502"));
    }

    #[test]
    fn debug_and_errors_never_show_the_value() {
        let p = SignPassword::new(b"SECRET99").unwrap();
        assert!(!format!("{p:?}").contains("SECRET"));
        let p = FourDigitPin::new(b"4711").unwrap();
        assert!(!format!("{p:?}").contains("4711"));
        let e = FourDigitPin::new(b"47x1").unwrap_err();
        assert!(!e.to_string().contains("47"));
    }
}
