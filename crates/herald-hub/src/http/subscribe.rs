//! `GET /.well-known/mercure`: opening a subscription stream.
//!
//! Query parameters (draft-08): `match` / `match_exact` (exact topic), `match_urlpattern`
//! (WHATWG URL Pattern), any of them `*`; `last_event_id`. With `--legacy` also `topic`
//! (exact, URI template or `*`), `lastEventID` and the `authorization` token parameter.
//! The `Last-Event-ID` header wins over the query parameters.
//!
//! Security: selectors only route; they never grant access to private updates. That is
//! decided per update by the token's grants (see `Subscriber::wants`).

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Version, request};
use hyper::body::{Body, Incoming};

use crate::http::form;
use crate::http::publish::MAX_EVENT_FIELD_LEN;
use crate::http::response::{BearerError, HubBody, bearer, empty, excerpt, text};
use crate::http::token::authenticate;
use crate::hub::{Hub, OpenError, OpenRequest, Resume};
use crate::selector::{MatcherType, Selector};
use crate::subscriber::Subscription;
use crate::topic::check_characters;

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
///
/// The resume cursor is single-valued: two `last_event_id` parameters (or two `lastEventID`,
/// or two `Last-Event-ID` headers) are refused, not resolved by picking one.
pub(crate) fn parse_query(
    hub: &Hub,
    query: &str,
    headers: &HeaderMap,
) -> Result<SubscribeQuery, String> {
    let config = hub.config();
    let pairs = form::pairs(query.as_bytes()).map_err(|error| format!("query: {error}"))?;
    let mut subscriptions = Vec::new();
    let mut last_event_id = None;
    let mut legacy = false;
    // Whether each cursor parameter was seen (a second one is refused).
    let (mut query_cursor, mut legacy_cursor) = (false, false);
    for (name, value) in pairs {
        let selector = match name.as_ref() {
            "match" | "match_exact" => {
                Selector::parse(MatcherType::Exact, &value, &config.hub_url)
            }
            "match_urlpattern" => {
                Selector::parse(MatcherType::UrlPattern, &value, &config.hub_url)
            }
            _ if name
                .as_bytes()
                .get(..5)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"match")) =>
            {
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
                if std::mem::replace(&mut query_cursor, true) {
                    return Err("last_event_id appears more than once; send it once".to_owned());
                }
                last_event_id.get_or_insert(value.into_owned());
                continue;
            }
            "lastEventID" if config.legacy => {
                if std::mem::replace(&mut legacy_cursor, true) {
                    return Err("lastEventID appears more than once; send it once".to_owned());
                }
                legacy = true;
                last_event_id.get_or_insert(value.into_owned());
                continue;
            }
            _ => continue,
        }
        .map_err(|error| format!("{name}={}: {error}", excerpt(&value)))?;
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
    let mut headers = headers.get_all("last-event-id").iter();
    if let Some(header) = headers.next() {
        if headers.next().is_some() {
            return Err("more than one Last-Event-ID header; send one".to_owned());
        }
        let value = std::str::from_utf8(header.as_bytes())
            .map_err(|_| "the Last-Event-ID header is not valid UTF-8".to_owned())?;
        last_event_id = Some(value.to_owned());
    }
    if let Some(id) = &last_event_id {
        // The same rules as the ids a publisher may set: nothing else can be in history.
        if id.len() > MAX_EVENT_FIELD_LEN {
            return Err(format!(
                "the last event id is {} bytes long; no id is longer than {MAX_EVENT_FIELD_LEN}",
                id.len()
            ));
        }
        check_characters(id).map_err(|error| format!("the last event id contains {error}"))?;
    }
    let resume = match last_event_id {
        None => Resume::Live,
        Some(id) if id == "earliest" => Resume::Earliest,
        // An empty Last-Event-ID is what a browser sends after an event reset the id:
        // there is no cursor, so it is a live subscription.
        Some(id) if id.is_empty() => Resume::Live,
        Some(id) => Resume::After(id),
    };
    // Kept for the stream's whole life: no spare capacity (a selector is ~150 bytes).
    subscriptions.shrink_to_fit();
    Ok(SubscribeQuery {
        subscriptions,
        resume,
        legacy,
    })
}

/// Whether a subscribe request carries a body: `Transfer-Encoding`, a non-zero
/// `Content-Length`, or (HTTP/2) DATA frames.
fn has_body(request: &Request<Incoming>) -> bool {
    request.headers().contains_key(header::TRANSFER_ENCODING) || !request.body().is_end_stream()
}

/// Handles a subscribe request that came through hyper.
pub(crate) async fn subscribe(hub: &Hub, request: Request<Incoming>) -> Response<HubBody> {
    let has_body = has_body(&request);
    let (head, _body) = request.into_parts();
    subscribe_head(hub, &head, has_body).await
}

/// Handles a subscribe request given its head, whichever path it came through.
///
/// Security: a subscribe `GET` must not carry a body. The stream never reads one, so whatever
/// a body holds would stay in the connection, and a proxy in front that frames the request
/// differently (request smuggling) could take it for the next request. Such requests are
/// refused and, on HTTP/1.1, the connection is closed after the answer.
pub(crate) async fn subscribe_head(
    hub: &Hub,
    request: &request::Parts,
    has_body: bool,
) -> Response<HubBody> {
    if has_body {
        let mut response = text(
            StatusCode::BAD_REQUEST,
            "a subscribe request must not have a body (no Content-Length or Transfer-Encoding on GET)",
        );
        if request.version <= Version::HTTP_11 {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        return response;
    }
    let query = request.uri.query().unwrap_or("");
    let parsed = match parse_query(hub, query, &request.headers) {
        Ok(parsed) => parsed,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let claims = match authenticate(hub, &request.headers, Some(query)) {
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
