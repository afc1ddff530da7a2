//! CI smoke test of `herald bench`: a small fan-out against a real `herald serve --dev` must
//! deliver every event and report the fields scripts read from `--json`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the hub when the test ends, however it ends.
struct Hub(Child);

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

#[test]
fn bench_delivers_every_event_and_reports_json() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--memory", "--dev", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start herald serve");
    let stdout = child.stdout.take().expect("hub stdout");
    let hub = Hub(child);
    // The dev banner prints `export TOKEN=<jwt>`: the publisher token for the bench.
    // Keep reading the banner after the token line: the hub's stdout stays open for its life.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.trim().strip_prefix("export TOKEN=") {
                let _ = sender.send(rest.to_owned());
            }
        }
    });
    let token = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("dev banner has a token");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "hub did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["bench", "--subscribers", "50", "--events", "20", "--json"])
        .args(["--stalled", "5"])
        .args(["--timeout", "60s", "--url"])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--token")
        .arg(&token)
        .arg("--hub-pid")
        .arg(hub.0.id().to_string())
        .output()
        .expect("run herald bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(report["subscribers_connected"], 50);
    // Stalled subscribers never read: not counted in deliveries, and they hold no one back.
    assert_eq!(report["stalled_subscribers"], 5);
    assert_eq!(report["events_published"], 20);
    assert_eq!(report["expected"], 50 * 20);
    assert_eq!(report["delivered"], report["expected"]);
    for field in [
        "latency_p50_ms",
        "latency_p99_ms",
        "latency_p999_ms",
        "latency_max_ms",
        "deliveries_per_second",
        "hub_cpu_seconds",
        "hub_rss_per_subscriber_bytes",
    ] {
        assert!(report[field].is_number(), "{field} missing in {report}");
    }
    drop(hub);
}
