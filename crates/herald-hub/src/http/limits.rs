//! [`ConnectionLimits`]: how many TCP connections the hub holds, in total and per peer address.
//!
//! Counted per accepted TCP connection, whatever it carries (HTTP/1.1, h2c, TLS), because the
//! resource at stake is the connection itself: a file descriptor, kernel buffers and a task.
//! A connection over a limit is not dropped silently: it is answered (503 for the global
//! limit, 429 for the per-address one) with `Retry-After` and a one-line reason, then closed.
//!
//! Per-address limits key on the peer's IP address as the socket reports it (IPv4-mapped IPv6
//! addresses are folded to IPv4, so a dual-stack listener counts a client once). Behind a
//! reverse proxy every connection comes from the proxy's address: leave the per-address limit
//! off there, which is why it is off by default.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::header::{CONNECTION, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};

use crate::http::response::{HubBody, text};

/// Seconds a refused client is told to wait (`Retry-After`). Long enough that a client
/// honouring it does not hammer a full hub, short enough to get in soon after a slot frees.
pub(crate) const RETRY_AFTER_SECS: u64 = 5;

/// Refusals answered at once. Answering costs a socket for a moment; beyond this many a
/// connection over a limit is closed without an answer, so a flood cannot use refusals as
/// another way to hold descriptors.
pub(crate) const MAX_REFUSING: usize = 64;

/// Open connection counts, shared by the accept loop and every connection task.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    /// Most connections open at once; `None`: no limit.
    max_total: Option<usize>,
    /// Most connections open at once from one address; `None`: no limit.
    max_per_ip: Option<usize>,
    /// Connections admitted and still open.
    total: AtomicUsize,
    /// Admitted connections per peer address; only kept when `max_per_ip` is set. An entry
    /// is removed when its count drops to zero, so the map holds only connected addresses.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Refusals being answered now (see [`MAX_REFUSING`]).
    refusing: AtomicUsize,
}

/// Why a connection is not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The hub holds `max_total` connections: 503.
    Total(usize),
    /// This address holds `max_per_ip` connections: 429.
    PerIp(usize),
}

impl Refusal {
    /// The answer to every request on a refused connection.
    pub(crate) fn response(self) -> Response<HubBody> {
        let (status, message) = match self {
            Refusal::Total(limit) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the hub is at its connection limit ({limit} open connections); retry in {RETRY_AFTER_SECS}s"
                ),
            ),
            Refusal::PerIp(limit) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many connections from your address (the limit is {limit}); close one or retry in {RETRY_AFTER_SECS}s"
                ),
            ),
        };
        let mut response = text(status, message);
        let headers = response.headers_mut();
        headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        // HTTP/1.1: hyper closes the connection after this response (HTTP/2 drops the
        // header and the connection is shut down gracefully instead).
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

impl ConnectionLimits {
    pub(crate) fn new(max_total: Option<usize>, max_per_ip: Option<usize>) -> Self {
        Self {
            max_total,
            max_per_ip,
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            refusing: AtomicUsize::new(0),
        }
    }

    fn per_ip(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Every mutation is a single counter update: a poisoned map is still consistent.
        self.per_ip
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits a connection from `peer`, or says why not. The slot is released when the
    /// returned guard is dropped, that is when the connection's task ends.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let total = self.total.fetch_add(1, Ordering::AcqRel) + 1;
        if let Some(limit) = self.max_total
            && total > limit
        {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Total(limit));
        }
        let ip = match self.max_per_ip {
            None => None,
            Some(limit) => {
                let ip = peer.to_canonical();
                let mut per_ip = self.per_ip();
                let count = per_ip.entry(ip).or_insert(0);
                if *count >= limit {
                    if *count == 0 {
                        per_ip.remove(&ip);
                    }
                    drop(per_ip);
                    self.total.fetch_sub(1, Ordering::AcqRel);
                    return Err(Refusal::PerIp(limit));
                }
                *count += 1;
                Some(ip)
            }
        };
        Ok(ConnectionSlot {
            limits: Arc::clone(self),
            ip,
        })
    }

    /// Reserves one of the [`MAX_REFUSING`] answering slots; `None` when they are all busy.
    pub(crate) fn start_refusal(self: &Arc<Self>) -> Option<RefusingSlot> {
        let refusing = self.refusing.fetch_add(1, Ordering::AcqRel) + 1;
        if refusing > MAX_REFUSING {
            self.refusing.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(RefusingSlot {
            limits: Arc::clone(self),
        })
    }

    /// Connections admitted and open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

/// An admitted connection's place in the counts; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    /// The counted address, when per-address limits are on.
    ip: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut per_ip = self.limits.per_ip();
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        self.limits.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One refusal being answered; dropping it frees the answering slot.
#[derive(Debug)]
pub(crate) struct RefusingSlot {
    limits: Arc<ConnectionLimits>,
}

impl Drop for RefusingSlot {
    fn drop(&mut self) {
        self.limits.refusing.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn total_limit_refuses_then_frees() {
        let limits = Arc::new(ConnectionLimits::new(Some(2), None));
        let a = limits.admit(ip("10.0.0.1")).unwrap();
        let _b = limits.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(limits.admit(ip("10.0.0.3")).unwrap_err(), Refusal::Total(2));
        assert_eq!(limits.open(), 2);
        drop(a);
        assert!(limits.admit(ip("10.0.0.3")).is_ok());
    }

    #[test]
    fn per_ip_limit_counts_each_address_and_forgets_idle_ones() {
        let limits = Arc::new(ConnectionLimits::new(None, Some(1)));
        let a = limits.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(limits.admit(ip("10.0.0.1")).unwrap_err(), Refusal::PerIp(1));
        // IPv4-mapped IPv6 is the same client.
        assert_eq!(
            limits.admit(ip("::ffff:10.0.0.1")).unwrap_err(),
            Refusal::PerIp(1)
        );
        let _b = limits.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(limits.open(), 2);
        drop(a);
        assert_eq!(limits.per_ip().len(), 1);
        assert!(limits.admit(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn per_ip_limit_of_zero_refuses_without_keeping_an_entry() {
        let limits = Arc::new(ConnectionLimits::new(None, Some(0)));
        assert!(limits.admit(ip("10.0.0.1")).is_err());
        assert!(limits.per_ip().is_empty());
        assert_eq!(limits.open(), 0);
    }

    #[test]
    fn refusals_answered_at_once_are_bounded() {
        let limits = Arc::new(ConnectionLimits::new(Some(0), None));
        let slots: Vec<_> = (0..MAX_REFUSING)
            .map(|_| limits.start_refusal().unwrap())
            .collect();
        assert!(limits.start_refusal().is_none());
        drop(slots);
        assert!(limits.start_refusal().is_some());
    }

    #[test]
    fn refusal_answers_say_why_and_when_to_retry() {
        let response = Refusal::PerIp(3).response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "5");
        let response = Refusal::Total(10).response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[CONNECTION], "close");
    }
}
