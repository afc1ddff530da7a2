//! Replays the fuzz seed corpus (`tests/corpus/*.txt`) through the fuzz target's own checks,
//! so every `cargo test` runs them deterministically without nightly or libFuzzer.
//!
//! Each file is a fuzz input: one byte choosing the limits, two bytes seeding the chunking,
//! then the stream (see `common::check_fuzz_input`). Inputs the fuzzer found are added here
//! with a name saying what they exercise.

mod common;

#[test]
fn seed_corpus_passes_the_fuzz_checks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut replayed = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus directory exists")
        .map(|entry| entry.expect("readable entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let input = std::fs::read(&path).expect("readable seed");
        let result = std::panic::catch_unwind(|| common::check_fuzz_input(&input));
        assert!(result.is_ok(), "seed {} failed", path.display());
        replayed += 1;
    }
    assert!(replayed >= 10, "only {replayed} seeds in {}", dir.display());
}

#[test]
fn empty_and_tiny_fuzz_inputs_are_accepted() {
    for input in [&b""[..], b"~", b"~a", b"~ab", b"\xff\xff\xff\r"] {
        common::check_fuzz_input(input);
    }
}
