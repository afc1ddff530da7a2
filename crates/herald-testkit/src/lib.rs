//! Shared test helpers for Herald's integration tests (not published).
//!
//! - [`TestHub`]: a real hub serving on `127.0.0.1:0`, with a memory or redb store.
//! - [`raw`]: HTTP/1.1 over a plain `TcpStream`, so tests assert the exact bytes on the wire
//!   (including a de-chunked event stream, [`raw::RawStream`]).
//! - [`process`]: `herald serve` processes ([`process::HubProcess`]) and a `redis-server`
//!   the test owns, for cluster and crash tests.

pub mod process;
pub mod raw;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use herald_hub::auth::{TokenVerifier, VerifierConfig};
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
        let task = tokio::spawn(herald_hub::http::serve(
            listener,
            hub.clone(),
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
