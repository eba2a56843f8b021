//! The emulator's IAM: accounts, access keys (static ones of users, temporary ones of STS
//! sessions) and whom they identify, roles with their trust rules, and OIDC providers.
//!
//! Trust evaluation is pure ([`Role::allows_principal`], [`Role::allows_web_identity`]); the STS
//! service (a layer above) decides with it and [`Directory::issue_session`] records the result.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

use crate::config::{
    AccessKeyConfig, AccountConfig, Config, DEFAULT_USER_NAME, OidcProviderConfig, RoleConfig,
    TrustRule,
};
use crate::oidc::{OidcProvider, normalize_issuer};
use crate::protocol::{AuthErrorKind, AuthFailure};
use crate::sigv4::Authorization;

// Expired sessions are kept this long, so their keys are answered `ExpiredToken` rather than
// "unknown key"; after that they are dropped (when the next session is issued).
const EXPIRED_SESSION_RETENTION: TimeDelta = TimeDelta::hours(1);

/// Who signed a request, as `GetCallerIdentity` reports it and trust rules match it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub account_id: String,
    /// `arn:aws:iam::<account>:user/<name>` or `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// `AIDA…` for users, `AROA…:<session>` for role sessions.
    pub user_id: String,
    /// What trust rules name: the user ARN, or the role ARN of a session.
    pub identity_arn: String,
    /// Whether the principal is a role session (role chaining limits its sessions to an hour).
    pub is_role_session: bool,
}

/// Temporary credentials issued by STS.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires_at: DateTime<Utc>,
}

// Hand-written so secrets never land in a log line.
impl fmt::Debug for IssuedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct KeyEntry {
    secret: String,
    principal: Principal,
    session: Option<Session>,
}

#[derive(Clone)]
struct Session {
    token: String,
    expires_at: DateTime<Utc>,
}

/// A role and its trust policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub arn: String,
    pub role_id: String,
    pub config: RoleConfig,
}

impl Role {
    /// Whether the trust policy lets `caller` call `sts:AssumeRole`, with `external_id` if given.
    pub fn allows_principal(&self, caller: &Principal, external_id: Option<&str>) -> bool {
        self.config.trust.iter().any(|rule| match rule {
            TrustRule::Principal {
                principal,
                external_id: required,
            } => {
                principal_matches(principal, caller)
                    && required.as_deref().is_none_or(|id| external_id == Some(id))
            }
            TrustRule::WebIdentity { .. } => false,
        })
    }

    /// Whether the trust policy lets a verified token of `issuer` with subject `subject` call
    /// `sts:AssumeRoleWithWebIdentity`.
    pub fn allows_web_identity(&self, issuer: &str, subject: &str) -> bool {
        self.config.trust.iter().any(|rule| match rule {
            TrustRule::WebIdentity {
                issuer: trusted,
                subject: pattern,
            } => normalize_issuer(trusted) == normalize_issuer(issuer) && glob(pattern, subject),
            TrustRule::Principal { .. } => false,
        })
    }

    /// The longest session this role grants.
    pub fn max_session(&self) -> Duration {
        Duration::from_secs(u64::from(self.config.max_session_duration_seconds))
    }
}

// `arn:…:iam::<account>:root` stands for every principal of the account, as in IAM policies.
fn principal_matches(principal: &str, caller: &Principal) -> bool {
    principal == caller.identity_arn
        || principal
            .strip_suffix(":root")
            .and_then(|prefix| prefix.rsplit(':').next())
            .is_some_and(|account| account == caller.account_id)
}

/// `StringLike` matching: `*` matches any run of characters, everything else itself.
pub fn glob(pattern: &str, value: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == value;
    };
    let Some(mut remaining) = value.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or_default();
    for part in parts {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// One account as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub account_id: String,
    /// Whether this is the default account (the flat fields of the configuration).
    pub default: bool,
    /// Static access keys and the user ARN each signs as.
    pub access_keys: BTreeMap<String, String>,
    pub roles: Vec<String>,
    pub oidc_providers: Vec<String>,
}

/// One role as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleView {
    pub arn: String,
    pub role_id: String,
    pub max_session_duration_seconds: u32,
    pub trust: Vec<TrustRule>,
}

/// One OIDC provider as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcProviderView {
    pub arn: String,
    pub account_id: String,
    pub issuer: String,
    pub client_ids: Vec<String>,
    pub key_ids: Vec<String>,
}

/// One STS session as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub access_key_id: String,
    pub arn: String,
    pub account_id: String,
    pub expires_at: DateTime<Utc>,
}

/// Everything IAM knows.
pub struct Directory {
    partition: &'static str,
    default_account_id: String,
    accounts: BTreeSet<String>,
    keys: HashMap<String, KeyEntry>,
    roles: BTreeMap<String, Role>,
    // Keyed by (account, issuer): a provider is registered in one account, as in IAM.
    providers: BTreeMap<(String, String), OidcProvider>,
    // Keyed by the token's subject, `system:serviceaccount:<namespace>:<name>`: the role's ARN.
    pod_identities: BTreeMap<String, String>,
}

impl fmt::Debug for Directory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Directory")
            .field("accounts", &self.accounts)
            .field("keys", &self.keys.len())
            .field("roles", &self.roles.keys())
            .field("providers", &self.providers.keys())
            .finish()
    }
}

impl Directory {
    /// The default account with its key, and everything of `config.iam`.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut directory = Directory {
            partition: config.partition(),
            default_account_id: config.account_id.clone(),
            accounts: BTreeSet::from([config.account_id.clone()]),
            keys: HashMap::new(),
            roles: BTreeMap::new(),
            providers: BTreeMap::new(),
            pod_identities: BTreeMap::new(),
        };
        directory.put_account(&AccountConfig {
            account_id: config.account_id.clone(),
            access_keys: vec![AccessKeyConfig {
                access_key_id: config.access_key_id.clone(),
                secret_access_key: config.secret_access_key.clone(),
                user_name: DEFAULT_USER_NAME.to_owned(),
            }],
        })?;
        for account in &config.iam.accounts {
            directory.put_account(account)?;
        }
        for role in &config.iam.roles {
            directory.put_role(role)?;
        }
        for provider in &config.iam.oidc_providers {
            directory.put_oidc_provider(provider)?;
        }
        Ok(directory)
    }

    pub fn default_account_id(&self) -> &str {
        &self.default_account_id
    }

    pub fn partition(&self) -> &'static str {
        self.partition
    }

    pub fn has_account(&self, account_id: &str) -> bool {
        self.accounts.contains(account_id)
    }

    /// Every account ID, in order.
    pub fn account_ids(&self) -> Vec<String> {
        self.accounts.iter().cloned().collect()
    }

    /// Creates the account, or replaces its static keys with `account`'s.
    pub fn put_account(&mut self, account: &AccountConfig) -> Result<(), String> {
        account.validate()?;
        for key in &account.access_keys {
            if let Some(existing) = self.keys.get(&key.access_key_id)
                && existing.principal.account_id != account.account_id
            {
                return Err(format!(
                    "access key {} already belongs to account {}",
                    key.access_key_id, existing.principal.account_id
                ));
            }
        }
        self.keys.retain(|_, entry| {
            entry.session.is_some() || entry.principal.account_id != account.account_id
        });
        for key in &account.access_keys {
            let arn = format!(
                "arn:{}:iam::{}:user/{}",
                self.partition, account.account_id, key.user_name
            );
            self.keys.insert(
                key.access_key_id.clone(),
                KeyEntry {
                    secret: key.secret_access_key.clone(),
                    principal: Principal {
                        account_id: account.account_id.clone(),
                        user_id: format!("AIDA{}", random_id(17)),
                        identity_arn: arn.clone(),
                        arn,
                        is_role_session: false,
                    },
                    session: None,
                },
            );
        }
        self.accounts.insert(account.account_id.clone());
        Ok(())
    }

    /// Creates or replaces a role (its ID stays when it is replaced); its account is created
    /// if need be.
    pub fn put_role(&mut self, config: &RoleConfig) -> Result<RoleView, String> {
        config.validate()?;
        let arn = format!(
            "arn:{}:iam::{}:role/{}",
            self.partition, config.account_id, config.name
        );
        let role_id = self
            .roles
            .get(&arn)
            .map(|r| r.role_id.clone())
            .unwrap_or_else(|| format!("AROA{}", random_id(17)));
        let role = Role {
            arn: arn.clone(),
            role_id,
            config: config.clone(),
        };
        let view = role_view(&role);
        self.accounts.insert(config.account_id.clone());
        self.roles.insert(arn, role);
        Ok(view)
    }

    /// Removes a role; sessions already issued stay valid until they expire, as in IAM.
    pub fn delete_role(&mut self, arn: &str) -> bool {
        self.roles.remove(arn).is_some()
    }

    pub fn role(&self, arn: &str) -> Option<&Role> {
        self.roles.get(arn)
    }

    pub fn roles(&self) -> Vec<RoleView> {
        self.roles.values().map(role_view).collect()
    }

    /// Registers (or replaces) an OIDC provider; its account is created if need be.
    pub fn put_oidc_provider(
        &mut self,
        config: &OidcProviderConfig,
    ) -> Result<OidcProviderView, String> {
        config.validate()?;
        let provider = OidcProvider::from_config(config, self.partition)?;
        let view = provider_view(&provider);
        self.accounts.insert(config.account_id.clone());
        self.providers.insert(
            (provider.account_id.clone(), provider.issuer.clone()),
            provider,
        );
        Ok(view)
    }

    /// The provider for tokens of `issuer` registered in `account_id`.
    pub fn oidc_provider(&self, account_id: &str, issuer: &str) -> Option<&OidcProvider> {
        self.providers
            .get(&(account_id.to_owned(), normalize_issuer(issuer).to_owned()))
    }

    /// Registers (or replaces) a Pod Identity association.
    pub fn put_pod_identity_association(
        &mut self,
        config: &crate::config::PodIdentityAssociationConfig,
    ) -> Result<(), String> {
        if !self.roles.contains_key(&config.role_arn) {
            return Err(format!("no role {}", config.role_arn));
        }
        let subject = format!(
            "system:serviceaccount:{}:{}",
            config.namespace, config.service_account
        );
        self.pod_identities.insert(subject, config.role_arn.clone());
        Ok(())
    }

    /// The role associated with a verified token's subject, and the provider that verified it:
    /// the token must verify against a provider of the role's account.
    pub fn pod_identity_role(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Role, crate::oidc::TokenRejection> {
        let issuer = crate::oidc::unverified_issuer(token)?;
        let mut last = crate::oidc::TokenRejection::Malformed(format!(
            "no OIDC provider accepts tokens of {issuer}"
        ));
        for ((account, provider_issuer), provider) in &self.providers {
            if provider_issuer != normalize_issuer(&issuer) {
                continue;
            }
            match provider.verify(token, now) {
                Ok(verified) => {
                    let role = self
                        .pod_identities
                        .get(&verified.subject)
                        .and_then(|arn| self.roles.get(arn))
                        .filter(|role| role.arn.split(':').nth(4) == Some(account.as_str()));
                    if let Some(role) = role {
                        return Ok(role.clone());
                    }
                    last = crate::oidc::TokenRejection::Malformed(format!(
                        "no pod identity association for {}",
                        verified.subject
                    ));
                }
                Err(rejection) => last = rejection,
            }
        }
        Err(last)
    }

    pub fn oidc_providers(&self) -> Vec<OidcProviderView> {
        self.providers.values().map(provider_view).collect()
    }

    pub fn accounts(&self) -> Vec<AccountView> {
        self.accounts
            .iter()
            .map(|id| AccountView {
                account_id: id.clone(),
                default: *id == self.default_account_id,
                access_keys: self
                    .keys
                    .iter()
                    .filter(|(_, e)| e.session.is_none() && e.principal.account_id == *id)
                    .map(|(k, e)| (k.clone(), e.principal.arn.clone()))
                    .collect(),
                roles: self
                    .roles
                    .values()
                    .filter(|r| r.config.account_id == *id)
                    .map(|r| r.arn.clone())
                    .collect(),
                oidc_providers: self
                    .providers
                    .values()
                    .filter(|p| p.account_id == *id)
                    .map(|p| p.arn.clone())
                    .collect(),
            })
            .collect()
    }

    /// The secret and principal of the key that signed a request, checked against the
    /// session token it carried: a session key needs its own token, signed with the request; a
    /// static key takes none; an expired session is `ExpiredToken`.
    pub fn authenticate(
        &self,
        auth: &Authorization,
        session_token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(String, Principal), AuthFailure> {
        let invalid = || AuthFailure::of_kind(AuthErrorKind::UnrecognizedClient);
        let entry = self.keys.get(&auth.access_key_id).ok_or_else(invalid)?;
        match (&entry.session, session_token) {
            (None, None) => {}
            (Some(session), Some(token)) if session.token == token => {
                if !auth
                    .signed_headers
                    .iter()
                    .any(|h| h == "x-amz-security-token")
                {
                    return Err(AuthFailure::new(
                        AuthErrorKind::InvalidSignature,
                        "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
                    ));
                }
                if session.expires_at <= now {
                    return Err(AuthFailure::of_kind(AuthErrorKind::ExpiredToken));
                }
            }
            _ => return Err(invalid()),
        }
        Ok((entry.secret.clone(), entry.principal.clone()))
    }

    /// Records a new session of `role` named `session_name`, lasting `duration` from `now`.
    pub fn issue_session(
        &mut self,
        role: &Role,
        session_name: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> (Principal, IssuedCredentials) {
        self.keys.retain(|_, entry| {
            entry
                .session
                .as_ref()
                .is_none_or(|s| s.expires_at + EXPIRED_SESSION_RETENTION > now)
        });
        let principal = Principal {
            account_id: role.config.account_id.clone(),
            arn: format!(
                "arn:{}:sts::{}:assumed-role/{}/{session_name}",
                self.partition, role.config.account_id, role.config.name
            ),
            user_id: format!("{}:{session_name}", role.role_id),
            identity_arn: role.arn.clone(),
            is_role_session: true,
        };
        let expires_at = now + TimeDelta::from_std(duration).unwrap_or(TimeDelta::hours(1));
        // Whole seconds: the wire format has no fraction, and a client compares against it.
        let expires_at = DateTime::from_timestamp(expires_at.timestamp(), 0).unwrap_or(expires_at);
        let credentials = IssuedCredentials {
            access_key_id: format!("ASIA{}", random_id(16)),
            secret_access_key: random_secret(40),
            session_token: random_secret(96),
            expires_at,
        };
        self.keys.insert(
            credentials.access_key_id.clone(),
            KeyEntry {
                secret: credentials.secret_access_key.clone(),
                principal: principal.clone(),
                session: Some(Session {
                    token: credentials.session_token.clone(),
                    expires_at,
                }),
            },
        );
        (principal, credentials)
    }

    /// Sessions not yet dropped, oldest expiry first.
    pub fn sessions(&self) -> Vec<SessionView> {
        let mut sessions: Vec<SessionView> = self
            .keys
            .iter()
            .filter_map(|(key, entry)| {
                entry.session.as_ref().map(|s| SessionView {
                    access_key_id: key.clone(),
                    arn: entry.principal.arn.clone(),
                    account_id: entry.principal.account_id.clone(),
                    expires_at: s.expires_at,
                })
            })
            .collect();
        sessions.sort_by_key(|s| s.expires_at);
        sessions
    }

    /// Ends a session at `now`, as if its time had run out; false if there is no such session.
    pub fn expire_session(&mut self, access_key_id: &str, now: DateTime<Utc>) -> bool {
        match self
            .keys
            .get_mut(access_key_id)
            .and_then(|e| e.session.as_mut())
        {
            Some(session) => {
                session.expires_at = session.expires_at.min(now);
                true
            }
            None => false,
        }
    }
}

fn role_view(role: &Role) -> RoleView {
    RoleView {
        arn: role.arn.clone(),
        role_id: role.role_id.clone(),
        max_session_duration_seconds: role.config.max_session_duration_seconds,
        trust: role.config.trust.clone(),
    }
}

fn provider_view(provider: &OidcProvider) -> OidcProviderView {
    OidcProviderView {
        arn: provider.arn.clone(),
        account_id: provider.account_id.clone(),
        issuer: provider.issuer.clone(),
        client_ids: provider.client_ids.clone(),
        key_ids: provider
            .keys
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect(),
    }
}

fn random_id(len: usize) -> String {
    random_secret(len).to_ascii_uppercase()
}

fn random_secret(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(identity_arn: &str, account_id: &str) -> Principal {
        Principal {
            account_id: account_id.to_owned(),
            arn: identity_arn.to_owned(),
            user_id: "AIDAX".to_owned(),
            identity_arn: identity_arn.to_owned(),
            is_role_session: false,
        }
    }

    fn role(trust: Vec<TrustRule>) -> Role {
        Role {
            arn: "arn:aws:iam::210987654321:role/team".to_owned(),
            role_id: "AROAX".to_owned(),
            config: RoleConfig {
                account_id: "210987654321".to_owned(),
                name: "team".to_owned(),
                max_session_duration_seconds: 3600,
                trust,
            },
        }
    }

    fn trusts(principal: &str, external_id: Option<&str>) -> TrustRule {
        TrustRule::Principal {
            principal: principal.to_owned(),
            external_id: external_id.map(str::to_owned),
        }
    }

    #[test]
    fn assume_role_trust_follows_principal_and_external_id() {
        let operator = principal("arn:aws:iam::123456789012:role/operator", "123456789012");
        let other = principal("arn:aws:iam::123456789012:user/mallory", "123456789012");
        let stranger = principal("arn:aws:iam::999999999999:user/x", "999999999999");
        let cases: [(TrustRule, &Principal, Option<&str>, bool); 8] = [
            (trusts(&operator.identity_arn, None), &operator, None, true),
            (
                trusts(&operator.identity_arn, None),
                &operator,
                Some("any"),
                true,
            ),
            (trusts(&operator.identity_arn, None), &other, None, false),
            (
                trusts(&operator.identity_arn, Some("e1")),
                &operator,
                Some("e1"),
                true,
            ),
            (
                trusts(&operator.identity_arn, Some("e1")),
                &operator,
                Some("e2"),
                false,
            ),
            (
                trusts(&operator.identity_arn, Some("e1")),
                &operator,
                None,
                false,
            ),
            (
                trusts("arn:aws:iam::123456789012:root", None),
                &other,
                None,
                true,
            ),
            (
                trusts("arn:aws:iam::123456789012:root", None),
                &stranger,
                None,
                false,
            ),
        ];
        for (rule, caller, external_id, allowed) in cases {
            assert_eq!(
                role(vec![rule.clone()]).allows_principal(caller, external_id),
                allowed,
                "{rule:?} for {} with {external_id:?}",
                caller.arn
            );
        }
    }

    #[test]
    fn web_identity_trust_follows_issuer_and_subject() {
        let rule = TrustRule::WebIdentity {
            issuer: "https://issuer.example/".to_owned(),
            subject: "system:serviceaccount:team-a:*".to_owned(),
        };
        let role = role(vec![rule]);
        assert!(
            role.allows_web_identity("https://issuer.example", "system:serviceaccount:team-a:app")
        );
        assert!(
            !role.allows_web_identity("https://issuer.example", "system:serviceaccount:team-b:app")
        );
        assert!(
            !role.allows_web_identity("https://other.example", "system:serviceaccount:team-a:app")
        );
        assert!(!role.allows_principal(&principal(&role.arn, "210987654321"), None));
    }

    #[test]
    fn globs_match_stars_against_any_run() {
        let cases = [
            ("a", "a", true),
            ("a", "ab", false),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXcYb", false),
            ("ab*ba", "aba", false),
            ("*", "", true),
        ];
        for (pattern, value, matches) in cases {
            assert_eq!(glob(pattern, value), matches, "{pattern} ~ {value}");
        }
    }

    fn auth(access_key_id: &str, signed: &[&str]) -> Authorization {
        Authorization {
            access_key_id: access_key_id.to_owned(),
            date: "20250101".to_owned(),
            region: "us-east-1".to_owned(),
            service: "sts".to_owned(),
            terminator: "aws4_request".to_owned(),
            signed_headers: signed.iter().map(|h| (*h).to_owned()).collect(),
            signature: String::new(),
        }
    }

    #[test]
    fn a_session_key_needs_its_signed_token_and_expires() {
        let mut directory = Directory::from_config(&Config::default()).unwrap();
        let role = directory
            .put_role(&RoleConfig {
                account_id: "210987654321".to_owned(),
                name: "team".to_owned(),
                max_session_duration_seconds: 3600,
                trust: vec![],
            })
            .unwrap();
        let role = directory.role(&role.arn).unwrap().clone();
        let now = Utc::now();
        let (principal, creds) =
            directory.issue_session(&role, "s1", Duration::from_secs(900), now);
        assert_eq!(
            principal.arn,
            "arn:aws:sts::210987654321:assumed-role/team/s1"
        );
        let signed = auth(&creds.access_key_id, &["host", "x-amz-security-token"]);
        let token = Some(creds.session_token.as_str());
        assert_eq!(
            directory.authenticate(&signed, token, now).unwrap().1,
            principal
        );
        let kind = |r: Result<(String, Principal), AuthFailure>| r.unwrap_err().kind;
        assert_eq!(
            kind(directory.authenticate(&signed, None, now)),
            AuthErrorKind::UnrecognizedClient
        );
        assert_eq!(
            kind(directory.authenticate(&signed, Some("forged"), now)),
            AuthErrorKind::UnrecognizedClient
        );
        assert_eq!(
            kind(directory.authenticate(&auth(&creds.access_key_id, &["host"]), token, now)),
            AuthErrorKind::InvalidSignature
        );
        let later = now + TimeDelta::seconds(901);
        assert_eq!(
            kind(directory.authenticate(&signed, token, later)),
            AuthErrorKind::ExpiredToken
        );
    }

    #[test]
    fn a_static_key_refuses_a_session_token() {
        let directory = Directory::from_config(&Config::default()).unwrap();
        let signed = auth(crate::config::DEFAULT_ACCESS_KEY_ID, &["host"]);
        let (_, principal) = directory.authenticate(&signed, None, Utc::now()).unwrap();
        assert_eq!(principal.arn, "arn:aws:iam::123456789012:user/emulator");
        assert_eq!(
            directory
                .authenticate(&signed, Some("token"), Utc::now())
                .unwrap_err()
                .kind,
            AuthErrorKind::UnrecognizedClient
        );
    }

    #[test]
    fn a_key_cannot_move_to_another_account() {
        let mut directory = Directory::from_config(&Config::default()).unwrap();
        let err = directory.put_account(&AccountConfig {
            account_id: "210987654321".to_owned(),
            access_keys: vec![AccessKeyConfig {
                access_key_id: crate::config::DEFAULT_ACCESS_KEY_ID.to_owned(),
                secret_access_key: "s".to_owned(),
                user_name: "u".to_owned(),
            }],
        });
        assert!(err.is_err());
    }
}
