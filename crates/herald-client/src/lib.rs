//! An async `EventSource` for Rust, built on [`herald_wire`]'s parser, and a publisher for
//! Herald and Mercure hubs.
//!
//! [`EventSource`] connects to any Server-Sent Events stream and yields its [`Event`]s as a
//! [`futures_core::Stream`] (or through [`EventSource::next`]). Like a browser's
//! `EventSource`, it reconnects by itself after the server's `retry`, resending the last event
//! id in `Last-Event-ID`, and stops for good when the server answers 204. Unlike a browser, it
//! backs off exponentially (with jitter) while connections keep failing, and tells you with a
//! typed [`Error`] why it stopped when retrying cannot help. The
//! [`event_source`] module documents the whole retry policy.
//!
//! It speaks HTTP/1.1 and HTTP/2 (ALPN over TLS, or h2c with prior knowledge), over rustls
//! with the `ring` provider, trusting the Mozilla roots and any PEM you add.
//!
//! [`Publisher`] publishes a [`Publication`] to a hub (the Mercure publish API) and ends
//! streams (Herald's `/end` extension).
//!
//! ```no_run
//! use herald_client::{EventSource, Publication, Publisher};
//!
//! # async fn run() -> Result<(), herald_client::Error> {
//! let hub = "http://127.0.0.1:3000/.well-known/mercure";
//! let mut events = EventSource::new(format!("{hub}?match=/chat"))?;
//! let publisher = Publisher::builder(hub).bearer("eyJhbGciOi...").build()?;
//! publisher.publish(&Publication::new("/chat").data("hello")).await?;
//! while let Some(event) = events.next().await {
//!     println!("{}", event?.data);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - [`event_source`]: [`EventSource`], the connection state machine and its retry policy.
//! - `builder`: [`Builder`], every connection option.
//! - `event`: [`Event`], one received event.
//! - `publisher`: [`Publisher`], [`PublisherBuilder`] and [`Publication`].
//! - `error`: [`Error`] and [`RedirectError`].
//! - `backoff`: the reconnection delays (pure, unit-tested).
//! - `transport`: the hyper client over rustls shared by both, URL and header checks.

mod backoff;
mod builder;
mod error;
mod event;
pub mod event_source;
mod publisher;
mod transport;

pub use builder::Builder;
pub use error::{BoxError, Error, RedirectError};
pub use event::Event;
pub use event_source::EventSource;
pub use herald_wire::Limits;
pub use http::StatusCode;
pub use publisher::{Publication, Publisher, PublisherBuilder};
