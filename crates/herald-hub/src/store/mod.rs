//! History: the [`HistoryStore`] trait and its implementations.
//!
//! The hub appends every update to a store before answering the publisher, and reads it back
//! to replay what a reconnecting subscriber missed. Stores assign each update its sequence
//! number (`seq`, starting at 1, strictly increasing, never reused), which orders replay and
//! lets the hub hand over from replay to live delivery without a gap or a duplicate.
//!
//! - [`memory`]: a bounded in-memory ring (tests, `--memory`).
//! - [`redb`]: the embedded durable default.

pub mod memory;
pub mod redb;

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
}
