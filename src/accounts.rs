//! Many AWS accounts: the platform team's mapping from namespace to IAM role, and which identity
//! an object uses.
//!
//! The mapping lives in a ConfigMap the chart installs from Helm values (never in a field a tenant
//! can set) and is watched, so a change applies without a restart. An object's identity is pinned
//! in its status at its first AWS call, with its region: a mapping change moves new objects to the
//! new account and never touches existing collections. [`resolve`] is the pure decision;
//! [`MappingWatch`] keeps the current mapping.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::Deserialize;
use tokio::sync::Notify;
use tracing::{info, warn};

/// The ConfigMap key that holds the mapping (YAML: namespace → roleArn, externalId).
pub const MAPPING_KEY: &str = "mapping.yaml";

/// The label value of metrics for the operator's own identity, whose account ID is not asked for.
pub const OWN_ACCOUNT: &str = "operator";

/// Whose AWS credentials a call uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// The operator's own (IRSA, Pod Identity, or the default chain).
    Own,
    /// A role assumed with STS AssumeRole, with the operator's own identity as the source.
    Role(RoleTarget),
}

/// A role to assume and the external ID its trust policy asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleTarget {
    pub role_arn: String,
    #[serde(default)]
    pub external_id: Option<String>,
}

impl Identity {
    pub fn role_arn(&self) -> Option<&str> {
        match self {
            Self::Own => None,
            Self::Role(role) => Some(&role.role_arn),
        }
    }

    /// The account ID, when the identity names it (a role ARN does).
    pub fn account_id(&self) -> Option<&str> {
        self.role_arn().and_then(role_account)
    }

    /// The account for rate limiters and metrics: quotas are per account, so two roles of one
    /// account share a bucket.
    pub fn account_label(&self) -> &str {
        self.account_id().unwrap_or(OWN_ACCOUNT)
    }
}

/// The account ID of a role ARN `arn:<partition>:iam::<account>:role/<path/name>`.
pub fn role_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource))
            if !partition.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.len() > "role/".len()
                && resource.starts_with("role/") =>
        {
            Some(account)
        }
        _ => None,
    }
}

/// The account ID of a collection ARN `arn:<partition>:rekognition:<region>:<account>:…`.
pub fn collection_account(arn: &str) -> Option<&str> {
    arn.split(':')
        .nth(4)
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

/// Namespace → role, as the platform team wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    pub namespaces: BTreeMap<String, RoleTarget>,
}

impl Mapping {
    /// Parses the ConfigMap's `mapping.yaml`; an empty or missing document is an empty mapping.
    /// Any malformed entry refuses the whole document, naming the entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let namespaces: Option<BTreeMap<String, RoleTarget>> =
            serde_yaml::from_str(text).map_err(|e| format!("{MAPPING_KEY}: {e}"))?;
        let namespaces = namespaces.unwrap_or_default();
        for (namespace, target) in &namespaces {
            if role_account(&target.role_arn).is_none() {
                return Err(format!(
                    "{MAPPING_KEY}: namespace {namespace}: {:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                    target.role_arn
                ));
            }
            if let Some(id) = &target.external_id
                && !(2..=1224).contains(&id.len())
            {
                return Err(format!(
                    "{MAPPING_KEY}: namespace {namespace}: externalId must be 2-1224 characters"
                ));
            }
        }
        Ok(Self { namespaces })
    }

    /// The external ID the mapping gives `role_arn` now, if any namespace maps it: it wins over
    /// the pinned one, so the platform team can rotate it for objects pinned earlier.
    fn external_id_of(&self, role_arn: &str) -> Option<String> {
        self.namespaces
            .values()
            .filter(|t| t.role_arn == role_arn)
            .find_map(|t| t.external_id.clone())
    }
}

/// What the object's status pinned at its first AWS call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// No AWS call yet: the mapping decides.
    None,
    /// The operator's own identity (also every object pinned before accounts were mapped).
    Own,
    /// This role, with the external ID pinned with it.
    Role(RoleTarget),
}

impl Pin {
    /// From status.region (set at the first AWS call), status.roleArn and status.externalId.
    pub fn of(
        status_region: Option<&str>,
        status_role: Option<&str>,
        status_external_id: Option<&str>,
    ) -> Self {
        match (status_region, status_role) {
            (_, Some(role)) => Self::Role(RoleTarget {
                role_arn: role.to_owned(),
                external_id: status_external_id.map(str::to_owned),
            }),
            (Some(_), None) => Self::Own,
            (None, None) => Self::None,
        }
    }
}

/// The identity an object in `namespace` uses, or why none may be used (`PolicyDenied`). A pinned
/// identity wins over the mapping, whatever it says now. Pure.
pub fn resolve(
    pin: &Pin,
    mapping: &Mapping,
    namespace: &str,
    require_mapping: bool,
) -> Result<Identity, String> {
    match pin {
        Pin::Own => Ok(Identity::Own),
        Pin::Role(pinned) => Ok(Identity::Role(RoleTarget {
            role_arn: pinned.role_arn.clone(),
            external_id: mapping
                .external_id_of(&pinned.role_arn)
                .or_else(|| pinned.external_id.clone()),
        })),
        Pin::None => match mapping.namespaces.get(namespace) {
            Some(target) => Ok(Identity::Role(target.clone())),
            None if require_mapping => Err(format!(
                "account mapping: no AWS account is mapped for namespace {namespace}, and the platform team requires one (requireMapping); ask them to map it"
            )),
            None => Ok(Identity::Own),
        },
    }
}

/// The current mapping as the operator last read it: `None` until the ConfigMap's watch has
/// listed once, or while its first version is malformed.
#[derive(Clone, Default)]
pub struct MappingWatch {
    current: Arc<RwLock<Option<Mapping>>>,
    /// Signalled when a loaded mapping is replaced by a different one.
    changed: Arc<Notify>,
}

impl MappingWatch {
    /// A fixed mapping (no ConfigMap): every namespace unmapped, or as given.
    pub fn fixed(mapping: Mapping) -> Self {
        Self {
            current: Arc::new(RwLock::new(Some(mapping))),
            changed: Arc::default(),
        }
    }

    pub fn current(&self) -> Option<Mapping> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, mapping: Mapping) {
        let previous = self
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .replace(mapping.clone());
        if previous.is_some_and(|previous| previous != mapping) {
            self.changed.notify_one();
        }
    }

    /// Yields once for every change of a mapping already loaded (changes that come in quick
    /// succession may yield once), so objects refused for want of a mapping are checked again.
    pub fn changes(&self) -> impl Stream<Item = ()> + Send + Sync + 'static {
        futures::stream::unfold(self.changed.clone(), |changed| async move {
            changed.notified().await;
            Some(((), changed))
        })
    }

    /// Watches the ConfigMap `name` in `namespace` (by name only, as its RBAC allows) and keeps
    /// the mapping current. A malformed version is logged and the last good one kept; a deleted
    /// ConfigMap is an empty mapping.
    pub fn watch(client: kube::Client, namespace: &str, name: &str) -> Self {
        let watch = Self::default();
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let state = watch.clone();
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        tokio::spawn(async move {
            let mut seen = false;
            let mut events = watcher(api, config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let text = match event {
                    Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => {
                        seen = true;
                        cm.data
                            .and_then(|d| d.get(MAPPING_KEY).cloned())
                            .unwrap_or_default()
                    }
                    Ok(watcher::Event::Delete(_)) => String::new(),
                    Ok(watcher::Event::Init) => {
                        seen = false;
                        continue;
                    }
                    Ok(watcher::Event::InitDone) if !seen => String::new(),
                    Ok(watcher::Event::InitDone) => continue,
                    Err(error) => {
                        warn!(%error, configmap = %name, "watching the account mapping");
                        continue;
                    }
                };
                match Mapping::parse(&text) {
                    Ok(mapping) => {
                        info!(configmap = %name, namespace = %namespace, namespaces = mapping.namespaces.len(), "account mapping loaded");
                        state.set(mapping);
                    }
                    Err(error) => {
                        warn!(configmap = %name, %error, "account mapping refused; keeping the last valid one")
                    }
                }
            }
        });
        watch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE_A: &str = "arn:aws:iam::111111111111:role/team-a";
    const ROLE_B: &str = "arn:aws:iam::222222222222:role/team-b";

    fn mapping() -> Mapping {
        Mapping::parse(&format!(
            "team-a:\n  roleArn: {ROLE_A}\n  externalId: ext-a\nteam-b:\n  roleArn: {ROLE_B}\n"
        ))
        .expect("mapping")
    }

    fn role(arn: &str, external_id: Option<&str>) -> Identity {
        Identity::Role(RoleTarget {
            role_arn: arn.into(),
            external_id: external_id.map(str::to_owned),
        })
    }

    #[tokio::test]
    async fn only_a_different_mapping_after_the_first_is_a_change() {
        use futures::FutureExt;
        let watch = MappingWatch::default();
        let mut changes = Box::pin(watch.changes());
        watch.set(Mapping::default());
        watch.set(Mapping::default());
        assert_eq!(
            changes.next().now_or_never(),
            None,
            "first load, then the same"
        );
        watch.set(mapping());
        assert_eq!(
            tokio::time::timeout(std::time::Duration::from_secs(1), changes.next()).await,
            Ok(Some(()))
        );
        assert_eq!(
            changes.next().now_or_never(),
            None,
            "one change, one signal"
        );
    }

    #[test]
    fn identity_table() {
        let mapped = mapping();
        let none = Mapping::default();
        let pinned = |arn: &str, id: Option<&str>| {
            Pin::Role(RoleTarget {
                role_arn: arn.into(),
                external_id: id.map(str::to_owned),
            })
        };
        // (name, pin, mapping, namespace, requireMapping, expected: identity or denied)
        type Case<'a> = (&'a str, Pin, &'a Mapping, &'a str, bool, Option<Identity>);
        let cases: [Case; 10] = [
            (
                "unmapped uses the operator's own",
                Pin::None,
                &mapped,
                "other",
                false,
                Some(Identity::Own),
            ),
            (
                "unmapped under requireMapping is denied",
                Pin::None,
                &mapped,
                "other",
                true,
                None,
            ),
            (
                "mapped with external ID",
                Pin::None,
                &mapped,
                "team-a",
                true,
                Some(role(ROLE_A, Some("ext-a"))),
            ),
            (
                "mapped without external ID",
                Pin::None,
                &mapped,
                "team-b",
                false,
                Some(role(ROLE_B, None)),
            ),
            (
                "pinned own stays own though now mapped",
                Pin::Own,
                &mapped,
                "team-a",
                false,
                Some(Identity::Own),
            ),
            (
                "pinned own stays own under requireMapping",
                Pin::Own,
                &none,
                "x",
                true,
                Some(Identity::Own),
            ),
            (
                "pinned role stays though the namespace moved",
                pinned(ROLE_B, None),
                &mapped,
                "team-a",
                false,
                Some(role(ROLE_B, None)),
            ),
            (
                "pinned role takes the external ID the mapping gives it now",
                pinned(ROLE_A, Some("old")),
                &mapped,
                "elsewhere",
                false,
                Some(role(ROLE_A, Some("ext-a"))),
            ),
            (
                "pinned role no longer mapped keeps its pinned external ID",
                pinned(ROLE_A, Some("old")),
                &none,
                "team-a",
                true,
                Some(role(ROLE_A, Some("old"))),
            ),
            (
                "pinned role without one, no longer mapped",
                pinned(ROLE_A, None),
                &none,
                "team-a",
                true,
                Some(role(ROLE_A, None)),
            ),
        ];
        for (name, pin, mapping, namespace, require, expected) in cases {
            assert_eq!(
                resolve(&pin, mapping, namespace, require).ok(),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn the_pin_is_the_role_else_own_once_the_region_is_pinned() {
        assert_eq!(Pin::of(None, None, None), Pin::None);
        assert_eq!(Pin::of(Some("us-east-1"), None, None), Pin::Own);
        assert_eq!(
            Pin::of(Some("us-east-1"), Some(ROLE_A), Some("x")),
            Pin::Role(RoleTarget {
                role_arn: ROLE_A.into(),
                external_id: Some("x".into())
            })
        );
    }

    #[test]
    fn a_denial_names_the_namespace_and_the_rule() {
        let why = resolve(&Pin::None, &Mapping::default(), "team-c", true).expect_err("denied");
        assert!(
            why.contains("team-c") && why.contains("requireMapping"),
            "{why}"
        );
    }

    #[test]
    fn malformed_mappings_are_refused_naming_the_entry() {
        for (text, words) in [
            ("team-a:\n  roleArn: arn:aws:iam::1:role/x\n", "team-a"),
            ("team-a:\n  roleArn: arn:aws:s3:::bucket\n", "team-a"),
            (
                "team-a:\n  roleArn: arn:aws:iam::111111111111:user/x\n",
                "team-a",
            ),
            ("team-a:\n  role: x\n", "mapping.yaml"),
            (
                "team-a:\n  roleArn: arn:aws:iam::111111111111:role/x\n  externalId: x\n",
                "externalId",
            ),
            ("- a\n", "mapping.yaml"),
        ] {
            let error = Mapping::parse(text).expect_err(text);
            assert!(error.contains(words), "{text}: {error}");
        }
        assert_eq!(Mapping::parse(""), Ok(Mapping::default()));
        assert_eq!(Mapping::parse("{}"), Ok(Mapping::default()));
        assert_eq!(mapping().namespaces.len(), 2);
    }

    #[test]
    fn accounts_come_from_role_and_collection_arns() {
        assert_eq!(role_account(ROLE_A), Some("111111111111"));
        assert_eq!(
            role_account("arn:aws-cn:iam::111111111111:role/path/x"),
            Some("111111111111")
        );
        assert_eq!(role_account("arn:aws:iam::111111111111:role/"), None);
        assert_eq!(
            collection_account("arn:aws:rekognition:us-east-1:123456789012:collection/x"),
            Some("123456789012")
        );
        assert_eq!(role(ROLE_B, None).account_label(), "222222222222");
        assert_eq!(Identity::Own.account_label(), OWN_ACCOUNT);
    }
}
