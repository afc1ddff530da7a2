//! Request smuggling and malformed HTTP on the subscribe path, over raw sockets: a body on a
//! subscribe `GET` (Content-Length, Transfer-Encoding, both), conflicting or obfuscated
//! framing headers, pipelined requests behind a subscription, oversized heads. Each gets a
//! refusal (or, for what hyper's parser rejects before the hub sees it, hyper's bare status)
//! and a closed connection; nothing smuggled is ever executed or written into a stream, and
//! the hub keeps serving.

use herald_testkit::raw::{WAIT, parse_response, read_to_close, read_until_contains};
use herald_testkit::{TestHub, encode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const TOPIC: &str = "https://example.com/smuggling";

/// A publish request that, if it were ever executed, would reach the watcher.
fn smuggled_publish(hub: &TestHub) -> String {
    publish_request(hub, "smuggled", "")
}

/// A publish of `data` with a valid token and `extra` header lines.
fn publish_request(hub: &TestHub, data: &str, extra: &str) -> String {
    let form = format!("topic={}&data={data}", encode(TOPIC));
    format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n{form}",
        hub.publisher_token(),
        form.len()
    )
}

fn subscribe_line() -> String {
    format!(
        "GET /.well-known/mercure?match={} HTTP/1.1\r\n",
        encode(TOPIC)
    )
}

/// Writes `bytes` on a new connection and reads until the hub closes it.
async fn exchange(hub: &TestHub, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(hub.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_to_close(&mut stream).await
}

/// How many HTTP responses a byte string holds (status lines at the start of a line).
fn status_lines(received: &[u8]) -> usize {
    let text = String::from_utf8_lossy(received);
    usize::from(text.starts_with("HTTP/1.1 ")) + text.matches("\nHTTP/1.1 ").count()
}

#[tokio::test]
async fn a_subscribe_get_with_a_body_is_refused_and_its_body_never_runs() {
    let hub = TestHub::start().await;
    let mut watcher = hub.watcher().await;
    let smuggled = smuggled_publish(&hub);
    let chunked = format!("{:x}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len());
    let cases: Vec<(&str, String)> = vec![
        (
            "Content-Length on GET",
            format!(
                "{}Host: x\r\nContent-Length: {}\r\n\r\n{smuggled}",
                subscribe_line(),
                smuggled.len()
            ),
        ),
        (
            "Transfer-Encoding on GET",
            format!(
                "{}Host: x\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}",
                subscribe_line()
            ),
        ),
        (
            "Content-Length and Transfer-Encoding on GET",
            format!(
                "{}Host: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}",
                subscribe_line()
            ),
        ),
        (
            "Transfer-Encoding with an empty chunked body",
            format!(
                "{}Host: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
                subscribe_line()
            ),
        ),
    ];
    for (what, request) in cases {
        let received = exchange(&hub, request.as_bytes()).await;
        let answer = parse_response(&received).expect("a response");
        assert_eq!(answer.status, 400, "{what}: {}", answer.text());
        assert!(
            answer.text().contains("must not have a body"),
            "{what}: {}",
            answer.text()
        );
        assert_eq!(answer.header("connection"), Some("close"), "{what}");
        assert_eq!(
            status_lines(&received),
            1,
            "{what}: the smuggled request was answered: {:?}",
            String::from_utf8_lossy(&received)
        );
    }
    watcher
        .assert_nothing_since(&hub, "bodies on subscribe requests")
        .await;
}

#[tokio::test]
async fn malformed_framing_is_refused_by_the_parser_and_the_connection_closed() {
    let hub = TestHub::start().await;
    let mut watcher = hub.watcher().await;
    let smuggled = smuggled_publish(&hub);
    let line = subscribe_line();
    let cases: Vec<(&str, String)> = vec![
        (
            "two different Content-Length values",
            format!("{line}Host: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n{smuggled}"),
        ),
        (
            "a Content-Length that is not a number",
            format!("{line}Host: x\r\nContent-Length: +5\r\n\r\n{smuggled}"),
        ),
        (
            "a space before the colon of Transfer-Encoding",
            format!("{line}Host: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{smuggled}"),
        ),
        (
            "Transfer-Encoding on HTTP/1.0",
            format!(
                "GET /.well-known/mercure?match=a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
            ),
        ),
        (
            "a folded header line",
            format!("{line}Host: x\r\nX-Folded: a\r\n b\r\n\r\n{smuggled}"),
        ),
        (
            "a NUL in a header value",
            format!("{line}Host: x\r\nX-Nul: a\0b\r\n\r\n{smuggled}"),
        ),
    ];
    let mut cases: Vec<(&str, Vec<u8>)> = cases
        .into_iter()
        .map(|(what, request)| (what, request.into_bytes()))
        .collect();
    // Not even UTF-8 in the request target.
    let mut raw_byte = b"GET /.well-known/mercure?match=\xFF HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    raw_byte.extend_from_slice(smuggled.as_bytes());
    cases.push(("a raw 0xFF byte in the request target", raw_byte));
    for (what, request) in cases {
        let received = exchange(&hub, &request).await;
        let answer = parse_response(&received).expect("a response");
        assert_eq!(answer.status, 400, "{what}: {}", answer.text());
        assert_eq!(status_lines(&received), 1, "{what}: {received:?}");
    }
    watcher
        .assert_nothing_since(&hub, "malformed framing")
        .await;
}

#[tokio::test]
async fn oversized_heads_get_431_and_the_hub_keeps_serving() {
    let hub = TestHub::start().await;
    let mut watcher = hub.watcher().await;
    let line = subscribe_line();
    let huge_header = format!("{line}Host: x\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024));
    let many_headers = format!(
        "{line}Host: x\r\n{}\r\n",
        (0..120)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
    );
    let huge_uri = format!(
        "GET /.well-known/mercure?match={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    for (what, request) in [
        ("a 70 KB header", huge_header),
        ("120 headers", many_headers),
        ("a 70 KB request target", huge_uri),
    ] {
        let received = exchange(&hub, request.as_bytes()).await;
        let answer = parse_response(&received).expect("a response");
        assert_eq!(answer.status, 431, "{what}");
    }
    // A large but reasonable head (a long cookie jar) is still served.
    let big_cookie = format!(
        "{line}Host: x\r\nCookie: jar={}\r\nConnection: close\r\n\r\n",
        "c".repeat(16 * 1024)
    );
    let mut stream = TcpStream::connect(hub.addr).await.unwrap();
    stream.write_all(big_cookie.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    read_until_contains(&mut stream, &mut head, b"retry:", WAIT).await;
    assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"), "{head:?}");
    watcher.assert_nothing_since(&hub, "oversized heads").await;
}

#[tokio::test]
async fn requests_pipelined_behind_a_subscription_are_never_run_while_it_streams() {
    let hub = TestHub::start().await;
    let mut watcher = hub.watcher().await;
    // A subscription, a publish, and a second subscription which must not be answered
    // inside the first stream.
    let pipelined = format!(
        "{line}Host: x\r\n\r\n{}{line}Host: x\r\n\r\n",
        smuggled_publish(&hub),
        line = subscribe_line(),
    );
    let mut stream = TcpStream::connect(hub.addr).await.unwrap();
    stream.write_all(pipelined.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    read_until_contains(&mut stream, &mut received, b"retry: 500\n\n", WAIT).await;
    watcher
        .assert_nothing_since(&hub, "a publish pipelined behind a subscription")
        .await;
    // The stream still carries events, and only events: the watcher's fence was not for
    // this topic, so publish one that is.
    let answer = hub
        .publish(&format!("topic={}&id=after&data=real", encode(TOPIC)))
        .await;
    assert_eq!(answer.status, 200);
    read_until_contains(&mut stream, &mut received, b"data: real\n\n", WAIT).await;
    let text = String::from_utf8_lossy(&received);
    assert_eq!(status_lines(&received), 1, "{text}");
    assert!(!text.contains("smuggled"), "{text}");
    assert_eq!(
        hub.hub.subscriber_count(),
        2,
        "the watcher and this stream only"
    );
}

#[tokio::test]
async fn a_request_pipelined_behind_a_refused_subscription_is_dropped_with_the_connection() {
    let hub = TestHub::start().await;
    let mut watcher = hub.watcher().await;
    let request = format!(
        "GET /.well-known/mercure?match_regex=x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n{}",
        publish_request(&hub, "pipelined", "Connection: close\r\n")
    );
    // A refused subscription with a body: the hub closes the connection after the answer.
    let with_body = format!(
        "{}Host: x\r\nContent-Length: 3\r\n\r\nabc{}",
        subscribe_line(),
        smuggled_publish(&hub)
    );
    let received = exchange(&hub, with_body.as_bytes()).await;
    assert_eq!(status_lines(&received), 1, "{received:?}");
    // A refused subscription without a body: HTTP/1.1 keep-alive answers the next request,
    // which is a publish with its own valid token: that is pipelining, not smuggling, and it
    // is answered in order on the same connection.
    let received = exchange(&hub, request.as_bytes()).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert_eq!(status_lines(&received), 2, "{text}");
    assert!(text.contains("\nHTTP/1.1 200 OK\r\n"), "{text}");
    let event = watcher.next_event().await;
    assert!(event.contains("data: pipelined"), "{event}");
    watcher
        .assert_nothing_since(&hub, "pipelined requests after refusals")
        .await;
}
