//! Pages for people: the home page, the live dashboard and the playground, and the JSON the
//! dashboard is fed with.
//!
//! The files live in `web/` at the repository root (plain HTML, CSS and ES modules, no build
//! step) and are compiled into the hub with `include_str!`, so a single binary serves them.
//!
//! - `GET /`, `/dashboard`, `/playground`: the pages.
//! - `GET /assets/…`: their style sheet, scripts and icon.
//! - `GET /herald/stats`: an event stream with one JSON snapshot of the hub's counters per
//!   second (connections, topics, totals and rates, retained history), for the dashboard.
//! - `GET /herald/info`: what the playground needs to know about the hub (hub URL, cookie
//!   name, whether anonymous subscribers are allowed).
//!
//! Everything here is off with `HubConfig::pages = false` (`--no-pages`); the counters are
//! not secret, but an operator may not want them public.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::response::{self, HubBody};
use crate::hub::Hub;

/// One embedded file: its path, media type and contents.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file under `web/`, by the path it is served at.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../../../web/index.html"),
    },
    Asset {
        path: "/dashboard",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../../../web/dashboard.html"),
    },
    Asset {
        path: "/playground",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../../../web/playground.html"),
    },
    Asset {
        path: "/assets/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../../../web/assets/style.css"),
    },
    Asset {
        path: "/assets/site.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../web/assets/site.js"),
    },
    Asset {
        path: "/assets/dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../web/assets/dashboard.js"),
    },
    Asset {
        path: "/assets/playground.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../web/assets/playground.js"),
    },
    Asset {
        path: "/assets/favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../../../web/assets/favicon.svg"),
    },
];

/// The pages only talk to the hub that served them; a strict policy makes an injected
/// script inert even if a bug ever let one into the DOM.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// Interval between two stats snapshots.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Answers a page request, or `None` when `request` is not for a page (or pages are off).
pub(crate) fn route<B>(hub: &Hub, request: &Request<B>) -> Option<Response<HubBody>> {
    if !hub.config().pages || request.method() != Method::GET {
        return None;
    }
    let path = request.uri().path();
    match path {
        "/herald/stats" => return Some(stats(hub)),
        "/herald/info" => return Some(info(hub)),
        _ => {}
    }
    let asset = ASSETS.iter().find(|asset| asset.path == path)?;
    let mut response = response::plain(StatusCode::OK, asset.body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Small files from memory: revalidating costs nothing and a new binary shows at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Some(response)
}

/// `GET /herald/info`: the settings a page needs to build requests.
fn info(hub: &Hub) -> Response<HubBody> {
    let config = hub.config();
    let mut response = response::json(
        StatusCode::OK,
        &serde_json::json!({
            "hub_url": config.hub_url.as_str(),
            "cookie_name": config.cookie_name,
            "anonymous": config.anonymous,
            "legacy": config.legacy,
            "store": hub.store().kind(),
            "version": env!("CARGO_PKG_VERSION"),
        }),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /herald/stats`: one `data:` JSON snapshot per second until the client leaves or
/// the hub shuts down.
fn stats(hub: &Hub) -> Response<HubBody> {
    // Two frames of slack: a client that stops reading makes the sender wait, not pile up.
    let (frames, receiver) = mpsc::channel(2);
    tokio::spawn(stats_loop(hub.clone(), frames));
    let mut response = Response::new(ChannelBody { receiver }.boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Samples the hub's counters every [`STATS_INTERVAL`] and sends each snapshot as an event.
/// Ends when the response is dropped (the send fails) or the hub shuts down.
async fn stats_loop(hub: Hub, frames: mpsc::Sender<Bytes>) {
    use std::sync::atomic::Ordering::Relaxed;

    if frames
        .send(Bytes::from_static(b"retry: 1000\n\n"))
        .await
        .is_err()
    {
        return;
    }
    let mut interval = tokio::time::interval(STATS_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<(u64, u64, tokio::time::Instant)> = None;
    loop {
        interval.tick().await;
        if hub.is_shutting_down() {
            return;
        }
        let stats = hub.stats();
        let published = stats.published.load(Relaxed);
        let delivered = stats.delivered.load(Relaxed);
        let now = tokio::time::Instant::now();
        let (publish_rate, delivery_rate) = match previous {
            Some((last_published, last_delivered, then)) => {
                let seconds = now.duration_since(then).as_secs_f64().max(1e-3);
                (
                    published.saturating_sub(last_published) as f64 / seconds,
                    delivered.saturating_sub(last_delivered) as f64 / seconds,
                )
            }
            None => (0.0, 0.0),
        };
        previous = Some((published, delivered, now));
        // A store that cannot answer shows as unknown history; the other counters still
        // tell the operator something.
        let history = match hub.store().bounds().await {
            Ok(bounds) => serde_json::json!({
                "retained": bounds.oldest.map_or(0, |oldest| bounds.last.saturating_sub(oldest) + 1),
                "oldest_seq": bounds.oldest,
                "last_seq": bounds.last,
                "last_id": bounds.last_id,
            }),
            Err(_) => serde_json::Value::Null,
        };
        let snapshot = serde_json::json!({
            "time": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_millis() as u64),
            "connections": hub.subscriber_count(),
            "topics": hub.topic_count(),
            "published": published,
            "delivered": delivered,
            "overflows": stats.overflows.load(Relaxed),
            "replays": stats.replays.load(Relaxed),
            "connections_total": stats.connections_total.load(Relaxed),
            "store_errors": stats.store_errors.load(Relaxed),
            "publish_rate": publish_rate,
            "delivery_rate": delivery_rate,
            "history": history,
            "store": hub.store().kind(),
        });
        // JSON from serde_json is one line, so one `data:` field carries it.
        let frame = format!("data: {snapshot}\n\n");
        if frames.send(Bytes::from(frame)).await.is_err() {
            return;
        }
    }
}

/// A response body fed by a channel; ends when the sender is dropped.
struct ChannelBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.receiver
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_links_only_to_assets_that_exist() {
        for asset in ASSETS
            .iter()
            .filter(|a| a.content_type.starts_with("text/html"))
        {
            for part in asset.body.split("\"/assets/").skip(1) {
                let name = part.split('"').next().unwrap_or_default();
                let path = format!("/assets/{name}");
                assert!(
                    ASSETS.iter().any(|a| a.path == path),
                    "{} links to missing {path}",
                    asset.path
                );
            }
        }
    }

    #[test]
    fn pages_carry_no_inline_script_or_style() {
        // The content security policy forbids them; they would fail silently in a browser.
        for asset in ASSETS
            .iter()
            .filter(|a| a.content_type.starts_with("text/html"))
        {
            assert!(!asset.body.contains("<script>"), "{}", asset.path);
            assert!(!asset.body.contains("<style"), "{}", asset.path);
            assert!(!asset.body.contains(" style=\""), "{}", asset.path);
            assert!(!asset.body.contains(" onclick="), "{}", asset.path);
        }
    }
}
