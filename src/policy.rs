//! The platform team's tenancy policy, enforced by the operator itself.
//!
//! One operator serves many namespaces, so namespace-level access must not become account-wide
//! power. The chart enforces the same rules at admission (a ValidatingAdmissionPolicy); the
//! operator enforces them too, so objects admitted before the policy, or in a cluster without it,
//! are refused with `PolicyDenied` and never reach AWS.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::crd::{ManagementPolicy, RekognitionCollection};

/// Which namespaces may use `Adopt` and `ObserveOnly`: the powers that reach collections a
/// namespace did not create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalPowers {
    /// Every namespace (no policy).
    All,
    /// No namespace.
    None,
    /// Namespaces carrying this label (key, value).
    Labelled(String, String),
}

impl std::str::FromStr for ExternalPowers {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "all" => Ok(Self::All),
            "none" => Ok(Self::None),
            _ => match value.split_once('=') {
                Some((key, label)) if !key.is_empty() => {
                    Ok(Self::Labelled(key.to_owned(), label.to_owned()))
                }
                _ => Err(format!(
                    "'{value}' is not 'all', 'none' or a namespace label key=value"
                )),
            },
        }
    }
}

/// The rules, from the operator's flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Regions objects may use; empty: any.
    pub allowed_regions: BTreeSet<String>,
    /// Collection IDs must start with `<namespace>-`.
    pub require_namespace_prefix: bool,
    /// Namespaces exempt from the prefix rule.
    pub prefix_exempt: BTreeSet<String>,
    pub external_powers: ExternalPowers,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            allowed_regions: BTreeSet::new(),
            require_namespace_prefix: false,
            prefix_exempt: BTreeSet::new(),
            external_powers: ExternalPowers::All,
        }
    }
}

impl Rules {
    /// Why the rules refuse an object in `namespace` (whose labels are `labels`) that uses
    /// `region`, if they do. Pure.
    pub fn refusal(
        &self,
        namespace: &str,
        labels: Option<&BTreeMap<String, String>>,
        obj: &RekognitionCollection,
        region: &str,
    ) -> Option<String> {
        if !self.allowed_regions.is_empty() && !self.allowed_regions.contains(region) {
            let allowed: Vec<&str> = self.allowed_regions.iter().map(String::as_str).collect();
            return Some(format!(
                "tenancy policy: region {region} is not allowed (spec.region or the operator's default); allowed: {}",
                allowed.join(", ")
            ));
        }
        let id = obj.collection_id();
        let prefix = format!("{namespace}-");
        if self.require_namespace_prefix
            && !self.prefix_exempt.contains(namespace)
            && !id.starts_with(&prefix)
        {
            return Some(format!(
                "tenancy policy: spec.collectionId (or metadata.name) {id} must start with '{prefix}'"
            ));
        }
        let reaching = obj.spec.management_policy != ManagementPolicy::Manage;
        let allowed = match &self.external_powers {
            ExternalPowers::All => true,
            ExternalPowers::None => false,
            ExternalPowers::Labelled(key, value) => labels.and_then(|l| l.get(key)) == Some(value),
        };
        if reaching && !allowed {
            let who = match &self.external_powers {
                ExternalPowers::Labelled(key, value) => {
                    format!("only namespaces labelled {key}={value} may")
                }
                _ => "no namespace may".to_owned(),
            };
            return Some(format!(
                "tenancy policy: spec.managementPolicy {:?} reaches collections this namespace did not create; {who} use it",
                obj.spec.management_policy
            ));
        }
        None
    }
}

/// The rules and, when they look at namespace labels, the namespaces' watch cache.
#[derive(Clone, Default)]
pub struct TenancyPolicy {
    pub rules: Rules,
    pub namespaces: Option<Store<Namespace>>,
}

impl TenancyPolicy {
    /// Why the policy refuses `obj`, if it does.
    pub fn check(
        &self,
        namespace: &str,
        obj: &RekognitionCollection,
        region: &str,
    ) -> Option<String> {
        let labels = self
            .namespaces
            .as_ref()
            .and_then(|store| store.get(&ObjectRef::new(namespace)))
            .map(|ns| ns.labels().clone());
        self.rules.refusal(namespace, labels.as_ref(), obj, region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::CollectionSpec;

    fn object(name: &str, id: Option<&str>, policy: ManagementPolicy) -> RekognitionCollection {
        RekognitionCollection::new(
            name,
            CollectionSpec {
                collection_id: id.map(str::to_owned),
                management_policy: policy,
                ..CollectionSpec::default()
            },
        )
    }

    #[test]
    fn policy_table() {
        let strict = Rules {
            allowed_regions: ["us-east-1".to_owned()].into(),
            require_namespace_prefix: true,
            prefix_exempt: ["platform".to_owned()].into(),
            external_powers: ExternalPowers::Labelled("tenancy/external".into(), "true".into()),
        };
        let labelled: BTreeMap<String, String> =
            [("tenancy/external".to_owned(), "true".to_owned())].into();
        let manage = ManagementPolicy::Manage;
        let adopt = ManagementPolicy::Adopt;
        let observe = ManagementPolicy::ObserveOnly;
        // (name, rules, namespace, labels, object, region, refused)
        let cases = [
            (
                "no policy allows all",
                Rules::default(),
                "team-a",
                None,
                object("x", None, adopt),
                "eu-west-1",
                false,
            ),
            (
                "prefixed name in an allowed region",
                strict.clone(),
                "team-a",
                None,
                object("team-a-photos", None, manage),
                "us-east-1",
                false,
            ),
            (
                "prefixed collectionId",
                strict.clone(),
                "team-a",
                None,
                object("photos", Some("team-a-photos"), manage),
                "us-east-1",
                false,
            ),
            (
                "region not allowed",
                strict.clone(),
                "team-a",
                None,
                object("team-a-photos", None, manage),
                "eu-west-1",
                true,
            ),
            (
                "ID without the namespace prefix",
                strict.clone(),
                "team-a",
                None,
                object("photos", None, manage),
                "us-east-1",
                true,
            ),
            (
                "another namespace's prefix",
                strict.clone(),
                "team-a",
                None,
                object("team-b-photos", None, manage),
                "us-east-1",
                true,
            ),
            (
                "exempt namespace",
                strict.clone(),
                "platform",
                None,
                object("photos", None, manage),
                "us-east-1",
                false,
            ),
            (
                "Adopt in an unlabelled namespace",
                strict.clone(),
                "team-a",
                None,
                object("team-a-x", None, adopt),
                "us-east-1",
                true,
            ),
            (
                "ObserveOnly in an unlabelled namespace",
                strict.clone(),
                "team-a",
                None,
                object("team-a-x", None, observe),
                "us-east-1",
                true,
            ),
            (
                "Adopt in a labelled namespace",
                strict.clone(),
                "team-a",
                Some(&labelled),
                object("team-a-x", None, adopt),
                "us-east-1",
                false,
            ),
            (
                "external powers for none",
                Rules {
                    external_powers: ExternalPowers::None,
                    ..Rules::default()
                },
                "team-a",
                Some(&labelled),
                object("x", None, observe),
                "us-east-1",
                true,
            ),
        ];
        for (name, rules, namespace, labels, obj, region, refused) in cases {
            assert_eq!(
                rules.refusal(namespace, labels, &obj, region).is_some(),
                refused,
                "{name}: {:?}",
                rules.refusal(namespace, labels, &obj, region)
            );
        }
    }

    #[test]
    fn refusals_name_the_field_and_the_rule() {
        let rules = Rules {
            require_namespace_prefix: true,
            ..Rules::default()
        };
        let why = rules
            .refusal(
                "team-a",
                None,
                &object("photos", None, ManagementPolicy::Manage),
                "us-east-1",
            )
            .expect("refused");
        assert!(
            why.contains("spec.collectionId") && why.contains("team-a-"),
            "{why}"
        );
    }

    #[test]
    fn external_powers_parse() {
        assert_eq!("all".parse(), Ok(ExternalPowers::All));
        assert_eq!("none".parse(), Ok(ExternalPowers::None));
        assert_eq!(
            "tenancy/external=true".parse(),
            Ok(ExternalPowers::Labelled(
                "tenancy/external".into(),
                "true".into()
            ))
        );
        assert!("=x".parse::<ExternalPowers>().is_err());
    }
}
