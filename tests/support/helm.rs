//! The pinned helm (tools/helm/build.sh) and the chart it renders and installs, for the chart,
//! Helm lifecycle and image tests.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml::Value;

pub const CHART: &str = "deploy/helm/rekognition-operator";
pub const RELEASE: &str = "rekognition-operator";
pub const NAMESPACE: &str = "rekognition-system";
pub const ONE_NAMESPACE_VALUES: &str = "deploy/helm/ci/one-namespace-values.yaml";

pub fn root() -> PathBuf {
    testbed::workspace_root()
}

/// The pinned helm binary: `$RKO_HELM_BIN_DIR/helm` when that is set, otherwise built (once per
/// test process, and only when its cache is stale) by tools/helm/build.sh.
pub fn helm_binary() -> &'static Path {
    static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match HELM.get_or_init(|| locate_helm().map_err(|e| format!("{e:#}"))) {
        Ok(path) => path,
        Err(error) => panic!("helm is not available, so the chart cannot be tested: {error}"),
    }
}

fn locate_helm() -> Result<PathBuf> {
    let dir = match std::env::var_os("RKO_HELM_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => testbed::build_with_script(&root().join("tools/helm/build.sh"))?,
    };
    let helm = dir.join("helm");
    ensure!(
        helm.is_file(),
        "{} is missing; run tools/helm/build.sh",
        helm.display()
    );
    Ok(helm)
}

/// Runs helm in the repository root with its own empty cache, config and data directories, so
/// that nothing from the developer's helm setup changes the result; with `kubeconfig`, against
/// that cluster.
pub fn helm_with<S: AsRef<OsStr>>(kubeconfig: Option<&Path>, args: &[S]) -> Result<Output> {
    let home = tempfile::tempdir()?;
    let mut command = Command::new(helm_binary());
    command
        .args(args)
        .current_dir(root())
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env_remove("HELM_NAMESPACE")
        .env_remove("HELM_DEBUG")
        .env_remove("HELM_KUBECONTEXT");
    match kubeconfig {
        Some(path) => command.env("KUBECONFIG", path),
        // No cluster: a stray KUBECONFIG must not be touched.
        None => command.env("KUBECONFIG", home.path().join("no-cluster")),
    };
    let display: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    command
        .output()
        .with_context(|| format!("running helm {}", display.join(" ")))
}

/// helm without a cluster.
pub fn helm(args: &[&str]) -> Result<Output> {
    helm_with(None, args)
}

/// helm that must succeed: its standard output, or an error with what it printed.
pub fn helm_ok<S: AsRef<OsStr>>(kubeconfig: Option<&Path>, args: &[S]) -> Result<String> {
    let output = helm_with(kubeconfig, args)?;
    if !output.status.success() {
        let display: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        bail!(
            "helm {} failed ({}):\n{}{}",
            display.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// `helm template rekognition-operator <chart> --namespace rekognition-system <extra>`: the
/// rendered manifests (without the CRD), or the error helm printed.
pub fn template(extra: &[&str]) -> Result<String> {
    let mut args = vec!["template", RELEASE, CHART, "--namespace", NAMESPACE];
    args.extend_from_slice(extra);
    let output = helm(&args)?;
    if !output.status.success() {
        bail!(
            "helm {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Rendered manifests, one YAML value per object.
pub struct Rendered {
    pub docs: Vec<Value>,
}

impl Rendered {
    pub fn new(extra: &[&str]) -> Result<Self> {
        Self::parse(&template(extra)?)
    }

    pub fn parse(yaml: &str) -> Result<Self> {
        let mut docs = Vec::new();
        for document in serde_yaml::Deserializer::from_str(yaml) {
            let value = Value::deserialize(document).context("rendered YAML does not parse")?;
            if !value.is_null() {
                docs.push(value);
            }
        }
        Ok(Self { docs })
    }

    pub fn kinds(&self) -> Vec<&str> {
        self.docs
            .iter()
            .filter_map(|doc| doc["kind"].as_str())
            .collect()
    }

    pub fn all<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>> {
        self.docs
            .iter()
            .filter(|doc| doc["kind"].as_str() == Some(kind))
            .map(|doc| {
                serde_yaml::from_value(doc.clone())
                    .with_context(|| format!("{kind} does not parse"))
            })
            .collect()
    }

    pub fn one<T: DeserializeOwned>(&self, kind: &str) -> Result<T> {
        let mut all = self.all(kind)?;
        ensure!(all.len() == 1, "expected one {kind}, found {}", all.len());
        Ok(all.remove(0))
    }

    pub fn deployment(&self) -> Result<Deployment> {
        self.one("Deployment")
    }
}

pub fn pod_spec(deployment: &Deployment) -> Result<&PodSpec> {
    deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref())
        .context("the Deployment has no pod spec")
}

pub fn operator_container(deployment: &Deployment) -> Result<&Container> {
    let pod = pod_spec(deployment)?;
    ensure!(pod.containers.len() == 1, "expected one container");
    Ok(&pod.containers[0])
}

pub fn env_value<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    container
        .env
        .iter()
        .flatten()
        .find(|var| var.name == name)
        .and_then(|var| var.value.as_deref())
}

pub fn env_field_ref<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    container
        .env
        .iter()
        .flatten()
        .find(|var| var.name == name)
        .and_then(|var| var.value_from.as_ref())
        .and_then(|from| from.field_ref.as_ref())
        .map(|field| field.field_path.as_str())
}

/// A kubeconfig file for `kubeconfig`, for helm and kubectl; removed with the returned directory.
pub fn kubeconfig_file(
    kubeconfig: &kube::config::Kubeconfig,
) -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(kubeconfig)?)?;
    Ok((dir, path))
}
