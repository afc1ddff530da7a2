//! The lean HTTP/1.1 subscribe path: connections whose requests are subscriptions are served
//! without hyper.
//!
//! Almost every connection to a hub is a subscriber that sends one `GET` and then only reads,
//! for hours. Served by hyper, each one keeps hyper's connection state and buffers (~20 KB);
//! here the request head is parsed with `httparse` from a small buffer that is freed once
//! parsed, and the stream's chunks are written straight to the socket, so an idle subscriber
//! costs little more than its [`Subscriber`](crate::subscriber::Subscriber).
//!
//! The lean path serves only what it can serve exactly: a complete, well-formed HTTP/1.1
//! `GET` of the hub path, in origin form, without `Content-Length`, `Transfer-Encoding`,
//! `Expect` or `Upgrade`. Anything else (publishes, pages, the API, HTTP/1.0, a head that
//! does not parse or is too large, a body on a `GET`) is handed to hyper together with every
//! byte already read ([`Outcome::HandOff`]), and hyper serves the connection from then on:
//! the refusals and framing rules of hyper's parser stay the ones clients see.
//!
//! Both paths run the same handler ([`handle_subscribe`]), add the same headers and write
//! the same access log line; the response is framed as hyper frames it (chunked for a stream,
//! `Content-Length` for a refusal, nothing for 204), and the connection is kept alive unless
//! the client or the response asks to close it.

use std::future::poll_fn;
use std::io::{self, IoSlice, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version, request};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tracing::Instrument;

use crate::http::access::RequestLog;
use crate::http::{HubBody, handle_subscribe};
use crate::hub::Hub;

/// Most header lines of a request served here; one with more goes to hyper (which takes up
/// to 100). Browsers send about 15.
const MAX_HEADERS: usize = 48;
/// Most bytes of one request head read here before the connection goes to hyper, which
/// refuses heads over its own limit of the same size with 431.
const MAX_HEAD: usize = 64 * 1024;
/// Bytes read at a time while a head comes in: a browser's subscribe request fits.
const READ_CHUNK: usize = 2048;
/// Most bytes kept of what a client sends while its stream is open (pipelined requests,
/// served after the stream ends, as hyper would); beyond this the hub stops reading them.
const MAX_PIPELINED: usize = 64 * 1024;

/// How the lean path left a connection.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The connection is done: the client closed it, sent nothing in time, or a response
    /// closed it.
    Closed,
    /// A request this path does not serve: hyper serves the connection from here, starting
    /// with these bytes (the request's head and whatever followed it).
    HandOff(Bytes),
}

/// What the lean path needs besides the connection.
pub(crate) struct LeanContext<'a> {
    pub(crate) hub: &'a Hub,
    /// How long a client may take to send a request head (also the keep-alive idle time).
    pub(crate) header_read_timeout: Duration,
    /// Becomes `true` when the server shuts down: idle connections close at once.
    pub(crate) closing: watch::Receiver<bool>,
}

/// Serves subscribe requests on `io` until the client leaves or sends another kind of
/// request. `opening` holds the bytes already read from the connection.
///
/// Memory: this future lives inline in the connection's task for as long as the stream is
/// open, and a task is as large as the largest state its future can be in. Reading and
/// answering a request ([`next_exchange`]) therefore runs boxed, so the task is sized for
/// writing a stream, not for parsing and authorizing a request.
pub(crate) async fn serve<I>(io: &mut I, opening: Bytes, mut context: LeanContext<'_>) -> Outcome
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut buffer = BytesMut::from(&opening[..]);
    drop(opening);
    loop {
        let (response, keep_alive) =
            match Box::pin(next_exchange(io, &mut buffer, &mut context)).await {
                Exchange::Answer(response, keep_alive) => (response, keep_alive),
                Exchange::Done(outcome) => return outcome,
            };
        let mut outgoing = Outgoing::new(response);
        match write_response(io, &mut outgoing, &mut buffer).await {
            Ok(Written::Complete) if keep_alive && !context.hub.is_shutting_down() => {}
            Ok(Written::Complete) => {
                // One attempt at a clean close (a TLS close_notify, a FIN), no waiting.
                let _ = poll_fn(|cx| Poll::Ready(Pin::new(&mut *io).poll_shutdown(cx))).await;
                return Outcome::Closed;
            }
            Ok(Written::ClientGone) | Err(_) => return Outcome::Closed,
        }
    }
}

/// What the next request on a connection comes to.
enum Exchange {
    /// The response to a subscribe request, and whether the connection stays open after it.
    Answer(Response<HubBody>, bool),
    /// No request for the lean path: the connection closes or goes to hyper.
    Done(Outcome),
}

/// Reads the next request head and answers it, when it is one for the lean path.
async fn next_exchange<I>(
    io: &mut I,
    buffer: &mut BytesMut,
    context: &mut LeanContext<'_>,
) -> Exchange
where
    I: AsyncRead + Unpin,
{
    let hub_path = context.hub.config().hub_path();
    let reading =
        tokio::time::timeout(context.header_read_timeout, read_head(io, buffer, hub_path));
    let head = tokio::select! {
        read = reading => match read {
            Ok(Ok(Head::Subscribe(head, len))) => {
                buffer.advance(len);
                release(buffer);
                head
            }
            Ok(Ok(Head::Other)) => {
                return Exchange::Done(Outcome::HandOff(std::mem::take(buffer).freeze()));
            }
            // Closed, failed, or silent (or too slow) past the deadline.
            Ok(Ok(Head::Closed)) | Ok(Err(_)) | Err(_) => return Exchange::Done(Outcome::Closed),
        },
        _ = context.closing.wait_for(|closing| *closing) => return Exchange::Done(Outcome::Closed),
    };
    let log = RequestLog::start(&head.method, &head.uri, head.version, &head.headers);
    let mut response = handle_subscribe(context.hub, &head)
        .instrument(log.span.clone())
        .await;
    log.finish(&mut response);
    let keep_alive = !asks_to_close(&head.headers) && !asks_to_close(response.headers());
    Exchange::Answer(response, keep_alive)
}

/// A request head, as far as the lean path is concerned.
enum Head {
    /// A subscribe request it serves, and the length of its head in the buffer.
    Subscribe(Box<request::Parts>, usize),
    /// Anything else: for hyper.
    Other,
    /// The client closed the connection before sending anything.
    Closed,
}

/// Reads into `buffer` until it holds a complete head (or hyper's turn has come).
async fn read_head<I>(io: &mut I, buffer: &mut BytesMut, hub_path: &str) -> io::Result<Head>
where
    I: AsyncRead + Unpin,
{
    loop {
        if !buffer.is_empty() {
            match parse_head(buffer, hub_path) {
                Some(head) => return Ok(head),
                None if buffer.len() >= MAX_HEAD => return Ok(Head::Other),
                None => {}
            }
        }
        buffer.reserve(READ_CHUNK);
        if io.read_buf(buffer).await? == 0 {
            // Half a request, then the end: hyper answers or closes as it would have.
            return Ok(if buffer.is_empty() {
                Head::Closed
            } else {
                Head::Other
            });
        }
    }
}

/// Parses a request head and decides whether the lean path serves it; `None` while the head
/// is incomplete.
fn parse_head(bytes: &[u8], hub_path: &str) -> Option<Head> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut lines);
    let len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return None,
        // Malformed or too many headers: hyper's parser gives the answer.
        Err(_) => return Some(Head::Other),
    };
    let (Some("GET"), Some(1), Some(target)) = (request.method, request.version, request.path)
    else {
        return Some(Head::Other);
    };
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path != hub_path {
        return Some(Head::Other);
    }
    let Ok(uri) = Uri::try_from(target) else {
        return Some(Head::Other);
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for line in request.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line.name.as_bytes()),
            HeaderValue::from_bytes(line.value),
        ) else {
            return Some(Head::Other);
        };
        // A body, or a change of protocol: hyper's framing rules and refusals apply.
        if [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::EXPECT,
            header::UPGRADE,
        ]
        .contains(&name)
        {
            return Some(Head::Other);
        }
        headers.append(name, value);
    }
    let (mut head, ()) = Request::new(()).into_parts();
    head.method = Method::GET;
    head.uri = uri;
    head.version = Version::HTTP_11;
    head.headers = headers;
    Some(Head::Subscribe(Box::new(head), len))
}

/// Frees the read buffer once a head is parsed: an idle subscriber keeps no buffer. Bytes
/// pipelined behind the head (rare) are kept in a buffer of their own size.
fn release(buffer: &mut BytesMut) {
    *buffer = if buffer.is_empty() {
        BytesMut::new()
    } else {
        BytesMut::from(&buffer[..])
    };
}

/// Whether a `Connection` header asks to close the connection after this exchange.
fn asks_to_close(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

/// How a response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body at all (204, 304).
    None,
    /// `Content-Length`: the body's size is known.
    Length(u64),
    /// `Transfer-Encoding: chunked`: a stream.
    Chunked,
}

/// How writing a response ended.
enum Written {
    /// Sent whole.
    Complete,
    /// The client closed the connection (or it failed) while the body was being sent.
    ClientGone,
}

/// What to do next while a body is being sent.
enum Next {
    /// Send this piece of the body.
    Data(Bytes),
    /// The body is complete.
    End,
    /// Nothing to send at once: send the head alone, then wait.
    SendHead,
    /// The client closed the connection (or it failed).
    ClientGone,
}

/// A response ready to be written: its head encoded, its body and how it is framed.
struct Outgoing {
    framing: Framing,
    body: HubBody,
    /// Bytes on their way to the socket.
    unsent: Unsent,
}

impl Outgoing {
    fn new(response: Response<HubBody>) -> Self {
        let (head, body) = response.into_parts();
        let framing = if head.status == StatusCode::NO_CONTENT
            || head.status == StatusCode::NOT_MODIFIED
            || head.status.is_informational()
        {
            Framing::None
        } else {
            body.size_hint()
                .exact()
                .map_or(Framing::Chunked, Framing::Length)
        };
        Self {
            framing,
            body,
            unsent: Unsent {
                head: encode_head(&head, framing),
                ..Unsent::default()
            },
        }
    }
}

/// Writes a response to `io`. The head goes out with the body's first bytes when those are
/// ready at once (a stream's `retry` line, a refusal's message), so most responses take one
/// system call. While the body waits for data (a stream between events), the connection is
/// watched so a client that leaves is noticed at once; bytes it sends meanwhile are kept in
/// `pipelined` for after the response.
///
/// Memory: this future is what an idle subscriber's task holds, so it keeps its state in
/// `outgoing` (owned by the caller) and awaits only small `poll_fn`s.
async fn write_response<I>(
    io: &mut I,
    outgoing: &mut Outgoing,
    pipelined: &mut BytesMut,
) -> io::Result<Written>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let next = poll_fn(|cx| {
            if let Poll::Ready(frame) = Pin::new(&mut outgoing.body).poll_frame(cx) {
                return Poll::Ready(match frame {
                    None => Next::End,
                    Some(Ok(frame)) => Next::Data(frame.into_data().unwrap_or_default()),
                });
            }
            if !outgoing.unsent.is_empty() {
                return Poll::Ready(Next::SendHead);
            }
            if watch_client(io, pipelined, cx).is_ready() {
                return Poll::Ready(Next::ClientGone);
            }
            Poll::Pending
        })
        .await;
        let complete = match next {
            Next::Data(data) => {
                outgoing.unsent.add(outgoing.framing, data);
                false
            }
            Next::End => {
                if outgoing.framing == Framing::Chunked {
                    outgoing.unsent.trailer = b"0\r\n\r\n";
                }
                true
            }
            Next::SendHead => false,
            Next::ClientGone => return Ok(Written::ClientGone),
        };
        poll_fn(|cx| outgoing.unsent.poll_write(io, cx)).await?;
        io.flush().await?;
        if complete {
            return Ok(Written::Complete);
        }
    }
}

/// Reads whatever the client sent while its response is being sent. Ready when the client
/// has closed the connection (or it failed).
fn watch_client<I>(io: &mut I, pipelined: &mut BytesMut, cx: &mut Context<'_>) -> Poll<()>
where
    I: AsyncRead + Unpin,
{
    let mut scratch = [0u8; 512];
    while pipelined.len() < MAX_PIPELINED {
        let mut read = ReadBuf::new(&mut scratch);
        match Pin::new(&mut *io).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) if read.filled().is_empty() => return Poll::Ready(()),
            Poll::Ready(Ok(())) => pipelined.extend_from_slice(read.filled()),
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Pending => break,
        }
    }
    Poll::Pending
}

/// Bytes on their way to the socket, in order: the response head (until sent), a chunk's
/// size line, a piece of body (a shared frame, not copied), and a chunk's or the body's end.
#[derive(Default)]
struct Unsent {
    head: Vec<u8>,
    size: [u8; 18],
    size_len: usize,
    data: Bytes,
    trailer: &'static [u8],
    /// Bytes of the above already written.
    written: usize,
}

impl Unsent {
    fn is_empty(&self) -> bool {
        self.head.len() + self.size_len + self.data.len() + self.trailer.len() == self.written
    }

    /// Adds a piece of body, framed (empty pieces are skipped: in a chunked body an empty
    /// chunk would end it).
    fn add(&mut self, framing: Framing, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if framing == Framing::Chunked {
            let mut cursor = io::Cursor::new(&mut self.size[..]);
            let _ = write!(cursor, "{:x}\r\n", data.len());
            self.size_len = cursor.position() as usize;
            self.trailer = b"\r\n";
        }
        self.data = data;
    }

    /// Writes everything with vectored writes, then releases the buffers.
    fn poll_write<I>(&mut self, io: &mut I, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        I: AsyncWrite + Unpin,
    {
        loop {
            let mut slices = [IoSlice::new(&[]); 4];
            let mut skip = self.written;
            let mut count = 0;
            for part in [
                &self.head[..],
                &self.size[..self.size_len],
                &self.data[..],
                self.trailer,
            ] {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                slices[count] = IoSlice::new(&part[skip..]);
                skip = 0;
                count += 1;
            }
            if count == 0 {
                *self = Unsent::default();
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(written) => self.written += written,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

/// The status line and headers, as hyper writes them (lowercase names), with the framing
/// header and `Date`.
fn encode_head(head: &http::response::Parts, framing: Framing) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let reason = head.status.canonical_reason().unwrap_or("");
    let _ = write!(out, "HTTP/1.1 {} {reason}\r\n", head.status.as_u16());
    for (name, value) in &head.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::None => {}
        Framing::Length(len) => {
            let _ = write!(out, "content-length: {len}\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    let _ = write!(
        out,
        "date: {}\r\n\r\n",
        httpdate::fmt_http_date(SystemTime::now())
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: &str = "/.well-known/mercure";

    fn parse(request: &str) -> Option<Head> {
        parse_head(request.as_bytes(), HUB)
    }

    #[test]
    fn a_plain_subscribe_get_is_served_here() {
        let request = "GET /.well-known/mercure?match=a HTTP/1.1\r\nHost: x\r\n\
                       Last-Event-ID: 7\r\nCookie: a=b\r\n\r\nrest";
        let Some(Head::Subscribe(head, len)) = parse(request) else {
            panic!("not served here");
        };
        assert_eq!(len, request.len() - "rest".len());
        assert_eq!(head.uri.query(), Some("match=a"));
        assert_eq!(head.headers["last-event-id"], "7");
        assert_eq!(head.headers.len(), 3);
        assert!(parse(&request[..30]).is_none());
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for request in [
            "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /.well-known/mercure?match=a HTTP/1.0\r\n\r\n",
            "GET /healthz HTTP/1.1\r\n\r\n",
            "GET /.well-known/mercure/subscriptions HTTP/1.1\r\n\r\n",
            "GET http://x/.well-known/mercure?match=a HTTP/1.1\r\n\r\n",
            "GET /.well-known/mercure?match=a HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "GET /.well-known/mercure?match=a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /.well-known/mercure?match=a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET /.well-known/mercure?match=a HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /.well-known/mercure?match=a HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            "GET /.well-known/mercure?match=a HTTP/1.1\r\nX: a\0b\r\n\r\n",
        ] {
            assert!(matches!(parse(request), Some(Head::Other)), "{request:?}");
        }
        let many = format!(
            "GET /.well-known/mercure?match=a HTTP/1.1\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(parse(&many), Some(Head::Other)));
        let raw_byte = b"GET /.well-known/mercure?match=\xFF HTTP/1.1\r\n\r\n";
        assert!(matches!(parse_head(raw_byte, HUB), Some(Head::Other)));
    }

    #[test]
    fn connection_close_is_a_token_of_the_header() {
        let mut headers = HeaderMap::new();
        assert!(!asks_to_close(&headers));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Close"),
        );
        assert!(asks_to_close(&headers));
        headers.insert(header::CONNECTION, HeaderValue::from_static("closed"));
        assert!(!asks_to_close(&headers));
    }

    #[test]
    fn heads_are_framed_as_hyper_frames_them() {
        let (mut head, ()) = Response::new(()).into_parts();
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        let text = String::from_utf8(encode_head(&head, Framing::Chunked)).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"));
        assert!(text.contains("\r\ntransfer-encoding: chunked\r\ndate: "));
        assert!(text.ends_with(" GMT\r\n\r\n"));
        head.status = StatusCode::NO_CONTENT;
        let text = String::from_utf8(encode_head(&head, Framing::None)).unwrap();
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"));
        assert!(!text.contains("content-length") && !text.contains("transfer-encoding"));
    }
}
