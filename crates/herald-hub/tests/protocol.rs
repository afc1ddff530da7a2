//! The hub over real sockets: publish, subscribe, resume, authorization, the wire bytes.

use std::sync::Arc;
use std::time::Duration;

use herald_hub::store::memory::MemoryStore;
use herald_testkit::{TestHub, encode};

const TOPIC: &str = "https://example.com/books/1";

#[tokio::test]
async fn published_update_reaches_subscriber_with_exact_bytes() {
    let hub = TestHub::start().await;
    let mut stream = hub
        .subscribe(&format!("match={}", encode(TOPIC)), &[])
        .await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.header("cache-control"), Some("no-cache"));
    let link = stream.header("link").expect("discovery link");
    assert_eq!(
        link,
        format!("<{}>; rel=\"mercure\"", hub.hub_url()),
        "Link header advertises the hub"
    );
    assert_eq!(stream.read_until("\n\n").await, "retry: 500\n\n");

    let answer = hub
        .publish(&format!("topic={}&data=hello&id=42", encode(TOPIC)))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(answer.text(), "42");
    assert_eq!(stream.read_until("\n\n").await, "id: 42\ndata: hello\n\n");
}

#[tokio::test]
async fn generated_id_is_a_uuid_urn() {
    let hub = TestHub::start().await;
    let answer = hub
        .publish(&format!("topic={}&data=x", encode(TOPIC)))
        .await;
    assert_eq!(answer.status, 200);
    let id = answer.text();
    assert!(id.starts_with("urn:uuid:"), "{id}");
    assert_eq!(id.len(), "urn:uuid:".len() + 36);
}

#[tokio::test]
async fn multiline_data_type_and_retry_are_encoded_as_fields() {
    let hub = TestHub::start().await;
    let mut stream = hub
        .subscribe(&format!("match={}", encode(TOPIC)), &[])
        .await;
    hub.publish(&format!(
        "topic={}&id=a&type=upload_by_qr&retry=1500&data={}",
        encode(TOPIC),
        encode("line1\r\nline2\rline3\nline4")
    ))
    .await;
    assert_eq!(
        stream.next_event().await,
        "id: a\nevent: upload_by_qr\nretry: 1500\ndata: line1\ndata: line2\ndata: line3\ndata: line4\n\n"
    );
}

#[tokio::test]
async fn selectors_exact_urlpattern_and_wildcard() {
    let hub = TestHub::start().await;
    let mut exact = hub
        .subscribe(&format!("match={}", encode(TOPIC)), &[])
        .await;
    let mut pattern = hub
        .subscribe(
            &format!(
                "match_urlpattern={}",
                encode("https://example.com/books/:id")
            ),
            &[],
        )
        .await;
    let mut everything = hub.subscribe("match=*", &[]).await;
    let mut two = hub
        .subscribe(
            &format!(
                "match={}&match={}",
                encode("https://example.com/authors/1"),
                encode(TOPIC)
            ),
            &[],
        )
        .await;
    hub.publish(&format!("topic={}&id=1&data=book", encode(TOPIC)))
        .await;
    hub.publish(&format!(
        "topic={}&id=2&data=author",
        encode("https://example.com/authors/1")
    ))
    .await;
    assert_eq!(exact.next_event().await, "id: 1\ndata: book\n\n");
    assert_eq!(pattern.next_event().await, "id: 1\ndata: book\n\n");
    assert_eq!(everything.next_event().await, "id: 1\ndata: book\n\n");
    assert_eq!(everything.next_event().await, "id: 2\ndata: author\n\n");
    assert_eq!(two.next_event().await, "id: 1\ndata: book\n\n");
    assert_eq!(two.next_event().await, "id: 2\ndata: author\n\n");
    // The author update did not reach the book-only subscribers.
    hub.publish(&format!("topic={}&id=3&data=again", encode(TOPIC)))
        .await;
    assert_eq!(exact.next_event().await, "id: 3\ndata: again\n\n");
    assert_eq!(pattern.next_event().await, "id: 3\ndata: again\n\n");
}

#[tokio::test]
async fn alternate_topics_route_and_update_arrives_once() {
    let hub = TestHub::start().await;
    let alternate = "https://example.com/users/42/books/1";
    let mut both = hub
        .subscribe(
            &format!("match={}&match={}", encode(TOPIC), encode(alternate)),
            &[],
        )
        .await;
    hub.publish(&format!(
        "topic={}&topic={}&id=1&data=x",
        encode(TOPIC),
        encode(alternate)
    ))
    .await;
    hub.publish(&format!("topic={}&id=2&data=y", encode(alternate)))
        .await;
    assert_eq!(both.next_event().await, "id: 1\ndata: x\n\n");
    assert_eq!(both.next_event().await, "id: 2\ndata: y\n\n");
}

#[tokio::test]
async fn private_updates_reach_only_granted_subscribers() {
    let hub = TestHub::start().await;
    let granted = hub.token(&[], &[TOPIC]);
    let other = hub.token(&[], &["https://example.com/books/2"]);
    let via_alternate = hub.token(&[], &["https://example.com/users/42/*"]);
    let query = format!("match={}", encode(TOPIC));
    let mut anonymous = hub.subscribe(&query, &[]).await;
    let mut wrong = hub
        .subscribe(&query, &[("Authorization", &format!("Bearer {other}"))])
        .await;
    let mut right = hub
        .subscribe(&query, &[("Authorization", &format!("Bearer {granted}"))])
        .await;
    let mut alternate = hub
        .subscribe(
            &query,
            &[("Authorization", &format!("Bearer {via_alternate}"))],
        )
        .await;
    hub.publish(&format!(
        "topic={}&topic={}&private=on&id=secret&data=s",
        encode(TOPIC),
        encode("https://example.com/users/42/books/1")
    ))
    .await;
    hub.publish(&format!("topic={}&id=public&data=p", encode(TOPIC)))
        .await;
    assert_eq!(right.next_event().await, "id: secret\ndata: s\n\n");
    assert_eq!(alternate.next_event().await, "id: secret\ndata: s\n\n");
    assert_eq!(anonymous.next_event().await, "id: public\ndata: p\n\n");
    assert_eq!(wrong.next_event().await, "id: public\ndata: p\n\n");
}

#[tokio::test]
async fn cookie_carries_the_token_and_the_header_wins() {
    let hub = TestHub::start().await;
    let granted = hub.token(&[], &[TOPIC]);
    let cookie = format!("__Secure-mercure_access_token={granted}");
    let query = format!("match={}", encode(TOPIC));
    let mut by_cookie = hub.subscribe(&query, &[("Cookie", &cookie)]).await;
    let refused = hub
        .get(
            &format!("/.well-known/mercure?{query}"),
            &[("Cookie", &cookie), ("Authorization", "Bearer not-a-jwt")],
        )
        .await;
    assert_eq!(refused.status, 401, "the header is used, not the cookie");
    hub.publish(&format!("topic={}&private=on&id=1&data=x", encode(TOPIC)))
        .await;
    assert_eq!(by_cookie.next_event().await, "id: 1\ndata: x\n\n");
}

#[tokio::test]
async fn resume_replays_missed_updates_in_order_then_goes_live() {
    let hub = TestHub::start().await;
    hub.publish_numbered(TOPIC, 1..=5).await;
    let mut stream = hub
        .subscribe(
            &format!("match={}", encode(TOPIC)),
            &[("Last-Event-ID", "2")],
        )
        .await;
    assert_eq!(stream.header("mercure-last-event-id"), Some("2"));
    for id in 3..=5 {
        assert_eq!(
            stream.next_event().await,
            format!("id: {id}\ndata: u{id}\n\n")
        );
    }
    hub.publish(&format!("topic={}&id=6&data=u6", encode(TOPIC)))
        .await;
    assert_eq!(stream.next_event().await, "id: 6\ndata: u6\n\n");
    let rest = stream.drain_for(Duration::from_millis(200)).await;
    assert!(!rest.contains("data:"), "no duplicate after live: {rest:?}");
}

#[tokio::test]
async fn resume_filters_other_topics_and_private_updates() {
    let hub = TestHub::start().await;
    hub.publish(&format!("topic={}&id=1&data=a", encode(TOPIC)))
        .await;
    hub.publish("topic=other&id=2&data=b").await;
    hub.publish(&format!("topic={}&private=on&id=3&data=c", encode(TOPIC)))
        .await;
    hub.publish(&format!("topic={}&id=4&data=d", encode(TOPIC)))
        .await;
    let mut stream = hub
        .subscribe(
            &format!("match={}&last_event_id=earliest", encode(TOPIC)),
            &[],
        )
        .await;
    assert_eq!(stream.header("mercure-last-event-id"), Some("earliest"));
    assert_eq!(stream.next_event().await, "id: 1\ndata: a\n\n");
    assert_eq!(stream.next_event().await, "id: 4\ndata: d\n\n");
}

#[tokio::test]
async fn header_wins_over_query_parameter() {
    let hub = TestHub::start().await;
    hub.publish_numbered(TOPIC, 1..=3).await;
    let mut stream = hub
        .subscribe(
            &format!("match={}&last_event_id=1", encode(TOPIC)),
            &[("Last-Event-ID", "2")],
        )
        .await;
    assert_eq!(stream.next_event().await, "id: 3\ndata: u3\n\n");
}

#[tokio::test]
async fn unknown_resume_id_sends_everything_retained_and_says_so() {
    let hub = TestHub::builder()
        .store(Arc::new(MemoryStore::new(3)))
        .start()
        .await;
    hub.publish_numbered(TOPIC, 1..=5).await;
    // "1" was trimmed from the 3-update history.
    let mut stream = hub
        .subscribe(
            &format!("match={}", encode(TOPIC)),
            &[("Last-Event-ID", "1")],
        )
        .await;
    assert_eq!(stream.header("mercure-last-event-id"), Some("earliest"));
    assert_eq!(
        stream.next_event().await,
        "event: herald-history-gap\ndata: {\"requested\":\"1\",\"resumed_from\":\"earliest\"}\n\n"
    );
    for id in 3..=5 {
        assert_eq!(
            stream.next_event().await,
            format!("id: {id}\ndata: u{id}\n\n")
        );
    }
}

#[tokio::test]
async fn slow_subscriber_is_caught_up_from_history_without_loss() {
    let hub = TestHub::builder()
        .config(|config| config.queue_frames = 2)
        .start()
        .await;
    let mut stream = hub
        .subscribe(&format!("match={}", encode(TOPIC)), &[])
        .await;
    stream.read_until("retry: 500\n\n").await;
    let token = hub.publisher_token();
    let publishes = (1..=40).map(|id| {
        let hub = &hub;
        let token = token.clone();
        async move {
            hub.post_form(
                "/.well-known/mercure",
                &format!("topic={}&id={id}&data=u{id}", encode(TOPIC)),
                &[("Authorization", &format!("Bearer {token}"))],
            )
            .await
        }
    });
    for answer in futures_join_all(publishes).await {
        assert_eq!(answer.status, 200);
    }
    let mut ids = Vec::new();
    while ids.len() < 40 {
        let event = stream.next_event().await;
        let id: u32 = event
            .lines()
            .find_map(|line| line.strip_prefix("id: "))
            .expect("id line")
            .parse()
            .expect("numeric id");
        ids.push(id);
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 40, "every update once: {ids:?}");
}

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut handles = Vec::new();
    for future in futures {
        handles.push(future);
    }
    let mut out = Vec::new();
    // Poll them concurrently on this task.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (index, future) in pinned.iter_mut().enumerate() {
            if results[index].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => results[index] = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    for result in results {
        out.push(result.expect("completed"));
    }
    out
}

#[tokio::test]
async fn heartbeat_comments_keep_idle_streams_alive() {
    let hub = TestHub::builder()
        .config(|config| config.heartbeat = Duration::from_millis(100))
        .start()
        .await;
    let mut stream = hub.subscribe("match=x", &[]).await;
    stream.read_until("retry: 500\n\n").await;
    assert_eq!(stream.read_until("\n").await, ":\n");
}

#[tokio::test]
async fn stream_closes_when_the_token_expires() {
    let hub = TestHub::builder()
        .config(|config| config.anonymous = false)
        .start()
        .await;
    let mut request = hub.token_request(&[], &["x"]);
    request.ttl = Duration::from_secs(1);
    let token = request
        .sign_hmac(herald_testkit::SECRET.as_bytes())
        .unwrap();
    let mut stream = hub
        .subscribe("match=x", &[("Authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(stream.status, 200);
    let rest = stream.read_to_end().await;
    assert!(rest.ends_with("retry: 500\n\n"), "{rest:?}");
}

#[tokio::test]
async fn shutdown_ends_streams_with_a_retry_hint() {
    let hub = TestHub::start().await;
    let mut stream = hub.subscribe("match=x", &[]).await;
    stream.read_until("retry: 500\n\n").await;
    hub.stop().await;
    let rest = stream.read_to_end().await;
    assert_eq!(rest, "retry: 500\n\n");
}
