//! OpenBox governance for Temporal workers.
pub mod wire;
