//! Parse throughput and encode cost, side by side with the `eventsource-stream` crate.
//!
//! Run with:
//! `cargo bench -p herald-wire --bench wire -- --warm-up-time 1 --measurement-time 3`
//!
//! The stream is what a hub sends: 10 000 events of about 100 bytes, each with an id and a
//! type, one in five with three lines of data, cut into 4 KiB chunks as a socket read would.
//! `eventsource-stream` adapts a `Stream` of byte chunks, so it is driven with
//! `futures::executor::block_on` over `futures::stream::iter` of the same chunks.
//! It has no encoder: the encode benchmark compares against a plain `format!` encoder instead.

use std::convert::Infallible;
use std::hint::black_box;

use criterion::{Criterion, Throughput};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use herald_wire::{Event, Item, Parser};

const EVENTS: usize = 10_000;
const CHUNK: usize = 4096;

fn realistic_stream() -> Vec<u8> {
    let mut stream = Vec::new();
    for i in 0..EVENTS {
        let event = Event::new()
            .with_id(format!("urn:uuid:{i:08x}-7d1c"))
            .and_then(|event| event.with_event("update"))
            .expect("valid");
        let data = if i % 5 == 0 {
            format!("{{\"seq\":{i},\n\"title\":\"multi\",\n\"body\":\"three lines\"}}")
        } else {
            format!(
                "{{\"seq\":{i},\"title\":\"stock\",\"price\":{}.25}}",
                i % 997
            )
        };
        stream.extend_from_slice(&event.with_data(data).encode());
    }
    stream
}

fn parse_herald(stream: &[u8]) -> usize {
    let mut parser = Parser::new();
    let mut events = 0;
    for chunk in stream.chunks(CHUNK) {
        parser.feed(chunk);
        while let Some(item) = parser.next_item() {
            if let Ok(Item::Event(event)) = item {
                black_box(&event);
                events += 1;
            }
        }
    }
    parser.finish();
    events
}

fn parse_eventsource_stream(stream: &[u8]) -> usize {
    let chunks = futures::stream::iter(stream.chunks(CHUNK).map(Ok::<_, Infallible>));
    futures::executor::block_on(chunks.eventsource().fold(0, |events, event| {
        black_box(&event);
        async move { events + usize::from(event.is_ok()) }
    }))
}

fn parse(c: &mut Criterion) {
    let stream = realistic_stream();
    assert_eq!(parse_herald(&stream), EVENTS);
    assert_eq!(parse_eventsource_stream(&stream), EVENTS);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("herald-wire", |b| {
        b.iter(|| parse_herald(black_box(&stream)))
    });
    group.bench_function("eventsource-stream", |b| {
        b.iter(|| parse_eventsource_stream(black_box(&stream)))
    });
    group.finish();
}

/// The obvious encoder, for scale: one `format!` per line, joined.
fn encode_with_format(id: &str, kind: &str, data: &str) -> String {
    let mut frame = format!("id: {id}\nevent: {kind}\n");
    for line in data.lines() {
        frame.push_str(&format!("data: {line}\n"));
    }
    frame.push('\n');
    frame
}

fn encode(c: &mut Criterion) {
    let data = "{\"seq\":1,\"title\":\"stock\",\"price\":42.25}";
    let event = Event::new()
        .with_id("urn:uuid:0000002a-7d1c")
        .and_then(|event| event.with_event("update"))
        .expect("valid")
        .with_data(data);
    assert_eq!(
        &event.encode()[..],
        encode_with_format("urn:uuid:0000002a-7d1c", "update", data).as_bytes()
    );
    let mut group = c.benchmark_group("encode");
    group.bench_function("herald-wire", |b| b.iter(|| black_box(&event).encode()));
    group.bench_function("format", |b| {
        b.iter(|| encode_with_format(black_box("urn:uuid:0000002a-7d1c"), "update", data))
    });
    group.finish();
}

// Written out instead of `criterion_group!`, whose generated public function trips the
// workspace's `missing_docs` lint.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    parse(&mut c);
    encode(&mut c);
    c.final_summary();
}
