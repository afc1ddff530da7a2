//! Strict `application/x-www-form-urlencoded` parsing for publish bodies and query strings.
//!
//! Unlike lossy decoders, this refuses percent-decoded bytes that are not UTF-8: the
//! protocol requires UTF-8 names and values, and silently replacing bytes would publish or
//! subscribe to something other than what the client sent.

use std::borrow::Cow;

use percent_encoding::percent_decode;

/// Why a form could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is not valid UTF-8 after percent-decoding")]
pub struct FormError {
    /// Which name or value failed (`the name of field 3`, `the value of "topic"`).
    pub what: String,
}

/// Decodes `name=value&…` pairs in order; `+` is a space, a name without `=` has an empty
/// value, empty pairs are skipped.
///
/// ```
/// let pairs = herald_hub::http::form::parse(b"topic=a%2Fb&data=x+y&private").unwrap();
/// assert_eq!(pairs, vec![
///     ("topic".to_string(), "a/b".to_string()),
///     ("data".to_string(), "x y".to_string()),
///     ("private".to_string(), String::new()),
/// ]);
/// assert!(herald_hub::http::form::parse(b"topic=%FF").is_err());
/// ```
pub fn parse(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    Ok(pairs(input)?
        .into_iter()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect())
}

/// One decoded `name=value` pair, borrowed from the input when nothing needed decoding.
pub type Pair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// [`parse`] without copying: a name or value with nothing to decode (no `%`, no `+`) is
/// borrowed from `input`. The publish handler reads every body through this; a typical
/// publish (`topic=…&data=…`, nothing escaped) then allocates only the list of pairs.
///
/// ```
/// use std::borrow::Cow;
/// let pairs = herald_hub::http::form::pairs(b"topic=a%2Fb&data=xy").unwrap();
/// assert_eq!(pairs[0].1, "a/b");
/// assert!(matches!(pairs[1].1, Cow::Borrowed("xy")));
/// ```
///
/// # Errors
/// [`FormError`] naming the first name or value that is not UTF-8 once decoded.
pub fn pairs(input: &[u8]) -> Result<Vec<Pair<'_>>, FormError> {
    let mut pairs = Vec::new();
    for (index, pair) in input.split(|&byte| byte == b'&').enumerate() {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode(name).ok_or_else(|| FormError {
            what: format!("the name of field {}", index + 1),
        })?;
        let value = decode(value).ok_or_else(|| FormError {
            what: format!("the value of {name:?}"),
        })?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

fn decode(raw: &[u8]) -> Option<Cow<'_, str>> {
    if memchr::memchr2(b'%', b'+', raw).is_none() {
        return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    let mut bytes = Vec::with_capacity(raw.len());
    if raw.contains(&b'+') {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&byte| if byte == b'+' { b' ' } else { byte })
            .collect();
        bytes.extend(percent_decode(&spaced));
    } else {
        bytes.extend(percent_decode(raw));
    }
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_plus_stays_plus() {
        let pairs = parse(b"data=1%2B1+%3D+2").unwrap();
        assert_eq!(pairs[0].1, "1+1 = 2");
    }

    #[test]
    fn repeated_names_keep_order() {
        let pairs = parse(b"topic=a&topic=b&&topic=c").unwrap();
        let topics: Vec<_> = pairs.iter().map(|(_, value)| value.as_str()).collect();
        assert_eq!(topics, ["a", "b", "c"]);
    }

    #[test]
    fn invalid_utf8_names_the_field() {
        let error = parse(b"topic=ok&data=%C3%28").unwrap_err();
        assert_eq!(error.what, "the value of \"data\"");
    }

    #[test]
    fn value_may_contain_equals() {
        assert_eq!(parse(b"data=a=b").unwrap()[0].1, "a=b");
    }
}
