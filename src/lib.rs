//! jpkid
