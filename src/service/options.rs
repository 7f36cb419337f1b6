//! The `a{sv}` options of the methods: known keys with their exact variant types, nothing else.

use std::collections::HashMap;
use std::time::Duration;

use zbus::{OwnedVariant, Variant};

use super::errors::Error;
use crate::readers::RequestOptions;

/// Options of the card methods: `allow-last-try` (b), `timeout-ms` (u).
///
/// # Errors
/// `InvalidArgument` for an unknown key, a wrong variant type or a zero timeout.
pub(crate) fn card_options(
    options: &HashMap<String, OwnedVariant>,
    defaults: RequestOptions,
) -> Result<RequestOptions, Error> {
    let mut out = defaults;
    for (key, value) in options {
        match key.as_str() {
            "allow-last-try" => match &**value {
                Variant::Bool(b) => out.allow_last_try = *b,
                _ => return Err(wrong_type(key, "b", value)),
            },
            "timeout-ms" => match &**value {
                Variant::U32(0) => return Err(Error::invalid("option timeout-ms must be > 0")),
                Variant::U32(ms) => out.timeout = Duration::from_millis(u64::from(*ms)),
                _ => return Err(wrong_type(key, "u", value)),
            },
            other => return Err(unknown(other)),
        }
    }
    Ok(out)
}

/// Options of `VerifyCertificate`: `at` (x, unix seconds).
///
/// # Errors
/// `InvalidArgument` for an unknown key or a wrong variant type.
pub(crate) fn verify_options(
    options: &HashMap<String, OwnedVariant>,
) -> Result<Option<i64>, Error> {
    let mut at = None;
    for (key, value) in options {
        match key.as_str() {
            "at" => match &**value {
                Variant::I64(t) => at = Some(*t),
                _ => return Err(wrong_type(key, "x", value)),
            },
            other => return Err(unknown(other)),
        }
    }
    Ok(at)
}

fn unknown(key: &str) -> Error {
    Error::invalid(format!("unknown option {key:?}"))
}

fn wrong_type(key: &str, want: &str, value: &Variant<'_>) -> Error {
    Error::invalid(format!(
        "option {key:?} must be of type {want}, got {}",
        value.value_signature()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn defaults() -> RequestOptions {
        RequestOptions {
            allow_last_try: false,
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn known_keys_with_their_types() {
        let mut m = HashMap::new();
        m.insert("allow-last-try".to_owned(), OwnedVariant::from(true));
        m.insert("timeout-ms".to_owned(), OwnedVariant::from(1500u32));
        let o = card_options(&m, defaults()).unwrap();
        assert!(o.allow_last_try);
        assert_eq!(o.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        for (k, v) in [
            ("allow-last-try", OwnedVariant::from(1u32)),
            ("timeout-ms", OwnedVariant::from(15i64)),
            ("timeout-ms", OwnedVariant::from(0u32)),
            ("colour", OwnedVariant::from(true)),
        ] {
            let mut m = HashMap::new();
            m.insert(k.to_owned(), v);
            assert!(
                matches!(card_options(&m, defaults()), Err(Error::InvalidArgument(_))),
                "{k}"
            );
        }
        let mut m = HashMap::new();
        m.insert("at".to_owned(), OwnedVariant::from(5u32));
        assert!(verify_options(&m).is_err());
        let mut m = HashMap::new();
        m.insert("at".to_owned(), OwnedVariant::from(5i64));
        assert_eq!(verify_options(&m).unwrap(), Some(5));
    }
}
