//! The operator image: built without a daemon by scripts/image.sh, it holds what the binary needs
//! and nothing that runs as root, and the Dockerfile declares the same image. How it boots as a
//! pod is shown on the test bed's real node (tests/node.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

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
