//! One HTTP/1.1 connection across several exchanges, over raw sockets: subscriptions are
//! served on the lean path and every other request by hyper, so these tests cover the seams
//! between them — keep-alive after a refusal and after a stream ends, requests pipelined
//! behind a stream, a connection handed over to hyper, a client that leaves, and
//! `Connection: close`.

use herald_testkit::raw::{WAIT, parse_response, read_to_close, read_until_contains};
use herald_testkit::{TestHub, encode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const TOPIC: &str = "https://example.com/connections";

fn subscribe_request(topic: &str, extra: &str) -> String {
    format!(
        "GET /.well-known/mercure?match={} HTTP/1.1\r\nHost: x\r\n{extra}\r\n",
        encode(topic)
    )
}

fn publish_request(hub: &TestHub, topic: &str, data: &str) -> String {
    let form = format!("topic={}&data={data}", encode(topic));
    format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        hub.publisher_token(),
        form.len()
    )
}

/// How many HTTP responses a byte string holds (status lines at the start of a line).
fn status_lines(received: &[u8]) -> usize {
    let text = String::from_utf8_lossy(received);
    usize::from(text.starts_with("HTTP/1.1 ")) + text.matches("\nHTTP/1.1 ").count()
}

async fn end(hub: &TestHub, topic: &str) {
    hub.hub
        .end_topics(&[topic.to_owned()], None)
        .await
        .expect("end");
}

#[tokio::test]
async fn a_refused_subscription_keeps_the_connection_for_the_next_one() {
    let hub = TestHub::start().await;
    let mut stream = TcpStream::connect(hub.addr).await.unwrap();
    stream
        .write_all(b"GET /.well-known/mercure HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    read_until_contains(&mut stream, &mut received, b"parameter is required\n", WAIT).await;
    let refusal = parse_response(&received).expect("a response");
    assert_eq!(refusal.status, 400, "{}", refusal.text());
    assert_eq!(
        refusal.header("content-length"),
        Some(refusal.body.len().to_string().as_str())
    );
    assert!(refusal.header("date").is_some() && refusal.header("x-request-id").is_some());

    stream
        .write_all(subscribe_request(TOPIC, "").as_bytes())
        .await
        .unwrap();
    let mut received = Vec::new();
    read_until_contains(&mut stream, &mut received, b"retry: 500\n\n", WAIT).await;
    let head = String::from_utf8_lossy(&received);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\ncontent-type: text/event-stream\r\n"),
        "{head}"
    );
    assert_eq!(
        hub.publish(&format!("topic={}&data=one", encode(TOPIC)))
            .await
            .status,
        200
    );
    read_until_contains(&mut stream, &mut received, b"data: one\n\n", WAIT).await;
}

#[tokio::test]
async fn after_a_stream_ends_the_connection_carries_a_publish() {
    let hub = TestHub::start().await;
    let mut watcher = hub.watcher().await;
    let mut stream = TcpStream::connect(hub.addr).await.unwrap();
    stream
        .write_all(subscribe_request(TOPIC, "").as_bytes())
        .await
        .unwrap();
    let mut received = Vec::new();
    read_until_contains(&mut stream, &mut received, b"retry: 500\n\n", WAIT).await;
    end(&hub, TOPIC).await;
    read_until_contains(&mut stream, &mut received, b"\r\n0\r\n\r\n", WAIT).await;

    // The next request is not a subscription: hyper serves it on the same connection.
    let fence = herald_testkit::FENCE_TOPIC;
    stream
        .write_all(publish_request(&hub, fence, "after-the-stream").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    read_until_contains(&mut stream, &mut answer, b"\r\n\r\n", WAIT).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        watcher
            .next_event()
            .await
            .contains("data: after-the-stream")
    );
}

#[tokio::test]
async fn a_subscription_pipelined_behind_a_stream_is_answered_when_it_ends() {
    let hub = TestHub::start().await;
    let second = "https://example.com/connections/second";
    let both = format!(
        "{}{}",
        subscribe_request(TOPIC, ""),
        subscribe_request(second, "")
    );
    let mut stream = TcpStream::connect(hub.addr).await.unwrap();
    stream.write_all(both.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    read_until_contains(&mut stream, &mut received, b"retry: 500\n\n", WAIT).await;
    assert_eq!(status_lines(&received), 1);
    end(&hub, TOPIC).await;
    read_until_contains(
        &mut stream,
        &mut received,
        b"\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n",
        WAIT,
    )
    .await;
    let answer = hub
        .publish(&format!("topic={}&data=second", encode(second)))
        .await;
    assert_eq!(answer.status, 200);
    read_until_contains(&mut stream, &mut received, b"data: second\n\n", WAIT).await;
    assert_eq!(status_lines(&received), 2);
}

#[tokio::test]
async fn a_subscriber_that_leaves_is_unregistered_at_once() {
    let hub = TestHub::start().await;
    let stream = hub
        .subscribe(&format!("match={}", encode(TOPIC)), &[])
        .await;
    assert_eq!(hub.hub.subscriber_count(), 1);
    drop(stream);
    // The hub notices the closed socket while the stream is idle, not at its next write.
    let deadline = tokio::time::Instant::now() + WAIT;
    while hub.hub.subscriber_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscriber is still registered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn connection_close_is_honoured_after_a_refusal_and_after_a_stream() {
    let hub = TestHub::start().await;
    let mut stream = TcpStream::connect(hub.addr).await.unwrap();
    stream
        .write_all(b"GET /.well-known/mercure HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let received = read_to_close(&mut stream).await;
    assert_eq!(parse_response(&received).expect("a response").status, 400);

    let mut stream = TcpStream::connect(hub.addr).await.unwrap();
    stream
        .write_all(subscribe_request(TOPIC, "Connection: close\r\n").as_bytes())
        .await
        .unwrap();
    let mut received = Vec::new();
    read_until_contains(&mut stream, &mut received, b"retry: 500\n\n", WAIT).await;
    end(&hub, TOPIC).await;
    received.extend(read_to_close(&mut stream).await);
    assert!(received.ends_with(b"\r\n0\r\n\r\n"));
}
