//! Discovery and health: protected resource metadata, `/healthz`, `/readyz`.

use http::{Response, StatusCode};
use serde_json::json;

use crate::http::response::{HubBody, json, text};
use crate::hub::Hub;

/// The OAuth 2.0 protected resource metadata (RFC 9728) for the hub.
pub(crate) fn metadata(hub: &Hub) -> Response<HubBody> {
    let config = hub.config();
    json(
        StatusCode::OK,
        &json!({
            "resource": config.hub_url.as_str(),
            "authorization_details_types_supported": ["https://mercure.rocks/authorization-detail"],
            "bearer_methods_supported": ["header"],
            "mercure_cookie": config.cookie_name,
            "mercure_matcher_types_supported": ["exact", "urlpattern"],
            "mercure_subscriptions": config.subscription_events,
        }),
    )
}

/// Live: the process answers.
pub(crate) fn healthz() -> Response<HubBody> {
    text(StatusCode::OK, "ok")
}

/// Ready: the history store answers.
pub(crate) async fn readyz(hub: &Hub) -> Response<HubBody> {
    match hub.store().bounds().await {
        Ok(_) => text(
            StatusCode::OK,
            format!("ready ({} store)", hub.store().kind()),
        ),
        Err(error) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {error}"),
        ),
    }
}
