//! Fuzz checks for a publish body: the input is the raw `application/x-www-form-urlencoded`
//! body of `POST /.well-known/mercure`.
//!
//! - Strict form decoding never panics; what it accepts is exactly what the `form_urlencoded`
//!   crate decodes (a reference implementation), re-encodes and decodes to the same pairs;
//!   what it refuses really has bytes that are not UTF-8 once decoded.
//! - [`publish_fields`] (what the handler runs) never panics, refuses only with 400 or 413
//!   (413 only for too many topics), and what it accepts follows the rules field by field:
//!   topics valid and not reserved, `id` / `type` not reserved, last value wins.
//! - Every accepted update encodes to a frame that the SSE parser reads back as exactly that
//!   update: same id, type, retry and data (line ends normalised to LF).

use herald_hub::HubConfig;
use herald_hub::http::{form, publish_fields};
use herald_hub::topic::{is_reserved, validate_topic};
use herald_hub::update::{Update, UpdateFields};
use herald_wire::{Item, Limits, Parser};

/// Checks one publish body; returns whether the hub (default settings) accepts it.
pub(crate) fn check(input: &[u8]) -> bool {
    check_form_decoding(input);
    let mut config = HubConfig::new("https://hub.example".parse().expect("valid URL"));
    let accepted = check_fields(&config, input);
    // A small topic limit, so the 413 branch is reachable with small inputs.
    config.max_topics = 2;
    check_fields(&config, input);
    accepted
}

fn check_form_decoding(input: &[u8]) {
    let reference: Vec<(String, String)> = url::form_urlencoded::parse(input)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    match form::parse(input) {
        Ok(pairs) => {
            assert_eq!(pairs, reference, "strict and reference decoders disagree");
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            assert_eq!(
                form::parse(encoded.as_bytes()).as_ref(),
                Ok(&pairs),
                "re-encoded form {encoded:?} decodes differently"
            );
        }
        Err(error) => {
            assert!(
                reference
                    .iter()
                    .any(|(name, value)| name.contains('\u{FFFD}') || value.contains('\u{FFFD}')),
                "refused ({error}) although every name and value decodes to UTF-8"
            );
        }
    }
}

fn check_fields(config: &HubConfig, input: &[u8]) -> bool {
    let pairs = form::parse(input);
    let result = publish_fields(config, input);
    let fields = match result {
        Ok(fields) => fields,
        Err(refusal) => {
            assert!(!refusal.message.is_empty());
            match refusal.status.as_u16() {
                400 => {}
                413 => {
                    let topics = pairs
                        .as_ref()
                        .expect("413 only after decoding")
                        .iter()
                        .filter(|(name, _)| name == "topic")
                        .count();
                    assert!(topics > config.max_topics, "413 with {topics} topics");
                }
                other => panic!("publish refused with status {other}"),
            }
            return false;
        }
    };
    let pairs = pairs.expect("accepted, so the form decoded");
    let last = |field: &str| {
        pairs
            .iter()
            .rev()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value.as_str())
    };

    // Topics: every `topic` field, in order, each valid and outside the hub's namespace.
    let topics: Vec<&str> = pairs
        .iter()
        .filter(|(name, _)| name == "topic")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(fields.topics, topics);
    assert!(!topics.is_empty() && topics.len() <= config.max_topics);
    for topic in &fields.topics {
        assert_eq!(validate_topic(topic), Ok(()), "accepted topic {topic:?}");
        assert!(!is_reserved(topic, &config.hub_url), "reserved {topic:?}");
    }
    // Every other field: the last value wins.
    assert_eq!(fields.data, last("data").unwrap_or(""));
    assert_eq!(fields.private, last("private").is_some());
    match last("id") {
        Some(id) => assert_eq!(fields.id, id),
        None => assert!(fields.id.starts_with("urn:uuid:"), "{:?}", fields.id),
    }
    assert!(!fields.id.is_empty() && !fields.id.starts_with('#') && fields.id != "earliest");
    assert_eq!(
        fields.event_type.as_deref(),
        last("type").filter(|t| !t.is_empty())
    );
    assert_ne!(fields.event_type.as_deref(), Some("mercure"));
    assert_eq!(
        fields.retry,
        last("retry").map(|r| r.parse().expect("digits"))
    );

    check_frame(fields);
    true
}

/// The update's frame reads back as the update.
fn check_frame(fields: UpdateFields) {
    let expected = fields.clone();
    let update = match Update::encode(fields) {
        Ok(update) => update,
        Err(error) => panic!("validated fields {expected:?} do not encode: {error}"),
    };
    assert_eq!(update.id, expected.id);
    assert_eq!(update.topics, expected.topics);
    assert_eq!(update.private, expected.private);

    let mut parser = Parser::with_limits(Limits {
        max_line_len: usize::MAX,
        max_event_len: usize::MAX,
    });
    parser.feed(&update.frame);
    parser.finish();
    let items: Vec<Item> = std::iter::from_fn(|| parser.next_item())
        .map(|item| item.expect("the hub's own frame parses"))
        .collect();
    let mut want = Vec::new();
    if let Some(retry) = expected.retry {
        want.push(format!("retry {retry}"));
    }
    let data = expected.data.replace("\r\n", "\n").replace('\r', "\n");
    want.push(format!(
        "event id={:?} type={:?} data={data:?}",
        expected.id,
        expected.event_type.as_deref().unwrap_or("message")
    ));
    let got: Vec<String> = items
        .iter()
        .map(|item| match item {
            Item::Retry(retry) => format!("retry {retry}"),
            Item::Event(event) => format!(
                "event id={:?} type={:?} data={:?}",
                event.id, event.event, event.data
            ),
        })
        .collect();
    assert_eq!(got, want, "frame {:?}", update.frame);
    assert_eq!(parser.last_event_id(), expected.id);
}
