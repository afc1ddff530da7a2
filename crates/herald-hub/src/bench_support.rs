//! Hub internals for the fan-out micro-benchmark (`benches/fanout.rs`), hidden from the docs
//! and not part of the API.
//!
//! [`FanoutBench`] drives the subscriber registry and the subscriber queues exactly as the
//! hub's committer and connections do, without sockets, a store or a runtime, so the
//! benchmark measures the hot path alone: match the update's topics against every
//! subscriber's selectors, check private updates against each token, and push the shared frame
//! onto each queue.

use std::sync::Arc;
use std::task::Waker;

use crate::auth::Claims;
use crate::config::HubConfig;
use crate::queue::{Drained, SubscriberQueue};
use crate::registry::Registry;
use crate::selector::Selector;
use crate::subscriber::{Subscriber, Subscription};
use crate::update::Update;

/// A registry of subscribers with real queues, and nothing else.
#[derive(Debug, Default)]
pub struct FanoutBench {
    registry: Registry,
    /// Every subscriber, to drain their queues between iterations.
    subscribers: Vec<Arc<Subscriber>>,
}

impl FanoutBench {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a subscriber listening to `selectors`, holding `claims` if it presented a token.
    /// Its queue has the hub's default limits.
    pub fn subscribe(&mut self, selectors: Vec<Selector>, claims: Option<Claims>) {
        let defaults = HubConfig::new("http://127.0.0.1".parse().expect("a valid URL"));
        let key = self.subscribers.len() as u64 + 1;
        let subscriber = Arc::new(Subscriber {
            key,
            id: format!("urn:uuid:bench-{key}"),
            subscriptions: selectors
                .into_iter()
                .map(|selector| Subscription {
                    selector,
                    payload: None,
                    legacy: false,
                })
                .collect(),
            claims: claims.map(Arc::new),
            queue: SubscriberQueue::new(defaults.queue_frames, defaults.queue_bytes),
            deadline: None,
        });
        self.registry.insert(Arc::clone(&subscriber));
        self.subscribers.push(subscriber);
    }

    /// What the hub does with a committed update: finds every subscriber that wants it and
    /// queues its frame. Returns how many subscribers received it. `update.seq` must grow
    /// from one call to the next (queues ignore sequence numbers they have seen).
    pub fn dispatch(&self, update: &Update) -> usize {
        self.registry.dispatch(update)
    }

    /// What the connections do next: take every queued frame. Returns how many were taken.
    pub fn drain(&self) -> usize {
        self.subscribers
            .iter()
            .map(|subscriber| match subscriber.queue.drain(Waker::noop()) {
                Drained::Frames(frames) => frames.len(),
                _ => 0,
            })
            .sum()
    }
}
