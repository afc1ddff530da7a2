//! [`EventSource`]: a stream of events that reconnects by itself.
//!
//! # Retry policy
//! | what happens | what the client does |
//! |---|---|
//! | 200 `text/event-stream` | reads events; the failure count is reset |
//! | the stream ends or breaks | reconnects after `retry`, sending `Last-Event-ID` |
//! | 204 No Content | stops: the stream ends with `None` |
//! | 301, 302, 303, 307, 308 | follows `Location` (GET), at most `max_redirects` in a row |
//! | network error, timeout, 408, 429, 5xx | retries with backoff (honouring `Retry-After`) |
//! | other statuses (4xx, 1xx, 2xx but 200/204) | stops with [`Error::Status`] |
//! | 200 with another content type | stops with [`Error::ContentType`] |
//! | refused TLS certificate | stops with [`Error::Tls`] |
//! | a line or event over the parser's limits | stops with [`Error::Stream`] |
//!
//! Backoff: the first attempt after a failure waits `retry` (the server's `retry:` field, or
//! [`Builder::retry`]); while attempts keep failing the wait grows exponentially with full
//! jitter above that floor, capped by [`Builder::max_retry`].
//!
//! Redirects are followed afresh on every reconnection (the configured URL is where each one
//! starts), and user headers and the bearer token go only to the configured URL's origin.

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use herald_wire::{Item, Parser};
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::ResponseFuture;
use tokio::time::{Instant, Sleep};
use url::Url;

use crate::backoff::Backoff;
use crate::builder::Builder;
use crate::error::{Error, RedirectError};
use crate::event::Event;
use crate::transport::{self, HttpClient, SNIPPET_LIMIT};

/// The longest single wait: a server sending `retry: 99999999999999` must not overflow the
/// timer, and a day is as good as forever for a reconnection.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// An async `EventSource`: connects to an event stream, yields its events, and reconnects by
/// itself with `Last-Event-ID` when the connection drops.
///
/// Read it with [`EventSource::next`] or as a [`Stream`]. It yields `Ok(event)` for each
/// event; it ends with `None` when the server answers 204 (the stream is over for good), or
/// with one `Err` (always the last item) when something that retrying cannot fix happens.
/// See the [module docs](self) for the whole retry policy.
///
/// Nothing happens until it is polled: the first poll connects. Dropping it closes the
/// connection.
///
/// ```no_run
/// use herald_client::EventSource;
///
/// # async fn run() -> Result<(), herald_client::Error> {
/// let mut events = EventSource::builder("http://127.0.0.1:3000/.well-known/mercure?match=/ticks")
///     .bearer("eyJhbGciOi...")
///     .build()?;
/// while let Some(event) = events.next().await {
///     let event = event?;
///     println!("[{}] {}: {}", event.id, event.event, event.data);
/// }
/// // The server answered 204: the stream is over.
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct EventSource {
    /// The pooled hyper client (HTTP/1.1 and HTTP/2, plain or TLS).
    client: HttpClient,
    /// The configured URL: every (re)connection starts here.
    url: Url,
    /// User headers and `Authorization`, sent only to `url`'s origin.
    headers: HeaderMap,
    /// Redirects followed in a row before giving up.
    max_redirects: u32,
    /// The stream parser; it also keeps the last event id across connections.
    parser: Parser,
    /// The reconnection time: the builder's default until the server sends `retry:`.
    retry: Duration,
    /// Computes the wait before each reconnection.
    backoff: Backoff,
    /// Attempts that failed since the last stream opened.
    failures: u32,
    /// Whether a stream has opened at least once (then failures are always retried).
    connected: bool,
    /// Whether a failing first connection is retried.
    retry_initial_connection: bool,
    /// Bound on connect + handshake + response head, and on reading an error body.
    connect_timeout: Duration,
    /// Reconnect when an open stream is silent this long.
    idle_timeout: Option<Duration>,
    /// The one timer, reused for every wait: reconnection delay, connect timeout, idle
    /// timeout. Created on first use because a `Sleep` needs a running Tokio runtime, which
    /// `build` does not.
    timer: Option<Pin<Box<Sleep>>>,
    /// Where the connection is.
    state: State,
}

/// The connection's state machine.
enum State {
    /// Not connected yet; connect on the next poll.
    Idle,
    /// Waiting for the timer before reconnecting.
    Waiting,
    /// Request sent, waiting for the response head (the timer bounds the wait).
    Connecting {
        /// The response on its way.
        response: ResponseFuture,
        /// The URL requested (after redirects so far).
        url: Url,
        /// Redirects followed to get here.
        redirects: u32,
    },
    /// Reading the event stream.
    Streaming {
        /// The response body.
        body: Incoming,
        /// The URL it came from, for error messages.
        url: Url,
    },
    /// Reading the start of an error response to say why (the timer bounds the wait).
    ReadingError {
        /// The response body.
        body: Incoming,
        /// The status received.
        status: StatusCode,
        /// The body so far, at most [`SNIPPET_LIMIT`] bytes.
        snippet: Vec<u8>,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// Stopped for good.
    Closed,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Idle => "Idle",
            State::Waiting => "Waiting",
            State::Connecting { .. } => "Connecting",
            State::Streaming { .. } => "Streaming",
            State::ReadingError { .. } => "ReadingError",
            State::Closed => "Closed",
        })
    }
}

/// What one step of the state machine decided.
enum Flow {
    /// Go on with this state at once.
    Next(State),
    /// Nothing to do until woken; stay in this state.
    Pending(State),
    /// Hand this item to the caller, then be in this state.
    Yield(State, Option<Result<Event, Error>>),
}

/// What [`Builder::build`] hands over.
pub(crate) struct Settings {
    pub(crate) client: HttpClient,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) max_redirects: u32,
    pub(crate) parser: Parser,
    pub(crate) retry: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) retry_initial_connection: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
}

impl EventSource {
    /// Starts configuring an event source for `url`; see [`Builder`].
    ///
    /// ```
    /// let events = herald_client::EventSource::builder("http://127.0.0.1:3000/events").build()?;
    /// assert_eq!(events.url(), "http://127.0.0.1:3000/events");
    /// # Ok::<(), herald_client::Error>(())
    /// ```
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder::new(url)
    }

    /// An event source for `url` with the default options.
    ///
    /// # Errors
    /// As [`Builder::build`].
    ///
    /// ```
    /// assert!(herald_client::EventSource::new("http://127.0.0.1:3000/events").is_ok());
    /// ```
    pub fn new(url: impl Into<String>) -> Result<Self, Error> {
        Builder::new(url).build()
    }

    pub(crate) fn new_with(settings: Settings) -> Self {
        EventSource {
            client: settings.client,
            url: settings.url,
            headers: settings.headers,
            max_redirects: settings.max_redirects,
            parser: settings.parser,
            retry: settings.retry,
            backoff: settings.backoff,
            failures: 0,
            connected: false,
            retry_initial_connection: settings.retry_initial_connection,
            connect_timeout: settings.connect_timeout,
            idle_timeout: settings.idle_timeout,
            timer: None,
            state: State::Idle,
        }
    }

    /// The next event; `None` once the stream is over (the server answered 204, an error was
    /// yielded, or [`EventSource::close`] was called).
    ///
    /// Cancel-safe: the connection lives in the `EventSource`, not in the future, so dropping
    /// the future (in a `select!`, a timeout) loses nothing; the next call goes on.
    ///
    /// ```no_run
    /// # async fn run(mut events: herald_client::EventSource) {
    /// let first = tokio::time::timeout(std::time::Duration::from_secs(5), events.next()).await;
    /// # }
    /// ```
    pub async fn next(&mut self) -> Option<Result<Event, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// The id of the last event received (or given to [`Builder::last_event_id`]): what the
    /// next reconnection sends as `Last-Event-ID`.
    ///
    /// ```
    /// let events = herald_client::EventSource::new("http://127.0.0.1:3000/events")?;
    /// assert_eq!(events.last_event_id(), "");
    /// # Ok::<(), herald_client::Error>(())
    /// ```
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The current reconnection time: [`Builder::retry`] until the server sends `retry:`.
    ///
    /// ```
    /// let events = herald_client::EventSource::new("http://127.0.0.1:3000/events")?;
    /// assert_eq!(events.retry(), std::time::Duration::from_secs(3));
    /// # Ok::<(), herald_client::Error>(())
    /// ```
    pub fn retry(&self) -> std::time::Duration {
        self.retry
    }

    /// The configured URL.
    ///
    /// ```
    /// let events = herald_client::EventSource::new("http://127.0.0.1:3000/events#x")?;
    /// assert_eq!(events.url(), "http://127.0.0.1:3000/events"); // fragments are never sent
    /// # Ok::<(), herald_client::Error>(())
    /// ```
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Closes the connection for good; [`EventSource::next`] then returns `None`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let mut events = herald_client::EventSource::new("http://127.0.0.1:3000/events")?;
    /// events.close();
    /// assert!(events.is_closed());
    /// assert!(events.next().await.is_none());
    /// # Ok::<(), herald_client::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn close(&mut self) {
        self.state = State::Closed;
    }

    /// Whether the stream is over: [`EventSource::next`] will return `None`.
    ///
    /// ```
    /// let events = herald_client::EventSource::new("http://127.0.0.1:3000/events")?;
    /// assert!(!events.is_closed());
    /// # Ok::<(), herald_client::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Drives the state machine until there is an item to yield or it must wait.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event, Error>>> {
        loop {
            if matches!(self.state, State::Closed) {
                return Poll::Ready(None);
            }
            // Events already parsed come first, whatever the connection is doing: `finish`
            // at the end of a connection can leave complete events behind.
            match self.parser.next_item() {
                Some(Ok(Item::Event(event))) => return Poll::Ready(Some(Ok(event.into()))),
                Some(Ok(Item::Retry(millis))) => {
                    self.retry = Duration::from_millis(millis);
                    continue;
                }
                Some(Err(error)) => {
                    self.state = State::Closed;
                    return Poll::Ready(Some(Err(error.into())));
                }
                None => {}
            }
            let flow = match mem::replace(&mut self.state, State::Closed) {
                State::Idle => self.connect(self.url.clone(), 0),
                State::Waiting => match self.poll_timer(cx) {
                    Poll::Ready(()) => self.connect(self.url.clone(), 0),
                    Poll::Pending => Flow::Pending(State::Waiting),
                },
                State::Connecting {
                    response,
                    url,
                    redirects,
                } => self.poll_connecting(cx, response, url, redirects),
                State::Streaming { body, url } => self.poll_streaming(cx, body, url),
                State::ReadingError {
                    body,
                    status,
                    snippet,
                    retry_after,
                } => self.poll_error_body(cx, body, status, snippet, retry_after),
                State::Closed => Flow::Yield(State::Closed, None),
            };
            match flow {
                Flow::Next(state) => self.state = state,
                Flow::Pending(state) => {
                    self.state = state;
                    return Poll::Pending;
                }
                Flow::Yield(state, item) => {
                    self.state = state;
                    return Poll::Ready(item);
                }
            }
        }
    }

    /// Sends the request for `url`.
    fn connect(&mut self, url: Url, redirects: u32) -> Flow {
        let request = match self.request(&url) {
            Ok(request) => request,
            Err(error) => return Flow::Yield(State::Closed, Some(Err(error))),
        };
        tracing::debug!(%url, last_event_id = self.parser.last_event_id(), "connecting");
        let response = self.client.request(request);
        self.arm(self.connect_timeout);
        Flow::Next(State::Connecting {
            response,
            url,
            redirects,
        })
    }

    /// The GET request for `url`, with the headers it deserves.
    fn request(&self, url: &Url) -> Result<Request<Full<Bytes>>, Error> {
        let uri = transport::to_uri(url).map_err(|reason| Error::InvalidUrl {
            url: url.to_string(),
            reason,
        })?;
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if url.origin() == self.url.origin() {
            // Credentials and custom headers never leave the origin the user named.
            for (name, value) in &self.headers {
                headers.append(name.clone(), value.clone());
            }
        }
        let last_event_id = self.parser.last_event_id();
        if !last_event_id.is_empty() {
            // Ids from the stream have no CR, LF or NUL, but other control characters cannot
            // travel in a header either; resending no id is then the only option.
            match HeaderValue::from_bytes(last_event_id.as_bytes()) {
                Ok(value) => {
                    headers.insert("last-event-id", value);
                }
                Err(_) => tracing::warn!("the last event id cannot be sent as a header"),
            }
        }
        Ok(request)
    }

    /// Waits for the response head.
    fn poll_connecting(
        &mut self,
        cx: &mut Context<'_>,
        mut response: ResponseFuture,
        url: Url,
        redirects: u32,
    ) -> Flow {
        match Pin::new(&mut response).poll(cx) {
            Poll::Ready(Ok(response)) => self.on_response(response, url, redirects),
            Poll::Ready(Err(error)) => self.fail(transport::classify(&url, error), None),
            Poll::Pending => match self.poll_timer(cx) {
                Poll::Ready(()) => self.fail(
                    Error::Timeout {
                        url: url.to_string(),
                        timeout: self.connect_timeout,
                    },
                    None,
                ),
                Poll::Pending => Flow::Pending(State::Connecting {
                    response,
                    url,
                    redirects,
                }),
            },
        }
    }

    /// Decides what a response head means.
    fn on_response(&mut self, response: Response<Incoming>, url: Url, redirects: u32) -> Flow {
        let status = response.status();
        match status {
            StatusCode::OK => {
                let content_type = response.headers().get(CONTENT_TYPE);
                let ok = content_type
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(transport::is_event_stream);
                if !ok {
                    let received =
                        content_type.map(|value| String::from_utf8_lossy(value.as_bytes()).into());
                    return Flow::Yield(State::Closed, Some(Err(Error::ContentType(received))));
                }
                tracing::debug!(%url, "stream open");
                self.failures = 0;
                self.connected = true;
                if let Some(idle) = self.idle_timeout {
                    self.arm(idle);
                }
                Flow::Next(State::Streaming {
                    body: response.into_body(),
                    url,
                })
            }
            StatusCode::NO_CONTENT => {
                tracing::debug!(%url, "204: the stream is over");
                Flow::Yield(State::Closed, None)
            }
            StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT => {
                match redirect_target(&url, status, response.headers()) {
                    Ok(_) if redirects >= self.max_redirects => {
                        let limit = self.max_redirects;
                        let error = RedirectError::TooMany { limit };
                        Flow::Yield(State::Closed, Some(Err(error.into())))
                    }
                    Ok(target) => {
                        tracing::debug!(from = %url, to = %target, %status, "redirect");
                        self.connect(target, redirects + 1)
                    }
                    Err(error) => Flow::Yield(State::Closed, Some(Err(error.into()))),
                }
            }
            _ => {
                let retry_after = transport::retry_after(response.headers());
                self.arm(self.connect_timeout);
                Flow::Next(State::ReadingError {
                    body: response.into_body(),
                    status,
                    snippet: Vec::new(),
                    retry_after,
                })
            }
        }
    }

    /// Reads the event stream into the parser.
    fn poll_streaming(&mut self, cx: &mut Context<'_>, mut body: Incoming, url: Url) -> Flow {
        match Pin::new(&mut body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    self.parser.feed(&data);
                    if let Some(idle) = self.idle_timeout {
                        self.arm(idle);
                    }
                }
                Flow::Next(State::Streaming { body, url })
            }
            Poll::Ready(Some(Err(error))) => {
                // The partial event at the break is discarded, as the spec requires.
                self.parser.finish();
                tracing::debug!(%url, %error, "stream broke");
                self.fail(transport::body_error(&url, error), None)
            }
            Poll::Ready(None) => {
                self.parser.finish();
                tracing::debug!(%url, retry = ?self.retry, "stream ended; reconnecting");
                let delay = self.backoff.delay(self.retry, 0);
                self.arm(delay);
                Flow::Next(State::Waiting)
            }
            Poll::Pending => {
                if let Some(idle) = self.idle_timeout
                    && self.poll_timer(cx).is_ready()
                {
                    self.parser.finish();
                    let url = url.to_string();
                    return self.fail(Error::Timeout { url, timeout: idle }, None);
                }
                Flow::Pending(State::Streaming { body, url })
            }
        }
    }

    /// Reads up to [`SNIPPET_LIMIT`] bytes of an error response, then fails with it.
    fn poll_error_body(
        &mut self,
        cx: &mut Context<'_>,
        mut body: Incoming,
        status: StatusCode,
        mut snippet: Vec<u8>,
        retry_after: Option<Duration>,
    ) -> Flow {
        loop {
            match Pin::new(&mut body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let room = SNIPPET_LIMIT.saturating_sub(snippet.len());
                        snippet.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    if snippet.len() < SNIPPET_LIMIT {
                        continue;
                    }
                }
                // A body that breaks still leaves the status to report.
                Poll::Ready(Some(Err(_)) | None) => {}
                Poll::Pending => {
                    if self.poll_timer(cx).is_pending() {
                        return Flow::Pending(State::ReadingError {
                            body,
                            status,
                            snippet,
                            retry_after,
                        });
                    }
                }
            }
            let body_snippet = transport::snippet(&snippet);
            return self.fail(
                Error::Status {
                    status,
                    body_snippet,
                },
                retry_after,
            );
        }
    }

    /// After a failed attempt: wait and retry if the error allows it, else stop with it.
    fn fail(&mut self, error: Error, retry_after: Option<Duration>) -> Flow {
        if !error.is_retryable() || !(self.connected || self.retry_initial_connection) {
            return Flow::Yield(State::Closed, Some(Err(error)));
        }
        self.failures = self.failures.saturating_add(1);
        let delay = self
            .backoff
            .delay(self.retry, self.failures)
            .max(retry_after.unwrap_or_default());
        tracing::debug!(%error, failures = self.failures, ?delay, "reconnecting");
        self.arm(delay);
        Flow::Next(State::Waiting)
    }

    /// Sets the timer to fire after `after`.
    fn arm(&mut self, after: Duration) {
        let deadline = Instant::now() + after.min(MAX_WAIT);
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// Polls the timer (an unset timer has fired).
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.timer {
            Some(timer) => timer.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl Stream for EventSource {
    type Item = Result<Event, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx)
    }
}

/// Where a redirect leads: `Location` resolved against the URL that answered.
fn redirect_target(
    url: &Url,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<Url, RedirectError> {
    let location = headers
        .get(LOCATION)
        .ok_or(RedirectError::MissingLocation { status })?;
    let invalid = || RedirectError::InvalidLocation {
        location: String::from_utf8_lossy(location.as_bytes()).into_owned(),
    };
    let text = location.to_str().map_err(|_| invalid())?;
    let mut target = url.join(text).map_err(|_| invalid())?;
    transport::check_url(&target).map_err(|_| invalid())?;
    target.set_fragment(None);
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(LOCATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn redirect_targets_resolve_relative_locations() {
        let url = Url::parse("http://a.test/x/events?match=1").unwrap();
        let target = redirect_target(&url, StatusCode::FOUND, &location("/y#frag")).unwrap();
        assert_eq!(target.as_str(), "http://a.test/y");
        let target = redirect_target(&url, StatusCode::FOUND, &location("https://b.test/z"));
        assert_eq!(target.unwrap().as_str(), "https://b.test/z");
    }

    #[test]
    fn redirect_targets_must_be_http() {
        let url = Url::parse("http://a.test/").unwrap();
        let status = StatusCode::TEMPORARY_REDIRECT;
        assert!(matches!(
            redirect_target(&url, status, &location("file:///etc/passwd")),
            Err(RedirectError::InvalidLocation { .. })
        ));
        assert_eq!(
            redirect_target(&url, status, &HeaderMap::new()),
            Err(RedirectError::MissingLocation { status })
        );
    }

    #[test]
    fn event_sources_are_send_and_sync() {
        fn check<T: Send + Sync + Unpin>() {}
        check::<EventSource>();
    }
}
