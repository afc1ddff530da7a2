//! `POST /.well-known/mercure`: publishing an update.
//!
//! Order of checks: the token (401), then the body (408, 413, 400), then the token's grants on
//! every topic (403), so nothing is dispatched unless every topic is allowed. A 200 answer
//! carries the update's id and means the update is in history.

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::config::HubConfig;
use crate::http::form;
use crate::http::response::{BearerError, HubBody, bearer, excerpt, plain, text};
use crate::http::token::authenticate;
use crate::hub::{Hub, PublishError};
use crate::topic::{MAX_TOPIC_LEN, is_reserved, validate_event_field, validate_topic};
use crate::update::UpdateFields;

/// Longest `id` or `type` accepted, as for topics: an id travels back in `Last-Event-ID`
/// headers, which proxies and hyper limit, and both are repeated in every frame.
pub(crate) const MAX_EVENT_FIELD_LEN: usize = MAX_TOPIC_LEN;

/// Handles a publish request.
pub(crate) async fn publish(hub: &Hub, request: Request<Incoming>) -> Response<HubBody> {
    let (fields, _) = match authorized_update(hub, request).await {
        Ok(authorized) => authorized,
        Err(refusal) => return refusal,
    };
    match hub.publish(fields).await {
        Ok(update) => plain(StatusCode::OK, update.id.clone()),
        Err(PublishError::Invalid(error)) => text(StatusCode::BAD_REQUEST, error.to_string()),
        Err(PublishError::Store(message)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not published: history could not be written ({message})"),
        ),
        Err(PublishError::ShuttingDown) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not published: the hub is shutting down",
        ),
    }
}

/// Authenticates a publish-shaped request (publish, end), reads and validates its form, and
/// checks the token grants `publish` on every topic. Returns the fields and the raw body.
pub(crate) async fn authorized_update(
    hub: &Hub,
    request: Request<Incoming>,
) -> Result<(UpdateFields, Bytes), Response<HubBody>> {
    let claims = match authenticate(hub, request.headers(), None) {
        Ok(Some(claims)) => claims,
        Ok(None) => {
            return Err(bearer(
                hub,
                BearerError::Missing,
                "this needs an access token (Authorization: Bearer …)",
            ));
        }
        Err(refusal) => return Err(refusal),
    };
    if let Some(content_type) = request.headers().get(CONTENT_TYPE) {
        let is_form = content_type
            .to_str()
            .map(|value| {
                value
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
            .unwrap_or(false);
        if !is_form {
            return Err(text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be application/x-www-form-urlencoded",
            ));
        }
    }
    let limit = hub.config().max_body;
    let deadline = hub.config().body_read_timeout;
    let http1 = request.version() <= Version::HTTP_11;
    let reading = Limited::new(request.into_body(), limit).collect();
    let Ok(read) = tokio::time::timeout(deadline, reading).await else {
        let mut response = text(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {deadline:?}"),
        );
        if http1 {
            // The rest of the body may still come: the connection cannot carry another
            // request after it.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        return Err(response);
    };
    let body = match read {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Err(text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body larger than {limit} bytes"),
                ));
            }
            return Err(text(
                StatusCode::BAD_REQUEST,
                "could not read the request body",
            ));
        }
    };
    let fields = parse_update(hub, &body)?;
    if let Some(denied) = fields
        .topics
        .iter()
        .find(|topic| !claims.can_publish(topic))
    {
        return Err(bearer(
            hub,
            BearerError::InsufficientScope,
            &format!("the token does not grant publish on topic {denied:?}"),
        ));
    }
    Ok((fields, body))
}

/// Decodes and validates the form fields of a publish; refusals say which field and why.
///
/// `topic` is repeatable (canonical, then alternates) and `private` means the same however
/// often it appears; every other known field is single-valued, and a second occurrence is
/// refused rather than one of the two silently winning: a publisher and a proxy (or two
/// parsers) must never disagree on what was published.
pub(crate) fn parse_update(hub: &Hub, body: &[u8]) -> Result<UpdateFields, Response<HubBody>> {
    publish_fields(hub.config(), body).map_err(|refusal| text(refusal.status, refusal.message))
}

/// Why a publish body was refused: the status the hub answers with and a message saying which
/// field is wrong and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRefusal {
    /// `400 Bad Request`, or `413 Payload Too Large` for more than `max_topics` topics.
    pub status: StatusCode,
    /// For the publisher: which field, and what is wrong with it.
    pub message: String,
}

/// Decodes and validates the form body of a publish request, as the publish handler does
/// after authentication and before authorization: strict form decoding, at least one and at
/// most `config.max_topics` valid, unreserved `topic` fields, `id` and `type` free of
/// characters that would inject SSE fields (and not reserved), `retry` ASCII digits. Unknown
/// fields are ignored. A missing `id` is generated (`urn:uuid:…`).
///
/// Public so the fuzz target and the tests check exactly what the handler runs.
///
/// ```
/// let config = herald_hub::HubConfig::new("http://127.0.0.1:3000".parse()?);
/// let fields = herald_hub::http::publish_fields(&config, b"topic=/a&data=hi&id=1").unwrap();
/// assert_eq!((fields.topics, fields.data, fields.id), (vec!["/a".to_owned()], "hi".into(), "1".into()));
/// let refusal = herald_hub::http::publish_fields(&config, b"data=hi").unwrap_err();
/// assert_eq!(refusal.status, http::StatusCode::BAD_REQUEST);
/// # Ok::<(), url::ParseError>(())
/// ```
///
/// # Errors
/// [`PublishRefusal`] naming the first field that is wrong.
pub fn publish_fields(config: &HubConfig, body: &[u8]) -> Result<UpdateFields, PublishRefusal> {
    let bad = |message: String| PublishRefusal {
        status: StatusCode::BAD_REQUEST,
        message,
    };
    let pairs = form::pairs(body).map_err(|error| bad(error.to_string()))?;
    let mut fields = UpdateFields::default();
    let mut id = None;
    let mut seen = [false; 4];
    for (name, value) in pairs {
        let single = match &*name {
            "data" => Some(0),
            "id" => Some(1),
            "type" => Some(2),
            "retry" => Some(3),
            _ => None,
        };
        if let Some(index) = single {
            if seen[index] {
                return Err(bad(format!(
                    "the {name} field appears more than once; send it once"
                )));
            }
            seen[index] = true;
        }
        match &*name {
            "topic" => {
                if fields.topics.len() == config.max_topics {
                    return Err(PublishRefusal {
                        status: StatusCode::PAYLOAD_TOO_LARGE,
                        message: format!("more than {} topic fields", config.max_topics),
                    });
                }
                validate_topic(&value)
                    .map_err(|error| bad(format!("topic {}: {error}", excerpt(&value))))?;
                if is_reserved(&value, &config.hub_url) {
                    return Err(bad(format!(
                        "topic {} is in the hub's reserved namespace ({})",
                        excerpt(&value),
                        config.hub_path()
                    )));
                }
                fields.topics.push(value.into_owned());
            }
            "data" => fields.data = value.into_owned(),
            "private" => fields.private = true,
            "id" => {
                check_length("id", &value).map_err(bad)?;
                validate_event_field(&value).map_err(|error| bad(format!("id: {error}")))?;
                if value == "earliest" {
                    return Err(bad(
                        "id must not be \"earliest\" (reserved for resuming)".into()
                    ));
                }
                if value.starts_with('#') {
                    return Err(bad(
                        "id must not start with '#' (reserved for hub ids)".into()
                    ));
                }
                if value.is_empty() {
                    return Err(bad("id must not be empty".into()));
                }
                id = Some(value.into_owned());
            }
            "type" => {
                check_length("type", &value).map_err(bad)?;
                validate_event_field(&value).map_err(|error| bad(format!("type: {error}")))?;
                if value == "mercure" {
                    return Err(bad(
                        "type \"mercure\" is reserved for events the hub generates".into(),
                    ));
                }
                fields.event_type = (!value.is_empty()).then(|| value.into_owned());
            }
            "retry" => {
                if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
                    return Err(bad(format!(
                        "retry must be ASCII digits, got {}",
                        excerpt(&value)
                    )));
                }
                let retry = value
                    .parse()
                    .map_err(|_| bad(format!("retry {} is too large", excerpt(&value))))?;
                fields.retry = Some(retry);
            }
            // Unknown fields are ignored so that future extensions do not break (protocol).
            _ => {}
        }
    }
    if fields.topics.is_empty() {
        return Err(bad("at least one topic field is required".into()));
    }
    fields.id = id.unwrap_or_else(|| format!("urn:uuid:{}", uuid::Uuid::new_v4()));
    Ok(fields)
}

/// Refuses an `id` or `type` longer than [`MAX_EVENT_FIELD_LEN`] (without echoing it).
fn check_length(field: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_EVENT_FIELD_LEN {
        return Err(format!(
            "{field} is {} bytes long; the limit is {MAX_EVENT_FIELD_LEN}",
            value.len()
        ));
    }
    Ok(())
}
