//! The examples of the WHATWG HTML "server-sent events" section, each fed whole, split at
//! every pair of points, and one byte at a time.

mod common;

use common::{Outcome, assert_chunking_independent};
use herald_wire::{Item, Limits, ParsedEvent};

fn event(id: &str, event: &str, data: &str) -> common::Parsed {
    Ok(Item::Event(ParsedEvent {
        id: id.into(),
        event: event.into(),
        data: data.into(),
    }))
}

/// Parses `stream` cut at every single point (and byte at a time), checking each gives the
/// same outcome, and returns it.
fn parse_every_way(stream: &str) -> Outcome {
    let stream = stream.as_bytes();
    let whole = assert_chunking_independent(stream, Limits::default(), &[]);
    for at in 0..=stream.len() {
        assert_eq!(
            assert_chunking_independent(stream, Limits::default(), &[at]),
            whole
        );
    }
    whole
}

#[test]
fn stock_ticker_lines_join_into_one_message() {
    let outcome = parse_every_way("data: YHOO\ndata: +2\ndata: 10\n\n");
    assert_eq!(outcome.items, vec![event("", "message", "YHOO\n+2\n10")]);
}

#[test]
fn comment_then_ids_set_and_reset_the_last_event_id() {
    let outcome = parse_every_way(
        ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
    );
    assert_eq!(
        outcome.items,
        vec![
            event("1", "message", "first event"),
            event("", "message", "second event"),
            event("", "message", " third event"),
        ]
    );
    assert_eq!(outcome.last_event_id, "");
}

#[test]
fn data_fields_without_colon_and_a_last_block_without_blank_line() {
    // "The first block fires events with the data set to the empty string, as would the last
    // block if it was followed by a blank line. The middle block fires an event with the data
    // set to a single newline character. The last block is discarded."
    let outcome = parse_every_way("data\n\ndata\ndata\n\ndata:");
    assert_eq!(
        outcome.items,
        vec![event("", "message", ""), event("", "message", "\n")]
    );
}

#[test]
fn test_with_and_without_space_fire_two_identical_events() {
    let outcome = parse_every_way("data:test\n\ndata: test\n\n");
    assert_eq!(
        outcome.items,
        vec![event("", "message", "test"), event("", "message", "test")]
    );
}

#[test]
fn two_messages_and_a_two_line_message() {
    let outcome = parse_every_way(
        "data: This is the first message.\n\ndata: This is the second message, it\ndata: has two lines.\n\ndata: This is the third message.\n\n",
    );
    assert_eq!(
        outcome.items,
        vec![
            event("", "message", "This is the first message."),
            event(
                "",
                "message",
                "This is the second message, it\nhas two lines."
            ),
            event("", "message", "This is the third message."),
        ]
    );
}

#[test]
fn named_events_add_and_remove() {
    let outcome = parse_every_way(
        "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
    );
    assert_eq!(
        outcome.items,
        vec![
            event("", "add", "73857293"),
            event("", "remove", "2153"),
            event("", "add", "113411"),
        ]
    );
}
