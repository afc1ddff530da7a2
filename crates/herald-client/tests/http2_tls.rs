//! `EventSource` and `Publisher` over HTTP/2 (h2c prior knowledge; ALPN over TLS) and TLS
//! with a self-signed certificate made at test time, against a hyper server in the test.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::within;
use herald_client::{Error, EventSource, Publication, Publisher};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// What the test server saw of each request: its HTTP version, Last-Event-ID and body.
#[derive(Debug, Clone)]
struct Seen {
    version: Version,
    last_event_id: Option<String>,
    body: String,
}

/// The server's shared record.
#[derive(Default)]
struct Log {
    count: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

/// First GET: a short stream that ends (so the client reconnects); second GET: 204.
/// POST: answers the event id `urn:test:1`.
async fn handle(
    log: Arc<Log>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let version = request.version();
    let last_event_id = request
        .headers()
        .get("last-event-id")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let is_post = request.method() == http::Method::POST;
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    log.seen.lock().unwrap().push(Seen {
        version,
        last_event_id,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let response = if is_post {
        Response::new(Full::new(Bytes::from_static(b"urn:test:1")))
    } else if log.count.fetch_add(1, Ordering::SeqCst) == 0 {
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Full::new(Bytes::from_static(
                b"retry: 10\nid: 1\ndata: over h2\n\n",
            )))
            .unwrap()
    } else {
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Full::default())
            .unwrap()
    };
    Ok(response)
}

/// Serves plain connections (HTTP/1.1 or h2c, detected from the preface).
async fn serve_plain(log: Arc<Log>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let service = service_fn(move |request| handle(Arc::clone(&log), request));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// Serves TLS with a fresh self-signed certificate for 127.0.0.1, offering these ALPN
/// protocols; returns the base URL and the certificate's PEM.
async fn serve_tls(log: Arc<Log>, alpn: &[&[u8]]) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let pem = certified.cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let chain: Vec<CertificateDer<'static>> = vec![certified.cert.der().clone()];
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                let service = service_fn(move |request| handle(Arc::clone(&log), request));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (format!("https://{addr}"), pem)
}

/// Reads a stream to its end and returns the data of its events.
async fn data(events: &mut EventSource) -> Vec<String> {
    let mut data = Vec::new();
    while let Some(event) = within(events.next()).await {
        data.push(event.expect("an event").data);
    }
    data
}

fn versions(log: &Log) -> Vec<Version> {
    log.seen
        .lock()
        .unwrap()
        .iter()
        .map(|seen| seen.version)
        .collect()
}

#[tokio::test]
async fn h2c_with_prior_knowledge() {
    let log = Arc::new(Log::default());
    let base = serve_plain(Arc::clone(&log)).await;
    let mut events = EventSource::builder(format!("{base}/events"))
        .http2_prior_knowledge()
        .build()
        .unwrap();

    assert_eq!(data(&mut events).await, ["over h2"]);

    assert_eq!(versions(&log), [Version::HTTP_2, Version::HTTP_2]);
    let resent = log.seen.lock().unwrap()[1].last_event_id.clone();
    assert_eq!(resent.as_deref(), Some("1"));
}

#[tokio::test]
async fn plain_http_defaults_to_http1() {
    let log = Arc::new(Log::default());
    let base = serve_plain(Arc::clone(&log)).await;
    let mut events = EventSource::new(format!("{base}/events")).unwrap();

    assert_eq!(data(&mut events).await, ["over h2"]);

    assert_eq!(versions(&log), [Version::HTTP_11, Version::HTTP_11]);
}

#[tokio::test]
async fn tls_negotiates_h2_by_alpn_with_a_custom_root() {
    let log = Arc::new(Log::default());
    let (base, pem) = serve_tls(Arc::clone(&log), &[b"h2", b"http/1.1"]).await;
    let mut events = EventSource::builder(format!("{base}/events"))
        .root_certificate_pem(&pem)
        .built_in_roots(false)
        .build()
        .unwrap();

    assert_eq!(data(&mut events).await, ["over h2"]);

    assert_eq!(versions(&log), [Version::HTTP_2, Version::HTTP_2]);
}

#[tokio::test]
async fn tls_falls_back_to_http1_when_the_server_offers_only_that() {
    let log = Arc::new(Log::default());
    let (base, pem) = serve_tls(Arc::clone(&log), &[b"http/1.1"]).await;
    let mut events = EventSource::builder(format!("{base}/events"))
        .root_certificate_pem(&pem)
        .build()
        .unwrap();

    assert_eq!(data(&mut events).await, ["over h2"]);

    assert_eq!(versions(&log), [Version::HTTP_11, Version::HTTP_11]);
}

#[tokio::test]
async fn an_untrusted_certificate_stops_at_once() {
    let log = Arc::new(Log::default());
    let (base, _pem) = serve_tls(Arc::clone(&log), &[b"h2", b"http/1.1"]).await;
    let mut events = EventSource::new(format!("{base}/events")).unwrap();

    let first = within(events.next()).await;

    assert!(matches!(first, Some(Err(Error::Tls { .. }))), "{first:?}");
    assert!(within(events.next()).await.is_none());
    assert!(log.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn publishing_over_tls_and_h2() {
    let log = Arc::new(Log::default());
    let (base, pem) = serve_tls(Arc::clone(&log), &[b"h2"]).await;
    let publisher = Publisher::builder(format!("{base}/.well-known/mercure"))
        .root_certificate_pem(&pem)
        .http2_prior_knowledge()
        .build()
        .unwrap();

    let id = within(publisher.publish(&Publication::new("/t").data("x")))
        .await
        .unwrap();

    assert_eq!(id, "urn:test:1");
    let seen = log.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].version, Version::HTTP_2);
    assert_eq!(seen[0].body, "topic=%2Ft&data=x");
}
