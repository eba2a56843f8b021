//! The invariants every run must end in, read from the API server and the emulator's state and
//! call log. Each check returns one line per violation, naming the invariant.
//!
//! - I1 every live object converges: a Manage or Adopt object owns its collection (owner tag =
//!   its UID), is Ready and Synced, its status names that collection's ARN and the emulator's
//!   region, and the collection's tags are the spec's tags plus the owner tag; an ObserveOnly
//!   object has observed its latest generation.
//! - I2 no collection carries the owner tag of a UID that is gone, and its owner tag and claim
//!   name the same live object. For every collection that is not foreign: with an owner tag and
//!   a claim, the claim names the run's cluster, and the owner tag is the UID of a live object
//!   with the claim's namespace and name (a claim of a cluster the campaign does not run is a
//!   violation unless the campaign made it, and then it is foreign); with an owner tag and no
//!   claim, the owner is a live object; a claim never without an owner tag (ownership is given
//!   and given up with both at once). So a Retain'ed collection carries neither.
//! - I3 at most one successful CreateCollection per object UID per existence of its collection.
//! - I4 every Delete object's collection is gone once the object is.
//! - I5 no object is stuck with the finalizer: every deleted object is gone.
//! - I6 no foreign collection is modified or deleted.

use std::collections::{BTreeMap, BTreeSet};

use rekognition_emulator::admin::CollectionView;
use rekognition_emulator::ledger::CallRecord;
use rekognition_operator::crd::{
    CLAIM_TAG, DeletionPolicy, ManagementPolicy, OWNER_TAG, RekognitionCollection,
};
use rekognition_operator::ownership::{claim, parse_claim};

use crate::run::Run;

/// What the invariants read.
pub struct Observed {
    pub objects: Vec<RekognitionCollection>,
    pub collections: Vec<CollectionView>,
    pub calls: Vec<CallRecord>,
}

pub fn check(run: &Run<'_>, observed: &Observed) -> Vec<String> {
    let mut violations = Vec::new();
    violations.extend(every_live_object_converges(run, observed));
    violations.extend(no_collection_is_owned_by_a_gone_object(run, observed));
    violations.extend(no_collection_is_created_twice_for_one_existence(
        run, observed,
    ));
    violations.extend(deleted_objects_leave_no_collection_behind(run, observed));
    violations.extend(no_object_is_stuck_with_its_finalizer(observed));
    violations.extend(foreign_collections_are_untouched(run, observed));
    violations
}

fn condition_true(object: &RekognitionCollection, type_: &str) -> bool {
    object
        .status
        .as_ref()
        .and_then(|s| s.condition(type_))
        .is_some_and(|c| c.status == "True")
}

fn every_live_object_converges(run: &Run<'_>, observed: &Observed) -> Vec<String> {
    let mut violations = Vec::new();
    let region = &run.emulator.config().region;
    for object in &observed.objects {
        if object.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = object.metadata.name.clone().unwrap_or_default();
        let uid = object.metadata.uid.clone().unwrap_or_default();
        let status = object.status.clone().unwrap_or_default();
        let mut fail =
            |what: String| violations.push(format!("I1 {name} does not converge: {what}"));
        if object.spec.management_policy == ManagementPolicy::ObserveOnly {
            if status.observed_generation != object.metadata.generation {
                fail(format!(
                    "observed generation {:?} of {:?}",
                    status.observed_generation, object.metadata.generation
                ));
            }
            continue;
        }
        if run.not_owned.contains(&name) {
            // The scenario gave its collection to someone else: it must not converge onto it.
            continue;
        }
        let id = object.collection_id();
        let Some(collection) = observed.collections.iter().find(|c| c.collection_id == id) else {
            fail(format!("no collection {id}"));
            continue;
        };
        if collection.tags.get(OWNER_TAG) != Some(&uid) {
            fail(format!(
                "collection {id} has owner tag {:?}",
                collection.tags.get(OWNER_TAG)
            ));
            continue;
        }
        if !condition_true(object, "Ready") || !condition_true(object, "Synced") {
            fail(format!(
                "Ready {:?}, Synced {:?}",
                object.ready_condition().map(|c| (&c.status, &c.reason)),
                object.synced_condition().map(|c| (&c.status, &c.reason))
            ));
            continue;
        }
        if status.collection_arn.as_deref() != Some(collection.collection_arn.as_str()) {
            fail(format!(
                "status ARN {:?}, collection ARN {}",
                status.collection_arn, collection.collection_arn
            ));
        }
        if status.region.as_deref() != Some(region.as_str()) {
            fail(format!(
                "status region {:?}, collection region {region}",
                status.region
            ));
        }
        let mut wanted = object.spec.tags.clone();
        wanted.insert(OWNER_TAG.to_owned(), uid.clone());
        if wanted.len() < 200 {
            wanted.insert(
                CLAIM_TAG.to_owned(),
                claim(&run.cluster, &run.namespace, &name),
            );
        }
        if collection.tags != wanted {
            fail(format!(
                "collection tags {:?}, spec asks {:?}",
                collection.tags, wanted
            ));
        }
    }
    violations
}

fn no_collection_is_owned_by_a_gone_object(run: &Run<'_>, observed: &Observed) -> Vec<String> {
    // Per cluster of the run, its live objects' names by UID.
    let mut live: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    let clusters = std::iter::once((run.cluster.as_str(), &observed.objects));
    for (cluster, objects) in clusters {
        live.entry(cluster).or_default().extend(
            objects
                .iter()
                .filter_map(|o| Some((o.metadata.uid.as_deref()?, o.metadata.name.as_deref()?))),
        );
    }
    let mut violations = Vec::new();
    for c in &observed.collections {
        if run.foreign.contains_key(&c.collection_id) {
            continue;
        }
        let id = &c.collection_id;
        match (c.tags.get(OWNER_TAG), c.tags.get(CLAIM_TAG)) {
            (None, None) => {}
            (None, Some(claimed)) => violations.push(format!(
                "I2 collection {id} carries the claim {claimed} without an owner tag"
            )),
            (Some(owner), None) => {
                if !live.values().any(|uids| uids.contains_key(owner.as_str())) {
                    violations.push(format!(
                        "I2 collection {id} carries the owner tag of {owner}, which is gone"
                    ));
                }
            }
            (Some(owner), Some(claimed)) => {
                let Some((cluster, _)) = parse_claim(claimed) else {
                    violations.push(format!(
                        "I2 collection {id} carries a claim {claimed:?} that names no cluster"
                    ));
                    continue;
                };
                let Some(uids) = live.get(cluster) else {
                    violations.push(format!(
                        "I2 collection {id} is claimed by cluster {cluster}, which the campaign does not run, and is not foreign"
                    ));
                    continue;
                };
                match uids.get(owner.as_str()) {
                    None => violations.push(format!(
                        "I2 collection {id} carries the owner tag of {owner}, which is gone from cluster {cluster}"
                    )),
                    Some(name) if *claimed != claim(cluster, &run.namespace, name) => {
                        violations.push(format!(
                            "I2 collection {id} carries the owner tag of {cluster}'s {name} and the claim {claimed}"
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    violations
}

fn no_collection_is_created_twice_for_one_existence(
    run: &Run<'_>,
    observed: &Observed,
) -> Vec<String> {
    // A create whose answer was lost still counts: the collection was made.
    let mut creates: BTreeMap<&str, u32> = BTreeMap::new();
    for call in &observed.calls {
        if call.operation == "CreateCollection"
            && call.outcome == "Ok"
            && let Some(id) = call.collection_id.as_deref()
        {
            *creates.entry(id).or_default() += 1;
        }
    }
    creates
        .into_iter()
        .filter_map(|(id, count)| {
            // One per incarnation of the object of that name, one per repair of an
            // out-of-band deletion, and the campaign's own.
            let allowed = run.incarnations.get(id).copied().unwrap_or(0)
                + run.repairs.get(id).copied().unwrap_or(0)
                + run.own_creates.get(id).copied().unwrap_or(0);
            (count > allowed).then(|| {
                format!("I3 collection {id} created {count} times, at most {allowed} allowed")
            })
        })
        .collect()
}

fn deleted_objects_leave_no_collection_behind(run: &Run<'_>, observed: &Observed) -> Vec<String> {
    let live: BTreeSet<&str> = observed
        .objects
        .iter()
        .filter_map(|o| o.metadata.name.as_deref())
        .collect();
    run.intents
        .iter()
        .filter(|(name, intent)| {
            !live.contains(name.as_str())
                && intent.deletion_policy == DeletionPolicy::Delete
                && intent.management_policy != ManagementPolicy::ObserveOnly
                && !run.not_owned.contains(*name)
        })
        .filter_map(|(name, intent)| {
            let collection = observed
                .collections
                .iter()
                .find(|c| &c.collection_id == name)?;
            let owner = collection.tags.get(OWNER_TAG);
            (owner.is_none() || owner == Some(&intent.uid)).then(|| {
                format!(
                    "I4 object {name} (deletionPolicy Delete) is gone but its collection is not"
                )
            })
        })
        .collect()
}

fn no_object_is_stuck_with_its_finalizer(observed: &Observed) -> Vec<String> {
    observed
        .objects
        .iter()
        .filter(|o| o.metadata.deletion_timestamp.is_some())
        .map(|o| {
            format!(
                "I5 object {} is deleted but still held by {:?}",
                o.metadata.name.as_deref().unwrap_or_default(),
                o.metadata.finalizers
            )
        })
        .collect()
}

fn foreign_collections_are_untouched(run: &Run<'_>, observed: &Observed) -> Vec<String> {
    let mut violations = Vec::new();
    for (id, foreign) in &run.foreign {
        let before = &foreign.view;
        match observed.collections.iter().find(|c| &c.collection_id == id) {
            None => violations.push(format!("I6 foreign collection {id} was deleted")),
            Some(now) if now.tags != before.tags || now.created_at != before.created_at => {
                violations.push(format!(
                    "I6 foreign collection {id} was modified: tags {:?} → {:?}",
                    before.tags, now.tags
                ))
            }
            Some(_) => {}
        }
        let writes = observed
            .calls
            .iter()
            .filter(|c| c.collection_id.as_deref() == Some(id.as_str()) && c.at > foreign.since)
            .filter(|c| {
                matches!(
                    c.operation.as_str(),
                    "DeleteCollection" | "TagResource" | "UntagResource"
                )
            })
            .filter(|c| c.outcome == "Ok")
            .count();
        if writes > 0 {
            violations.push(format!(
                "I6 foreign collection {id} got {writes} successful write(s)"
            ));
        }
    }
    violations
}
