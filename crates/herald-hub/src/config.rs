//! [`HubConfig`]: everything the hub needs to know that is not a key or a store.

use std::time::Duration;

use url::Url;

/// The path of the hub below its public URL, fixed by the protocol's well-known name.
pub const HUB_PATH: &str = "/.well-known/mercure";

/// Hub settings. [`HubConfig::new`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The hub's URL (`https://host/.well-known/mercure`): advertised in `Link` headers,
    /// the base for relative URL patterns, and the default token audience.
    pub hub_url: Url,
    /// Subscribers without a token may connect (they receive public updates only).
    pub anonymous: bool,
    /// Also accept the pre-standard (-07) dialect: `topic=`, `lastEventID`, the `mercure`
    /// claim, the `mercureAuthorization` cookie and the `authorization` query parameter.
    pub legacy: bool,
    /// Origins allowed to read responses with credentials (CORS). `*` allows any origin
    /// without credentials.
    pub cors_origins: Vec<String>,
    /// Name of the cookie that may carry the access token.
    pub cookie_name: String,
    /// Interval between heartbeat comments on idle streams.
    pub heartbeat: Duration,
    /// Reconnection delay sent as `retry:` when a stream opens and when the hub closes it.
    pub retry: Duration,
    /// Streams are closed (with a `retry` hint) after this long, so tokens are re-checked.
    pub max_connection_age: Option<Duration>,
    /// Frames a subscriber may have queued before it is caught up from history instead.
    pub queue_frames: usize,
    /// Bytes a subscriber may have queued before it is caught up from history instead.
    pub queue_bytes: usize,
    /// Largest accepted publish body, in bytes (413 above).
    pub max_body: usize,
    /// How long a publisher may take to send its body once the head is in (408 after):
    /// a client trickling a large body must not hold a connection and a handler forever.
    pub body_read_timeout: Duration,
    /// Most `topic` fields in one publish (413 above).
    pub max_topics: usize,
    /// Most selectors in one subscribe request (400 above).
    pub max_selectors: usize,
    /// How long an ended topic answers new subscribers with 204.
    pub ended_ttl: Duration,
    /// Publish subscription events (type `mercure`) on connect and disconnect.
    pub subscription_events: bool,
    /// Updates read from history per replay step.
    pub replay_batch: usize,
    /// Most connections open at once, counted per accepted TCP connection whatever it
    /// carries; further connections are answered 503 with `Retry-After`. `None`: no limit
    /// (`herald serve` sets one below its open-file limit).
    pub max_connections: Option<usize>,
    /// Most connections open at once from one peer IP address; further ones are answered 429
    /// with `Retry-After`. `None` (the default): no limit, as behind a reverse proxy every
    /// connection comes from the proxy's address.
    pub max_connections_per_ip: Option<usize>,
    /// Serve the home page, dashboard and playground (`/`, `/dashboard`, `/playground`,
    /// `/assets/…`) and the dashboard's `/herald/stats` stream.
    pub pages: bool,
}

impl HubConfig {
    /// Defaults for a hub reachable at `public_url` (scheme and authority; any path is
    /// replaced by the hub path).
    ///
    /// ```
    /// let config = herald_hub::HubConfig::new("http://127.0.0.1:3000".parse()?);
    /// assert_eq!(config.hub_url.as_str(), "http://127.0.0.1:3000/.well-known/mercure");
    /// # Ok::<(), url::ParseError>(())
    /// ```
    pub fn new(public_url: Url) -> Self {
        let mut hub_url = public_url;
        hub_url.set_path(HUB_PATH);
        hub_url.set_query(None);
        hub_url.set_fragment(None);
        Self {
            hub_url,
            anonymous: false,
            legacy: false,
            cors_origins: Vec::new(),
            cookie_name: "__Secure-mercure_access_token".to_owned(),
            heartbeat: Duration::from_secs(15),
            retry: Duration::from_secs(2),
            max_connection_age: None,
            queue_frames: 1024,
            queue_bytes: 1 << 20,
            max_body: 1 << 20,
            body_read_timeout: Duration::from_secs(30),
            max_topics: 64,
            max_selectors: 64,
            ended_ttl: Duration::from_secs(3600),
            subscription_events: false,
            replay_batch: 512,
            pages: true,
            max_connections: None,
            max_connections_per_ip: None,
        }
    }

    /// The hub URL's path (`/.well-known/mercure`).
    ///
    /// ```
    /// let config = herald_hub::HubConfig::new("http://h".parse()?);
    /// assert_eq!(config.hub_path(), "/.well-known/mercure");
    /// # Ok::<(), url::ParseError>(())
    /// ```
    pub fn hub_path(&self) -> &str {
        self.hub_url.path()
    }
}
