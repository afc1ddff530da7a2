//! `/metrics`: the hub's counters and gauges in the Prometheus / OpenMetrics text format,
//! with [`prometheus_client`].
//!
//! The counters live in [`Stats`](crate::hub::Stats) as plain atomics (the hot path only
//! does a relaxed `fetch_add`); a scrape copies them into a registry built for that scrape,
//! so nothing here is shared with the delivery path except the append-latency histogram.
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `herald_connections` | gauge | subscribers connected now |
//! | `herald_subscriptions` | gauge | selectors of the connected subscribers |
//! | `herald_topics` | gauge | distinct exact topics subscribed to |
//! | `herald_connections_opened_total` | counter | subscribe requests accepted |
//! | `herald_connections_refused_total` | counter | connections refused by the connection limits (503 / 429) |
//! | `herald_publishes_total` | counter | updates committed to history |
//! | `herald_deliveries_total` | counter | frames queued to subscribers by live fan-out |
//! | `herald_queue_overflows_total` | counter | subscribers caught up from history after a full queue |
//! | `herald_replays_total` | counter | subscriptions that resumed from history |
//! | `herald_store_errors_total` | counter | publishes refused because history could not be written |
//! | `herald_store_append_seconds` | histogram | duration of one group-commit append |
//! | `herald_log_errors_total` | counter | failed reads of the cluster's shared log (each retried) |
//! | `herald_log_resets_total` | counter | times the shared log lost what this node had read; its subscribers resumed from history |
//! | `herald_build_info` | info | `version` label |

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::hub::Hub;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bucket bounds of [`LatencyHistogram`], in seconds: 50 µs to ~3 s, doubling. A memory
/// append takes microseconds, a durable redb commit (fsync) milliseconds.
fn buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.0, 16)
}

/// A latency histogram that can be recorded from the hot path (a few atomic updates under a
/// short lock inside `prometheus_client`) and exported by a scrape.
#[derive(Clone)]
pub struct LatencyHistogram(Histogram);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self(Histogram::new(buckets()))
    }
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LatencyHistogram")
    }
}

impl LatencyHistogram {
    /// Records one duration.
    pub fn observe(&self, duration: Duration) {
        self.0.observe(duration.as_secs_f64());
    }
}

/// Renders every metric of `hub` in the OpenMetrics text format (which Prometheus scrapes).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// let config = herald_hub::HubConfig::new("http://127.0.0.1:3000".parse().unwrap());
/// let store = Arc::new(herald_hub::store::memory::MemoryStore::new(10));
/// let hub = herald_hub::Hub::start(config, store, None).await.unwrap();
/// let text = herald_hub::metrics::render(&hub);
/// assert!(text.contains("herald_publishes_total 0"));
/// assert!(text.ends_with("# EOF\n"));
/// # });
/// ```
pub fn render(hub: &Hub) -> String {
    let stats = hub.stats();
    let counter =
        |value: &std::sync::atomic::AtomicU64| ConstCounter::new(value.load(Ordering::Relaxed));
    let subscribers = hub.subscribers();
    let subscriptions: usize = subscribers.iter().map(|s| s.subscriptions.len()).sum();
    let mut registry = Registry::with_prefix("herald");
    registry.register(
        "connections",
        "Subscribers connected now",
        ConstGauge::new(subscribers.len() as i64),
    );
    registry.register(
        "subscriptions",
        "Topic selectors of the connected subscribers",
        ConstGauge::new(subscriptions as i64),
    );
    registry.register(
        "topics",
        "Distinct exact topics subscribed to",
        ConstGauge::new(hub.topic_count() as i64),
    );
    registry.register(
        "connections_opened",
        "Subscribe requests accepted",
        counter(&stats.connections_total),
    );
    registry.register(
        "publishes",
        "Updates committed to history",
        counter(&stats.published),
    );
    registry.register(
        "deliveries",
        "Frames queued to subscribers by live fan-out",
        counter(&stats.delivered),
    );
    registry.register(
        "queue_overflows",
        "Subscribers whose queue overflowed and who were caught up from history",
        counter(&stats.overflows),
    );
    registry.register(
        "replays",
        "Subscriptions that resumed from history",
        counter(&stats.replays),
    );
    registry.register(
        "store_errors",
        "Publishes refused because history could not be written",
        counter(&stats.store_errors),
    );
    registry.register(
        "connections_refused",
        "Connections refused by the global or per-address connection limits",
        counter(&stats.connections_refused),
    );
    registry.register(
        "log_errors",
        "Failed reads of the cluster's shared log (each retried)",
        counter(&stats.log_errors),
    );
    registry.register(
        "log_resets",
        "Times the shared log lost what this node had read, making its subscribers resume",
        counter(&stats.log_resets),
    );
    registry.register_with_unit(
        "store_append",
        "Duration of one group-commit append to history",
        Unit::Seconds,
        stats.append_latency.0.clone(),
    );
    registry.register(
        "build",
        "Build information",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
    let mut text = String::with_capacity(4096);
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &registry);
    text
}
