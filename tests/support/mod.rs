//! Helpers for the operator's end-to-end tests: the shared real control plane, an emulator and an
//! operator (as a task of the test) per test, and waits on conditions with deadlines.
#![allow(dead_code)]

pub mod helm;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use aws_sdk_rekognition::config::Credentials;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::wait::await_condition;
use rekognition_operator::config::Config;
use rekognition_operator::crd::{CollectionSpec, RekognitionCollection};
use testbed::{BackgroundEmulator, TestNamespace, shared};
use tokio::sync::Notify;

pub const WAIT: Duration = Duration::from_secs(60);

/// One test's world: a namespace on the shared control plane, its own emulator, and an operator
/// watching that namespace only.
pub struct World {
    pub ns: TestNamespace,
    pub emulator: BackgroundEmulator,
    pub api: Api<RekognitionCollection>,
    /// Base URL of the running operator's /livez, /readyz and /metrics.
    pub metrics_url: Option<String>,
    operator: Option<Operator>,
}

struct Operator {
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<Result<()>>,
}

/// Knobs a test may turn.
#[derive(Clone)]
pub struct Options {
    pub emulator: rekognition_emulator::Config,
    pub aws_rate: f64,
    pub aws_burst: u32,
    pub resync_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        let mut emulator = testbed::with_generated_credentials(Default::default());
        emulator.quota.rate_per_sec = 0.0;
        Self {
            emulator,
            aws_rate: 50.0,
            aws_burst: 50,
            resync_interval: Duration::from_secs(600),
        }
    }
}

impl World {
    /// A world with the operator already running.
    pub async fn start(prefix: &str) -> Result<Self> {
        let mut world = Self::without_operator(prefix, Options::default()).await?;
        world.start_operator(&Options::default()).await?;
        Ok(world)
    }

    /// A world whose operator is started later (to stage AWS state first).
    pub async fn without_operator(prefix: &str, options: Options) -> Result<Self> {
        init_test_logging();
        let testbed = shared().await?;
        let ns = testbed.namespace(prefix).await?;
        let emulator = BackgroundEmulator::start(options.emulator.clone())?;
        let api = Api::namespaced(ns.client.clone(), &ns.name);
        Ok(Self {
            ns,
            emulator,
            api,
            metrics_url: None,
            operator: None,
        })
    }

    /// Starts the operator as a task of this test, watching this world's namespace.
    pub async fn start_operator(&mut self, options: &Options) -> Result<()> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let metrics_addr = format!("127.0.0.1:{port}");
        let mut config = Config::try_parse_from_args(&[
            "--namespace",
            &self.ns.name,
            "--concurrency",
            "4",
            "--metrics-addr",
            &metrics_addr,
        ])?;
        self.metrics_url = Some(format!("http://{metrics_addr}"));
        config.aws_rate = options.aws_rate;
        config.aws_burst = options.aws_burst;
        config.resync_interval = options.resync_interval;
        let client = self.ns.client.clone();
        self.start_operator_as(config, client).await
    }

    /// Starts the operator as a task with a given configuration and Kubernetes client (for
    /// example one that holds only a ServiceAccount token).
    pub async fn start_operator_as(&mut self, config: Config, client: kube::Client) -> Result<()> {
        let sdk_config = self.sdk_config().await;
        let stop = Arc::new(Notify::new());
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            rekognition_operator::operator::run_operator(&config, client, sdk_config, async move {
                stopped.notified().await;
            })
            .await
        });
        self.operator = Some(Operator { stop, task });
        Ok(())
    }

    /// An API for collections in another namespace, with this world's admin client.
    pub fn api_in(&self, namespace: &str) -> Api<RekognitionCollection> {
        Api::namespaced(self.ns.client.clone(), namespace)
    }

    /// Stops the operator and waits for it to finish in-flight work.
    pub async fn stop_operator(&mut self) -> Result<()> {
        if let Some(operator) = self.operator.take() {
            operator.stop.notify_one();
            tokio::time::timeout(WAIT, operator.task)
                .await
                .context("operator did not stop in time")???;
        }
        Ok(())
    }

    /// The AWS SDK configuration the operator uses, pointed at this world's emulator.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let config = self.emulator.config();
        rekognition_operator::aws::sdk_config_loader(Duration::from_secs(10))
            .region(aws_config::Region::new(config.region.clone()))
            .endpoint_url(self.emulator.endpoint_url())
            .credentials_provider(Credentials::new(
                config.access_key_id.clone(),
                config.secret_access_key.clone(),
                None,
                None,
                "testbed",
            ))
            .load()
            .await
    }

    /// A plain Rekognition client on the emulator, for staging and checking AWS state.
    pub async fn rekognition(&self) -> aws_sdk_rekognition::Client {
        aws_sdk_rekognition::Client::new(&self.sdk_config().await)
    }

    pub fn admin(&self) -> rekognition_emulator::admin::AdminClient {
        self.emulator.admin().expect("admin client")
    }

    pub fn arn(&self, id: &str) -> String {
        let config = self.emulator.config();
        format!(
            "arn:aws:rekognition:{}:{}:collection/{id}",
            config.region, config.account_id
        )
    }

    pub async fn create(&self, name: &str, spec: CollectionSpec) -> Result<RekognitionCollection> {
        let object = RekognitionCollection {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        };
        Ok(self.api.create(&PostParams::default(), &object).await?)
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        self.api.delete(name, &DeleteParams::default()).await?;
        Ok(())
    }

    /// Waits until the object's Ready condition has `reason`.
    pub async fn wait_reason(&self, name: &str, reason: &str) -> Result<RekognitionCollection> {
        self.wait_reason_within(name, reason, WAIT).await
    }

    pub async fn wait_reason_within(
        &self,
        name: &str,
        reason: &str,
        deadline: Duration,
    ) -> Result<RekognitionCollection> {
        let wanted = reason.to_owned();
        let condition = move |obj: Option<&RekognitionCollection>| {
            obj.and_then(|o| o.ready_condition())
                .is_some_and(|c| c.reason == wanted)
        };
        match tokio::time::timeout(deadline, await_condition(self.api.clone(), name, condition))
            .await
        {
            Ok(Ok(Some(obj))) => Ok(obj),
            Ok(Ok(None)) => bail!("{name} vanished while waiting for {reason}"),
            Ok(Err(error)) => Err(error.into()),
            Err(_) => {
                let current = self.api.get_opt(name).await?;
                bail!(
                    "{name} did not reach Ready reason {reason} within {deadline:?}; now: {:?}",
                    current.and_then(|o| o.status)
                )
            }
        }
    }

    /// Waits until the object is gone (its finalizer released).
    pub async fn wait_gone(&self, name: &str) -> Result<()> {
        let condition = |obj: Option<&RekognitionCollection>| obj.is_none();
        tokio::time::timeout(WAIT, await_condition(self.api.clone(), name, condition))
            .await
            .with_context(|| format!("{name} was not released within {WAIT:?}"))??;
        Ok(())
    }

    /// Tags of a collection, straight from the emulator.
    pub async fn aws_tags(&self, id: &str) -> Result<std::collections::BTreeMap<String, String>> {
        let collections = self.admin().collections().await?;
        collections
            .into_iter()
            .find(|c| c.collection_id == id)
            .map(|c| c.tags)
            .with_context(|| format!("no collection {id} in the emulator"))
    }

    /// Creates `count` default objects named `<prefix>-NNN` and waits until all are Available.
    /// Returns how long that took.
    pub async fn create_many_and_wait(
        &self,
        prefix: &str,
        count: usize,
        deadline: Duration,
    ) -> Result<Duration> {
        let started = std::time::Instant::now();
        for i in 0..count {
            self.create(&format!("{prefix}-{i:03}"), CollectionSpec::default())
                .await?;
        }
        for i in 0..count {
            self.wait_reason_within(&format!("{prefix}-{i:03}"), "Available", deadline)
                .await?;
        }
        Ok(started.elapsed())
    }

    /// All AWS calls the emulator answered, and how many of them were throttled.
    pub async fn call_totals(&self) -> Result<CallTotals> {
        let counters = self.admin().counters().await?;
        let total = counters.0.values().flat_map(|o| o.values()).sum();
        let throttled = counters
            .0
            .values()
            .map(|o| o.get("ThrottlingException").copied().unwrap_or(0))
            .sum();
        Ok(CallTotals {
            total,
            throttled,
            counters,
        })
    }

    /// A metric of the running operator, summed over its label sets.
    pub async fn metric(&self, name: &str) -> Result<f64> {
        let url = self
            .metrics_url
            .as_ref()
            .context("the operator serves no metrics")?;
        let text = reqwest::get(format!("{url}/metrics")).await?.text().await?;
        Ok(metric_sum(&text, name))
    }

    pub async fn aws_has(&self, id: &str) -> Result<bool> {
        Ok(self
            .admin()
            .collections()
            .await?
            .iter()
            .any(|c| c.collection_id == id))
    }
}

/// Polls `check` until it returns true or the deadline passes: the one wait-until helper of the
/// end-to-end tests.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = std::time::Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("{what}: not within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The sum of every sample of a metric (all label sets) in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Call counts from the emulator.
pub struct CallTotals {
    pub total: u64,
    pub throttled: u64,
    pub counters: rekognition_emulator::admin::Counters,
}

impl std::fmt::Display for CallTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} AWS calls, {} throttled ({:.2}%); {:?}",
            self.total,
            self.throttled,
            100.0 * self.throttled as f64 / self.total.max(1) as f64,
            self.counters.0
        )
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(operator) = self.operator.take() {
            operator.task.abort();
        }
    }
}

pub trait ParseArgs: Sized {
    fn try_parse_from_args(args: &[&str]) -> Result<Self>;
}

impl ParseArgs for Config {
    // The operator's own parser, so tests exercise the same flags as the binary.
    fn try_parse_from_args(args: &[&str]) -> Result<Self> {
        use clap::Parser;
        Ok(Config::try_parse_from(
            std::iter::once("rekognition-operator").chain(args.iter().copied()),
        )?)
    }
}

fn init_test_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,kube_client::client::builder=off".into()),
        )
        .with_test_writer()
        .try_init();
}
