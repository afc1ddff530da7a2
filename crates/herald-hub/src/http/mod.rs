//! The hub's HTTP interface: routing, and serving connections with hyper.
//!
//! Routes (for the default hub path):
//! - `GET /.well-known/mercure`: subscribe ([`subscribe`])
//! - `POST /.well-known/mercure`: publish ([`publish`])
//! - `GET /.well-known/mercure/subscriptions[/…]`: active subscriptions ([`subscriptions`])
//! - `POST /.well-known/mercure/end`: end streams, 204 afterwards ([`end`])
//! - `GET /.well-known/oauth-protected-resource/.well-known/mercure`: metadata
//! - `GET /healthz`, `GET /readyz`
//! - `OPTIONS *`: CORS preflight ([`cors`])
//!
//! Every response carries the discovery `Link: <hub>; rel="mercure"` header and, for allowed
//! origins, the CORS headers.

// Handlers return a ready `Response` as their error so a refusal is built where its reason is
// known; it happens once per refused request, never on the delivery path.
#![allow(clippy::result_large_err)]

mod cors;
mod discovery;
mod end;
pub mod form;
mod publish;
mod response;
mod subscribe;
mod subscriptions;
mod token;

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::hub::Hub;
pub use response::HubBody;
pub use subscribe::MERCURE_LAST_EVENT_ID;

/// How long a client may take to send its request head (cuts off slowloris clients).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

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
    } else {
        response::text(StatusCode::NOT_FOUND, format!("no such resource: {path}"))
    };
    let link = format!("<{}>; rel=\"mercure\"", config.hub_url);
    if let Ok(link) = HeaderValue::from_str(&link) {
        response.headers_mut().entry(header::LINK).or_insert(link);
    }
    cors::apply(config, origin.as_ref(), &mut response);
    response
}

/// Serves the hub on `listener` until `shutdown` completes, then shuts down gracefully:
/// stops accepting, closes every stream with a `retry` hint, and waits up to `grace` for
/// in-flight requests (publishes already accepted are committed before they are answered).
pub async fn serve(
    listener: TcpListener,
    hub: Hub,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors or similar: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let hub = hub.clone();
                let service = service_fn(move |request| {
                    let hub = hub.clone();
                    async move { Ok::<_, Infallible>(handle(hub, request).await) }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    hub.shutdown(grace).await;
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("connections still open after the grace period; closing");
        }
    }
    Ok(())
}
