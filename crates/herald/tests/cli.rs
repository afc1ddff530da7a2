//! `herald sub`, `herald pub` and `herald end` against a real `herald serve --memory --dev`,
//! checking the exact output, the exit codes and the one-line errors.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use herald_client::{Publication, Publisher};
use herald_testkit::{RawStream, encode, raw};

const HERALD: &str = env!("CARGO_BIN_EXE_herald");
const SECRET: &str = "cli-test-secret-long-enough-for-hs256";

/// A `herald serve` child process, killed when dropped.
struct Serve {
    child: Child,
    /// Keeps reading the hub's stdout: a closed pipe would make its next `println!` panic.
    _stdout: mpsc::Receiver<String>,
    /// Where it listens, for raw HTTP.
    addr: SocketAddr,
    hub: String,
    token: String,
}

impl Serve {
    /// Starts the hub on a free port and waits for its banner.
    fn start() -> Serve {
        let port = free_port();
        let mut child = Command::new(HERALD)
            .args(["serve", "--memory", "--dev", "--retry", "100ms"])
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--jwt-key",
                SECRET,
            ])
            .env("HERALD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("herald serve starts");
        let lines = lines_of(child.stdout.take().expect("stdout"));
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a banner");
        assert_eq!(
            first,
            format!("Herald listening on http://127.0.0.1:{port}")
        );
        let token = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(5))
                .expect("the dev token");
            if let Some(token) = line.trim().strip_prefix("export TOKEN=") {
                break token.to_owned();
            }
        };
        Serve {
            child,
            _stdout: lines,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            hub: format!("http://127.0.0.1:{port}/.well-known/mercure"),
            token,
        }
    }

    /// `herald <args>` with the hub URL and token in the environment, stdin empty.
    fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("herald runs")
    }

    /// The command, not started.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(HERALD);
        command
            .args(args)
            .env("HERALD_HUB", &self.hub)
            .env("HERALD_TOKEN", &self.token)
            .env("HERALD_LOG", "warn");
        command
    }

    /// Ends a topic's stream with a final event, through the client library.
    fn end(&self, topic: &str, event_type: &str, data: &str) {
        let publisher = Publisher::builder(&self.hub)
            .bearer(&self.token)
            .build()
            .unwrap();
        let publication = Publication::new(topic)
            .event_type(event_type)
            .data(data)
            .id("end");
        runtime()
            .block_on(publisher.end(&publication))
            .expect("ended");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The lines of a child's output, read on a thread so tests can wait with a timeout.
fn lines_of(output: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Waits for a child with a bound, killing it if it overstays.
fn wait(mut child: Child) -> Output {
    for _ in 0..200 {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!(
        "the command did not exit within 10 s: {:?}",
        child.wait_with_output()
    );
}

#[test]
fn pub_prints_the_id_and_sub_json_prints_every_event_then_exits_on_end() {
    let serve = Serve::start();
    let topic = "https://example.com/books/1";

    let first = serve.run(&["pub", topic, "--data", "hello", "--id", "a1"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(stdout(&first), "a1\n");
    let second = serve.run(&[
        "pub",
        topic,
        "--data",
        "line 1\nline 2",
        "--type",
        "update",
        "--id",
        "a2",
    ]);
    assert_eq!(stdout(&second), "a2\n");

    let sub = serve
        .command(&[
            "sub",
            "--json",
            "--last-event-id",
            "earliest",
            "--match",
            topic,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The two earlier events are replayed; waiting for them also shows the subscription is
    // live before the stream is ended.
    std::thread::sleep(Duration::from_millis(500));
    serve.end(topic, "bye", "done");
    let output = wait(sub);

    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        concat!(
            "{\"id\":\"a1\",\"event\":\"message\",\"data\":\"hello\"}\n",
            "{\"id\":\"a2\",\"event\":\"update\",\"data\":\"line 1\\nline 2\"}\n",
            "{\"id\":\"end\",\"event\":\"bye\",\"data\":\"done\"}\n",
        )
    );
}

#[test]
fn sub_prints_readable_lines_with_multi_line_data_indented() {
    let serve = Serve::start();
    serve.run(&["pub", "/chat", "--data", "hi", "--id", "1"]);
    serve.run(&[
        "pub",
        "/chat",
        "--data",
        "two\nlines",
        "--type",
        "note",
        "--id",
        "2",
    ]);

    let sub = serve
        .command(&["sub", "--last-event-id", "earliest", "/chat"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    serve.end("/chat", "bye", "see you");
    let output = wait(sub);

    assert!(output.status.success());
    assert_eq!(
        stdout(&output),
        "[1] message: hi\n[2] note: two\n    lines\n[end] bye: see you\n"
    );
}

#[test]
fn pub_every_replaces_the_placeholders_and_stops_at_count() {
    let serve = Serve::start();

    let output = serve.run(&[
        "pub",
        "/ticks",
        "--every",
        "50ms",
        "--count",
        "3",
        "--data",
        "tick {n} at {time}",
        "--id",
        "tick-{n}",
    ]);

    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "tick-1\ntick-2\ntick-3\n");
    let sub = serve
        .command(&["sub", "--json", "--last-event-id", "earliest", "/ticks"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    serve.end("/ticks", "bye", "");
    let printed = stdout(&wait(sub));
    let lines: Vec<serde_json::Value> = printed
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{printed}");
    for (n, line) in lines.iter().take(3).enumerate() {
        let data = line["data"].as_str().unwrap();
        let prefix = format!("tick {} at ", n + 1);
        let time = data
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{data}"));
        assert_eq!(time.len(), "2026-01-01T00:00:00Z".len(), "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    }
}

#[test]
fn pub_reads_the_data_from_stdin() {
    let serve = Serve::start();
    let mut publish = serve
        .command(&["pub", "/in", "--id", "s1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    publish
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\n")
        .unwrap();
    assert_eq!(stdout(&wait(publish)), "s1\n");

    let sub = serve
        .command(&["sub", "--last-event-id", "earliest", "/in"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    serve.end("/in", "bye", "x");

    assert_eq!(
        stdout(&wait(sub)),
        "[s1] message: from stdin\n[end] bye: x\n"
    );
}

#[test]
fn end_sends_the_final_event_closes_the_stream_and_new_subscribes_get_204() {
    let serve = Serve::start();
    let runtime = runtime();
    let topic = "https://example.com/clients/7";
    let path = format!("/.well-known/mercure?match={}", encode(topic));
    let mut stream = runtime.block_on(RawStream::open(serve.addr, &path, &[]));
    assert_eq!(stream.status, 200);
    // The stream's first frame: from here on the subscriber is registered.
    runtime.block_on(stream.read_until("retry: 100\n\n"));

    let end = serve.run(&[
        "end", topic, "--type", "bye", "--data", "done", "--id", "end-1",
    ]);

    assert!(end.status.success(), "{}", stderr(&end));
    assert_eq!(
        stdout(&end),
        "{\"closed\":1,\"ended_for_seconds\":3600,\"topics\":[\"https://example.com/clients/7\"]}\n"
    );
    assert_eq!(
        runtime.block_on(stream.read_to_end()),
        "id: end-1\nevent: bye\ndata: done\n\n",
        "the final event, then the end of the stream"
    );
    let again = runtime.block_on(raw::request(serve.addr, "GET", &path, &[], b""));
    assert_eq!(again.status, 204);
    assert!(again.body.is_empty(), "{}", again.text());
    let sub = serve.run(&["sub", "--match", topic]);
    assert!(sub.status.success(), "{}", stderr(&sub));
    assert!(stdout(&sub).is_empty(), "{}", stdout(&sub));
}

#[test]
fn end_refusals_are_one_line_saying_what_to_do() {
    let serve = Serve::start();

    let anonymous = serve
        .command(&["end", "/t", "--type", "bye"])
        .env_remove("HERALD_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let not_the_hub_url = format!("http://{}/mercure", serve.addr);
    let wrong_url = serve.run(&["end", "--hub", &not_the_hub_url, "/t"]);

    assert_eq!(anonymous.status.code(), Some(1));
    let anonymous = stderr(&anonymous);
    let prefix = format!(
        "herald: the hub at {} refused the request (401 Unauthorized): ",
        serve.hub
    );
    assert!(anonymous.starts_with(&prefix), "{anonymous}");
    assert!(
        anonymous.contains("`herald token --publish TOPIC`"),
        "{anonymous}"
    );
    assert_eq!(anonymous.lines().count(), 1, "{anonymous}");
    assert_eq!(wrong_url.status.code(), Some(1));
    let wrong_url = stderr(&wrong_url);
    let prefix =
        format!("herald: the hub at {not_the_hub_url} has no end endpoint (404 Not Found: ");
    assert!(wrong_url.starts_with(&prefix), "{wrong_url}");
    assert!(wrong_url.contains("--hub or HERALD_HUB"), "{wrong_url}");
    assert_eq!(wrong_url.lines().count(), 1, "{wrong_url}");
}

#[test]
fn an_unreachable_hub_is_one_line_saying_what_to_do() {
    let hub = format!("http://127.0.0.1:{}/.well-known/mercure", free_port());
    let expected = format!(
        "herald: cannot reach the hub at {hub}: connection refused — is `herald serve` running?\n"
    );
    for args in [
        vec!["pub", "--hub", &hub, "/t", "--data", "x"],
        vec!["sub", "--hub", &hub, "/t"],
        vec!["end", "--hub", &hub, "/t"],
    ] {
        let output = Command::new(HERALD)
            .args(&args)
            .stdin(Stdio::null())
            .env_remove("HERALD_TOKEN")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&output), expected, "{args:?}");
        assert!(stdout(&output).is_empty());
    }
}

#[test]
fn a_refused_publish_shows_the_hubs_reason() {
    let serve = Serve::start();

    let anonymous = serve
        .command(&["pub", "/t", "--data", "x"])
        .env_remove("HERALD_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let narrow_token = Command::new(HERALD)
        .args([
            "token",
            "--key",
            SECRET,
            "--publish",
            "/other",
            "--issuer",
            "herald-dev",
        ])
        .args(["--audience", &serve.hub])
        .output()
        .unwrap();
    let narrow_token = stdout(&narrow_token).trim().to_owned();
    let narrow = serve.run(&["pub", "--token", &narrow_token, "/t", "--data", "x"]);

    assert_eq!(anonymous.status.code(), Some(1));
    let anonymous = stderr(&anonymous);
    let prefix = format!(
        "herald: the hub at {} refused the request (401 Unauthorized): ",
        serve.hub
    );
    assert!(anonymous.starts_with(&prefix), "{anonymous}");
    assert!(anonymous.contains("--token"), "{anonymous}");
    assert_eq!(anonymous.lines().count(), 1, "{anonymous}");
    assert_eq!(narrow.status.code(), Some(1));
    let narrow = stderr(&narrow);
    let prefix = format!(
        "herald: the hub at {} refused the request (403 Forbidden): ",
        serve.hub
    );
    assert!(narrow.starts_with(&prefix), "{narrow}");
    assert!(
        narrow.contains("/t"),
        "the hub's reason names the topic: {narrow}"
    );
    assert_eq!(narrow.lines().count(), 1, "{narrow}");
}

#[test]
fn bad_arguments_are_refused_before_anything_is_sent() {
    let hub = format!("http://127.0.0.1:{}/.well-known/mercure", free_port());
    let run = |args: &[&str]| {
        Command::new(HERALD)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    let no_topic = run(&["pub", "--hub", &hub, "--data", "x"]);
    let count_alone = run(&["pub", "--hub", &hub, "/t", "--count", "3"]);
    let both_data = run(&[
        "pub",
        "--hub",
        &hub,
        "/t",
        "--data",
        "x",
        "--data-file",
        "f",
    ]);
    let bad_every = run(&["pub", "--hub", &hub, "/t", "--every", "soon"]);
    let no_target = run(&["sub", "--hub", &hub]);
    let end_no_topic = run(&["end", "--hub", &hub, "--type", "bye"]);
    let end_id_alone = run(&["end", "--hub", &hub, "/t", "--id", "x"]);
    let bad_hub = run(&["pub", "--hub", "not a url", "/t", "--data", "x"]);
    let missing_file = run(&[
        "pub",
        "--hub",
        &hub,
        "/t",
        "--data-file",
        "/nonexistent/data",
    ]);

    for output in [
        &no_topic,
        &count_alone,
        &both_data,
        &bad_every,
        &no_target,
        &end_no_topic,
        &end_id_alone,
    ] {
        assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    }
    assert!(
        stderr(&bad_every).contains("not a duration"),
        "{}",
        stderr(&bad_every)
    );
    assert_eq!(bad_hub.status.code(), Some(1));
    assert!(
        stderr(&bad_hub).starts_with("herald: --hub \"not a url\": invalid URL"),
        "{}",
        stderr(&bad_hub)
    );
    assert_eq!(missing_file.status.code(), Some(1));
    assert!(
        stderr(&missing_file).starts_with("herald: cannot read --data-file /nonexistent/data: "),
        "{}",
        stderr(&missing_file)
    );
}
