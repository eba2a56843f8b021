//! Exponential backoff with full jitter, capped; per object in [`crate::runtime::memory`], reset on success.

use std::time::Duration;

use rand::Rng;

/// Bounds of one backoff class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    pub base: Duration,
    pub cap: Duration,
    /// No retry comes sooner than this, whatever the jitter draws.
    pub floor: Duration,
}

/// Backoff settings for both classes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffPolicy {
    pub transient: Bounds,
    pub long: Bounds,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            transient: Bounds {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(30),
                floor: Duration::from_millis(100),
            },
            long: Bounds {
                base: Duration::from_secs(30),
                cap: Duration::from_secs(900),
                floor: Duration::from_secs(5),
            },
        }
    }
}

impl Bounds {
    /// The ceiling for the `attempt`-th consecutive failure (0-based): base·2^attempt, capped.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(30));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Full jitter: uniform in [floor, ceiling].
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt).max(self.floor);
        let nanos = rng.random_range(self.floor.as_nanos()..=ceiling.as_nanos());
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let b = BackoffPolicy::default().transient;
        assert_eq!(b.ceiling(0), Duration::from_millis(500));
        assert_eq!(b.ceiling(1), Duration::from_secs(1));
        assert_eq!(b.ceiling(4), Duration::from_secs(8));
        assert_eq!(b.ceiling(20), Duration::from_secs(30));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn delays_stay_within_floor_and_ceiling() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for bounds in [
            BackoffPolicy::default().transient,
            BackoffPolicy::default().long,
        ] {
            for attempt in 0..40 {
                for _ in 0..50 {
                    let d = bounds.delay(attempt, &mut rng);
                    assert!(d >= bounds.floor, "{d:?} below floor");
                    assert!(
                        d <= bounds.ceiling(attempt).max(bounds.floor),
                        "{d:?} above ceiling"
                    );
                }
            }
        }
    }

    #[test]
    fn jitter_spreads_retries() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let b = BackoffPolicy::default().transient;
        let delays: std::collections::BTreeSet<_> = (0..20).map(|_| b.delay(6, &mut rng)).collect();
        assert!(delays.len() > 15);
    }
}
