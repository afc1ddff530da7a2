//! Accepting connections: plain TCP (HTTP/1.1, and HTTP/2 with prior knowledge when h2c is
//! on) or TLS (HTTP/2 or HTTP/1.1 by ALPN). HTTP/1.1 subscriptions are served on the
//! [`lean`](crate::http::lean) path, everything else by one hyper connection builder and
//! [`handle`](crate::http::handle); both run the same subscribe handler, so a subscription
//! behaves the same whatever the transport.
//!
//! Defences against clients that hold resources without using them:
//! - every accepted connection is counted against the global and per-address limits
//!   ([`limits`](crate::http::limits)); one over a limit is answered 503 or 429 and closed;
//! - a connection must send its first bytes within the header timeout
//!   ([`opening`](crate::http::opening)), and each request head within the header timeout too
//!   (hyper's HTTP/1.1 timer), so silent and slowloris clients are cut off;
//! - a TLS client must finish its handshake within the handshake timeout;
//! - hyper buffers at most [`H1_MAX_BUF`] per HTTP/1.1 connection and [`H2_MAX_SEND_BUF`] per
//!   HTTP/2 stream, and the kernel at most [`DEFAULT_SEND_BUFFER`] (twice that, in fact) per
//!   socket, so a request head cannot grow without bound (431) and a subscriber that does
//!   not read is soon held back by its bounded queue, not by megabytes of send buffers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::http::access;
use crate::http::lean::{self, LeanContext, Outcome};
use crate::http::limits::{ConnectionLimits, ConnectionSlot, Refusal, RefusingSlot};
use crate::http::opening::{Rewound, is_http2, read_opening};
use crate::http::tls::TlsSettings;
use crate::hub::Hub;

/// Default of [`ServerOptions::header_read_timeout`]: long enough for a phone on a bad
/// network, short enough that slowloris clients do not pile up.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of [`ServerOptions::send_buffer`]. Linux doubles it for its bookkeeping, so a
/// connection holds at most ~512 KB of unsent data in the kernel: enough for bursts at full
/// speed to a reading subscriber, while one that stops reading backs up into its bounded
/// queue after that much instead of after the 4 MB autotuning would allow.
pub const DEFAULT_SEND_BUFFER: usize = 256 * 1024;

/// Most bytes hyper buffers per HTTP/1.1 connection, for reading and for writing alike
/// (hyper's default is ~400 KB). Reading: a request head that does not fit is refused with
/// 431, so one slow client cannot make the hub hold a large buffer. Writing: a subscriber
/// whose socket is full stops pulling frames from its queue once this much waits in hyper,
/// so its bounded queue (and the catch-up from history) governs memory. Frames are at most
/// joined into chunks of at most 64 KB (a larger single frame is still buffered whole), so a
/// subscriber that reads never waits on this bound.
const H1_MAX_BUF: usize = 64 * 1024;

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
    /// How long a new connection may take to send its first bytes, and an HTTP/1.1 client
    /// each request head (also how long an idle keep-alive connection is kept): cuts off
    /// silent and slowloris clients.
    pub header_read_timeout: Duration,
    /// `SO_SNDBUF` of every accepted socket: the most unsent bytes the kernel holds for a
    /// connection. Fixed rather than autotuned so that a subscriber that does not read is
    /// held back by its bounded queue soon, not after megabytes of kernel memory. `None`:
    /// the kernel's autotuning (up to `net.ipv4.tcp_wmem`'s maximum).
    pub send_buffer: Option<usize>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            tls: None,
            h2c: true,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            send_buffer: Some(DEFAULT_SEND_BUFFER),
        }
    }
}

fn builder(options: &ServerOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(H1_MAX_BUF);
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

/// Whether an accepted connection is served or refused.
enum Admission {
    /// Within the limits; the slot is held for the connection's life.
    Admitted(ConnectionSlot),
    /// Over a limit: every request gets the refusal, then the connection closes.
    Refused(Refusal, RefusingSlot),
}

/// What every connection task shares.
struct Shared {
    hub: Hub,
    builder: auto::Builder<TokioExecutor>,
    acceptor: Option<TlsAcceptor>,
    tls_handshake_timeout: Duration,
    header_read_timeout: Duration,
    /// Set when the server shuts down; connections waiting for a request close.
    closing: watch::Sender<bool>,
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
    let limits = Arc::new(ConnectionLimits::new(
        hub.config().max_connections,
        hub.config().max_connections_per_ip,
    ));
    let send_buffer = options.send_buffer;
    let shared = Arc::new(Shared {
        hub: hub.clone(),
        builder: builder(&options),
        acceptor: options
            .tls
            .as_ref()
            .map(|tls| TlsAcceptor::from(tls.server_config())),
        tls_handshake_timeout: options.tls_handshake_timeout,
        header_read_timeout: options.header_read_timeout,
        closing: watch::Sender::new(false),
    });
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
                let admission = match limits.admit(peer.ip()) {
                    Ok(slot) => Admission::Admitted(slot),
                    Err(refusal) => {
                        // The first refusal and every 1000th after it: enough for an operator
                        // to see the limit is reached, without a log line per refused client.
                        let count = hub.stats().connections_refused.fetch_add(1, Ordering::Relaxed);
                        if count.is_multiple_of(1000) {
                            tracing::warn!(?refusal, refused = count + 1, "connection over a limit refused");
                        }
                        match limits.start_refusal() {
                            Some(answering) => Admission::Refused(refusal, answering),
                            None => continue, // dropping the stream closes it
                        }
                    }
                };
                let _ = stream.set_nodelay(true);
                if let Some(size) = send_buffer
                    && let Err(error) = socket2::SockRef::from(&stream).set_send_buffer_size(size)
                {
                    tracing::debug!(%error, "could not set the send buffer size");
                }
                // The TLS handshake runs in the connection's task: a slow or silent client
                // must never hold up the accept loop.
                tokio::spawn(connection(
                    stream,
                    peer,
                    Arc::clone(&shared),
                    graceful.watcher(),
                    admission,
                ));
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    shared.closing.send_replace(true);
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
    shared: Arc<Shared>,
    watcher: Watcher,
    admission: Admission,
) {
    match &shared.acceptor {
        None => serve_stream(stream, peer, &shared, watcher, admission).await,
        // Boxed, as every large state a connection passes through only in some cases: a
        // task is as large as the largest state its future can be in, so a TLS session
        // held inline would be paid by every plain-TCP subscriber too.
        Some(acceptor) => {
            Box::pin(serve_tls(
                acceptor, stream, peer, &shared, watcher, admission,
            ))
            .await
        }
    }
}

/// Serves a connection after its TLS handshake.
async fn serve_tls(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    watcher: Watcher,
    admission: Admission,
) {
    let accepting = acceptor.accept(stream);
    match tokio::time::timeout(shared.tls_handshake_timeout, accepting).await {
        Ok(Ok(tls)) => serve_stream(tls, peer, shared, watcher, admission).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// Serves HTTP on a connection (plain or TLS) once its first bytes are in: subscriptions
/// on the [`lean`] path, everything else (and HTTP/2) with hyper.
async fn serve_stream<I>(
    mut stream: I,
    peer: SocketAddr,
    shared: &Shared,
    watcher: Watcher,
    admission: Admission,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let opening = match read_opening(&mut stream, shared.header_read_timeout).await {
        Ok(opening) => opening,
        Err(error) => {
            tracing::debug!(%peer, %error, "connection closed before its first request");
            return;
        }
    };
    let slot = match admission {
        Admission::Admitted(slot) => slot,
        Admission::Refused(refusal, answering) => {
            Box::pin(refuse(
                TokioIo::new(Rewound::new(opening, stream)),
                shared,
                refusal,
            ))
            .await;
            drop(answering);
            return;
        }
    };
    let unread = if is_http2(&opening) {
        opening
    } else {
        let context = LeanContext {
            hub: &shared.hub,
            header_read_timeout: shared.header_read_timeout,
            closing: shared.closing.subscribe(),
        };
        match lean::serve(&mut stream, opening, context).await {
            Outcome::Closed => return,
            Outcome::HandOff(unread) => unread,
        }
    };
    // Boxed, for the same reason as the TLS path: hyper's connection state is large.
    Box::pin(serve_hyper(stream, unread, peer, shared, watcher)).await;
    drop(slot);
}

/// Serves the rest of a connection with hyper, starting with the bytes already read.
async fn serve_hyper<I>(
    stream: I,
    unread: Bytes,
    peer: SocketAddr,
    shared: &Shared,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let hub = shared.hub.clone();
    let service = service_fn(move |request| {
        let hub = hub.clone();
        async move { Ok::<_, Infallible>(access::traced(hub, request).await) }
    });
    let io = TokioIo::new(Rewound::new(unread, stream));
    let connection = shared.builder.serve_connection(io, service);
    if let Err(error) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Answers every request on a connection over a limit with `refusal`, then closes it: after
/// the first answer (HTTP/1.1 closes on `Connection: close`, HTTP/2 shuts down gracefully),
/// or after the header timeout if the client never completes a request.
async fn refuse<I>(io: TokioIo<Rewound<I>>, shared: &Shared, refusal: Refusal)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let answered = Arc::new(tokio::sync::Notify::new());
    let notify = Arc::clone(&answered);
    let service = service_fn(move |_request| {
        notify.notify_one();
        async move { Ok::<_, Infallible>(refusal.response()) }
    });
    let connection = shared.builder.serve_connection(io, service);
    tokio::pin!(connection);
    let serving = async {
        tokio::select! {
            _ = connection.as_mut() => return,
            () = answered.notified() => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.as_mut().await;
    };
    let _ = tokio::time::timeout(shared.header_read_timeout, serving).await;
}
