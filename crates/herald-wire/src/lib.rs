//! The Server-Sent Events wire format, exact and fast, with no I/O.
//!
//! Every other part of Herald writes and reads event streams through this crate: the hub
//! encodes each update once into a frame shared by all its subscribers, and the client parses
//! what arrives on the socket. Neither side does I/O here; callers own sockets and buffers.
//!
//! ```
//! use herald_wire::{Event, Item, Parser};
//!
//! let frame = Event::new().with_id("7")?.with_event("update")?.with_data("a\r\nb").encode();
//! let mut parser = Parser::new();
//! let items: Vec<_> = parser.feed_iter(&frame).collect();
//! let Some(Ok(Item::Event(event))) = items.first() else { panic!("one event") };
//! assert_eq!((event.id.as_str(), event.event.as_str(), event.data.as_str()), ("7", "update", "a\nb"));
//! # Ok::<(), herald_wire::EventError>(())
//! ```
//!
//! # Layout
//! - [`event`]: [`Event`], a validated event, and its encoder to one shared [`bytes::Bytes`]
//!   frame ([`Event::encode`], one allocation), plus the comment, heartbeat and retry frames.
//! - [`parser`]: [`Parser`], a streaming parser following the WHATWG HTML rules for
//!   interpreting an event stream, yielding [`Item`]s ([`ParsedEvent`] or a retry delay) and
//!   failing with a typed [`ParseError`] when a stream exceeds its [`Limits`].
//!
//! Tests: unit tests beside the code (`src/parser/tests.rs` has one per parsing rule);
//! `tests/` holds the WHATWG examples, proptest properties, an allocation count and the
//! replay of the fuzz seed corpus; `benches/wire.rs` compares with `eventsource-stream`.

pub mod event;
pub mod parser;

pub use event::{Event, EventError, comment_frame, heartbeat_frame, retry_frame};
pub use parser::{Item, Limits, ParseError, ParsedEvent, Parser};
