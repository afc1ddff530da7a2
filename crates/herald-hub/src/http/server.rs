//! Accepting connections: plain TCP (HTTP/1.1, and HTTP/2 with prior knowledge when h2c is
//! on) or TLS (HTTP/2 or HTTP/1.1 by ALPN), all served by the same hyper connection builder
//! and the same [`handle`](crate::http::handle), so the subscribe path is identical whatever
//! the transport.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::http::access;
use crate::http::tls::TlsSettings;
use crate::hub::Hub;

/// How long a client may take to send its request head (cuts off slowloris clients).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 flow-control windows for what clients *send* (publish bodies). Subscribers send
/// nothing, so small windows cost them nothing, while a publisher cannot make the hub
/// buffer more than this per stream before hyper reads it.
const H2_STREAM_WINDOW: u32 = 64 * 1024;
/// The connection-wide receive window: a few streams' worth.
const H2_CONNECTION_WINDOW: u32 = 256 * 1024;
/// Most bytes hyper buffers for sending on one stream. A stream whose client reads slowly
/// (its flow-control window is exhausted) stops pulling frames from its subscriber queue at
/// this point, so the bounded queue (and its catch-up from history) governs memory instead
/// of an unbounded HTTP/2 send buffer; the default (~400 KB) per stream would let 10k slow
/// streams hold gigabytes.
const H2_MAX_SEND_BUF: usize = 64 * 1024;
/// Streams per HTTP/2 connection: a browser multiplexes every `EventSource` of an origin on
/// one connection, so this is the per-page limit that replaces HTTP/1.1's six connections.
const H2_MAX_STREAMS: u32 = 256;
/// Pings on idle HTTP/2 connections, so dead peers are noticed and proxies see traffic.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Transport options of [`serve_with`](crate::http::serve_with).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Serve TLS with these certificates (ALPN `h2` and `http/1.1`); `None` serves plain TCP.
    pub tls: Option<TlsSettings>,
    /// On plain TCP, also accept HTTP/2 with prior knowledge (h2c), as proxies such as
    /// nginx's `grpc_pass` or Envoy speak it. Off: HTTP/1.1 only.
    pub h2c: bool,
    /// How long a client may take to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            tls: None,
            h2c: true,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

fn builder(options: &ServerOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_send_buf_size(H2_MAX_SEND_BUF)
        .max_concurrent_streams(H2_MAX_STREAMS)
        .keep_alive_interval(H2_KEEP_ALIVE);
    if options.tls.is_none() && !options.h2c {
        builder = builder.http1_only();
    }
    builder
}

/// The accept loop behind [`serve`](crate::http::serve) and
/// [`serve_with`](crate::http::serve_with).
pub(crate) async fn run(
    listener: TcpListener,
    hub: Hub,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let builder = Arc::new(builder(&options));
    let acceptor = options
        .tls
        .as_ref()
        .map(|tls| TlsAcceptor::from(tls.server_config()));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors or similar: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // The TLS handshake runs in the connection's task: a slow or silent client
                // must never hold up the accept loop.
                tokio::spawn(connection(
                    stream,
                    peer,
                    hub.clone(),
                    Arc::clone(&builder),
                    acceptor.clone(),
                    options.tls_handshake_timeout,
                    graceful.watcher(),
                ));
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    hub.shutdown(grace).await;
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("connections still open after the grace period; closing");
        }
    }
    Ok(())
}

/// Serves one accepted connection, after its TLS handshake when there is one.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    hub: Hub,
    builder: Arc<auto::Builder<TokioExecutor>>,
    acceptor: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    watcher: Watcher,
) {
    let service = service_fn(move |request| {
        let hub = hub.clone();
        async move { Ok::<_, Infallible>(access::traced(hub, request).await) }
    });
    let result = match acceptor {
        None => {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            watcher.watch(connection.into_owned()).await
        }
        Some(acceptor) => {
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            watcher.watch(connection.into_owned()).await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
