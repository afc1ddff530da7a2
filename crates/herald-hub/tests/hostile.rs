//! Slow and hostile clients over real sockets: silent and slowloris connections are cut off by
//! the header timeout, a trickled publish body by the body timeout; connection limits (global
//! and per address) answer 503 / 429 with `Retry-After`; subscribers that never read stay
//! bounded by their queue and cost the others nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use herald_hub::http::ServerOptions;
use herald_hub::store::memory::MemoryStore;
use herald_testkit::raw::{
    RawStream, connect_from, parse_response, read_to_close, read_until_contains,
};
use herald_testkit::{TestHub, encode, raise_fd_limit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const TOPIC: &str = "https://example.com/hostile";

/// Longest a test waits for the hub to cut a client off before it fails. Far above the
/// configured timeouts: it only keeps a broken hub from hanging the test.
const CUT_OFF_BOUND: Duration = Duration::from_secs(20);

fn short_timeouts() -> ServerOptions {
    ServerOptions {
        header_read_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    }
}

/// Keeps `stream` open, writing the next byte of `drip` every 50 ms (if any), until the hub
/// closes it; fails after [`CUT_OFF_BOUND`]. Returns what the hub sent before closing.
async fn until_cut_off(mut stream: TcpStream, drip: Vec<u8>, what: &str) -> Vec<u8> {
    let mut received = Vec::new();
    let mut drip = drip.iter();
    let cut_off = async {
        loop {
            let mut chunk = [0u8; 1024];
            tokio::select! {
                read = stream.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received.extend_from_slice(&chunk[..n]),
                },
                () = tokio::time::sleep(Duration::from_millis(50)) => {
                    if let Some(byte) = drip.next()
                        && stream.write_all(&[*byte]).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    tokio::time::timeout(CUT_OFF_BOUND, cut_off)
        .await
        .unwrap_or_else(|_| panic!("{what}: the hub kept the connection open"));
    received
}

#[tokio::test]
async fn silent_and_slowloris_clients_are_cut_off_by_the_header_timeout() {
    let hub = TestHub::builder().server(short_timeouts()).start().await;
    // A head that would take 10 s at one byte per 50 ms: endless, as far as the hub goes.
    let endless_head: Vec<u8> = format!(
        "GET /.well-known/mercure?match={} HTTP/1.1\r\nHost: x\r\n{}",
        encode(TOPIC),
        "X-Slow: a\r\n".repeat(20)
    )
    .into_bytes();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a client that sends nothing", Vec::new()),
        ("a trickled HTTP/2 preface", b"PRI * HTTP/2.0\r\n".to_vec()),
        ("a request head one byte at a time", endless_head.clone()),
    ];
    let mut cut = Vec::new();
    for (what, drip) in cases {
        let stream = TcpStream::connect(hub.addr).await.unwrap();
        cut.push((
            what,
            tokio::spawn(async move { until_cut_off(stream, drip, what).await }),
        ));
    }
    // A subscriber opened while the slow clients are connected is served as usual.
    let mut stream = hub
        .subscribe(&format!("match={}", encode(TOPIC)), &[])
        .await;
    assert_eq!(stream.status, 200);
    for (what, cut) in cut {
        let received = cut.await.unwrap();
        assert!(
            !String::from_utf8_lossy(&received).contains("200 OK"),
            "{what}: {received:?}"
        );
    }
    // An idle keep-alive connection after a complete request is closed too.
    let mut idle = TcpStream::connect(hub.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let received = until_cut_off(idle, Vec::new(), "an idle keep-alive connection").await;
    assert!(received.starts_with(b"HTTP/1.1 200 OK"), "{received:?}");
    // The subscriber stream outlives every cut-off: the timeout is for heads, not streams.
    hub.publish(&format!("topic={}&id=still&data=here", encode(TOPIC)))
        .await;
    assert_eq!(stream.next_event().await, "id: still\ndata: here\n\n");
}

#[tokio::test]
async fn a_trickled_publish_body_gets_408_and_the_connection_closes() {
    let hub = TestHub::builder()
        .config(|config| config.body_read_timeout = Duration::from_millis(300))
        .start()
        .await;
    let mut watcher = hub.watcher().await;
    let form = format!("topic={}&data=slow", encode(TOPIC));
    let head = format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        hub.publisher_token(),
        form.len() + 1000
    );
    let mut stream = TcpStream::connect(hub.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let received = until_cut_off(stream, form.into_bytes(), "a trickled body").await;
    let answer = parse_response(&received).expect("an answer");
    assert_eq!(answer.status, 408, "{}", answer.text());
    assert!(
        answer.text().contains("did not arrive"),
        "{}",
        answer.text()
    );
    watcher
        .assert_nothing_since(&hub, "a trickled publish")
        .await;
}

/// Asserts `received` is a refusal with `status`, `Retry-After` and a message with `fragment`.
fn assert_refusal(received: &[u8], status: u16, fragment: &str) {
    let answer = parse_response(received).expect("an answer");
    assert_eq!(answer.status, status, "{}", answer.text());
    assert_eq!(answer.header("retry-after"), Some("5"));
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(answer.text().contains(fragment), "{}", answer.text());
}

/// Sends one request on a fresh connection from `source` and reads until the hub closes.
async fn request_from(hub: &TestHub, source: IpAddr, request: &str) -> Vec<u8> {
    let mut stream = connect_from(hub.addr, source).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    read_to_close(&mut stream).await
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

#[tokio::test]
async fn the_global_connection_limit_answers_503_and_frees_slots_as_connections_end() {
    let hub = TestHub::builder()
        .config(|config| config.max_connections = Some(3))
        .start()
        .await;
    let query = format!("match={}", encode(TOPIC));
    let mut streams = Vec::new();
    for _ in 0..3 {
        let stream = hub.subscribe(&query, &[]).await;
        assert_eq!(stream.status, 200);
        streams.push(stream);
    }
    let get = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let received = request_from(&hub, loopback(1), get).await;
    assert_refusal(&received, 503, "connection limit (3 open connections)");
    // A publisher is refused the same way: the limit counts connections, not routes.
    let form = format!("topic={}&data=x", encode(TOPIC));
    let publish = format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        hub.publisher_token(),
        form.len()
    );
    assert_refusal(
        &request_from(&hub, loopback(1), &publish).await,
        503,
        "retry in 5s",
    );
    // Operators see refusals in /metrics, not only in the (sampled) log.
    assert_eq!(
        hub.hub
            .stats()
            .connections_refused
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // A subscriber leaves; its slot comes back once the hub sees the connection gone (at
    // its next write: an update for its topic).
    drop(streams.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        hub.hub
            .publish(herald_hub::UpdateFields {
                topics: vec![TOPIC.to_owned()],
                data: "ping".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let received = request_from(&hub, loopback(1), get).await;
        if received.starts_with(b"HTTP/1.1 200 OK") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for stream in &mut streams {
        assert!(stream.next_event().await.contains("data: ping"));
    }
}

#[tokio::test]
async fn the_per_address_limit_answers_429_to_that_address_only() {
    let hub = TestHub::builder()
        .config(|config| config.max_connections_per_ip = Some(2))
        .start()
        .await;
    let path = format!("/.well-known/mercure?match={}", encode(TOPIC));
    let mut held = Vec::new();
    for _ in 0..2 {
        let stream =
            RawStream::open_on(connect_from(hub.addr, loopback(2)).await, &path, &[]).await;
        assert_eq!(stream.status, 200);
        held.push(stream);
    }
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let received = request_from(&hub, loopback(2), &request).await;
    assert_refusal(
        &received,
        429,
        "too many connections from your address (the limit is 2)",
    );
    // Another address is not affected, nor is the publisher on 127.0.0.1.
    let other = RawStream::open_on(connect_from(hub.addr, loopback(3)).await, &path, &[]).await;
    assert_eq!(other.status, 200);
    let answer = hub
        .publish(&format!("topic={}&id=1&data=x", encode(TOPIC)))
        .await;
    assert_eq!(answer.status, 200);
    for stream in &mut held {
        assert_eq!(stream.next_event().await, "id: 1\ndata: x\n\n");
    }
}

#[tokio::test]
async fn an_http2_connection_over_the_limit_gets_503_too() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let hub = TestHub::builder()
        .config(|config| config.max_connections = Some(1))
        .start()
        .await;
    let _held = hub.subscribe("match=a", &[]).await;
    let tcp = TcpStream::connect(hub.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/healthz", hub.addr))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(CUT_OFF_BOUND, sender.send_request(request))
        .await
        .expect("an answer")
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("connection limit"));
    // The hub shuts the refused connection down after answering.
    tokio::time::timeout(CUT_OFF_BOUND, connection)
        .await
        .expect("the refused HTTP/2 connection is closed")
        .unwrap()
        .ok();
}

/// Small kernel send buffers, so that a subscriber that stops reading backs up into its
/// queue after little traffic (the hub's default lets ~512 KB wait in the kernel first).
fn small_send_buffer() -> ServerOptions {
    ServerOptions {
        send_buffer: Some(16 * 1024),
        ..ServerOptions::default()
    }
}

/// Opens a subscription that never reads, not even its response head, with a small receive
/// buffer so the hub's writes back up soon.
async fn stalled_subscriber(hub: &TestHub, query: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(hub.addr).await.unwrap();
    stream
        .write_all(
            format!("GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    stream
}

/// Reads a stream until the event with id `end`; returns the ids before it, in order.
async fn ids_until_end(mut stream: RawStream) -> Vec<u64> {
    let mut ids = Vec::new();
    loop {
        // Generous per-read bound: 1000 readers share two cores with the hub.
        let event = stream.next_event_within(Duration::from_secs(60)).await;
        let id = event
            .lines()
            .find_map(|line| line.strip_prefix("id: "))
            .unwrap_or_else(|| panic!("an event without id: {event:?}"));
        if id == "end" {
            return ids;
        }
        ids.push(id.parse().unwrap());
    }
}

const READERS: usize = 1000;
const STALLED: usize = 200;
/// The marker that makes the hub's stalled-subscriber selectors recognisable.
const STALLED_MARKER: &str = "urn:herald-test:stalled";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscribers_stay_bounded_and_never_hold_back_the_others() {
    // 1200 client sockets and 1200 hub sockets in this one process.
    let limit = raise_fd_limit(8192);
    assert!(
        limit >= 4096,
        "this test needs 4096 open files; the limit is {limit}"
    );
    let hub = TestHub::builder()
        .config(|config| {
            // Small queues so the stalled subscribers overflow after little traffic.
            config.queue_frames = 32;
            config.queue_bytes = 16 * 1024;
        })
        .server(small_send_buffer())
        // Enough history that every stalled subscriber can still be caught up.
        .store(Arc::new(MemoryStore::new(100_000)))
        .start()
        .await;
    let topic = encode(TOPIC);
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled
            .push(stalled_subscriber(&hub, &format!("match={topic}&match={STALLED_MARKER}")).await);
    }
    let mut readers = Vec::new();
    for chunk in 0..READERS / 100 {
        let mut opening = Vec::new();
        for _ in 0..100 {
            let (addr, path) = (hub.addr, format!("/.well-known/mercure?match={topic}"));
            opening.push(tokio::spawn(async move {
                RawStream::open(addr, &path, &[]).await
            }));
        }
        for open in opening {
            let stream = open.await.unwrap();
            assert_eq!(stream.status, 200, "reader batch {chunk}");
            readers.push(tokio::spawn(ids_until_end(stream)));
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while hub.hub.subscriber_count() < READERS + STALLED {
        assert!(
            tokio::time::Instant::now() < deadline,
            "subscribers did not register"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let is_stalled = |subscriber: &herald_hub::subscriber::Subscriber| {
        subscriber
            .subscriptions
            .iter()
            .any(|subscription| subscription.selector.raw() == STALLED_MARKER)
    };
    // Publish 500-byte updates until every stalled subscriber has overflowed: its socket, hyper's
    // buffer and its queue are full, and it holds nothing more.
    let data = "x".repeat(500);
    let mut published = 0u64;
    loop {
        for _ in 0..50 {
            published += 1;
            let answer = hub
                .publish(&format!("topic={topic}&id={published}&data={data}"))
                .await;
            assert_eq!(answer.status, 200);
        }
        let subscribers = hub.hub.subscribers();
        let waiting = subscribers
            .iter()
            .filter(|subscriber| is_stalled(subscriber) && !subscriber.queue_held().overflowed)
            .count();
        if waiting == 0 {
            break;
        }
        assert!(
            published < 20_000,
            "{waiting} stalled subscribers still had room after {published} updates"
        );
    }
    let config = hub.hub.config().clone();
    for subscriber in hub.hub.subscribers() {
        let held = subscriber.queue_held();
        assert!(
            held.frames <= config.queue_frames && held.bytes <= config.queue_bytes,
            "{held:?}"
        );
        if is_stalled(&subscriber) {
            assert_eq!(
                (held.frames, held.bytes),
                (0, 0),
                "a stalled subscriber holds nothing"
            );
        }
    }
    let answer = hub.publish(&format!("topic={topic}&id=end&data=end")).await;
    assert_eq!(answer.status, 200);
    let expected: Vec<u64> = (1..=published).collect();
    for (index, reader) in readers.into_iter().enumerate() {
        let ids = reader.await.unwrap();
        assert!(
            ids == expected,
            "reader {index} got {} of {published} updates, first gap after {:?}",
            ids.len(),
            ids.iter().zip(&expected).find(|(got, want)| got != want)
        );
    }
    // When a stalled subscriber reads at last, it is caught up from history: everything, in
    // order, nothing twice.
    for (index, mut stream) in stalled.into_iter().take(5).enumerate() {
        let mut raw = Vec::new();
        read_until_contains(&mut stream, &mut raw, b"id: end\n", Duration::from_secs(60)).await;
        let text = String::from_utf8_lossy(&raw);
        let ids: Vec<u64> = text
            .lines()
            .filter_map(|line| line.strip_prefix("id: "))
            .filter_map(|id| id.parse().ok())
            .collect();
        assert!(
            ids == expected,
            "stalled subscriber {index} caught up with {} of {published}",
            ids.len()
        );
    }
    eprintln!(
        "published {published} updates to {READERS} readers and {STALLED} stalled subscribers"
    );
}

#[tokio::test]
async fn a_stalled_subscriber_that_falls_out_of_history_is_closed_with_a_retry_hint() {
    let hub = TestHub::builder()
        .config(|config| {
            config.queue_frames = 8;
            config.queue_bytes = 16 * 1024;
        })
        .server(small_send_buffer())
        .store(Arc::new(MemoryStore::new(50)))
        .start()
        .await;
    let topic = encode(TOPIC);
    let mut stalled = stalled_subscriber(&hub, &format!("match={topic}")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while hub.hub.subscriber_count() < 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let data = "x".repeat(500);
    let mut published = 0;
    while !hub.hub.subscribers()[0].queue_held().overflowed {
        published += 1;
        let answer = hub
            .publish(&format!("topic={topic}&id={published}&data={data}"))
            .await;
        assert_eq!(answer.status, 200);
        assert!(
            published < 20_000,
            "the stalled subscriber never overflowed"
        );
    }
    let in_flight = published;
    // Then enough that the history (50 updates) no longer reaches back to where it stopped.
    for _ in 0..100 {
        published += 1;
        let answer = hub
            .publish(&format!("topic={topic}&id={published}&data={data}"))
            .await;
        assert_eq!(answer.status, 200);
    }
    // It reads now: what was already in flight, then the hub closes the stream because the
    // history no longer reaches back to where it stopped; the retry hint makes it reconnect
    // with Last-Event-ID (and be told about the gap).
    let mut received = Vec::new();
    read_until_contains(&mut stalled, &mut received, b"\r\n0\r\n\r\n", CUT_OFF_BOUND).await;
    let text = String::from_utf8_lossy(&received);
    let end = &text[text.len().saturating_sub(200)..];
    assert!(
        text.starts_with("HTTP/1.1 200 OK"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(
        end.ends_with("\r\n0\r\n\r\n"),
        "a clean end of the chunked stream: {end:?}"
    );
    assert!(
        end.contains("retry: 500\n\n"),
        "a closing retry hint: {end:?}"
    );
    assert!(
        !text.contains(&format!("id: {published}\n")),
        "the newest updates are not sent"
    );
    eprintln!("the stalled subscriber overflowed with {in_flight} updates in flight");
}
