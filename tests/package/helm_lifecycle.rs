//! The chart's whole Helm lifecycle on a real API server: `helm install` (the API server accepts
//! every object the chart renders, with the default values and in one-namespace mode), `helm
//! upgrade` with changed values, `helm rollback`, and `helm uninstall`, which keeps the CRD and the
//! users' objects. Each test has a control plane of its own, started without the CRD, so that
//! Helm installs it as it would on a new cluster. No controller-manager or scheduler runs here, so
//! the Deployment never gets pods: acceptance by the API server is what is tested.

use crate::support;

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ObjectMeta, PostParams};
use kube::core::GroupVersionKind;
use rekognition_operator::model::crd::RekognitionCollection;
use support::helm::{
    CHART, NAMESPACE, ONE_NAMESPACE_VALUES, RELEASE, Rendered, helm_ok, kubeconfig_file,
    operator_container,
};
use testbed::{ControlPlane, ControlPlaneOptions};

const CRD: &str = "rekognitioncollections.rekognition.aws-operators.dev";

/// A control plane without the CRD, and a kubeconfig file for helm.
struct Cluster {
    plane: ControlPlane,
    client: kube::Client,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Result<Self> {
        let plane = ControlPlane::start(ControlPlaneOptions {
            crd_dirs: Vec::new(),
            ..ControlPlaneOptions::default()
        })
        .await?;
        let client = plane.client().await?;
        let (dir, kubeconfig) = kubeconfig_file(&plane.kubeconfig())?;
        Ok(Self {
            plane,
            client,
            kubeconfig,
            _dir: dir,
        })
    }

    fn helm(&self, args: &[&str]) -> Result<String> {
        helm_ok(Some(&self.kubeconfig), args)
    }

    /// `helm install rekognition-operator <chart> -n rekognition-system --create-namespace <extra>`.
    fn install(&self, extra: &[&str]) -> Result<()> {
        let mut args = vec![
            "install",
            RELEASE,
            CHART,
            "--namespace",
            NAMESPACE,
            "--create-namespace",
        ];
        args.extend_from_slice(extra);
        self.helm(&args)?;
        Ok(())
    }

    async fn create_namespace(&self, name: &str) -> Result<()> {
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &namespace)
            .await?;
        Ok(())
    }

    /// Every object of the release's current manifest, read back from the API server: fails
    /// naming those that are not there. Returns "Kind namespace/name" of each.
    async fn release_objects_on_the_server(&self) -> Result<Vec<String>> {
        let manifest = self.helm(&["get", "manifest", RELEASE, "--namespace", NAMESPACE])?;
        let rendered = Rendered::parse(&manifest)?;
        ensure!(!rendered.docs.is_empty(), "the release has no objects");
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for doc in &rendered.docs {
            let object: DynamicObject = serde_yaml::from_value(doc.clone())?;
            let types = object
                .types
                .clone()
                .context("an object without apiVersion/kind")?;
            let gvk = GroupVersionKind::try_from(&types)?;
            let (resource, capabilities) =
                kube::discovery::pinned_kind(&self.client, &gvk)
                    .await
                    .with_context(|| format!("the API server does not serve {gvk:?}"))?;
            let name = object
                .metadata
                .name
                .clone()
                .context("an object without a name")?;
            let api: Api<DynamicObject> =
                if capabilities.scope == kube::discovery::Scope::Namespaced {
                    let namespace = object.metadata.namespace.as_deref().unwrap_or(NAMESPACE);
                    Api::namespaced_with(self.client.clone(), namespace, &resource)
                } else {
                    Api::all_with(self.client.clone(), &resource)
                };
            let label = format!(
                "{} {}/{name}",
                gvk.kind,
                object.metadata.namespace.as_deref().unwrap_or("")
            );
            match api.get_opt(&name).await? {
                Some(_) => found.push(label),
                None => missing.push(label),
            }
        }
        ensure!(
            missing.is_empty(),
            "rendered by the release but not on the API server: {missing:?}"
        );
        Ok(found)
    }

    async fn deployment(&self) -> Result<Deployment> {
        Ok(
            Api::<Deployment>::namespaced(self.client.clone(), NAMESPACE)
                .get(RELEASE)
                .await?,
        )
    }

    async fn crd_exists(&self) -> Result<bool> {
        Ok(Api::<CustomResourceDefinition>::all(self.client.clone())
            .get_opt(CRD)
            .await?
            .is_some())
    }

    async fn has_cluster_role(&self, name: &str) -> Result<bool> {
        Ok(Api::<ClusterRole>::all(self.client.clone())
            .get_opt(name)
            .await?
            .is_some())
    }
}

fn args_of(deployment: &Deployment) -> Result<Vec<String>> {
    Ok(operator_container(deployment)?
        .args
        .clone()
        .unwrap_or_default())
}

fn quantity(deployment: &Deployment, kind: &str, resource: &str) -> Result<Option<String>> {
    let resources = operator_container(deployment)?
        .resources
        .clone()
        .unwrap_or_default();
    let map = match kind {
        "requests" => resources.requests,
        _ => resources.limits,
    };
    Ok(map.and_then(|m| m.get(resource).map(|q| q.0.clone())))
}

#[tokio::test]
async fn helm_install_with_default_values_creates_every_rendered_object_and_the_crd() -> Result<()>
{
    let cluster = Cluster::start().await?;
    ensure!(
        !cluster.crd_exists().await?,
        "the cluster starts without the CRD"
    );
    cluster.install(&[])?;

    let objects = cluster.release_objects_on_the_server().await?;
    println!("on the API server: {objects:?}");
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
    ] {
        ensure!(
            objects.iter().any(|o| o.starts_with(&format!("{kind} "))),
            "the default install has no {kind}: {objects:?}"
        );
    }
    ensure!(cluster.crd_exists().await?, "helm install installs the CRD");
    for name in [
        format!("{RELEASE}-tenant-edit"),
        format!("{RELEASE}-tenant-view"),
    ] {
        ensure!(
            cluster.has_cluster_role(&name).await?,
            "the default install has no tenant role {name}"
        );
    }
    assert_eq!(
        cluster.deployment().await?.spec.and_then(|s| s.replicas),
        Some(2)
    );
    cluster.plane.stop().await;
    Ok(())
}

#[tokio::test]
async fn helm_install_in_one_namespace_mode_creates_every_rendered_object() -> Result<()> {
    let cluster = Cluster::start().await?;
    // The watched namespace is the platform team's; the chart puts a Role there.
    cluster.create_namespace("team-a").await?;
    cluster.install(&["-f", ONE_NAMESPACE_VALUES])?;

    let objects = cluster.release_objects_on_the_server().await?;
    println!("on the API server: {objects:?}");
    ensure!(
        objects
            .iter()
            .any(|o| o == "Role team-a/rekognition-operator"),
        "no Role in the watched namespace: {objects:?}"
    );
    ensure!(
        !objects.iter().any(|o| o.starts_with("Cluster")),
        "one-namespace mode installed cluster-scoped RBAC: {objects:?}"
    );
    let args = args_of(&cluster.deployment().await?)?;
    ensure!(args.contains(&"--namespace=team-a".to_owned()), "{args:?}");
    cluster.plane.stop().await;
    Ok(())
}

#[tokio::test]
async fn helm_upgrade_changes_replicas_resources_and_watch_namespace_and_rollback_restores_them()
-> Result<()> {
    let cluster = Cluster::start().await?;
    cluster.install(&[])?;
    cluster.create_namespace("team-b").await?;
    let cluster_roles: Api<ClusterRole> = Api::all(cluster.client.clone());
    let team_b_roles: Api<Role> = Api::namespaced(cluster.client.clone(), "team-b");

    cluster.helm(&[
        "upgrade",
        RELEASE,
        CHART,
        "--namespace",
        NAMESPACE,
        "--set",
        "replicas=3,watchNamespace=team-b,clusterName=lifecycle",
        "--set",
        "resources.requests.cpu=50m,resources.requests.memory=64Mi,resources.limits.memory=256Mi",
    ])?;
    cluster.release_objects_on_the_server().await?;
    let upgraded = cluster.deployment().await?;
    assert_eq!(upgraded.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(
        quantity(&upgraded, "requests", "cpu")?.as_deref(),
        Some("50m")
    );
    assert_eq!(
        quantity(&upgraded, "limits", "memory")?.as_deref(),
        Some("256Mi")
    );
    ensure!(
        args_of(&upgraded)?.contains(&"--namespace=team-b".to_owned()),
        "the upgraded operator does not watch team-b: {:?}",
        args_of(&upgraded)?
    );
    ensure!(
        args_of(&upgraded)?.contains(&"--cluster-name=lifecycle".to_owned()),
        "one-namespace mode runs with the cluster name it requires: {:?}",
        args_of(&upgraded)?
    );
    ensure!(
        team_b_roles.get_opt(RELEASE).await?.is_some(),
        "no Role in team-b after the upgrade"
    );
    ensure!(
        cluster_roles.get_opt(RELEASE).await?.is_none(),
        "the ClusterRole outlived the move to one namespace"
    );

    cluster.helm(&["rollback", RELEASE, "1", "--namespace", NAMESPACE])?;
    cluster.release_objects_on_the_server().await?;
    let rolled_back = cluster.deployment().await?;
    assert_eq!(rolled_back.spec.as_ref().and_then(|s| s.replicas), Some(2));
    assert_eq!(
        quantity(&rolled_back, "requests", "cpu")?.as_deref(),
        Some("20m")
    );
    assert_eq!(
        quantity(&rolled_back, "limits", "memory")?.as_deref(),
        Some("128Mi")
    );
    ensure!(
        !args_of(&rolled_back)?
            .iter()
            .any(|a| a.starts_with("--namespace")),
        "the rolled-back operator still watches one namespace: {:?}",
        args_of(&rolled_back)?
    );
    ensure!(
        cluster_roles.get_opt(RELEASE).await?.is_some(),
        "rollback did not restore the ClusterRole"
    );
    ensure!(
        team_b_roles.get_opt(RELEASE).await?.is_none(),
        "rollback left the Role in team-b"
    );
    let history = cluster.helm(&["history", RELEASE, "--namespace", NAMESPACE])?;
    ensure!(
        history.lines().count() == 4,
        "expected three revisions (install, upgrade, rollback):\n{history}"
    );
    cluster.plane.stop().await;
    Ok(())
}

#[tokio::test]
async fn helm_uninstall_removes_the_release_but_keeps_the_crd_and_users_collections() -> Result<()>
{
    let cluster = Cluster::start().await?;
    cluster.install(&[])?;
    cluster.create_namespace("team-a").await?;
    let example =
        std::fs::read_to_string(support::helm::root().join("deploy/examples/myphotos.yaml"))?;
    let mut collection: RekognitionCollection = serde_yaml::from_str(&example)?;
    collection.metadata.namespace = Some("team-a".into());
    let collections: Api<RekognitionCollection> = Api::namespaced(cluster.client.clone(), "team-a");
    collections
        .create(&PostParams::default(), &collection)
        .await
        .context("creating myphotos with the CRD that helm installed")?;

    cluster.helm(&["uninstall", RELEASE, "--namespace", NAMESPACE])?;
    ensure!(
        Api::<Deployment>::namespaced(cluster.client.clone(), NAMESPACE)
            .get_opt(RELEASE)
            .await?
            .is_none(),
        "the Deployment outlived helm uninstall"
    );
    for name in [
        RELEASE.to_owned(),
        format!("{RELEASE}-tenant-edit"),
        format!("{RELEASE}-tenant-view"),
    ] {
        ensure!(
            !cluster.has_cluster_role(&name).await?,
            "the ClusterRole {name} outlived helm uninstall"
        );
    }
    ensure!(
        cluster.crd_exists().await?,
        "helm uninstall deleted the CRD (and with it every collection object)"
    );
    ensure!(
        collections.get_opt("myphotos").await?.is_some(),
        "helm uninstall deleted the user's myphotos"
    );
    cluster.plane.stop().await;
    Ok(())
}
