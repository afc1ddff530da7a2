//! [`Publisher`]: publishing to a Herald (or any Mercure) hub, and ending streams.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use url::Url;

use crate::error::Error;
use crate::transport::{self, HttpClient, TransportOptions};

/// The most of a publish response read: an event id is short, and an error reason is
/// summarised in [`Error::Status`] anyway.
const RESPONSE_LIMIT: usize = 64 * 1024;

/// One update to publish: the form fields of a Mercure publish request.
///
/// ```
/// use herald_client::Publication;
///
/// let update = Publication::new("/chat/42").data("hello").event_type("message").private(true);
/// assert_eq!(update.topics, ["/chat/42"]);
/// let form = update.to_form();
/// assert_eq!(form, "topic=%2Fchat%2F42&data=hello&type=message&private=on");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publication {
    /// The topics (at least one); the first is the canonical one, the others alternates.
    pub topics: Vec<String>,
    /// The event data; `None` publishes an event without data (which subscribers' parsers
    /// will not dispatch, but which moves their last event id).
    pub data: Option<String>,
    /// The event id; `None` lets the hub choose one (it answers with it).
    pub id: Option<String>,
    /// The event type (`event:` field); `None` means `message`.
    pub event_type: Option<String>,
    /// A `retry:` value for subscribers, in milliseconds.
    pub retry: Option<u64>,
    /// Deliver only to subscribers whose token grants one of the topics.
    pub private: bool,
}

impl Publication {
    /// An update for one topic, with no data yet.
    ///
    /// ```
    /// let update = herald_client::Publication::new("/ticks");
    /// assert_eq!(update.to_form(), "topic=%2Fticks");
    /// ```
    pub fn new(topic: impl Into<String>) -> Self {
        Publication {
            topics: vec![topic.into()],
            ..Publication::default()
        }
    }

    /// Adds an alternate topic.
    ///
    /// ```
    /// let update = herald_client::Publication::new("/a").topic("/b");
    /// assert_eq!(update.topics, ["/a", "/b"]);
    /// ```
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }

    /// Sets the data.
    ///
    /// ```
    /// let update = herald_client::Publication::new("/a").data("line 1\nline 2");
    /// assert_eq!(update.data.as_deref(), Some("line 1\nline 2"));
    /// ```
    pub fn data(mut self, data: impl Into<String>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// Sets the event id.
    ///
    /// ```
    /// let update = herald_client::Publication::new("/a").id("urn:uuid:1");
    /// assert_eq!(update.id.as_deref(), Some("urn:uuid:1"));
    /// ```
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the event type.
    ///
    /// ```
    /// let update = herald_client::Publication::new("/a").event_type("bye");
    /// assert_eq!(update.event_type.as_deref(), Some("bye"));
    /// ```
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// Sets the `retry` sent to subscribers, rounded down to milliseconds.
    ///
    /// ```
    /// let update = herald_client::Publication::new("/a").retry(std::time::Duration::from_secs(2));
    /// assert_eq!(update.retry, Some(2000));
    /// ```
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(u64::try_from(retry.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Marks the update private (or not).
    ///
    /// ```
    /// let update = herald_client::Publication::new("/a").private(true);
    /// assert!(update.private);
    /// ```
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// The `application/x-www-form-urlencoded` body of the publish request.
    ///
    /// ```
    /// let update = herald_client::Publication::new("/a").topic("/b").id("1").retry(std::time::Duration::from_millis(10));
    /// assert_eq!(update.to_form(), "topic=%2Fa&topic=%2Fb&id=1&retry=10");
    /// ```
    pub fn to_form(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for topic in &self.topics {
            form.append_pair("topic", topic);
        }
        if let Some(data) = &self.data {
            form.append_pair("data", data);
        }
        if let Some(id) = &self.id {
            form.append_pair("id", id);
        }
        if let Some(event_type) = &self.event_type {
            form.append_pair("type", event_type);
        }
        if let Some(retry) = self.retry {
            form.append_pair("retry", &retry.to_string());
        }
        if self.private {
            form.append_pair("private", "on");
        }
        form.finish()
    }
}

/// Publishes updates to a hub (`POST` to its URL, Mercure's publish API) and ends streams
/// (`POST` to `<hub>/end`, a Herald extension). Cheap to clone; clones share connections.
///
/// ```no_run
/// use herald_client::{Publication, Publisher};
///
/// # async fn run() -> Result<(), herald_client::Error> {
/// let publisher = Publisher::builder("http://127.0.0.1:3000/.well-known/mercure")
///     .bearer("eyJhbGciOi...")
///     .build()?;
/// let id = publisher.publish(&Publication::new("/chat/42").data("hello")).await?;
/// println!("published {id}");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Publisher {
    /// The pooled hyper client.
    client: HttpClient,
    /// The hub URL.
    url: Url,
    /// `Authorization` and user headers.
    headers: HeaderMap,
    /// Bound on one whole request.
    timeout: Duration,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("url", &self.url.as_str())
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Configures a [`Publisher`]; made by [`Publisher::builder`].
///
/// ```
/// use std::time::Duration;
///
/// let publisher = herald_client::Publisher::builder("https://hub.example/.well-known/mercure")
///     .bearer("eyJhbGciOi...")
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(publisher.url(), "https://hub.example/.well-known/mercure");
/// # Ok::<(), herald_client::Error>(())
/// ```
#[derive(Clone)]
pub struct PublisherBuilder {
    /// The hub URL as given.
    url: String,
    /// Extra headers.
    headers: Vec<(String, String)>,
    /// The token for `Authorization: Bearer`.
    bearer: Option<String>,
    /// Bound on one whole request.
    timeout: Duration,
    /// TCP/TLS/HTTP options.
    transport: TransportOptions,
}

impl fmt::Debug for PublisherBuilder {
    /// Never shows the token or header values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("PublisherBuilder")
            .field("url", &self.url)
            .field("headers", &names)
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("transport", &self.transport)
            .finish()
    }
}

impl PublisherBuilder {
    /// Adds a request header (repeatable).
    ///
    /// ```
    /// let builder = herald_client::Publisher::builder("http://127.0.0.1:3000/.well-known/mercure")
    ///     .header("X-Request-Id", "7");
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `Authorization: Bearer <token>`.
    ///
    /// ```
    /// let builder = herald_client::Publisher::builder("http://127.0.0.1:3000/.well-known/mercure")
    ///     .bearer("secret");
    /// assert!(!format!("{builder:?}").contains("secret"));
    /// ```
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// Bound on one whole request, connection included (default 30 s).
    ///
    /// ```
    /// let builder = herald_client::Publisher::builder("http://127.0.0.1:3000/.well-known/mercure")
    ///     .timeout(std::time::Duration::from_secs(2));
    /// # let _ = builder;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.transport.connect_timeout = timeout;
        self
    }

    /// Also trusts the certificates in this PEM; see
    /// [`Builder::root_certificate_pem`](crate::Builder::root_certificate_pem).
    ///
    /// ```
    /// let result = herald_client::Publisher::builder("https://127.0.0.1:3443/.well-known/mercure")
    ///     .root_certificate_pem("not a certificate")
    ///     .build();
    /// assert!(result.is_err());
    /// ```
    pub fn root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.transport.root_pems.push(pem.as_ref().to_vec());
        self
    }

    /// Whether the bundled Mozilla root certificates are trusted (default yes).
    ///
    /// ```
    /// let builder = herald_client::Publisher::builder("https://127.0.0.1:3443/.well-known/mercure")
    ///     .built_in_roots(false);
    /// # let _ = builder;
    /// ```
    pub fn built_in_roots(mut self, trust: bool) -> Self {
        self.transport.built_in_roots = trust;
        self
    }

    /// Speaks HTTP/2 only (h2c prior knowledge on `http://`); see
    /// [`Builder::http2_prior_knowledge`](crate::Builder::http2_prior_knowledge).
    ///
    /// ```
    /// let builder = herald_client::Publisher::builder("http://127.0.0.1:3000/.well-known/mercure")
    ///     .http2_prior_knowledge();
    /// # let _ = builder;
    /// ```
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.transport.http2_only = true;
        self
    }

    /// Checks the options and makes the [`Publisher`].
    ///
    /// # Errors
    /// [`Error::InvalidUrl`], [`Error::InvalidHeader`] or [`Error::RootCertificate`].
    ///
    /// ```
    /// assert!(herald_client::Publisher::builder("hub").build().is_err());
    /// ```
    pub fn build(self) -> Result<Publisher, Error> {
        Ok(Publisher {
            url: transport::parse_url(&self.url)?,
            headers: transport::header_map(&self.headers, self.bearer.as_deref())?,
            client: self.transport.client()?,
            timeout: self.timeout,
        })
    }
}

impl Publisher {
    /// Starts configuring a publisher for the hub at `url` (e.g.
    /// `http://127.0.0.1:3000/.well-known/mercure`).
    ///
    /// ```
    /// let publisher = herald_client::Publisher::builder("http://127.0.0.1:3000/.well-known/mercure").build()?;
    /// # Ok::<(), herald_client::Error>(())
    /// ```
    pub fn builder(url: impl Into<String>) -> PublisherBuilder {
        PublisherBuilder {
            url: url.into(),
            headers: Vec::new(),
            bearer: None,
            timeout: Duration::from_secs(30),
            transport: TransportOptions::default(),
        }
    }

    /// The hub URL.
    ///
    /// ```
    /// let publisher = herald_client::Publisher::builder("http://127.0.0.1:3000/.well-known/mercure").build()?;
    /// assert_eq!(publisher.url(), "http://127.0.0.1:3000/.well-known/mercure");
    /// # Ok::<(), herald_client::Error>(())
    /// ```
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Publishes an update and returns the id the hub gave it.
    ///
    /// # Errors
    /// [`Error::Protocol`] for an update without topics; [`Error::Connect`] or
    /// [`Error::Timeout`] when the hub cannot be reached; [`Error::Status`] with the hub's
    /// reason when it refuses (401 without a valid token, 403 without the grant, 400 for a
    /// bad field).
    pub async fn publish(&self, publication: &Publication) -> Result<String, Error> {
        let body = self.post(self.url.clone(), publication).await?;
        Ok(String::from_utf8_lossy(&body).trim().to_owned())
    }

    /// Ends the streams of the publication's topics (`POST <hub>/end`, a Herald extension):
    /// when the publication has data or a type it is published first as the final event;
    /// then subscribers to these topics are closed and, for a while, subscribing to them
    /// again answers 204, which makes an [`EventSource`](crate::EventSource) stop.
    ///
    /// Returns the hub's answer, a one-line JSON summary such as
    /// `{"closed":1,"ended_for_seconds":3600,"topics":["/clients/7"]}`.
    ///
    /// # Errors
    /// As [`Publisher::publish`]; a hub without the extension answers 404 or 405.
    pub async fn end(&self, publication: &Publication) -> Result<String, Error> {
        let mut url = self.url.clone();
        let path = format!("{}/end", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let body = self.post(url, publication).await?;
        Ok(String::from_utf8_lossy(&body).trim().to_owned())
    }

    /// POSTs the publication's form to `url` and returns the body of a 200 answer.
    async fn post(&self, url: Url, publication: &Publication) -> Result<Bytes, Error> {
        if publication.topics.is_empty() {
            return Err(Error::Protocol("an update needs at least one topic".into()));
        }
        let uri = transport::to_uri(&url).map_err(|reason| Error::InvalidUrl {
            url: url.to_string(),
            reason,
        })?;
        let mut request = Request::new(Full::new(Bytes::from(publication.to_form())));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| transport::classify(&url, error))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), RESPONSE_LIMIT)
                .collect()
                .await
                .map(|collected| collected.to_bytes());
            match (status, body) {
                (StatusCode::OK, Ok(body)) => Ok(body),
                (StatusCode::OK, Err(source)) => Err(Error::Body {
                    url: url.to_string(),
                    source,
                }),
                (status, body) => Err(Error::Status {
                    status,
                    body_snippet: body
                        .map(|body| transport::snippet(&body))
                        .unwrap_or_default(),
                }),
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                url: url.to_string(),
                timeout: self.timeout,
            }),
        }
    }
}
