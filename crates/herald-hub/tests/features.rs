//! Legacy dialect, CORS, the subscriptions API, subscription events and ending streams.

use std::time::Duration;

use herald_testkit::{TestHub, encode};

#[tokio::test]
async fn legacy_dialect_topic_templates_and_last_event_id() {
    let hub = TestHub::builder().legacy().start().await;
    hub.publish("topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&id=1&data=a")
        .await;
    hub.publish("topic=https%3A%2F%2Fexample.com%2Fbooks%2F2&id=2&data=b")
        .await;
    let mut stream = hub
        .subscribe(
            &format!(
                "topic={}&lastEventID=earliest",
                encode("https://example.com/books/{id}")
            ),
            &[],
        )
        .await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("last-event-id"), Some("earliest"));
    assert_eq!(stream.header("mercure-last-event-id"), Some("earliest"));
    assert_eq!(stream.next_event().await, "id: 1\ndata: a\n\n");
    assert_eq!(stream.next_event().await, "id: 2\ndata: b\n\n");
}

#[tokio::test]
async fn legacy_tokens_grant_with_the_mercure_claim() {
    let hub = TestHub::builder().legacy().start().await;
    let mut request = hub.token_request(&["https://example.com/{id}"], &[]);
    request.legacy = true;
    let token = request
        .sign_hmac(herald_testkit::SECRET.as_bytes())
        .unwrap();
    let answer = hub
        .post_form(
            "/.well-known/mercure",
            "topic=https%3A%2F%2Fexample.com%2F7&data=x",
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
}

#[tokio::test]
async fn cors_allowlist_with_credentials() {
    let hub = TestHub::builder()
        .config(|config| config.cors_origins = vec!["https://app.example".into()])
        .start()
        .await;
    let preflight = herald_testkit::raw::request(
        hub.addr,
        "OPTIONS",
        "/.well-known/mercure",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "last-event-id"),
        ],
        b"",
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );
    let allowed = preflight.header("access-control-allow-headers").unwrap();
    assert!(allowed.contains("Last-Event-ID") && allowed.contains("Authorization"));

    let stream = hub
        .subscribe("match=a", &[("Origin", "https://app.example")])
        .await;
    assert_eq!(
        stream.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        stream.header("access-control-allow-credentials"),
        Some("true")
    );

    let stranger = hub
        .subscribe("match=a", &[("Origin", "https://evil.example")])
        .await;
    assert_eq!(stranger.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn subscriptions_api_lists_active_subscriptions() {
    let hub = TestHub::builder()
        .config(|config| config.subscription_events = true)
        .start()
        .await;
    let reader = hub.token(&[], &["*"]);
    let _stream = hub
        .subscribe("match=https%3A%2F%2Fexample.com%2Fa", &[])
        .await;
    let answer = hub
        .get(
            "/.well-known/mercure/subscriptions",
            &[("Authorization", &format!("Bearer {reader}"))],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["type"], "subscriptions");
    let subscriptions = body["subscriptions"].as_array().unwrap();
    assert_eq!(subscriptions.len(), 1);
    let subscription = &subscriptions[0];
    assert_eq!(subscription["match"], "https://example.com/a");
    assert_eq!(subscription["match_type"], "exact");
    assert_eq!(subscription["active"], true);
    let id = subscription["id"].as_str().unwrap();
    assert!(
        id.starts_with(
            "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Fa/urn%3Auuid%3A"
        ),
        "{id}"
    );
    let link = answer.header("link").unwrap();
    assert!(
        link.contains("last-event-id=") && link.contains("type=\"mercure\""),
        "{link}"
    );

    let one = hub
        .get(id, &[("Authorization", &format!("Bearer {reader}"))])
        .await;
    assert_eq!(one.status, 200, "{}", one.text());

    let unauthorized = hub.get("/.well-known/mercure/subscriptions", &[]).await;
    assert_eq!(unauthorized.status, 401);
    let narrow = hub.token(&[], &["https://example.com/a"]);
    let forbidden = hub
        .get(
            "/.well-known/mercure/subscriptions",
            &[("Authorization", &format!("Bearer {narrow}"))],
        )
        .await;
    assert_eq!(forbidden.status, 403);
}

#[tokio::test]
async fn subscription_events_announce_connect_and_disconnect() {
    let hub = TestHub::builder()
        .config(|config| {
            config.subscription_events = true;
            config.heartbeat = Duration::from_millis(100);
        })
        .start()
        .await;
    let watcher_token = hub.token(&[], &["*"]);
    let mut watcher = hub
        .subscribe(
            &format!(
                "match_urlpattern={}",
                encode("/.well-known/mercure/subscriptions/:type/:match/:subscriber")
            ),
            &[("Authorization", &format!("Bearer {watcher_token}"))],
        )
        .await;
    watcher.read_until("retry: 500\n\n").await;
    let subscriber = hub
        .subscribe("match=https%3A%2F%2Fexample.com%2Fa", &[])
        .await;
    // The watcher is told about its own subscription too; look for the other one.
    let mut connected = watcher.next_event().await;
    while !connected.contains("example.com/a") {
        connected = watcher.next_event().await;
    }
    assert!(connected.contains("event: mercure\n"), "{connected}");
    assert!(connected.contains("\"active\":true"), "{connected}");
    assert!(
        connected.contains("\"match\":\"https://example.com/a\""),
        "{connected}"
    );
    drop(subscriber);
    // The hub notices the closed connection on its next write at the latest (a heartbeat).
    let disconnected = watcher.next_event().await;
    assert!(disconnected.contains("\"active\":false"), "{disconnected}");
    assert!(disconnected.contains("example.com/a"), "{disconnected}");
}

#[tokio::test]
async fn ending_a_topic_sends_a_final_event_then_204() {
    let hub = TestHub::start().await;
    let topic = "https://example.com/clients/7";
    let mut stream = hub
        .subscribe(&format!("match={}", encode(topic)), &[])
        .await;
    stream.read_until("retry: 500\n\n").await;
    let token = hub.publisher_token();
    let answer = hub
        .post_form(
            "/.well-known/mercure/end",
            &format!("topic={}&type=bye&id=last&data=done", encode(topic)),
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["closed"], 1);
    assert_eq!(
        stream.read_to_end().await,
        "id: last\nevent: bye\ndata: done\n\n"
    );

    let again = hub
        .get(
            &format!("/.well-known/mercure?match={}", encode(topic)),
            &[],
        )
        .await;
    assert_eq!(again.status, 204);

    // A new publish starts a new stream on the topic.
    hub.publish(&format!("topic={}&data=restart", encode(topic)))
        .await;
    let reopened = hub
        .subscribe(&format!("match={}", encode(topic)), &[])
        .await;
    assert_eq!(reopened.status, 200);
}

/// Regression: a client away while its stream was ended came back with an older id and got
/// 204 at once, never seeing what it missed nor the final event.
#[tokio::test]
async fn client_away_during_the_end_gets_what_it_missed_then_204() {
    let hub = TestHub::start().await;
    let topic = "https://example.com/clients/8";
    let query = format!("match={}", encode(topic));
    hub.publish_numbered(topic, 1..=2).await;
    let token = hub.publisher_token();
    let answer = hub
        .post_form(
            "/.well-known/mercure/end",
            &format!("topic={}&type=bye&id=last&data=done", encode(topic)),
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let mut back = hub.subscribe(&query, &[("Last-Event-ID", "1")]).await;
    assert_eq!(back.status, 200);
    assert_eq!(
        back.read_to_end().await,
        "retry: 500\n\nid: 2\ndata: u2\n\nid: last\nevent: bye\ndata: done\n\n"
    );
    // Having seen the end, the browser's next attempt stops it.
    let after_the_end = hub
        .get(
            &format!("/.well-known/mercure?{query}"),
            &[("Last-Event-ID", "last")],
        )
        .await;
    assert_eq!(after_the_end.status, 204);
    let without_an_id = hub.get(&format!("/.well-known/mercure?{query}"), &[]).await;
    assert_eq!(without_an_id.status, 204);
}

#[tokio::test]
async fn ending_needs_publish_rights() {
    let hub = TestHub::start().await;
    let answer = hub
        .post_form("/.well-known/mercure/end", "topic=a", &[])
        .await;
    assert_eq!(answer.status, 401);
    let reader = hub.token(&["b"], &[]);
    let answer = hub
        .post_form(
            "/.well-known/mercure/end",
            "topic=a",
            &[("Authorization", &format!("Bearer {reader}"))],
        )
        .await;
    assert_eq!(answer.status, 403);
}

#[tokio::test]
async fn health_and_metadata() {
    let hub = TestHub::start().await;
    assert_eq!(hub.get("/healthz", &[]).await.status, 200);
    assert_eq!(hub.get("/readyz", &[]).await.status, 200);
    let metadata = hub
        .get(
            "/.well-known/oauth-protected-resource/.well-known/mercure",
            &[],
        )
        .await;
    let body: serde_json::Value = serde_json::from_slice(&metadata.body).unwrap();
    assert_eq!(body["resource"], hub.hub_url());
    assert_eq!(hub.get("/nope", &[]).await.status, 404);
}
