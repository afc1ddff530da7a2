//! herald-client against the real hub (herald-hub on 127.0.0.1:0, via herald-testkit):
//! publish → receive, resume by Last-Event-ID, private updates, the end of a stream (204),
//! a hub restart, HTTP/2, and the hub's refusals.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::within;
use herald_client::{Error, Event, EventSource, Publication, Publisher, StatusCode};
use herald_hub::store::memory::MemoryStore;
use herald_testkit::{TestHub, encode};

const TOPIC: &str = "https://example.com/books/1";

fn subscribe_url(hub: &TestHub, topic: &str) -> String {
    format!("{}?match={}", hub.hub_url(), encode(topic))
}

fn publisher(hub: &TestHub) -> Publisher {
    Publisher::builder(hub.hub_url())
        .bearer(hub.publisher_token())
        .build()
        .unwrap()
}

/// The next event, failing the test on an error or the end of the stream.
async fn next(events: &mut EventSource) -> Event {
    match within(events.next()).await {
        Some(Ok(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn published_updates_arrive_exactly() {
    let hub = TestHub::start().await;
    // `earliest` replays the history first, so nothing published before the subscription is
    // registered can be missed.
    let mut events = EventSource::builder(subscribe_url(&hub, TOPIC))
        .last_event_id("earliest")
        .build()
        .unwrap();
    let publisher = publisher(&hub);

    let first = Publication::new(TOPIC).data("one");
    let id = publisher.publish(&first).await.unwrap();
    let lines = Publication::new(TOPIC)
        .data("a\r\nb\rc\nd")
        .event_type("upload_by_qr")
        .id("chosen");
    assert_eq!(publisher.publish(&lines).await.unwrap(), "chosen");

    assert!(id.starts_with("urn:uuid:"), "{id}");
    let received = next(&mut events).await;
    assert_eq!(
        (received.id.as_str(), received.event.as_str()),
        (id.as_str(), "message")
    );
    assert_eq!(received.data, "one");
    let received = next(&mut events).await;
    assert_eq!(
        received,
        Event {
            id: "chosen".into(),
            event: "upload_by_qr".into(),
            data: "a\nb\nc\nd".into(),
        }
    );
    assert_eq!(
        events.retry(),
        Duration::from_millis(500),
        "the hub's retry field"
    );
}

#[tokio::test]
async fn resuming_after_an_id_replays_what_came_after_it() {
    let hub = TestHub::start().await;
    let publisher = publisher(&hub);
    for id in 1..=5 {
        let update = Publication::new(TOPIC)
            .id(id.to_string())
            .data(format!("u{id}"));
        publisher.publish(&update).await.unwrap();
    }
    let mut events = EventSource::builder(subscribe_url(&hub, TOPIC))
        .last_event_id("2")
        .build()
        .unwrap();

    for id in 3..=5 {
        let event = next(&mut events).await;
        assert_eq!((event.id, event.data), (id.to_string(), format!("u{id}")));
    }
}

#[tokio::test]
async fn ending_a_stream_delivers_the_final_event_then_stops_the_client() {
    let hub = TestHub::start().await;
    let topic = "/sessions/42";
    let mut events = EventSource::builder(subscribe_url(&hub, topic))
        .last_event_id("earliest")
        .build()
        .unwrap();
    let publisher = publisher(&hub);
    publisher
        .publish(&Publication::new(topic).data("photo 1"))
        .await
        .unwrap();
    assert_eq!(next(&mut events).await.data, "photo 1");

    let bye = Publication::new(topic).event_type("bye").data("done");
    publisher.end(&bye).await.unwrap();

    let last = next(&mut events).await;
    assert_eq!((last.event.as_str(), last.data.as_str()), ("bye", "done"));
    // The hub closed the stream; the reconnection gets 204 and the client stops for good.
    assert!(within(events.next()).await.is_none());
    assert!(events.is_closed());
}

#[tokio::test]
async fn private_updates_reach_only_subscribers_with_a_grant() {
    let hub = TestHub::start().await;
    let granted = hub.token(&[], &[TOPIC]);
    let mut with_token = EventSource::builder(subscribe_url(&hub, TOPIC))
        .bearer(granted)
        .last_event_id("earliest")
        .build()
        .unwrap();
    let mut anonymous = EventSource::builder(subscribe_url(&hub, TOPIC))
        .last_event_id("earliest")
        .build()
        .unwrap();
    let publisher = publisher(&hub);

    let secret = Publication::new(TOPIC).data("secret").private(true);
    publisher.publish(&secret).await.unwrap();
    publisher
        .publish(&Publication::new(TOPIC).data("public"))
        .await
        .unwrap();

    assert_eq!(next(&mut with_token).await.data, "secret");
    assert_eq!(next(&mut with_token).await.data, "public");
    assert_eq!(next(&mut anonymous).await.data, "public");
}

#[tokio::test]
async fn a_hub_restart_is_bridged_by_last_event_id() {
    let store = Arc::new(MemoryStore::new(100));
    let first = TestHub::builder().store(store.clone()).start().await;
    let addr = first.addr;
    let url = subscribe_url(&first, TOPIC);
    let hub_url = first.hub_url();
    let token = first.publisher_token();
    let mut events = EventSource::builder(&url)
        .last_event_id("earliest")
        .build()
        .unwrap();
    let publish = |id: &'static str| {
        let publisher = Publisher::builder(&hub_url).bearer(&token).build().unwrap();
        async move {
            let update = Publication::new(TOPIC).id(id).data(id);
            publisher.publish(&update).await.unwrap();
        }
    };
    publish("before").await;
    assert_eq!(next(&mut events).await.id, "before");

    first.stop().await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    let listener = socket.listen(128).unwrap().into_std().unwrap();
    let second = TestHub::builder()
        .store(store)
        .listener(listener)
        .start()
        .await;
    // Published while the client is away: it must come by replay, once.
    publish("during").await;

    assert_eq!(next(&mut events).await.id, "during");
    publish("after").await;
    assert_eq!(next(&mut events).await.id, "after");
    second.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_to_the_hub() {
    let hub = TestHub::start().await;
    let mut events = EventSource::builder(subscribe_url(&hub, TOPIC))
        .last_event_id("earliest")
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let publisher = Publisher::builder(hub.hub_url())
        .bearer(hub.publisher_token())
        .http2_prior_knowledge()
        .build()
        .unwrap();

    publisher
        .publish(&Publication::new(TOPIC).id("h2").data("over h2c"))
        .await
        .unwrap();

    assert_eq!(next(&mut events).await.data, "over h2c");
}

#[tokio::test]
async fn the_hubs_refusals_carry_its_reason() {
    let hub = TestHub::start().await;
    let anonymous = Publisher::builder(hub.hub_url()).build().unwrap();
    let narrow = Publisher::builder(hub.hub_url())
        .bearer(hub.token(&["/other"], &[]))
        .build()
        .unwrap();
    let update = Publication::new(TOPIC).data("x");

    let missing = anonymous.publish(&update).await.unwrap_err();
    let denied = narrow.publish(&update).await.unwrap_err();

    let Error::Status {
        status,
        body_snippet,
    } = &missing
    else {
        panic!("{missing:?}");
    };
    assert_eq!(*status, StatusCode::UNAUTHORIZED);
    assert!(!body_snippet.is_empty());
    let Error::Status {
        status,
        body_snippet,
    } = &denied
    else {
        panic!("{denied:?}");
    };
    assert_eq!(*status, StatusCode::FORBIDDEN);
    assert!(body_snippet.contains(TOPIC), "{body_snippet}");
}
