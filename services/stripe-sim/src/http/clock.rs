//! The simulated clock: objects and events with `created` after sim-now are invisible, and
//! webhooks fire as sim-now passes their events.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::http::config::ClockConfig;

/// Sim-now = `base + speed × (wall time since base was set)`. It never goes backwards.
#[derive(Debug)]
pub struct SimClock {
    inner: Mutex<Inner>,
}

#[derive(Debug, Clone, Copy)]
struct Inner {
    base: i64,
    base_wall: Instant,
    speed: u32,
}

impl Inner {
    fn now(&self) -> i64 {
        let ms = i128::try_from(self.base_wall.elapsed().as_millis()).unwrap_or(i128::MAX);
        let moved = ms.saturating_mul(i128::from(self.speed)) / 1000;
        self.base
            .saturating_add(i64::try_from(moved).unwrap_or(i64::MAX))
    }
}

/// The wall clock in unix seconds.
pub fn wall_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl SimClock {
    /// A clock as configured.
    pub fn new(cfg: ClockConfig) -> SimClock {
        SimClock {
            inner: Mutex::new(Inner {
                base: cfg.start.unwrap_or_else(wall_now),
                base_wall: Instant::now(),
                speed: cfg.speed,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sim-now, unix seconds.
    pub fn now(&self) -> i64 {
        self.lock().now()
    }

    /// Moves sim-now forward by `seconds` (negative values are ignored). Returns the new now.
    pub fn advance(&self, seconds: i64) -> i64 {
        let mut g = self.lock();
        let now = g.now().saturating_add(seconds.max(0));
        g.base = now;
        g.base_wall = Instant::now();
        now
    }

    /// Moves sim-now to `t` if that is not in the past. Returns the new now.
    pub fn set(&self, t: i64) -> i64 {
        let mut g = self.lock();
        let now = g.now().max(t);
        g.base = now;
        g.base_wall = Instant::now();
        now
    }

    /// Changes the speed (simulated seconds per wall second; `0` stops the clock).
    pub fn set_speed(&self, speed: u32) {
        let mut g = self.lock();
        g.base = g.now();
        g.base_wall = Instant::now();
        g.speed = speed;
    }
}
