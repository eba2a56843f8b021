//! The chart's pods on the test bed's node: the control plane with a node, the operator's image
//! imported into it, and `helm install` of the chart (the node tests and the fleet benchmark's
//! row with the operator as a pod).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use testbed::{BackgroundEmulator, ControlPlane, ControlPlaneOptions};

use super::helm::{CHART, NAMESPACE, RELEASE, helm_ok};

/// Where the chart's default values look for the image; the node imports it under that name.
pub const DEFAULT_IMAGE: &str = "ghcr.io/aws-operators/rekognition-operator";

/// The control plane with a node (needs root).
pub async fn control_plane_with_node() -> Result<ControlPlane> {
    ensure!(
        is_root(),
        "the node needs root (namespaces, cgroups, mounts); CI and the dev machines run tests as root"
    );
    ControlPlane::start(ControlPlaneOptions {
        node: true,
        ..ControlPlaneOptions::default()
    })
    .await
}

/// The image scripts/image.sh writes (built when stale), imported into the node's runtime under
/// the name the chart's defaults give it: the pod pulls nothing.
pub fn import_operator_image(plane: &ControlPlane) -> Result<()> {
    let oci = testbed::build_with_script(&testbed::workspace_root().join("scripts/image.sh"))?;
    let tarball = oci
        .parent()
        .context("the image's directory")?
        .join("rekognition-operator.tar");
    let node = plane.node().context("a node")?;
    let version = env!("CARGO_PKG_VERSION");
    node.import_image(&tarball, &format!("{DEFAULT_IMAGE}:{version}"))
}

/// `kubectl ARGS` against the plane; its stdout.
pub fn kubectl(plane: &ControlPlane, kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new(&plane.binaries().kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .current_dir(testbed::workspace_root())
        .output()?;
    ensure!(
        output.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `helm install` of the chart into [`NAMESPACE`] with `values` and `--wait`; on failure, the
/// cluster's Events and the kubelet's log say why.
pub async fn install_chart(
    plane: &ControlPlane,
    kubeconfig: &Path,
    dir: &Path,
    values: &serde_json::Value,
) -> Result<()> {
    let values_file = dir.join("values.json");
    std::fs::write(&values_file, values.to_string())?;
    let installed = helm_ok(
        Some(kubeconfig),
        &[
            "install",
            RELEASE,
            CHART,
            "--namespace",
            NAMESPACE,
            "--values",
            &values_file.to_string_lossy(),
            "--wait",
            "--timeout",
            "3m",
        ],
    );
    if let Err(error) = installed {
        let node = plane.node().context("a node")?;
        bail!(
            "{error:#}\n{}\n{}",
            kubectl(plane, kubeconfig, &["get", "events", "-A"]).unwrap_or_default(),
            node.log_tail("kubelet", 30)
        );
    }
    Ok(())
}

/// A namespace that enforces Pod Security `restricted`, as the chart's docs ask for.
pub async fn restricted_namespace(client: &kube::Client, name: &str) -> Result<()> {
    create_namespace(
        client,
        name,
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await
}

/// Creates the namespace `name` with `labels`.
pub async fn create_namespace(
    client: &kube::Client,
    name: &str,
    labels: &[(&str, &str)],
) -> Result<()> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    Ok(())
}

/// Whether this process runs as root (from /proc, without unsafe code).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// The chart values that point the pods at `emulator` (listening on the node's link): its
/// endpoint and region, and its keys from a Secret this creates in [`NAMESPACE`] (on EKS, IRSA or
/// Pod Identity gives credentials instead).
pub async fn emulator_key_values(
    client: &kube::Client,
    emulator: &BackgroundEmulator,
) -> Result<serde_json::Value> {
    let config = emulator.config();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let mut secret = Secret::default();
    secret.metadata.name = Some("emulator-credentials".into());
    secret.string_data = Some(
        [
            (
                "AWS_ACCESS_KEY_ID".to_string(),
                config.access_key_id.clone(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                config.secret_access_key.clone(),
            ),
        ]
        .into(),
    );
    secrets.create(&PostParams::default(), &secret).await?;
    let credential = |key: &str| {
        serde_json::json!({
            "name": key,
            "valueFrom": { "secretKeyRef": { "name": "emulator-credentials", "key": key } },
        })
    };
    Ok(serde_json::json!({
        "aws": { "region": config.region, "endpointUrl": emulator.endpoint_url() },
        "extraEnv": [credential("AWS_ACCESS_KEY_ID"), credential("AWS_SECRET_ACCESS_KEY")],
    }))
}
