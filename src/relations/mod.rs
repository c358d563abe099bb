//! Relation databags turned into typed values.

pub mod mongodb;
pub mod website;
