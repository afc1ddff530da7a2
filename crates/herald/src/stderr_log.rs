//! [`StderrLog`]: where log lines go. Lines are appended to a shared buffer and written to
//! stderr by one background thread, so a request's log line costs a copy under a lock instead
//! of a `write` system call on a runtime worker.
//!
//! Why: the access log writes one line per request. Written straight to stderr, that was one
//! `write` per publish on the threads that serve requests (with 64 concurrent publishers:
//! ~4 % of the hub's CPU in the syscall alone, and every worker serialised on stderr's lock).
//! Through this buffer, lines that arrive while the thread is writing are written together
//! in the next `write`.
//!
//! The thread writes the first line after a quiet spell at once; after each write it waits
//! [`BATCH_WINDOW`] before the next, so under load the lines of that window go out in one
//! `write`, and writers never pay for waking the thread (measured: waking it for every line
//! cost a `futex` call per request, ~3 % of the hub's CPU, as much as the writes saved).
//!
//! Nothing is dropped: when the thread falls [`MAX_PENDING`] bytes behind (stderr blocked by a
//! slow reader), the writers wait for it, as they would on a blocking stderr. What a crash can
//! lose is what was appended but not yet written at that instant (at most a few milliseconds
//! of lines); [`StderrLogGuard`] writes everything out when it is dropped at the end of `main`
//! (normal exit, error, or a panic unwinding `main`).

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes waiting to be written before writers wait for the thread: far more than a burst of
/// log lines, small enough to bound the memory a blocked stderr can hold.
const MAX_PENDING: usize = 1 << 20;

/// How long the thread gathers lines after a write before the next one: short enough that a
/// line reaches the terminal or journald without a noticeable delay.
const BATCH_WINDOW: Duration = Duration::from_millis(2);

/// The log's writer (a `tracing_subscriber` `MakeWriter`): cheap to clone, shared by every
/// thread that logs.
#[derive(Clone)]
pub(crate) struct StderrLog {
    shared: Arc<Shared>,
}

/// Writes out what is still buffered and stops the thread when dropped.
pub(crate) struct StderrLogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writing thread when lines arrive (or on close).
    arrived: Condvar,
    /// Wakes writers waiting for room once a batch has been written.
    written: Condvar,
}

#[derive(Default)]
struct State {
    /// Complete lines not yet handed to the thread.
    pending: Vec<u8>,
    /// The thread is asleep waiting for lines: only then does a writer pay for a wake-up.
    idle: bool,
    /// The guard was dropped: write what is left and stop.
    closed: bool,
}

impl StderrLog {
    /// Starts the writing thread. Keep the guard until the process is about to exit.
    pub(crate) fn start() -> (StderrLog, StderrLogGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            arrived: Condvar::new(),
            written: Condvar::new(),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("herald-log".into())
                .spawn(move || shared.write_out())
                .ok()
        };
        // Without the thread (it could not be spawned), writers write to stderr themselves.
        let log = StderrLog {
            shared: Arc::clone(&shared),
        };
        if thread.is_none() {
            log.shared.lock().closed = true;
        }
        (log, StderrLogGuard { shared, thread })
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves at worst a partial line: keep logging.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The writing thread: takes every pending line at once, writes them, repeats.
    fn write_out(&self) {
        let mut batch = Vec::with_capacity(64 * 1024);
        loop {
            let closed = {
                let mut state = self.lock();
                while state.pending.is_empty() && !state.closed {
                    state.idle = true;
                    state = self
                        .arrived
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                state.idle = false;
                if state.pending.is_empty() {
                    return;
                }
                std::mem::swap(&mut batch, &mut state.pending);
                state.closed
            };
            self.written.notify_all();
            // A log that cannot be written has nowhere to report that: drop the batch.
            let _ = std::io::stderr().lock().write_all(&batch);
            batch.clear();
            if !closed {
                std::thread::sleep(BATCH_WINDOW);
            }
        }
    }
}

impl Write for &StderrLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let shared = &self.shared;
        let mut state = shared.lock();
        if state.closed {
            drop(state);
            return std::io::stderr().write(bytes);
        }
        while state.pending.len() >= MAX_PENDING && !state.closed {
            state = shared
                .written
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.pending.extend_from_slice(bytes);
        if state.idle {
            state.idle = false;
            drop(state);
            shared.arrived.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrLog {
    type Writer = &'a StderrLog;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for StderrLogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.arrived.notify_one();
        self.shared.written.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_handed_over_in_order_and_nothing_is_left_at_close() {
        let (log, guard) = StderrLog::start();
        // Stop the thread first, so the lines stay in `pending` where the test can read them.
        drop(guard);
        let mut writer = &log;
        writer.write_all(b"direct\n").unwrap();
        assert!(log.shared.lock().pending.is_empty(), "written through");

        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            arrived: Condvar::new(),
            written: Condvar::new(),
        });
        let log = StderrLog {
            shared: Arc::clone(&shared),
        };
        let mut writer = &log;
        for n in 0..100 {
            writer.write_all(format!("line {n}\n").as_bytes()).unwrap();
        }
        let pending = String::from_utf8(shared.lock().pending.clone()).unwrap();
        let expected: String = (0..100).map(|n| format!("line {n}\n")).collect();
        assert_eq!(pending, expected);
    }
}
