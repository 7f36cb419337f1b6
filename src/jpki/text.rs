//! Text AP operations (to be written).
