//! [`Event`]: one event received from a stream.

use herald_wire::ParsedEvent;

/// One event received from an event stream.
///
/// The fields follow the `MessageEvent` a browser's `EventSource` dispatches: `id` is the last
/// event id when the event was dispatched (it carries over from earlier events, empty if the
/// stream never set one), `event` is the type (`message` unless the stream named one), and
/// `data` is the `data` lines joined by LF.
///
/// ```
/// use herald_client::Event;
/// use herald_wire::{Item, Parser};
///
/// let mut parser = Parser::new();
/// parser.feed(b"id: 7\nevent: ping\ndata: a\ndata: b\n\n");
/// let Some(Ok(Item::Event(parsed))) = parser.next_item() else { panic!("an event") };
/// let event = Event::from(parsed);
/// assert_eq!(event, Event { id: "7".into(), event: "ping".into(), data: "a\nb".into() });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Event {
    /// The last event id at dispatch; what the client resends as `Last-Event-ID`.
    pub id: String,
    /// The event type: the `event` field, or `message`.
    pub event: String,
    /// The data: the `data` field values joined by LF.
    pub data: String,
}

impl From<ParsedEvent> for Event {
    fn from(parsed: ParsedEvent) -> Self {
        Event {
            id: parsed.id,
            event: parsed.event,
            data: parsed.data,
        }
    }
}
