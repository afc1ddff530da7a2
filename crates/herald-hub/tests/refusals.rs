//! Every refused publish or subscribe answers with the right status and a readable reason,
//! and nothing refused is dispatched.

use herald_testkit::{TestHub, encode};

const TOPIC: &str = "https://example.com/t";

/// (form body, expected status, a fragment of the expected message)
const BAD_PUBLISHES: &[(&str, u16, &str)] = &[
    ("data=no-topic", 400, "at least one topic"),
    ("topic=a&id=x%0Ay", 400, "id"),
    ("topic=a&id=x%00y", 400, "id"),
    ("topic=a&id=x%C2%85y", 400, "id"),
    ("topic=a&type=x%0Dy", 400, "type"),
    ("topic=a&type=mercure", 400, "reserved"),
    ("topic=a&id=earliest", 400, "earliest"),
    ("topic=a&id=%23frag", 400, "#"),
    ("topic=a&retry=1a", 400, "retry"),
    ("topic=a&retry=-1", 400, "retry"),
    ("topic=a&retry=", 400, "retry"),
    ("topic=*", 400, "topic"),
    (
        "topic=%2F.well-known%2Fmercure%2Fsubscriptions%2Fx",
        400,
        "reserved",
    ),
    ("topic=%2F.well-known%2F%256Dercure%2Fx", 400, "reserved"),
    ("topic=a%01b", 400, "topic"),
    ("topic=a%E2%80%8Bb", 400, "topic"),
    ("topic=%FF", 400, "UTF-8"),
    ("topic=a&data=%FF", 400, "UTF-8"),
];

#[tokio::test]
async fn bad_publishes_are_refused_with_a_reason_and_not_dispatched() {
    let hub = TestHub::start().await;
    let mut stream = hub.subscribe("match=*", &[]).await;
    stream.read_until("retry: 500\n\n").await;
    for (form, status, fragment) in BAD_PUBLISHES {
        let answer = hub.publish(form).await;
        assert_eq!(answer.status, *status, "{form}: {}", answer.text());
        assert!(
            answer.text().contains(fragment),
            "{form}: message {:?} should mention {fragment:?}",
            answer.text()
        );
        assert_eq!(
            answer.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }
    let leaked = stream
        .drain_for(std::time::Duration::from_millis(200))
        .await;
    assert!(
        !leaked.contains("data:"),
        "refused updates leaked: {leaked:?}"
    );
}

#[tokio::test]
async fn oversized_body_and_too_many_topics_get_413() {
    let hub = TestHub::builder()
        .config(|config| {
            config.max_body = 1000;
            config.max_topics = 3;
        })
        .start()
        .await;
    let big = format!("topic=a&data={}", "x".repeat(2000));
    let answer = hub.publish(&big).await;
    assert_eq!(answer.status, 413, "{}", answer.text());
    let answer = hub.publish("topic=a&topic=b&topic=c&topic=d").await;
    assert_eq!(answer.status, 413, "{}", answer.text());
}

#[tokio::test]
async fn publish_without_token_is_401_with_a_bearer_challenge() {
    let hub = TestHub::start().await;
    let answer = hub
        .post_form("/.well-known/mercure", "topic=a&data=x", &[])
        .await;
    assert_eq!(answer.status, 401);
    let challenge = answer.header("www-authenticate").expect("challenge");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        !challenge.contains("error="),
        "no error code without a token: {challenge}"
    );
    assert!(challenge.contains("resource_metadata="), "{challenge}");
}

#[tokio::test]
async fn invalid_tokens_are_401_invalid_token() {
    let hub = TestHub::start().await;
    let mut expired = hub.token_request(&["*"], &[]);
    expired.ttl = std::time::Duration::from_secs(1);
    let mut wrong_audience = hub.token_request(&["*"], &[]);
    wrong_audience.audience = "https://other.example/.well-known/mercure".into();
    let wrong_key = hub
        .token_request(&["*"], &[])
        .sign_hmac(b"another-secret")
        .unwrap();
    let tokens = [
        "not-a-jwt".to_owned(),
        wrong_key,
        wrong_audience
            .sign_hmac(herald_testkit::SECRET.as_bytes())
            .unwrap(),
        // alg: none
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJleHAiOjk5OTk5OTk5OTl9.".to_owned(),
    ];
    for token in tokens {
        let answer = hub
            .post_form(
                "/.well-known/mercure",
                "topic=a&data=x",
                &[("Authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(answer.status, 401, "{token}: {}", answer.text());
        let challenge = answer.header("www-authenticate").expect("challenge");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
}

#[tokio::test]
async fn token_without_grant_is_403_and_nothing_is_dispatched() {
    let hub = TestHub::start().await;
    let mut stream = hub.subscribe("match=*", &[]).await;
    stream.read_until("retry: 500\n\n").await;
    let token = hub.token(&["https://example.com/allowed"], &[]);
    let answer = hub
        .post_form(
            "/.well-known/mercure",
            "topic=https%3A%2F%2Fexample.com%2Fallowed&topic=https%3A%2F%2Fexample.com%2Fdenied&data=x",
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    let challenge = answer.header("www-authenticate").expect("challenge");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(answer.text().contains("denied"), "{}", answer.text());
    let leaked = stream
        .drain_for(std::time::Duration::from_millis(200))
        .await;
    assert!(!leaked.contains("data:"), "{leaked:?}");
}

#[tokio::test]
async fn bad_subscribes_are_refused_with_a_reason() {
    let hub = TestHub::start().await;
    let cases: &[(&str, u16, &str)] = &[
        ("", 400, "at least one match"),
        ("last_event_id=1", 400, "at least one match"),
        ("match_regex=a", 400, "unsupported matcher"),
        ("MATCHES=a", 400, "unsupported matcher"),
        (
            "match_urlpattern=https%3A%2F%2Fa%2F%3A(",
            400,
            "match_urlpattern",
        ),
        ("match=%FF", 400, "UTF-8"),
        ("match=a%01", 400, "match"),
        ("topic=a", 400, "--legacy"),
    ];
    for (query, status, fragment) in cases {
        let answer = hub.get(&format!("/.well-known/mercure?{query}"), &[]).await;
        assert_eq!(answer.status, *status, "{query}: {}", answer.text());
        assert!(
            answer.text().contains(fragment),
            "{query}: message {:?} should mention {fragment:?}",
            answer.text()
        );
    }
}

#[tokio::test]
async fn subscribe_needs_a_token_unless_anonymous() {
    let hub = TestHub::builder()
        .config(|config| config.anonymous = false)
        .start()
        .await;
    let answer = hub.get("/.well-known/mercure?match=a", &[]).await;
    assert_eq!(answer.status, 401);
    assert!(answer.header("www-authenticate").is_some());
    let token = hub.token(&[], &["a"]);
    let stream = hub
        .subscribe("match=a", &[("Authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(stream.status, 200);
}

#[tokio::test]
async fn non_form_publish_is_415() {
    let hub = TestHub::start().await;
    let token = hub.publisher_token();
    let answer = herald_testkit::raw::request(
        hub.addr,
        "POST",
        "/.well-known/mercure",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        br#"{"topic":"a"}"#,
    )
    .await;
    assert_eq!(answer.status, 415, "{}", answer.text());
}

#[tokio::test]
async fn hub_keeps_serving_after_refusals() {
    let hub = TestHub::start().await;
    for (form, _, _) in BAD_PUBLISHES {
        hub.publish(form).await;
    }
    let answer = hub
        .publish(&format!("topic={}&data=ok", encode(TOPIC)))
        .await;
    assert_eq!(answer.status, 200);
}
