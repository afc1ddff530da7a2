//! A real `herald serve` process, for tests that need what only a process gives: a restart
//! on the same data directory, a `SIGKILL` at any moment.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a hub may take to print where it listens.
const START_BOUND: Duration = Duration::from_secs(30);

/// A running `herald serve`; killed (by its pid) when dropped.
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
    /// If the process cannot start or does not print its address in time.
    pub fn start(binary: &Path, args: &[&str]) -> HubProcess {
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("HERALD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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
                let status = child.wait();
                panic!("herald serve printed no address in time (exit: {status:?})");
            }
        };
        HubProcess { child, addr }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with `SIGKILL` (no shutdown, no flush) and reaps it.
    pub fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}
