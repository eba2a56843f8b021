//! Status under failure end to end: Ready stays True through a throttle storm, Synced tells of it,
//! and Events come once per transition.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use rekognition_emulator::protocol::{ErrorKind, Operation};
use rekognition_operator::model::crd::{CollectionSpec, ManagementPolicy};
use support::{Options, World, argocd_health, eventually};

#[tokio::test]
async fn ready_never_flaps_under_a_throttle_storm_and_synced_tells_of_it() -> Result<()> {
    let options = Options {
        resync_interval: Duration::from_secs(3),
        ..Options::default()
    };
    let mut world = World::without_operator("storm", options.clone()).await?;
    world.start_operator(&options).await?;
    let count = 50;
    world
        .create_many_and_wait("calm", count, Duration::from_secs(120))
        .await?;
    let names: Vec<String> = (0..count).map(|i| format!("calm-{i:03}")).collect();
    eventually("every object described", support::WAIT, || async {
        let list = world.api.list(&ListParams::default()).await?;
        Ok(list
            .items
            .iter()
            .all(|o| o.status.as_ref().is_some_and(|s| s.created_at.is_some())))
    })
    .await?;

    world
        .fail_calls(Operation::DescribeCollection, ErrorKind::Throttling, 1.0)
        .await?;
    let storm = Instant::now();
    let mut samples = 0u64;
    let mut synced_false: BTreeMap<String, bool> = BTreeMap::new();
    let mut cleared = false;
    loop {
        let list = world.api.list(&ListParams::default()).await?;
        for obj in &list.items {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let ready = obj.ready_condition().map(|c| c.status.as_str());
            assert_eq!(
                ready,
                Some("True"),
                "{name}: Ready left True during the storm: {:?}",
                obj.status
            );
            if let Some(c) = obj.synced_condition()
                && c.status == "False"
            {
                assert_eq!(c.reason, "Throttled", "{name}");
                synced_false.insert(name, true);
            }
            samples += 1;
        }
        if !cleared && storm.elapsed() > Duration::from_secs(30) {
            world.admin().clear_faults().await?;
            cleared = true;
        }
        if cleared {
            let all_synced = list.items.iter().all(|o| {
                o.synced_condition()
                    .is_some_and(|c| c.status == "True" && c.reason == "Available")
            });
            if all_synced {
                break;
            }
        }
        assert!(
            storm.elapsed() < Duration::from_secs(120),
            "Synced did not recover on every object"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        synced_false.len() >= 5,
        "the storm reached Synced on only {} objects",
        synced_false.len()
    );

    // One Warning when Synced turned False, one Normal when it recovered; never one per retry.
    // The recovery's Event follows its status write, so it may land a moment after the last
    // status the loop above saw: wait for every warning to have its recovery, then count.
    let events: Api<Event> = Api::namespaced(world.ns.client.clone(), &world.ns.name);
    let reasons_of = |events: &[Event], name: &str, reason: &str| {
        events
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter(|e| e.reason.as_deref() == Some(reason))
            .count()
    };
    let events = eventually(
        "every warning's recovery published",
        support::WAIT,
        || async {
            let events = events.list(&ListParams::default()).await?.items;
            let balanced = names.iter().all(|name| {
                reasons_of(&events, name, "Throttled") <= reasons_of(&events, name, "Recovered")
            });
            Ok(balanced.then_some(events))
        },
    )
    .await?;
    for name in &names {
        let of = |reason: &str| -> (usize, i32) {
            let matching: Vec<&Event> = events
                .iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .filter(|e| e.reason.as_deref() == Some(reason))
                .collect();
            let repeats = matching
                .iter()
                .map(|e| e.series.as_ref().map_or(1, |s| s.count))
                .sum();
            (matching.len(), repeats)
        };
        let (warnings, warning_repeats) = of("Throttled");
        let (recoveries, recovery_repeats) = of("Recovered");
        assert!(
            warnings <= 1 && warning_repeats <= 1,
            "{name}: {warning_repeats} Throttled warnings"
        );
        assert!(
            recoveries <= 1 && recovery_repeats <= 1,
            "{name}: {recovery_repeats} recoveries"
        );
        assert_eq!(
            warnings, recoveries,
            "{name}: each warning is followed by one recovery"
        );
    }
    world.stop_operator().await?;
    eprintln!(
        "{samples} samples over {:.1} s; Synced went False on {} of {count} objects",
        storm.elapsed().as_secs_f64(),
        synced_false.len()
    );
    Ok(())
}

#[tokio::test]
async fn the_argocd_health_check_reads_real_statuses() -> Result<()> {
    let options = Options {
        resync_interval: Duration::from_secs(3),
        ..Options::default()
    };
    let mut world = World::without_operator("health", options.clone()).await?;
    world
        .rekognition()
        .await
        .create_collection()
        .collection_id("foreign")
        .send()
        .await?;
    world.start_operator(&options).await?;
    let health = |name: &'static str| {
        let api = world.api.clone();
        async move { argocd_health(&api.get(name).await?) }
    };

    world.create("usable", CollectionSpec::default()).await?;
    world.wait_reason("usable", "Available").await?;
    assert_eq!(health("usable").await?.0, "Healthy");

    world.create("foreign", CollectionSpec::default()).await?;
    world.wait_reason("foreign", "AlreadyExists").await?;
    assert_eq!(health("foreign").await?.0, "Degraded");

    let observe = CollectionSpec {
        management_policy: ManagementPolicy::ObserveOnly,
        ..CollectionSpec::default()
    };
    world.create("absent", observe).await?;
    world.wait_reason("absent", "NotFound").await?;
    assert_eq!(health("absent").await?.0, "Degraded");

    world
        .fail_next(Operation::CreateCollection, ErrorKind::AccessDenied, 1)
        .await?;
    world.create("denied", CollectionSpec::default()).await?;
    world.wait_reason("denied", "AccessDenied").await?;
    assert_eq!(health("denied").await?.0, "Degraded");

    // A new object whose create is throttled: the operator retries by itself.
    world
        .fail_calls(Operation::CreateCollection, ErrorKind::Throttling, 1.0)
        .await?;
    world.create("queued", CollectionSpec::default()).await?;
    world.wait_reason("queued", "Throttled").await?;
    assert_eq!(health("queued").await?.0, "Progressing");

    // A usable collection whose refresh is throttled stays Healthy and says why.
    world
        .fail_calls(Operation::DescribeCollection, ErrorKind::Throttling, 1.0)
        .await?;
    eventually("usable's refresh throttled", support::WAIT, || async {
        let obj = world.api.get("usable").await?;
        Ok(obj.synced_condition().is_some_and(|c| c.status == "False"))
    })
    .await?;
    let (status, message) = health("usable").await?;
    assert_eq!(status, "Healthy");
    assert!(message.starts_with("Throttled:"), "{message}");
    world.admin().clear_faults().await?;
    world.stop_operator().await?;
    Ok(())
}

#[tokio::test]
async fn a_recreated_collection_never_shows_the_old_ones_creation_time() -> Result<()> {
    use futures::TryStreamExt;
    use kube::runtime::{WatchStreamExt, watcher};

    let options = Options {
        resync_interval: Duration::from_secs(2),
        ..Options::default()
    };
    let mut world = World::without_operator("recreate", options.clone()).await?;
    world.start_operator(&options).await?;
    world.create("phoenix", CollectionSpec::default()).await?;
    eventually("createdAt recorded", support::WAIT, || async {
        let obj = world.api.get("phoenix").await?;
        Ok(obj.status.and_then(|s| s.created_at).is_some())
    })
    .await?;
    // Every createdAt the status shows from now on, in order.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Option<String>>::new()));
    let record = seen.clone();
    let api = world.api.clone();
    let watch = tokio::spawn(async move {
        let config = watcher::Config::default().fields("metadata.name=phoenix");
        let mut objects = std::pin::pin!(watcher(api, config).applied_objects());
        while let Ok(Some(obj)) = objects.try_next().await {
            let created_at = obj.status.and_then(|s| s.created_at);
            let mut seen = record.lock().unwrap_or_else(|p| p.into_inner());
            if seen.last() != Some(&created_at) {
                seen.push(created_at);
            }
        }
    });
    eventually("watching", support::WAIT, || async {
        Ok(!seen.lock().unwrap_or_else(|p| p.into_inner()).is_empty())
    })
    .await?;
    // A second later (a different creation time), the collection is deleted behind the
    // operator's back, and half of all describes are throttled from now on.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    world
        .rekognition()
        .await
        .delete_collection()
        .collection_id("phoenix")
        .send()
        .await?;
    world
        .fail_calls(Operation::DescribeCollection, ErrorKind::Throttling, 0.5)
        .await?;
    eventually("recreated and described", support::WAIT, || async {
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(seen.len() >= 2 && seen.last().is_some_and(Option::is_some))
    })
    .await?;
    watch.abort();
    world.admin().clear_faults().await?;
    world.stop_operator().await?;
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let first = seen[0].clone();
    assert!(first.is_some());
    // The old creation time goes as soon as the new collection exists: no status shows it next
    // to the new collection, and the new one's arrives with its own describe.
    assert_eq!(seen.len(), 3, "createdAt went {seen:?}");
    assert_eq!(seen[1], None, "createdAt went {seen:?}");
    assert!(
        seen[2].is_some() && seen[2] != first,
        "createdAt went {seen:?}"
    );
    Ok(())
}

/// What the real kstatus (sigs.k8s.io/cli-utils, as Flux health checks and kubectl-based tools
/// use it) says of statuses the operator wrote: Failed at once for every object that waits for a
/// person (also after a spec edit), InProgress while the operator retries by itself or waits for
/// a collection to appear, Current when Ready. Prints the table docs/api.md shows.
#[tokio::test]
async fn kstatus_fails_fast_on_objects_that_wait_for_a_person() -> Result<()> {
    use kube::api::{Patch, PatchParams};
    use rekognition_operator::model::crd::{CLAIM_TAG, OWNER_TAG, PAUSED_ANNOTATION};

    let options = Options {
        resync_interval: Duration::from_secs(600),
        ..Options::default()
    };
    let mut world = World::without_operator("kstatus", options.clone()).await?;
    let sdk = world.rekognition().await;
    let ns = world.ns.name.clone();
    // Collections that are not the objects': one with no claim, one another cluster claims.
    sdk.create_collection()
        .collection_id("foreign")
        .tags("team", "other")
        .send()
        .await?;
    sdk.create_collection()
        .collection_id("awaiting")
        .tags(OWNER_TAG, "uid-in-the-other-cluster")
        .tags(CLAIM_TAG, format!("other-cluster/{ns}/awaiting"))
        .send()
        .await?;
    world.start_operator(&options).await?;

    let mut rows: Vec<(&str, &str, &str)> = Vec::new();
    let mut expect = |name, reason, kstatus| rows.push((name, reason, kstatus));

    world.create("available", CollectionSpec::default()).await?;
    world.wait_reason("available", "Available").await?;
    expect("available", "Available", "Current");

    world.create("foreign", CollectionSpec::default()).await?;
    world.wait_reason("foreign", "AlreadyExists").await?;
    expect("foreign", "AlreadyExists", "Failed");

    world.create("awaiting", CollectionSpec::default()).await?;
    world.wait_reason("awaiting", "AwaitingHandover").await?;
    expect("awaiting", "AwaitingHandover", "Failed");

    world
        .fail_next(Operation::CreateCollection, ErrorKind::InvalidParameter, 1)
        .await?;
    world.create("invalid", CollectionSpec::default()).await?;
    world.wait_reason("invalid", "InvalidParameter").await?;
    expect("invalid", "InvalidParameter", "Failed");

    // Ready, then its collection handed over to another cluster: seen at the tag read of the
    // next spec change.
    world.create("handed", CollectionSpec::default()).await?;
    world.wait_reason("handed", "Available").await?;
    sdk.tag_resource()
        .resource_arn(world.arn("handed"))
        .tags(OWNER_TAG, "uid-in-the-other-cluster")
        .tags(CLAIM_TAG, format!("other-cluster/{ns}/handed"))
        .send()
        .await?;
    let retag = serde_json::json!({"spec": {"tags": {"team": "vision"}}});
    world
        .api
        .patch("handed", &PatchParams::default(), &Patch::Merge(&retag))
        .await?;
    world.wait_reason("handed", "HandedOver").await?;
    expect("handed", "HandedOver", "Failed");

    world
        .fail_next(Operation::CreateCollection, ErrorKind::AccessDenied, 1)
        .await?;
    world.create("denied", CollectionSpec::default()).await?;
    world.wait_reason("denied", "AccessDenied").await?;
    expect("denied", "AccessDenied", "InProgress");

    let observe = CollectionSpec {
        management_policy: ManagementPolicy::ObserveOnly,
        ..CollectionSpec::default()
    };
    world.create("absent", observe).await?;
    world.wait_reason("absent", "NotFound").await?;
    expect("absent", "NotFound", "InProgress");

    // A spec edit that AWS refuses: the refusal is the verdict on that generation.
    world.create("edited", CollectionSpec::default()).await?;
    world.wait_reason("edited", "Available").await?;
    world
        .fail_next(Operation::TagResource, ErrorKind::InvalidParameter, 1)
        .await?;
    world
        .api
        .patch("edited", &PatchParams::default(), &Patch::Merge(&retag))
        .await?;
    world.wait_reason("edited", "InvalidParameter").await?;
    expect("edited", "InvalidParameter (on a spec edit)", "Failed");

    world.create("paused", CollectionSpec::default()).await?;
    world.wait_reason("paused", "Available").await?;
    let pause = serde_json::json!({"metadata": {"annotations": {PAUSED_ANNOTATION: "true"}}});
    world
        .api
        .patch("paused", &PatchParams::default(), &Patch::Merge(&pause))
        .await?;
    eventually("paused is paused", support::WAIT, || async {
        let obj = world.api.get("paused").await?;
        Ok(obj.synced_condition().is_some_and(|c| c.reason == "Paused"))
    })
    .await?;
    expect("paused", "Available (Synced: Paused)", "Current");

    // Last, so no other object waits behind the throttle: a new object whose create AWS
    // throttles, retried by the operator.
    world
        .fail_calls(Operation::CreateCollection, ErrorKind::Throttling, 1.0)
        .await?;
    world.create("throttled", CollectionSpec::default()).await?;
    world.wait_reason("throttled", "Throttled").await?;
    expect("throttled", "Throttled", "InProgress");

    let mut objects = Vec::new();
    for (name, _, _) in &rows {
        objects.push(world.api.get(name).await?);
    }
    let verdicts = support::kstatus::verdicts(&objects)?;
    eprintln!("| object state (Ready reason) | kstatus |\n|---|---|");
    for ((name, reason, _), verdict) in rows.iter().zip(&verdicts) {
        assert_eq!(&verdict.name, name);
        eprintln!("| {reason} | {} ({}) |", verdict.status, verdict.message);
    }
    for ((name, _, expected), verdict) in rows.iter().zip(&verdicts) {
        assert_eq!(
            verdict.status, *expected,
            "{name}: kstatus said {verdict:?}"
        );
    }
    // And the Argo CD health check agrees on what waits for a person.
    for (obj, (name, _, expected)) in objects.iter().zip(&rows) {
        if *expected == "Failed" {
            assert_eq!(argocd_health(obj)?.0, "Degraded", "{name}");
        }
    }
    world.admin().clear_faults().await?;
    world.stop_operator().await?;
    Ok(())
}

/// `kubectl annotate rekcol NAME rekognition.aws-operators.dev/reconcile-requested-at=$(date +%s)`:
/// a steady object is described (and its tags read) at once, and the status records the value;
/// a refused object is looked at again (here: its foreign collection went away, so it creates its
/// own); a paused object records nothing and makes no call.
#[tokio::test]
async fn a_reconcile_request_is_handled_at_once_and_recorded() -> Result<()> {
    use kube::api::{Patch, PatchParams};
    use rekognition_operator::model::crd::{PAUSED_ANNOTATION, RECONCILE_REQUEST_ANNOTATION};

    // Resyncs far off, so nothing but the request explains a call.
    let options = Options {
        resync_interval: Duration::from_secs(3600),
        ..Options::default()
    };
    let mut world = World::without_operator("on-demand", options.clone()).await?;
    world
        .rekognition()
        .await
        .create_collection()
        .collection_id("blocked")
        .send()
        .await?;
    world.start_operator(&options).await?;
    world.create("steady", CollectionSpec::default()).await?;
    world.create("blocked", CollectionSpec::default()).await?;
    world.wait_reason("steady", "Available").await?;
    world.wait_reason("blocked", "AlreadyExists").await?;
    let request = |value: &str| serde_json::json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: value}}});
    let handled = |name: &'static str, value: &'static str| {
        let api = world.api.clone();
        async move {
            let obj = api.get(name).await?;
            anyhow::Ok(
                obj.status
                    .and_then(|s| s.last_handled_reconcile_at)
                    .is_some_and(|v| v == value),
            )
        }
    };
    let calls_on = |id: &'static str| {
        let admin = world.admin();
        async move { anyhow::Ok(admin.calls_for(id).await?) }
    };

    // A steady object.
    let before = calls_on("steady").await?.len();
    let asked_at = chrono::Utc::now();
    world
        .api
        .patch(
            "steady",
            &PatchParams::default(),
            &Patch::Merge(&request("1")),
        )
        .await?;
    eventually("steady's request handled", support::WAIT, || {
        handled("steady", "1")
    })
    .await?;
    let calls = calls_on("steady").await?;
    let new: Vec<_> = calls[before..].iter().collect();
    let describe = new
        .iter()
        .find(|c| c.operation == "DescribeCollection")
        .expect("the request describes the collection");
    let latency = (describe.at - asked_at).to_std()?;
    eprintln!(
        "reconcile request → DescribeCollection in {latency:?}; calls: {:?}",
        new.iter().map(|c| c.operation.as_str()).collect::<Vec<_>>()
    );
    assert!(
        new.iter().any(|c| c.operation == "ListTagsForResource"),
        "the tags are read too: {new:?}"
    );
    assert!(
        latency <= Duration::from_secs(2),
        "described {latency:?} after the request"
    );
    // The same value again is no new request, even with the object changed beside it (a label,
    // so the operator sees a trigger): it makes no call.
    let done = world.triggers_done().await?;
    let mut again = request("1");
    again["metadata"]["labels"] = serde_json::json!({"touched": "yes"});
    world
        .api
        .patch("steady", &PatchParams::default(), &Patch::Merge(&again))
        .await?;
    world.until_quiet(done, 1.0).await?;
    assert_eq!(calls_on("steady").await?.len(), calls.len());

    // A refused object whose foreign collection went away behind the operator's back.
    world
        .rekognition()
        .await
        .delete_collection()
        .collection_id("blocked")
        .send()
        .await?;
    world
        .api
        .patch(
            "blocked",
            &PatchParams::default(),
            &Patch::Merge(&request("1")),
        )
        .await?;
    world.wait_reason("blocked", "Available").await?;
    eventually("blocked's request handled", support::WAIT, || {
        handled("blocked", "1")
    })
    .await?;

    // A paused object records nothing and makes no call.
    let pause = serde_json::json!({"metadata": {"annotations": {PAUSED_ANNOTATION: "true"}}});
    world
        .api
        .patch("steady", &PatchParams::default(), &Patch::Merge(&pause))
        .await?;
    world.wait_synced("steady", "Paused").await?;
    let paused_calls = calls_on("steady").await?.len();
    let done = world.triggers_done().await?;
    world
        .api
        .patch(
            "steady",
            &PatchParams::default(),
            &Patch::Merge(&request("2")),
        )
        .await?;
    world.until_quiet(done, 1.0).await?;
    assert!(
        handled("steady", "1").await?,
        "a paused object records nothing"
    );
    assert_eq!(calls_on("steady").await?.len(), paused_calls);
    world.stop_operator().await?;
    Ok(())
}

/// The terminal-looking reasons a tenant with status access can write at the current generation.
const FORGEABLE: [&str; 5] = [
    "AlreadyExists",
    "InvalidParameter",
    "RegionConflict",
    "HandedOver",
    "AwaitingHandover",
];

fn forged_name(reason: &str) -> String {
    format!("forged-{}", reason.to_lowercase())
}

/// Writes Ready and Synced False with `reason` at the object's current generation, through the
/// status subresource, as a tenant allowed to write it would.
async fn forge_reason(world: &World, name: &str, reason: &str) -> Result<()> {
    use kube::api::{Patch, PatchParams};
    let generation = world.api.get(name).await?.metadata.generation;
    let condition = |type_: &str| {
        serde_json::json!({
            "type": type_, "status": "False", "reason": reason,
            "message": "written by hand", "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        })
    };
    let status = serde_json::json!({ "status": {
        "observedGeneration": generation,
        "conditions": [condition("Ready"), condition("Synced")],
    }});
    world
        .api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Deletes the object's collection behind the operator's back.
async fn delete_behind_the_operators_back(world: &World, name: &str) -> Result<()> {
    world
        .rekognition()
        .await
        .delete_collection()
        .collection_id(name)
        .send()
        .await?;
    Ok(())
}

/// Creates an object per forgeable reason and waits until each is Available; answers their names.
async fn create_one_per_reason(world: &World) -> Result<Vec<String>> {
    let names: Vec<String> = FORGEABLE.iter().map(|r| forged_name(r)).collect();
    for name in &names {
        world.create(name, CollectionSpec::default()).await?;
    }
    for name in &names {
        world.wait_reason(name, "Available").await?;
    }
    Ok(names)
}

/// Forges each object's reason (one per forgeable reason) and deletes its collection behind the
/// operator's back.
async fn forge_and_delete(world: &World, names: &[String]) -> Result<()> {
    for (reason, name) in FORGEABLE.iter().zip(names) {
        forge_reason(world, name, reason).await?;
        delete_behind_the_operators_back(world, name).await?;
    }
    Ok(())
}

/// Waits until every forged object's collection exists again and the object says Available.
async fn wait_repaired(world: &World, names: &[String]) -> Result<()> {
    for name in names {
        world.wait_reason(name, "Available").await?;
        eventually(
            &format!("{name}'s collection is back"),
            support::WAIT,
            || world.aws_has(name),
        )
        .await?;
    }
    Ok(())
}

/// A reconcile request looks at AWS whatever the status says: each terminal-looking reason, forged
/// on an object whose collection is then deleted behind the operator's back, is checked against
/// AWS, and the collection is recreated. (`HandedOver` was once trusted as the operator's own word,
/// so its collection stayed gone.)
#[tokio::test]
async fn a_reconcile_request_looks_at_aws_whatever_terminal_reason_the_status_claims() -> Result<()>
{
    use kube::api::{Patch, PatchParams};
    use rekognition_operator::model::crd::RECONCILE_REQUEST_ANNOTATION;
    // Resyncs far off, so nothing but the request explains a repair.
    let options = Options {
        resync_interval: Duration::from_secs(3600),
        ..Options::default()
    };
    let mut world = World::without_operator("forged-request", options.clone()).await?;
    world.start_operator(&options).await?;
    let names = create_one_per_reason(&world).await?;
    let done = world.triggers_done().await?;
    forge_and_delete(&world, &names).await?;
    // Nothing repairs them on its own before the resync an hour away: the operator finishes
    // with the trigger of each forged status without a call.
    world.until_quiet(done, names.len() as f64).await?;
    for name in &names {
        assert!(!world.aws_has(name).await?, "{name} stays gone until asked");
    }
    let request =
        serde_json::json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: "1"}}});
    for name in &names {
        world
            .api
            .patch(name, &PatchParams::default(), &Patch::Merge(&request))
            .await?;
    }
    wait_repaired(&world, &names).await?;
    world.stop_operator().await?;
    Ok(())
}

/// A forged terminal reason stops drift repair for one resync interval at most: while the
/// operator runs (the status is not its memory of what it found), and across a restart (where the
/// status is all it has, so each verdict is looked at again at the object's own phase).
#[tokio::test]
async fn a_forged_terminal_reason_holds_off_drift_repair_one_resync_at_most() -> Result<()> {
    let options = Options {
        resync_interval: Duration::from_secs(3),
        ..Options::default()
    };
    let mut world = World::without_operator("forged-resync", options.clone()).await?;
    world.start_operator(&options).await?;
    let names = create_one_per_reason(&world).await?;
    // While the operator runs.
    forge_and_delete(&world, &names).await?;
    wait_repaired(&world, &names).await?;
    // Across a restart.
    world.stop_operator().await?;
    forge_and_delete(&world, &names).await?;
    world.start_operator(&options).await?;
    wait_repaired(&world, &names).await?;
    world.stop_operator().await?;
    Ok(())
}

/// A flood of reconcile requests on one object costs AWS one reconcile per
/// [`REQUEST_SPACING`](rekognition_operator::core::schedule::REQUEST_SPACING): the values set in between
/// are coalesced, and the last one is handled.
#[tokio::test]
async fn reconcile_requests_for_one_object_are_spaced() -> Result<()> {
    use kube::api::{Patch, PatchParams};
    use rekognition_operator::core::schedule::REQUEST_SPACING;
    use rekognition_operator::model::crd::RECONCILE_REQUEST_ANNOTATION;
    let options = Options {
        resync_interval: Duration::from_secs(3600),
        ..Options::default()
    };
    let mut world = World::without_operator("request-flood", options.clone()).await?;
    world.start_operator(&options).await?;
    world.create("flooded", CollectionSpec::default()).await?;
    world.wait_reason("flooded", "Available").await?;
    let before = world.admin().calls_for("flooded").await?.len();
    let flood = 20;
    for i in 1..=flood {
        let request = serde_json::json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: i.to_string()}}});
        world
            .api
            .patch("flooded", &PatchParams::default(), &Patch::Merge(&request))
            .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = flood.to_string();
    eventually("the last request handled", support::WAIT, || async {
        let obj = world.api.get("flooded").await?;
        Ok(obj.status.and_then(|s| s.last_handled_reconcile_at) == Some(last.clone()))
    })
    .await?;
    let describes: Vec<_> = world.admin().calls_for("flooded").await?[before..]
        .iter()
        .filter(|c| c.operation == "DescribeCollection")
        .map(|c| c.at)
        .collect();
    eprintln!(
        "{flood} request values over {:?}: {} DescribeCollection calls",
        Duration::from_millis(100) * flood,
        describes.len()
    );
    assert!(
        (2..=3).contains(&describes.len()),
        "one describe per {REQUEST_SPACING:?} at most: {describes:?}"
    );
    for pair in describes.windows(2) {
        let gap = (pair[1] - pair[0]).to_std()?;
        assert!(
            gap >= REQUEST_SPACING - Duration::from_millis(100),
            "describes {gap:?} apart: {describes:?}"
        );
    }
    world.stop_operator().await?;
    Ok(())
}
