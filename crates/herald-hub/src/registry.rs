//! [`Registry`]: who listens to what, indexed for fan-out.
//!
//! Exact selectors (the common case: one topic per page, per user, per session) are kept in
//! a hash map from topic to subscribers, so an update finds them with one lookup per topic.
//! Every other selector (URL patterns, URI templates, the `*` wildcard) is grouped by its
//! pattern text: subscribers sharing a pattern share one entry, and each entry caches its
//! verdict per topic so a pattern is evaluated once per topic, not once per update and
//! subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;

use crate::selector::{MatcherType, Selector};
use crate::subscriber::Subscriber;
use crate::update::Update;

/// Most topics remembered per pattern before its cache is cleared (bounds memory when
/// topics are unbounded, e.g. one per upload session).
const PATTERN_CACHE_LIMIT: usize = 4096;

type Subscribers = IndexMap<u64, Arc<Subscriber>>;

/// Subscribers sharing one non-exact selector.
#[derive(Debug)]
struct PatternEntry {
    selector: Selector,
    subscribers: Subscribers,
    /// topic → does `selector` match it.
    verdicts: Mutex<HashMap<String, bool>>,
}

impl PatternEntry {
    fn matches(&self, topic: &str) -> bool {
        if self.selector.is_wildcard() {
            return true;
        }
        let mut verdicts = self
            .verdicts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&verdict) = verdicts.get(topic) {
            return verdict;
        }
        let verdict = self.selector.matches(topic);
        if verdicts.len() >= PATTERN_CACHE_LIMIT {
            verdicts.clear();
        }
        verdicts.insert(topic.to_owned(), verdict);
        verdict
    }
}

/// Every connected subscriber, indexed by what it listens to.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    all: Subscribers,
    exact: HashMap<String, Subscribers>,
    patterns: HashMap<(MatcherType, String), PatternEntry>,
}

impl Registry {
    pub(crate) fn insert(&mut self, subscriber: Arc<Subscriber>) {
        let key = subscriber.key;
        for subscription in &subscriber.subscriptions {
            let selector = &subscription.selector;
            match selector.as_exact() {
                Some(topic) => {
                    self.exact
                        .entry(topic.to_owned())
                        .or_default()
                        .insert(key, subscriber.clone());
                }
                None => {
                    self.patterns
                        .entry((selector.matcher_type(), selector.raw().to_owned()))
                        .or_insert_with(|| PatternEntry {
                            selector: selector.clone(),
                            subscribers: Subscribers::default(),
                            verdicts: Mutex::new(HashMap::new()),
                        })
                        .subscribers
                        .insert(key, subscriber.clone());
                }
            }
        }
        self.all.insert(key, subscriber);
    }

    pub(crate) fn remove(&mut self, key: u64) -> Option<Arc<Subscriber>> {
        let subscriber = self.all.swap_remove(&key)?;
        for subscription in &subscriber.subscriptions {
            let selector = &subscription.selector;
            match selector.as_exact() {
                Some(topic) => {
                    if let Some(subscribers) = self.exact.get_mut(topic) {
                        subscribers.swap_remove(&key);
                        if subscribers.is_empty() {
                            self.exact.remove(topic);
                        }
                    }
                }
                None => {
                    let pattern = (selector.matcher_type(), selector.raw().to_owned());
                    if let Some(entry) = self.patterns.get_mut(&pattern) {
                        entry.subscribers.swap_remove(&key);
                        if entry.subscribers.is_empty() {
                            self.patterns.remove(&pattern);
                        }
                    }
                }
            }
        }
        Some(subscriber)
    }

    /// Pushes `update` to every subscriber that wants it; returns how many received it.
    pub(crate) fn dispatch(&self, update: &Update) -> usize {
        let mut delivered = 0;
        let mut deliver = |subscriber: &Arc<Subscriber>| {
            // The queue ignores a sequence number it has already seen, so a subscriber
            // matching two topics of the update (or two selectors) gets it once.
            if subscriber.may_read(update) && subscriber.queue.push(update.seq, &update.frame) {
                delivered += 1;
            }
        };
        for topic in &update.topics {
            if let Some(subscribers) = self.exact.get(topic) {
                subscribers.values().for_each(&mut deliver);
            }
        }
        for entry in self.patterns.values() {
            if update.topics.iter().any(|topic| entry.matches(topic)) {
                entry.subscribers.values().for_each(&mut deliver);
            }
        }
        delivered
    }

    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }

    pub(crate) fn subscribers(&self) -> impl Iterator<Item = &Arc<Subscriber>> {
        self.all.values()
    }

    /// Distinct exact topics plus distinct patterns currently listened to.
    pub(crate) fn topic_count(&self) -> usize {
        self.exact.len() + self.patterns.len()
    }
}
