//! The fan-out hot path for one update to 10 000 subscribers: encode the frame once, match the
//! update's topics against the registry, check private updates against each token, and push
//! the shared frame onto each subscriber's queue (issue #4). No sockets, store or runtime:
//! `FanoutBench` drives the hub's own registry and queues. The time connections take to drain
//! their queues is left out (it happens between timed updates), so a regression in matching,
//! authorization or enqueueing shows up here in review.
//!
//! Run with:
//! `cargo bench -p herald-hub --bench fanout -- --warm-up-time 1 --measurement-time 3`
//!
//! Scenarios, 10 000 subscribers each:
//! - `exact`: every subscriber listens to the update's topic with `match=` (one hash map
//!   lookup, 10 000 deliveries).
//! - `exact_among_1000_topics`: 10 subscribers per topic over 1 000 topics, updates cycling
//!   through the topics (10 deliveries each: the cost of finding them among the others).
//! - `urlpattern_100`: 100 URL patterns, 100 subscribers each, all matching the topic (one
//!   cached verdict per pattern and topic; 10 000 deliveries).
//! - `private`: every subscriber holds a token granting `subscribe` on a URL pattern and the
//!   update is private, so each subscriber's grants are checked (10 000 deliveries).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use herald_hub::auth::{TokenVerifier, VerifierConfig};
use herald_hub::bench_support::FanoutBench;
use herald_hub::mint::TokenRequest;
use herald_hub::selector::Selector;
use herald_hub::update::{Update, UpdateFields};

const SUBSCRIBERS: usize = 10_000;
const HUB: &str = "https://hub.example/.well-known/mercure";

fn hub_url() -> url::Url {
    HUB.parse().expect("valid URL")
}

fn topic(i: usize) -> String {
    format!("https://example.com/books/{i}")
}

/// A ~100-byte update to `topic`, as a publisher would send it.
fn fields(topic: String, private: bool) -> UpdateFields {
    UpdateFields {
        id: "urn:uuid:5e0c3d12-0b5e-4c8f-9a51-0c2b7e4a9d10".into(),
        topics: vec![topic],
        private,
        event_type: Some("update".into()),
        data: r#"{"title":"The Left Hand of Darkness","price":12.5,"stock":7,"at":"2026-11-23"}"#
            .into(),
        retry: None,
    }
}

/// Encode + dispatch of `iters` updates; the queues are drained outside the timing.
fn measure(
    bench: &FanoutBench,
    iters: u64,
    seq: &mut u64,
    make: &mut impl FnMut(u64) -> UpdateFields,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        *seq += 1;
        let fields = make(*seq);
        let started = Instant::now();
        let mut update = Update::encode(fields).expect("valid fields");
        update.seq = *seq;
        black_box(bench.dispatch(&update));
        total += started.elapsed();
        bench.drain();
    }
    total
}

fn scenario(
    c: &mut Criterion,
    name: &str,
    bench: &FanoutBench,
    deliveries: u64,
    mut make: impl FnMut(u64) -> UpdateFields,
) {
    // The scenario must do what it says before it is timed.
    let mut update = Update::encode(make(1)).expect("valid fields");
    update.seq = 1;
    assert_eq!(bench.dispatch(&update) as u64, deliveries, "{name}");
    assert_eq!(bench.drain() as u64, deliveries, "{name}");
    let mut seq = 1;
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(deliveries));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| measure(bench, iters, &mut seq, &mut make));
    });
    group.finish();
}

fn reader_claims() -> herald_hub::auth::Claims {
    let secret = b"bench-secret-bench-secret-bench!";
    let verifier = TokenVerifier::new(VerifierConfig {
        hmac_secret: Some(secret.to_vec()),
        public_key_pem: None,
        issuer: None,
        audience: HUB.into(),
        legacy: false,
        hub_url: hub_url(),
    })
    .expect("valid verifier");
    let token = TokenRequest {
        publish: vec![],
        subscribe: vec!["https://example.com/books/:id".into()],
        ttl: Duration::from_secs(3600),
        issuer: "bench".into(),
        audience: HUB.into(),
        subject: "reader".into(),
        legacy: false,
        payload: None,
    }
    .sign_hmac(secret)
    .expect("signs");
    verifier.verify(&token).expect("verifies")
}

// Written out instead of `criterion_group!`, whose generated public function trips the
// workspace's `missing_docs` lint.
fn main() {
    let mut c = Criterion::default().configure_from_args();

    let mut exact = FanoutBench::new();
    for _ in 0..SUBSCRIBERS {
        exact.subscribe(vec![Selector::exact(&topic(0)).expect("valid")], None);
    }
    scenario(&mut c, "exact", &exact, SUBSCRIBERS as u64, |_| {
        fields(topic(0), false)
    });
    drop(exact);

    let mut spread = FanoutBench::new();
    for i in 0..SUBSCRIBERS {
        spread.subscribe(
            vec![Selector::exact(&topic(i % 1000)).expect("valid")],
            None,
        );
    }
    scenario(&mut c, "exact_among_1000_topics", &spread, 10, |seq| {
        fields(topic(seq as usize % 1000), false)
    });
    drop(spread);

    let hub = hub_url();
    let mut patterns = FanoutBench::new();
    for i in 0..SUBSCRIBERS {
        let pattern = format!("https://example.com/:kind{}/:id", i % 100);
        patterns.subscribe(
            vec![Selector::url_pattern(&pattern, &hub).expect("valid")],
            None,
        );
    }
    scenario(
        &mut c,
        "urlpattern_100",
        &patterns,
        SUBSCRIBERS as u64,
        |_| fields(topic(0), false),
    );
    drop(patterns);

    let claims = reader_claims();
    let mut private = FanoutBench::new();
    for _ in 0..SUBSCRIBERS {
        private.subscribe(
            vec![Selector::exact(&topic(0)).expect("valid")],
            Some(claims.clone()),
        );
    }
    scenario(&mut c, "private", &private, SUBSCRIBERS as u64, |_| {
        fields(topic(0), true)
    });

    c.final_summary();
}
