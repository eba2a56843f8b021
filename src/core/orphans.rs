//! Orphaned collections: those that claim this cluster for an object that no longer exists here.
//!
//! A double fault (a create whose answer was lost, then the object vanished; a crash before the
//! vanished-object cleanup), a finalizer stripped by hand, or a cluster restored without some of
//! its objects leaves a collection claimed by nobody alive. The inventory ([`crate::runtime::inventory`])
//! lists each (account, region) in use, reads the tags of the collections no live object uses,
//! and keeps here what [`orphan_claim`] finds; this module decides, the inventory does the I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::ownership::parse_claim;
use crate::model::collection::Target;
use crate::model::crd::{CLAIM_TAG, OWNER_TAG};
use crate::model::tags::Tags;
use crate::sync::lock;

/// What the operator does with an orphan once its grace period has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrphanPolicy {
    /// Report only (metric, log line, `/orphans`).
    Report,
    /// Delete the collection (and the faces indexed into it).
    Delete,
    /// Remove the ownership and claim tags, so the collection is nobody's and an object with
    /// `managementPolicy: Adopt` may claim it.
    Release,
}

/// What this cluster's live objects are, for telling an orphan from a claim still in use.
#[derive(Debug, Default)]
pub struct Live {
    pub uids: HashSet<String>,
    /// Each live object's claim object part (`<namespace>/<name>`, see
    /// [`crate::core::ownership::object_part`]).
    pub objects: HashSet<String>,
    /// The collection IDs live objects use: those collections need no tag read.
    pub collection_ids: HashSet<String>,
}

/// The owner UID and object part of a collection's claim, when it is an orphan: it claims this
/// cluster, in a namespace the operator watches (`watched`: all when None), for an object that is
/// not live here under its UID nor under its namespace and name (a restored object that has not
/// reclaimed yet still counts). Never a collection without a claim, or claimed by another cluster.
pub fn orphan_claim(
    tags: &Tags,
    cluster: &str,
    watched: Option<&str>,
    live: &Live,
) -> Option<(String, String)> {
    let owner = tags.get(OWNER_TAG)?;
    let (claimed_cluster, object) = parse_claim(tags.get(CLAIM_TAG)?)?;
    let namespace = object.split('/').next()?;
    let ours = claimed_cluster == cluster && watched.is_none_or(|w| w == namespace);
    (ours && !live.uids.contains(owner) && !live.objects.contains(object))
        .then(|| (owner.clone(), object.to_owned()))
}

/// One orphaned collection, as `/orphans` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Orphan {
    pub collection_id: String,
    pub arn: String,
    pub region: String,
    pub account: String,
    /// `<namespace>/<name>` of the object that claimed it (or the digest form for long names).
    pub claimed_by: String,
    pub owner_uid: String,
    pub first_seen: DateTime<Utc>,
    /// When the policy may act on it: first seen plus the grace period; never for `report`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act_after: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub seen_at: Option<Instant>,
}

impl Orphan {
    /// Whether the grace period has passed since this process first saw it an orphan.
    pub fn grace_passed(&self, grace: Duration, now: Instant) -> bool {
        self.seen_at
            .is_some_and(|seen| now.saturating_duration_since(seen) >= grace)
    }
}

/// What the reconciler and the inventory share: which (account, region) pairs are in use, with
/// one collection ARN of each once known (for the partition and account of the ARNs the
/// inventory builds),
/// and the orphans of the last scan of each. Entries leave with the process; the pairs are
/// bounded by the account mapping and the regions in use.
#[derive(Debug, Default)]
pub struct Inventory {
    targets: Mutex<HashMap<Target, Option<String>>>,
    orphans: Mutex<BTreeMap<String, Orphan>>,
}

impl Inventory {
    /// An object uses `target`, and the collection `arn` there if known.
    pub fn note(&self, target: &Target, arn: Option<&str>) {
        let mut targets = lock(&self.targets);
        match targets.get_mut(target) {
            Some(Some(_)) => {}
            Some(known) => *known = arn.map(str::to_owned),
            None => {
                targets.insert(target.clone(), arn.map(str::to_owned));
            }
        }
    }

    /// The pairs in use, each with an ARN of one of its collections once known.
    pub fn targets(&self) -> Vec<(Target, Option<String>)> {
        let targets = lock(&self.targets);
        targets
            .iter()
            .map(|(t, a)| (t.clone(), a.clone()))
            .collect()
    }

    /// Replaces what the last scan of `region` in `account` found, keeping when each orphan was
    /// first seen.
    pub fn replace(&self, account: &str, region: &str, found: Vec<Orphan>) {
        let mut orphans = lock(&self.orphans);
        let previous: BTreeMap<String, Orphan> = orphans
            .iter()
            .filter(|(_, o)| o.account == account && o.region == region)
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        orphans.retain(|_, o| !(o.account == account && o.region == region));
        for mut orphan in found {
            if let Some(before) = previous.get(&orphan.arn) {
                orphan.first_seen = before.first_seen;
                orphan.seen_at = before.seen_at;
                orphan.act_after = before.act_after;
            }
            orphans.insert(orphan.arn.clone(), orphan);
        }
    }

    /// One orphan is gone (deleted or released).
    pub fn forget(&self, arn: &str) {
        let mut orphans = lock(&self.orphans);
        orphans.remove(arn);
    }

    pub fn orphans(&self) -> Vec<Orphan> {
        let orphans = lock(&self.orphans);
        orphans.values().cloned().collect()
    }

    /// Orphans per (account, region), for the metric.
    pub fn counts(&self) -> BTreeMap<(String, String), i64> {
        let mut counts = BTreeMap::new();
        for orphan in self.orphans() {
            *counts
                .entry((orphan.account.clone(), orphan.region.clone()))
                .or_default() += 1;
        }
        counts
    }
}

/// The ARN of collection `id` beside `sample` (another collection's ARN in the same account and
/// region).
pub fn sibling_arn(sample: &str, id: &str) -> Option<String> {
    let (prefix, _) = sample.split_once(":collection/")?;
    Some(format!("{prefix}:collection/{id}"))
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

    #[test]
    fn an_orphan_claims_this_cluster_for_an_object_alive_neither_by_uid_nor_by_name() {
        let live = Live {
            uids: ["alive".to_string()].into(),
            objects: ["ns/restored".to_string()].into(),
            collection_ids: HashSet::new(),
        };
        let claim = |owner: &str, claim: &str| tags(&[(OWNER_TAG, owner), (CLAIM_TAG, claim)]);
        let cases = [
            ("gone", claim("old", "blue/ns/gone"), None, true),
            ("owner alive", claim("alive", "blue/ns/x"), None, false),
            (
                "restored, not yet reclaimed",
                claim("old", "blue/ns/restored"),
                None,
                false,
            ),
            (
                "another cluster",
                claim("old", "green/ns/gone"),
                None,
                false,
            ),
            ("no claim", tags(&[(OWNER_TAG, "old")]), None, false),
            (
                "no owner",
                tags(&[(CLAIM_TAG, "blue/ns/gone")]),
                None,
                false,
            ),
            ("unparsable claim", claim("old", "blue"), None, false),
            (
                "outside the watched namespace",
                claim("old", "blue/other/gone"),
                Some("ns"),
                false,
            ),
            (
                "inside the watched namespace",
                claim("old", "blue/ns/gone"),
                Some("ns"),
                true,
            ),
        ];
        for (name, tags, watched, orphan) in cases {
            assert_eq!(
                orphan_claim(&tags, "blue", watched, &live).is_some(),
                orphan,
                "{name}"
            );
        }
    }

    #[test]
    fn a_rescan_keeps_when_an_orphan_was_first_seen_and_drops_what_is_gone() {
        let inventory = Inventory::default();
        let orphan = |id: &str, at: DateTime<Utc>| Orphan {
            collection_id: id.into(),
            arn: format!("arn:aws:rekognition:r:111122223333:collection/{id}"),
            region: "r".into(),
            account: "111122223333".into(),
            claimed_by: format!("ns/{id}"),
            owner_uid: "u".into(),
            first_seen: at,
            act_after: None,
            seen_at: None,
        };
        let first = DateTime::from_timestamp(1_000, 0).unwrap_or_default();
        let later = DateTime::from_timestamp(2_000, 0).unwrap_or_default();
        inventory.replace(
            "111122223333",
            "r",
            vec![orphan("a", first), orphan("b", first)],
        );
        inventory.replace("111122223333", "r", vec![orphan("a", later)]);
        let now = inventory.orphans();
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].first_seen, first);
        assert_eq!(
            inventory.counts(),
            BTreeMap::from([(("111122223333".into(), "r".into()), 1)])
        );
    }

    #[test]
    fn sibling_arns_keep_partition_account_and_region() {
        assert_eq!(
            sibling_arn(
                "arn:aws-cn:rekognition:cn-north-1:111122223333:collection/a",
                "b"
            )
            .as_deref(),
            Some("arn:aws-cn:rekognition:cn-north-1:111122223333:collection/b")
        );
        assert_eq!(sibling_arn("nonsense", "b"), None);
    }
}
