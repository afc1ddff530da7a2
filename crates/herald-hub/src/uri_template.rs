//! RFC 6570 URI template *matching*, for the legacy (-07) `topic=` selectors.
//!
//! A URI matches a template when some assignment of values to the template's variables expands
//! to exactly that URI. [`UriTemplate::parse`] compiles a template (levels 1–4: every operator,
//! several variables per expression, the `*` explode and `:n` prefix modifiers) to one anchored
//! [`regex::Regex`]. The `regex` crate guarantees matching in time linear in the input, so a
//! hostile template cannot make matching slow. Compiling is bounded too, because templates come
//! from subscribe requests: at most [`MAX_VARIABLES`] variables,
//! [`MAX_VARIABLES_PER_EXPRESSION`] per expression, prefixes up to [`MAX_PREFIX`], and a
//! compiled size under [`MAX_COMPILED_SIZE`].
//!
//! Matching is on the raw string, as -07 prescribes: no normalization. One leniency: besides
//! the characters RFC 6570 expansion produces (unreserved, reserved for `+` and `#`, and
//! percent-encoded octets), variable values may contain non-ASCII characters, because Mercure
//! topics are IRIs (RFC 3987) and an IRI spells those characters unencoded.

use std::fmt::Write as _;

/// Most variables accepted in one `{...}` expression.
///
/// Matching every subset of defined variables in order needs a pattern quadratic in their
/// number; real templates use one to three.
pub const MAX_VARIABLES_PER_EXPRESSION: usize = 8;

/// Most variables accepted in a whole template, so compiling one stays cheap (templates arrive
/// in subscribe requests, before any authorization).
pub const MAX_VARIABLES: usize = 32;

/// Most characters all the prefix modifiers of a template may add up to (`{var:64}` uses 64).
///
/// RFC 6570 allows up to 9999 per variable, but a prefix compiles to a bounded repetition that
/// the regex unrolls (about 2 KiB of compiled program per character); refusing long ones keeps
/// matching exact instead of silently widening it.
pub const MAX_PREFIX: usize = 128;

/// Cap on the compiled regex (the `regex` crate's size limit), so a long template with many
/// expressions cannot take much memory or compile time.
pub const MAX_COMPILED_SIZE: usize = 1 << 20;

/// Why a string is not a valid URI template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` without its `}`.
    #[error("unclosed expression starting at byte {at}")]
    Unclosed {
        /// Byte offset of the `{`.
        at: usize,
    },
    /// A `}` outside any expression.
    #[error("unmatched `}}` at byte {at}")]
    UnmatchedClose {
        /// Byte offset of the `}`.
        at: usize,
    },
    /// A character not allowed in a template literal (space, `"`, `<`, `%` not followed by two
    /// hex digits, ...).
    #[error("character {ch:?} at byte {at} is not allowed outside an expression")]
    InvalidLiteral {
        /// The character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
    /// An expression that is not a valid operator and variable list.
    #[error("invalid expression at byte {at}: {reason}")]
    InvalidExpression {
        /// Byte offset of the expression's `{`.
        at: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More than [`MAX_VARIABLES_PER_EXPRESSION`] variables in one expression, or more than
    /// [`MAX_VARIABLES`] in the template.
    #[error(
        "too many variables at byte {at} (limits: {MAX_VARIABLES_PER_EXPRESSION} per expression, {MAX_VARIABLES} in all)"
    )]
    TooManyVariables {
        /// Byte offset of the expression's `{`.
        at: usize,
    },
    /// Prefix modifiers adding up to more than [`MAX_PREFIX`] characters.
    #[error("prefix lengths add up to more than {MAX_PREFIX} at byte {at}")]
    PrefixTooLong {
        /// Byte offset of the expression whose prefix went over the limit.
        at: usize,
    },
    /// The compiled matcher would exceed [`MAX_COMPILED_SIZE`].
    #[error("template is too complex to match")]
    TooComplex,
}

/// A compiled URI template that tells whether a URI is one of its expansions.
///
/// ```
/// # use herald_hub::uri_template::UriTemplate;
/// let template = UriTemplate::parse("https://example.com/books/{id}{?lang}").unwrap();
/// assert!(template.is_match("https://example.com/books/42"));
/// assert!(template.is_match("https://example.com/books/42?lang=fr"));
/// assert!(!template.is_match("https://example.com/books/42/chapters/1"));
/// ```
#[derive(Debug, Clone)]
pub struct UriTemplate {
    regex: regex::Regex,
}

impl UriTemplate {
    /// Compiles `template`.
    ///
    /// # Errors
    /// [`TemplateError`] when `template` is not a valid RFC 6570 template or is too complex.
    pub fn parse(template: &str) -> Result<UriTemplate, TemplateError> {
        let mut pattern = String::with_capacity(template.len() * 4 + 8);
        pattern.push_str(r"\A");
        let mut rest = template;
        let mut offset = 0;
        let mut budget = Budget {
            variables: 0,
            prefix: 0,
        };
        while !rest.is_empty() {
            let literal_end = rest.find(['{', '}']).unwrap_or(rest.len());
            push_literal(&mut pattern, &rest[..literal_end], offset)?;
            offset += literal_end;
            rest = &rest[literal_end..];
            match rest.as_bytes().first() {
                None => break,
                Some(b'}') => return Err(TemplateError::UnmatchedClose { at: offset }),
                Some(_) => {
                    let close = rest
                        .find('}')
                        .ok_or(TemplateError::Unclosed { at: offset })?;
                    push_expression(&mut pattern, &rest[1..close], offset, &mut budget)?;
                    offset += close + 1;
                    rest = &rest[close + 1..];
                }
            }
        }
        pattern.push_str(r"\z");
        let regex = regex::RegexBuilder::new(&pattern)
            .size_limit(MAX_COMPILED_SIZE)
            // The lazy DFA cache lives as long as the selector; thousands of subscriptions
            // must not each hold the default 2 MiB.
            .dfa_size_limit(64 * 1024)
            .build()
            .map_err(|_| TemplateError::TooComplex)?;
        Ok(UriTemplate { regex })
    }

    /// Tells whether `uri` is an expansion of this template. Runs in time linear in `uri`.
    pub fn is_match(&self, uri: &str) -> bool {
        self.regex.is_match(uri)
    }
}

/// Appends a literal part, checking it against RFC 6570 §2.1 `literals`.
fn push_literal(pattern: &mut String, literal: &str, offset: usize) -> Result<(), TemplateError> {
    let bytes = literal.as_bytes();
    for (at, ch) in literal.char_indices() {
        let allowed = match ch {
            '%' => {
                let hex = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_hexdigit);
                hex(at + 1) && hex(at + 2)
            }
            // CTL, SP, DQUOTE, "'", "<", ">", "\", "^", "`", "{", "|", "}" are excluded.
            '\0'..=' ' | '"' | '\'' | '<' | '>' | '\\' | '^' | '`' | '|' | '\u{7F}' => false,
            c if c.is_ascii() => true,
            // ucschar and iprivate: every non-ASCII scalar except the non-characters
            // U+xFFFE / U+xFFFF; controls and format characters are refused earlier by the
            // topic rules.
            c => (c as u32) & 0xFFFE != 0xFFFE,
        };
        if !allowed {
            return Err(TemplateError::InvalidLiteral {
                ch,
                at: offset + at,
            });
        }
    }
    pattern.push_str(&regex::escape(literal));
    Ok(())
}

/// One RFC 6570 operator's expansion rules (RFC 6570 Appendix A).
struct Operator {
    /// Emitted before the first defined variable.
    first: &'static str,
    /// Emitted between defined variables (and between exploded items).
    sep: &'static str,
    /// Whether each variable is emitted as `name=value`.
    named: bool,
    /// For named operators: whether an empty value still gets `=` (`?x=` but `;x`).
    empty_gets_equals: bool,
    /// Whether reserved characters pass through unencoded (`+` and `#`).
    allow_reserved: bool,
}

const fn operator(
    first: &'static str,
    sep: &'static str,
    named: bool,
    empty_gets_equals: bool,
    allow_reserved: bool,
) -> Operator {
    Operator {
        first,
        sep,
        named,
        empty_gets_equals,
        allow_reserved,
    }
}

/// One character of an expanded value: unreserved, (optionally) reserved, a percent-encoded
/// octet, or a non-ASCII IRI character.
const UNRESERVED_CHAR: &str = r"(?:[A-Za-z0-9\-._~\x{A0}-\x{10FFFF}]|%[0-9A-Fa-f]{2})";
const RESERVED_CHAR: &str =
    r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=\x{A0}-\x{10FFFF}]|%[0-9A-Fa-f]{2})";
/// One *character* of the unencoded value, for prefix modifiers: a prefix counts characters,
/// and one character encodes to up to four octets.
const UNRESERVED_PREFIX_CHAR: &str =
    r"(?:[A-Za-z0-9\-._~\x{A0}-\x{10FFFF}]|(?:%[0-9A-Fa-f]{2}){1,4})";
const RESERVED_PREFIX_CHAR: &str =
    r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=\x{A0}-\x{10FFFF}]|(?:%[0-9A-Fa-f]{2}){1,4})";

/// A parsed varspec: name and modifier.
struct VarSpec<'a> {
    name: &'a str,
    explode: bool,
    prefix: Option<u16>,
}

/// What a template has used of its limits so far.
struct Budget {
    variables: usize,
    prefix: usize,
}

/// Appends one expression's pattern.
fn push_expression(
    pattern: &mut String,
    body: &str,
    at: usize,
    budget: &mut Budget,
) -> Result<(), TemplateError> {
    let invalid = |reason| TemplateError::InvalidExpression { at, reason };
    let (op, list) = match body.as_bytes().first() {
        None => return Err(invalid("empty expression")),
        Some(b'+') => (operator("", ",", false, false, true), &body[1..]),
        Some(b'#') => (operator("#", ",", false, false, true), &body[1..]),
        Some(b'.') => (operator(".", ".", false, false, false), &body[1..]),
        Some(b'/') => (operator("/", "/", false, false, false), &body[1..]),
        Some(b';') => (operator(";", ";", true, false, false), &body[1..]),
        Some(b'?') => (operator("?", "&", true, true, false), &body[1..]),
        Some(b'&') => (operator("&", "&", true, true, false), &body[1..]),
        Some(b'=' | b',' | b'!' | b'@' | b'|') => {
            return Err(invalid("operator reserved for future extensions"));
        }
        Some(_) => (operator("", ",", false, false, false), body),
    };
    let mut vars = Vec::new();
    for spec in list.split(',') {
        budget.variables += 1;
        if vars.len() == MAX_VARIABLES_PER_EXPRESSION || budget.variables > MAX_VARIABLES {
            return Err(TemplateError::TooManyVariables { at });
        }
        let var = parse_varspec(spec).map_err(invalid)?;
        budget.prefix += usize::from(var.prefix.unwrap_or(0));
        if budget.prefix > MAX_PREFIX {
            return Err(TemplateError::PrefixTooLong { at });
        }
        vars.push(var);
    }

    // The expansion is `first` followed by the defined variables, in order, joined by `sep`;
    // any of them may be undefined, and when all are the expression expands to nothing. So:
    // (?: first (?: v1 (?:sep v2)? (?:sep v3)? | v2 (?:sep v3)? | v3 ) )?
    let values: Vec<String> = vars.iter().map(|var| variable_pattern(&op, var)).collect();
    let sep = regex::escape(op.sep);
    pattern.push_str("(?:");
    pattern.push_str(&regex::escape(op.first));
    pattern.push_str("(?:");
    for start in 0..values.len() {
        if start > 0 {
            pattern.push('|');
        }
        pattern.push_str(&values[start]);
        for value in &values[start + 1..] {
            let _ = write!(pattern, "(?:{sep}{value})?");
        }
    }
    pattern.push_str("))?");
    Ok(())
}

fn parse_varspec(spec: &str) -> Result<VarSpec<'_>, &'static str> {
    let (name, explode, prefix) = if let Some(name) = spec.strip_suffix('*') {
        (name, true, None)
    } else if let Some((name, digits)) = spec.split_once(':') {
        // max-length = %x31-39 0*3DIGIT: 1 to 9999, no leading zero.
        let valid = (1..=4).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !valid {
            return Err("a prefix length must be a number from 1 to 9999");
        }
        (name, false, digits.parse::<u16>().ok())
    } else {
        (spec, false, None)
    };
    if !is_varname(name) {
        return Err("a variable name must be letters, digits, `_`, `%XX` and inner dots");
    }
    Ok(VarSpec {
        name,
        explode,
        prefix,
    })
}

/// RFC 6570 §2.3: `varname = varchar *( ["."] varchar )`, `varchar = ALPHA / DIGIT / "_" /
/// pct-encoded`.
fn is_varname(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes[0] == b'.' || bytes[bytes.len() - 1] == b'.' {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' if bytes[i - 1] == b'.' => return false,
            b'.' | b'_' => i += 1,
            b if b.is_ascii_alphanumeric() => i += 1,
            b'%' if bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit) =>
            {
                i += 3;
            }
            _ => return false,
        }
    }
    true
}

/// The pattern of one defined variable's expansion (without the operator's `first`).
fn variable_pattern(op: &Operator, var: &VarSpec<'_>) -> String {
    let ch = if op.allow_reserved {
        RESERVED_CHAR
    } else {
        UNRESERVED_CHAR
    };
    let sep = regex::escape(op.sep);
    // A string, or a list / associative array joined by commas (non-exploded composite values
    // are comma-joined, RFC 6570 §3.2.1).
    let joined = format!("{ch}*(?:,{ch}*)*");
    let value = match var.prefix {
        Some(n) => {
            let prefix_ch = if op.allow_reserved {
                RESERVED_PREFIX_CHAR
            } else {
                UNRESERVED_PREFIX_CHAR
            };
            format!("{prefix_ch}{{0,{n}}}")
        }
        None => joined,
    };
    let name = regex::escape(var.name);
    match (op.named, var.explode) {
        (false, false) => value,
        // Exploded list items or `key=value` pairs of an associative array, joined by `sep`.
        (false, true) => format!("{ch}*(?:={ch}*)?(?:{sep}{ch}*(?:={ch}*)?)*"),
        (true, false) if op.empty_gets_equals => format!("{name}={value}"),
        (true, false) => format!("{name}(?:={value})?"),
        // Exploded named values: `name=item` per list item, or `key=value` per pair of an
        // associative array, whose keys are arbitrary; `;` drops `=` for empty values.
        (true, true) => {
            let eq = if op.empty_gets_equals { "=" } else { "(?:=" };
            let close = if op.empty_gets_equals { "" } else { ")?" };
            let item = format!("{ch}+{eq}{ch}*{close}");
            format!("{item}(?:{sep}{item})*")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (template, URIs that match, URIs that do not)
    const CASES: &[(&str, &[&str], &[&str])] = &[
        (
            "https://example.com/books/{id}",
            &[
                "https://example.com/books/1",
                "https://example.com/books/",
                "https://example.com/books/a-b_c.d~e",
                "https://example.com/books/caf%C3%A9",
                "https://example.com/books/caf\u{E9}",
                "https://example.com/books/1,2,3",
            ],
            &[
                "https://example.com/books/1/2",
                "https://example.com/books/1?x=y",
                "https://example.com/books/1#f",
                "https://example.com/books/%zz",
                "https://example.com/books/a b",
                "https://example.com/book/1",
                "https://example.com/books",
                "xhttps://example.com/books/1",
                "https://example.com/books/1\n",
            ],
        ),
        (
            "https://example.com/{+path}",
            &[
                "https://example.com/a/b/c",
                "https://example.com/a/b?c=d#e",
                "https://example.com/",
            ],
            &["https://example.com/a b", "https://example.org/a"],
        ),
        (
            "https://example.com/users/foo/{?topic}",
            &[
                "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
                "https://example.com/users/foo/?topic=",
                "https://example.com/users/foo/",
            ],
            &[
                "https://example.com/users/foo/?topic=https://example.com/books/1",
                "https://example.com/users/foo/?other=1",
                "https://example.com/users/foo/?topic=1&other=2",
                "https://example.com/users/bar/?topic=1",
            ],
        ),
        (
            "/search{?q,lang}",
            &[
                "/search",
                "/search?q=cat",
                "/search?lang=fr",
                "/search?q=cat&lang=fr",
            ],
            &["/search?lang=fr&q=cat", "/search?", "/search?q=cat&q=dog"],
        ),
        (
            "/items{&page}",
            &["/items", "/items&page=2"],
            &["/items?page=2"],
        ),
        (
            "/doc{#frag}",
            &["/doc", "/doc#intro", "/doc#a/b,c"],
            &["/doc#a b", "/doc/x"],
        ),
        (
            "/files{/seg}",
            &["/files", "/files/a"],
            &["/files/a/b", "/filesa"],
        ),
        (
            "/files{/path*}",
            &["/files", "/files/a", "/files/a/b/c"],
            &["/files//a b"],
        ),
        (
            "/file{.ext}",
            // `.` is unreserved, so a value may contain it: ext = "tar.gz".
            &["/file", "/file.txt", "/file.tar.gz"],
            &["/file/txt", "/filetxt"],
        ),
        ("/file{.ext*}", &["/file.tar.gz"], &["/file/tar"]),
        (
            "/map{;x,y}",
            &["/map", "/map;x=1", "/map;y", "/map;x=1;y=2", "/map;x;y=2"],
            &["/map;y=2;x=1", "/map;z=1"],
        ),
        (
            "/list{?ids*}",
            &["/list", "/list?ids=1", "/list?ids=1&ids=2", "/list?a=1&b=2"],
            &["/list?=1", "/list?ids"],
        ),
        ("{x,y}", &["", "1", "1,2", "a,b,c"], &["/", "a/b"]),
        (
            "/v{/a,b}{?c}",
            &["/v", "/v/1", "/v/1/2", "/v/2?c=3", "/v/1/2?c=3"],
            &["/v/1/2/3", "/v?d=1"],
        ),
        (
            "/p/{id:3}",
            &["/p/", "/p/a", "/p/abc", "/p/%C3%A9%C3%A9x"],
            &["/p/abcd"],
        ),
        ("/d{.dom*}{/d.x}", &["/d.a.b/c", "/d"], &["/d.a/b/c"]),
        (
            "https://example.com/%7Euser/{id}",
            &["https://example.com/%7Euser/1"],
            &["https://example.com/~user/1"],
        ),
        (
            "https://example.com/a.b*c+d(e)/{id}",
            &["https://example.com/a.b*c+d(e)/1"],
            &[
                "https://example.com/aXb*c+d(e)/1",
                "https://example.com/a.bbbc+d(e)/1",
            ],
        ),
        (
            "no-expression",
            &["no-expression"],
            &["no-expressio", "no-expressionx"],
        ),
    ];

    #[test]
    fn matching_table() {
        for (template, matching, not_matching) in CASES {
            let compiled = UriTemplate::parse(template)
                .unwrap_or_else(|e| panic!("{template:?} should parse: {e}"));
            for uri in *matching {
                assert!(compiled.is_match(uri), "{template:?} should match {uri:?}");
            }
            for uri in *not_matching {
                assert!(
                    !compiled.is_match(uri),
                    "{template:?} should not match {uri:?}"
                );
            }
        }
    }

    #[test]
    fn invalid_templates() {
        for (template, expected) in [
            ("https://x/{id", TemplateError::Unclosed { at: 10 }),
            ("https://x/id}", TemplateError::UnmatchedClose { at: 12 }),
            (
                "a{}",
                TemplateError::InvalidExpression {
                    at: 1,
                    reason: "empty expression",
                },
            ),
            (
                "{a b}",
                TemplateError::InvalidExpression {
                    at: 0,
                    reason: "a variable name must be letters, digits, `_`, `%XX` and inner dots",
                },
            ),
            (
                "{=a}",
                TemplateError::InvalidExpression {
                    at: 0,
                    reason: "operator reserved for future extensions",
                },
            ),
            (
                "{a:0}",
                TemplateError::InvalidExpression {
                    at: 0,
                    reason: "a prefix length must be a number from 1 to 9999",
                },
            ),
            (
                "{a:10000}",
                TemplateError::InvalidExpression {
                    at: 0,
                    reason: "a prefix length must be a number from 1 to 9999",
                },
            ),
            ("a b{x}", TemplateError::InvalidLiteral { ch: ' ', at: 1 }),
            ("%zz{x}", TemplateError::InvalidLiteral { ch: '%', at: 0 }),
            ("a<{x}", TemplateError::InvalidLiteral { ch: '<', at: 1 }),
        ] {
            assert_eq!(
                UriTemplate::parse(template).unwrap_err(),
                expected,
                "{template:?}"
            );
        }
        for template in ["{a,}", "{.a.}", "{a..b}", "{a*b}", "{{a}}", "{a{b}"] {
            assert!(UriTemplate::parse(template).is_err(), "{template:?}");
        }
        let many = format!("{{{}}}", ["v"; MAX_VARIABLES_PER_EXPRESSION + 1].join(","));
        assert_eq!(
            UriTemplate::parse(&many).unwrap_err(),
            TemplateError::TooManyVariables { at: 0 }
        );
    }

    #[test]
    fn valid_varnames() {
        for template in ["{a.b}", "{a_1}", "{%41}", "{A9:128}", "{x*}", "{?x,y*,z:2}"] {
            assert!(UriTemplate::parse(template).is_ok(), "{template:?}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(
            UriTemplate::parse("{x:129}").unwrap_err(),
            TemplateError::PrefixTooLong { at: 0 }
        );
        assert_eq!(
            UriTemplate::parse("/{x:100}/{y:29}").unwrap_err(),
            TemplateError::PrefixTooLong { at: 9 }
        );
        assert!(UriTemplate::parse("{x:9999}").is_err());
        let expr = format!("{{{}}}", ["v"; MAX_VARIABLES_PER_EXPRESSION].join(","));
        let too_many = expr.repeat(MAX_VARIABLES / MAX_VARIABLES_PER_EXPRESSION + 1);
        assert!(matches!(
            UriTemplate::parse(&too_many),
            Err(TemplateError::TooManyVariables { .. })
        ));
    }

    #[test]
    fn worst_cases_compile() {
        // The most expensive templates the limits allow still compile (and quickly: see the
        // timing printed with --nocapture).
        let full = format!("{{{}}}", ["v"; MAX_VARIABLES_PER_EXPRESSION].join(","))
            .repeat(MAX_VARIABLES / MAX_VARIABLES_PER_EXPRESSION);
        let reserved = format!("{{+{}}}", ["v"; MAX_VARIABLES_PER_EXPRESSION].join(","))
            .repeat(MAX_VARIABLES / MAX_VARIABLES_PER_EXPRESSION);
        let prefixes = format!("{{+v:{}}}", MAX_PREFIX / 4).repeat(4);
        let exploded = "{?v*}".repeat(MAX_VARIABLES);
        for template in [full, reserved, prefixes, exploded] {
            let started = std::time::Instant::now();
            let compiled = UriTemplate::parse(&template).expect("within limits");
            assert!(compiled.is_match(""));
            println!("{} bytes: {:?}", template.len(), started.elapsed());
        }
    }
}
