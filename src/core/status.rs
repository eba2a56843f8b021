//! What the status says after a reconcile, and which Events that change deserves. Pure, no I/O.
//!
//! Two conditions, as Crossplane's managed resources have them:
//! - `Ready`: can an application use the collection? True once it exists, is ours (or observed)
//!   and matches the spec. A failure that the operator retries on its own (throttling, an outage,
//!   missing permissions, a quota) never turns a Ready collection False: the collection is still
//!   there and usable.
//! - `Synced`: did the operator's last attempt succeed? False with the failure's reason and AWS's
//!   message while the operator retries or waits; True (with Ready's reason) after a clean
//!   reconcile. So the reason of `Synced` is always the one to show: the failure when there is
//!   one, else what Ready says.
//!
//! And `Stalled`, for kstatus (Flux health checks, cli-utils, kubectl-based tools): True while the
//! object waits for a person (a refusal), so kstatus says Failed at once and a GitOps rollout fails
//! instead of timing out; absent otherwise, as kstatus' abnormal-true conditions are. kstatus reads
//! the rest from what is there: an unobserved generation or `Ready` False is InProgress (the
//! operator retries by itself), `Ready` True is Current.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::core::plan::{Collection, Observed, TagPurpose};
use crate::model::collection::{CollectionDescription, CreatedCollection};
use crate::model::crd::{CollectionStatus, Condition, ReadyReason};
use crate::model::identity::{RoleTarget, collection_account, role_account};

pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";
pub const STALLED: &str = "Stalled";

/// How the reconcile ended, as far as the status is concerned.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The plan finished with this reason (Available, Adopted, NotFound, or a refusal such as
    /// AlreadyExists that waits for a spec change).
    Finished(ReadyReason, String),
    /// Work under way that the user should see before it ends: Creating or Deleting.
    InProgress(ReadyReason, String),
    /// An AWS call failed; the reason comes from the error's disposition.
    Failed(ReadyReason, String),
    /// The object is paused: Synced False with reason Paused, Ready as it was.
    Paused(String),
}

impl Outcome {
    /// Whether this outcome comes of talking to AWS, so that the region and identity the object
    /// used are pinned in its status. A refusal before any call (the tenancy policy, the account
    /// mapping, a region conflict) and a pause pin nothing: the object may still go elsewhere.
    fn pins(&self) -> bool {
        match self {
            Self::Finished(reason, _) => !matches!(
                reason,
                ReadyReason::PolicyDenied | ReadyReason::RegionConflict
            ),
            Self::InProgress(..) | Self::Failed(..) => true,
            Self::Paused(_) => false,
        }
    }
}

/// Everything the status is made from.
pub struct Inputs<'a> {
    pub previous: Option<&'a CollectionStatus>,
    pub observed: &'a Observed,
    /// What CreateCollection answered, when this reconcile created the collection.
    pub created: Option<&'a CreatedCollection>,
    pub region: &'a str,
    /// The role assumed for the object's account; None: the operator's own identity.
    pub role: Option<&'a RoleTarget>,
    /// AWS matches this generation's spec: observedGeneration moves to it.
    pub complete: bool,
    pub now: DateTime<Utc>,
}

/// The status a reconcile leads to.
pub fn compose(inputs: &Inputs<'_>, outcome: &Outcome) -> CollectionStatus {
    let previous = inputs.previous.cloned().unwrap_or_default();
    let o = inputs.observed;
    let description: Option<&CollectionDescription> = match &o.collection {
        Collection::Exists { description, .. } => description.as_ref(),
        _ => None,
    };
    let (ready, synced) = conditions(&previous, o.generation, o.deleting, outcome, inputs.now);
    // Fields that describe a collection come from one collection: none when it is missing or not
    // ours; a collection created by this reconcile is new (no faces, no users, no creation time
    // until it is described); else the description, or what the status already held.
    let missing = o.collection == Collection::Missing;
    // A collection that is not this object's, nor ever was: another object's (AlreadyExists), or
    // the same object's in another cluster, awaiting a handover. Recording its ARN would read, at
    // the next reconcile, as "this object held it" (see HandedOver).
    let foreign = ready.reason == ReadyReason::AlreadyExists.as_str()
        || ready.reason == ReadyReason::AwaitingHandover.as_str();
    let new = inputs.created.is_some() && description.is_none();
    let arn = match &o.collection {
        Collection::Exists { arn: Some(arn), .. } => Some(arn.clone()),
        Collection::Missing => None,
        _ => previous.collection_arn.clone(),
    };
    let described = |value: Option<String>| if missing || foreign { None } else { value };
    // The region and role are pinned by the first outcome that talked to AWS and never change
    // after that (the actor uses the pinned ones).
    let pinned = previous.region.is_some() || outcome.pins();
    let role_arn = if previous.region.is_some() {
        previous.role_arn.clone()
    } else if pinned {
        inputs.role.map(|r| r.role_arn.clone())
    } else {
        None
    };
    let collection_arn = described(arn);
    let account_id = role_arn
        .as_deref()
        .and_then(role_account)
        .or_else(|| collection_arn.as_deref().and_then(collection_account))
        .map(str::to_owned)
        .or(previous.account_id.clone());
    let count = |described: Option<i64>, before: Option<i64>| {
        if missing || foreign {
            None
        } else if new {
            Some(0)
        } else {
            described.or(before)
        }
    };
    CollectionStatus {
        collection_arn,
        face_model_version: described(
            description
                .and_then(|d| d.face_model_version.clone())
                .or_else(|| inputs.created.and_then(|c| c.face_model_version.clone()))
                .or(previous.face_model_version.clone()),
        ),
        collection_id: Some(o.collection_id.clone()),
        region: pinned.then(|| inputs.region.to_owned()),
        role_arn,
        account_id,
        face_count: count(description.and_then(|d| d.face_count), previous.face_count),
        user_count: count(description.and_then(|d| d.user_count), previous.user_count),
        created_at: if new {
            None
        } else {
            described(
                description
                    .and_then(|d| d.created_at)
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                    .or(previous.created_at.clone()),
            )
        },
        // The request this reconcile handled; a paused object handles none.
        last_handled_reconcile_at: match outcome {
            Outcome::Paused(_) => previous.last_handled_reconcile_at.clone(),
            _ => o
                .requested
                .clone()
                .or(previous.last_handled_reconcile_at.clone()),
        },
        observed_generation: if inputs.complete {
            Some(o.generation)
        } else {
            previous.observed_generation
        },
        conditions: {
            let stalled = stalled_condition(&previous, o.generation, inputs.now, &synced, outcome);
            [ready, synced].into_iter().chain(stalled).collect()
        },
    }
}

/// `Stalled` (see the module docs), from what Synced says after `outcome`.
fn stalled_condition(
    previous: &CollectionStatus,
    generation: i64,
    now: DateTime<Utc>,
    synced: &Condition,
    outcome: &Outcome,
) -> Option<Condition> {
    if synced.status == "True" || matches!(outcome, Outcome::Paused(_)) {
        return None;
    }
    let reason = ReadyReason::parse(&synced.reason).filter(|r| r.waits_for_spec_change())?;
    let message = synced.message.clone();
    Some(condition(
        previous,
        generation,
        now,
        STALLED,
        ("True", reason, message),
    ))
}

/// The Ready and Synced conditions after `outcome`.
fn conditions(
    previous: &CollectionStatus,
    generation: i64,
    deleting: bool,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> (Condition, Condition) {
    let was_ready = previous
        .condition(READY)
        .filter(|c| c.status == "True")
        .and_then(|c| ReadyReason::parse(&c.reason).map(|r| (r, c.message.clone())));
    let (ready, synced): ((&str, ReadyReason, String), (&str, ReadyReason, String)) = match outcome
    {
        Outcome::Finished(reason, message) if reason.is_ready() => (
            ("True", *reason, message.clone()),
            ("True", *reason, message.clone()),
        ),
        Outcome::Finished(reason, message) if reason.waits_for_spec_change() => (
            ("False", *reason, message.clone()),
            ("False", *reason, message.clone()),
        ),
        Outcome::Finished(reason, message) => (
            ("False", *reason, message.clone()),
            ("True", *reason, message.clone()),
        ),
        Outcome::InProgress(reason, message) => (
            ("False", *reason, message.clone()),
            ("Unknown", *reason, message.clone()),
        ),
        Outcome::Paused(message) => {
            // Ready keeps its last value, condition and all: a pause says nothing about the
            // collection.
            let ready = match previous.condition(READY) {
                Some(kept) => kept.clone(),
                None => Condition {
                    type_: READY.to_owned(),
                    status: "False".to_owned(),
                    reason: ReadyReason::Paused.as_str().to_owned(),
                    message: message.clone(),
                    last_transition_time: now.to_rfc3339_opts(SecondsFormat::Secs, true),
                    observed_generation: Some(generation),
                },
            };
            return (
                ready,
                condition(
                    previous,
                    generation,
                    now,
                    SYNCED,
                    ("False", ReadyReason::Paused, message.clone()),
                ),
            );
        }
        Outcome::Failed(reason, message) => {
            let ready = if deleting {
                (
                    "False",
                    ReadyReason::Deleting,
                    "cleaning up the collection".to_owned(),
                )
            } else if reason.waits_for_spec_change() {
                ("False", *reason, message.clone())
            } else if let Some((was, was_message)) = was_ready {
                // Still there and usable: only Synced tells of the failure.
                ("True", was, was_message)
            } else {
                ("False", *reason, message.clone())
            };
            (ready, ("False", *reason, message.clone()))
        }
    };
    (
        condition(previous, generation, now, READY, ready),
        condition(previous, generation, now, SYNCED, synced),
    )
}

/// A condition of `type_`, keeping its transition time when its status did not change.
fn condition(
    previous: &CollectionStatus,
    generation: i64,
    now: DateTime<Utc>,
    type_: &str,
    (status, reason, message): (&str, ReadyReason, String),
) -> Condition {
    let last_transition_time = match previous.condition(type_) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => now.to_rfc3339_opts(SecondsFormat::Secs, true),
    };
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.as_str().to_owned(),
        message,
        last_transition_time,
        observed_generation: Some(generation),
    }
}

/// An Event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// Events for a status change, on transitions only: a Warning when `Synced` enters a failure
/// reason it did not have, a Normal `Recovered` when it turns True after a failure. Never one per
/// retry. Deletion in progress is not a failure to warn about; a pause is the user's own doing
/// (Normal `Paused`, then `Resumed`).
pub fn transition_events(
    previous: Option<&CollectionStatus>,
    next: &CollectionStatus,
) -> Vec<Notice> {
    let before = previous.and_then(|s| s.condition(SYNCED));
    let Some(after) = next.condition(SYNCED) else {
        return vec![];
    };
    let failed_before = before.filter(|c| c.status == "False");
    let paused = ReadyReason::Paused.as_str();
    let was_paused = failed_before.is_some_and(|c| c.reason == paused);
    match after.status.as_str() {
        "False" if after.reason == paused && !was_paused => vec![Notice {
            warning: false,
            reason: "Paused".into(),
            note: after.message.clone(),
        }],
        "False"
            if failed_before.map(|c| c.reason.as_str()) != Some(after.reason.as_str())
                && after.reason != ReadyReason::Deleting.as_str()
                && after.reason != paused =>
        {
            vec![Notice {
                warning: true,
                reason: after.reason.clone(),
                note: after.message.clone(),
            }]
        }
        "True" | "Unknown" if was_paused => vec![Notice {
            warning: false,
            reason: "Resumed".into(),
            note: "the pause annotation is gone; reconciling again".into(),
        }],
        "True" if failed_before.is_some() => vec![Notice {
            warning: false,
            reason: "Recovered".into(),
            note: format!(
                "reconciled again after {}",
                failed_before.map(|c| c.reason.as_str()).unwrap_or_default()
            ),
        }],
        _ => vec![],
    }
}

/// An AWS write the operator carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acted<'a> {
    Created {
        id: &'a str,
        region: &'a str,
        account: Option<&'a str>,
    },
    Recreated {
        id: &'a str,
    },
    Adopted {
        id: &'a str,
    },
    Reclaimed {
        id: &'a str,
        previous_uid: &'a str,
    },
    TakenOver {
        id: &'a str,
        cluster: &'a str,
    },
    TagsSet {
        keys: Vec<&'a str>,
    },
    TagsRemoved {
        keys: Vec<&'a str>,
    },
    Retained {
        id: &'a str,
    },
    Released {
        id: &'a str,
    },
    Deleted {
        id: &'a str,
    },
}

/// What a TagResource call did, by why the plan asked for it.
pub fn tagged<'a>(purpose: &'a TagPurpose, id: &'a str, keys: Vec<&'a str>) -> Acted<'a> {
    match purpose {
        TagPurpose::Adopt => Acted::Adopted { id },
        TagPurpose::Reclaim { previous_uid } => Acted::Reclaimed { id, previous_uid },
        TagPurpose::TakeOver { cluster } => Acted::TakenOver { id, cluster },
        TagPurpose::Converge | TagPurpose::Release => Acted::TagsSet { keys },
    }
}

/// What an UntagResource call did, by why the plan asked for it: a release while the object is
/// being deleted keeps the collection (`Retain`).
pub fn untagged<'a>(
    purpose: &TagPurpose,
    deleting: bool,
    id: &'a str,
    keys: Vec<&'a str>,
) -> Acted<'a> {
    match purpose {
        TagPurpose::Release if deleting => Acted::Retained { id },
        TagPurpose::Release => Acted::Released { id },
        _ => Acted::TagsRemoved { keys },
    }
}

/// The Normal Event that tells of an AWS write.
pub fn action_event(acted: &Acted<'_>) -> Notice {
    let (reason, note) = match acted {
        Acted::Created {
            id,
            region,
            account,
        } => (
            "Created",
            match account {
                Some(account) => format!("created collection {id} in {region}, account {account}"),
                None => format!("created collection {id} in {region}"),
            },
        ),
        Acted::Recreated { id } => (
            "Recreated",
            format!("collection {id} was missing in AWS and was created again"),
        ),
        Acted::Adopted { id } => ("Adopted", format!("claimed existing collection {id}")),
        Acted::Reclaimed { id, previous_uid } => (
            "Reclaimed",
            format!(
                "reclaimed collection {id}: it was owned by this object's earlier incarnation (uid {previous_uid}), which no longer exists in this cluster"
            ),
        ),
        Acted::TakenOver { id, cluster } => (
            "TakenOver",
            format!("took collection {id} over from the same object in cluster {cluster}"),
        ),
        Acted::TagsSet { keys } => ("TagsUpdated", format!("set tags {}", keys.join(", "))),
        Acted::TagsRemoved { keys } => ("TagsUpdated", format!("removed tags {}", keys.join(", "))),
        Acted::Retained { id } => (
            "Retained",
            format!("kept collection {id} in AWS and removed the ownership tags"),
        ),
        Acted::Released { id } => (
            "Released",
            format!(
                "removed the ownership tags from collection {id}: this object only observes it now"
            ),
        ),
        Acted::Deleted { id } => ("Deleted", format!("deleted collection {id}")),
    };
    Notice {
        warning: false,
        reason: reason.to_owned(),
        note,
    }
}

#[cfg(test)]
mod tests;
