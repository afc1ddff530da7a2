//! Operations over real sockets: `/metrics` after real traffic, request ids, and the access
//! log (which must never hold a token).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use herald_testkit::{TestHub, encode};

const TOPIC: &str = "https://example.com/ops";

/// Everything the hub logs in this test binary (a process-wide subscriber, installed once).
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&logs);
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(Arc::clone(&writer)))
            .init();
        logs
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> String {
    String::from_utf8_lossy(&captured().lock().unwrap()).into_owned()
}

/// The value of an unlabelled sample in an OpenMetrics text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_a_subscribe_and_a_publish() {
    captured();
    let hub = TestHub::start().await;
    let before = hub.get("/metrics", &[]).await;
    assert_eq!(before.status, 200);
    assert!(
        before
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert_eq!(sample(&before.text(), "herald_connections"), 0.0);

    let mut stream = hub
        .subscribe(&format!("match={}&match=other", encode(TOPIC)), &[])
        .await;
    let published = hub
        .publish(&format!("topic={}&data=hello", encode(TOPIC)))
        .await;
    assert_eq!(published.status, 200);
    stream.read_until("data: hello\n\n").await;

    let text = hub.get("/metrics", &[]).await.text();
    assert_eq!(sample(&text, "herald_connections"), 1.0);
    assert_eq!(sample(&text, "herald_subscriptions"), 2.0);
    assert_eq!(sample(&text, "herald_topics"), 2.0);
    assert_eq!(sample(&text, "herald_connections_opened_total"), 1.0);
    assert_eq!(sample(&text, "herald_publishes_total"), 1.0);
    assert_eq!(sample(&text, "herald_deliveries_total"), 1.0);
    assert_eq!(sample(&text, "herald_queue_overflows_total"), 0.0);
    assert_eq!(sample(&text, "herald_replays_total"), 0.0);
    assert_eq!(sample(&text, "herald_store_errors_total"), 0.0);
    assert_eq!(sample(&text, "herald_store_append_seconds_count"), 1.0);
    assert!(sample(&text, "herald_store_append_seconds_sum") >= 0.0);
    assert!(text.contains(&format!(
        "herald_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(text.contains("# TYPE herald_store_append_seconds histogram"));
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn every_response_has_a_request_id_and_a_valid_incoming_one_is_kept() {
    captured();
    let hub = TestHub::start().await;
    let generated = hub.get("/healthz", &[]).await;
    let id = generated.header("x-request-id").unwrap().to_owned();
    assert!(!id.is_empty());
    let other = hub.get("/healthz", &[]).await;
    assert_ne!(other.header("x-request-id").unwrap(), id);

    let kept = hub
        .get("/healthz", &[("X-Request-Id", "from-the-proxy-42")])
        .await;
    assert_eq!(kept.header("x-request-id"), Some("from-the-proxy-42"));
    let long = "x".repeat(200);
    let replaced = hub.get("/healthz", &[("X-Request-Id", &long)]).await;
    assert_ne!(replaced.header("x-request-id"), Some(long.as_str()));

    let logs = logs();
    assert!(
        logs.lines().any(|line| line.contains("from-the-proxy-42")
            && line.contains("path=/healthz")
            && line.contains("status=200")),
        "no access log line for the request:\n{logs}"
    );
}

#[tokio::test]
async fn tokens_never_reach_the_logs() {
    captured();
    let hub = TestHub::builder().legacy().start().await;
    let token = hub.publisher_token();
    let subscriber = hub.token(&[], &["*"]);
    let published = hub
        .publish(&format!("topic={}&data=secret-free", encode(TOPIC)))
        .await;
    assert_eq!(published.status, 200);
    // A token in a cookie, and one in the legacy query parameter.
    let cookie = format!("__Secure-mercure_access_token={subscriber}");
    let mut by_cookie = hub
        .subscribe(&format!("match={}", encode(TOPIC)), &[("Cookie", &cookie)])
        .await;
    let mut by_query = hub
        .subscribe(
            &format!("topic={}&authorization={subscriber}", encode(TOPIC)),
            &[],
        )
        .await;
    // A refused token is logged about too, never shown.
    let refused = hub
        .post_form(
            "/.well-known/mercure",
            "topic=x&data=y",
            &[("Authorization", "Bearer not.a-valid.token-4242")],
        )
        .await;
    assert_eq!(refused.status, 401);
    hub.publish(&format!("topic={}&data=second", encode(TOPIC)))
        .await;
    by_cookie.read_until("data: second").await;
    by_query.read_until("data: second").await;

    let logs = logs();
    assert!(logs.contains("status=200"), "access log expected:\n{logs}");
    for secret in [
        token.as_str(),
        subscriber.as_str(),
        "not.a-valid.token-4242",
    ] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(signature),
            "a token leaked into the logs:\n{logs}"
        );
    }
    assert!(
        !logs.contains("authorization="),
        "a query string was logged:\n{logs}"
    );
}
