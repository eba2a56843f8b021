//! The add-on as a platform team runs it, on the test bed's real node (kubelet, kube-proxy,
//! containerd, runc, the CNI bridge; see `testbed::node`): `helm install` of the chart with its
//! default values into a namespace that enforces Pod Security `restricted`, the pods scheduled,
//! Running and Ready, what the runtime made of the pod read from the container's `/proc` and
//! cgroup, and myphotos Ready through the in-cluster operator. And the node's teardown: nothing
//! of it is left on the machine.
//!
//! Needs root (namespaces, cgroups, mounts), as CI and the dev machines have; fails, never skips,
//! without it.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use rekognition_emulator::admin::PodIdentityAssociationConfig;
use rekognition_emulator::{OidcProviderConfig, RoleConfig, TrustRule};
use rekognition_operator::model::crd::RekognitionCollection;
use support::helm::{CHART, NAMESPACE, RELEASE, helm_ok, kubeconfig_file};
use support::node::{
    control_plane_with_node, emulator_key_values, import_operator_image, install_chart, kubectl,
    restricted_namespace,
};
use testbed::node::ContainerProcess;
use testbed::{BackgroundEmulator, ControlPlane, wait_until};

/// One node at a time in this process, so that the teardown test reads the machine with no other
/// node on it (the node's supervisor also takes a machine-wide lock).
static ONE_NODE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `kubectl rollout <verb>` of the chart's Deployment (`status` waits at most three minutes).
fn rollout(plane: &ControlPlane, kubeconfig: &Path, verb: &str) -> Result<String> {
    let mut args = vec![
        "rollout",
        verb,
        "--namespace",
        NAMESPACE,
        "deployment/rekognition-operator",
    ];
    if verb == "status" {
        args.push("--timeout=3m");
    }
    kubectl(plane, kubeconfig, &args)
}

/// The chart's pods: both replicas on the node, Running and Ready.
async fn operator_pods_ready(pods: &Api<Pod>) -> Result<Vec<Pod>> {
    let listed = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=rekognition-operator"))
        .await?;
    ensure!(
        listed.items.len() == 2,
        "the chart's default is two replicas"
    );
    for pod in &listed.items {
        let status = pod.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ensure!(
            status.phase.as_deref() == Some("Running") && ready,
            "pod not Running and Ready: {:?}",
            pod.metadata.name
        );
        ensure!(
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
                == Some(testbed::node::NODE_NAME)
        );
    }
    Ok(listed.items)
}

/// Waits until `name` in `objects` is Ready and returns it.
async fn ready(objects: &Api<RekognitionCollection>, name: &str) -> Result<RekognitionCollection> {
    wait_until(
        &format!("{name} Ready"),
        Duration::from_secs(60),
        || async {
            let object = objects.get(name).await?;
            Ok(object
                .ready_condition()
                .is_some_and(|c| c.status == "True")
                .then_some(object))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_runs_the_pods_locked_down_and_makes_myphotos_ready() -> Result<()> {
    let _one_node = ONE_NODE.lock().await;
    let plane = control_plane_with_node().await?;
    let node = plane.node().context("a node")?;
    // The emulator listens where pods reach it: the host's end of the node's link.
    let emulator = BackgroundEmulator::start_on(testbed::emulator_config(), node.addresses().host)?;
    import_operator_image(&plane)?;
    let client = plane.client().await?;
    let (dir, kubeconfig) = kubeconfig_file(&plane.kubeconfig())?;

    // The release namespace enforces Pod Security `restricted`.
    restricted_namespace(&client, NAMESPACE).await?;
    let config = emulator.config();
    let values = emulator_key_values(&client, &emulator).await?;
    install_chart(&plane, &kubeconfig, dir.path(), &values).await?;

    // Both replicas scheduled on the node, Running and Ready: the kubelet's readiness and
    // liveness probes answered.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    operator_pods_ready(&pods).await?;

    // What runc made of the pod: the image's non-root user, no capabilities, no privilege
    // escalation, the runtime's seccomp profile, a read-only root, the chart's memory limit.
    let processes = ContainerProcess::find("/rekognition-operator")?;
    ensure!(
        processes.len() == 2,
        "two operator processes, found {processes:?}"
    );
    for process in &processes {
        eprintln!(
            "container pid {}: Uid {} | CapEff {} | CapBnd {} | NoNewPrivs {} | Seccomp {} | root {} | cgroup memory limit {} MiB, usage {:.1} MiB | VmRSS {}",
            process.pid,
            process.field("Uid"),
            process.field("CapEff"),
            process.field("CapBnd"),
            process.field("NoNewPrivs"),
            process.field("Seccomp"),
            process.root_mount_options,
            process.memory_limit >> 20,
            process.memory_usage as f64 / 1048576.0,
            process.field("VmRSS"),
        );
        ensure!(
            process
                .field("Uid")
                .split_whitespace()
                .all(|id| id == "65532")
        );
        ensure!(
            process
                .field("Gid")
                .split_whitespace()
                .all(|id| id == "65532")
        );
        ensure!(process.field("CapEff") == "0000000000000000");
        ensure!(process.field("CapPrm") == "0000000000000000");
        ensure!(process.field("CapBnd") == "0000000000000000");
        ensure!(process.field("NoNewPrivs") == "1");
        ensure!(process.field("Seccomp") == "2", "seccomp filter mode");
        ensure!(
            process.root_mount_options.split(',').any(|o| o == "ro"),
            "read-only root, got {}",
            process.root_mount_options
        );
        ensure!(process.memory_limit == 128 << 20, "the chart's 128Mi limit");
    }

    // myphotos, straight from deploy/examples, becomes Ready through the pod.
    kubectl(
        &plane,
        &kubeconfig,
        &[
            "apply",
            "--namespace",
            "default",
            "-f",
            "deploy/examples/myphotos.yaml",
        ],
    )?;
    let objects: Api<RekognitionCollection> = Api::namespaced(client.clone(), "default");
    let ready = wait_until("myphotos Ready", Duration::from_secs(60), || async {
        let object = objects.get("myphotos").await?;
        Ok(object
            .ready_condition()
            .is_some_and(|c| c.status == "True")
            .then_some(object))
    })
    .await?;
    let arn = ready
        .status
        .as_ref()
        .and_then(|s| s.collection_arn.clone())
        .unwrap_or_default();
    ensure!(
        arn == format!(
            "arn:aws:rekognition:{}:{}:collection/myphotos",
            config.region, config.account_id
        ),
        "myphotos's ARN: {arn}"
    );
    // And kubectl reads the leader's log through the API server and the kubelet.
    let logs = kubectl(
        &plane,
        &kubeconfig,
        &[
            "logs",
            "--namespace",
            NAMESPACE,
            "-l",
            "app.kubernetes.io/name=rekognition-operator",
            "--tail=-1",
        ],
    )?;
    ensure!(
        logs.contains("created collection myphotos"),
        "the leader's log: {logs}"
    );

    let pod_of = |identity: &str| -> String {
        // The operator's Lease identity is `<pod>-<n>`.
        identity
            .rsplit_once('-')
            .map_or(identity, |(pod, _)| pod)
            .to_owned()
    };
    let admin = emulator.admin()?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let holder = || async {
        let lease = leases.get_opt(RELEASE).await?;
        anyhow::Ok(
            lease
                .and_then(|l| l.spec?.holder_identity)
                .unwrap_or_default(),
        )
    };
    // While the pods change below, myphotos is read every 100 ms: it must never lose Ready.
    let watching = Arc::new(AtomicBool::new(true));
    let not_ready = Arc::new(AtomicU32::new(0));
    let watcher = tokio::spawn({
        let (watching, not_ready, objects) = (watching.clone(), not_ready.clone(), objects.clone());
        async move {
            while watching.load(Ordering::Relaxed) {
                if let Ok(object) = objects.get("myphotos").await
                    && object.ready_condition().is_none_or(|c| c.status != "True")
                {
                    not_ready.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    // kubectl rollout restart: the old pods get SIGTERM, the leader releases the Lease, a new pod
    // leads.
    let leader = holder().await?;
    ensure!(!leader.is_empty(), "a leader holds the Lease");
    let started = Instant::now();
    rollout(&plane, &kubeconfig, "restart")?;
    rollout(&plane, &kubeconfig, "status")?;
    let rolled = started.elapsed();
    let new_leader = wait_until("a new pod to lead", Duration::from_secs(60), || async {
        let now = holder().await?;
        if now.is_empty() || pod_of(&now) == pod_of(&leader) {
            return Ok(None);
        }
        let live = pods.get_opt(&pod_of(&now)).await?.is_some();
        Ok(live.then_some(now))
    })
    .await?;
    eprintln!(
        "rollout restart: complete in {:.1} s; leader {leader} -> {new_leader}",
        rolled.as_secs_f64()
    );

    // helm upgrade that changes a value (the log level): a rolling update the same way.
    let started = Instant::now();
    helm_ok(
        Some(&kubeconfig),
        &[
            "upgrade",
            RELEASE,
            CHART,
            "--namespace",
            NAMESPACE,
            "--reuse-values",
            "--set",
            "log.level=debug",
            "--wait",
            "--timeout",
            "3m",
        ],
    )?;
    let upgraded = wait_until(
        "a pod of the upgrade to lead",
        Duration::from_secs(60),
        || async {
            let now = holder().await?;
            if now.is_empty() || pod_of(&now) == pod_of(&new_leader) {
                return Ok(None);
            }
            let pod = pods.get_opt(&pod_of(&now)).await?;
            let debug = pod
                .and_then(|p| p.spec)
                .and_then(|s| s.containers.into_iter().next())
                .is_some_and(|c| {
                    c.args
                        .unwrap_or_default()
                        .iter()
                        .any(|a| a.contains("debug"))
                });
            Ok(debug.then_some(now))
        },
    )
    .await?;
    eprintln!(
        "helm upgrade --set log.level=debug: {upgraded} leads, {:.1} s after the upgrade began",
        started.elapsed().as_secs_f64()
    );
    let new_leader = upgraded;

    // kubectl delete pod on the leader: it stops on SIGTERM and releases the Lease; the standby
    // leads.
    let started = Instant::now();
    pods.delete(&pod_of(&new_leader), &DeleteParams::default())
        .await?;
    let after_delete = wait_until(
        "the standby to lead after the leader's pod is deleted",
        Duration::from_secs(60),
        || async {
            let now = holder().await?;
            Ok((!now.is_empty() && pod_of(&now) != pod_of(&new_leader)).then_some(now))
        },
    )
    .await?;
    eprintln!(
        "kubectl delete pod {}: {after_delete} leads after {:.1} s",
        pod_of(&new_leader),
        started.elapsed().as_secs_f64()
    );

    // kill -9 of the leader's container: it releases nothing. The kubelet restarts the container;
    // the restarted process has the same identity (pod name and PID 1), so it may take the Lease
    // back before the standby can, once it expires. Either way a live replica leads within the
    // Lease duration and renews it.
    let leader_pod = pods.get(&pod_of(&after_delete)).await?;
    let uid = leader_pod.metadata.uid.clone().unwrap_or_default();
    let process = ContainerProcess::of_pod("/rekognition-operator", &uid)?;
    let renewed_before = leases.get(RELEASE).await?.metadata.resource_version;
    let started = Instant::now();
    kill_9(process.pid)?;
    let after_kill = wait_until(
        "a live replica to renew the Lease after kill -9",
        Duration::from_secs(60),
        || async {
            let lease = leases.get(RELEASE).await?;
            let now = lease
                .spec
                .and_then(|s| s.holder_identity)
                .unwrap_or_default();
            if now.is_empty() || lease.metadata.resource_version == renewed_before {
                return Ok(None);
            }
            let pod = pods.get(&pod_of(&now)).await?;
            let restarted = pod
                .status
                .and_then(|s| s.container_statuses)
                .unwrap_or_default()
                .iter()
                .any(|c| {
                    c.ready && (pod_of(&now) != pod_of(&after_delete) || c.restart_count >= 1)
                });
            Ok(restarted.then_some(now))
        },
    )
    .await?;
    let how = match pod_of(&after_kill) == pod_of(&after_delete) {
        true => "the restarted container leads again",
        false => "the standby leads",
    };
    eprintln!(
        "kill -9 of {}'s container: {how} ({after_kill}) after {:.1} s",
        pod_of(&after_delete),
        started.elapsed().as_secs_f64()
    );

    // kubectl drain: the PodDisruptionBudget lets one replica go and refuses the last ready one.
    rollout(&plane, &kubeconfig, "status")?;
    let drain = Command::new(&plane.binaries().kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "drain",
            testbed::node::NODE_NAME,
            "--ignore-daemonsets",
            "--timeout=25s",
        ])
        .output()?;
    let drain_text = String::from_utf8_lossy(&drain.stderr).into_owned()
        + &String::from_utf8_lossy(&drain.stdout);
    ensure!(
        !drain.status.success(),
        "drain must not evict the last ready replica: {drain_text}"
    );
    let refusal = drain_text
        .lines()
        .find(|l| l.contains("disruption budget"))
        .with_context(|| format!("drain's refusal names the disruption budget: {drain_text}"))?;
    eprintln!("kubectl drain: {}", refusal.trim());
    let running = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=rekognition-operator"))
        .await?
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .count();
    ensure!(
        running == 1,
        "one replica still runs while the node is drained, found {running}"
    );
    kubectl(&plane, &kubeconfig, &["uncordon", testbed::node::NODE_NAME])?;
    rollout(&plane, &kubeconfig, "status")?;

    watching.store(false, Ordering::Relaxed);
    watcher.await?;
    ensure!(
        not_ready.load(Ordering::Relaxed) == 0,
        "myphotos lost Ready {} times while pods changed",
        not_ready.load(Ordering::Relaxed)
    );
    let creates = admin
        .calls()
        .await?
        .into_iter()
        .filter(|c| {
            c.operation == "CreateCollection"
                && c.outcome == "Ok"
                && c.collection_id.as_deref() == Some("myphotos")
        })
        .count();
    ensure!(
        creates == 1,
        "CreateCollection for myphotos {creates} times across the restarts"
    );

    // 2,000 objects with the chart's defaults: the leader's memory stays under the chart's limit,
    // read from its container's cgroup beside its RSS.
    let fleet_objects = 2_000;
    holds_a_fleet_under_the_memory_limit(&client, &pods, &holder().await?, fleet_objects).await?;

    plane.stop().await;
    Ok(())
}

/// The messages of the Events `reason` in `namespace`, once there is one.
async fn events(client: &kube::Client, namespace: &str, reason: &str) -> Result<Vec<String>> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    wait_until(
        &format!("a {reason} Event in {namespace}"),
        Duration::from_secs(90),
        || async {
            let found: Vec<String> = api
                .list(&ListParams::default().fields(&format!("reason={reason}")))
                .await?
                .items
                .into_iter()
                .filter_map(|e| e.message)
                .collect();
            Ok((!found.is_empty()).then_some(found))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_show_the_user_where_to_look() -> Result<()> {
    let _one_node = ONE_NODE.lock().await;
    let plane = control_plane_with_node().await?;
    import_operator_image(&plane)?;
    let client = plane.client().await?;
    let (_dir, kubeconfig) = kubeconfig_file(&plane.kubeconfig())?;

    // An image that does not exist: `helm install --wait` fails, and the pod's Events say why.
    restricted_namespace(&client, "missing-image").await?;
    let install = support::helm::helm_with(
        Some(&kubeconfig),
        &[
            "install",
            "missing-image",
            CHART,
            "--namespace",
            "missing-image",
            "--set",
            "image.tag=0.0.0-missing",
            "--wait",
            "--timeout",
            "30s",
        ],
    )?;
    ensure!(
        !install.status.success(),
        "helm install --wait of a missing image must fail"
    );
    eprintln!(
        "helm install --wait: {}",
        String::from_utf8_lossy(&install.stderr).trim()
    );
    let failed = events(&client, "missing-image", "Failed").await?;
    let pull = failed
        .iter()
        .find(|m| m.contains("0.0.0-missing"))
        .with_context(|| format!("a Failed Event names the image: {failed:?}"))?;
    eprintln!("pod Event Failed: {pull}");

    // Values that ask for a privileged container: Pod Security refuses the pods, and the
    // ReplicaSet's FailedCreate Event quotes why.
    restricted_namespace(&client, "privileged").await?;
    helm_ok(
        Some(&kubeconfig),
        &[
            "install",
            "privileged",
            CHART,
            "--namespace",
            "privileged",
            "--set",
            "securityContext.privileged=true",
            "--set",
            "securityContext.allowPrivilegeEscalation=true",
        ],
    )?;
    let refused = events(&client, "privileged", "FailedCreate").await?;
    let refusal = refused
        .iter()
        .find(|m| m.contains("violates PodSecurity") && m.contains("privileged"))
        .with_context(|| format!("FailedCreate quotes Pod Security: {refused:?}"))?;
    eprintln!("ReplicaSet Event FailedCreate: {refusal}");
    plane.stop().await;
    Ok(())
}

/// Creates `count` objects in a namespace of their own, waits until all are Ready, and checks the
/// leader's container: cgroup memory (now and its peak) under the chart's limit.
async fn holds_a_fleet_under_the_memory_limit(
    client: &kube::Client,
    pods: &Api<Pod>,
    leader: &str,
    count: usize,
) -> Result<()> {
    use futures::{StreamExt, TryStreamExt};
    restricted_namespace(client, "fleet").await?;
    let objects: Api<RekognitionCollection> = Api::namespaced(client.clone(), "fleet");
    let started = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| {
            let objects = objects.clone();
            async move {
                let object: RekognitionCollection = serde_json::from_value(serde_json::json!({
                    "apiVersion": "rekognition.aws-operators.dev/v1alpha1",
                    "kind": "RekognitionCollection",
                    "metadata": { "name": format!("fleet-{i:04}") },
                    "spec": {},
                }))?;
                objects.create(&PostParams::default(), &object).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    wait_until(
        "every fleet object Ready",
        Duration::from_secs(300),
        || async {
            let ready = objects
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|o| o.ready_condition().is_some_and(|c| c.status == "True"))
                .count();
            Ok(ready == count)
        },
    )
    .await?;
    let elapsed = started.elapsed();
    let leader_pod = pods
        .get(leader.rsplit_once('-').map_or(leader, |(pod, _)| pod))
        .await?;
    let uid = leader_pod.metadata.uid.unwrap_or_default();
    let process = ContainerProcess::of_pod("/rekognition-operator", &uid)?;
    let peak = process.memory_peak()?;
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    eprintln!(
        "{count} objects Ready in {:.1} s ({:.0} objects/s, chart defaults); leader's container: \
         cgroup memory {:.1} MiB now, {:.1} MiB at peak, limit {:.0} MiB; VmRSS {}, VmHWM {}",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        mib(process.memory_usage),
        mib(peak),
        mib(process.memory_limit),
        process.field("VmRSS"),
        process.field("VmHWM"),
    );
    ensure!(
        peak < process.memory_limit,
        "the leader's memory peaked at the limit"
    );
    Ok(())
}

/// `kubectl apply -f deploy/examples/myphotos.yaml` into `default`; returns it once Ready.
async fn apply_myphotos(
    plane: &ControlPlane,
    kubeconfig: &Path,
    client: &kube::Client,
) -> Result<RekognitionCollection> {
    kubectl(
        plane,
        kubeconfig,
        &[
            "apply",
            "--namespace",
            "default",
            "-f",
            "deploy/examples/myphotos.yaml",
        ],
    )?;
    ready(&Api::namespaced(client.clone(), "default"), "myphotos").await
}

/// How many `operation` calls the emulator answered Ok.
async fn ok_calls(
    admin: &rekognition_emulator::admin::AdminClient,
    operation: &str,
) -> Result<usize> {
    Ok(admin
        .calls()
        .await?
        .into_iter()
        .filter(|c| c.operation == operation && c.outcome == "Ok")
        .count())
}

/// A node, an emulator where pods reach it, the image imported, and the emulator's IAM trusting
/// the API server's ServiceAccount tokens for `audience` (its keys read from `/openid/v1/jwks`).
struct CredentialsBed {
    plane: ControlPlane,
    emulator: BackgroundEmulator,
    client: kube::Client,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    config: rekognition_emulator::Config,
    admin: rekognition_emulator::admin::AdminClient,
}

impl CredentialsBed {
    async fn start(audience: &str) -> Result<Self> {
        let plane = control_plane_with_node().await?;
        let host = plane.node().context("a node")?.addresses().host;
        let emulator = BackgroundEmulator::start_on(testbed::emulator_config(), host)?;
        import_operator_image(&plane)?;
        let client = plane.client().await?;
        let (dir, kubeconfig) = kubeconfig_file(&plane.kubeconfig())?;
        let config = emulator.config().clone();
        let jwks = client
            .request_text(http::Request::get("/openid/v1/jwks").body(Vec::new())?)
            .await?;
        let admin = emulator.admin()?;
        admin
            .put_oidc_provider(&OidcProviderConfig {
                account_id: config.account_id.clone(),
                issuer: "https://testbed.local".into(),
                client_ids: vec![audience.to_owned()],
                jwks: serde_json::from_str(&jwks)?,
            })
            .await?;
        Ok(Self {
            plane,
            emulator,
            client,
            dir,
            kubeconfig,
            config,
            admin,
        })
    }
}

/// IRSA as EKS does it: the EKS Pod Identity Webhook (built from its Go module, served with a
/// certificate the test bed issues) mutates the chart's pods from the ServiceAccount's role
/// annotation; the kubelet projects a token with audience `sts.amazonaws.com`; the operator
/// exchanges it at the emulator's STS (AssumeRoleWithWebIdentity), which checks it against the
/// API server's keys. The pods hold no static keys. A role IAM refuses leaves the objects
/// `CredentialsUnavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irsa_gives_the_pods_credentials_through_the_eks_webhook() -> Result<()> {
    let _one_node = ONE_NODE.lock().await;
    let CredentialsBed {
        plane,
        emulator,
        client,
        dir,
        kubeconfig,
        config,
        admin,
    } = CredentialsBed::start("sts.amazonaws.com").await?;
    // The emulator's IAM trusts the API server's tokens for the chart's ServiceAccount.
    let role = admin
        .put_role(&RoleConfig {
            account_id: config.account_id.clone(),
            name: "rekognition-operator".into(),
            max_session_duration_seconds: 3600,
            trust: vec![TrustRule::WebIdentity {
                issuer: "https://testbed.local".into(),
                subject: format!("system:serviceaccount:{NAMESPACE}:rekognition-operator"),
            }],
        })
        .await?;

    // The webhook, beside the API server on the host's end of the node's link.
    let webhook = PodIdentityWebhook::start(&plane, &kubeconfig, dir.path(), &[]).await?;
    restricted_namespace(&client, NAMESPACE).await?;
    // Only the role annotation and what points at the emulator (its endpoints for Rekognition
    // and STS): no keys.
    let values = serde_json::json!({
        "aws": { "region": config.region, "endpointUrl": emulator.endpoint_url() },
        "serviceAccount": { "annotations": { "eks.amazonaws.com/role-arn": role.arn } },
        "extraEnv": [{ "name": "AWS_ENDPOINT_URL_STS", "value": emulator.endpoint_url() }],
    });
    install_chart(&plane, &kubeconfig, dir.path(), &values).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    credentials_without_keys(
        &pods,
        &["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"],
        "sts.amazonaws.com",
    )
    .await?;

    apply_myphotos(&plane, &kubeconfig, &client).await?;
    let exchanged = ok_calls(&admin, "AssumeRoleWithWebIdentity").await?;
    ensure!(exchanged >= 1, "the operator exchanged its token at STS");
    eprintln!(
        "IRSA: myphotos Ready; AssumeRoleWithWebIdentity Ok {exchanged} times; no static key in the pods"
    );

    // A role the emulator's IAM refuses (its trust names no web identity of this cluster): the
    // new pods' exchange fails, and an object shows CredentialsUnavailable.
    helm_ok(
        Some(&kubeconfig),
        &[
            "upgrade",
            RELEASE,
            CHART,
            "--namespace",
            NAMESPACE,
            "--reuse-values",
            "--set",
            &format!(
                "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::{}:role/not-trusted",
                config.account_id
            ),
            "--wait",
            "--timeout",
            "3m",
        ],
    )?;
    // The webhook sets the role when a pod is created: the pods restart to take the new one.
    // Its ServiceAccount cache follows a watch, so a restart right after the upgrade may still
    // get the old role; restart until the pods carry the new one.
    let refused_role = format!("arn:aws:iam::{}:role/not-trusted", config.account_id);
    wait_until(
        "the pods to carry the refused role",
        Duration::from_secs(120),
        || async {
            for verb in ["restart", "status"] {
                rollout(&plane, &kubeconfig, verb)?;
            }
            let roles = kubectl(
                &plane,
                &kubeconfig,
                &[
                    "get",
                    "pods",
                    "--namespace",
                    NAMESPACE,
                    "--field-selector=status.phase=Running",
                    "-o",
                    "jsonpath={.items[*].spec.containers[0].env[?(@.name=='AWS_ROLE_ARN')].value}",
                ],
            )?;
            Ok(roles.split_whitespace().all(|role| role == refused_role))
        },
    )
    .await?;
    let objects_after: Api<RekognitionCollection> = Api::namespaced(client.clone(), "default");
    let refused: RekognitionCollection = serde_json::from_value(serde_json::json!({
        "apiVersion": "rekognition.aws-operators.dev/v1alpha1",
        "kind": "RekognitionCollection",
        "metadata": { "name": "refused" },
        "spec": {},
    }))?;
    objects_after
        .create(&PostParams::default(), &refused)
        .await?;
    let shown = wait_until(
        "refused shows CredentialsUnavailable",
        Duration::from_secs(90),
        || async {
            let object = objects_after.get("refused").await?;
            Ok(object
                .ready_condition()
                .filter(|c| c.reason == "CredentialsUnavailable")
                .map(|c| c.message.clone()))
        },
    )
    .await?;
    eprintln!("a role IAM refuses: CredentialsUnavailable: {shown}");

    // And the chart's credentials alert fires on a real Prometheus scraping the pods (the host
    // routes to them over the node's link), with its `for` and window shortened for the test.
    let targets: Vec<String> = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=rekognition-operator"))
        .await?
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .map(|ip| format!("{ip}:8080"))
        .collect();
    let rules = support::prometheus::rules_yaml(&[
        "--set",
        "metrics.prometheusRule.thresholds.credentialsFor=2s",
        "--set",
        "metrics.prometheusRule.thresholds.window=30s",
    ])?;
    let prometheus =
        support::prometheus::Prometheus::start("rekognition-operator-metrics", &targets, &rules)
            .await?;
    // Only calls refused after Prometheus's first scrape count as an increase.
    let scraping = std::time::Instant::now();
    prometheus
        .wait_scraping("rekognition-operator-metrics", targets.len())
        .await?;
    eprintln!(
        "Prometheus scrapes {} pods after {:.1} s",
        targets.len(),
        scraping.elapsed().as_secs_f64()
    );
    // More objects, more refused calls while Prometheus watches: one every 3 s until the alert
    // fires, so the test does not lean on when the objects already refused retry.
    let started = std::time::Instant::now();
    let mut made = 0;
    let alert = loop {
        if let Some(alert) = prometheus
            .alerts("RekognitionOperatorCredentialsFailing")
            .await?
            .into_iter()
            .find(|a| a["state"] == "firing")
        {
            break alert;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let seen = prometheus
                .query("rekognition_operator_aws_calls_total{outcome=\"credentials_unavailable\"} or up")
                .await;
            bail!(
                "RekognitionOperatorCredentialsFailing not firing within 120 s of {made} more \
                 refused objects; targets {targets:?}; Prometheus has {seen:?}"
            );
        }
        let object: RekognitionCollection = serde_json::from_value(serde_json::json!({
            "apiVersion": "rekognition.aws-operators.dev/v1alpha1",
            "kind": "RekognitionCollection",
            "metadata": { "name": format!("refused-{made}") },
            "spec": {},
        }))?;
        objects_after
            .create(&PostParams::default(), &object)
            .await?;
        made += 1;
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    let after = started.elapsed();
    eprintln!(
        "RekognitionOperatorCredentialsFailing firing after {:.1} s: {}",
        after.as_secs_f64(),
        alert["labels"]
    );
    drop(webhook);
    plane.stop().await;
    Ok(())
}

/// The chart's pods, Running and Ready, have the credential variables `variables` from the
/// webhook and a projected token for `audience`, and no static key in their spec or their
/// processes' environment.
async fn credentials_without_keys(
    pods: &Api<Pod>,
    variables: &[&str],
    audience: &str,
) -> Result<()> {
    for pod in operator_pods_ready(pods).await? {
        let spec = pod.spec.context("a pod spec")?;
        let container = spec.containers.first().context("a container")?;
        let env: Vec<&str> = container
            .env
            .iter()
            .flatten()
            .map(|e| e.name.as_str())
            .collect();
        ensure!(
            variables.iter().all(|v| env.contains(v)),
            "the webhook set {variables:?}: {env:?}"
        );
        ensure!(
            !env.iter()
                .any(|name| name.contains("ACCESS_KEY") || name.contains("SECRET")),
            "no static keys in the pod: {env:?}"
        );
        let audiences = spec
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| v.projected.as_ref())
            .flat_map(|p| p.sources.iter().flatten())
            .filter_map(|s| s.service_account_token.as_ref())
            .filter_map(|t| t.audience.clone())
            .collect::<Vec<_>>();
        ensure!(
            audiences.iter().any(|a| a == audience),
            "a projected token for {audience}: {audiences:?}"
        );
    }
    for process in ContainerProcess::find("/rekognition-operator")? {
        let environ = std::fs::read(format!("/proc/{}/environ", process.pid))?;
        let environ = String::from_utf8_lossy(&environ);
        ensure!(
            !environ.contains("AWS_ACCESS_KEY_ID") && !environ.contains("AWS_SECRET_ACCESS_KEY"),
            "a static key in pid {}'s environment",
            process.pid
        );
    }
    Ok(())
}

/// EKS Pod Identity: the same webhook, watching a pod identity configuration for the chart's
/// ServiceAccount, gives the pods `AWS_CONTAINER_CREDENTIALS_FULL_URI`
/// (`http://169.254.170.23/v1/credentials`) and a projected token for `pods.eks.amazonaws.com`.
/// The Pod Identity agent cannot be built here (its Go module is not served), so the emulator
/// serves the agent's endpoint with its request and response shapes, reached on the node's
/// link-local address; it checks the token against the API server's keys and hands out the
/// associated role's session. No annotation, no static keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_pod_identity_gives_the_pods_credentials_from_the_agent_endpoint() -> Result<()> {
    let _one_node = ONE_NODE.lock().await;
    let CredentialsBed {
        plane,
        emulator,
        client,
        dir,
        kubeconfig,
        config,
        admin,
    } = CredentialsBed::start("pods.eks.amazonaws.com").await?;
    let node = plane.node().context("a node")?;
    let host = node.addresses().host;
    let role = admin
        .put_role(&RoleConfig {
            account_id: config.account_id.clone(),
            name: "rekognition-operator-pod-identity".into(),
            max_session_duration_seconds: 3600,
            // EKS Pod Identity roles trust the service principal pods.eks.amazonaws.com, which
            // the emulator's IAM does not model: the association is what grants the role.
            trust: vec![TrustRule::Principal {
                principal: format!("arn:aws:iam::{}:root", config.account_id),
                external_id: None,
            }],
        })
        .await?;
    admin
        .put_pod_identity_association(&PodIdentityAssociationConfig {
            namespace: NAMESPACE.into(),
            service_account: "rekognition-operator".into(),
            role_arn: role.arn.clone(),
        })
        .await?;
    // The agent's address on the node, served by the emulator's endpoint on the host.
    let endpoint_port: u16 = emulator
        .endpoint_url()
        .rsplit_once(':')
        .and_then(|(_, port)| port.trim_end_matches('/').parse().ok())
        .context("the emulator's port")?;
    node.forward(
        "169.254.170.23:80".parse()?,
        std::net::SocketAddrV4::new(host, endpoint_port),
    )?;
    let identities = dir.path().join("pod-identities.json");
    std::fs::write(
        &identities,
        serde_json::json!({ "identities": [
            { "namespace": NAMESPACE, "serviceAccount": "rekognition-operator" }
        ]})
        .to_string(),
    )?;
    let webhook = PodIdentityWebhook::start(
        &plane,
        &kubeconfig,
        dir.path(),
        &[format!(
            "--watch-container-credentials-config={}",
            identities.display()
        )],
    )
    .await?;

    restricted_namespace(&client, NAMESPACE).await?;
    let values = serde_json::json!({
        "aws": { "region": config.region, "endpointUrl": emulator.endpoint_url() },
    });
    install_chart(&plane, &kubeconfig, dir.path(), &values).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    credentials_without_keys(
        &pods,
        &[
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        ],
        "pods.eks.amazonaws.com",
    )
    .await?;
    apply_myphotos(&plane, &kubeconfig, &client).await?;
    let handed_out = ok_calls(&admin, "AssumeRoleForPodIdentity").await?;
    ensure!(
        handed_out >= 1,
        "the operator took its credentials from the agent's endpoint"
    );
    eprintln!(
        "EKS Pod Identity: myphotos Ready; AssumeRoleForPodIdentity Ok {handed_out} times; no static key in the pods"
    );
    drop(webhook);
    plane.stop().await;
    Ok(())
}

/// The EKS Pod Identity Webhook as a process beside the API server, registered as a
/// MutatingWebhookConfiguration for pods. Stops on drop.
struct PodIdentityWebhook {
    child: std::process::Child,
}

impl PodIdentityWebhook {
    async fn start(
        plane: &ControlPlane,
        kubeconfig: &Path,
        dir: &Path,
        extra_args: &[String],
    ) -> Result<Self> {
        let bin = testbed::build_with_script(
            &testbed::workspace_root().join("tools/pod-identity-webhook/build.sh"),
        )?;
        let host = plane.node().context("a node")?.addresses().host;
        let certificate = testbed::pki::serving_certificate(&[host.into()])?;
        std::fs::write(dir.join("webhook.crt"), &certificate.cert_pem)?;
        std::fs::write(dir.join("webhook.key"), &certificate.key_pem)?;
        let port = free_port()?;
        let metrics_port = free_port()?;
        let child = Command::new(bin.join("amazon-eks-pod-identity-webhook"))
            .arg("--in-cluster=false")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--tls-cert={}", dir.join("webhook.crt").display()))
            .arg(format!("--tls-key={}", dir.join("webhook.key").display()))
            .arg(format!("--port={port}"))
            .arg(format!("--metrics-port={metrics_port}"))
            .arg("--service-account-lookup-grace-period=5s")
            .args(extra_args)
            .stdout(std::fs::File::create(dir.join("webhook.log"))?)
            .stderr(std::fs::File::create(dir.join("webhook.err"))?)
            .spawn()
            .context("starting amazon-eks-pod-identity-webhook")?;
        let webhook = Self { child };
        let mut configuration: MutatingWebhookConfiguration = serde_json::from_value(
            serde_json::json!({
                "metadata": { "name": "pod-identity-webhook" },
                "webhooks": [{
                    "name": "iam-for-pods.amazonaws.com",
                    "clientConfig": {
                        "url": format!("https://{host}:{port}/mutate"),
                                            },
                    "rules": [{ "operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"] }],
                    // As EKS registers it: a webhook that is down never blocks pods.
                    "failurePolicy": "Ignore",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1beta1"],
                }],
            }),
        )?;
        for webhook in configuration.webhooks.iter_mut().flatten() {
            webhook.client_config.ca_bundle = Some(k8s_openapi::ByteString(
                certificate.ca_pem.clone().into_bytes(),
            ));
        }
        Api::<MutatingWebhookConfiguration>::all(plane.client().await?)
            .create(&PostParams::default(), &configuration)
            .await?;
        // Serving: /healthz answers on the webhook's TLS port.
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(
                certificate.ca_pem.as_bytes(),
            )?)
            .no_proxy()
            .build()?;
        let healthz = format!("https://{host}:{port}/healthz");
        wait_until("the webhook to serve", Duration::from_secs(30), || async {
            Ok(http
                .get(&healthz)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()))
        })
        .await
        .with_context(|| std::fs::read_to_string(dir.join("webhook.err")).unwrap_or_default())?;
        Ok(webhook)
    }
}

impl Drop for PodIdentityWebhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port below the kernel's ephemeral range is not needed here: the webhook binds once.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Everything of the machine a node could leave changed.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    links: BTreeSet<String>,
    routes: String,
    mounts: BTreeSet<String>,
    iptables: String,
    nftables: String,
    sysctls: String,
    cgroups: BTreeSet<String>,
    paths: BTreeSet<String>,
}

fn output(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    ensure!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl HostState {
    fn read() -> Result<Self> {
        let without_comments = |text: String| -> String {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split(" [").next().unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut cgroups = BTreeSet::new();
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")? {
            let hierarchy = hierarchy?.path();
            for entry in std::fs::read_dir(&hierarchy)
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.path().is_dir() && (name.starts_with("testbed-node") || name == "kubepods")
                {
                    cgroups.insert(entry.path().display().to_string());
                }
            }
        }
        let paths = [
            "/var/lib/kubelet",
            "/var/lib/cni",
            "/var/lib/containerd",
            "/var/log/containers",
            "/var/log/pods",
            "/run/containerd",
            "/usr/libexec/kubernetes",
            "/etc/cni/net.d",
        ]
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .map(String::from)
        .collect();
        Ok(Self {
            links: output("ip", &["-o", "link"])?
                .lines()
                .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_owned()))
                .collect(),
            routes: output("ip", &["route"])?,
            mounts: std::fs::read_to_string("/proc/self/mountinfo")?
                .lines()
                .map(|l| {
                    l.split_whitespace()
                        .skip(3)
                        .take(2)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect(),
            iptables: without_comments(output("iptables-save", &[])?)
                + &without_comments(output("ip6tables-save", &[])?),
            nftables: output("nft", &["list", "ruleset"])?,
            sysctls: output(
                "sysctl",
                &[
                    "vm.overcommit_memory",
                    "kernel.panic",
                    "kernel.panic_on_oops",
                    "net.ipv4.ip_forward",
                ],
            )?,
            cgroups,
            paths,
        })
    }
}

/// PIDs whose command line or working directory names `dir`.
fn processes_under(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(&needle)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_leaves_nothing_behind() -> Result<()> {
    let _one_node = ONE_NODE.lock().await;
    let before = HostState::read()?;
    let plane = control_plane_with_node().await?;
    let node = plane.node().context("a node")?;
    let dir: PathBuf = node.dir().to_path_buf();
    // A pod running at the moment of teardown, with its sandbox, mounts and cgroups.
    let client = plane.client().await?;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "pause" },
        "spec": {
            "containers": [{ "name": "pause", "image": "testbed.local/pause:1", "imagePullPolicy": "Never" }],
            "automountServiceAccountToken": false,
        }
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    wait_until("the pod Running", Duration::from_secs(60), || async {
        let pod = pods.get("pause").await?;
        Ok(pod.status.and_then(|s| s.phase).as_deref() == Some("Running"))
    })
    .await?;
    let during = HostState::read()?;
    ensure!(
        !processes_under(&dir).is_empty(),
        "the node's processes run"
    );
    ensure!(
        during.links != before.links,
        "the node's link exists while it runs"
    );

    plane.stop().await;
    let after = HostState::read()?;
    let left = processes_under(&dir);
    eprintln!(
        "after teardown: processes naming the node's directory: {}; its directory exists: {}; \
         links {}; routes {}; mounts {}; iptables {}; nftables {}; sysctls {}; cgroups {:?}; paths {:?}",
        left.len(),
        dir.exists(),
        same(&before.links, &after.links),
        same(&before.routes, &after.routes),
        same(&before.mounts, &after.mounts),
        same(&before.iptables, &after.iptables),
        same(&before.nftables, &after.nftables),
        same(&before.sysctls, &after.sysctls),
        after.cgroups,
        after.paths,
    );
    ensure!(left.is_empty(), "processes left: {left:?}");
    ensure!(!dir.exists(), "{} left", dir.display());
    ensure!(
        before == after,
        "the machine changed:\nbefore {before:#?}\nafter {after:#?}"
    );
    Ok(())
}

/// SIGKILL, as the kernel's OOM killer or a crash ends a container.
fn kill_9(pid: u32) -> Result<()> {
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -KILL {pid}");
    Ok(())
}

fn same<T: PartialEq>(before: &T, after: &T) -> &'static str {
    if before == after {
        "as before"
    } else {
        "CHANGED"
    }
}
