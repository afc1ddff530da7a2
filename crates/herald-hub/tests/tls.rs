//! TLS and HTTP/2 over real sockets: ALPN, many streams on one HTTP/2 connection, HTTP/1.1
//! over TLS, h2c prior knowledge on the plain port (and its switch), certificate reload
//! without dropping open streams. Certificates are generated per test with `rcgen`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_hub::http::tls::TlsSettings;
use herald_hub::http::{ServerOptions, serve_with};
use herald_hub::store::memory::MemoryStore;
use herald_hub::update::UpdateFields;
use herald_hub::{Hub, HubConfig};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const TOPIC: &str = "https://example.com/tls";

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("in time")
}

/// A self-signed certificate for 127.0.0.1, written as PEM files in `dir`.
fn write_cert(dir: &Path) -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key, certified.cert.der().clone())
}

/// A hub served with `options` on 127.0.0.1:0.
async fn start(options: ServerOptions) -> (SocketAddr, Hub) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut config = HubConfig::new(format!("{scheme}://{addr}").parse().unwrap());
    config.anonymous = true;
    let hub = Hub::start(config, Arc::new(MemoryStore::new(100)), None)
        .await
        .unwrap();
    tokio::spawn(serve_with(
        listener,
        hub.clone(),
        options,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    (addr, hub)
}

fn tls_options(settings: &TlsSettings) -> ServerOptions {
    ServerOptions {
        tls: Some(settings.clone()),
        ..ServerOptions::default()
    }
}

/// A TLS connection trusting `roots` and offering `alpn`.
async fn connect(
    addr: SocketAddr,
    roots: &[&CertificateDer<'static>],
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    within(TlsConnector::from(Arc::new(config)).connect(name, tcp))
        .await
        .unwrap()
}

fn subscribe_request(base: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("{base}/.well-known/mercure?match={TOPIC}"))
        .body(Empty::new())
        .unwrap()
}

/// Reads the body until it holds `needle`.
async fn read_until(response: &mut Response<Incoming>, needle: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let frame = within(response.body_mut().frame())
            .await
            .expect("stream still open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    seen
}

async fn publish(hub: &Hub, data: &str) {
    hub.publish(UpdateFields {
        topics: vec![TOPIC.to_owned()],
        data: data.to_owned(),
        ..UpdateFields::default()
    })
    .await
    .unwrap();
}

/// Waits until the hub counts `n` subscribers, so a publish cannot race the registration.
async fn wait_for_subscribers(hub: &Hub, n: usize) {
    within(async {
        while hub.subscriber_count() < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn alpn_negotiates_h2_and_twelve_streams_share_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = write_cert(dir.path());
    let settings = TlsSettings::from_pem_files(cert, key).unwrap();
    let (addr, hub) = start(tls_options(&settings)).await;

    let tls = connect(addr, &[&der], &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let base = format!("https://{addr}");
    let mut responses = Vec::new();
    for _ in 0..12 {
        let mut sender = sender.clone();
        let response = within(sender.send_request(subscribe_request(&base)))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert!(response.headers().contains_key("x-request-id"));
        responses.push(response);
    }
    wait_for_subscribers(&hub, 12).await;
    publish(&hub, "to all twelve").await;
    for response in &mut responses {
        read_until(response, "data: to all twelve\n\n").await;
    }
}

#[tokio::test]
async fn http1_over_tls_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = write_cert(dir.path());
    let settings = TlsSettings::from_pem_files(cert, key).unwrap();
    let (addr, hub) = start(tls_options(&settings)).await;

    let tls = connect(addr, &[&der], &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get(format!("/.well-known/mercure?match={TOPIC}"))
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let mut response = within(sender.send_request(request)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_11);
    wait_for_subscribers(&hub, 1).await;
    publish(&hub, "over http/1.1").await;
    read_until(&mut response, "data: over http/1.1\n\n").await;
}

#[tokio::test]
async fn h2c_prior_knowledge_works_on_the_plain_port() {
    let (addr, hub) = start(ServerOptions::default()).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut response = within(sender.send_request(subscribe_request(&format!("http://{addr}"))))
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    wait_for_subscribers(&hub, 1).await;
    publish(&hub, "over h2c").await;
    read_until(&mut response, "data: over h2c\n\n").await;
}

#[tokio::test]
async fn with_h2c_off_the_plain_port_speaks_http1_only() {
    let (addr, _hub) = start(ServerOptions {
        h2c: false,
        ..ServerOptions::default()
    })
    .await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let refused = within(sender.send_request(subscribe_request(&format!("http://{addr}")))).await;
    assert!(refused.is_err(), "h2c must be refused: {refused:?}");

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get("/healthz")
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = within(sender.send_request(request)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_certificate_reload_keeps_open_streams_and_serves_the_new_cert() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, first) = write_cert(dir.path());
    let settings = TlsSettings::from_pem_files(&cert, &key).unwrap();
    let (addr, hub) = start(tls_options(&settings)).await;
    let roots_dir = tempfile::tempdir().unwrap();

    let tls = connect(addr, &[&first], &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], first);
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut open = within(sender.send_request(subscribe_request(&format!("https://{addr}"))))
        .await
        .unwrap();
    wait_for_subscribers(&hub, 1).await;

    // Replace the files (a renewal) and reload, as SIGHUP or the file poller would.
    let (new_cert, new_key, second) = write_cert(roots_dir.path());
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    // Push the modification time forward so the change is visible whatever the file
    // system's timestamp resolution.
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    for path in [&cert, &key] {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    assert!(settings.reload_if_changed().unwrap());
    assert!(!settings.reload_if_changed().unwrap());

    let fresh = connect(addr, &[&second], &[b"h2"]).await;
    assert_eq!(fresh.get_ref().1.peer_certificates().unwrap()[0], second);

    publish(&hub, "after reload").await;
    read_until(&mut open, "data: after reload\n\n").await;

    // A broken file is refused and the current certificate stays.
    std::fs::write(&cert, "garbage").unwrap();
    assert!(settings.reload().is_err());
    let again = connect(addr, &[&second], &[b"h2"]).await;
    assert_eq!(again.get_ref().1.peer_certificates().unwrap()[0], second);
}

#[tokio::test]
async fn the_reloader_task_picks_up_changed_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, first) = write_cert(dir.path());
    let settings = TlsSettings::from_pem_files(&cert, &key).unwrap();
    let (addr, _hub) = start(tls_options(&settings)).await;
    let reloader = settings.spawn_reloader(Duration::from_millis(50));

    let other = tempfile::tempdir().unwrap();
    let (new_cert, new_key, second) = write_cert(other.path());
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    for path in [&cert, &key] {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    within(async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let tls = connect(addr, &[&first, &second], &[b"h2"]).await;
            if tls.get_ref().1.peer_certificates().unwrap()[0] == second {
                break;
            }
        }
    })
    .await;
    reloader.abort();
}

#[tokio::test]
async fn a_silent_client_neither_blocks_accepting_nor_outlives_the_handshake_timeout() {
    use tokio::io::AsyncReadExt;

    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = write_cert(dir.path());
    let settings = TlsSettings::from_pem_files(cert, key).unwrap();
    let (addr, _hub) = start(ServerOptions {
        tls_handshake_timeout: Duration::from_millis(300),
        ..tls_options(&settings)
    })
    .await;

    // Connects and never sends a ClientHello.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Others are still served meanwhile: the handshake is not in the accept loop.
    let tls = connect(addr, &[&der], &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // And the silent one is dropped once the timeout passes.
    let mut buffer = [0u8; 16];
    let read = within(silent.read(&mut buffer)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "closed, got {read:?}");
}
