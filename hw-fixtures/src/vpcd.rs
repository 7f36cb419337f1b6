//! vpcd (to be written)
