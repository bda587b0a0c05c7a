//! Per-client request rate limit for HTTP ingest: a token bucket per client address, refilled
//! at the configured rate and holding at most one second's worth, so a client may burst up to
//! its per-second allowance and is then paced. Past it the answer is `429` with `Retry-After`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle ones (full again) are dropped.
const PRUNE_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per client address.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// A limiter of `per_second` requests per client; `None` when 0 (no limit).
    pub fn new(per_second: u64) -> Option<RateLimiter> {
        (per_second > 0).then(|| RateLimiter {
            per_second: per_second as f64,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request's token for `client` at `now`, or says how long until one is free.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let burst = self.per_second.max(1.0);
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= PRUNE_AT {
            let full_after = Duration::from_secs_f64(burst / self.per_second);
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < full_after);
        }
        let b = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(RateLimiter::new(0).is_none());
    }

    #[test]
    fn bursts_to_the_rate_then_paces() {
        let l = RateLimiter::new(5).expect("limiter");
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.check(ip("10.0.0.1"), t0).is_ok());
        }
        let wait = l.check(ip("10.0.0.1"), t0).expect_err("limited");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
        // another client has its own bucket
        assert!(l.check(ip("10.0.0.2"), t0).is_ok());
        // a fifth of a second later one more request is allowed, and only one
        let t1 = t0 + Duration::from_millis(200);
        assert!(l.check(ip("10.0.0.1"), t1).is_ok());
        assert!(l.check(ip("10.0.0.1"), t1).is_err());
    }

    #[test]
    fn idle_clients_are_forgotten() {
        let l = RateLimiter::new(1).expect("limiter");
        let t0 = Instant::now();
        for i in 0..PRUNE_AT as u32 {
            let _ = l.check(IpAddr::from(i.to_be_bytes()), t0);
        }
        let later = t0 + Duration::from_secs(2);
        let _ = l.check(ip("192.168.1.1"), later);
        assert!(l.buckets.lock().expect("lock").len() < 10);
    }
}
