//! The checks of the hub's fuzz targets, shared by the targets in `fuzz/fuzz_targets/`
//! (which include this directory by path) and by `tests/corpus.rs`, which replays the
//! committed seed corpus through them on every `cargo test`. One function per target:
//!
//! - [`publish_form::check`]: a publish body, as the publish handler reads it.
//! - [`selector::check`]: topic selectors (exact, URL pattern, URI template) and topic rules.
//! - [`token::check`]: bearer token presentation and JWT verification.
//!
//! Each asserts properties, not just "does not panic": see the module docs.

// Each user (a fuzz target, the corpus test) calls a different subset.
#![allow(dead_code)]

pub(crate) mod publish_form;
pub(crate) mod selector;
pub(crate) mod token;

/// Reads an input as a sequence of small choices; past the end every choice is 0, so any
/// input, even empty, describes a complete case.
pub(crate) struct Choices<'a> {
    bytes: &'a [u8],
}

impl<'a> Choices<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Choices { bytes }
    }

    /// A number below `n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        match self.bytes.split_first() {
            Some((&first, rest)) => {
                self.bytes = rest;
                usize::from(first) % n
            }
            None => 0,
        }
    }

    /// One of `options`.
    pub(crate) fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.below(options.len())]
    }

    /// Whether to do something, about one time in `n`.
    pub(crate) fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A short lowercase alphanumeric word (1 to 8 characters).
    pub(crate) fn word(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let len = 1 + self.below(8);
        (0..len)
            .map(|_| char::from(ALPHABET[self.below(ALPHABET.len())]))
            .collect()
    }
}
