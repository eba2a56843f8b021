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

use crate::model::crd::{ManagementPolicy, RekognitionCollection};

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
    /// Why the region that the status records (where the object's collection lives, if the
    /// operator wrote it; a tenant may have) is not used, if it is not: it must be a region name
    /// the rules allow, or no AWS call is made there, not even to delete. Pure.
    pub fn recorded_region_refusal(&self, recorded: Option<&str>) -> Option<String> {
        let region = recorded?;
        if !is_region_name(region) {
            return Some(format!(
                "status.region {region:.64} is not an AWS region name; refused, no AWS call. Remove status.region so that spec.region or the operator's default decides"
            ));
        }
        self.region_refusal(region).map(|why| {
            format!(
                "{why}: status.region records {region} as where this object's collection lives; refused, no AWS call there, not even to delete, until the platform team allows the region again or status.region is removed"
            )
        })
    }

    /// Why the rules refuse `region`, if they do. Pure.
    pub fn region_refusal(&self, region: &str) -> Option<String> {
        if self.allowed_regions.is_empty() || self.allowed_regions.contains(region) {
            return None;
        }
        let allowed: Vec<&str> = self.allowed_regions.iter().map(String::as_str).collect();
        Some(format!(
            "tenancy policy: region {region} is not allowed; allowed: {}",
            allowed.join(", ")
        ))
    }

    /// Why the rules refuse an object in `namespace` (whose labels are `labels`) that uses
    /// `region`, if they do. Pure.
    pub fn refusal(
        &self,
        namespace: &str,
        labels: Option<&BTreeMap<String, String>>,
        obj: &RekognitionCollection,
        region: &str,
    ) -> Option<String> {
        if let Some(why) = self.region_refusal(region) {
            return Some(format!(
                "{why} (spec.region, the operator's default, or the region status records)"
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

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`: two letters, words, a number, all lowercase
/// (the pattern the CRD gives spec.region and status.region).
pub fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let lower = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    region.len() <= 32
        && parts.len() >= 3
        && parts[0].len() == 2
        && lower(&parts[0])
        && parts[1..parts.len() - 1].iter().all(lower)
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// The rules and, when they look at namespace labels, the namespaces' watch cache.
#[derive(Clone, Default)]
pub struct TenancyPolicy {
    pub rules: Rules,
    pub namespaces: Option<Store<Namespace>>,
}

impl TenancyPolicy {
    /// The labels of `namespace` as the watch cache has them, where the rules read labels.
    pub fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces
            .as_ref()
            .and_then(|store| store.get(&ObjectRef::new(namespace)))
            .map(|ns| ns.labels().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_regions_must_be_region_names_the_rules_allow() {
        for (region, ok) in [
            ("us-east-1", true),
            ("us-gov-west-1", true),
            ("ap-southeast-2", true),
            ("US-EAST-1", false),
            ("us-east", false),
            ("us-east-1.evil.example", false),
            ("us-east-1/", false),
            ("", false),
            ("u-east-1", false),
        ] {
            assert_eq!(is_region_name(region), ok, "{region}");
        }
        let rules = Rules {
            allowed_regions: ["us-east-1".to_owned()].into(),
            ..Rules::default()
        };
        assert_eq!(rules.recorded_region_refusal(None), None);
        assert_eq!(rules.recorded_region_refusal(Some("us-east-1")), None);
        let why = rules
            .recorded_region_refusal(Some("eu-west-1"))
            .expect("refused");
        assert!(
            why.contains("eu-west-1") && why.contains("not even to delete"),
            "{why}"
        );
        let why = Rules::default()
            .recorded_region_refusal(Some("example.com"))
            .expect("refused");
        assert!(why.contains("not an AWS region name"), "{why}");
    }
    use crate::model::crd::CollectionSpec;

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
