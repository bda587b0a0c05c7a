//! The one retry policy: a pause that doubles from a first value to a bound on each failure in
//! a row, and starts again after a success. Every retry loop of stocklake uses it, each with
//! the bounds its service calls for.

use std::time::Duration;

/// Pauses between retries.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    failures: u32,
}

impl Backoff {
    /// Pauses from `first`, doubling, at most `max`.
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
            failures: 0,
        }
    }

    /// A stage of the pipeline retrying a batch: 200 ms, doubling, at most 30 s.
    pub const fn stage() -> Backoff {
        Backoff::new(Duration::from_millis(200), Duration::from_secs(30))
    }

    /// The pause before the next attempt, after a failure.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        self.failures += 1;
        pause
    }

    /// The pause the next failure would wait.
    pub fn next_pause(&self) -> Duration {
        self.next
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// After a success: the next failure waits the first pause again.
    pub fn succeeded(&mut self) {
        self.next = self.first;
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_to_the_bound_and_start_again() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let pauses: Vec<u128> = (0..6).map(|_| b.failed().as_millis()).collect();
        assert_eq!(pauses, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.failures(), 6);
        b.succeeded();
        assert_eq!((b.failures(), b.next_pause().as_millis()), (0, 100));
    }
}
