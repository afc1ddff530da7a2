//! Shared test helpers for Herald's integration tests (not published).
//!
//! - [`TestHub`]: a real hub serving on `127.0.0.1:0`, with a memory or redb store.
//! - [`raw`]: HTTP/1.1 over a plain `TcpStream`, so tests assert the exact bytes on the wire
//!   (including a de-chunked event stream, [`raw::RawStream`]).
//! - [`Watcher`]: a subscriber to everything that proves nothing reached it (no refused update
//!   dispatched, nothing injected) and that the hub still publishes and delivers.
//! - [`raise_fd_limit`]: for tests that hold thousands of sockets.
//! - [`process`]: real `herald serve` processes ([`process::HubProcess`]) to restart,
//!   `SIGKILL` or pause, and `redis-server` processes the test owns, for crash and cluster
//!   tests.

pub mod process;
pub mod raw;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use herald_hub::auth::{TokenVerifier, VerifierConfig};
use herald_hub::http::ServerOptions;
use herald_hub::mint::TokenRequest;
use herald_hub::store::HistoryStore;
use herald_hub::store::memory::MemoryStore;
use herald_hub::{Hub, HubConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use raw::{RawResponse, RawStream};

/// The HMAC secret every test hub verifies tokens with.
pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";
/// The issuer of test tokens.
pub const ISSUER: &str = "https://app.test";

/// A hub serving on a loopback port for one test.
pub struct TestHub {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The hub itself, for direct publishes and counters.
    pub hub: Hub,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// How to build a [`TestHub`].
pub struct TestHubBuilder {
    configure: Box<dyn FnOnce(&mut HubConfig) + Send>,
    store: Option<Arc<dyn HistoryStore>>,
    legacy: bool,
    issuer: Option<String>,
    listener: Option<std::net::TcpListener>,
    server: ServerOptions,
}

impl TestHubBuilder {
    /// Adjusts the hub configuration (defaults: anonymous subscribers, 100 ms heartbeat off).
    pub fn config(mut self, configure: impl FnOnce(&mut HubConfig) + Send + 'static) -> Self {
        self.configure = Box::new(configure);
        self
    }

    /// Uses `store` instead of a fresh in-memory history of 1000 updates.
    pub fn store(mut self, store: Arc<dyn HistoryStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Accepts legacy tokens too.
    pub fn legacy(mut self) -> Self {
        self.legacy = true;
        self
    }

    /// Requires this token issuer.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }

    /// Serves on an already bound listener (to restart a hub on the same port).
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Serves with these transport options (timeouts, h2c) instead of the defaults.
    pub fn server(mut self, options: ServerOptions) -> Self {
        self.server = options;
        self
    }

    /// Starts the hub.
    pub async fn start(self) -> TestHub {
        let listener = match self.listener {
            Some(listener) => {
                listener.set_nonblocking(true).expect("nonblocking");
                TcpListener::from_std(listener).expect("listener")
            }
            None => TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        };
        let addr = listener.local_addr().expect("addr");
        let mut config = HubConfig::new(format!("http://{addr}").parse().expect("url"));
        config.anonymous = true;
        config.heartbeat = Duration::from_secs(30);
        config.retry = Duration::from_millis(500);
        (self.configure)(&mut config);
        config.legacy |= self.legacy;
        let verifier = TokenVerifier::new(VerifierConfig {
            hmac_secret: Some(SECRET.as_bytes().to_vec()),
            public_key_pem: None,
            issuer: self.issuer,
            audience: config.hub_url.to_string(),
            legacy: config.legacy,
            hub_url: config.hub_url.clone(),
        })
        .expect("verifier");
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryStore::new(1000)));
        let hub = Hub::start(config, store, Some(verifier))
            .await
            .expect("hub starts");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(herald_hub::http::serve_with(
            listener,
            hub.clone(),
            self.server,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(2),
        ));
        TestHub {
            addr,
            hub,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }
}

impl TestHub {
    /// A builder with the test defaults.
    pub fn builder() -> TestHubBuilder {
        TestHubBuilder {
            configure: Box::new(|_| {}),
            store: None,
            legacy: false,
            issuer: None,
            listener: None,
            server: ServerOptions::default(),
        }
    }

    /// A hub with the test defaults: memory history, anonymous subscribers allowed.
    pub async fn start() -> TestHub {
        Self::builder().start().await
    }

    /// The hub URL (`http://127.0.0.1:PORT/.well-known/mercure`).
    pub fn hub_url(&self) -> String {
        self.hub.config().hub_url.to_string()
    }

    /// A draft-08 token granting `publish` and `subscribe` on these selectors.
    pub fn token(&self, publish: &[&str], subscribe: &[&str]) -> String {
        self.token_request(publish, subscribe)
            .sign_hmac(SECRET.as_bytes())
            .expect("token")
    }

    /// The request behind [`TestHub::token`], to adjust before signing.
    pub fn token_request(&self, publish: &[&str], subscribe: &[&str]) -> TokenRequest {
        TokenRequest {
            publish: publish.iter().map(|s| s.to_string()).collect(),
            subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
            ttl: Duration::from_secs(3600),
            issuer: ISSUER.to_owned(),
            audience: self.hub_url(),
            subject: "test".to_owned(),
            legacy: false,
            payload: None,
        }
    }

    /// The claims [`TestHub::token`] would sign, as JSON to adjust (expire, forge, inflate)
    /// before [`sign_claims`].
    pub fn claims(&self, publish: &[&str], subscribe: &[&str]) -> serde_json::Value {
        self.token_request(publish, subscribe).claims()
    }

    /// A token that may publish anywhere.
    pub fn publisher_token(&self) -> String {
        self.token(&["*"], &[])
    }

    /// POSTs a form to the hub with a publisher token; returns the raw response.
    pub async fn publish(&self, form: &str) -> RawResponse {
        let token = self.publisher_token();
        self.post_form(
            "/.well-known/mercure",
            form,
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await
    }

    /// Publishes `id: N`, `data: uN` for each N in `ids` to `topic`, asserting each 200.
    pub async fn publish_numbered(&self, topic: &str, ids: std::ops::RangeInclusive<u32>) {
        for id in ids {
            let answer = self
                .publish(&format!("topic={}&id={id}&data=u{id}", encode(topic)))
                .await;
            assert_eq!(answer.status, 200, "publish {id}: {}", answer.text());
        }
    }

    /// POSTs `form` to `path` with extra headers.
    pub async fn post_form(&self, path: &str, form: &str, headers: &[(&str, &str)]) -> RawResponse {
        let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        raw::request(self.addr, "POST", path, &all, form.as_bytes()).await
    }

    /// A GET with headers, read to the end (not for streams).
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> RawResponse {
        raw::request(self.addr, "GET", path, headers, b"").await
    }

    /// Opens a subscription (`query` after `?`) and reads the response head.
    pub async fn subscribe(&self, query: &str, headers: &[(&str, &str)]) -> RawStream {
        RawStream::open(self.addr, &format!("/.well-known/mercure?{query}"), headers).await
    }

    /// A [`Watcher`]: subscribed to `*` with a token that may read every private update.
    pub async fn watcher(&self) -> Watcher {
        let token = self.token(&[], &["*"]);
        let mut stream = self
            .subscribe("match=*", &[("Authorization", &format!("Bearer {token}"))])
            .await;
        assert_eq!(stream.status, 200, "the watcher subscribes");
        stream.read_until("\n\n").await; // the opening `retry:`
        Watcher { stream }
    }

    /// Stops the server and waits for it to finish its graceful shutdown.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Percent-encodes a query or form value.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A subscriber to every topic, allowed to read every private update, that proves nothing
/// reached it: see [`Watcher::assert_nothing_since`].
pub struct Watcher {
    stream: RawStream,
}

/// Topic of the fence updates a [`Watcher`] publishes.
pub const FENCE_TOPIC: &str = "urn:herald-test:fence";

impl Watcher {
    /// Publishes a fence update and asserts it is the next thing the watcher receives. Updates
    /// reach a subscriber in publish order, so anything dispatched since the previous fence
    /// (a refused update, bytes injected into a stream) would arrive first; and the fence
    /// arriving proves the hub still publishes and delivers. `after` names what was tried,
    /// for the failure message.
    pub async fn assert_nothing_since(&mut self, hub: &TestHub, after: &str) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = format!("fence-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let answer = hub
            .publish(&format!("topic={}&id={id}&data=fence", encode(FENCE_TOPIC)))
            .await;
        assert_eq!(
            answer.status,
            200,
            "after {after}: the hub still publishes: {}",
            answer.text()
        );
        let event = self.stream.next_event().await;
        assert_eq!(
            event,
            format!("id: {id}\ndata: fence\n\n"),
            "after {after}: something reached the watcher before the fence"
        );
    }

    /// The next event the watcher receives (heartbeats skipped).
    pub async fn next_event(&mut self) -> String {
        self.stream.next_event().await
    }
}

/// Signs arbitrary `claims` as a draft-08 access token (`typ: at+jwt`, HS256) with `secret`.
pub fn sign_claims(claims: &serde_json::Value, secret: &[u8]) -> String {
    sign_claims_typed("at+jwt", claims, secret)
}

/// [`sign_claims`] with another `typ` header.
pub fn sign_claims_typed(typ: &str, claims: &serde_json::Value, secret: &[u8]) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("sign claims")
}

/// A token built by hand from `header` and `claims` (base64url JSON) and `signature` as
/// given: for `alg: none`, stripped or swapped signatures and other forgeries.
pub fn forge_token(
    header: &serde_json::Value,
    claims: &serde_json::Value,
    signature: &str,
) -> String {
    format!(
        "{}.{}.{signature}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    )
}

/// Unpadded base64url (RFC 4648 §5), as JWS uses.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..=group.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Raises this process's open-file soft limit to at least `wanted` (up to the hard limit);
/// returns the limit in force. Tests holding thousands of sockets call it first.
pub fn raise_fd_limit(wanted: u64) -> u64 {
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap_or((0, 0));
    if soft >= wanted {
        return soft;
    }
    let target = wanted.min(hard);
    match rlimit::Resource::NOFILE.set(target, hard) {
        Ok(()) => target,
        Err(_) => soft,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(super::base64url(input.as_bytes()), expected, "{input:?}");
        }
        assert_eq!(super::base64url(&[0xfb, 0xff]), "-_8");
    }
}
