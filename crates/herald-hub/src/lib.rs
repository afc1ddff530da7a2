//! The Herald hub (being written).
