//! [`Error`]: why a client stopped, or why a request failed.

use std::error::Error as StdError;
use std::io;

use http::StatusCode;

/// A boxed transport error (hyper, rustls or I/O), kept whole so callers can walk its chain.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why an [`EventSource`](crate::EventSource) stopped for good, or why a
/// [`Publisher`](crate::Publisher) request failed.
///
/// An [`EventSource`](crate::EventSource) yields at most one `Err`, and it is always its last
/// item: errors it can recover from (network errors, 5xx, 408, 429) are retried silently, and
/// surface only when retrying is switched off
/// ([`Builder::retry_initial_connection`](crate::Builder::retry_initial_connection)).
///
/// ```
/// use herald_client::{Error, StatusCode};
///
/// let error = Error::Status { status: StatusCode::FORBIDDEN, body_snippet: "no such grant".into() };
/// assert_eq!(error.to_string(), "the server answered 403 Forbidden: no such grant");
/// assert!(!error.is_retryable());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL given to a builder could not be parsed or is not `http`/`https`.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header given to a builder is not a valid HTTP header name or value.
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A root certificate given to a builder is not valid PEM, or rustls refused it.
    #[error("invalid root certificate: {0}")]
    RootCertificate(String),
    /// The connection could not be made or broke before a response arrived: refused, reset,
    /// DNS failure, TLS failure. See [`Error::io_kind`] for the underlying I/O error.
    #[error("cannot reach {url}: {}", chain(.source))]
    Connect {
        /// The URL that was being requested.
        url: String,
        /// What went wrong, as reported by hyper, rustls or the OS.
        #[source]
        source: BoxError,
    },
    /// The server's TLS certificate was refused (unknown issuer, wrong name, expired). Not
    /// retried: the next attempt would be refused the same way.
    #[error("TLS certificate of {url} refused: {}", chain(.source))]
    Tls {
        /// The URL that was being requested.
        url: String,
        /// The rustls error.
        #[source]
        source: BoxError,
    },
    /// No response (or, with an idle timeout, no byte of the stream) within the configured
    /// time.
    #[error("{url} did not answer within {timeout:?}")]
    Timeout {
        /// The URL that was being requested.
        url: String,
        /// The time limit that passed.
        timeout: std::time::Duration,
    },
    /// The server answered with a status that is not a success: for an event stream, any
    /// status but 200, 204 and redirects; for a publish, anything but 200.
    #[error("the server answered {status}: {body_snippet}")]
    Status {
        /// The status code.
        status: StatusCode,
        /// The start of the response body (at most 512 bytes, decoded lossily, trimmed): the
        /// reason a Herald or Mercure hub gives in text/plain.
        body_snippet: String,
    },
    /// The server answered 200 but not with `Content-Type: text/event-stream`.
    #[error("the server answered with Content-Type {}, not text/event-stream", .0.as_deref().unwrap_or("(none)"))]
    ContentType(
        /// The Content-Type received, if any.
        Option<String>,
    ),
    /// A redirect could not be followed.
    #[error(transparent)]
    Redirect(#[from] RedirectError),
    /// The event stream broke a limit of the parser (a line or an event too large). The
    /// connection is dropped rather than losing the event silently; raise the limits with
    /// [`Builder::limits`](crate::Builder::limits) if the server is right to send it.
    #[error("the event stream was refused: {0}")]
    Stream(#[from] herald_wire::ParseError),
    /// Reading a response body failed.
    #[error("reading the response from {url} failed: {}", chain(.source))]
    Body {
        /// The URL that was being requested.
        url: String,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// The publish form or the response was not what Herald expects.
    #[error("{0}")]
    Protocol(String),
}

/// Why a redirect could not be followed.
///
/// ```
/// use herald_client::RedirectError;
///
/// assert_eq!(RedirectError::TooMany { limit: 10 }.to_string(), "more than 10 redirects");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// More redirects in a row than [`Builder::max_redirects`](crate::Builder::max_redirects).
    #[error("more than {limit} redirects")]
    TooMany {
        /// The limit.
        limit: u32,
    },
    /// A redirect status without a `Location` header.
    #[error("redirect {status} without a Location header")]
    MissingLocation {
        /// The redirect status.
        status: StatusCode,
    },
    /// A `Location` that is not a valid URL, or not `http`/`https`.
    #[error("redirect to an invalid location {location:?}")]
    InvalidLocation {
        /// The `Location` header as received (lossily decoded).
        location: String,
    },
}

impl Error {
    /// Whether the [`EventSource`](crate::EventSource) retries after this error: network
    /// errors, timeouts and the statuses 408, 429 and 5xx. Everything else (4xx, a wrong
    /// content type, redirect trouble, a refused certificate, a broken stream) would fail the
    /// same way again, so it stops the stream.
    ///
    /// ```
    /// use herald_client::{Error, StatusCode};
    ///
    /// let status = |status| Error::Status { status, body_snippet: String::new() };
    /// assert!(status(StatusCode::SERVICE_UNAVAILABLE).is_retryable());
    /// assert!(status(StatusCode::TOO_MANY_REQUESTS).is_retryable());
    /// assert!(!status(StatusCode::UNAUTHORIZED).is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Timeout { .. } | Error::Body { .. } => true,
            Error::Status { status, .. } => retryable_status(*status),
            _ => false,
        }
    }

    /// The kind of the I/O error underneath a transport error, if there is one: lets a caller
    /// tell "connection refused" from a DNS failure or a reset.
    ///
    /// ```
    /// use herald_client::Error;
    ///
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let error = Error::Connect { url: "http://127.0.0.1:1/".into(), source: refused.into() };
    /// assert_eq!(error.io_kind(), Some(std::io::ErrorKind::ConnectionRefused));
    /// ```
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        let mut next: Option<&(dyn StdError + 'static)> = Some(self);
        while let Some(error) = next {
            if let Some(io) = error.downcast_ref::<io::Error>() {
                // An io::Error wrapping another error reports that error's kind as `Other`;
                // the wrapped error may be more precise, but the kind here is what we have.
                return Some(io.kind());
            }
            next = error.source();
        }
        None
    }
}

/// The statuses worth retrying: the server is overloaded, restarting or asked us to wait.
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Formats an error and its sources as `outer: inner: innermost`, skipping a source whose text
/// is already part of the previous one (hyper repeats itself).
fn chain(error: &BoxError) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let part = source.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = source.source();
    }
    text
}
