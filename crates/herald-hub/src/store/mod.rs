//! History: the [`HistoryStore`] trait and its implementations.
//!
//! The hub appends every update to a store before answering the publisher, and reads it back
//! to replay what a reconnecting subscriber missed. Stores assign each update its sequence
//! number (`seq`, starting at 1, strictly increasing, never reused), which orders replay and
//! lets the hub hand over from replay to live delivery without a gap or a duplicate.
//!
//! - [`memory`]: a bounded in-memory ring (tests, `--memory`).
//! - [`redb`]: the embedded durable default.
//! - [`redis`]: a Redis Stream shared by several hub nodes (a cluster).
//!
//! A store that several nodes share also implements [`SharedLog`] (an optional ability,
//! offered through [`HistoryStore::shared_log`]): the hub then dispatches what it reads back
//! from the log rather than what it appended, so every node delivers every update, its own
//! and the others', in the same order.

pub mod memory;
mod record;
pub mod redb;
pub mod redis;
mod redis_connection;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::update::Update;

/// A boxed future returned by [`HistoryStore`] methods (one allocation per call is noise
/// next to a durable commit, and it keeps the trait object-safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (disk, database, network); the message says how.
    #[error("history store unavailable: {0}")]
    Unavailable(String),
    /// Stored bytes could not be decoded.
    #[error("history store corrupt: {0}")]
    Corrupt(String),
}

/// The ends of the retained history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounds {
    /// `seq` of the oldest retained update, `None` when nothing is retained.
    pub oldest: Option<u64>,
    /// `seq` of the newest update ever appended (`0` when none was).
    pub last: u64,
    /// Id of the newest update ever appended, if it is still retained.
    pub last_id: Option<String>,
}

/// Where history lives.
///
/// Implementations must be safe to call from many tasks at once. The hub serialises
/// `append` calls (one committer task), so an implementation may assume appends do not race
/// each other, but reads run concurrently with appends.
pub trait HistoryStore: Send + Sync + 'static {
    /// Durably appends `updates` in order, in one commit, assigning each the next `seq`
    /// (written into the returned updates). Returns only once the batch is durable.
    /// Then trims the oldest updates beyond the retention size.
    fn append(&self, updates: Vec<Update>) -> StoreFuture<'_, Vec<Arc<Update>>>;

    /// The `seq` of the retained update with this id: the earliest one if an id was reused.
    /// A lookup (index), never a scan.
    fn position<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<u64>>;

    /// Up to `limit` retained updates with `seq > after`, oldest first.
    fn read_after(&self, after: u64, limit: usize) -> StoreFuture<'_, Vec<Arc<Update>>>;

    /// The ends of the retained history.
    fn bounds(&self) -> StoreFuture<'_, Bounds>;

    /// A short name for logs and `/readyz` (`memory`, `redb`, `redis`).
    fn kind(&self) -> &'static str;

    /// The store as a log shared with other hub nodes, if it is one.
    fn shared_log(&self) -> Option<&dyn SharedLog> {
        None
    }
}

/// A place in a [`SharedLog`]: after the update with `seq`, and after the first `control`
/// control entries that follow it. Updates and control entries share one order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPosition {
    /// The newest update at or before this place (`0`: before every update).
    pub seq: u64,
    /// How many control entries after that update are also behind this place.
    pub control: u64,
}

/// One entry read back from a [`SharedLog`].
#[derive(Debug, Clone)]
pub enum LogEntry {
    /// A published update, to dispatch.
    Update(Arc<Update>),
    /// These topics were ended (`Hub::end_topics` on some node): close their streams.
    End(Vec<String>),
}

/// What one [`SharedLog::tail`] read returned.
#[derive(Debug, Default)]
pub struct Tail {
    /// The entries after the position asked for, each with its own position, oldest first
    /// (empty when none came in time).
    pub entries: Vec<(LogPosition, LogEntry)>,
    /// Where the next read starts.
    pub next: LogPosition,
    /// The log lost what it held (its backend restarted empty, or trimmed beyond the position
    /// before this node read it): updates may have been skipped, and seqs may start over.
    /// Every subscriber of this node must resume from history.
    pub reset: bool,
}

/// Optional ability of a [`HistoryStore`]: a log that several hub nodes append to and tail.
///
/// `append` still assigns seqs and is durable when it returns; tailing returns every
/// node's appends, in seq order, with the control entries between them.
pub trait SharedLog: Send + Sync {
    /// The history's ends and the log position right after its newest entry, read together
    /// so that tailing from the position misses nothing appended after the bounds.
    fn tail_start(&self) -> StoreFuture<'_, (Bounds, LogPosition)>;

    /// Entries after `after`. Waits a short while (about a second) when there are none, so
    /// a caller can loop on it; an error means the backend is unreachable for now.
    fn tail(&self, after: LogPosition) -> StoreFuture<'_, Tail>;

    /// Appends a control entry saying `topics` were ended, after every update appended
    /// before it. Returns the entry's position, which tailing reaches once it applied it.
    fn append_end(&self, topics: Vec<String>) -> StoreFuture<'_, LogPosition>;
}
