//! Collections outlive their cluster, end to end: a restore in place (objects back with new UIDs
//! and no status), a status wiped on its own, and a migration between two real API servers that
//! share one AWS account.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use kube::api::{Api, Patch, PatchParams, PostParams};
use rekognition_operator::model::crd::{
    CLAIM_TAG, CollectionSpec, DeletionPolicy, OWNER_TAG, PAUSED_ANNOTATION, RekognitionCollection,
};
use support::{Options, World, eventually, lose_objects};

const FLEET: [&str; 3] = ["faces-a", "faces-b", "faces-c"];

fn spec() -> CollectionSpec {
    CollectionSpec {
        tags: BTreeMap::from([("team".to_owned(), "vision".to_owned())]),
        deletion_policy: DeletionPolicy::Delete,
        ..CollectionSpec::default()
    }
}

/// The object as its manifest says, with no UID and no status.
fn manifest(name: &str) -> RekognitionCollection {
    RekognitionCollection::new(name, spec())
}

async fn apply_manifests(api: &Api<RekognitionCollection>, names: &[&str]) -> Result<()> {
    for name in names {
        api.create(&PostParams::default(), &manifest(name)).await?;
    }
    Ok(())
}

fn uid(obj: &RekognitionCollection) -> String {
    obj.metadata.uid.clone().unwrap_or_default()
}

#[tokio::test]
async fn objects_restored_with_new_uids_and_no_status_reclaim_their_collections() -> Result<()> {
    let mut world = World::start("restore").await?;
    apply_manifests(&world.api, &FLEET).await?;
    let mut before = BTreeMap::new();
    for name in FLEET {
        let obj = world.wait_reason(name, "Available").await?;
        let arn = obj
            .status
            .and_then(|s| s.collection_arn)
            .unwrap_or_default();
        before.insert(name, (uid(&world.api.get(name).await?), arn));
    }
    let created_before = world.admin().collections().await?.len();
    let calls_before = world.call_totals().await?.total;

    // The cluster is lost with the operator, then restored from manifests (or a backup without
    // status): same namespace, names and specs, new UIDs.
    world.stop_operator().await?;
    lose_objects(&world.api, &FLEET).await?;
    apply_manifests(&world.api, &FLEET).await?;
    world.start_operator(&Options::default()).await?;

    for name in FLEET {
        let obj = world.wait_reason(name, "Available").await?;
        let (old_uid, old_arn) = &before[name];
        let new_uid = uid(&obj);
        assert_ne!(&new_uid, old_uid, "{name} came back as a new object");
        assert_eq!(
            obj.status.as_ref().and_then(|s| s.collection_arn.as_ref()),
            Some(old_arn),
            "{name} uses the collection it had"
        );
        let tags = world.aws_tags(name).await?;
        assert_eq!(tags.get(OWNER_TAG), Some(&new_uid), "{name}: {tags:?}");
        assert!(
            tags.get(CLAIM_TAG)
                .is_some_and(|c| c.ends_with(&format!("/{}/{name}", world.ns.name))),
            "{name}: {tags:?}"
        );
        let notes = world.event_notes(name, "Reclaimed").await?;
        assert!(
            notes.iter().any(|n| n.contains(old_uid)),
            "{name}: a Reclaimed Event names the old UID: {notes:?}"
        );
    }
    assert_eq!(
        world.admin().collections().await?.len(),
        created_before,
        "no second collection"
    );
    // What the reclaim cost: per object a CreateCollection that found the ID taken, a
    // describe for its ARN, the tag read that proves the claim, and one TagResource.
    let after = world.call_totals().await?;
    eprintln!(
        "AWS calls for the restore of {} objects: {} ({:?})",
        FLEET.len(),
        after.total - calls_before,
        after.counters
    );
    Ok(())
}

#[tokio::test]
async fn an_object_whose_status_was_wiped_keeps_its_collection() -> Result<()> {
    let options = Options {
        resync_interval: Duration::from_secs(2),
        ..Options::default()
    };
    let mut world = World::without_operator("status-lost", options.clone()).await?;
    world.start_operator(&options).await?;
    world.create("kept", spec()).await?;
    let obj = world.wait_reason("kept", "Available").await?;
    let arn = obj.status.and_then(|s| s.collection_arn);
    let created_before = world.admin().collections().await?.len();

    world.stop_operator().await?;
    let wipe = serde_json::json!({"status": null});
    world
        .api
        .patch_status("kept", &PatchParams::default(), &Patch::Merge(&wipe))
        .await?;
    assert!(world.api.get("kept").await?.status.is_none());
    world.start_operator(&options).await?;

    let obj = world.wait_reason("kept", "Available").await?;
    let status = obj.status.context("status")?;
    assert_eq!(status.collection_arn, arn);
    assert_eq!(status.region.as_deref(), Some("us-east-1"));
    assert_eq!(world.admin().collections().await?.len(), created_before);
    Ok(())
}

#[tokio::test]
async fn a_migration_hands_every_collection_to_the_new_cluster_and_the_old_one_lets_go()
-> Result<()> {
    // Blue, the old cluster, on the shared API server, with the default resync: it sees the
    // handover when asked to look (docs/backup-restore.md, migration step 3: a reconcile request per object).
    let blue_options = Options {
        args: vec!["--cluster-name".into(), "blue".into()],
        ..Options::default()
    };
    let mut world = World::without_operator("migrate", blue_options.clone()).await?;
    world.start_operator(&blue_options).await?;
    apply_manifests(&world.api, &FLEET).await?;
    for name in FLEET {
        world.wait_reason(name, "Available").await?;
    }

    // Green, the new cluster: a second real API server, the same manifests, the same account.
    let green_plane = testbed::ControlPlane::start(testbed::ControlPlaneOptions::default()).await?;
    let green_client = green_plane.client().await?;
    support::ensure_namespace(&green_client, &world.ns.name).await?;
    let green: Api<RekognitionCollection> = Api::namespaced(green_client.clone(), &world.ns.name);
    apply_manifests(&green, &FLEET).await?;

    // Before the handover, green says whose the collections are and takes nothing.
    let operator = world
        .operator_on(green_client.clone(), &["--cluster-name", "green"])
        .await?;
    for name in FLEET {
        let obj = support::wait_reason_in(&green, name, "AwaitingHandover", support::WAIT).await?;
        let message = support::ready_message(&obj);
        assert!(message.contains("cluster blue"), "{message}");
    }
    operator.stop().await?;

    // The platform team hands over: green takes over from blue.
    let operator = world
        .operator_on(
            green_client.clone(),
            &[
                "--cluster-name",
                "green",
                "--take-over-from",
                "blue",
                "--resync-interval",
                "1s",
                "--tag-check-interval",
                "1s",
            ],
        )
        .await?;
    for name in FLEET {
        let obj = support::wait_reason_in(&green, name, "Available", support::WAIT).await?;
        let tags = world.aws_tags(name).await?;
        assert_eq!(tags.get(OWNER_TAG), Some(&uid(&obj)), "{name}: {tags:?}");
        assert_eq!(
            tags.get(CLAIM_TAG),
            Some(&format!("green/{}/{name}", world.ns.name))
        );
        let notes = support::event_notes(&green_client, &world.ns.name, name, "TakenOver").await?;
        assert!(notes.iter().any(|n| n.contains("blue")), "{notes:?}");
    }
    // Step 3 as docs/backup-restore.md says: a reconcile request on each of blue's objects
    // (`kubectl annotate --overwrite rekcol --all …/reconcile-requested-at=…`). Blue knows:
    // HandedOver, while both run, and it stays so (no flip-flop).
    let request = serde_json::json!({"metadata": {"annotations": {
        rekognition_operator::model::crd::RECONCILE_REQUEST_ANNOTATION: "handover"
    }}});
    for name in FLEET {
        world
            .api
            .patch(name, &PatchParams::default(), &Patch::Merge(&request))
            .await?;
    }
    for name in FLEET {
        world.wait_reason(name, "HandedOver").await?;
    }
    let owners = |tags: BTreeMap<String, String>| tags.get(CLAIM_TAG).cloned();
    // Both keep running, green reading the tags back every second: nothing is written again.
    let writes = || async {
        let calls = world.admin().calls().await?;
        anyhow::Ok(
            calls
                .iter()
                .filter(|c| {
                    [
                        "TagResource",
                        "UntagResource",
                        "DeleteCollection",
                        "CreateCollection",
                    ]
                    .contains(&c.operation.as_str())
                })
                .count(),
        )
    };
    let writes_after_handover = writes().await?;
    let reads = |calls: Vec<rekognition_emulator::ledger::CallRecord>| {
        calls
            .iter()
            .filter(|c| c.operation == "ListTagsForResource")
            .count()
    };
    let settled = reads(world.admin().calls().await?);
    eventually(
        "green reads every tag back twice more",
        support::WAIT,
        || async { Ok(reads(world.admin().calls().await?) >= settled + 2 * FLEET.len()) },
    )
    .await?;
    assert_eq!(writes().await?, writes_after_handover, "no flip-flop");
    for name in FLEET {
        assert_eq!(
            owners(world.aws_tags(name).await?),
            Some(format!("green/{}/{name}", world.ns.name)),
            "{name} stays green's"
        );
        assert_eq!(
            world
                .api
                .get(name)
                .await?
                .ready_condition()
                .map(|c| c.reason.clone()),
            Some("HandedOver".into())
        );
    }

    // Blue deletes its objects (deletionPolicy Delete): every collection survives, green's.
    let created = world.admin().collections().await?.len();
    for name in FLEET {
        world.delete(name).await?;
        world.wait_gone(name).await?;
    }
    assert_eq!(world.admin().collections().await?.len(), created);
    for name in FLEET {
        assert_eq!(
            owners(world.aws_tags(name).await?),
            Some(format!("green/{}/{name}", world.ns.name))
        );
        let obj = green.get(name).await?;
        assert_eq!(
            obj.ready_condition().map(|c| c.reason.clone()),
            Some("Available".into())
        );
    }
    operator.stop().await?;
    green_plane.stop().await;
    Ok(())
}

/// The orphans the operator lists at `/orphans`.
async fn listed_orphans(world: &World) -> Result<Vec<serde_json::Value>> {
    let url = world.metrics_url.as_ref().context("no endpoints")?;
    Ok(reqwest::get(format!("{url}/orphans")).await?.json().await?)
}

/// Waits until `/orphans` lists `id` in `account` and the orphan gauge counts one orphan (the
/// endpoints may not serve yet after a start: that is not the answer either).
async fn wait_listed_in(world: &World, id: &str, account: &str, what: &str) -> Result<()> {
    eventually(what, support::WAIT, || async {
        let orphans = listed_orphans(world).await.unwrap_or_default();
        let counted = world
            .metric("rekognition_operator_orphaned_collections")
            .await
            .is_ok_and(|v| v == 1.0);
        Ok(counted
            && orphans
                .iter()
                .any(|o| o["collectionId"] == id && o["account"] == account))
    })
    .await
}

/// How many inventory scans reached the emulator so far (one ListCollections each, with one
/// account and region in use and fewer than 1,000 collections).
async fn inventory_scans(world: &World) -> Result<usize> {
    let calls = world.admin().calls().await?;
    Ok(calls
        .iter()
        .filter(|c| c.operation == "ListCollections")
        .count())
}

fn inventory_options(policy: &str, grace: &str) -> Options {
    Options {
        resync_interval: Duration::from_secs(1),
        args: [
            "--orphan-scan-interval",
            "1s",
            "--orphan-scan-rate",
            "50",
            "--orphan-policy",
            policy,
            "--orphan-grace",
            grace,
        ]
        .map(String::from)
        .to_vec(),
        ..Options::default()
    }
}

#[tokio::test]
async fn an_orphan_left_by_a_vanished_object_is_reported_then_deleted_only_when_turned_on()
-> Result<()> {
    let report = inventory_options("report", "24h");
    let mut world = World::without_operator("orphans", report.clone()).await?;
    world.start_operator(&report).await?;
    apply_manifests(&world.api, &["kept", "lost"]).await?;
    for name in ["kept", "lost"] {
        world.wait_reason(name, "Available").await?;
    }
    // Collections that are never this cluster's orphans: another cluster's claim for the same
    // name, and one without any claim.
    let sdk = world.rekognition().await;
    let foreign_claim = format!("another-cluster/{}/lost", world.ns.name);
    for (id, tags) in [
        (
            "claimed-elsewhere",
            vec![(OWNER_TAG, "someone"), (CLAIM_TAG, foreign_claim.as_str())],
        ),
        ("unclaimed", vec![("team", "other")]),
    ] {
        sdk.create_collection()
            .collection_id(id)
            .set_tags(Some(
                tags.into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ))
            .send()
            .await?;
    }

    // "lost" vanishes without its finalizer running, while no operator watches.
    world.stop_operator().await?;
    lose_objects(&world.api, &["lost"]).await?;
    world.start_operator(&report).await?;
    eventually("the orphan is reported", support::WAIT, || async {
        // The endpoints may not serve yet: that is not the answer either.
        Ok(world
            .metric("rekognition_operator_orphaned_collections")
            .await
            .is_ok_and(|v| v == 1.0))
    })
    .await?;
    let orphans = listed_orphans(&world).await?;
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert_eq!(orphans[0]["collectionId"], "lost");
    assert_eq!(
        orphans[0]["claimedBy"],
        format!("{}/lost", world.ns.name).as_str()
    );
    // Reported only: a few scans later it is still there.
    let before = inventory_scans(&world).await?;
    eventually("two more scans", support::WAIT, || async {
        Ok(inventory_scans(&world).await? >= before + 2)
    })
    .await?;
    assert!(world.aws_has("lost").await?);

    // The platform team turns deletion on, with a short grace: the orphan goes, nothing else.
    world.stop_operator().await?;
    let delete = inventory_options("delete", "2s");
    world.start_operator(&delete).await?;
    eventually("the orphan is deleted", support::WAIT, || async {
        Ok(!world.aws_has("lost").await?)
    })
    .await?;
    for id in ["kept", "claimed-elsewhere", "unclaimed"] {
        assert!(world.aws_has(id).await?, "{id} is never an orphan");
    }
    eventually("the report is empty again", support::WAIT, || async {
        Ok(world
            .metric("rekognition_operator_orphaned_collections")
            .await?
            == 0.0
            && listed_orphans(&world).await?.is_empty())
    })
    .await?;
    Ok(())
}

/// An orphan in an account where no live object remains is found again after a restart: the
/// inventory scans every account the mapping names (and the operator's own), not only those that
/// objects reconciled in since the process started.
#[tokio::test]
async fn an_orphan_in_an_account_without_live_objects_is_listed_again_after_a_restart() -> Result<()>
{
    const TEAM: &str = "510987654321";
    let mut world = World::without_operator("orphan-restart", Options::default()).await?;
    let role = world.role_for_operator(TEAM, "team", None).await?;
    world
        .put_account_mapping(&format!("{}:\n  roleArn: {role}\n", world.ns.name))
        .await?;
    let mut report = inventory_options("report", "24h");
    report.args.extend(world.account_mapping_args());
    world.start_operator(&report).await?;
    apply_manifests(&world.api, &["lost"]).await?;
    world.wait_reason("lost", "Available").await?;
    assert_eq!(world.collections_in(TEAM).await?, ["lost"]);
    // "lost" vanishes without its finalizer running: the only object in the team's account.
    lose_objects(&world.api, &["lost"]).await?;
    wait_listed_in(&world, "lost", TEAM, "the orphan is listed").await?;
    for restart in 1..=2 {
        world.stop_operator().await?;
        world.start_operator(&report).await?;
        let what = format!("the orphan is listed again after restart {restart}");
        wait_listed_in(&world, "lost", TEAM, &what).await?;
    }
    world.stop_operator().await?;
    Ok(())
}

#[tokio::test]
async fn a_restore_while_orphan_deletion_is_on_deletes_nothing_of_the_restored_fleet() -> Result<()>
{
    // Deletion on, with next to no grace: only the claims themselves protect the fleet.
    let delete = inventory_options("delete", "1ms");
    let mut world = World::without_operator("restore-del", delete.clone()).await?;
    world.start_operator(&delete).await?;
    apply_manifests(&world.api, &FLEET).await?;
    for name in FLEET {
        world.wait_reason(name, "Available").await?;
    }
    let collections = world.admin().collections().await?.len();

    // The restored objects come back paused, so they cannot reclaim yet: their collections still
    // claim the old UIDs while the inventory scans with deletion on.
    world.stop_operator().await?;
    lose_objects(&world.api, &FLEET).await?;
    for name in FLEET {
        let mut paused = manifest(name);
        paused.metadata.annotations = Some(BTreeMap::from([(
            PAUSED_ANNOTATION.to_owned(),
            "true".to_owned(),
        )]));
        world.api.create(&PostParams::default(), &paused).await?;
    }
    world.start_operator(&delete).await?;
    let before = inventory_scans(&world).await?;
    eventually(
        "three scans while the restore is paused",
        support::WAIT,
        || async { Ok(inventory_scans(&world).await? >= before + 3) },
    )
    .await?;
    assert_eq!(world.admin().collections().await?.len(), collections);
    // Then the restore goes on: every object reclaims its own collection.
    for name in FLEET {
        let unpause = serde_json::json!({"metadata": {"annotations": {PAUSED_ANNOTATION: null}}});
        world
            .api
            .patch(name, &PatchParams::default(), &Patch::Merge(&unpause))
            .await?;
    }
    for name in FLEET {
        world.wait_reason(name, "Available").await?;
        assert!(!world.event_notes(name, "Reclaimed").await?.is_empty());
    }
    assert_eq!(world.admin().collections().await?.len(), collections);
    Ok(())
}
