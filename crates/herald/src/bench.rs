//! `herald bench`: a fan-out load generator for Herald and, side by side, Nchan.
//!
//! It opens N subscribers as raw TCP connections (a hand-written HTTP/1.1 `GET` and a streaming
//! parser for the response head, the chunked framing and the SSE `data:` lines) so that one
//! idle subscriber costs the load generator a few hundred bytes, not a full HTTP client. Then C
//! publishers, each on its own keep-alive connection, send E events of S bytes at rate R. Every
//! event's data starts with its send time (nanoseconds since an `Instant` shared by publishers
//! and subscribers, 20 decimal digits) padded to S bytes, so each delivery gives one
//! publish→receive latency sample for an HDR histogram.
//!
//! Loopback subscribers are spread over source addresses 127.0.0.x, 127.0.0.x+1, … (x ≥ 2
//! picked from the process id; 10k per address, see `--per-source`) because one source address only has ~28k ephemeral
//! ports and a 4-tuple per connection.
//!
//! With `--stalled N`, N more subscribers to the same topics connect and never read a byte
//! (4 KB receive buffers): the latency of the others, compared with a run without, is what a
//! stalled subscriber costs them.
//!
//! With `--hub-pid` the report adds the hub's CPU seconds over the run (utime + stime from
//! `/proc/PID/stat`) and its resident memory per subscriber (`VmRSS` after connecting minus
//! before, over N). Several `--hub-pid` are summed (Nchan's nginx workers).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use herald_hub::mint::TokenRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::duration::HumanDuration;

/// Digits of the send timestamp at the start of every event's data.
const STAMP_DIGITS: usize = 20;
/// Subscribers connecting at once: more would overflow the hub's listen backlog (1024 in
/// tokio) and turn into SYN retransmits of a second or more.
const CONNECT_CONCURRENCY: usize = 256;
/// Largest response head accepted from the hub.
const MAX_HEAD: usize = 16 * 1024;
/// Linux reports `/proc/PID/stat` times in USER_HZ, which is 100 on every supported arch.
const USER_HZ: f64 = 100.0;

/// Which hub the bench speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Target {
    /// Herald (Mercure): `GET /.well-known/mercure?match=`, `POST topic=&data=`.
    Herald,
    /// Nchan: `GET /sub?id=` (EventSource), `POST /pub?id=` with the raw body.
    Nchan,
}

/// Options of `herald bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchOptions {
    /// Base URL of the hub (scheme, host and port; `http` only). Repeat it for the nodes of a
    /// cluster: subscribers are spread over them in turn, events are published to the first.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: Vec<url::Url>,
    /// Which protocol to speak.
    #[arg(long, value_enum, default_value = "herald")]
    target: Target,
    /// Subscribers to open.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Events to publish (ignored with `--duration`).
    #[arg(long, default_value_t = 100)]
    events: u64,
    /// Bytes of data per event (at least 20: the send timestamp).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Events per second over all publishers; 0 publishes as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Concurrent publishers, each on its own keep-alive connection.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Publish for this long instead of a fixed number of events (throughput runs).
    #[arg(long)]
    duration: Option<HumanDuration>,
    /// Topics: subscriber i listens to topic i mod K, event j goes to topic j mod K.
    #[arg(long, default_value_t = 1)]
    topics: usize,
    /// Also open this many subscribers (on the same topics) that never read a byte, with
    /// small receive buffers: how much do they cost the subscribers that do read?
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    /// Add one subscriber matching every topic (`match=*`; Herald only).
    #[arg(long)]
    wildcard: bool,
    /// Connect, hold the subscribers this long, measure memory; publish nothing.
    #[arg(long)]
    idle: Option<HumanDuration>,
    /// Bound on the whole run; the bench stops by itself after it.
    #[arg(long, default_value = "120s")]
    timeout: HumanDuration,
    /// After the last publish, how long to wait for deliveries still in flight.
    #[arg(long, default_value = "15s")]
    drain: HumanDuration,
    /// Subscribers per loopback source address (127.0.0.x, x+1, …; x from the process id).
    #[arg(long, default_value_t = 10_000)]
    per_source: usize,
    /// Hub process to measure (CPU, RSS); repeat to sum several processes.
    #[arg(long = "hub-pid", value_name = "PID")]
    hub_pid: Vec<u32>,
    /// Publisher token (Herald). Default: minted from `--jwt-key`.
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// HMAC secret to mint a publisher token with (the hub's `--jwt-key`).
    #[arg(long, env = "HERALD_JWT_KEY", hide_env_values = true)]
    jwt_key: Option<String>,
    /// Prefix of topic names (Herald) or channel ids (Nchan).
    #[arg(long, default_value = "https://bench.herald.test/t/")]
    topic_prefix: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// State shared by every task of one run.
struct Shared {
    /// Origin of the timestamps written into the events.
    epoch: Instant,
    /// Deliveries (SSE `data:` lines) received by all subscribers.
    delivered: AtomicU64,
    /// Nanoseconds since `epoch` of the latest delivery, for the deliveries-per-second figure.
    last_delivery: AtomicU64,
    /// Subscribers whose response head said 200.
    connected: AtomicU64,
    /// Subscribers that failed to connect or got a non-200 answer.
    connect_errors: AtomicU64,
    /// Subscribers whose stream ended or failed after connecting.
    disconnected: AtomicU64,
    /// Data lines that did not start with a timestamp.
    malformed: AtomicU64,
    /// Publish→receive latency in microseconds. One lock per read batch, not per event.
    latency: Mutex<Histogram<u64>>,
    /// First error text seen, to tell the user why.
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn note_error(&self, error: impl std::fmt::Display) {
        if let Ok(mut slot) = self.first_error.lock()
            && slot.is_none()
        {
            *slot = Some(error.to_string());
        }
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Runs the bench and prints the report.
pub(crate) async fn run(options: BenchOptions) -> anyhow::Result<()> {
    if options.size < STAMP_DIGITS {
        bail!("--size must be at least {STAMP_DIGITS} bytes (the send timestamp)");
    }
    if options.topics == 0 || options.per_source == 0 || options.publishers == 0 {
        bail!("--topics, --per-source and --publishers must be at least 1");
    }
    if options.wildcard && options.target == Target::Nchan {
        bail!("--wildcard needs --target herald (Nchan has no wildcard subscriptions)");
    }
    let nodes = options
        .url
        .iter()
        .map(Node::resolve)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let fd_limit = raise_fd_limit();
    let timeout = options.timeout.0;
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        delivered: AtomicU64::new(0),
        last_delivery: AtomicU64::new(0),
        connected: AtomicU64::new(0),
        connect_errors: AtomicU64::new(0),
        disconnected: AtomicU64::new(0),
        malformed: AtomicU64::new(0),
        latency: Mutex::new(
            Histogram::new_with_bounds(1, 3_600_000_000, 3).context("latency histogram")?,
        ),
        first_error: Mutex::new(None),
    });
    let report = tokio::time::timeout(timeout, measure(&options, &nodes, &shared)).await;
    let (mut report, timed_out) = match report {
        Ok(report) => (report?, false),
        Err(_) => (Report::default(), true),
    };
    report.timed_out = timed_out;
    report.fd_limit = fd_limit;
    report.fill_from(&shared);
    report.print(&options)?;
    let complete = if options.idle.is_some() {
        report.subscribers_connected == report.subscribers_requested && report.connect_errors == 0
    } else {
        report.delivered == report.expected
            && report.publish_errors == 0
            && report.subscribers_connected == report.subscribers_requested
    };
    if timed_out || !complete {
        let why = shared
            .first_error
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .unwrap_or_else(|| "no error reported".into());
        bail!(
            "incomplete run: {}/{} subscribers, {}/{} deliveries, {} publish errors{} (first error: {why})",
            report.subscribers_connected,
            report.subscribers_requested,
            report.delivered,
            report.expected,
            report.publish_errors,
            if timed_out { ", timed out" } else { "" },
        );
    }
    Ok(())
}

/// Raises the soft limit of open files to the hard limit; returns the soft limit in force.
fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-file limit");
            rlimit::Resource::NOFILE.get().map_or(0, |(soft, _)| soft)
        }
    }
}

/// Everything the bench reports.
#[derive(Debug, Default, serde::Serialize)]
struct Report {
    target: String,
    subscribers_requested: u64,
    subscribers_connected: u64,
    stalled_subscribers: u64,
    connect_errors: u64,
    disconnected: u64,
    connect_seconds: f64,
    events_published: u64,
    publish_errors: u64,
    publish_seconds: f64,
    publishes_per_second: f64,
    publish_p50_ms: f64,
    publish_p99_ms: f64,
    expected: u64,
    delivered: u64,
    malformed: u64,
    delivery_seconds: f64,
    deliveries_per_second: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    latency_p999_ms: f64,
    latency_max_ms: f64,
    hub_cpu_seconds: Option<f64>,
    deliveries_per_hub_cpu_second: Option<f64>,
    hub_rss_before_kb: Option<u64>,
    hub_rss_after_connect_kb: Option<u64>,
    hub_rss_per_subscriber_bytes: Option<f64>,
    hub_rss_end_kb: Option<u64>,
    bench_cpu_seconds: Option<f64>,
    idle_seconds: Option<f64>,
    fd_limit: u64,
    timed_out: bool,
}

impl Report {
    fn fill_from(&mut self, shared: &Shared) {
        self.subscribers_connected = shared.connected.load(Ordering::Relaxed);
        self.connect_errors = shared.connect_errors.load(Ordering::Relaxed);
        self.disconnected = shared.disconnected.load(Ordering::Relaxed);
        self.delivered = shared.delivered.load(Ordering::Relaxed);
        self.malformed = shared.malformed.load(Ordering::Relaxed);
        if let Ok(histogram) = shared.latency.lock()
            && !histogram.is_empty()
        {
            let ms = |us: u64| us as f64 / 1000.0;
            self.latency_p50_ms = ms(histogram.value_at_quantile(0.50));
            self.latency_p99_ms = ms(histogram.value_at_quantile(0.99));
            self.latency_p999_ms = ms(histogram.value_at_quantile(0.999));
            self.latency_max_ms = ms(histogram.max());
        }
        if self.delivery_seconds > 0.0 {
            self.deliveries_per_second = self.delivered as f64 / self.delivery_seconds;
        }
        if let Some(cpu) = self.hub_cpu_seconds
            && cpu > 0.0
        {
            self.deliveries_per_hub_cpu_second = Some(self.delivered as f64 / cpu);
        }
    }

    fn print(&self, options: &BenchOptions) -> anyhow::Result<()> {
        if options.json {
            println!("{}", serde_json::to_string(self)?);
            return Ok(());
        }
        let opt = |value: Option<f64>, unit: &str| {
            value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}{unit}"))
        };
        println!("target                 {}", self.target);
        println!(
            "subscribers            {}/{} connected in {:.2}s ({} errors, {} dropped)",
            self.subscribers_connected,
            self.subscribers_requested,
            self.connect_seconds,
            self.connect_errors,
            self.disconnected
        );
        if self.stalled_subscribers > 0 {
            println!(
                "stalled                {} more subscribers that never read",
                self.stalled_subscribers
            );
        }
        if let Some(idle) = self.idle_seconds {
            println!("idle                   held {idle:.1}s");
        } else {
            println!(
                "published              {} events in {:.2}s ({:.0}/s, {} errors; publish p50 {:.2} ms, p99 {:.2} ms)",
                self.events_published,
                self.publish_seconds,
                self.publishes_per_second,
                self.publish_errors,
                self.publish_p50_ms,
                self.publish_p99_ms
            );
            println!(
                "delivered              {}/{} ({} malformed) in {:.2}s: {:.0}/s",
                self.delivered,
                self.expected,
                self.malformed,
                self.delivery_seconds,
                self.deliveries_per_second
            );
            println!(
                "latency                p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
                self.latency_p50_ms, self.latency_p99_ms, self.latency_p999_ms, self.latency_max_ms
            );
        }
        println!(
            "hub CPU                {}  ({} deliveries per CPU-second)",
            opt(self.hub_cpu_seconds, " s"),
            opt(self.deliveries_per_hub_cpu_second, "")
        );
        println!(
            "hub RSS per subscriber {}",
            opt(self.hub_rss_per_subscriber_bytes, " bytes")
        );
        if let (Some(connected), Some(end)) = (self.hub_rss_after_connect_kb, self.hub_rss_end_kb) {
            println!("hub RSS                {connected} KiB connected, {end} KiB at the end");
        }
        println!(
            "bench CPU              {}",
            opt(self.bench_cpu_seconds, " s")
        );
        Ok(())
    }
}

/// One hub node to connect to.
struct Node {
    addr: SocketAddr,
    /// The `Host` header for it.
    host: String,
}

impl Node {
    fn resolve(url: &url::Url) -> anyhow::Result<Node> {
        if url.scheme() != "http" {
            bail!("--url must be http:// (the bench speaks plain HTTP/1.1)");
        }
        let addr = url
            .socket_addrs(|| Some(80))
            .with_context(|| format!("resolving --url {url}"))?
            .into_iter()
            .next()
            .with_context(|| format!("--url {url} resolves to no address"))?;
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or("localhost")),
            None => url.host_str().unwrap_or("localhost").to_owned(),
        };
        Ok(Node { addr, host })
    }
}

/// The run proper: connect, (publish | idle), wait for deliveries.
async fn measure(
    options: &BenchOptions,
    nodes: &[Node],
    shared: &Arc<Shared>,
) -> anyhow::Result<Report> {
    let mut report = Report {
        target: format!("{:?}", options.target).to_lowercase(),
        ..Report::default()
    };
    let plain = options.subscribers;
    let total = plain + usize::from(options.wildcard);
    report.subscribers_requested = total as u64;
    report.hub_rss_before_kb = sum_pids(&options.hub_pid, read_rss_kb);
    let bench_cpu_start = cpu_seconds(std::process::id());

    // Connect every subscriber; each task reports `connected` once its response head is in.
    let progress = progress_bar(total as u64, "connecting");
    let started = Instant::now();
    let mut subscribers = JoinSet::new();
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut per_topic = vec![0u64; options.topics];
    for index in 0..total {
        let path = if index == plain {
            match_path(options, None)
        } else {
            per_topic[index % options.topics] += 1;
            match_path(options, Some(index % options.topics))
        };
        let Node { addr, host } = &nodes[index % nodes.len()];
        let addr = *addr;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\nUser-Agent: herald-bench\r\n\r\n"
        );
        let source = source_address(addr, index, options.per_source);
        let shared = Arc::clone(shared);
        let gate = Arc::clone(&gate);
        subscribers.spawn(subscriber(addr, source, request, shared, gate));
    }
    loop {
        let done = shared.connected.load(Ordering::Relaxed)
            + shared.connect_errors.load(Ordering::Relaxed);
        progress.set_position(done);
        if done >= total as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress.finish_and_clear();
    report.connect_seconds = started.elapsed().as_secs_f64();
    // Held (never read) until the run ends; not counted as deliveries.
    let mut stalled = Vec::with_capacity(options.stalled);
    for index in 0..options.stalled {
        let path = match_path(options, Some(index % options.topics));
        let Node { addr, host } = &nodes[index % nodes.len()];
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\nUser-Agent: herald-bench-stalled\r\n\r\n"
        );
        let source = source_address(*addr, total + index, options.per_source);
        stalled.push(open_stalled(*addr, source, &request).await?);
    }
    report.stalled_subscribers = stalled.len() as u64;
    // Give the hub a moment to register the last subscribers (the head may be flushed before
    // the registration is visible to publishers) and to settle its allocator.
    tokio::time::sleep(Duration::from_millis(500)).await;
    report.hub_rss_after_connect_kb = sum_pids(&options.hub_pid, read_rss_kb);
    if let (Some(before), Some(after)) = (report.hub_rss_before_kb, report.hub_rss_after_connect_kb)
        && total > 0
    {
        report.hub_rss_per_subscriber_bytes =
            Some((after as f64 - before as f64) * 1024.0 / total as f64);
    }
    let hub_cpu_start = sum_pids(&options.hub_pid, cpu_seconds);

    if let Some(idle) = options.idle {
        tokio::time::sleep(idle.0).await;
        report.idle_seconds = Some(idle.0.as_secs_f64());
    } else {
        publish_all(
            options,
            nodes[0].addr,
            &nodes[0].host,
            shared,
            &per_topic,
            &mut report,
        )
        .await?;
    }

    // After publishing: with stalled subscribers, what their backed-up streams hold.
    report.hub_rss_end_kb = sum_pids(&options.hub_pid, read_rss_kb);
    if let (Some(start), Some(end)) = (hub_cpu_start, sum_pids(&options.hub_pid, cpu_seconds)) {
        report.hub_cpu_seconds = Some(end - start);
    }
    if let (Some(start), Some(end)) = (bench_cpu_start, cpu_seconds(std::process::id())) {
        report.bench_cpu_seconds = Some(end - start);
    }
    subscribers.abort_all();
    drop(stalled);
    Ok(report)
}

/// Opens a subscription that will never be read: a 4 KB receive buffer, the request sent, and
/// nothing read back, not even the response head.
async fn open_stalled(
    addr: SocketAddr,
    source: Option<IpAddr>,
    request: &str,
) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    if let Some(source) = source {
        socket.set_reuseaddr(true)?;
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("binding {source}"))?;
    }
    let mut stream = socket
        .connect(addr)
        .await
        .context("connecting a stalled subscriber")?;
    stream.write_all(request.as_bytes()).await?;
    Ok(stream)
}

/// Publishes, then waits for the deliveries still in flight.
async fn publish_all(
    options: &BenchOptions,
    addr: SocketAddr,
    host: &str,
    shared: &Arc<Shared>,
    per_topic: &[u64],
    report: &mut Report,
) -> anyhow::Result<()> {
    let token = match (&options.token, &options.jwt_key) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(key)) => Some(
            TokenRequest {
                publish: vec!["*".into()],
                subscribe: vec![],
                ttl: Duration::from_secs(3600),
                issuer: "herald-bench".into(),
                audience: format!("http://{host}/.well-known/mercure"),
                subject: "herald-bench".into(),
                legacy: false,
                payload: None,
            }
            .sign_hmac(key.as_bytes())?,
        ),
        (None, None) => None,
    };
    if token.is_none() && options.target == Target::Herald {
        bail!("publishing to Herald needs --token or --jwt-key");
    }
    let plan = Arc::new(PublishPlan {
        events: if options.duration.is_some() {
            u64::MAX
        } else {
            options.events
        },
        deadline: options.duration.map(|d| Instant::now() + d.0),
        rate: options.rate,
        size: options.size,
        topics: options.topics,
        next: AtomicU64::new(0),
        published: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        round_trip: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3)?),
        start: Instant::now(),
        head: publish_head(options, host, token.as_deref()),
        target: options.target,
        topic_prefix: options.topic_prefix.clone(),
    });
    let expected_per_event = |event: u64| {
        per_topic[(event % options.topics as u64) as usize] + u64::from(options.wildcard)
    };
    let progress_len = if options.duration.is_some() {
        0
    } else {
        (0..options.events).map(expected_per_event).sum()
    };
    let progress = progress_bar(progress_len, "delivering");
    let publish_start_nanos = shared.now_nanos();
    let mut publishers = JoinSet::new();
    for _ in 0..options.publishers {
        let plan = Arc::clone(&plan);
        let shared = Arc::clone(shared);
        publishers.spawn(publisher(addr, plan, shared));
    }
    while !publishers.is_empty() {
        tokio::select! {
            _ = publishers.join_next() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                progress.set_position(shared.delivered.load(Ordering::Relaxed));
            }
        }
    }
    let published = plan.published.load(Ordering::Relaxed);
    report.events_published = published;
    report.publish_errors = plan.errors.load(Ordering::Relaxed);
    report.publish_seconds = plan.start.elapsed().as_secs_f64();
    if report.publish_seconds > 0.0 {
        report.publishes_per_second = published as f64 / report.publish_seconds;
    }
    if let Ok(histogram) = plan.round_trip.lock()
        && !histogram.is_empty()
    {
        report.publish_p50_ms = histogram.value_at_quantile(0.5) as f64 / 1000.0;
        report.publish_p99_ms = histogram.value_at_quantile(0.99) as f64 / 1000.0;
    }
    // Event indexes 0..published were taken (failed ones are counted in `errors` and make the
    // run incomplete anyway), so this is what a perfect hub would deliver.
    report.expected = (0..published).map(expected_per_event).sum();
    if options.duration.is_some() {
        progress.set_length(report.expected);
    }
    let drain_until = Instant::now() + options.drain.0;
    let mut last = shared.delivered.load(Ordering::Relaxed);
    while last < report.expected && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        last = shared.delivered.load(Ordering::Relaxed);
        progress.set_position(last);
    }
    progress.finish_and_clear();
    let last_delivery = shared.last_delivery.load(Ordering::Relaxed);
    report.delivery_seconds =
        last_delivery.saturating_sub(publish_start_nanos) as f64 / 1_000_000_000.0;
    Ok(())
}

/// The request path of subscriber to `topic` (`None`: the wildcard).
fn match_path(options: &BenchOptions, topic: Option<usize>) -> String {
    match (options.target, topic) {
        (Target::Herald, Some(topic)) => format!(
            "/.well-known/mercure?match={}",
            encode(&format!("{}{topic}", options.topic_prefix))
        ),
        (Target::Herald, None) => "/.well-known/mercure?match=*".to_owned(),
        (Target::Nchan, topic) => format!(
            "/sub?id={}",
            encode(&channel_id(&options.topic_prefix, topic.unwrap_or(0)))
        ),
    }
}

/// Nchan channel ids cannot hold `/` or `:`; keep only the safe characters of the prefix.
fn channel_id(prefix: &str, topic: usize) -> String {
    let safe: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    format!("{safe}{topic}")
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Source address for subscriber `index`: loopback targets get 127.0.0.2 + index / per_source.
fn source_address(target: SocketAddr, index: usize, per_source: usize) -> Option<IpAddr> {
    if !target.ip().is_loopback() || !target.is_ipv4() {
        return None;
    }
    // Start from an address that depends on the process id, so back-to-back runs mostly use
    // fresh source addresses instead of the ports the previous run left in TIME_WAIT.
    let first = 2 + (std::process::id() as usize % 50) * 4;
    let host = first + index / per_source;
    let host = u32::try_from(host).ok().filter(|h| *h < 0x00ff_ffff)?;
    Some(IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | host)))
}

/// One subscriber: connect, send the request, check the head, then count `data:` lines.
async fn subscriber(
    addr: SocketAddr,
    source: Option<IpAddr>,
    request: String,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
) {
    let stream = {
        let Ok(_permit) = gate.acquire().await else {
            return;
        };
        match open_subscription(addr, source, request).await {
            Ok((stream, parser)) => Some((stream, parser)),
            Err(error) => {
                shared.connect_errors.fetch_add(1, Ordering::Relaxed);
                shared.note_error(format_args!("subscribe: {error}"));
                None
            }
        }
    };
    let Some((stream, mut parser)) = stream else {
        return;
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);
    loop {
        if let Err(error) = stream.readable().await {
            shared.note_error(format_args!("subscriber read: {error}"));
            break;
        }
        match drain(&stream, &mut parser, &shared) {
            Ok(true) => {}
            Ok(false) => {
                shared.note_error("subscriber stream ended");
                break;
            }
            Err(error) => {
                shared.note_error(format_args!("subscriber read: {error}"));
                break;
            }
        }
    }
    shared.disconnected.fetch_add(1, Ordering::Relaxed);
}

/// Connects and reads the response head; returns the stream and a parser that has already
/// consumed any body bytes that came with the head.
async fn open_subscription(
    addr: SocketAddr,
    source: Option<IpAddr>,
    request: String,
) -> anyhow::Result<(TcpStream, StreamParser)> {
    let socket = TcpSocket::new_v4()?;
    if let Some(source) = source {
        // Without SO_REUSEADDR, `bind(ip:0)` skips every port still in TIME_WAIT from the
        // previous run and fails with EADDRINUSE once they run out; with it the kernel may
        // reuse them (loopback TIME_WAIT reuse is on by default, `tcp_tw_reuse = 2`).
        socket.set_reuseaddr(true)?;
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("binding {source}"))?;
    }
    let mut stream = socket.connect(addr).await.context("connecting")?;
    stream.set_nodelay(true)?;
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(512);
    let (status, chunked, used) = loop {
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("connection closed before the response head");
        }
        head.extend_from_slice(&buf[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(used) = response.parse(&head)? {
            let chunked = response.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("transfer-encoding")
                    && String::from_utf8_lossy(h.value)
                        .to_ascii_lowercase()
                        .contains("chunked")
            });
            break (response.code.unwrap_or(0), chunked, used);
        }
        if head.len() > MAX_HEAD {
            bail!("response head longer than {MAX_HEAD} bytes");
        }
    };
    if status != 200 {
        bail!("status {status}");
    }
    let mut parser = StreamParser::new(chunked);
    // Bytes of the body that came with the head: nothing is published yet, so they are
    // preamble (`retry:`, comments) and only need to go through the framing state.
    parser.feed(&head[used..], |_| {});
    Ok((stream, parser))
}

/// Reads everything available without waiting. `Ok(false)` when the stream ended.
///
/// The read buffer lives on this synchronous function's stack, not in the subscriber's
/// future, so an idle subscriber holds no buffer at all.
fn drain(stream: &TcpStream, parser: &mut StreamParser, shared: &Shared) -> io::Result<bool> {
    let mut buf = [0u8; 16 * 1024];
    let mut stamps = [0u64; 256];
    let mut count = 0usize;
    let mut malformed = 0u64;
    let mut open = true;
    loop {
        let n = match stream.try_read(&mut buf) {
            Ok(0) => {
                open = false;
                break;
            }
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) => return Err(error),
        };
        parser.feed(&buf[..n], |line| match parse_stamp(line) {
            Some(stamp) => {
                if count == stamps.len() {
                    record(shared, &stamps);
                    count = 0;
                }
                stamps[count] = stamp;
                count += 1;
            }
            None => malformed += 1,
        });
    }
    record(shared, &stamps[..count]);
    if malformed > 0 {
        shared.malformed.fetch_add(malformed, Ordering::Relaxed);
    }
    Ok(open)
}

/// Records a batch of deliveries (their send stamps) under one lock.
fn record(shared: &Shared, stamps: &[u64]) {
    if stamps.is_empty() {
        return;
    }
    let now = shared.now_nanos();
    if let Ok(mut histogram) = shared.latency.lock() {
        for stamp in stamps {
            let micros = now.saturating_sub(*stamp) / 1000;
            histogram.saturating_record(micros.max(1));
        }
    }
    shared
        .delivered
        .fetch_add(stamps.len() as u64, Ordering::Relaxed);
    shared.last_delivery.fetch_max(now, Ordering::Relaxed);
}

/// Reads the send timestamp at the start of a `data:` line's value.
fn parse_stamp(value: &[u8]) -> Option<u64> {
    let digits = value.get(..STAMP_DIGITS)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Streaming parser of a subscriber's response body: HTTP/1.1 chunked framing (or none), then
/// SSE lines, of which only the first bytes of `data:` lines are kept.
#[derive(Debug)]
struct StreamParser {
    /// Where we are in the chunked framing; `None` for a body without framing.
    chunk: Option<Chunk>,
    /// The first bytes of the current line: enough for `data: ` and the timestamp.
    line: [u8; 32],
    /// Bytes of the current line seen so far (may exceed `line.len()`).
    line_len: usize,
}

/// State of the chunked-transfer decoder.
#[derive(Debug, Clone, Copy)]
enum Chunk {
    /// Reading the hex size (`size` so far); `ext` once past `;` extensions.
    Size { size: u64, ext: bool },
    /// Inside chunk data with this many bytes left.
    Data(u64),
    /// After chunk data: skipping its CRLF.
    DataEnd,
    /// After the last chunk: ignore the rest.
    Done,
}

impl StreamParser {
    fn new(chunked: bool) -> Self {
        StreamParser {
            chunk: chunked.then_some(Chunk::Size {
                size: 0,
                ext: false,
            }),
            line: [0; 32],
            line_len: 0,
        }
    }

    /// Feeds body bytes; calls `on_data` with the value of each complete `data:` line
    /// (truncated to what `line` holds).
    fn feed(&mut self, mut bytes: &[u8], mut on_data: impl FnMut(&[u8])) {
        while !bytes.is_empty() {
            let Some(chunk) = self.chunk else {
                self.lines(bytes, &mut on_data);
                return;
            };
            match chunk {
                Chunk::Size { size, ext } => {
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    self.chunk = Some(match byte {
                        b'\n' if size == 0 => Chunk::Done,
                        b'\n' => Chunk::Data(size),
                        _ if ext => chunk,
                        b';' | b'\r' | b' ' => Chunk::Size { size, ext: true },
                        _ => {
                            let digit = (byte as char).to_digit(16).map_or(0, u64::from);
                            Chunk::Size {
                                size: size.saturating_mul(16).saturating_add(digit),
                                ext,
                            }
                        }
                    });
                }
                Chunk::Data(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    let (now, rest) = bytes.split_at(take);
                    self.lines(now, &mut on_data);
                    bytes = rest;
                    let left = left - take as u64;
                    self.chunk = Some(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                }
                Chunk::DataEnd => {
                    if bytes[0] == b'\n' {
                        self.chunk = Some(Chunk::Size {
                            size: 0,
                            ext: false,
                        });
                    }
                    bytes = &bytes[1..];
                }
                Chunk::Done => return,
            }
        }
    }

    fn lines(&mut self, bytes: &[u8], on_data: &mut impl FnMut(&[u8])) {
        for &byte in bytes {
            if byte == b'\n' {
                let kept = &self.line[..self.line_len.min(self.line.len())];
                if let Some(value) = kept.strip_prefix(b"data:") {
                    on_data(value.strip_prefix(b" ").unwrap_or(value));
                }
                self.line_len = 0;
            } else if byte != b'\r' {
                if self.line_len < self.line.len() {
                    self.line[self.line_len] = byte;
                }
                self.line_len = self.line_len.saturating_add(1);
            }
        }
    }
}

/// What the publishers share.
struct PublishPlan {
    /// Events to publish in all (`u64::MAX` with a deadline).
    events: u64,
    /// Stop publishing at this instant (`--duration`).
    deadline: Option<Instant>,
    /// Events per second over all publishers; 0 for as fast as possible.
    rate: f64,
    /// Bytes of data per event.
    size: usize,
    /// Number of topics events are spread over.
    topics: usize,
    /// Next event index to take.
    next: AtomicU64,
    /// Publishes answered with a 2xx.
    published: AtomicU64,
    /// Publishes that failed.
    errors: AtomicU64,
    /// Publish round trips in microseconds.
    round_trip: Mutex<Histogram<u64>>,
    /// When publishing began (for the rate schedule).
    start: Instant,
    /// Request head up to (excluding) the request target, built once.
    head: PublishHead,
    /// Protocol.
    target: Target,
    /// Topic prefix.
    topic_prefix: String,
}

/// The fixed parts of a publish request.
struct PublishHead {
    /// Header lines after the request line, without `Content-Length` and the blank line.
    headers: String,
}

fn publish_head(options: &BenchOptions, host: &str, token: Option<&str>) -> PublishHead {
    let mut headers = format!("Host: {host}\r\nUser-Agent: herald-bench\r\n");
    if let Some(token) = token {
        headers.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if options.target == Target::Herald {
        headers.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    } else {
        headers.push_str("Content-Type: text/plain\r\n");
    }
    PublishHead { headers }
}

/// One publisher on one keep-alive connection: takes event indexes until the plan is done.
async fn publisher(addr: SocketAddr, plan: Arc<PublishPlan>, shared: Arc<Shared>) {
    let mut connection: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(1024);
    let mut request = Vec::with_capacity(plan.size + 1024);
    let encoded_topics: Vec<String> = (0..plan.topics)
        .map(|topic| match plan.target {
            Target::Herald => encode(&format!("{}{topic}", plan.topic_prefix)),
            Target::Nchan => encode(&channel_id(&plan.topic_prefix, topic)),
        })
        .collect();
    loop {
        let index = plan.next.fetch_add(1, Ordering::Relaxed);
        if index >= plan.events || plan.deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        if plan.rate > 0.0 {
            let due = plan.start + Duration::from_secs_f64(index as f64 / plan.rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let topic = &encoded_topics[(index % plan.topics as u64) as usize];
        let started = Instant::now();
        let stamp = shared.now_nanos();
        let mut data = format!("{stamp:0width$}", width = STAMP_DIGITS);
        data.extend(std::iter::repeat_n(
            'x',
            plan.size.saturating_sub(data.len()),
        ));
        request.clear();
        match plan.target {
            Target::Herald => {
                let body = format!("topic={topic}&data={data}");
                request.extend_from_slice(
                    format!(
                        "POST /.well-known/mercure HTTP/1.1\r\n{}Content-Length: {}\r\n\r\n{body}",
                        plan.head.headers,
                        body.len()
                    )
                    .as_bytes(),
                );
            }
            Target::Nchan => {
                request.extend_from_slice(
                    format!(
                        "POST /pub?id={topic} HTTP/1.1\r\n{}Content-Length: {}\r\n\r\n{data}",
                        plan.head.headers,
                        data.len()
                    )
                    .as_bytes(),
                );
            }
        }
        let result = publish_once(addr, &mut connection, &request, &mut buf).await;
        match result {
            Ok(status) if (200..300).contains(&status) => {
                plan.published.fetch_add(1, Ordering::Relaxed);
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                if let Ok(mut histogram) = plan.round_trip.lock() {
                    histogram.saturating_record(micros.max(1));
                }
            }
            Ok(status) => {
                plan.errors.fetch_add(1, Ordering::Relaxed);
                shared.note_error(format_args!("publish: status {status}"));
            }
            Err(error) => {
                plan.errors.fetch_add(1, Ordering::Relaxed);
                shared.note_error(format_args!("publish: {error:#}"));
                connection = None;
            }
        }
    }
}

/// Sends one request on the keep-alive connection (opening it if needed) and reads the answer.
async fn publish_once(
    addr: SocketAddr,
    connection: &mut Option<TcpStream>,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> anyhow::Result<u16> {
    let stream = match connection {
        Some(stream) => stream,
        None => {
            let stream = TcpStream::connect(addr).await.context("connecting")?;
            stream.set_nodelay(true)?;
            connection.insert(stream)
        }
    };
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the response");
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(used) = response.parse(buf)? else {
            if buf.len() > MAX_HEAD {
                bail!("response head longer than {MAX_HEAD} bytes");
            }
            continue;
        };
        let status = response.code.unwrap_or(0);
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        for header in response.headers.iter() {
            let value = String::from_utf8_lossy(header.value).to_ascii_lowercase();
            if header.name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.contains("chunked");
            } else if header.name.eq_ignore_ascii_case("connection") {
                close = value.contains("close");
            }
        }
        // Read the rest of the body so the next response starts clean.
        loop {
            let body = &buf[used..];
            let complete = match (length, chunked) {
                (Some(length), _) => body.len() >= length,
                (None, true) => body.ends_with(b"0\r\n\r\n"),
                (None, false) => true,
            };
            if complete {
                break;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed in the response body");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        if close || (length.is_none() && !chunked) {
            *connection = None;
        }
        return Ok(status);
    }
}

fn progress_bar(length: u64, message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length);
    let style = indicatif::ProgressStyle::with_template(
        "{msg:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar
}

/// Sums a per-process figure over several pids; `None` if any is missing or none given.
fn sum_pids<T: std::iter::Sum<T>>(pids: &[u32], read: fn(u32) -> Option<T>) -> Option<T> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| read(*pid)).sum()
}

/// `VmRSS` of a process in KiB.
pub(crate) fn read_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After `)`: state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    // utime(14) stime(15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_lines(parser: &mut StreamParser, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        parser.feed(bytes, |value| out.push(value.to_vec()));
        out
    }

    #[test]
    fn chunked_events_split_anywhere() {
        let body =
            b"f\r\nretry: 2000\n\n\r\n1c\r\nid: a\ndata: 00000000000000000042xx\n\n\r\n0\r\n\r\n";
        for split in 0..body.len() {
            let mut parser = StreamParser::new(true);
            let mut lines = data_lines(&mut parser, &body[..split]);
            lines.extend(data_lines(&mut parser, &body[split..]));
            assert_eq!(
                lines,
                vec![b"00000000000000000042xx".to_vec()],
                "split {split}"
            );
        }
    }

    #[test]
    fn unframed_stream_and_stamp() {
        let mut parser = StreamParser::new(false);
        let lines = data_lines(&mut parser, b": hi\n\ndata: 00000000000000001234\r\n\r\n");
        assert_eq!(lines.len(), 1);
        assert_eq!(parse_stamp(&lines[0]), Some(1234));
        assert_eq!(parse_stamp(b"garbage"), None);
    }

    #[test]
    fn source_addresses_rotate_on_loopback_only() {
        let hub: SocketAddr = "127.0.0.1:3000".parse().unwrap_or_else(|_| unreachable!());
        let first = source_address(hub, 0, 10_000);
        let Some(IpAddr::V4(first)) = first else {
            panic!("loopback gets a source address: {first:?}")
        };
        assert_eq!(first.octets()[..3], [127, 0, 0]);
        assert!(first.octets()[3] >= 2);
        assert_eq!(source_address(hub, 9_999, 10_000), Some(IpAddr::V4(first)));
        let next = Ipv4Addr::from(u32::from(first) + 1);
        assert_eq!(source_address(hub, 10_000, 10_000), Some(IpAddr::V4(next)));
        let remote: SocketAddr = "10.0.0.1:3000".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(source_address(remote, 0, 10_000), None);
    }
}
