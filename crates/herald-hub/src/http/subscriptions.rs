//! `GET /.well-known/mercure/subscriptions[/…]`: the active subscriptions API.
//!
//! Paths (draft-08): `/subscriptions`, `/subscriptions/{match_type}/{match}`,
//! `/subscriptions/{match_type}/{match}/{subscriber}`; legacy: `/subscriptions/{topic}` and
//! `/subscriptions/{topic}/{subscriber}`. A first segment of `exact` or `urlpattern` selects
//! the draft-08 form. Access needs a token granting `subscribe` on the request path itself
//! (without the query), the same topic form subscription events use.

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::http::response::{BearerError, HubBody, bearer, json, text};
use crate::http::token::authenticate;
use crate::hub::Hub;
use crate::subscription_event::document;

/// Which subscriptions a path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Filter {
    All,
    Matcher {
        match_type: Option<String>,
        matcher: String,
    },
    One {
        match_type: Option<String>,
        matcher: String,
        subscriber: String,
    },
}

fn parse_path(rest: &str) -> Option<Filter> {
    let decode = |segment: &str| {
        percent_decode_str(segment)
            .decode_utf8()
            .ok()
            .map(|value| value.into_owned())
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let typed = segments
        .first()
        .is_some_and(|first| *first == "exact" || *first == "urlpattern");
    match (typed, segments.as_slice()) {
        (_, []) => Some(Filter::All),
        (true, [kind, matcher]) => Some(Filter::Matcher {
            match_type: Some((*kind).to_owned()),
            matcher: decode(matcher)?,
        }),
        (true, [kind, matcher, subscriber]) => Some(Filter::One {
            match_type: Some((*kind).to_owned()),
            matcher: decode(matcher)?,
            subscriber: decode(subscriber)?,
        }),
        (false, [topic]) => Some(Filter::Matcher {
            match_type: None,
            matcher: decode(topic)?,
        }),
        (false, [topic, subscriber]) => Some(Filter::One {
            match_type: None,
            matcher: decode(topic)?,
            subscriber: decode(subscriber)?,
        }),
        _ => None,
    }
}

/// Handles a subscriptions API request; `path` is the full request path.
pub(crate) fn subscriptions<B>(hub: &Hub, request: &Request<B>, path: &str) -> Response<HubBody> {
    let claims = match authenticate(hub, request.headers(), request.uri().query()) {
        Ok(Some(claims)) => claims,
        Ok(None) => {
            return bearer(
                hub,
                BearerError::Missing,
                "the subscriptions API needs an access token",
            );
        }
        Err(refusal) => return refusal,
    };
    if !claims.can_subscribe(path) {
        return bearer(
            hub,
            BearerError::InsufficientScope,
            &format!("the token does not grant subscribe on {path:?}"),
        );
    }
    let prefix = format!("{}/subscriptions", hub.config().hub_path());
    let Some(filter) = path.strip_prefix(&prefix).and_then(parse_path) else {
        return text(StatusCode::NOT_FOUND, "no such subscriptions resource");
    };
    let config = hub.config();
    let mut documents: Vec<Value> = Vec::new();
    for subscriber in hub.subscribers() {
        for subscription in &subscriber.subscriptions {
            let selector = &subscription.selector;
            let keep = match &filter {
                Filter::All => true,
                Filter::Matcher {
                    match_type,
                    matcher,
                } => {
                    selector.raw() == matcher
                        && match_type
                            .as_deref()
                            .is_none_or(|kind| kind == selector.matcher_type().name())
                }
                Filter::One {
                    match_type,
                    matcher,
                    subscriber: wanted,
                } => {
                    selector.raw() == matcher
                        && &subscriber.id == wanted
                        && match_type
                            .as_deref()
                            .is_none_or(|kind| kind == selector.matcher_type().name())
                }
            };
            if keep {
                documents.push(document(config, &subscriber, subscription, true));
            }
        }
    }
    let last_event_id = hub.last_event_id().unwrap_or_else(|| "earliest".to_owned());
    let body = match filter {
        Filter::One { .. } => match documents.into_iter().next() {
            Some(document) => document,
            None => return text(StatusCode::NOT_FOUND, "no such subscription"),
        },
        _ => {
            let mut collection = json!({
                "id": path,
                "type": "subscriptions",
                "subscriptions": documents,
            });
            if config.legacy {
                collection["lastEventID"] = Value::String(last_event_id.clone());
            }
            collection
        }
    };
    let mut response = json(StatusCode::OK, &body);
    let link = format!(
        "<{}>; rel=\"mercure\"; last-event-id=\"{}\"; type=\"mercure\"; content-type=\"application/json\"",
        config.hub_url,
        last_event_id.replace('"', "%22")
    );
    let headers = response.headers_mut();
    if let Ok(link) = HeaderValue::from_bytes(link.as_bytes()) {
        headers.insert(header::LINK, link);
    }
    if let Ok(etag) = HeaderValue::from_bytes(format!("\"{last_event_id}\"").as_bytes()) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("must-revalidate"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_in_both_dialects() {
        assert_eq!(parse_path(""), Some(Filter::All));
        assert_eq!(
            parse_path("/exact/https%3A%2F%2Fa%2Fb"),
            Some(Filter::Matcher {
                match_type: Some("exact".into()),
                matcher: "https://a/b".into()
            })
        );
        assert_eq!(
            parse_path("/urlpattern/x/urn%3Auuid%3A1"),
            Some(Filter::One {
                match_type: Some("urlpattern".into()),
                matcher: "x".into(),
                subscriber: "urn:uuid:1".into()
            })
        );
        assert_eq!(
            parse_path("/topic%2F1/sub"),
            Some(Filter::One {
                match_type: None,
                matcher: "topic/1".into(),
                subscriber: "sub".into()
            })
        );
        assert_eq!(parse_path("/a/b/c/d"), None);
    }
}
