//! Fuzzes a publish body through `herald_hub::http::publish_fields` (what the publish handler
//! runs) and the strict form decoder: no panic, the decoder agrees with `form_urlencoded` and
//! round-trips, refusals are 400 / 413 for the right reasons, accepted fields follow the
//! rules, and every accepted update's frame parses back to the same id, type, retry and data.
//!
//! The checks live in `crates/herald-hub/tests/fuzz_checks/publish_form.rs`, shared with the
//! test that replays the seed corpus (`crates/herald-hub/tests/corpus.rs`).
#![no_main]

#[path = "../../crates/herald-hub/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    fuzz_checks::publish_form::check(input);
});
