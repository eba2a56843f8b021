//! The invariants every run must end in, read from the API servers and the emulator's state and
//! call log. Each check returns one line per violation, naming the invariant.
//!
//! Whose is what. A run has its own cluster: its objects on the campaign's control plane, whose
//! operators write the run's cluster name into their claims. A migration's run also has peers:
//! old clusters, each the same namespace on the campaign's second control plane, which the run's
//! cluster takes over from. A claim (`<cluster>/<namespace>/<name>`) may also name a third
//! cluster that the campaign does not run: only the campaign makes such collections, and it
//! marks them foreign. The same namespace and name is "the same object" across clusters.
//!
//! - I1 every live object converges. A Manage or Adopt object of the run's cluster owns its
//!   collection (owner tag = its UID), is Ready and Synced, its status names that collection's
//!   ARN and the emulator's region, and the collection's tags are the spec's tags plus the owner
//!   tag and the run's claim; an ObserveOnly object has observed its latest generation. The
//!   exception is an object whose collection the same object of another cluster claims: a peer's
//!   claim means the takeover has not happened (a violation); a third cluster's means the
//!   object reports AwaitingHandover and owns nothing. A live object of a peer converges by
//!   letting go: its collection still exists and the same object of another cluster claims it;
//!   where the peer held it when the handover began, the run's cluster claims it and the object
//!   reports HandedOver; where it never held it, the object reports AwaitingHandover.
//! - I2 no collection carries the owner tag of a UID that is gone, and its owner tag and claim
//!   name the same live object. For every collection that is not foreign: with an owner tag and
//!   a claim `<cluster>/<namespace>/<name>`, the cluster is the run's or a peer's, and the owner
//!   tag is the UID of a live object of that cluster with that namespace and name; with an owner
//!   tag and no claim, the UID of a live object of some cluster of the run; a claim never
//!   without an owner tag (ownership is given and given up with both at once). So a Retain'ed
//!   collection carries neither. A third cluster's objects are out of the campaign's sight, so
//!   whether the owner of a collection it claims lives cannot be judged: every such collection
//!   is the campaign's own and foreign (I6), and any other claim of a cluster the campaign does
//!   not run is a violation.
//! - I3 at most one successful CreateCollection per object UID per existence of its collection,
//!   counting the objects of every cluster of the run. Without leader election (two operators at
//!   once, a misconfiguration) one more is allowed per incarnation of an object that is gone and
//!   whose collection is gone too: one operator reads the object a few milliseconds before its
//!   deletion is marked and creates; the other has deleted the collection in between for the
//!   deletion. Nothing between the API server and AWS can lock that window but a Lease; the
//!   collection is deleted again, which I2 and I4 check.
//! - I4 every Delete object's collection is gone once the object is, in every cluster of the
//!   run, unless the collection carries another object's owner tag (handed over to another
//!   cluster, or taken by someone else).
//! - I5 no object is stuck with the finalizer: every deleted object, in every cluster, is gone.
//! - I6 no foreign collection (made by the campaign outside the operators, such as every
//!   collection a third cluster claims, or taken from the operators) is modified or deleted; and
//!   a collection handed over between clusters is written once from the moment its handover
//!   began, by the takeover's TagResource, and never deleted, made again, untagged or retagged
//!   (the old cluster lets go, and neither flip-flops).

use std::collections::{BTreeMap, BTreeSet};

use rekognition_emulator::admin::CollectionView;
use rekognition_emulator::ledger::CallRecord;
use rekognition_operator::core::ownership::{claim, object_part, parse_claim};
use rekognition_operator::model::crd::{
    CLAIM_TAG, DeletionPolicy, ManagementPolicy, OWNER_TAG, RekognitionCollection,
};

use crate::run::{Intent, Run};

/// What the invariants read.
pub struct Observed {
    /// The run's cluster's objects.
    pub objects: Vec<RekognitionCollection>,
    /// Each peer's objects, by the peer's cluster name.
    pub peer_objects: BTreeMap<String, Vec<RekognitionCollection>>,
    pub collections: Vec<CollectionView>,
    pub calls: Vec<CallRecord>,
}

pub fn check(run: &Run<'_>, observed: &Observed) -> Vec<String> {
    let mut violations = Vec::new();
    violations.extend(every_live_object_converges(run, observed));
    violations.extend(old_clusters_let_go(run, observed));
    violations.extend(no_collection_is_owned_by_a_gone_object(run, observed));
    violations.extend(no_collection_is_created_twice_for_one_existence(
        run, observed,
    ));
    violations.extend(deleted_objects_leave_no_collection_behind(run, observed));
    violations.extend(no_object_is_stuck_with_its_finalizer(observed));
    violations.extend(foreign_collections_are_untouched(run, observed));
    violations.extend(handed_over_collections_are_written_once(run, observed));
    violations
}

fn ready_reason(object: &RekognitionCollection) -> Option<&str> {
    object.ready_condition().map(|c| c.reason.as_str())
}

/// The cluster whose claim `collection` carries for the object `name` of the run's namespace,
/// when its claim names that object (in whichever cluster).
fn claimed_for<'c>(run: &Run<'_>, collection: &'c CollectionView, name: &str) -> Option<&'c str> {
    let (cluster, object) = parse_claim(collection.tags.get(CLAIM_TAG)?)?;
    (object == object_part(&run.namespace, name)).then_some(cluster)
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
        if let Some(elsewhere) = claimed_for(run, collection, &name)
            && elsewhere != run.cluster
        {
            if run.peers.iter().any(|p| p.cluster == elsewhere) {
                fail(format!(
                    "collection {id} is still claimed by cluster {elsewhere}, which this one takes over from"
                ));
            } else if ready_reason(object) != Some("AwaitingHandover") {
                fail(format!(
                    "collection {id} is claimed by cluster {elsewhere}, yet Ready reason is {:?}, not AwaitingHandover",
                    ready_reason(object)
                ));
            }
            continue;
        }
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

fn old_clusters_let_go(run: &Run<'_>, observed: &Observed) -> Vec<String> {
    let mut violations = Vec::new();
    for peer in &run.peers {
        let objects = observed.peer_objects.get(&peer.cluster);
        for object in objects.into_iter().flatten() {
            if object.metadata.deletion_timestamp.is_some()
                || object.spec.management_policy == ManagementPolicy::ObserveOnly
            {
                continue;
            }
            let name = object.metadata.name.clone().unwrap_or_default();
            let mut fail = |what: String| {
                violations.push(format!(
                    "I1 {}/{name} does not let go: {what}",
                    peer.cluster
                ))
            };
            let id = object.collection_id();
            let Some(collection) = observed.collections.iter().find(|c| c.collection_id == id)
            else {
                fail(format!("its collection {id} is gone"));
                continue;
            };
            let held = peer.held.contains(&name);
            let (wanted, claimant) = if held {
                ("HandedOver", Some(run.cluster.as_str()))
            } else {
                ("AwaitingHandover", None)
            };
            match claimed_for(run, collection, &name) {
                Some(cluster) if cluster == peer.cluster => {
                    fail(format!("collection {id} still claims this cluster"));
                    continue;
                }
                Some(cluster) if claimant.is_none_or(|c| c == cluster) => {}
                other => {
                    fail(format!(
                        "collection {id} has claim {:?}, not one of cluster {}",
                        other,
                        claimant.unwrap_or("another cluster")
                    ));
                    continue;
                }
            }
            if ready_reason(object) != Some(wanted) {
                fail(format!(
                    "Ready reason {:?}, not {wanted}",
                    ready_reason(object)
                ));
            }
        }
    }
    violations
}

fn no_collection_is_owned_by_a_gone_object(run: &Run<'_>, observed: &Observed) -> Vec<String> {
    // Per cluster of the run, its live objects' names by UID.
    let mut live: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    let clusters = std::iter::once((run.cluster.as_str(), &observed.objects)).chain(
        observed
            .peer_objects
            .iter()
            .map(|(cluster, objects)| (cluster.as_str(), objects)),
    );
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
            // One per incarnation of the object of that name (in any cluster), one per repair
            // of an out-of-band deletion, and the campaign's own.
            let allowed = run.incarnations.get(id).copied().unwrap_or(0)
                + run
                    .peers
                    .iter()
                    .map(|p| p.incarnations.get(id).copied().unwrap_or(0))
                    .sum::<u32>()
                + run.repairs.get(id).copied().unwrap_or(0)
                + run.own_creates.get(id).copied().unwrap_or(0)
                + remade_in_its_deletion(run, observed, id);
            (count > allowed).then(|| {
                format!("I3 collection {id} created {count} times, at most {allowed} allowed")
            })
        })
        .collect()
}

/// Creates I3 allows for `id` beyond one per incarnation when two operators run without leader
/// election: one per incarnation, once the object and its collection are both gone.
fn remade_in_its_deletion(run: &Run<'_>, observed: &Observed, id: &str) -> u32 {
    let object_gone = !observed
        .objects
        .iter()
        .any(|o| o.metadata.name.as_deref() == Some(id));
    let collection_gone = !observed.collections.iter().any(|c| c.collection_id == id);
    if run.without_leader_election && object_gone && collection_gone {
        run.incarnations.get(id).copied().unwrap_or(0)
    } else {
        0
    }
}

fn deleted_objects_leave_no_collection_behind(run: &Run<'_>, observed: &Observed) -> Vec<String> {
    let mut violations = gone_without_their_collections(
        &run.cluster,
        &run.intents,
        &observed.objects,
        &observed.collections,
        |name| run.not_owned.contains(name),
    );
    for peer in &run.peers {
        let objects = observed
            .peer_objects
            .get(&peer.cluster)
            .map(Vec::as_slice)
            .unwrap_or_default();
        violations.extend(gone_without_their_collections(
            &peer.cluster,
            &peer.intents,
            objects,
            &observed.collections,
            |_| false,
        ));
    }
    violations
}

/// I4 for one cluster: its objects written with `intents`, of which `objects` still live.
fn gone_without_their_collections(
    cluster: &str,
    intents: &BTreeMap<String, Intent>,
    objects: &[RekognitionCollection],
    collections: &[CollectionView],
    not_owned: impl Fn(&str) -> bool,
) -> Vec<String> {
    let live: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.metadata.name.as_deref())
        .collect();
    intents
        .iter()
        .filter(|(name, intent)| {
            !live.contains(name.as_str())
                && intent.deletion_policy == DeletionPolicy::Delete
                && intent.management_policy != ManagementPolicy::ObserveOnly
                && !not_owned(name)
        })
        .filter_map(|(name, intent)| {
            let collection = collections.iter().find(|c| &c.collection_id == name)?;
            let owner = collection.tags.get(OWNER_TAG);
            (owner.is_none() || owner == Some(&intent.uid)).then(|| {
                format!(
                    "I4 object {cluster}/{name} (deletionPolicy Delete) is gone but its collection is not"
                )
            })
        })
        .collect()
}

fn no_object_is_stuck_with_its_finalizer(observed: &Observed) -> Vec<String> {
    observed
        .objects
        .iter()
        .chain(observed.peer_objects.values().flatten())
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

fn handed_over_collections_are_written_once(run: &Run<'_>, observed: &Observed) -> Vec<String> {
    let mut violations = Vec::new();
    for (id, handed) in &run.handed_over {
        match observed.collections.iter().find(|c| &c.collection_id == id) {
            None => violations.push(format!("I6 collection {id}, handed over, was deleted")),
            Some(now) if now.created_at != handed.view.created_at => violations.push(format!(
                "I6 collection {id}, handed over, was deleted and made again"
            )),
            Some(_) => {}
        }
        let mut writes: BTreeMap<&str, usize> = BTreeMap::new();
        for call in observed.calls.iter().filter(|c| {
            c.collection_id.as_deref() == Some(id.as_str())
                && c.at > handed.since
                && c.outcome == "Ok"
                && matches!(
                    c.operation.as_str(),
                    "CreateCollection" | "DeleteCollection" | "TagResource" | "UntagResource"
                )
        }) {
            *writes.entry(call.operation.as_str()).or_default() += 1;
        }
        // The takeover is one TagResource; nothing else, by either cluster.
        let takeover_only = writes
            .iter()
            .all(|(operation, n)| *operation == "TagResource" && *n == 1);
        if !takeover_only {
            violations.push(format!(
                "I6 collection {id}, handed over, got successful writes {writes:?} (one TagResource allowed)"
            ));
        }
    }
    violations
}
