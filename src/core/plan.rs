//! The decision core: what the operator knows so far in, the next step out. Pure, no I/O.
//!
//! A reconcile loops `observe → plan → act`: [`plan`] looks at the object and at what AWS has told
//! this reconcile so far ([`Observed`]), and returns one [`Step`]. The actor carries out the step,
//! records what it learned in `Observed`, and asks again, until the plan says
//! [`Step::Finish`], [`Step::Wait`] or [`Step::RemoveFinalizer`]. AWS is asked only what the next
//! decision needs, so a steady object costs one DescribeCollection.

use std::sync::Arc;

use crate::core::ownership::{ClusterIdentity, Holder, claim, holder, managed_tags};
use crate::model::collection::CollectionDescription;
use crate::model::crd::{
    CLAIM_TAG, DeletionPolicy, FINALIZER, ManagementPolicy, OWNER_TAG, PAUSED_ANNOTATION,
    ReadyReason, RekognitionCollection,
};
use crate::model::tags::Tags;

/// What is known about the collection in AWS during one reconcile.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Collection {
    /// Not asked yet.
    #[default]
    Unknown,
    /// AWS says there is no collection with this ID.
    Missing,
    /// The collection exists. `arn` is None when only CreateCollection's "already exists" told us.
    Exists {
        arn: Option<String>,
        description: Option<CollectionDescription>,
    },
}

/// What the status said before this reconcile.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LastStatus {
    pub arn: Option<String>,
    /// The creation time of the collection the status describes (RFC 3339, seconds).
    pub created_at: Option<String>,
    pub reason: Option<ReadyReason>,
    pub message: String,
    /// The generation the Ready condition was set for.
    pub reason_generation: Option<i64>,
    /// status.observedGeneration: the last generation fully reconciled.
    pub observed_generation: Option<i64>,
    /// Synced said Paused: Ready's reason is from before the pause.
    pub paused: bool,
}

/// Everything the plan may look at.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Observed {
    pub uid: String,
    /// `<namespace>/<name>`, for messages.
    pub object: String,
    /// This object's claim tag value (see [`crate::core::ownership`]); empty: the object has none.
    pub claim: String,
    /// Which cluster installation this is, and whose collections it takes over.
    pub cluster: Arc<ClusterIdentity>,
    pub generation: i64,
    pub deleting: bool,
    pub has_finalizer: bool,
    /// The object went from the API server while this reconcile created or claimed its
    /// collection (a delete that raced with the finalizer's addition, or a stripped finalizer):
    /// nothing will reconcile it again, so its collection is cleaned up now, as its
    /// deletionPolicy says, and no write to the object is possible.
    pub vanished: bool,
    pub collection_id: String,
    pub desired_tags: Tags,
    pub deletion_policy: DeletionPolicy,
    pub management_policy: ManagementPolicy,
    pub last: LastStatus,
    /// The region the status pinned and a different one the spec now asks for.
    pub region_conflict: Option<(String, String)>,
    /// Why the platform team's tenancy policy or account mapping refuses this object, if it does.
    pub policy_denied: Option<String>,
    /// Why the account or region the status records is not honoured (the mapping or the policy
    /// does not give it to the namespace): no AWS call at all, not even to clean up.
    pub pin_refused: Option<String>,
    /// The object records a region (its status, or the pin written with its finalizer): some AWS
    /// call may have been made for it. False: nothing was ever asked of AWS for it.
    pub pinned: bool,
    /// The object carries the pause annotation: no AWS call at all.
    pub paused: bool,
    /// A reconcile asked for by annotation and not handled yet (its value): the object is looked
    /// at in full, tags and all, even while it waits for a spec change.
    pub requested: Option<String>,

    // What this reconcile has learned from AWS so far.
    pub collection: Collection,
    /// The collection's tags, once listed (or known because this reconcile set them).
    pub tags: Option<Tags>,
    /// This reconcile created the collection, so ownership and tags are known.
    pub created: bool,
    /// This reconcile claimed the collection (managementPolicy Adopt).
    pub adopted: bool,
    /// The UID the collection's owner tag names is a live object in this cluster (known once the
    /// tags are read): a live owner is never replaced.
    pub owner_live: bool,
    /// CreateCollection answered that the ID exists: whose it is must be proven by its tags.
    pub already_existed: bool,
    /// The tag check interval (`--tag-check-interval`) has passed since the tags were last read:
    /// a steady object reads them too, so edits made behind the operator's back are put right.
    pub tags_due: bool,
    /// This process read the collection's tags naming the same object in another cluster: a
    /// `HandedOver` in the status is the operator's own finding, not only a tenant's word.
    pub handover_proven: bool,
}

/// What a read of the collection's tags proves, for the per-object memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proven {
    /// This object holds the collection: later reconciles may skip reading the tags.
    Ours,
    /// The same object in another cluster holds it: a handover, trusted once the collection is
    /// gone.
    HandedOver,
    /// Anything else (another owner, nobody): nothing may be skipped next time.
    Nothing,
}

/// What the operator's configuration and memory say of an object, found before it is observed:
/// the region and account it uses and whether they or the policy refuse it.
pub struct Facts<'a> {
    pub uid: String,
    pub namespace: &'a str,
    /// The region in use (pinned, asked for or the default), and a conflicting spec.region.
    pub region: &'a str,
    pub region_conflict: Option<(String, String)>,
    /// The account the identity in use names, if it names one.
    pub account: Option<&'a str>,
    pub policy_denied: Option<String>,
    pub pin_refused: Option<String>,
    pub tags_due: bool,
    pub handover_proven: bool,
    pub cluster: Arc<ClusterIdentity>,
}

impl Observed {
    /// The object as the plan sees it, its status parsed once, before anything is asked of AWS.
    pub fn of(obj: &RekognitionCollection, facts: Facts<'_>) -> Self {
        let status = obj.status.clone().unwrap_or_default();
        let ready = obj.ready_condition();
        let synced = obj.synced_condition();
        let collection_id = obj.collection_id();
        let name = obj.metadata.name.clone().unwrap_or_default();
        // An ARN that names another collection, region or account is not this object's: it is
        // never used for a call (the collection is looked up by its ID instead).
        let arn = status
            .collection_arn
            .clone()
            .filter(|arn| names_collection(arn, facts.region, facts.account, &collection_id));
        Observed {
            claim: claim(&facts.cluster.name, facts.namespace, &name),
            object: format!("{}/{name}", facts.namespace),
            cluster: facts.cluster,
            uid: facts.uid,
            generation: obj.metadata.generation.unwrap_or(0),
            deleting: obj.metadata.deletion_timestamp.is_some(),
            has_finalizer: obj
                .metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == FINALIZER),
            collection_id,
            desired_tags: obj.spec.tags.clone(),
            deletion_policy: obj.spec.deletion_policy,
            management_policy: obj.spec.management_policy,
            region_conflict: facts.region_conflict,
            policy_denied: facts.policy_denied,
            pin_refused: facts.pin_refused,
            pinned: obj.recorded_pin().0.is_some(),
            paused: obj.paused(),
            requested: obj.pending_reconcile_request().map(str::to_owned),
            tags_due: facts.tags_due || obj.pending_reconcile_request().is_some(),
            handover_proven: facts.handover_proven,
            last: LastStatus {
                arn,
                created_at: status.created_at.clone(),
                reason: ready.and_then(|c| ReadyReason::parse(&c.reason)),
                message: ready.map(|c| c.message.clone()).unwrap_or_default(),
                reason_generation: ready.and_then(|c| c.observed_generation),
                observed_generation: status.observed_generation,
                paused: synced.is_some_and(|c| c.reason == ReadyReason::Paused.as_str()),
            },
            ..Observed::default()
        }
    }
}

/// Why tags are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagPurpose {
    /// Claim a collection that exists without an owner (managementPolicy Adopt).
    Adopt,
    /// Claim the collection this object's earlier incarnation in this cluster owned (a restore).
    Reclaim { previous_uid: String },
    /// Take the collection over from the same object in another cluster (a migration).
    TakeOver { cluster: String },
    /// Make AWS tags equal to spec.tags.
    Converge,
    /// Give up ownership: the object goes with deletionPolicy Retain, or turns ObserveOnly.
    Release,
}

/// The next thing to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    AddFinalizer,
    /// Create the collection with these tags (spec tags plus the ownership tag).
    Create {
        tags: Tags,
        recreate: bool,
    },
    Describe,
    ListTags {
        arn: String,
    },
    Tag {
        arn: String,
        tags: Tags,
        purpose: TagPurpose,
    },
    Untag {
        arn: String,
        keys: Vec<String>,
        purpose: TagPurpose,
    },
    Delete,
    /// Done with this object: remove the finalizer and let it go.
    RemoveFinalizer {
        reason: Release,
    },
    /// Nothing may be done until the spec changes; the status stays as it is.
    Wait,
    /// Paused by the annotation: say so (Synced False, Ready as it was) and wait for the object
    /// to change. No AWS call, and the finalizer stays.
    Pause {
        message: String,
    },
    /// Done for now: write this Ready reason and message.
    Finish {
        reason: ReadyReason,
        message: String,
    },
}

impl Step {
    /// Whether the step writes to AWS, which only a replica whose leadership holds may do.
    pub fn writes_to_aws(&self) -> bool {
        matches!(
            self,
            Self::Create { .. } | Self::Tag { .. } | Self::Untag { .. } | Self::Delete
        )
    }
}

/// Why an object is let go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// The collection was deleted, or was gone already.
    Deleted,
    /// The collection was kept (deletionPolicy Retain) and no longer carries our ownership tag.
    Retained,
    /// The object never owned a collection (refused, foreign or observe-only).
    NeverOwned,
    /// ObserveOnly objects need no finalizer.
    NotNeeded,
}

impl Observed {
    /// The tags a collection held by this object carries besides the owner tag.
    pub fn managed_tags(&self) -> Tags {
        managed_tags(&self.desired_tags, &self.claim)
    }

    fn owner_tags(&self) -> Tags {
        let mut tags = self.managed_tags();
        tags.insert(OWNER_TAG.to_owned(), self.uid.clone());
        tags
    }

    /// The tags that make this object the collection's holder: the owner tag, and the claim.
    fn claim_tags(&self) -> Tags {
        let mut tags = Tags::new();
        tags.insert(OWNER_TAG.to_owned(), self.uid.clone());
        if let Some(claim) = self.managed_tags().remove(CLAIM_TAG) {
            tags.insert(CLAIM_TAG.to_owned(), claim);
        }
        tags
    }

    /// Who holds the collection whose tags are `tags`.
    pub fn holder(&self, tags: &Tags) -> Holder {
        holder(tags, &self.uid, &self.claim, &self.cluster, self.owner_live)
    }

    /// What the collection's tags, as this reconcile knows them, prove for later reconciles.
    pub fn proven(&self) -> Proven {
        match self.tags.as_ref().map(|tags| self.holder(tags)) {
            Some(Holder::Us) => Proven::Ours,
            Some(Holder::SameObjectElsewhere { .. }) => Proven::HandedOver,
            _ => Proven::Nothing,
        }
    }

    fn arn(&self) -> Option<&str> {
        match &self.collection {
            Collection::Exists { arn: Some(arn), .. } => Some(arn),
            _ => None,
        }
    }
}

/// The keys that hold a claim: removed together when an object lets its collection go.
pub fn release_keys() -> Vec<String> {
    vec![OWNER_TAG.to_owned(), CLAIM_TAG.to_owned()]
}

/// Whether `arn` names the collection `collection_id` in `region`, in `account` when the identity
/// in use names one: `arn:<partition>:rekognition:<region>:<account>:collection/<id>`. The status
/// ARN is writable by tenants, so one that names anything else is not used for any call.
pub fn names_collection(
    arn: &str,
    region: &str,
    account: Option<&str>,
    collection_id: &str,
) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        [
            "arn",
            partition,
            "rekognition",
            arn_region,
            arn_account,
            resource,
        ] => {
            !partition.is_empty()
                && *arn_region == region
                && arn_account.len() == 12
                && arn_account.bytes().all(|b| b.is_ascii_digit())
                && account.is_none_or(|a| a == *arn_account)
                && resource.strip_prefix("collection/") == Some(collection_id)
        }
        _ => false,
    }
}

/// TagResource takes at most this many tags in one call.
pub const MAX_TAGS_PER_CALL: usize = 200;
/// UntagResource takes at most this many keys in one call.
pub const MAX_UNTAG_KEYS_PER_CALL: usize = 50;

/// The tags to set and the keys to remove so that `actual` becomes `desired`. Convergence never
/// removes the ownership tag, nor tags whose key starts with `aws:` (AWS reserves them: a
/// collection made by CloudFormation carries some, and AWS refuses to remove them).
pub fn tag_diff(desired: &Tags, actual: &Tags) -> (Tags, Vec<String>) {
    let to_set: Tags = desired
        .iter()
        .filter(|(key, value)| actual.get(*key) != Some(*value))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let to_remove = actual
        .keys()
        .filter(|key| {
            key.as_str() != OWNER_TAG && !key.starts_with("aws:") && !desired.contains_key(*key)
        })
        .cloned()
        .collect();
    (to_set, to_remove)
}

/// The next step for this object.
pub fn plan(o: &Observed) -> Step {
    if o.vanished {
        return plan_vanished(o);
    }
    if o.paused {
        return Step::Pause {
            message: if o.deleting && o.has_finalizer {
                format!(
                    "paused by the annotation {PAUSED_ANNOTATION}: the object is being deleted, and its collection is cleaned up once the annotation is removed"
                )
            } else {
                format!(
                    "paused by the annotation {PAUSED_ANNOTATION}: no AWS call until it is removed"
                )
            },
        };
    }
    if let Some(why) = &o.pin_refused
        && (o.has_finalizer || !o.deleting)
    {
        return Step::Finish {
            reason: ReadyReason::PolicyDenied,
            message: if o.deleting {
                format!(
                    "{why}. The object is being deleted: its collection is cleaned up once this is resolved"
                )
            } else {
                why.clone()
            },
        };
    }
    // Refused by the policy or the mapping and never sent to AWS: nothing to clean up, and no
    // call to make where the platform team does not allow one.
    if o.deleting && o.policy_denied.is_some() && !o.pinned {
        return if o.has_finalizer {
            Step::RemoveFinalizer {
                reason: Release::NeverOwned,
            }
        } else {
            Step::Wait
        };
    }
    if o.deleting {
        return plan_deletion(o);
    }
    if let Some((pinned, asked)) = &o.region_conflict {
        return Step::Finish {
            reason: ReadyReason::RegionConflict,
            message: format!(
                "spec.region {asked} differs from {pinned}, where this object's collection lives (status.region); a collection never moves: set spec.region to {pinned} or remove it"
            ),
        };
    }
    if let Some(why) = &o.policy_denied {
        return Step::Finish {
            reason: ReadyReason::PolicyDenied,
            message: why.clone(),
        };
    }
    match o.management_policy {
        ManagementPolicy::ObserveOnly => plan_observe(o),
        ManagementPolicy::Manage | ManagementPolicy::Adopt => plan_manage(o),
    }
}

fn plan_observe(o: &Observed) -> Step {
    if o.has_finalizer {
        // Turned ObserveOnly: give up ownership before the finalizer goes.
        return plan_release(o, Release::NotNeeded);
    }
    match &o.collection {
        Collection::Unknown => Step::Describe,
        Collection::Missing => Step::Finish {
            reason: ReadyReason::NotFound,
            message: format!(
                "no collection {} exists; ObserveOnly never creates one",
                o.collection_id
            ),
        },
        Collection::Exists {
            description: None, ..
        } => Step::Describe,
        Collection::Exists { .. } => Step::Finish {
            reason: ReadyReason::Available,
            message: format!("collection {} exists (observed only)", o.collection_id),
        },
    }
}

fn plan_manage(o: &Observed) -> Step {
    if !o.has_finalizer {
        return Step::AddFinalizer;
    }
    // A refusal in the status is not trusted: anyone with status access can write one, and one
    // that held would stop drift repair. The gate keeps a refusal this process found from coming
    // back before a spec change; whatever reaches the plan is looked at again in AWS.
    let arn = match &o.collection {
        // A collection the status never recorded is created straight away: CreateCollection's
        // "already exists" answer is as good as a describe, and saves a call for new objects.
        Collection::Unknown if o.last.arn.is_none() => {
            return Step::Create {
                tags: o.owner_tags(),
                recreate: false,
            };
        }
        Collection::Unknown => return Step::Describe,
        // Handed over to another cluster, which since deleted the collection: that is its
        // decision to make, not this object's. Only a handover this process saw in the tags
        // counts; one the status alone claims may be forged, and the collection is recreated.
        Collection::Missing
            if o.last.reason == Some(ReadyReason::HandedOver) && o.handover_proven =>
        {
            return Step::Finish {
                reason: ReadyReason::HandedOver,
                message: format!(
                    "collection {} was handed over to another cluster and no longer exists; this object never recreates it",
                    o.collection_id
                ),
            };
        }
        Collection::Missing => {
            return Step::Create {
                tags: o.owner_tags(),
                recreate: o.last.arn.is_some(),
            };
        }
        Collection::Exists { arn: None, .. } => return Step::Describe,
        Collection::Exists { arn: Some(arn), .. } => arn.clone(),
    };

    // Ownership and tags are checked when the status never confirmed this collection, when the
    // spec changed since the last full reconcile, when CreateCollection found the ID taken, and
    // when the collection is not the one the status recorded (another creation time): ownership is
    // proven, never assumed. A steady object skips the check unless its tag check is due.
    let spec_changed = o.last.observed_generation != Some(o.generation);
    let another_collection = match (&o.collection, &o.last.created_at) {
        (
            Collection::Exists {
                description: Some(description),
                ..
            },
            Some(recorded),
        ) => description
            .created_at
            .is_some_and(|t| &t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true) != recorded),
        _ => false,
    };
    // A collection created by this object is first described at its first resync: until then the
    // status holds no creation time to tell it from one made by somebody else under the same ID
    // meanwhile, so the first description is proven by the tags too.
    let first_description = o.last.created_at.is_none()
        && matches!(
            &o.collection,
            Collection::Exists {
                description: Some(_),
                ..
            }
        );
    // A refusal records its generation as observed (GitOps tools judge it at that spec) though
    // nothing of the spec reached AWS: once lifted, the spec is applied in full.
    let after_refusal = o
        .last
        .reason
        .is_some_and(ReadyReason::waits_for_spec_change);
    let must_check = !o.created
        && (o.last.arn.is_none()
            || spec_changed
            || after_refusal
            || o.already_existed
            || another_collection
            || first_description
            || o.tags_due);
    if must_check && o.tags.is_none() {
        return Step::ListTags { arn };
    }
    if let Some(tags) = &o.tags {
        match o.holder(tags) {
            Holder::Us => {}
            Holder::Nobody if o.management_policy == ManagementPolicy::Adopt => {
                return Step::Tag {
                    arn,
                    tags: o.claim_tags(),
                    purpose: TagPurpose::Adopt,
                };
            }
            Holder::Predecessor { uid } => {
                return Step::Tag {
                    arn,
                    tags: o.claim_tags(),
                    purpose: TagPurpose::Reclaim { previous_uid: uid },
                };
            }
            Holder::Migrating { cluster, .. } => {
                return Step::Tag {
                    arn,
                    tags: o.claim_tags(),
                    purpose: TagPurpose::TakeOver { cluster },
                };
            }
            // The same object elsewhere holds it: handed over, if this object held it before.
            // Held it (the status recorded the collection as this object's), and no longer does.
            Holder::SameObjectElsewhere { cluster, .. }
                if o.last.arn.is_some() && o.last.reason != Some(ReadyReason::AwaitingHandover) =>
            {
                return Step::Finish {
                    reason: ReadyReason::HandedOver,
                    message: format!(
                        "collection {} now belongs to {} in cluster {cluster}: this object no longer manages it, and never deletes, retags or recreates it",
                        o.collection_id, o.object
                    ),
                };
            }
            Holder::SameObjectElsewhere { cluster, .. } => {
                return Step::Finish {
                    reason: ReadyReason::AwaitingHandover,
                    message: format!(
                        "collection {} belongs to {} in cluster {cluster}; to move it to this cluster, the platform team lists {cluster} in the operator's takeOverFrom",
                        o.collection_id, o.object
                    ),
                };
            }
            Holder::Nobody => {
                return Step::Finish {
                    reason: ReadyReason::AlreadyExists,
                    message: format!(
                        "a collection {} already exists and is not owned by this object; set managementPolicy: Adopt to claim it, or choose another spec.collectionId",
                        o.collection_id
                    ),
                };
            }
            Holder::Other { uid, cluster } => {
                let whose = match cluster {
                    Some(cluster) if cluster != o.cluster.name => {
                        format!("another object (uid {uid}) of cluster {cluster}")
                    }
                    Some(_) => format!("another object of this cluster (uid {uid})"),
                    None => format!("another object (uid {uid})"),
                };
                return Step::Finish {
                    reason: ReadyReason::AlreadyExists,
                    message: format!(
                        "collection {} is owned by {whose}; choose another spec.collectionId",
                        o.collection_id
                    ),
                };
            }
        }
        // Remove before adding, so a rename at the tag limit never exceeds it; in chunks of what
        // one call takes.
        let (to_set, to_remove) = tag_diff(&o.managed_tags(), tags);
        if !to_remove.is_empty() {
            return Step::Untag {
                arn,
                keys: to_remove
                    .into_iter()
                    .take(MAX_UNTAG_KEYS_PER_CALL)
                    .collect(),
                purpose: TagPurpose::Converge,
            };
        }
        if !to_set.is_empty() {
            return Step::Tag {
                arn,
                tags: to_set.into_iter().take(MAX_TAGS_PER_CALL).collect(),
                purpose: TagPurpose::Converge,
            };
        }
    }
    // A collection this reconcile created is Ready from CreateCollection's answer (ARN, face
    // model); its creation time and counts come with the next describe, on the describe budget.
    if let Collection::Exists {
        description: None, ..
    } = o.collection
        && !o.created
    {
        return Step::Describe;
    }
    let adopted = o.adopted || (o.last.reason == Some(ReadyReason::Adopted) && !o.created);
    if adopted {
        Step::Finish {
            reason: ReadyReason::Adopted,
            message: format!(
                "collection {} was adopted and is managed by this object",
                o.collection_id
            ),
        }
    } else {
        Step::Finish {
            reason: ReadyReason::Available,
            message: format!("collection {} is available", o.collection_id),
        }
    }
}

fn plan_deletion(o: &Observed) -> Step {
    if !o.has_finalizer {
        return Step::Wait;
    }
    plan_cleanup(o)
}

/// A vanished object's collection is cleaned up as a deletion's would be; where a deletion would
/// let its finalizer go, there is no object left to release.
fn plan_vanished(o: &Observed) -> Step {
    match plan_cleanup(o) {
        Step::RemoveFinalizer { .. } => Step::Wait,
        step => step,
    }
}

/// The collection's cleanup when its object goes: deleted or released as the deletionPolicy
/// says, and only if the tags say it is this object's.
fn plan_cleanup(o: &Observed) -> Step {
    if o.management_policy == ManagementPolicy::ObserveOnly {
        // Turned ObserveOnly and deleted before that was reconciled: release ownership first.
        return plan_release(o, Release::NeverOwned);
    }
    // Refused or foreign at this very spec: nothing was created for it, so no AWS call is needed.
    // Marking an object for deletion bumps its generation by exactly one, so the refusal still
    // describes the spec when it is one generation behind; any older and a spec change may have
    // led to a create that the status never recorded, so AWS is asked.
    // A policy refusal says nothing of the spec (it may have been a pin refusal since cleared):
    // those are decided above, by whether anything was ever sent to AWS.
    let refused_spec = o
        .last
        .reason
        .is_some_and(|r| r.waits_for_spec_change() && !r.is_policy_refusal())
        && o.last
            .reason_generation
            .is_some_and(|g| g + 1 >= o.generation);
    if refused_spec && o.last.arn.is_none() {
        return Step::RemoveFinalizer {
            reason: Release::NeverOwned,
        };
    }
    let arn = match (&o.collection, o.arn(), &o.last.arn) {
        (Collection::Missing, _, _) => {
            return Step::RemoveFinalizer {
                reason: Release::Deleted,
            };
        }
        (_, Some(arn), _) => arn.to_owned(),
        (Collection::Unknown, None, Some(last)) if o.tags.is_none() => {
            // ListTagsForResource answers NotFound for a missing collection, so it doubles as
            // the existence check.
            return Step::ListTags { arn: last.clone() };
        }
        (_, None, Some(last)) => last.clone(),
        (_, None, None) => return Step::Describe,
    };
    let Some(tags) = &o.tags else {
        return Step::ListTags { arn };
    };
    match o.holder(tags) {
        Holder::Us => match o.deletion_policy {
            DeletionPolicy::Delete => Step::Delete,
            DeletionPolicy::Retain => Step::Untag {
                arn,
                keys: present_keys(tags, release_keys()),
                purpose: TagPurpose::Release,
            },
        },
        // Never another's, whatever its claim: a restored object deleted before it reclaimed
        // leaves the collection to the orphan report.
        _ => Step::RemoveFinalizer {
            reason: match o.deletion_policy {
                DeletionPolicy::Retain if o.last.arn.is_some() => Release::Retained,
                _ => Release::NeverOwned,
            },
        },
    }
}

/// Those of `keys` that `tags` has.
fn present_keys(tags: &Tags, keys: Vec<String>) -> Vec<String> {
    keys.into_iter().filter(|k| tags.contains_key(k)).collect()
}

/// Gives up ownership of the collection, if this object holds it, then lets the finalizer go.
fn plan_release(o: &Observed, done: Release) -> Step {
    let arn = match (&o.collection, o.arn(), &o.last.arn) {
        (Collection::Missing, _, _) | (_, None, None) => {
            return Step::RemoveFinalizer { reason: done };
        }
        (_, Some(arn), _) => arn.to_owned(),
        (_, None, Some(last)) => last.clone(),
    };
    match &o.tags {
        None => Step::ListTags { arn },
        Some(tags) if o.holder(tags) == Holder::Us => Step::Untag {
            arn,
            keys: present_keys(tags, release_keys()),
            purpose: TagPurpose::Release,
        },
        Some(_) => Step::RemoveFinalizer { reason: done },
    }
}

#[cfg(test)]
mod tests;
