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
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use rekognition_operator::crd::RekognitionCollection;
use support::helm::{CHART, NAMESPACE, RELEASE, helm_ok, kubeconfig_file};
use testbed::{BackgroundEmulator, ControlPlane, ControlPlaneOptions, wait_until};

/// Where the chart's default values look for the image; the test imports it under that name.
const DEFAULT_IMAGE: &str = "ghcr.io/aws-operators/rekognition-operator";

async fn control_plane_with_node() -> Result<ControlPlane> {
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
fn import_operator_image(plane: &ControlPlane) -> Result<()> {
    let oci = testbed::build_with_script(&testbed::workspace_root().join("scripts/image.sh"))?;
    let tarball = oci
        .parent()
        .context("the image's directory")?
        .join("rekognition-operator.tar");
    let node = plane.node().context("a node")?;
    let version = env!("CARGO_PKG_VERSION");
    node.import_image(&tarball, &format!("{DEFAULT_IMAGE}:{version}"))
}

fn kubectl(plane: &ControlPlane, kubeconfig: &Path, args: &[&str]) -> Result<String> {
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

/// What the kernel says of one container's main process, from the host's `/proc`.
#[derive(Debug)]
struct ContainerProcess {
    pid: u32,
    status: String,
    root_mount_options: String,
    memory_limit: u64,
    memory_usage: u64,
}

impl ContainerProcess {
    fn field(&self, name: &str) -> &str {
        self.status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or_default()
    }

    /// The processes whose executable is `path` inside their container (the host sees every
    /// PID of the node's namespaces).
    fn find(path: &str) -> Result<Vec<Self>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc")? {
            let Some(pid) = entry?
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            if cmdline.split(|b| *b == 0).next() != Some(path.as_bytes()) {
                continue;
            }
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
            let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
            let root_mount_options = mountinfo
                .lines()
                .find_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    (fields.get(4) == Some(&"/")).then(|| fields.get(5).copied())?
                })
                .unwrap_or_default()
                .to_owned();
            let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
            let memory = cgroups
                .lines()
                .find_map(|line| line.split_once(":memory:").map(|(_, path)| path.to_owned()))
                .context("the container's memory cgroup")?;
            let read = |file: &str| -> Result<u64> {
                let path = format!("/sys/fs/cgroup/memory{memory}/{file}");
                Ok(std::fs::read_to_string(&path)
                    .with_context(|| path.clone())?
                    .trim()
                    .parse()?)
            };
            found.push(Self {
                pid,
                status,
                root_mount_options,
                memory_limit: read("memory.limit_in_bytes")?,
                memory_usage: read("memory.usage_in_bytes")?,
            });
        }
        Ok(found)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_runs_the_pods_locked_down_and_makes_myphotos_ready() -> Result<()> {
    let plane = control_plane_with_node().await?;
    let node = plane.node().context("a node")?;
    // The emulator listens where pods reach it: the host's end of the node's link.
    let emulator = BackgroundEmulator::start_on(testbed::emulator_config(), node.addresses().host)?;
    import_operator_image(&plane)?;
    let client = plane.client().await?;
    let (dir, kubeconfig) = kubeconfig_file(&plane.kubeconfig())?;

    // The release namespace enforces Pod Security `restricted`.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.into()),
            labels: Some(
                [(
                    "pod-security.kubernetes.io/enforce".to_string(),
                    "restricted".to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;
    // What points the chart at the emulator: its endpoint and region, and its keys in a Secret
    // (on EKS, IRSA or Pod Identity gives credentials instead).
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
    let values = serde_json::json!({
        "aws": { "region": config.region, "endpointUrl": emulator.endpoint_url() },
        "extraEnv": [credential("AWS_ACCESS_KEY_ID"), credential("AWS_SECRET_ACCESS_KEY")],
    });
    let values_file = dir.path().join("emulator-values.json");
    std::fs::write(&values_file, values.to_string())?;
    let installed = helm_ok(
        Some(&kubeconfig),
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
        bail!(
            "{error:#}\n{}\n{}",
            kubectl(&plane, &kubeconfig, &["get", "events", "-A"]).unwrap_or_default(),
            node.log_tail("kubelet", 30)
        );
    }

    // Both replicas scheduled on the node, Running and Ready: the kubelet's readiness and
    // liveness probes answered.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
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
    plane.stop().await;
    Ok(())
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
    // Waits for the other test's node (one node at a time on a machine) before reading.
    let lock = std::fs::File::create(std::env::temp_dir().join("testbed-node.lock"))?;
    let before = tokio::task::spawn_blocking(move || {
        lock.lock()?;
        let state = HostState::read();
        drop(lock);
        state
    })
    .await??;
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

/// Whether this process runs as root (from /proc, without unsafe code).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

fn same<T: PartialEq>(before: &T, after: &T) -> &'static str {
    if before == after {
        "as before"
    } else {
        "CHANGED"
    }
}
