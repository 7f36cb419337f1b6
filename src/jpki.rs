//! Identifiers of the My Number Card's JPKI and text applications, the kinds of certificate and
//! PIN, what a detected card is, and the errors of card operations. Every byte value is from
//! `docs/reference/jpki-protocol.md` (section given next to it).

pub mod ap;
pub mod pin;
pub mod text;
pub mod visual;

use std::fmt;

use crate::card::CardError;

/// 公的個人認証AP (JPKI AP), §1.
pub const JPKI_AP_AID: [u8; 10] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
/// 券面事項入力補助AP (text AP), §1.
pub const TEXT_AP_AID: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08];

/// 券面事項確認AP (visual AP), §4: the card face, read with 照合番号B only.
pub const VISUAL_AP_AID: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02];

/// JPKI AP EF 0006: token information (`CK_TOKEN_INFO`), §2.2.
pub const EF_TOKEN_INFO: u16 = 0x0006;
/// JPKI AP EF 0008: which certificates exist, §2.1.
pub const EF_CERT_AVAILABILITY: u16 = 0x0008;
/// JPKI AP EF 001A: signing private key, §2.1.
pub const EF_SIGN_KEY: u16 = 0x001A;
/// JPKI AP EF 0017: authentication private key, §2.1.
pub const EF_AUTH_KEY: u16 = 0x0017;

/// Text AP EF 0002: basic four attributes, §3.3.
pub const EF_BASIC_FOUR: u16 = 0x0002;
/// Text AP EF 0003: integrity record, §3.4.
pub const EF_INTEGRITY: u16 = 0x0003;
/// Text AP EF 0004: card-verifiable certificate, §3.5.
pub const EF_TEXT_CVC: u16 = 0x0004;

/// Visual AP EF 0002: the card face (券面), §4, §4.1.
pub const EF_CARD_FACE: u16 = 0x0002;
/// Visual AP EF 0004: the AP's card-verifiable certificate, §4.1.
pub const EF_VISUAL_CVC: u16 = 0x0004;

/// Token labels (EF 0006 `label`, space-padded), §2.2.
pub const LABEL_CARD: &str = "JPKIAPICCTOKEN2";
/// Android smartphone token.
pub const LABEL_ANDROID: &str = "JPKIAPGPSETOKEN";
/// iPhone smartphone token.
pub const LABEL_IPHONE: &str = "JPKIAPIOSTOKEN";
/// The old 住基カード.
pub const LABEL_JUKI: &str = "JPKIAPICCTOKEN";

/// The short EF identifier of an EF ID in 0001–001E (its low five bits), §6.4.
pub fn sfi(ef: u16) -> Option<u8> {
    u8::try_from(ef).ok().filter(|v| (1..=0x1E).contains(v))
}

pub use crate::api::{CardKind, CertKind, HashAlg, KeyKind};

/// Card facts of the certificates (§2.1).
impl CertKind {
    /// The EF holding the certificate.
    pub fn ef(self) -> u16 {
        match self {
            CertKind::Auth => 0x000A,
            CertKind::AuthCa => 0x000B,
            CertKind::Sign => 0x0001,
            CertKind::SignCa => 0x0002,
        }
    }

    /// What the certificate is, for errors and the trace.
    pub fn describe(self) -> &'static str {
        match self {
            CertKind::Auth => "auth certificate (EF 000A)",
            CertKind::AuthCa => "auth CA certificate (EF 000B)",
            CertKind::Sign => "signing certificate (EF 0001)",
            CertKind::SignCa => "signing CA certificate (EF 0002)",
        }
    }

    /// Whether the certificate contains personal data (the sign certificate carries the basic
    /// four in its subjectAltName) and must not be traced.
    pub fn is_personal(self) -> bool {
        self == CertKind::Sign
    }
}

/// Card facts of the keys (§2.1).
impl KeyKind {
    /// The key's EF.
    pub fn ef(self) -> u16 {
        match self {
            KeyKind::Sign => EF_SIGN_KEY,
            KeyKind::Auth => EF_AUTH_KEY,
        }
    }

    /// The PIN that unlocks the key.
    pub fn pin(self) -> PinKind {
        match self {
            KeyKind::Sign => PinKind::SignPassword,
            KeyKind::Auth => PinKind::AuthPin,
        }
    }

    /// The certificate of the key's public half.
    pub fn certificate(self) -> CertKind {
        match self {
            KeyKind::Sign => CertKind::Sign,
            KeyKind::Auth => CertKind::Auth,
        }
    }
}

/// The PINs jpkid uses. 照合番号A (visual AP `0013`, the My Number) is not one of them: jpkid
/// never presents it (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinKind {
    /// 署名用パスワード, JPKI EF 001B, 5 tries.
    SignPassword,
    /// 利用者証明用暗証番号, JPKI EF 0018, 3 tries.
    AuthPin,
    /// 券面事項入力補助用暗証番号, text AP EF 0011, 3 tries.
    TextPin,
    /// 照合番号B, visual AP EF 0012 (14 digits printed on the card face; tries unpublished).
    CodeB,
}

impl PinKind {
    /// Every kind, in D-Bus order.
    pub const ALL: [PinKind; 4] = [
        PinKind::SignPassword,
        PinKind::AuthPin,
        PinKind::TextPin,
        PinKind::CodeB,
    ];

    /// The PIN's EF in its application.
    pub fn ef(self) -> u16 {
        match self {
            PinKind::SignPassword => 0x001B,
            PinKind::AuthPin => 0x0018,
            PinKind::TextPin => 0x0011,
            PinKind::CodeB => 0x0012,
        }
    }

    /// The application the PIN lives in.
    pub fn application(self) -> &'static [u8; 10] {
        match self {
            PinKind::SignPassword | PinKind::AuthPin => &JPKI_AP_AID,
            PinKind::TextPin => &TEXT_AP_AID,
            PinKind::CodeB => &VISUAL_AP_AID,
        }
    }

    /// Tries a fresh card has (照合番号B: 10, the one figure published, PERSONAS.md; its
    /// counter is always read from the card, this only stands in for "not counted down").
    pub fn max_tries(self) -> u8 {
        match self {
            PinKind::SignPassword => 5,
            PinKind::AuthPin | PinKind::TextPin => 3,
            PinKind::CodeB => 10,
        }
    }

    /// The D-Bus key (`sign-password`, `auth-pin`, `text-pin`, `code-b`).
    pub fn as_str(self) -> &'static str {
        match self {
            PinKind::SignPassword => "sign-password",
            PinKind::AuthPin => "auth-pin",
            PinKind::TextPin => "text-pin",
            PinKind::CodeB => "code-b",
        }
    }
}

impl fmt::Display for PinKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The token kind a label names (EF 0006, §2.2, §13).
impl CardKind {
    /// From the trimmed token label.
    pub fn from_label(label: &str) -> CardKind {
        match label {
            LABEL_CARD => CardKind::Card,
            LABEL_ANDROID => CardKind::Android,
            LABEL_IPHONE => CardKind::Iphone,
            _ => CardKind::Unknown,
        }
    }
}

/// What detection learned about a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInfo {
    /// Token kind.
    pub kind: CardKind,
    /// Trimmed token label.
    pub label: String,
    /// Whether a signing certificate exists (EF 0008 first byte); none under 15.
    pub has_sign_cert: bool,
    /// Whether an authentication certificate exists (EF 0008 second byte).
    pub has_auth_cert: bool,
}

/// Why a JPKI operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JpkiError {
    /// The card has no JPKI application.
    #[error("not a My Number Card (no JPKI application)")]
    NotJpkiCard,
    /// The card has no text application (smartphone tokens).
    #[error("the card has no text (券面事項入力補助) application")]
    NoTextApplication,
    /// The card has no visual application (smartphone tokens, some cards).
    #[error("the card has no visual (券面事項確認) application")]
    NoVisualApplication,
    /// The requested certificate does not exist on this card.
    #[error("certificate {0} is not on this card")]
    CertificateMissing(CertKind),
    /// The operation is not possible on this kind of token.
    #[error("not supported on this card: {0}")]
    Unsupported(&'static str),
    /// A secret was given for a certificate this token lets anyone read; it was not sent.
    #[error("the {0} certificate of this token is read without a secret: pass an empty one")]
    SecretNotWanted(CertKind),
    /// The token guards this certificate with a PIN and none was given.
    #[error("{0}: this token needs it to read the certificate")]
    PinRequired(PinKind),
    /// Wrong PIN; `remaining` tries are left.
    #[error("remaining={remaining} wrong {pin}")]
    PinIncorrect {
        /// Which PIN.
        pin: PinKind,
        /// Tries left.
        remaining: u8,
    },
    /// The PIN is blocked.
    #[error("{pin} is blocked")]
    PinBlocked {
        /// Which PIN.
        pin: PinKind,
    },
    /// VERIFY refused by the PIN guard: too few tries left and the caller did not allow it.
    #[error("remaining={remaining} {pin} has too few tries left to risk one")]
    PinGuard {
        /// Which PIN.
        pin: PinKind,
        /// Tries left.
        remaining: u8,
    },
    /// The PIN's format is wrong; the card never saw it.
    #[error("{pin}: {source}")]
    PinFormat {
        /// Which PIN.
        pin: PinKind,
        /// The rule that failed.
        #[source]
        source: pin::PinFormatError,
    },
    /// The card signed with a key that is not its certificate's: it cannot prove it holds the
    /// certificate (a copied certificate on a forged card).
    #[error("the card's signing key does not belong to its signing certificate")]
    KeyMismatch,
    /// The counter flow needs a token of another kind.
    #[error("{0}")]
    WrongToken(&'static str),
    /// A card-level failure (transport, status word, malformed data).
    #[error(transparent)]
    Card(#[from] CardError),
}

/// How the PIN guard decides (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinGuard {
    /// Refuse VERIFY when fewer tries than this are left.
    pub min_remaining: u8,
    /// The caller accepts risking the last tries (`allow-last-try`).
    pub allow_last_try: bool,
}

impl Default for PinGuard {
    fn default() -> PinGuard {
        PinGuard {
            min_remaining: 2,
            allow_last_try: false,
        }
    }
}

impl PinGuard {
    /// Whether a VERIFY may be sent with `remaining` tries left.
    pub fn permits(&self, remaining: u8) -> bool {
        self.allow_last_try || remaining >= self.min_remaining
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sfi_range() {
        assert_eq!(sfi(0x000A), Some(0x0A));
        assert_eq!(sfi(0x001B), Some(0x1B));
        assert_eq!(sfi(0x0000), None);
        assert_eq!(sfi(0x001F), None);
        assert_eq!(sfi(0x0100), None);
    }

    #[test]
    fn labels_name_token_kinds() {
        assert_eq!(CardKind::from_label("JPKIAPICCTOKEN2"), CardKind::Card);
        assert_eq!(CardKind::from_label("JPKIAPGPSETOKEN"), CardKind::Android);
        assert_eq!(CardKind::from_label("JPKIAPICCTOKEN"), CardKind::Unknown);
    }

    #[test]
    fn guard() {
        let g = PinGuard::default();
        assert!(g.permits(2));
        assert!(!g.permits(1));
        assert!(
            PinGuard {
                allow_last_try: true,
                ..g
            }
            .permits(1)
        );
    }
}
