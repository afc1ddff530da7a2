//! [`Hub`]: publishing with group commit, fan-out, subscriber lifecycle and sweeping.
//!
//! How an update flows: `publish` hands the update to the committer task; the committer
//! gathers every publish waiting at that moment into one batch, appends the batch to the
//! history store in one durable commit, then dispatches each update in order and answers
//! each publisher. A 200 therefore always means "in history", and concurrent publishers
//! share commits instead of queueing behind one fsync each.
//!
//! When the store is a log shared by several nodes ([`SharedLog`], the Redis cluster
//! transport), the committer only appends and answers; a tail task reads the log back and
//! dispatches every node's updates, this node's included, in the log's one order. Ended
//! topics travel through the log as control entries, so every node closes its streams after
//! delivering the final event.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::auth::{Claims, TokenVerifier};
use crate::config::HubConfig;
use crate::queue::{CloseReason, SubscriberQueue};
use crate::registry::Registry;
use crate::store::{HistoryStore, LogEntry, LogPosition, StoreError};
use crate::stream::{Cursor, SubscriptionStream};
use crate::subscriber::{Subscriber, Subscription};
use crate::subscription_event;
use crate::update::{Update, UpdateFields};

/// Most publishes committed together; bounds the latency a batch adds to its first member.
const MAX_BATCH: usize = 256;
/// Publishes waiting for the committer before `publish` waits for room.
const PUBLISH_QUEUE: usize = 4096;
/// How long `end_topics` waits for this node's tail to apply an end it appended to a shared
/// log (it is applied anyway; this only bounds how long the caller waits for the count).
const END_APPLY_WAIT: Duration = Duration::from_secs(5);
/// Ends applied from a shared log whose closed-stream counts are kept for `end_topics`.
const RECENT_ENDS: usize = 64;
/// Longest pause between tail reads while the shared log is unreachable.
const TAIL_RETRY_MAX: Duration = Duration::from_secs(2);

/// Why a publish was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The update could not be encoded (an id or type that would inject SSE fields).
    #[error("invalid update: {0}")]
    Invalid(#[from] herald_wire::EventError),
    /// History could not be written, so the update was not dispatched.
    #[error("{0}")]
    Store(String),
    /// The hub is shutting down.
    #[error("the hub is shutting down")]
    ShuttingDown,
}

/// Why a subscription could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Every selector names a topic a publisher ended: answer 204 so browsers stop.
    #[error("this stream has ended")]
    Ended,
    /// History could not be read to resume.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The hub is shutting down.
    #[error("the hub is shutting down")]
    ShuttingDown,
}

/// Where a new subscriber starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Only updates published from now on.
    Live,
    /// Everything retained (`Last-Event-ID: earliest`).
    Earliest,
    /// Everything after the update with this id.
    After(String),
}

/// A subscribe request the HTTP layer has parsed and authorized.
#[derive(Debug)]
pub struct OpenRequest {
    /// The selectors, with payloads from the token.
    pub subscriptions: Vec<Subscription>,
    /// The validated token, if any.
    pub claims: Option<Arc<Claims>>,
    /// Where to start.
    pub resume: Resume,
}

/// An opened subscription: the stream and what to say in the response head.
#[derive(Debug)]
pub struct Opened {
    /// The event stream to send as the response body.
    pub stream: SubscriptionStream,
    /// For `Mercure-Last-Event-ID`: the id preceding the first update sent, or `earliest`.
    /// `None` when the request asked for no resume.
    pub resumed_from: Option<String>,
}

/// Counters since start, read by the dashboard and `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Updates accepted (published and durable), subscription events included.
    pub published: AtomicU64,
    /// Frames queued to subscribers by live fan-out.
    pub delivered: AtomicU64,
    /// Subscribers whose queue overflowed and who were caught up from history.
    pub overflows: AtomicU64,
    /// Subscriptions that resumed from history.
    pub replays: AtomicU64,
    /// Subscribe requests accepted since start.
    pub connections_total: AtomicU64,
    /// Connections refused by the global or per-address connection limits.
    pub connections_refused: AtomicU64,
    /// Publishes refused because history could not be written.
    pub store_errors: AtomicU64,
    /// How long each group-commit append to history took.
    pub append_latency: crate::metrics::LatencyHistogram,
    /// Times a shared log lost what this node had read (Redis restarted empty, or this node
    /// fell behind retention), making every local subscriber resume from history.
    pub log_resets: AtomicU64,
    /// Failed reads of a shared log (each retried).
    pub log_errors: AtomicU64,
}

/// The newest dispatched update.
#[derive(Debug, Default)]
struct Head {
    seq: u64,
    id: Option<String>,
}

struct PublishJob {
    update: Update,
    /// `None` for hub-generated updates nobody waits for (subscription events).
    reply: Option<oneshot::Sender<Result<Arc<Update>, PublishError>>>,
}

struct Inner {
    config: HubConfig,
    store: Arc<dyn HistoryStore>,
    verifier: Option<TokenVerifier>,
    /// Read-locked by every dispatch, write-locked by connect and disconnect. A std lock:
    /// it is never held across an await.
    registry: RwLock<Registry>,
    /// Only touched while `registry` is locked (written under the read lock by the single
    /// committer, read under the write lock by registration), which makes "the head at
    /// registration" exact: every later dispatch reaches the new subscriber.
    head: Mutex<Head>,
    publisher: mpsc::Sender<PublishJob>,
    /// Ended topics and when their 204 window closes.
    ended: Mutex<HashMap<String, Instant>>,
    /// Whether the store is a log shared with other nodes, dispatched by the tail task.
    shared: bool,
    /// How far this node's tail has applied the shared log.
    tailed: watch::Sender<LogPosition>,
    /// Streams closed by recently tailed end entries, for `end_topics` to report.
    recent_ends: Mutex<VecDeque<(LogPosition, usize)>>,
    next_key: AtomicU64,
    shutting_down: AtomicBool,
    stats: Stats,
    /// The discovery `Link` header every response carries, built once.
    link: Option<http::HeaderValue>,
}

/// The hub: cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("hub_url", &self.inner.config.hub_url.as_str())
            .field("store", &self.inner.store.kind())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Starts a hub: spawns its committer and sweeper tasks on the current Tokio runtime.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub async fn start(
        config: HubConfig,
        store: Arc<dyn HistoryStore>,
        verifier: Option<TokenVerifier>,
    ) -> Result<Hub, StoreError> {
        let (bounds, position) = match store.shared_log() {
            Some(log) => log.tail_start().await?,
            None => (store.bounds().await?, LogPosition::default()),
        };
        let shared = store.shared_log().is_some();
        let link =
            http::HeaderValue::from_str(&format!("<{}>; rel=\"mercure\"", config.hub_url)).ok();
        let (publisher, jobs) = mpsc::channel(PUBLISH_QUEUE);
        let inner = Arc::new(Inner {
            config,
            store,
            verifier,
            registry: RwLock::new(Registry::default()),
            head: Mutex::new(Head {
                seq: bounds.last,
                id: bounds.last_id,
            }),
            publisher,
            ended: Mutex::new(HashMap::new()),
            shared,
            tailed: watch::Sender::new(position),
            recent_ends: Mutex::new(VecDeque::new()),
            next_key: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
            stats: Stats::default(),
            link,
        });
        tokio::spawn(commit_loop(Arc::downgrade(&inner), jobs));
        tokio::spawn(sweep_loop(Arc::downgrade(&inner)));
        if shared {
            tokio::spawn(tail_loop(Arc::downgrade(&inner), position));
        }
        Ok(Hub { inner })
    }

    /// Whether [`Hub::shutdown`] has begun (long-lived responses such as the dashboard's
    /// stats stream end when it has).
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// The token verifier, when keys are configured.
    pub fn verifier(&self) -> Option<&TokenVerifier> {
        self.inner.verifier.as_ref()
    }

    /// The history store.
    pub fn store(&self) -> &Arc<dyn HistoryStore> {
        &self.inner.store
    }

    /// The discovery header, `Link: <hub URL>; rel="mercure"`.
    pub(crate) fn link_header(&self) -> Option<&http::HeaderValue> {
        self.inner.link.as_ref()
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Connected subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.registry().len()
    }

    /// Distinct exact topics and patterns currently listened to.
    pub fn topic_count(&self) -> usize {
        self.registry().topic_count()
    }

    /// The id of the newest dispatched update, if any.
    pub fn last_event_id(&self) -> Option<String> {
        self.head().id.clone()
    }

    /// Publishes an update that is already validated and authorized: appends it to history
    /// (group commit), dispatches it, and returns it once durable.
    ///
    /// Publishing to an ended topic starts a new stream on it: the 204 window closes when
    /// the update is dispatched.
    pub async fn publish(&self, fields: UpdateFields) -> Result<Arc<Update>, PublishError> {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return Err(PublishError::ShuttingDown);
        }
        let update = Update::encode(fields)?;
        let (reply, answer) = oneshot::channel();
        let job = PublishJob {
            update,
            reply: Some(reply),
        };
        self.inner
            .publisher
            .send(job)
            .await
            .map_err(|_| PublishError::ShuttingDown)?;
        answer.await.map_err(|_| PublishError::ShuttingDown)?
    }

    /// Ends every subscription to `topics`: open streams get `final_update` (when given, it
    /// is published first, so it is also in history) and are closed; for
    /// [`HubConfig::ended_ttl`] new subscribers to exactly these topics get 204.
    /// Returns how many streams were closed on this node.
    ///
    /// On a shared log the end is appended to the log after the final update, and every node
    /// applies it when its tail reaches it; this waits (a few seconds at most) for this node
    /// to have applied it.
    pub async fn end_topics(
        &self,
        topics: &[String],
        final_update: Option<UpdateFields>,
    ) -> Result<usize, PublishError> {
        if let Some(fields) = final_update {
            self.publish(fields).await?;
        }
        let Some(log) = self.inner.store.shared_log() else {
            return Ok(apply_end(&self.inner, topics));
        };
        let position = log
            .append_end(topics.to_vec())
            .await
            .map_err(|error| PublishError::Store(error.to_string()))?;
        let mut tailed = self.inner.tailed.subscribe();
        let applied =
            tokio::time::timeout(END_APPLY_WAIT, tailed.wait_for(|at| *at >= position)).await;
        if !matches!(applied, Ok(Ok(_))) {
            return Ok(0);
        }
        let recent = self
            .inner
            .recent_ends
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(recent
            .iter()
            .find(|(at, _)| *at == position)
            .map_or(0, |(_, closed)| *closed))
    }

    /// Whether a subscribe with these subscriptions must be answered 204: all of them
    /// name ended topics exactly.
    fn is_ended(&self, subscriptions: &[Subscription]) -> bool {
        let ended = self.ended();
        if ended.is_empty() {
            return false;
        }
        let now = Instant::now();
        subscriptions.iter().all(|subscription| {
            subscription
                .selector
                .as_exact()
                .and_then(|topic| ended.get(topic))
                .is_some_and(|until| *until > now)
        })
    }

    /// Opens a subscription: registers the subscriber (from this instant it receives every
    /// dispatched update), then resolves where replay starts.
    ///
    /// On an ended topic, a client resuming from before the end first gets what it missed,
    /// the final event included, and then the stream closes; with nothing missed (or no
    /// resume) the answer is [`OpenError::Ended`] (204).
    pub async fn open(&self, request: OpenRequest) -> Result<Opened, OpenError> {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return Err(OpenError::ShuttingDown);
        }
        let ended = self.is_ended(&request.subscriptions);
        let config = &self.inner.config;
        let deadline = connection_deadline(
            request.claims.as_deref().map(|claims| claims.expires_at),
            config.max_connection_age,
        );
        let subscriber = Arc::new(Subscriber {
            key: self.inner.next_key.fetch_add(1, Ordering::Relaxed),
            id: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            subscriptions: request.subscriptions,
            claims: request.claims,
            queue: SubscriberQueue::new(config.queue_frames, config.queue_bytes),
            deadline,
        });
        // Not registered yet: answering 204 here leaves nothing behind.
        if ended && !self.missed_before_end(&subscriber, &request.resume).await? {
            return Err(OpenError::Ended);
        }
        let head = {
            let mut registry = self
                .inner
                .registry
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            registry.insert(subscriber.clone());
            self.head().seq
        };
        self.inner
            .stats
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        // From here on the stream owns the registration: dropping it unregisters.
        let mut stream = SubscriptionStream::new(self.clone(), subscriber.clone(), head);
        if ended {
            stream.end_after_replay();
        }
        if config.subscription_events {
            self.subscription_events(&subscriber, true);
        }
        let resumed_from = match request.resume {
            Resume::Live => None,
            Resume::Earliest => {
                stream.set_cursor(Cursor::Replay {
                    after: 0,
                    contiguous: false,
                });
                Some("earliest".to_owned())
            }
            Resume::After(id) => match self.inner.store.position(&id).await? {
                Some(seq) => {
                    stream.set_cursor(Cursor::Replay {
                        after: seq,
                        contiguous: true,
                    });
                    Some(id)
                }
                None => {
                    stream.set_cursor(Cursor::Replay {
                        after: 0,
                        contiguous: false,
                    });
                    stream.notify_history_gap(&id);
                    Some("earliest".to_owned())
                }
            },
        };
        if resumed_from.is_some() {
            self.inner.stats.replays.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Opened {
            stream,
            resumed_from,
        })
    }

    /// Whether history holds an update for these subscriptions after the resume point (an
    /// unknown id counts as before everything retained). Reads batch by batch until it finds
    /// one: only clients coming back to an ended stream pay for it.
    async fn missed_before_end(
        &self,
        subscriber: &Subscriber,
        resume: &Resume,
    ) -> Result<bool, StoreError> {
        let store = &self.inner.store;
        let mut after = match resume {
            Resume::Live => return Ok(false),
            Resume::Earliest => 0,
            Resume::After(id) => store.position(id).await?.unwrap_or(0),
        };
        let batch = self.inner.config.replay_batch.max(1);
        loop {
            let updates = store.read_after(after, batch).await?;
            if updates.iter().any(|update| subscriber.wants(update)) {
                return Ok(true);
            }
            match updates.last() {
                Some(last) if updates.len() == batch => after = last.seq,
                _ => return Ok(false),
            }
        }
    }

    /// Removes a subscriber; called when its stream is dropped.
    pub(crate) fn unregister(&self, key: u64) {
        let removed = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
        if let Some(subscriber) = removed
            && self.inner.config.subscription_events
        {
            self.subscription_events(&subscriber, false);
        }
    }

    /// A snapshot of the connected subscribers, for the subscriptions API.
    pub fn subscribers(&self) -> Vec<Arc<Subscriber>> {
        self.registry().subscribers().cloned().collect()
    }

    /// Publishes one subscription event per subscription of `subscriber`, without waiting.
    fn subscription_events(&self, subscriber: &Subscriber, active: bool) {
        for subscription in &subscriber.subscriptions {
            let fields =
                subscription_event::update(&self.inner.config, subscriber, subscription, active);
            let Ok(update) = Update::encode(fields) else {
                continue;
            };
            let job = PublishJob {
                update,
                reply: None,
            };
            if let Err(mpsc::error::TrySendError::Full(job)) = self.inner.publisher.try_send(job) {
                let publisher = self.inner.publisher.clone();
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move { publisher.send(job).await });
                }
            }
        }
    }

    /// Stops the hub: refuses new publishes and subscribers, closes every stream with a
    /// `retry` hint, and waits (up to `grace`) for publishes already accepted to commit.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::Release);
        for subscriber in self.registry().subscribers() {
            subscriber.queue.close(CloseReason::Shutdown);
        }
        let deadline = Instant::now() + grace;
        // The committer drains what is already queued; wait until the queue is empty.
        while self.inner.publisher.capacity() < self.inner.publisher.max_capacity()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn head(&self) -> std::sync::MutexGuard<'_, Head> {
        self.inner
            .head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ended(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.inner
            .ended
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// When a stream must be closed: the token's `exp`, or the maximum connection age.
fn connection_deadline(expires_at: Option<u64>, max_age: Option<Duration>) -> Option<Instant> {
    let now = Instant::now();
    let by_token = expires_at.map(|exp| {
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        now + Duration::from_secs(exp.saturating_sub(unix_now))
    });
    let by_age = max_age.map(|age| now + age);
    match (by_token, by_age) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The committer: batches waiting publishes into one durable append, then dispatches.
async fn commit_loop(hub: Weak<Inner>, mut jobs: mpsc::Receiver<PublishJob>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let Some(inner) = hub.upgrade() else { return };
        let (updates, replies): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|job| (job.update, job.reply)).unzip();
        let started = tokio::time::Instant::now();
        let appended = inner.store.append(updates).await;
        inner.stats.append_latency.observe(started.elapsed());
        match appended {
            Ok(stored) => {
                inner
                    .stats
                    .published
                    .fetch_add(stored.len() as u64, Ordering::Relaxed);
                // On a shared log the tail dispatches, in the log's order across nodes.
                if !inner.shared {
                    dispatch(&inner, &stored);
                }
                for (update, reply) in stored.into_iter().zip(replies) {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(update));
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "history append failed; publishes refused");
                inner
                    .stats
                    .store_errors
                    .fetch_add(replies.len() as u64, Ordering::Relaxed);
                let message = error.to_string();
                for reply in replies.into_iter().flatten() {
                    let _ = reply.send(Err(PublishError::Store(message.clone())));
                }
            }
        }
    }
}

/// Fans a committed batch out to the registry, in order. Publishing to an ended topic
/// starts a new stream on it, so the batch's topics leave the ended set.
fn dispatch(inner: &Inner, updates: &[Arc<Update>]) {
    {
        let mut ended = inner.ended.lock().unwrap_or_else(|p| p.into_inner());
        if !ended.is_empty() {
            for update in updates {
                for topic in &update.topics {
                    ended.remove(topic);
                }
            }
        }
    }
    let registry = inner
        .registry
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut delivered = 0;
    for update in updates {
        {
            let mut head = inner.head.lock().unwrap_or_else(|p| p.into_inner());
            head.seq = update.seq;
            head.id = Some(update.id.clone());
        }
        delivered += registry.dispatch(update);
    }
    inner
        .stats
        .delivered
        .fetch_add(delivered as u64, Ordering::Relaxed);
}

/// Marks `topics` ended for the configured window and closes every stream listening only to
/// them. Returns how many were closed.
fn apply_end(inner: &Inner, topics: &[String]) -> usize {
    let until = Instant::now() + inner.config.ended_ttl;
    {
        let mut ended = inner.ended.lock().unwrap_or_else(|p| p.into_inner());
        for topic in topics {
            ended.insert(topic.clone(), until);
        }
    }
    let registry = inner
        .registry
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut closed = 0;
    for subscriber in registry.subscribers() {
        let listens_only_to_ended = subscriber.subscriptions.iter().all(|subscription| {
            subscription
                .selector
                .as_exact()
                .is_some_and(|topic| topics.iter().any(|ended| ended == topic))
        });
        if listens_only_to_ended {
            subscriber.queue.close(CloseReason::Ended(None));
            closed += 1;
        }
    }
    closed
}

/// Reads a shared log from `position` on and applies every entry: updates are dispatched
/// (this node's and every other node's), ends close streams. Retries with backoff while the
/// log is unreachable, continuing from where it stopped.
async fn tail_loop(hub: Weak<Inner>, mut position: LogPosition) {
    let mut retry = Duration::from_millis(100);
    loop {
        let store = match hub.upgrade() {
            Some(inner) if !inner.shutting_down.load(Ordering::Acquire) => inner.store.clone(),
            _ => return,
        };
        // Only the store is held while the read waits, so dropping the hub stops this task
        // within one read.
        let Some(log) = store.shared_log() else {
            return;
        };
        let read = log.tail(position).await;
        let Some(inner) = hub.upgrade() else { return };
        match read {
            Ok(tail) => {
                if retry > Duration::from_millis(100) {
                    tracing::info!(store = store.kind(), "shared log reachable again");
                }
                retry = Duration::from_millis(100);
                if tail.reset {
                    inner.stats.log_resets.fetch_add(1, Ordering::Relaxed);
                    reset_subscribers(&inner);
                }
                apply_entries(&inner, &tail.entries);
                position = tail.next;
                inner.tailed.send_replace(position);
            }
            Err(error) => {
                inner.stats.log_errors.fetch_add(1, Ordering::Relaxed);
                if retry == Duration::from_millis(100) {
                    tracing::error!(%error, "cannot read the shared log; retrying");
                }
                drop(inner);
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(TAIL_RETRY_MAX);
            }
        }
    }
}

/// Applies tailed entries in order: runs of updates are dispatched together, each end is
/// applied between them and its closed-stream count kept for `end_topics`.
fn apply_entries(inner: &Inner, entries: &[(LogPosition, LogEntry)]) {
    let mut run = Vec::new();
    for (position, entry) in entries {
        match entry {
            LogEntry::Update(update) => run.push(update.clone()),
            LogEntry::End(topics) => {
                dispatch(inner, &run);
                run.clear();
                let closed = apply_end(inner, topics);
                let mut recent = inner
                    .recent_ends
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if recent.len() == RECENT_ENDS {
                    recent.pop_front();
                }
                recent.push_back((*position, closed));
            }
        }
    }
    dispatch(inner, &run);
}

/// The log lost what this node had read: every local subscriber resumes from history (with
/// a `retry` hint), and the head starts over so that new subscribers take the next updates
/// whatever their seqs.
fn reset_subscribers(inner: &Inner) {
    let registry = inner
        .registry
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *inner.head.lock().unwrap_or_else(|p| p.into_inner()) = Head::default();
    for subscriber in registry.subscribers() {
        subscriber.queue.close(CloseReason::Lagged);
    }
}

/// One shared timer for every subscriber: heartbeats on idle streams, closing streams whose
/// token expired or that reached the maximum age, and forgetting expired ended topics.
async fn sweep_loop(hub: Weak<Inner>) {
    let (heartbeat, tick) = match hub.upgrade() {
        Some(inner) => {
            let heartbeat = inner.config.heartbeat;
            (heartbeat, heartbeat.min(Duration::from_secs(1)))
        }
        None => return,
    };
    let heartbeat_frame = herald_wire::heartbeat_frame();
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_heartbeat = Instant::now() + heartbeat;
    loop {
        ticker.tick().await;
        let Some(inner) = hub.upgrade() else { return };
        if inner.shutting_down.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let beat = now >= next_heartbeat;
        if beat {
            next_heartbeat = now + heartbeat;
        }
        {
            let registry = inner
                .registry
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for subscriber in registry.subscribers() {
                if let Some(deadline) = subscriber.deadline
                    && deadline <= now
                {
                    let expired_token = subscriber
                        .claims
                        .as_ref()
                        .is_some_and(|claims| claims.expires_at <= unix_now());
                    subscriber.queue.close(if expired_token {
                        CloseReason::TokenExpired
                    } else {
                        CloseReason::MaxAge
                    });
                    continue;
                }
                if beat {
                    subscriber.queue.heartbeat_if_idle(&heartbeat_frame);
                }
            }
        }
        inner
            .ended
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|_, until| *until > now);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}
