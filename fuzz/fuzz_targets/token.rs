//! Fuzzes access tokens: random bytes as a bearer token (header, cookie, legacy query
//! parameter; nothing verifies without the secret), and structured JWTs with chosen headers
//! and claims signed with the test secret, whose verdict and grants under a draft-08 and a
//! legacy verifier must equal a model of the claims rules.
//!
//! The checks live in `crates/herald-hub/tests/fuzz_checks/token.rs`, shared with the test
//! that replays the seed corpus (`crates/herald-hub/tests/corpus.rs`).
#![no_main]

#[path = "../../crates/herald-hub/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    fuzz_checks::token::check(input);
});
