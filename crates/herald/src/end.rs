//! `herald end`: end the streams of topics for good (`POST <hub>/end`, Herald's extension).
//!
//! Optionally publishes a final event first (`--data`, `--type`); then the hub closes every
//! stream listening only to these topics and answers new subscribes with 204 for its
//! `--ended-ttl`, which makes `EventSource` stop reconnecting. Prints the hub's one-line JSON
//! answer, e.g. `{"closed":1,"ended_for_seconds":3600,"topics":["/clients/7"]}`.

use std::io::Write;

use herald_client::Publication;

use crate::publish::{PublishTarget, Role, explain};

/// Options of `herald end`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Subscribers listening only to these topics receive the final event (when --data or --type is \
given), then their stream closes; for the hub's --ended-ttl, subscribing to exactly these \
topics answers 204, so browsers stop reconnecting. The next publish to a topic starts a new \
stream on it. The token needs the publish grant on every topic. For example:

  herald end https://example.com/clients/7 --type bye --data done")]
#[command(group(clap::ArgGroup::new("final_event").args(["data", "event_type"]).multiple(true)))]
pub(crate) struct EndOptions {
    #[command(flatten)]
    target: PublishTarget,
    /// Topics whose streams end.
    #[arg(required = true, value_name = "TOPIC")]
    topics: Vec<String>,
    /// Data of the final event published before the streams close.
    #[arg(long)]
    data: Option<String>,
    /// Event type of the final event (e.g. `bye`).
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Id of the final event (the hub makes one up when absent).
    #[arg(long, requires = "final_event")]
    id: Option<String>,
    /// Deliver the final event only to subscribers whose token grants one of the topics.
    #[arg(long, requires = "final_event")]
    private: bool,
}

/// Ends the topics' streams and prints the hub's answer.
pub(crate) async fn run(options: EndOptions) -> anyhow::Result<()> {
    let publisher = options.target.publisher()?;
    let publication = Publication {
        topics: options.topics,
        data: options.data,
        id: options.id,
        event_type: options.event_type,
        retry: None,
        private: options.private,
    };
    let answer = publisher
        .end(&publication)
        .await
        .map_err(|error| explain(error, publisher.url(), Role::End))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{answer}")?;
    stdout.flush()?;
    Ok(())
}
