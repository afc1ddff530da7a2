//! Every refused publish or subscribe answers with the right status and a readable reason,
//! and nothing refused is dispatched.
//!
//! The tables cover every publish field and subscribe parameter with values that are
//! malformed, oversized, full of control characters, invalid UTF-8, duplicated or missing;
//! tokens that are malformed, expired, not yet valid, for another issuer or audience,
//! unsigned, signed with another key or oversized; and the ways a token is presented (header,
//! cookie). After each table a [`Watcher`] subscribed to everything (private updates
//! included) proves that nothing reached any stream and that the hub still serves.

use herald_testkit::{SECRET, TestHub, Watcher, encode, sign_claims};

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
    let mut watcher = hub.watcher().await;
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
    watcher
        .assert_nothing_since(&hub, "the bad publishes")
        .await;
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
    let mut watcher = hub.watcher().await;
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
    watcher
        .assert_nothing_since(&hub, "a publish with a partial grant")
        .await;
}

#[tokio::test]
async fn bad_subscribes_are_refused_with_a_reason() {
    let hub = TestHub::start().await;
    let cases: &[(&str, u16, &str)] = &[
        ("", 400, "at least one match"),
        ("last_event_id=1", 400, "at least one match"),
        ("match_regex=a", 400, "unsupported matcher"),
        ("MATCHES=a", 400, "unsupported matcher"),
        // A name whose fifth byte is inside a multi-byte character: once a panic slicing it.
        ("matc%C3%A9=a", 400, "at least one match"),
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

/// Publish fields beyond [`BAD_PUBLISHES`]: missing values, invalid UTF-8 in names and in
/// every field, control and format characters, duplicated single-valued fields and oversized
/// values. (form body, status, fragment of the message)
fn bad_publish_fields() -> Vec<(String, u16, &'static str)> {
    let long = |n: usize| "a".repeat(n);
    let rows: Vec<(String, u16, &str)> = vec![
        // missing
        (String::new(), 400, "at least one topic"),
        ("topic=".into(), 400, "topic"),
        ("topic".into(), 400, "topic"),
        ("id=1&data=x&private=on".into(), 400, "at least one topic"),
        // invalid UTF-8: in a name, in each field, truncated, a surrogate
        ("topic=a&%FF=1".into(), 400, "UTF-8"),
        ("topic=a&id=%FF".into(), 400, "UTF-8"),
        ("topic=a&type=%C3%28".into(), 400, "UTF-8"),
        ("topic=a&retry=%FF".into(), 400, "UTF-8"),
        ("topic=a&private=%FF".into(), 400, "UTF-8"),
        ("topic=a%F0%9F".into(), 400, "UTF-8"),
        ("topic=a&future=%ED%A0%80".into(), 400, "UTF-8"),
        // control and format characters
        ("topic=a%0Ab".into(), 400, "topic"),
        ("topic=a%0Db".into(), 400, "topic"),
        ("topic=a%7Fb".into(), 400, "topic"),
        ("topic=a%C2%80b".into(), 400, "topic"),
        ("topic=a%EF%BB%BFb".into(), 400, "topic"),
        ("topic=a&topic=b%00".into(), 400, "topic"),
        ("topic=a&id=a%09b".into(), 400, "id"),
        ("topic=a&id=a%1Bb".into(), 400, "id"),
        ("topic=a&id=a%E2%80%AEb".into(), 400, "id"),
        ("topic=a&type=a%00b".into(), 400, "type"),
        ("topic=a&type=a%0Aid:%20forged".into(), 400, "type"),
        ("topic=a&retry=1%0A".into(), 400, "retry"),
        ("topic=a&retry=%EF%BC%91".into(), 400, "retry"),
        // duplicated single-valued fields
        (
            "topic=a&id=1&id=2".into(),
            400,
            "id field appears more than once",
        ),
        (
            "topic=a&type=x&type=y".into(),
            400,
            "type field appears more than once",
        ),
        (
            "topic=a&retry=1&retry=2".into(),
            400,
            "retry field appears more than once",
        ),
        (
            "topic=a&data=1&data=2".into(),
            400,
            "data field appears more than once",
        ),
        // oversized
        (format!("topic={}", long(2049)), 400, "2048"),
        (
            format!("topic=a&id={}", long(2049)),
            400,
            "the limit is 2048",
        ),
        (
            format!("topic=a&type={}", long(2049)),
            400,
            "the limit is 2048",
        ),
        (
            format!("topic=a&retry={}", "9".repeat(40)),
            400,
            "too large",
        ),
    ];
    rows
}

#[tokio::test]
async fn every_publish_field_is_checked_and_nothing_refused_reaches_a_stream() {
    let hub = TestHub::start().await;
    let mut watcher = hub.watcher().await;
    for (form, status, fragment) in bad_publish_fields() {
        // Every row is also sent as a private update: a leak would be the worst kind.
        for form in [form.clone(), format!("{form}&private=on")] {
            let answer = hub.publish(&form).await;
            let shown = &form[..form.len().min(80)];
            assert_eq!(answer.status, status, "{shown}: {}", answer.text());
            assert!(
                answer.text().contains(fragment),
                "{shown}: message {:?} should mention {fragment:?}",
                answer.text()
            );
            assert!(
                answer.text().len() < 300,
                "{shown}: an oversized value is named, not echoed: {} bytes",
                answer.text().len()
            );
        }
    }
    watcher
        .assert_nothing_since(&hub, "the bad publish fields")
        .await;
}

#[tokio::test]
async fn data_with_line_breaks_cannot_inject_fields() {
    let hub = TestHub::start().await;
    let mut watcher = hub.watcher().await;
    let answer = hub
        .publish(
            "topic=a&id=real&data=x%0D%0Aevent:%20forged%0Did:%20forged%0A%0Aretry:%201%0D%0A%0D%0Adata:%20y",
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let event = watcher_event(&mut watcher, &hub).await;
    assert_eq!(
        event,
        "id: real\ndata: x\ndata: event: forged\ndata: id: forged\ndata: \ndata: retry: 1\ndata: \ndata: data: y\n\n"
    );
}

/// The next event the watcher receives, then a fence (so the event was alone).
async fn watcher_event(watcher: &mut Watcher, hub: &TestHub) -> String {
    let event = watcher.next_event().await;
    watcher.assert_nothing_since(hub, "the event").await;
    event
}

/// Subscribe requests beyond `bad_subscribes_are_refused_with_a_reason`: duplicated,
/// oversized, invalid UTF-8 and control characters in every parameter.
fn bad_subscribe_queries() -> Vec<(String, u16, &'static str)> {
    let long = |n: usize| "a".repeat(n);
    let too_many: Vec<String> = (0..65).map(|i| format!("match=t{i}")).collect();
    vec![
        ("match=".into(), 400, "match"),
        ("match=a&match_urlpattern=".into(), 400, "match_urlpattern"),
        ("match=a%0A".into(), 400, "match"),
        ("match=a%C2%85".into(), 400, "match"),
        ("match=a%E2%80%8B".into(), 400, "match"),
        ("match_urlpattern=%FF".into(), 400, "UTF-8"),
        ("match=a&%FF=1".into(), 400, "UTF-8"),
        (format!("match={}", long(2100)), 400, "match"),
        (too_many.join("&"), 400, "more than 64 selectors"),
        (
            "match=a&last_event_id=1&last_event_id=2".into(),
            400,
            "more than once",
        ),
        (
            "match=a&last_event_id=a%0Ab".into(),
            400,
            "control character",
        ),
        (
            "match=a&last_event_id=a%E2%80%8Bb".into(),
            400,
            "format character",
        ),
        ("match=a&last_event_id=%FF".into(), 400, "UTF-8"),
        (format!("match=a&last_event_id={}", long(2049)), 400, "2048"),
    ]
}

/// Sends a GET with extra raw header lines (bytes that `RawStream` would not write).
async fn get_with_raw_headers(
    hub: &TestHub,
    path: &str,
    lines: &[u8],
) -> herald_testkit::RawResponse {
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n").into_bytes();
    request.extend_from_slice(lines);
    request.extend_from_slice(b"\r\n");
    herald_testkit::raw::send_raw(hub.addr, &request).await
}

#[tokio::test]
async fn every_subscribe_parameter_is_checked_and_the_hub_keeps_serving() {
    let hub = TestHub::start().await;
    let mut watcher = hub.watcher().await;
    for (query, status, fragment) in bad_subscribe_queries() {
        let answer = hub.get(&format!("/.well-known/mercure?{query}"), &[]).await;
        let shown = &query[..query.len().min(80)];
        assert_eq!(answer.status, status, "{shown}: {}", answer.text());
        assert!(
            answer.text().contains(fragment),
            "{shown}: message {:?} should mention {fragment:?}",
            answer.text()
        );
        assert!(
            answer.text().len() < 300,
            "{shown}: {} bytes",
            answer.text().len()
        );
    }
    let headers: &[(&[u8], &str)] = &[
        (
            b"Last-Event-ID: 1\r\nLast-Event-ID: 2\r\n",
            "more than one Last-Event-ID",
        ),
        (b"Last-Event-ID: a\tb\r\n", "control character"),
        (b"Last-Event-ID: \xFF\xFE\r\n", "not valid UTF-8"),
    ];
    for (lines, fragment) in headers {
        let answer = get_with_raw_headers(&hub, "/.well-known/mercure?match=a", lines).await;
        let shown = String::from_utf8_lossy(lines);
        assert_eq!(answer.status, 400, "{shown}: {}", answer.text());
        assert!(
            answer.text().contains(fragment),
            "{shown}: {}",
            answer.text()
        );
    }
    watcher
        .assert_nothing_since(&hub, "the bad subscribe requests")
        .await;
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Tokens that must be refused, each named. Built on the claims of a token that would be
/// accepted (publish and subscribe everywhere), changed in one way.
fn bad_tokens(hub: &TestHub) -> Vec<(&'static str, String)> {
    let base = hub.claims(&["*"], &["*"]);
    let signed = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = base.clone();
        change(&mut claims);
        sign_claims(&claims, SECRET.as_bytes())
    };
    let valid = signed(&|_| {});
    let (header, _) = valid.split_once('.').unwrap();
    let signature = valid.rsplit('.').next().unwrap().to_owned();
    let now = unix_now();
    let at_jwt = |alg: &str| serde_json::json!({ "alg": alg, "typ": "at+jwt" });
    vec![
        ("not a JWT", "not-a-jwt".to_owned()),
        ("two segments", format!("{header}.e30")),
        (
            "a header that is not JSON",
            "bm90LWpzb24.e30.c2ln".to_owned(),
        ),
        ("expired", signed(&|c| c["exp"] = (now - 10).into())),
        (
            "without exp",
            signed(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        ("not yet valid", signed(&|c| c["nbf"] = (now + 3600).into())),
        (
            "another issuer",
            signed(&|c| c["iss"] = "https://evil.test".into()),
        ),
        (
            "another audience",
            signed(&|c| c["aud"] = "https://other.test/.well-known/mercure".into()),
        ),
        (
            "alg none",
            herald_testkit::forge_token(&at_jwt("none"), &base, ""),
        ),
        (
            "alg none with a signature",
            herald_testkit::forge_token(&at_jwt("none"), &base, &signature),
        ),
        (
            "signature stripped",
            format!("{}.", valid.rsplit_once('.').unwrap().0),
        ),
        (
            "claims swapped under a valid signature",
            herald_testkit::forge_token(
                &at_jwt("HS256"),
                &serde_json::json!({ "exp": now + 3600, "iss": herald_testkit::ISSUER }),
                &signature,
            ),
        ),
        (
            "another key",
            sign_claims(&base, b"another-secret-that-is-long-enough-too"),
        ),
        (
            "oversized",
            signed(&|c| c["padding"] = "x".repeat(9 * 1024).into()),
        ),
        (
            "bad authorization_details",
            signed(&|c| c["authorization_details"] = "everything".into()),
        ),
        (
            "typ JWT instead of at+jwt",
            herald_testkit::sign_claims_typed("JWT", &base, SECRET.as_bytes()),
        ),
    ]
}

#[tokio::test]
async fn bad_tokens_are_401_invalid_token_on_every_path() {
    // An issuer is required, so "another issuer" is refused for that reason.
    let hub = TestHub::builder()
        .issuer(herald_testkit::ISSUER)
        .start()
        .await;
    let mut watcher = hub.watcher().await;
    let private_form = "topic=https%3A%2F%2Fexample.com%2Fsecret&data=forged&private=on";
    for (what, token) in bad_tokens(&hub) {
        let bearer = format!("Bearer {token}");
        let cookie = format!("__Secure-mercure_access_token={token}");
        let answers = [
            (
                "publish, header",
                hub.post_form(
                    "/.well-known/mercure",
                    private_form,
                    &[("Authorization", &bearer)],
                )
                .await,
            ),
            (
                "publish, cookie",
                hub.post_form("/.well-known/mercure", private_form, &[("Cookie", &cookie)])
                    .await,
            ),
            // The hub allows anonymous subscribers, but a bad token is never downgraded to
            // "no token".
            (
                "subscribe, header",
                hub.get(
                    "/.well-known/mercure?match=*",
                    &[("Authorization", &bearer)],
                )
                .await,
            ),
            (
                "subscribe, cookie",
                hub.get("/.well-known/mercure?match=*", &[("Cookie", &cookie)])
                    .await,
            ),
        ];
        for (path, answer) in answers {
            assert_eq!(answer.status, 401, "{what} ({path}): {}", answer.text());
            let challenge = answer.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.contains("error=\"invalid_token\""),
                "{what} ({path}): {challenge}"
            );
            assert!(
                answer.text().starts_with("invalid token: "),
                "{what} ({path}): {}",
                answer.text()
            );
            assert!(
                !answer.text().contains(&token),
                "{what} ({path}): the token is echoed"
            );
        }
    }
    watcher.assert_nothing_since(&hub, "the bad tokens").await;
}

/// A row of the presentation table: what is tried, the request headers, the expected status,
/// the expected RFC 6750 error code (none when no token counts as presented), and a fragment
/// of the expected message.
type Presentation<'a> = (
    &'a str,
    Vec<(&'a str, &'a str)>,
    u16,
    Option<&'a str>,
    &'a str,
);

#[tokio::test]
async fn token_presentations_header_and_cookie_variants() {
    let hub = TestHub::builder()
        .config(|config| config.anonymous = false)
        .start()
        .await;
    let mut watcher = hub.watcher().await;
    let valid = hub.token(&["*"], &["*"]);
    let name = "__Secure-mercure_access_token";
    let bearer = format!("Bearer {valid}");
    let cookie = format!("{name}={valid}");
    let quoted = format!("{name}=\"{valid}\"");
    let upper = format!("{}={valid}", name.to_uppercase());
    let legacy = format!("mercureAuthorization={valid}");
    let empty_then_valid = format!("{name}=; {name}={valid}");
    let garbage = format!("{name}=garbage");
    let empty = format!("{name}=");
    // (what, headers, status, error code in the challenge, fragment of the message)
    let rows: Vec<Presentation> = vec![
        (
            "two Authorization headers",
            vec![("Authorization", &bearer), ("Authorization", &bearer)],
            400,
            Some("invalid_request"),
            "more than one Authorization",
        ),
        (
            "Basic scheme",
            vec![("Authorization", "Basic dXNlcjpwYXNz")],
            400,
            Some("invalid_request"),
            "Bearer scheme",
        ),
        (
            "Bearer without a token",
            vec![("Authorization", "Bearer")],
            400,
            Some("invalid_request"),
            "empty",
        ),
        (
            "a token with a space",
            vec![("Authorization", "Bearer a b")],
            400,
            Some("invalid_request"),
            "characters",
        ),
        (
            "a token with a percent sign",
            vec![("Authorization", "Bearer a%2Eb")],
            400,
            Some("invalid_request"),
            "characters",
        ),
        (
            "a tab after Bearer",
            vec![("Authorization", "Bearer\tabc")],
            400,
            Some("invalid_request"),
            "Bearer scheme",
        ),
        (
            "a malformed header beside a valid cookie",
            vec![("Authorization", "Basic x"), ("Cookie", &cookie)],
            400,
            Some("invalid_request"),
            "Bearer scheme",
        ),
        (
            "a garbage cookie",
            vec![("Cookie", &garbage)],
            401,
            Some("invalid_token"),
            "invalid token",
        ),
        (
            "an empty cookie counts as none",
            vec![("Cookie", &empty)],
            401,
            None,
            "access token",
        ),
        (
            "cookie names are case-sensitive",
            vec![("Cookie", &upper)],
            401,
            None,
            "access token",
        ),
        (
            "the legacy cookie needs --legacy",
            vec![("Cookie", &legacy)],
            401,
            None,
            "access token",
        ),
        (
            "a valid header wins over a garbage cookie",
            vec![("Authorization", &bearer), ("Cookie", &garbage)],
            200,
            None,
            "",
        ),
        ("a valid cookie", vec![("Cookie", &cookie)], 200, None, ""),
        ("a quoted cookie", vec![("Cookie", &quoted)], 200, None, ""),
        (
            "cookies split over two headers",
            vec![("Cookie", "a=1"), ("Cookie", &cookie)],
            200,
            None,
            "",
        ),
        (
            "an empty cookie before a valid one",
            vec![("Cookie", &empty_then_valid)],
            200,
            None,
            "",
        ),
    ];
    for (what, headers, status, code, fragment) in &rows {
        let answer = if *status == 200 {
            // A stream: read its head only.
            let stream = hub.subscribe("match=a", headers).await;
            assert_eq!(stream.status, 200, "subscribe with {what}");
            continue;
        } else {
            hub.get("/.well-known/mercure?match=a", headers).await
        };
        for (path, answer) in [
            ("subscribe", answer),
            (
                "publish",
                hub.post_form("/.well-known/mercure", "topic=a&data=forged", headers)
                    .await,
            ),
        ] {
            assert_eq!(
                answer.status,
                *status,
                "{path} with {what}: {}",
                answer.text()
            );
            let challenge = answer.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.starts_with("Bearer "),
                "{path} with {what}: {challenge}"
            );
            match code {
                Some(code) => assert!(
                    challenge.contains(&format!("error=\"{code}\"")),
                    "{path} with {what}: {challenge}"
                ),
                None => assert!(
                    !challenge.contains("error="),
                    "{path} with {what}: {challenge}"
                ),
            }
            assert!(
                answer.text().contains(fragment),
                "{path} with {what}: {}",
                answer.text()
            );
        }
    }
    // The legacy query parameter is not a token on a draft-08 hub.
    let answer = hub
        .get(
            &format!("/.well-known/mercure?match=a&authorization={valid}"),
            &[],
        )
        .await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    watcher
        .assert_nothing_since(&hub, "the token presentations")
        .await;
}
