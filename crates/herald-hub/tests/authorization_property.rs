//! Authorization as a property, over real sockets: for random tokens (subscribe grants on
//! exact topics, URL patterns, `*`, or nothing; or no token at all), random selectors and
//! random updates (one to three topics, public or private), every subscriber receives exactly
//! the updates it is entitled to, in publish order, live and again on replay from `earliest`:
//! never a private update it was not granted, and never fewer than it may read.
//!
//! Entitlement comes from an oracle written from the specification, independent of the hub's
//! matchers: which topic each matcher selects is a table written by hand.

use std::time::Duration;

use herald_testkit::raw::RawStream;
use herald_testkit::{FENCE_TOPIC, TestHub, encode};
use proptest::prelude::*;

/// The topics updates are published to.
const TOPICS: [&str; 5] = [
    "https://example.com/books/1",
    "https://example.com/books/2",
    "https://example.com/users/alice",
    "https://example.com/users/alice/books/1",
    "urn:example:plain",
];

/// A matcher, usable as a subscribe selector and as a token's subscribe grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matcher {
    /// Exactly `TOPICS[i]`.
    Exact(usize),
    /// `PATTERNS[i]`, a WHATWG URL pattern.
    Pattern(usize),
    /// `*`.
    Everything,
}

/// URL patterns, and by hand which of [`TOPICS`] each one matches.
const PATTERNS: [(&str, [bool; 5]); 3] = [
    (
        "https://example.com/books/:id",
        [true, true, false, false, false],
    ),
    (
        "https://example.com/users/*",
        [false, false, true, true, false],
    ),
    (
        "https://example.com/users/:name/books/:id",
        [false, false, false, true, false],
    ),
];

impl Matcher {
    /// The oracle: whether this matcher selects topic `TOPICS[topic]`.
    fn selects(self, topic: usize) -> bool {
        match self {
            Matcher::Exact(index) => index == topic,
            Matcher::Pattern(index) => PATTERNS[index].1[topic],
            Matcher::Everything => true,
        }
    }

    /// As a token grant (the test minter sends patterns as `urlpattern` matchers).
    fn grant(self) -> &'static str {
        match self {
            Matcher::Exact(index) => TOPICS[index],
            Matcher::Pattern(index) => PATTERNS[index].0,
            Matcher::Everything => "*",
        }
    }

    /// As a subscribe query parameter.
    fn query(self) -> String {
        match self {
            Matcher::Exact(index) => format!("match={}", encode(TOPICS[index])),
            Matcher::Pattern(index) => format!("match_urlpattern={}", encode(PATTERNS[index].0)),
            Matcher::Everything => "match=*".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
struct Subscriber {
    /// `None`: no token (anonymous). `Some(grants)`: a valid token granting `subscribe` on
    /// these matchers (possibly none).
    token: Option<Vec<Matcher>>,
    selectors: Vec<Matcher>,
}

#[derive(Debug, Clone)]
struct Update {
    /// Indexes into [`TOPICS`]: the canonical topic, then alternates.
    topics: Vec<usize>,
    private: bool,
}

impl Subscriber {
    /// The oracle: routed by a selector to one of the topics, and, when private, a grant on
    /// one of the topics (the selectors never widen what may be read).
    fn entitled(&self, update: &Update) -> bool {
        let routed = self
            .selectors
            .iter()
            .any(|selector| update.topics.iter().any(|&topic| selector.selects(topic)));
        let readable = !update.private
            || self.token.as_ref().is_some_and(|grants| {
                grants
                    .iter()
                    .any(|grant| update.topics.iter().any(|&topic| grant.selects(topic)))
            });
        routed && readable
    }
}

fn matcher() -> impl Strategy<Value = Matcher> {
    prop_oneof![
        4 => (0..TOPICS.len()).prop_map(Matcher::Exact),
        3 => (0..PATTERNS.len()).prop_map(Matcher::Pattern),
        1 => Just(Matcher::Everything),
    ]
}

fn subscriber() -> impl Strategy<Value = Subscriber> {
    let token = prop_oneof![
        1 => Just(None),
        4 => prop::collection::vec(matcher(), 0..=3).prop_map(Some),
    ];
    (token, prop::collection::vec(matcher(), 1..=3))
        .prop_map(|(token, selectors)| Subscriber { token, selectors })
}

fn update() -> impl Strategy<Value = Update> {
    (prop::collection::vec(0..TOPICS.len(), 1..=3), any::<bool>())
        .prop_map(|(topics, private)| Update { topics, private })
}

/// The opening query of a subscriber; every one also listens to the fence topic.
fn query(subscriber: &Subscriber, earliest: bool) -> String {
    let mut parts: Vec<String> = subscriber.selectors.iter().map(|m| m.query()).collect();
    parts.push(format!("match={}", encode(FENCE_TOPIC)));
    if earliest {
        parts.push("last_event_id=earliest".to_owned());
    }
    parts.join("&")
}

async fn open(hub: &TestHub, subscriber: &Subscriber, earliest: bool) -> RawStream {
    let token = subscriber.token.as_ref().map(|grants| {
        let grants: Vec<&str> = grants.iter().map(|grant| grant.grant()).collect();
        format!("Bearer {}", hub.token(&[], &grants))
    });
    let headers: Vec<(&str, &str)> = token
        .iter()
        .map(|token| ("Authorization", token.as_str()))
        .collect();
    let stream = hub.subscribe(&query(subscriber, earliest), &headers).await;
    assert_eq!(stream.status, 200, "{subscriber:?}");
    stream
}

/// The ids a stream receives before the fence.
async fn ids_before_fence(stream: &mut RawStream) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let event = stream.next_event_within(Duration::from_secs(20)).await;
        let id = event
            .lines()
            .find_map(|line| line.strip_prefix("id: "))
            .unwrap_or_else(|| panic!("an event without id: {event:?}"));
        if id == "fence" {
            return ids;
        }
        ids.push(id.to_owned());
    }
}

async fn run_case(subscribers: Vec<Subscriber>, updates: Vec<Update>) {
    let hub = TestHub::start().await;
    let mut live = Vec::new();
    for subscriber in &subscribers {
        live.push(open(&hub, subscriber, false).await);
    }
    for (index, update) in updates.iter().enumerate() {
        let mut form: String = update
            .topics
            .iter()
            .map(|&topic| format!("topic={}&", encode(TOPICS[topic])))
            .collect();
        form.push_str(&format!("id=u{index}&data=secret-{index}"));
        if update.private {
            form.push_str("&private=on");
        }
        let answer = hub.publish(&form).await;
        assert_eq!(answer.status, 200, "{form}: {}", answer.text());
    }
    let answer = hub
        .publish(&format!(
            "topic={}&id=fence&data=fence",
            encode(FENCE_TOPIC)
        ))
        .await;
    assert_eq!(answer.status, 200);
    for (subscriber, stream) in subscribers.iter().zip(&mut live) {
        let expected: Vec<String> = updates
            .iter()
            .enumerate()
            .filter(|(_, update)| subscriber.entitled(update))
            .map(|(index, _)| format!("u{index}"))
            .collect();
        let received = ids_before_fence(stream).await;
        assert_eq!(
            received, expected,
            "live, {subscriber:?}, updates {updates:?}"
        );
        let mut replay = open(&hub, subscriber, true).await;
        let replayed = ids_before_fence(&mut replay).await;
        assert_eq!(
            replayed, expected,
            "replay, {subscriber:?}, updates {updates:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_subscriber_gets_exactly_what_it_may_read(
        subscribers in prop::collection::vec(subscriber(), 1..=5),
        updates in prop::collection::vec(update(), 1..=10),
    ) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run_case(subscribers, updates));
    }
}

/// The oracle's pattern table agrees with the hub's URL pattern matcher: otherwise the
/// property above would test the table, not the hub.
#[test]
fn the_pattern_table_is_what_url_patterns_select() {
    let hub_url: url::Url = "http://127.0.0.1/.well-known/mercure".parse().unwrap();
    for (pattern, selected) in PATTERNS {
        let selector = herald_hub::selector::Selector::parse(
            herald_hub::selector::MatcherType::UrlPattern,
            pattern,
            &hub_url,
        )
        .unwrap();
        for (topic, expected) in TOPICS.iter().zip(selected) {
            assert_eq!(selector.matches(topic), expected, "{pattern} on {topic}");
        }
    }
}
