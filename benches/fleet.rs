//! Fleet benchmark: the operator binary, as it ships, against the real control plane and the
//! emulator. Prints one table: bursts of new objects under several AWS quotas, deletions, new
//! objects and deletions with no quota on default flags (and the same new objects with the
//! operator as a pod of the chart, on the test bed's node), a fleet of thousands of objects (rate,
//! memory), a restart over it, single-object latency, and new objects while resyncs are behind.
//!
//! `cargo bench --bench fleet` runs the full benchmark (release build, about half an hour on two
//! cores); FLEET_PARTS picks parts of it, and FLEET_OPERATOR another build of the operator (the
//! image's size-optimised one, say), FLEET_OPERATOR_LOGS a directory for the operators' logs.
//! `FLEET_SCALE=small cargo test --bench fleet` runs the same
//! scenarios at a small scale (the README's test command does, so the benchmark cannot rot); its
//! figures are printed, never asserted. Each burst also draws a chart of itself (see `chart`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::watcher;
use rekognition_emulator::protocol::Operation;
use rekognition_emulator::quota::QuotaUpdate;
use rekognition_operator::model::crd::{CollectionSpec, RekognitionCollection};
use testbed::{BackgroundEmulator, ControlPlane, ControlPlaneOptions};
use tokio::sync::Notify;

#[path = "fleet/chart.rs"]
mod chart;
#[path = "../tests/support/helm.rs"]
#[allow(dead_code)]
mod helm;
#[path = "../tests/support/node.rs"]
#[allow(dead_code)]
mod node;

/// How big each scenario is.
struct Scale {
    burst: usize,
    quotas: &'static [f64],
    fleet: usize,
    latency_samples: usize,
    /// The resync interval of the "resyncs are behind" scenario; with `fleet` objects it wants far
    /// more describes per second than the quota of 5/s.
    behind_resync: &'static str,
    behind_samples: usize,
}

const FULL: Scale = Scale {
    burst: 1000,
    quotas: &[2.0, 20.0, 50.0],
    fleet: 10_000,
    latency_samples: 100,
    behind_resync: "60s",
    behind_samples: 10,
};

const SMALL: Scale = Scale {
    burst: 50,
    quotas: &[2.0, 20.0],
    fleet: 300,
    latency_samples: 20,
    behind_resync: "10s",
    behind_samples: 3,
};

/// One line of the result table.
struct Row {
    scenario: String,
    measure: &'static str,
    value: String,
    target: &'static str,
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// What the benchmark sees of its objects, kept current by a watch.
#[derive(Default)]
struct Seen {
    /// The watch listed the namespace and is live: every change from here on is seen as it
    /// happens.
    synced: bool,
    present: HashSet<String>,
    ready: HashSet<String>,
    ready_at: HashMap<String, Instant>,
}

struct Tracker {
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Tracker {
    fn start(api: Api<RekognitionCollection>) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let changed = Arc::new(Notify::new());
        let (state, notify) = (seen.clone(), changed.clone());
        let task = tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Ok(Some(event)) = events.try_next().await {
                let mut s = state.lock().expect("lock");
                match event {
                    watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                        let name = obj.metadata.name.clone().unwrap_or_default();
                        let ready = obj.ready_condition().is_some_and(|c| c.status == "True");
                        s.present.insert(name.clone());
                        if ready && s.ready.insert(name.clone()) {
                            s.ready_at.insert(name.clone(), Instant::now());
                        }
                    }
                    watcher::Event::Delete(obj) => {
                        let name = obj.metadata.name.clone().unwrap_or_default();
                        s.present.remove(&name);
                        s.ready.remove(&name);
                    }
                    watcher::Event::InitDone => s.synced = true,
                    watcher::Event::Init => {}
                }
                drop(s);
                notify.notify_waiters();
            }
        });
        Self {
            seen,
            changed,
            task,
        }
    }

    async fn until(
        &self,
        what: &str,
        deadline: Duration,
        check: impl Fn(&Seen) -> bool,
    ) -> Result<()> {
        let started = Instant::now();
        loop {
            let notified = self.changed.notified();
            if check(&self.seen.lock().expect("lock")) {
                return Ok(());
            }
            let left = deadline.saturating_sub(started.elapsed());
            if left.is_zero() {
                let s = self.seen.lock().expect("lock");
                bail!(
                    "{what}: not within {deadline:?} (present {}, ready {})",
                    s.present.len(),
                    s.ready.len()
                );
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(500)), notified).await;
        }
    }

    fn ready_at(&self, name: &str) -> Option<Instant> {
        self.seen.lock().expect("lock").ready_at.get(name).copied()
    }

    /// When each object became Ready, in seconds since `since`, earliest first.
    fn ready_times(&self, since: Instant) -> Vec<f64> {
        let seen = self.seen.lock().expect("lock");
        let mut times: Vec<f64> = seen
            .ready_at
            .values()
            .map(|at| at.saturating_duration_since(since).as_secs_f64())
            .collect();
        times.sort_by(f64::total_cmp);
        times
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The operator's client-side rate limit for CreateCollection over a burst, scraped from its
/// /metrics every 250 ms (the limiter's own view, which no emulator counter shows).
struct RateScraper {
    samples: Arc<Mutex<Vec<(f64, f64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RateScraper {
    fn start(metrics: SocketAddr, since: Instant) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let into = samples.clone();
        let task = tokio::spawn(async move {
            let url = format!("http://{metrics}/metrics");
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()
                .expect("HTTP client");
            let mut ticks = tokio::time::interval(Duration::from_millis(250));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // Nothing until the operator listens and its first create made the limiter.
                if let Some(rate) = create_rate_limit(&client, &url).await {
                    let at = since.elapsed().as_secs_f64();
                    into.lock().expect("lock").push((at, rate));
                }
            }
        });
        Self { samples, task }
    }

    /// Stops scraping; answers (seconds since the start, calls/s) pairs.
    fn stop(&self) -> Vec<(f64, f64)> {
        self.task.abort();
        std::mem::take(&mut self.samples.lock().expect("lock"))
    }
}

impl Drop for RateScraper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `rekognition_operator_aws_rate_limit` for CreateCollection (the bench's one account and
/// region), or None where the scrape failed or the limiter does not exist yet.
async fn create_rate_limit(client: &reqwest::Client, url: &str) -> Option<f64> {
    let text = client.get(url).send().await.ok()?.text().await.ok()?;
    create_sample(&text, "rekognition_operator_aws_rate_limit")
}

/// The value of the CreateCollection sample of the metric `name` in a /metrics text.
fn create_sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| line.strip_prefix(name).is_some_and(|l| l.starts_with('{')))
        .filter(|line| line.contains(r#"operation="CreateCollection""#))
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

/// A local address nobody listens on now, for an operator's /metrics.
fn free_local_addr() -> Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The shared control plane and how to start operators on it.
struct Bench {
    plane: ControlPlane,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
    next_ns: usize,
}

/// One scenario's namespace, emulator and operator process.
struct Stage {
    ns: String,
    api: Api<RekognitionCollection>,
    emulator: BackgroundEmulator,
    operator: Option<Child>,
    tracker: Tracker,
}

impl Bench {
    async fn start() -> Result<Self> {
        let plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, plane.kubeconfig_yaml()?)?;
        let bench = Self {
            plane,
            kubeconfig,
            _dir: dir,
            next_ns: 0,
        };
        bench.warm_up().await?;
        Ok(bench)
    }

    /// A fresh API server's first create of a RekognitionCollection took 2.05 s here (later ones
    /// about 5 ms): a one-off cost of the control plane, not of the operator, that fell in
    /// whichever scenario ran first. One object created and deleted before any clock starts.
    async fn warm_up(&self) -> Result<()> {
        let client = self.plane.client().await?;
        let ns = "bench-warm-up";
        node::create_namespace(&client, ns, &[]).await?;
        let api: Api<RekognitionCollection> = Api::namespaced(client, ns);
        let started = Instant::now();
        api.create(&PostParams::default(), &new_object("warm-up"))
            .await?;
        println!(
            "control plane warm-up: first create of the kind took {:.2} s",
            started.elapsed().as_secs_f64()
        );
        api.delete("warm-up", &DeleteParams::default()).await?;
        Ok(())
    }

    /// Writes to RekognitionCollection objects (PATCH, UPDATE and server-side APPLY, status
    /// included) the API server has served so far, by its own `apiserver_request_total`. Only
    /// the operator writes to them once they exist, and scenarios run one at a time.
    async fn api_writes(&self) -> Result<u64> {
        self.api_requests("rekognitioncollections", &["PATCH", "UPDATE", "APPLY"])
            .await
    }

    /// Object reads so far (GET, LIST and WATCH on the kind), the operator's and the benchmark's
    /// own watch.
    async fn api_reads(&self) -> Result<u64> {
        self.api_requests("rekognitioncollections", &["GET", "LIST", "WATCH"])
            .await
    }

    /// Events written (created or patched) so far: the operator's, as scenarios run one at a time.
    async fn events_written(&self) -> Result<u64> {
        self.api_requests("events", &["POST", "PATCH", "CREATE"])
            .await
    }

    /// Requests for `resource` with one of `verbs`, by the API server's `apiserver_request_total`.
    async fn api_requests(&self, resource: &str, verbs: &[&str]) -> Result<u64> {
        let client = self.plane.client().await?;
        let text = client
            .request_text(http::Request::get("/metrics").body(Vec::new())?)
            .await?;
        let mut requests = 0.0;
        for line in text.lines() {
            let Some(labels) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let has = |label: &str| labels.contains(label);
            if has(&format!(r#"resource="{resource}""#))
                && verbs.iter().any(|verb| has(&format!(r#"verb="{verb}""#)))
            {
                let value = line.rsplit(' ').next().unwrap_or("0");
                requests += value.parse::<f64>().unwrap_or(0.0);
            }
        }
        Ok(requests as u64)
    }

    /// A new namespace and an emulator with `quota` calls per second per operation (0: off).
    async fn stage(&mut self, quota: f64) -> Result<Stage> {
        self.next_ns += 1;
        let ns = format!("bench-{}", self.next_ns);
        let client = self.plane.client().await?;
        node::create_namespace(&client, &ns, &[]).await?;
        let mut config = testbed::emulator_config();
        config.quota.rate_per_sec = quota;
        config.quota.burst = 5;
        config.call_log_capacity = config.call_log_capacity.max(200_000);
        let emulator = BackgroundEmulator::start(config)?;
        Stage::watching(client, ns, emulator).await
    }

    /// Starts the operator with `extra` flags and no metrics endpoint; answers its pid.
    fn start_operator(&self, stage: &mut Stage, extra: &[&str]) -> Result<u32> {
        self.spawn_operator(stage, "off", extra)
    }

    /// Starts the operator with `extra` flags and /metrics on a free local port (for a burst's
    /// chart of its rate limit, or the limiter's waits); answers the address.
    fn start_operator_with_metrics(&self, stage: &mut Stage, extra: &[&str]) -> Result<SocketAddr> {
        let addr = free_local_addr()?;
        self.spawn_operator(stage, &addr.to_string(), extra)?;
        Ok(addr)
    }

    fn spawn_operator(&self, stage: &mut Stage, metrics_addr: &str, extra: &[&str]) -> Result<u32> {
        // FLEET_OPERATOR runs another build of the operator, such as the image's
        // (`target/container/rekognition-operator` after scripts/image.sh).
        let binary = std::env::var_os("FLEET_OPERATOR")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_rekognition-operator").into());
        // FLEET_OPERATOR_LOGS=DIR keeps each operator's log, at debug level, as DIR/NAMESPACE.log.
        let logs = std::env::var_os("FLEET_OPERATOR_LOGS").map(PathBuf::from);
        let (level, stderr) = match &logs {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let file = std::fs::File::create(dir.join(format!("{}.log", stage.ns)))?;
                ("debug", Stdio::from(file))
            }
            None => ("warn", Stdio::null()),
        };
        let mut command = Command::new(binary);
        command.args(["--namespace", &stage.ns, "--log-level", level]);
        // A scenario may name the address itself among its flags.
        if !extra.contains(&"--metrics-addr") {
            command.args(["--metrics-addr", metrics_addr]);
        }
        command
            .args(extra)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (key, value) in stage.emulator.env() {
            command.env(key, value);
        }
        let child = command.spawn().context("starting the operator")?;
        let pid = child.id();
        stage.operator = Some(child);
        Ok(pid)
    }
}

impl Stage {
    /// A stage on `ns`, once the benchmark's own watch of it is live: a scenario's clock starts
    /// then, so that every Ready is timed when it happens, not when a late first list finds it.
    async fn watching(
        client: kube::Client,
        ns: String,
        emulator: BackgroundEmulator,
    ) -> Result<Self> {
        let api: Api<RekognitionCollection> = Api::namespaced(client, &ns);
        let tracker = Tracker::start(api.clone());
        tracker
            .until(
                "the benchmark's watch synced",
                Duration::from_secs(60),
                |s| s.synced,
            )
            .await?;
        Ok(Self {
            ns,
            api,
            emulator,
            operator: None,
            tracker,
        })
    }

    /// Creates `names` (while no operator runs) and waits until the watch has seen them all.
    async fn create_present(&self, names: &[String]) -> Result<()> {
        self.create_all(names).await?;
        self.tracker
            .until("objects present", Duration::from_secs(600), |s| {
                s.present.len() >= names.len()
            })
            .await
    }

    /// Waits until `n` objects are Ready: at most two minutes plus a second per five objects
    /// (quotas are off wherever this is used), so an object that never gets Ready fails the run
    /// in minutes, not half an hour.
    async fn all_ready(&self, n: usize) -> Result<()> {
        let deadline = Duration::from_secs(120 + n as u64 / 5);
        self.tracker
            .until("all Ready", deadline, |s| s.ready.len() >= n)
            .await
    }

    async fn create(&self, name: &str) -> Result<()> {
        self.api
            .create(&PostParams::default(), &new_object(name))
            .await?;
        Ok(())
    }

    /// Creates `names` with a few requests in flight at once.
    async fn create_all(&self, names: &[String]) -> Result<()> {
        futures::stream::iter(names)
            .map(|name| self.create(name))
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    async fn delete_all(&self, names: &[String]) -> Result<()> {
        futures::stream::iter(names)
            .map(|name| async move {
                self.api.delete(name, &DeleteParams::default()).await?;
                Ok::<_, anyhow::Error>(())
            })
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    async fn calls(&self) -> Result<(u64, u64, HashMap<String, u64>)> {
        let counters = self.emulator.admin()?.counters().await?;
        let mut total = 0;
        let mut throttled = 0;
        let mut by_op = HashMap::new();
        for (op, outcomes) in &counters.0 {
            for (outcome, n) in outcomes {
                total += n;
                *by_op.entry(op.clone()).or_insert(0) += n;
                if outcome.contains("Throttl") || outcome.contains("ProvisionedThroughput") {
                    throttled += n;
                }
            }
        }
        Ok((total, throttled, by_op))
    }

    fn stop_operator(&mut self) {
        if let Some(mut child) = self.operator.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(mut child) = self.operator.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A RekognitionCollection with a default spec.
fn new_object(name: &str) -> RekognitionCollection {
    RekognitionCollection {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: CollectionSpec::default(),
        status: None,
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:05}")).collect()
}

/// A burst of new objects under an emulator quota, operator on default flags, charted (see
/// `chart`); then, at the default quota, their deletion.
async fn burst(
    bench: &mut Bench,
    n: usize,
    quota: f64,
    rows: &mut Vec<Row>,
    delete: bool,
) -> Result<()> {
    let mut stage = bench.stage(quota).await?;
    let metrics = bench.start_operator_with_metrics(&mut stage, &[])?;
    let objects = names("burst", n);
    let ideal = n as f64 / quota;
    let writes_before = bench.api_writes().await?;
    let started = Instant::now();
    let scraper = RateScraper::start(metrics, started);
    stage.create_all(&objects).await?;
    stage
        .tracker
        .until(
            "burst Ready",
            Duration::from_secs_f64(ideal * 4.0 + 120.0),
            |s| s.ready.len() >= n,
        )
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let rate = scraper.stop();
    let writes_ready = bench.api_writes().await?;
    let (total, throttled, by_op) = stage.calls().await?;
    let creates = by_op.get("CreateCollection").copied().unwrap_or(0);
    // Nothing more is written once every object is Ready, until something changes.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let writes_after = bench.api_writes().await?;
    let trace = chart::BurstTrace {
        objects: n,
        quota,
        ready: stage.tracker.ready_times(started),
        rate,
    };
    println!("burst chart: {}", trace.write(&chart::dir())?.display());
    let (target_ratio, target_share) = ("≤ 1.05", "≤ 3 %");
    let scenario = format!("burst: {n} new objects, quota {quota}/s per operation");
    rows.push(Row {
        scenario: scenario.clone(),
        measure: "seconds to all Ready ÷ (N / quota)",
        value: format!("{:.3} ({secs:.1} s)", secs / ideal),
        target: target_ratio,
    });
    rows.push(Row {
        scenario: scenario.clone(),
        measure: "CreateCollection calls per object (throttled retries included)",
        value: format!("{:.2}", creates as f64 / n as f64),
        target: "1.0 before Ready",
    });
    rows.push(Row {
        scenario: scenario.clone(),
        measure: "API writes per object until Ready; in the 5 s after",
        value: format!(
            "{:.2}; {}",
            (writes_ready - writes_before) as f64 / n as f64,
            writes_after - writes_ready
        ),
        target: "≤ 2; 0",
    });
    rows.push(Row {
        scenario,
        measure: "throttled share of AWS calls so far",
        value: format!(
            "{:.2} % ({throttled} of {total})",
            100.0 * throttled as f64 / total.max(1) as f64
        ),
        target: target_share,
    });
    if !delete {
        return Ok(());
    }
    let (before, _, _) = stage.calls().await?;
    let started = Instant::now();
    stage.delete_all(&objects).await?;
    stage
        .tracker
        .until(
            "all gone",
            Duration::from_secs_f64(ideal * 4.0 + 120.0),
            |s| s.present.is_empty(),
        )
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let (after, throttled_after, _) = stage.calls().await?;
    let scenario = format!("delete: {n} objects, quota {quota}/s per operation");
    rows.push(Row {
        scenario: scenario.clone(),
        measure: "seconds to all gone ÷ (N / quota)",
        value: format!("{:.3} ({secs:.1} s)", secs / ideal),
        target: "≤ 1.05",
    });
    rows.push(Row {
        scenario,
        measure: "AWS calls per object",
        value: format!(
            "{:.2} ({} throttled in all)",
            (after - before) as f64 / n as f64,
            throttled_after - throttled
        ),
        target: "≤ 2.0",
    });
    Ok(())
}

/// Creates `objects` while no operator runs, then starts one with `flags` and waits until all are
/// Ready: the row of objects/s from its start, AWS calls and API writes per object; answers the
/// row and the operator's pid.
async fn ready_from_operator_start(
    bench: &Bench,
    stage: &mut Stage,
    objects: &[String],
    flags: &[&str],
    scenario: String,
    target: &'static str,
) -> Result<(Row, u32)> {
    let n = objects.len();
    stage.create_present(objects).await?;
    let writes_before = bench.api_writes().await?;
    let started = Instant::now();
    let pid = bench.start_operator(stage, flags)?;
    stage.all_ready(n).await?;
    let secs = started.elapsed().as_secs_f64();
    let writes = bench.api_writes().await? - writes_before;
    let (calls, _, _) = stage.calls().await?;
    let row = Row {
        scenario,
        measure: "objects/s to all Ready from operator start",
        value: format!(
            "{:.1} ({secs:.1} s; {:.2} AWS calls and {:.2} API writes per object)",
            n as f64 / secs,
            calls as f64 / n as f64,
            writes as f64 / n as f64
        ),
        target,
    };
    Ok((row, pid))
}

/// New objects with no AWS quota and the operator on default flags: created while the operator
/// is down, then the operator starts; then their deletion while it runs. Here the operator's own
/// pace (its limiter's slow start and ceiling, its workers) and the API server are the bound.
async fn unlimited(bench: &mut Bench, n: usize, rows: &mut Vec<Row>) -> Result<()> {
    let mut stage = bench.stage(0.0).await?;
    let objects = names("free", n);
    let metrics = free_local_addr()?;
    let metrics_flag = metrics.to_string();
    let scenario = format!("{n} new objects, quotas off, default flags");
    let (row, pid) = ready_from_operator_start(
        bench,
        &mut stage,
        &objects,
        &["--metrics-addr", &metrics_flag],
        scenario.clone(),
        "≥ 90/s; 1 call, ≤ 2 writes",
    )
    .await?;
    rows.push(row);
    rows.push(Row {
        scenario,
        measure: "operator RSS peak (VmHWM) once all are Ready",
        value: mib(rss_kib(pid, "VmHWM:")),
        target: "—",
    });
    let (calls, _, _) = stage.calls().await?;
    let (writes, events) = (bench.api_writes().await?, bench.events_written().await?);
    let passes = reconcile_passes(metrics).await?;
    let started = Instant::now();
    stage.delete_all(&objects).await?;
    stage
        .tracker
        .until("all gone", Duration::from_secs(600), |s| {
            s.present.is_empty()
        })
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let (after, _, _) = stage.calls().await?;
    let allowed = limiter_alone(n).await;
    rows.push(Row {
        scenario: format!("{n} objects deleted, quotas off, default flags"),
        measure: "seconds from the first delete to all gone; AWS calls per object; × the limiter alone",
        value: format!(
            "{secs:.1} s; {:.2}; {:.2}× ({allowed:.1} s)",
            (after - calls) as f64 / n as f64,
            secs / allowed
        ),
        target: "≤ 1.05×",
    });
    let passes = reconcile_passes(metrics).await?.since(&passes);
    let per = |count: u64| count as f64 / n as f64;
    rows.push(Row {
        scenario: format!("{n} objects deleted, quotas off, default flags"),
        measure: "per object: object writes, Events written, reconcile passes past the gate (mean ms each)",
        value: format!(
            "{:.2}, {:.2}, {:.2} ({:.1} ms)",
            per(bench.api_writes().await? - writes),
            per(bench.events_written().await? - events),
            per(passes.count),
            passes.mean_ms()
        ),
        target: "—",
    });
    Ok(())
}

/// What the operator's limiter allows a deletion of `n` objects on default flags, with no AWS,
/// no API server and no logic: 16 workers (the default concurrency) each take a
/// ListTagsForResource token, then a DeleteCollection token, per object, from fresh buckets (slow
/// start included) that AWS never throttles. Answers the seconds it took.
async fn limiter_alone(n: usize) -> f64 {
    use rekognition_operator::adapters::rate::{RateLimit, RateLimiters};
    let defaults = <rekognition_operator::runtime::config::Config as clap::Parser>::parse_from([
        "rekognition-operator",
    ]);
    let limiters = RateLimiters::new(RateLimit {
        start_per_sec: defaults.aws_rate,
        ceiling_per_sec: defaults.aws_rate_ceiling,
        burst: defaults.aws_burst,
    });
    let (tags, delete) = (
        limiters.get("bench", "us-east-1", "ListTagsForResource"),
        limiters.get("bench", "us-east-1", "DeleteCollection"),
    );
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(usize::from(defaults.concurrency), |_| {
            let (tags, delete) = (tags.clone(), delete.clone());
            async move {
                tags.acquire().await;
                tags.on_success();
                delete.acquire().await;
                delete.on_success();
            }
        })
        .await;
    started.elapsed().as_secs_f64()
}

/// Creation and deletion of `n` objects, each timed from the operator's start, as kube-apiserver's
/// ceiling is: created while no operator runs, then all Ready; the operator stopped, every object
/// marked for deletion, then started again until all are gone. The operator's limiter is off
/// (`--aws-rate 0`) and AWS has no quota, so the operator and the API server are the bound. Per
/// deleted object: object writes, Events written, AWS calls, reconcile passes past the gate, and
/// how busy the workers were (the passes' time over the workers' time).
async fn deletion(bench: &mut Bench, n: usize, rows: &mut Vec<Row>) -> Result<()> {
    let mut stage = bench.stage(0.0).await?;
    let objects = names("del", n);
    let metrics = free_local_addr()?.to_string();
    let flags = ["--aws-rate", "0", "--metrics-addr", &metrics];
    let (row, _) = ready_from_operator_start(
        bench,
        &mut stage,
        &objects,
        &flags,
        format!("{n} new objects, quotas off, limiter off"),
        "—",
    )
    .await?;
    rows.push(row);
    stage.stop_operator();
    stage.delete_all(&objects).await?;
    let (calls, _, _) = stage.calls().await?;
    let (writes, events) = (bench.api_writes().await?, bench.events_written().await?);
    let reads = bench.api_reads().await?;
    let started = Instant::now();
    bench.start_operator(&mut stage, &flags)?;
    stage
        .tracker
        .until("all gone", Duration::from_secs(120 + n as u64 / 5), |s| {
            s.present.is_empty()
        })
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let passes = reconcile_passes(metrics.parse()?).await?;
    let (after, _, _) = stage.calls().await?;
    let per = |count: u64| count as f64 / n as f64;
    let scenario = format!("{n} objects deleted, marked while no operator ran, limiter off");
    rows.push(Row {
        scenario: scenario.clone(),
        measure: "objects/s to all gone from operator start",
        value: format!("{:.1} ({secs:.1} s)", n as f64 / secs),
        target: "≥ the creation row's rate",
    });
    rows.push(Row {
        scenario,
        measure: "per object: object writes, object reads, Events, AWS calls, passes past the gate (mean ms); workers busy",
        value: format!(
            "{:.2}, {:.2}, {:.2}, {:.2}, {:.2} ({:.1} ms); {:.0} %",
            per(bench.api_writes().await? - writes),
            per(bench.api_reads().await? - reads),
            per(bench.events_written().await? - events),
            per(after - calls),
            per(passes.count),
            passes.mean_ms(),
            passes.seconds * 100.0 / (16.0 * secs),
        ),
        target: "1 write, 0 reads, 1 Event, 2 calls, 1 pass",
    });
    Ok(())
}

/// The operator as a pod, as a platform team runs it: the chart with its default values on the
/// test bed's node (two replicas, leader election, the image's build), its Deployment scaled to
/// zero while `n` objects are created, then back to the chart's replicas. The row beside
/// `unlimited`'s: objects/s to all Ready from the scale-up (the pods' start and the Lease's
/// acquisition included), AWS calls per object, and the leader's container memory against the
/// chart's limit.
async fn in_pod(n: usize, rows: &mut Vec<Row>) -> Result<()> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::Pod;
    use testbed::node::ContainerProcess;

    let plane = node::control_plane_with_node().await?;
    let addresses = plane.node().context("a node")?.addresses();
    let mut config = testbed::emulator_config();
    config.quota.rate_per_sec = 0.0;
    config.call_log_capacity = config.call_log_capacity.max(200_000);
    // Where the pods reach it: the host's end of the node's link.
    let emulator = BackgroundEmulator::start_on(config, addresses.host)?;
    node::import_operator_image(&plane)?;
    let client = plane.client().await?;
    let (dir, kubeconfig) = helm::kubeconfig_file(&plane.kubeconfig())?;
    node::restricted_namespace(&client, helm::NAMESPACE).await?;
    let values = node::emulator_key_values(&client, &emulator).await?;
    node::install_chart(&plane, &kubeconfig, dir.path(), &values).await?;
    let replicas = Api::<Deployment>::namespaced(client.clone(), helm::NAMESPACE)
        .get(helm::RELEASE)
        .await?
        .spec
        .and_then(|spec| spec.replicas)
        .unwrap_or(1);
    let scale = |replicas: i32| {
        node::kubectl(
            &plane,
            &kubeconfig,
            &[
                "scale",
                "--namespace",
                helm::NAMESPACE,
                &format!("deployment/{}", helm::RELEASE),
                &format!("--replicas={replicas}"),
            ],
        )
    };
    scale(0)?;
    node::kubectl(
        &plane,
        &kubeconfig,
        &[
            "wait",
            "--for=delete",
            "pod",
            "--namespace",
            helm::NAMESPACE,
            "--selector=app.kubernetes.io/name=rekognition-operator",
            "--timeout=120s",
        ],
    )?;

    let ns = "bench-in-pod";
    node::create_namespace(&client, ns, &[]).await?;
    let stage = Stage::watching(client.clone(), ns.into(), emulator).await?;
    let objects = names("pod", n);
    stage.create_present(&objects).await?;
    let started = Instant::now();
    scale(replicas)?;
    stage.all_ready(n).await?;
    let secs = started.elapsed().as_secs_f64();
    let (calls, _, _) = stage.calls().await?;

    // The leader's container: the Lease names `<pod>-<n>`.
    let holder = Api::<Lease>::namespaced(client.clone(), helm::NAMESPACE)
        .get(helm::RELEASE)
        .await?
        .spec
        .and_then(|spec| spec.holder_identity)
        .context("the Lease's holder")?;
    let pod = holder
        .rsplit_once('-')
        .map_or(holder.as_str(), |(pod, _)| pod);
    let uid = Api::<Pod>::namespaced(client.clone(), helm::NAMESPACE)
        .get(pod)
        .await?
        .metadata
        .uid
        .unwrap_or_default();
    let process = ContainerProcess::of_pod("/rekognition-operator", &uid)?;
    let scenario = format!(
        "{n} new objects, quotas off, the operator as a pod (chart defaults: {replicas} replicas, the image's build)"
    );
    rows.push(Row {
        scenario: scenario.clone(),
        measure: "objects/s to all Ready from the scale-up (pods' start and the Lease included)",
        value: format!(
            "{:.1} ({secs:.1} s; {:.2} AWS calls per object)",
            n as f64 / secs,
            calls as f64 / n as f64
        ),
        target: "beside the process row",
    });
    rows.push(Row {
        scenario,
        measure: "leader's container: cgroup memory peak; VmHWM; the chart's limit",
        value: format!(
            "{}; {}; {}",
            mib(process.memory_peak()? >> 10),
            mib(rss_kib(process.pid, "VmHWM:")),
            mib(process.memory_limit >> 10),
        ),
        target: "under the limit",
    });
    drop(stage);
    plane.stop().await;
    Ok(())
}

/// Reconciles that went past the gate (the gate's own answers are not counted) and their time.
#[derive(Clone, Copy, Default)]
struct Passes {
    count: u64,
    seconds: f64,
}

impl Passes {
    fn since(&self, before: &Passes) -> Passes {
        Passes {
            count: self.count - before.count,
            seconds: self.seconds - before.seconds,
        }
    }

    fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.seconds * 1000.0 / self.count as f64
        }
    }
}

/// The operator's reconcile duration histogram's count and sum, from its /metrics.
async fn reconcile_passes(metrics: SocketAddr) -> Result<Passes> {
    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await?
        .text()
        .await?;
    let sample = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok(Passes {
        count: sample("rekognition_operator_reconcile_duration_seconds_count") as u64,
        seconds: sample("rekognition_operator_reconcile_duration_seconds_sum"),
    })
}

/// The API server's own ceiling for the operator's writes: a minimal client, no AWS and no logic,
/// makes exactly the writes the operator makes per object, at each of a few concurrencies, and
/// the best rate counts. Creation: the finalizer with the region and role pins (a merge patch
/// with the resourceVersion), then the status (server-side apply, forced). Deletion: every object
/// marked for deletion, then its finalizer removed (a merge patch). Then the same at the best
/// concurrency with the Event the operator publishes per created or deleted collection (to
/// another resource, through the same kind of recorder).
async fn ceiling(bench: &mut Bench, n: usize, rows: &mut Vec<Row>) -> Result<()> {
    // The best creation and the best deletion, each with its concurrency.
    let (mut create, mut delete) = ((0, 0.0), (0, 0.0));
    for concurrency in [16, 64, 256] {
        let (create_rate, delete_rate) = ceiling_run(bench, n, concurrency, false).await?;
        if create_rate > create.1 {
            create = (concurrency, create_rate);
        }
        if delete_rate > delete.1 {
            delete = (concurrency, delete_rate);
        }
    }
    rows.push(Row {
        scenario: format!("API server ceiling: the operator's object writes alone, {n} objects"),
        measure: "objects/s created (finalizer, status); deleted (finalizer removal); each at its best concurrency",
        value: format!(
            "{:.0}/s ({}); {:.0}/s ({})",
            create.1, create.0, delete.1, delete.0
        ),
        target: "the bound for the rows with no quota",
    });
    let concurrency = delete.0;
    let (create_rate, delete_rate) = ceiling_run(bench, n, concurrency, true).await?;
    rows.push(Row {
        scenario: format!("API server ceiling: the same writes and an Event each, {n} objects"),
        measure: "objects/s created (finalizer, status, Event); deleted (finalizer removal, Event); at the deletion's best concurrency",
        value: format!("{create_rate:.0}/s; {delete_rate:.0}/s"),
        target: "the bound for the rows with no quota",
    });
    Ok(())
}

/// One run of [`ceiling`] at `concurrency`, with or without the Events: answers the creation
/// and deletion rates.
async fn ceiling_run(
    bench: &mut Bench,
    n: usize,
    concurrency: usize,
    events: bool,
) -> Result<(f64, f64)> {
    use kube::Resource;
    use kube::api::{Patch, PatchParams};
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    use rekognition_operator::model::crd::{FINALIZER, REGION_PIN_ANNOTATION, ROLE_PIN_ANNOTATION};
    let stage = bench.stage(0.0).await?;
    let objects = names("ceiling", n);
    stage.create_all(&objects).await?;
    let api = &stage.api;
    let recorder = &Recorder::new(
        bench.plane.client().await?,
        Reporter {
            controller: "rekognition-operator".into(),
            instance: None,
        },
    );
    let publish = |reference: k8s_openapi::api::core::v1::ObjectReference, reason: &'static str| async move {
        if events {
            let event = Event {
                type_: EventType::Normal,
                reason: reason.into(),
                note: Some(format!("{reason} collection")),
                action: "Reconcile".into(),
                secondary: None,
            };
            recorder.publish(&event, &reference).await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    // The operator patches from its watch cache: the versions (and the objects' references for
    // the Events) are read before the clock.
    let listed: HashMap<String, RekognitionCollection> = api
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .map(|o| (o.metadata.name.clone().unwrap_or_default(), o))
        .collect();
    let listed = &listed;
    let started = Instant::now();
    futures::stream::iter(&objects)
        .map(|name| async move {
            let obj = listed.get(name).context("listed")?;
            let finalizer = serde_json::json!({"metadata": {
                "finalizers": [FINALIZER],
                "resourceVersion": obj.metadata.resource_version,
                "annotations": {REGION_PIN_ANNOTATION: "us-east-1", ROLE_PIN_ANNOTATION: null},
            }});
            api.patch(name, &PatchParams::default(), &Patch::Merge(&finalizer))
                .await?;
            let status = serde_json::json!({
                "apiVersion": "rekognition.aws-operators.dev/v1alpha1",
                "kind": "RekognitionCollection",
                "status": {
                    "collectionArn": format!("arn:aws:rekognition:us-east-1:123456789012:collection/{name}"),
                    "faceModelVersion": "7.0",
                    "region": "us-east-1",
                    "observedGeneration": 1,
                    "conditions": [{
                        "type": "Ready", "status": "True", "reason": "Available",
                        "message": "available", "observedGeneration": 1,
                        "lastTransitionTime": "2026-12-07T00:00:00Z",
                    }],
                },
            });
            api.patch_status(
                name,
                &PatchParams::apply("rekognition-operator").force(),
                &Patch::Apply(&status),
            )
            .await?;
            publish(obj.object_ref(&()), "Created").await
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let create_rate = n as f64 / started.elapsed().as_secs_f64();
    stage.delete_all(&objects).await?;
    let started = Instant::now();
    futures::stream::iter(&objects)
        .map(|name| async move {
            let release = serde_json::json!({"metadata": {"finalizers": null}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(&release))
                .await?;
            publish(
                listed.get(name).context("listed")?.object_ref(&()),
                "Deleted",
            )
            .await
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let delete_rate = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "API server ceiling, {n} objects, {concurrency} at once{}: creation {create_rate:.0}/s, deletion {delete_rate:.0}/s",
        if events { ", with Events" } else { "" }
    );
    Ok((create_rate, delete_rate))
}

/// Thousands of objects: created while the operator is down, then the operator starts with
/// raised limits and no AWS quota; a restart over the Ready fleet; new objects while resyncs are
/// behind; and the fleet's deletion.
async fn fleet(bench: &mut Bench, scale: &Scale, rows: &mut Vec<Row>) -> Result<()> {
    let n = scale.fleet;
    let mut stage = bench.stage(0.0).await?;
    let objects = names("fleet", n);
    let raised = [
        "--aws-rate",
        "1000",
        "--aws-rate-ceiling",
        "1000",
        "--aws-burst",
        "1000",
    ];
    let scenario = format!("{n} objects, quotas off, operator limits raised");
    let (row, pid) = ready_from_operator_start(
        bench,
        &mut stage,
        &objects,
        &raised,
        scenario.clone(),
        "≥ 200/s; 1 call, ≤ 2 writes",
    )
    .await?;
    rows.push(row);
    // Ready is the last write until the first resync: what the operator holds from here on.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let peak = rss_kib(pid, "VmHWM:");
    let holding = rss_kib(pid, "VmRSS:");
    // The operator's own memory (heap, stacks) apart from the pages of its binary mapped in.
    let (anon, file) = (rss_kib(pid, "RssAnon:"), rss_kib(pid, "RssFile:"));
    rows.push(Row {
        scenario: scenario.clone(),
        measure: "operator RSS peak; holding the fleet (anonymous + the binary's mapped pages)",
        value: format!(
            "{}; {} ({} + {})",
            mib(peak),
            mib(holding),
            mib(anon),
            mib(file)
        ),
        target: "≤ 32 MiB",
    });

    // Restart over the Ready fleet.
    stage.stop_operator();
    let (before, _, _) = stage.calls().await?;
    let started = Instant::now();
    bench.start_operator(&mut stage, &raised)?;
    stage.create("restart-newcomer").await?;
    stage
        .tracker
        .until("newcomer Ready", Duration::from_secs(120), |s| {
            s.ready.contains("restart-newcomer")
        })
        .await?;
    let newcomer = stage
        .tracker
        .ready_at("restart-newcomer")
        .map(|at| at.duration_since(started).as_secs_f64())
        .unwrap_or(f64::NAN);
    let left = Duration::from_secs(60).saturating_sub(started.elapsed());
    tokio::time::sleep(left).await;
    let (after, _, _) = stage.calls().await?;
    let scenario = format!("restart over {n} Ready objects (10-minute resync)");
    rows.push(Row {
        scenario: scenario.clone(),
        measure: "AWS calls in the first 60 s (the newcomer's 1 included)",
        value: format!("{}", after - before),
        target: "only the resyncs due",
    });
    rows.push(Row {
        scenario,
        measure: "seconds until an object created during the restart is Ready",
        value: format!("{newcomer:.2}"),
        target: "≤ 2 s",
    });

    // Resyncs behind: a short interval and a describe quota of 5/s.
    stage.stop_operator();
    stage
        .emulator
        .admin()?
        .set_quota(&QuotaUpdate {
            enabled: true,
            rate: Some(5.0),
            burst: Some(5),
            operation: Some(Operation::DescribeCollection),
            throttle_error: None,
        })
        .await?;
    bench.start_operator(
        &mut stage,
        &[
            "--resync-interval",
            scale.behind_resync,
            "--aws-rate-ceiling",
            "1000",
        ],
    )?;
    // Wait until the resyncs outnumber the budget, then add objects one by one.
    let interval = humantime::parse_duration(scale.behind_resync)?;
    tokio::time::sleep(interval + interval / 2).await;
    let mut latencies = Vec::new();
    for i in 0..scale.behind_samples {
        let name = format!("behind-{i}");
        let started = Instant::now();
        stage.create(&name).await?;
        stage
            .tracker
            .until("new object Ready", Duration::from_secs(120), |s| {
                s.ready.contains(&name)
            })
            .await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    rows.push(Row {
        scenario: format!(
            "{n} steady objects, {} resync, describe quota 5/s",
            scale.behind_resync
        ),
        measure: "new object's apply → Ready while resyncs are behind: p50 / max",
        value: format!(
            "{:.0} ms / {:.0} ms",
            latencies[latencies.len() / 2],
            latencies[latencies.len() - 1]
        ),
        target: "≤ 2 s",
    });

    // The fleet's deletion, quotas off again.
    stage.stop_operator();
    stage
        .emulator
        .admin()?
        .set_quota(&QuotaUpdate::default())
        .await?;
    let pid = bench.start_operator(&mut stage, &raised)?;
    let mut all = objects;
    all.push("restart-newcomer".into());
    all.extend((0..scale.behind_samples).map(|i| format!("behind-{i}")));
    let (before, _, _) = stage.calls().await?;
    let started = Instant::now();
    stage.delete_all(&all).await?;
    stage
        .tracker
        .until("fleet gone", Duration::from_secs(1800), |s| {
            s.present.is_empty()
        })
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let peak = rss_kib(pid, "VmHWM:");
    let (after, _, _) = stage.calls().await?;
    rows.push(Row {
        scenario: format!("deleting {} objects, quotas off", all.len()),
        measure: "seconds; AWS calls per object; operator RSS peak",
        value: format!(
            "{secs:.1} s; {:.2}; {}",
            (after - before) as f64 / all.len() as f64,
            mib(peak)
        ),
        target: "—",
    });
    Ok(())
}

/// One object at a time, back to back, quotas off: with the operator's default flags, and with
/// its limiter starting at a rate the account is known to grant (`--aws-rate`), which takes the
/// limiter's slow start out. Each sample's wait for the limiter comes from the operator's own
/// `rate_limiter_wait_seconds`, read between samples.
async fn latency(
    bench: &mut Bench,
    samples: usize,
    start_rate: Option<&str>,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let mut stage = bench.stage(0.0).await?;
    let flags: Vec<&str> = start_rate.map_or(vec![], |rate| vec!["--aws-rate", rate]);
    let metrics = bench.start_operator_with_metrics(&mut stage, &flags)?;
    let url = format!("http://{metrics}/metrics");
    let client = reqwest::Client::new();
    let waited = || create_limiter_wait(&client, &url);
    // Warm up connections.
    stage.create("warmup").await?;
    stage
        .tracker
        .until("warmup Ready", Duration::from_secs(60), |s| {
            s.ready.contains("warmup")
        })
        .await?;
    let mut before = waited().await?;
    // (ms from apply to Ready, ms of it waiting for the limiter)
    let mut latencies = Vec::new();
    for i in 0..samples {
        let name = format!("one-{i:04}");
        let started = Instant::now();
        stage.create(&name).await?;
        stage
            .tracker
            .until("object Ready", Duration::from_secs(60), |s| {
                s.ready.contains(&name)
            })
            .await?;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        let after = waited().await?;
        latencies.push((took, ((after - before) * 1000.0).max(0.0)));
        before = after;
    }
    // The slowest samples, in order of arrival, so a periodic cause shows.
    let mut slowest: Vec<(usize, (f64, f64))> = latencies.iter().copied().enumerate().collect();
    slowest.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    slowest.truncate(5);
    slowest.sort_by_key(|(i, _)| *i);
    println!("slowest samples (index, (ms, ms of it waiting for the limiter)): {slowest:.0?}");
    let mut took: Vec<f64> = latencies.iter().map(|l| l.0).collect();
    took.sort_by(f64::total_cmp);
    let waits: Vec<f64> = latencies
        .iter()
        .map(|l| l.1)
        .filter(|w| *w >= 1.0)
        .collect();
    let mut beyond: Vec<f64> = latencies.iter().map(|l| l.0 - l.1).collect();
    beyond.sort_by(f64::total_cmp);
    let flags = match start_rate {
        Some(rate) => format!("limiter starting at {rate}/s"),
        None => "default flags".into(),
    };
    rows.push(Row {
        scenario: format!(
            "one object at a time, back to back, quotas off, {flags} ({samples} objects)"
        ),
        measure: "apply → Ready p50 / p90 / p99; the same less the limiter's wait; samples that waited for it (ms in all)",
        value: format!(
            "{:.0} / {:.0} / {:.0} ms; {:.0} / {:.0} / {:.0} ms; {} ({:.0} ms)",
            took[took.len() / 2],
            took[took.len() * 9 / 10],
            percentile(&took, 0.99),
            beyond[beyond.len() / 2],
            beyond[beyond.len() * 9 / 10],
            percentile(&beyond, 0.99),
            waits.len(),
            // From 0.0, not `sum`: an empty float sum is -0.0 and prints as "-0".
            waits.iter().fold(0.0, |all, w| all + w)
        ),
        target: "≤ 15 ms / — / ≤ 50 ms",
    });
    Ok(())
}

/// The `q` quantile of sorted `values` (the smallest value with at least q of them at or below).
fn percentile(values: &[f64], q: f64) -> f64 {
    values[((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1]
}

/// Seconds CreateCollection calls have waited for the operator's limiter so far.
async fn create_limiter_wait(client: &reqwest::Client, url: &str) -> Result<f64> {
    let text = client.get(url).send().await?.text().await?;
    Ok(create_sample(&text, "rekognition_operator_rate_limiter_wait_seconds_sum").unwrap_or(0.0))
}

#[tokio::main]
async fn main() -> Result<()> {
    let small = std::env::var("FLEET_SCALE").is_ok_and(|v| v == "small");
    let scale = if small { SMALL } else { FULL };
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .ok();
    // FLEET_PARTS picks parts to run (comma-separated: default-quota, other-quotas, unlimited,
    // deletion, in-pod, latency, fleet, ceiling); all of them by default.
    let parts = std::env::var("FLEET_PARTS").unwrap_or_default();
    let wanted = |part: &str| parts.is_empty() || parts.split(',').any(|p| p == part);
    // The machine's load when the run starts: figures from a busy machine are not comparable.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let mut bench = Bench::start().await?;
    let mut rows = Vec::new();
    let started = Instant::now();
    if wanted("default-quota") {
        burst(&mut bench, scale.burst, 5.0, &mut rows, true).await?;
    }
    if wanted("other-quotas") {
        // FLEET_QUOTAS overrides the quotas of this part, e.g. "20,50".
        let quotas: Vec<f64> = match std::env::var("FLEET_QUOTAS") {
            Ok(list) => list
                .split(',')
                .filter_map(|q| q.trim().parse().ok())
                .collect(),
            Err(_) => scale.quotas.to_vec(),
        };
        for quota in quotas {
            burst(&mut bench, scale.burst, quota, &mut rows, false).await?;
        }
    }
    if wanted("unlimited") {
        unlimited(&mut bench, scale.burst, &mut rows).await?;
    }
    if wanted("deletion") {
        deletion(&mut bench, scale.fleet, &mut rows).await?;
    }
    if wanted("in-pod") {
        in_pod(scale.burst, &mut rows).await?;
    }
    if wanted("latency") {
        latency(&mut bench, scale.latency_samples, None, &mut rows).await?;
        latency(&mut bench, scale.latency_samples, Some("100"), &mut rows).await?;
    }
    if wanted("fleet") {
        fleet(&mut bench, &scale, &mut rows).await?;
    }
    if wanted("ceiling") {
        ceiling(&mut bench, scale.fleet, &mut rows).await?;
    }

    println!(
        "\nfleet benchmark ({} scale, {} build, {:.0} s; load average at its start {})\n",
        if small { "small" } else { "full" },
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        started.elapsed().as_secs_f64(),
        load.join(" ")
    );
    println!("| scenario | measure | measured | target |");
    println!("|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} |",
            row.scenario, row.measure, row.value, row.target
        );
    }
    Ok(())
}
