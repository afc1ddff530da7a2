//! `herald soak`: a long churn run against one hub, watching its memory and file descriptors.
//!
//! For `--duration` it keeps publishing at `--rate` and keeps subscribers coming and going:
//! the number connected follows a wave between `--min-subscribers` and `--max-subscribers`
//! (one period per `--wave`), each subscriber stays a random time up to `--max-lifetime`, and
//! `--resume-percent` of them start from an id a little in the past (`Last-Event-ID`), so
//! history lookups and replays run all along. Some subscribers hold a token and also listen to
//! private topics; some anonymous ones listen to private topics they must never see.
//!
//! Every update's id names its topic and its number on that topic (`t3-41` is the 41st update
//! of public topic 3, `p3-41` of private topic 3), and each topic has a single publisher task,
//! so every subscriber can check what it gets: per topic, numbers follow each other with no gap
//! and no repeat; a resumed subscriber's first update of the resumed topic is the one right
//! after its `Last-Event-ID`; an anonymous subscriber never receives a private update.
//!
//! Every `--sample-every` it prints the hub's `VmRSS`, its open file descriptors and the run's
//! counters. At the end it waits for every subscriber to leave and checks: no error of any kind,
//! the hub's `/metrics` reporting no connection left, its file descriptors back to where they
//! started, and its RSS flat (the last samples' mean no more than `--rss-growth-limit` percent
//! above the mean of the samples right after the warm-up). It exits non-zero otherwise.
//!
//! `bench/soak.sh` starts a release hub with redb history in a temporary directory and runs
//! this against it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use herald_client::{EventSource, Publication, Publisher};
use herald_hub::mint::TokenRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::bench::{cpu_seconds, read_rss_kb};
use crate::duration::HumanDuration;

/// Prefix of the soak's topics; `t/K` are public, `p/K` private.
const TOPIC_PREFIX: &str = "https://soak.herald.test/";
/// Most subscribers started in one spawn tick, so connects arrive spread out rather than as
/// one burst against the hub's listen backlog.
const MAX_SPAWN_PER_TICK: usize = 100;
/// Interval of the spawner.
const SPAWN_TICK: Duration = Duration::from_millis(100);
/// How far back a resumed subscriber starts, at most, in updates of its topic: well inside
/// the history the hub keeps (`--history-size` 10000 over the default 20 + 20 topics).
const MAX_RESUME_BACK: u64 = 100;
/// Samples taken before the RSS comparison starts (allocator arenas and caches fill up).
const WARM_UP_SAMPLES: usize = 5;
/// Samples averaged at each end of the RSS comparison.
const COMPARED_SAMPLES: usize = 5;
/// Extra open descriptors tolerated on the hub at the end (redb, listeners, timers).
const FD_SLACK: i64 = 8;

/// Options of `herald soak`.
#[derive(Debug, clap::Args)]
pub(crate) struct SoakOptions {
    /// Base URL of the hub (scheme, host and port).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: url::Url,
    /// The hub's process id, whose memory and descriptors are sampled.
    #[arg(long = "hub-pid", value_name = "PID")]
    hub_pid: u32,
    /// HMAC secret to mint the publisher and subscriber tokens with (the hub's `--jwt-key`).
    #[arg(long, env = "HERALD_JWT_KEY", hide_env_values = true)]
    jwt_key: String,
    /// How long to churn.
    #[arg(long, default_value = "30m")]
    duration: HumanDuration,
    /// Publishes per second, over all topics.
    #[arg(long, default_value_t = 40.0)]
    rate: f64,
    /// Public topics; as many private ones.
    #[arg(long, default_value_t = 20)]
    topics: u64,
    /// Publisher tasks; topic K belongs to publisher K mod this.
    #[arg(long, default_value_t = 4)]
    publishers: u64,
    /// Fewest subscribers aimed at (at the start of each wave).
    #[arg(long, default_value_t = 200)]
    min_subscribers: usize,
    /// Most subscribers aimed at (in the middle of each wave).
    #[arg(long, default_value_t = 2000)]
    max_subscribers: usize,
    /// Period of the wave of subscribers; samples are taken at the same phase when it divides
    /// `--sample-every`.
    #[arg(long, default_value = "60s")]
    wave: HumanDuration,
    /// Longest a subscriber stays (each picks a random time from 1 s up to this).
    #[arg(long, default_value = "30s")]
    max_lifetime: HumanDuration,
    /// Percentage of subscribers that resume from a past id with `Last-Event-ID`.
    #[arg(long, default_value_t = 25)]
    resume_percent: u64,
    /// Percentage of subscribers with a token that also listen to a private topic.
    #[arg(long, default_value_t = 10)]
    private_percent: u64,
    /// Interval between samples of the hub's memory.
    #[arg(long, default_value = "60s")]
    sample_every: HumanDuration,
    /// Largest accepted RSS growth, in percent, between the samples after warm-up and the last
    /// ones.
    #[arg(long, default_value_t = 10.0)]
    rss_growth_limit: f64,
    /// Bytes of data per update.
    #[arg(long, default_value_t = 100)]
    size: usize,
}

/// Counters shared by every task.
#[derive(Default)]
struct Counters {
    published: AtomicU64,
    publish_errors: AtomicU64,
    started: AtomicU64,
    finished: AtomicU64,
    resumed: AtomicU64,
    received: AtomicU64,
    /// Subscribers whose stream failed (`EventSource` gave up) or could not connect.
    stream_errors: AtomicU64,
    /// A topic's numbers skipped one or more (missed updates).
    gaps: AtomicU64,
    /// A topic's number repeated or went back (duplicate or reordered updates).
    repeats: AtomicU64,
    /// A resumed subscriber's first update of the resumed topic was not the next one.
    bad_resumes: AtomicU64,
    /// An anonymous subscriber received a private update, or an update of a topic it did not
    /// ask for, or an id it could not read.
    strays: AtomicU64,
    /// Peak of connected subscribers since the last sample.
    peak_active: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    fn fail(&self, counter: &AtomicU64, what: impl FnOnce() -> String) {
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut slot) = self.first_error.lock()
            && slot.is_none()
        {
            *slot = Some(what());
        }
    }

    fn errors(&self) -> u64 {
        [
            &self.publish_errors,
            &self.stream_errors,
            &self.gaps,
            &self.repeats,
            &self.bad_resumes,
            &self.strays,
        ]
        .iter()
        .map(|counter| counter.load(Ordering::Relaxed))
        .sum()
    }
}

/// A topic of the soak: public or private, and its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Topic {
    private: bool,
    index: u64,
}

impl Topic {
    fn url(self) -> String {
        let kind = if self.private { 'p' } else { 't' };
        format!("{TOPIC_PREFIX}{kind}/{}", self.index)
    }

    fn id(self, number: u64) -> String {
        let kind = if self.private { 'p' } else { 't' };
        format!("{kind}{}-{number}", self.index)
    }

    /// Reads an id made by [`Topic::id`].
    fn parse_id(id: &str) -> Option<(Topic, u64)> {
        let private = match id.as_bytes().first()? {
            b'p' => true,
            b't' => false,
            _ => return None,
        };
        let (index, number) = id[1..].split_once('-')?;
        Some((
            Topic {
                private,
                index: index.parse().ok()?,
            },
            number.parse().ok()?,
        ))
    }
}

/// The latest number published on each topic (0: none yet), for resumes.
struct Published {
    public: Vec<AtomicU64>,
    private: Vec<AtomicU64>,
}

impl Published {
    fn of(&self, topic: Topic) -> &AtomicU64 {
        let slots = if topic.private {
            &self.private
        } else {
            &self.public
        };
        &slots[topic.index as usize]
    }
}

/// SplitMix64: the soak only needs cheap, reproducible spread, not quality randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// One minute's (one sample's) figures.
struct Sample {
    elapsed: Duration,
    rss_kb: u64,
    fds: usize,
    active: u64,
    peak_active: u64,
    started: u64,
    published: u64,
    received: u64,
    errors: u64,
    hub_cpu: f64,
}

/// Everything one run needs.
struct Run {
    options: SoakOptions,
    hub: String,
    subscriber_token: String,
    publisher: Publisher,
    counters: Counters,
    published: Published,
    padding: String,
}

/// Runs the soak and prints its report.
pub(crate) async fn run(options: SoakOptions) -> anyhow::Result<()> {
    if options.topics == 0 || options.publishers == 0 || options.rate <= 0.0 {
        bail!("--topics, --publishers and --rate must be positive");
    }
    if options.min_subscribers > options.max_subscribers {
        bail!("--min-subscribers must not exceed --max-subscribers");
    }
    if options.max_lifetime.0 < Duration::from_secs(1) {
        bail!("--max-lifetime must be at least 1s");
    }
    // The soak holds up to --max-subscribers sockets, and so does the hub.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let mut hub_url = options.url.clone();
    hub_url.set_path(herald_hub::config::HUB_PATH);
    let hub = hub_url.to_string();
    let mint = |publish: Vec<String>, subscribe: Vec<String>| {
        TokenRequest {
            publish,
            subscribe,
            ttl: options.duration.0 + Duration::from_secs(3600),
            issuer: "herald-soak".into(),
            audience: hub.clone(),
            subject: "herald-soak".into(),
            legacy: false,
            payload: None,
        }
        .sign_hmac(options.jwt_key.as_bytes())
    };
    let publisher_token = mint(vec!["*".into()], vec![])?;
    let subscriber_token = mint(vec![], vec!["*".into()])?;
    let publisher = Publisher::builder(hub.clone())
        .bearer(publisher_token)
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the publisher")?;
    let slots = |n| (0..n).map(|_| AtomicU64::new(0)).collect();
    let run = Arc::new(Run {
        hub,
        subscriber_token,
        publisher,
        counters: Counters::default(),
        published: Published {
            public: slots(options.topics),
            private: slots(options.topics),
        },
        padding: "x".repeat(options.size.saturating_sub(16)),
        options,
    });
    let pid = run.options.hub_pid;
    let fds_before = count_fds(pid).context("reading the hub's open descriptors")?;
    let rss_before = read_rss_kb(pid).context("reading the hub's VmRSS")?;
    println!(
        "soak: hub pid {pid}, {} KiB RSS, {fds_before} open descriptors before the run",
        rss_before
    );
    println!(
        "soak: {} of churn, {} publishes/s over {} + {} topics, {}..{} subscribers per {} wave, \
         lifetimes up to {}, {}% resume, {}% with a token",
        run.options.duration,
        run.options.rate,
        run.options.topics,
        run.options.topics,
        run.options.min_subscribers,
        run.options.max_subscribers,
        run.options.wave,
        run.options.max_lifetime,
        run.options.resume_percent,
        run.options.private_percent
    );
    println!("{}", Sample::header());

    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + run.options.duration.0;
    let mut tasks = JoinSet::new();
    for publisher in 0..run.options.publishers {
        tasks.spawn(publish_loop(Arc::clone(&run), publisher, deadline));
    }
    let subscribers = tokio::spawn(spawn_loop(Arc::clone(&run), started, deadline));

    let mut samples = Vec::new();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + run.options.sample_every.0,
        run.options.sample_every.0,
    );
    while tokio::time::Instant::now() + Duration::from_millis(500) < deadline {
        tokio::select! {
            _ = tick.tick() => {}
            () = tokio::time::sleep_until(deadline) => break,
        }
        let sample = take_sample(&run, started);
        println!("{}", sample.row());
        samples.push(sample);
    }
    while let Some(result) = tasks.join_next().await {
        result.context("a publisher task panicked")?;
    }
    let mut subscribers = subscribers.await.context("the spawner panicked")?;
    // Every subscriber leaves within its lifetime; wait for the last ones.
    while let Some(result) = subscribers.join_next().await {
        result.context("a subscriber task panicked")?;
    }
    // Give the hub a moment to notice the last disconnections.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = take_sample(&run, started);
    let metrics = fetch_metrics(&run.options.url)
        .await
        .context("reading the hub's /metrics")?;

    report(&run, &samples, &after, fds_before, &metrics)
}

/// Publishes to the topics of publisher `me` (K mod publishers == me), round robin, one
/// private update in ten, at its share of the rate, until `deadline`. One task per topic set
/// keeps each topic's numbers in publish order.
async fn publish_loop(run: Arc<Run>, me: u64, deadline: tokio::time::Instant) {
    let options = &run.options;
    let mine: Vec<u64> = (0..options.topics)
        .filter(|k| k % options.publishers == me)
        .collect();
    if mine.is_empty() {
        return;
    }
    let period = Duration::from_secs_f64(options.publishers as f64 / options.rate);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut turn = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = tokio::time::sleep_until(deadline) => return,
        }
        let topic = Topic {
            private: turn % 10 == 9,
            index: mine[(turn % mine.len() as u64) as usize],
        };
        turn += 1;
        let slot = run.published.of(topic);
        let number = slot.load(Ordering::Relaxed) + 1;
        let publication = Publication::new(topic.url())
            .id(topic.id(number))
            .private(topic.private)
            .data(format!("{} {}", topic.id(number), run.padding));
        match run.publisher.publish(&publication).await {
            Ok(_) => {
                slot.store(number, Ordering::Relaxed);
                run.counters.published.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                // The number is not reused: subscribers would see it as a gap, which is right,
                // since the hub refused an update.
                slot.store(number, Ordering::Relaxed);
                run.counters.fail(&run.counters.publish_errors, || {
                    format!("publish {}: {error}", topic.id(number))
                });
            }
        }
    }
}

/// Starts subscribers whenever fewer are connected than the wave asks for, until `deadline`.
/// Returns the subscriber tasks still running.
async fn spawn_loop(
    run: Arc<Run>,
    started: Instant,
    deadline: tokio::time::Instant,
) -> JoinSet<()> {
    let mut rng = Rng(u64::from(std::process::id()) << 32 | 0x5EED);
    let mut subscribers = JoinSet::new();
    let mut tick = tokio::time::interval(SPAWN_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = tokio::time::sleep_until(deadline) => return subscribers,
        }
        while subscribers.try_join_next().is_some() {}
        let target = wave_target(&run.options, started.elapsed());
        let active = subscribers.len();
        run.counters
            .peak_active
            .fetch_max(active as u64, Ordering::Relaxed);
        for _ in 0..target.saturating_sub(active).min(MAX_SPAWN_PER_TICK) {
            let plan = plan_subscriber(&run, &mut rng);
            subscribers.spawn(subscriber(Arc::clone(&run), plan));
        }
    }
}

/// `min + (max - min) * (1 - cos(2π t / wave)) / 2`: the minimum at the start of each wave,
/// the maximum in its middle.
fn wave_target(options: &SoakOptions, elapsed: Duration) -> usize {
    let phase = elapsed.as_secs_f64() / options.wave.0.as_secs_f64().max(0.001);
    let level = (1.0 - (std::f64::consts::TAU * phase).cos()) / 2.0;
    let span = (options.max_subscribers - options.min_subscribers) as f64;
    options.min_subscribers + (span * level).round() as usize
}

/// What one subscriber does.
struct Plan {
    topics: Vec<Topic>,
    with_token: bool,
    /// Resume from this update of `topics[0]`.
    resume_from: Option<u64>,
    lifetime: Duration,
}

fn plan_subscriber(run: &Run, rng: &mut Rng) -> Plan {
    let options = &run.options;
    let public = |rng: &mut Rng| Topic {
        private: false,
        index: rng.below(options.topics),
    };
    let private = |rng: &mut Rng| Topic {
        private: true,
        index: rng.below(options.topics),
    };
    let with_token = rng.percent(options.private_percent);
    let mut topics = Vec::new();
    if with_token {
        // Token holders read a private topic (first, so resumes exercise private replay) and
        // a public one.
        topics.push(private(rng));
        topics.push(public(rng));
    } else {
        topics.push(public(rng));
        if rng.percent(20) {
            let other = public(rng);
            if other != topics[0] {
                topics.push(other);
            }
        }
        // A few anonymous subscribers ask for a private topic they must never be sent.
        if rng.percent(5) {
            topics.push(private(rng));
        }
    }
    let latest = run.published.of(topics[0]).load(Ordering::Relaxed);
    let resume_from = (latest > 0 && rng.percent(options.resume_percent))
        .then(|| latest - rng.below(latest.min(MAX_RESUME_BACK)));
    let lifetime =
        Duration::from_millis(1000 + rng.below(options.max_lifetime.0.as_millis() as u64 - 999));
    Plan {
        topics,
        with_token,
        resume_from,
        lifetime,
    }
}

/// One subscriber: connects, checks every update it receives, leaves after its lifetime.
async fn subscriber(run: Arc<Run>, plan: Plan) {
    let counters = &run.counters;
    counters.started.fetch_add(1, Ordering::Relaxed);
    let mut url = format!("{}?", run.hub);
    for (i, topic) in plan.topics.iter().enumerate() {
        if i > 0 {
            url.push('&');
        }
        url.push_str("match=");
        url.extend(url::form_urlencoded::byte_serialize(topic.url().as_bytes()));
    }
    let mut builder = EventSource::builder(url)
        .retry_initial_connection(false)
        .connect_timeout(Duration::from_secs(10));
    if plan.with_token {
        builder = builder.bearer(run.subscriber_token.clone());
    }
    if let Some(from) = plan.resume_from {
        counters.resumed.fetch_add(1, Ordering::Relaxed);
        builder = builder.last_event_id(plan.topics[0].id(from));
    }
    let mut events = match builder.build() {
        Ok(events) => events,
        Err(error) => {
            counters.fail(&counters.stream_errors, || format!("building: {error}"));
            return;
        }
    };
    let mut last: HashMap<Topic, u64> = HashMap::new();
    let leave_at = tokio::time::Instant::now() + plan.lifetime;
    loop {
        let event = match tokio::time::timeout_at(leave_at, events.next()).await {
            Err(_) => break,
            Ok(None) => {
                counters.fail(&counters.stream_errors, || "stream ended early".into());
                break;
            }
            Ok(Some(Err(error))) => {
                counters.fail(&counters.stream_errors, || format!("stream: {error}"));
                break;
            }
            Ok(Some(Ok(event))) => event,
        };
        counters.received.fetch_add(1, Ordering::Relaxed);
        let Some((topic, number)) = Topic::parse_id(&event.id) else {
            counters.fail(&counters.strays, || format!("unreadable id {:?}", event.id));
            continue;
        };
        if !plan.topics.contains(&topic) || (topic.private && !plan.with_token) {
            counters.fail(&counters.strays, || {
                format!(
                    "{} reached a subscriber of {:?} (token: {})",
                    event.id, plan.topics, plan.with_token
                )
            });
            continue;
        }
        let expected = match last.get(&topic) {
            Some(previous) => Some(previous + 1),
            None if topic == plan.topics[0] => plan.resume_from.map(|from| from + 1),
            None => None,
        };
        if let Some(expected) = expected {
            if number > expected {
                let counter = if last.contains_key(&topic) {
                    &counters.gaps
                } else {
                    &counters.bad_resumes
                };
                counters.fail(counter, || {
                    format!("expected {} next, got {}", topic.id(expected), event.id)
                });
            } else if number < expected {
                counters.fail(&counters.repeats, || {
                    format!(
                        "expected {} next, got {} again or late",
                        topic.id(expected),
                        event.id
                    )
                });
            }
        }
        last.insert(topic, number);
    }
    events.close();
    counters.finished.fetch_add(1, Ordering::Relaxed);
}

fn take_sample(run: &Run, started: Instant) -> Sample {
    let counters = &run.counters;
    let pid = run.options.hub_pid;
    let started_count = counters.started.load(Ordering::Relaxed);
    let active = started_count - counters.finished.load(Ordering::Relaxed);
    Sample {
        elapsed: started.elapsed(),
        rss_kb: read_rss_kb(pid).unwrap_or(0),
        fds: count_fds(pid).unwrap_or(0),
        active,
        peak_active: counters.peak_active.swap(active, Ordering::Relaxed),
        started: started_count,
        published: counters.published.load(Ordering::Relaxed),
        received: counters.received.load(Ordering::Relaxed),
        errors: counters.errors(),
        hub_cpu: cpu_seconds(pid).unwrap_or(0.0),
    }
}

impl Sample {
    fn header() -> String {
        format!(
            "| {:>6} | {:>9} | {:>6} | {:>6} | {:>6} | {:>8} | {:>9} | {:>10} | {:>7} | {:>6} |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            "minute",
            "RSS KiB",
            "fds",
            "active",
            "peak",
            "subs",
            "published",
            "received",
            "hub CPU",
            "errors"
        )
    }

    fn row(&self) -> String {
        format!(
            "| {:>6.1} | {:>9} | {:>6} | {:>6} | {:>6} | {:>8} | {:>9} | {:>10} | {:>6.0}s | {:>6} |",
            self.elapsed.as_secs_f64() / 60.0,
            self.rss_kb,
            self.fds,
            self.active,
            self.peak_active,
            self.started,
            self.published,
            self.received,
            self.hub_cpu,
            self.errors
        )
    }
}

/// Open file descriptors of a process.
fn count_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// `GET /metrics` over a plain HTTP/1.1 connection; returns the body.
async fn fetch_metrics(url: &url::Url) -> anyhow::Result<String> {
    let host = url.host_str().context("--url has no host")?;
    let port = url.port_or_known_default().context("--url has no port")?;
    let mut stream = tokio::net::TcpStream::connect((host, port)).await?;
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .context("timed out")??;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no response head")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_owned())
}

/// A gauge or counter of the `/metrics` text (`name value`, ignoring chunk framing lines).
fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

fn report(
    run: &Run,
    samples: &[Sample],
    after: &Sample,
    fds_before: usize,
    metrics: &str,
) -> anyhow::Result<()> {
    let counters = &run.counters;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!("after every subscriber left:");
    println!("{}", after.row());
    println!(
        "subscribers {} ({} resumed), published {} ({} errors), received {}",
        load(&counters.started),
        load(&counters.resumed),
        load(&counters.published),
        load(&counters.publish_errors),
        load(&counters.received)
    );
    println!(
        "errors: stream {}, gaps {}, repeats {}, bad resumes {}, strays {}",
        load(&counters.stream_errors),
        load(&counters.gaps),
        load(&counters.repeats),
        load(&counters.bad_resumes),
        load(&counters.strays)
    );
    let mut failures = Vec::new();
    if counters.errors() > 0 {
        let first = counters
            .first_error
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .unwrap_or_default();
        failures.push(format!("{} errors (first: {first})", counters.errors()));
    }
    for name in [
        "herald_connections",
        "herald_subscriptions",
        "herald_topics",
    ] {
        match metric(metrics, name) {
            Some(0.0) => {}
            Some(value) => failures.push(format!("hub still reports {name} {value}")),
            None => failures.push(format!("hub's /metrics has no {name}")),
        }
    }
    for name in [
        "herald_store_errors_total",
        "herald_connections_opened_total",
        "herald_replays_total",
        "herald_queue_overflows_total",
    ] {
        if let Some(value) = metric(metrics, name) {
            println!("hub {name} {value}");
        }
    }
    if metric(metrics, "herald_store_errors_total").is_some_and(|v| v > 0.0) {
        failures.push("the hub counted store errors".into());
    }
    let fd_growth = after.fds as i64 - fds_before as i64;
    println!("hub descriptors: {fds_before} before, {} after", after.fds);
    if fd_growth > FD_SLACK {
        failures.push(format!(
            "hub holds {fd_growth} more descriptors than before"
        ));
    }
    let mut verdict = String::new();
    let mut judged = false;
    if samples.len() >= WARM_UP_SAMPLES + 2 * COMPARED_SAMPLES {
        let mean = |s: &[Sample]| s.iter().map(|s| s.rss_kb as f64).sum::<f64>() / s.len() as f64;
        let early = mean(&samples[WARM_UP_SAMPLES..WARM_UP_SAMPLES + COMPARED_SAMPLES]);
        let late = mean(&samples[samples.len() - COMPARED_SAMPLES..]);
        let growth = (late / early - 1.0) * 100.0;
        let max = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
        let _ = write!(
            verdict,
            "RSS mean of samples {}-{}: {early:.0} KiB, of the last {COMPARED_SAMPLES}: {late:.0} KiB \
             ({growth:+.1} %), max {max} KiB, after everyone left {} KiB",
            WARM_UP_SAMPLES + 1,
            WARM_UP_SAMPLES + COMPARED_SAMPLES,
            after.rss_kb
        );
        judged = true;
        if growth > run.options.rss_growth_limit {
            failures.push(format!(
                "RSS grew {growth:.1} % (limit {} %)",
                run.options.rss_growth_limit
            ));
        }
    } else {
        let _ = write!(
            verdict,
            "too few samples ({}) to judge the RSS curve (needs {})",
            samples.len(),
            WARM_UP_SAMPLES + 2 * COMPARED_SAMPLES
        );
    }
    println!("{verdict}");
    if failures.is_empty() {
        let rss = if judged { "RSS flat" } else { "RSS not judged" };
        println!("verdict: PASS (no errors, no leftover connections or descriptors, {rss})");
        Ok(())
    } else {
        println!("verdict: FAIL");
        bail!("{}", failures.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for topic in [
            Topic {
                private: false,
                index: 0,
            },
            Topic {
                private: true,
                index: 17,
            },
        ] {
            assert_eq!(Topic::parse_id(&topic.id(41)), Some((topic, 41)));
        }
        assert_eq!(Topic::parse_id("urn:uuid:x"), None);
        assert_eq!(Topic::parse_id("t1"), None);
    }

    #[test]
    fn metric_lines_are_read() {
        let text = "# HELP herald_connections x\nherald_connections 0\nherald_topics 3\n";
        assert_eq!(metric(text, "herald_connections"), Some(0.0));
        assert_eq!(metric(text, "herald_topics"), Some(3.0));
        assert_eq!(metric(text, "herald_missing"), None);
    }
}
