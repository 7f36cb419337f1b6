//! persona (to be written)
