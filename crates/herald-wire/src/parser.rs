//! [`Parser`]: a streaming event-stream parser following the WHATWG HTML rules for
//! interpreting an event stream ("server-sent events", §9.2.6).
//!
//! The parser does no I/O. Hand it bytes as they arrive with [`Parser::feed`], take what is
//! complete with [`Parser::next_item`] until it returns `None`, and call [`Parser::finish`]
//! when the connection ends:
//!
//! ```
//! use herald_wire::{Item, Parser};
//!
//! let mut parser = Parser::new();
//! let mut items = Vec::new();
//! for chunk in [&b"id: 1\nda"[..], b"ta: hello\n", b"\n: just a comment\n"] {
//!     parser.feed(chunk);
//!     while let Some(item) = parser.next_item() {
//!         items.push(item?);
//!     }
//! }
//! parser.finish();
//! let Item::Event(event) = &items[0] else { panic!("expected an event") };
//! assert_eq!((event.id.as_str(), event.event.as_str(), event.data.as_str()), ("1", "message", "hello"));
//! assert_eq!(parser.last_event_id(), "1");
//! # Ok::<(), herald_wire::ParseError>(())
//! ```
//!
//! # Rules
//! - One leading byte order mark (EF BB BF) is stripped, even when split across chunks; a BOM
//!   anywhere else is ordinary text.
//! - Lines end with CR, LF or CRLF. A CRLF split across two chunks is one line end. A line that
//!   ends with CR is processed at once (an event ending on a lone CR is dispatched without
//!   waiting for more bytes); an LF at the start of the next chunk is then swallowed.
//! - Lines starting with `:` are comments. A line without a colon is a field whose name is the
//!   whole line and whose value is empty. One space after the colon is removed.
//! - Fields: `event` sets the type (default `message`), `data` appends its value and an LF,
//!   `id` sets the last event id unless the value contains NUL (an empty value resets it),
//!   `retry` yields [`Item::Retry`] when the value is ASCII digits only. Others are ignored.
//! - A blank line dispatches the event: the last event id is updated even when there is no
//!   data, but an event with no `data` field yields nothing. The final LF of the data is removed.
//! - Text is UTF-8; invalid sequences become U+FFFD. Lines are decoded only once complete, so
//!   a character split across chunks decodes correctly.
//! - At end of stream ([`Parser::finish`]) an unterminated line and an event not ended by a
//!   blank line are discarded.
//!
//! # Limits and errors
//! [`Limits`] bounds the memory a hostile or broken stream can make the parser hold: the bytes
//! of one line and the data of one event. Exceeding one yields a [`ParseError`] from
//! [`Parser::next_item`], after which the parser is still in a defined state and can go on:
//! - [`ParseError::LineTooLong`]: the rest of that line is skipped (up to its line end, however
//!   many chunks that takes) without buffering it;
//! - [`ParseError::EventTooLarge`]: the event being built loses its data;
//!
//! and in both cases the event being built is *poisoned*: its remaining `data` lines are
//! ignored and its blank line dispatches nothing. Its other fields (`id`, `retry`, `event`) are
//! still applied, so [`Parser::last_event_id`] moves past the broken event. Parsing resumes
//! normally with the next event. A client that cannot afford to lose an event should treat
//! either error as fatal and drop the connection.

use std::collections::VecDeque;

/// The UTF-8 byte order mark, stripped once at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Limits that keep a hostile stream from growing buffers without bound.
///
/// ```
/// use herald_wire::{Limits, Parser};
///
/// let limits = Limits { max_line_len: 1024, ..Limits::default() };
/// let parser = Parser::with_limits(limits);
/// assert_eq!(parser.limits().max_line_len, 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted line in bytes, without its line end. This is also the most a parser
    /// buffers while waiting for a line end (plus whatever one chunk brings).
    pub max_line_len: usize,
    /// Largest accepted event in bytes, counted as the decoded data joined by LF (the type and
    /// id are bounded by `max_line_len` already).
    pub max_event_len: usize,
}

impl Default for Limits {
    /// 64 KiB per line, 1 MiB per event: far above what Herald publishes, far below what
    /// would hurt a process holding thousands of connections.
    ///
    /// ```
    /// let limits = herald_wire::Limits::default();
    /// assert_eq!((limits.max_line_len, limits.max_event_len), (64 * 1024, 1024 * 1024));
    /// ```
    fn default() -> Self {
        Self {
            max_line_len: 64 * 1024,
            max_event_len: 1024 * 1024,
        }
    }
}

/// Something the parser yields.
///
/// ```
/// use herald_wire::{Item, Parser};
///
/// let mut parser = Parser::new();
/// parser.feed(b"retry: 2500\n");
/// assert_eq!(parser.next_item(), Some(Ok(Item::Retry(2500))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A dispatched event.
    Event(ParsedEvent),
    /// A valid `retry` field: the reconnection delay in milliseconds (saturating at
    /// `u64::MAX` for absurdly long digit strings).
    Retry(u64),
}

/// A dispatched event.
///
/// ```
/// use herald_wire::{Item, ParsedEvent, Parser};
///
/// let mut parser = Parser::new();
/// parser.feed(b"event: add\ndata: 1\ndata: 2\n\n");
/// let expected = ParsedEvent { id: String::new(), event: "add".into(), data: "1\n2".into() };
/// assert_eq!(parser.next_item(), Some(Ok(Item::Event(expected))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    /// The last event id at dispatch (it carries over from earlier events; empty if none).
    pub id: String,
    /// The event type: the `event` field, or `message` when there was none or it was empty.
    pub event: String,
    /// The data: the `data` field values joined by LF.
    pub data: String,
}

/// Why the parser refused part of a stream. See the [module docs](self) for the state the
/// parser is left in.
///
/// ```
/// use herald_wire::{Limits, ParseError, Parser};
///
/// let mut parser = Parser::with_limits(Limits { max_line_len: 4, ..Limits::default() });
/// parser.feed(b"data: too long");
/// assert_eq!(parser.next_item(), Some(Err(ParseError::LineTooLong { limit: 4 })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A line exceeded [`Limits::max_line_len`]; the rest of it is skipped and the event
    /// being built will not be dispatched.
    #[error("event stream line longer than {limit} bytes")]
    LineTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// An event's data exceeded [`Limits::max_event_len`]; the event will not be dispatched.
    #[error("event stream event larger than {limit} bytes")]
    EventTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
}

/// A streaming event-stream parser. See the [module docs](self) for the rules it follows.
///
/// ```
/// use herald_wire::{Item, Parser};
///
/// let mut parser = Parser::new();
/// let items: Vec<_> = parser.feed_iter(b"data: a\r\n\r\ndata: b\r\r").collect();
/// assert_eq!(items.len(), 2);
/// ```
#[derive(Debug)]
pub struct Parser {
    /// The limits in force.
    limits: Limits,
    /// Bytes fed but not yet consumed, from `pos` on. Reused across feeds so a steady stream
    /// allocates nothing here once warmed up.
    buf: Vec<u8>,
    /// Where the unconsumed bytes start in `buf`; consumed bytes are dropped lazily in `feed`
    /// so each byte is moved at most once.
    pos: usize,
    /// Where the search for the next line end resumes: bytes between `pos` and here are known
    /// not to contain CR or LF, so a long line fed in many chunks is scanned once, not O(n²).
    scan_from: usize,
    /// True until the start of the stream has been checked for a BOM.
    at_stream_start: bool,
    /// The previous line ended with CR: an LF right after it belongs to the same line end.
    after_cr: bool,
    /// Skipping the rest of a line that exceeded `max_line_len`.
    skipping_line: bool,
    /// The event being built hit a limit: ignore its data and dispatch nothing at its end.
    poisoned: bool,
    /// Seen at least one `data` field in the event being built (the spec's "data buffer is
    /// not empty", tracked apart because we keep the data without its final LF).
    has_data: bool,
    /// The data buffer, values joined by LF (no trailing LF). Cleared, not freed, at dispatch.
    data: String,
    /// The event type buffer; empty means `message`.
    event_type: String,
    /// The spec's "last event ID buffer": set by `id` fields, copied at dispatch.
    id_buffer: String,
    /// The spec's "last event ID string": the id of the last dispatched event.
    last_event_id: String,
    /// Items parsed by [`Parser::finish`] that the caller has not taken yet.
    finished: VecDeque<Result<Item, ParseError>>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser with [`Limits::default`].
    ///
    /// ```
    /// let parser = herald_wire::Parser::new();
    /// assert_eq!(parser.last_event_id(), "");
    /// ```
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A parser with the given limits.
    ///
    /// ```
    /// use herald_wire::{Limits, Parser};
    ///
    /// let parser = Parser::with_limits(Limits { max_line_len: 80, max_event_len: 4096 });
    /// assert_eq!(parser.limits().max_event_len, 4096);
    /// ```
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            buf: Vec::new(),
            pos: 0,
            scan_from: 0,
            at_stream_start: true,
            after_cr: false,
            skipping_line: false,
            poisoned: false,
            has_data: false,
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            finished: VecDeque::new(),
        }
    }

    /// The limits in force.
    ///
    /// ```
    /// assert_eq!(herald_wire::Parser::new().limits(), herald_wire::Limits::default());
    /// ```
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The id of the last dispatched event (the spec's "last event ID string"): what a client
    /// sends as `Last-Event-ID` when it reconnects. An event without data still sets it.
    ///
    /// ```
    /// let mut parser = herald_wire::Parser::new();
    /// parser.feed(b"id: 41\n\n");
    /// assert_eq!(parser.next_item(), None); // no data: nothing dispatched...
    /// assert_eq!(parser.last_event_id(), "41"); // ...but the id moved on
    /// ```
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// How many fed bytes the parser holds that it has not consumed yet.
    ///
    /// Once [`Parser::next_item`] has returned `None` this is only the start of an unfinished
    /// line, so it never exceeds [`Limits::max_line_len`] (or 2, for a BOM still being checked).
    ///
    /// ```
    /// let mut parser = herald_wire::Parser::new();
    /// parser.feed(b"data: a\n\ndata: unfini");
    /// while parser.next_item().is_some() {}
    /// assert_eq!(parser.buffered_len(), "data: unfini".len());
    /// ```
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Appends a chunk of the stream. Nothing is parsed until [`Parser::next_item`] is called.
    ///
    /// ```
    /// let mut parser = herald_wire::Parser::new();
    /// parser.feed(b"data: x\n");
    /// parser.feed(b"\n");
    /// assert!(parser.next_item().is_some());
    /// ```
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.scan_from = 0;
            self.pos = 0;
        } else if self.pos > 0 {
            // Only the tail of an unfinished line (or lines the caller has not taken yet)
            // remains; move it to the front once instead of growing the buffer forever.
            self.buf.drain(..self.pos);
            self.scan_from -= self.pos;
            self.pos = 0;
        }
        if self.skipping_line && self.pos == self.buf.len() {
            // Skipping an over-long line: keep only from its line end on, never the line.
            if let Some(end) = memchr::memchr2(b'\r', b'\n', chunk) {
                self.buf.extend_from_slice(&chunk[end..]);
            }
        } else {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// Feeds a chunk and iterates over the items it completes.
    ///
    /// ```
    /// use herald_wire::{Item, Parser};
    ///
    /// let mut parser = Parser::new();
    /// for item in parser.feed_iter(b"data: hi\n\n") {
    ///     let Item::Event(event) = item? else { continue };
    ///     assert_eq!(event.data, "hi");
    /// }
    /// # Ok::<(), herald_wire::ParseError>(())
    /// ```
    pub fn feed_iter<'a>(
        &'a mut self,
        chunk: &[u8],
    ) -> impl Iterator<Item = Result<Item, ParseError>> + 'a {
        self.feed(chunk);
        std::iter::from_fn(move || self.next_item())
    }

    /// The next complete item, or `None` when more bytes are needed.
    ///
    /// Call it until it returns `None` after each [`Parser::feed`]. An `Err` is not the end:
    /// the parser has skipped the offending part (see the [module docs](self)) and further
    /// calls go on with the rest of the stream.
    ///
    /// ```
    /// use herald_wire::{Item, Parser};
    ///
    /// let mut parser = Parser::new();
    /// parser.feed(b"data: one\n\ndata: tw");
    /// assert!(matches!(parser.next_item(), Some(Ok(Item::Event(_)))));
    /// assert_eq!(parser.next_item(), None);
    /// ```
    pub fn next_item(&mut self) -> Option<Result<Item, ParseError>> {
        if let Some(item) = self.finished.pop_front() {
            return Some(item);
        }
        self.parse_next()
    }

    /// Ends the stream (the connection closed): an unterminated last line and an event not
    /// ended by a blank line are discarded, as the spec requires. Complete items still
    /// buffered are kept for [`Parser::next_item`].
    ///
    /// The parser is then ready for a new stream (a reconnection): a BOM is stripped again
    /// at its start, and [`Parser::last_event_id`] is kept.
    ///
    /// ```
    /// let mut parser = herald_wire::Parser::new();
    /// parser.feed(b"id: 1\ndata: complete\n\nid: 2\ndata: cut off\n");
    /// parser.finish();
    /// assert!(parser.next_item().is_some());
    /// assert_eq!(parser.next_item(), None);
    /// assert_eq!(parser.last_event_id(), "1");
    /// ```
    pub fn finish(&mut self) {
        while let Some(item) = self.parse_next() {
            self.finished.push_back(item);
        }
        // Whatever is left is a line without a line end (or BOM bytes still being checked).
        // A lone CR at the very end was already handled as a line end when it was seen.
        self.buf.clear();
        self.pos = 0;
        self.scan_from = 0;
        self.at_stream_start = true;
        self.after_cr = false;
        self.skipping_line = false;
        self.reset_event();
        // The id of an event that was never dispatched is pending data too.
        self.id_buffer.clone_from(&self.last_event_id);
    }

    /// Clears the event being built (data and type), keeping the buffers' capacity.
    fn reset_event(&mut self) {
        self.data.clear();
        self.event_type.clear();
        self.has_data = false;
        self.poisoned = false;
    }

    /// Processes complete lines until one yields an item or no complete line is left.
    fn parse_next(&mut self) -> Option<Result<Item, ParseError>> {
        loop {
            if self.at_stream_start {
                let rest = &self.buf[self.pos..];
                if rest.len() < BOM.len() && BOM.starts_with(rest) {
                    return None; // could still be a BOM split across chunks
                }
                if rest.starts_with(BOM) {
                    self.pos += BOM.len();
                    self.scan_from = self.pos;
                }
                self.at_stream_start = false;
            }
            if self.after_cr {
                match self.buf.get(self.pos) {
                    None => return None,
                    Some(b'\n') => {
                        self.pos += 1;
                        self.scan_from = self.pos;
                    }
                    Some(_) => {}
                }
                self.after_cr = false;
            }
            let Some(found) = memchr::memchr2(b'\r', b'\n', &self.buf[self.scan_from..]) else {
                self.scan_from = self.buf.len();
                if self.skipping_line {
                    self.pos = self.buf.len();
                } else if self.buf.len() - self.pos > self.limits.max_line_len {
                    return Some(Err(self.line_too_long()));
                }
                return None;
            };
            let end = self.scan_from + found;
            self.after_cr = self.buf[end] == b'\r';
            let start = self.pos;
            self.pos = end + 1;
            self.scan_from = self.pos;
            if self.skipping_line {
                self.skipping_line = false;
                continue;
            }
            if end - start > self.limits.max_line_len {
                self.poisoned = true;
                return Some(Err(ParseError::LineTooLong {
                    limit: self.limits.max_line_len,
                }));
            }
            if let Some(item) = self.process_line(start, end) {
                return Some(item);
            }
        }
    }

    /// Starts skipping the over-long line being buffered and poisons its event.
    fn line_too_long(&mut self) -> ParseError {
        self.pos = self.buf.len();
        self.scan_from = self.pos;
        self.skipping_line = true;
        self.poisoned = true;
        ParseError::LineTooLong {
            limit: self.limits.max_line_len,
        }
    }

    /// Interprets the line `buf[start..end]` (without its line end).
    fn process_line(&mut self, start: usize, end: usize) -> Option<Result<Item, ParseError>> {
        let line = &self.buf[start..end];
        if line.is_empty() {
            return self.dispatch().map(Ok);
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(0) => return None, // comment
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.poisoned {
                    return None;
                }
                let value = String::from_utf8_lossy(value);
                let separator = usize::from(self.has_data);
                if self.data.len() + separator + value.len() > self.limits.max_event_len {
                    self.poisoned = true;
                    self.data.clear();
                    return Some(Err(ParseError::EventTooLarge {
                        limit: self.limits.max_event_len,
                    }));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&String::from_utf8_lossy(value));
            }
            // An id containing NUL is ignored as a whole.
            b"id" if memchr::memchr(0, value).is_none() => {
                self.id_buffer.clear();
                self.id_buffer.push_str(&String::from_utf8_lossy(value));
            }
            // ASCII digits only; anything else (sign, space, empty) is ignored.
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let retry = value.iter().fold(0u64, |acc, digit| {
                    acc.saturating_mul(10)
                        .saturating_add(u64::from(digit - b'0'))
                });
                return Some(Ok(Item::Retry(retry)));
            }
            _ => {}
        }
        None
    }

    /// The blank line: sets the last event id and yields the event if it has data.
    fn dispatch(&mut self) -> Option<Item> {
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        if !self.has_data || self.poisoned {
            self.reset_event();
            return None;
        }
        let event = ParsedEvent {
            id: self.last_event_id.clone(),
            event: if self.event_type.is_empty() {
                String::from("message")
            } else {
                self.event_type.clone()
            },
            // A copy of exactly the right size; the buffer keeps its capacity for the next event.
            data: self.data.clone(),
        };
        self.reset_event();
        Some(Item::Event(event))
    }
}

#[cfg(test)]
mod tests;
