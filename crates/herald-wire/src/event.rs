//! [`Event`]: one validated Server-Sent Event and its encoder.
//!
//! An event is validated when it is built, so encoding can never fail and never writes a
//! field that would inject other fields: an `id` or `event` value containing CR, LF or NUL is
//! refused with an [`EventError`]. Data may contain any line ends; each line becomes its own
//! `data:` field, so a receiver reassembles the value joined by LF.
//!
//! [`Event::encode`] computes the exact frame length first and allocates once, so the frame
//! can be shared by every subscriber of a topic as a cheap [`Bytes`] clone.

use bytes::{BufMut, Bytes, BytesMut};

/// Why an event field was refused.
///
/// ```
/// use herald_wire::{Event, EventError};
///
/// assert_eq!(Event::new().with_id("1\n"), Err(EventError::InvalidId));
/// assert_eq!(EventError::InvalidEventType.to_string(), "event type must not contain CR, LF or NUL");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The `id` contains CR, LF or NUL, which would end the field early or be ignored.
    #[error("event id must not contain CR, LF or NUL")]
    InvalidId,
    /// The `event` type contains CR, LF or NUL, which would end the field early.
    #[error("event type must not contain CR, LF or NUL")]
    InvalidEventType,
}

/// One Server-Sent Event: every field optional, every field already validated.
///
/// ```
/// use herald_wire::Event;
///
/// let frame = Event::new()
///     .with_id("42")?
///     .with_event("greeting")?
///     .with_data("hello\nworld")
///     .encode();
/// assert_eq!(&frame[..], b"id: 42\nevent: greeting\ndata: hello\ndata: world\n\n");
/// # Ok::<(), herald_wire::EventError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// Comment lines written before the fields (e.g. a human-readable note).
    comment: Option<String>,
    /// The `id` field; `Some("")` resets the receiver's last event id.
    id: Option<String>,
    /// The `event` field (the type); receivers default it to `message`.
    event: Option<String>,
    /// The `retry` field, in milliseconds.
    retry: Option<u64>,
    /// The `data` value; `None` writes no data line, so the receiver dispatches nothing.
    data: Option<String>,
}

/// Checks that an `id` value can be written without injecting fields.
///
/// ```
/// assert!(herald_wire::event::validate_id("urn:uuid:1").is_ok());
/// assert!(herald_wire::event::validate_id("a\nretry: 1").is_err());
/// ```
pub fn validate_id(id: &str) -> Result<(), EventError> {
    if has_line_break_or_nul(id) {
        Err(EventError::InvalidId)
    } else {
        Ok(())
    }
}

/// Checks that an `event` type can be written without injecting fields.
///
/// ```
/// assert!(herald_wire::event::validate_event_type("update").is_ok());
/// assert!(herald_wire::event::validate_event_type("a\rdata: x").is_err());
/// ```
pub fn validate_event_type(event: &str) -> Result<(), EventError> {
    if has_line_break_or_nul(event) {
        Err(EventError::InvalidEventType)
    } else {
        Ok(())
    }
}

fn has_line_break_or_nul(value: &str) -> bool {
    memchr::memchr3(b'\r', b'\n', 0, value.as_bytes()).is_some()
}

impl Event {
    /// An empty event; add fields with the `with_*` methods.
    ///
    /// ```
    /// assert_eq!(herald_wire::Event::new().encode().as_ref(), b"\n");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the `id` field, refusing CR, LF and NUL.
    ///
    /// ```
    /// assert!(herald_wire::Event::new().with_id("7").is_ok());
    /// assert!(herald_wire::Event::new().with_id("7\0").is_err());
    /// ```
    pub fn with_id(mut self, id: impl Into<String>) -> Result<Self, EventError> {
        let id = id.into();
        validate_id(&id)?;
        self.id = Some(id);
        Ok(self)
    }

    /// Sets the `event` type, refusing CR, LF and NUL.
    ///
    /// ```
    /// assert!(herald_wire::Event::new().with_event("bye").is_ok());
    /// assert!(herald_wire::Event::new().with_event("a\nb").is_err());
    /// ```
    pub fn with_event(mut self, event: impl Into<String>) -> Result<Self, EventError> {
        let event = event.into();
        validate_event_type(&event)?;
        self.event = Some(event);
        Ok(self)
    }

    /// Sets the data; CR, LF and CRLF inside it split it into several `data:` lines.
    ///
    /// ```
    /// let frame = herald_wire::Event::new().with_data("a\r\nb").encode();
    /// assert_eq!(&frame[..], b"data: a\ndata: b\n\n");
    /// ```
    pub fn with_data(mut self, data: impl Into<String>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// Sets the `retry` field (reconnection delay in milliseconds).
    ///
    /// ```
    /// let frame = herald_wire::Event::new().with_retry(3000).encode();
    /// assert_eq!(&frame[..], b"retry: 3000\n\n");
    /// ```
    pub fn with_retry(mut self, retry_ms: u64) -> Self {
        self.retry = Some(retry_ms);
        self
    }

    /// Adds comment text; line breaks in it become separate comment lines.
    ///
    /// ```
    /// let frame = herald_wire::Event::new().with_comment("hi").encode();
    /// assert_eq!(&frame[..], b": hi\n\n");
    /// ```
    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// The `id` field, if set.
    ///
    /// ```
    /// assert_eq!(herald_wire::Event::new().with_id("1")?.id(), Some("1"));
    /// # Ok::<(), herald_wire::EventError>(())
    /// ```
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The `event` type, if set.
    ///
    /// ```
    /// assert_eq!(herald_wire::Event::new().event(), None);
    /// ```
    pub fn event(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The data, if set.
    ///
    /// ```
    /// assert_eq!(herald_wire::Event::new().with_data("x").data(), Some("x"));
    /// ```
    pub fn data(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The `retry` value in milliseconds, if set.
    ///
    /// ```
    /// assert_eq!(herald_wire::Event::new().with_retry(5).retry(), Some(5));
    /// ```
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The comment text, if set.
    ///
    /// ```
    /// assert_eq!(herald_wire::Event::new().with_comment("c").comment(), Some("c"));
    /// ```
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The exact number of bytes [`Event::encode`] produces.
    ///
    /// ```
    /// let event = herald_wire::Event::new().with_data("abc");
    /// assert_eq!(event.encoded_len(), event.encode().len());
    /// ```
    pub fn encoded_len(&self) -> usize {
        let mut len = 1; // the blank line that ends the event
        if let Some(comment) = &self.comment {
            len += lines(comment).map(|line| 3 + line.len()).sum::<usize>();
        }
        if let Some(id) = &self.id {
            len += 5 + id.len();
        }
        if let Some(event) = &self.event {
            len += 8 + event.len();
        }
        if let Some(retry) = self.retry {
            len += 8 + decimal_len(retry);
        }
        if let Some(data) = &self.data {
            len += lines(data).map(|line| 7 + line.len()).sum::<usize>();
        }
        len
    }

    /// Encodes the event into one frame with a single allocation.
    ///
    /// ```
    /// let frame = herald_wire::Event::new().with_data("").encode();
    /// assert_eq!(&frame[..], b"data: \n\n");
    /// ```
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut buf);
        buf.freeze()
    }

    /// Appends the encoded event to `buf`.
    ///
    /// ```
    /// let mut buf = bytes::BytesMut::new();
    /// herald_wire::Event::new().with_data("a").encode_into(&mut buf);
    /// herald_wire::Event::new().with_data("b").encode_into(&mut buf);
    /// assert_eq!(&buf[..], b"data: a\n\ndata: b\n\n");
    /// ```
    pub fn encode_into(&self, buf: &mut BytesMut) {
        buf.reserve(self.encoded_len());
        if let Some(comment) = &self.comment {
            for line in lines(comment) {
                put_field(buf, b": ", line);
            }
        }
        if let Some(id) = &self.id {
            put_field(buf, b"id: ", id);
        }
        if let Some(event) = &self.event {
            put_field(buf, b"event: ", event);
        }
        if let Some(retry) = self.retry {
            buf.put_slice(b"retry: ");
            put_decimal(buf, retry);
            buf.put_u8(b'\n');
        }
        if let Some(data) = &self.data {
            for line in lines(data) {
                put_field(buf, b"data: ", line);
            }
        }
        buf.put_u8(b'\n');
    }
}

/// A comment frame (`: text`), one comment line per line of `text`.
///
/// ```
/// assert_eq!(&herald_wire::comment_frame("a\nb")[..], b": a\n: b\n\n");
/// ```
pub fn comment_frame(text: &str) -> Bytes {
    Event::new().with_comment(text).encode()
}

/// The heartbeat frame: a bare comment line that keeps idle streams open through proxies.
///
/// It is a single line, not a whole event, so it can never dispatch anything.
///
/// ```
/// assert_eq!(&herald_wire::heartbeat_frame()[..], b":\n");
/// ```
pub fn heartbeat_frame() -> Bytes {
    Bytes::from_static(b":\n")
}

/// A frame carrying only `retry`, telling the client how long to wait before reconnecting.
///
/// ```
/// assert_eq!(&herald_wire::retry_frame(1500)[..], b"retry: 1500\n\n");
/// ```
pub fn retry_frame(retry_ms: u64) -> Bytes {
    Event::new().with_retry(retry_ms).encode()
}

fn put_field(buf: &mut BytesMut, name: &[u8], value: &str) {
    buf.put_slice(name);
    buf.put_slice(value.as_bytes());
    buf.put_u8(b'\n');
}

/// Splits on CR, LF and CRLF; a CRLF is one line end. Always yields at least one line,
/// so empty data still writes one `data:` field and dispatches an empty event.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match memchr::memchr2(b'\r', b'\n', current.as_bytes()) {
            None => {
                rest = None;
                Some(current)
            }
            Some(end) => {
                let skip = if current.as_bytes()[end] == b'\r'
                    && current.as_bytes().get(end + 1) == Some(&b'\n')
                {
                    2
                } else {
                    1
                };
                rest = Some(&current[end + skip..]);
                Some(&current[..end])
            }
        }
    })
}

fn decimal_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 10 {
        value /= 10;
        len += 1;
    }
    len
}

fn put_decimal(buf: &mut BytesMut, value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    buf.put_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(event: &Event) -> String {
        String::from_utf8(event.encode().to_vec()).expect("frames are UTF-8")
    }

    #[test]
    fn data_line_ends_each_become_one_data_field() {
        let cases = [
            ("a\nb", "data: a\ndata: b\n\n"),
            ("a\rb", "data: a\ndata: b\n\n"),
            ("a\r\nb", "data: a\ndata: b\n\n"),
            ("a\n\nb", "data: a\ndata: \ndata: b\n\n"),
            ("a\r\rb", "data: a\ndata: \ndata: b\n\n"),
            ("a\n", "data: a\ndata: \n\n"),
            ("\r\n", "data: \ndata: \n\n"),
            ("", "data: \n\n"),
        ];
        for (data, expected) in cases {
            assert_eq!(
                frame(&Event::new().with_data(data)),
                expected,
                "data {data:?}"
            );
        }
    }

    #[test]
    fn crlf_in_data_does_not_produce_an_extra_empty_line() {
        assert_eq!(
            frame(&Event::new().with_data("one\r\ntwo\r\n")),
            "data: one\ndata: two\ndata: \n\n"
        );
    }

    #[test]
    fn fields_are_written_in_a_fixed_order() {
        let event = Event::new()
            .with_data("d")
            .with_retry(10)
            .with_event("t")
            .and_then(|event| event.with_id("i"))
            .expect("valid")
            .with_comment("c");
        assert_eq!(
            frame(&event),
            ": c\nid: i\nevent: t\nretry: 10\ndata: d\n\n"
        );
    }

    #[test]
    fn id_and_type_with_cr_lf_or_nul_are_refused() {
        for bad in ["a\nb", "a\rb", "a\0b", "\n", "\r\n", "\0"] {
            assert_eq!(
                Event::new().with_id(bad),
                Err(EventError::InvalidId),
                "{bad:?}"
            );
            assert_eq!(
                Event::new().with_event(bad),
                Err(EventError::InvalidEventType),
                "{bad:?}"
            );
        }
        // Colons, spaces and non-ASCII are fine: only line ends and NUL can inject or be ignored.
        assert!(Event::new().with_id(" a:b \u{e9}").is_ok());
        assert!(Event::new().with_event("a: b").is_ok());
    }

    #[test]
    fn empty_id_is_written_so_it_resets_the_receiver() {
        let event = Event::new().with_id("").expect("valid");
        assert_eq!(frame(&event), "id: \n\n");
    }

    #[test]
    fn comments_become_one_line_each() {
        assert_eq!(
            &comment_frame("one\r\ntwo\rthree")[..],
            b": one\n: two\n: three\n\n"
        );
        assert_eq!(&comment_frame("")[..], b": \n\n");
    }

    #[test]
    fn retry_is_written_in_decimal() {
        for (retry, expected) in [
            (0, "0"),
            (9, "9"),
            (10, "10"),
            (u64::MAX, "18446744073709551615"),
        ] {
            assert_eq!(
                frame(&Event::new().with_retry(retry)),
                format!("retry: {expected}\n\n")
            );
            assert_eq!(decimal_len(retry), expected.len());
        }
    }

    #[test]
    fn encoded_len_is_exact_so_encode_allocates_once() {
        let event = Event::new()
            .with_id("42")
            .and_then(|event| event.with_event("update"))
            .expect("valid")
            .with_comment("x\r\ny")
            .with_retry(1234)
            .with_data("a\r\nb\rc\n");
        let mut buf = BytesMut::with_capacity(event.encoded_len());
        let capacity = buf.capacity();
        event.encode_into(&mut buf);
        assert_eq!(buf.len(), event.encoded_len());
        assert_eq!(buf.capacity(), capacity, "encode_into grew the buffer");
    }

    #[test]
    fn heartbeat_is_a_bare_comment_line() {
        assert_eq!(&heartbeat_frame()[..], b":\n");
    }
}
