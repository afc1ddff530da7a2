//! [`SubscriberQueue`]: the bounded hand-off between fan-out and one subscriber's connection.
//!
//! Fan-out pushes shared frames (cheap [`Bytes`] clones) tagged with the update's sequence
//! number; the connection takes everything queued at once so it can write it in one go.
//! A full queue never blocks the publisher and never grows: the queued frames are dropped and
//! the queue is marked *overflowed*, and the connection catches up from the history store
//! from the last sequence number it delivered (see `stream.rs`). Slow subscribers therefore
//! cost the others nothing.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::Waker;

use bytes::Bytes;

/// Sequence number used for frames that are not updates (heartbeats, notices).
pub(crate) const NO_SEQ: u64 = 0;

/// Why a subscriber's stream is being closed by the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The subscriber's access token expired.
    TokenExpired,
    /// The connection reached the configured maximum age.
    MaxAge,
    /// The hub is shutting down.
    Shutdown,
    /// A publisher ended the topic; the frame, if any, is the final event to send.
    Ended(Option<Bytes>),
    /// The subscriber fell behind further than the retained history reaches.
    Lagged,
}

/// What a subscriber's queue holds at one instant ([`Subscriber::queue_held`]).
///
/// [`Subscriber::queue_held`]: crate::subscriber::Subscriber::queue_held
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueHeld {
    /// Frames waiting for the connection.
    pub frames: usize,
    /// Bytes in those frames (bounded by [`HubConfig::queue_bytes`](crate::HubConfig)).
    pub bytes: usize,
    /// The queue overflowed and holds nothing more: the connection will catch up from
    /// history when it next reads, or be closed if history no longer reaches back.
    pub overflowed: bool,
}

/// What the connection finds when it looks at its queue.
#[derive(Debug)]
pub(crate) enum Drained {
    /// Frames to write, in order; each with its update's sequence number.
    Frames(VecDeque<(u64, Bytes)>),
    /// Nothing yet; the waker was stored and will be woken on the next push or close.
    Empty,
    /// Frames were dropped because the queue was full: catch up from the store.
    Overflowed,
    /// The hub closed the stream.
    Closed(CloseReason),
}

#[derive(Debug, Default)]
struct QueueState {
    /// Frames waiting for the connection, oldest first.
    frames: VecDeque<(u64, Bytes)>,
    /// Bytes held in `frames`, compared with the byte limit.
    bytes: usize,
    /// Highest sequence number pushed, so an update reaching the subscriber through two of
    /// its topics is queued once.
    last_seq: u64,
    /// Set when frames were dropped; cleared when the connection notices.
    overflowed: bool,
    /// Set once; the connection ends after writing what is queued.
    closed: Option<CloseReason>,
    /// Set by every push; cleared by the heartbeat sweep, which only pings idle queues.
    active: bool,
    /// The connection task waiting for frames.
    waker: Option<Waker>,
}

/// A bounded multi-producer, single-consumer queue of shared frames.
#[derive(Debug)]
pub(crate) struct SubscriberQueue {
    state: Mutex<QueueState>,
    /// Most frames held before the queue overflows.
    max_frames: usize,
    /// Most bytes held before the queue overflows.
    max_bytes: usize,
}

impl SubscriberQueue {
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            max_frames,
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // A panic while holding this lock cannot leave the state inconsistent (every
        // mutation is a single field update), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues an update frame; returns `false` when it was a duplicate or the queue is closed.
    pub(crate) fn push(&self, seq: u64, frame: &Bytes) -> bool {
        let waker = {
            let mut state = self.lock();
            if state.closed.is_some() || seq <= state.last_seq {
                return false;
            }
            state.last_seq = seq;
            state.active = true;
            if state.overflowed {
                // Already catching up from the store, which will include this update.
            } else if state.frames.len() >= self.max_frames
                || state.bytes + frame.len() > self.max_bytes
            {
                state.frames.clear();
                state.bytes = 0;
                state.overflowed = true;
            } else {
                state.bytes += frame.len();
                state.frames.push_back((seq, frame.clone()));
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Queues a heartbeat if nothing was pushed since the previous sweep.
    pub(crate) fn heartbeat_if_idle(&self, frame: &Bytes) {
        let waker = {
            let mut state = self.lock();
            if state.closed.is_some() || std::mem::take(&mut state.active) {
                return;
            }
            if state.frames.is_empty() && !state.overflowed {
                state.bytes += frame.len();
                state.frames.push_back((NO_SEQ, frame.clone()));
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Closes the stream; the first reason wins.
    pub(crate) fn close(&self, reason: CloseReason) {
        let waker = {
            let mut state = self.lock();
            if state.closed.is_none() {
                state.closed = Some(reason);
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// What is held now, for diagnostics and tests.
    pub(crate) fn held(&self) -> QueueHeld {
        let state = self.lock();
        QueueHeld {
            frames: state.frames.len(),
            bytes: state.bytes,
            overflowed: state.overflowed,
        }
    }

    /// Whether the stream was closed by the hub.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Takes everything queued, or registers `waker` to be woken when there is something.
    ///
    /// Queued frames are handed out before a close, so a final event published just before
    /// the stream ends is still delivered.
    pub(crate) fn drain(&self, waker: &Waker) -> Drained {
        let mut state = self.lock();
        if state.overflowed {
            state.overflowed = false;
            return Drained::Overflowed;
        }
        if !state.frames.is_empty() {
            state.bytes = 0;
            return Drained::Frames(std::mem::take(&mut state.frames));
        }
        if let Some(reason) = &state.closed {
            return Drained::Closed(reason.clone());
        }
        match &state.waker {
            Some(existing) if existing.will_wake(waker) => {}
            _ => state.waker = Some(waker.clone()),
        }
        Drained::Empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn frames(drained: Drained) -> Vec<u64> {
        match drained {
            Drained::Frames(frames) => frames.into_iter().map(|(seq, _)| seq).collect(),
            other => panic!("expected frames, got {other:?}"),
        }
    }

    #[test]
    fn duplicate_sequence_is_queued_once() {
        let queue = SubscriberQueue::new(10, 1 << 20);
        let frame = Bytes::from_static(b"data: x\n\n");
        assert!(queue.push(1, &frame));
        assert!(!queue.push(1, &frame));
        assert!(queue.push(2, &frame));
        assert_eq!(frames(queue.drain(Waker::noop())), vec![1, 2]);
    }

    #[test]
    fn full_queue_overflows_instead_of_growing() {
        let queue = SubscriberQueue::new(2, 1 << 20);
        let frame = Bytes::from_static(b"data: x\n\n");
        for seq in 1..=5 {
            queue.push(seq, &frame);
        }
        assert!(matches!(queue.drain(Waker::noop()), Drained::Overflowed));
        assert!(matches!(queue.drain(Waker::noop()), Drained::Empty));
        queue.push(6, &frame);
        assert_eq!(frames(queue.drain(Waker::noop())), vec![6]);
    }

    #[test]
    fn an_overflowed_queue_holds_nothing_until_drained() {
        let queue = SubscriberQueue::new(2, 1 << 20);
        let frame = Bytes::from_static(b"data: x\n\n");
        queue.push(1, &frame);
        assert_eq!(
            queue.held(),
            QueueHeld {
                frames: 1,
                bytes: frame.len(),
                overflowed: false
            }
        );
        for seq in 2..=100 {
            queue.push(seq, &frame);
        }
        assert_eq!(
            queue.held(),
            QueueHeld {
                frames: 0,
                bytes: 0,
                overflowed: true
            }
        );
    }

    #[test]
    fn byte_limit_overflows_too() {
        let queue = SubscriberQueue::new(100, 10);
        let frame = Bytes::from_static(b"data: 0123456789\n\n");
        queue.push(1, &frame);
        assert!(matches!(queue.drain(Waker::noop()), Drained::Overflowed));
    }

    #[test]
    fn queued_frames_are_delivered_before_close() {
        let queue = SubscriberQueue::new(10, 1 << 20);
        let frame = Bytes::from_static(b"data: x\n\n");
        queue.push(1, &frame);
        queue.close(CloseReason::Shutdown);
        assert!(!queue.push(2, &frame));
        assert_eq!(frames(queue.drain(Waker::noop())), vec![1]);
        assert!(matches!(
            queue.drain(Waker::noop()),
            Drained::Closed(CloseReason::Shutdown)
        ));
    }

    #[test]
    fn heartbeat_only_reaches_idle_queues() {
        let queue = SubscriberQueue::new(10, 1 << 20);
        let heartbeat = Bytes::from_static(b":\n");
        queue.push(1, &Bytes::from_static(b"data: x\n\n"));
        queue.heartbeat_if_idle(&heartbeat); // active since last sweep: no ping
        assert_eq!(frames(queue.drain(Waker::noop())), vec![1]);
        queue.heartbeat_if_idle(&heartbeat); // idle now
        assert_eq!(frames(queue.drain(Waker::noop())), vec![NO_SEQ]);
    }
}
