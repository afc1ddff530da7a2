//! [`Update`]: one published update, encoded once.

use bytes::Bytes;
use herald_wire::{Event, EventError};

/// A published update as the hub keeps it: routing metadata plus the wire frame.
///
/// The frame is encoded once when the update is created and shared, as a cheap [`Bytes`]
/// clone, by every subscriber it reaches and by every replay from history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Position in the hub-wide sequence, assigned by the history store on append
    /// (`0` until then). Resume, replay and de-duplication all order by it.
    pub seq: u64,
    /// The event id subscribers see and send back in `Last-Event-ID`.
    pub id: String,
    /// The canonical topic first, then the alternate topics.
    pub topics: Vec<String>,
    /// Private updates reach only subscribers whose token grants one of `topics`.
    pub private: bool,
    /// The encoded SSE frame (`id`, `event`, `retry`, `data` fields).
    pub frame: Bytes,
}

/// The fields a publisher sends, before the frame is encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateFields {
    /// Event id; the hub generates one when it is absent.
    pub id: String,
    /// Canonical topic first, then alternates.
    pub topics: Vec<String>,
    /// The update's `private` flag.
    pub private: bool,
    /// SSE `event` type.
    pub event_type: Option<String>,
    /// SSE `data`.
    pub data: String,
    /// SSE `retry`, milliseconds.
    pub retry: Option<u64>,
}

impl Update {
    /// Encodes the frame for `fields`. The id and type must already be validated; a value
    /// that would inject SSE fields is still refused here rather than written.
    ///
    /// ```
    /// use herald_hub::update::{Update, UpdateFields};
    /// let update = Update::encode(UpdateFields {
    ///     id: "1".into(),
    ///     topics: vec!["https://example.com/a".into()],
    ///     data: "hi".into(),
    ///     ..Default::default()
    /// })?;
    /// assert_eq!(&update.frame[..], b"id: 1\ndata: hi\n\n");
    /// # Ok::<(), herald_wire::EventError>(())
    /// ```
    pub fn encode(fields: UpdateFields) -> Result<Update, EventError> {
        let mut event = Event::new().with_id(fields.id.as_str())?;
        if let Some(event_type) = &fields.event_type {
            event = event.with_event(event_type.as_str())?;
        }
        if let Some(retry) = fields.retry {
            event = event.with_retry(retry);
        }
        let frame = event.with_data(fields.data).encode();
        Ok(Update {
            seq: 0,
            id: fields.id,
            topics: fields.topics,
            private: fields.private,
            frame,
        })
    }
}
