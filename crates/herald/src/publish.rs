//! `herald pub`: publish updates to a hub from the command line, once or on a ticker.
//!
//! With `--every`, `{n}` (the publish number, from 1) and `{time}` (UTC, RFC 3339, to the
//! second) in `--data` and `--id` are replaced at each publish, so a ticker can send
//! `--data '{"n":{n},"at":"{time}"}' --id 'tick-{n}'`.
//!
//! Also home of what `herald sub` and `herald end` share with it: the default hub URL and the translation of
//! client errors into one line that says what to do.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use herald_client::{Error, Publication, Publisher, StatusCode};

use crate::duration::HumanDuration;

/// The hub a local `herald serve` listens on.
pub(crate) const DEFAULT_HUB: &str = "http://127.0.0.1:3000/.well-known/mercure";

/// Options of `herald pub`.
#[derive(Debug, clap::Args)]
// clap turns the two characters `{n}` into a line break in help text, wherever they are, so
// the help spells that placeholder out in words.
#[command(after_help = "\
Data comes from --data, --data-file, or stdin when it is not a terminal and not empty; one \
trailing newline of a file or stdin is dropped. Without any, the update has no data field (an \
EventSource does not dispatch it, but its last event id moves).

With --every, two placeholders in the data and the id are replaced at each publish: {time}, \
the time (UTC, RFC 3339), and the letter n in braces, the publish number (1, 2, 3...). A \
failed publish stops the ticker. For example:

  herald pub /ticks --every 1s --count 10 --data 'tick at {time}'")]
pub(crate) struct PubOptions {
    #[command(flatten)]
    target: PublishTarget,
    /// Topic of the update; more topics are alternates of the first.
    #[arg(required = true, value_name = "TOPIC")]
    topics: Vec<String>,
    /// The update's data.
    #[arg(long, conflicts_with = "data_file")]
    data: Option<String>,
    /// Read the update's data from this file.
    #[arg(long, value_name = "FILE")]
    data_file: Option<PathBuf>,
    /// Event type (the `event:` field subscribers see).
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Event id (the hub makes one up when absent).
    #[arg(long)]
    id: Option<String>,
    /// Deliver only to subscribers whose token grants one of the topics.
    #[arg(long)]
    private: bool,
    /// Reconnection time sent to subscribers, in milliseconds.
    #[arg(long, value_name = "MS")]
    retry: Option<u64>,
    /// Publish repeatedly at this interval (e.g. 500ms, 1s) until interrupted or --count.
    #[arg(long, value_name = "DURATION")]
    every: Option<HumanDuration>,
    /// With --every: stop after this many updates.
    #[arg(long, requires = "every")]
    count: Option<u64>,
}

/// Where `herald pub` and `herald end` send their requests, and with which token.
#[derive(Debug, clap::Args)]
pub(crate) struct PublishTarget {
    /// The hub's URL.
    #[arg(long, env = "HERALD_HUB", default_value = DEFAULT_HUB)]
    hub: String,
    /// Access token with a publish grant for the topics (e.g. from `herald token --publish`).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl PublishTarget {
    /// A publisher for this hub and token; a bad `--hub` is a one-line error.
    pub(crate) fn publisher(&self) -> anyhow::Result<Publisher> {
        let mut builder = Publisher::builder(&self.hub);
        if let Some(token) = &self.token {
            builder = builder.bearer(token);
        }
        builder
            .build()
            .map_err(|error| anyhow!("--hub {:?}: {error}", self.hub))
    }
}

/// Publishes, printing each id on its own line.
pub(crate) async fn run(options: PubOptions) -> anyhow::Result<()> {
    let data = read_data(&options)?;
    let publisher = options.target.publisher()?;
    let template = Publication {
        topics: options.topics.clone(),
        data,
        id: options.id.clone(),
        event_type: options.event_type.clone(),
        retry: options.retry,
        private: options.private,
    };
    let Some(every) = options.every else {
        return publish_one(&publisher, &template).await;
    };
    if every.0.is_zero() {
        anyhow::bail!("--every must be longer than 0 (e.g. 500ms or 1s)");
    }
    let mut ticker = tokio::time::interval(every.0);
    // A slow hub delays the next update rather than firing a burst to catch up.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    while options.count.is_none_or(|count| n < count) {
        ticker.tick().await;
        n += 1;
        let time = rfc3339(SystemTime::now());
        let fill = |text: &String| text.replace("{n}", &n.to_string()).replace("{time}", &time);
        let publication = Publication {
            data: template.data.as_ref().map(fill),
            id: template.id.as_ref().map(fill),
            ..template.clone()
        };
        publish_one(&publisher, &publication).await?;
    }
    Ok(())
}

/// Publishes one update and prints its id.
async fn publish_one(publisher: &Publisher, publication: &Publication) -> anyhow::Result<()> {
    let id = publisher
        .publish(publication)
        .await
        .map_err(|error| explain(error, publisher.url(), Role::Publish))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{id}")?;
    stdout.flush()?;
    Ok(())
}

/// The data from `--data`, `--data-file` or a non-terminal stdin.
fn read_data(options: &PubOptions) -> anyhow::Result<Option<String>> {
    if let Some(data) = &options.data {
        return Ok(Some(data.clone()));
    }
    if let Some(path) = &options.data_file {
        let data = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --data-file {}", path.display()))?;
        return Ok(Some(drop_final_newline(data)));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut data = String::new();
    stdin
        .lock()
        .read_to_string(&mut data)
        .context("cannot read the data from stdin (pass --data or --data-file instead)")?;
    // An empty stdin (`< /dev/null`, a cron job) means no data rather than empty data.
    Ok((!data.is_empty()).then(|| drop_final_newline(data)))
}

/// Drops one trailing LF or CRLF, the one `echo` and editors add.
fn drop_final_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// `2026-05-01T12:34:56Z`: UTC, to the second.
fn rfc3339(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm, proleptic
    // Gregorian), so no date crate is needed for one placeholder.
    let days = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Which command met the error, to suggest the right grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `herald pub`.
    Publish,
    /// `herald end` (the hub's `/end` extension).
    End,
    /// `herald sub` on the hub.
    Subscribe,
    /// `herald sub` on some other event stream.
    Stream,
}

/// Turns a client error into one line saying what went wrong and what to do.
pub(crate) fn explain(error: Error, url: &str, role: Role) -> anyhow::Error {
    let server = match role {
        Role::Stream => format!("the server at {url}"),
        Role::Publish | Role::End | Role::Subscribe => format!("the hub at {url}"),
    };
    let start_it = match role {
        Role::Stream => "is the server running?",
        Role::Publish | Role::End | Role::Subscribe => "is `herald serve` running?",
    };
    match &error {
        Error::Connect { .. } => match error.io_kind() {
            Some(std::io::ErrorKind::ConnectionRefused) => {
                anyhow!("cannot reach {server}: connection refused — {start_it}")
            }
            _ => anyhow!("cannot reach {server}: {error} — check the URL and the network"),
        },
        Error::Timeout { timeout, .. } => {
            anyhow!("{server} did not answer within {timeout:?} — {start_it}")
        }
        Error::Status {
            status,
            body_snippet,
        } => {
            let reason = if body_snippet.is_empty() {
                String::from("no reason given")
            } else {
                body_snippet.replace(['\r', '\n'], " ")
            };
            let grant = match role {
                Role::Publish | Role::End => "`herald token --publish TOPIC`",
                Role::Subscribe | Role::Stream => "`herald token --subscribe SELECTOR`",
            };
            match *status {
                StatusCode::UNAUTHORIZED => anyhow!(
                    "{server} refused the request ({status}): {reason} — pass a valid token with --token or HERALD_TOKEN (mint one with {grant})"
                ),
                StatusCode::FORBIDDEN => anyhow!(
                    "{server} refused the request ({status}): {reason} — the token lacks the grant; mint one with {grant}"
                ),
                // Only a Herald hub has `<hub>/end`; a Mercure hub answers 404 there.
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED if role == Role::End => {
                    anyhow!(
                        "{server} has no end endpoint ({status}: {reason}) — ending streams is a Herald extension; is it a Herald hub's URL (ending in /.well-known/mercure)? Set it with --hub or HERALD_HUB"
                    )
                }
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED if role != Role::Stream => {
                    anyhow!(
                        "{server} answered {status}: {reason} — is it the hub URL (ending in /.well-known/mercure)? Set it with --hub or HERALD_HUB"
                    )
                }
                _ => anyhow!("{server} answered {status}: {reason}"),
            }
        }
        Error::ContentType(_) => anyhow!(
            "{server} is not an event stream: {error} — is it the hub URL (ending in /.well-known/mercure)?"
        ),
        _ => anyhow!("{server}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let at = |seconds| rfc3339(UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn one_final_newline_is_dropped() {
        assert_eq!(drop_final_newline("a\n".into()), "a");
        assert_eq!(drop_final_newline("a\r\n".into()), "a");
        assert_eq!(drop_final_newline("a\n\n".into()), "a\n");
        assert_eq!(drop_final_newline("a".into()), "a");
    }

    #[test]
    fn refused_connections_say_to_start_the_hub() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = Error::Connect {
            url: DEFAULT_HUB.into(),
            source: refused.into(),
        };
        assert_eq!(
            explain(error, DEFAULT_HUB, Role::Publish).to_string(),
            "cannot reach the hub at http://127.0.0.1:3000/.well-known/mercure: connection refused — is `herald serve` running?"
        );
    }

    #[test]
    fn refusals_carry_the_hubs_reason_on_one_line() {
        let error = Error::Status {
            status: StatusCode::FORBIDDEN,
            body_snippet: "no grant\nfor /x".into(),
        };
        let text = explain(error, "http://h/", Role::Publish).to_string();
        assert_eq!(
            text,
            "the hub at http://h/ refused the request (403 Forbidden): no grant for /x — the token lacks the grant; mint one with `herald token --publish TOPIC`"
        );
    }
}
