//! Notifications: a live unread badge fed by **private** updates on a per-user topic. The app
//! (one origin) signs the user in by setting a subscribe-only JWT in an **HttpOnly** cookie;
//! the page subscribes to the hub (another origin, same host) with
//! `EventSource(url, { withCredentials: true })`, allowed by the hub's CORS allowlist. A page
//! without the cookie, or with another user's, never sees these updates.
//!
//! Run with: `cargo run -p notifications` (app on `NOTIFICATIONS_APP_LISTEN`, default
//! `127.0.0.1:3004`; hub on `NOTIFICATIONS_HUB_LISTEN`, default `127.0.0.1:3005`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use herald_hub::auth::{TokenVerifier, VerifierConfig};
use herald_hub::http::HubBody;
use herald_hub::mint::TokenRequest;
use herald_hub::store::memory::MemoryStore;
use herald_hub::{Hub, HubConfig, UpdateFields};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The cookie carrying the hub token. Cookies are scoped by host, not port, so the browser
/// sends the app's cookie to the hub on the same host.
const COOKIE_NAME: &str = "herald_token";
/// Who issues the tokens the hub accepts.
const ISSUER: &str = "https://notifications.example";

/// The app's state.
#[derive(Clone)]
struct App {
    hub: Hub,
    secret: Arc<Vec<u8>>,
    hub_origin: String,
    ids: Arc<AtomicU64>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let app_listener = TcpListener::bind(env("NOTIFICATIONS_APP_LISTEN", "127.0.0.1:3004")).await?;
    let hub_listener = TcpListener::bind(env("NOTIFICATIONS_HUB_LISTEN", "127.0.0.1:3005")).await?;
    let (app_addr, hub_addr) = (app_listener.local_addr()?, hub_listener.local_addr()?);
    let hub_origin = format!("http://{hub_addr}");
    // A fresh secret per run: tokens from an earlier run are simply invalid.
    let secret: Vec<u8> = (0..4).flat_map(|_| uuid_bytes()).collect();

    let mut config = HubConfig::new(hub_origin.parse()?);
    config.cors_origins = vec![format!("http://{app_addr}")];
    config.cookie_name = COOKIE_NAME.to_owned();
    config.retry = Duration::from_millis(500);
    let verifier = TokenVerifier::new(VerifierConfig {
        hmac_secret: Some(secret.clone()),
        public_key_pem: None,
        issuer: Some(ISSUER.to_owned()),
        audience: config.hub_url.to_string(),
        legacy: false,
        hub_url: config.hub_url.clone(),
    })?;
    let hub = Hub::start(config, Arc::new(MemoryStore::new(1000)), Some(verifier)).await?;
    tokio::spawn(herald_hub::http::serve(
        hub_listener,
        hub.clone(),
        std::future::pending(),
        Duration::from_secs(1),
    ));
    println!("Notifications listening on http://{app_addr} (hub on {hub_origin})");

    let app = App {
        hub,
        secret: Arc::new(secret),
        hub_origin,
        ids: Arc::new(AtomicU64::new(0)),
    };
    loop {
        let (stream, _) = app_listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| route(app.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// 16 random bytes (UUID v4 randomness).
fn uuid_bytes() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

fn topic(user: &str) -> String {
    format!("https://example.com/users/{user}/notifications")
}

/// The signed-in user from the cookie-free `user` query (the page) or the app's own session
/// cookie. A real app has a login; here the name is the whole session.
fn user_of(request: &Request<Incoming>) -> Option<String> {
    let from_query = request
        .uri()
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "user"))
        .map(|(_, v)| v.into_owned());
    let from_cookie = request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix("notifications_user="))
        .map(str::to_owned)
        .next();
    from_query
        .or(from_cookie)
        .filter(|u| !u.is_empty() && u.len() <= 32 && u.bytes().all(|b| b.is_ascii_alphanumeric()))
}

async fn route(app: App, request: Request<Incoming>) -> Result<Response<HubBody>, Infallible> {
    let path = request.uri().path();
    Ok(match (request.method(), path) {
        (&Method::GET, "/") => {
            let Some(user) = user_of(&request) else {
                return Ok(text(StatusCode::BAD_REQUEST, "open /?user=alice\n"));
            };
            // Sign in: a token that may read only this user's topic, out of reach of scripts.
            let token = TokenRequest {
                publish: Vec::new(),
                subscribe: vec![topic(&user)],
                ttl: Duration::from_secs(3600),
                issuer: ISSUER.to_owned(),
                audience: format!("{}/.well-known/mercure", app.hub_origin),
                subject: user.clone(),
                legacy: false,
                payload: None,
            }
            .sign_hmac(&app.secret);
            let Ok(token) = token else {
                return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "cannot sign\n"));
            };
            let mut response = asset("text/html; charset=utf-8", include_str!("page.html"));
            for cookie in [
                format!("{COOKIE_NAME}={token}; HttpOnly; Path=/; SameSite=Lax; Max-Age=3600"),
                format!("notifications_user={user}; HttpOnly; Path=/; SameSite=Lax"),
            ] {
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(SET_COOKIE, value);
                }
            }
            response
        }
        (&Method::GET, "/notifications.js") => asset(
            "text/javascript; charset=utf-8",
            include_str!("notifications.js"),
        ),
        (&Method::GET, "/style.css") => asset(
            "text/css; charset=utf-8",
            include_str!("../../../web/assets/style.css"),
        ),
        (&Method::GET, "/favicon.svg") => asset(
            "image/svg+xml",
            include_str!("../../../web/assets/favicon.svg"),
        ),
        (&Method::GET, "/config") => match user_of(&request) {
            Some(user) => json(serde_json::json!({
                "user": user,
                "hub": app.hub_origin,
                "topic": topic(&user),
            })),
            None => text(StatusCode::UNAUTHORIZED, "not signed in\n"),
        },
        (&Method::POST, "/notify") => match user_of(&request) {
            Some(user) => {
                let n = app.ids.fetch_add(1, Ordering::Relaxed) + 1;
                let fields = UpdateFields {
                    id: format!("notification-{n}"),
                    topics: vec![topic(&user)],
                    private: true,
                    event_type: Some("notification".to_owned()),
                    data: serde_json::json!({ "text": format!("Notification #{n} for {user}") })
                        .to_string(),
                    retry: None,
                };
                match app.hub.publish(fields).await {
                    Ok(_) => text(StatusCode::OK, "sent\n"),
                    Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "the hub refused\n"),
                }
            }
            None => text(StatusCode::UNAUTHORIZED, "not signed in\n"),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    })
}

fn json(value: serde_json::Value) -> Response<HubBody> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed_unsync());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<HubBody> {
    let mut response = asset("text/plain; charset=utf-8", body);
    *response.status_mut() = status;
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response<HubBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed_unsync());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
