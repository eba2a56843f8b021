//! Per-operation request quotas as token buckets, like the service's transactions-per-second
//! limits.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::{QuotaConfig, ThrottleError};
use crate::protocol::{ErrorKind, Operation};

/// A bucket of `burst` tokens refilled at `rate` tokens per second; a call takes one token.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token if one is there.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The quota of one operation as the admin API shows and changes it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaSetting {
    pub enabled: bool,
    pub rate: f64,
    pub burst: u32,
}

/// A change of quotas (`PUT /admin/quotas`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaUpdate {
    /// `false` lets every call through; `true` limits calls to `rate` per second.
    pub enabled: bool,
    /// Requests per second; kept as it was when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Bucket size; kept as it was when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// The operation to change; every operation when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// Which error throttled calls get from now on (applies to all operations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_error: Option<ThrottleError>,
}

/// Every operation's quota (`GET /admin/quotas`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotasView {
    pub throttle_error: ThrottleError,
    pub operations: BTreeMap<Operation, QuotaSetting>,
}

#[derive(Debug, Clone)]
struct OperationQuota {
    setting: QuotaSetting,
    bucket: TokenBucket,
}

/// The quotas of all operations.
#[derive(Debug, Clone)]
pub struct Quotas {
    throttle_error: ThrottleError,
    operations: BTreeMap<Operation, OperationQuota>,
}

impl Quotas {
    pub fn new(config: &QuotaConfig, now: Instant) -> Self {
        let setting = QuotaSetting {
            enabled: config.is_enabled(),
            rate: config.rate_per_sec,
            burst: config.burst,
        };
        let operations = Operation::ALL
            .into_iter()
            .map(|op| {
                (
                    op,
                    OperationQuota {
                        setting,
                        bucket: TokenBucket::new(setting.rate, setting.burst, now),
                    },
                )
            })
            .collect();
        Quotas {
            throttle_error: config.throttle_error,
            operations,
        }
    }

    /// Lets the call through, or names the error that throttles it.
    pub fn check(&mut self, op: Operation, now: Instant) -> Result<(), ErrorKind> {
        match self.operations.get_mut(&op) {
            Some(quota) if quota.setting.enabled => {
                if quota.bucket.try_take(now) {
                    Ok(())
                } else {
                    Err(self.throttle_error.error_kind())
                }
            }
            _ => Ok(()),
        }
    }

    /// Applies an admin change; buckets of changed operations start full.
    pub fn update(&mut self, update: &QuotaUpdate, now: Instant) -> Result<(), String> {
        if let Some(rate) = update.rate
            && (!rate.is_finite() || rate < 0.0)
        {
            return Err(format!("rate {rate} must be a non-negative number"));
        }
        if update.burst == Some(0) {
            return Err("burst must be at least 1".to_owned());
        }
        let targets: Vec<Operation> = match update.operation {
            Some(op) => vec![op],
            None => Operation::ALL.to_vec(),
        };
        // Check every target before changing any, so a refused update changes nothing.
        let mut changed = Vec::with_capacity(targets.len());
        for op in targets {
            let Some(current) = self.operations.get(&op).map(|q| q.setting) else {
                continue;
            };
            let rate = update.rate.unwrap_or(current.rate);
            let enabled = update.enabled && rate > 0.0;
            if update.enabled && !enabled {
                return Err(format!("{op} has no rate to enable; give a rate above 0"));
            }
            let setting = QuotaSetting {
                enabled,
                rate,
                burst: update.burst.unwrap_or(current.burst),
            };
            changed.push((op, setting));
        }
        for (op, setting) in changed {
            self.operations.insert(
                op,
                OperationQuota {
                    setting,
                    bucket: TokenBucket::new(setting.rate, setting.burst, now),
                },
            );
        }
        if let Some(error) = update.throttle_error {
            self.throttle_error = error;
        }
        Ok(())
    }

    /// Fills every bucket (admin reset).
    pub fn refill(&mut self, now: Instant) {
        for quota in self.operations.values_mut() {
            quota.bucket = TokenBucket::new(quota.setting.rate, quota.setting.burst, now);
        }
    }

    pub fn view(&self) -> QuotasView {
        QuotasView {
            throttle_error: self.throttle_error,
            operations: self
                .operations
                .iter()
                .map(|(op, q)| (*op, q.setting))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_refuses() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 3, now);
        assert_eq!(
            (0..4).map(|_| bucket.try_take(now)).collect::<Vec<_>>(),
            [true, true, true, false]
        );
    }

    #[test]
    fn the_bucket_refills_at_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 1, start);
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start + Duration::from_millis(400)));
        assert!(bucket.try_take(start + Duration::from_millis(600)));
    }

    #[test]
    fn the_bucket_never_holds_more_than_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100.0, 2, start);
        let later = start + Duration::from_secs(60);
        assert_eq!(
            (0..3).map(|_| bucket.try_take(later)).collect::<Vec<_>>(),
            [true, true, false]
        );
    }

    #[test]
    fn operations_have_separate_buckets() {
        let now = Instant::now();
        let mut quotas = Quotas::new(
            &QuotaConfig {
                rate_per_sec: 1.0,
                burst: 1,
                ..Default::default()
            },
            now,
        );
        assert_eq!(quotas.check(Operation::CreateCollection, now), Ok(()));
        assert_eq!(
            quotas.check(Operation::CreateCollection, now),
            Err(ErrorKind::Throttling)
        );
        assert_eq!(quotas.check(Operation::DescribeCollection, now), Ok(()));
    }

    #[test]
    fn rate_zero_turns_the_quota_off() {
        let now = Instant::now();
        let mut quotas = Quotas::new(&QuotaConfig::disabled(), now);
        assert!((0..1000).all(|_| quotas.check(Operation::ListCollections, now).is_ok()));
    }

    #[test]
    fn the_configured_throttle_error_is_answered() {
        let now = Instant::now();
        let config = QuotaConfig {
            rate_per_sec: 1.0,
            burst: 1,
            throttle_error: ThrottleError::ProvisionedThroughputExceeded,
        };
        let mut quotas = Quotas::new(&config, now);
        let _ = quotas.check(Operation::TagResource, now);
        assert_eq!(
            quotas.check(Operation::TagResource, now),
            Err(ErrorKind::ProvisionedThroughputExceeded)
        );
    }

    #[test]
    fn enabling_without_any_rate_is_refused() {
        let now = Instant::now();
        let mut quotas = Quotas::new(&QuotaConfig::disabled(), now);
        let update = QuotaUpdate {
            enabled: true,
            ..Default::default()
        };
        assert!(quotas.update(&update, now).is_err());
        assert!(!quotas.view().operations[&Operation::CreateCollection].enabled);
    }

    #[test]
    fn an_update_for_one_operation_leaves_the_others() {
        let now = Instant::now();
        let mut quotas = Quotas::new(&QuotaConfig::default(), now);
        let update = QuotaUpdate {
            enabled: true,
            rate: Some(1.0),
            burst: Some(1),
            operation: Some(Operation::DeleteCollection),
            throttle_error: None,
        };
        quotas.update(&update, now).unwrap();
        let view = quotas.view();
        assert_eq!(view.operations[&Operation::DeleteCollection].burst, 1);
        assert_eq!(view.operations[&Operation::CreateCollection].burst, 5);
    }
}
