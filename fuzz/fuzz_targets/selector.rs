//! Fuzzes topic selectors and topic rules: exact, URL pattern and legacy selectors, URI
//! templates, `validate_topic` and `is_reserved`. No panic; refusals exactly where the shared
//! rules say; `raw()` round trips; templates match their own expansions and nothing with a
//! space; generated URL patterns match the topics built for them and not altered ones;
//! generated topics inside and outside the hub's namespace get the right reserved verdict.
//!
//! The checks live in `crates/herald-hub/tests/fuzz_checks/selector.rs`, shared with the test
//! that replays the seed corpus (`crates/herald-hub/tests/corpus.rs`).
#![no_main]

#[path = "../../crates/herald-hub/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    fuzz_checks::selector::check(input);
});
