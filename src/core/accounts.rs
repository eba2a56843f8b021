//! Many AWS accounts: the platform team's mapping from namespace to IAM role, and which identity
//! an object uses.
//!
//! The mapping lives in a ConfigMap the chart installs from Helm values (never in a field a tenant
//! can set) and is watched, so a change applies without a restart. An object's identity is pinned
//! in its status at its first AWS call, with its region: a mapping change moves new objects to the
//! new account and never touches existing collections. [`resolve`] is the pure decision;
//! [`crate::runtime::mapping`] keeps the current mapping.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::identity::{Identity, RoleTarget, role_account};

/// The ConfigMap key that holds the mapping (YAML: namespace → roleArn, externalId).
pub const MAPPING_KEY: &str = "mapping.yaml";

/// What the platform team's mapping gives one namespace.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceAccount {
    /// The role new objects of the namespace use.
    pub role_arn: String,
    #[serde(default)]
    pub external_id: Option<String>,
    /// Roles the namespace was mapped to before: objects pinned to one of them stay where their
    /// collections are. Only the roles listed here, or the current one, are honoured in a pin.
    #[serde(default)]
    pub former_roles: Vec<RoleTarget>,
    /// Objects pinned to the operator's own identity (created before the namespace was mapped)
    /// stay there.
    #[serde(default)]
    pub former_own_identity: bool,
}

impl NamespaceAccount {
    fn current(&self) -> RoleTarget {
        RoleTarget {
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
        }
    }

    /// The role `role_arn` with the external ID the mapping gives it, if the namespace may use it.
    fn granted(&self, role_arn: &str) -> Option<RoleTarget> {
        if self.role_arn == role_arn {
            return Some(self.current());
        }
        self.former_roles
            .iter()
            .find(|r| r.role_arn == role_arn)
            .cloned()
    }
}

/// Namespace → account, as the platform team wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    pub namespaces: BTreeMap<String, NamespaceAccount>,
}

impl Mapping {
    /// Parses the ConfigMap's `mapping.yaml`; an empty or missing document is an empty mapping.
    /// Any malformed entry refuses the whole document, naming the entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let namespaces: Option<BTreeMap<String, NamespaceAccount>> =
            serde_yaml::from_str(text).map_err(|e| format!("{MAPPING_KEY}: {e}"))?;
        let namespaces = namespaces.unwrap_or_default();
        for (namespace, entry) in &namespaces {
            let roles = std::iter::once((String::new(), entry.current())).chain(
                entry
                    .former_roles
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (format!("formerRoles[{i}]."), r.clone())),
            );
            for (field, target) in roles {
                if role_account(&target.role_arn).is_none() {
                    return Err(format!(
                        "{MAPPING_KEY}: namespace {namespace}: {field}roleArn {:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                        target.role_arn
                    ));
                }
                if let Some(id) = &target.external_id
                    && !(2..=1224).contains(&id.len())
                {
                    return Err(format!(
                        "{MAPPING_KEY}: namespace {namespace}: {field}externalId must be 2-1224 characters"
                    ));
                }
            }
        }
        Ok(Self { namespaces })
    }
}

/// What the object's status says was pinned at its first AWS call. The status is written through
/// a subresource that tenants may be allowed to write, so a pin is a claim, never an authority:
/// [`resolve`] honours it only where the mapping gives it to the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// No AWS call yet: the mapping decides.
    None,
    /// The operator's own identity (also every object pinned before accounts were mapped).
    Own,
    /// This role.
    Role(String),
}

impl Pin {
    /// From status.region (set at the first AWS call) and status.roleArn.
    pub fn of(status_region: Option<&str>, status_role: Option<&str>) -> Self {
        match (status_region, status_role) {
            (_, Some(role)) => Self::Role(role.to_owned()),
            (Some(_), None) => Self::Own,
            (None, None) => Self::None,
        }
    }
}

/// Why no identity may be used for an object (`PolicyDenied`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// An object not pinned yet in a namespace without a mapping, under requireMapping.
    Unmapped(String),
    /// The status pins an identity the mapping does not give the namespace: forged, copied from
    /// another object, or left from a mapping that has changed since. No AWS call in any account,
    /// not even to clean up, until the pin is cleared or the platform team grants it.
    Pin(String),
}

impl Denied {
    pub fn message(&self) -> &str {
        match self {
            Self::Unmapped(why) | Self::Pin(why) => why,
        }
    }
}

/// The identity an object in `namespace` uses, or why none may be used. A pin is honoured when
/// the mapping gives the namespace that identity now (its role, one of its `formerRoles`, or the
/// operator's own identity for an unmapped namespace or one with `formerOwnIdentity`), so no field
/// a tenant can write leads the operator into an account the platform team did not give the
/// namespace. The external ID always comes from the mapping. Pure.
pub fn resolve(
    pin: &Pin,
    mapping: &Mapping,
    namespace: &str,
    require_mapping: bool,
) -> Result<Identity, Denied> {
    let entry = mapping.namespaces.get(namespace);
    match (pin, entry) {
        (Pin::None, Some(entry)) => Ok(Identity::Role(entry.current())),
        (Pin::None, None) if require_mapping => Err(Denied::Unmapped(format!(
            "account mapping: no AWS account is mapped for namespace {namespace}, and the platform team requires one (requireMapping); ask them to map it"
        ))),
        (Pin::None, None) => Ok(Identity::Own),
        (Pin::Own, None) if !require_mapping => Ok(Identity::Own),
        (Pin::Own, Some(entry)) if entry.former_own_identity => Ok(Identity::Own),
        (Pin::Own, _) => Err(Denied::Pin(format!(
            "status pins the operator's own AWS identity (status.region without status.roleArn), which the account mapping does not give namespace {namespace}{}; refused, no AWS call. If this object's collection was created that way before the namespace was mapped, the platform team sets formerOwnIdentity: true in its mapping entry; otherwise remove status.region so the mapping decides",
            granted_now(entry, require_mapping)
        ))),
        (Pin::Role(role), entry) => {
            entry
                .and_then(|e| e.granted(role))
                .map(Identity::Role)
                .ok_or_else(|| {
                    Denied::Pin(format!(
                        "status.roleArn {} is not a role the account mapping gives namespace {namespace}{}; refused, no AWS call in any account. If this object's collection lives in that role's account, the platform team lists the role under formerRoles in the namespace's mapping entry; otherwise remove status.roleArn and status.region so the mapping decides",
                        shown(role),
                        granted_now(entry, require_mapping)
                    ))
                })
        }
    }
}

/// A value a tenant wrote, bounded for a condition message and an Event (whose note the API
/// server caps at 1 KiB).
fn shown(value: &str) -> String {
    const MAX: usize = 160;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        format!("{}…", value.chars().take(MAX).collect::<String>())
    }
}

/// "(it maps …)": what the mapping gives the namespace, for a refusal's message.
fn granted_now(entry: Option<&NamespaceAccount>, require_mapping: bool) -> String {
    match entry {
        Some(entry) => format!(" (it maps {})", entry.role_arn),
        None if require_mapping => " (none is mapped, and requireMapping is on)".to_owned(),
        None => " (it uses the operator's own identity)".to_owned(),
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

    #[test]
    fn identity_table() {
        const ROLE_A_OLD: &str = "arn:aws:iam::111111111111:role/team-a-old";
        const ROLE_C: &str = "arn:aws:iam::333333333333:role/nobody";
        let mapped = mapping();
        let moved = Mapping::parse(&format!(
            "team-a:\n  roleArn: {ROLE_B}\n  formerRoles:\n    - roleArn: {ROLE_A_OLD}\n      externalId: ext-old\n  formerOwnIdentity: true\n"
        ))
        .expect("mapping");
        let none = Mapping::default();
        let pinned = |arn: &str| Pin::Role(arn.to_owned());
        // (name, pin, mapping, namespace, requireMapping, expected: identity, else a pin refusal
        // (true) or an unmapped refusal (false))
        type Case<'a> = (
            &'a str,
            Pin,
            &'a Mapping,
            &'a str,
            bool,
            Result<Identity, bool>,
        );
        let cases: [Case; 17] = [
            (
                "unmapped uses the operator's own",
                Pin::None,
                &mapped,
                "other",
                false,
                Ok(Identity::Own),
            ),
            (
                "unmapped under requireMapping is denied",
                Pin::None,
                &mapped,
                "other",
                true,
                Err(false),
            ),
            (
                "mapped with external ID",
                Pin::None,
                &mapped,
                "team-a",
                true,
                Ok(role(ROLE_A, Some("ext-a"))),
            ),
            (
                "mapped without external ID",
                Pin::None,
                &mapped,
                "team-b",
                false,
                Ok(role(ROLE_B, None)),
            ),
            (
                "pinned to its own role",
                pinned(ROLE_A),
                &mapped,
                "team-a",
                true,
                Ok(role(ROLE_A, Some("ext-a"))),
            ),
            (
                "pinned own in an unmapped namespace",
                Pin::Own,
                &mapped,
                "other",
                false,
                Ok(Identity::Own),
            ),
            (
                "pinned own under requireMapping, unmapped",
                Pin::Own,
                &none,
                "x",
                true,
                Err(true),
            ),
            (
                "pinned own in a mapped namespace: not granted",
                Pin::Own,
                &mapped,
                "team-a",
                false,
                Err(true),
            ),
            (
                "pinned own, granted as formerOwnIdentity",
                Pin::Own,
                &moved,
                "team-a",
                true,
                Ok(Identity::Own),
            ),
            (
                "another mapped namespace's role",
                pinned(ROLE_B),
                &mapped,
                "team-a",
                false,
                Err(true),
            ),
            (
                "a role no namespace is mapped to",
                pinned(ROLE_C),
                &mapped,
                "team-a",
                false,
                Err(true),
            ),
            (
                "a role in an unmapped namespace",
                pinned(ROLE_A),
                &mapped,
                "other",
                false,
                Err(true),
            ),
            (
                "a role after the mapping was removed",
                pinned(ROLE_A),
                &none,
                "team-a",
                false,
                Err(true),
            ),
            (
                "the namespace moved, its old role not kept",
                pinned(ROLE_A),
                &moved,
                "team-a",
                false,
                Err(true),
            ),
            (
                "a former role, with its own external ID",
                pinned(ROLE_A_OLD),
                &moved,
                "team-a",
                false,
                Ok(role(ROLE_A_OLD, Some("ext-old"))),
            ),
            (
                "the new role after a move",
                pinned(ROLE_B),
                &moved,
                "team-a",
                false,
                Ok(role(ROLE_B, None)),
            ),
            (
                "a former role of another namespace",
                pinned(ROLE_A_OLD),
                &moved,
                "team-b",
                false,
                Err(true),
            ),
        ];
        for (name, pin, mapping, namespace, require, expected) in cases {
            let got = resolve(&pin, mapping, namespace, require)
                .map_err(|denied| matches!(denied, Denied::Pin(_)));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn the_pin_is_the_role_else_own_once_the_region_is_pinned() {
        assert_eq!(Pin::of(None, None), Pin::None);
        assert_eq!(Pin::of(Some("us-east-1"), None), Pin::Own);
        assert_eq!(
            Pin::of(Some("us-east-1"), Some(ROLE_A)),
            Pin::Role(ROLE_A.into())
        );
    }

    #[test]
    fn a_refused_pin_names_the_role_the_namespace_and_the_way_out() {
        let why =
            resolve(&Pin::Role(ROLE_B.into()), &mapping(), "team-a", false).expect_err("refused");
        let why = why.message();
        for words in [ROLE_B, "team-a", ROLE_A, "formerRoles", "no AWS call"] {
            assert!(why.contains(words), "{words}: {why}");
        }
    }

    #[test]
    fn a_denial_names_the_namespace_and_the_rule() {
        let why = resolve(&Pin::None, &Mapping::default(), "team-c", true).expect_err("denied");
        let why = why.message();
        assert!(
            why.contains("team-c") && why.contains("requireMapping"),
            "{why}"
        );
    }

    #[test]
    fn a_forged_role_is_shown_bounded_in_the_refusal() {
        let forged = format!("arn:aws:iam::111111111111:role/{}", "x".repeat(5000));
        let why = resolve(&Pin::Role(forged), &mapping(), "team-a", false).expect_err("denied");
        assert!(why.message().len() < 1024, "{}", why.message().len());
        assert!(why.message().contains("…"));
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
            (
                "team-a:\n  roleArn: arn:aws:iam::111111111111:role/x\n  formerRoles:\n    - roleArn: arn:aws:iam::1:role/y\n",
                "formerRoles[0].roleArn",
            ),
            (
                "team-a:\n  roleArn: arn:aws:iam::111111111111:role/x\n  formerRole: []\n",
                "formerRole",
            ),
        ] {
            let error = Mapping::parse(text).expect_err(text);
            assert!(error.contains(words), "{text}: {error}");
        }
        assert_eq!(Mapping::parse(""), Ok(Mapping::default()));
        assert_eq!(Mapping::parse("{}"), Ok(Mapping::default()));
        assert_eq!(mapping().namespaces.len(), 2);
    }
}
