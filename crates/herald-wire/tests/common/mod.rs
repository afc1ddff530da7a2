//! Helpers shared by the integration tests and the fuzz target (`fuzz/fuzz_targets/parser.rs`
//! includes this file by path), so the parser's invariants are written down once.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use herald_wire::{Item, Limits, ParseError, Parser};

/// What the parser yields, one per item.
pub(crate) type Parsed = Result<Item, ParseError>;

/// Everything one stream produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Every item, in order, including errors.
    pub(crate) items: Vec<Parsed>,
    /// [`Parser::last_event_id`] after the stream was finished.
    pub(crate) last_event_id: String,
}

/// Parses a stream delivered as `chunks`, draining after each chunk, then finishes it.
/// Checks on the way that the parser holds no more than its limits allow.
pub(crate) fn parse_chunks<'a>(
    limits: Limits,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Outcome {
    let mut parser = Parser::with_limits(limits);
    let mut items = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        while let Some(item) = parser.next_item() {
            items.push(item);
        }
        assert!(
            parser.buffered_len() <= limits.max_line_len.max(2),
            "holding {} bytes with limits {limits:?}",
            parser.buffered_len()
        );
    }
    parser.finish();
    items.extend(std::iter::from_fn(|| parser.next_item()));
    assert_eq!(parser.buffered_len(), 0, "finish left bytes behind");
    assert_limits_honoured(&items, limits);
    Outcome {
        items,
        last_event_id: parser.last_event_id().to_owned(),
    }
}

/// No dispatched event is bigger than the limits allow. A line of `n` bytes decodes to at
/// most `3 * n` bytes (each invalid byte becomes the 3-byte U+FFFD).
pub(crate) fn assert_limits_honoured(items: &[Parsed], limits: Limits) {
    for item in items {
        if let Ok(Item::Event(event)) = item {
            assert!(
                event.data.len() <= limits.max_event_len,
                "{event:?} over {limits:?}"
            );
            assert!(
                event.id.len() <= 3 * limits.max_line_len,
                "{event:?} over {limits:?}"
            );
            assert!(
                event.event.len() <= 3 * limits.max_line_len,
                "{event:?} over {limits:?}"
            );
        }
    }
}

/// Splits `stream` at the given offsets (in any order, out-of-range ones clamped).
pub(crate) fn split_at_points<'a>(stream: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = points.iter().map(|&at| at.min(stream.len())).collect();
    points.sort_unstable();
    let mut chunks = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for at in points {
        chunks.push(&stream[start..at]);
        start = at;
    }
    chunks.push(&stream[start..]);
    chunks
}

/// Parses `stream` whole, split at `points`, and one byte at a time, and checks that all three
/// give the same items and last event id. Returns that outcome.
pub(crate) fn assert_chunking_independent(
    stream: &[u8],
    limits: Limits,
    points: &[usize],
) -> Outcome {
    let whole = parse_chunks(limits, [stream]);
    let split = parse_chunks(limits, split_at_points(stream, points));
    assert_eq!(split, whole, "split at {points:?} differs from whole");
    let bytewise = parse_chunks(limits, stream.chunks(1));
    assert_eq!(bytewise, whole, "byte at a time differs from whole");
    whole
}

/// Small limits picked by one byte, so the fuzzer reaches both limit errors; bytes from 0xC0
/// on pick the defaults.
pub(crate) fn limits_from_byte(shape: u8) -> Limits {
    if shape >= 0xC0 {
        return Limits::default();
    }
    let max_line_len = 4 + usize::from(shape % 64);
    Limits {
        max_line_len,
        max_event_len: max_line_len * usize::from(1 + shape / 64),
    }
}

/// Split points derived from two seed bytes: chunk sizes from 1 to 32, pseudo-random.
pub(crate) fn points_from_seed(seed: [u8; 2], len: usize) -> Vec<usize> {
    let max_chunk = 1 + u64::from(seed[1] % 32);
    let mut state =
        (u64::from(u16::from_le_bytes(seed)) << 1 | 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut points = Vec::new();
    let mut at = 0;
    loop {
        // xorshift64: cheap, deterministic, good enough to vary chunk sizes.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        at += 1 + usize::try_from(state % max_chunk).unwrap_or(0);
        if at >= len {
            return points;
        }
        points.push(at);
    }
}

/// The fuzz target's whole check, also run over the seed corpus by `tests/corpus.rs`.
///
/// Input layout: one byte choosing the limits, two bytes seeding the chunking, then the stream.
pub(crate) fn check_fuzz_input(input: &[u8]) {
    let Some((&shape, rest)) = input.split_first() else {
        return;
    };
    let (seed, stream) = rest.split_at(rest.len().min(2));
    let seed = [
        seed.first().copied().unwrap_or(0),
        seed.get(1).copied().unwrap_or(0),
    ];
    let limits = limits_from_byte(shape);
    assert_chunking_independent(stream, limits, &points_from_seed(seed, stream.len()));
}
