//! (filled in by the crate owner)
