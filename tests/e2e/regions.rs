//! Several regions, end to end: one emulator serving us-east-1 and eu-west-1 (each at its own
//! endpoint path, signatures checked against the endpoint's region), the operator reaching them
//! through its endpoint template, a fixed endpoint that serves its own region only, the region
//! pin across a restore, and the orphan inventory of every (account, region) in use.

use crate::support;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use kube::api::{Patch, PatchParams, PostParams};
use rekognition_operator::model::crd::{CollectionSpec, DeletionPolicy, RekognitionCollection};
use support::{Options, World, eventually, lose_objects};

const HOME: &str = "us-east-1";
const EUROPE: &str = "eu-west-1";

fn two_regions() -> rekognition_emulator::Config {
    rekognition_emulator::Config {
        extra_regions: vec![EUROPE.to_owned()],
        ..testbed::emulator_config()
    }
}

/// `http://127.0.0.1:<port>/{region}`: every region of the world's emulator.
fn endpoint_template(world: &World) -> String {
    format!("{}/{{region}}", world.emulator.endpoint_url())
}

fn spec_in(region: Option<&str>) -> CollectionSpec {
    CollectionSpec {
        region: region.map(str::to_owned),
        tags: BTreeMap::from([("team".to_owned(), "vision".to_owned())]),
        deletion_policy: DeletionPolicy::Delete,
        ..CollectionSpec::default()
    }
}

fn arn_of(obj: &RekognitionCollection) -> String {
    obj.status
        .as_ref()
        .and_then(|s| s.collection_arn.clone())
        .unwrap_or_default()
}

/// The IDs of the collections the emulator holds in `region`.
async fn ids_in(world: &World, region: &str) -> Result<Vec<String>> {
    let collections = world.admin().for_region(region).collections().await?;
    Ok(collections.into_iter().map(|c| c.collection_id).collect())
}

/// Calls the emulator answered in `region`, per operation and outcome.
async fn counters_in(world: &World, region: &str) -> Result<rekognition_emulator::admin::Counters> {
    Ok(world.admin().for_region(region).counters().await?)
}

/// Issue 8's scenario 7, through the operator process as the chart runs it: the endpoint comes
/// from `AWS_ENDPOINT_URL_REKOGNITION` (the chart's `aws.endpointUrl`). A fixed URL is the
/// default region's endpoint only: an object in another region is never signed for its region
/// and sent there. A template with `{region}` reaches every region.
#[tokio::test]
async fn one_endpoint_url_serves_its_own_region_and_a_template_serves_every_region() -> Result<()> {
    let options = Options {
        emulator: two_regions(),
        ..Options::default()
    };
    let world = World::without_operator("one-endpoint", options).await?;
    let dir = tempfile::tempdir()?;
    let process = |endpoint: String| {
        let world = &world;
        let dir = dir.path().to_owned();
        async move {
            let mut options = world.operator_process_options(&dir).await?;
            // The endpoint as the chart gives it, and no SDK-wide one.
            options.env.retain(|(name, _)| name != "AWS_ENDPOINT_URL");
            options
                .env
                .push(("AWS_ENDPOINT_URL_REKOGNITION".into(), endpoint));
            let mut operator = testbed::OperatorProcess::spawn(&options)?;
            operator.wait_ready(support::WAIT).await?;
            anyhow::Ok(operator)
        }
    };

    // A fixed URL, as for a us-east-1 VPC endpoint.
    let operator = process(world.emulator.endpoint_url().to_owned()).await?;
    world.create("home", spec_in(None)).await?;
    world.create("europe", spec_in(Some(EUROPE))).await?;
    let home = world.wait_reason("home", "Available").await?;
    assert!(arn_of(&home).contains(&format!(":{HOME}:")), "{home:?}");
    // Europe's calls go to AWS's own eu-west-1 endpoint, which this machine cannot reach: the
    // object says AWS is unavailable there. None of them reached the us-east-1 endpoint.
    let europe = world.wait_reason("europe", "AwsUnavailable").await?;
    eprintln!(
        "europe with a fixed us-east-1 endpoint: {}",
        support::ready_message(&europe)
    );
    let home_calls = counters_in(&world, HOME).await?;
    assert_eq!(
        home_calls.get("CreateCollection", "InvalidSignatureException"),
        0,
        "no call signed for {EUROPE} was sent to the {HOME} endpoint: {home_calls:?}"
    );
    assert_eq!(ids_in(&world, HOME).await?, ["home"]);
    assert!(ids_in(&world, EUROPE).await?.is_empty());
    drop(operator);

    // A template reaches both regions; the object in Europe recovers on its own.
    let _operator = process(endpoint_template(&world)).await?;
    let europe = world.wait_reason("europe", "Available").await?;
    assert_eq!(
        arn_of(&europe),
        format!(
            "arn:aws:rekognition:{EUROPE}:{}:collection/europe",
            world.emulator.config().account_id
        )
    );
    assert_eq!(ids_in(&world, EUROPE).await?, ["europe"]);
    assert_eq!(ids_in(&world, HOME).await?, ["home"]);
    assert_eq!(
        counters_in(&world, EUROPE)
            .await?
            .get("CreateCollection", "Ok"),
        1
    );
    Ok(())
}

/// The objects of a restore, and how each comes back.
const PINNED: &str = "pinned"; // default region, restored with its status
const EUROPE_OBJ: &str = "europe"; // spec.region eu-west-1, restored with its status
const MOVED: &str = "moved"; // default region, restored without status
const GONE: &str = "gone"; // spec.region eu-west-1, not restored

/// A restore after the operator's default region changed (us-east-1 → eu-west-1): an object
/// restored with its status keeps the region pinned there and reclaims its collection; an
/// object with `spec.region` keeps its region whatever the default; one restored without status
/// follows the new default, gets a new collection there and says so. The inventory scans both
/// regions and reports, in its region, the collection of an object that was not restored; never
/// the one that the object restored without status left behind, whose name is live (docs/backup-restore.md's
/// recovery points the object back at it).
#[tokio::test]
async fn a_restore_keeps_the_pinned_regions_and_the_inventory_scans_every_region() -> Result<()> {
    let with_args = |args: &[&str]| Options {
        emulator: two_regions(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Options::default()
    };
    let mut world = World::without_operator("region-restore", with_args(&[])).await?;
    let template = endpoint_template(&world);
    let before = with_args(&["--aws-endpoint-url", &template]);
    world.start_operator(&before).await?;
    world.create(PINNED, spec_in(None)).await?;
    world.create(EUROPE_OBJ, spec_in(Some(EUROPE))).await?;
    world.create(MOVED, spec_in(None)).await?;
    world.create(GONE, spec_in(Some(EUROPE))).await?;
    let mut saved = BTreeMap::new();
    for name in [PINNED, EUROPE_OBJ, MOVED] {
        let obj = world.wait_reason(name, "Available").await?;
        saved.insert(name, obj);
    }
    world.wait_reason(GONE, "Available").await?;
    assert_eq!(ids_in(&world, HOME).await?, [MOVED, PINNED]);
    assert_eq!(ids_in(&world, EUROPE).await?, [EUROPE_OBJ, GONE]);

    // The cluster is lost and restored (new UIDs); two objects with their status, as Velero
    // restores it when asked to; meanwhile the platform team moved the default region.
    world.stop_operator().await?;
    lose_objects(&world.api, &[PINNED, EUROPE_OBJ, MOVED, GONE]).await?;
    for (name, old) in &saved {
        let manifest = RekognitionCollection::new(name, old.spec.clone());
        world.api.create(&PostParams::default(), &manifest).await?;
        if *name != MOVED {
            let status = serde_json::json!({ "status": old.status });
            world
                .api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
                .await?;
        }
    }
    let creates_before = (
        counters_in(&world, HOME)
            .await?
            .get("CreateCollection", "Ok"),
        counters_in(&world, EUROPE)
            .await?
            .get("CreateCollection", "Ok"),
    );
    let after = Options {
        region: Some(EUROPE.to_owned()),
        ..with_args(&[
            "--aws-endpoint-url",
            &template,
            "--orphan-scan-interval",
            "1s",
            "--orphan-scan-rate",
            "50",
        ])
    };
    world.start_operator(&after).await?;

    for name in [PINNED, EUROPE_OBJ] {
        // The restored status says Available already; the reclaim shows in the Event and the
        // owner tag.
        let old_uid = saved[name].metadata.uid.clone().unwrap_or_default();
        eventually(
            &format!("{name} reclaims its collection"),
            support::WAIT,
            || async {
                let notes = world.event_notes(name, "Reclaimed").await?;
                Ok(notes.iter().any(|n| n.contains(&old_uid)))
            },
        )
        .await?;
        let obj = world.wait_reason(name, "Available").await?;
        assert_eq!(
            arn_of(&obj),
            arn_of(&saved[name]),
            "{name} kept its collection"
        );
        let region = if name == EUROPE_OBJ { EUROPE } else { HOME };
        let collections = world.admin().for_region(region).collections().await?;
        let tags = &collections
            .iter()
            .find(|c| c.collection_id == name)
            .context("collection")?
            .tags;
        assert_eq!(tags, &world.owned_tags(&obj, &obj.spec.tags).await?);
    }
    let moved = world.wait_reason(MOVED, "Available").await?;
    assert!(
        arn_of(&moved).contains(&format!(":{EUROPE}:")),
        "without its status, {MOVED} follows the new default region: {moved:?}"
    );
    let created = world.event_notes(MOVED, "Created").await?;
    assert!(
        created.iter().any(|n| n.contains(EUROPE)),
        "the new collection is not silent: {created:?}"
    );
    assert_eq!(ids_in(&world, HOME).await?, [MOVED, PINNED]);
    assert_eq!(ids_in(&world, EUROPE).await?, [EUROPE_OBJ, GONE, MOVED]);
    let creates_after = (
        counters_in(&world, HOME)
            .await?
            .get("CreateCollection", "Ok"),
        counters_in(&world, EUROPE)
            .await?
            .get("CreateCollection", "Ok"),
    );
    assert_eq!(
        (
            creates_after.0 - creates_before.0,
            creates_after.1 - creates_before.1
        ),
        (0, 1),
        "one new collection, the one the recovery step of docs/backup-restore.md is about"
    );

    // The inventory lists both regions and finds GONE's collection in eu-west-1.
    eventually(
        "the orphan in eu-west-1 is reported",
        support::WAIT,
        || async { Ok(listed_orphans(&world).await.is_ok_and(|o| !o.is_empty())) },
    )
    .await?;
    // Two more scans of each region, and still only that one.
    let lists = || async {
        anyhow::Ok((
            counters_in(&world, HOME).await?.total("ListCollections"),
            counters_in(&world, EUROPE).await?.total("ListCollections"),
        ))
    };
    let scanned = lists().await?;
    eventually("two more scans of each region", support::WAIT, || async {
        let now = lists().await?;
        Ok(now.0 >= scanned.0 + 2 && now.1 >= scanned.1 + 2)
    })
    .await?;
    let orphans = listed_orphans(&world).await?;
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert_eq!(orphans[0]["collectionId"], GONE, "{orphans:?}");
    assert_eq!(orphans[0]["region"], EUROPE, "{orphans:?}");
    let text = world.metrics_text().await?;
    let orphaned = |region: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("rekognition_operator_orphaned_collections{")
                    && l.contains(&format!("region=\"{region}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert_eq!(orphaned(EUROPE), Some(1.0), "{text}");
    assert_eq!(orphaned(HOME), Some(0.0), "{text}");
    Ok(())
}

/// The orphans the operator lists at `/orphans`.
async fn listed_orphans(world: &World) -> Result<Vec<serde_json::Value>> {
    let url = world.metrics_url.as_ref().context("no endpoints")?;
    Ok(reqwest::get(format!("{url}/orphans")).await?.json().await?)
}
