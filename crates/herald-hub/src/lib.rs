//! The Herald hub as a library: Mercure-compatible publish and subscribe over Server-Sent
//! Events, with history, resume, authorization and fan-out.
//!
//! Embed it in an application with [`Hub::start`] and [`http::serve`], or publish directly
//! with [`Hub::publish`]. The `herald` binary is a thin wrapper around this crate.
//!
//! # Layout
//! - [`hub`]: [`Hub`], publishing with group commit, fan-out, subscriber lifecycle.
//! - [`update`]: [`Update`], a published update with its frame encoded once.
//! - [`store`]: [`HistoryStore`](store::HistoryStore) and its memory and redb implementations.
//! - [`selector`], [`uri_template`], [`topic`]: topic matchers and topic rules.
//! - [`auth`]: JWT verification and grants; [`mint`]: signing tokens.
//! - `registry`, `queue`, [`subscriber`], [`stream`]: who listens to what, and each
//!   subscriber's bounded queue and event stream.
//! - [`subscription_event`]: active subscriptions as documents.
//! - [`http`]: routing and the handlers; subscriptions over HTTP/1.1 on a lean path of its
//!   own, everything else (and HTTP/2) with hyper, over TCP or TLS.
//! - [`metrics`]: `/metrics` in the Prometheus / OpenMetrics text format.
//! - [`config`]: the settings, [`HubConfig`].
//! - `bench_support` (hidden): the registry and queues alone, for `benches/fanout.rs`.

pub mod auth;
#[doc(hidden)]
pub mod bench_support;
pub mod config;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod mint;
mod queue;
mod registry;
pub mod selector;
pub mod store;
pub mod stream;
pub mod subscriber;
pub mod subscription_event;
pub mod topic;
pub mod update;
pub mod uri_template;

pub use config::HubConfig;
pub use hub::{Hub, PublishError, Resume};
pub use queue::{CloseReason, QueueHeld};
pub use update::{Update, UpdateFields};
