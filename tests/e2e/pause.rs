//! The pause switch end to end: the annotation `rekognition.aws-operators.dev/paused: "true"`
//! stops every AWS call (the emulator's counters do not move, though resyncs are due every
//! second and the spec changes), deletion waits with the finalizer kept, and removing the
//! annotation resumes both.

use crate::support;

use std::time::Duration;

use anyhow::Result;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use rekognition_operator::model::crd::{CollectionSpec, FINALIZER, PAUSED_ANNOTATION};
use support::{Options, World, eventually};

async fn set_paused(world: &World, name: &str, paused: bool) -> Result<()> {
    let value = if paused {
        serde_json::Value::from("true")
    } else {
        serde_json::Value::Null
    };
    let patch = serde_json::json!({ "metadata": { "annotations": { PAUSED_ANNOTATION: value } } });
    world
        .api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Lets the operator run for a while and returns how many AWS calls the emulator answered
/// meanwhile: a resync is due every second, so a pause that leaked would show.
async fn calls_during(world: &World, quiet: Duration) -> Result<u64> {
    let before = world.call_totals().await?.total;
    tokio::time::sleep(quiet).await;
    Ok(world.call_totals().await?.total - before)
}

#[tokio::test]
async fn a_paused_object_makes_no_aws_call_its_deletion_waits_and_unpausing_resumes() -> Result<()>
{
    let options = Options {
        resync_interval: Duration::from_secs(1),
        ..Options::default()
    };
    let mut world = World::without_operator("pause", options.clone()).await?;
    world.start_operator(&options).await?;
    world.create("held", CollectionSpec::default()).await?;
    world.wait_reason("held", "Available").await?;

    // Paused: Synced False with reason Paused, Ready as it was, no AWS call at all.
    set_paused(&world, "held", true).await?;
    let obj = world.wait_synced("held", "Paused").await?;
    assert_eq!(
        obj.ready_condition()
            .map(|c| (c.status.as_str(), c.reason.as_str())),
        Some(("True", "Available")),
        "Ready keeps its last value"
    );
    // A spec change while paused is not carried out either.
    let patch = serde_json::json!({ "spec": { "tags": { "team": "vision" } } });
    world
        .api
        .patch("held", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    assert_eq!(calls_during(&world, Duration::from_secs(4)).await?, 0);
    assert!(!world.aws_tags("held").await?.contains_key("team"));

    // Unpaused: the operator resumes and carries out the change it held back.
    set_paused(&world, "held", false).await?;
    eventually("the held-back tag reaches AWS", support::WAIT, || async {
        Ok(world
            .aws_tags("held")
            .await?
            .get("team")
            .map(String::as_str)
            == Some("vision"))
    })
    .await?;
    world.wait_synced("held", "Available").await?;

    // Paused again, then deleted: the object stays, with its finalizer, and so does the
    // collection.
    set_paused(&world, "held", true).await?;
    world.wait_synced("held", "Paused").await?;
    world.delete("held").await?;
    assert_eq!(calls_during(&world, Duration::from_secs(4)).await?, 0);
    let obj = world.api.get("held").await?;
    assert!(obj.metadata.deletion_timestamp.is_some());
    assert!(
        obj.finalizers().iter().any(|f| f == FINALIZER),
        "the finalizer is kept while paused"
    );
    let message = obj
        .synced_condition()
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("deleted"), "{message}");
    assert!(world.aws_has("held").await?);

    // Unpaused: the deletion goes ahead.
    set_paused(&world, "held", false).await?;
    world.wait_gone("held").await?;
    assert!(!world.aws_has("held").await?);
    Ok(())
}
