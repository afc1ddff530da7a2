//! The Server-Sent Events wire format, exact and fast, with no I/O.
//!
//! Every other part of Herald writes and reads event streams through this crate.
//!
//! # Layout
//! - [`event`]: [`Event`], a validated event, and its encoder to one shared [`bytes::Bytes`]
//!   frame ([`Event::encode`]), plus the comment, heartbeat and retry frames.
//! - [`parser`]: [`Parser`], a streaming parser following the WHATWG HTML rules for
//!   interpreting an event stream.

pub mod event;
pub mod parser;

pub use event::{Event, EventError, comment_frame, heartbeat_frame, retry_frame};
pub use parser::{Item, Limits, ParseError, ParsedEvent, Parser};
