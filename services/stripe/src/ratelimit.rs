//! Client-side rate limiter: an even spacing of requests (a token bucket with a small burst),
//! so a backfill runs just under Stripe's limit instead of bouncing off it with 429s.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Paces callers to `per_sec` requests per second with a burst of `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    burst: u32,
    next: Mutex<Instant>,
    waits: AtomicU64,
    waited_micros: AtomicU64,
}

impl RateLimiter {
    /// `per_sec = 0` means unlimited.
    pub fn new(per_sec: u32, burst: u32) -> RateLimiter {
        let interval = if per_sec == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(1_000_000_000 / u64::from(per_sec))
        };
        RateLimiter {
            interval,
            burst: burst.max(1),
            next: Mutex::new(Instant::now()),
            waits: AtomicU64::new(0),
            waited_micros: AtomicU64::new(0),
        }
    }

    /// Waits for a slot.
    pub async fn acquire(&self) {
        if self.interval.is_zero() {
            return;
        }
        let at = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let earliest = now
                .checked_sub(self.interval * (self.burst - 1))
                .unwrap_or(now);
            if *next < earliest {
                *next = earliest;
            }
            let at = *next;
            *next += self.interval;
            at
        };
        let now = Instant::now();
        if at > now {
            self.waits.fetch_add(1, Ordering::Relaxed);
            let d = at - now;
            self.waited_micros.fetch_add(
                u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            tokio::time::sleep_until(at).await;
        }
    }

    /// Pushes every caller back by `pause` (after a 429 the whole client slows down).
    pub fn pause(&self, pause: Duration) {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let until = Instant::now() + pause;
        if *next < until {
            *next = until;
        }
    }

    /// How many acquisitions had to wait, and the total wait in microseconds.
    pub fn waits(&self) -> (u64, u64) {
        (
            self.waits.load(Ordering::Relaxed),
            self.waited_micros.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn spaces_requests_evenly_after_the_burst() {
        let limiter = RateLimiter::new(50, 2);
        let start = Instant::now();
        for _ in 0..12 {
            limiter.acquire().await;
        }
        let elapsed = start.elapsed();
        // 2 at once, then 10 more at 20 ms each.
        assert!(elapsed >= Duration::from_millis(180), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(400), "{elapsed:?}");
        assert!(limiter.waits().0 >= 9);
    }
}
