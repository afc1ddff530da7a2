//! Test helpers shared by the integration tests: a hand-written HTTP/1.1 server over a real
//! socket on 127.0.0.1:0 that records each request and lets the test write raw response
//! bytes, and a bound on how long a test may take.

#![allow(dead_code, unreachable_pub)] // each test file uses a different part

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The head of a close-delimited event-stream response (no length, no chunking: the body
/// ends when the server closes the connection).
pub const STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";

/// The head of a chunked event-stream response: closing without the last chunk is then an
/// error for the client, not a normal end.
pub const CHUNKED_STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

/// A 204 that tells an event source to stop.
pub const NO_CONTENT: &str = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";

/// One request the fake server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// 0 for the first connection, 1 for the second...
    pub index: usize,
    /// When the request head had arrived.
    pub at: Instant,
    /// `GET`, `POST`...
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// The headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (read when there is a Content-Length).
    pub body: String,
}

impl Recorded {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A fake server: each connection reads one request, records it and hands the socket to the
/// test's handler, which writes whatever bytes it wants.
pub struct FakeServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The requests, in arrival order.
    requests: mpsc::UnboundedReceiver<Recorded>,
}

impl FakeServer {
    /// Starts a server on 127.0.0.1:0 whose handler gets each request and its socket.
    pub async fn start<H, F>(handler: H) -> FakeServer
    where
        H: Fn(Recorded, TcpStream) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, requests) = mpsc::unbounded_channel();
        let handler = Arc::new(handler);
        let count = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let index = count.fetch_add(1, Ordering::SeqCst);
                let sender = sender.clone();
                let handler = Arc::clone(&handler);
                tokio::spawn(async move {
                    let Some(request) = read_request(index, &mut socket).await else {
                        return;
                    };
                    let _ = sender.send(request.clone());
                    handler(request, socket).await;
                });
            }
        });
        FakeServer { addr, requests }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request received (waits for it, at most 10 s).
    pub async fn request(&mut self) -> Recorded {
        tokio::time::timeout(Duration::from_secs(10), self.requests.recv())
            .await
            .expect("no request within 10 s")
            .expect("server gone")
    }

    /// The requests received so far, without waiting.
    pub fn received(&mut self) -> Vec<Recorded> {
        let mut all = Vec::new();
        while let Ok(request) = self.requests.try_recv() {
            all.push(request);
        }
        all
    }
}

/// Reads one request head (and a Content-Length body). Servers must read the request before
/// answering: hyper's client ignores a response that arrives before its request is written.
pub async fn read_request(index: usize, socket: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Recorded {
        index,
        at: Instant::now(),
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Writes bytes and flushes them, so they leave as their own packet when followed by a pause.
pub async fn send(socket: &mut TcpStream, bytes: &str) {
    let _ = socket.write_all(bytes.as_bytes()).await;
    let _ = socket.flush().await;
}

/// Writes one HTTP/1.1 chunk.
pub async fn send_chunk(socket: &mut TcpStream, bytes: &str) {
    send(socket, &format!("{:x}\r\n{bytes}\r\n", bytes.len())).await;
}

/// A plain response with a text body.
pub fn response(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

/// Fails the test instead of hanging when `future` takes more than 10 s.
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("the test took more than 10 s")
}

/// A short pause between writes, so they arrive as separate reads.
pub async fn pause() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
