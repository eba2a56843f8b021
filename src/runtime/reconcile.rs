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

use crate::adapters::aws::{CollectionApi, CreateOutcome, CreatedCollection, Described, Target};
use crate::core::accounts::{Denied, Pin, resolve};
use crate::core::backoff::BackoffPolicy;
use crate::core::error::{Error, Retry, disposition};
use crate::core::ownership::{ClusterIdentity, Holder};
use crate::core::plan::{Collection, Facts, Observed, Step, TagPurpose, plan, tag_diff};
use crate::core::policy::TenancyPolicy;
use crate::core::schedule::Priority;
use crate::core::schedule::{Comeback, Due, Gate, Trigger, after_finish, gate, tags_due};
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

/// Transient AWS failures tolerated while cleaning up after an object that vanished.
const VANISHED_RETRIES: u32 = 6;

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
    let generation = obj.metadata.generation.unwrap_or(0);
    let now = Instant::now();
    let phase = resync_delay(&uid, ctx.resync_interval, SystemTime::now());
    let priority = match gate(
        Trigger::of(&obj),
        ctx.memory.recall(&uid),
        now,
        phase,
        !ctx.cluster.take_over_from.is_empty(),
    ) {
        Gate::Run(priority) => priority,
        Gate::Sleep(after) => return Ok(Action::requeue(after)),
        // The resync trigger (`operator::trigger_resyncs`) brings it back when due.
        Gate::Resync(after) => {
            ctx.memory.settle(&uid, generation, Due::At(now + after));
            return Ok(Action::await_change());
        }
        Gate::AwaitChange => return Ok(Action::await_change()),
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
    let work = async { Reconciler::new(&obj, &ctx, priority)?.run().await };
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
    /// The object is gone; the reconcile cleans up after it and writes no status.
    vanished: bool,
}

impl<'a, A: CollectionApi> Reconciler<'a, A> {
    fn new(
        obj: &'a RekognitionCollection,
        ctx: &'a Context<A>,
        priority: Priority,
    ) -> Result<Self, Error> {
        let namespace = obj.namespace().ok_or(Error::MalformedObject("namespace"))?;
        let uid = obj.uid().ok_or(Error::MalformedObject("uid"))?;
        let (recorded_region, pinned_role) = obj.recorded_pin();
        let (region, region_conflict) = pinned_region(
            obj.spec.region.as_deref(),
            recorded_region,
            &ctx.default_region,
        );
        let pin = Pin::of(recorded_region, pinned_role);
        // The mapping decides every identity, pinned or not: a pin is honoured only where the
        // mapping gives it to the namespace.
        let mapping = ctx
            .accounts
            .current()
            .ok_or(Error::AccountMappingUnavailable)?;
        let (identity, unmapped, pin_refused) =
            match resolve(&pin, &mapping, &namespace, ctx.require_mapping) {
                Ok(identity) => (identity, None, None),
                Err(Denied::Unmapped(why)) => (Identity::Own, Some(why), None),
                Err(Denied::Pin(why)) => (Identity::Own, None, Some(why)),
            };
        // The recorded region is a pin too: a region name the policy allows, or no call at all.
        let pin_refused =
            pin_refused.or_else(|| ctx.policy.rules.recorded_region_refusal(recorded_region));
        let proof = proof_key(&identity, &region, &obj.collection_id());
        let remembered = ctx.memory.recall(&uid);
        let observed = Observed::of(
            obj,
            Facts {
                uid: uid.clone(),
                namespace: &namespace,
                region: &region,
                region_conflict,
                account: identity.account_id(),
                policy_denied: ctx.policy.check(&namespace, obj, &region).or(unmapped),
                pin_refused,
                tags_due: tags_due(
                    remembered.tags_read_at,
                    proof,
                    ctx.tag_check_interval,
                    Instant::now(),
                ),
                handover_proven: remembered.handed_over == Some(proof),
                cluster: ctx.cluster.clone(),
            },
        );
        let target = Target { identity, region };
        ctx.inventory.note(&target, observed.last.arn.as_deref());
        Ok(Self {
            obj,
            ctx,
            api: Api::namespaced(ctx.client.clone(), &namespace),
            target,
            observed,
            created: None,
            priority,
            written: None,
            resource_version: obj.resource_version(),
            pin_recorded: recorded_region.is_some(),
            claimed: false,
            vanished: false,
        })
    }
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
        let writes_to_aws = matches!(
            step,
            Step::Create { .. } | Step::Tag { .. } | Step::Untag { .. } | Step::Delete
        );
        if writes_to_aws && !self.ctx.fence.allows(Instant::now()) {
            return Err(Error::Fenced);
        }
        let aws = &self.ctx.aws;
        let id = self.observed.collection_id.clone();
        match step {
            Step::AddFinalizer => {
                self.set_finalizer(true).await?;
                self.observed.has_finalizer = true;
            }
            Step::Create { tags, recreate } => {
                // The finalizer's write pins the region and role; where it did not (the finalizer
                // came from elsewhere), the Creating status is the pin, and precedes any create.
                if !self.pin_recorded {
                    let outcome = Outcome::InProgress(
                        ReadyReason::Creating,
                        format!("creating collection {id}"),
                    );
                    self.write(outcome, false).await?;
                    self.pin_recorded = true;
                }
                // The watch cache's copy may be behind: another replica (two operators on one
                // namespace, or a failover) may already have deleted this collection for a
                // deletion this copy does not show yet. A create that no write of this reconcile
                // has just checked against the object is made only for an object that a fresh
                // read shows still live at this generation.
                if self.resource_version == self.obj.resource_version() {
                    self.read_afresh().await?;
                    if self.observed.deleting {
                        return Ok(None);
                    }
                }
                self.claimed = true;
                self.create(tags, recreate).await?;
            }
            Step::Describe => {
                let priority = std::mem::replace(&mut self.priority, Priority::Foreground);
                self.observed.collection = match aws.describe(&self.target, &id, priority).await? {
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
            }
            Step::ListTags { arn } => match aws.list_tags(&self.target, &arn).await? {
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
            },
            Step::Tag { arn, tags, purpose } => {
                self.claimed |= matches!(
                    purpose,
                    TagPurpose::Adopt | TagPurpose::Reclaim { .. } | TagPurpose::TakeOver { .. }
                );
                aws.tag(&self.target, &arn, &tags).await?;
                crash_point!(AfterTagResource);
                let known = self.observed.tags.get_or_insert_with(BTreeMap::new);
                known.extend(tags.clone());
                self.remember_proof();
                let acted = match &purpose {
                    TagPurpose::Adopt => {
                        self.observed.adopted = true;
                        Acted::Adopted { id: &id }
                    }
                    TagPurpose::Reclaim { previous_uid } => Acted::Reclaimed {
                        id: &id,
                        previous_uid,
                    },
                    TagPurpose::TakeOver { cluster } => Acted::TakenOver { id: &id, cluster },
                    _ => Acted::TagsSet {
                        keys: tags.keys().map(String::as_str).collect(),
                    },
                };
                let notice = action_event(&acted);
                if matches!(
                    purpose,
                    TagPurpose::Reclaim { .. } | TagPurpose::TakeOver { .. }
                ) {
                    info!(arn = %arn, "{}", notice.note);
                }
                self.publish(notice).await;
            }
            Step::Untag { arn, keys, purpose } => {
                aws.untag(&self.target, &arn, &keys).await?;
                crash_point!(AfterUntagResource);
                if let Some(known) = self.observed.tags.as_mut() {
                    for key in &keys {
                        known.remove(key);
                    }
                }
                let acted = match purpose {
                    TagPurpose::Release if self.observed.deleting => Acted::Retained { id: &id },
                    TagPurpose::Release => Acted::Released { id: &id },
                    _ => Acted::TagsRemoved {
                        keys: keys.iter().map(String::as_str).collect(),
                    },
                };
                self.publish(action_event(&acted)).await;
            }
            // No status is written before the cleanup: an object whose cleanup succeeds is gone
            // a moment later, and one whose cleanup fails says `Deleting` with the failure.
            Step::Delete => {
                let deleted = aws.delete(&self.target, &id).await?;
                crash_point!(AfterDeleteCollection);
                if deleted {
                    info!("deleted collection");
                    self.publish(action_event(&Acted::Deleted { id: &id }))
                        .await;
                }
                self.observed.collection = Collection::Missing;
            }
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
                self.write(Outcome::Finished(reason, message), true).await?;
                let phase = resync_delay(
                    &self.observed.uid,
                    self.ctx.resync_interval,
                    SystemTime::now(),
                );
                let (uid, generation) = (&self.observed.uid, self.observed.generation);
                return Ok(Some(match after_finish(reason, phase) {
                    Comeback::Recheck(after) => {
                        self.ctx.memory.unsettle(uid);
                        Action::requeue(after)
                    }
                    Comeback::OnSpecChange => {
                        self.ctx.memory.settle(uid, generation, Due::SpecChange);
                        Action::await_change()
                    }
                    Comeback::Resync(after) => {
                        self.ctx
                            .memory
                            .settle(uid, generation, Due::At(Instant::now() + after));
                        Action::await_change()
                    }
                }));
            }
        }
        Ok(None)
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

    async fn create(
        &mut self,
        tags: crate::adapters::aws::Tags,
        recreate: bool,
    ) -> Result<(), Error> {
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

    /// Records an AWS failure on the object, keeping what this reconcile learned, and lets its
    /// disposition decide whether the error policy retries it or the object waits for a spec
    /// change.
    /// The collection's tags were just read, or set by creating or claiming it: remembers, in this
    /// process, what they prove of the collection this reconcile uses. Only tags that name this
    /// object prove ownership; any other owner's leave nothing to skip next time.
    fn remember_proof(&self) {
        self.ctx.memory.tags_read(
            &self.observed.uid,
            Instant::now(),
            proof_key(
                &self.target.identity,
                &self.target.region,
                &self.observed.collection_id,
            ),
            self.observed.proven(),
        );
    }

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
    /// addition remove the object anyway, and a person can strip the finalizer. Nothing will
    /// reconcile the object again, so the collection is cleaned up now as its deletionPolicy says
    /// (deleted, or released of the ownership tag), retrying transient AWS failures for a while.
    async fn clean_up_after_vanished(mut self) -> Result<Action, Error> {
        warn!(
            deletion_policy = ?self.observed.deletion_policy,
            "the object was deleted while its collection was being created or claimed; cleaning up"
        );
        self.vanished = true;
        self.observed.deleting = true;
        self.observed.has_finalizer = true;
        let backoff = BackoffPolicy::default().transient;
        let mut failures = 0;
        loop {
            match self.steps().await {
                Ok(action) => {
                    self.ctx.memory.released(&self.observed.uid);
                    return Ok(action);
                }
                Err(Error::Aws(error))
                    if disposition(error.kind).retry == Retry::Short
                        && failures < VANISHED_RETRIES =>
                {
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
        if self.vanished {
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
        // The resourceVersion makes this a compare-and-swap: a concurrent change fails with a
        // conflict and the reconcile is retried on fresh data.
        let mut patch = json!({
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": self.resource_version,
            }
        });
        // First contact: the same write pins the region and role, before any create.
        let pin = present && !self.pin_recorded;
        if pin {
            patch["metadata"]["annotations"] = json!({
                REGION_PIN_ANNOTATION: self.target.region,
                ROLE_PIN_ANNOTATION: self.target.identity.role_arn(),
            });
        }
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

/// The region an object uses: the one its status pinned at first contact, else spec.region, else
/// the operator's default. A spec.region that differs from the pinned one is a conflict (the
/// collection never moves), returned beside the pinned region, which stays in use.
/// Which collection ownership was proven for: the identity (and so the account), the region and
/// the collection ID, hashed. Only compared within this process.
fn proof_key(identity: &Identity, region: &str, collection_id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match identity {
        Identity::Own => None,
        Identity::Role(role) => Some(role.role_arn.as_str()),
    }
    .hash(&mut hasher);
    region.hash(&mut hasher);
    collection_id.hash(&mut hasher);
    hasher.finish()
}

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
