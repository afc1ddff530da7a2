//! Active subscriptions as documents: subscription events and the subscriptions API.
//!
//! Draft-08 names a subscription `{hub path}/subscriptions/{match_type}/{match}/{subscriber}`
//! and describes it with `type: "subscription"`, `match_type` and `match`; the legacy dialect
//! names it `{hub path}/subscriptions/{topic}/{subscriber}` with `type: "Subscription"` and
//! `topic`. Variables are percent-encoded exactly once, as a whole (RFC 6570 simple
//! expansion), so `/` and `%` inside a matcher are encoded too.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::config::HubConfig;
use crate::subscriber::{Subscriber, Subscription};
use crate::update::UpdateFields;

/// RFC 6570 simple expansion keeps only unreserved characters unencoded.
const EXPANSION: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one template variable value.
pub(crate) fn encode_variable(value: &str) -> String {
    utf8_percent_encode(value, EXPANSION).to_string()
}

/// The topic (and document id) of one subscription.
pub(crate) fn topic(
    config: &HubConfig,
    subscriber_id: &str,
    subscription: &Subscription,
) -> String {
    let base = config.hub_path();
    let selector = &subscription.selector;
    if subscription.legacy {
        format!(
            "{base}/subscriptions/{}/{}",
            encode_variable(selector.raw()),
            encode_variable(subscriber_id)
        )
    } else {
        format!(
            "{base}/subscriptions/{}/{}/{}",
            selector.matcher_type().name(),
            encode_variable(selector.raw()),
            encode_variable(subscriber_id)
        )
    }
}

/// The JSON document describing one subscription.
pub(crate) fn document(
    config: &HubConfig,
    subscriber: &Subscriber,
    subscription: &Subscription,
    active: bool,
) -> Value {
    let id = topic(config, &subscriber.id, subscription);
    let mut document = if subscription.legacy {
        json!({
            "id": id,
            "type": "Subscription",
            "topic": subscription.selector.raw(),
            "subscriber": subscriber.id,
            "active": active,
        })
    } else {
        json!({
            "id": id,
            "type": "subscription",
            "match_type": subscription.selector.matcher_type().name(),
            "match": subscription.selector.raw(),
            "subscriber": subscriber.id,
            "active": active,
        })
    };
    if let (Some(payload), Some(object)) = (&subscription.payload, document.as_object_mut()) {
        object.insert("payload".to_owned(), payload.clone());
    }
    document
}

/// The private update announcing that `subscription` became active or inactive.
pub(crate) fn update(
    config: &HubConfig,
    subscriber: &Subscriber,
    subscription: &Subscription,
    active: bool,
) -> UpdateFields {
    let document = document(config, subscriber, subscription, active);
    UpdateFields {
        id: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        topics: vec![topic(config, &subscriber.id, subscription)],
        private: true,
        // Draft-08 reserves the `mercure` event type for hub-generated events so subscribers
        // can tell them apart; the legacy dialect sent them as plain messages.
        event_type: (!subscription.legacy).then(|| "mercure".to_owned()),
        data: document.to_string(),
        retry: None,
    }
}
