//! The scenarios: each sets up objects, injects its faults and returns once the faults that end
//! have ended (faults meant "for the whole run" stay); the campaign then waits for convergence
//! and checks the invariants. Randomness (delays, crash hits, modes, choices) comes from the
//! run's seeded generator only.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use rand::Rng;
use rand::rngs::StdRng;
use rekognition_emulator::admin::{FaultRule, LostResponse, LostResponseRule, QuotaUpdate};
use rekognition_emulator::{ErrorKind, Operation};
use rekognition_operator::core::ownership::claim;
use rekognition_operator::model::crd::{
    CLAIM_TAG, CollectionSpec, OWNER_TAG, RekognitionCollection,
};
use testbed::{ApiServerStop, OperatorProcess, killed_by_sigkill};

use crate::run::{READY, Run, spec_with_tag};

/// How long a crashing operator may take to reach its crash point.
const CRASH_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    KillDuringCreateBurst,
    KillDuringDeleteBurst,
    CrashAfterCreateCollection,
    CrashAfterDeleteCollection,
    CrashAfterTagChange,
    LostCreateCollectionAnswers,
    LostDeleteCollectionAnswers,
    LostTagResourceAnswers,
    FullThrottlingThenRecovery,
    InternalErrorsThroughout,
    ApiServerRestartMidBurst,
    WatchExpiryMidBurst,
    AnotherWriterOnTheSameObjects,
    OutOfBandCollectionChanges,
    SpecChurn,
    AllObjectsDeletedAtOnceUnderThrottling,
    LeaderPausedPastItsLease,
    TwoOperatorsWithoutLeaderElection,
    RegionChangedBetweenRestarts,
    TagsEditedBehindTheOperatorsBack,
    KillDuringRestore,
    KillDuringHandover,
}

impl Scenario {
    pub const ALL: [Scenario; 22] = [
        Scenario::KillDuringCreateBurst,
        Scenario::KillDuringDeleteBurst,
        Scenario::CrashAfterCreateCollection,
        Scenario::CrashAfterDeleteCollection,
        Scenario::CrashAfterTagChange,
        Scenario::LostCreateCollectionAnswers,
        Scenario::LostDeleteCollectionAnswers,
        Scenario::LostTagResourceAnswers,
        Scenario::FullThrottlingThenRecovery,
        Scenario::InternalErrorsThroughout,
        Scenario::ApiServerRestartMidBurst,
        Scenario::WatchExpiryMidBurst,
        Scenario::AnotherWriterOnTheSameObjects,
        Scenario::OutOfBandCollectionChanges,
        Scenario::SpecChurn,
        Scenario::AllObjectsDeletedAtOnceUnderThrottling,
        Scenario::LeaderPausedPastItsLease,
        Scenario::TwoOperatorsWithoutLeaderElection,
        Scenario::RegionChangedBetweenRestarts,
        Scenario::TagsEditedBehindTheOperatorsBack,
        Scenario::KillDuringRestore,
        Scenario::KillDuringHandover,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::KillDuringCreateBurst => "kill-9-during-create-burst",
            Scenario::KillDuringDeleteBurst => "kill-9-during-delete-burst",
            Scenario::CrashAfterCreateCollection => "crash-after-create-collection",
            Scenario::CrashAfterDeleteCollection => "crash-after-delete-collection",
            Scenario::CrashAfterTagChange => "crash-after-tag-or-untag-resource",
            Scenario::LostCreateCollectionAnswers => "lost-create-collection-answers",
            Scenario::LostDeleteCollectionAnswers => "lost-delete-collection-answers",
            Scenario::LostTagResourceAnswers => "lost-tag-resource-answers",
            Scenario::FullThrottlingThenRecovery => "full-throttling-then-recovery",
            Scenario::InternalErrorsThroughout => "internal-errors-throughout",
            Scenario::ApiServerRestartMidBurst => "api-server-restart-mid-burst",
            Scenario::WatchExpiryMidBurst => "watch-expiry-mid-burst",
            Scenario::AnotherWriterOnTheSameObjects => "another-writer-on-the-same-objects",
            Scenario::OutOfBandCollectionChanges => "out-of-band-collection-changes",
            Scenario::SpecChurn => "spec-churn",
            Scenario::AllObjectsDeletedAtOnceUnderThrottling => {
                "all-objects-deleted-at-once-under-throttling"
            }
            Scenario::LeaderPausedPastItsLease => "leader-paused-past-its-lease",
            Scenario::TwoOperatorsWithoutLeaderElection => "two-operators-without-leader-election",
            Scenario::RegionChangedBetweenRestarts => "region-changed-between-restarts",
            Scenario::TagsEditedBehindTheOperatorsBack => "tags-edited-behind-the-operators-back",
            Scenario::KillDuringRestore => "kill-9-during-restore",
            Scenario::KillDuringHandover => "kill-9-during-handover",
        }
    }

    pub fn index(self) -> usize {
        Scenario::ALL
            .iter()
            .position(|s| *s == self)
            .unwrap_or(usize::MAX)
    }

    pub fn named(name: &str) -> Result<Scenario> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .with_context(|| format!("no scenario {name}; --list names them"))
    }

    /// Sets up, injects the faults, and returns when the campaign should start waiting for
    /// convergence.
    pub async fn play(self, run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
        match self {
            Scenario::KillDuringCreateBurst => kill_during_create_burst(run, rng).await,
            Scenario::KillDuringDeleteBurst => kill_during_delete_burst(run, rng).await,
            Scenario::CrashAfterCreateCollection => crash_after_create_collection(run, rng).await,
            Scenario::CrashAfterDeleteCollection => crash_after_delete_collection(run, rng).await,
            Scenario::CrashAfterTagChange => crash_after_tag_change(run, rng).await,
            Scenario::LostCreateCollectionAnswers => {
                lost_answers(run, rng, Operation::CreateCollection).await
            }
            Scenario::LostDeleteCollectionAnswers => {
                lost_answers(run, rng, Operation::DeleteCollection).await
            }
            Scenario::LostTagResourceAnswers => {
                lost_answers(run, rng, Operation::TagResource).await
            }
            Scenario::FullThrottlingThenRecovery => full_throttling_then_recovery(run, rng).await,
            Scenario::InternalErrorsThroughout => internal_errors_throughout(run, rng).await,
            Scenario::ApiServerRestartMidBurst => api_server_restart_mid_burst(run, rng).await,
            Scenario::WatchExpiryMidBurst => watch_expiry_mid_burst(run, rng).await,
            Scenario::AnotherWriterOnTheSameObjects => another_writer(run, rng).await,
            Scenario::OutOfBandCollectionChanges => out_of_band_changes(run, rng).await,
            Scenario::SpecChurn => spec_churn(run, rng).await,
            Scenario::AllObjectsDeletedAtOnceUnderThrottling => {
                all_deleted_at_once_under_throttling(run, rng).await
            }
            Scenario::LeaderPausedPastItsLease => leader_paused_past_its_lease(run, rng).await,
            Scenario::TwoOperatorsWithoutLeaderElection => two_operators(run, rng).await,
            Scenario::RegionChangedBetweenRestarts => region_changed(run, rng).await,
            Scenario::KillDuringRestore => kill_during_restore(run, rng).await,
            Scenario::KillDuringHandover => kill_during_handover(run, rng).await,
            Scenario::TagsEditedBehindTheOperatorsBack => {
                tags_edited_behind_its_back(run, rng).await
            }
        }
    }
}

async fn pause_up_to(rng: &mut StdRng, millis: u64) {
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..=millis))).await;
}

/// `kill -9` of the run's last started operator.
async fn kill_operator(run: &mut Run<'_>) -> Result<()> {
    run.strike();
    let mut operator = run.operators.pop().context("no operator to kill")?;
    operator.kill().await?;
    Ok(())
}

/// Waits for the last started operator to die at its crash point.
async fn wait_crashed(run: &mut Run<'_>, point: &str) -> Result<()> {
    let mut operator = run.operators.pop().context("no operator to crash")?;
    let status = operator.wait_exit(CRASH_WAIT).await?;
    if !killed_by_sigkill(&status) {
        bail!("the operator exited with {status}, not at crash point {point}");
    }
    Ok(())
}

/// Deletes a random half (at least one) of the run's objects.
async fn delete_some(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    let names = run.names();
    let first = rng.random_range(0..names.len());
    for (i, name) in names.iter().enumerate() {
        if i == first || rng.random_bool(0.5) {
            run.delete(name).await?;
        }
    }
    Ok(())
}

/// Sets, removes and changes a tag on every object (a TagResource and an UntagResource each).
async fn edit_tags(run: &mut Run<'_>, round: u32) -> Result<()> {
    for name in run.names() {
        run.patch_spec(
            &name,
            serde_json::json!({"tags": {"burst": null, "edited": format!("round-{round}")}}),
        )
        .await?;
    }
    Ok(())
}

/// (1) kill -9 at a random moment while a burst of creates is reconciled.
async fn kill_during_create_burst(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.spawn_operator().await?;
    run.create_all().await?;
    // A few objects are reconciled within a few hundred milliseconds: kill within that.
    pause_up_to(rng, 400).await;
    kill_operator(run).await?;
    run.spawn_operator().await
}

/// (1) kill -9 at a random moment while a burst of deletes is reconciled.
async fn kill_during_delete_burst(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.spawn_operator().await?;
    run.create_all().await?;
    run.wait_converged().await?;
    run.delete_all().await?;
    pause_up_to(rng, 400).await;
    kill_operator(run).await?;
    run.spawn_operator().await
}

/// (1) The operator dies right after the n-th CreateCollection returned, before any status
/// write says so.
async fn crash_after_create_collection(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    let point = "after-create-collection";
    let hit = rng.random_range(1..=run.objects as u64);
    let options = run.operator_options().crash_at(point, hit);
    run.spawn_operator_with(&options).await?;
    run.strike();
    run.create_all().await?;
    wait_crashed(run, point).await?;
    run.spawn_operator().await
}

/// (1) The operator dies right after the n-th DeleteCollection returned, before the finalizer
/// is removed.
async fn crash_after_delete_collection(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    let point = "after-delete-collection";
    let hit = rng.random_range(1..=run.objects as u64);
    let options = run.operator_options().crash_at(point, hit);
    run.spawn_operator_with(&options).await?;
    run.create_all().await?;
    run.wait_converged().await?;
    run.strike();
    run.delete_all().await?;
    wait_crashed(run, point).await?;
    run.spawn_operator().await
}

/// (1) The operator dies right after the n-th TagResource or UntagResource returned, before the
/// status says the tags are in sync.
async fn crash_after_tag_change(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    let point = if rng.random_bool(0.5) {
        "after-tag-resource"
    } else {
        "after-untag-resource"
    };
    let hit = rng.random_range(1..=run.objects as u64);
    let options = run.operator_options().crash_at(point, hit);
    run.spawn_operator_with(&options).await?;
    run.create_all().await?;
    run.wait_converged().await?;
    run.strike();
    edit_tags(run, 1).await?;
    wait_crashed(run, point).await?;
    run.spawn_operator().await
}

/// (2) Half of the calls of one operation are carried out and their answers lost (the
/// connection reset, or the answer held past the operator's 2 s AWS timeout) while the objects
/// are created, retagged or deleted, for 2 to 8 s; then answers come back.
///
/// The window has an end because a fault that lasts makes convergence a matter of luck, not of
/// correctness: every lost answer doubles the object's backoff (up to its 30 s cap), so at one
/// answer in two a streak of eight takes longer than any deadline a run can wait. Once answers
/// come back, an operator that is right converges within one capped backoff.
async fn lost_answers(run: &mut Run<'_>, rng: &mut StdRng, operation: Operation) -> Result<()> {
    let rule = LostResponseRule {
        operation: Some(operation),
        mode: if rng.random_bool(0.5) {
            LostResponse::Reset
        } else {
            LostResponse::Held
        },
        probability: 0.5,
        hold_ms: 3000,
    };
    let window = Duration::from_millis(rng.random_range(2000..=8000));
    run.spawn_operator().await?;
    if operation == Operation::CreateCollection {
        run.admin.lose_responses(&rule).await?;
        run.strike();
    }
    run.create_all().await?;
    if operation == Operation::CreateCollection {
        tokio::time::sleep(window).await;
        run.admin.clear_faults().await?;
    }
    run.wait_converged().await?;
    match operation {
        Operation::TagResource => {
            run.admin.lose_responses(&rule).await?;
            run.strike();
            // A changed value is a TagResource with no UntagResource needed.
            for name in run.names() {
                run.patch_spec(&name, serde_json::json!({"tags": {"burst": "retagged"}}))
                    .await?;
            }
            tokio::time::sleep(window).await;
            run.admin.clear_faults().await?;
            run.wait_converged().await?;
            delete_some(run, rng).await
        }
        Operation::DeleteCollection => {
            run.admin.lose_responses(&rule).await?;
            run.strike();
            delete_some(run, rng).await?;
            tokio::time::sleep(window).await;
            run.admin.clear_faults().await?;
            Ok(())
        }
        _ => delete_some(run, rng).await,
    }
}

/// (3) Every call throttled for a while (objects created and deleted meanwhile), then none.
async fn full_throttling_then_recovery(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.spawn_operator().await?;
    run.create("before-throttling", CollectionSpec::default())
        .await?;
    run.wait_converged().await?;
    run.admin
        .set_fault(&FaultRule {
            operation: None,
            error: Some(ErrorKind::Throttling),
            probability: 1.0,
            latency_ms: 0,
        })
        .await?;
    run.strike();
    run.create_all().await?;
    run.delete("before-throttling").await?;
    tokio::time::sleep(Duration::from_millis(rng.random_range(1000..=3000))).await;
    run.admin.clear_faults().await?;
    Ok(())
}

/// (3) One call in ten fails with InternalServerError, for the whole run.
async fn internal_errors_throughout(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.admin
        .set_fault(&FaultRule {
            operation: None,
            error: Some(ErrorKind::InternalServerError),
            probability: 0.1,
            latency_ms: 0,
        })
        .await?;
    run.strike();
    run.spawn_operator().await?;
    run.create_all().await?;
    run.wait_converged().await?;
    edit_tags(run, 1).await?;
    delete_some(run, rng).await
}

/// (4) kube-apiserver restarts (gracefully or killed) while a burst is reconciled.
async fn api_server_restart_mid_burst(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.spawn_operator().await?;
    run.create_all().await?;
    pause_up_to(rng, 800).await;
    let how = if rng.random_bool(0.5) {
        ApiServerStop::Graceful
    } else {
        ApiServerStop::Kill
    };
    run.strike();
    run.control_plane.restart_api_server(how).await?;
    delete_some(run, rng).await
}

/// (4) Every watch expires (410 Gone after an etcd compaction) while a burst is reconciled.
async fn watch_expiry_mid_burst(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.spawn_operator().await?;
    run.create_all().await?;
    pause_up_to(rng, 800).await;
    run.strike();
    run.control_plane.expire_watches().await?;
    delete_some(run, rng).await
}

/// (5) Another writer updates the same objects' labels, annotations and spec tags with
/// optimistic locking while the operator writes finalizers and status: both sides see 409s.
async fn another_writer(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.spawn_operator().await?;
    run.create_all().await?;
    let names = run.names();
    run.strike();
    for round in 0..(names.len() * 6) {
        let name = &names[rng.random_range(0..names.len())];
        let mut object = run.api.get(name).await?;
        let value = format!("round-{round}");
        match rng.random_range(0..3) {
            0 => {
                object
                    .metadata
                    .labels
                    .get_or_insert_default()
                    .insert("chaos/writer".into(), value);
            }
            1 => {
                object
                    .metadata
                    .annotations
                    .get_or_insert_default()
                    .insert("chaos/writer".into(), value);
            }
            _ => {
                object.spec.tags.insert("writer".into(), value);
            }
        }
        // The losing side of a conflict simply moves on: the operator must cope either way.
        match run.api.replace(name, &PostParams::default(), &object).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(error.into()),
        }
        pause_up_to(rng, 60).await;
    }
    Ok(())
}

/// (8) Behind the operator's back: a collection deleted; deleted and recreated by someone else
/// (another owner tag); tags edited; the owner tag removed. A foreign collection sits beside
/// them. Then a random half of the objects is deleted.
///
/// Tags edited behind a steady object's back are put right at its next spec change (the
/// scenario makes one), not at resync: the operator only describes steady objects.
///
/// An object whose collection was recreated by someone else or lost its owner tag owns no
/// collection any more, by design (the operator must not take it back: it reports
/// AlreadyExists): I1 and I4 do not apply to it, and its collection is foreign from then on (I6).
async fn out_of_band_changes(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    let aws = run.rekognition().await;
    aws.create_collection()
        .collection_id("foreign-000")
        .tags("team", "someone-else")
        .send()
        .await?;
    *run.own_creates.entry("foreign-000".into()).or_default() += 1;
    run.mark_foreign("foreign-000").await?;
    run.spawn_operator().await?;
    run.create_all().await?;
    run.wait_converged().await?;
    let names = run.names();
    // Every change at least once when there are four objects or more.
    let offset = rng.random_range(0..4);
    run.strike();
    for (i, name) in names.iter().enumerate() {
        let arn = run
            .collection(name)
            .await?
            .context("a converged object has its collection")?
            .collection_arn;
        match (i + offset) % 4 {
            0 => {
                aws.delete_collection().collection_id(name).send().await?;
                *run.repairs.entry(name.clone()).or_default() += 1;
            }
            1 => {
                // The operator may repair the deletion before the recreation; then delete again.
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    if aws
                        .delete_collection()
                        .collection_id(name)
                        .send()
                        .await
                        .is_ok()
                    {
                        *run.repairs.entry(name.clone()).or_default() += 1;
                    }
                    let created = aws
                        .create_collection()
                        .collection_id(name)
                        .tags(OWNER_TAG, "00000000-someone-else")
                        .send()
                        .await;
                    if created.is_ok() {
                        *run.own_creates.entry(name.clone()).or_default() += 1;
                        break;
                    }
                    if attempts == 5 {
                        bail!("could not recreate {name} behind the operator's back");
                    }
                }
                run.not_owned.insert(name.clone());
                run.mark_foreign(name).await?;
            }
            2 => {
                edit_tags_out_of_band(&aws, &arn).await?;
                // By design a steady object is only described on resync (docs/api.md, "Quiet"), so
                // its tags are read again at its next spec change: make one.
                run.patch_spec(name, serde_json::json!({"tags": {"after-edit": "yes"}}))
                    .await?;
            }
            _ => {
                aws.untag_resource()
                    .resource_arn(&arn)
                    .tag_keys(OWNER_TAG)
                    .send()
                    .await?;
                run.not_owned.insert(name.clone());
                run.mark_foreign(name).await?;
            }
        }
    }
    delete_some(run, rng).await
}

/// (9) Spec churn: tags edited rapidly, managementPolicy Manage → ObserveOnly → Adopt,
/// deletionPolicy flipped (ending at random), objects deleted right after creation, and a
/// random half deleted at the end.
async fn spec_churn(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.spawn_operator().await?;
    run.strike();
    run.create_all().await?;
    for i in 0..=run.objects / 2 {
        let name = format!("ephemeral-{i:03}");
        run.create(&name, CollectionSpec::default()).await?;
        run.delete(&name).await?;
    }
    for name in run.names() {
        for round in 0..5 {
            run.patch_spec(
                &name,
                serde_json::json!({"tags": {"churn": format!("{round}")}}),
            )
            .await?;
            pause_up_to(rng, 40).await;
        }
    }
    for policy in ["ObserveOnly", "Adopt"] {
        for name in run.names() {
            run.patch_spec(&name, serde_json::json!({"managementPolicy": policy}))
                .await?;
        }
        pause_up_to(rng, 500).await;
    }
    for name in run.names() {
        for _ in 0..rng.random_range(1..=3) {
            let policy = if rng.random_bool(0.5) {
                "Retain"
            } else {
                "Delete"
            };
            run.patch_spec(&name, serde_json::json!({"deletionPolicy": policy}))
                .await?;
        }
    }
    pause_up_to(rng, 1000).await;
    delete_some(run, rng).await
}

/// (11) A namespace's objects all deleted at once (one DELETE of the collection of objects)
/// while the emulator's quota throttles every operation, for the whole run.
async fn all_deleted_at_once_under_throttling(run: &mut Run<'_>, _rng: &mut StdRng) -> Result<()> {
    run.spawn_operator().await?;
    run.create_all().await?;
    run.wait_converged().await?;
    run.strike();
    run.admin
        .set_quota(&QuotaUpdate {
            enabled: true,
            rate: Some(2.0),
            burst: Some(1),
            ..QuotaUpdate::default()
        })
        .await?;
    run.api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    Ok(())
}

const LEASE_DURATION: Duration = Duration::from_secs(6);

/// (6) Two replicas with leader election; the leader is SIGSTOPped past its lease, the other
/// takes over and acts (creates, retags, deletes), then the old leader resumes.
async fn leader_paused_past_its_lease(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    let namespace = run.namespace.clone();
    let leases: Api<Lease> = Api::namespaced(run.api.clone().into_client(), &namespace);
    for replica in ["replica-a", "replica-b"] {
        let mut options = run
            .operator_options()
            .args(["--leader-election", "--lease-namespace", &namespace])
            .args(["--lease-duration", "6s", "--lease-renew-before", "2s"])
            .args(["--lease-renew-deadline", "5s"])
            .env("POD_NAME", replica);
        options.log = options.log.with_file_name(format!("{replica}.log"));
        run.spawn_operator_unready(&options)?;
    }
    let holder = || async {
        Ok(leases
            .get_opt("rekognition-operator")
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty()))
    };
    let leader = testbed::wait_until("a leader", READY, holder).await?;
    let leader_at = run
        .operators
        .iter()
        .position(|p| leader.ends_with(&format!("-{}", p.pid())))
        .context("the leader is one of the replicas")?;
    run.create_all().await?;
    run.wait_converged().await?;
    run.strike();
    run.operators[leader_at].pause()?;
    let old = leader.clone();
    testbed::wait_until("another leader", LEASE_DURATION * 4, || async {
        Ok(holder().await?.is_some_and(|h| h != old))
    })
    .await?;
    edit_tags(run, 2).await?;
    delete_some(run, rng).await?;
    run.create("after-failover", CollectionSpec::default())
        .await?;
    run.wait_converged().await?;
    run.operators[leader_at].resume()?;
    Ok(())
}

/// (7) Two operators without leader election at once (a misconfiguration): creates, retags and
/// deletes still leave no leak and no stolen collection, and no retry duplicates a create. The
/// one thing only a Lease prevents is allowed: a collection made again by one operator in the
/// moment the other deletes it for its object's deletion, then deleted again.
async fn two_operators(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.without_leader_election = true;
    let aws = run.rekognition().await;
    aws.create_collection()
        .collection_id("foreign-000")
        .send()
        .await?;
    *run.own_creates.entry("foreign-000".into()).or_default() += 1;
    run.mark_foreign("foreign-000").await?;
    let mut second = run.operator_options();
    second.log = second.log.with_file_name("second.log");
    run.strike();
    run.spawn_operator().await?;
    run.spawn_operator_with(&second).await?;
    run.create_all().await?;
    pause_up_to(rng, 1000).await;
    edit_tags(run, 1).await?;
    delete_some(run, rng).await
}

/// (10) The operator restarts with another default region: the objects it made keep using
/// the region pinned in their status (the emulator serves only that one), for retags and
/// deletes alike.
async fn region_changed(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.spawn_operator().await?;
    run.create_all().await?;
    run.wait_converged().await?;
    run.strike();
    let operator: &mut OperatorProcess = run.operators.last_mut().context("an operator")?;
    operator.terminate()?;
    operator.wait_exit(READY).await?;
    run.operators.clear();
    let moved = run.operator_options().args(["--region", "eu-west-1"]);
    run.spawn_operator_with(&moved).await?;
    edit_tags(run, 1).await?;
    delete_some(run, rng).await
}

/// (8) With `--tag-check-interval`, every collection's tags are edited in AWS behind the
/// operator's back (a value changed, a tag added, sometimes a spec tag removed) and the spec is
/// not touched: the tag check alone must put them right (I1 compares them with the spec).
async fn tags_edited_behind_its_back(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    let checking = run.operator_options().args(["--tag-check-interval", "3s"]);
    run.spawn_operator_with(&checking).await?;
    run.create_all().await?;
    run.wait_converged().await?;
    let aws = run.rekognition().await;
    run.strike();
    for name in run.names() {
        let arn = run
            .collection(&name)
            .await?
            .context("a converged object has its collection")?
            .collection_arn;
        if rng.random_bool(0.5) {
            edit_tags_out_of_band(&aws, &arn).await?;
        } else {
            aws.untag_resource()
                .resource_arn(&arn)
                .tag_keys("burst")
                .send()
                .await?;
        }
    }
    Ok(())
}

/// The cluster is lost and restored (objects back with new UIDs and no status) while a
/// collection of another cluster claims one of the same names; `kill -9` at a random moment
/// while the restored objects reclaim their collections.
async fn kill_during_restore(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.spawn_operator().await?;
    run.create_all().await?;
    run.wait_converged().await?;
    kill_operator(run).await?;
    run.lose_all().await?;
    let elsewhere = "photos-elsewhere";
    run.rekognition()
        .await
        .create_collection()
        .collection_id(elsewhere)
        .tags(OWNER_TAG, "00000000-another-cluster")
        .tags(
            CLAIM_TAG,
            format!("another-cluster/{}/{}", run.namespace, Run::name(0)),
        )
        .send()
        .await?;
    *run.own_creates.entry(elsewhere.to_owned()).or_default() += 1;
    run.mark_foreign(elsewhere).await?;
    // The restored manifests applied one by one while the operator runs (as a GitOps sync or a
    // Velero restore does), with AWS slowed: the kill lands before, between or during the
    // objects' CreateCollection, DescribeCollection, ListTagsForResource and TagResource calls.
    slow_aws(run, rng).await?;
    run.spawn_operator().await?;
    let names = run.names();
    let timeline = staggered(&names, rng, |rng| {
        vec![(rng.random_range(0..=400), Step::KillOperator)]
    });
    let started = tokio::time::Instant::now();
    for (at, step) in timeline {
        tokio::time::sleep_until(started + Duration::from_millis(at)).await;
        match step {
            Step::Apply(name) => run.create(name, spec_with_tag("burst", name)).await?,
            Step::KillOperator => kill_operator(run).await?,
            Step::KillOldOperator => bail!("a restore has no old cluster"),
        }
    }
    run.admin.clear_faults().await?;
    run.spawn_operator().await
}

/// The old cluster of a migration.
const OLD_CLUSTER: &str = "blue";
/// A cluster the campaign does not run; only the campaign makes collections it claims.
const THIRD_CLUSTER: &str = "other-cluster";

/// A migration (blue/green). Objects made Ready by the old cluster's operator (`blue`, on the
/// campaign's second control plane) are applied again in the run's cluster, whose operator
/// takes their collections over (`--take-over-from blue`, on the same emulator); `kill -9` of it
/// at a random moment (0–0.4 s) while it does, and in half the runs of blue's operator too
/// (both restarted). A third cluster's collection claims one more object of the same namespace
/// and name in both: neither cluster may take it. Once the run's cluster holds every
/// collection, blue's objects are deleted (deletionPolicy Delete; all of them, or a random
/// part), right away or once they report HandedOver: blue must delete none of the collections.
async fn kill_during_handover(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    let third = "photos-third";
    run.rekognition()
        .await
        .create_collection()
        .collection_id(third)
        .tags(OWNER_TAG, "00000000-other-cluster")
        .tags(CLAIM_TAG, claim(THIRD_CLUSTER, &run.namespace, third))
        .tags("burst", third)
        .send()
        .await?;
    *run.own_creates.entry(third.to_owned()).or_default() += 1;
    run.mark_foreign(third).await?;
    let names = run.names();
    let all: Vec<String> = names.iter().cloned().chain([third.to_owned()]).collect();
    let reasons = |held: &'static str| -> Vec<(String, &'static str)> {
        names
            .iter()
            .map(|name| (name.clone(), held))
            .chain([(third.to_owned(), "AwaitingHandover")])
            .collect()
    };

    let blue = run
        .add_peer(OLD_CLUSTER, &["--tag-check-interval", "1s"])
        .await?;
    let peer = &mut run.peers[blue];
    peer.spawn_operator().await?;
    for name in &all {
        peer.create(name, spec_with_tag("burst", name)).await?;
    }
    wait_reasons(&peer.api, "blue's objects settle", &reasons("Available")).await?;
    peer.held = names.iter().cloned().collect();
    for name in &names {
        run.mark_handed_over(name).await?;
        let claimed = run.handed_over[name].view.tags.get(CLAIM_TAG);
        if claimed != Some(&claim(OLD_CLUSTER, &run.namespace, name)) {
            bail!("collection {name} has claim {claimed:?} before the handover, not blue's");
        }
    }

    let taking_over = run
        .operator_options()
        .args(["--take-over-from", OLD_CLUSTER]);
    // AWS slowed while the run's operator takes over, and the manifests applied one by one while
    // it runs (as a GitOps sync does): the kill lands before, between or during the objects'
    // CreateCollection, ListTagsForResource and TagResource calls.
    slow_aws(run, rng).await?;
    // Awaits a handover from a cluster this one does not take over from, through the kills and
    // restarts.
    run.create(third, spec_with_tag("burst", third)).await?;
    run.spawn_operator_with(&taking_over).await?;
    let timeline = staggered(&names, rng, |rng| {
        let mut kills = vec![(rng.random_range(0..=400), Step::KillOperator)];
        if rng.random_bool(0.5) {
            kills.push((rng.random_range(0..=400), Step::KillOldOperator));
        }
        kills
    });
    let started = tokio::time::Instant::now();
    let mut blue_killed = false;
    for (at, step) in timeline {
        tokio::time::sleep_until(started + Duration::from_millis(at)).await;
        match step {
            Step::Apply(name) => run.create(name, spec_with_tag("burst", name)).await?,
            Step::KillOperator => kill_operator(run).await?,
            Step::KillOldOperator => {
                run.strike();
                let mut operator = run.peers[blue].operators.pop().context("blue's operator")?;
                operator.kill().await?;
                blue_killed = true;
            }
        }
    }
    run.admin.clear_faults().await?;
    run.spawn_operator_with(&taking_over).await?;
    if blue_killed {
        run.peers[blue].spawn_operator().await?;
    }

    // Blue's objects go only once the run's cluster holds every collection, so that no deletion
    // races a takeover (the runbook warns against that): blue reads the tags before it deletes
    // anything, and must see they are not its own. In half the runs they go only once they
    // report HandedOver, the runbook's order.
    wait_reasons(
        &run.api,
        "the run's cluster takes every collection over",
        &reasons("Available"),
    )
    .await?;
    let peer = &run.peers[blue];
    if rng.random_bool(0.5) {
        wait_reasons(&peer.api, "blue lets go", &reasons("HandedOver")).await?;
    }
    let everything = rng.random_bool(0.25);
    let first = rng.random_range(0..all.len());
    for (i, name) in all.iter().enumerate() {
        if everything || i == first || rng.random_bool(0.5) {
            peer.delete(name).await?;
        }
    }
    Ok(())
}

/// A step of [`kill_during_handover`]'s timeline.
/// Every AWS answer slowed by 20–60 ms (until the faults are cleared), so that a few objects'
/// calls span a few hundred milliseconds, as a fleet's would.
async fn slow_aws(run: &mut Run<'_>, rng: &mut StdRng) -> Result<()> {
    run.admin
        .set_fault(&FaultRule {
            operation: None,
            error: None,
            probability: 0.0,
            latency_ms: rng.random_range(20..=60),
        })
        .await?;
    Ok(())
}

/// A timeline (milliseconds from its start) that applies `names` one by one, 0–100 ms apart;
/// the kills that `kills` draws (after the gaps, so a seed replays the same run) join it at their
/// moments, and at the same moment an object is applied first.
fn staggered<'a>(
    names: &'a [String],
    rng: &mut StdRng,
    kills: impl FnOnce(&mut StdRng) -> Vec<(u64, Step<'a>)>,
) -> Vec<(u64, Step<'a>)> {
    let mut timeline = Vec::new();
    let mut at = 0;
    for name in names {
        timeline.push((at, Step::Apply(name)));
        at += rng.random_range(0..=100);
    }
    timeline.extend(kills(rng));
    timeline.sort_by_key(|(at, _)| *at);
    timeline
}

enum Step<'a> {
    /// Apply the object of this name in the run's cluster.
    Apply(&'a str),
    /// `kill -9` of the run's operator.
    KillOperator,
    /// `kill -9` of the old cluster's operator.
    KillOldOperator,
}

/// How long a scenario waits for objects to settle between its steps.
const SETTLE: Duration = Duration::from_secs(60);

/// Waits until each object named in `wanted` reports its Ready reason; says which do not when
/// they never all do.
async fn wait_reasons(
    api: &Api<RekognitionCollection>,
    what: &str,
    wanted: &[(String, &str)],
) -> Result<()> {
    let left = || async {
        let mut left = Vec::new();
        for (name, reason) in wanted {
            let object = api.get(name).await?;
            let now = object.ready_condition().map(|c| c.reason.clone());
            if now.as_deref() != Some(*reason) {
                left.push(format!("{name} is {now:?}, not {reason}"));
            }
        }
        anyhow::Ok(left)
    };
    let waited = testbed::wait_until(what, SETTLE, || async { Ok(left().await?.is_empty()) }).await;
    if let Err(error) = waited {
        bail!("{error:#}: {}", left().await?.join("; "));
    }
    Ok(())
}

/// Behind the operator's back: changes the `burst` tag's value and adds a tag the spec lacks.
async fn edit_tags_out_of_band(aws: &aws_sdk_rekognition::Client, arn: &str) -> Result<()> {
    aws.tag_resource()
        .resource_arn(arn)
        .tags("burst", "edited-out-of-band")
        .tags("intruder", "yes")
        .send()
        .await?;
    Ok(())
}
