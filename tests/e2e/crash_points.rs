//! Crash safety at the worst moments: the operator process dies (SIGKILL, at a named crash
//! point) right after AWS acted and before it recorded that, and a restarted operator converges
//! without a duplicate and without a leak.

use crate::support;

use anyhow::{Context, Result};
use rekognition_operator::model::crd::CollectionSpec;
use support::{WAIT, World};
use testbed::{OperatorProcess, killed_by_sigkill};

#[tokio::test]
async fn a_crash_right_after_create_collection_is_recovered_without_a_second_create() -> Result<()>
{
    let world = World::without_operator("crash-create", Default::default()).await?;
    let dir = tempfile::tempdir()?;
    let options = world.operator_process_options(dir.path()).await?;

    let mut doomed =
        OperatorProcess::spawn(&options.clone().crash_at("after-create-collection", 1))?;
    doomed.wait_ready(WAIT).await?;
    world.create("photos", CollectionSpec::default()).await?;
    let status = doomed.wait_exit(WAIT).await?;
    assert!(
        killed_by_sigkill(&status),
        "died at the crash point: {status}"
    );
    assert!(
        doomed
            .log()
            .contains("crash point after-create-collection reached"),
        "{}",
        doomed.log_tail(20)
    );

    // AWS has the collection; the object does not know yet.
    assert!(world.aws_has("photos").await?);
    let object = world.api.get("photos").await?;
    assert_eq!(
        object
            .status
            .as_ref()
            .and_then(|s| s.collection_arn.clone()),
        None,
        "the status was never written"
    );

    let mut restarted = OperatorProcess::spawn(&options)?;
    restarted.wait_ready(WAIT).await?;
    let object = world.wait_reason("photos", "Available").await?;
    assert_eq!(
        object.status.context("status")?.collection_arn,
        Some(world.arn("photos"))
    );
    let counters = world.admin().counters().await?;
    assert_eq!(
        counters.get("CreateCollection", "Ok"),
        1,
        "one collection, created once: {counters:?}"
    );
    assert_eq!(world.admin().collections().await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_crash_right_after_delete_collection_is_recovered_and_the_object_released() -> Result<()>
{
    let world = World::without_operator("crash-delete", Default::default()).await?;
    let dir = tempfile::tempdir()?;
    let options = world.operator_process_options(dir.path()).await?;

    let mut doomed =
        OperatorProcess::spawn(&options.clone().crash_at("after-delete-collection", 1))?;
    doomed.wait_ready(WAIT).await?;
    world.create("photos", CollectionSpec::default()).await?;
    world.wait_reason("photos", "Available").await?;
    world.delete("photos").await?;
    let status = doomed.wait_exit(WAIT).await?;
    assert!(
        killed_by_sigkill(&status),
        "died at the crash point: {status}"
    );

    // The collection is gone; the object still holds its finalizer.
    assert!(!world.aws_has("photos").await?);
    let object = world.api.get("photos").await?;
    assert!(object.metadata.deletion_timestamp.is_some());
    assert!(!object.metadata.finalizers.unwrap_or_default().is_empty());

    let mut restarted = OperatorProcess::spawn(&options)?;
    restarted.wait_ready(WAIT).await?;
    world.wait_gone("photos").await?;
    assert!(world.admin().collections().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_paused_operator_resumes_and_a_terminated_one_exits_cleanly() -> Result<()> {
    let world = World::without_operator("signals", Default::default()).await?;
    let dir = tempfile::tempdir()?;
    let options = world.operator_process_options(dir.path()).await?;
    let mut operator = OperatorProcess::spawn(&options)?;
    operator.wait_ready(WAIT).await?;

    operator.pause()?;
    world
        .create("while-paused", CollectionSpec::default())
        .await?;
    // Frozen: nothing reaches AWS. (A short look is enough; the check below is the point.)
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!world.aws_has("while-paused").await?);
    operator.resume()?;
    world.wait_reason("while-paused", "Available").await?;

    operator.terminate()?;
    let status = operator.wait_exit(WAIT).await?;
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
    Ok(())
}
