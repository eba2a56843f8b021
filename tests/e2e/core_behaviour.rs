//! The operator's core behaviour, end to end: the real kube-apiserver, the real AWS SDK and the
//! Rekognition emulator over HTTP, the operator running as a task of each test.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rekognition_emulator::ErrorKind;
use rekognition_emulator::admin::FaultRule;
use rekognition_operator::model::crd::{CollectionSpec, DeletionPolicy, OWNER_TAG};
use support::{Options, World};

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn myphotos_becomes_ready_with_canonical_arn_and_model_version() -> anyhow::Result<()> {
    let world = World::start("myphotos").await?;
    world.create("myphotos", CollectionSpec::default()).await?;
    world.wait_reason("myphotos", "Available").await?;
    // The creation time follows from a describe: the first resync's, or one asked for now.
    world.describe_now("myphotos").await?;
    let obj = world.api.get("myphotos").await?;
    let status = obj.status.expect("status");
    assert_eq!(
        status.collection_arn.as_deref(),
        Some(world.arn("myphotos").as_str())
    );
    assert_eq!(status.face_model_version.as_deref(), Some("7.0"));
    assert_eq!(status.collection_id.as_deref(), Some("myphotos"));
    assert_eq!(status.face_count, Some(0));
    assert_eq!(status.observed_generation, obj.metadata.generation);
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.type_.as_str(), ready.status.as_str()),
        ("Ready", "True")
    );
    Ok(())
}

#[tokio::test]
async fn tags_given_at_create_are_set_with_the_ownership_tag() -> anyhow::Result<()> {
    let world = World::start("tags").await?;
    let spec = CollectionSpec {
        collection_id: Some("tagged".into()),
        tags: tags(&[("team", "vision"), ("cost-center", "42")]),
        ..CollectionSpec::default()
    };
    let obj = world.create("tagged-object", spec).await?;
    world.wait_reason("tagged-object", "Available").await?;
    let aws_tags = world.aws_tags("tagged").await?;
    let expected = world
        .owned_tags(&obj, &tags(&[("team", "vision"), ("cost-center", "42")]))
        .await?;
    assert_eq!(aws_tags, expected);
    // One create carried the tags: no TagResource call was needed.
    let counters = world.admin().counters().await?;
    assert_eq!(counters.get("CreateCollection", "Ok"), 1);
    assert_eq!(counters.total("TagResource"), 0);
    Ok(())
}

#[tokio::test]
async fn deleting_the_object_deletes_the_collection() -> anyhow::Result<()> {
    let world = World::start("delete").await?;
    world.create("doomed", CollectionSpec::default()).await?;
    world.wait_reason("doomed", "Available").await?;
    assert!(world.aws_has("doomed").await?);
    world.delete("doomed").await?;
    world.wait_gone("doomed").await?;
    assert!(!world.aws_has("doomed").await?);
    Ok(())
}

#[tokio::test]
async fn retain_keeps_the_collection_and_removes_only_the_ownership_tag() -> anyhow::Result<()> {
    let world = World::start("retain").await?;
    let spec = CollectionSpec {
        deletion_policy: DeletionPolicy::Retain,
        tags: tags(&[("keep", "me")]),
        ..CollectionSpec::default()
    };
    world.create("kept", spec).await?;
    world.wait_reason("kept", "Available").await?;
    world.delete("kept").await?;
    world.wait_gone("kept").await?;
    assert_eq!(world.aws_tags("kept").await?, tags(&[("keep", "me")]));
    Ok(())
}

#[tokio::test]
async fn adopts_own_collection_after_crash() -> anyhow::Result<()> {
    // The operator "crashed" after CreateCollection succeeded and before the status was written:
    // the collection exists with this object's UID.
    let mut world = World::without_operator("crash", Options::default()).await?;
    let obj = world.create("survivor", CollectionSpec::default()).await?;
    let uid = obj.metadata.uid.expect("uid");
    world
        .rekognition()
        .await
        .create_collection()
        .collection_id("survivor")
        .tags(OWNER_TAG, uid)
        .send()
        .await?;
    world.start_operator(&Options::default()).await?;
    let obj = world.wait_reason("survivor", "Available").await?;
    assert_eq!(
        obj.status.and_then(|s| s.collection_arn).as_deref(),
        Some(world.arn("survivor").as_str())
    );
    let counters = world.admin().counters().await?;
    assert_eq!(
        counters.get("CreateCollection", "Ok"),
        1,
        "no second collection was created"
    );
    assert_eq!(world.admin().collections().await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn foreign_collection_is_reported_and_never_touched() -> anyhow::Result<()> {
    let mut world = World::without_operator("foreign", Options::default()).await?;
    world
        .rekognition()
        .await
        .create_collection()
        .collection_id("theirs")
        .tags("owner", "another-team")
        .send()
        .await?;
    world.start_operator(&Options::default()).await?;
    world.create("theirs", CollectionSpec::default()).await?;
    let obj = world.wait_reason("theirs", "AlreadyExists").await?;
    let ready = obj.ready_condition().expect("ready").clone();
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains("Adopt"), "{}", ready.message);
    assert!(
        obj.status
            .as_ref()
            .and_then(|s| s.collection_arn.clone())
            .is_none()
    );
    let calls_at_refusal = world.admin().calls_for("theirs").await?.len();

    // A restarted operator reconciles every object again; the refused one must cost no call.
    world.stop_operator().await?;
    world.start_operator(&Options::default()).await?;
    world.create("sentinel", CollectionSpec::default()).await?;
    world.wait_reason("sentinel", "Available").await?;

    // Deleting it releases the object without any AWS call either.
    world.delete("theirs").await?;
    world.wait_gone("theirs").await?;
    let calls = world.admin().calls_for("theirs").await?;
    assert_eq!(calls.len(), calls_at_refusal, "{calls:#?}");
    assert_eq!(
        world.aws_tags("theirs").await?,
        tags(&[("owner", "another-team")])
    );
    Ok(())
}

#[tokio::test]
async fn fifty_objects_under_a_one_per_second_quota_all_become_ready() -> anyhow::Result<()> {
    let mut options = Options::default();
    options.emulator.quota.rate_per_sec = 1.0;
    options.emulator.quota.burst = 1;
    options.aws_rate = 4.0;
    options.aws_burst = 4;
    let mut world = World::without_operator("quota", options.clone()).await?;
    world.start_operator(&options).await?;
    let elapsed = world
        .create_many_and_wait("burst", 50, Duration::from_secs(300))
        .await?;
    let calls = world.call_totals().await?;
    println!(
        "quota 1/s per operation, 50 objects: all Ready in {:.1}s; {calls}",
        elapsed.as_secs_f64()
    );
    let counters = calls.counters;
    assert_eq!(counters.get("CreateCollection", "Ok"), 50);
    if std::env::var_os("TIMELINE").is_some() {
        let calls = world.admin().calls().await?;
        let start = calls[0].at;
        let mut buckets = std::collections::BTreeMap::<i64, (u32, u32)>::new();
        for call in &calls {
            let slot = (call.at - start).num_seconds() / 5;
            let entry = buckets.entry(slot * 5).or_default();
            if call.outcome == "Ok" {
                entry.0 += 1
            } else {
                entry.1 += 1
            }
        }
        println!("timeline (s: ok, throttled): {buckets:?}");
    }
    Ok(())
}

#[tokio::test]
async fn server_errors_show_a_transient_reason_then_recover() -> anyhow::Result<()> {
    let world = World::start("outage").await?;
    world
        .admin()
        .set_fault(&FaultRule {
            operation: None,
            error: Some(ErrorKind::InternalServerError),
            probability: 1.0,
            latency_ms: 0,
        })
        .await?;
    let outage = Instant::now();
    world.create("resilient", CollectionSpec::default()).await?;
    let obj = world.wait_reason("resilient", "AwsUnavailable").await?;
    let ready = obj.ready_condition().expect("ready");
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains("InternalServerError"),
        "{}",
        ready.message
    );
    // Keep AWS down for 10 s, then heal it.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(outage.elapsed())).await;
    world.admin().clear_faults().await?;
    world.wait_reason("resilient", "Available").await?;
    let failures = world
        .admin()
        .counters()
        .await?
        .get("CreateCollection", "InternalServerError");
    assert!(
        (2..=12).contains(&failures),
        "backed off, not hot-looping: {failures} failed creates in 10 s"
    );
    Ok(())
}
