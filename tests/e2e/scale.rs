//! Fleet scale end to end: one call before Ready, restarts without a stampede, backoff that holds,
//! priority of user work over resyncs, and per-object memory that deleted objects leave.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::await_condition;
use rekognition_emulator::protocol::{ErrorKind, Operation};
use rekognition_operator::model::crd::{CollectionSpec, ManagementPolicy, RekognitionCollection};
use support::{Options, World, eventually};

fn create_calls(counters: &rekognition_emulator::admin::Counters) -> u64 {
    counters
        .0
        .get("CreateCollection")
        .map(|outcomes| outcomes.values().sum())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_new_object_is_ready_after_one_create_call_and_described_later() -> Result<()> {
    let world = World::start("one-call").await?;
    let done = world.triggers_done().await?;
    world.create("myphotos", CollectionSpec::default()).await?;
    // The first status with Ready=True: what the operator knew when it declared the object usable.
    let ready = |obj: Option<&RekognitionCollection>| {
        obj.and_then(|o| o.ready_condition())
            .is_some_and(|c| c.status == "True")
    };
    let first_ready = tokio::time::timeout(
        support::WAIT,
        await_condition(world.api.clone(), "myphotos", ready),
    )
    .await??
    .expect("object exists");
    let status = first_ready.status.expect("status");
    assert_eq!(status.collection_arn, Some(world.arn("myphotos")));
    assert!(status.face_model_version.is_some());
    assert_eq!((status.face_count, status.user_count), (Some(0), Some(0)));
    assert_eq!(
        status.created_at, None,
        "Ready came from CreateCollection's answer alone, before any describe"
    );
    let calls = |world: &World| {
        let admin = world.admin();
        async move {
            Ok::<Vec<String>, anyhow::Error>(
                admin
                    .calls_for("myphotos")
                    .await?
                    .into_iter()
                    .map(|c| c.operation)
                    .collect(),
            )
        }
    };
    // Nothing more until its first resync: no describe only for the creation time. The trigger
    // of the operator's own status write is finished with, and nothing follows.
    world.until_quiet(done, 1.0).await?;
    assert_eq!(calls(&world).await?, ["CreateCollection"]);
    // The creation time arrives with a describe (here asked for now), which also proves by the
    // tags that the collection is still the one this object created.
    world.describe_now("myphotos").await?;
    assert_eq!(
        calls(&world).await?,
        [
            "CreateCollection",
            "DescribeCollection",
            "ListTagsForResource"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_restart_over_ready_objects_makes_no_aws_call_before_their_phase() -> Result<()> {
    // A day's interval: every object's next resync is at least a tenth of it away.
    let options = Options {
        resync_interval: Duration::from_secs(24 * 3600),
        ..Options::default()
    };
    let mut world = World::without_operator("restart", options.clone()).await?;
    world.start_operator(&options).await?;
    for i in 0..10 {
        world
            .create(&format!("steady-{i}"), CollectionSpec::default())
            .await?;
    }
    // Ready from CreateCollection's answer: none of them was described yet, and none is described
    // after the restart before its phase either.
    for i in 0..10 {
        world
            .wait_reason(&format!("steady-{i}"), "Available")
            .await?;
    }
    world.stop_operator().await?;
    let before = world.admin().calls().await?.len();
    world.start_operator(&options).await?;
    // A new object created during the restart is served at once…
    world.create("newcomer", CollectionSpec::default()).await?;
    world.wait_reason("newcomer", "Available").await?;
    eventually("the newcomer's create", support::WAIT, || async {
        Ok(!world.admin().calls_for("newcomer").await?.is_empty())
    })
    .await?;
    // …while the steady objects wait for their phase: no call for any of them. The new process
    // finishes with each one's first trigger without a call.
    world.until_quiet(0.0, 10.0).await?;
    let after: Vec<_> = world
        .admin()
        .calls()
        .await?
        .into_iter()
        .skip(before)
        .filter(|c| c.collection_id.as_deref() != Some("newcomer"))
        .collect();
    assert!(
        after.is_empty(),
        "a restart must not describe steady objects before their phase: {after:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_errors_backoff_holds_across_the_operators_own_status_write() -> Result<()> {
    let world = World::start("backoff").await?;
    // AccessDenied backs off for at least five seconds.
    world
        .fail_next(Operation::CreateCollection, ErrorKind::AccessDenied, 1)
        .await?;
    let done = world.triggers_done().await?;
    world.create("denied", CollectionSpec::default()).await?;
    world.wait_reason("denied", "AccessDenied").await?;
    // The status write above triggers a reconcile at once; the gate holds it (the backoff), so
    // it calls AWS no more once the operator is quiet.
    world.until_quiet(done, 1.0).await?;
    let counters = world.admin().counters().await?;
    assert_eq!(
        create_calls(&counters),
        1,
        "no second CreateCollection inside the backoff: {counters:?}"
    );
    // After the backoff the object recovers on its own.
    world.wait_reason("denied", "Available").await?;
    Ok(())
}

#[tokio::test]
async fn deleted_objects_leave_nothing_in_the_operators_memory() -> Result<()> {
    let world = World::start("memory").await?;
    world.create("managed", CollectionSpec::default()).await?;
    world
        .create(
            "observed",
            CollectionSpec {
                management_policy: ManagementPolicy::ObserveOnly,
                ..CollectionSpec::default()
            },
        )
        .await?;
    world
        .fail_next(Operation::CreateCollection, ErrorKind::AccessDenied, 1)
        .await?;
    world.create("failing", CollectionSpec::default()).await?;
    world.wait_reason("managed", "Available").await?;
    world.wait_reason("observed", "NotFound").await?;
    eventually("some objects remembered", support::WAIT, || async {
        Ok(world
            .metric("rekognition_operator_object_memory_entries")
            .await?
            >= 2.0)
    })
    .await?;
    for name in ["managed", "observed", "failing"] {
        world.delete(name).await?;
    }
    for name in ["managed", "observed", "failing"] {
        world.wait_gone(name).await?;
    }
    eventually("memory and gauges empty", support::WAIT, || async {
        let entries = world
            .metric("rekognition_operator_object_memory_entries")
            .await?;
        let objects = world.metric("rekognition_operator_collections").await?;
        Ok(entries == 0.0 && objects == 0.0)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn new_objects_and_spec_changes_go_ahead_of_resyncs_that_fill_the_budget() -> Result<()> {
    // 40 objects resyncing every 5 s want 8 describes/s; AWS grants 5/s per operation.
    let mut options = Options {
        resync_interval: Duration::from_secs(5),
        ..Options::default()
    };
    options.emulator.quota.rate_per_sec = 5.0;
    options.emulator.quota.burst = 5;
    options.aws_rate = 4.5;
    options.aws_burst = 4;
    let mut world = World::without_operator("priority", options.clone()).await?;
    world.start_operator(&options).await?;
    world
        .create_many_and_wait("steady", 40, Duration::from_secs(120))
        .await?;
    // Let the resyncs fill the describe budget: a first round of them has started.
    eventually("resyncs under way", Duration::from_secs(60), || async {
        let counters = world.admin().counters().await?;
        let describes: u64 = counters
            .0
            .get("DescribeCollection")
            .map(|o| o.values().sum())
            .unwrap_or(0);
        Ok(describes >= 60)
    })
    .await?;
    for i in 0..5 {
        world
            .create(&format!("late-{i}"), CollectionSpec::default())
            .await?;
    }
    let tags: BTreeMap<String, String> = [("team".to_owned(), "vision".to_owned())].into();
    for i in 0..3 {
        let patch = serde_json::json!({ "spec": { "tags": tags } });
        world
            .api
            .patch(
                &format!("steady-{i:03}"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
    }
    for i in 0..5 {
        world
            .wait_reason_within(&format!("late-{i}"), "Available", Duration::from_secs(20))
            .await?;
    }
    for i in 0..3 {
        let id = format!("steady-{i:03}");
        eventually("tags converged", Duration::from_secs(20), || async {
            Ok(world.aws_tags(&id).await?.get("team").map(String::as_str) == Some("vision"))
        })
        .await?;
    }
    // Resyncs gave way, and the metrics say so.
    assert!(
        world
            .metric("rekognition_operator_resyncs_deferred_total")
            .await?
            > 0.0
    );
    let totals = world.call_totals().await?;
    eprintln!("priority under a full describe budget: {totals}");
    Ok(())
}
