//! Fuzzes `herald_wire::Parser`: arbitrary bytes, arbitrary chunkings, small and default
//! limits. Checks that it never panics, that the items and last event id do not depend on how
//! the stream is cut into chunks (whole, pseudo-random chunks, byte at a time), that no
//! dispatched event exceeds the limits, and that the parser never holds more than one line.
//!
//! The checks live in `crates/herald-wire/tests/common/mod.rs`, shared with the test that
//! replays the seed corpus, so both check exactly the same thing.
#![no_main]

#[path = "../../crates/herald-wire/tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    common::check_fuzz_input(input);
});
