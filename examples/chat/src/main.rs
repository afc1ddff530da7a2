//! Chat: rooms on a Herald hub embedded in the app. Messages are posted with ordinary HTTP
//! requests (`POST /rooms/{room}/messages`, form fields `name` and `text`); the app publishes
//! them as JSON to the room's topic, and every tab in the room receives them over SSE. Pages
//! ask for the room's history when they open and resume by `Last-Event-ID` when they
//! reconnect, so nobody misses a message.
//!
//! Run with: `cargo run -p chat` (listens on `CHAT_LISTEN`, default `127.0.0.1:3003`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald_hub::http::HubBody;
use herald_hub::store::memory::MemoryStore;
use herald_hub::{Hub, HubConfig, UpdateFields};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Rooms the app serves; a fixed list keeps topics (and history) bounded.
const ROOMS: &[&str] = &["general", "random", "rust"];
/// Largest message form accepted, in bytes.
const MAX_FORM: usize = 4096;
/// Messages retained across all rooms for history and resume.
const HISTORY: usize = 1000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::var("CHAT_LISTEN").unwrap_or_else(|_| "127.0.0.1:3003".to_owned());
    let listener = TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    let mut config = HubConfig::new(format!("http://{addr}").parse()?);
    // Pages subscribe without a token; the app publishes in-process, so no verifier.
    config.anonymous = true;
    config.retry = Duration::from_millis(500);
    let hub = Hub::start(config, Arc::new(MemoryStore::new(HISTORY)), None).await?;
    println!("Chat listening on http://{addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let hub = hub.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| route(hub.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(hub: Hub, request: Request<Incoming>) -> Result<Response<HubBody>, Infallible> {
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET && path == "/" {
        return Ok(asset("text/html; charset=utf-8", include_str!("page.html")));
    }
    if request.method() == Method::GET && path == "/chat.js" {
        return Ok(asset(
            "text/javascript; charset=utf-8",
            include_str!("chat.js"),
        ));
    }
    if request.method() == Method::POST
        && let Some(room) = path
            .strip_prefix("/rooms/")
            .and_then(|rest| rest.strip_suffix("/messages"))
    {
        let Some(room) = ROOMS.iter().find(|known| **known == room) else {
            return Ok(text(StatusCode::NOT_FOUND, "no such room\n"));
        };
        return Ok(post(&hub, room, request).await);
    }
    Ok(herald_hub::http::handle(hub, request).await)
}

/// Publishes one message to `room`.
async fn post(hub: &Hub, room: &str, request: Request<Incoming>) -> Response<HubBody> {
    let Ok(body) = Limited::new(request.into_body(), MAX_FORM).collect().await else {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "message too large\n");
    };
    let (mut name, mut message) = (String::new(), String::new());
    for (key, value) in form_urlencoded::parse(&body.to_bytes()) {
        match &*key {
            "name" => name = value.chars().take(40).collect(),
            "text" => message = value.chars().take(500).collect(),
            _ => {}
        }
    }
    let name = name.trim();
    if message.trim().is_empty() {
        return text(StatusCode::BAD_REQUEST, "empty message\n");
    }
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    let data = serde_json::json!({
        "name": if name.is_empty() { "anonymous" } else { name },
        "text": message,
        "time": time,
    });
    let fields = UpdateFields {
        id: format!("urn:chat:{room}:{time}:{}", next_suffix()),
        topics: vec![format!("https://example.com/rooms/{room}")],
        data: data.to_string(),
        ..UpdateFields::default()
    };
    match hub.publish(fields).await {
        Ok(_) => text(StatusCode::OK, "sent\n"),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "the hub refused\n"),
    }
}

/// A per-process counter keeps ids unique when two messages share a millisecond.
fn next_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
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
