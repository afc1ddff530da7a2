//! Response builders shared by the handlers: plain-text errors and RFC 6750 challenges.
//!
//! Every refusal says why in a one-line `text/plain` body, so a developer using curl sees
//! the reason at once. Token failures also carry the `WWW-Authenticate: Bearer` challenge
//! the protocol requires, with the error code as an auth-param.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};

use crate::hub::Hub;

/// The body type of every response the hub sends.
pub type HubBody = UnsyncBoxBody<Bytes, Infallible>;

/// A body holding `bytes`.
pub(crate) fn full(bytes: impl Into<Bytes>) -> HubBody {
    Full::new(bytes.into()).boxed_unsync()
}

/// An empty body.
pub(crate) fn empty() -> HubBody {
    Empty::new().boxed_unsync()
}

/// `status` with `message` as a one-line plain-text body (newline-terminated for terminals).
pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response<HubBody> {
    let mut message = message.into();
    message.push('\n');
    plain(status, message)
}

/// `status` with `body` exactly as given, as UTF-8 plain text.
pub(crate) fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response<HubBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Most characters of a client's value quoted back in an error message.
const EXCERPT_CHARS: usize = 64;

/// `value` quoted for an error message, cut after [`EXCERPT_CHARS`] characters so that an
/// oversized value is named, not echoed whole.
///
/// ```text
/// "abc"                       short values whole
/// "aaaa…" (70000 bytes)       long ones cut, with their length
/// ```
pub(crate) fn excerpt(value: &str) -> String {
    match value.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
    }
}

/// JSON with `status`.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<HubBody> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The OAuth error codes of RFC 6750 §3.1 the hub uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerError {
    /// No code: no token was presented.
    Missing,
    /// The token is presented in a malformed way (400).
    InvalidRequest,
    /// The token failed validation (401).
    InvalidToken,
    /// The token is valid but does not grant the operation (403).
    InsufficientScope,
}

/// A refusal carrying a `WWW-Authenticate: Bearer` challenge.
pub(crate) fn bearer(hub: &Hub, error: BearerError, message: &str) -> Response<HubBody> {
    let (status, code) = match error {
        BearerError::Missing => (StatusCode::UNAUTHORIZED, None),
        BearerError::InvalidRequest => (StatusCode::BAD_REQUEST, Some("invalid_request")),
        BearerError::InvalidToken => (StatusCode::UNAUTHORIZED, Some("invalid_token")),
        BearerError::InsufficientScope => (StatusCode::FORBIDDEN, Some("insufficient_scope")),
    };
    let mut challenge = format!(
        "Bearer realm=\"mercure\", resource_metadata=\"{}\"",
        metadata_url(hub)
    );
    if let Some(code) = code {
        challenge.push_str(&format!(
            ", error=\"{code}\", error_description=\"{}\"",
            quotable(message)
        ));
    }
    let mut response = text(status, message);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// Where the protected resource metadata lives (RFC 9728 path derivation).
pub(crate) fn metadata_url(hub: &Hub) -> String {
    let hub_url = &hub.config().hub_url;
    let mut url = hub_url.clone();
    url.set_path(&format!(
        "/.well-known/oauth-protected-resource{}",
        hub_url.path()
    ));
    url.to_string()
}

/// Keeps an error description inside a quoted-string: printable ASCII without `"` or `\`
/// (RFC 6750 §3 restricts `error_description` to these).
fn quotable(message: &str) -> String {
    message
        .chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_long_values_on_a_character_boundary() {
        assert_eq!(excerpt("a\nb"), "\"a\\nb\"");
        let long = "é".repeat(100);
        let shown = excerpt(&long);
        assert!(
            shown.starts_with(&format!("{:?}", "é".repeat(64))),
            "{shown}"
        );
        assert!(shown.ends_with("… (200 bytes)"), "{shown}");
    }
}
