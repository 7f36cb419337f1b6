//! JPKI AP operations (to be written).
