use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Where the control-plane binaries live.
#[derive(Clone, Debug)]
pub struct ControlPlaneBinaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kubectl: PathBuf,
    /// Runs only with a node; tests that need a controller of their own (the ClusterRole
    /// aggregation controller) start it themselves.
    pub kube_controller_manager: PathBuf,
    /// The node's (see [`crate::node`]).
    pub kube_scheduler: PathBuf,
    pub kubelet: PathBuf,
    pub kube_proxy: PathBuf,
}

/// The workspace root: the directory holding `crds/`, `tools/` and `target/`.
///
/// Found from the current directory upwards (cargo runs tests and `cargo run` inside the
/// workspace), so a build artifact shared between clones never points at another clone; the
/// path this crate was compiled from is the fallback.
pub fn workspace_root() -> PathBuf {
    let is_root = |dir: &Path| dir.join("tools/envtest/build.sh").is_file();
    if let Ok(current) = std::env::current_dir()
        && let Some(root) = current.ancestors().find(|dir| is_root(dir))
    {
        return root.to_path_buf();
    }
    // testbed/ sits directly under the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

impl ControlPlaneBinaries {
    /// Uses `TESTBED_BIN_DIR` when set; otherwise runs `tools/envtest/build.sh`, which returns at
    /// once when its cache is current and builds from the pinned Go modules when it is not.
    pub fn locate() -> Result<Self> {
        let dir = match std::env::var_os("TESTBED_BIN_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => build_with_script(&workspace_root().join("tools/envtest/build.sh"))?,
        };
        let binaries = Self {
            etcd: dir.join("etcd"),
            kube_apiserver: dir.join("kube-apiserver"),
            kubectl: dir.join("kubectl"),
            kube_controller_manager: dir.join("kube-controller-manager"),
            kube_scheduler: dir.join("kube-scheduler"),
            kubelet: dir.join("kubelet"),
            kube_proxy: dir.join("kube-proxy"),
        };
        for path in [
            &binaries.etcd,
            &binaries.kube_apiserver,
            &binaries.kubectl,
            &binaries.kube_controller_manager,
            &binaries.kube_scheduler,
            &binaries.kubelet,
            &binaries.kube_proxy,
        ] {
            if !path.is_file() {
                bail!(
                    "control-plane binary {} is missing; run tools/envtest/build.sh",
                    path.display()
                );
            }
        }
        Ok(binaries)
    }
}

/// Runs one of the repository's `tools/*/build.sh` scripts (a no-op when its cache is current)
/// and returns the directory it prints on its last line.
pub fn build_with_script(script: &Path) -> Result<PathBuf> {
    let output = Command::new("bash")
        .arg(script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}); it builds from the Go modules pinned beside it and needs Go and the Go module proxy",
            script.display(),
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = stdout
        .lines()
        .last()
        .context("build.sh printed no binary directory")?;
    Ok(PathBuf::from(dir.trim()))
}
