//! `GET /.well-known/mercure`: opening a subscription stream.
//!
//! Query parameters (draft-08): `match` / `match_exact` (exact topic), `match_urlpattern`
//! (WHATWG URL Pattern), any of them `*`; `last_event_id`. With `--legacy` also `topic`
//! (exact, URI template or `*`), `lastEventID` and the `authorization` token parameter.
//! The `Last-Event-ID` header wins over the query parameters.
//!
//! Security: selectors only route; they never grant access to private updates. That is
//! decided per update by the token's grants (see `Subscriber::wants`).

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::form;
use crate::http::response::{BearerError, HubBody, bearer, empty, text};
use crate::http::token::authenticate;
use crate::hub::{Hub, OpenError, OpenRequest, Resume};
use crate::selector::{MatcherType, Selector};
use crate::subscriber::Subscription;

/// The response header carrying the resume cursor (draft-08).
pub const MERCURE_LAST_EVENT_ID: &str = "mercure-last-event-id";

/// A parsed, not yet authorized, subscribe request.
#[derive(Debug)]
pub(crate) struct SubscribeQuery {
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) resume: Resume,
    /// Whether the request used the legacy dialect (answered with legacy headers too).
    pub(crate) legacy: bool,
}

/// Parses the query string and `Last-Event-ID` header of a subscribe request.
pub(crate) fn parse_query(
    hub: &Hub,
    query: &str,
    last_event_id_header: Option<&HeaderValue>,
) -> Result<SubscribeQuery, String> {
    let config = hub.config();
    let pairs = form::parse(query.as_bytes()).map_err(|error| format!("query: {error}"))?;
    let mut subscriptions = Vec::new();
    let mut last_event_id = None;
    let mut legacy = false;
    for (name, value) in pairs {
        let selector = match name.as_str() {
            "match" | "match_exact" => {
                Selector::parse(MatcherType::Exact, &value, &config.hub_url)
            }
            "match_urlpattern" => {
                Selector::parse(MatcherType::UrlPattern, &value, &config.hub_url)
            }
            _ if name.len() >= 5 && name[..5].eq_ignore_ascii_case("match") => {
                return Err(format!(
                    "unsupported matcher parameter {name:?}: use match, match_exact or match_urlpattern"
                ));
            }
            "topic" if config.legacy => {
                legacy = true;
                Selector::legacy_topic(&value)
            }
            "topic" => {
                return Err(
                    "the topic parameter belongs to the pre-standard protocol: use match= \
                     (or start the hub with --legacy)"
                        .to_owned(),
                );
            }
            "last_event_id" => {
                last_event_id.get_or_insert(value);
                continue;
            }
            "lastEventID" if config.legacy => {
                legacy = true;
                last_event_id.get_or_insert(value);
                continue;
            }
            _ => continue,
        }
        .map_err(|error| format!("{name}={value:?}: {error}"))?;
        if subscriptions.len() == config.max_selectors {
            return Err(format!(
                "more than {} selectors in one request",
                config.max_selectors
            ));
        }
        subscriptions.push(Subscription {
            selector,
            payload: None,
            legacy: name == "topic",
        });
    }
    if subscriptions.is_empty() {
        return Err(if config.legacy {
            "at least one match, match_urlpattern or topic parameter is required".to_owned()
        } else {
            "at least one match or match_urlpattern parameter is required".to_owned()
        });
    }
    if let Some(header) = last_event_id_header {
        let value = std::str::from_utf8(header.as_bytes())
            .map_err(|_| "the Last-Event-ID header is not valid UTF-8".to_owned())?;
        last_event_id = Some(value.to_owned());
    }
    let resume = match last_event_id {
        None => Resume::Live,
        Some(id) if id == "earliest" => Resume::Earliest,
        // An empty Last-Event-ID is what a browser sends after an event reset the id:
        // there is no cursor, so it is a live subscription.
        Some(id) if id.is_empty() => Resume::Live,
        Some(id) => Resume::After(id),
    };
    Ok(SubscribeQuery {
        subscriptions,
        resume,
        legacy,
    })
}

/// Handles a subscribe request.
pub(crate) async fn subscribe(hub: &Hub, request: Request<Incoming>) -> Response<HubBody> {
    let query = request.uri().query().unwrap_or("");
    let parsed = match parse_query(hub, query, request.headers().get("last-event-id")) {
        Ok(parsed) => parsed,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let claims = match authenticate(hub, request.headers(), Some(query)) {
        Ok(claims) => claims,
        Err(refusal) => return refusal,
    };
    if claims.is_none() && !hub.config().anonymous {
        return bearer(
            hub,
            BearerError::Missing,
            "subscribing needs an access token on this hub (or start it with --anonymous)",
        );
    }
    let mut subscriptions = parsed.subscriptions;
    if let Some(claims) = &claims {
        for subscription in &mut subscriptions {
            subscription.payload = claims.payload_for(subscription.selector.raw()).cloned();
        }
    }
    let opened = match hub
        .open(OpenRequest {
            subscriptions,
            claims,
            resume: parsed.resume,
        })
        .await
    {
        Ok(opened) => opened,
        Err(OpenError::Ended) => {
            // 204 is the one answer that makes EventSource stop reconnecting for good.
            let mut response = Response::new(empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            return response;
        }
        Err(OpenError::Store(error)) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot resume: {error}"),
            );
        }
        Err(OpenError::ShuttingDown) => {
            let mut response = text(StatusCode::SERVICE_UNAVAILABLE, "the hub is shutting down");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    };
    let resumed_from = opened.resumed_from.clone();
    let mut response = Response::new(http_body_util::BodyExt::boxed_unsync(opened.stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Some(cursor) = resumed_from.and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok()) {
        headers.insert(MERCURE_LAST_EVENT_ID, cursor.clone());
        if parsed.legacy {
            headers.insert("last-event-id", cursor);
        }
    }
    response
}
