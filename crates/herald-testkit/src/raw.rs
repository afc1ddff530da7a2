//! HTTP/1.1 by hand, so tests see exactly what the hub writes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

/// How long a test waits for bytes before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// A complete response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.as_str())
}

fn request_bytes(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Header names (lower-cased) and values, in order.
type Headers = Vec<(String, String)>;

/// Splits a response head; returns status, headers and the head length.
fn parse_head(buffer: &[u8]) -> Option<(u16, Headers, usize)> {
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buffer[..end]).expect("head is text");
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter(|line| !line.is_empty())
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    Some((status, headers, end))
}

/// Connects to `addr` from the loopback address `source` (any of 127.0.0.0/8 works on
/// Linux), so a test can be several clients as far as per-address limits go.
pub async fn connect_from(addr: SocketAddr, source: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .unwrap_or_else(|error| panic!("bind {source}: {error}"));
    socket.connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection (or [`WAIT`] passes, which fails the test);
/// returns every byte received.
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut buffer = Vec::new();
    match timeout(WAIT, stream.read_to_end(&mut buffer)).await {
        Ok(Ok(_)) => {}
        // A reset after the answer still ends the exchange.
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(error)) => panic!("read: {error}"),
        Err(_) => panic!("the server kept the connection open; got {}", tail(&buffer)),
    }
    buffer
}

/// Reads from `stream` into `received` until it contains `needle`; fails after `wait` or if
/// the server closes first.
pub async fn read_until_contains(
    stream: &mut TcpStream,
    received: &mut Vec<u8>,
    needle: &[u8],
    wait: Duration,
) {
    let deadline = tokio::time::Instant::now() + wait;
    while find(received, needle).is_none() {
        let mut chunk = [0u8; 16384];
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no {:?} in time; got {}",
                    String::from_utf8_lossy(needle),
                    tail(received)
                )
            })
            .expect("read");
        assert!(
            read > 0,
            "closed before {:?}; got {}",
            String::from_utf8_lossy(needle),
            tail(received)
        );
        received.extend_from_slice(&chunk[..read]);
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    send_raw(addr, &request_bytes(method, path, headers, body, true)).await
}

/// [`request`], but `None` instead of a panic when the server cannot be reached or closes
/// before a complete response (for tests where the server may be killed at any moment).
pub async fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<RawResponse> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(&request_bytes(method, path, headers, body, true))
        .await
        .ok()?;
    let mut buffer = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut buffer))
        .await
        .ok()?
        .ok()?;
    let response = parse_response(&buffer)?;
    // A response cut short by the crash has fewer body bytes than announced.
    match response.header("content-length") {
        Some(length) if length.parse::<usize>().ok()? != response.body.len() => None,
        _ => Some(response),
    }
}

/// Sends arbitrary bytes and reads until the server closes; parses one response.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut buffer = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut buffer))
        .await
        .expect("response in time")
        .expect("read");
    parse_response(&buffer).expect("a complete response")
}

/// Parses a full response (head and de-chunked body) from bytes.
pub fn parse_response(buffer: &[u8]) -> Option<RawResponse> {
    let (status, headers, end) = parse_head(buffer)?;
    let rest = &buffer[end..];
    let body = if header(&headers, "transfer-encoding") == Some("chunked") {
        let mut chunked = Dechunker::default();
        chunked.push(rest);
        chunked.body
    } else {
        rest.to_vec()
    };
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

/// Incremental chunked-transfer decoder.
#[derive(Debug, Default)]
struct Dechunker {
    pending: Vec<u8>,
    body: Vec<u8>,
    done: bool,
}

impl Dechunker {
    fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        loop {
            let Some(line_end) = self.pending.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_text = std::str::from_utf8(&self.pending[..line_end]).expect("chunk size");
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .expect("hex chunk size");
            if size == 0 {
                self.done = true;
                self.pending.clear();
                return;
            }
            let needed = line_end + 2 + size + 2;
            if self.pending.len() < needed {
                return;
            }
            self.body
                .extend_from_slice(&self.pending[line_end + 2..line_end + 2 + size]);
            self.pending.drain(..needed);
        }
    }
}

/// An open event stream over HTTP/1.1.
pub struct RawStream {
    stream: TcpStream,
    /// Status code of the response.
    pub status: u16,
    /// Response headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    chunked: bool,
    dechunker: Dechunker,
    /// Body bytes received and not yet taken.
    body: Vec<u8>,
    /// The server closed the connection.
    pub closed: bool,
}

impl RawStream {
    /// Sends a GET for `path` and reads the response head.
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> RawStream {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self::open_on(stream, path, headers).await
    }

    /// [`RawStream::open`] on a connection made by the caller (from another source address,
    /// with a small receive buffer, …).
    pub async fn open_on(mut stream: TcpStream, path: &str, headers: &[(&str, &str)]) -> RawStream {
        stream
            .write_all(&request_bytes("GET", path, headers, b"", false))
            .await
            .expect("write");
        let mut buffer = Vec::new();
        let (status, headers, end) = loop {
            if let Some(head) = parse_head(&buffer) {
                break head;
            }
            let mut chunk = [0u8; 4096];
            let read = timeout(WAIT, stream.read(&mut chunk))
                .await
                .expect("response head in time")
                .expect("read");
            assert!(read > 0, "connection closed before the response head");
            buffer.extend_from_slice(&chunk[..read]);
        };
        let chunked = header(&headers, "transfer-encoding") == Some("chunked");
        let mut raw = RawStream {
            stream,
            status,
            headers,
            chunked,
            dechunker: Dechunker::default(),
            body: Vec::new(),
            closed: false,
        };
        raw.accept(&buffer[end..]);
        raw
    }

    fn accept(&mut self, bytes: &[u8]) {
        if self.chunked {
            self.dechunker.push(bytes);
            self.body.append(&mut self.dechunker.body);
            if self.dechunker.done {
                self.closed = true;
            }
        } else {
            self.body.extend_from_slice(bytes);
        }
    }

    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    async fn read_more(&mut self, wait: Duration) -> bool {
        let mut chunk = [0u8; 16384];
        match timeout(wait, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.closed = true;
                false
            }
            Ok(Ok(read)) => {
                self.accept(&chunk[..read]);
                true
            }
            Err(_) => false,
        }
    }

    /// Reads until the body received so far contains `needle`; returns everything up to
    /// and including it (and keeps the rest). Panics after [`WAIT`].
    pub async fn read_until(&mut self, needle: &str) -> String {
        self.read_until_within(needle, WAIT).await
    }

    /// [`RawStream::read_until`] with another bound than [`WAIT`] (for tests under load).
    pub async fn read_until_within(&mut self, needle: &str, wait: Duration) -> String {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(at) = find(&self.body, needle.as_bytes()) {
                let taken: Vec<u8> = self.body.drain(..at + needle.len()).collect();
                return String::from_utf8(taken).expect("utf-8 stream");
            }
            let now = tokio::time::Instant::now();
            assert!(
                now < deadline && !self.closed,
                "no {needle:?} in the stream; got {} (closed: {})",
                tail(&self.body),
                self.closed
            );
            self.read_more(deadline - now).await;
        }
    }

    /// Reads the next complete event (up to a blank line), skipping heartbeat lines.
    pub async fn next_event(&mut self) -> String {
        self.next_event_within(WAIT).await
    }

    /// [`RawStream::next_event`] waiting up to `wait` for each read.
    pub async fn next_event_within(&mut self, wait: Duration) -> String {
        loop {
            let event = self.read_until_within("\n\n", wait).await;
            let trimmed: String = event
                .lines()
                .filter(|line| *line != ":" && !line.is_empty())
                .map(|line| format!("{line}\n"))
                .collect();
            if !trimmed.trim().is_empty() && !trimmed.starts_with("retry:") {
                return format!("{trimmed}\n");
            }
        }
    }

    /// Collects whatever arrives within `wait`.
    pub async fn drain_for(&mut self, wait: Duration) -> String {
        let deadline = tokio::time::Instant::now() + wait;
        while !self.closed {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            self.read_more(deadline - now).await;
        }
        String::from_utf8(std::mem::take(&mut self.body)).expect("utf-8 stream")
    }

    /// Reads until the server ends the stream; returns the rest of the body.
    pub async fn read_to_end(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.closed {
            let now = tokio::time::Instant::now();
            assert!(
                now < deadline,
                "stream did not end; got {}",
                tail(&self.body)
            );
            self.read_more(deadline - now).await;
        }
        String::from_utf8(std::mem::take(&mut self.body)).expect("utf-8 stream")
    }
}

/// The last bytes of `received`, for failure messages that must stay readable when a
/// stream carried megabytes.
fn tail(received: &[u8]) -> String {
    const SHOWN: usize = 600;
    let start = received.len().saturating_sub(SHOWN);
    let shown = String::from_utf8_lossy(&received[start..]);
    if start == 0 {
        format!("{shown:?}")
    } else {
        format!("[{} bytes, last {SHOWN}:] {shown:?}", received.len())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
