//! [`MemoryStore`]: a bounded in-memory ring of recent updates (tests, `--memory`).
//!
//! Nothing survives a restart. Sequence numbers start at 1 in every process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Bounds, HistoryStore, StoreFuture};
use crate::update::Update;

/// History kept in memory: the newest `history_size` updates, with an id index.
///
/// Every operation takes one `std::sync::Mutex` for a few hash and ring operations and never
/// holds it across an `.await` (the futures are ready before they are returned), so a plain
/// mutex is cheaper than an async one and cannot deadlock the runtime.
///
/// ```
/// use herald_hub::store::{HistoryStore, memory::MemoryStore};
/// use herald_hub::update::{Update, UpdateFields};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new(100);
/// let update = Update::encode(UpdateFields { id: "a".into(), data: "hi".into(), ..Default::default() })?;
/// let stored = store.append(vec![update]).await?;
/// assert_eq!(stored[0].seq, 1);
/// assert_eq!(store.position("a").await?, Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    /// The ring and its index, changed together under one lock so a reader never sees an
    /// update without its index entry or the reverse.
    ring: Mutex<Ring>,
}

/// The retained updates and the id index over them.
#[derive(Debug)]
struct Ring {
    /// How many updates to keep; older ones are dropped on append.
    history_size: usize,
    /// Retained updates, oldest first. Their seqs are consecutive, so the update with seq `s`
    /// sits at index `s - front.seq`: `read_after` starts without a search.
    updates: VecDeque<Arc<Update>>,
    /// Id → seq, so `position` is one hash lookup.
    ids: IdIndex,
    /// Seq of the newest update ever appended (`0` before the first), which keeps advancing
    /// even when `history_size` is 0 and nothing is retained.
    last: u64,
}

impl MemoryStore {
    /// A store that keeps the newest `history_size` updates (`0` keeps none, though sequence
    /// numbers and [`Bounds::last`] still advance).
    pub fn new(history_size: usize) -> MemoryStore {
        MemoryStore {
            ring: Mutex::new(Ring {
                history_size,
                // Capped: a huge `history_size` must not reserve memory it may never use.
                updates: VecDeque::with_capacity(history_size.min(1024)),
                ids: IdIndex::default(),
                last: 0,
            }),
        }
    }

    /// Locks the ring. A panic while it was held cannot leave it half-changed in a way that
    /// breaks later calls (each push or trim step is complete before the next), so a poisoned
    /// lock is taken over rather than turned into an error for every later caller.
    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Ring {
    /// Assigns the next seq to `update` and retains it, indexing its id.
    fn push(&mut self, mut update: Update) -> Arc<Update> {
        self.last += 1;
        update.seq = self.last;
        self.ids.insert(&update.id, update.seq);
        let update = Arc::new(update);
        self.updates.push_back(Arc::clone(&update));
        update
    }

    /// Drops the oldest updates beyond `history_size`, and the index entries pointing at
    /// them.
    fn trim(&mut self) {
        while self.updates.len() > self.history_size {
            let Some(oldest) = self.updates.pop_front() else {
                break;
            };
            self.ids.remove_earliest(&oldest.id, oldest.seq);
        }
    }

    fn bounds(&self) -> Bounds {
        let newest = self.updates.back().filter(|newest| newest.seq == self.last);
        Bounds {
            oldest: self.updates.front().map(|oldest| oldest.seq),
            last: self.last,
            last_id: newest.map(|newest| newest.id.clone()),
        }
    }

    fn read_after(&self, after: u64, limit: usize) -> Vec<Arc<Update>> {
        let Some(front) = self.updates.front() else {
            return Vec::new();
        };
        // Seqs are consecutive, so the first update after `after` is at a computed index.
        let start = usize::try_from(after.saturating_add(1).saturating_sub(front.seq))
            .unwrap_or(usize::MAX);
        self.updates
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect()
    }
}

/// Id → the earliest retained seq with that id, for stores whose records are ordered by seq
/// and trimmed oldest first (this ring, and the redb store, which keeps its index in memory).
///
/// The Mercure spec resolves a reused id to its first update. When that update is trimmed,
/// the id resolves to its next retained occurrence (a subscriber that saw the later one can
/// still resume), found through a chain instead of a scan.
#[derive(Debug, Default)]
pub(super) struct IdIndex {
    /// Id → where it occurs.
    ids: HashMap<String, Occurrences>,
    /// For an update whose id appears again later: seq → seq of the next update with the same
    /// id. Only reused ids get an entry, so the common case (unique ids) costs nothing here.
    next_same_id: HashMap<u64, u64>,
}

/// Where one id occurs among the retained updates.
#[derive(Debug, Clone, Copy)]
struct Occurrences {
    /// The earliest retained update with this id: what `position` answers.
    first: u64,
    /// The newest, so a new occurrence can be chained after it.
    last: u64,
}

impl IdIndex {
    /// Records that the update `seq`, newer than every indexed one, has `id`.
    pub(super) fn insert(&mut self, id: &str, seq: u64) {
        match self.ids.get_mut(id) {
            Some(occurrences) => {
                self.next_same_id.insert(occurrences.last, seq);
                occurrences.last = seq;
            }
            None => {
                let occurrences = Occurrences {
                    first: seq,
                    last: seq,
                };
                self.ids.insert(id.to_owned(), occurrences);
            }
        }
    }

    /// The earliest retained seq with `id`.
    pub(super) fn first(&self, id: &str) -> Option<u64> {
        self.ids.get(id).map(|occurrences| occurrences.first)
    }

    /// Forgets the update `seq` with `id`, which is being trimmed. Trimming goes oldest first,
    /// so it is the earliest occurrence of its id; anything else is ignored.
    pub(super) fn remove_earliest(&mut self, id: &str, seq: u64) {
        let Some(occurrences) = self.ids.get_mut(id) else {
            return;
        };
        if occurrences.first != seq {
            return;
        }
        match self.next_same_id.remove(&seq) {
            Some(next) => occurrences.first = next,
            None => {
                self.ids.remove(id);
            }
        }
    }

    /// Forgets the trimmed update `seq` whose id is unknown (its record could not be decoded).
    /// A scan of the whole index, for that rare case only.
    pub(super) fn remove_earliest_seq(&mut self, seq: u64) {
        let id = self
            .ids
            .iter()
            .find(|(_, occurrences)| occurrences.first == seq)
            .map(|(id, _)| id.clone());
        if let Some(id) = id {
            self.remove_earliest(&id, seq);
        }
    }

    /// How many distinct ids are indexed.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }
}

impl HistoryStore for MemoryStore {
    fn append(&self, updates: Vec<Update>) -> StoreFuture<'_, Vec<Arc<Update>>> {
        let mut ring = self.lock();
        let stored: Vec<Arc<Update>> = updates
            .into_iter()
            .map(|update| ring.push(update))
            .collect();
        ring.trim();
        drop(ring);
        Box::pin(std::future::ready(Ok(stored)))
    }

    fn position<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<u64>> {
        let first = self.lock().ids.first(id);
        Box::pin(std::future::ready(Ok(first)))
    }

    fn read_after(&self, after: u64, limit: usize) -> StoreFuture<'_, Vec<Arc<Update>>> {
        let updates = self.lock().read_after(after, limit);
        Box::pin(std::future::ready(Ok(updates)))
    }

    fn bounds(&self) -> StoreFuture<'_, Bounds> {
        let bounds = self.lock().bounds();
        Box::pin(std::future::ready(Ok(bounds)))
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// The [`HistoryStore`] contract as tests, written once and run against every store.
///
/// Each check takes a store built with the `history_size` its doc names. A store's test
/// module instantiates them all with [`history_store_conformance!`](crate::store::memory::conformance::history_store_conformance),
/// given a closure `|history_size| (store, guard)`; the guard (a temp dir, a connection)
/// lives as long as the test.
#[cfg(test)]
pub(crate) mod conformance {
    use std::sync::Arc;

    use bytes::Bytes;

    use crate::store::{Bounds, HistoryStore};
    use crate::update::Update;

    /// Generates one `#[tokio::test]` per check for the store built by `$make`.
    macro_rules! history_store_conformance {
        ($make:expr) => {
            #[tokio::test]
            async fn append_assigns_consecutive_seqs() {
                let (store, _guard) = ($make)(100);
                $crate::store::memory::conformance::append_assigns_consecutive_seqs(store).await;
            }
            #[tokio::test]
            async fn append_keeps_every_field() {
                let (store, _guard) = ($make)(100);
                $crate::store::memory::conformance::append_keeps_every_field(store).await;
            }
            #[tokio::test]
            async fn read_after_is_ordered_and_limited() {
                let (store, _guard) = ($make)(100);
                $crate::store::memory::conformance::read_after_is_ordered_and_limited(store).await;
            }
            #[tokio::test]
            async fn position_of_reused_id_is_earliest() {
                let (store, _guard) = ($make)(100);
                $crate::store::memory::conformance::position_of_reused_id_is_earliest(store).await;
            }
            #[tokio::test]
            async fn trim_drops_oldest_and_their_ids() {
                let (store, _guard) = ($make)(3);
                $crate::store::memory::conformance::trim_drops_oldest_and_their_ids(store).await;
            }
            #[tokio::test]
            async fn trimmed_first_occurrence_hands_id_to_next() {
                let (store, _guard) = ($make)(3);
                $crate::store::memory::conformance::trimmed_first_occurrence_hands_id_to_next(
                    store,
                )
                .await;
            }
            #[tokio::test]
            async fn bounds_track_both_ends() {
                let (store, _guard) = ($make)(3);
                $crate::store::memory::conformance::bounds_track_both_ends(store).await;
            }
            #[tokio::test]
            async fn history_size_zero_keeps_nothing() {
                let (store, _guard) = ($make)(0);
                $crate::store::memory::conformance::history_size_zero_keeps_nothing(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reads_during_appends_see_consistent_history() {
                let (store, _guard) = ($make)(50);
                $crate::store::memory::conformance::reads_during_appends_see_consistent_history(
                    store,
                )
                .await;
            }
        };
    }
    pub(crate) use history_store_conformance;

    /// An update as a publisher hands it to the store (seq 0).
    pub(crate) fn update(id: &str) -> Update {
        Update {
            seq: 0,
            id: id.to_owned(),
            topics: vec![format!("https://example.com/{id}")],
            private: false,
            frame: Bytes::from(format!("id: {id}\ndata: x\n\n")),
        }
    }

    /// Appends one update per id, in one batch.
    pub(crate) async fn append_ids(store: &impl HistoryStore, ids: &[&str]) -> Vec<Arc<Update>> {
        let batch = ids.iter().map(|id| update(id)).collect();
        store.append(batch).await.expect("append")
    }

    fn seqs(updates: &[Arc<Update>]) -> Vec<u64> {
        updates.iter().map(|update| update.seq).collect()
    }

    fn ids(updates: &[Arc<Update>]) -> Vec<&str> {
        updates.iter().map(|update| update.id.as_str()).collect()
    }

    /// Any `history_size` ≥ 5.
    pub(crate) async fn append_assigns_consecutive_seqs(store: impl HistoryStore) {
        assert_eq!(seqs(&append_ids(&store, &["a", "b", "c"]).await), [1, 2, 3]);
        assert!(append_ids(&store, &[]).await.is_empty(), "empty batch");
        assert_eq!(seqs(&append_ids(&store, &["d", "e"]).await), [4, 5]);
    }

    /// Any `history_size` ≥ 4.
    pub(crate) async fn append_keeps_every_field(store: impl HistoryStore) {
        let sent = vec![
            Update {
                seq: 0,
                id: "urn:uuid:é-1".into(),
                topics: vec!["https://example.com/books/1".into(), "urn:alt".into()],
                private: true,
                frame: Bytes::from_static(b"id: 1\nevent: x\ndata: a\ndata: b\n\n"),
            },
            Update {
                seq: 0,
                id: String::new(),
                topics: Vec::new(),
                private: false,
                frame: Bytes::new(),
            },
            Update {
                seq: 0,
                id: "big".into(),
                topics: vec!["t".repeat(5000)],
                private: false,
                frame: Bytes::from(vec![b'z'; 70_000]),
            },
        ];
        let stored = store.append(sent.clone()).await.expect("append");
        let read = store.read_after(0, 10).await.expect("read");
        for (index, sent) in sent.into_iter().enumerate() {
            let expected = Update {
                seq: index as u64 + 1,
                ..sent
            };
            assert_eq!(*stored[index], expected, "returned by append");
            assert_eq!(*read[index], expected, "read back");
        }
    }

    /// Any `history_size` ≥ 5.
    pub(crate) async fn read_after_is_ordered_and_limited(store: impl HistoryStore) {
        assert!(
            store.read_after(0, 10).await.expect("read").is_empty(),
            "empty store"
        );
        append_ids(&store, &["a", "b"]).await;
        append_ids(&store, &["c", "d", "e"]).await;
        let all = store.read_after(0, 100).await.expect("read");
        assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
        assert_eq!(ids(&all), ["a", "b", "c", "d", "e"]);
        assert_eq!(seqs(&store.read_after(1, 2).await.expect("read")), [2, 3]);
        assert_eq!(seqs(&store.read_after(3, 100).await.expect("read")), [4, 5]);
        assert!(
            store.read_after(5, 100).await.expect("read").is_empty(),
            "after last"
        );
        assert!(
            store.read_after(99, 100).await.expect("read").is_empty(),
            "beyond last"
        );
        assert!(
            store.read_after(0, 0).await.expect("read").is_empty(),
            "limit 0"
        );
    }

    /// Any `history_size` ≥ 5.
    pub(crate) async fn position_of_reused_id_is_earliest(store: impl HistoryStore) {
        append_ids(&store, &["a", "b", "a"]).await;
        append_ids(&store, &["b", "c"]).await;
        assert_eq!(store.position("a").await.expect("position"), Some(1));
        assert_eq!(store.position("b").await.expect("position"), Some(2));
        assert_eq!(store.position("c").await.expect("position"), Some(5));
        assert_eq!(store.position("zzz").await.expect("position"), None);
        assert_eq!(store.position("").await.expect("position"), None);
    }

    /// `history_size` = 3.
    pub(crate) async fn trim_drops_oldest_and_their_ids(store: impl HistoryStore) {
        append_ids(&store, &["a", "b"]).await;
        append_ids(&store, &["c", "d", "e"]).await;
        let retained = store.read_after(0, 100).await.expect("read");
        assert_eq!(ids(&retained), ["c", "d", "e"]);
        assert_eq!(seqs(&retained), [3, 4, 5]);
        for gone in ["a", "b"] {
            assert_eq!(
                store.position(gone).await.expect("position"),
                None,
                "{gone}"
            );
        }
        assert_eq!(store.position("c").await.expect("position"), Some(3));
        // A batch larger than the history keeps only its own tail.
        let stored = append_ids(&store, &["f", "g", "h", "i"]).await;
        assert_eq!(seqs(&stored), [6, 7, 8, 9], "every update is returned");
        assert_eq!(
            ids(&store.read_after(0, 100).await.expect("read")),
            ["g", "h", "i"]
        );
        assert_eq!(store.position("f").await.expect("position"), None);
        assert_eq!(store.position("c").await.expect("position"), None);
    }

    /// `history_size` = 3. When the first update with a reused id is trimmed, the id
    /// resolves to its next retained occurrence rather than vanishing: a subscriber that
    /// saw that later update can still resume from it.
    pub(crate) async fn trimmed_first_occurrence_hands_id_to_next(store: impl HistoryStore) {
        append_ids(&store, &["a", "b", "a"]).await;
        append_ids(&store, &["c"]).await;
        assert_eq!(store.position("a").await.expect("position"), Some(3));
        append_ids(&store, &["a"]).await;
        assert_eq!(store.position("a").await.expect("position"), Some(3));
        append_ids(&store, &["d", "e"]).await;
        assert_eq!(store.position("a").await.expect("position"), Some(5));
        append_ids(&store, &["f"]).await;
        assert_eq!(store.position("a").await.expect("position"), None);
    }

    /// `history_size` = 3.
    pub(crate) async fn bounds_track_both_ends(store: impl HistoryStore) {
        assert_eq!(store.bounds().await.expect("bounds"), Bounds::default());
        append_ids(&store, &["a", "b"]).await;
        let expected = Bounds {
            oldest: Some(1),
            last: 2,
            last_id: Some("b".into()),
        };
        assert_eq!(store.bounds().await.expect("bounds"), expected);
        append_ids(&store, &["c", "d"]).await;
        let expected = Bounds {
            oldest: Some(2),
            last: 4,
            last_id: Some("d".into()),
        };
        assert_eq!(store.bounds().await.expect("bounds"), expected);
    }

    /// `history_size` = 0.
    pub(crate) async fn history_size_zero_keeps_nothing(store: impl HistoryStore) {
        let stored = append_ids(&store, &["a", "b"]).await;
        assert_eq!(seqs(&stored), [1, 2], "seqs are still assigned");
        assert_eq!(seqs(&append_ids(&store, &["c"]).await), [3]);
        assert!(store.read_after(0, 100).await.expect("read").is_empty());
        assert_eq!(store.position("a").await.expect("position"), None);
        let expected = Bounds {
            oldest: None,
            last: 3,
            last_id: None,
        };
        assert_eq!(store.bounds().await.expect("bounds"), expected);
    }

    /// `history_size` = 50. One task appends while others read: every read sees a run of
    /// consecutive seqs inside the bounds, and bounds never go backwards.
    pub(crate) async fn reads_during_appends_see_consistent_history(store: impl HistoryStore) {
        const BATCHES: u64 = 40;
        const BATCH: u64 = 8;
        let store = Arc::new(store);
        let appender = tokio::spawn({
            let store = Arc::clone(&store);
            async move {
                for batch in 0..BATCHES {
                    let ids: Vec<String> = (0..BATCH).map(|i| format!("{batch}-{i}")).collect();
                    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                    append_ids(&*store, &ids).await;
                    tokio::task::yield_now().await;
                }
            }
        });
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut last_seen = 0;
                    loop {
                        let bounds = store.bounds().await.expect("bounds");
                        assert!(bounds.last >= last_seen, "bounds went backwards");
                        last_seen = bounds.last;
                        let read = store.read_after(0, 1000).await.expect("read");
                        for pair in read.windows(2) {
                            assert_eq!(pair[0].seq + 1, pair[1].seq, "gap or disorder");
                        }
                        assert!(read.len() <= 50, "more than history_size retained");
                        if let Some(newest) = read.last() {
                            assert!(newest.seq >= bounds.last, "read older than bounds");
                            let id = newest.id.as_str();
                            let position = store.position(id).await.expect("position");
                            // Unique ids: a newer append can only trim it, never move it.
                            assert!(
                                matches!(position, Some(seq) if seq == newest.seq)
                                    || position.is_none()
                            );
                        }
                        if last_seen == BATCHES * BATCH {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        appender.await.expect("appender");
        for reader in readers {
            reader.await.expect("reader");
        }
        let bounds = store.bounds().await.expect("bounds");
        assert_eq!(bounds.last, BATCHES * BATCH);
        assert_eq!(bounds.oldest, Some(BATCHES * BATCH - 49));
    }
}

#[cfg(test)]
mod tests {
    use super::conformance::history_store_conformance;
    use super::{IdIndex, MemoryStore};

    history_store_conformance!(|history_size| (MemoryStore::new(history_size), ()));

    #[test]
    fn id_of_an_unreadable_trimmed_update_is_found_by_seq() {
        let mut index = IdIndex::default();
        for (seq, id) in [(1, "a"), (2, "b"), (3, "a")] {
            index.insert(id, seq);
        }
        index.remove_earliest_seq(1);
        assert_eq!(index.first("a"), Some(3));
        index.remove_earliest_seq(2);
        assert_eq!(index.first("b"), None);
        index.remove_earliest_seq(99);
        // Not the earliest occurrence: ignored rather than breaking the chain.
        index.remove_earliest("a", 7);
        assert_eq!(index.first("a"), Some(3));
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn reused_ids_leave_no_links_behind() {
        let store = MemoryStore::new(2);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            for _ in 0..10 {
                super::conformance::append_ids(&store, &["a", "a", "b", "a"]).await;
            }
        });
        let ring = store.lock();
        assert_eq!(ring.updates.len(), 2);
        assert!(ring.ids.len() <= 2, "{:?}", ring.ids);
        assert!(ring.ids.next_same_id.len() <= 1, "{:?}", ring.ids);
    }
}
