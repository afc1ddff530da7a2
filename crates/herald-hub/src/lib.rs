//! The Herald hub as a library (being assembled).

pub mod store;
pub mod update;
