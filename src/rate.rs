//! Client-side rate limiting: one token bucket per AWS region, shared by every worker.
//!
//! The bucket is additive-increase / multiplicative-decrease: a throttled call halves the rate
//! (at most once per second, since a burst of in-flight calls is throttled together, and never
//! below a quarter of the configured rate) and empties the bucket, and each successful call gives
//! back a twentieth of the configured rate, up to the configured rate. So a burst of new objects
//! settles just under what AWS grants instead of bouncing off its quota.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Limits for every region's bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Calls per second; 0 turns limiting off.
    pub rate_per_sec: f64,
    /// Calls allowed at once after a quiet period.
    pub burst: u32,
}

/// One bucket per region, created on first use.
#[derive(Clone)]
pub struct RateLimiters {
    limit: RateLimit,
    buckets: Arc<Mutex<HashMap<String, Arc<RateLimiter>>>>,
}

impl RateLimiters {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Arc::default(),
        }
    }

    pub fn for_region(&self, region: &str) -> Arc<RateLimiter> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .entry(region.to_owned())
            .or_insert_with(|| Arc::new(RateLimiter::new(self.limit, Instant::now())))
            .clone()
    }
}

/// An AIMD token bucket. Callers reserve a token and sleep until it is theirs, so waiters are
/// served in arrival order without polling.
pub struct RateLimiter {
    limit: RateLimit,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// May go negative: that many calls are already waiting for tokens.
    tokens: f64,
    rate: f64,
    refilled_at: Instant,
    last_decrease: Option<Instant>,
}

const MIN_RATE_FRACTION: f64 = 1.0 / 4.0;
const DECREASE_SPACING: Duration = Duration::from_secs(1);

impl RateLimiter {
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            limit,
            state: Mutex::new(Bucket {
                tokens: f64::from(limit.burst.max(1)),
                rate: limit.rate_per_sec,
                refilled_at: now,
                last_decrease: None,
            }),
        }
    }

    fn enabled(&self) -> bool {
        self.limit.rate_per_sec > 0.0
    }

    /// Takes a token, waiting if none is free; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        if !self.enabled() {
            return Duration::ZERO;
        }
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }

    /// Reserves one token at `now` and returns how long until it is available.
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut bucket = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut bucket, now);
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / bucket.rate)
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.tokens =
            (bucket.tokens + elapsed * bucket.rate).min(f64::from(self.limit.burst.max(1)));
        bucket.refilled_at = now;
    }

    /// AWS throttled a call: halve the rate.
    pub fn on_throttle(&self) {
        self.on_throttle_at(Instant::now());
    }

    pub fn on_throttle_at(&self, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut bucket = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if bucket
            .last_decrease
            .is_some_and(|at| now.saturating_duration_since(at) < DECREASE_SPACING)
        {
            return;
        }
        self.refill(&mut bucket, now);
        bucket.rate = (bucket.rate / 2.0).max(self.limit.rate_per_sec * MIN_RATE_FRACTION);
        // AWS says the quota is used up: no burst until the bucket refills at the lower rate.
        bucket.tokens = bucket.tokens.min(0.0);
        bucket.last_decrease = Some(now);
    }

    /// A call went through: recover additively towards the configured rate.
    pub fn on_success(&self) {
        if !self.enabled() {
            return;
        }
        let mut bucket = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut bucket, Instant::now());
        bucket.rate = (bucket.rate + self.limit.rate_per_sec / 20.0).min(self.limit.rate_per_sec);
    }

    /// The current rate in calls per second.
    pub fn current_rate(&self) -> f64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: f64, burst: u32, now: Instant) -> RateLimiter {
        RateLimiter::new(
            RateLimit {
                rate_per_sec: rate,
                burst,
            },
            now,
        )
    }

    #[test]
    fn burst_is_free_then_calls_are_spaced_by_the_rate() {
        let now = Instant::now();
        let l = limiter(4.0, 2, now);
        assert_eq!(l.reserve(now), Duration::ZERO);
        assert_eq!(l.reserve(now), Duration::ZERO);
        assert_eq!(l.reserve(now), Duration::from_millis(250));
        assert_eq!(l.reserve(now), Duration::from_millis(500));
    }

    #[test]
    fn throttling_halves_the_rate_once_per_second() {
        let now = Instant::now();
        let l = limiter(8.0, 1, now);
        l.on_throttle_at(now);
        l.on_throttle_at(now + Duration::from_millis(10));
        assert_eq!(l.current_rate(), 4.0);
        l.on_throttle_at(now + Duration::from_secs(2));
        assert_eq!(l.current_rate(), 2.0);
    }

    #[test]
    fn throttling_ends_the_burst() {
        let now = Instant::now();
        let l = limiter(4.0, 4, now);
        l.on_throttle_at(now);
        // The rate is now 2/s and the burst is gone: the next call waits half a second.
        assert_eq!(l.reserve(now), Duration::from_millis(500));
    }

    #[test]
    fn rate_never_drops_below_a_floor() {
        let now = Instant::now();
        let l = limiter(8.0, 1, now);
        for i in 0..20 {
            l.on_throttle_at(now + Duration::from_secs(2 * i));
        }
        assert_eq!(l.current_rate(), 2.0);
    }

    #[test]
    fn success_recovers_additively_up_to_the_configured_rate() {
        let now = Instant::now();
        let l = limiter(10.0, 1, now);
        l.on_throttle_at(now);
        assert_eq!(l.current_rate(), 5.0);
        l.on_success();
        assert!((l.current_rate() - 5.5).abs() < 1e-9);
        for _ in 0..100 {
            l.on_success();
        }
        assert_eq!(l.current_rate(), 10.0);
    }

    #[test]
    fn zero_rate_turns_limiting_off() {
        let now = Instant::now();
        let l = limiter(0.0, 0, now);
        l.on_throttle_at(now);
        assert_eq!(l.current_rate(), 0.0);
    }
}
