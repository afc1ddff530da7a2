//! How long to wait before reconnecting: the server's `retry`, growing exponentially with
//! full jitter while attempts keep failing.

use std::time::Duration;

/// The smallest base the exponential growth starts from, so that a server sending `retry: 0`
/// cannot make a client whose connections keep failing loop hot.
const MIN_GROWTH_BASE: Duration = Duration::from_millis(50);

/// The reconnection policy (pure: it only computes delays; the caller sleeps).
#[derive(Debug)]
pub(crate) struct Backoff {
    /// The cap on the exponential growth (not on the server's own `retry`, which is a floor).
    max: Duration,
    /// Spread the delays at random so a crowd of clients does not reconnect in lockstep.
    jitter: bool,
    /// Jitter source; not cryptographic, only decorrelating.
    rng: fastrand::Rng,
}

impl Backoff {
    /// A policy capped at `max`.
    pub(crate) fn new(max: Duration, jitter: bool) -> Self {
        Backoff {
            max,
            jitter,
            rng: fastrand::Rng::new(),
        }
    }

    /// A policy with a fixed random seed, for tests.
    #[cfg(test)]
    fn seeded(max: Duration, seed: u64) -> Self {
        Backoff {
            max,
            jitter: true,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The delay before the next attempt, given the reconnection time `retry` (the server's
    /// `retry:` field or the builder's default) and the number of consecutive failed attempts
    /// (0 after a stream that opened and then ended).
    ///
    /// - 0 or 1 failures: exactly `retry`, as the server asked.
    /// - n ≥ 2 failures: drawn uniformly from `[retry, ceiling]` where `ceiling` is
    ///   `max(retry, 50ms) · 2^(n-1)` capped at `max` ("full jitter" above the floor the
    ///   server set); without jitter, `ceiling` itself. A `retry` above `max` wins: the
    ///   server's request is honoured.
    pub(crate) fn delay(&mut self, retry: Duration, failures: u32) -> Duration {
        if failures <= 1 {
            return retry;
        }
        let base = retry.max(MIN_GROWTH_BASE);
        let factor = 1u32 << (failures - 1).min(20);
        let ceiling = base.saturating_mul(factor).min(self.max).max(retry);
        if !self.jitter || ceiling == retry {
            return ceiling;
        }
        let span = u64::try_from((ceiling - retry).as_millis()).unwrap_or(u64::MAX);
        retry + Duration::from_millis(self.rng.u64(0..=span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_reconnection_waits_exactly_retry() {
        let mut backoff = Backoff::new(Duration::from_secs(30), true);
        assert_eq!(backoff.delay(3000 * MS, 0), 3000 * MS);
        assert_eq!(backoff.delay(3000 * MS, 1), 3000 * MS);
        assert_eq!(backoff.delay(Duration::ZERO, 1), Duration::ZERO);
    }

    #[test]
    fn without_jitter_the_delay_doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_secs(1), false);
        let delays: Vec<_> = (1..=7).map(|n| backoff.delay(100 * MS, n)).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1000, 1000, 1000].map(|ms| ms * MS)
        );
    }

    #[test]
    fn jittered_delays_stay_between_retry_and_the_ceiling() {
        let mut backoff = Backoff::seeded(Duration::from_secs(10), 7);
        for failures in 2..12 {
            let ceiling = (100 * MS * (1 << (failures - 1))).min(Duration::from_secs(10));
            for _ in 0..200 {
                let delay = backoff.delay(100 * MS, failures);
                assert!(
                    delay >= 100 * MS && delay <= ceiling,
                    "{delay:?} for {failures}"
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let mut backoff = Backoff::seeded(Duration::from_secs(60), 1);
        let delays: std::collections::HashSet<_> =
            (0..50).map(|_| backoff.delay(1000 * MS, 6)).collect();
        assert!(delays.len() > 40, "{} distinct delays", delays.len());
    }

    #[test]
    fn a_zero_retry_still_backs_off() {
        let mut backoff = Backoff::new(Duration::from_secs(30), false);
        assert_eq!(backoff.delay(Duration::ZERO, 2), 100 * MS);
        assert_eq!(backoff.delay(Duration::ZERO, 5), 800 * MS);
    }

    #[test]
    fn a_server_retry_above_the_cap_is_honoured() {
        let mut backoff = Backoff::new(Duration::from_secs(1), true);
        assert_eq!(backoff.delay(5000 * MS, 4), 5000 * MS);
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut backoff = Backoff::new(Duration::MAX, false);
        assert!(backoff.delay(Duration::from_secs(u64::MAX / 4), u32::MAX) > Duration::ZERO);
    }
}
