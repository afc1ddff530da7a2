//! CORS: an explicit origin allowlist with credentials.
//!
//! Security: with credentials (the token cookie), `Access-Control-Allow-Origin` must never be
//! `*` nor reflect an arbitrary origin, or any site a user visits could read their private
//! updates. Only origins in the allowlist are echoed back. A configured `*` allows every
//! origin *without* credentials.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::config::HubConfig;
use crate::http::response::{HubBody, empty};

/// Response headers a page may read: the resume cursor and the discovery link.
const EXPOSED: &str = "Link, Mercure-Last-Event-ID, Last-Event-ID, Content-Type";
/// Request headers a page may send; `Last-Event-ID` is what a reconnecting `EventSource`
/// polyfill sends, `Authorization` carries a token from `fetch()`.
const ALLOWED_HEADERS: &str = "Authorization, Last-Event-ID, Content-Type, Cache-Control";

enum Allowed {
    Origin(HeaderValue),
    Any,
}

fn allowed(config: &HubConfig, origin: Option<&HeaderValue>) -> Option<Allowed> {
    let origin = origin?;
    let origin_text = origin.to_str().ok()?;
    if config
        .cors_origins
        .iter()
        .any(|allowed| allowed == origin_text)
    {
        Some(Allowed::Origin(origin.clone()))
    } else if config.cors_origins.iter().any(|allowed| allowed == "*") {
        Some(Allowed::Any)
    } else {
        None
    }
}

/// Adds the CORS headers to `response` when the request's origin is allowed.
pub(crate) fn apply(
    config: &HubConfig,
    origin: Option<&HeaderValue>,
    response: &mut Response<HubBody>,
) {
    let headers = response.headers_mut();
    if !config.cors_origins.is_empty() {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    match allowed(config, origin) {
        Some(Allowed::Origin(origin)) => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        Some(Allowed::Any) => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        None => return,
    }
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
}

/// Answers a preflight (`OPTIONS`) request.
pub(crate) fn preflight(config: &HubConfig, origin: Option<&HeaderValue>) -> Response<HubBody> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    if allowed(config, origin).is_some() {
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    apply(config, origin, &mut response);
    response
}
