//! Counts heap allocations with an instrumented global allocator (the `stats_alloc` crate, so
//! no `unsafe` here): encoding one event must allocate once, and a warmed-up parser must not
//! allocate beyond the strings of the events it hands out.
//!
//! This file holds a single test on purpose: the counter is process-wide, so a second test
//! running on another thread would be counted too.

use herald_wire::{Event, Item, Parser};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn encode_allocates_once_and_parse_only_for_the_output() {
    let event = Event::new()
        .with_id("urn:uuid:0f4d1c2e-5b6a-4c3d-9e8f-7a6b5c4d3e2f")
        .and_then(|event| event.with_event("update"))
        .expect("valid")
        .with_data("{\"line\":1}\r\n{\"line\":2}\n{\"line\":3}");

    let region = Region::new(GLOBAL);
    let frames: Vec<_> = (0..1000).map(|_| event.encode()).collect();
    let encode = region.change();
    // One allocation per frame, plus the Vec holding them (which may grow a few times).
    let per_event = (encode.allocations - 1) as f64 / 1000.0;
    assert!(
        encode.allocations <= 1000 + 16,
        "{} allocations ({per_event} per event), {} reallocations",
        encode.allocations,
        encode.reallocations
    );
    assert_eq!(
        encode.reallocations, 0,
        "a frame grew after its first allocation"
    );

    // Sharing a frame with many subscribers: `bytes` allocates its shared header on the first
    // clone only, so fan-out to N subscribers costs one more allocation in all, not N.
    let region = Region::new(GLOBAL);
    let clones: Vec<_> = (0..100).map(|_| frames[0].clone()).collect();
    let fan_out = region.change();
    assert!(
        fan_out.allocations <= 2,
        "{} allocations to clone one frame 100 times (plus the Vec)",
        fan_out.allocations
    );
    drop(clones);

    let stream: Vec<u8> = frames
        .iter()
        .flat_map(|frame| frame.iter().copied())
        .collect();
    let mut parser = Parser::new();
    // Warm up: buffers grow to their working size once.
    for item in parser.feed_iter(&stream[..4096]) {
        item.expect("valid stream");
    }
    let region = Region::new(GLOBAL);
    let mut events = 0;
    for chunk in stream[4096..].chunks(4096) {
        for item in parser.feed_iter(chunk) {
            if let Ok(Item::Event(parsed)) = item {
                events += 1;
                drop(parsed);
            }
        }
    }
    let parse = region.change();
    // Each event carries three owned strings (id, type, data): three allocations, no more.
    assert!(events > 900);
    assert!(
        parse.allocations <= 3 * events + 8,
        "{} allocations for {events} events",
        parse.allocations
    );
    eprintln!(
        "encode: {per_event} allocations/event; parse: {:.2} allocations/event",
        parse.allocations as f64 / events as f64
    );
}
