//! Topic matchers: which topics a subscription listens to, or a token grant covers.
//!
//! A [`Selector`] is one compiled matcher of a [`MatcherType`]: `exact` (byte-for-byte),
//! `urlpattern` (WHATWG URL Pattern, draft-08) or `uritemplate` (the legacy -07 `topic=`
//! selector: exact string or RFC 6570 template). The value `*` is the wildcard of every type.
//! Selectors are built from untrusted input (query parameters, token claims), so construction
//! validates characters and length and compiles once; matching never allocates for exact
//! selectors and runs in linear time for the others. Nothing is cached here: the hub caches
//! per-topic verdicts of pattern selectors itself.

use std::fmt;
use std::sync::Arc;

use crate::topic::{ForbiddenCharacter, check_characters};
use crate::uri_template::UriTemplate;

/// Longest accepted matcher value, in bytes (draft-08 asks for a limit on pattern length).
pub const MAX_MATCHER_LEN: usize = 2048;

/// The wildcard matcher value: matches every topic, whatever the matcher type.
pub const WILDCARD: &str = "*";

/// How a matcher value is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatcherType {
    /// Byte-for-byte comparison (`match=`, `match_exact=`, `match_type: "exact"`).
    Exact,
    /// WHATWG URL Pattern (`match_urlpattern=`, `match_type: "urlpattern"`).
    UrlPattern,
    /// Legacy (-07) topic selector: exact string or RFC 6570 URI template (`topic=`, and the
    /// `mercure.publish` / `mercure.subscribe` claims).
    UriTemplate,
}

impl MatcherType {
    /// The registered name: `exact`, `urlpattern`, or `uritemplate` (Herald's name for the
    /// legacy selector; it is not accepted as a draft-08 `match_type`).
    pub fn name(self) -> &'static str {
        match self {
            MatcherType::Exact => "exact",
            MatcherType::UrlPattern => "urlpattern",
            MatcherType::UriTemplate => "uritemplate",
        }
    }

    /// The matcher type of a draft-08 subscribe query parameter: `match` and `match_exact` are
    /// exact, `match_urlpattern` is a URL pattern; anything else is `None`.
    ///
    /// ```
    /// # use herald_hub::selector::MatcherType;
    /// assert_eq!(MatcherType::from_param("match"), Some(MatcherType::Exact));
    /// assert_eq!(MatcherType::from_param("match_urlpattern"), Some(MatcherType::UrlPattern));
    /// assert_eq!(MatcherType::from_param("topic"), None);
    /// ```
    pub fn from_param(name: &str) -> Option<MatcherType> {
        match name {
            "match" | "match_exact" => Some(MatcherType::Exact),
            "match_urlpattern" => Some(MatcherType::UrlPattern),
            _ => None,
        }
    }

    /// The matcher type of a draft-08 `match_type` value in an authorization detail
    /// (case-sensitive): `exact` or `urlpattern`. `uritemplate` is not a draft-08 type.
    pub fn from_match_type(name: &str) -> Option<MatcherType> {
        match name {
            "exact" => Some(MatcherType::Exact),
            "urlpattern" => Some(MatcherType::UrlPattern),
            _ => None,
        }
    }
}

impl fmt::Display for MatcherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a matcher value was refused. Messages never repeat the value itself: it may come from a
/// token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The value is empty.
    #[error("matcher is empty")]
    Empty,
    /// The value is longer than [`MAX_MATCHER_LEN`].
    #[error("matcher is {len} bytes long; the limit is {max} bytes")]
    TooLong {
        /// Length of the value, in bytes.
        len: usize,
        /// The limit, in bytes.
        max: usize,
    },
    /// The value contains a character topics may not contain.
    #[error("matcher contains {0}")]
    InvalidCharacter(#[from] ForbiddenCharacter),
    /// The value does not compile as a matcher of its type.
    #[error("invalid matcher: {reason}")]
    Invalid {
        /// What is wrong, for the client and the logs.
        reason: String,
    },
}

/// A compiled topic matcher.
///
/// Cloning is cheap (reference-counted). Two selectors are equal when they have the same type
/// and the same raw value; to key a map by selector, use `(matcher_type(), raw())` (the compiled
/// regexes hold caches, which clippy rightly dislikes in keys).
///
/// ```
/// # use herald_hub::selector::Selector;
/// let hub = url::Url::parse("https://hub.example/.well-known/mercure").unwrap();
/// let books = Selector::url_pattern("https://example.com/books/:id", &hub).unwrap();
/// assert!(books.matches("https://example.com/books/1"));
/// assert!(!books.matches("https://example.com/authors/1"));
///
/// let exact = Selector::exact("https://example.com/books/1").unwrap();
/// assert_eq!(exact.as_exact(), Some("https://example.com/books/1"));
/// ```
#[derive(Clone)]
pub struct Selector {
    /// The value as given: the identity of the selector (for the hub's indexes and caches, and
    /// for payload selection, which matches grants against it).
    raw: Arc<str>,
    /// The type it was parsed as; kept for the wildcard too, so `raw()` + `matcher_type()`
    /// round-trips.
    matcher_type: MatcherType,
    compiled: Compiled,
}

#[derive(Clone)]
enum Compiled {
    Wildcard,
    Exact,
    UrlPattern {
        /// `UrlPattern` is not `Clone`; selectors are cloned into subscriptions and grants.
        pattern: Arc<urlpattern::UrlPattern<BoundedRegex>>,
        /// Relative topics resolve against the hub URL (draft-08 *URL Pattern*).
        base: url::Url,
    },
    /// Legacy selector with at least one expression. Matches the template's expansions, and
    /// also the template string itself (-07 *Topic Selectors*, step 2).
    Template(Arc<UriTemplate>),
}

impl Selector {
    /// An exact matcher (`*` is the wildcard).
    ///
    /// # Errors
    /// Empty, too long, or containing a forbidden character.
    pub fn exact(value: &str) -> Result<Selector, SelectorError> {
        check_value(value)?;
        let compiled = if value == WILDCARD {
            Compiled::Wildcard
        } else {
            Compiled::Exact
        };
        Ok(Selector::new(value, MatcherType::Exact, compiled))
    }

    /// A URL pattern matcher (`*` is the wildcard). Relative patterns, and later relative
    /// topics, resolve against `base`, the hub's URL.
    ///
    /// Patterns compile with the `urlpattern` crate, whose regular expressions run on the
    /// `regex` crate: matching is linear-time in the topic, which is what draft-08
    /// (*URL-Pattern Denial of Service*) requires of hubs; no per-evaluation time limit is
    /// needed. `ignoreCase` is never enabled (draft-08 forbids it).
    ///
    /// # Errors
    /// Empty, too long, forbidden character, or not a valid URL pattern.
    pub fn url_pattern(value: &str, base: &url::Url) -> Result<Selector, SelectorError> {
        check_value(value)?;
        if value == WILDCARD {
            return Ok(Selector::new(
                value,
                MatcherType::UrlPattern,
                Compiled::Wildcard,
            ));
        }
        let invalid = |error: urlpattern::Error| SelectorError::Invalid {
            reason: format!("not a URL pattern: {error}"),
        };
        let init = urlpattern::UrlPatternInit::parse_constructor_string::<BoundedRegex>(
            value,
            Some(base.clone()),
        )
        .map_err(invalid)?;
        let options = urlpattern::UrlPatternOptions {
            ignore_case: false,
            ..Default::default()
        };
        let pattern = urlpattern::UrlPattern::parse(init, options).map_err(invalid)?;
        let compiled = Compiled::UrlPattern {
            pattern: Arc::new(pattern),
            base: base.clone(),
        };
        Ok(Selector::new(value, MatcherType::UrlPattern, compiled))
    }

    /// A legacy (-07) topic selector: `*`, an RFC 6570 URI template, or any other string,
    /// matched exactly.
    ///
    /// A value without `{` is an exact string. A value that is not a valid template is matched
    /// exactly too: -07 says a string matches a selector when they are identical, or when the
    /// selector *is a valid template* the string matches, so an invalid template is still a
    /// selector, just not a template. Such a selector reports [`as_exact`](Self::as_exact).
    ///
    /// # Errors
    /// Empty, too long, or containing a forbidden character.
    pub fn legacy_topic(value: &str) -> Result<Selector, SelectorError> {
        check_value(value)?;
        let compiled = if value == WILDCARD {
            Compiled::Wildcard
        } else if !value.contains('{') {
            Compiled::Exact
        } else {
            match UriTemplate::parse(value) {
                Ok(template) => Compiled::Template(Arc::new(template)),
                Err(_) => Compiled::Exact,
            }
        };
        Ok(Selector::new(value, MatcherType::UriTemplate, compiled))
    }

    /// A selector of the given type; `base` (the hub URL) is used by URL patterns only.
    ///
    /// # Errors
    /// As the constructor of that type.
    pub fn parse(
        matcher_type: MatcherType,
        value: &str,
        base: &url::Url,
    ) -> Result<Selector, SelectorError> {
        match matcher_type {
            MatcherType::Exact => Selector::exact(value),
            MatcherType::UrlPattern => Selector::url_pattern(value, base),
            MatcherType::UriTemplate => Selector::legacy_topic(value),
        }
    }

    fn new(value: &str, matcher_type: MatcherType, compiled: Compiled) -> Selector {
        Selector {
            raw: Arc::from(value),
            matcher_type,
            compiled,
        }
    }

    /// Tells whether `topic` is selected.
    ///
    /// For URL patterns, the topic is first resolved against the hub URL; a topic that cannot
    /// be parsed as a URL reference never matches (draft-08).
    pub fn matches(&self, topic: &str) -> bool {
        match &self.compiled {
            Compiled::Wildcard => true,
            Compiled::Exact => *self.raw == *topic,
            Compiled::UrlPattern { pattern, base } => match base.join(topic) {
                Ok(url) => pattern
                    .test(urlpattern::UrlPatternMatchInput::Url(url))
                    .unwrap_or(false),
                Err(_) => false,
            },
            Compiled::Template(template) => *self.raw == *topic || template.is_match(topic),
        }
    }

    /// The matcher value, as given.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The type this selector was parsed as.
    pub fn matcher_type(&self) -> MatcherType {
        self.matcher_type
    }

    /// Whether this is the `*` wildcard, which matches every topic.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.compiled, Compiled::Wildcard)
    }

    /// The one topic this selector matches, when it matches exactly one string (exact
    /// selectors, and legacy selectors without a template), so the hub can index it in a hash
    /// map instead of testing it against every topic.
    pub fn as_exact(&self) -> Option<&str> {
        match self.compiled {
            Compiled::Exact => Some(&self.raw),
            _ => None,
        }
    }
}

/// Compiled-size cap of each regular expression of a URL pattern (there is one per URL
/// component).
///
/// Patterns arrive in unauthenticated subscribe requests, and compiling a regex costs time in
/// proportion to its size: with the `regex` crate's default limit (10 MiB) a 30-byte pattern
/// such as `/(\w{1000})` burns about a second of CPU before being refused. Real patterns
/// compile to a few KiB. (Rust's `\w` and `\d` are Unicode classes of about 15 KiB each, so
/// `(\w{20})` is refused where `([a-z0-9_]{64})` fits.)
pub const MAX_PATTERN_REGEX_SIZE: usize = 256 * 1024;

/// Cap on the lazy DFA cache of each of those regexes, which lives as long as the selector:
/// thousands of subscriptions must not each hold the default 2 MiB.
const PATTERN_DFA_CACHE_SIZE: usize = 64 * 1024;

/// The regex engine the URL patterns run on: the `regex` crate, built with size limits.
///
/// The `regex` crate matches in time linear in the input (no backtracking), which is what
/// draft-08 requires of hubs against pathological patterns.
#[derive(Debug)]
struct BoundedRegex(regex::Regex);

impl urlpattern::regexp::RegExp for BoundedRegex {
    fn syntax() -> urlpattern::RegexSyntax {
        urlpattern::RegexSyntax::Rust
    }

    fn parse(pattern: &str, flags: &str, _force_eval: bool) -> Result<Self, ()> {
        regex::RegexBuilder::new(pattern)
            // `i` only appears with `ignoreCase`, which Herald never enables; honoured anyway
            // so the engine never silently differs from the flags it was given.
            .case_insensitive(flags.contains('i'))
            .size_limit(MAX_PATTERN_REGEX_SIZE)
            .dfa_size_limit(PATTERN_DFA_CACHE_SIZE)
            .build()
            .map(BoundedRegex)
            .map_err(|_| ())
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        // Herald only asks "does it match", never for the groups, so skip the slower capture
        // search; an empty list of captures is valid for `UrlPattern::test`.
        self.0.is_match(text).then(Vec::new)
    }

    fn pattern_string(&self) -> &str {
        self.0.as_str()
    }
}

/// Length and character rules shared by every matcher type.
fn check_value(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() {
        return Err(SelectorError::Empty);
    }
    if value.len() > MAX_MATCHER_LEN {
        return Err(SelectorError::TooLong {
            len: value.len(),
            max: MAX_MATCHER_LEN,
        });
    }
    check_characters(value)?;
    Ok(())
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The compiled form is large and says nothing the raw value does not.
        f.debug_struct("Selector")
            .field("matcher_type", &self.matcher_type)
            .field("raw", &self.raw)
            .finish()
    }
}

impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        self.matcher_type == other.matcher_type && self.raw == other.raw
    }
}

impl Eq for Selector {}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> url::Url {
        url::Url::parse("https://hub.example.com/.well-known/mercure").unwrap()
    }

    /// Found by the `selector` fuzz target: a `]` in a pattern's hostname without a `[` made
    /// urlpattern's bracket counter underflow, a panic in builds with overflow checks (fixed by
    /// the `urlpattern` profile override in the root Cargo.toml). Such a hostname is invalid.
    #[test]
    fn url_pattern_with_stray_bracket_in_hostname_is_refused_without_panic() {
        for pattern in [
            "https://e]x.com/",
            "https://a]b]c:8080/x",
            "https://u@h]/",
            "https://e\u{FFFD}ample.]com/((",
        ] {
            let result = Selector::url_pattern(pattern, &hub());
            assert!(
                matches!(result, Err(SelectorError::Invalid { .. })),
                "{pattern}: {result:?}"
            );
        }
        // A real IPv6 literal (colons escaped, as pattern syntax requires) still works.
        let ipv6 = Selector::url_pattern(r"http://[\:\:1]:8080/:id", &hub()).unwrap();
        assert!(ipv6.matches("http://[::1]:8080/7"));
    }

    #[test]
    fn matcher_type_names() {
        assert_eq!(MatcherType::from_param("match"), Some(MatcherType::Exact));
        assert_eq!(
            MatcherType::from_param("match_exact"),
            Some(MatcherType::Exact)
        );
        assert_eq!(
            MatcherType::from_param("match_urlpattern"),
            Some(MatcherType::UrlPattern)
        );
        assert_eq!(MatcherType::from_param("match_uritemplate"), None);
        assert_eq!(MatcherType::from_param("Match"), None);
        assert_eq!(
            MatcherType::from_match_type("exact"),
            Some(MatcherType::Exact)
        );
        assert_eq!(
            MatcherType::from_match_type("urlpattern"),
            Some(MatcherType::UrlPattern)
        );
        assert_eq!(MatcherType::from_match_type("URLPattern"), None);
        assert_eq!(MatcherType::from_match_type("uritemplate"), None);
        for t in [
            MatcherType::Exact,
            MatcherType::UrlPattern,
            MatcherType::UriTemplate,
        ] {
            assert_eq!(t.to_string(), t.name());
        }
    }

    #[test]
    fn exact_is_byte_for_byte() {
        let s = Selector::exact("https://example.com/Books/1").unwrap();
        assert!(s.matches("https://example.com/Books/1"));
        assert!(!s.matches("https://example.com/books/1"));
        assert!(!s.matches("https://EXAMPLE.com/Books/1"));
        assert!(!s.matches("https://example.com/Books/1/"));
        // No resolution against the hub URL.
        let relative = Selector::exact("/books/1").unwrap();
        assert!(relative.matches("/books/1"));
        assert!(!relative.matches("https://hub.example.com/books/1"));
        // No Unicode normalization: NFC and NFD spellings differ.
        let nfc = Selector::exact("caf\u{E9}").unwrap();
        assert!(!nfc.matches("cafe\u{301}"));
        assert_eq!(s.as_exact(), Some("https://example.com/Books/1"));
        assert!(!s.is_wildcard());
        assert_eq!(s.matcher_type(), MatcherType::Exact);
    }

    #[test]
    fn wildcard_for_every_type() {
        let hub = hub();
        for t in [
            MatcherType::Exact,
            MatcherType::UrlPattern,
            MatcherType::UriTemplate,
        ] {
            let s = Selector::parse(t, "*", &hub).unwrap();
            assert!(s.is_wildcard());
            assert_eq!(s.as_exact(), None);
            assert_eq!(s.matcher_type(), t);
            assert_eq!(s.raw(), "*");
            for topic in [
                "https://example.com/x",
                "not a url",
                "*",
                "/.well-known/mercure/x",
            ] {
                assert!(s.matches(topic));
            }
        }
        assert!(!Selector::exact("**").unwrap().is_wildcard());
    }

    #[test]
    fn url_pattern_absolute() {
        let s = Selector::url_pattern("https://example.com/books/:id", &hub()).unwrap();
        assert!(s.matches("https://example.com/books/1"));
        assert!(
            s.matches("https://EXAMPLE.com/books/1"),
            "hosts are case-insensitive"
        );
        assert!(s.matches("https://example.com:443/books/1"), "default port");
        assert!(
            !s.matches("https://example.com/BOOKS/1"),
            "paths are case-sensitive"
        );
        assert!(!s.matches("https://example.com/books/1/2"));
        assert!(!s.matches("https://example.com/books/"));
        assert!(!s.matches("http://example.com/books/1"));
        assert!(!s.matches("https://example.org/books/1"));
        assert!(!s.matches("/books/1"), "resolves to the hub's host");
        assert_eq!(s.as_exact(), None);
        assert_eq!(s.matcher_type(), MatcherType::UrlPattern);

        let users = Selector::url_pattern("https://example.com/users/42/*", &hub()).unwrap();
        assert!(users.matches("https://example.com/users/42/books/1"));
        assert!(!users.matches("https://example.com/users/43/books/1"));
    }

    #[test]
    fn url_pattern_components_left_out_are_wildcards() {
        // Per the URL Pattern standard (as the `urlpattern` crate implements it), a pattern
        // string that stops at the path leaves search and hash as wildcards. Pinned here
        // because it widens grants: `.../books/:id` also covers `.../books/1?x`.
        let s = Selector::url_pattern("https://example.com/books/:id", &hub()).unwrap();
        assert!(s.matches("https://example.com/books/1?x=y"));
        assert!(s.matches("https://example.com/books/1#f"));
        // A trailing `?#` spells "empty search, empty hash".
        let bare = Selector::url_pattern("https://example.com/books/1?#", &hub()).unwrap();
        assert!(bare.matches("https://example.com/books/1"));
        assert!(!bare.matches("https://example.com/books/1?x=y"));
        assert!(!bare.matches("https://example.com/books/1#x"));
        // Topics are parsed as URLs first: dot segments are gone before matching.
        let under = Selector::url_pattern("https://example.com/books/*", &hub()).unwrap();
        assert!(!under.matches("https://example.com/books/../admin"));
        assert!(!under.matches("https://example.com/books/%2E%2E/admin"));
        // Unicode in a path is percent-encoded by the URL parser on both sides.
        assert!(s.matches("https://example.com/books/caf\u{E9}"));
        assert!(s.matches("https://example.com/books/caf%C3%A9"));
    }

    #[test]
    fn url_pattern_relative_resolves_against_hub() {
        let hub = hub();
        let s = Selector::url_pattern(
            "/.well-known/mercure/subscriptions/:topic/:subscriber",
            &hub,
        )
        .unwrap();
        assert!(s.matches("/.well-known/mercure/subscriptions/a/b"));
        assert!(s.matches("https://hub.example.com/.well-known/mercure/subscriptions/a/b"));
        assert!(!s.matches("https://other.example/.well-known/mercure/subscriptions/a/b"));
        assert!(!s.matches("/.well-known/mercure/subscriptions/a"));
    }

    #[test]
    fn url_pattern_unparsable_topic_never_matches() {
        let s = Selector::url_pattern("https://example.com/*", &hub()).unwrap();
        assert!(!s.matches("http://[::1"));
        assert!(!s.matches("https://exa mple.com/x"));
        let everything = Selector::url_pattern("*://*", &hub()).unwrap();
        assert!(everything.matches("urn:uuid:1"));
        assert!(!everything.matches("http://[::1"));
    }

    #[test]
    fn url_pattern_payload_style_self_match() {
        // A grant `https://example.com/bar/:id` matches the subscription whose matcher string
        // is that same pattern, treated as a topic (draft-08 *Payloads*).
        let s = Selector::url_pattern("https://example.com/bar/:id", &hub()).unwrap();
        assert!(s.matches("https://example.com/bar/:id"));
    }

    #[test]
    fn url_pattern_invalid() {
        for pattern in [
            "https://example.com/(",
            "https://example.com/:",
            "/books/(?<x>a)",
        ] {
            let err = Selector::url_pattern(pattern, &hub()).unwrap_err();
            assert!(
                matches!(err, SelectorError::Invalid { .. }),
                "{pattern:?}: {err:?}"
            );
            assert!(
                err.to_string()
                    .starts_with("invalid matcher: not a URL pattern"),
                "{err}"
            );
        }
    }

    #[test]
    fn url_pattern_compile_cost_is_bounded() {
        // Tiny patterns with huge compiled programs are refused quickly, not after seconds.
        for pattern in [
            "https://example.com/(\\w{1000})".to_owned(),
            "https://example.com/(\\w{10}{10}{10})".to_owned(),
            format!("https://example.com/{}", "(\\w{30})".repeat(60)),
        ] {
            let started = std::time::Instant::now();
            let err = Selector::url_pattern(&pattern, &hub()).unwrap_err();
            assert!(matches!(err, SelectorError::Invalid { .. }));
            println!("{} bytes refused in {:?}", pattern.len(), started.elapsed());
        }
        // Realistic patterns fit easily.
        for pattern in [
            "https://*.example.com/users/:user/books/:id(\\d+)/*",
            "https://example.com/([a-z0-9_]{64})",
            "https://example.com/(\\w{5})",
            "https://example.com/:id(\\d{4})",
            "https://example.com/(\\w+)",
            "https://example.com/:a/:b/:c/:d/:e/:f/:g/:h?q=:q#:frag",
        ] {
            if let Err(e) = Selector::url_pattern(pattern, &hub()) {
                panic!("{pattern}: {e}");
            }
        }
    }

    #[test]
    fn url_pattern_regex_groups_are_linear() {
        // A classic catastrophic-backtracking shape; the regex crate matches it in linear time.
        let s = Selector::url_pattern("https://example.com/((?:a+)+)b", &hub()).unwrap();
        let topic = format!("https://example.com/{}c", "a".repeat(2000));
        let started = std::time::Instant::now();
        assert!(!s.matches(&topic));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn legacy_topic_selectors() {
        let s = Selector::legacy_topic("https://example.com/books/{id}").unwrap();
        assert!(s.matches("https://example.com/books/1"));
        assert!(
            s.matches("https://example.com/books/{id}"),
            "-07 step 2: identical strings"
        );
        assert!(!s.matches("https://example.com/books/1/2"));
        assert_eq!(s.as_exact(), None);
        assert_eq!(s.matcher_type(), MatcherType::UriTemplate);

        let plain = Selector::legacy_topic("https://example.com/books/1").unwrap();
        assert_eq!(plain.as_exact(), Some("https://example.com/books/1"));
        assert!(plain.matches("https://example.com/books/1"));
        assert!(!plain.matches("https://example.com/books/2"));

        let broken = Selector::legacy_topic("https://example.com/{a b}").unwrap();
        assert_eq!(broken.as_exact(), Some("https://example.com/{a b}"));
        assert!(broken.matches("https://example.com/{a b}"));
        assert!(!broken.matches("https://example.com/x"));

        let query = Selector::legacy_topic("https://example.com/users/foo/{?topic}").unwrap();
        assert!(
            query.matches(
                "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1"
            )
        );
    }

    #[test]
    fn value_limits() {
        let hub = hub();
        for t in [
            MatcherType::Exact,
            MatcherType::UrlPattern,
            MatcherType::UriTemplate,
        ] {
            assert_eq!(
                Selector::parse(t, "", &hub).unwrap_err(),
                SelectorError::Empty
            );
            let long = format!("https://example.com/{}", "a".repeat(MAX_MATCHER_LEN));
            assert_eq!(
                Selector::parse(t, &long, &hub).unwrap_err(),
                SelectorError::TooLong {
                    len: long.len(),
                    max: MAX_MATCHER_LEN
                }
            );
            let err = Selector::parse(t, "https://example.com/\u{200B}", &hub).unwrap_err();
            assert!(
                matches!(err, SelectorError::InvalidCharacter(_)),
                "{t}: {err:?}"
            );
            assert_eq!(
                Selector::parse(t, "a\nb", &hub).unwrap_err().to_string(),
                "matcher contains a control character (U+000A) at byte 1"
            );
        }
        let max = format!("https://example.com/{}", "a".repeat(MAX_MATCHER_LEN - 20));
        assert!(Selector::exact(&max).is_ok());
    }

    #[test]
    fn equality_is_type_and_raw() {
        let hub = hub();
        let a = Selector::exact("https://example.com/x").unwrap();
        let b = Selector::exact("https://example.com/x").unwrap();
        let c = Selector::url_pattern("https://example.com/x", &hub).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.clone(), a);
    }
}
