//! The chart's RBAC is enough and no more: the rendered ServiceAccount, Roles and bindings are
//! applied to the real API server, the operator runs with only that ServiceAccount's token (minted
//! by TokenRequest) and the Deployment's own arguments, and the core scenario passes. Then what the
//! identity must not do is refused.

use crate::support;

use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::core::GroupVersionKind;
use rekognition_operator::model::crd::{CollectionSpec, RekognitionCollection};
use rekognition_operator::runtime::config::Config;
use support::{Options, ParseArgs, World, ensure_namespace};

const SNAPSHOT: &str = "deploy/helm/snapshots/one-namespace.yaml";

fn documents() -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(testbed::workspace_root().join(SNAPSHOT))?;
    let mut docs = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_json::Value = serde_json::to_value(
            <serde_yaml::Value as serde::Deserialize>::deserialize(document)?,
        )?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

fn api_resource(doc: &serde_json::Value) -> Option<(ApiResource, bool)> {
    let (group, version) = match doc["apiVersion"].as_str()?.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), doc["apiVersion"].as_str()?.to_owned()),
    };
    let kind = doc["kind"].as_str()?;
    let (plural, namespaced) = match kind {
        "ServiceAccount" => ("serviceaccounts", true),
        // The account mapping: the operator must be able to watch it with only its RBAC.
        "ConfigMap" => ("configmaps", true),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        _ => return None,
    };
    Some((
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(&group, &version, kind), plural),
        namespaced,
    ))
}

fn forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) -> Result<()> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {
            println!("refused as it should be: {what}");
            Ok(())
        }
        other => bail!("{what} should be forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn operator_runs_with_only_the_charts_rbac_and_nothing_more() -> Result<()> {
    let docs =
        documents().context("the rendered chart (run the chart test to produce snapshots)")?;
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .context("a Deployment in the rendered chart")?;
    let release_namespace = deployment["metadata"]["namespace"]
        .as_str()
        .context("release namespace")?
        .to_owned();
    let pod = &deployment["spec"]["template"]["spec"];
    let service_account = pod["serviceAccountName"]
        .as_str()
        .context("serviceAccountName")?
        .to_owned();
    let args: Vec<String> = pod["containers"][0]["args"]
        .as_array()
        .context("container args")?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let watch_namespace =
        flag_value(&args, "--namespace").context("one-namespace mode passes --namespace")?;

    // The world's emulator runs in the region the chart configures.
    let mut options = Options::default();
    if let Some(region) = flag_value(&args, "--region") {
        options.emulator.region = region;
    }
    let mut world = World::without_operator("leastpriv", options).await?;
    let admin = world.ns.client.clone();
    ensure_namespace(&admin, &release_namespace).await?;
    ensure_namespace(&admin, &watch_namespace).await?;

    // Apply the rendered identity and RBAC as they would be installed.
    let mut applied = Vec::new();
    for doc in &docs {
        let Some((resource, namespaced)) = api_resource(doc) else {
            continue;
        };
        let object: DynamicObject = serde_json::from_value(doc.clone())?;
        let name = object.metadata.name.clone().context("name")?;
        let api: Api<DynamicObject> = if namespaced {
            let ns = object
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| release_namespace.clone());
            Api::namespaced_with(admin.clone(), &ns, &resource)
        } else {
            Api::all_with(admin.clone(), &resource)
        };
        api.patch(
            &name,
            &PatchParams::apply("least-privilege-test").force(),
            &Patch::Apply(&object),
        )
        .await?;
        applied.push(format!("{}/{name}", resource.kind));
    }
    println!("applied from the chart: {applied:?}");
    assert!(
        !applied.iter().any(|a| a.starts_with("Cluster")),
        "one-namespace mode has no cluster-scoped RBAC"
    );

    // A token for the ServiceAccount, minted by the API server.
    let token = support::service_account_token(
        &admin,
        &release_namespace,
        &service_account,
        support::API_AUDIENCE,
    )
    .await?;
    let testbed = testbed::shared().await?;
    let kubeconfig = testbed
        .control_plane
        .kubeconfig_for_token(&service_account, &token);
    let sa_client = testbed::client_from_kubeconfig(kubeconfig.clone()).await?;

    // `kubectl auth can-i --list` for that identity, for the record.
    let dir = tempfile::tempdir()?;
    let kubeconfig_path = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig_path, serde_yaml::to_string(&kubeconfig)?)?;
    for namespace in [&watch_namespace, &release_namespace, &world.ns.name] {
        let output = Command::new(&testbed.control_plane.binaries().kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig_path)
            .args(["auth", "can-i", "--list", "--namespace", namespace])
            .output()?;
        println!(
            "kubectl auth can-i --list --namespace {namespace} (as {service_account}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    // The operator with the Deployment's arguments and only the ServiceAccount's token.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // Everything as the chart renders it, but the endpoints on loopback.
    let mut full_args = without_flag(&args, "--metrics-addr");
    full_args.extend(["--metrics-addr".into(), format!("127.0.0.1:{port}")]);
    let full_args: Vec<&str> = full_args.iter().map(String::as_str).collect();
    let config = Config::try_parse_from_args(&full_args)?;
    assert!(
        config.leader_election,
        "the chart runs with leader election"
    );
    world.start_operator_as(config, sa_client.clone()).await?;

    // The core scenario: create → Ready → delete, in the watched namespace.
    let api: Api<RekognitionCollection> = world.api_in(&watch_namespace);
    let object = RekognitionCollection {
        metadata: ObjectMeta {
            name: Some("myphotos".into()),
            ..ObjectMeta::default()
        },
        spec: CollectionSpec::default(),
        status: None,
    };
    api.create(&PostParams::default(), &object).await?;
    until_ready(&api, "myphotos").await?;
    assert!(world.aws_has("myphotos").await?);
    delete_until_gone(&api, "myphotos").await?;
    assert!(!world.aws_has("myphotos").await?);

    // An object whose finalizer and region pin a pass wrote before it stopped short of its
    // CreateCollection (a replica that lost the Lease, a crash): its next pass writes nothing
    // before the create, so it reads the object afresh (a quorum GET) to see that it is still
    // live. With the chart's RBAC too.
    let config = world.emulator.config();
    let pinned = RekognitionCollection {
        metadata: ObjectMeta {
            name: Some("pinned".into()),
            finalizers: Some(vec![rekognition_operator::model::crd::FINALIZER.into()]),
            annotations: Some(
                [(
                    rekognition_operator::model::crd::REGION_PIN_ANNOTATION.to_string(),
                    config.region.clone(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: CollectionSpec::default(),
        status: None,
    };
    api.create(&PostParams::default(), &pinned).await?;
    until_ready(&api, "pinned")
        .await
        .context("an object pinned by an earlier pass")?;
    delete_until_gone(&api, "pinned").await?;
    world.stop_operator().await?;

    // What it must not do.
    forbidden(
        "read Secrets in the watched namespace",
        Api::<Secret>::namespaced(sa_client.clone(), &watch_namespace)
            .list(&ListParams::default())
            .await,
    )?;
    forbidden(
        "read Secrets in its own namespace",
        Api::<Secret>::namespaced(sa_client.clone(), &release_namespace)
            .list(&ListParams::default())
            .await,
    )?;
    forbidden(
        "read other ConfigMaps in its own namespace",
        Api::<ConfigMap>::namespaced(sa_client.clone(), &release_namespace)
            .list(&ListParams::default())
            .await,
    )?;
    let crds: Api<CustomResourceDefinition> = Api::all(sa_client.clone());
    forbidden(
        "change the CRD",
        crds.patch(
            "rekognitioncollections.rekognition.aws-operators.dev",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"tampered": "yes"}}})),
        )
        .await,
    )?;
    forbidden(
        "list collections outside its namespace",
        Api::<RekognitionCollection>::namespaced(sa_client.clone(), &world.ns.name)
            .list(&ListParams::default())
            .await,
    )?;
    forbidden(
        "list collections cluster-wide",
        Api::<RekognitionCollection>::all(sa_client.clone())
            .list(&ListParams::default())
            .await,
    )?;
    forbidden(
        "create collections (it only reconciles them)",
        api_as(&sa_client, &watch_namespace)
            .create(&PostParams::default(), &object)
            .await,
    )?;
    Ok(())
}

/// Waits until the object `name` is Ready, with the chart's RBAC.
async fn until_ready(api: &Api<RekognitionCollection>, name: &str) -> Result<()> {
    let ready = tokio::time::timeout(
        support::WAIT,
        kube::runtime::wait::await_condition(
            api.clone(),
            name,
            |o: Option<&RekognitionCollection>| {
                o.and_then(|o| o.ready_condition())
                    .is_some_and(|c| c.status == "True")
            },
        ),
    )
    .await
    .with_context(|| format!("{name} did not become Ready with the chart's RBAC"))??;
    ensure!(ready.is_some(), "{name} is gone");
    Ok(())
}

/// Deletes the object `name` and waits until its finalizer is released and it is gone.
async fn delete_until_gone(api: &Api<RekognitionCollection>, name: &str) -> Result<()> {
    api.delete(name, &Default::default()).await?;
    tokio::time::timeout(
        support::WAIT,
        kube::runtime::wait::await_condition(
            api.clone(),
            name,
            |o: Option<&RekognitionCollection>| o.is_none(),
        ),
    )
    .await
    .with_context(|| format!("{name} was not released with the chart's RBAC"))??;
    Ok(())
}

/// `args` without `--flag value` / `--flag=value`.
fn without_flag(args: &[String], flag: &str) -> Vec<String> {
    let prefix = format!("{flag}=");
    let mut out = Vec::new();
    let mut skip_next = false;
    for arg in args {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        if arg == flag {
            skip_next = true;
        } else if !arg.starts_with(&prefix) {
            out.push(arg.clone());
        }
    }
    out
}

/// The value of `--flag value` or `--flag=value`.
fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let prefix = format!("{flag}=");
    args.iter().enumerate().find_map(|(i, arg)| {
        if arg == flag {
            args.get(i + 1).cloned()
        } else {
            arg.strip_prefix(&prefix).map(str::to_owned)
        }
    })
}

fn api_as(client: &kube::Client, namespace: &str) -> Api<RekognitionCollection> {
    Api::namespaced(client.clone(), namespace)
}
