//! Whose a collection is, judged by its tags: pure, no I/O.
//!
//! Two tags carry a claim. The owner tag names the object's UID, which no other object can have;
//! the claim tag names the cluster installation, namespace and name, which outlive the UID: a
//! restored or re-applied object has a new UID but the same namespace and name, and so can prove
//! that the collection was its earlier incarnation's. The claim also tells one cluster's objects
//! from another's, which a migration between clusters needs.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::model::crd::{CLAIM_TAG, OWNER_TAG};
use crate::model::tags::Tags;

/// AWS's limit on a tag value.
const MAX_TAG_VALUE: usize = 256;
/// The longest cluster name: a DNS label.
pub const MAX_CLUSTER_NAME: usize = 63;

/// Which cluster installation this operator serves, and whose collections it takes over.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ClusterIdentity {
    /// This installation's name, written into every claim.
    pub name: String,
    /// Clusters whose claims this one takes over for objects of the same namespace and name (a
    /// migration the platform team set up).
    pub take_over_from: BTreeSet<String>,
}

/// Whether `name` can be a cluster name: a DNS label (lowercase letters, digits, '-'), or a
/// Kubernetes UID (the default), so that a claim parses back unambiguously.
pub fn valid_cluster_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_CLUSTER_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a cluster name: 1-{MAX_CLUSTER_NAME} lowercase letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
}

/// The part of a claim that names the object: `<namespace>/<name>`, or, when that would not fit
/// in a tag value beside a cluster name, `<namespace>/sha256:<digest of the name>`.
pub fn object_part(namespace: &str, name: &str) -> String {
    let plain = format!("{namespace}/{name}");
    if MAX_CLUSTER_NAME + 1 + plain.len() <= MAX_TAG_VALUE {
        return plain;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{namespace}/sha256:{hex}")
}

/// The claim tag's value for an object: `<cluster>/<namespace>/<name>` (see [`object_part`]).
pub fn claim(cluster: &str, namespace: &str, name: &str) -> String {
    format!("{cluster}/{}", object_part(namespace, name))
}

/// The cluster a claim names, and the rest (the object part).
pub fn parse_claim(value: &str) -> Option<(&str, &str)> {
    let (cluster, object) = value.split_once('/')?;
    (!cluster.is_empty() && object.contains('/')).then_some((cluster, object))
}

/// Who holds a collection, from this object's point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// The owner tag names this object.
    Us,
    /// No owner tag: nobody claims it.
    Nobody,
    /// This object's earlier incarnation in this cluster (same namespace and name, another UID)
    /// that is no longer a live object here: a restore, or manifests applied again.
    Predecessor { uid: String },
    /// The same namespace and name in a cluster this one takes over from.
    Migrating { uid: String, cluster: String },
    /// The same namespace and name in another cluster, which this one does not take over from.
    SameObjectElsewhere { uid: String, cluster: String },
    /// Another object: of this cluster, of another, or of an operator version without claims.
    Other {
        uid: String,
        cluster: Option<String>,
    },
}

/// Who holds a collection whose tags are `tags`, for the object `uid` whose own claim is `ours`
/// (empty when it has none). `owner_live`: the owner tag's UID is a live object in this cluster.
pub fn holder(
    tags: &Tags,
    uid: &str,
    ours: &str,
    cluster: &ClusterIdentity,
    owner_live: bool,
) -> Holder {
    let Some(owner) = tags.get(OWNER_TAG) else {
        return Holder::Nobody;
    };
    if owner == uid {
        return Holder::Us;
    }
    let uid = owner.clone();
    let claimed = tags.get(CLAIM_TAG).and_then(|v| parse_claim(v));
    let ours = parse_claim(ours);
    match (claimed, ours) {
        (Some(theirs), Some(mine)) if theirs == mine && !owner_live => Holder::Predecessor { uid },
        (Some((their_cluster, their_object)), Some((_, my_object)))
            if their_object == my_object && their_cluster != cluster.name =>
        {
            let cluster_name = their_cluster.to_owned();
            if cluster.take_over_from.contains(their_cluster) {
                Holder::Migrating {
                    uid,
                    cluster: cluster_name,
                }
            } else {
                Holder::SameObjectElsewhere {
                    uid,
                    cluster: cluster_name,
                }
            }
        }
        (claimed, _) => Holder::Other {
            uid,
            cluster: claimed.map(|(c, _)| c.to_owned()),
        },
    }
}

/// The tags a collection held by this object carries besides its owner tag: the spec's, and the
/// claim when it fits in AWS's budget of 200 (the owner tag takes one slot).
pub fn managed_tags(spec: &Tags, ours: &str) -> Tags {
    let mut tags = spec.clone();
    if !ours.is_empty() && spec.len() + 2 <= crate::model::tags::MAX_TAGS {
        tags.insert(CLAIM_TAG.to_owned(), ours.to_owned());
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn cluster(name: &str, from: &[&str]) -> ClusterIdentity {
        ClusterIdentity {
            name: name.into(),
            take_over_from: from.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn claims_name_cluster_namespace_and_name_within_a_tag_value() {
        assert_eq!(claim("blue", "team-a", "faces"), "blue/team-a/faces");
        let long = "n".repeat(253);
        let value = claim(&"c".repeat(63), &"s".repeat(63), &long);
        assert!(value.len() <= MAX_TAG_VALUE, "{}", value.len());
        assert!(value.contains("/sha256:"), "{value}");
        // The object part does not depend on the cluster, so claims of two clusters compare.
        assert_eq!(
            parse_claim(&claim("a", "ns", &long)).map(|(_, o)| o.to_owned()),
            parse_claim(&claim("bb", "ns", &long)).map(|(_, o)| o.to_owned())
        );
        assert_eq!(parse_claim("blue/ns/x"), Some(("blue", "ns/x")));
        assert_eq!(parse_claim("blue"), None);
        assert_eq!(parse_claim("/ns/x"), None);
    }

    #[test]
    fn cluster_names_are_dns_labels_or_uids() {
        for ok in ["blue", "prod-eu-1", "7c9e6679-7425-40de-944b-e07fc1f90ae7"] {
            assert!(valid_cluster_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Blue", "a/b", "-a", "a-", &"x".repeat(64), "a.b"] {
            assert!(valid_cluster_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn who_holds_a_collection() {
        let me = "blue/ns/x";
        let blue = cluster("blue", &[]);
        let green_from_blue = cluster("green", &["blue"]);
        let green_mine = "green/ns/x";
        let green = cluster("green", &[]);
        let cases: Vec<(Tags, &str, &ClusterIdentity, bool, Holder)> = vec![
            (tags(&[]), me, &blue, false, Holder::Nobody),
            (tags(&[(OWNER_TAG, "u1")]), me, &blue, false, Holder::Us),
            (
                tags(&[(OWNER_TAG, "u1"), (CLAIM_TAG, "blue/ns/x")]),
                me,
                &blue,
                false,
                Holder::Us,
            ),
            // A restore: same cluster, namespace and name, the old UID gone.
            (
                tags(&[(OWNER_TAG, "old"), (CLAIM_TAG, "blue/ns/x")]),
                me,
                &blue,
                false,
                Holder::Predecessor { uid: "old".into() },
            ),
            // The claimed owner still lives: never taken.
            (
                tags(&[(OWNER_TAG, "old"), (CLAIM_TAG, "blue/ns/x")]),
                me,
                &blue,
                true,
                Holder::Other {
                    uid: "old".into(),
                    cluster: Some("blue".into()),
                },
            ),
            // Another name or namespace in this cluster.
            (
                tags(&[(OWNER_TAG, "o"), (CLAIM_TAG, "blue/ns/y")]),
                me,
                &blue,
                false,
                Holder::Other {
                    uid: "o".into(),
                    cluster: Some("blue".into()),
                },
            ),
            (
                tags(&[(OWNER_TAG, "o"), (CLAIM_TAG, "blue/other/x")]),
                me,
                &blue,
                false,
                Holder::Other {
                    uid: "o".into(),
                    cluster: Some("blue".into()),
                },
            ),
            // An owner tag from before claims: never reclaimed by name.
            (
                tags(&[(OWNER_TAG, "o")]),
                me,
                &blue,
                false,
                Holder::Other {
                    uid: "o".into(),
                    cluster: None,
                },
            ),
            // The same object in another cluster.
            (
                tags(&[(OWNER_TAG, "o"), (CLAIM_TAG, "blue/ns/x")]),
                green_mine,
                &green,
                false,
                Holder::SameObjectElsewhere {
                    uid: "o".into(),
                    cluster: "blue".into(),
                },
            ),
            (
                tags(&[(OWNER_TAG, "o"), (CLAIM_TAG, "blue/ns/x")]),
                green_mine,
                &green_from_blue,
                true,
                Holder::Migrating {
                    uid: "o".into(),
                    cluster: "blue".into(),
                },
            ),
            // Taking over covers the same object only.
            (
                tags(&[(OWNER_TAG, "o"), (CLAIM_TAG, "blue/ns/y")]),
                green_mine,
                &green_from_blue,
                false,
                Holder::Other {
                    uid: "o".into(),
                    cluster: Some("blue".into()),
                },
            ),
            // Without a claim of its own (no cluster identity), an object reclaims nothing.
            (
                tags(&[(OWNER_TAG, "old"), (CLAIM_TAG, "blue/ns/x")]),
                "",
                &blue,
                false,
                Holder::Other {
                    uid: "old".into(),
                    cluster: Some("blue".into()),
                },
            ),
        ];
        for (tags, ours, cluster, live, expected) in cases {
            assert_eq!(
                holder(&tags, "u1", ours, cluster, live),
                expected,
                "{tags:?} {ours} {cluster:?} live={live}"
            );
        }
    }

    #[test]
    fn the_claim_takes_a_slot_only_when_one_is_free() {
        let spec: Tags = (0..198).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(managed_tags(&spec, "blue/ns/x").len(), 199);
        let full: Tags = (0..199).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(managed_tags(&full, "blue/ns/x"), full);
        assert_eq!(managed_tags(&Tags::new(), ""), Tags::new());
    }
}
