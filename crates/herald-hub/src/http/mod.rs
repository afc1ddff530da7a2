//! The hub's HTTP interface: routing, and serving connections (HTTP/1.1 subscriptions on the
//! [`lean`] path, everything else with hyper).
//!
//! Routes (for the default hub path):
//! - `GET /.well-known/mercure`: subscribe ([`subscribe`])
//! - `POST /.well-known/mercure`: publish ([`publish`])
//! - `GET /.well-known/mercure/subscriptions[/…]`: active subscriptions ([`subscriptions`])
//! - `POST /.well-known/mercure/end`: end streams, 204 afterwards ([`end`])
//! - `GET /.well-known/oauth-protected-resource/.well-known/mercure`: metadata
//! - `GET /healthz`, `GET /readyz`, `GET /metrics` ([`metrics`](crate::metrics))
//! - `OPTIONS *`: CORS preflight ([`cors`])
//! - `GET /`, `/dashboard`, `/playground`, `/assets/…`, `/herald/stats`, `/herald/info`:
//!   pages for people ([`pages`], unless `HubConfig::pages` is off)
//!
//! Every response carries the discovery `Link: <hub>; rel="mercure"` header and, for allowed
//! origins, the CORS headers.

// Handlers return a ready `Response` as their error so a refusal is built where its reason is
// known; it happens once per refused request, never on the delivery path.
#![allow(clippy::result_large_err)]

mod access;
mod cors;
mod discovery;
mod end;
pub mod form;
mod lean;
pub(crate) mod limits;
pub(crate) mod opening;
mod pages;
mod publish;
mod response;
mod server;
mod subscribe;
mod subscriptions;
pub mod tls;
mod token;

use std::future::Future;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, request};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::hub::Hub;
pub use access::X_REQUEST_ID;
pub use publish::{PublishRefusal, publish_fields};
pub use response::HubBody;
pub use server::{DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_SEND_BUFFER, ServerOptions};
pub use subscribe::MERCURE_LAST_EVENT_ID;

/// Routes one request.
pub async fn handle(hub: Hub, request: Request<Incoming>) -> Response<HubBody> {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let config = hub.config();
    let hub_path = config.hub_path();
    let path = request.uri().path();
    let mut response = if request.method() == Method::OPTIONS {
        cors::preflight(config, origin.as_ref())
    } else if path == hub_path {
        match *request.method() {
            Method::GET => subscribe::subscribe(&hub, request).await,
            Method::POST => publish::publish(&hub, request).await,
            _ => {
                let mut response = response::text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "use GET to subscribe or POST to publish",
                );
                response.headers_mut().insert(
                    header::ALLOW,
                    HeaderValue::from_static("GET, POST, OPTIONS"),
                );
                response
            }
        }
    } else if path.starts_with(&format!("{hub_path}/subscriptions"))
        && request.method() == Method::GET
    {
        let path = path.to_owned();
        subscriptions::subscriptions(&hub, &request, &path)
    } else if path == format!("{hub_path}/end") && request.method() == Method::POST {
        end::end(&hub, request).await
    } else if path == format!("/.well-known/oauth-protected-resource{hub_path}") {
        discovery::metadata(&hub)
    } else if path == "/healthz" {
        discovery::healthz()
    } else if path == "/readyz" {
        discovery::readyz(&hub).await
    } else if path == "/metrics" && request.method() == Method::GET {
        let mut response = response::plain(StatusCode::OK, crate::metrics::render(&hub));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        );
        response
    } else if let Some(page) = pages::route(&hub, &request) {
        page
    } else {
        response::text(StatusCode::NOT_FOUND, format!("no such resource: {path}"))
    };
    finish(&hub, origin.as_ref(), &mut response);
    response
}

/// Serves a subscribe request that arrived on the lean HTTP/1.1 path (a `GET` of the hub
/// path without a body): the same handler and headers as through [`handle`].
pub(crate) async fn handle_subscribe(hub: &Hub, head: &request::Parts) -> Response<HubBody> {
    let mut response = subscribe::subscribe_head(hub, head, false).await;
    finish(hub, head.headers.get(header::ORIGIN), &mut response);
    response
}

/// The headers every response carries: the discovery link and, for allowed origins, CORS.
fn finish(hub: &Hub, origin: Option<&HeaderValue>, response: &mut Response<HubBody>) {
    if let Some(link) = hub.link_header() {
        response
            .headers_mut()
            .entry(header::LINK)
            .or_insert_with(|| link.clone());
    }
    cors::apply(hub.config(), origin, response);
}

/// Serves the hub on `listener` (plain TCP: HTTP/1.1, and HTTP/2 with prior knowledge)
/// until `shutdown` completes, then shuts down gracefully: stops accepting, closes every
/// stream with a `retry` hint, and waits up to `grace` for in-flight requests (publishes
/// already accepted are committed before they are answered).
pub async fn serve(
    listener: TcpListener,
    hub: Hub,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    server::run(listener, hub, ServerOptions::default(), shutdown, grace).await
}

/// [`serve`] with transport options: TLS (ALPN `h2` and `http/1.1`, reloadable
/// certificates, see [`tls`]) or plain TCP with or without h2c. Every transport reaches the
/// same [`handle`], with a request id and an access log line per request.
pub async fn serve_with(
    listener: TcpListener,
    hub: Hub,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    server::run(listener, hub, options, shutdown, grace).await
}
