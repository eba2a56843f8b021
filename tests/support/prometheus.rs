//! A real Prometheus and its promtool (tools/prometheus, built from the pinned Go module) for the
//! chart's alerting rules: rendered by helm, unit-tested by promtool, and evaluated by a
//! Prometheus that scrapes a real operator on the test bed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

use super::helm::Rendered;

/// The directory holding `prometheus` and `promtool`: `$RKO_PROMETHEUS_BIN_DIR` when set,
/// otherwise built (once per test process, only when its cache is stale) by its build.sh.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(|| locate().map_err(|e| format!("{e:#}"))) {
        Ok(path) => path,
        Err(error) => {
            panic!("Prometheus is not available, so the alerts cannot be tested: {error}")
        }
    }
}

fn locate() -> Result<PathBuf> {
    let dir = match std::env::var_os("RKO_PROMETHEUS_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => testbed::build_with_script(
            &testbed::workspace_root().join("tools/prometheus/build.sh"),
        )?,
    };
    for binary in ["prometheus", "promtool"] {
        ensure!(
            dir.join(binary).is_file(),
            "{} is missing; run tools/prometheus/build.sh",
            dir.join(binary).display()
        );
    }
    Ok(dir)
}

/// The chart's alerting rules (`spec` of its PrometheusRule) as a Prometheus rules file, rendered
/// with `extra` helm arguments on top of `metrics.prometheusRule.enabled=true`.
pub fn rules_yaml(extra: &[&str]) -> Result<String> {
    let mut args = vec!["--set", "metrics.prometheusRule.enabled=true"];
    args.extend_from_slice(extra);
    let rendered = Rendered::new(&args)?;
    let rule: serde_yaml::Value = rendered.one("PrometheusRule")?;
    Ok(serde_yaml::to_string(&rule["spec"])?)
}

/// `promtool <args>` in `dir`; its output, or an error with what it printed.
pub fn promtool(dir: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new(bin_dir().join("promtool"))
        .args(args)
        .current_dir(dir)
        .output()
        .context("running promtool")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!("promtool {} failed:\n{text}", args.join(" "));
    }
    Ok(text)
}

/// A Prometheus server on a free loopback port, scraping `targets` (host:port) every second as
/// job `job`, evaluating `rules` every second; stopped when dropped.
pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub async fn start(job: &str, targets: &[String], rules: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("rules.yaml"), rules)?;
        let config = serde_json::json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": ["rules.yaml"],
            "scrape_configs": [{
                "job_name": job,
                "static_configs": [{"targets": targets, "labels": {"namespace": "rekognition-system"}}],
            }],
        });
        std::fs::write(
            dir.path().join("prometheus.yml"),
            serde_yaml::to_string(&config)?,
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(bin_dir().join("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting prometheus")?;
        let prometheus = Self {
            child,
            url,
            _dir: dir,
        };
        super::eventually("prometheus ready", super::WAIT, || async {
            Ok(reqwest::get(format!("{}/-/ready", prometheus.url))
                .await
                .is_ok_and(|r| r.status().is_success()))
        })
        .await?;
        Ok(prometheus)
    }

    /// `GET /api/v1/<path>`'s `data`.
    pub async fn api(&self, path: &str) -> Result<Value> {
        let body: Value = reqwest::get(format!("{}/api/v1/{path}", self.url))
            .await?
            .json()
            .await?;
        ensure!(body["status"] == "success", "{path}: {body}");
        Ok(body["data"].clone())
    }

    /// The active alerts named `name`, with their state (`pending` or `firing`) and labels.
    pub async fn alerts(&self, name: &str) -> Result<Vec<Value>> {
        let data = self.api("alerts").await?;
        Ok(data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == name)
            .cloned()
            .collect())
    }

    /// Waits until Prometheus has scraped `targets` targets of `job` successfully: until then a
    /// counter's first increments are not seen as increments.
    pub async fn wait_scraping(&self, job: &str, targets: usize) -> Result<()> {
        let promql = format!("up{{job=\"{job}\"}} == 1");
        super::eventually(
            &format!("Prometheus scrapes {targets} targets of {job}"),
            super::WAIT,
            || async { Ok(self.query(&promql).await?.len() == targets) },
        )
        .await
    }

    /// Waits until an alert `name` is firing (within `deadline`); returns it and how long it took.
    pub async fn wait_firing(&self, name: &str, deadline: Duration) -> Result<(Value, Duration)> {
        let started = std::time::Instant::now();
        let alert = super::eventually(&format!("{name} firing"), deadline, || async {
            Ok(self
                .alerts(name)
                .await?
                .into_iter()
                .find(|a| a["state"] == "firing"))
        })
        .await?;
        Ok((alert, started.elapsed()))
    }

    /// Waits until no alert `name` is pending or firing.
    pub async fn wait_silent(&self, name: &str, deadline: Duration) -> Result<Duration> {
        let started = std::time::Instant::now();
        super::eventually(&format!("{name} silent"), deadline, || async {
            Ok(self.alerts(name).await?.is_empty())
        })
        .await?;
        Ok(started.elapsed())
    }

    /// The series a range query returns between `start` and now (at a 2 s step): any that had a
    /// sample in that time.
    pub async fn query_range(
        &self,
        promql: &str,
        start: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Value>> {
        let end = chrono::Utc::now();
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query_range", self.url),
            &[
                ("query", promql),
                ("start", &start.timestamp().to_string()),
                ("end", &end.timestamp().to_string()),
                ("step", "2"),
            ],
        )?;
        let body: Value = reqwest::get(url).await?.json().await?;
        ensure!(body["status"] == "success", "{promql}: {body}");
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The result of an instant query.
    pub async fn query(&self, promql: &str) -> Result<Vec<Value>> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.url),
            &[("query", promql)],
        )?;
        let body: Value = reqwest::get(url).await?.json().await?;
        ensure!(body["status"] == "success", "{promql}: {body}");
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
