//! kstatus, the status library Flux health checks, cli-utils and kubectl-based tools use, run on
//! our objects: the pinned `sigs.k8s.io/cli-utils` in tools/kstatus, built by its build.sh.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context as _, Result, bail, ensure};
use rekognition_operator::model::crd::RekognitionCollection;
use serde::Deserialize;

/// What kstatus says of one object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Verdict {
    pub name: String,
    /// `Current`, `InProgress`, `Failed`, `Terminating`, `NotFound` or `Unknown`.
    pub status: String,
    pub message: String,
}

/// The kstatus binary: `$RKO_KSTATUS_BIN_DIR/kstatus` when that is set, otherwise built (once per
/// test process, and only when its cache is stale) by tools/kstatus/build.sh.
pub fn kstatus_binary() -> &'static Path {
    static KSTATUS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match KSTATUS.get_or_init(|| locate().map_err(|e| format!("{e:#}"))) {
        Ok(path) => path,
        Err(error) => panic!("kstatus is not available, so statuses cannot be judged: {error}"),
    }
}

fn locate() -> Result<PathBuf> {
    let dir = match std::env::var_os("RKO_KSTATUS_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            testbed::build_with_script(&testbed::workspace_root().join("tools/kstatus/build.sh"))?
        }
    };
    let binary = dir.join("kstatus");
    ensure!(
        binary.is_file(),
        "{} is missing; run tools/kstatus/build.sh",
        binary.display()
    );
    Ok(binary)
}

/// kstatus' verdict on each object, in order.
pub fn verdicts(objects: &[RekognitionCollection]) -> Result<Vec<Verdict>> {
    let input = serde_json::to_vec(objects)?;
    let mut child = Command::new(kstatus_binary())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting kstatus")?;
    child
        .stdin
        .take()
        .context("kstatus stdin")?
        .write_all(&input)?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "kstatus failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout)?
        .lines()
        .map(|line| serde_json::from_str(line).with_context(|| format!("kstatus said {line:?}")))
        .collect()
}
