//! [`RedbStore`]: durable history in an embedded [redb](https://docs.rs/redb) file, the default
//! when `herald serve` runs with no other service.
//!
//! # Tables
//!
//! - `updates: u64 → &[u8]`: seq → the update as a record (layout below). redb keeps keys
//!   sorted, so the first and last keys are the retained ends, `read_after` is one range
//!   scan, and appending and trimming touch only the pages at the two edges of the tree.
//! - `meta: &str → u64`: `last_seq`, the newest seq ever assigned when no update is retained
//!   (the newest seq is the larger of it and the last key of `updates`). It is what makes
//!   sequence numbers continue after a restart even when retention has trimmed every update
//!   (seqs are never reused: a subscriber's `Last-Event-ID` must never name a different update
//!   later). While updates are retained it is not rewritten, so a commit touches one table.
//!
//! # One write transaction per batch
//!
//! `append` writes a whole batch — records, `last_seq`, trimming — in one write transaction
//! with [`Durability::Immediate`]. A durable commit costs an `fdatasync` (and redb's page
//! bookkeeping) whatever its size, so committing the 64 concurrent publishes that the hub's
//! group commit hands over at once is what makes durable publishing fast (measured: ~1 ms
//! per commit of 64, ~0.6 ms per commit of 1), and a crash leaves either the whole batch with
//! its trimming or none of it, never seqs with a gap.
//!
//! # The id index lives in memory
//!
//! `position` looks ids up in an in-memory `IdIndex` (the one [`MemoryStore`] uses), which
//! `open` rebuilds by reading the id of every retained record; it is derived data, the records
//! are the truth. An `ids: &str → u64` redb table was built and measured first: it cut
//! throughput 5×, because ids are random (uuid v4), so a batch's 64 inserts and 64 trims each
//! land on a different leaf page and the copy-on-write commit rewrites all of them (batches of
//! 64 ~100-byte updates, history 10 000, 2-core machine, interleaved runs: ~60k durable
//! updates/s without that table, ~12k with it, ~9k keyed by a 64-bit hash of the id). The
//! price: RAM of roughly 100 bytes plus the id per retained update, and one scan of the
//! retained records at startup (measured: 15–30 ms for 10 000, ~140 ms for 83 000).
//!
//! [`MemoryStore`]: super::memory::MemoryStore
//!
//! # Records
//!
//! Each update is stored in the layout of [`record`](super::record), keyed by its seq.
//!
//! # Threads
//!
//! redb is synchronous, so every transaction runs on tokio's blocking pool (`spawn_blocking`),
//! never on a runtime worker. `read_after` uses a read transaction (an MVCC snapshot) and never
//! waits for the writer; `position` and `bounds` read the in-memory state and need no
//! transaction at all.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use super::memory::IdIndex;
use super::record::{decode_id, decode_record, encode_record};
use super::{Bounds, HistoryStore, StoreError, StoreFuture};
use crate::update::Update;
use ::redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

/// seq → record.
const UPDATES: TableDefinition<u64, &[u8]> = TableDefinition::new("updates");
/// Named counters; only [`LAST_SEQ`] for now.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The `meta` key holding the newest seq ever assigned.
const LAST_SEQ: &str = "last_seq";

/// History in a redb file: durable, bounded to the newest `history_size` updates.
///
/// Share it as `Arc<RedbStore>` (or `Arc<dyn HistoryStore>`); one process may open a file
/// once.
///
/// ```
/// use herald_hub::store::{HistoryStore, redb::RedbStore};
/// use herald_hub::update::{Update, UpdateFields};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let store = RedbStore::open(&dir.path().join("history.redb"), 10_000)?;
/// let update = Update::encode(UpdateFields { id: "a".into(), data: "hi".into(), ..Default::default() })?;
/// let stored = store.append(vec![update]).await?;
/// assert_eq!(stored[0].seq, 1);
/// assert_eq!(store.read_after(0, 10).await?[0].id, "a");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct RedbStore {
    /// Shared with the blocking tasks that run the transactions (they need `'static` data).
    shared: Arc<Shared>,
}

/// What the blocking tasks need.
struct Shared {
    /// The open database; redb itself makes it safe to use from many threads.
    db: Database,
    /// How many updates to retain (as `u64` because it is compared with seqs).
    history_size: u64,
    /// Held by `append` from the start of its transaction until `state` matches its commit, so
    /// `state` follows commits in order even if appends ever race (the hub serialises them).
    /// Readers never take it. Only ever locked on the blocking pool.
    writer: Mutex<()>,
    /// What the newest commit left, kept in memory. A plain mutex: it is held for a hash
    /// lookup or a few updates, never across an `.await`.
    state: Mutex<State>,
}

/// The in-memory view of the newest commit.
struct State {
    /// Answers `bounds()` (asked on every subscribe) without a transaction.
    bounds: Bounds,
    /// Answers `position()`; see the module docs for why it is not a table.
    ids: IdIndex,
}

impl RedbStore {
    /// Opens the history file at `path`, creating it if it does not exist, and retains the
    /// newest `history_size` updates from now on (`0` retains none, though sequence numbers
    /// still advance and are remembered). Sequence numbers continue from the last one stored.
    ///
    /// A file holding more than `history_size` updates (the setting was lowered) is trimmed on
    /// the next append.
    ///
    /// This blocks on file I/O (it reads the id of every retained record to rebuild the id
    /// index, and creates the tables in a durable commit): call it at startup, or from
    /// `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the file cannot be opened or created (including when it
    /// is already open, in this process or another), [`StoreError::Corrupt`] if it is not a
    /// valid redb file or a retained record cannot be decoded (the error names its seq).
    pub fn open(path: &Path, history_size: usize) -> Result<RedbStore, StoreError> {
        let db = Database::create(path).map_err(backend)?;
        // Creating the tables up front lets read transactions open them unconditionally (a
        // read transaction cannot create a table, and would fail on a fresh file).
        let txn = db.begin_write().map_err(backend)?;
        let state = {
            let records = txn.open_table(UPDATES).map_err(backend)?;
            let meta = txn.open_table(META).map_err(backend)?;
            load_state(&records, &meta)?
        };
        txn.commit().map_err(backend)?;
        Ok(RedbStore {
            shared: Arc::new(Shared {
                db,
                history_size: u64::try_from(history_size).unwrap_or(u64::MAX),
                writer: Mutex::new(()),
                state: Mutex::new(state),
            }),
        })
    }

    /// Runs `work` with the shared state on the blocking pool.
    fn blocking<T, F>(&self, work: F) -> StoreFuture<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&shared))
                .await
                .map_err(|error| StoreError::Unavailable(format!("redb task failed: {error}")))?
        })
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("history_size", &self.shared.history_size)
            .field("bounds", &self.shared.lock_state().bounds)
            .finish_non_exhaustive()
    }
}

/// Locks `mutex`, taking over a poisoned one: what these mutexes guard is replaced or changed
/// in steps that each leave it usable, so one panicked holder must not fail every later call.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Writes `updates` and trims, in one durable write transaction, then brings the in-memory
    /// state up to date.
    fn append(&self, updates: Vec<Update>) -> Result<Vec<Arc<Update>>, StoreError> {
        let _writer = lock(&self.writer);
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::Immediate).map_err(backend)?;
        let (stored, trimmed, bounds) = {
            let mut records = txn.open_table(UPDATES).map_err(backend)?;
            let mut meta = txn.open_table(META).map_err(backend)?;
            // The seq comes from the file, not from memory: the file is the truth.
            let mut last = last_seq(&records, &meta)?;
            // One buffer for every record of the batch.
            let mut record = Vec::with_capacity(256);
            let mut stored = Vec::with_capacity(updates.len());
            for mut update in updates {
                last += 1;
                update.seq = last;
                encode_record(&update, &mut record)?;
                records.insert(last, record.as_slice()).map_err(backend)?;
                stored.push(Arc::new(update));
            }
            let (oldest, trimmed) = trim(&mut records, last, self.history_size)?;
            // `last_seq` is the larger of `meta` and the newest record's key, so while the
            // newest record is retained it already says `last`: writing `meta` too would dirty
            // another table's pages in every commit (measured: commits ~8 % faster without
            // it). Only when nothing is retained must the counter carry the seq.
            if oldest.is_none() {
                meta.insert(LAST_SEQ, last).map_err(backend)?;
            }
            let last_id = match (oldest, stored.last()) {
                (Some(_), Some(newest)) => Some(newest.id.clone()),
                _ => None,
            };
            (
                stored,
                trimmed,
                Bounds {
                    oldest,
                    last,
                    last_id,
                },
            )
        };
        // Dropping `txn` on an early return above aborts it: nothing of the batch is written.
        txn.commit().map_err(backend)?;

        // Between the commit and this update, `read_after` may already return the new updates
        // while `position` does not know their ids yet; the window is this lock's wait, and a
        // subscriber resuming from an id it got in that window replays from the start of the
        // retained history rather than missing anything.
        let mut state = self.lock_state();
        for update in &stored {
            state.ids.insert(&update.id, update.seq);
        }
        // Ascending seqs, all older than anything retained: each is its id's earliest.
        for (seq, id) in trimmed {
            match id {
                Some(id) => state.ids.remove_earliest(&id, seq),
                None => state.ids.remove_earliest_seq(seq),
            }
        }
        state.bounds = bounds;
        Ok(stored)
    }

    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Arc<Update>>, StoreError> {
        let Some(start) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read().map_err(backend)?;
        let records = txn.open_table(UPDATES).map_err(backend)?;
        let mut updates = Vec::new();
        for entry in records.range(start..).map_err(backend)?.take(limit) {
            let (seq, record) = entry.map_err(backend)?;
            updates.push(Arc::new(decode_record(seq.value(), record.value())?));
        }
        Ok(updates)
    }
}

impl HistoryStore for RedbStore {
    fn append(&self, updates: Vec<Update>) -> StoreFuture<'_, Vec<Arc<Update>>> {
        if updates.is_empty() {
            // Nothing to make durable: skip the commit and its fsync.
            return Box::pin(std::future::ready(Ok(Vec::new())));
        }
        self.blocking(move |shared| shared.append(updates))
    }

    fn position<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<u64>> {
        let first = self.shared.lock_state().ids.first(id);
        Box::pin(std::future::ready(Ok(first)))
    }

    fn read_after(&self, after: u64, limit: usize) -> StoreFuture<'_, Vec<Arc<Update>>> {
        self.blocking(move |shared| shared.read_after(after, limit))
    }

    fn bounds(&self) -> StoreFuture<'_, Bounds> {
        let bounds = self.shared.lock_state().bounds.clone();
        Box::pin(std::future::ready(Ok(bounds)))
    }

    fn kind(&self) -> &'static str {
        "redb"
    }
}

/// Turns any redb error into a [`StoreError`], keeping redb's own corruption verdict.
fn backend(error: impl Into<::redb::Error>) -> StoreError {
    match error.into() {
        ::redb::Error::Corrupted(message) => StoreError::Corrupt(format!("redb: {message}")),
        other => StoreError::Unavailable(format!("redb: {other}")),
    }
}

/// The smallest key of `records`, if any.
fn first_key(records: &impl ReadableTable<u64, &'static [u8]>) -> Result<Option<u64>, StoreError> {
    Ok(records
        .first()
        .map_err(backend)?
        .map(|(seq, _)| seq.value()))
}

/// The newest seq ever assigned: `meta.last_seq`, or the newest record's if that is larger
/// (the records are the ground truth; the counter covers the case where all were trimmed).
fn last_seq(
    records: &impl ReadableTable<u64, &'static [u8]>,
    meta: &impl ReadableTable<&'static str, u64>,
) -> Result<u64, StoreError> {
    let counted = meta
        .get(LAST_SEQ)
        .map_err(backend)?
        .map_or(0, |seq| seq.value());
    let newest = records
        .last()
        .map_err(backend)?
        .map_or(0, |(seq, _)| seq.value());
    Ok(counted.max(newest))
}

/// The in-memory state for what the file holds: bounds, and the id index rebuilt from the
/// records.
fn load_state(
    records: &impl ReadableTable<u64, &'static [u8]>,
    meta: &impl ReadableTable<&'static str, u64>,
) -> Result<State, StoreError> {
    let last = last_seq(records, meta)?;
    let mut ids = IdIndex::default();
    let mut last_id = None;
    for entry in records.iter().map_err(backend)? {
        let (seq, record) = entry.map_err(backend)?;
        let seq = seq.value();
        let id = decode_id(seq, record.value())?;
        ids.insert(id, seq);
        if seq == last {
            last_id = Some(id.to_owned());
        }
    }
    let bounds = Bounds {
        oldest: first_key(records)?,
        last,
        last_id,
    };
    Ok(State { bounds, ids })
}

/// A trimmed seq and the id of its update (`None` if its record could not be decoded).
type Trimmed = (u64, Option<String>);

/// Removes the oldest records beyond `history_size`. Returns the oldest retained seq, and
/// what was removed, oldest first, for the id index.
fn trim(
    records: &mut ::redb::Table<'_, u64, &'static [u8]>,
    last: u64,
    history_size: u64,
) -> Result<(Option<u64>, Vec<Trimmed>), StoreError> {
    let Some(first) = first_key(records)? else {
        return Ok((None, Vec::new()));
    };
    // Retained seqs are consecutive (appended at the back, trimmed from the front), so the
    // count needs no scan.
    let retained = (last + 1).saturating_sub(first);
    let excess = retained.saturating_sub(history_size);
    let mut trimmed = Vec::with_capacity(usize::try_from(excess).unwrap_or(0).min(1024));
    for seq in first..first + excess {
        let Some(record) = records.remove(seq).map_err(backend)? else {
            continue;
        };
        // A corrupt record is dropped all the same: it has expired, and refusing would stop
        // every publish from now on.
        let id = decode_id(seq, record.value()).ok().map(str::to_owned);
        trimmed.push((seq, id));
    }
    Ok(((retained > excess).then_some(first + excess), trimmed))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::Bytes;

    use super::{RedbStore, UPDATES};
    use crate::store::memory::conformance::{append_ids, history_store_conformance};
    use crate::store::record::{decode_id, decode_record, encode_record};
    use crate::store::{Bounds, HistoryStore, StoreError};
    use crate::update::Update;

    fn open(history_size: usize) -> (RedbStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RedbStore::open(&dir.path().join("history.redb"), history_size).expect("open");
        (store, dir)
    }

    history_store_conformance!(open);

    fn sample() -> Update {
        Update {
            seq: 7,
            id: "urn:uuid:1".into(),
            topics: vec!["https://example.com/a".into(), "urn:b".into()],
            private: true,
            frame: Bytes::from_static(b"id: urn:uuid:1\ndata: hi\n\n"),
        }
    }

    /// Overwrites the record under `seq` with `bytes`, behind the store's back.
    fn overwrite(store: &RedbStore, seq: u64, bytes: &[u8]) {
        let txn = store.shared.db.begin_write().expect("begin");
        txn.open_table(UPDATES)
            .expect("table")
            .insert(seq, bytes)
            .expect("insert");
        txn.commit().expect("commit");
    }

    #[test]
    fn record_round_trips() {
        let mut record = Vec::new();
        encode_record(&sample(), &mut record).expect("encode");
        assert_eq!(decode_record(7, &record).expect("decode"), sample());
        assert_eq!(decode_id(7, &record).expect("id"), "urn:uuid:1");
    }

    #[test]
    fn every_damaged_record_is_corrupt_not_a_panic() {
        let mut record = Vec::new();
        encode_record(&sample(), &mut record).expect("encode");
        let corrupt = |bytes: &[u8]| matches!(decode_record(1, bytes), Err(StoreError::Corrupt(_)));
        for len in 0..record.len() {
            assert!(corrupt(&record[..len]), "truncated to {len}");
        }
        let mut trailing = record.clone();
        trailing.push(0);
        assert!(corrupt(&trailing), "trailing byte");
        for (index, bad) in [(0, 2), (1, 0b10), (2, 0xff)] {
            let mut damaged = record.clone();
            damaged[index] = bad;
            assert!(corrupt(&damaged), "byte {index} = {bad}");
        }
        // Flipping any single byte may yield another valid record, but never a panic.
        for index in 0..record.len() {
            let mut damaged = record.clone();
            damaged[index] ^= 0xff;
            let _ = decode_record(1, &damaged);
            let _ = decode_id(1, &damaged);
        }
        // Invalid UTF-8 in the id.
        let mut bad_id = sample();
        bad_id.id = "é".into();
        encode_record(&bad_id, &mut record).expect("encode");
        let at = record.len() - bad_id.frame.len() - 4 - 1;
        record[at] = 0xff;
        assert!(corrupt(&record), "non-UTF-8 id");
    }

    #[tokio::test]
    async fn corrupt_record_reads_as_corrupt_and_is_still_trimmed() {
        let (store, _dir) = open(3);
        append_ids(&store, &["a", "b", "c"]).await;
        overwrite(&store, 1, b"\x01\x00\xff");
        let error = store.read_after(0, 10).await.expect_err("corrupt");
        assert!(
            matches!(&error, StoreError::Corrupt(message) if message.contains("record 1")),
            "{error}"
        );
        // The other records are still readable, and resume still finds them.
        assert_eq!(store.read_after(1, 10).await.expect("read").len(), 2);
        assert_eq!(store.position("b").await.expect("position"), Some(2));
        // Trimming the corrupt record neither fails the append nor leaves `a` resolvable.
        append_ids(&store, &["d"]).await;
        assert_eq!(store.position("a").await.expect("position"), None);
        assert_eq!(store.read_after(0, 10).await.expect("read").len(), 3);
    }

    #[tokio::test]
    async fn corrupt_record_fails_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.redb");
        let store = RedbStore::open(&path, 10).expect("open");
        append_ids(&store, &["a", "b", "c"]).await;
        overwrite(&store, 2, b"\x09");
        drop(store);
        let error = RedbStore::open(&path, 10).expect_err("corrupt");
        let names_record =
            matches!(&error, StoreError::Corrupt(message) if message.contains("record 2"));
        assert!(names_record, "{error}");
    }

    #[tokio::test]
    async fn not_a_database_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.redb");
        std::fs::write(
            &path,
            b"definitely not redb, but long enough to look like a header....",
        )
        .expect("write");
        assert!(RedbStore::open(&path, 10).is_err());
    }

    async fn reopen(path: &Path, history_size: usize) -> RedbStore {
        RedbStore::open(path, history_size).expect("reopen")
    }

    #[tokio::test]
    async fn history_survives_reopen_and_seqs_continue() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.redb");
        let store = RedbStore::open(&path, 10).expect("open");
        append_ids(&store, &["a", "b", "a"]).await;
        drop(store);

        let store = reopen(&path, 10).await;
        let expected = Bounds {
            oldest: Some(1),
            last: 3,
            last_id: Some("a".into()),
        };
        assert_eq!(store.bounds().await.expect("bounds"), expected);
        let read = store.read_after(0, 10).await.expect("read");
        let ids: Vec<&str> = read.iter().map(|update| update.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "a"]);
        assert_eq!(read[1].frame, Bytes::from("id: b\ndata: x\n\n"));
        assert_eq!(store.position("a").await.expect("position"), Some(1));
        let stored = append_ids(&store, &["c"]).await;
        assert_eq!(stored[0].seq, 4);
        drop(store);

        // A lower history size applies from the next append.
        let store = reopen(&path, 2).await;
        assert_eq!(store.read_after(0, 10).await.expect("read").len(), 4);
        append_ids(&store, &["d"]).await;
        let read = store.read_after(0, 10).await.expect("read");
        assert_eq!(
            read.iter().map(|update| update.seq).collect::<Vec<_>>(),
            [4, 5]
        );
        assert_eq!(store.position("a").await.expect("position"), None);
        assert_eq!(store.position("c").await.expect("position"), Some(4));
    }

    #[tokio::test]
    async fn id_index_is_rebuilt_from_retained_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.redb");
        let store = RedbStore::open(&path, 3).expect("open");
        append_ids(&store, &["a", "b", "a", "c"]).await;
        drop(store);

        let store = reopen(&path, 3).await;
        // Seq 1 was trimmed: the reused id resolves to its retained occurrence.
        assert_eq!(store.position("a").await.expect("position"), Some(3));
        assert_eq!(store.position("b").await.expect("position"), Some(2));
        assert_eq!(store.position("c").await.expect("position"), Some(4));
        append_ids(&store, &["d", "e"]).await;
        assert_eq!(store.position("a").await.expect("position"), None);
        assert_eq!(store.position("e").await.expect("position"), Some(6));
    }

    #[tokio::test]
    async fn seqs_continue_when_retention_drops_to_nothing_after_updates_were_kept() {
        // While updates are retained, `meta` is not rewritten; the newest key carries the seq.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.redb");
        let store = RedbStore::open(&path, 5).expect("open");
        append_ids(&store, &["a", "b", "c"]).await;
        drop(store);
        let store = reopen(&path, 0).await;
        assert_eq!(append_ids(&store, &["d"]).await[0].seq, 4);
        drop(store);
        let store = reopen(&path, 5).await;
        assert_eq!(append_ids(&store, &["e"]).await[0].seq, 5);
    }

    #[tokio::test]
    async fn last_seq_survives_reopen_when_nothing_is_retained() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.redb");
        let store = RedbStore::open(&path, 0).expect("open");
        append_ids(&store, &["a", "b"]).await;
        drop(store);

        let store = reopen(&path, 0).await;
        let expected = Bounds {
            oldest: None,
            last: 2,
            last_id: None,
        };
        assert_eq!(store.bounds().await.expect("bounds"), expected);
        assert_eq!(append_ids(&store, &["c"]).await[0].seq, 3);
        drop(store);

        let store = reopen(&path, 5).await;
        assert_eq!(append_ids(&store, &["d"]).await[0].seq, 4);
        let expected = Bounds {
            oldest: Some(4),
            last: 4,
            last_id: Some("d".into()),
        };
        assert_eq!(store.bounds().await.expect("bounds"), expected);
    }

    #[tokio::test]
    async fn second_open_of_the_same_file_is_refused() {
        let (store, dir) = open(10);
        let error = RedbStore::open(&dir.path().join("history.redb"), 10).expect_err("locked");
        assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
        drop(store);
    }
}
