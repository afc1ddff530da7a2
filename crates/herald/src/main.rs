//! `herald`: the Herald Server-Sent Events hub and its command-line tools.
//!
//! # Layout
//! - `serve`: run the hub (options from flags, `HERALD_*` variables and a TOML file).
//! - `token`: mint an access token.
//! - `sub`: subscribe to the hub or any event stream and print events (`herald-client`).
//! - `publish`: `herald pub`, publish once or as a ticker (`--every`).
//! - `end`: end topics' streams for good (a final event, then 204 to new subscribers).
//! - `bench`: fan-out load generator (subscribers, publishers, latency, hub CPU and memory).
//! - `soak`: a long churn run (subscribers coming and going, resumes, publishes) checking
//!   every delivery and sampling the hub's memory and descriptors (`bench/soak.sh`).
//! - `duration`: human-friendly durations (`500ms`, `15s`, `1h`).
//! - `stderr_log`: the log's writer: lines buffered and written to stderr by one thread.

mod bench;
mod duration;
mod end;
mod publish;
mod serve;
mod soak;
mod stderr_log;
mod sub;
mod token;

use std::io::IsTerminal;

use clap::{Parser, Subcommand};

use crate::stderr_log::{StderrLog, StderrLogGuard};

/// Herald: a Server-Sent Events hub speaking the Mercure protocol.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
struct Cli {
    /// Log format: `text` or `json`.
    #[arg(long, env = "HERALD_LOG_FORMAT", default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub.
    Serve(Box<serve::ServeOptions>),
    /// Mint an access token (JWT) for publishing or subscribing.
    Token(token::TokenOptions),
    /// Subscribe to topics (or any event stream) and print the events as they arrive.
    Sub(sub::SubOptions),
    /// Publish an update (or one every --every) and print its id.
    Pub(publish::PubOptions),
    /// End topics' streams: an optional final event, then the streams close and new
    /// subscribers get 204 (browsers stop reconnecting).
    End(end::EndOptions),
    /// Load-test a hub (Herald or Nchan): fan-out latency, throughput, CPU and memory.
    Bench(bench::BenchOptions),
    /// Churn subscribers, resumes and publishes against a hub for a long time, checking every
    /// delivery and sampling the hub's memory (see bench/soak.sh).
    Soak(soak::SoakOptions),
}

/// Logs to stderr through [`StderrLog`]; colours only when stderr is a terminal (escape
/// codes in a file or journald are noise, and formatting them cost ~4 % of the hub's CPU under
/// a publish load). The guard writes out what is buffered when dropped.
fn init_tracing(format: LogFormat) -> StderrLogGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = StderrLog::start();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let log = init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Serve(options) => serve::run(*options).await,
        Command::Token(options) => token::run(options),
        Command::Bench(options) => bench::run(options).await,
        Command::Soak(options) => soak::run(options).await,
        Command::Sub(options) => sub::run(options).await,
        Command::Pub(options) => publish::run(options).await,
        Command::End(options) => end::run(options).await,
    };
    // Buffered log lines go out before the final error, in the order they happened.
    drop(log);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("herald: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
