//! Finding and checking the access token of a request.

use std::sync::Arc;

use http::{HeaderMap, Response};

use crate::auth::{Claims, bearer_token};
use crate::http::response::{BearerError, HubBody, bearer};
use crate::hub::Hub;

/// The validated claims of the request's token, `None` when it carries no token, or the
/// response refusing it (400 for a malformed presentation, 401 for a bad token).
pub(crate) fn authenticate(
    hub: &Hub,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Arc<Claims>>, Response<HubBody>> {
    let config = hub.config();
    let token = bearer_token(headers, query, &config.cookie_name, config.legacy)
        .map_err(|error| bearer(hub, BearerError::InvalidRequest, &error.to_string()))?;
    let Some(token) = token else {
        return Ok(None);
    };
    let Some(verifier) = hub.verifier() else {
        return Err(bearer(
            hub,
            BearerError::InvalidToken,
            "this hub has no key to verify tokens (start it with --jwt-key or --jwt-public-key)",
        ));
    };
    match verifier.verify_cached(&token) {
        Ok(claims) => Ok(Some(claims)),
        Err(error) => {
            // The reason helps the token's owner; the token itself is never echoed or logged.
            tracing::debug!(%error, "token refused");
            Err(bearer(
                hub,
                BearerError::InvalidToken,
                &format!("invalid token: {error}"),
            ))
        }
    }
}
