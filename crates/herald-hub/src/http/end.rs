//! `POST /.well-known/mercure/end`: ending a stream from the server side (a Herald extension).
//!
//! The body is a publish form: `topic` (one or more) names the streams to end; when `data` or
//! `type` is present, that update is published first as the stream's final event. Every
//! subscriber listening only to these topics receives it, then its stream closes; for the
//! configured window (`--ended-ttl`) a new subscribe to exactly these topics answers 204,
//! which makes `EventSource` stop reconnecting. The next publish to a topic starts a new
//! stream on it. Authorization is the same as publishing to every topic.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::http::form;
use crate::http::publish::authorized_update;
use crate::http::response::{HubBody, json, text};
use crate::hub::Hub;

/// Handles an end request.
pub(crate) async fn end(hub: &Hub, request: Request<Incoming>) -> Response<HubBody> {
    let (fields, body) = match authorized_update(hub, request).await {
        Ok(authorized) => authorized,
        Err(refusal) => return refusal,
    };
    let has_final_event = form::parse(&body)
        .map(|pairs| {
            pairs
                .iter()
                .any(|(name, _)| name == "data" || name == "type")
        })
        .unwrap_or(false);
    let topics = fields.topics.clone();
    let final_update = has_final_event.then_some(fields);
    match hub.end_topics(&topics, final_update).await {
        Ok(closed) => json(
            StatusCode::OK,
            &json!({
                "topics": topics,
                "closed": closed,
                "ended_for_seconds": hub.config().ended_ttl.as_secs(),
            }),
        ),
        Err(error) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ended: {error}"),
        ),
    }
}
