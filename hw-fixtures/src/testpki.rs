//! testpki (to be written)
