//! Topic rules: which strings may name a topic, and which topics belong to the hub itself.
//!
//! Every topic enters the hub through [`validate_topic`] (publish requests) and every SSE `id` /
//! `event` value supplied by a publisher through [`validate_event_field`]; both reject the
//! characters draft-08 *Terminology* forbids (C0, C1, DEL and Unicode format characters), which
//! also keeps CR, LF and NUL from injecting SSE fields. [`is_reserved`] implements the reserved hub
//! namespace rule of draft-08 *Publication*, which stops publishers from forging subscription
//! events.

use std::fmt;

/// Longest accepted topic, in bytes.
///
/// Draft-08 asks hubs to bound field lengths; 2 KiB holds any realistic IRI while keeping the
/// cost of matching, storing and indexing one topic small.
pub const MAX_TOPIC_LEN: usize = 2048;

/// Why a character is refused in a topic, matcher or event field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharacterClass {
    /// C0 (U+0000–U+001F), DEL (U+007F) or C1 (U+0080–U+009F): invisible, and CR / LF / NUL
    /// would inject SSE fields.
    Control,
    /// Unicode general category `Cf` (bidirectional and zero-width controls and the like):
    /// invisible, and they make identifiers spoofable.
    Format,
}

impl fmt::Display for CharacterClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CharacterClass::Control => "control",
            CharacterClass::Format => "Unicode format",
        })
    }
}

/// A forbidden character found in a value, with where it is.
///
/// Displays as e.g. `a control character (U+000A) at byte 12`, so callers prefix the name of the
/// value: `format!("`id` contains {err}")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {class} character (U+{code:04X}) at byte {at}", code = *ch as u32)]
pub struct ForbiddenCharacter {
    /// The offending character.
    pub ch: char,
    /// Its byte offset in the value.
    pub at: usize,
    /// Why it is refused.
    pub class: CharacterClass,
}

/// Why a string cannot be published as a topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The topic is the empty string.
    #[error("topic is empty")]
    Empty,
    /// The topic is longer than [`MAX_TOPIC_LEN`].
    #[error("topic is {len} bytes long; the limit is {max} bytes")]
    TooLong {
        /// Length of the topic, in bytes.
        len: usize,
        /// The limit, in bytes.
        max: usize,
    },
    /// The topic contains a character draft-08 forbids.
    #[error("topic contains {0}")]
    Character(#[from] ForbiddenCharacter),
    /// The topic is exactly `*`, the wildcard, which no matcher could select on its own.
    #[error("topic `*` is reserved for the wildcard matcher")]
    Wildcard,
}

/// Checks that `topic` may be published: non-empty, at most [`MAX_TOPIC_LEN`] bytes, free of
/// control and format characters, and not the wildcard `*`.
///
/// This does not check the reserved hub namespace: that needs the hub URL, see [`is_reserved`].
///
/// ```
/// # use herald_hub::topic::{validate_topic, TopicError};
/// assert!(validate_topic("https://example.com/books/1").is_ok());
/// assert_eq!(validate_topic("*"), Err(TopicError::Wildcard));
/// assert_eq!(
///     validate_topic("a\nb").unwrap_err().to_string(),
///     "topic contains a control character (U+000A) at byte 1"
/// );
/// ```
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong {
            len: topic.len(),
            max: MAX_TOPIC_LEN,
        });
    }
    check_characters(topic)?;
    if topic == "*" {
        return Err(TopicError::Wildcard);
    }
    Ok(())
}

/// Checks a publisher-supplied SSE `id` or `type` value: no control or format characters.
///
/// The other rules on these fields (`id` not starting with `#` nor equal to `earliest`, `type`
/// not `mercure`, length limits) belong to the publish handler, which knows which field it is.
///
/// ```
/// # use herald_hub::topic::validate_event_field;
/// assert!(validate_event_field("upload_by_qr").is_ok());
/// let err = validate_event_field("ok\r\nevent: forged").unwrap_err();
/// assert_eq!(format!("`type` contains {err}"), "`type` contains a control character (U+000D) at byte 2");
/// ```
pub fn validate_event_field(value: &str) -> Result<(), ForbiddenCharacter> {
    check_characters(value)
}

/// Finds the first control (C0, DEL, C1) or format (`Cf`) character in `value`.
///
/// Shared by topics, matchers and event fields, which draft-08 constrains alike.
pub fn check_characters(value: &str) -> Result<(), ForbiddenCharacter> {
    // Fast path: printable ASCII is by far the common case and needs no table lookup.
    for (at, ch) in value.char_indices() {
        let code = ch as u32;
        if (0x20..0x7F).contains(&code) {
            continue;
        }
        let class = if code < 0x20 || (0x7F..=0x9F).contains(&code) {
            CharacterClass::Control
        } else if is_format(ch) {
            CharacterClass::Format
        } else {
            continue;
        };
        return Err(ForbiddenCharacter { ch, at, class });
    }
    Ok(())
}

/// Unicode general category `Cf` (format characters), as inclusive ranges sorted by start.
///
/// Unicode 17.0.0, the version draft-08 cites. Checked against ICU4X's data
/// (`icu_properties_data` 2.4, built from Unicode 18.0.0): the `Cf` set is unchanged since
/// Unicode 15.0, which added U+13439–U+1343F. Draft-08 lets hubs also reject characters later
/// versions add, so extending this table is always safe.
const FORMAT_RANGES: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // SOFT HYPHEN
    (0x0600, 0x0605),   // Arabic number signs
    (0x061C, 0x061C),   // ARABIC LETTER MARK
    (0x06DD, 0x06DD),   // ARABIC END OF AYAH
    (0x070F, 0x070F),   // SYRIAC ABBREVIATION MARK
    (0x0890, 0x0891),   // Arabic pound / piastre mark above
    (0x08E2, 0x08E2),   // ARABIC DISPUTED END OF AYAH
    (0x180E, 0x180E),   // MONGOLIAN VOWEL SEPARATOR
    (0x200B, 0x200F),   // zero-width space, ZWNJ, ZWJ, LRM, RLM
    (0x202A, 0x202E),   // bidirectional embeddings and overrides
    (0x2060, 0x2064),   // word joiner, invisible operators
    (0x2066, 0x206F),   // bidirectional isolates, deprecated format characters
    (0xFEFF, 0xFEFF),   // ZERO WIDTH NO-BREAK SPACE (BOM)
    (0xFFF9, 0xFFFB),   // interlinear annotation
    (0x110BD, 0x110BD), // KAITHI NUMBER SIGN
    (0x110CD, 0x110CD), // KAITHI NUMBER SIGN ABOVE
    (0x13430, 0x1343F), // Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3), // shorthand format controls
    (0x1D173, 0x1D17A), // musical symbol format controls
    (0xE0001, 0xE0001), // LANGUAGE TAG
    (0xE0020, 0xE007F), // tag characters
];

fn is_format(ch: char) -> bool {
    let code = ch as u32;
    // Ranges are sorted and disjoint: find the last range starting at or before `code`.
    let idx = FORMAT_RANGES.partition_point(|&(start, _)| start <= code);
    idx > 0 && code <= FORMAT_RANGES[idx - 1].1
}

/// Tells whether `topic` addresses the reserved hub namespace (draft-08 *Publication*).
///
/// The topic is resolved against `hub_url` with the WHATWG URL parser (the one URL patterns use),
/// its path has percent-encoded unreserved characters decoded and dot segments removed, and it is
/// reserved when that path equals the hub's path or starts with the hub's path followed by `/`,
/// whatever the scheme and authority. So `/.well-known/%6Dercure/x`,
/// `/.well-known/mercure/../mercure/x` and `https://other.example/.well-known/mercure/x` are all
/// reserved for a hub at `/.well-known/mercure`.
///
/// Security: publishers must get a 400 for any reserved topic, whatever their token says,
/// otherwise they could forge the hub's subscription events. A topic that cannot be resolved
/// against the hub URL cannot name a hub path and is not reserved.
///
/// ```
/// # use herald_hub::topic::is_reserved;
/// let hub = url::Url::parse("https://hub.example/.well-known/mercure").unwrap();
/// assert!(is_reserved("/.well-known/%6Dercure/subscriptions", &hub));
/// assert!(!is_reserved("https://example.com/books/1", &hub));
/// ```
pub fn is_reserved(topic: &str, hub_url: &url::Url) -> bool {
    let Ok(resolved) = hub_url.join(topic) else {
        return false;
    };
    if resolved.cannot_be_a_base() {
        // An opaque path (`urn:...`, `mailto:...`) has no segments and cannot name a hub path.
        return false;
    }
    let path = normalize_path(resolved.path());
    let hub_path = normalize_path(hub_url.path());
    let hub_path = hub_path.strip_suffix('/').unwrap_or(&hub_path);
    match path.strip_prefix(hub_path) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Decodes percent-encoded unreserved characters (RFC 3986 §6.2.2.2), then removes dot segments
/// (RFC 3986 §5.2.4).
///
/// The WHATWG parser already removed dot segments, including `%2e` ones, but decoding can create
/// new ones (`%2E%2E` in any case mix), so they are removed again after decoding.
fn normalize_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
        {
            let b = hi << 4 | lo;
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                decoded.push(b as char);
            } else {
                // Keep reserved and non-ASCII octets encoded, with uppercase hex
                // (RFC 3986 §6.2.2.1) so equivalent spellings compare equal.
                decoded.push('%');
                decoded.push(HEX_UPPER[usize::from(hi)] as char);
                decoded.push(HEX_UPPER[usize::from(lo)] as char);
            }
            i += 3;
            continue;
        }
        // `path` is a str and we only ever skip whole ASCII triplets, so `i` is on a char
        // boundary here.
        let ch = path[i..].chars().next().unwrap_or('\u{FFFD}');
        decoded.push(ch);
        i += ch.len_utf8();
    }
    remove_dot_segments(&decoded)
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §5.2.4 on an absolute path (one starting with `/`).
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => {
                if *segment == ".." && out.len() > 1 {
                    out.pop();
                }
                // A trailing dot segment leaves a trailing slash: `/a/b/..` is `/a/`.
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.is_empty() {
        "/".to_owned()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> url::Url {
        url::Url::parse("https://hub.example.com/.well-known/mercure").unwrap()
    }

    #[test]
    fn accepts_ordinary_topics() {
        for topic in [
            "https://example.com/books/1",
            "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
            "books",
            "https://example.com/caf\u{E9}/\u{1F600}",
            "**",
            "\u{A0}", // NO-BREAK SPACE is Zs, not Cf
        ] {
            assert_eq!(validate_topic(topic), Ok(()), "{topic:?}");
        }
    }

    #[test]
    fn rejects_empty_wildcard_and_too_long() {
        assert_eq!(validate_topic(""), Err(TopicError::Empty));
        assert_eq!(validate_topic("*"), Err(TopicError::Wildcard));
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(
            validate_topic(&long),
            Err(TopicError::TooLong {
                len: MAX_TOPIC_LEN + 1,
                max: MAX_TOPIC_LEN
            })
        );
        assert_eq!(validate_topic(&long[1..]), Ok(()));
    }

    #[test]
    fn rejects_control_characters_with_position() {
        for (topic, code, at) in [
            ("\0", 0x00, 0),
            ("ab\ncd", 0x0A, 2),
            ("ab\rcd", 0x0D, 2),
            ("\u{1F}", 0x1F, 0),
            ("x\u{7F}", 0x7F, 1),
            ("\u{E9}\u{80}", 0x80, 2),
            ("\u{9F}", 0x9F, 0),
        ] {
            let err = validate_topic(topic).unwrap_err();
            assert_eq!(
                err,
                TopicError::Character(ForbiddenCharacter {
                    ch: char::from_u32(code).unwrap(),
                    at,
                    class: CharacterClass::Control
                }),
                "{topic:?}"
            );
        }
        assert_eq!(
            validate_topic("https://example.c\tom")
                .unwrap_err()
                .to_string(),
            "topic contains a control character (U+0009) at byte 17"
        );
    }

    #[test]
    fn rejects_format_characters() {
        for code in [
            0xAD, 0x600, 0x605, 0x200B, 0x200D, 0x200F, 0x202A, 0x202E, 0x2066, 0x206F, 0xFEFF,
            0x13439, 0x1343F, 0xE0001, 0xE0020, 0xE007F,
        ] {
            let ch = char::from_u32(code).unwrap();
            let topic = format!("ab{ch}");
            assert_eq!(
                validate_topic(&topic),
                Err(TopicError::Character(ForbiddenCharacter {
                    ch,
                    at: 2,
                    class: CharacterClass::Format
                })),
                "U+{code:04X}"
            );
        }
        assert_eq!(
            validate_event_field("a\u{202E}b").unwrap_err().to_string(),
            "a Unicode format character (U+202E) at byte 1"
        );
    }

    #[test]
    fn format_table_edges() {
        // Neighbours of every range are not format characters.
        for &(start, end) in FORMAT_RANGES {
            assert!(is_format(char::from_u32(start).unwrap()));
            assert!(is_format(char::from_u32(end).unwrap()));
            if let Some(before) = char::from_u32(start - 1) {
                assert!(!is_format(before), "U+{:04X}", start - 1);
            }
            if let Some(after) = char::from_u32(end + 1) {
                assert!(!is_format(after), "U+{:04X}", end + 1);
            }
        }
        assert!(
            FORMAT_RANGES.windows(2).all(|w| w[0].1 < w[1].0),
            "sorted and disjoint"
        );
    }

    #[test]
    fn event_fields() {
        assert_eq!(validate_event_field(""), Ok(()));
        assert_eq!(validate_event_field("urn:uuid:1"), Ok(()));
        assert!(validate_event_field("a\0").is_err());
        assert!(
            validate_event_field("\u{2028}").is_ok(),
            "LINE SEPARATOR is Zl, not Cf"
        );
    }

    #[test]
    fn reserved_namespace() {
        let hub = hub();
        for topic in [
            "/.well-known/mercure",
            "/.well-known/mercure/",
            "/.well-known/mercure/subscriptions/x/y",
            "/.well-known/%6Dercure/x",
            "/.well-known/%6dercure/x",
            "/%2Ewell-known/mercure",
            "/.well-known/mercure/../mercure/x",
            "/.well-known/mercure/%2E%2E/mercure/x",
            "/.well-known/x/../mercure",
            "/foo/../.well-known/mercure/x",
            "mercure/subscriptions",
            "./mercure",
            "https://hub.example.com/.well-known/mercure/subscriptions/a/b",
            "https://other.example/.well-known/mercure/subscriptions/a/b",
            "http://other.example:8080/.well-known/mercure?x=1",
            "//other.example/.well-known/mercure#frag",
            "ws://x/.well-known/mercure",
            "/.well-known\\mercure/x",
            "mailto:/.well-known/mercure", // non-special but hierarchical: regardless of scheme
            "",                            // resolves to the hub URL itself
        ] {
            assert!(is_reserved(topic, &hub), "{topic:?} should be reserved");
        }
        for topic in [
            "https://example.com/books/1",
            "/.well-known/mercurex",
            "/.well-known/mercure-x/y",
            "/.well-known%2Fmercure/x",
            "/.WELL-KNOWN/mercure",
            "/.well-known/%2E%2E%2Fmercure",
            "books",
            "urn:.well-known:mercure",
            "http://[::1/.well-known/mercure",
            "/",
        ] {
            assert!(
                !is_reserved(topic, &hub),
                "{topic:?} should not be reserved"
            );
        }
    }

    #[test]
    fn reserved_namespace_follows_hub_path() {
        let hub = url::Url::parse("https://hub.example.com/hub/").unwrap();
        assert!(is_reserved("/hub", &hub));
        assert!(is_reserved("/hub/subscriptions", &hub));
        assert!(is_reserved("subscriptions", &hub), "relative to /hub/");
        assert!(!is_reserved("/.well-known/mercure", &hub));
        assert!(!is_reserved("/hubs", &hub));
    }

    #[test]
    fn dot_segment_removal() {
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
        assert_eq!(remove_dot_segments("/a/.."), "/");
        assert_eq!(remove_dot_segments("/../.."), "/");
        assert_eq!(remove_dot_segments("/a/b/."), "/a/b/");
        assert_eq!(remove_dot_segments("/"), "/");
        assert_eq!(normalize_path("/%41%2f%2E%7e%c3%a9"), "/A%2F.~%C3%A9");
        assert_eq!(normalize_path("/x/%2E%2E/y%"), "/y%");
    }
}
