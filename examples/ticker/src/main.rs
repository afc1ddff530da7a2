//! Ticker: a Herald hub embedded in a small app that publishes the time every second, and a
//! finite stream (three values, a `bye` event, then [`Hub::end_topics`] so the browser's next
//! reconnection gets 204 and `EventSource` stops).
//!
//! Routes: `/` (the page), `/ticker.js`, `POST /finite/start?session=…`; everything else goes
//! to the hub ([`herald_hub::http::handle`]), including the subscribe endpoint and the hub's
//! style sheet under `/assets/`.
//!
//! Run with: `cargo run -p ticker` (listens on `TICKER_LISTEN`, default `127.0.0.1:3001`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// The topic of the every-second ticker.
const TICKER_TOPIC: &str = "https://example.com/ticker";
/// How many values the finite stream sends before `bye`.
const FINITE_VALUES: u32 = 3;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::var("TICKER_LISTEN").unwrap_or_else(|_| "127.0.0.1:3001".to_owned());
    let listener = TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    let mut config = HubConfig::new(format!("http://{addr}").parse()?);
    // The page subscribes without a token; the app publishes in-process, so no verifier.
    config.anonymous = true;
    config.retry = Duration::from_millis(500);
    let hub = Hub::start(config, Arc::new(MemoryStore::new(1000)), None).await?;
    println!("Ticker listening on http://{addr}");

    let ids = Arc::new(AtomicU64::new(0));
    tokio::spawn(tick(hub.clone(), ids.clone()));
    loop {
        let (stream, _) = listener.accept().await?;
        let (hub, ids) = (hub.clone(), ids.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| route(hub.clone(), ids.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Publishes the time in milliseconds since the epoch every second.
async fn tick(hub: Hub, ids: Arc<AtomicU64>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    loop {
        interval.tick().await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        let _ = hub
            .publish(update(&ids, TICKER_TOPIC, None, now.to_string()))
            .await;
    }
}

fn update(ids: &AtomicU64, topic: &str, event_type: Option<&str>, data: String) -> UpdateFields {
    UpdateFields {
        id: format!("ticker-{}", ids.fetch_add(1, Ordering::Relaxed) + 1),
        topics: vec![topic.to_owned()],
        event_type: event_type.map(str::to_owned),
        data,
        ..UpdateFields::default()
    }
}

/// Sends the finite stream for one session: three values, then `bye` and the end.
async fn finite(hub: Hub, ids: Arc<AtomicU64>, session: String) {
    let topic = format!("https://example.com/finite/{session}");
    for value in 1..=FINITE_VALUES {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = hub
            .publish(update(&ids, &topic, None, value.to_string()))
            .await;
    }
    let bye = update(&ids, &topic, Some("bye"), "that is all".to_owned());
    let _ = hub.end_topics(&[topic], Some(bye)).await;
}

async fn route(
    hub: Hub,
    ids: Arc<AtomicU64>,
    request: Request<Incoming>,
) -> Result<Response<HubBody>, Infallible> {
    let path = request.uri().path();
    Ok(match (request.method(), path) {
        (&Method::GET, "/") => asset("text/html; charset=utf-8", include_str!("page.html")),
        (&Method::GET, "/ticker.js") => {
            asset("text/javascript; charset=utf-8", include_str!("ticker.js"))
        }
        (&Method::POST, "/finite/start") => {
            let session = request
                .uri()
                .query()
                .and_then(|query| query.strip_prefix("session="))
                .filter(|s| {
                    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
                .map(str::to_owned);
            match session {
                Some(session) => {
                    tokio::spawn(finite(hub, ids, session));
                    asset("text/plain; charset=utf-8", "started\n")
                }
                None => {
                    let mut response = asset("text/plain; charset=utf-8", "bad session\n");
                    *response.status_mut() = StatusCode::BAD_REQUEST;
                    response
                }
            }
        }
        _ => herald_hub::http::handle(hub, request).await,
    })
}

fn asset(content_type: &'static str, body: &'static str) -> Response<HubBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed_unsync());
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
