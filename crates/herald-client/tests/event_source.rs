//! `EventSource` against hand-written HTTP/1.1 servers on real sockets: reconnection,
//! Last-Event-ID, retry, backoff, 204, status and content-type errors, redirects.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use herald_client::{Error, Event, EventSource, RedirectError, StatusCode};

fn event(id: &str, event: &str, data: &str) -> Event {
    Event {
        id: id.into(),
        event: event.into(),
        data: data.into(),
    }
}

/// Reads every item until the stream ends.
async fn drain(events: &mut EventSource) -> Vec<Result<Event, Error>> {
    let mut items = Vec::new();
    while let Some(item) = within(events.next()).await {
        items.push(item);
    }
    items
}

fn ok(items: Vec<Result<Event, Error>>) -> Vec<Event> {
    items
        .into_iter()
        .map(|item| item.expect("an event"))
        .collect()
}

#[tokio::test]
async fn a_connection_dropped_mid_event_resumes_from_the_last_complete_one() {
    let mut server = FakeServer::start(|request, mut socket| async move {
        match request.index {
            0 => {
                send(&mut socket, CHUNKED_STREAM_HEAD).await;
                send_chunk(&mut socket, "retry: 20\n\nid: 1\ndata: one\n\n").await;
                pause().await;
                // Cut in the middle of event 2, without the closing chunk: a broken body.
                send_chunk(&mut socket, "id: 2\ndata: tw").await;
            }
            1 => {
                send(&mut socket, STREAM_HEAD).await;
                send(&mut socket, "id: 2\ndata: two\n\n").await;
            }
            _ => send(&mut socket, NO_CONTENT).await,
        }
    })
    .await;
    let mut events = EventSource::new(server.url("/events")).unwrap();

    let items = ok(drain(&mut events).await);

    assert_eq!(
        items,
        [event("1", "message", "one"), event("2", "message", "two")]
    );
    let requests = [server.request().await, server.request().await];
    assert_eq!(requests[0].header("last-event-id"), None);
    assert_eq!(requests[1].header("last-event-id"), Some("1"));
    assert_eq!(requests[1].header("accept"), Some("text/event-stream"));
    assert_eq!(requests[1].header("cache-control"), Some("no-cache"));
}

#[tokio::test]
async fn a_close_delimited_stream_cut_mid_event_discards_the_partial_event() {
    let mut server = FakeServer::start(|request, mut socket| async move {
        if request.index == 0 {
            send(&mut socket, STREAM_HEAD).await;
            send(
                &mut socket,
                "retry: 10\nid: a\ndata: kept\n\nid: b\ndata: lost",
            )
            .await;
        } else {
            send(&mut socket, NO_CONTENT).await;
        }
    })
    .await;
    let mut events = EventSource::new(server.url("/")).unwrap();

    assert_eq!(
        ok(drain(&mut events).await),
        [event("a", "message", "kept")]
    );
    assert_eq!(events.last_event_id(), "a");
    server.request().await;
    assert_eq!(server.request().await.header("last-event-id"), Some("a"));
}

#[tokio::test]
async fn a_crlf_split_across_packets_is_one_line_end() {
    let _server = FakeServer::start(|request, mut socket| async move {
        if request.index > 0 {
            return send(&mut socket, NO_CONTENT).await;
        }
        send(&mut socket, STREAM_HEAD).await;
        for part in [
            "retry: 10\r\n",
            "data: a\r",
            "\n\r",
            "\ndata: b\r\n",
            "\r",
            "\n",
        ] {
            send(&mut socket, part).await;
            pause().await;
        }
        send(&mut socket, "event: last\r\ndata: c\r\n\r\n").await;
    })
    .await;
    let mut events = EventSource::new(_server.url("/")).unwrap();

    let items = ok(drain(&mut events).await);

    assert_eq!(
        items,
        [
            event("", "message", "a"),
            event("", "message", "b"),
            event("", "last", "c"),
        ]
    );
}

#[tokio::test]
async fn no_content_ends_the_stream_without_reconnecting() {
    let mut server = FakeServer::start(|_, mut socket| async move {
        send(&mut socket, NO_CONTENT).await;
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .retry(Duration::from_millis(10))
        .build()
        .unwrap();

    assert!(within(events.next()).await.is_none());
    assert!(events.is_closed());
    assert!(within(events.next()).await.is_none());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.received().len(), 1, "no second request after a 204");
}

#[tokio::test]
async fn server_errors_are_retried_until_the_server_recovers() {
    let mut server = FakeServer::start(|request, mut socket| async move {
        match request.index {
            0 => {
                send(
                    &mut socket,
                    &response("500 Internal Server Error", "", "boom"),
                )
                .await
            }
            1 => {
                send(
                    &mut socket,
                    &response("503 Service Unavailable", "Retry-After: 0\r\n", ""),
                )
                .await
            }
            2 => {
                send(&mut socket, STREAM_HEAD).await;
                send(&mut socket, "id: 9\ndata: back\n\n").await;
            }
            _ => send(&mut socket, NO_CONTENT).await,
        }
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .retry(Duration::from_millis(10))
        .build()
        .unwrap();

    assert_eq!(
        ok(drain(&mut events).await),
        [event("9", "message", "back")]
    );
    assert_eq!(server.received().len(), 4);
}

#[tokio::test]
async fn the_wrong_content_type_stops_with_an_error() {
    let mut server = FakeServer::start(|_, mut socket| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 6\r\n\r\n<html>";
        send(&mut socket, head).await;
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .retry(Duration::from_millis(10))
        .build()
        .unwrap();

    let items = drain(&mut events).await;

    assert_eq!(items.len(), 1);
    let Err(Error::ContentType(received)) = &items[0] else {
        panic!("expected a content-type error, got {:?}", items[0]);
    };
    assert_eq!(received.as_deref(), Some("text/html"));
    assert_eq!(
        items[0].as_ref().unwrap_err().to_string(),
        "the server answered with Content-Type text/html, not text/event-stream"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.received().len(), 1, "not retried");
}

#[tokio::test]
async fn a_client_error_stops_with_the_servers_reason() {
    let _server = FakeServer::start(|_, mut socket| async move {
        let reason = "the token does not grant subscribe on /private\n";
        send(&mut socket, &response("403 Forbidden", "", reason)).await;
    })
    .await;
    let mut events = EventSource::new(_server.url("/")).unwrap();

    let items = drain(&mut events).await;

    let [
        Err(Error::Status {
            status,
            body_snippet,
        }),
    ] = &items[..]
    else {
        panic!("expected one status error, got {items:?}");
    };
    assert_eq!(*status, StatusCode::FORBIDDEN);
    assert_eq!(
        body_snippet,
        "the token does not grant subscribe on /private"
    );
}

#[tokio::test]
async fn redirects_are_followed_and_credentials_stay_on_their_origin() {
    let mut other = FakeServer::start(|_, mut socket| async move {
        send(&mut socket, STREAM_HEAD).await;
        send(&mut socket, "retry: 10\nid: r1\ndata: from elsewhere\n\n").await;
    })
    .await;
    let elsewhere = other.url("/stream?match=x");
    let mut origin = FakeServer::start(move |request, mut socket| {
        let elsewhere = elsewhere.clone();
        async move {
            let redirect = |status: &str, location: &str| {
                format!("HTTP/1.1 {status}\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
            };
            match request.index {
                0 => send(&mut socket, &redirect("307 Temporary Redirect", "/moved")).await,
                1 => send(&mut socket, &redirect("302 Found", &elsewhere)).await,
                _ => send(&mut socket, NO_CONTENT).await,
            }
        }
    })
    .await;
    let mut events = EventSource::builder(origin.url("/events"))
        .bearer("s3cret")
        .header("X-Custom", "yes")
        .retry(Duration::from_millis(10))
        .build()
        .unwrap();

    assert_eq!(
        ok(drain(&mut events).await),
        [event("r1", "message", "from elsewhere")]
    );

    let first = origin.request().await;
    let moved = origin.request().await;
    assert_eq!(moved.target, "/moved");
    for request in [&first, &moved] {
        assert_eq!(request.header("authorization"), Some("Bearer s3cret"));
        assert_eq!(request.header("x-custom"), Some("yes"));
    }
    let foreign = other.request().await;
    assert_eq!(foreign.target, "/stream?match=x");
    assert_eq!(
        foreign.header("authorization"),
        None,
        "token leaked to another origin"
    );
    assert_eq!(
        foreign.header("x-custom"),
        None,
        "header leaked to another origin"
    );
    assert_eq!(foreign.header("accept"), Some("text/event-stream"));
    // Reconnection starts again at the configured URL, with the last id.
    let again = origin.request().await;
    assert_eq!(again.target, "/events");
    assert_eq!(again.header("last-event-id"), Some("r1"));
}

#[tokio::test]
async fn a_redirect_loop_stops_at_the_limit() {
    let mut server = FakeServer::start(|_, mut socket| async move {
        let head =
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n";
        send(&mut socket, head).await;
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .max_redirects(3)
        .build()
        .unwrap();

    let items = drain(&mut events).await;

    assert!(
        matches!(
            &items[..],
            [Err(Error::Redirect(RedirectError::TooMany { limit: 3 }))]
        ),
        "{items:?}"
    );
    assert_eq!(server.received().len(), 4);
}

#[tokio::test]
async fn a_redirect_without_location_is_an_error() {
    let _server = FakeServer::start(|_, mut socket| async move {
        send(
            &mut socket,
            "HTTP/1.1 301 Moved Permanently\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
    })
    .await;
    let mut events = EventSource::new(_server.url("/")).unwrap();

    let items = drain(&mut events).await;

    assert!(
        matches!(
            &items[..],
            [Err(Error::Redirect(RedirectError::MissingLocation { .. }))]
        ),
        "{items:?}"
    );
}

#[tokio::test]
async fn the_retry_field_sets_the_reconnection_time() {
    let mut server = FakeServer::start(|request, mut socket| async move {
        if request.index == 0 {
            send(&mut socket, STREAM_HEAD).await;
            send(&mut socket, "retry: 300\ndata: x\n\n").await;
        } else {
            send(&mut socket, NO_CONTENT).await;
        }
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .retry(Duration::from_millis(5))
        .build()
        .unwrap();

    assert_eq!(ok(drain(&mut events).await).len(), 1);

    assert_eq!(events.retry(), Duration::from_millis(300));
    let first = server.request().await;
    let second = server.request().await;
    let gap = second.at - first.at;
    // Loose: only that the server's 300 ms were waited rather than the builder's 5 ms.
    assert!(
        gap >= Duration::from_millis(280),
        "reconnected after {gap:?}"
    );
}

#[tokio::test]
async fn the_builders_last_event_id_is_sent_and_carried_by_events() {
    let mut server = FakeServer::start(|request, mut socket| async move {
        if request.index == 0 {
            send(&mut socket, STREAM_HEAD).await;
            send(&mut socket, "retry: 10\ndata: no id of its own\n\n").await;
        } else {
            send(&mut socket, NO_CONTENT).await;
        }
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .last_event_id("41")
        .build()
        .unwrap();

    assert_eq!(
        ok(drain(&mut events).await),
        [event("41", "message", "no id of its own")]
    );
    assert_eq!(server.request().await.header("last-event-id"), Some("41"));
    assert_eq!(server.request().await.header("last-event-id"), Some("41"));
}

#[tokio::test]
async fn backoff_grows_while_attempts_keep_failing_up_to_the_cap() {
    const FAILURES: usize = 7;
    let mut server = FakeServer::start(|request, mut socket| async move {
        if request.index < FAILURES {
            send(
                &mut socket,
                &response("503 Service Unavailable", "", "busy"),
            )
            .await;
        } else {
            send(&mut socket, NO_CONTENT).await;
        }
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .retry(Duration::from_millis(20))
        .max_retry(Duration::from_millis(400))
        .jitter(false)
        .build()
        .unwrap();

    assert!(drain(&mut events).await.is_empty());

    let mut times = Vec::new();
    for _ in 0..=FAILURES {
        times.push(server.request().await.at);
    }
    let gaps: Vec<Duration> = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
    // Without jitter the waits are 20 ms (the retry), then 100, 200, 400 (doubling from the
    // 50 ms growth base), then 400, 400, 400 (the cap). Lower bounds show the growth; the
    // cap is shown by the last three waits together staying far below the 5.6 s they would
    // take uncapped (800 + 1600 + 3200 ms).
    let floors = [20, 100, 200, 400, 400, 400, 400].map(Duration::from_millis);
    for (gap, floor) in gaps.iter().zip(floors) {
        assert!(*gap >= floor, "gaps {gaps:?}");
    }
    let capped: Duration = gaps[4..].iter().sum();
    assert!(capped < Duration::from_secs(3), "cap not applied: {gaps:?}");
}

#[tokio::test]
async fn a_refused_first_connection_is_an_error_when_initial_retry_is_off() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let mut events = EventSource::builder(&url)
        .retry_initial_connection(false)
        .build()
        .unwrap();

    let items = drain(&mut events).await;

    let [Err(error @ Error::Connect { .. })] = &items[..] else {
        panic!("expected a connect error, got {items:?}");
    };
    assert_eq!(error.io_kind(), Some(std::io::ErrorKind::ConnectionRefused));
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot reach {url}: ")),
        "{error}"
    );
}

#[tokio::test]
async fn a_refused_first_connection_is_retried_by_default() {
    let port = closed_port();
    let mut events = EventSource::builder(format!("http://127.0.0.1:{port}/"))
        .retry(Duration::from_millis(20))
        .build()
        .unwrap();
    let late_server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(0, &mut socket).await;
        send(&mut socket, STREAM_HEAD).await;
        send(&mut socket, "data: finally\n\n").await;
        // Keep the connection open until the test is done with it.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });

    let first = within(events.next()).await;

    assert_eq!(first.unwrap().unwrap().data, "finally");
    late_server.abort();
}

#[tokio::test]
async fn a_silent_stream_is_dropped_after_the_idle_timeout() {
    let mut server = FakeServer::start(|request, mut socket| async move {
        match request.index {
            0 => {
                send(&mut socket, STREAM_HEAD).await;
                send(&mut socket, "id: 1\ndata: then silence\n\n").await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            1 => {
                send(&mut socket, STREAM_HEAD).await;
                send(&mut socket, "id: 2\ndata: fresh\n\n").await;
            }
            _ => send(&mut socket, NO_CONTENT).await,
        }
    })
    .await;
    let mut events = EventSource::builder(server.url("/"))
        .idle_timeout(Duration::from_millis(200))
        .retry(Duration::from_millis(10))
        .build()
        .unwrap();

    let items = ok(drain(&mut events).await);

    assert_eq!(
        items,
        [
            event("1", "message", "then silence"),
            event("2", "message", "fresh")
        ]
    );
    server.request().await;
    assert_eq!(server.request().await.header("last-event-id"), Some("1"));
}

#[tokio::test]
async fn an_over_long_line_stops_the_stream() {
    let _server = FakeServer::start(|_, mut socket| async move {
        send(&mut socket, STREAM_HEAD).await;
        send(&mut socket, "data: this line is far too long\n\n").await;
    })
    .await;
    let limits = herald_client::Limits {
        max_line_len: 16,
        ..Default::default()
    };
    let mut events = EventSource::builder(_server.url("/"))
        .limits(limits)
        .build()
        .unwrap();

    let items = drain(&mut events).await;

    assert!(matches!(&items[..], [Err(Error::Stream(_))]), "{items:?}");
}

#[tokio::test]
async fn the_stream_trait_and_a_bom_on_every_connection() {
    let _server = FakeServer::start(|request, mut socket| async move {
        if request.index < 2 {
            send(&mut socket, STREAM_HEAD).await;
            let body = format!("\u{feff}retry: 10\nid: {0}\ndata: {0}\n\n", request.index);
            send(&mut socket, &body).await;
        } else {
            send(&mut socket, NO_CONTENT).await;
        }
    })
    .await;
    let events = EventSource::new(_server.url("/")).unwrap();

    let items: Vec<_> = within(events.collect::<Vec<_>>()).await;

    assert_eq!(
        ok(items),
        [event("0", "message", "0"), event("1", "message", "1")]
    );
}

#[tokio::test]
async fn next_is_cancel_safe() {
    let _server = FakeServer::start(|request, mut socket| async move {
        if request.index > 0 {
            return send(&mut socket, NO_CONTENT).await;
        }
        send(&mut socket, STREAM_HEAD).await;
        send(&mut socket, "retry: 10\ndata: par").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(&mut socket, "tial\n\n").await;
    })
    .await;
    let mut events = EventSource::new(_server.url("/")).unwrap();

    // Give up on `next` several times while the event is half sent.
    for _ in 0..3 {
        let attempt = tokio::time::timeout(Duration::from_millis(20), events.next()).await;
        assert!(attempt.is_err(), "no event yet");
    }

    assert_eq!(
        ok(drain(&mut events).await),
        [event("", "message", "partial")]
    );
}
