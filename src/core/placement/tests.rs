use std::sync::Arc;

use super::*;
use crate::core::ownership::ClusterIdentity;
use crate::core::plan::{Facts, Observed, Step, plan};
use crate::model::crd::{CollectionSpec, CollectionStatus, ReadyReason};

const ROLE_A: &str = "arn:aws:iam::111111111111:role/team-a";
const ROLE_B: &str = "arn:aws:iam::222222222222:role/team-b";

#[test]
fn the_region_is_pinned_at_first_contact() {
    // (spec.region, status.region, default) → region used, conflict
    let none = None;
    let cases = [
        ((None, None, "us-east-1"), ("us-east-1", none)),
        ((Some("eu-west-1"), None, "us-east-1"), ("eu-west-1", none)),
        // The default changed after the first contact: the pinned region stays.
        ((None, Some("us-east-1"), "eu-west-1"), ("us-east-1", none)),
        (
            (Some("us-east-1"), Some("us-east-1"), "eu-west-1"),
            ("us-east-1", none),
        ),
        (
            (Some("eu-west-1"), Some("us-east-1"), "us-east-1"),
            ("us-east-1", Some(("us-east-1", "eu-west-1"))),
        ),
    ];
    for ((spec, status, default), (region, conflict)) in cases {
        let conflict = conflict.map(|(a, b): (&str, &str)| (a.to_owned(), b.to_owned()));
        assert_eq!(
            pinned_region(spec, status, default),
            (region.to_owned(), conflict),
            "{spec:?} {status:?} {default}"
        );
    }
}

/// An object of `namespace` named `name`, asking for `spec_region`, whose status records
/// `pinned` (region, role).
fn object(
    namespace: &str,
    name: &str,
    spec_region: Option<&str>,
    pinned: (Option<&str>, Option<&str>),
) -> RekognitionCollection {
    let mut obj = RekognitionCollection::new(
        name,
        CollectionSpec {
            region: spec_region.map(str::to_owned),
            ..CollectionSpec::default()
        },
    );
    obj.metadata.namespace = Some(namespace.into());
    obj.metadata.uid = Some("uid-1".into());
    obj.metadata.generation = Some(1);
    obj.status = Some(CollectionStatus {
        region: pinned.0.map(str::to_owned),
        role_arn: pinned.1.map(str::to_owned),
        ..CollectionStatus::default()
    });
    obj
}

/// What the plan makes of the placement: the reason of the verdict, if it is one, and its message.
fn verdict(
    obj: &RekognitionCollection,
    authority: &Authority<'_>,
) -> (Option<ReadyReason>, String) {
    let namespace = obj.metadata.namespace.clone().unwrap_or_default();
    let placement = place(obj, &namespace, authority);
    let observed = Observed::of(
        obj,
        Facts {
            uid: "uid-1".into(),
            namespace: &namespace,
            region: &placement.target.region,
            region_conflict: placement.region_conflict.clone(),
            account: placement.target.identity.account_id(),
            policy_denied: placement.policy_denied.clone(),
            pin_refused: placement.pin_refused.clone(),
            tags_due: false,
            handover_proven: false,
            cluster: Arc::new(ClusterIdentity {
                name: "test".into(),
                take_over_from: Default::default(),
            }),
        },
    );
    match plan(&observed) {
        Step::Finish { reason, message } => (Some(reason), message),
        step => (None, format!("{step:?}")),
    }
}

/// Which refusal wins when several apply: a refused pin (no call anywhere, not even to delete),
/// then a region conflict, then the tenancy rules, then a missing mapping.
#[test]
fn which_refusal_wins() {
    let mapping = Mapping::parse(&format!("team-a:\n  roleArn: {ROLE_A}\n")).expect("mapping");
    let rules = Rules {
        allowed_regions: ["us-east-1".to_owned()].into(),
        require_namespace_prefix: true,
        ..Rules::default()
    };
    let authority = Authority {
        mapping: &mapping,
        rules: &rules,
        namespace_labels: None,
        default_region: "us-east-1",
        require_mapping: true,
    };
    let (policy, conflict) = (ReadyReason::PolicyDenied, ReadyReason::RegionConflict);
    // (case, namespace, name, spec.region, status (region, roleArn)) → reason, words of its message
    let cases = [
        (
            "allowed",
            "team-a",
            "team-a-photos",
            None,
            (None, None),
            None,
            "AddFinalizer",
        ),
        (
            "an unmapped namespace",
            "team-z",
            "team-z-photos",
            None,
            (None, None),
            Some(policy),
            "no AWS account is mapped for namespace team-z",
        ),
        (
            "a region the rules do not allow",
            "team-a",
            "team-a-photos",
            Some("eu-west-1"),
            (None, None),
            Some(policy),
            "eu-west-1",
        ),
        (
            "an ID without the namespace's prefix",
            "team-a",
            "photos",
            None,
            (None, None),
            Some(policy),
            "must start with 'team-a-'",
        ),
        (
            "unmapped and unprefixed: the rules speak first",
            "team-z",
            "photos",
            None,
            (None, None),
            Some(policy),
            "must start with 'team-z-'",
        ),
        (
            "a role of another team",
            "team-a",
            "team-a-photos",
            None,
            (Some("us-east-1"), Some(ROLE_B)),
            Some(policy),
            "status.roleArn arn:aws:iam::222222222222:role/team-b is not a role",
        ),
        (
            "another team's role and a region conflict: the pin speaks first",
            "team-a",
            "team-a-photos",
            Some("eu-west-1"),
            (Some("us-east-1"), Some(ROLE_B)),
            Some(policy),
            "status.roleArn arn:aws:iam::222222222222:role/team-b is not a role",
        ),
        (
            "a recorded region the rules do not allow",
            "team-a",
            "team-a-photos",
            None,
            (Some("eu-west-1"), Some(ROLE_A)),
            Some(policy),
            "not even to delete",
        ),
        (
            "a recorded region that is no region name and another team's role: the role first",
            "team-a",
            "team-a-photos",
            None,
            (Some("example.com"), Some(ROLE_B)),
            Some(policy),
            "status.roleArn arn:aws:iam::222222222222:role/team-b is not a role",
        ),
        (
            "a region conflict before the rules",
            "team-a",
            "photos",
            Some("eu-west-1"),
            (Some("us-east-1"), Some(ROLE_A)),
            Some(conflict),
            "spec.region eu-west-1 differs from us-east-1",
        ),
    ];
    for (case, namespace, name, spec_region, pinned, reason, words) in cases {
        let (got, message) = verdict(&object(namespace, name, spec_region, pinned), &authority);
        assert_eq!(got, reason, "{case}: {message}");
        assert!(message.contains(words), "{case}: {message}");
    }
}

#[test]
fn a_refused_object_is_placed_under_no_other_identity() {
    let mapping = Mapping::parse(&format!("team-a:\n  roleArn: {ROLE_A}\n")).expect("mapping");
    let rules = Rules::default();
    let authority = Authority {
        mapping: &mapping,
        rules: &rules,
        namespace_labels: None,
        default_region: "us-east-1",
        require_mapping: false,
    };
    let forged = object("team-a", "photos", None, (Some("us-east-1"), Some(ROLE_B)));
    let placement = place(&forged, "team-a", &authority);
    assert_eq!(placement.target.identity, Identity::Own);
    assert!(placement.pin_refused.is_some() && placement.pin_recorded);
    let fresh = object("team-a", "photos", None, (None, None));
    let placement = place(&fresh, "team-a", &authority);
    assert_eq!(placement.target.identity.role_arn(), Some(ROLE_A));
    assert_eq!(placement.target.region, "us-east-1");
    assert!(!placement.pin_recorded);
    // The proof names the identity, region and collection ID.
    let other = Placement {
        target: Target {
            identity: Identity::Own,
            region: "us-east-1".into(),
        },
        ..placement.clone()
    };
    assert_ne!(placement.proof_key("photos"), other.proof_key("photos"));
    assert_ne!(
        placement.proof_key("photos"),
        placement.proof_key("photos-2")
    );
}
