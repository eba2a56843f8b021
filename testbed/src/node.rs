//! A real node beside the control plane: containerd with runc and the CNI bridge, kubelet and
//! kube-proxy, in mount, network and PID namespaces of the node's own.
//!
//! **Network.** A veth pair joins the node's network namespace to the host: `10.251.N.1` on the
//! host side, where the API server (and any emulator a test starts for pods) listens;
//! `10.251.N.2` is the node's address, which the API server dials for logs; the pods' bridge
//! holds `10.252.N.0/24` inside the node. The host routes the pod range to the node over the
//! pair, so the API server reaches pods (webhooks). The node has no default route: a pod reaches
//! the host's address on the pair and the `kubernetes` Service (kube-proxy's rules, inside the
//! node), and nothing else. Nothing is routed off the machine and nothing resolves names.
//!
//! **What stays inside.** The node's mounts (`/var/lib`, `/var/log` and `/run` are a tmpfs of
//! its own, so kubelet's, containerd's and the CNI plugins' fixed paths never touch the host's),
//! its iptables rules and its `ip_forward` live and die with its namespaces. What cannot be kept
//! inside is put back by the supervisor when the node stops: kubelet's three kernel settings
//! (`vm.overcommit_memory`, `kernel.panic`, `kernel.panic_on_oops`) and the node's cgroups (one
//! `testbed-node-N` directory per hierarchy).
//!
//! **Stopping.** As with the control plane, a small `sh` supervisor holds the node; its stdin is a
//! pipe held by this process. When the pipe closes (stop, drop, or this process dying, even by
//! `kill -9`), the node's processes get SIGTERM, then the namespaces' init exits (the kernel kills
//! what is left, containers included), then the supervisor restores the kernel settings, removes
//! the cgroups and the node's directory.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::api::Api;

use crate::control_plane::{Supervisor, locked, shell_quote, write_launcher};

/// The node's name in the API.
pub const NODE_NAME: &str = "testbed-node";
/// The Service range the API server hands out; the `kubernetes` Service takes its first address.
pub const SERVICE_CIDR: &str = "10.0.0.0/24";
/// The `kubernetes` Service's cluster IP.
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// A process a container of the node runs, as the host sees it (the host sees every PID of the
/// node's namespaces): its `/proc` status, its root mount and its memory cgroup (v1).
#[derive(Debug)]
pub struct ContainerProcess {
    pub pid: u32,
    /// `/proc/PID/status`.
    pub status: String,
    /// The mount options of its root (`ro` for a read-only root).
    pub root_mount_options: String,
    /// Its memory cgroup's path, which names the pod's UID.
    pub cgroup: String,
    pub memory_limit: u64,
    pub memory_usage: u64,
}

impl ContainerProcess {
    /// A field of `/proc/PID/status` (`VmRSS`, `Uid`…), trimmed; empty when absent.
    pub fn field(&self, name: &str) -> &str {
        self.status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or_default()
    }

    /// The processes whose executable is `path` inside their container (the host sees every
    /// PID of the node's namespaces).
    pub fn find(path: &str) -> Result<Vec<Self>> {
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
                cgroup: memory.clone(),
                memory_usage: read("memory.usage_in_bytes")?,
            });
        }
        Ok(found)
    }

    /// The process of the pod `uid` whose executable is `path`.
    pub fn of_pod(path: &str, uid: &str) -> Result<Self> {
        Self::find(path)?
            .into_iter()
            .find(|p| p.cgroup.contains(uid) || p.cgroup.contains(&uid.replace('-', "_")))
            .with_context(|| format!("no process {path} in the containers of pod {uid}"))
    }

    /// The most memory its cgroup has held (`memory.max_usage_in_bytes`).
    pub fn memory_peak(&self) -> Result<u64> {
        let path = format!(
            "/sys/fs/cgroup/memory{}/memory.max_usage_in_bytes",
            self.cgroup
        );
        Ok(std::fs::read_to_string(&path)
            .with_context(|| path.clone())?
            .trim()
            .parse()?)
    }
}

/// The addresses of one node (see the module's documentation).
#[derive(Clone, Copy, Debug)]
pub struct NodeAddresses {
    pub index: u8,
    /// The host's end of the pair: the API server listens here.
    pub host: Ipv4Addr,
    /// The node's end: its InternalIP.
    pub node: Ipv4Addr,
}

impl NodeAddresses {
    fn new(index: u8) -> Self {
        Self {
            index,
            host: Ipv4Addr::new(10, 251, index, 1),
            node: Ipv4Addr::new(10, 251, index, 2),
        }
    }

    /// The pods' range, on the node's bridge.
    pub fn pod_cidr(&self) -> String {
        format!("10.252.{}.0/24", self.index)
    }

    fn host_link(&self) -> String {
        format!("testbed{}", self.index)
    }

    fn cgroup(&self) -> String {
        format!("testbed-node-{}", self.index)
    }
}

/// Files the node's processes need from the control plane.
pub struct NodeCredentials<'a> {
    /// A kubeconfig (YAML) for kubelet and kube-proxy.
    pub kubeconfig_yaml: &'a str,
    /// The CA that signs the API server's client certificate for kubelets.
    pub client_ca_pem: &'a str,
}

/// A running node. Stops on [`Node::stop_blocking`] or drop.
pub struct Node {
    supervisor: Mutex<Supervisor>,
    dir: PathBuf,
    addresses: NodeAddresses,
    // The process whose namespaces are the node's.
    holder: u32,
}

const SUPERVISOR: &str = r#"
set -u
dir=$1 cgroup=$2
# One node at a time on a machine: kubelet's kernel settings are the machine's, and a second
# node would save the first one's values as the ones to put back.
exec 9>"${TMPDIR:-/tmp}/testbed-node.lock"
flock 9
# Kept before anything starts, put back when the node stops: kubelet sets these on start.
saved=""
for s in vm.overcommit_memory kernel.panic kernel.panic_on_oops; do
  saved="$saved $s=$(sysctl -n "$s")"
done
# The node's own cgroup in every hierarchy (cgroup v1; cpuset needs its cpus and mems set).
for h in /sys/fs/cgroup/*; do
  [ -d "$h" ] || continue
  mkdir -p "$h/$cgroup"
  if [ -f "$h/cpuset.cpus" ]; then
    cat "$h/cpuset.cpus" >"$h/$cgroup/cpuset.cpus"
    cat "$h/cpuset.mems" >"$h/$cgroup/cpuset.mems"
  fi
done
exec 3<&0
unshare --mount --net --pid --fork --mount-proc --propagation private \
  sh -c "$INIT" testbed-node-init "$dir" <&3 >"$dir/init.out" 2>"$dir/init.log" 9>&- &
holder=$!
trap '' INT TERM HUP
echo "holder $holder"
wait "$holder"
for s in $saved; do sysctl -q -w "$s" >/dev/null 2>&1; done
# Containers' cgroups empty once the namespace's processes are reaped; allow a moment for it.
for h in /sys/fs/cgroup/*; do
  [ -d "$h/$cgroup" ] || continue
  tries=0
  until find "$h/$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null || [ "$tries" -ge 50 ]; do
    sleep 0.1; tries=$((tries + 1))
  done
done
rm -rf "$dir"
"#;

// Runs as PID 1 of the node's namespaces. Its answers go to init.out, which the owner reads.
const INIT: &str = r#"
set -u
dir=$1
for d in /var/lib /var/log /run; do mount -t tmpfs -o mode=0755 testbed-node "$d"; done
ip link set lo up
echo ready >>"$dir/init.out"
pids=""
while read -r command name; do
  case "$command" in
    start)
      ( exec "$dir/$name.sh" ) >"$dir/$name.log" 2>&1 </dev/null &
      pids="$! $pids"
      echo "started $name $!" >>"$dir/init.out"
      ;;
    *) echo "unknown command $command" >>"$dir/init.out" ;;
  esac
done
# Newest first: kube-proxy and kubelet, then containerd. What is left dies with this process.
for pid in $pids; do
  kill -TERM "$pid" 2>/dev/null
  tries=0
  while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 50 ]; do sleep 0.2; tries=$((tries + 1)); done
done
"#;

impl Node {
    /// Starts the node's namespaces, joins them to the host and starts containerd with the
    /// pause image imported. kubelet and kube-proxy wait for [`Node::join`], once the API
    /// server listens on [`NodeAddresses::host`].
    pub async fn prepare(kubelet: &Path, kube_proxy: &Path) -> Result<Self> {
        let tools = crate::build_with_script(&crate::workspace_root().join("tools/node/build.sh"))?;
        let dir = tempfile::Builder::new()
            .prefix("testbed-node-")
            .tempdir()
            .context("creating the node's directory")?
            // The supervisor owns removal.
            .keep();
        let mut last_error = None;
        // Indexes are tried from a random start; the link name holds the index, so two test
        // beds that pick the same one at once cannot both create it.
        let start: u8 = rand::random_range(1..=200);
        for offset in 0..50u8 {
            let addresses = NodeAddresses::new(1 + (start - 1 + offset) % 250);
            if address_in_use(addresses.host) {
                continue;
            }
            match Self::spawn(&dir, addresses).await {
                Ok(node) => {
                    node.start_containerd(&tools.join("pause.tar")).await?;
                    node.write_node_files(kubelet, kube_proxy)?;
                    return Ok(node);
                }
                Err(error) => last_error = Some(error),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("every node address is in use")))
    }

    async fn spawn(dir: &Path, addresses: NodeAddresses) -> Result<Self> {
        let owned = dir.to_path_buf();
        // Blocks while another node on the machine holds the lock.
        let (supervisor, holder) =
            tokio::task::spawn_blocking(move || Self::spawn_supervisor(&owned, addresses))
                .await??;
        let node = Self {
            supervisor: Mutex::new(supervisor),
            dir: dir.to_path_buf(),
            addresses,
            holder,
        };
        node.wait_for_answer("ready", Duration::from_secs(10))
            .await?;
        node.link(holder)?;
        Ok(node)
    }

    /// Starts the supervisor; returns it with the PID that holds the node's namespaces.
    fn spawn_supervisor(dir: &Path, addresses: NodeAddresses) -> Result<(Supervisor, u32)> {
        std::fs::create_dir_all(dir)?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("testbed-node-supervisor")
            .arg(dir)
            .arg(addresses.cgroup())
            .env("INIT", INIT)
            .env("PATH", node_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the node's supervisor (unshare from util-linux)")?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let supervisor = Supervisor {
            child: Some(child),
            stdin,
            stdout: Some(stdout),
        };
        let holder: u32 = line
            .strip_prefix("holder ")
            .and_then(|pid| pid.trim().parse().ok())
            .with_context(|| format!("the node supervisor answered {line:?}"))?;
        Ok((supervisor, holder))
    }

    /// The veth pair, its addresses and the host's route to the pods.
    fn link(&self, holder: u32) -> Result<()> {
        let a = self.addresses;
        let link = a.host_link();
        let netns = format!("--net=/proc/{holder}/ns/net");
        let host = |args: &[&str]| run("ip", args);
        let node = |args: &[&str]| {
            let mut all = vec![netns.as_str(), "ip"];
            all.extend_from_slice(args);
            run("nsenter", &all)
        };
        host(&[
            "link",
            "add",
            &link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &holder.to_string(),
        ])?;
        host(&["addr", "add", &format!("{}/24", a.host), "dev", &link])?;
        host(&["link", "set", &link, "up"])?;
        node(&["addr", "add", &format!("{}/24", a.node), "dev", "eth0"])?;
        node(&["link", "set", "eth0", "up"])?;
        host(&[
            "route",
            "add",
            &a.pod_cidr(),
            "via",
            &a.node.to_string(),
            "dev",
            &link,
        ])?;
        Ok(())
    }

    /// Starts containerd (its socket, root and state in the node's directory) and imports the
    /// pause image.
    async fn start_containerd(&self, pause_tar: &Path) -> Result<()> {
        let d = &self.dir;
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{socket}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # Root here cannot lower oom_score_adj (no CAP_SYS_RESOURCE); runc fails without this.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
"#,
            root = d.join("containerd/root").display(),
            state = d.join("containerd/state").display(),
            socket = self.containerd_socket().display(),
            opt = d.join("containerd/opt").display(),
            cni = d.join("cni").display(),
        );
        std::fs::create_dir_all(d.join("cni"))?;
        std::fs::write(d.join("containerd.toml"), config)?;
        let cni = serde_json::json!({
            "cniVersion": "0.4.0",
            "name": "testbed",
            "plugins": [{
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                // The pod's default route ends at the bridge, inside the node, which routes
                // only to the host's end of the pair.
                "isDefaultGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": { "type": "host-local", "ranges": [[{ "subnet": self.addresses.pod_cidr() }]] }
            }, { "type": "portmap", "capabilities": { "portMappings": true } }]
        });
        std::fs::write(d.join("cni/10-testbed.conflist"), cni.to_string())?;
        write_launcher(
            &d.join("containerd.sh"),
            Path::new("containerd"),
            &[format!("--config={}", d.join("containerd.toml").display())],
        )?;
        self.command("start containerd").await?;
        let socket = self.containerd_socket();
        crate::wait_until("containerd's socket", Duration::from_secs(30), || {
            let exists = socket.exists();
            async move { Ok(exists) }
        })
        .await
        .with_context(|| self.log_tail("containerd", 30))?;
        self.ctr(&["images", "import", &pause_tar.to_string_lossy()])?;
        Ok(())
    }

    /// Sends the node's traffic for `from` (as pods address it) to `to` on the host's end of the
    /// link: how a test serves what a node-local agent serves on a link-local address (EKS Pod
    /// Identity's `169.254.170.23:80`). The rule lives in the node's network namespace.
    pub fn forward(&self, from: std::net::SocketAddrV4, to: std::net::SocketAddrV4) -> Result<()> {
        let netns = format!("--net=/proc/{}/ns/net", self.holder);
        run(
            "nsenter",
            &[
                &netns,
                "iptables",
                "--table",
                "nat",
                "--append",
                "PREROUTING",
                "--destination",
                &format!("{}/32", from.ip()),
                "--protocol",
                "tcp",
                "--dport",
                &from.port().to_string(),
                "--jump",
                "DNAT",
                "--to-destination",
                &to.to_string(),
            ],
        )
    }

    /// Imports an image (a `docker save` tarball) into the node's runtime as `name`, where pods
    /// find it without a registry.
    pub fn import_image(&self, tarball: &Path, name: &str) -> Result<()> {
        let tarball = tarball.to_string_lossy();
        self.ctr(&["images", "import", &tarball])?;
        // The tarball names the image as it was assembled; the pod asks for `name`.
        let manifest = Command::new("tar")
            .args([
                "--extract",
                "--to-stdout",
                "--file",
                &tarball,
                "manifest.json",
            ])
            .output()
            .context("reading the tarball's manifest.json")?;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout)
            .with_context(|| format!("{tarball} has no docker manifest.json"))?;
        let tagged = manifest[0]["RepoTags"][0]
            .as_str()
            .with_context(|| format!("{tarball} names no image"))?;
        if tagged != name {
            self.ctr(&["images", "tag", "--force", tagged, name])?;
        }
        Ok(())
    }

    fn ctr(&self, args: &[&str]) -> Result<()> {
        let socket = self.containerd_socket();
        let mut all = vec![
            "--address",
            socket.to_str().context("socket path")?,
            "--namespace",
            "k8s.io",
        ];
        all.extend_from_slice(args);
        run("ctr", &all)
    }

    fn write_node_files(&self, kubelet: &Path, kube_proxy: &Path) -> Result<()> {
        let d = &self.dir;
        let a = self.addresses;
        let kubelet_config = serde_json::json!({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "authentication": {
                "anonymous": { "enabled": false },
                "webhook": { "enabled": true },
                "x509": { "clientCAFile": d.join("ca.crt") },
            },
            "authorization": { "mode": "Webhook" },
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": format!("/{}", a.cgroup()),
            // The host mounts cgroup v1 (hybrid); kubelet 1.35 refuses it unless told.
            "failCgroupV1": false,
            "failSwapOn": false,
            "containerRuntimeEndpoint": format!("unix://{}", self.containerd_socket().display()),
            // Images here were imported, never pulled: garbage collection must never remove them.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
            // No DNS: pods get an empty resolv.conf, and nothing resolves names off the machine.
            "resolvConf": "",
            "clusterDomain": "cluster.local",
            "volumePluginDir": d.join("volume-plugins"),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "serializeImagePulls": false,
            "registerNode": true,
        });
        std::fs::write(d.join("kubelet.yaml"), kubelet_config.to_string())?;
        write_launcher(
            &d.join("kubelet.sh"),
            kubelet,
            &[
                format!("--config={}", d.join("kubelet.yaml").display()),
                format!("--kubeconfig={}", d.join("node.kubeconfig").display()),
                format!("--root-dir={}", d.join("kubelet").display()),
                format!("--cert-dir={}", d.join("kubelet-pki").display()),
                format!("--hostname-override={NODE_NAME}"),
                format!("--node-ip={}", a.node),
                "--v=1".into(),
            ],
        )?;
        let proxy_config = serde_json::json!({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": { "kubeconfig": d.join("node.kubeconfig") },
            "mode": "iptables",
            "clusterCIDR": a.pod_cidr(),
            "hostnameOverride": NODE_NAME,
            "bindAddress": a.node.to_string(),
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            // Leaves the machine-wide conntrack table size and timeouts as they are.
            "conntrack": {
                "maxPerCore": 0, "min": 0,
                "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"
            },
        });
        std::fs::write(d.join("kube-proxy.yaml"), proxy_config.to_string())?;
        write_launcher(
            &d.join("kube-proxy.sh"),
            kube_proxy,
            &[
                format!("--config={}", d.join("kube-proxy.yaml").display()),
                "--v=1".into(),
            ],
        )?;
        Ok(())
    }

    /// Starts kubelet and kube-proxy against the API server and waits until the node is Ready.
    pub async fn join(&self, credentials: NodeCredentials<'_>, client: kube::Client) -> Result<()> {
        std::fs::write(
            self.dir.join("node.kubeconfig"),
            credentials.kubeconfig_yaml,
        )?;
        std::fs::write(self.dir.join("ca.crt"), credentials.client_ca_pem)?;
        self.command("start kubelet").await?;
        self.command("start kube-proxy").await?;
        let nodes: Api<NodeObject> = Api::all(client);
        let ready = crate::wait_until("the node to be Ready", Duration::from_secs(90), || async {
            let node = nodes.get_opt(NODE_NAME).await?;
            Ok(node
                .and_then(|n| n.status?.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")))
        })
        .await;
        if let Err(error) = ready {
            bail!(
                "{error:#}\n{}\n{}",
                self.log_tail("kubelet", 40),
                self.log_tail("containerd", 20)
            );
        }
        Ok(())
    }

    pub fn addresses(&self) -> NodeAddresses {
        self.addresses
    }

    /// The node's directory (removed when it stops): logs, configuration, containerd's state.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn containerd_socket(&self) -> PathBuf {
        self.dir.join("containerd/containerd.sock")
    }

    /// The last `lines` lines of one of the node's logs (`kubelet`, `kube-proxy`, `containerd`).
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        let text =
            std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        format!(
            "--- last lines of the node's {name}.log ---\n{}",
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }

    /// Sends one command to the node's init and waits for its answer in `init.out`.
    async fn command(&self, command: &str) -> Result<()> {
        let name = command.split_whitespace().nth(1).unwrap_or_default();
        {
            let mut supervisor = locked(&self.supervisor);
            let stdin = supervisor.stdin.as_mut().context("the node was stopped")?;
            writeln!(stdin, "{command}")?;
            stdin.flush()?;
        }
        self.wait_for_answer(&format!("started {name} "), Duration::from_secs(10))
            .await
    }

    async fn wait_for_answer(&self, prefix: &str, timeout: Duration) -> Result<()> {
        let out = self.dir.join("init.out");
        crate::wait_until("the node's init to answer", timeout, || {
            let answered = std::fs::read_to_string(&out)
                .is_ok_and(|text| text.lines().any(|l| l.starts_with(prefix)));
            async move { Ok(answered) }
        })
        .await
        .with_context(|| {
            format!(
                "waiting for {prefix:?} from the node's init: {}",
                std::fs::read_to_string(self.dir.join("init.log")).unwrap_or_default()
            )
        })
    }

    /// Stops the node and waits until the supervisor has put everything back.
    pub fn stop_blocking(&self) {
        let mut supervisor = locked(&self.supervisor);
        supervisor.stdin = None;
        if let Some(mut child) = supervisor.child.take() {
            let _ = child.wait();
        }
        supervisor.stdout = None;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_blocking();
    }
}

const PAUSE_IMAGE: &str = "testbed.local/pause:1";

/// The node's processes find `containerd`, `runc`, `iptables` and `ip` in the system's sbin
/// directories, which a login shell may leave out of PATH.
fn node_path() -> String {
    let inherited = std::env::var("PATH").unwrap_or_default();
    format!("/usr/local/sbin:/usr/sbin:/sbin:{inherited}")
}

fn address_in_use(address: Ipv4Addr) -> bool {
    Command::new("ip")
        .args(["-o", "addr", "show", "to", &format!("{address}/24")])
        .output()
        .is_ok_and(|out| !out.stdout.is_empty())
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .env("PATH", node_path())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
