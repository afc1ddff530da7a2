//! An async EventSource client (being written).
