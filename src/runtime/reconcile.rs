//! The thin layer that carries out the plan: observe, ask [`plan`], act, repeat.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::adapters::aws::{
    CollectionApi, CreateOutcome, CreatedCollection, Described, Tags, Target,
};
use crate::core::backoff::BackoffPolicy;
use crate::core::error::{Error, Retry, disposition};
use crate::core::ownership::{ClusterIdentity, Holder};
use crate::core::placement::{Authority, Placement, place};
use crate::core::plan::{Collection, Facts, Observed, Step, TagPurpose, plan, tag_diff};
use crate::core::policy::TenancyPolicy;
use crate::core::schedule::Priority;
use crate::core::schedule::{
    Comeback, Due, Gate, Remembered, Trigger, after_finish, gate, tags_due,
};
use crate::core::status::{self, Acted, Notice, Outcome, action_event};
use crate::model::crd::OWNER_TAG;
use crate::model::crd::{
    CollectionStatus, FINALIZER, REGION_PIN_ANNOTATION, ROLE_PIN_ANNOTATION, ReadyReason,
    RekognitionCollection,
};
use crate::model::identity::Identity;
use crate::runtime::leader::Fence;
use crate::runtime::mapping::MappingWatch;
use crate::runtime::memory::Memory;
use crate::runtime::metrics::Metrics;
use crate::sync::{read, write};

/// The field manager for everything the operator writes.
pub const FIELD_MANAGER: &str = "rekognition-operator";

/// Steps one reconcile may take; the longest path (create, describe, tag, untag…) needs fewer.
const MAX_STEPS: usize = 12;

/// What every reconcile shares.
pub struct Context<A> {
    pub client: kube::Client,
    pub aws: A,
    pub default_region: String,
    /// Who publishes Events. A Recorder is made per Event: kube-runtime's Recorder caches every
    /// Event it published for six minutes (to count repeats as a series), which a heap profile
    /// showed as the largest per-object cost after a burst (7.4 KiB per object of 16); this
    /// operator publishes on transitions only, so there are no repeats to count.
    pub reporter: Reporter,
    pub metrics: Metrics,
    pub resync_interval: Duration,
    /// How often a steady collection's tags are read back too; `None`: only on spec changes.
    pub tag_check_interval: Option<Duration>,
    /// What this process remembers per object: next resync, backoff, release.
    pub memory: Arc<Memory>,
    /// The platform team's tenancy policy.
    pub policy: TenancyPolicy,
    /// Whether this replica may still write to AWS (leadership, by its own clock).
    pub fence: Arc<Fence>,
    /// The platform team's mapping from namespace to AWS account (IAM role).
    pub accounts: MappingWatch,
    /// Namespaces without a mapping are refused (PolicyDenied) rather than served with the
    /// operator's own identity.
    pub require_mapping: bool,
    /// Which cluster installation this is, written into every claim.
    pub cluster: Arc<ClusterIdentity>,
    /// The watch cache of objects, while the controller runs: whether a UID is a live object.
    pub objects: LiveObjects,
    /// The (account, region) pairs in use, for the orphan inventory, and what it found.
    pub inventory: Arc<crate::core::orphans::Inventory>,
}

/// Answers whether a UID is a live object in this cluster, from the controller's watch cache.
#[derive(Clone, Default)]
pub struct LiveObjects(
    Arc<std::sync::RwLock<Option<kube::runtime::reflector::Store<RekognitionCollection>>>>,
);

impl LiveObjects {
    pub fn attach(&self, store: Option<kube::runtime::reflector::Store<RekognitionCollection>>) {
        *write(&self.0) = store;
    }

    /// Whether `uid` is an object in the watch cache; without a cache, every UID counts as live
    /// (nothing is reclaimed on a guess).
    pub fn is_live(&self, uid: &str) -> bool {
        match &*read(&self.0) {
            Some(store) => store
                .state()
                .iter()
                .any(|o| o.metadata.uid.as_deref() == Some(uid)),
            None => true,
        }
    }
}

/// Reconciles one object. Wraps the work in a span that carries namespace, name and collection ID.
pub async fn reconcile<A: CollectionApi>(
    obj: Arc<RekognitionCollection>,
    ctx: Arc<Context<A>>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let uid = obj.uid().ok_or(Error::MalformedObject("uid"))?;
    // What this process remembers of the object, read once for the gate and the plan.
    let remembered = ctx.memory.recall(&uid);
    let priority = match admit(&obj, &ctx, &uid, remembered) {
        Ok(priority) => priority,
        Err(action) => return Ok(action),
    };
    let span = info_span!(
        "reconcile",
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        collection_id = %obj.collection_id(),
    );
    // Calls queue in the namespace's lane of each rate limiter: namespaces sharing an account
    // share its budget fairly.
    let tenant: Arc<str> = Arc::from(obj.namespace().unwrap_or_default());
    let work = async {
        Reconciler::new(&obj, &ctx, priority, remembered)?
            .run()
            .await
    };
    let result = crate::adapters::rate::as_tenant(tenant, work.instrument(span)).await;
    let label = match &result {
        Ok(_) => "ok",
        Err(error) => error.category(),
    };
    ctx.metrics.observe_reconcile(label, started.elapsed());
    if result.is_ok() {
        ctx.memory.succeeded(&uid);
    }
    if obj.pending_reconcile_request().is_some() && !obj.paused() {
        ctx.memory.request_handled(&uid, Instant::now());
    }
    result
}

/// Passes the trigger through the gate: the priority it may run with, or the action that ends it
/// without a reconcile.
fn admit<A>(
    obj: &RekognitionCollection,
    ctx: &Context<A>,
    uid: &str,
    remembered: Remembered,
) -> Result<Priority, Action> {
    let now = Instant::now();
    let phase = resync_delay(uid, ctx.resync_interval, SystemTime::now());
    let takes_over = !ctx.cluster.take_over_from.is_empty();
    let decision = gate(Trigger::of(obj), remembered, now, phase, takes_over);
    ctx.metrics.count_trigger(decision.label());
    match decision {
        Gate::Run(priority) => Ok(priority),
        Gate::Sleep(after) => Err(Action::requeue(after)),
        // The resync trigger (`operator::trigger_resyncs`) brings it back when due.
        Gate::Resync(after) => {
            let generation = obj.metadata.generation.unwrap_or(0);
            ctx.memory.settle(uid, generation, Due::At(now + after));
            Err(Action::await_change())
        }
        Gate::AwaitChange => Err(Action::await_change()),
    }
}

/// Decides when to retry after an error: driven by the error's class, never by its text. The
/// backoff is remembered, so no trigger of the same generation reaches AWS before it ends.
pub fn error_policy<A: CollectionApi>(
    obj: Arc<RekognitionCollection>,
    error: &Error,
    ctx: Arc<Context<A>>,
) -> Action {
    let delay = match obj.uid() {
        Some(uid) => ctx.memory.failed(
            &uid,
            obj.metadata.generation.unwrap_or(0),
            error.retry(),
            Instant::now(),
        ),
        None => BackoffPolicy::default().long.cap,
    };
    warn!(
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        collection_id = %obj.collection_id(),
        category = error.category(),
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed: {error}"
    );
    Action::requeue(delay)
}

struct Reconciler<'a, A> {
    obj: &'a RekognitionCollection,
    ctx: &'a Context<A>,
    api: Api<RekognitionCollection>,
    /// The account (identity) and region of the object's collection, pinned at first contact.
    target: Target,
    /// Which collection a proof of ownership is for (identity, region, collection ID).
    proof: u64,
    observed: Observed,
    created: Option<CreatedCollection>,
    /// Whether a user waits for this reconcile's describe, or it is a resync on spare budget.
    priority: Priority,
    /// The status this reconcile wrote last, if any.
    written: Option<CollectionStatus>,
    /// The object's resourceVersion after this reconcile's own writes, for compare-and-swap.
    resource_version: Option<String>,
    /// The object records its region and role (status, or the annotations written with the
    /// finalizer): a CreateCollection may go ahead without a status write first.
    pin_recorded: bool,
    /// This reconcile sent a CreateCollection or an Adopt claim: if the object turns out to be
    /// gone, what it made or claimed must be cleaned up here, as nothing will reconcile it again.
    claimed: bool,
}

impl<'a, A: CollectionApi> Reconciler<'a, A> {
    fn new(
        obj: &'a RekognitionCollection,
        ctx: &'a Context<A>,
        priority: Priority,
        remembered: Remembered,
    ) -> Result<Self, Error> {
        let namespace = obj.namespace().ok_or(Error::MalformedObject("namespace"))?;
        let uid = obj.uid().ok_or(Error::MalformedObject("uid"))?;
        let placement = placement(obj, ctx, &namespace)?;
        let proof = placement.proof_key(&obj.collection_id());
        let observed = observe(obj, ctx, (uid, remembered), &namespace, &placement, proof);
        ctx.inventory
            .note(&placement.target, observed.last.arn.as_deref());
        Ok(Self {
            obj,
            ctx,
            api: Api::namespaced(ctx.client.clone(), &namespace),
            target: placement.target,
            proof,
            observed,
            created: None,
            priority,
            written: None,
            resource_version: obj.resource_version(),
            pin_recorded: placement.pin_recorded,
            claimed: false,
        })
    }
}

/// Where the object's calls go and what refuses it, by the mapping and policy as they are now.
fn placement<A>(
    obj: &RekognitionCollection,
    ctx: &Context<A>,
    namespace: &str,
) -> Result<Placement, Error> {
    let mapping = ctx
        .accounts
        .current()
        .ok_or(Error::AccountMappingUnavailable)?;
    let labels = ctx.policy.labels(namespace);
    Ok(place(
        obj,
        namespace,
        &Authority {
            mapping: &mapping,
            rules: &ctx.policy.rules,
            namespace_labels: labels.as_ref(),
            default_region: &ctx.default_region,
            require_mapping: ctx.require_mapping,
        },
    ))
}

/// The object as the plan sees it: its status parsed once, with what the placement and this
/// process's memory of it tell.
fn observe<A>(
    obj: &RekognitionCollection,
    ctx: &Context<A>,
    (uid, remembered): (String, Remembered),
    namespace: &str,
    placement: &Placement,
    proof: u64,
) -> Observed {
    let tags_due = tags_due(
        remembered.tags_read_at,
        proof,
        ctx.tag_check_interval,
        Instant::now(),
    );
    Observed::of(
        obj,
        Facts {
            uid,
            namespace,
            region: &placement.target.region,
            region_conflict: placement.region_conflict.clone(),
            account: placement.target.identity.account_id(),
            policy_denied: placement.policy_denied.clone(),
            pin_refused: placement.pin_refused.clone(),
            tags_due,
            handover_proven: remembered.handed_over == Some(proof),
            cluster: ctx.cluster.clone(),
        },
    )
}

impl<A: CollectionApi> Reconciler<'_, A> {
    async fn run(mut self) -> Result<Action, Error> {
        match self.steps().await {
            Err(error) if error.object_gone() && self.claimed => {
                self.clean_up_after_vanished().await
            }
            other => other,
        }
    }

    async fn steps(&mut self) -> Result<Action, Error> {
        for _ in 0..MAX_STEPS {
            let step = plan(&self.observed);
            debug!(?step, "next step");
            match self.act(step).await {
                Ok(Some(action)) => return Ok(action),
                Ok(None) => {}
                Err(Error::Aws(error)) => return self.aws_failed(error).await,
                Err(error) => return Err(error),
            }
        }
        Err(Error::PlanDidNotSettle(MAX_STEPS))
    }

    /// Carries out one step. `Some(action)` ends the reconcile.
    async fn act(&mut self, step: Step) -> Result<Option<Action>, Error> {
        if step.writes_to_aws() && !self.ctx.fence.allows(Instant::now()) {
            return Err(Error::Fenced);
        }
        match step {
            Step::AddFinalizer => {
                self.set_finalizer(true).await?;
                self.observed.has_finalizer = true;
            }
            Step::Create { tags, recreate } => self.create(tags, recreate).await?,
            Step::Describe => return self.describe().await,
            Step::ListTags { arn } => self.list_tags(arn).await?,
            Step::Tag { arn, tags, purpose } => self.tag(arn, tags, purpose).await?,
            Step::Untag { arn, keys, purpose } => self.untag(arn, keys, purpose).await?,
            Step::Delete => self.delete().await?,
            Step::RemoveFinalizer { reason } => {
                debug!(?reason, "releasing object");
                self.set_finalizer(false).await?;
                if self.observed.deleting {
                    self.ctx.memory.released(&self.observed.uid);
                } else {
                    self.ctx.memory.unsettle(&self.observed.uid);
                }
                return Ok(Some(Action::await_change()));
            }
            Step::Wait => return Ok(Some(Action::await_change())),
            Step::Pause { message } => {
                self.write(Outcome::Paused(message), false).await?;
                // The gate lets the unpause (or the next change) through; nothing is due before.
                self.ctx.memory.unsettle(&self.observed.uid);
                return Ok(Some(Action::await_change()));
            }
            Step::Finish { reason, message } => {
                return self.finish(reason, message).await.map(Some);
            }
        }
        Ok(None)
    }

    /// Creates the collection, once the object records where it lives and, unless a write of
    /// this reconcile has just checked it, once a fresh read shows it still live at this
    /// generation.
    async fn create(&mut self, tags: Tags, recreate: bool) -> Result<(), Error> {
        // The finalizer's write pins the region and role; where it did not (the finalizer came
        // from elsewhere), the Creating status is the pin, and precedes any create.
        if !self.pin_recorded {
            let id = &self.observed.collection_id;
            let outcome =
                Outcome::InProgress(ReadyReason::Creating, format!("creating collection {id}"));
            self.write(outcome, false).await?;
            self.pin_recorded = true;
        }
        // The watch cache's copy may be behind: another replica (two operators on one namespace,
        // or a failover) may already have deleted this collection for a deletion this copy does
        // not show yet.
        if self.resource_version == self.obj.resource_version() {
            self.read_afresh().await?;
            if self.observed.deleting {
                return Ok(());
            }
        }
        self.claimed = true;
        self.send_create(tags, recreate).await
    }

    /// Describes the collection; a resync with no spare budget comes back later instead.
    async fn describe(&mut self) -> Result<Option<Action>, Error> {
        let priority = std::mem::replace(&mut self.priority, Priority::Foreground);
        let id = &self.observed.collection_id;
        self.observed.collection = match self.ctx.aws.describe(&self.target, id, priority).await? {
            Described::Exists(description) => Collection::Exists {
                arn: Some(description.arn.clone()),
                description: Some(description),
            },
            Described::Missing => Collection::Missing,
            Described::Deferred(after) => {
                debug!(
                    retry_in_ms = after.as_millis() as u64,
                    "resync deferred: no spare DescribeCollection budget"
                );
                return Ok(Some(Action::requeue(after)));
            }
        };
        Ok(None)
    }

    /// Reads the collection's tags: who owns it, and whether they match the spec.
    async fn list_tags(&mut self, arn: String) -> Result<(), Error> {
        match self.ctx.aws.list_tags(&self.target, &arn).await? {
            Some(tags) => {
                if self.observed.collection == Collection::Unknown {
                    self.observed.collection = Collection::Exists {
                        arn: Some(arn),
                        description: None,
                    };
                }
                self.observed.owner_live = tags
                    .get(OWNER_TAG)
                    .is_some_and(|u| *u != self.observed.uid && self.ctx.objects.is_live(u));
                self.observed.tags = Some(tags);
                self.remember_proof();
            }
            None => {
                self.observed.collection = Collection::Missing;
                self.observed.tags = None;
            }
        }
        Ok(())
    }

    async fn tag(&mut self, arn: String, tags: Tags, purpose: TagPurpose) -> Result<(), Error> {
        self.claimed |= matches!(
            purpose,
            TagPurpose::Adopt | TagPurpose::Reclaim { .. } | TagPurpose::TakeOver { .. }
        );
        self.ctx.aws.tag(&self.target, &arn, &tags).await?;
        crash_point!(AfterTagResource);
        let known = self.observed.tags.get_or_insert_with(BTreeMap::new);
        known.extend(tags.clone());
        self.remember_proof();
        self.observed.adopted |= purpose == TagPurpose::Adopt;
        let id = &self.observed.collection_id;
        let notice = action_event(&status::tagged(
            &purpose,
            id,
            tags.keys().map(String::as_str).collect(),
        ));
        if matches!(
            purpose,
            TagPurpose::Reclaim { .. } | TagPurpose::TakeOver { .. }
        ) {
            info!(arn = %arn, "{}", notice.note);
        }
        self.publish(notice).await;
        Ok(())
    }

    async fn untag(
        &mut self,
        arn: String,
        keys: Vec<String>,
        purpose: TagPurpose,
    ) -> Result<(), Error> {
        self.ctx.aws.untag(&self.target, &arn, &keys).await?;
        crash_point!(AfterUntagResource);
        if let Some(known) = self.observed.tags.as_mut() {
            for key in &keys {
                known.remove(key);
            }
        }
        let acted = status::untagged(
            &purpose,
            self.observed.deleting || self.observed.vanished,
            &self.observed.collection_id,
            keys.iter().map(String::as_str).collect(),
        );
        self.publish(action_event(&acted)).await;
        Ok(())
    }

    /// Deletes the collection. No status is written before the cleanup: an object whose cleanup
    /// succeeds is gone a moment later, and one whose cleanup fails says `Deleting` with the
    /// failure.
    async fn delete(&mut self) -> Result<(), Error> {
        let id = &self.observed.collection_id;
        let deleted = self.ctx.aws.delete(&self.target, id).await?;
        crash_point!(AfterDeleteCollection);
        if deleted {
            info!("deleted collection");
            self.publish(action_event(&Acted::Deleted { id })).await;
        }
        self.observed.collection = Collection::Missing;
        Ok(())
    }

    /// Writes the verdict and remembers when the object is due again, as the schedule says.
    async fn finish(&mut self, reason: ReadyReason, message: String) -> Result<Action, Error> {
        self.write(Outcome::Finished(reason, message), true).await?;
        let phase = resync_delay(
            &self.observed.uid,
            self.ctx.resync_interval,
            SystemTime::now(),
        );
        let (uid, generation) = (&self.observed.uid, self.observed.generation);
        Ok(match after_finish(reason, phase) {
            Comeback::Recheck(after) => {
                self.ctx.memory.unsettle(uid);
                Action::requeue(after)
            }
            Comeback::OnSpecChange => {
                self.ctx.memory.settle(uid, generation, Due::SpecChange);
                Action::await_change()
            }
            Comeback::Resync(after) => {
                let due = Due::At(Instant::now() + after);
                self.ctx.memory.settle(uid, generation, due);
                Action::await_change()
            }
        })
    }

    /// Reads the object from the API server (a quorum read): a deletion the watch cache has not
    /// delivered yet is observed, and a spec change ends this reconcile for a fresh one.
    async fn read_afresh(&mut self) -> Result<(), Error> {
        let fresh = self
            .api
            .get_opt(&self.obj.name_any())
            .await
            .map_err(Error::ReadObject)?;
        match fresh {
            Some(fresh) if fresh.uid().as_deref() == Some(self.observed.uid.as_str()) => {
                if fresh.metadata.deletion_timestamp.is_some() {
                    self.observed.deleting = true;
                    self.observed.has_finalizer = fresh.finalizers().iter().any(|f| f == FINALIZER);
                } else if fresh.metadata.generation != Some(self.observed.generation) {
                    return Err(Error::ObjectChanged);
                }
                self.resource_version = fresh.resource_version();
            }
            // Gone, or another object under the same name: nothing of this one is left to do.
            _ => {
                self.observed.deleting = true;
                self.observed.has_finalizer = false;
            }
        }
        Ok(())
    }

    /// Sends the CreateCollection and takes in what it answered.
    async fn send_create(&mut self, tags: Tags, recreate: bool) -> Result<(), Error> {
        let id = self.observed.collection_id.clone();
        match self.ctx.aws.create(&self.target, &id, &tags).await? {
            CreateOutcome::Created(created) => {
                crash_point!(AfterCreateCollection);
                let notice = action_event(&if recreate {
                    Acted::Recreated { id: &id }
                } else {
                    Acted::Created {
                        id: &id,
                        region: &self.target.region,
                        account: crate::model::identity::collection_account(&created.arn),
                    }
                });
                info!(arn = %created.arn, "{}", notice.note);
                self.publish(notice).await;
                self.observed.collection = Collection::Exists {
                    arn: Some(created.arn.clone()),
                    description: None,
                };
                self.observed.tags = Some(tags);
                self.remember_proof();
                self.observed.created = true;
                self.created = Some(created);
            }
            CreateOutcome::AlreadyExists => {
                self.observed.already_existed = true;
                self.observed.collection = Collection::Exists {
                    arn: None,
                    description: None,
                };
            }
        }
        Ok(())
    }

    /// The collection's tags were just read, or set by creating or claiming it: remembers, in this
    /// process, what they prove of the collection this reconcile uses. Only tags that name this
    /// object prove ownership; any other owner's leave nothing to skip next time.
    fn remember_proof(&self) {
        self.ctx.memory.tags_read(
            &self.observed.uid,
            Instant::now(),
            self.proof,
            self.observed.proven(),
        );
    }

    /// Records an AWS failure on the object, keeping what this reconcile learned, and lets its
    /// disposition decide whether the error policy retries it or the object waits for a spec
    /// change.
    async fn aws_failed(&mut self, error: crate::adapters::aws::AwsError) -> Result<Action, Error> {
        let disposition = disposition(error.kind);
        // A refusal has handled this generation, as far as it can be: observedGeneration moves to
        // it, so tools that judge the object at that spec (kstatus: Stalled) see the verdict.
        let complete = self.spec_applied() || disposition.retry == Retry::OnSpecChange;
        self.write(
            Outcome::Failed(disposition.reason, error.to_string()),
            complete,
        )
        .await?;
        if disposition.retry == Retry::OnSpecChange {
            self.ctx.memory.settle(
                &self.observed.uid,
                self.observed.generation,
                Due::SpecChange,
            );
            return Ok(Action::await_change());
        }
        Err(Error::Aws(error))
    }

    /// Whether AWS already matches this generation's spec (ownership and tags), even though the
    /// reconcile did not finish: then the next attempt need not list tags again.
    fn spec_applied(&self) -> bool {
        let o = &self.observed;
        if o.deleting {
            return false;
        }
        o.created
            || o.tags.as_ref().is_some_and(|tags| {
                o.holder(tags) == Holder::Us
                    && tag_diff(&o.managed_tags(), tags) == (BTreeMap::new(), vec![])
            })
    }

    /// The status as this reconcile last wrote or found it.
    fn current_status(&self) -> Option<&CollectionStatus> {
        self.written.as_ref().or(self.obj.status.as_ref())
    }

    /// The object was deleted while this reconcile created or claimed its collection. A finalizer
    /// does not rule that out: the API server can let a delete that raced with the finalizer's
    /// addition remove the object anyway, and a person can strip the finalizer. The plan, told
    /// the object vanished, cleans the collection up; transient AWS failures are retried here for
    /// a while, as the error says, since nothing will reconcile the object again.
    async fn clean_up_after_vanished(mut self) -> Result<Action, Error> {
        warn!(
            deletion_policy = ?self.observed.deletion_policy,
            "the object was deleted while its collection was being created or claimed; cleaning up"
        );
        self.observed.vanished = true;
        let backoff = BackoffPolicy::default().transient;
        let mut failures = 0;
        loop {
            match self.steps().await {
                Ok(action) => {
                    self.ctx.memory.released(&self.observed.uid);
                    return Ok(action);
                }
                Err(error) if error.retries_cleanup(failures) => {
                    let delay = backoff.delay(failures, &mut rand::rng());
                    tokio::time::sleep(delay).await;
                    failures += 1;
                }
                Err(error) => {
                    tracing::error!(
                        %error,
                        collection_id = %self.observed.collection_id,
                        "could not clean up after the deleted object: its collection may be left behind"
                    );
                    return Err(error);
                }
            }
        }
    }

    /// Writes the status `outcome` leads to, if it changed, and the Events of its transitions.
    async fn write(&mut self, outcome: Outcome, complete: bool) -> Result<(), Error> {
        if self.observed.vanished {
            return Ok(());
        }
        let previous = self.current_status().cloned();
        let next = status::compose(
            &status::Inputs {
                previous: previous.as_ref(),
                observed: &self.observed,
                created: self.created.as_ref(),
                region: &self.target.region,
                role: match &self.target.identity {
                    Identity::Role(role) => Some(role),
                    Identity::Own => None,
                },
                complete,
                now: Utc::now(),
            },
            &outcome,
        );
        if previous.as_ref() == Some(&next) {
            return Ok(());
        }
        if let Some(arn) = &next.collection_arn {
            self.ctx.inventory.note(&self.target, Some(arn));
        }
        self.patch_status(&next).await?;
        for notice in status::transition_events(previous.as_ref(), &next) {
            self.publish(notice).await;
        }
        self.written = Some(next);
        Ok(())
    }

    async fn patch_status(&mut self, status: &CollectionStatus) -> Result<(), Error> {
        let patch = json!({
            "apiVersion": RekognitionCollection::api_version(&()),
            "kind": RekognitionCollection::kind(&()),
            "status": status,
        });
        let updated = self
            .api
            .patch_status(
                &self.obj.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(Error::WriteStatus)?;
        self.resource_version = updated.resource_version();
        Ok(())
    }

    async fn set_finalizer(&mut self, present: bool) -> Result<(), Error> {
        // First contact: the same write pins the region and role, before any create.
        let pin = present && !self.pin_recorded;
        let patch = self.finalizer_patch(present, pin);
        match self
            .api
            .patch(
                &self.obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(updated) => {
                self.resource_version = updated.resource_version();
                self.pin_recorded |= pin;
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 404 && !present => Ok(()),
            Err(error) if present => Err(Error::AddFinalizer(error)),
            Err(error) => Err(Error::RemoveFinalizer(error)),
        }
    }

    /// The object's finalizers with or without the operator's, as a compare-and-swap on the
    /// resourceVersion (a concurrent change fails with a conflict and the reconcile is retried on
    /// fresh data); with `pin`, the region and role annotations too.
    fn finalizer_patch(&self, present: bool, pin: bool) -> serde_json::Value {
        let mut finalizers: Vec<String> = self
            .obj
            .finalizers()
            .iter()
            .filter(|f| f.as_str() != FINALIZER)
            .cloned()
            .collect();
        if present {
            finalizers.push(FINALIZER.to_owned());
        }
        let mut patch = json!({
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": self.resource_version,
            }
        });
        if pin {
            patch["metadata"]["annotations"] = json!({
                REGION_PIN_ANNOTATION: self.target.region,
                ROLE_PIN_ANNOTATION: self.target.identity.role_arn(),
            });
        }
        patch
    }

    async fn publish(&self, notice: Notice) {
        let event = Event {
            type_: if notice.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: notice.reason,
            note: Some(notice.note),
            action: "Reconcile".into(),
            secondary: None,
        };
        // Events are best effort: losing one must not fail or repeat the AWS work.
        let recorder = Recorder::new(self.ctx.client.clone(), self.ctx.reporter.clone());
        if let Err(error) = recorder.publish(&event, &self.obj.object_ref(&())).await {
            debug!(%error, "could not publish event");
        }
    }
}

/// When to describe the object again: each object gets a fixed phase within the resync
/// interval (from its UID), so objects created together do not resync together.
pub fn resync_delay(uid: &str, interval: Duration, now: SystemTime) -> Duration {
    let interval_ms = interval.as_millis().max(1) as u64;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut hasher);
    let phase = hasher.finish() % interval_ms;
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let mut wait = interval_ms - (now_ms.wrapping_sub(phase) % interval_ms);
    // Never come back almost at once: a tenth of an interval is the least.
    if wait < interval_ms / 10 {
        wait += interval_ms;
    }
    Duration::from_millis(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_lands_on_the_objects_phase_within_bounds() {
        let interval = Duration::from_secs(600);
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for uid in ["a", "b", "c", "d"] {
            let d = resync_delay(uid, interval, now);
            assert!(d >= interval / 10 && d <= interval + interval / 10, "{d:?}");
            // The next resync after that lands one interval later.
            let later = resync_delay(uid, interval, now + d + Duration::from_millis(1));
            assert!(
                later.abs_diff(interval) <= Duration::from_millis(1),
                "{later:?}"
            );
        }
    }

    #[test]
    fn resyncs_of_many_objects_spread_over_the_interval() {
        let interval = Duration::from_secs(600);
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut buckets = [0u32; 10];
        for i in 0..1000 {
            let d = resync_delay(&format!("uid-{i}"), interval, now);
            let slot = ((d.as_secs_f64() / interval.as_secs_f64()) * 10.0) as usize % 10;
            buckets[slot] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (60..=160).contains(&n)),
            "{buckets:?}"
        );
    }
}

#[cfg(test)]
mod scenarios;
