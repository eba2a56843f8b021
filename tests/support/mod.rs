//! Helpers for the operator's end-to-end tests: the shared real control plane, an emulator and an
//! operator (as a task of the test) per test, and waits on conditions with deadlines.
#![allow(dead_code)]

pub mod emulator_sdk;
pub mod helm;
pub mod kstatus;
pub mod node;
pub mod prometheus;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use rekognition_operator::model::crd::{CollectionSpec, RekognitionCollection};
use rekognition_operator::runtime::config::Config;
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
    /// A control plane of this world's own ([`World::alone`]), or none: the test binary's shared
    /// one.
    own_plane: Option<testbed::SharedTestbed>,
}

struct Operator {
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Operator {
    /// Runs the operator as a task until `stop` is notified.
    fn spawn(config: Config, client: kube::Client, sdk_config: aws_config::SdkConfig) -> Self {
        let stop = Arc::new(Notify::new());
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            rekognition_operator::runtime::operator::run_operator(
                &config,
                client,
                sdk_config,
                async move {
                    stopped.notified().await;
                },
            )
            .await
        });
        Self { stop, task }
    }
}

/// Knobs a test may turn.
#[derive(Clone)]
pub struct Options {
    pub emulator: rekognition_emulator::Config,
    pub aws_rate: f64,
    pub aws_burst: u32,
    pub resync_interval: Duration,
    /// The operator's default region; the emulator's when None.
    pub region: Option<String>,
    /// More operator flags.
    pub args: Vec<String>,
    /// Where the operator's AWS credentials come from.
    pub credentials: Credentials,
    /// Watch every namespace instead of this world's only, for tests that span namespaces: only in
    /// a world on a control plane of its own ([`World::alone`]), as the shared one holds the
    /// namespaces of every other test of the binary.
    pub all_namespaces: bool,
}

/// The operator's AWS credentials in a test.
#[derive(Clone)]
pub enum Credentials {
    /// The emulator's static keys.
    Static,
    /// IRSA-style web identity: this token file and role, resolved by the SDK's own provider.
    WebIdentity {
        token_file: std::path::PathBuf,
        role_arn: String,
    },
}

impl Default for Options {
    fn default() -> Self {
        Self {
            emulator: testbed::emulator_config(),
            aws_rate: 50.0,
            aws_burst: 50,
            resync_interval: Duration::from_secs(600),
            region: None,
            args: Vec::new(),
            credentials: Credentials::Static,
            all_namespaces: false,
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
        let ns = shared().await?.namespace(prefix).await?;
        Self::on(ns, options, None)
    }

    /// A world on a control plane of its own, for a test whose operator watches every namespace
    /// (`Options::all_namespaces`); its operator is started later. More namespaces on the same
    /// plane: [`World::namespace`].
    pub async fn alone(prefix: &str, options: Options) -> Result<Self> {
        init_test_logging();
        let control_plane = testbed::ControlPlane::start(testbed::ControlPlaneOptions::default())
            .await
            .context("starting the world's own control plane")?;
        let plane = testbed::SharedTestbed { control_plane };
        let ns = plane.namespace(prefix).await?;
        Self::on(ns, options, Some(plane))
    }

    fn on(
        ns: TestNamespace,
        options: Options,
        own_plane: Option<testbed::SharedTestbed>,
    ) -> Result<Self> {
        let emulator = BackgroundEmulator::start(options.emulator.clone())?;
        let api = Api::namespaced(ns.client.clone(), &ns.name);
        Ok(Self {
            ns,
            emulator,
            api,
            metrics_url: None,
            operator: None,
            own_plane,
        })
    }

    /// Another namespace on this world's control plane.
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        match &self.own_plane {
            Some(plane) => plane.namespace(prefix).await,
            None => shared().await?.namespace(prefix).await,
        }
    }

    /// Starts the operator as a task of this test, watching this world's namespace.
    pub async fn start_operator(&mut self, options: &Options) -> Result<()> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let metrics_addr = format!("127.0.0.1:{port}");
        let mut args = vec!["--concurrency", "4", "--metrics-addr", &metrics_addr];
        if !options.all_namespaces {
            args.extend(["--namespace", &self.ns.name]);
        } else if self.own_plane.is_none() {
            bail!(
                "an operator that watches every namespace needs a world of its own (World::alone): the shared control plane holds every other test's namespaces"
            );
        }
        args.extend(options.args.iter().map(String::as_str));
        let mut config = Config::try_parse_from_args(&args)?;
        self.metrics_url = Some(format!("http://{metrics_addr}"));
        config.aws_rate = options.aws_rate;
        config.aws_burst = options.aws_burst;
        config.resync_interval = options.resync_interval;
        let client = self.ns.client.clone();
        let sdk_config = self.operator_sdk_config(options).await;
        self.start_operator_with(config, client, sdk_config).await
    }

    /// The AWS configuration the operator gets under `options`.
    async fn operator_sdk_config(&self, options: &Options) -> aws_config::SdkConfig {
        let loader = emulator_sdk::loader(&self.emulator, options.region.clone());
        match &options.credentials {
            Credentials::Static => {
                loader
                    .credentials_provider(emulator_sdk::key_pair(&self.emulator, "testbed"))
                    .load()
                    .await
            }
            Credentials::WebIdentity {
                token_file,
                role_arn,
            } => {
                let provider =
                    aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                        .static_configuration(aws_config::web_identity_token::StaticConfiguration {
                            web_identity_token_file: token_file.clone(),
                            role_arn: role_arn.clone(),
                            session_name: "rekognition-operator".into(),
                        })
                        .configure(
                            &aws_config::provider_config::ProviderConfig::default().with_region(
                                Some(aws_config::Region::new(
                                    self.emulator.config().region.clone(),
                                )),
                            ),
                        )
                        .build();
                loader.credentials_provider(provider).load().await
            }
        }
    }

    /// Starts the operator as a task with a given configuration and Kubernetes client (for
    /// example one that holds only a ServiceAccount token).
    pub async fn start_operator_as(&mut self, config: Config, client: kube::Client) -> Result<()> {
        let sdk_config = self.sdk_config().await;
        self.start_operator_with(config, client, sdk_config).await
    }

    async fn start_operator_with(
        &mut self,
        config: Config,
        client: kube::Client,
        sdk_config: aws_config::SdkConfig,
    ) -> Result<()> {
        self.operator = Some(Operator::spawn(config, client, sdk_config));
        Ok(())
    }

    /// An operator of another cluster installation: a task on `client` (another API server),
    /// watching the namespace of this world's name there, on this world's emulator. Stopped when
    /// the handle is stopped or dropped.
    pub async fn operator_on(&self, client: kube::Client, args: &[&str]) -> Result<OtherOperator> {
        let mut all = vec![
            "--concurrency",
            "4",
            "--metrics-addr",
            "off",
            "--aws-rate",
            "50",
        ];
        all.extend(["--namespace", &self.ns.name]);
        all.extend(args);
        let config = Config::try_parse_from_args(&all)?;
        let sdk_config = self.sdk_config().await;
        Ok(OtherOperator(Some(Operator::spawn(
            config, client, sdk_config,
        ))))
    }

    /// The tags a collection owned by `obj` carries when its spec asks for `spec_tags`: those,
    /// the owner tag and the claim of this cluster (the operator's default name: the kube-system
    /// namespace's UID).
    pub async fn owned_tags(
        &self,
        obj: &RekognitionCollection,
        spec_tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let mut tags = spec_tags.clone();
        tags.insert(
            rekognition_operator::model::crd::OWNER_TAG.into(),
            obj.metadata.uid.clone().context("uid")?,
        );
        tags.insert(
            rekognition_operator::model::crd::CLAIM_TAG.into(),
            rekognition_operator::core::ownership::claim(
                &default_cluster_name(&self.ns.client).await?,
                &self.ns.name,
                obj.metadata.name.as_deref().unwrap_or_default(),
            ),
        );
        Ok(tags)
    }

    /// The notes of the Events with this reason about the object `name`.
    pub async fn event_notes(&self, name: &str, reason: &str) -> Result<Vec<String>> {
        event_notes(&self.ns.client, &self.ns.name, name, reason).await
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
        emulator_sdk::sdk_config(&self.emulator, "testbed").await
    }

    /// A plain Rekognition client on the emulator, for staging and checking AWS state.
    pub async fn rekognition(&self) -> aws_sdk_rekognition::Client {
        aws_sdk_rekognition::Client::new(&self.sdk_config().await)
    }

    /// A token the API server mints by TokenRequest for `service_account` (created if needed),
    /// for `audience`, valid ten minutes (the shortest the API server grants).
    pub async fn service_account_token(
        &self,
        service_account: &str,
        audience: &str,
    ) -> Result<String> {
        service_account_token(&self.ns.client, &self.ns.name, service_account, audience).await
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

    /// Asks for a reconcile of `name` now (the reconcile-requested-at annotation) and waits until
    /// its status records a creation time: a new collection's createdAt otherwise waits for its
    /// first resync.
    pub async fn describe_now(&self, name: &str) -> Result<RekognitionCollection> {
        let value = format!("describe-{}", chrono::Utc::now().timestamp_micros());
        let patch = serde_json::json!({"metadata": {"annotations": {
            rekognition_operator::model::crd::RECONCILE_REQUEST_ANNOTATION: value,
        }}});
        self.api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        eventually("createdAt recorded", WAIT, || async {
            let obj = self.api.get(name).await?;
            let described = obj.status.as_ref().is_some_and(|s| {
                s.created_at.is_some() && s.last_handled_reconcile_at.as_deref() == Some(&value)
            });
            Ok(described.then_some(obj))
        })
        .await
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
        wait_reason_in(&self.api, name, reason, deadline).await
    }

    /// A kubeconfig file for the shared control plane's admin identity, for operator processes.
    pub async fn kubeconfig_file(&self, dir: &std::path::Path) -> Result<std::path::PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, shared().await?.control_plane.kubeconfig_yaml()?)?;
        Ok(path)
    }

    /// Options for an operator process watching this world's namespace, on this world's
    /// emulator, logging to `<dir>/operator.log`.
    pub async fn operator_process_options(
        &self,
        dir: &std::path::Path,
    ) -> Result<testbed::OperatorOptions> {
        let kubeconfig = self.kubeconfig_file(dir).await?;
        Ok(testbed::OperatorOptions::new(
            env!("CARGO_BIN_EXE_rekognition-operator"),
            kubeconfig,
            &self.emulator,
            dir.join("operator.log"),
        )
        .args(["--namespace", &self.ns.name, "--aws-rate", "50"]))
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

    /// Makes the emulator fail the next `count` calls of `operation` with `error`.
    pub async fn fail_next(
        &self,
        operation: rekognition_emulator::Operation,
        error: rekognition_emulator::ErrorKind,
        count: u32,
    ) -> Result<()> {
        self.admin()
            .fail_next(&rekognition_emulator::faults::NextFailure {
                operation: Some(operation),
                error,
                count,
            })
            .await?;
        Ok(())
    }

    /// Makes the emulator fail calls of `operation` with `error` with this probability, until
    /// faults are cleared.
    pub async fn fail_calls(
        &self,
        operation: rekognition_emulator::Operation,
        error: rekognition_emulator::ErrorKind,
        probability: f64,
    ) -> Result<()> {
        self.admin()
            .set_fault(&rekognition_emulator::faults::FaultRule {
                operation: Some(operation),
                error: Some(error),
                probability,
                latency_ms: 0,
            })
            .await?;
        Ok(())
    }

    /// A metric of the running operator, summed over its label sets.
    pub async fn metric(&self, name: &str) -> Result<f64> {
        metric_sum(&self.metrics_text().await?, name)
    }

    /// Triggers the running operator has finished with so far: held by its gate (a backoff to
    /// sleep out, a resync due later, nothing new) or reconciled to the end, AWS calls and all.
    /// Read once the operator's metrics answer and the count stands still for a quarter of a
    /// second, so that the triggers of writes made before (the operator's own included) are in
    /// it and a later [`World::until_quiet`] counts only what follows.
    pub async fn triggers_done(&self) -> Result<f64> {
        let mut last = eventually("the operator's metrics", WAIT, || async {
            Ok(self.triggers_done_now().await.ok())
        })
        .await?;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.triggers_done_now().await?;
            if now == last {
                return Ok(now);
            }
            last = now;
        }
    }

    async fn triggers_done_now(&self) -> Result<f64> {
        const TRIGGERS: &str = "rekognition_operator_triggers_total";
        let text = self.metrics_text().await?;
        let triggers = metric_sum(&text, TRIGGERS)?;
        let run: f64 = text
            .lines()
            .filter(|l| l.starts_with(TRIGGERS) && l.contains(r#"decision="run""#))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        let reconciled = metric_sum(&text, "rekognition_operator_reconciles_total")?;
        Ok(triggers - run + reconciled)
    }

    /// Waits until the operator has finished with at least `more` triggers beyond `done` (read
    /// before with [`World::triggers_done`]) and then with every trigger that followed (the count
    /// stands still): whatever a "no call" check looks for would have been called by then, so
    /// the check reads the call log after the operator's decisions rather than after a guessed
    /// sleep.
    pub async fn until_quiet(&self, done: f64, more: f64) -> Result<()> {
        eventually("the operator finished with the triggers", WAIT, || async {
            Ok(self.triggers_done_now().await? >= done + more)
        })
        .await?;
        self.triggers_done().await?;
        Ok(())
    }

    /// The running operator's `/metrics` exposition.
    pub async fn metrics_text(&self) -> Result<String> {
        let url = self
            .metrics_url
            .as_ref()
            .context("the operator serves no metrics")?;
        Ok(reqwest::get(format!("{url}/metrics")).await?.text().await?)
    }

    /// Operator flags that watch the account mapping ConfigMap of [`World::put_account_mapping`].
    pub fn account_mapping_args(&self) -> Vec<String> {
        vec![
            "--account-mapping".into(),
            ACCOUNT_MAPPING.into(),
            "--account-mapping-namespace".into(),
            self.ns.name.clone(),
        ]
    }

    /// Creates or replaces the account mapping ConfigMap (its `mapping.yaml`) in this world's
    /// namespace, as the chart does from its values.
    pub async fn put_account_mapping(&self, mapping_yaml: &str) -> Result<()> {
        let configmaps: Api<ConfigMap> = Api::namespaced(self.ns.client.clone(), &self.ns.name);
        let configmap = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": ACCOUNT_MAPPING },
            "data": { rekognition_operator::core::accounts::MAPPING_KEY: mapping_yaml },
        });
        configmaps
            .patch(
                ACCOUNT_MAPPING,
                &PatchParams::apply("platform-team").force(),
                &Patch::Apply(&configmap),
            )
            .await?;
        Ok(())
    }

    /// The principal the operator's static keys sign as in the emulator.
    pub fn operator_principal(&self) -> String {
        format!(
            "arn:aws:iam::{}:user/{}",
            self.emulator.config().account_id,
            rekognition_emulator::config::DEFAULT_USER_NAME
        )
    }

    /// Adds a role in `account` that the operator's own identity may assume (with `external_id`
    /// when given); returns its ARN.
    pub async fn role_for_operator(
        &self,
        account: &str,
        name: &str,
        external_id: Option<&str>,
    ) -> Result<String> {
        let role = self
            .admin()
            .put_role(&rekognition_emulator::RoleConfig {
                account_id: account.to_owned(),
                name: name.to_owned(),
                max_session_duration_seconds: 3600,
                trust: vec![rekognition_emulator::TrustRule::Principal {
                    principal: self.operator_principal(),
                    external_id: external_id.map(str::to_owned),
                }],
            })
            .await?;
        Ok(role.arn)
    }

    /// Rekognition calls the emulator answered in `account` (STS calls left out).
    pub async fn rekognition_calls_in(&self, account: &str) -> Result<u64> {
        let counters = self.admin().for_account(account).counters().await?;
        Ok(rekognition_calls(&counters))
    }

    /// Collection IDs in `account`, straight from the emulator.
    pub async fn collections_in(&self, account: &str) -> Result<Vec<String>> {
        Ok(self
            .admin()
            .for_account(account)
            .collections()
            .await?
            .into_iter()
            .map(|c| c.collection_id)
            .collect())
    }

    /// Waits until the object's Synced condition has `reason`.
    pub async fn wait_synced(&self, name: &str, reason: &str) -> Result<RekognitionCollection> {
        eventually(&format!("{name} Synced reason {reason}"), WAIT, || async {
            let obj = self.api.get(name).await?;
            Ok(obj.synced_condition().is_some_and(|c| c.reason == reason))
        })
        .await?;
        Ok(self.api.get(name).await?)
    }

    /// The tags of collection `id` in `account`, straight from the emulator (empty if none).
    pub async fn aws_tags_in(
        &self,
        account: &str,
        id: &str,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        Ok(self
            .admin()
            .for_account(account)
            .collections()
            .await?
            .into_iter()
            .find(|c| c.collection_id == id)
            .map(|c| c.tags)
            .unwrap_or_default())
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

/// The one wait-until helper (`testbed::wait_until`), under the name these tests have long used.
#[allow(unused_imports)] // not every test binary waits this way
pub use testbed::wait_until as eventually;

/// Waits until the object's Ready condition has `reason`, through `api` (any API server).
pub async fn wait_reason_in(
    api: &Api<RekognitionCollection>,
    name: &str,
    reason: &str,
    deadline: Duration,
) -> Result<RekognitionCollection> {
    let wanted = reason.to_owned();
    let condition = move |obj: Option<&RekognitionCollection>| {
        obj.and_then(|o| o.ready_condition())
            .is_some_and(|c| c.reason == wanted)
    };
    match tokio::time::timeout(deadline, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(Some(obj))) => Ok(obj),
        Ok(Ok(None)) => bail!("{name} vanished while waiting for {reason}"),
        Ok(Err(error)) => Err(error.into()),
        Err(_) => {
            let current = api.get_opt(name).await?;
            bail!(
                "{name} did not reach Ready reason {reason} within {deadline:?}; now: {:?}",
                current.and_then(|o| o.status)
            )
        }
    }
}

/// An operator started by [`World::operator_on`].
pub struct OtherOperator(Option<Operator>);

impl OtherOperator {
    /// Stops it and waits for in-flight work.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(operator) = self.0.take() {
            operator.stop.notify_one();
            tokio::time::timeout(WAIT, operator.task)
                .await
                .context("operator did not stop in time")???;
        }
        Ok(())
    }
}

impl Drop for OtherOperator {
    fn drop(&mut self) {
        if let Some(operator) = self.0.take() {
            operator.task.abort();
        }
    }
}

/// The operator's default cluster name on the API server `client` reaches: the kube-system
/// namespace's UID.
pub async fn default_cluster_name(client: &kube::Client) -> Result<String> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .get("kube-system")
        .await?
        .metadata
        .uid
        .context("kube-system has no UID")
}

/// The notes of the Events with this reason about the object `name` in `namespace`.
pub async fn event_notes(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    reason: &str,
) -> Result<Vec<String>> {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), namespace);
    let list = events.list(&Default::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.reason.as_deref() == Some(reason)
        })
        .filter_map(|e| e.note)
        .collect())
}

/// A token the API server mints by TokenRequest for the ServiceAccount `name` of `namespace`
/// (created if needed), for `audience` (the API server's own when None), valid ten minutes.
pub async fn service_account_token(
    admin: &kube::Client,
    namespace: &str,
    name: &str,
    audience: &str,
) -> Result<String> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    if accounts.get_opt(name).await?.is_none() {
        let account = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        accounts.create(&PostParams::default(), &account).await?;
    }
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience.to_owned()],
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    Ok(accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .context("TokenRequest")?
        .status
        .context("token status")?
        .token)
}

/// The API server's own audience on the test bed: a token for it authenticates to the API.
pub const API_AUDIENCE: &str = "https://testbed.local";

/// A client that acts as the ServiceAccount `name` of `namespace` (created if needed) with a
/// TokenRequest token, and the kubeconfig that holds it (for `kubectl`). It has whatever RBAC the
/// caller bound to it.
pub async fn service_account_client(
    admin: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(kube::Client, kube::config::Kubeconfig)> {
    let token = service_account_token(admin, namespace, name, API_AUDIENCE).await?;
    let testbed = shared().await?;
    let user = format!("system:serviceaccount:{namespace}:{name}");
    let kubeconfig = testbed.control_plane.kubeconfig_for_token(&user, &token);
    let client = testbed::client_from_kubeconfig(kubeconfig.clone()).await?;
    Ok((client, kubeconfig))
}

/// The name of the account mapping ConfigMap in tests.
pub const ACCOUNT_MAPPING: &str = "account-mapping";

/// The Rekognition part of the emulator's counters: every operation but STS's.
pub fn rekognition_calls(counters: &rekognition_emulator::admin::Counters) -> u64 {
    counters
        .0
        .iter()
        .filter(|(operation, _)| {
            !matches!(
                operation.as_str(),
                "AssumeRole" | "AssumeRoleWithWebIdentity" | "GetCallerIdentity"
            )
        })
        .flat_map(|(_, outcomes)| outcomes.values())
        .sum()
}

/// The message of the object's Ready condition, or "" without one.
pub fn ready_message(obj: &RekognitionCollection) -> String {
    obj.ready_condition()
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// The sum of every sample of the series `name` (all its label sets) in a Prometheus text
/// exposition. A family the operator exports but that has no sample yet (a counter nothing has
/// incremented) sums to 0; a name that is neither in the exposition nor among the operator's
/// families is an error, so that a check of `== 0.0` cannot pass on a misspelt or renamed metric.
pub fn metric_sum(text: &str, name: &str) -> Result<f64> {
    let family = ["_total", "_sum", "_count", "_bucket"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name);
    let declared = text.lines().any(|l| {
        l.strip_prefix("# TYPE ")
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|declared| declared == family || declared == name)
    });
    if !declared && !rekognition_operator::runtime::metrics::FAMILIES.contains(&family) {
        bail!(
            "the operator exports no metric {name} (rekognition_operator::runtime::metrics::FAMILIES)"
        );
    }
    Ok(text
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Runs the Argo CD health check (`deploy/argocd/health.lua`) on an object as Argo CD does: the
/// object as the global `obj`; returns the health status and message.
pub fn argocd_health(obj: &RekognitionCollection) -> Result<(String, String)> {
    use mlua::LuaSerdeExt;
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/argocd/health.lua"
    ))?;
    let lua = mlua::Lua::new();
    let object = serde_json::to_value(obj)?;
    lua.globals().set("obj", lua.to_value(&object)?)?;
    let health: mlua::Table = lua.load(&script).eval()?;
    Ok((health.get("status")?, health.get("message")?))
}

/// The cluster is lost: each object goes without its finalizer running.
pub async fn lose_objects(api: &Api<RekognitionCollection>, names: &[&str]) -> Result<()> {
    for name in names {
        let drop_finalizers = serde_json::json!({"metadata": {"finalizers": null}});
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&drop_finalizers),
        )
        .await?;
        api.delete(name, &DeleteParams::default()).await?;
        let gone = await_condition(api.clone(), name, |o: Option<&RekognitionCollection>| {
            o.is_none()
        });
        tokio::time::timeout(WAIT, gone)
            .await
            .with_context(|| format!("{name} was not removed"))??;
    }
    Ok(())
}

/// Creates a namespace unless it exists.
pub async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(name).await?.is_none() {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    Ok(())
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
