//! Properties over generated streams and events:
//! - however a stream is cut into chunks, the parser yields the same items;
//! - whatever valid events the encoder writes, the parser reads back (line ends normalised);
//! - the encoder's length is exact, so it allocates once.

mod common;

use common::{assert_chunking_independent, limits_from_byte, parse_chunks, split_at_points};
use herald_wire::{Event, Item, Limits, ParsedEvent};
use proptest::prelude::*;
use proptest::sample::Index;

/// Stream pieces that hit the parser's rules far more often than uniform bytes would.
fn stream_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(vec![
            &b"data"[..], b"data:", b"data: ", b"id", b"id: ", b"id:", b"event: ", b"event",
            b"retry: ", b"retry:", b":", b": c", b"\r", b"\n", b"\r\n", b"\n\n", b"\r\r",
            b"\xEF\xBB\xBF", b"\xEF\xBB", b"\0", b"\xFF", b"\xE2\x82\xAC", b"\xE2\x82", b"12",
            b"x", b" ", b"foo",
        ])
        .prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(stream_piece(), 0..48).prop_map(|pieces| pieces.concat())
}

/// A value the encoder accepts for `id` and `event`.
fn field_value() -> impl Strategy<Value = String> {
    "[^\r\n\u{0}]{0,12}"
}

/// Data with every kind of line end, plus arbitrary text.
fn data() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("\r".to_owned()),
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just(String::new()),
            any::<String>(),
            "[a-z :]{0,6}",
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

#[derive(Debug, Clone)]
struct Spec {
    comment: Option<String>,
    id: Option<String>,
    event: Option<String>,
    retry: Option<u64>,
    data: Option<String>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(data()),
        prop::option::of(field_value()),
        prop::option::of(field_value()),
        prop::option::of(any::<u64>()),
        prop::option::of(data()),
    )
        .prop_map(|(comment, id, event, retry, data)| Spec {
            comment,
            id,
            event,
            retry,
            data,
        })
}

fn build(spec: &Spec) -> Event {
    let mut event = Event::new();
    if let Some(comment) = &spec.comment {
        event = event.with_comment(comment.clone());
    }
    if let Some(id) = &spec.id {
        event = event.with_id(id.clone()).expect("generated ids are valid");
    }
    if let Some(kind) = &spec.event {
        event = event
            .with_event(kind.clone())
            .expect("generated types are valid");
    }
    if let Some(retry) = spec.retry {
        event = event.with_retry(retry);
    }
    if let Some(data) = &spec.data {
        event = event.with_data(data.clone());
    }
    event
}

/// What a receiver must see for `specs`, in order.
fn expected_items(specs: &[Spec]) -> (Vec<common::Parsed>, String) {
    let mut last_id = String::new();
    let mut items = Vec::new();
    for spec in specs {
        if let Some(id) = &spec.id {
            last_id.clone_from(id);
        }
        if let Some(retry) = spec.retry {
            items.push(Ok(Item::Retry(retry)));
        }
        if let Some(data) = &spec.data {
            let kind = spec.event.as_deref().filter(|kind| !kind.is_empty());
            items.push(Ok(Item::Event(ParsedEvent {
                id: last_id.clone(),
                event: kind.unwrap_or("message").to_owned(),
                data: data.replace("\r\n", "\n").replace('\r', "\n"),
            })));
        }
    }
    (items, last_id)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_chunking_yields_the_same_items(
        stream in stream(),
        shape in any::<u8>(),
        points in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let points: Vec<usize> = points.iter().map(|at| at.index(stream.len() + 1)).collect();
        assert_chunking_independent(&stream, limits_from_byte(shape), &points);
    }

    #[test]
    fn encoded_events_parse_back_with_line_ends_normalised(
        specs in prop::collection::vec(spec(), 0..6),
        points in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let wire: Vec<u8> = specs.iter().flat_map(|spec| build(spec).encode()).collect();
        let points: Vec<usize> = points.iter().map(|at| at.index(wire.len() + 1)).collect();
        let limits = Limits { max_line_len: 1 << 20, max_event_len: 1 << 20 };
        let outcome = parse_chunks(limits, split_at_points(&wire, &points));
        let (items, last_id) = expected_items(&specs);
        prop_assert_eq!(outcome.items, items);
        prop_assert_eq!(outcome.last_event_id, last_id);
    }

    #[test]
    fn encoded_len_is_the_frame_length(spec in spec()) {
        let event = build(&spec);
        let frame = event.encode();
        prop_assert_eq!(frame.len(), event.encoded_len());
        // encode_into into an exactly sized buffer never grows it: one allocation in all.
        let mut buf = bytes::BytesMut::with_capacity(event.encoded_len());
        let capacity = buf.capacity();
        event.encode_into(&mut buf);
        prop_assert_eq!(buf.capacity(), capacity);
        prop_assert_eq!(&buf[..], &frame[..]);
    }
}
