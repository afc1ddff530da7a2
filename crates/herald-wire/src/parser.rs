//! [`Parser`]: a streaming event-stream parser (placeholder; being written).

/// Limits that keep a hostile stream from growing buffers without bound.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest accepted line, in bytes.
    pub max_line_len: usize,
    /// Largest accepted event (all its data), in bytes.
    pub max_event_len: usize,
}

/// Something the parser yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A dispatched event.
    Event(ParsedEvent),
    /// A valid `retry` field.
    Retry(u64),
}

/// A dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    /// The last event id at dispatch.
    pub id: String,
    /// The event type (`message` by default).
    pub event: String,
    /// The data, lines joined by LF.
    pub data: String,
}

/// Why parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A line exceeded [`Limits::max_line_len`].
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The limit.
        limit: usize,
    },
}

/// Streaming parser.
#[derive(Debug, Default)]
pub struct Parser {}
