//! The operator image: built without a daemon by scripts/image.sh, it boots as a pod would run it,
//! and the Dockerfile declares the same image.
//!
//! The boot test unpacks the image's root filesystem from the OCI layout, installs the chart with
//! helm on the test bed and runs the image's entrypoint with the arguments and environment of the
//! Deployment the API server accepted, as UID 65532, on a read-only root (a mount namespace with
//! the root filesystem bind-mounted read-only, then chroot), with a ServiceAccount token from
//! TokenRequest and the in-cluster environment. It must serve /readyz and bring `myphotos` to
//! Ready against the emulator.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use rekognition_operator::crd::RekognitionCollection;
use serde_json::Value;
use support::helm::{CHART, NAMESPACE, RELEASE, helm_ok, kubeconfig_file, operator_container};
use support::{Options, World, eventually};

const SERVICE_ACCOUNT_DIR: &str = "var/run/secrets/kubernetes.io/serviceaccount";
const POD_NAME: &str = "rekognition-operator-7d9f8b6c5-boot";

// ---------------------------------------------------------------------------------------------
// the image

/// The OCI layout scripts/image.sh writes, built once per test process (a release build that
/// cargo finds current, and a few seconds of assembly, when nothing changed).
fn image_layout() -> &'static Path {
    static LAYOUT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match LAYOUT.get_or_init(|| {
        testbed::build_with_script(&testbed::workspace_root().join("scripts/image.sh"))
            .map_err(|e| format!("{e:#}"))
    }) {
        Ok(path) => path,
        Err(error) => panic!("the image could not be built, so it cannot be tested: {error}"),
    }
}

/// An image in an OCI layout: its config and its layers, as the index's only manifest says.
struct OciImage {
    layout: PathBuf,
    config: Value,
    layers: Vec<(String, String)>,
}

impl OciImage {
    fn open(layout: &Path) -> Result<Self> {
        let read_json = |path: PathBuf| -> Result<Value> {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(serde_json::from_str(&text)?)
        };
        let blob = |digest: &str| -> Result<PathBuf> {
            let hex = digest
                .strip_prefix("sha256:")
                .with_context(|| format!("unexpected digest {digest}"))?;
            Ok(layout.join("blobs/sha256").join(hex))
        };
        let index = read_json(layout.join("index.json"))?;
        let manifests = index["manifests"]
            .as_array()
            .context("index.json has no manifests")?;
        ensure!(manifests.len() == 1, "expected one image in the layout");
        let manifest = read_json(blob(
            manifests[0]["digest"].as_str().context("manifest digest")?,
        )?)?;
        let config = read_json(blob(
            manifest["config"]["digest"]
                .as_str()
                .context("config digest")?,
        )?)?;
        let layers = manifest["layers"]
            .as_array()
            .context("manifest without layers")?
            .iter()
            .map(|layer| {
                Ok((
                    layer["digest"].as_str().context("layer digest")?.to_owned(),
                    layer["mediaType"]
                        .as_str()
                        .context("layer media type")?
                        .to_owned(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layout: layout.to_path_buf(),
            config,
            layers,
        })
    }

    /// Extracts the layers in order into `rootfs`, as a container runtime would.
    fn unpack(&self, rootfs: &Path) -> Result<()> {
        std::fs::create_dir_all(rootfs)?;
        for (digest, media_type) in &self.layers {
            ensure!(
                media_type == "application/vnd.oci.image.layer.v1.tar+gzip",
                "layer {digest} has media type {media_type}"
            );
            let hex = digest.trim_start_matches("sha256:");
            let blob = self.layout.join("blobs/sha256").join(hex);
            let status = Command::new("tar")
                .arg("-xzf")
                .arg(&blob)
                .arg("-C")
                .arg(rootfs)
                .arg("--numeric-owner")
                .status()
                .context("running tar")?;
            ensure!(status.success(), "tar could not unpack layer {digest}");
        }
        Ok(())
    }

    fn user(&self) -> Option<&str> {
        self.config["config"]["User"].as_str()
    }

    fn entrypoint(&self) -> Vec<String> {
        strings(&self.config["config"]["Entrypoint"])
    }

    fn labels(&self) -> BTreeMap<String, String> {
        self.config["config"]["Labels"]
            .as_object()
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// the Dockerfile

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile_instructions() -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(testbed::workspace_root().join("Dockerfile"))?;
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                if let Some((instruction, rest)) = current.trim().split_once(' ') {
                    instructions.push((instruction.to_uppercase(), rest.trim().to_owned()));
                }
                current.clear();
            }
        }
    }
    Ok(instructions)
}

/// The arguments of the `cargo auditable build` command in a recipe.
fn release_build_flags(recipe: &str) -> Result<Vec<String>> {
    let start = recipe
        .find("cargo auditable build")
        .context("no `cargo auditable build` in the recipe")?;
    let command = recipe[start..]
        .split(['\n', '&', ';'])
        .next()
        .unwrap_or_default();
    let mut flags: Vec<String> = command
        .split_whitespace()
        .filter(|token| *token != "\\")
        .map(str::to_owned)
        .collect();
    flags.sort();
    Ok(flags)
}

/// `KEY="value"` pairs of a LABEL instruction.
fn label_pairs(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let after = after.trim_start();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(' ').unwrap_or((after, "")),
        };
        labels.insert(key.trim().to_owned(), value.to_owned());
        rest = remaining.trim();
    }
    labels
}

#[test]
fn dockerfile_declares_the_same_image_as_the_daemonless_build() -> Result<()> {
    let image = OciImage::open(image_layout())?;
    let instructions = dockerfile_instructions()?;
    let last_stage = instructions
        .iter()
        .rposition(|(i, _)| i == "FROM")
        .context("no FROM")?;
    let final_stage = &instructions[last_stage..];
    let one = |name: &str| -> Result<&str> {
        let found: Vec<&str> = final_stage
            .iter()
            .filter(|(i, _)| i == name)
            .map(|(_, rest)| rest.as_str())
            .collect();
        ensure!(
            found.len() == 1,
            "the final stage has {} {name}",
            found.len()
        );
        Ok(found[0])
    };

    ensure!(
        one("FROM")? == "scratch",
        "the final stage starts from scratch"
    );
    assert_eq!(Some(one("USER")?), image.user(), "USER");
    let entrypoint: Vec<String> = serde_json::from_str(one("ENTRYPOINT")?)?;
    assert_eq!(entrypoint, image.entrypoint(), "ENTRYPOINT");
    assert_eq!(
        one("WORKDIR")?,
        image.config["config"]["WorkingDir"].as_str().unwrap_or("/"),
        "WORKDIR"
    );
    let exposed: Vec<String> = image.config["config"]["ExposedPorts"]
        .as_object()
        .map(|ports| ports.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(vec![one("EXPOSE")?.to_owned()], exposed, "EXPOSE");
    ensure!(
        one("COPY")? == "--from=build /rootfs/ /",
        "the final stage copies only the root filesystem"
    );

    // The same labels; version and revision are build arguments there, stamped here.
    let mut docker_labels = label_pairs(one("LABEL")?);
    let image_labels = image.labels();
    ensure!(
        docker_labels.keys().eq(image_labels.keys()),
        "labels differ: Dockerfile {:?}, image {:?}",
        docker_labels.keys(),
        image_labels.keys()
    );
    for key in [
        "org.opencontainers.image.version",
        "org.opencontainers.image.revision",
    ] {
        docker_labels.remove(key);
    }
    for (key, value) in &docker_labels {
        assert_eq!(Some(value), image_labels.get(key), "label {key}");
    }
    assert_eq!(
        image_labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    let version_arg = final_stage
        .iter()
        .find(|(i, rest)| i == "ARG" && rest.starts_with("VERSION="))
        .context("no ARG VERSION")?;
    assert_eq!(
        version_arg.1,
        format!("VERSION={}", env!("CARGO_PKG_VERSION")),
        "the Dockerfile's default version is the crate's"
    );

    // The same release build and the same file list.
    let dockerfile = std::fs::read_to_string(testbed::workspace_root().join("Dockerfile"))?;
    let script = std::fs::read_to_string(testbed::workspace_root().join("scripts/image.sh"))?;
    assert_eq!(
        release_build_flags(&dockerfile)?,
        release_build_flags(&script)?,
        "the two recipes build the binary differently"
    );
    for recipe in [&dockerfile, &script] {
        ensure!(
            recipe.contains("scripts/image-rootfs.sh target/container/rekognition-operator")
                || recipe.contains("scripts/image-rootfs.sh \"$binary\""),
            "a recipe does not lay out the root filesystem with scripts/image-rootfs.sh"
        );
    }
    Ok(())
}

#[test]
fn image_holds_the_binary_its_libraries_and_ca_certificates_and_nothing_runs_as_root() -> Result<()>
{
    let image = OciImage::open(image_layout())?;
    assert_eq!(image.user(), Some("65532:65532"));
    assert_eq!(image.entrypoint(), ["/rekognition-operator"]);
    assert_eq!(image.config["os"].as_str(), Some("linux"));
    let labels = image.labels();
    for key in ["source", "revision", "version", "licenses"] {
        let key = format!("org.opencontainers.image.{key}");
        ensure!(
            labels.get(&key).is_some_and(|v| !v.is_empty()),
            "label {key} missing: {labels:?}"
        );
    }
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");

    let dir = tempfile::tempdir()?;
    let rootfs = dir.path().join("rootfs");
    image.unpack(&rootfs)?;
    for file in [
        "rekognition-operator",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/passwd",
        "etc/group",
        "usr/share/doc/rekognition-operator/LICENSE",
    ] {
        ensure!(rootfs.join(file).is_file(), "/{file} is not in the image");
    }
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd"))?;
    ensure!(
        passwd
            .lines()
            .any(|l| l.starts_with("nonroot:x:65532:65532:")),
        "/etc/passwd has no nonroot user 65532: {passwd}"
    );

    // The binary's loader and every library it needs are in the image (ldd on the unpacked
    // binary resolves against the host, so read what it asks for from the ELF itself).
    let output = Command::new("readelf")
        .args([
            "--program-headers",
            "--dynamic",
            "--section-headers",
            "--wide",
        ])
        .arg(rootfs.join("rekognition-operator"))
        .output()
        .context("readelf (binutils) is needed to inspect the image's binary")?;
    ensure!(output.status.success(), "readelf failed");
    let elf = String::from_utf8_lossy(&output.stdout);
    let interpreter = elf
        .lines()
        .find_map(|l| l.split("[Requesting program interpreter: ").nth(1))
        .and_then(|rest| rest.strip_suffix(']'))
        .context("the binary names no program interpreter")?;
    ensure!(
        rootfs.join(interpreter.trim_start_matches('/')).is_file(),
        "the loader {interpreter} is not in the image"
    );
    let needed: Vec<&str> = elf
        .lines()
        .filter_map(|l| l.split("Shared library: [").nth(1))
        .filter_map(|rest| rest.strip_suffix(']'))
        .collect();
    ensure!(!needed.is_empty(), "the binary needs no shared library?");
    for library in &needed {
        let present = ["lib", "lib64", "usr/lib"].iter().any(|dir| {
            walk(&rootfs.join(dir))
                .iter()
                .any(|p| p.file_name().is_some_and(|n| n == *library))
        });
        ensure!(
            present,
            "{library} is needed by the binary but not in the image"
        );
    }
    // cargo auditable embedded the dependency list (read by SBOM and audit tools).
    ensure!(
        elf.contains(".dep-v0"),
        "the binary has no .dep-v0 section: it was not built with cargo auditable"
    );
    Ok(())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// boot

/// Runs on the host inside a new mount namespace: makes `rootfs` a read-only bind mount with a
/// fresh /proc and the ServiceAccount directory mounted read-only, as a container runtime does
/// for `readOnlyRootFilesystem: true`, then starts the entrypoint in it as 65532 (the pod's
/// runAsUser, runAsGroup and fsGroup). Prints the operator's pid; stops it with SIGTERM when
/// standard input closes and exits with its status.
const BOOT: &str = r#"
set -eu
rootfs=$1 secrets=$2 log=$3
shift 3
mount --bind "$rootfs" "$rootfs"
mount -t proc proc "$rootfs/proc"
mount --bind -o ro "$secrets" "$rootfs/var/run/secrets/kubernetes.io/serviceaccount"
mount -o remount,bind,ro "$rootfs"
if touch "$rootfs/write-probe" 2>/dev/null; then
  echo "the root filesystem is writable" >&2
  exit 97
fi
chroot --userspec=65532:65532 --groups=65532 "$rootfs" "$@" </dev/null >"$log" 2>&1 &
pid=$!
echo "pid $pid"
read -r _ || true
kill -TERM "$pid" 2>/dev/null || true
wait "$pid"
"#;

/// The booted image; closing its standard input stops it.
struct Booted {
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Booted {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGTERM, then the exit status (within the chart's termination grace period).
    fn stop(mut self) -> Result<std::process::ExitStatus> {
        drop(self.child.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("the operator did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        // Closing stdin stops the operator; the namespace's mounts go with its last process.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The container's environment with the kubelet's resolution of `fieldRef`s for this pod.
fn container_env(deployment: &Deployment) -> Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    for var in operator_container(deployment)?.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), None) => value.clone(),
            (None, Some(from)) => match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                Some("metadata.name") => POD_NAME.to_owned(),
                Some("metadata.namespace") => NAMESPACE.to_owned(),
                other => bail!("{}: the test cannot resolve {other:?}", var.name),
            },
            _ => bail!("{}: neither a value nor a fieldRef", var.name),
        };
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::test]
async fn image_boots_as_nonroot_on_a_read_only_root_with_the_charts_arguments_and_makes_myphotos_ready()
-> Result<()> {
    ensure!(
        is_root(),
        "the boot test mounts and chroots, so it must run as root (CI and the dev machines do)"
    );
    let image = OciImage::open(image_layout())?;
    let dir = tempfile::tempdir()?;
    let rootfs = dir.path().join("rootfs");
    image.unpack(&rootfs)?;
    // Mount points a container runtime adds; the root is readable by the pod's user.
    std::fs::create_dir_all(rootfs.join("proc"))?;
    std::fs::create_dir_all(rootfs.join(SERVICE_ACCOUNT_DIR))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rootfs, std::fs::Permissions::from_mode(0o755))?;
    }

    // The world: the shared control plane, a namespace for the collection, an emulator.
    let world = World::without_operator("boot", Options::default()).await?;
    let testbed = testbed::shared().await?;
    let admin = world.ns.client.clone();
    let emulator = world.emulator.config().clone();

    // helm install, as a platform team would, with the emulator as the AWS endpoint.
    let metrics_port = free_port()?;
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        serde_yaml::to_string(&serde_json::json!({
            "aws": { "region": emulator.region, "endpointUrl": world.emulator.endpoint_url() },
            "metrics": { "port": metrics_port },
            // Static keys for the emulator; on EKS these come from IRSA or Pod Identity.
            "extraEnv": [
                { "name": "AWS_ACCESS_KEY_ID", "value": emulator.access_key_id },
                { "name": "AWS_SECRET_ACCESS_KEY", "value": emulator.secret_access_key },
            ],
        }))?,
    )?;
    let (_kubeconfig_dir, kubeconfig) = kubeconfig_file(&testbed.control_plane.kubeconfig())?;
    let values_arg = values.to_string_lossy().into_owned();
    helm_ok(
        Some(&kubeconfig),
        &[
            "install",
            RELEASE,
            CHART,
            "--namespace",
            NAMESPACE,
            "--create-namespace",
            "-f",
            &values_arg,
        ],
    )?;

    // The Deployment as the API server accepted it: its arguments and environment.
    let deployment = Api::<Deployment>::namespaced(admin.clone(), NAMESPACE)
        .get(RELEASE)
        .await?;
    let container = operator_container(&deployment)?;
    let args = container.args.clone().unwrap_or_default();
    let service_account = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.service_account_name.clone())
        .context("no serviceAccountName")?;
    ensure!(
        args.contains(&format!("--metrics-addr=0.0.0.0:{metrics_port}")),
        "the chart did not pass the metrics port: {args:?}"
    );

    // What the kubelet mounts: a bound token from TokenRequest, the cluster CA, the namespace.
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), NAMESPACE)
        .create_token_request(
            &service_account,
            &PostParams::default(),
            &TokenRequest::default(),
        )
        .await?
        .status
        .context("no token")?
        .token;
    let secrets = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&secrets)?;
    std::fs::write(secrets.join("token"), &token)?;
    std::fs::write(secrets.join("ca.crt"), testbed.control_plane.ca_cert_pem())?;
    std::fs::write(secrets.join("namespace"), NAMESPACE)?;
    let server = url_host_port(testbed.control_plane.server())?;
    let env = container_env(&deployment)?;
    println!(
        "booting {:?} {args:?} with the Deployment's env {:?}",
        image.entrypoint(),
        env.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );

    // The environment a pod's container gets: the runtime's PATH and HOSTNAME, the kubelet's
    // in-cluster service variables, and the container's own env.
    let mut command = Command::new("unshare");
    command
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOSTNAME", POD_NAME)
        .env("KUBERNETES_SERVICE_HOST", &server.0)
        .env("KUBERNETES_SERVICE_PORT", &server.1)
        .envs(env)
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            BOOT,
            "boot",
        ])
        .arg(&rootfs)
        .arg(&secrets)
        .arg(dir.path().join("operator.log"))
        .args(image.entrypoint())
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn().context("running unshare")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut first_line = String::new();
    BufReader::new(stdout).read_line(&mut first_line)?;
    let pid: u32 = match first_line.trim().strip_prefix("pid ") {
        Some(pid) => pid.parse()?,
        None => {
            let status = child.wait()?;
            bail!("the boot script failed before starting the operator ({status})");
        }
    };
    let booted = Booted {
        child,
        pid,
        log: dir.path().join("operator.log"),
    };

    // /readyz answers 200 once the watch cache has synced.
    let readyz = format!("http://127.0.0.1:{metrics_port}/readyz");
    let ready = eventually("the image's /readyz answers 200", support::WAIT, || {
        let url = readyz.clone();
        async move {
            Ok(reqwest::get(&url)
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false))
        }
    })
    .await;
    if let Err(error) = ready {
        bail!("{error:#}\noperator log:\n{}", booted.log_tail());
    }

    // It runs as the pod's user, on a read-only root (checked once it serves, so after chroot
    // has switched user and executed the entrypoint).
    let status = std::fs::read_to_string(format!("/proc/{}/status", booted.pid))?;
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or("");
    ensure!(
        uid_line.split_whitespace().skip(1).all(|id| id == "65532"),
        "the operator does not run as 65532: {uid_line}"
    );
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", booted.pid))?;
    let root_mount = mountinfo
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .context("no root mount")?;
    ensure!(
        root_mount
            .split_whitespace()
            .nth(5)
            .is_some_and(|o| o.split(',').any(|o| o == "ro")),
        "the root is not read-only: {root_mount}"
    );

    // myphotos, straight from deploy/examples, becomes Ready.
    let example =
        std::fs::read_to_string(testbed::workspace_root().join("deploy/examples/myphotos.yaml"))?;
    let myphotos: RekognitionCollection = serde_yaml::from_str(&example)?;
    world.api.create(&PostParams::default(), &myphotos).await?;
    if let Err(error) = world.wait_reason("myphotos", "Available").await {
        bail!("{error:#}\noperator log:\n{}", booted.log_tail());
    }
    let ready = world.api.get("myphotos").await?;
    ensure!(
        ready.ready_condition().is_some_and(|c| c.status == "True"),
        "myphotos is not Ready=True: {:?}",
        ready.status
    );
    ensure!(
        world.aws_has("myphotos").await?,
        "no collection in the emulator"
    );

    // SIGTERM: a clean stop.
    let log = booted.log.clone();
    let status = booted.stop()?;
    let log = std::fs::read_to_string(log).unwrap_or_default();
    ensure!(
        status.success(),
        "the operator did not exit cleanly on SIGTERM ({status}):\n{log}"
    );
    println!("operator log:\n{log}");
    Ok(())
}

/// ("127.0.0.1", "6443") from "https://127.0.0.1:6443".
fn url_host_port(url: &str) -> Result<(String, String)> {
    let rest = url.strip_prefix("https://").context("not an https URL")?;
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .context("no port in the API server URL")?;
    Ok((host.to_owned(), port.to_owned()))
}

/// Whether this process runs as root (from /proc, without unsafe code).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
