//! The release pipeline's inputs agree with what users install: the changelog has notes for the
//! version being built, and the pipeline publishes the image and chart where the chart and the
//! README say they are. actionlint (in the test command) checks the workflows themselves.

use anyhow::{Context, Result, ensure};

fn read(path: &str) -> Result<String> {
    let path = testbed::workspace_root().join(path);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

#[test]
fn changelog_has_release_notes_for_the_crate_version() -> Result<()> {
    let changelog = read("CHANGELOG.md")?;
    let heading = format!("## [{}]", env!("CARGO_PKG_VERSION"));
    let section = changelog
        .split_once(&heading)
        .map(|(_, rest)| rest.split("\n## [").next().unwrap_or_default())
        .with_context(|| format!("CHANGELOG.md has no section {heading}"))?;
    ensure!(
        section.lines().any(|l| l.starts_with("- ")),
        "the section {heading} of CHANGELOG.md lists no change"
    );
    Ok(())
}

#[test]
fn release_pipeline_publishes_the_image_the_chart_pulls() -> Result<()> {
    let values: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/helm/rekognition-operator/values.yaml")?)?;
    let repository = values["image"]["repository"]
        .as_str()
        .context("no image.repository")?;
    let release = read(".github/workflows/release.yml")?;
    // The workflow names the owner through github.repository_owner, which for this repository
    // is the owner in the chart's default repository.
    ensure!(
        release.contains("IMAGE: ghcr.io/${{ github.repository_owner }}/rekognition-operator"),
        "release.yml does not push ghcr.io/<owner>/rekognition-operator"
    );
    assert_eq!(repository, "ghcr.io/aws-operators/rekognition-operator");
    ensure!(
        release.contains("scripts/image.sh"),
        "release.yml does not build the image the test command boots"
    );
    for platform in ["amd64", "arm64"] {
        ensure!(
            release.contains(&format!("arch: {platform}")),
            "release.yml builds no {platform} image"
        );
    }
    let readme = read("README.md")?;
    ensure!(
        readme.contains(repository) && readme.contains("oci://ghcr.io/aws-operators/charts"),
        "the README does not say where the image and the chart are published"
    );
    Ok(())
}

#[test]
fn ci_workflow_runs_the_test_command() -> Result<()> {
    let ci = read(".github/workflows/ci.yml")?;
    ensure!(ci.contains(".ci/run"), "ci.yml does not run .ci/run");
    let run = read(".ci/run")?;
    ensure!(
        run.contains("scripts/test.sh"),
        ".ci/run does not run scripts/test.sh"
    );
    Ok(())
}
