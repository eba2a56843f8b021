//! What one emulator instance pretends to be: account, region, credentials, quotas.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::protocol::ErrorKind;

/// The account every ARN is minted in unless configured otherwise.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";
/// The region the emulator answers for unless configured otherwise.
pub const DEFAULT_REGION: &str = "us-east-1";
/// AWS's documented example access key: obviously fake, so it never gets mistaken for a real one.
pub const DEFAULT_ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
/// AWS's documented example secret key, paired with [`DEFAULT_ACCESS_KEY_ID`].
pub const DEFAULT_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// The face model version new collections get, as the service currently reports it.
pub const DEFAULT_FACE_MODEL_VERSION: &str = "7.0";
/// How many calls the admin call log keeps before dropping the oldest.
pub const DEFAULT_CALL_LOG_CAPACITY: usize = 50_000;
/// SigV4 accepts request dates this far from the server clock, as AWS does.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// Configuration of one emulator instance.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// 12-digit account ID used in ARNs and checked in `ResourceArn` parameters.
    pub account_id: String,
    /// The only region requests may be signed for.
    pub region: String,
    /// The only access key ID accepted.
    pub access_key_id: String,
    /// Secret key that signatures are verified against.
    pub secret_access_key: String,
    /// Default per-operation quota.
    pub quota: QuotaConfig,
    /// When set, collections are loaded from and saved to this file.
    pub state_file: Option<PathBuf>,
    /// Bound of the admin call log.
    pub call_log_capacity: usize,
    /// Largest accepted difference between a request's signing time and the server clock.
    pub max_clock_skew: Duration,
    /// Face model version reported for new collections.
    pub face_model_version: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            access_key_id: DEFAULT_ACCESS_KEY_ID.to_owned(),
            secret_access_key: DEFAULT_SECRET_ACCESS_KEY.to_owned(),
            quota: QuotaConfig::default(),
            state_file: None,
            call_log_capacity: DEFAULT_CALL_LOG_CAPACITY,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            face_model_version: DEFAULT_FACE_MODEL_VERSION.to_owned(),
        }
    }
}

// Hand-written so the secret key never lands in a log line.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("account_id", &self.account_id)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("quota", &self.quota)
            .field("state_file", &self.state_file)
            .field("call_log_capacity", &self.call_log_capacity)
            .field("max_clock_skew", &self.max_clock_skew)
            .field("face_model_version", &self.face_model_version)
            .finish()
    }
}

impl Config {
    /// The ARN partition of the configured region (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &'static str {
        partition_of(&self.region)
    }

    /// Refuses configurations the emulator cannot serve consistently.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Err(Error::InvalidConfig(reason));
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return invalid(format!("account ID {:?} is not 12 digits", self.account_id));
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return invalid(format!("region {:?} is not a region name", self.region));
        }
        if self.access_key_id.is_empty() || self.access_key_id.contains('/') {
            return invalid("access key ID must be non-empty and contain no '/'".to_owned());
        }
        if self.secret_access_key.is_empty() {
            return invalid("secret access key must be non-empty".to_owned());
        }
        if self.call_log_capacity == 0 {
            return invalid("call log capacity must be at least 1".to_owned());
        }
        self.quota.validate()
    }
}

/// The default quota every operation starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaConfig {
    /// Sustained requests per second per operation; `0` turns quotas off.
    pub rate_per_sec: f64,
    /// Requests that may arrive at once after an idle period.
    pub burst: u32,
    /// Which error an empty bucket answers with.
    pub throttle_error: ThrottleError,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            rate_per_sec: 5.0,
            burst: 5,
            throttle_error: ThrottleError::Throttling,
        }
    }
}

impl QuotaConfig {
    /// No quota at all: every call is let through.
    pub fn disabled() -> Self {
        QuotaConfig {
            rate_per_sec: 0.0,
            ..QuotaConfig::default()
        }
    }

    /// Whether these settings limit anything.
    pub fn is_enabled(&self) -> bool {
        self.rate_per_sec > 0.0
    }

    fn validate(&self) -> Result<(), Error> {
        if !self.rate_per_sec.is_finite() || self.rate_per_sec < 0.0 {
            return Err(Error::InvalidConfig(format!(
                "quota rate {} must be a non-negative number",
                self.rate_per_sec
            )));
        }
        if self.is_enabled() && self.burst == 0 {
            return Err(Error::InvalidConfig(
                "quota burst must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The two errors Rekognition uses to say "slow down".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ThrottleError {
    /// `ThrottlingException` (HTTP 500 in Rekognition's model).
    #[default]
    #[serde(rename = "ThrottlingException")]
    Throttling,
    /// `ProvisionedThroughputExceededException` (HTTP 400).
    #[serde(rename = "ProvisionedThroughputExceededException")]
    ProvisionedThroughputExceeded,
}

impl ThrottleError {
    /// The protocol error this choice answers with.
    pub fn error_kind(self) -> ErrorKind {
        match self {
            ThrottleError::Throttling => ErrorKind::Throttling,
            ThrottleError::ProvisionedThroughputExceeded => {
                ErrorKind::ProvisionedThroughputExceeded
            }
        }
    }
}

/// The ARN partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn debug_output_hides_the_secret_key() {
        let text = format!("{:?}", Config::default());
        assert!(!text.contains(DEFAULT_SECRET_ACCESS_KEY));
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn rejects_account_ids_that_are_not_twelve_digits() {
        let config = Config {
            account_id: "12345".to_owned(),
            ..Config::default()
        };
        assert!(matches!(config.validate(), Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn rejects_negative_quota_rates() {
        let config = Config {
            quota: QuotaConfig {
                rate_per_sec: -1.0,
                ..QuotaConfig::default()
            },
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn partitions_follow_region_prefixes() {
        assert_eq!(partition_of("us-east-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }
}
