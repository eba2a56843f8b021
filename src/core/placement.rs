//! Where an object's AWS calls go, and what refuses it: the region and role pinned at its first
//! contact, the platform team's account mapping and its tenancy rules. Pure: the same object,
//! mapping and rules always place the object the same way.
//!
//! Refusals are kept apart, because they differ in what they allow: a refused pin allows no call
//! at all, not even to delete; a policy refusal of an object that never reached AWS lets it go
//! without a call. [`crate::core::plan`] decides which one wins, in this order: a refused pin, a
//! region conflict, then the policy (or a missing mapping).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use crate::core::accounts::{Denied, Mapping, Pin, resolve};
use crate::core::policy::Rules;
use crate::model::collection::Target;
use crate::model::crd::RekognitionCollection;
use crate::model::identity::Identity;

/// What decides an object's placement: the platform team's, never the tenant's.
pub struct Authority<'a> {
    pub mapping: &'a Mapping,
    pub rules: &'a Rules,
    /// The labels of the object's namespace, where the rules read them.
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    /// The operator's default region.
    pub default_region: &'a str,
    /// Namespaces without a mapping are refused rather than served with the operator's identity.
    pub require_mapping: bool,
}

/// Where one object's calls go, and why they may not.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// The identity and region in use: the pinned ones, else the mapping's role and spec.region
    /// or the default. A refused object keeps the operator's own identity, for no call is made.
    pub target: Target,
    /// spec.region differs from the pinned region, which stays in use: (pinned, asked).
    pub region_conflict: Option<(String, String)>,
    /// The rules or the mapping refuse the object (`PolicyDenied`).
    pub policy_denied: Option<String>,
    /// A pinned role or region the mapping or the rules do not allow: no call at all.
    pub pin_refused: Option<String>,
    /// The object records its region (status, or the annotations written with the finalizer).
    pub pin_recorded: bool,
}

/// Places `obj` of `namespace`.
pub fn place(obj: &RekognitionCollection, namespace: &str, authority: &Authority<'_>) -> Placement {
    let (recorded_region, pinned_role) = obj.recorded_pin();
    let (region, region_conflict) = pinned_region(
        obj.spec.region.as_deref(),
        recorded_region,
        authority.default_region,
    );
    let pin = Pin::of(recorded_region, pinned_role);
    // The mapping decides every identity, pinned or not: a pin is honoured only where the
    // mapping gives it to the namespace.
    let (identity, unmapped, pin_refused) = match resolve(
        &pin,
        authority.mapping,
        namespace,
        authority.require_mapping,
    ) {
        Ok(identity) => (identity, None, None),
        Err(Denied::Unmapped(why)) => (Identity::Own, Some(why), None),
        Err(Denied::Pin(why)) => (Identity::Own, None, Some(why)),
    };
    // The recorded region is a pin too: a region name the rules allow, or no call at all.
    let pin_refused =
        pin_refused.or_else(|| authority.rules.recorded_region_refusal(recorded_region));
    let policy_denied = authority
        .rules
        .refusal(namespace, authority.namespace_labels, obj, &region)
        .or(unmapped);
    Placement {
        target: Target { identity, region },
        region_conflict,
        policy_denied,
        pin_refused,
        pin_recorded: recorded_region.is_some(),
    }
}

impl Placement {
    /// Which collection ownership is proven for: the identity (and so the account), the region
    /// and the collection ID, hashed. Only compared within this process.
    pub fn proof_key(&self, collection_id: &str) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.target.identity.role_arn().hash(&mut hasher);
        self.target.region.hash(&mut hasher);
        collection_id.hash(&mut hasher);
        hasher.finish()
    }
}

/// The region an object uses: the one its status pinned at first contact, else spec.region, else
/// the operator's default. A spec.region that differs from the pinned one is a conflict (the
/// collection never moves), returned beside the pinned region, which stays in use.
pub fn pinned_region(
    spec: Option<&str>,
    status: Option<&str>,
    default: &str,
) -> (String, Option<(String, String)>) {
    match (status, spec) {
        (Some(pinned), Some(asked)) if pinned != asked => (
            pinned.to_owned(),
            Some((pinned.to_owned(), asked.to_owned())),
        ),
        (Some(pinned), _) => (pinned.to_owned(), None),
        (None, Some(asked)) => (asked.to_owned(), None),
        (None, None) => (default.to_owned(), None),
    }
}

#[cfg(test)]
mod tests;
