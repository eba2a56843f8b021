//! Bad input is refused by the real API server at apply time, with a message naming the field.

use anyhow::{Result, bail};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use rekognition_operator::model::crd::OWNER_TAG;
use serde_json::{Value, json};
use testbed::shared;

fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            "rekognition.aws-operators.dev",
            "v1alpha1",
            "RekognitionCollection",
        ),
        "rekognitioncollections",
    )
}

async fn api(prefix: &str) -> Result<Api<DynamicObject>> {
    let ns = shared().await?.namespace(prefix).await?;
    Ok(Api::namespaced_with(ns.client, &ns.name, &resource()))
}

fn object(name: &str, spec: Value) -> DynamicObject {
    DynamicObject::new(name, &resource()).data(json!({ "spec": spec }))
}

fn many_tags(count: usize) -> Value {
    Value::Object((0..count).map(|i| (format!("k{i}"), json!("v"))).collect())
}

/// Asserts the API server refused the request with a 422 whose message names `field`.
fn assert_refused(
    case: &str,
    result: Result<DynamicObject, kube::Error>,
    field: &str,
) -> Result<()> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 422 => {
            if !status.message.contains(field) {
                bail!(
                    "{case}: refused, but the message does not name {field}: {}",
                    status.message
                );
            }
            println!("{case}: {}", status.message);
            Ok(())
        }
        Err(other) => bail!("{case}: expected a 422 naming {field}, got {other}"),
        Ok(_) => bail!("{case}: the API server accepted it"),
    }
}

#[tokio::test]
async fn invalid_objects_are_refused_with_the_field_named() -> Result<()> {
    let api = api("admission").await?;
    let long_key = "k".repeat(129);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "collectionId with a space",
            json!({"collectionId": "my photos"}),
            "spec.collectionId",
        ),
        (
            "collectionId with a slash",
            json!({"collectionId": "a/b"}),
            "spec.collectionId",
        ),
        (
            "collectionId of 256 characters",
            json!({"collectionId": "a".repeat(256)}),
            "spec.collectionId",
        ),
        (
            "empty collectionId",
            json!({"collectionId": ""}),
            "spec.collectionId",
        ),
        (
            "region that is not a region",
            json!({"region": "Mars"}),
            "spec.region",
        ),
        (
            "tag key starting with aws:",
            json!({"tags": {"aws:team": "x"}}),
            "spec.tags",
        ),
        ("201 tags", json!({"tags": many_tags(201)}), "spec.tags"),
        (
            "200 tags (one slot is the owner's)",
            json!({"tags": many_tags(200)}),
            "spec.tags",
        ),
        (
            "tag key of 129 characters",
            json!({"tags": {long_key.clone(): "x"}}),
            "spec.tags",
        ),
        ("empty tag key", json!({"tags": {"": "x"}}), "spec.tags"),
        (
            "tag key with a forbidden character",
            json!({"tags": {"a*b": "x"}}),
            "spec.tags",
        ),
        (
            "tag value of 257 characters",
            json!({"tags": {"k": "v".repeat(257)}}),
            "spec.tags",
        ),
        (
            "tag value with a forbidden character",
            json!({"tags": {"k": "a;b"}}),
            "spec.tags",
        ),
        (
            "the operator's ownership tag",
            json!({"tags": {OWNER_TAG: "me"}}),
            "spec.tags",
        ),
        (
            "unknown deletionPolicy",
            json!({"deletionPolicy": "Keep"}),
            "spec.deletionPolicy",
        ),
        (
            "unknown managementPolicy",
            json!({"managementPolicy": "Steal"}),
            "spec.managementPolicy",
        ),
        (
            "tags that are not a map",
            json!({"tags": ["a", "b"]}),
            "spec.tags",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (case, spec, field)) in cases.into_iter().enumerate() {
        let result = api
            .create(&PostParams::default(), &object(&format!("bad-{i}"), spec))
            .await;
        if let Err(error) = assert_refused(case, result, field) {
            failures.push(error.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[tokio::test]
async fn the_largest_valid_object_is_accepted() -> Result<()> {
    let api = api("admission-ok").await?;
    let spec = json!({
        "collectionId": "A-z_0.9".to_string() + &"x".repeat(248),
        "region": "us-gov-west-1",
        "tags": Value::Object((0..199).map(|i| (format!("{i}:{}", "k".repeat(120)), json!("v".repeat(256)))).collect()),
        "deletionPolicy": "Retain",
        "managementPolicy": "Adopt",
    });
    api.create(&PostParams::default(), &object("biggest", spec))
        .await?;
    Ok(())
}

#[tokio::test]
async fn collection_id_and_region_are_immutable() -> Result<()> {
    let api = api("immutable").await?;
    api.create(
        &PostParams::default(),
        &object(
            "fixed",
            json!({"collectionId": "one", "region": "us-east-1"}),
        ),
    )
    .await?;
    api.create(&PostParams::default(), &object("defaulted", json!({})))
        .await?;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "changing collectionId",
            "fixed",
            json!({"collectionId": "two"}),
            "spec.collectionId",
        ),
        (
            "changing region",
            "fixed",
            json!({"region": "eu-west-1"}),
            "spec.region",
        ),
        (
            "removing collectionId",
            "fixed",
            json!({"collectionId": null}),
            "spec.collectionId",
        ),
        (
            "adding collectionId later",
            "defaulted",
            json!({"collectionId": "late"}),
            "spec.collectionId",
        ),
        (
            "adding region later",
            "defaulted",
            json!({"region": "eu-west-1"}),
            "spec.region",
        ),
    ];
    let mut failures = Vec::new();
    for (case, name, spec, field) in cases {
        let patch = json!({ "spec": spec });
        let result = api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        if let Err(error) = assert_refused(case, result, field) {
            failures.push(error.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Tags stay mutable.
    let patch = json!({ "spec": { "tags": { "team": "vision" } } });
    api.patch("fixed", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[tokio::test]
async fn every_example_is_accepted_by_the_api_server() -> Result<()> {
    let api = api("examples").await?;
    let dir = testbed::workspace_root().join("deploy/examples");
    let mut checked = 0;
    // Examples sit in deploy/examples and one level below (a set such as two-teams/, which also
    // holds Helm values: files without a kind are not objects).
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path)? {
                paths.push(inner?.path());
            }
        } else {
            paths.push(path);
        }
    }
    for path in paths {
        if path.extension().is_none_or(|ext| ext != "yaml") {
            continue;
        }
        let value: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&path)?)?;
        if value.get("kind").is_none() {
            continue;
        }
        let object: DynamicObject = serde_yaml::from_value(value)?;
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        api.create(&dry_run, &object)
            .await
            .map_err(|e| anyhow::anyhow!("{} is refused: {e}", path.display()))?;
        checked += 1;
    }
    assert!(
        checked >= 7,
        "myphotos plus one example each for tags, Retain, Adopt, ObserveOnly, region, two teams"
    );
    Ok(())
}
