//! `herald sub`: subscribe to topics on a hub, or to any event stream, and print the events
//! as they arrive.

use std::io::Write;

use anyhow::anyhow;
use herald_client::{Event, EventSource};
use tokio::sync::mpsc;
use url::Url;

use crate::publish::{DEFAULT_HUB, Role, explain};

/// Options of `herald sub`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
A TARGET that is an http(s) URL is read as it is (any event stream); every other TARGET is a \
topic selector (exact topic, URI template or *) sent as a `match` parameter to the hub, all \
of them in one request. A topic that is itself a URL goes in --match. The token is sent only \
to the hub's origin.

Events print as `[id] type: data`, continuation lines of the data indented; --json prints \
one object per line: {\"id\":...,\"event\":...,\"data\":...}. The connection is resumed by \
itself with Last-Event-ID when it drops (HERALD_LOG=herald_client=debug shows when); the \
command exits 0 when the hub ends the stream (HTTP 204). If the first connection fails, it \
exits 1 at once with the reason.")]
pub(crate) struct SubOptions {
    /// The hub's URL, for TARGETs that are topic selectors.
    #[arg(long, env = "HERALD_HUB", default_value = DEFAULT_HUB)]
    hub: String,
    /// Access token, for private updates (e.g. from `herald token --subscribe`).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Resume after this event id (the hub replays what came after it).
    #[arg(long)]
    last_event_id: Option<String>,
    /// Print one JSON object per line instead of readable text.
    #[arg(long)]
    json: bool,
    /// A topic selector on the hub, even one that looks like a URL (repeatable).
    #[arg(long = "match", value_name = "SELECTOR")]
    selectors: Vec<String>,
    /// Topic selectors on the hub, or http(s) URLs of event streams.
    #[arg(required_unless_present = "selectors", value_name = "TARGET")]
    targets: Vec<String>,
}

/// One event as `--json` prints it; the field order is the output's.
#[derive(serde::Serialize)]
struct JsonEvent<'a> {
    id: &'a str,
    event: &'a str,
    data: &'a str,
}

/// What a stream's task reports to the printer.
type Report = Result<Event, anyhow::Error>;

/// Subscribes and prints until every stream has ended (204) or one fails.
pub(crate) async fn run(options: SubOptions) -> anyhow::Result<()> {
    let hub = Url::parse(&options.hub)
        .map_err(|error| anyhow!("--hub {:?} is not a URL: {error}", options.hub))?;
    let (urls, mut selectors): (Vec<&String>, Vec<&String>) =
        options.targets.iter().partition(|target| is_url(target));
    selectors.extend(&options.selectors);
    let mut streams = Vec::new();
    if !selectors.is_empty() {
        let mut url = hub.clone();
        {
            let mut query = url.query_pairs_mut();
            for selector in selectors {
                query.append_pair("match", selector);
            }
        }
        streams.push((url, Role::Subscribe));
    }
    for target in urls {
        let url = Url::parse(target).map_err(|error| anyhow!("{target:?}: {error}"))?;
        streams.push((url, Role::Stream));
    }

    let (sender, mut reports) = mpsc::channel::<Report>(64);
    for (url, role) in streams {
        let mut builder = EventSource::builder(url.as_str()).retry_initial_connection(false);
        // The token is the hub's: another server must not see it.
        if let Some(token) = &options.token
            && url.origin() == hub.origin()
        {
            builder = builder.bearer(token);
        }
        if let Some(id) = &options.last_event_id {
            builder = builder.last_event_id(id);
        }
        let mut events = builder.build().map_err(|error| anyhow!("{url}: {error}"))?;
        let sender = sender.clone();
        // Errors name the hub as the user gave it, not with our query appended.
        let shown = match role {
            Role::Subscribe => options.hub.clone(),
            Role::Publish | Role::End | Role::Stream => url.to_string(),
        };
        tokio::spawn(async move {
            while let Some(item) = events.next().await {
                let report = item.map_err(|error| explain(error, &shown, role));
                if sender.send(report).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(sender);

    let stdout = std::io::stdout();
    while let Some(report) = reports.recv().await {
        let event = report?;
        let line = if options.json {
            let json = JsonEvent {
                id: &event.id,
                event: &event.event,
                data: &event.data,
            };
            serde_json::to_string(&json)?
        } else {
            readable(&event)
        };
        let mut out = stdout.lock();
        let written = writeln!(out, "{line}").and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            // The reader went away (`herald sub ... | head -3`): that is a normal end.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Whether a TARGET is a URL rather than a topic selector.
fn is_url(target: &str) -> bool {
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `[id] type: data`, the data's continuation lines indented by four spaces so they stand
/// apart from the next event.
fn readable(event: &Event) -> String {
    let mut line = String::new();
    if !event.id.is_empty() {
        line.push('[');
        line.push_str(&event.id);
        line.push_str("] ");
    }
    line.push_str(&event.event);
    line.push_str(": ");
    line.push_str(&event.data.replace('\n', "\n    "));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, data: &str) -> Event {
        Event {
            id: id.into(),
            event: "message".into(),
            data: data.into(),
        }
    }

    #[test]
    fn readable_lines() {
        assert_eq!(readable(&event("7", "hi")), "[7] message: hi");
        assert_eq!(readable(&event("", "hi")), "message: hi");
        assert_eq!(readable(&event("1", "a\nb")), "[1] message: a\n    b");
    }

    #[test]
    fn targets() {
        assert!(is_url("https://example.com/stream"));
        assert!(is_url("HTTP://example.com/"));
        assert!(!is_url("/chat/42"));
        assert!(!is_url("*"));
    }
}
