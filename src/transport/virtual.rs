//! In-process virtual card transport (to be written).
