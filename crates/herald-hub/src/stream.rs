//! [`SubscriptionStream`]: one subscriber's event stream, as an HTTP response body.
//!
//! The stream is transport-independent (HTTP/1.1, HTTP/2 and TLS all send it as a body). It
//! moves between two modes:
//! - *replay*: read history after `cursor` in batches, filter, send; when a read comes back
//!   short the stream has caught up and switches to live;
//! - *live*: take everything queued for the subscriber at once and send it as one chunk.
//!
//! The subscriber is registered before the first history read, so every update committed
//! after registration is queued for it, and every update committed before it is in history:
//! frames in the queue whose sequence number is at or below `cursor` were already replayed
//! and are skipped. Live delivery is thereby held back until replay is done, with no gap and
//! no duplicate. A queue overflow switches back to replay from `cursor`; if history no
//! longer reaches back that far, the stream closes with a `retry` hint so the client resumes
//! with `Last-Event-ID` and is told about the gap.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};

use crate::hub::Hub;
use crate::queue::{CloseReason, Drained, NO_SEQ};
use crate::store::StoreError;
use crate::subscriber::Subscriber;
use crate::update::Update;

/// Largest chunk built by joining queued frames; bounds the copy per write.
const MAX_CHUNK: usize = 64 * 1024;

/// The event type of the notice sent when a resume id is no longer in history.
pub const HISTORY_GAP_EVENT: &str = "herald-history-gap";

type Read = Pin<Box<dyn Future<Output = Result<Vec<Arc<Update>>, StoreError>> + Send>>;

/// Where the stream is reading from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// Replaying history after `after`; with `contiguous`, the first update read must be
    /// `after + 1`, otherwise history was trimmed past it and updates would be skipped.
    Replay { after: u64, contiguous: bool },
}

enum Mode {
    Replay {
        read: Option<Read>,
        contiguous: bool,
    },
    Live,
}

/// A subscriber's event stream. Dropping it unregisters the subscriber.
pub struct SubscriptionStream {
    hub: Hub,
    subscriber: Arc<Subscriber>,
    /// Sequence number of the last update sent or skipped by this stream.
    cursor: u64,
    mode: Mode,
    /// Frames ready to be written, oldest first.
    ready: VecDeque<Bytes>,
    /// No more frames after `ready` drains.
    finished: bool,
    /// Close (as ended) once replay has caught up instead of going live: the client is
    /// catching up on a stream that was ended while it was away.
    end_after_replay: bool,
}

impl std::fmt::Debug for SubscriptionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionStream")
            .field("subscriber", &self.subscriber.id)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl SubscriptionStream {
    pub(crate) fn new(hub: Hub, subscriber: Arc<Subscriber>, head: u64) -> Self {
        let retry = hub.config().retry.as_millis() as u64;
        let mut ready = VecDeque::new();
        // The first bytes tell the client how long to wait before reconnecting, and make
        // proxies and clients see the stream open at once.
        ready.push_back(herald_wire::retry_frame(retry));
        Self {
            hub,
            subscriber,
            cursor: head,
            mode: Mode::Live,
            ready,
            finished: false,
            end_after_replay: false,
        }
    }

    /// Makes the stream close, as ended, once replay has caught up.
    pub(crate) fn end_after_replay(&mut self) {
        self.end_after_replay = true;
    }

    pub(crate) fn set_cursor(&mut self, cursor: Cursor) {
        let Cursor::Replay { after, contiguous } = cursor;
        self.cursor = after;
        self.mode = Mode::Replay {
            read: None,
            contiguous,
        };
    }

    /// Queues the documented notice that `requested` is not in history, so everything
    /// retained is sent instead.
    pub(crate) fn notify_history_gap(&mut self, requested: &str) {
        let data = serde_json::json!({ "requested": requested, "resumed_from": "earliest" });
        let frame = herald_wire::Event::new()
            .with_event(HISTORY_GAP_EVENT)
            .map(|event| event.with_data(data.to_string()).encode());
        if let Ok(frame) = frame {
            self.ready.push_back(frame);
        }
    }

    /// The subscriber behind this stream.
    pub fn subscriber(&self) -> &Subscriber {
        &self.subscriber
    }

    /// Joins the ready frames into one chunk (one copy, then one write) or hands out the
    /// single frame as it is (no copy).
    fn take_chunk(&mut self) -> Option<Bytes> {
        let first = self.ready.pop_front()?;
        if self.ready.is_empty() {
            return Some(first);
        }
        let mut len = first.len();
        let mut count = 0;
        for frame in &self.ready {
            if len + frame.len() > MAX_CHUNK {
                break;
            }
            len += frame.len();
            count += 1;
        }
        if count == 0 {
            return Some(first);
        }
        let mut chunk = BytesMut::with_capacity(len);
        chunk.extend_from_slice(&first);
        for frame in self.ready.drain(..count) {
            chunk.extend_from_slice(&frame);
        }
        Some(chunk.freeze())
    }

    fn close(&mut self, reason: CloseReason) {
        match reason {
            CloseReason::Ended(final_frame) => {
                if let Some(frame) = final_frame {
                    self.ready.push_back(frame);
                }
            }
            CloseReason::TokenExpired
            | CloseReason::MaxAge
            | CloseReason::Shutdown
            | CloseReason::Lagged => {
                let retry = self.hub.config().retry.as_millis() as u64;
                self.ready.push_back(herald_wire::retry_frame(retry));
            }
        }
        self.finished = true;
    }

    /// Advances replay or live delivery; `Poll::Pending` when there is nothing to send.
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if !self.ready.is_empty() || self.finished {
                return Poll::Ready(());
            }
            match &mut self.mode {
                Mode::Replay { read, contiguous } => {
                    if self.subscriber.queue.is_closed() {
                        // Closing wins over catching up (shutdown, expired token).
                        self.mode = Mode::Live;
                        continue;
                    }
                    let batch = self.hub.config().replay_batch;
                    let read = read.get_or_insert_with(|| {
                        let store = self.hub.store().clone();
                        let after = self.cursor;
                        Box::pin(async move { store.read_after(after, batch).await })
                    });
                    let result = match read.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(result) => result,
                    };
                    let must_be_contiguous = *contiguous;
                    self.mode = Mode::Replay {
                        read: None,
                        contiguous: true,
                    };
                    match result {
                        Ok(updates) => {
                            if must_be_contiguous
                                && updates
                                    .first()
                                    .is_some_and(|first| first.seq != self.cursor + 1)
                            {
                                self.close(CloseReason::Lagged);
                                continue;
                            }
                            let caught_up = updates.len() < batch;
                            for update in &updates {
                                self.cursor = update.seq;
                                if self.subscriber.wants(update) {
                                    self.ready.push_back(update.frame.clone());
                                }
                            }
                            if caught_up && self.end_after_replay {
                                self.close(CloseReason::Ended(None));
                            } else if caught_up {
                                self.mode = Mode::Live;
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, subscriber = %self.subscriber.id, "replay failed");
                            self.close(CloseReason::Lagged);
                        }
                    }
                }
                Mode::Live => match self.subscriber.queue.drain(cx.waker()) {
                    Drained::Frames(frames) => {
                        for (seq, frame) in frames {
                            if seq == NO_SEQ {
                                self.ready.push_back(frame);
                            } else if seq > self.cursor {
                                self.cursor = seq;
                                self.ready.push_back(frame);
                            }
                        }
                    }
                    Drained::Empty => return Poll::Pending,
                    Drained::Overflowed => {
                        self.hub.stats().overflows.fetch_add(1, Ordering::Relaxed);
                        self.mode = Mode::Replay {
                            read: None,
                            contiguous: true,
                        };
                    }
                    Drained::Closed(reason) => self.close(reason),
                },
            }
        }
    }
}

impl Body for SubscriptionStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.ready.is_empty() {
            if this.finished {
                return Poll::Ready(None);
            }
            if this.poll_more(cx).is_pending() {
                return Poll::Pending;
            }
        }
        Poll::Ready(this.take_chunk().map(|chunk| Ok(Frame::data(chunk))))
    }
}

impl futures_util::Stream for SubscriptionStream {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match self.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(frame.into_data().ok()),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for SubscriptionStream {
    fn drop(&mut self) {
        self.hub.unregister(self.subscriber.key);
    }
}
