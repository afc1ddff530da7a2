//! Crash durability of `herald serve` with its redb history: publishers publish continuously,
//! the hub is killed with `SIGKILL` at a random moment, restarted on the same data directory,
//! and every publish it had answered 200 must be in the history, replayable from `earliest`,
//! in an order consistent with the answers (an update answered before another was sent comes
//! first), none twice. Twenty rounds on one data directory, so later rounds also check that
//! recovering from one crash leaves nothing for the next to break.
//!
//! The moment is random but reproducible: the seed is printed, and `HERALD_CRASH_SEED` sets it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_hub::mint::TokenRequest;
use herald_testkit::encode;
use herald_testkit::process::HubProcess;
use herald_testkit::raw::{RawStream, try_request};

const ROUNDS: u32 = 20;
const PUBLISHERS: usize = 4;
const SECRET: &str = "crash-test-secret-long-enough-for-hs256";
/// Fixed, so one token serves every restart whatever port the hub gets.
const PUBLIC_URL: &str = "http://herald.test";
const TOPIC: &str = "https://example.com/crash";

/// One publish the hub answered 200.
#[derive(Debug, Clone)]
struct Acked {
    id: String,
    sent: Instant,
    answered: Instant,
}

fn start(binary: &Path, data_dir: &Path) -> HubProcess {
    HubProcess::start(
        binary,
        &[
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--jwt-key",
            SECRET,
            "--public-url",
            PUBLIC_URL,
            "--anonymous",
            "--no-pages",
            "--history-size",
            "1000000",
        ],
    )
}

fn token() -> String {
    TokenRequest {
        publish: vec!["*".into()],
        subscribe: vec![],
        ttl: Duration::from_secs(3600),
        issuer: "crash-test".into(),
        audience: format!("{PUBLIC_URL}/.well-known/mercure"),
        subject: "crash-test".into(),
        legacy: false,
        payload: None,
    }
    .sign_hmac(SECRET.as_bytes())
    .unwrap()
}

/// A small xorshift generator: the test needs reproducible randomness, not a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

async fn publish(hub: std::net::SocketAddr, token: &str, id: &str) -> Option<u16> {
    let form = format!("topic={}&id={id}&data={id}", encode(TOPIC));
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    // `None` (the hub is gone) is the expected end of a round.
    try_request(
        hub,
        "POST",
        "/.well-known/mercure",
        &headers,
        form.as_bytes(),
    )
    .await
    .map(|answer| answer.status)
}

/// Publishes `r{round}-p{publisher}-{n}` for n = 0, 1, … until the hub stops answering;
/// records every 200.
async fn publisher(
    hub: std::net::SocketAddr,
    token: Arc<String>,
    round: u32,
    index: usize,
    acked: Arc<Mutex<Vec<Acked>>>,
) {
    for n in 0.. {
        let id = format!("r{round}-p{index}-{n}");
        let sent = Instant::now();
        match publish(hub, &token, &id).await {
            Some(200) => acked.lock().unwrap().push(Acked {
                id,
                sent,
                answered: Instant::now(),
            }),
            Some(status) => panic!("publish {id}: status {status}"),
            None => return,
        }
    }
}

/// Replays the whole history and returns its ids in order, up to the marker `end`.
async fn replay(hub: std::net::SocketAddr, token: &str, end: &str) -> Vec<String> {
    // The marker is published after the restart: reading up to it reads the whole history.
    assert_eq!(
        publish(hub, token, end).await,
        Some(200),
        "publish the marker"
    );
    let path = format!(
        "/.well-known/mercure?match={}&last_event_id=earliest",
        encode(TOPIC)
    );
    let mut stream = RawStream::open(hub, &path, &[]).await;
    assert_eq!(stream.status, 200);
    let mut ids = Vec::new();
    loop {
        let event = stream.next_event_within(Duration::from_secs(30)).await;
        let id = event
            .lines()
            .find_map(|line| line.strip_prefix("id: "))
            .unwrap_or_else(|| panic!("an event without id: {event:?}"))
            .to_owned();
        if id == end {
            return ids;
        }
        ids.push(id);
    }
}

/// Checks the replayed history against every publish answered 200 so far.
fn check(history: &[String], acked: &[Acked], seed: u64, round: u32) {
    let context = format!("round {round} (HERALD_CRASH_SEED={seed})");
    let mut position = HashMap::new();
    for (at, id) in history.iter().enumerate() {
        assert!(
            position.insert(id.as_str(), at).is_none(),
            "{context}: {id} is in the history twice"
        );
    }
    for acked in acked {
        assert!(
            position.contains_key(acked.id.as_str()),
            "{context}: {} was answered 200 but is not in the history",
            acked.id
        );
    }
    // Each publisher's updates in the order it sent them (answered or not).
    let mut last: HashMap<String, (u64, usize)> = HashMap::new();
    for (at, id) in history.iter().enumerate() {
        let Some((prefix, n)) = id.rsplit_once('-') else {
            continue; // a round marker
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        if let Some((previous, _)) = last.insert(prefix.to_owned(), (n, at)) {
            assert!(
                previous < n,
                "{context}: {prefix}-{n} comes after {prefix}-{previous}"
            );
        }
    }
    // Across publishers: an update answered before another was sent comes first.
    let mut by_answer: Vec<&Acked> = acked.iter().collect();
    by_answer.sort_by_key(|acked| acked.answered);
    let mut latest = Vec::with_capacity(by_answer.len());
    let mut running = 0;
    for acked in &by_answer {
        running = running.max(position[acked.id.as_str()]);
        latest.push(running);
    }
    for later in acked {
        let before = by_answer.partition_point(|earlier| earlier.answered < later.sent);
        if before > 0 {
            assert!(
                latest[before - 1] < position[later.id.as_str()],
                "{context}: {} was sent after an update it precedes in history was answered",
                later.id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_publish_survives_sigkill_in_order() {
    let binary = Path::new(env!("CARGO_BIN_EXE_herald"));
    let data = tempfile::tempdir().unwrap();
    let seed = std::env::var("HERALD_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("HERALD_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let token = Arc::new(token());
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let mut markers = HashSet::new();
    let mut hub = start(binary, data.path());
    let started = Instant::now();
    for round in 0..ROUNDS {
        let mut publishers = Vec::new();
        for index in 0..PUBLISHERS {
            publishers.push(tokio::spawn(publisher(
                hub.addr,
                Arc::clone(&token),
                round,
                index,
                Arc::clone(&acked),
            )));
        }
        // Kill at a random moment once publishing is under way.
        let before = acked.lock().unwrap().len();
        while acked.lock().unwrap().len() == before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
        hub.kill();
        for publisher in publishers {
            publisher.await.unwrap();
        }
        hub = start(binary, data.path());
        let marker = format!("r{round}-end");
        let history = replay(hub.addr, &token, &marker).await;
        for marker in &markers {
            assert!(history.contains(marker), "the marker {marker} was lost");
        }
        markers.insert(marker);
        check(&history, &acked.lock().unwrap(), seed, round);
    }
    let acked = acked.lock().unwrap().len();
    eprintln!(
        "{ROUNDS} SIGKILLs, {acked} publishes answered 200, all replayed in order, in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// The checker itself must catch what it looks for.
mod checker {
    use super::*;

    fn acked(id: &str, sent: u64, answered: u64, origin: Instant) -> Acked {
        Acked {
            id: id.to_owned(),
            sent: origin + Duration::from_millis(sent),
            answered: origin + Duration::from_millis(answered),
        }
    }

    fn history(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn accepts_a_consistent_history_with_unanswered_extras() {
        let t = Instant::now();
        let acked = [acked("r0-p0-0", 0, 5, t), acked("r0-p1-0", 1, 4, t)];
        // Concurrent publishes may commit in either order; an unanswered one may be there.
        check(&history(&["r0-p1-0", "r0-p0-0", "r0-p0-1"]), &acked, 1, 0);
    }

    #[test]
    #[should_panic(expected = "answered 200 but is not in the history")]
    fn catches_a_lost_update() {
        let t = Instant::now();
        check(&history(&["r0-p0-0"]), &[acked("r0-p0-1", 0, 1, t)], 1, 0);
    }

    #[test]
    #[should_panic(expected = "twice")]
    fn catches_a_duplicate() {
        check(&history(&["r0-p0-0", "r0-p0-0"]), &[], 1, 0);
    }

    #[test]
    #[should_panic(expected = "comes after")]
    fn catches_a_publisher_out_of_order() {
        check(&history(&["r0-p0-1", "r0-p0-0"]), &[], 1, 0);
    }

    #[test]
    #[should_panic(expected = "sent after an update it precedes")]
    fn catches_an_answered_update_overtaken_by_a_later_one() {
        let t = Instant::now();
        let acked = [acked("r0-p0-0", 0, 1, t), acked("r0-p1-0", 2, 3, t)];
        check(&history(&["r0-p1-0", "r0-p0-0"]), &acked, 1, 0);
    }
}
