//! Replays the hub's fuzz seed corpora (`tests/corpus/<target>/`) through the fuzz targets'
//! own checks (`tests/fuzz_checks/`), so every `cargo test` runs them deterministically
//! without nightly or libFuzzer. Inputs the fuzzer found are added to these directories with
//! a name saying what they exercise.

mod fuzz_checks;

use std::path::Path;

/// Runs `check` on every file of `tests/corpus/<target>/`, naming the file that fails;
/// returns what `check` returned for each.
fn replay<T>(target: &str, check: fn(&[u8]) -> T) -> Vec<T> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("readable entry").path())
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 8,
        "only {} seeds in {}",
        paths.len(),
        dir.display()
    );
    paths
        .iter()
        .map(|path| {
            let input = std::fs::read(path).expect("readable seed");
            std::panic::catch_unwind(|| check(&input))
                .unwrap_or_else(|_| panic!("seed {} failed", path.display()))
        })
        .collect()
}

#[test]
fn publish_form_seeds_pass_the_fuzz_checks() {
    let accepted = replay("publish_form", fuzz_checks::publish_form::check);
    // The seeds reach both sides: the frame round trip and the refusals.
    assert!(accepted.contains(&true) && accepted.contains(&false));
}

#[test]
fn selector_seeds_pass_the_fuzz_checks() {
    replay("selector", fuzz_checks::selector::check);
}

#[test]
fn token_seeds_pass_the_fuzz_checks() {
    let accepted = replay("token", fuzz_checks::token::check);
    // Some seeds verify under both verifiers (the grants are compared with the model), some
    // under one, most under none.
    assert!(accepted.contains(&2) && accepted.contains(&1) && accepted.contains(&0));
}

#[test]
fn empty_and_tiny_inputs_pass_the_fuzz_checks() {
    for input in [&b""[..], b"\x00", b"\xc0", b"\x80", b"\xff", b"=", b"&"] {
        fuzz_checks::publish_form::check(input);
        fuzz_checks::selector::check(input);
        fuzz_checks::token::check(input);
    }
}
