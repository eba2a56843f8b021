//! What one emulator instance pretends to be: accounts, region, credentials, roles and their
//! trust rules, OIDC providers, quotas.
//!
//! The flat fields of [`Config`] describe the *default account* and its one access key, which is
//! all a single-account emulator needs; [`IamConfig`] adds more accounts, roles and OIDC
//! providers. The same IAM types are the bodies of the admin API's `PUT` routes.

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
/// The IAM user the default access key belongs to (`arn:aws:iam::<account>:user/emulator`).
pub const DEFAULT_USER_NAME: &str = "emulator";
/// The audience (client ID) IAM OIDC providers accept unless configured otherwise, as EKS
/// ServiceAccount tokens for IRSA carry it.
pub const DEFAULT_WEB_IDENTITY_AUDIENCE: &str = "sts.amazonaws.com";
/// A role's maximum session duration unless configured otherwise (one hour, as in IAM).
pub const DEFAULT_MAX_SESSION_SECONDS: u32 = 3600;

/// Configuration of one emulator instance.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// 12-digit account ID used in ARNs and checked in `ResourceArn` parameters.
    pub account_id: String,
    /// The default region: the one the endpoint's root path (`/`) serves, and the one the state
    /// file and the admin API mean unless told otherwise.
    pub region: String,
    /// More regions served, each at the endpoint path `/<region>`, with collections, quotas and
    /// call logs of their own.
    pub extra_regions: Vec<String>,
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
    /// More accounts, roles with trust rules, and OIDC providers.
    pub iam: IamConfig,
    /// When set, STS sessions end after at most this long, whatever `DurationSeconds` asked
    /// for (which is still validated as AWS does), so tests can watch credentials expire.
    pub session_duration_cap: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            extra_regions: Vec::new(),
            access_key_id: DEFAULT_ACCESS_KEY_ID.to_owned(),
            secret_access_key: DEFAULT_SECRET_ACCESS_KEY.to_owned(),
            quota: QuotaConfig::default(),
            state_file: None,
            call_log_capacity: DEFAULT_CALL_LOG_CAPACITY,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            face_model_version: DEFAULT_FACE_MODEL_VERSION.to_owned(),
            iam: IamConfig::default(),
            session_duration_cap: None,
        }
    }
}

// Hand-written so the secret key never lands in a log line.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("account_id", &self.account_id)
            .field("region", &self.region)
            .field("extra_regions", &self.extra_regions)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("quota", &self.quota)
            .field("state_file", &self.state_file)
            .field("call_log_capacity", &self.call_log_capacity)
            .field("max_clock_skew", &self.max_clock_skew)
            .field("face_model_version", &self.face_model_version)
            .field("iam", &self.iam)
            .field("session_duration_cap", &self.session_duration_cap)
            .finish()
    }
}

impl Config {
    /// The ARN partition of the default region (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &'static str {
        partition_of(&self.region)
    }

    /// Every region served, the default one first.
    pub fn regions(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.region.as_str()).chain(self.extra_regions.iter().map(String::as_str))
    }

    /// Whether requests for `region` are served.
    pub fn serves(&self, region: &str) -> bool {
        self.regions().any(|r| r == region)
    }

    /// Refuses configurations the emulator cannot serve consistently.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Err(Error::InvalidConfig(reason));
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return invalid(format!("account ID {:?} is not 12 digits", self.account_id));
        }
        let mut regions: Vec<&str> = self.regions().collect();
        if let Some(bad) = regions.iter().find(|r| !is_region_name(r)) {
            return invalid(format!("region {bad:?} is not a region name"));
        }
        regions.sort_unstable();
        if let Some(pair) = regions.windows(2).find(|pair| pair[0] == pair[1]) {
            return invalid(format!("region {} is configured twice", pair[0]));
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
        if self.session_duration_cap.is_some_and(|cap| cap.is_zero()) {
            return invalid("session duration cap must be positive".to_owned());
        }
        self.iam.validate().map_err(Error::InvalidConfig)?;
        let mut keys: Vec<&str> = self
            .iam
            .accounts
            .iter()
            .flat_map(|a| a.access_keys.iter().map(|k| k.access_key_id.as_str()))
            .collect();
        keys.push(&self.access_key_id);
        keys.sort_unstable();
        if let Some(pair) = keys.windows(2).find(|pair| pair[0] == pair[1]) {
            return invalid(format!("access key ID {} is configured twice", pair[0]));
        }
        self.quota.validate()
    }
}

/// Accounts, roles and OIDC providers beyond the default account: the emulator's IAM.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamConfig {
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    #[serde(default)]
    pub roles: Vec<RoleConfig>,
    #[serde(default)]
    pub oidc_providers: Vec<OidcProviderConfig>,
}

impl IamConfig {
    /// Refuses entries the emulator cannot serve; the reason names the entry.
    pub fn validate(&self) -> Result<(), String> {
        for account in &self.accounts {
            account.validate()?;
        }
        for role in &self.roles {
            role.validate()?;
        }
        for provider in &self.oidc_providers {
            provider.validate()?;
        }
        Ok(())
    }
}

/// An AWS account and the static access keys of its IAM users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountConfig {
    /// 12 digits.
    pub account_id: String,
    /// Keys that sign as users of this account; an account reached only through roles has none.
    #[serde(default)]
    pub access_keys: Vec<AccessKeyConfig>,
}

impl AccountConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_account_id(&self.account_id)?;
        for key in &self.access_keys {
            if key.access_key_id.is_empty() || key.access_key_id.contains('/') {
                return Err(format!(
                    "access key ID {:?} must be non-empty and contain no '/'",
                    key.access_key_id
                ));
            }
            if key.secret_access_key.is_empty() {
                return Err(format!(
                    "the secret of access key {} must be non-empty",
                    key.access_key_id
                ));
            }
            check_name("user name", &key.user_name, 64)?;
        }
        Ok(())
    }
}

/// A static access key of IAM user `user_name`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeyConfig {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub user_name: String,
}

// Hand-written so the secret key never lands in a log line.
impl fmt::Debug for AccessKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKeyConfig")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("user_name", &self.user_name)
            .finish()
    }
}

/// An IAM role: `arn:aws:iam::<accountId>:role/<name>`, and who may assume it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleConfig {
    pub account_id: String,
    pub name: String,
    /// Longest session `DurationSeconds` may ask for: 3600 to 43200.
    #[serde(default = "default_max_session_seconds")]
    pub max_session_duration_seconds: u32,
    /// The trust policy: a request is allowed when any rule matches it.
    #[serde(default)]
    pub trust: Vec<TrustRule>,
}

fn default_max_session_seconds() -> u32 {
    DEFAULT_MAX_SESSION_SECONDS
}

impl RoleConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_account_id(&self.account_id)?;
        check_name("role name", &self.name, 64)?;
        if !(3600..=43200).contains(&self.max_session_duration_seconds) {
            return Err(format!(
                "role {}: max session duration {} is not between 3600 and 43200 seconds",
                self.name, self.max_session_duration_seconds
            ));
        }
        for rule in &self.trust {
            if let TrustRule::WebIdentity { issuer, .. } = rule {
                check_issuer(issuer)?;
            }
        }
        Ok(())
    }
}

/// One statement of a role's trust policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum TrustRule {
    /// `sts:AssumeRole` by `principal`: a user or role ARN (`arn:aws:iam::111122223333:role/x`,
    /// which any session of that role matches), or `arn:aws:iam::111122223333:root` for every
    /// principal of that account; with `externalId`, the request must carry the same one.
    #[serde(rename_all = "camelCase")]
    Principal {
        principal: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_id: Option<String>,
    },
    /// `sts:AssumeRoleWithWebIdentity` with a token of the OIDC provider `issuer` (registered
    /// in the role's account) whose `sub` matches `subject`, where `*` matches any run of
    /// characters (`system:serviceaccount:team-a:*`).
    #[serde(rename_all = "camelCase")]
    WebIdentity { issuer: String, subject: String },
}

/// An EKS Pod Identity association: pods of `service_account` in `namespace` get credentials for
/// `role_arn` from the Pod Identity agent's endpoint (`GET /v1/credentials`), which the emulator
/// serves on its AWS endpoint. Their token (audience `pods.eks.amazonaws.com`) is checked against
/// an OIDC provider of the role's account that accepts that audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodIdentityAssociationConfig {
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
}

/// An IAM OIDC identity provider: tokens its `issuer` signs with a key of `jwks` and addressed
/// to one of `client_ids` may be exchanged at STS for roles of `account_id` that trust it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcProviderConfig {
    pub account_id: String,
    /// The token's `iss`, e.g. `https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE`.
    pub issuer: String,
    /// Accepted audiences; default `["sts.amazonaws.com"]`.
    #[serde(default = "default_client_ids")]
    pub client_ids: Vec<String>,
    /// The issuer's JSON Web Key Set (what its `jwks_uri` serves).
    pub jwks: serde_json::Value,
}

fn default_client_ids() -> Vec<String> {
    vec![DEFAULT_WEB_IDENTITY_AUDIENCE.to_owned()]
}

impl OidcProviderConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_account_id(&self.account_id)?;
        check_issuer(&self.issuer)?;
        if self.client_ids.is_empty() {
            return Err(format!("OIDC provider {}: no client IDs", self.issuer));
        }
        Ok(())
    }
}

fn check_account_id(id: &str) -> Result<(), String> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("account ID {id:?} is not 12 digits"))
    }
}

// IAM's names: letters, digits and `+=,.@_-`.
fn check_name(what: &str, name: &str, max: usize) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} must be 1 to {max} letters, digits or +=,.@_-"
        ))
    }
}

fn check_issuer(issuer: &str) -> Result<(), String> {
    if issuer.starts_with("https://") && issuer.len() > "https://".len() {
        Ok(())
    } else {
        Err(format!("OIDC issuer {issuer:?} is not an https URL"))
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

/// Lowercase letters, digits and dashes, starting with a letter: `us-east-1`, `eu-west-1`.
pub fn is_region_name(region: &str) -> bool {
    region.starts_with(|c: char| c.is_ascii_lowercase())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
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
    fn rejects_an_access_key_configured_twice() {
        let mut config = Config::default();
        config.iam.accounts.push(AccountConfig {
            account_id: "210987654321".to_owned(),
            access_keys: vec![AccessKeyConfig {
                access_key_id: DEFAULT_ACCESS_KEY_ID.to_owned(),
                secret_access_key: "x".to_owned(),
                user_name: "dup".to_owned(),
            }],
        });
        assert!(matches!(config.validate(), Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn trust_rules_read_as_tagged_json() {
        let rules: Vec<TrustRule> = serde_json::from_str(
            r#"[{"type": "principal", "principal": "arn:aws:iam::123456789012:root",
                 "externalId": "x"},
                {"type": "webIdentity", "issuer": "https://issuer.example",
                 "subject": "system:serviceaccount:a:b"}]"#,
        )
        .unwrap();
        assert_eq!(
            rules[0],
            TrustRule::Principal {
                principal: "arn:aws:iam::123456789012:root".to_owned(),
                external_id: Some("x".to_owned()),
            }
        );
        assert!(matches!(rules[1], TrustRule::WebIdentity { .. }));
    }

    #[test]
    fn rejects_a_role_whose_max_session_is_out_of_bounds() {
        let role = RoleConfig {
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            name: "r".to_owned(),
            max_session_duration_seconds: 600,
            trust: vec![],
        };
        assert!(role.validate().is_err());
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
    fn extra_regions_must_be_region_names_and_distinct() {
        let with = |extra: &[&str]| Config {
            extra_regions: extra.iter().map(|r| (*r).to_owned()).collect(),
            ..Config::default()
        };
        assert!(with(&["eu-west-1", "ap-southeast-2"]).validate().is_ok());
        assert!(with(&["EU-WEST-1"]).validate().is_err());
        assert!(with(&[""]).validate().is_err());
        assert!(with(&["eu-west-1", "eu-west-1"]).validate().is_err());
        assert!(with(&[DEFAULT_REGION]).validate().is_err());
        let config = with(&["eu-west-1"]);
        assert!(config.serves("eu-west-1") && config.serves(DEFAULT_REGION));
        assert!(!config.serves("ap-south-1"));
    }

    #[test]
    fn partitions_follow_region_prefixes() {
        assert_eq!(partition_of("us-east-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }
}
