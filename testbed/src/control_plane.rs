//! A real etcd + kube-apiserver pair on loopback.
//!
//! Both run under one small `sh` supervisor whose stdin is a pipe held by this process. When the
//! pipe closes (explicit [`ControlPlane::stop`], drop, or this process dying for any reason, even
//! `kill -9`), the supervisor stops the API server, then etcd, then removes the temporary
//! directory. So a test binary that exits without running destructors still leaves nothing behind.
//!
//! The same pipe carries commands: `restart-apiserver TERM|KILL` stops the API server and starts
//! it again with the same arguments (same etcd, port, certificates and tokens), which is how
//! [`ControlPlane::restart_api_server`] and [`ControlPlane::expire_watches`] work.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use serde::Deserialize;

use crate::binaries::ControlPlaneBinaries;
use crate::node::{KUBERNETES_SERVICE_IP, Node, NodeCredentials, SERVICE_CIDR};
use crate::pki::Pki;

/// How to start a control plane.
#[derive(Clone, Debug)]
pub struct ControlPlaneOptions {
    /// CRD manifests to install once the API server is ready (every `*.yaml` file in each directory).
    pub crd_dirs: Vec<PathBuf>,
    /// How long to wait for `/readyz`.
    pub start_timeout: Duration,
    /// Also run a node (see [`crate::node`]): kubelet, kube-proxy and containerd in namespaces of
    /// their own, with kube-scheduler and the controllers pods need (Deployments, ReplicaSets,
    /// disruption budgets, ServiceAccounts and their tokens, namespaces, garbage collection,
    /// endpoints). The API server then listens on the host's end of the node's link instead of
    /// loopback.
    pub node: bool,
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        Self {
            crd_dirs: vec![crate::workspace_root().join("crds")],
            start_timeout: Duration::from_secs(90),
            node: false,
        }
    }
}

/// A running control plane. Stops on [`ControlPlane::stop`] or drop.
pub struct ControlPlane {
    supervisor: Arc<Mutex<Supervisor>>,
    dir: PathBuf,
    server: String,
    etcd_url: String,
    ca_cert_pem: String,
    admin_token: String,
    // etcd's, then the API server's; the latter changes on restart.
    pids: Mutex<Vec<u32>>,
    binaries: ControlPlaneBinaries,
    node: Option<Node>,
}

/// How [`ControlPlane::restart_api_server`] stops the running API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiServerStop {
    /// SIGTERM: the API server drains and closes its watches (killed after 10 s if it has not
    /// exited), as in a rolling upgrade.
    Graceful,
    /// SIGKILL: connections drop mid-stream, as in a crash.
    Kill,
}

// The supervisor's pipes. Its stdout is kept open for the answers to commands (a closed pipe
// would kill it with SIGPIPE on its next answer).
pub(crate) struct Supervisor {
    pub(crate) child: Option<Child>,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) stdout: Option<BufReader<ChildStdout>>,
}

impl Supervisor {
    /// Sends one command line and returns the supervisor's one-line answer.
    fn command(&mut self, command: &str) -> Result<String> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the control plane was stopped")?;
        writeln!(stdin, "{command}").context("writing to the control-plane supervisor")?;
        stdin.flush()?;
        let stdout = self
            .stdout
            .as_mut()
            .context("the control plane was stopped")?;
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .context("reading the control-plane supervisor's answer")?;
        if line.is_empty() {
            bail!("the control-plane supervisor exited");
        }
        Ok(line)
    }
}

pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `pids <etcd> <kube-apiserver>`, as the supervisor prints it.
fn parse_pids(line: &str) -> Vec<u32> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

const SUPERVISOR: &str = r#"
set -u
dir=$1
"$dir/etcd.sh" >"$dir/etcd.log" 2>&1 </dev/null &
etcd_pid=$!
# A restarted API server must not inherit the dispositions this script sets below.
start_api() {
  ( trap - INT TERM HUP; exec "$dir/kube-apiserver.sh" ) >>"$dir/kube-apiserver.log" 2>&1 </dev/null &
  api_pid=$!
}
start_api
# With a node: kube-controller-manager and kube-scheduler.
extras=""
for extra in "$dir"/extra-*.sh; do
  [ -x "$extra" ] || continue
  ( trap - INT TERM HUP; exec "$extra" ) >"${extra%.sh}.log" 2>&1 </dev/null &
  extras="$extras $!"
done
# Signals to the whole process group (Ctrl-C, timeout(1)) may stop the servers, but never this
# script: only the closed pipe ends it, so the clean-up below always runs. Set after the servers
# start, so that they keep the default dispositions.
trap '' INT TERM HUP
echo "pids $etcd_pid $api_pid"
# Sends a server signal $2; after 10 s (an API server may wait for clients' open watches) kills it.
stop() {
  kill -"$2" "$1" 2>/dev/null
  tries=0
  while kill -0 "$1" 2>/dev/null && [ "$tries" -lt 50 ]; do sleep 0.2; tries=$((tries + 1)); done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}
# Commands, one a line, until the owner closes the pipe or dies.
while read -r command how; do
  case "$command" in
    restart-apiserver)
      stop "$api_pid" "$how"
      echo "--- restarted (after SIG$how) ---" >>"$dir/kube-apiserver.log"
      start_api
      echo "pids $etcd_pid $api_pid"
      ;;
    *) echo "unknown command $command" ;;
  esac
done
for pid in $extras; do stop "$pid" TERM; done
stop "$api_pid" TERM
stop "$etcd_pid" TERM
rm -rf "$dir"
"#;

impl ControlPlane {
    /// Builds (if needed) and starts etcd and kube-apiserver, waits for `/readyz` and installs CRDs.
    pub async fn start(options: ControlPlaneOptions) -> Result<Self> {
        let binaries = tokio::task::spawn_blocking(ControlPlaneBinaries::locate).await??;
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("testbed-")
            .tempdir()
            .context("creating the control plane's temp directory")?
            // The supervisor owns removal, so that it happens even when this process is killed.
            .keep();
        let node = match options.node {
            true => Some(Node::prepare(&binaries.kubelet, &binaries.kube_proxy).await?),
            false => None,
        };
        let mut plane = Self::spawn(binaries, dir, node).await?;
        if let Err(error) = plane.wait_ready(options.start_timeout).await {
            let logs = plane.log_tails(40);
            plane.stop_blocking();
            bail!("{error:#}\n{logs}");
        }
        for crd_dir in &options.crd_dirs {
            plane.install_crds(crd_dir).await?;
        }
        if let Some(node) = &plane.node {
            let kubeconfig = plane.kubeconfig_yaml()?;
            let credentials = NodeCredentials {
                kubeconfig_yaml: &kubeconfig,
                client_ca_pem: &plane.ca_cert_pem,
            };
            node.join(credentials, plane.client().await?).await?;
        }
        tracing::info!(
            server = %plane.server,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "control plane ready"
        );
        Ok(plane)
    }

    async fn spawn(
        binaries: ControlPlaneBinaries,
        dir: PathBuf,
        node: Option<Node>,
    ) -> Result<Self> {
        let listen = node
            .as_ref()
            .map_or(std::net::Ipv4Addr::LOCALHOST, |n| n.addresses().host);
        let extra_ips: Vec<std::net::IpAddr> = match &node {
            Some(_) => vec![listen.into(), KUBERNETES_SERVICE_IP.into()],
            None => Vec::new(),
        };
        let pki = Pki::generate(&extra_ips)?;
        let admin_token = random_token();
        let write = |name: &str, contents: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, contents)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        let ca = write("ca.crt", &pki.ca_cert_pem)?;
        let serving_cert = write("serving.crt", &pki.serving_cert_pem)?;
        let serving_key = write("serving.key", &pki.serving_key_pem)?;
        let sa_key = write("sa.key", &pki.sa_private_key_pem)?;
        let sa_pub = write("sa.pub", &pki.sa_public_key_pem)?;
        let kubelet_client_cert = write("kubelet-client.crt", &pki.kubelet_client_cert_pem)?;
        let kubelet_client_key = write("kubelet-client.key", &pki.kubelet_client_key_pem)?;
        let tokens = write(
            "tokens.csv",
            &format!("{admin_token},testbed-admin,testbed-admin,\"system:masters\"\n"),
        )?;

        // Ports are reserved by binding to port 0 and released just before the processes bind
        // them; the window is small and a collision fails the start loudly rather than silently.
        let [etcd_client, etcd_peer, api_port] = free_ports::<3>()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let etcd_peer_url = format!("http://127.0.0.1:{etcd_peer}");
        let etcd_args: Vec<String> = vec![
            "--name=testbed".into(),
            format!("--data-dir={}", dir.join("etcd-data").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={etcd_peer_url}"),
            format!("--initial-advertise-peer-urls={etcd_peer_url}"),
            format!("--initial-cluster=testbed={etcd_peer_url}"),
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ];
        let mut api_args: Vec<String> = vec![
            format!("--etcd-servers={etcd_url}"),
            format!("--bind-address={listen}"),
            format!("--advertise-address={listen}"),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", dir.join("certs").display()),
            format!("--tls-cert-file={}", serving_cert.display()),
            format!("--tls-private-key-file={}", serving_key.display()),
            format!("--client-ca-file={}", ca.display()),
            format!("--token-auth-file={}", tokens.display()),
            "--authorization-mode=RBAC".into(),
            "--anonymous-auth=false".into(),
            format!("--service-account-key-file={}", sa_pub.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            "--service-account-issuer=https://testbed.local".into(),
            "--api-audiences=https://testbed.local".into(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--allow-privileged=true".into(),
            format!(
                "--kubelet-client-certificate={}",
                kubelet_client_cert.display()
            ),
            format!("--kubelet-client-key={}", kubelet_client_key.display()),
            // The node's name resolves nowhere: the API server dials the kubelet by address.
            "--kubelet-preferred-address-types=InternalIP".into(),
            "--v=1".into(),
        ];
        let server = format!("https://{listen}:{api_port}");
        match &node {
            // The `kubernetes` Service's endpoint, which kube-proxy sends pods to.
            Some(_) => api_args.push("--endpoint-reconciler-type=lease".into()),
            // No Service endpoints to maintain: nothing here runs as a pod.
            None => api_args.push("--endpoint-reconciler-type=none".into()),
        }
        write_launcher(&dir.join("etcd.sh"), &binaries.etcd, &etcd_args)?;
        write_launcher(
            &dir.join("kube-apiserver.sh"),
            &binaries.kube_apiserver,
            &api_args,
        )?;
        if node.is_some() {
            let kubeconfig = write(
                "admin.kubeconfig",
                &kubeconfig_text(&server, &pki.ca_cert_pem, "testbed-admin", &admin_token),
            )?;
            let controllers = [
                "deployment-controller",
                "replicaset-controller",
                "disruption-controller",
                "serviceaccount-controller",
                "serviceaccount-token-controller",
                "root-ca-certificate-publisher-controller",
                "namespace-controller",
                "garbage-collector-controller",
                "endpoints-controller",
                "endpointslice-controller",
                "clusterrole-aggregation-controller",
                "pod-garbage-collector-controller",
                // Lifts the not-ready taint a new node starts with.
                "node-lifecycle-controller",
            ];
            write_launcher(
                &dir.join("extra-kube-controller-manager.sh"),
                &binaries.kube_controller_manager,
                &[
                    format!("--kubeconfig={}", kubeconfig.display()),
                    format!("--controllers={}", controllers.join(",")),
                    format!("--root-ca-file={}", ca.display()),
                    format!("--service-account-private-key-file={}", sa_key.display()),
                    "--leader-elect=false".into(),
                    "--secure-port=0".into(),
                    "--v=1".into(),
                ],
            )?;
            write_launcher(
                &dir.join("extra-kube-scheduler.sh"),
                &binaries.kube_scheduler,
                &[
                    format!("--kubeconfig={}", kubeconfig.display()),
                    "--leader-elect=false".into(),
                    "--secure-port=0".into(),
                    "--v=1".into(),
                ],
            )?;
        }

        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("testbed-supervisor")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the control-plane supervisor")?;
        let stdin = supervisor.stdin.take();
        let stdout = supervisor
            .stdout
            .take()
            .context("supervisor has no stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .context("reading the supervisor's process ids")?;

        Ok(Self {
            supervisor: Arc::new(Mutex::new(Supervisor {
                child: Some(supervisor),
                stdin,
                stdout: Some(stdout),
            })),
            pids: Mutex::new(parse_pids(&line)),
            dir,
            server,
            etcd_url,
            ca_cert_pem: pki.ca_cert_pem,
            admin_token,
            binaries,
            node,
        })
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let client = self.client().await?;
        let deadline = Instant::now() + timeout;
        let mut last_error = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Some(child) = locked(&self.supervisor).child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("control-plane supervisor exited early ({status})");
            }
            if !self.processes_alive() {
                bail!("etcd or kube-apiserver exited during start");
            }
            let request = http::Request::get("/readyz").body(Vec::new())?;
            match client.request_text(request).await {
                Ok(body) if body.trim() == "ok" => return Ok(()),
                Ok(body) => last_error = body,
                Err(error) => last_error = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bail!("kube-apiserver was not ready within {timeout:?}: {last_error}")
    }

    /// Stops the API server (as `how` says) and starts it again with the same etcd, port,
    /// certificates, tokens and service-account keys; returns once it is ready. Clients keep
    /// working: their next request reconnects, and watchers resume from their last
    /// resourceVersion (or relist, if it has expired). Every client of this control plane sees
    /// the outage, so a test that restarts it starts a control plane of its own rather than
    /// the [`crate::shared`] one.
    pub async fn restart_api_server(&self, how: ApiServerStop) -> Result<()> {
        let signal = match how {
            ApiServerStop::Graceful => "TERM",
            ApiServerStop::Kill => "KILL",
        };
        let supervisor = Arc::clone(&self.supervisor);
        let line = tokio::task::spawn_blocking(move || {
            locked(&supervisor).command(&format!("restart-apiserver {signal}"))
        })
        .await??;
        let pids = parse_pids(&line);
        if pids.len() != 2 {
            bail!("the supervisor answered {line:?} to a restart");
        }
        *locked(&self.pids) = pids;
        if let Err(error) = self.wait_ready(crate::DEFAULT_WAIT).await {
            bail!("{error:#}\n{}", self.log_tails(40));
        }
        tracing::info!(server = %self.server, ?how, "kube-apiserver restarted");
        Ok(())
    }

    /// Makes every watch on this control plane expire, as a long partition or an etcd
    /// compaction does in a real cluster: moves etcd's revision on (a write outside the API
    /// server's keys), compacts etcd to it, and kills the API server so that every watch
    /// breaks. Watchers then resume from a resourceVersion older than both the new watch cache
    /// and etcd's compaction point, get `410 Gone`, and must relist. Returns the revision
    /// compacted to, once the API server is ready again. Like a restart, it concerns every
    /// client of this control plane.
    pub async fn expire_watches(&self) -> Result<i64> {
        let etcd = self.etcd()?;
        etcd.put("/testbed/watch-expiry", &random_token()).await?;
        let revision = etcd.compact_to_current().await?;
        self.restart_api_server(ApiServerStop::Kill).await?;
        Ok(revision)
    }

    /// Compacts etcd to its current revision: no watch or read can start from an older one.
    /// Returns that revision.
    pub async fn compact_etcd(&self) -> Result<i64> {
        self.etcd()?.compact_to_current().await
    }

    fn etcd(&self) -> Result<Etcd> {
        Etcd::new(&self.etcd_url)
    }

    /// Applies every CRD manifest in `dir` and waits until each is Established.
    pub async fn install_crds(&self, dir: &Path) -> Result<()> {
        if !dir.is_dir() {
            return Ok(());
        }
        let client = self.client().await?;
        let crds: Api<CustomResourceDefinition> = Api::all(client);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path)?;
            for document in serde_yaml::Deserializer::from_str(&text) {
                let value = serde_json::to_value(serde_yaml::Value::deserialize(document)?)?;
                if value.is_null() {
                    continue;
                }
                let crd: CustomResourceDefinition = serde_json::from_value(value)
                    .with_context(|| format!("{} is not a CRD", path.display()))?;
                let name = crd.metadata.name.clone().context("CRD without a name")?;
                crds.patch(
                    &name,
                    &PatchParams::apply("testbed").force(),
                    &Patch::Apply(&crd),
                )
                .await
                .with_context(|| format!("installing CRD {name}"))?;
                tokio::time::timeout(
                    crate::DEFAULT_WAIT,
                    await_condition(crds.clone(), &name, conditions::is_crd_established()),
                )
                .await
                .with_context(|| format!("CRD {name} not established in time"))??;
            }
        }
        Ok(())
    }

    /// A kubeconfig for the static admin identity (`system:masters`).
    pub fn kubeconfig(&self) -> Kubeconfig {
        self.kubeconfig_for_token("testbed-admin", &self.admin_token)
    }

    /// A kubeconfig that authenticates with `token` (for example a ServiceAccount token).
    pub fn kubeconfig_for_token(&self, user: &str, token: &str) -> Kubeconfig {
        let yaml = kubeconfig_text(&self.server, &self.ca_cert_pem, user, token);
        // The text is built from known-good parts; a failure here is a bug in `kubeconfig_text`.
        Kubeconfig::from_yaml(&yaml).unwrap_or_default()
    }

    /// The node, when the control plane was started with one.
    pub fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    /// The kubeconfig as YAML, ready to write to a file for kubectl or another process.
    pub fn kubeconfig_yaml(&self) -> Result<String> {
        Ok(serde_yaml::to_string(&self.kubeconfig())?)
    }

    /// A client for the admin identity.
    pub async fn client(&self) -> Result<kube::Client> {
        client_from_kubeconfig(self.kubeconfig()).await
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The CA that signed the API server's serving certificate (PEM), as a pod finds it in
    /// `/var/run/secrets/kubernetes.io/serviceaccount/ca.crt`.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// The binaries this control plane runs (kubectl among them).
    pub fn binaries(&self) -> &ControlPlaneBinaries {
        &self.binaries
    }

    /// The temporary directory holding data, keys and logs; removed when the control plane stops.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// etcd's client URL, for its own v3 JSON API (`/v3/kv/range`, `/v3/kv/compaction`, …).
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// Process ids of etcd and kube-apiserver (the current one, after a restart).
    pub fn pids(&self) -> Vec<u32> {
        locked(&self.pids).clone()
    }

    fn processes_alive(&self) -> bool {
        self.pids()
            .iter()
            .all(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }

    /// The last `lines` lines of both logs, for error messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for name in ["etcd.log", "kube-apiserver.log"] {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            out.push_str(&format!("--- last {} lines of {name} ---\n", tail.len()));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Stops both processes and removes the temporary directory, waiting for the supervisor.
    pub fn stop_blocking(&mut self) {
        // The node first: its kubelet would otherwise retry a gone API server while stopping.
        drop(self.node.take());
        let mut supervisor = locked(&self.supervisor);
        // Closing the pipe is the supervisor's signal to shut down.
        if let Some(mut stdin) = supervisor.stdin.take() {
            let _ = stdin.flush();
        }
        if let Some(mut child) = supervisor.child.take() {
            let _ = child.wait();
        }
        supervisor.stdout = None;
    }

    /// Stops both processes and removes the temporary directory.
    pub async fn stop(mut self) {
        let _ = tokio::task::spawn_blocking(move || self.stop_blocking()).await;
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop_blocking();
    }
}

/// A kube client from a kubeconfig, with no ambient environment involved.
pub async fn client_from_kubeconfig(kubeconfig: Kubeconfig) -> Result<kube::Client> {
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("building a client config from the test bed kubeconfig")?;
    Ok(kube::Client::try_from(config)?)
}

/// etcd's v3 JSON gateway, which etcd serves on its client URL.
struct Etcd {
    url: String,
    http: reqwest::Client,
}

impl Etcd {
    fn new(url: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            url: url.to_owned(),
            http,
        })
    }

    async fn call(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("etcd {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("etcd {path} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    async fn put(&self, key: &str, value: &str) -> Result<()> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        self.call(
            "/v3/kv/put",
            serde_json::json!({ "key": b64(key), "value": b64(value) }),
        )
        .await?;
        Ok(())
    }

    async fn compact_to_current(&self) -> Result<i64> {
        let any_key = base64::engine::general_purpose::STANDARD.encode("/");
        let range = self
            .call(
                "/v3/kv/range",
                serde_json::json!({ "key": any_key, "limit": 1 }),
            )
            .await?;
        // The gateway writes 64-bit integers as JSON strings.
        let revision: i64 = match &range["header"]["revision"] {
            serde_json::Value::String(text) => text.parse()?,
            other => other.as_i64().context("etcd range without a revision")?,
        };
        match self
            .call(
                "/v3/kv/compaction",
                serde_json::json!({ "revision": revision.to_string(), "physical": true }),
            )
            .await
        {
            Ok(_) => {}
            // The API server compacts on its own schedule; it may have got there first.
            Err(error) if error.to_string().contains("compacted") => {}
            Err(error) => return Err(error),
        }
        Ok(revision)
    }
}

fn kubeconfig_text(server: &str, ca_pem: &str, user: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: testbed\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: testbed\n  context:\n    cluster: testbed\n    user: {user}\ncurrent-context: testbed\n"
    )
}

pub(crate) fn write_launcher(path: &Path, program: &Path, args: &[String]) -> Result<()> {
    let mut script = format!(
        "#!/bin/sh\nexec {}",
        shell_quote(&program.to_string_lossy())
    );
    for arg in args {
        script.push_str(" \\\n  ");
        script.push_str(&shell_quote(arg));
    }
    script.push('\n');
    std::fs::write(path, script)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

pub(crate) fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Free loopback ports for the control plane, chosen below the kernel's ephemeral range: a
/// restarted API server or etcd binds its port again, and a port the kernel hands out for `:0`
/// binds (every emulator, operator and client connection on the machine) could be taken by
/// another process in the moment it was down. (A chaos campaign saw exactly that: "bind: address
/// already in use" on an API server restart, with ten campaigns and a build beside it.)
fn free_ports<const N: usize>() -> Result<[u16; N]> {
    use rand::Rng;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let candidates = 10_000..ephemeral_start.max(10_001);
    let mut listeners = Vec::with_capacity(N);
    let mut rng = rand::rng();
    for _ in 0..1000 {
        if listeners.len() == N {
            break;
        }
        // Held until all are chosen, so none is chosen twice.
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", rng.random_range(candidates.clone())))
        {
            listeners.push(listener);
        }
    }
    if listeners.len() < N {
        bail!("no {N} free loopback ports below {ephemeral_start}");
    }
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
