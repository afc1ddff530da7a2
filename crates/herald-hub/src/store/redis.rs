//! [`RedisStore`]: history in a Redis Stream that several hub nodes share (`--transport
//! redis://…`).
//!
//! Every node appends its publishes to one stream and tails it, so each node delivers every
//! update — its own and the others' — in one order, and any node can replay from any retained
//! id. Redis is the only shared state; nodes never talk to each other.
//!
//! # Keys
//!
//! All keys start with `{prefix}` (default `{herald}`). The braces are a Redis Cluster hash
//! tag: every key of one hub lands in the same slot, which the append script needs (a script
//! may only touch keys of one slot), so the same layout works on a single Redis and on a
//! Redis Cluster.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}:log` | stream | the updates, and control entries (ended topics), oldest first |
//! | `{prefix}:seq` | string | the newest seq ever assigned (`INCR`) |
//! | `{prefix}:ids` | hash | event id → `"first last"`: the seqs of the id's earliest and newest retained updates |
//! | `{prefix}:next` | hash | seq → the next seq with the same event id (only ids that were reused) |
//! | `{prefix}:epoch` | string | a random value set when the keys are first written |
//! | `{prefix}:batch:<uuid>` | string | an appended batch's first seq, for 10 seconds, so a retried append is not applied twice |
//!
//! # Stream entry ids carry the seq
//!
//! The update with seq `n` is the entry with id `n-0`: reading after seq `n` is
//! `XRANGE (n-0 +`, and a node tails with `XREAD` from the entry id it saw last. Control
//! entries take the ids `n-1`, `n-2`… after the newest update `n`, so they sit in the same
//! order without consuming a seq (a subscriber checks that replayed seqs are consecutive).
//!
//! Update entries have the fields `i` (the event id, so trimming can maintain `ids` without
//! decoding) and `r` (the update in the [`record`](super::record) layout). Control entries
//! have one field, `end`, holding a record whose topics are the ended topics.
//!
//! # Appending is one script
//!
//! One `EVALSHA` per batch assigns the seqs, adds the entries, indexes the ids and trims the
//! stream to `history_size` entries, atomically: a crash or an outage leaves a whole batch or
//! none of it, and concurrent appends from several nodes interleave by batch. When the
//! script's reply arrives Redis has applied it; how durable that is depends on Redis's own
//! persistence (`appendonly yes` with `appendfsync everysec` or `always`): see
//! docs/OPERATIONS.md.
//!
//! # Losing Redis
//!
//! A publish during an outage fails (the hub answers 503) and is never acknowledged. When
//! Redis comes back empty (it kept nothing on disk), the `epoch` key is gone: the next tail
//! read sees a different epoch and reports a reset, and the hub makes every subscriber of
//! this node resume from history, where their ids are unknown and they get the documented
//! history-gap notice rather than a silent skip.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use ::redis::{FromRedisValue, Script, ScriptInvocation, Value};
use bytes::Bytes;

use super::record::{decode_record, encode_record};
use super::redis_connection::{RedisEndpoint, Timeouts};
use super::{
    Bounds, HistoryStore, LogEntry, LogPosition, SharedLog, StoreError, StoreFuture, Tail,
};
use crate::update::Update;

/// How long one tail read waits in Redis for new entries. Short enough that a node notices
/// an outage, a reset or shutdown within about a second, long enough to cost nothing idle.
const TAIL_BLOCK: Duration = Duration::from_millis(1000);
/// Most entries one tail read returns; a node that fell behind catches up in steps this size.
const TAIL_COUNT: usize = 1024;
/// How long a command may wait for Redis before the publish or read fails (503).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long opening a connection to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Tries per command when the connection turns out to be dropped: the first use of a
/// connection after a Redis restart fails, and the retry runs on a fresh one.
const ATTEMPTS: usize = 3;

/// Appends a batch. KEYS: log, seq, ids, next, epoch, and the batch's own key. ARGV: history
/// size, epoch candidate, then (event id, record) per update. Returns the first seq
/// assigned. Sent again after a dropped connection, it finds its batch key and returns the
/// same seq instead of appending twice.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local log, seqkey, ids, nexts, epoch, batch = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local done = redis.call('GET', batch)
if done then return tonumber(done) end
local keep = tonumber(ARGV[1])
redis.call('SET', epoch, ARGV[2], 'NX')
-- The counter must stay ahead of the stream even if someone deleted it.
if redis.call('EXISTS', seqkey) == 0 and redis.call('EXISTS', log) == 1 then
  local info = redis.call('XINFO', 'STREAM', log)
  for f = 1, #info, 2 do
    if info[f] == 'last-generated-id' then
      redis.call('SET', seqkey, string.match(info[f + 1], '^(%d+)-'))
    end
  end
end
local first = 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local seq = redis.call('INCR', seqkey)
  if first == 0 then first = seq end
  redis.call('XADD', log, seq .. '-0', 'i', id, 'r', ARGV[i + 1])
  local known = redis.call('HGET', ids, id)
  if known then
    local head, last = string.match(known, '^(%d+) (%d+)$')
    redis.call('HSET', nexts, last, seq)
    redis.call('HSET', ids, id, head .. ' ' .. seq)
  else
    redis.call('HSET', ids, id, seq .. ' ' .. seq)
  end
end
local excess = redis.call('XLEN', log) - keep
if excess > 0 then
  for _, entry in ipairs(redis.call('XRANGE', log, '-', '+', 'COUNT', excess)) do
    local seq = string.match(entry[1], '^(%d+)-0$')
    local fields, id = entry[2], nil
    for f = 1, #fields, 2 do
      if fields[f] == 'i' then id = fields[f + 1] end
    end
    if seq and id then
      local known = redis.call('HGET', ids, id)
      if known then
        local head, last = string.match(known, '^(%d+) (%d+)$')
        if head == seq then
          local following = redis.call('HGET', nexts, seq)
          if following then
            redis.call('HDEL', nexts, seq)
            redis.call('HSET', ids, id, following .. ' ' .. last)
          else
            redis.call('HDEL', ids, id)
          end
        end
      end
    end
    redis.call('XDEL', log, entry[1])
  end
end
redis.call('SET', batch, first, 'EX', 10)
return first
"#,
    )
});

/// Appends a control entry after the newest update. KEYS: log, seq, epoch. ARGV: epoch
/// candidate, record. Returns the entry id.
static APPEND_END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('SET', KEYS[3], ARGV[1], 'NX')
local seq = redis.call('GET', KEYS[2]) or '0'
return redis.call('XADD', KEYS[1], seq .. '-*', 'end', ARGV[2])
"#,
    )
});

/// Reads the bounds and the tail position together. KEYS: log, seq. Returns
/// `{last seq, oldest seq or nil, newest id or nil, last entry id}`.
static BOUNDS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local log = KEYS[1]
local last = redis.call('GET', KEYS[2]) or '0'
local oldest, last_id, position = false, false, '0-0'
for _, entry in ipairs(redis.call('XRANGE', log, '-', '+', 'COUNT', 64)) do
  local seq = string.match(entry[1], '^(%d+)-0$')
  if seq then oldest = seq break end
end
for _, entry in ipairs(redis.call('XREVRANGE', log, '+', '-', 'COUNT', 64)) do
  local seq = string.match(entry[1], '^(%d+)-0$')
  if seq then
    if seq == last then
      local fields = entry[2]
      for f = 1, #fields, 2 do
        if fields[f] == 'i' then last_id = fields[f + 1] end
      end
    end
    break
  end
end
if redis.call('EXISTS', log) == 1 then
  local info = redis.call('XINFO', 'STREAM', log)
  for f = 1, #info, 2 do
    if info[f] == 'last-generated-id' then position = info[f + 1] end
  end
end
return {last, oldest, last_id, position}
"#,
    )
});

/// The key names of one hub.
#[derive(Debug, Clone)]
struct Keys {
    /// `{prefix}`, which starts every key.
    tag: String,
    log: String,
    seq: String,
    ids: String,
    next: String,
    epoch: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        let tag = format!("{{{prefix}}}");
        Keys {
            log: format!("{tag}:log"),
            seq: format!("{tag}:seq"),
            ids: format!("{tag}:ids"),
            next: format!("{tag}:next"),
            epoch: format!("{tag}:epoch"),
            tag,
        }
    }
}

/// The keys a cluster named `prefix` keeps in Redis (all but the short-lived batch keys), for
/// tools and tests that inspect or remove a cluster's history.
///
/// ```
/// assert_eq!(herald_hub::store::redis::key_names("shop")[0], "{shop}:log");
/// ```
pub fn key_names(prefix: &str) -> Vec<String> {
    let keys = Keys::new(prefix);
    vec![keys.log, keys.seq, keys.ids, keys.next, keys.epoch]
}

/// History in a Redis Stream shared by every node of a cluster; see the module docs.
///
/// ```no_run
/// use herald_hub::store::{HistoryStore, redis::RedisStore};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = RedisStore::open("redis://127.0.0.1:6379", "herald", 10_000)?;
/// println!("{:?}", store.bounds().await?);
/// # Ok::<(), herald_hub::store::StoreError>(())
/// # }).unwrap();
/// ```
pub struct RedisStore {
    keys: Keys,
    /// How many entries the stream keeps.
    history_size: usize,
    /// The connections: commands (publishes, replays, lookups) and the blocking tail read.
    endpoint: RedisEndpoint,
    /// The epoch this node's tail last saw; a different one means Redis lost the keys.
    seen_epoch: Mutex<Option<String>>,
    /// For logs.
    address: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.address)
            .field("log", &self.keys.log)
            .field("history_size", &self.history_size)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Prepares a store on the Redis at `url` — `redis://[user:password@]host:port[/db]` for
    /// one Redis, `redis-cluster://host:port[,host:port…]` for a Redis Cluster (any nodes of
    /// it; the slot map is discovered) — with keys under `{prefix}`, keeping the newest
    /// `history_size` entries. Connects lazily: the first call reports an unreachable Redis.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the URL is not a Redis URL.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn open(url: &str, prefix: &str, history_size: usize) -> Result<RedisStore, StoreError> {
        let endpoint = RedisEndpoint::new(
            url,
            &Timeouts {
                connect: CONNECT_TIMEOUT,
                response: RESPONSE_TIMEOUT,
                tail_response: RESPONSE_TIMEOUT + TAIL_BLOCK,
            },
        )?;
        Ok(RedisStore {
            keys: Keys::new(prefix),
            history_size,
            endpoint,
            seen_epoch: Mutex::new(None),
            address: redacted(url),
        })
    }

    /// Runs `command` on the shared connection, retried after a dropped connection.
    async fn query<T: FromRedisValue>(&self, command: &::redis::Cmd) -> Result<T, StoreError> {
        retrying(|| async move {
            let mut connection = self.endpoint.commands().await?;
            command.query_async(&mut connection).await
        })
        .await
        .map_err(backend)
    }

    /// Runs a script on the shared connection, retried after a dropped connection (every
    /// script here is safe to run twice).
    async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        retrying(|| async move {
            let mut connection = self.endpoint.commands().await?;
            invocation.invoke_async(&mut connection).await
        })
        .await
        .map_err(backend)
    }

    async fn read_bounds(&self) -> Result<(Bounds, LogPosition), StoreError> {
        let mut invocation = BOUNDS.prepare_invoke();
        invocation.key(&self.keys.log).key(&self.keys.seq);
        let reply: Value = self.invoke(&invocation).await?;
        let fields = match reply {
            Value::Array(fields) if fields.len() == 4 => fields,
            other => return Err(corrupt(format!("bounds reply {other:?}"))),
        };
        let last = parse_u64(text(&fields[0])?.as_deref().unwrap_or("0"))?;
        let oldest = text(&fields[1])?.map(|seq| parse_u64(&seq)).transpose()?;
        let last_id = text(&fields[2])?;
        let position = match text(&fields[3])? {
            Some(id) => parse_entry_id(&id)?,
            None => LogPosition::default(),
        };
        Ok((
            Bounds {
                oldest,
                last,
                last_id,
            },
            position,
        ))
    }

    async fn append_batch(&self, updates: Vec<Update>) -> Result<Vec<Arc<Update>>, StoreError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = APPEND.prepare_invoke();
        invocation
            .key(&self.keys.log)
            .key(&self.keys.seq)
            .key(&self.keys.ids)
            .key(&self.keys.next)
            .key(&self.keys.epoch)
            .arg(self.history_size)
            .arg(new_epoch());
        let batch_key = format!("{}:batch:{}", self.keys.tag, new_epoch());
        invocation.key(&batch_key);
        let mut record = Vec::with_capacity(256);
        for update in &updates {
            encode_record(update, &mut record)?;
            invocation.arg(&update.id).arg(record.as_slice());
        }
        let first: u64 = self.invoke(&invocation).await?;
        Ok(updates
            .into_iter()
            .zip(first..)
            .map(|(mut update, seq)| {
                update.seq = seq;
                Arc::new(update)
            })
            .collect())
    }

    async fn position_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let known: Option<String> = self
            .query(::redis::cmd("HGET").arg(&self.keys.ids).arg(id))
            .await?;
        let Some(known) = known else { return Ok(None) };
        let first = known
            .split(' ')
            .next()
            .ok_or_else(|| corrupt(format!("id index entry {known:?}")))?;
        parse_u64(first).map(Some)
    }

    async fn updates_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Update>>, StoreError> {
        let mut updates = Vec::new();
        let mut start = LogPosition {
            seq: after,
            control: 0,
        };
        // Control entries are skipped, so keep reading until `limit` updates or the end: the
        // caller takes a short read to mean "caught up".
        while updates.len() < limit {
            let want = limit - updates.len();
            let reply: Value = self
                .query(
                    ::redis::cmd("XRANGE")
                        .arg(&self.keys.log)
                        .arg(format!("({}", entry_id(start)))
                        .arg("+")
                        .arg("COUNT")
                        .arg(want),
                )
                .await?;
            let entries = parse_entries(reply)?;
            let exhausted = entries.len() < want;
            for (position, entry) in entries {
                start = position;
                if let LogEntry::Update(update) = entry {
                    updates.push(update);
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(updates)
    }

    async fn tail_after(&self, after: LogPosition) -> Result<Tail, StoreError> {
        let mut connection = self.endpoint.tail().await.map_err(backend)?;
        let block = u64::try_from(TAIL_BLOCK.as_millis()).unwrap_or(1000);
        let (epoch, reply): (Option<String>, Value) = ::redis::pipe()
            .cmd("SET")
            .arg(&self.keys.epoch)
            .arg(new_epoch())
            .arg("NX")
            .ignore()
            .get(&self.keys.epoch)
            .cmd("XREAD")
            .arg("BLOCK")
            .arg(block)
            .arg("COUNT")
            .arg(TAIL_COUNT)
            .arg("STREAMS")
            .arg(&self.keys.log)
            .arg(entry_id(after))
            .query_async(&mut connection)
            .await
            .map_err(backend)?;
        {
            let mut seen = self
                .seen_epoch
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let changed = seen.is_some() && *seen != epoch;
            *seen = epoch;
            if changed {
                tracing::warn!(
                    redis = %self.address,
                    "the Redis log was lost (Redis restarted empty?); subscribers resume from what it holds now"
                );
                return Ok(Tail {
                    entries: Vec::new(),
                    next: LogPosition::default(),
                    reset: true,
                });
            }
        }
        let entries = match reply {
            Value::Nil => Vec::new(),
            Value::Array(streams) => match streams.into_iter().next() {
                Some(Value::Array(mut stream)) if stream.len() == 2 => {
                    parse_entries(stream.pop().unwrap_or(Value::Nil))?
                }
                Some(other) => return Err(corrupt(format!("XREAD reply {other:?}"))),
                None => Vec::new(),
            },
            other => return Err(corrupt(format!("XREAD reply {other:?}"))),
        };
        // Seqs are consecutive: a first update further on means the stream was trimmed past
        // this node's position before it read it (it fell more than `history_size` behind).
        let skipped = entries.iter().find_map(|(position, entry)| match entry {
            LogEntry::Update(_) => Some(position.seq > after.seq + 1),
            LogEntry::End(_) => None,
        }) == Some(true);
        if skipped {
            tracing::warn!(
                redis = %self.address,
                after = after.seq,
                "this node fell behind the Redis log's retention; subscribers resume from history"
            );
        }
        let next = entries.last().map_or(after, |(position, _)| *position);
        Ok(Tail {
            entries,
            next,
            reset: skipped,
        })
    }

    async fn append_end_entry(&self, topics: Vec<String>) -> Result<LogPosition, StoreError> {
        let mut record = Vec::new();
        encode_record(
            &Update {
                seq: 0,
                id: String::new(),
                topics,
                private: false,
                frame: Bytes::new(),
            },
            &mut record,
        )?;
        let mut invocation = APPEND_END.prepare_invoke();
        invocation
            .key(&self.keys.log)
            .key(&self.keys.seq)
            .key(&self.keys.epoch)
            .arg(new_epoch())
            .arg(record);
        // Sent twice after a dropped connection, the end is recorded twice: harmless.
        let id: String = self.invoke(&invocation).await?;
        parse_entry_id(&id)
    }
}

impl HistoryStore for RedisStore {
    fn append(&self, updates: Vec<Update>) -> StoreFuture<'_, Vec<Arc<Update>>> {
        Box::pin(self.append_batch(updates))
    }

    fn position<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<u64>> {
        Box::pin(self.position_of(id))
    }

    fn read_after(&self, after: u64, limit: usize) -> StoreFuture<'_, Vec<Arc<Update>>> {
        Box::pin(self.updates_after(after, limit))
    }

    fn bounds(&self) -> StoreFuture<'_, Bounds> {
        Box::pin(async move { Ok(self.read_bounds().await?.0) })
    }

    fn kind(&self) -> &'static str {
        "redis"
    }

    fn shared_log(&self) -> Option<&dyn SharedLog> {
        Some(self)
    }
}

impl SharedLog for RedisStore {
    fn tail_start(&self) -> StoreFuture<'_, (Bounds, LogPosition)> {
        Box::pin(async move {
            let (bounds, position) = self.read_bounds().await?;
            // Remember the epoch now, so a Redis that restarts empty before the first tail
            // read is noticed too.
            let epoch: Option<String> = self
                .query(::redis::cmd("GET").arg(&self.keys.epoch))
                .await?;
            *self
                .seen_epoch
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = epoch;
            Ok((bounds, position))
        })
    }

    fn tail(&self, after: LogPosition) -> StoreFuture<'_, Tail> {
        Box::pin(self.tail_after(after))
    }

    fn append_end(&self, topics: Vec<String>) -> StoreFuture<'_, LogPosition> {
        Box::pin(self.append_end_entry(topics))
    }
}

/// A value for the `epoch` key, used only if it is missing. Fresh on every write: a node that
/// reused its value after Redis lost the keys would hide the loss from itself.
fn new_epoch() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The stream entry id of a log position.
fn entry_id(position: LogPosition) -> String {
    format!("{}-{}", position.seq, position.control)
}

fn parse_entry_id(id: &str) -> Result<LogPosition, StoreError> {
    let (seq, control) = id
        .split_once('-')
        .ok_or_else(|| corrupt(format!("stream entry id {id:?}")))?;
    Ok(LogPosition {
        seq: parse_u64(seq)?,
        control: parse_u64(control)?,
    })
}

fn parse_u64(text: &str) -> Result<u64, StoreError> {
    text.parse()
        .map_err(|_| corrupt(format!("{text:?} is not a sequence number")))
}

/// A bulk or simple string reply as text; `None` for nil.
fn text(value: &Value) -> Result<Option<String>, StoreError> {
    match value {
        Value::Nil => Ok(None),
        Value::Int(number) => Ok(Some(number.to_string())),
        Value::BulkString(bytes) => String::from_utf8(bytes.clone())
            .map(Some)
            .map_err(|_| corrupt("a reply that is not UTF-8".to_owned())),
        Value::SimpleString(text) => Ok(Some(text.clone())),
        other => Err(corrupt(format!("unexpected reply {other:?}"))),
    }
}

/// Decodes `[[entry id, [field, value, …]], …]`.
fn parse_entries(reply: Value) -> Result<Vec<(LogPosition, LogEntry)>, StoreError> {
    let entries = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(entries) => entries,
        other => return Err(corrupt(format!("stream reply {other:?}"))),
    };
    let mut decoded = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(parts) = entry else {
            return Err(corrupt("a stream entry that is not an array".to_owned()));
        };
        let [id, Value::Array(fields)] = <[Value; 2]>::try_from(parts)
            .map_err(|_| corrupt("a stream entry without id and fields".to_owned()))?
        else {
            return Err(corrupt(
                "stream entry fields that are not an array".to_owned(),
            ));
        };
        let id = text(&id)?.ok_or_else(|| corrupt("a stream entry without id".to_owned()))?;
        let position = parse_entry_id(&id)?;
        let mut record = None;
        let mut end = None;
        let mut fields = fields.into_iter();
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            let Value::BulkString(value) = value else {
                continue;
            };
            match text(&name)?.as_deref() {
                Some("r") => record = Some(value),
                Some("end") => end = Some(value),
                _ => {}
            }
        }
        let entry = match (record, end) {
            (Some(record), _) => LogEntry::Update(Arc::new(decode_record(position.seq, &record)?)),
            (None, Some(end)) => LogEntry::End(decode_record(position.seq, &end)?.topics),
            (None, None) => return Err(corrupt(format!("stream entry {id} has no record"))),
        };
        decoded.push((position, entry));
    }
    Ok(decoded)
}

/// Runs `command` again (up to [`ATTEMPTS`] times) while it fails because the connection
/// was dropped; any other error, or a timeout (the command may have run), is returned.
async fn retrying<T, F, Fut>(mut command: F) -> ::redis::RedisResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ::redis::RedisResult<T>>,
{
    let mut attempt = 1;
    loop {
        match command().await {
            Err(error) if attempt < ATTEMPTS && error.is_connection_dropped() => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => return result,
        }
    }
}

fn backend(error: ::redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {error}"))
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(format!("redis: {what}"))
}

/// `url` without its password, for logs.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    //! The store against the real Redis at `REDIS_URL` (skipped loudly without one, never
    //! under CI), each test under its own cluster name.

    use herald_testkit::process::{ClusterName, redis_url};

    use super::RedisStore;
    use crate::store::memory::conformance;
    use crate::store::{HistoryStore, LogEntry, LogPosition, SharedLog};

    fn open(test: &str, history_size: usize) -> Option<(RedisStore, ClusterName)> {
        let url = redis_url()?;
        let name = ClusterName::new(test, &url);
        let store = RedisStore::open(&url, &name.name, history_size).expect("open");
        Some((store, name))
    }

    /// One test per conformance check, like `history_store_conformance!`, but skippable.
    macro_rules! conformance {
        ($($check:ident($size:expr)),* $(,)?) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some((store, _name)) = open(stringify!($check), $size) else { return };
                conformance::$check(store).await;
            }
        )*};
    }

    conformance!(
        append_assigns_consecutive_seqs(100),
        append_keeps_every_field(100),
        read_after_is_ordered_and_limited(100),
        position_of_reused_id_is_earliest(100),
        trim_drops_oldest_and_their_ids(3),
        trimmed_first_occurrence_hands_id_to_next(3),
        bounds_track_both_ends(3),
        history_size_zero_keeps_nothing(0),
        reads_during_appends_see_consistent_history(50),
    );

    #[tokio::test]
    async fn tail_returns_every_nodes_appends_and_ends_in_log_order() {
        let Some((first, name)) = open("tail", 100) else {
            return;
        };
        let url = redis_url().expect("reachable");
        let second = RedisStore::open(&url, &name.name, 100).expect("open");
        let (_, start) = first.tail_start().await.expect("start");
        assert_eq!(start, LogPosition::default());
        conformance::append_ids(&first, &["a"]).await;
        second
            .append_end(vec!["https://example.com/a".into()])
            .await
            .expect("end");
        conformance::append_ids(&second, &["b"]).await;

        let tail = first.tail(start).await.expect("tail");
        assert!(!tail.reset);
        let read: Vec<String> = tail
            .entries
            .iter()
            .map(|(position, entry)| match entry {
                LogEntry::Update(update) => {
                    format!("{}-{} {}", position.seq, position.control, update.id)
                }
                LogEntry::End(topics) => {
                    format!("{}-{} end {topics:?}", position.seq, position.control)
                }
            })
            .collect();
        assert_eq!(
            read,
            ["1-0 a", "1-1 end [\"https://example.com/a\"]", "2-0 b"]
        );
        assert_eq!(tail.next, LogPosition { seq: 2, control: 0 });
        // Replay skips control entries and stays consecutive.
        let replay = first.read_after(0, 10).await.expect("read");
        assert_eq!(replay.iter().map(|u| u.seq).collect::<Vec<_>>(), [1, 2]);
    }

    #[tokio::test]
    async fn tail_reports_a_reset_when_the_keys_are_lost() {
        let Some((store, name)) = open("reset", 100) else {
            return;
        };
        conformance::append_ids(&store, &["a"]).await;
        let (_, start) = store.tail_start().await.expect("start");
        // What a Redis restarted without persistence looks like: the keys are gone.
        name.delete_keys();
        conformance::append_ids(&store, &["b"]).await;
        let tail = store.tail(start).await.expect("tail");
        assert!(tail.reset);
        assert_eq!(tail.next, LogPosition::default());
        let again = store.tail(tail.next).await.expect("tail");
        assert!(!again.reset);
        assert_eq!(again.entries.len(), 1);
    }
}
