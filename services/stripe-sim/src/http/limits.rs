//! Per-key rate limiting (token buckets) and the idempotency-key store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::http::api::Reply;

/// Token buckets, one per API key: capacity one second of requests, refilled continuously.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    /// Thousandths of a request.
    milli_tokens: u64,
    last: Instant,
}

impl RateLimiter {
    /// Takes one request from `key`'s bucket; `false` when it is empty. `per_sec == 0` never
    /// limits.
    pub(crate) fn try_take(&self, key: &str, per_sec: u32) -> bool {
        if per_sec == 0 {
            return true;
        }
        let cap = u64::from(per_sec) * 1000;
        let now = Instant::now();
        let mut map = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let b = map.entry(key.to_owned()).or_insert(Bucket {
            milli_tokens: cap,
            last: now,
        });
        let micros = u64::try_from(now.duration_since(b.last).as_micros()).unwrap_or(u64::MAX);
        let refill = micros.saturating_mul(u64::from(per_sec)) / 1000;
        if refill > 0 {
            b.milli_tokens = b.milli_tokens.saturating_add(refill).min(cap);
            b.last = now;
        }
        if b.milli_tokens >= 1000 {
            b.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

/// What an idempotency key remembers.
#[derive(Debug, Clone)]
pub(crate) enum Idem {
    /// A request with this key is running.
    InFlight,
    /// The first request's fingerprint and its stored answer.
    Done(u64, Reply),
}

/// `(api key, Stripe-Account, Idempotency-Key)`.
pub(crate) type IdemKey = (String, Option<String>, String);

/// Idempotency keys, kept for the life of the server.
#[derive(Debug, Default)]
pub(crate) struct IdemStore {
    map: Mutex<HashMap<IdemKey, Idem>>,
}

impl IdemStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IdemKey, Idem>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims the key for a request; returns what is already there if the
    /// key was used before (and then claims nothing).
    pub(crate) fn begin(&self, key: &IdemKey) -> Option<Idem> {
        let mut m = self.lock();
        match m.get(key) {
            Some(existing) => Some(existing.clone()),
            None => {
                m.insert(key.clone(), Idem::InFlight);
                None
            }
        }
    }

    /// Stores the answer (or forgets the key when `reply` is `None`).
    pub(crate) fn finish(&self, key: &IdemKey, fingerprint: u64, reply: Option<Reply>) {
        let mut m = self.lock();
        match reply {
            Some(r) => {
                m.insert(key.clone(), Idem::Done(fingerprint, r));
            }
            None => {
                m.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_second_of_burst() {
        let r = RateLimiter::default();
        let ok = (0..30).filter(|_| r.try_take("k", 25)).count();
        assert!((25..=26).contains(&ok), "{ok}");
        assert!(r.try_take("other", 25));
        assert!((0..1000).all(|_| r.try_take("free", 0)));
    }
}
