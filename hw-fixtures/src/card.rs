//! card (to be written)
