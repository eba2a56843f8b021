//! Safety in a shared cluster end to end: the region pin, proven ownership, releasing ownership
//! on a policy change, tags at the limit, the tenancy policy and credentials failures.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use rekognition_operator::model::crd::{
    CollectionSpec, DeletionPolicy, FINALIZER, ManagementPolicy, OWNER_TAG,
};
use support::{Credentials, Options, World, eventually};

fn counters_total(counters: &rekognition_emulator::admin::Counters) -> u64 {
    counters.0.values().flat_map(|o| o.values()).sum()
}

#[tokio::test]
async fn changing_the_default_region_never_moves_or_duplicates_a_collection() -> Result<()> {
    let options = Options::default();
    let mut world = World::without_operator("region-pin", options.clone()).await?;
    world.start_operator(&options).await?;
    world.create("pinned", CollectionSpec::default()).await?;
    world.wait_reason("pinned", "Available").await?;
    world.stop_operator().await?;

    // The platform team changes the operator's default region.
    let moved = Options {
        region: Some("eu-west-1".into()),
        resync_interval: Duration::from_secs(2),
        ..options
    };
    world.start_operator(&moved).await?;
    // Several resyncs later the object still uses the region it was created in.
    let before = world.admin().calls_for("pinned").await?.len();
    eventually(
        "two resyncs in the pinned region",
        support::WAIT,
        || async { Ok(world.admin().calls_for("pinned").await?.len() >= before + 2) },
    )
    .await?;
    let obj = world.api.get("pinned").await?;
    let status = obj.status.clone().expect("status");
    assert_eq!(status.region.as_deref(), Some("us-east-1"));
    assert_eq!(
        obj.synced_condition()
            .map(|c| (c.status.as_str(), c.reason.as_str())),
        Some(("True", "Available")),
        "{status:?}"
    );
    let calls = world.admin().calls_for("pinned").await?;
    assert!(
        calls.iter().all(|c| c.outcome == "Ok"),
        "every call went to the pinned region: {calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.operation == "CreateCollection")
            .count(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_collection_replaced_behind_the_operators_back_is_not_reported_as_ours() -> Result<()> {
    let options = Options {
        resync_interval: Duration::from_secs(3),
        ..Options::default()
    };
    let mut world = World::without_operator("proven", options.clone()).await?;
    world.start_operator(&options).await?;
    world.create("replaced", CollectionSpec::default()).await?;
    eventually("createdAt recorded", support::WAIT, || async {
        let obj = world.api.get("replaced").await?;
        Ok(obj.status.and_then(|s| s.created_at).is_some())
    })
    .await?;
    world.stop_operator().await?;
    // Someone else deletes the collection and creates their own under the same ID.
    let rekognition = world.rekognition().await;
    rekognition
        .delete_collection()
        .collection_id("replaced")
        .send()
        .await?;
    tokio::time::sleep(Duration::from_millis(1100)).await; // a creation time one second later
    rekognition
        .create_collection()
        .collection_id("replaced")
        .tags(OWNER_TAG, "someone-else")
        .send()
        .await?;
    world.start_operator(&options).await?;
    let obj = world.wait_reason("replaced", "AlreadyExists").await?;
    let status = obj.status.expect("status");
    assert_eq!(
        (status.collection_arn, status.created_at, status.face_count),
        (None, None, None),
        "nothing of another owner's collection is published as ours"
    );
    assert_eq!(
        world
            .aws_tags("replaced")
            .await?
            .get(OWNER_TAG)
            .map(String::as_str),
        Some("someone-else"),
        "the other owner's collection is untouched"
    );
    Ok(())
}

#[tokio::test]
async fn turning_observe_only_releases_ownership_so_a_later_delete_leaks_nothing() -> Result<()> {
    let world = World::start("release").await?;
    world.create("flip", CollectionSpec::default()).await?;
    world.wait_reason("flip", "Available").await?;
    let patch = serde_json::json!({ "spec": { "managementPolicy": "ObserveOnly" } });
    world
        .api
        .patch("flip", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    eventually("finalizer gone", support::WAIT, || async {
        let obj = world.api.get("flip").await?;
        Ok(!obj
            .metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == FINALIZER))
    })
    .await?;
    assert!(
        !world.aws_tags("flip").await?.contains_key(OWNER_TAG),
        "ownership released before the finalizer went"
    );
    world.delete("flip").await?;
    world.wait_gone("flip").await?;
    assert!(world.aws_has("flip").await?, "ObserveOnly never deletes");
    assert!(!world.aws_tags("flip").await?.contains_key(OWNER_TAG));
    // Any object may now adopt it.
    world
        .create(
            "flip",
            CollectionSpec {
                management_policy: ManagementPolicy::Adopt,
                ..CollectionSpec::default()
            },
        )
        .await?;
    world.wait_reason("flip", "Adopted").await?;
    Ok(())
}

#[tokio::test]
async fn renaming_every_tag_at_the_limit_converges() -> Result<()> {
    let world = World::start("tag-limit").await?;
    let old: BTreeMap<String, String> = (0..199)
        .map(|i| (format!("old-{i:03}"), "v".into()))
        .collect();
    world
        .create(
            "full",
            CollectionSpec {
                tags: old,
                ..CollectionSpec::default()
            },
        )
        .await?;
    world.wait_reason("full", "Available").await?;
    // One merge patch: every old key removed (null), 199 new ones added.
    let mut tags = serde_json::Map::new();
    for i in 0..199 {
        tags.insert(format!("old-{i:03}"), serde_json::Value::Null);
        tags.insert(format!("new-{i:03}"), "v".into());
    }
    let patch = serde_json::json!({ "spec": { "tags": tags } });
    world
        .api
        .patch("full", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    eventually("tags renamed", support::WAIT, || async {
        let tags = world.aws_tags("full").await?;
        Ok(tags.keys().filter(|k| k.starts_with("new-")).count() == 199
            && !tags.keys().any(|k| k.starts_with("old-")))
    })
    .await?;
    let obj = world.api.get("full").await?;
    assert_eq!(
        obj.synced_condition().map(|c| c.reason.as_str()),
        Some("Available")
    );
    assert!(world.aws_tags("full").await?.contains_key(OWNER_TAG));
    Ok(())
}

#[tokio::test]
async fn the_operator_enforces_the_tenancy_policy_with_no_aws_call() -> Result<()> {
    let options = Options {
        args: vec![
            "--allowed-regions".into(),
            "us-east-1".into(),
            "--require-namespace-prefix".into(),
            "--external-powers".into(),
            "none".into(),
        ],
        ..Options::default()
    };
    let mut world = World::without_operator("tenancy", options.clone()).await?;
    world.start_operator(&options).await?;
    let prefix = format!("{}-", world.ns.name);
    world
        .create("unprefixed", CollectionSpec::default())
        .await?;
    world
        .create(
            &format!("{prefix}elsewhere"),
            CollectionSpec {
                region: Some("eu-west-1".into()),
                ..CollectionSpec::default()
            },
        )
        .await?;
    world
        .create(
            &format!("{prefix}adopter"),
            CollectionSpec {
                management_policy: ManagementPolicy::Adopt,
                ..CollectionSpec::default()
            },
        )
        .await?;
    world
        .create(&format!("{prefix}fine"), CollectionSpec::default())
        .await?;
    for (name, words) in [
        ("unprefixed".to_owned(), "spec.collectionId"),
        (format!("{prefix}elsewhere"), "region eu-west-1"),
        (format!("{prefix}adopter"), "spec.managementPolicy"),
    ] {
        let obj = world.wait_reason(&name, "PolicyDenied").await?;
        let message = support::ready_message(&obj);
        assert!(message.contains(words), "{name}: {message}");
        assert!(
            obj.metadata.finalizers.unwrap_or_default().is_empty(),
            "{name}: a refused object holds no finalizer"
        );
    }
    world
        .wait_reason(&format!("{prefix}fine"), "Available")
        .await?;
    let calls = world.admin().calls().await?;
    assert!(
        calls
            .iter()
            .all(|c| c.collection_id.as_deref() == Some(format!("{prefix}fine").as_str())),
        "refused objects made no AWS call: {calls:?}"
    );
    for name in ["unprefixed".to_owned(), format!("{prefix}adopter")] {
        world.delete(&name).await?;
        world.wait_gone(&name).await?;
    }
    Ok(())
}

/// An object can vanish while its collection is being created: the API server may let a delete
/// that raced with the finalizer's addition remove the object anyway (the chaos campaign's
/// spec-churn scenario caught it), and a tenant may strip the finalizer by hand. Here the create
/// is slowed down and, while it is in flight, the finalizer is stripped and the object deleted.
/// The collection made for it must go the way its deletionPolicy says: deleted, or kept without
/// the ownership tag.
#[tokio::test]
async fn a_collection_created_for_an_object_that_vanished_meanwhile_is_cleaned_up() -> Result<()> {
    let mut world = World::without_operator("vanished", Options::default()).await?;
    world.start_operator(&Options::default()).await?;
    world
        .admin()
        .set_fault(&rekognition_emulator::admin::FaultRule {
            operation: Some(rekognition_emulator::Operation::CreateCollection),
            error: None,
            probability: 0.0,
            latency_ms: 1500,
        })
        .await?;
    for (name, policy) in [
        ("vanished-delete", DeletionPolicy::Delete),
        ("vanished-retain", DeletionPolicy::Retain),
    ] {
        world
            .create(
                name,
                CollectionSpec {
                    deletion_policy: policy,
                    ..CollectionSpec::default()
                },
            )
            .await?;
        // The finalizer's write is the last before the create: from here the create is in flight.
        eventually(
            &format!("{name} has the finalizer"),
            support::WAIT,
            || async {
                let obj = world.api.get(name).await?;
                Ok(obj.finalizers().iter().any(|f| f == FINALIZER))
            },
        )
        .await?;
        let strip = serde_json::json!({ "metadata": { "finalizers": null } });
        world
            .api
            .patch(name, &PatchParams::default(), &Patch::Merge(&strip))
            .await?;
        world.delete(name).await?;
        world.wait_gone(name).await?;
    }
    for name in ["vanished-delete", "vanished-retain"] {
        eventually(
            &format!("the slow create of {name} is carried out"),
            Duration::from_secs(10),
            || async {
                Ok(world
                    .admin()
                    .calls_for(name)
                    .await?
                    .iter()
                    .any(|c| c.operation == "CreateCollection"))
            },
        )
        .await?;
    }
    eventually(
        "the Delete object's collection is deleted",
        Duration::from_secs(20),
        || async { Ok(!world.aws_has("vanished-delete").await?) },
    )
    .await?;
    eventually(
        "the Retain object's collection is kept, without the ownership tag",
        Duration::from_secs(20),
        || async {
            Ok(world.aws_has("vanished-retain").await?
                && !world
                    .aws_tags("vanished-retain")
                    .await?
                    .contains_key(OWNER_TAG))
        },
    )
    .await?;
    Ok(())
}

/// The platform team relaxes its policy (a `helm upgrade` restarts the operator with other
/// flags): what the old policy refused goes ahead with no spec change.
#[tokio::test]
async fn objects_refused_by_a_policy_go_ahead_once_the_policy_allows_them() -> Result<()> {
    let strict = Options {
        args: vec!["--require-namespace-prefix".into()],
        ..Options::default()
    };
    let mut world = World::without_operator("tenancy-relaxed", strict.clone()).await?;
    world.start_operator(&strict).await?;
    world
        .create("unprefixed", CollectionSpec::default())
        .await?;
    world.wait_reason("unprefixed", "PolicyDenied").await?;
    assert_eq!(
        world.call_totals().await?.total,
        0,
        "no AWS call while refused"
    );

    world.stop_operator().await?;
    world.start_operator(&Options::default()).await?;
    let obj = world.wait_reason("unprefixed", "Available").await?;
    assert!(
        obj.metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == FINALIZER),
        "an object that owns a collection holds the finalizer"
    );
    world.delete("unprefixed").await?;
    world.wait_gone("unprefixed").await?;
    assert!(!world.aws_has("unprefixed").await?, "nothing leaked");
    Ok(())
}

#[tokio::test]
async fn credentials_that_cannot_be_obtained_say_so_and_reach_no_aws_api() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let options = Options {
        // IRSA misconfigured: the projected token file is not there.
        credentials: Credentials::WebIdentity {
            token_file: dir.path().join("missing-token"),
            role_arn: "arn:aws:iam::123456789012:role/rekognition-operator".into(),
        },
        ..Options::default()
    };
    let mut world = World::without_operator("no-creds", options.clone()).await?;
    world.start_operator(&options).await?;
    world.create("orphan", CollectionSpec::default()).await?;
    let obj = world
        .wait_reason("orphan", "CredentialsUnavailable")
        .await?;
    let message = support::ready_message(&obj);
    assert!(
        message.to_lowercase().contains("web identity") || message.contains("missing-token"),
        "the message names the provider that failed: {message}"
    );
    assert_eq!(
        counters_total(&world.admin().counters().await?),
        0,
        "no call reached Rekognition"
    );
    Ok(())
}
