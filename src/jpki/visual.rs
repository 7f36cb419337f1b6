//! Visual AP (券面事項確認AP, `docs/reference/jpki-protocol.md` §4, §4.1), opened with
//! 照合番号B (`0012`) only: the card face (EF 0002), the AP's CV certificate (EF 0004) and the
//! card key's signature of a challenge (`80 2A 00 00`); [`crate::pki::face`] says whether they
//! are J-LIS's.
//!
//! 照合番号A (`0013`, the My Number) is never presented and EF 0005 (the rendered My Number,
//! which only 照合番号A opens) is never read: no function here can name either, and jpkid
//! does not collect the number (DESIGN §1). Every response of this AP is personal (the face
//! holds birth date, sex, name, address and photo): redacted in traces, zeroized.

use zeroize::Zeroizing;

use crate::apdu::{Command, MAX_SHORT_LE, SIGNATURE_TIME, StatusWord};
use crate::card::{Card, CardError};
use crate::digest::DigestInfo;
use crate::transport::CardTransport;

use super::ap::{FirstRead, read_ef, verify_pin};
use super::pin::CodeB;
use super::{EF_CARD_FACE, EF_VISUAL_CVC, JpkiError, PinGuard, PinKind, VISUAL_AP_AID};

/// Size of EF 0004 (§3.5, the same format as the text AP's): `7F 21 82 02 33` + 0x233.
const CVC_LEN: usize = 5 + 0x233;

/// Selects the visual AP.
fn select<T: CardTransport>(card: &mut Card<T>) -> Result<(), JpkiError> {
    match card.select_application("SELECT VISUAL AP", &VISUAL_AP_AID)? {
        StatusWord::Success => Ok(()),
        _ => Err(JpkiError::NoVisualApplication),
    }
}

/// The visual AP with 照合番号B verified in this session: the only way to its files.
#[derive(Debug)]
pub struct UnlockedVisual<'c, T: CardTransport> {
    card: &'c mut Card<T>,
}

/// Verifies 照合番号B behind the PIN guard, like every PIN (the card held exclusively first,
/// the retry counter read with the empty VERIFY, no VERIFY when too few tries are left).
///
/// # Errors
/// [`JpkiError::NoVisualApplication`] when the card has no visual AP, PIN errors, or a card
/// error.
pub fn unlock<'c, T: CardTransport>(
    card: &'c mut Card<T>,
    code: &CodeB,
    guard: PinGuard,
) -> Result<UnlockedVisual<'c, T>, JpkiError> {
    select(card)?;
    verify_pin(card, PinKind::CodeB, code.bytes(), guard)?;
    Ok(UnlockedVisual { card })
}

impl<T: CardTransport> UnlockedVisual<'_, T> {
    /// The card face (EF 0002) as the card holds it, filler dropped: one short READ that tells
    /// the length, then the rest in one extended READ where the reader allows it.
    ///
    /// # Errors
    /// A card error, or [`CardError::Malformed`] when the file is no TLV.
    pub fn read_card_face(&mut self) -> Result<Zeroizing<Vec<u8>>, JpkiError> {
        select(self.card)?;
        Ok(read_ef(
            self.card,
            EF_CARD_FACE,
            "card face (EF 0002)",
            true,
            FirstRead::Header,
        )?)
    }

    /// The AP's CV certificate (EF 0004), in one extended READ where allowed.
    ///
    /// # Errors
    /// A card error, or [`CardError::Malformed`] when the file is no TLV.
    pub fn read_cv_certificate(&mut self) -> Result<Zeroizing<Vec<u8>>, JpkiError> {
        select(self.card)?;
        Ok(read_ef(
            self.card,
            EF_VISUAL_CVC,
            "visual CV certificate (EF 0004)",
            true,
            FirstRead::Whole(CVC_LEN),
        )?)
    }

    /// Has the card key sign `challenge` (fresh random bytes from jpkid, taken as a SHA-256
    /// value): `80 2A 00 00 <DigestInfo> 00`, P2 `00` = the AP's default key, no credential
    /// (§4.1). `None` when the card refuses (it cannot prove it holds the face's key).
    ///
    /// # Errors
    /// A transport failure (a status word is an answer, not an error).
    pub fn sign_challenge(&mut self, challenge: &[u8; 32]) -> Result<Option<Vec<u8>>, JpkiError> {
        select(self.card)?;
        let digest = DigestInfo::new(crate::api::HashAlg::Sha256, challenge).map_err(|_| {
            JpkiError::Card(CardError::Malformed {
                what: "challenge",
                source: None,
            })
        })?;
        let cmd = Command::new(
            "COMPUTE DIGITAL SIGNATURE (card key)",
            0x80,
            0x2A,
            0x00,
            0x00,
        )
        .with_data(digest.as_bytes().to_vec())
        .with_le(MAX_SHORT_LE)
        .needs(SIGNATURE_TIME);
        let resp = self.card.exchange(&cmd)?;
        Ok((resp.sw == StatusWord::Success && !resp.data.is_empty()).then(|| resp.data.to_vec()))
    }
}
