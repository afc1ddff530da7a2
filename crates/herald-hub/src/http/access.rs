//! Request ids and the access log: every request runs in a `request` span carrying its id,
//! answers with an `x-request-id` header, and leaves one info line when its response head is
//! ready (for a subscription that is when the stream starts, not when it ends).
//!
//! Security: the log line holds the method, the path *without* its query (a legacy client
//! may carry its token in `?authorization=`), the status and the duration. Headers are never
//! logged: `Authorization` and `Cookie` carry tokens.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::HeaderValue;
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use hyper::body::Incoming;
use tokio::time::Instant;
use tracing::{Instrument, Span};

use crate::http::{HubBody, handle};
use crate::hub::Hub;

/// The request id header, read from the client (or a proxy in front) and always answered.
pub const X_REQUEST_ID: &str = "x-request-id";

/// Longest incoming request id that is kept; longer ones are replaced by a generated id.
const MAX_INCOMING_ID: usize = 64;

/// Runs [`handle`] inside a request span, then adds `x-request-id` and logs the request.
pub(crate) async fn traced(hub: Hub, request: Request<Incoming>) -> Response<HubBody> {
    let log = RequestLog::start(
        request.method(),
        request.uri(),
        request.version(),
        request.headers(),
    );
    let mut response = handle(hub, request).instrument(log.span.clone()).await;
    log.finish(&mut response);
    response
}

/// One request's id, span and start time, from its head until its response head is ready.
/// Both the hyper path ([`traced`]) and the lean subscribe path use it, so every request
/// gets the same id header and log line whichever path serves it.
pub(crate) struct RequestLog {
    started: Instant,
    id: HeaderValue,
    method: Method,
    path: String,
    version: Version,
    /// The `request` span the handler runs in.
    pub(crate) span: Span,
}

impl RequestLog {
    /// Opens the span of a request with this head.
    pub(crate) fn start(method: &Method, uri: &Uri, version: Version, headers: &HeaderMap) -> Self {
        let id = request_id(headers);
        let span = tracing::info_span!("request", id = %id.to_str().unwrap_or_default());
        Self {
            started: Instant::now(),
            id,
            method: method.clone(),
            path: uri.path().to_owned(),
            version,
            span,
        }
    }

    /// Adds `x-request-id` to the response and writes the access log line.
    pub(crate) fn finish<B>(self, response: &mut Response<B>) {
        let status = response.status().as_u16();
        response.headers_mut().insert(X_REQUEST_ID, self.id);
        self.span.in_scope(|| {
            tracing::info!(
                method = %self.method,
                path = %self.path,
                version = ?self.version,
                status,
                duration_us = self.started.elapsed().as_micros() as u64,
                "request"
            );
        });
    }
}

/// The client's `x-request-id` when it is short and printable ASCII, else a generated one.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(incoming) = headers.get(X_REQUEST_ID) {
        let bytes = incoming.as_bytes();
        if !bytes.is_empty()
            && bytes.len() <= MAX_INCOMING_ID
            && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
        {
            return incoming.clone();
        }
    }
    generated_id()
}

/// A random per-process prefix and a counter: unique, cheap, and no syscall per request.
fn generated_id() -> HeaderValue {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{prefix}-{n}")).unwrap_or(HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_ids_are_kept_only_when_short_and_printable() {
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers), "abc-123");
        headers.insert(X_REQUEST_ID, HeaderValue::from_static("has space"));
        assert_ne!(request_id(&headers), "has space");
        headers.insert(
            X_REQUEST_ID,
            HeaderValue::from_str(&"x".repeat(65)).unwrap(),
        );
        assert!(request_id(&headers).len() <= MAX_INCOMING_ID);
        let one = request_id(&HeaderMap::new());
        let two = request_id(&HeaderMap::new());
        assert_ne!(one, two);
    }
}
