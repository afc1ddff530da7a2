//! Fuzz checks for topic selectors and topic rules.
//!
//! An input whose first byte is below `0xC0` is raw: the rest is a selector value, then
//! (after the first `0xFF` byte, which UTF-8 never contains) a topic, both decoded lossily.
//! - Every constructor (exact, URL pattern, legacy topic, URI template) never panics, and
//!   refuses exactly what the shared length and character rules refuse (URL patterns may also
//!   be refused as invalid).
//! - Round trip: parsing a selector's `raw()` with its `matcher_type()` gives an equal
//!   selector with the same verdict on the topic.
//! - Exact selectors match exactly their value (or everything, for `*`); legacy selectors
//!   always match their own string and agree with [`UriTemplate`] when the value is one.
//! - A valid URI template matches its expansion with every variable undefined and its
//!   expansion with the first variable of each expression set to `a`; adding a space (which
//!   no expansion contains) to either never matches.
//! - The topic rules ([`validate_topic`], [`is_reserved`]) never panic and agree with their
//!   definition.
//!
//! An input from `0xC0` is structured: it builds a URL pattern from literal, `:name` and `*`
//! path segments and a topic from values for them, which must match (and, without `*`, stop
//! matching when a literal changes or the host differs); and it builds topics inside and
//! outside the hub's reserved namespace, with letters percent-encoded and dot segments, whose
//! reserved verdict is known.

use herald_hub::selector::{MAX_MATCHER_LEN, MatcherType, Selector, SelectorError, WILDCARD};
use herald_hub::topic::{MAX_TOPIC_LEN, TopicError, check_characters, is_reserved, validate_topic};
use herald_hub::uri_template::UriTemplate;

use super::Choices;

const HUB: &str = "https://hub.example/.well-known/mercure";

/// Checks one input.
pub(crate) fn check(input: &[u8]) {
    let hub: url::Url = HUB.parse().expect("valid URL");
    match input.split_first() {
        Some((&mode, rest)) if mode >= 0xC0 => {
            check_url_pattern_structure(&mut Choices::new(rest), &hub);
            check_reserved_structure(&mut Choices::new(rest), &hub);
        }
        Some((_, rest)) => {
            let (value, topic) = match rest.iter().position(|&b| b == 0xFF) {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &[][..]),
            };
            let value = String::from_utf8_lossy(value);
            let topic = String::from_utf8_lossy(topic);
            check_raw(&value, &topic, &hub);
        }
        None => check_raw("", "", &hub),
    }
}

fn check_raw(value: &str, topic: &str, hub: &url::Url) {
    for matcher_type in [
        MatcherType::Exact,
        MatcherType::UrlPattern,
        MatcherType::UriTemplate,
    ] {
        check_selector(matcher_type, value, topic, hub);
    }
    if let Ok(template) = UriTemplate::parse(value) {
        check_template(&template, value);
        let _ = template.is_match(topic);
    }
    check_topic(topic, hub);
    check_topic(value, hub);
}

/// The length and character rules every matcher type shares.
fn shared_rules(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() {
        return Err(SelectorError::Empty);
    }
    if value.len() > MAX_MATCHER_LEN {
        return Err(SelectorError::TooLong {
            len: value.len(),
            max: MAX_MATCHER_LEN,
        });
    }
    check_characters(value).map_err(SelectorError::InvalidCharacter)
}

fn check_selector(matcher_type: MatcherType, value: &str, topic: &str, hub: &url::Url) {
    let result = Selector::parse(matcher_type, value, hub);
    let selector = match (shared_rules(value), result) {
        (Err(expected), Err(got)) => {
            assert_eq!(got, expected, "{matcher_type} {value:?}");
            return;
        }
        (Err(expected), Ok(_)) => panic!("{matcher_type} {value:?} accepted, breaking {expected}"),
        (Ok(()), Err(SelectorError::Invalid { reason }))
            if matcher_type == MatcherType::UrlPattern =>
        {
            assert!(!reason.is_empty());
            return;
        }
        (Ok(()), Err(error)) => panic!("{matcher_type} {value:?} refused: {error}"),
        (Ok(()), Ok(selector)) => selector,
    };
    assert_eq!(selector.raw(), value);
    assert_eq!(selector.matcher_type(), matcher_type);
    assert_eq!(selector.is_wildcard(), value == WILDCARD);
    let verdict = selector.matches(topic);
    assert_eq!(
        selector.matches(topic),
        verdict,
        "matching is deterministic"
    );
    let again = Selector::parse(matcher_type, selector.raw(), hub).expect("raw() parses again");
    assert_eq!(again, selector);
    assert_eq!(
        again.matches(topic),
        verdict,
        "{matcher_type} {value:?} on {topic:?}"
    );
    if selector.is_wildcard() {
        assert!(verdict);
        assert_eq!(selector.as_exact(), None);
    }
    match matcher_type {
        MatcherType::Exact => {
            assert_eq!(verdict, value == WILDCARD || topic == value);
            assert_eq!(selector.as_exact(), (value != WILDCARD).then_some(value));
        }
        MatcherType::UriTemplate => {
            assert!(
                selector.matches(value),
                "legacy selector {value:?} misses itself"
            );
            let template = value
                .contains('{')
                .then(|| UriTemplate::parse(value).ok())
                .flatten();
            match template {
                _ if value == WILDCARD => {}
                Some(template) => {
                    assert_eq!(selector.as_exact(), None);
                    assert_eq!(verdict, topic == value || template.is_match(topic));
                }
                None => {
                    assert_eq!(selector.as_exact(), Some(value));
                    assert_eq!(verdict, topic == value);
                }
            }
        }
        MatcherType::UrlPattern => {
            assert_eq!(selector.as_exact(), None);
        }
    }
}

/// Expansions of a valid template: all variables undefined, and the first variable of each
/// expression set to `a` (RFC 6570 §3.2: operator prefix, then `name=value` for `;`, `?`
/// and `&`). The template parsed, so braces pair up and hold no nested brace.
fn check_template(template: &UriTemplate, source: &str) {
    let mut undefined = String::new();
    let mut defined = String::new();
    let mut rest = source;
    while let Some(open) = rest.find('{') {
        undefined.push_str(&rest[..open]);
        defined.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("a valid template closes");
        let body = &rest[open + 1..close];
        let (first, named, list) = match body.as_bytes()[0] {
            b'+' => ("", false, &body[1..]),
            b'#' => ("#", false, &body[1..]),
            b'.' => (".", false, &body[1..]),
            b'/' => ("/", false, &body[1..]),
            b';' => (";", true, &body[1..]),
            b'?' => ("?", true, &body[1..]),
            b'&' => ("&", true, &body[1..]),
            _ => ("", false, body),
        };
        let spec = list.split(',').next().expect("one variable at least");
        let name = spec
            .strip_suffix('*')
            .unwrap_or_else(|| spec.split(':').next().unwrap_or(spec));
        defined.push_str(first);
        if named {
            defined.push_str(name);
            defined.push('=');
        }
        defined.push('a');
        rest = &rest[close + 1..];
    }
    undefined.push_str(rest);
    defined.push_str(rest);
    for expansion in [&undefined, &defined] {
        assert!(
            template.is_match(expansion),
            "template {source:?} misses its expansion {expansion:?}"
        );
        let spaced = format!("{expansion} ");
        assert!(
            !template.is_match(&spaced),
            "template {source:?} matches {spaced:?}"
        );
    }
}

fn check_topic(topic: &str, hub: &url::Url) {
    let expected = if topic.is_empty() {
        Err(TopicError::Empty)
    } else if topic.len() > MAX_TOPIC_LEN {
        Err(TopicError::TooLong {
            len: topic.len(),
            max: MAX_TOPIC_LEN,
        })
    } else if let Err(error) = check_characters(topic) {
        Err(TopicError::Character(error))
    } else if topic == WILDCARD {
        Err(TopicError::Wildcard)
    } else {
        Ok(())
    };
    assert_eq!(validate_topic(topic), expected);
    let reserved = is_reserved(topic, hub);
    assert_eq!(is_reserved(topic, hub), reserved);
    // Only the path decides: the same path on any origin is reserved alike.
    if let Some(path) = topic.strip_prefix("https://elsewhere.example")
        && path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains(['\\', '\t', '\n', '\r'])
    {
        assert_eq!(reserved, is_reserved(path, hub), "{topic:?}");
    }
}

/// One segment of a generated URL pattern.
#[derive(Debug)]
enum Segment {
    Literal(String),
    Named,
    Wildcard,
}

fn check_url_pattern_structure(choices: &mut Choices<'_>, hub: &url::Url) {
    let count = 1 + choices.below(4);
    let segments: Vec<Segment> = (0..count)
        .map(|_| match choices.below(4) {
            0 => Segment::Named,
            1 if choices.one_in(2) => Segment::Wildcard,
            _ => Segment::Literal(choices.word()),
        })
        .collect();
    let mut pattern = String::from("https://example.com");
    let mut topic = String::from("https://example.com");
    let mut altered = String::from("https://example.com");
    let mut altered_one = false;
    for (i, segment) in segments.iter().enumerate() {
        pattern.push('/');
        topic.push('/');
        altered.push('/');
        match segment {
            Segment::Literal(word) => {
                pattern.push_str(word);
                topic.push_str(word);
                altered.push_str(word);
                if !altered_one {
                    altered.push('z');
                    altered_one = true;
                }
            }
            Segment::Named => {
                pattern.push_str(&format!(":v{i}"));
                let value = choices.word();
                topic.push_str(&value);
                altered.push_str(&value);
            }
            Segment::Wildcard => {
                pattern.push('*');
                let value = format!("{}/{}", choices.word(), choices.word());
                topic.push_str(&value);
                altered.push_str(&value);
            }
        }
    }
    let selector = Selector::url_pattern(&pattern, hub)
        .unwrap_or_else(|error| panic!("generated pattern {pattern:?} refused: {error}"));
    assert!(selector.matches(&topic), "{pattern:?} misses {topic:?}");
    let has_wildcard = segments.iter().any(|s| matches!(s, Segment::Wildcard));
    if !has_wildcard {
        if altered_one {
            assert!(
                !selector.matches(&altered),
                "{pattern:?} matches {altered:?}"
            );
        }
        let other_host = topic.replacen("example.com", "example.org", 1);
        assert!(
            !selector.matches(&other_host),
            "{pattern:?} matches {other_host:?}"
        );
        let longer = format!("{topic}/extra");
        assert!(!selector.matches(&longer), "{pattern:?} matches {longer:?}");
    }
}

fn check_reserved_structure(choices: &mut Choices<'_>, hub: &url::Url) {
    // Build the hub path's spelling, optionally percent-encoding some of its letters (any
    // case of hex digits): `/.well-known/%6Dercure` is the same path.
    let mut path = String::new();
    for ch in "/.well-known/mercure".chars() {
        if ch.is_ascii_alphabetic() && choices.one_in(6) {
            let hex = format!("%{:02X}", ch as u32);
            path.push_str(&if choices.one_in(2) {
                hex.to_lowercase()
            } else {
                hex
            });
        } else {
            path.push(ch);
        }
    }
    let mut segments = Vec::new();
    for _ in 0..choices.below(4) {
        segments.push(choices.word());
    }
    let suffix: String = segments.iter().map(|s| format!("/{s}")).collect();
    let origin = choices.pick(&[
        "",
        "https://hub.example",
        "https://other.example",
        "http://x",
    ]);
    let inside = format!("{origin}{path}{suffix}");
    assert!(is_reserved(&inside, hub), "{inside:?} is not reserved");
    // A dot segment going back above the hub path leaves the namespace, and a longer last
    // segment is another path.
    let above = format!("{origin}{path}/..{suffix}/x");
    assert!(!is_reserved(&above, hub), "{above:?} is reserved");
    let longer = format!("{origin}{path}x{suffix}");
    assert!(!is_reserved(&longer, hub), "{longer:?} is reserved");
    // Going down and back up stays inside.
    let wander = format!("{origin}{path}/down/..{suffix}");
    assert!(is_reserved(&wander, hub), "{wander:?} is not reserved");
}
