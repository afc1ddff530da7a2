//! Client stream: a Herald hub embedded in an app whose backend opens a stream for one client
//! id, sends to it many times, then ends it for good with [`Hub::end_topics`]. After the end,
//! the hub answers the browser's next reconnection with 204, so `EventSource` stops.
//!
//! Routes: `/` (the page), `/client-stream.js`, `POST /clients/{id}/start`,
//! `POST /clients/{id}/send?text=…`, `POST /clients/{id}/end`; everything else goes to the hub
//! ([`herald_hub::http::handle`]).
//!
//! Run with: `cargo run -p client-stream` (listens on `CLIENT_STREAM_LISTEN`, default
//! `127.0.0.1:3002`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use herald_hub::http::HubBody;
use herald_hub::store::memory::MemoryStore;
use herald_hub::{Hub, HubConfig, UpdateFields};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The app's state: the hub, and the counter its event ids come from.
#[derive(Clone)]
struct App {
    hub: Hub,
    ids: Arc<AtomicU64>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen =
        std::env::var("CLIENT_STREAM_LISTEN").unwrap_or_else(|_| "127.0.0.1:3002".to_owned());
    let listener = TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    let mut config = HubConfig::new(format!("http://{addr}").parse()?);
    // Pages subscribe without a token; the backend publishes in-process, so no verifier.
    config.anonymous = true;
    config.retry = Duration::from_millis(500);
    let hub = Hub::start(config, Arc::new(MemoryStore::new(1000)), None).await?;
    println!("Client stream listening on http://{addr}");
    let app = App {
        hub,
        ids: Arc::new(AtomicU64::new(0)),
    };
    loop {
        let (stream, _) = listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| route(app.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl App {
    fn update(&self, topic: &str, event_type: Option<&str>, data: String) -> UpdateFields {
        UpdateFields {
            id: format!("client-{}", self.ids.fetch_add(1, Ordering::Relaxed) + 1),
            topics: vec![topic.to_owned()],
            event_type: event_type.map(str::to_owned),
            data,
            ..UpdateFields::default()
        }
    }

    /// Runs one backend action on the stream of `client`.
    async fn act(&self, client: &str, action: &str, query: Option<&str>) -> Response<HubBody> {
        let topic = format!("https://example.com/clients/{client}");
        let result = match action {
            "start" => self
                .hub
                .publish(self.update(&topic, Some("start"), "stream open".to_owned()))
                .await
                .map(drop),
            "send" => {
                let text = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                    .find(|(name, _)| name == "text")
                    .map(|(_, value)| value.into_owned())
                    .unwrap_or_default();
                self.hub
                    .publish(self.update(&topic, None, text))
                    .await
                    .map(drop)
            }
            "end" => {
                let end = self.update(&topic, Some("end"), "goodbye".to_owned());
                self.hub.end_topics(&[topic], Some(end)).await.map(drop)
            }
            _ => return text(StatusCode::NOT_FOUND, "no such action\n"),
        };
        match result {
            Ok(()) => text(StatusCode::OK, "ok\n"),
            Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "the hub refused\n"),
        }
    }
}

async fn route(app: App, request: Request<Incoming>) -> Result<Response<HubBody>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    if request.method() == Method::GET && path == "/" {
        return Ok(asset("text/html; charset=utf-8", include_str!("page.html")));
    }
    if request.method() == Method::GET && path == "/client-stream.js" {
        let script = include_str!("client-stream.js");
        return Ok(asset("text/javascript; charset=utf-8", script));
    }
    if request.method() == Method::POST
        && let Some(rest) = path.strip_prefix("/clients/")
        && let Some((client, action)) = rest.split_once('/')
    {
        // Client ids become part of a topic: keep them to a safe alphabet.
        let valid = !client.is_empty()
            && client.len() <= 64
            && client
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Ok(text(StatusCode::BAD_REQUEST, "bad client id\n"));
        }
        return Ok(app.act(client, action, query.as_deref()).await);
    }
    Ok(herald_hub::http::handle(app.hub, request).await)
}

fn text(status: StatusCode, body: &'static str) -> Response<HubBody> {
    let mut response = asset("text/plain; charset=utf-8", body);
    *response.status_mut() = status;
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response<HubBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed_unsync());
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
