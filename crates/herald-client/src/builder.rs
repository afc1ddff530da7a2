//! [`Builder`]: how an [`EventSource`] connects and reconnects.

use std::fmt;
use std::time::Duration;

use herald_wire::{Limits, Parser};

use crate::backoff::Backoff;
use crate::error::Error;
use crate::event_source::{EventSource, Settings};
use crate::transport::{self, TransportOptions};

/// Configures an [`EventSource`]; made by [`EventSource::builder`].
///
/// Every method is infallible so calls chain; [`Builder::build`] checks everything at once.
///
/// ```
/// use std::time::Duration;
/// use herald_client::EventSource;
///
/// let events = EventSource::builder("https://hub.example/.well-known/mercure?match=/chat")
///     .bearer("eyJhbGciOi...")
///     .header("X-Request-Id", "42")
///     .last_event_id("urn:uuid:1b4e28ba")
///     .retry(Duration::from_secs(1))
///     .max_retry(Duration::from_secs(60))
///     .build()?;
/// assert_eq!(events.last_event_id(), "urn:uuid:1b4e28ba");
/// # Ok::<(), herald_client::Error>(())
/// ```
#[derive(Clone)]
pub struct Builder {
    /// The URL as given; parsed in `build`.
    url: String,
    /// Extra request headers, sent only to the URL's origin.
    headers: Vec<(String, String)>,
    /// The token for `Authorization: Bearer`, sent only to the URL's origin.
    bearer: Option<String>,
    /// The id to resume after on the first request.
    last_event_id: String,
    /// The reconnection time until the server sends `retry:`.
    retry: Duration,
    /// The cap on the exponential backoff.
    max_retry: Duration,
    /// Randomise backoff delays.
    jitter: bool,
    /// Retry when the very first connection fails.
    retry_initial_connection: bool,
    /// How many redirects in a row are followed.
    max_redirects: u32,
    /// Reconnect when the stream is silent this long.
    idle_timeout: Option<Duration>,
    /// Parser limits.
    limits: Limits,
    /// TCP/TLS/HTTP options.
    transport: TransportOptions,
}

impl fmt::Debug for Builder {
    /// Shows header names but never their values or the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Builder")
            .field("url", &self.url)
            .field("headers", &names)
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field("last_event_id", &self.last_event_id)
            .field("retry", &self.retry)
            .field("max_retry", &self.max_retry)
            .field("jitter", &self.jitter)
            .field("retry_initial_connection", &self.retry_initial_connection)
            .field("max_redirects", &self.max_redirects)
            .field("idle_timeout", &self.idle_timeout)
            .field("limits", &self.limits)
            .field("transport", &self.transport)
            .finish()
    }
}

impl Builder {
    /// A builder with the defaults: reconnect after 3 s until the server says otherwise,
    /// backoff capped at 30 s with jitter, up to 10 redirects, 30 s to connect, no idle
    /// timeout, the parser's default [`Limits`], the Mozilla root certificates.
    pub(crate) fn new(url: impl Into<String>) -> Self {
        Builder {
            url: url.into(),
            headers: Vec::new(),
            bearer: None,
            last_event_id: String::new(),
            retry: Duration::from_secs(3),
            max_retry: Duration::from_secs(30),
            jitter: true,
            retry_initial_connection: true,
            max_redirects: 10,
            idle_timeout: None,
            limits: Limits::default(),
            transport: TransportOptions::default(),
        }
    }

    /// Adds a request header (repeatable; a name given twice is sent twice). Like
    /// [`Builder::bearer`], it is sent only to the origin of the URL given to the builder,
    /// never to another origin a redirect leads to.
    ///
    /// ```
    /// let builder = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .header("Cookie", "session=abc");
    /// assert!(builder.build().is_ok());
    /// assert!(herald_client::EventSource::builder("http://127.0.0.1/")
    ///     .header("Bad Name", "x")
    ///     .build()
    ///     .is_err());
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `Authorization: Bearer <token>` (to the URL's origin only, as
    /// [`Builder::header`]).
    ///
    /// ```
    /// let builder = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .bearer("secret-token");
    /// assert!(!format!("{builder:?}").contains("secret-token"));
    /// ```
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// Resumes after this event id: the first request sends it as `Last-Event-ID`, as a
    /// reconnection would. It must not contain control characters such as CR, LF or NUL
    /// (they cannot travel in a header).
    ///
    /// ```
    /// let events = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .last_event_id("41")
    ///     .build()?;
    /// assert_eq!(events.last_event_id(), "41");
    /// # Ok::<(), herald_client::Error>(())
    /// ```
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// The reconnection time used until the stream sends a `retry:` field (default 3 s, as
    /// browsers do). It is also the floor of every backoff delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// let events = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .retry(Duration::from_millis(500))
    ///     .build()?;
    /// assert_eq!(events.retry(), Duration::from_millis(500));
    /// # Ok::<(), herald_client::Error>(())
    /// ```
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// The cap on the exponential backoff while attempts keep failing (default 30 s). The
    /// server's own `retry` is never shortened by it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .max_retry(Duration::from_secs(5));
    /// # let _ = builder;
    /// ```
    pub fn max_retry(mut self, max_retry: Duration) -> Self {
        self.max_retry = max_retry;
        self
    }

    /// Whether backoff delays are randomised (default yes: a crowd of clients cut off at once
    /// then does not come back in lockstep). Switch it off for predictable delays.
    ///
    /// ```
    /// let builder = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .jitter(false);
    /// # let _ = builder;
    /// ```
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Whether a failure of the very first connection (refused, 503...) is retried like a
    /// later one (default yes, as browsers do). With `false` it ends the stream with the
    /// error, so a command-line tool can say at once that the server is not there; once a
    /// stream has opened, failures are always retried.
    ///
    /// ```
    /// let builder = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .retry_initial_connection(false);
    /// # let _ = builder;
    /// ```
    pub fn retry_initial_connection(mut self, retry: bool) -> Self {
        self.retry_initial_connection = retry;
        self
    }

    /// How many redirects in a row are followed before giving up with
    /// [`RedirectError::TooMany`](crate::RedirectError::TooMany) (default 10).
    ///
    /// ```
    /// let builder = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .max_redirects(0); // a redirect is then an error
    /// # let _ = builder;
    /// ```
    pub fn max_redirects(mut self, max_redirects: u32) -> Self {
        self.max_redirects = max_redirects;
        self
    }

    /// Reconnects when nothing at all (not even a heartbeat comment) arrives on an open
    /// stream for this long (default: wait forever). Set it a little above the server's
    /// heartbeat interval to notice dead connections that TCP would take minutes to report.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .idle_timeout(Duration::from_secs(45));
    /// # let _ = builder;
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The bound on connecting, the TLS handshake and the response head (default 30 s); a
    /// timeout is retried like a network error.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .connect_timeout(Duration::from_secs(5));
    /// # let _ = builder;
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.transport.connect_timeout = timeout;
        self
    }

    /// The parser's limits on one line and one event; a stream exceeding them ends with
    /// [`Error::Stream`].
    ///
    /// ```
    /// let limits = herald_wire::Limits { max_event_len: 16 * 1024 * 1024, ..Default::default() };
    /// let builder = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .limits(limits);
    /// # let _ = builder;
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Also trusts the certificates in this PEM (one or more `CERTIFICATE` blocks), e.g. a
    /// self-signed certificate in tests or a private CA. Checked by [`Builder::build`].
    ///
    /// ```
    /// let result = herald_client::EventSource::builder("https://127.0.0.1:3443/events")
    ///     .root_certificate_pem("not a certificate")
    ///     .build();
    /// assert!(matches!(result, Err(herald_client::Error::RootCertificate(_))));
    /// ```
    pub fn root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.transport.root_pems.push(pem.as_ref().to_vec());
        self
    }

    /// Whether the bundled Mozilla root certificates are trusted (default yes). Switch them
    /// off to trust only [`Builder::root_certificate_pem`].
    ///
    /// ```
    /// let builder = herald_client::EventSource::builder("https://127.0.0.1:3443/events")
    ///     .built_in_roots(false);
    /// # let _ = builder;
    /// ```
    pub fn built_in_roots(mut self, trust: bool) -> Self {
        self.transport.built_in_roots = trust;
        self
    }

    /// Speaks HTTP/2 only: over `http://` with prior knowledge (h2c, no upgrade dance), over
    /// `https://` offering only `h2` in ALPN. Without it, `https://` negotiates HTTP/2 or
    /// HTTP/1.1 by ALPN and `http://` uses HTTP/1.1.
    ///
    /// ```
    /// let builder = herald_client::EventSource::builder("http://127.0.0.1:3000/events")
    ///     .http2_prior_knowledge();
    /// # let _ = builder;
    /// ```
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.transport.http2_only = true;
        self
    }

    /// Checks the options and makes the [`EventSource`]. It connects on the first poll.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL that is not `http`/`https`, [`Error::InvalidHeader`]
    /// for a bad header, token or last event id, [`Error::RootCertificate`] for a bad PEM.
    ///
    /// ```
    /// let result = herald_client::EventSource::builder("ws://127.0.0.1/").build();
    /// assert!(matches!(result, Err(herald_client::Error::InvalidUrl { .. })));
    /// ```
    pub fn build(self) -> Result<EventSource, Error> {
        let url = transport::parse_url(&self.url)?;
        let headers = transport::header_map(&self.headers, self.bearer.as_deref())?;
        if self.last_event_id.contains(['\r', '\n', '\0'])
            || http::HeaderValue::from_bytes(self.last_event_id.as_bytes()).is_err()
        {
            return Err(Error::InvalidHeader {
                name: "Last-Event-ID".into(),
                reason: "an event id cannot contain control characters".into(),
            });
        }
        let mut parser = Parser::with_limits(self.limits);
        if !self.last_event_id.is_empty() {
            // The parser has no setter for its last event id; an `id` line and a blank line
            // set it exactly as a stream would, and `finish` readies it for a fresh stream
            // (BOM check included) while keeping the id.
            parser.feed(b"id: ");
            parser.feed(self.last_event_id.as_bytes());
            parser.feed(b"\n\n");
            while parser.next_item().is_some() {}
            parser.finish();
        }
        let client = self.transport.client()?;
        Ok(EventSource::new_with(Settings {
            client,
            url,
            headers,
            max_redirects: self.max_redirects,
            parser,
            retry: self.retry,
            backoff: Backoff::new(self.max_retry, self.jitter),
            retry_initial_connection: self.retry_initial_connection,
            connect_timeout: self.transport.connect_timeout,
            idle_timeout: self.idle_timeout,
        }))
    }
}
