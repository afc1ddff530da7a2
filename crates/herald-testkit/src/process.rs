//! Real processes for tests that need them: `herald serve` nodes ([`HubProcess`]) and
//! `redis-server` ([`RedisServer`], [`RedisCluster`]).
//!
//! Every process is started by the test, on a loopback port, and killed by its pid when its
//! handle drops.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use herald_hub::mint::TokenRequest;

use crate::raw::{self, RawResponse, RawStream};
use crate::{ISSUER, SECRET, encode};

/// The public URL every test node announces, so one token works on every node of a cluster
/// (as behind a load balancer).
pub const PUBLIC_URL: &str = "http://hub.test";

/// A free loopback port (bound and released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// The Redis the cluster tests use: `REDIS_URL`, or `redis://127.0.0.1:6379`.
///
/// Returns `None` (after saying so loudly on stderr) when it cannot be reached on a
/// developer machine; panics when it cannot be reached under CI (`CI` set), because there
/// a skipped cluster test would be a silent hole.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let reachable =
        std::net::TcpStream::connect_timeout(&redis_address(&url), Duration::from_secs(1)).is_ok();
    if reachable {
        return Some(url);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "Redis at {url} is not reachable, and CI must run the cluster tests (set REDIS_URL)"
    );
    eprintln!("SKIPPED: Redis at {url} is not reachable; set REDIS_URL to run the cluster tests");
    None
}

/// A cluster name unique to one test, so tests sharing one Redis never see each other's
/// keys; dropping it deletes the cluster's keys from that Redis.
pub struct ClusterName {
    /// The name, for `--cluster-name`.
    pub name: String,
    redis: String,
}

impl ClusterName {
    /// A fresh name on the Redis at `redis_url` (see [`redis_url`]).
    pub fn new(test: &str, redis_url: &str) -> ClusterName {
        use std::hash::{BuildHasher, Hasher};
        // A randomly keyed hasher is a random number without another dependency.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        ClusterName {
            name: format!("herald-test-{test}-{:016x}", hasher.finish()),
            redis: redis_url.to_owned(),
        }
    }
}

impl Drop for ClusterName {
    fn drop(&mut self) {
        self.delete_keys();
    }
}

impl ClusterName {
    /// Deletes the cluster's keys, as a Redis restarted without persistence would have lost
    /// them.
    pub fn delete_keys(&self) {
        let keys = herald_hub::store::redis::key_names(&self.name);
        // One RESP command over a plain socket; best effort (batch keys expire by themselves).
        let mut command = format!("*{}\r\n$3\r\nDEL\r\n", keys.len() + 1);
        for key in &keys {
            command.push_str(&format!("${}\r\n{key}\r\n", key.len()));
        }
        let address = redis_address(&self.redis);
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.write_all(command.as_bytes());
            let _ = stream.read(&mut [0u8; 64]);
        }
    }
}

/// `host:port` of a `redis://[user:password@]host:port[/db]` URL.
fn redis_address(url: &str) -> SocketAddr {
    url.trim_start_matches("redis://")
        .split(['/', '?'])
        .next()
        .and_then(|authority| authority.rsplit('@').next())
        .and_then(|address| address.parse().ok())
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 6379)))
}

/// How long a hub may take to print where it listens.
const START_BOUND: Duration = Duration::from_secs(30);

/// A `herald serve` process, for what only a process gives: a restart on the same data
/// directory, `SIGKILL` or `SIGSTOP` at any moment, several nodes of a cluster.
pub struct HubProcess {
    child: Child,
    /// Where it listens (it is started on `127.0.0.1:0`).
    pub addr: SocketAddr,
}

impl HubProcess {
    /// Starts `binary serve --listen 127.0.0.1:0 <args>` and waits for its banner's first
    /// line, which names the port. The rest of its output is drained by a thread, so the
    /// hub never blocks on a full pipe.
    ///
    /// # Panics
    /// If the process cannot start or does not print its address in time (the message
    /// carries what it wrote on stderr).
    pub fn start(binary: &Path, args: &[&str]) -> HubProcess {
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("HERALD_LOG", "warn")
            .env_remove("HERALD_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("herald serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("Herald listening on http://") {
                    let _ = sender.send(addr.trim().to_owned());
                }
            }
        });
        let addr = match receiver.recv_timeout(START_BOUND) {
            Ok(addr) => addr.parse().expect("a socket address in the banner"),
            Err(_) => {
                let _ = child.kill();
                let stderr = child
                    .wait_with_output()
                    .map(|output| String::from_utf8_lossy(&output.stderr).into_owned());
                panic!("herald serve {args:?} printed no address in time: {stderr:?}");
            }
        };
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || BufReader::new(stderr).lines().for_each(drop));
        HubProcess { child, addr }
    }

    /// [`HubProcess::start`] with the test keys: `--jwt-key SECRET --jwt-issuer ISSUER
    /// --public-url PUBLIC_URL --anonymous`, so [`token`] and this handle's publish helpers
    /// work on every node alike.
    pub fn start_with_test_keys(binary: &Path, args: &[&str]) -> HubProcess {
        let mut all = vec!["--jwt-key", SECRET, "--jwt-issuer", ISSUER];
        all.extend_from_slice(&["--public-url", PUBLIC_URL, "--anonymous"]);
        all.extend_from_slice(args);
        HubProcess::start(binary, &all)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process (SIGSTOP) as an overloaded or paused machine would: it holds its
    /// connections but does nothing until [`HubProcess::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill {signal} failed");
    }

    /// Kills the process with SIGKILL (no graceful shutdown) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Publishes `form` with a token that may publish anywhere.
    pub async fn publish(&self, form: &str) -> RawResponse {
        self.post("/.well-known/mercure", form).await
    }

    /// POSTs `form` to `path` with a token that may publish anywhere.
    pub async fn post(&self, path: &str, form: &str) -> RawResponse {
        let token = format!("Bearer {}", token(&["*"], &[]));
        raw::request(
            self.addr,
            "POST",
            path,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &token),
            ],
            form.as_bytes(),
        )
        .await
    }

    /// Publishes `id: N`, `data: uN` for each N in `ids` to `topic`, asserting each 200.
    pub async fn publish_numbered(&self, topic: &str, ids: std::ops::RangeInclusive<u32>) {
        for id in ids {
            let answer = self
                .publish(&format!("topic={}&id={id}&data=u{id}", encode(topic)))
                .await;
            assert_eq!(answer.status, 200, "publish {id}: {}", answer.text());
        }
    }

    /// Opens a subscription (`query` after `?`) and reads the response head.
    pub async fn subscribe(&self, query: &str, headers: &[(&str, &str)]) -> RawStream {
        RawStream::open(self.addr, &format!("/.well-known/mercure?{query}"), headers).await
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A draft-08 token for every [`HubProcess`] (audience [`PUBLIC_URL`]).
pub fn token(publish: &[&str], subscribe: &[&str]) -> String {
    TokenRequest {
        publish: publish.iter().map(|s| s.to_string()).collect(),
        subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        ttl: Duration::from_secs(3600),
        issuer: ISSUER.to_owned(),
        audience: format!("{PUBLIC_URL}/.well-known/mercure"),
        subject: "test".to_owned(),
        legacy: false,
        payload: None,
    }
    .sign_hmac(SECRET.as_bytes())
    .expect("token")
}

/// A `redis-server` this test owns (to stop and restart it), on a free port, with append-only
/// persistence (`appendfsync always`) in a temporary directory when `persistent`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    persistent: bool,
}

impl RedisServer {
    /// Starts one, or returns `None` (loudly, and never under CI) when `redis-server` is not
    /// installed.
    pub fn start(dir: &Path, persistent: bool) -> Option<RedisServer> {
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir: dir.to_owned(),
            persistent,
        };
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed, and CI must run the Redis restart tests"
            );
            eprintln!("SKIPPED: redis-server is not installed");
            return None;
        }
        server.restart();
        Some(server)
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory, and waits until it accepts
    /// connections.
    pub fn restart(&mut self) {
        self.kill();
        let appendonly = if self.persistent { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-shard Redis Cluster this test owns (`redis-server --cluster-enabled yes` on three
/// free ports, joined with `redis-cli --cluster create`), without replicas or persistence.
pub struct RedisCluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
}

impl RedisCluster {
    /// Starts one in `dir`, or returns `None` (loudly, and never under CI) when
    /// `redis-server` or `redis-cli` is not installed.
    pub fn start(dir: &Path) -> Option<RedisCluster> {
        let installed = ["redis-server", "redis-cli"]
            .iter()
            .all(|program| Command::new(program).arg("--version").output().is_ok());
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server and redis-cli are needed, and CI must run the Redis Cluster test"
            );
            eprintln!("SKIPPED: redis-server or redis-cli is not installed");
            return None;
        }
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            ports: Vec::new(),
        };
        for _ in 0..3 {
            let port = free_port();
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("node directory");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args(["--cluster-node-timeout", "2000"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            cluster.nodes.push(child);
            cluster.ports.push(port);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in &cluster.ports {
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        // The cluster serves once every node agrees every slot is covered.
        while !cluster.ports.iter().all(|port| {
            Command::new("redis-cli")
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok"))
        }) {
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(cluster)
    }

    /// The `--transport` URL naming every node.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis-cluster://{}", nodes.join(","))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
