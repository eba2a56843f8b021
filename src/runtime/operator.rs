//! Wires the pieces together and runs the controller until shutdown.

use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tracing::{info, warn};

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::adapters::aws::{SdkCollectionApi, load_sdk_config};
use crate::adapters::rate::{RateLimit, RateLimiters};
use crate::core::accounts::Mapping;
use crate::core::backoff::BackoffPolicy;
use crate::core::orphans::Inventory;
use crate::core::ownership::ClusterIdentity;
use crate::core::policy::{ExternalPowers, Rules, TenancyPolicy};
use crate::model::crd::{REGION_PIN_ANNOTATION, ROLE_PIN_ANNOTATION, RekognitionCollection};
use crate::runtime::config::{Config, Listen};
use crate::runtime::http::Health;
use crate::runtime::leader::{Election, Fence, LeaseSettings};
use crate::runtime::mapping::MappingWatch;
use crate::runtime::memory::Memory;
use crate::runtime::metrics::Metrics;
use crate::runtime::reconcile::{Context, LiveObjects, error_policy, reconcile};
use k8s_openapi::api::core::v1::Namespace;

/// Builds the Kubernetes client from `--kubeconfig`, or the usual inference (in-cluster, then
/// `KUBECONFIG`/`~/.kube/config`).
pub async fn kube_client(config: &Config) -> anyhow::Result<kube::Client> {
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(kube_config)?)
}

/// Runs the operator until SIGTERM or SIGINT; in-flight reconciles finish first (within
/// `--shutdown-timeout`) and a held Lease is released.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = kube_client(&config).await?;
    let sdk_config = load_sdk_config(config.region.clone(), config.aws_timeout).await;
    run_operator(&config, client, sdk_config, shutdown_signal()).await
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        // Without signal handlers the process can only be killed; run until then.
        _ => std::future::pending().await,
    }
    info!("shutdown requested");
}

/// The identity of this replica in the leader election: the pod name when set, else the host
/// name; with the process id, so two processes on one host differ.
fn replica_identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .or_else(|_| std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()))
        .unwrap_or_else(|_| "rekognition-operator".into());
    format!("{host}-{}", std::process::id())
}

/// Runs everything (endpoints, leader election, controller) until `shutdown` resolves.
pub async fn run_operator(
    config: &Config,
    client: kube::Client,
    sdk_config: aws_config::SdkConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.leader_election && config.lease_renew_before >= config.lease_duration {
        anyhow::bail!("--lease-renew-before must be shorter than --lease-duration");
    }
    if config.leader_election
        && (config.lease_renew_deadline >= config.lease_duration
            || config.lease_renew_deadline <= config.lease_duration - config.lease_renew_before)
    {
        anyhow::bail!(
            "--lease-renew-deadline must be shorter than --lease-duration and longer than the renewal interval (--lease-duration minus --lease-renew-before)"
        );
    }
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let metrics = Metrics::new();
    let health = Arc::new(Health::default());
    let inventory = Arc::new(Inventory::default());
    let endpoints = match config.metrics_addr {
        Listen::On(addr) => {
            let stopped = stop.clone();
            let (bound, task) = crate::runtime::http::serve(
                addr,
                health.clone(),
                metrics.clone(),
                inventory.clone(),
                async move { stopped.cancelled().await },
            )
            .await
            .with_context(|| format!("listening on {addr}"))?;
            info!(%bound, "serving /livez, /readyz and /metrics");
            Some(task)
        }
        Listen::Off => None,
    };

    let fence = Arc::new(if config.leader_election {
        Fence::leased(config.lease_renew_deadline)
    } else {
        Fence::open()
    });
    let cluster = cluster_identity(config, &client).await?;
    info!(cluster = %cluster.name, take_over_from = ?cluster.take_over_from, "cluster identity");
    let operator = Operator::new(
        config,
        cluster,
        client.clone(),
        sdk_config,
        Shared {
            metrics: metrics.clone(),
            health: health.clone(),
            fence: fence.clone(),
            inventory,
        },
    )?;
    if config.leader_election {
        let settings = LeaseSettings {
            name: config.lease_name.clone(),
            namespace: config
                .lease_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .unwrap_or_else(|| "default".into()),
            identity: replica_identity(),
            duration: config.lease_duration,
            renew_before: config.lease_renew_before,
        };
        let mut election = Election::start(client.clone(), &settings).await?;
        let renewals = tokio::spawn(crate::runtime::leader::track_renewals(
            client,
            settings.clone(),
            fence.clone(),
        ));
        info!(lease = %settings.name, namespace = %settings.namespace, identity = %settings.identity, "standing for leader");
        // A standby is healthy and ready to take over.
        health.set_ready(true);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                acquired = election.acquired() => if !acquired { anyhow::bail!("leader election stopped") },
            }
            info!("became leader");
            metrics.set_leader(true);
            // Losing the Lease cancels in-flight reconciles at once (and the fence closes); only
            // SIGTERM while still leader lets them drain.
            let abort = CancellationToken::new();
            let lost = Election::lost(election.is_leader.clone());
            let aborted = abort.clone();
            let closing = fence.clone();
            let watcher = tokio::spawn(async move {
                lost.await;
                closing.close();
                aborted.cancel();
            });
            operator
                .run(stop.clone(), abort.clone(), config.shutdown_timeout)
                .await;
            watcher.abort();
            metrics.set_leader(false);
            if stop.is_cancelled() {
                break;
            }
            warn!("lost leadership; standing by");
        }
        health.set_shutting_down();
        renewals.abort();
        election.release().await;
    } else {
        metrics.set_leader(true);
        operator
            .run(
                stop.clone(),
                CancellationToken::new(),
                config.shutdown_timeout,
            )
            .await;
        health.set_shutting_down();
    }
    stop.cancel();
    if let Some(task) = endpoints {
        let _ = task.await;
    }
    info!("operator stopped");
    Ok(())
}

/// What the controller shares with the endpoints and the leader election.
struct Shared {
    metrics: Metrics,
    health: Arc<Health>,
    fence: Arc<Fence>,
    inventory: Arc<Inventory>,
}

/// The controller and what it shares across leadership terms.
struct Operator {
    context: Arc<Context<SdkCollectionApi>>,
    /// The orphan inventory's settings; None: off.
    inventory: Option<crate::runtime::inventory::Settings>,
    api: Api<RekognitionCollection>,
    concurrency: u16,
    health: Arc<Health>,
}

impl Operator {
    fn new(
        config: &Config,
        cluster: ClusterIdentity,
        client: kube::Client,
        sdk_config: aws_config::SdkConfig,
        shared: Shared,
    ) -> anyhow::Result<Self> {
        let Shared {
            metrics,
            health,
            fence,
            inventory,
        } = shared;
        let default_region = sdk_config
            .region()
            .map(|r| r.to_string())
            .context("no AWS region: set --region or AWS_REGION")?;
        let limiters = RateLimiters::new(RateLimit {
            start_per_sec: config.aws_rate,
            ceiling_per_sec: config.aws_rate_ceiling,
            burst: config.aws_burst,
        });
        metrics.attach_limiters(limiters.clone());
        let memory = Arc::new(Memory::new(BackoffPolicy::default()));
        metrics.attach_memory(memory.clone());
        let aws = SdkCollectionApi::new(sdk_config, limiters, Arc::new(metrics.clone()))
            .with_endpoint_url(config.aws_endpoint_url.clone());
        let reporter = Reporter {
            controller: "rekognition-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let context = Arc::new(Context {
            client: client.clone(),
            aws,
            default_region: default_region.clone(),
            reporter,
            metrics,
            resync_interval: config.resync_interval,
            tag_check_interval: config.tag_check_interval,
            memory,
            policy: tenancy_policy(config, &client),
            fence,
            accounts: account_mapping(config, &client),
            require_mapping: config.require_mapping,
            cluster: Arc::new(cluster),
            objects: LiveObjects::default(),
            inventory,
        });
        let api = match &config.namespace {
            Some(namespace) => Api::namespaced(client, namespace),
            None => Api::all(client),
        };
        info!(
            namespace = config.namespace.as_deref().unwrap_or("<all>"),
            region = %default_region,
            concurrency = config.concurrency,
            "operator configured"
        );
        let inventory =
            config
                .orphan_scan_interval
                .0
                .map(|interval| crate::runtime::inventory::Settings {
                    interval,
                    policy: config.orphan_policy,
                    grace: config.orphan_grace,
                    pace: Duration::from_secs_f64(1.0 / config.orphan_scan_rate.max(0.001)),
                    watched: config.namespace.clone(),
                });
        Ok(Self {
            context,
            inventory,
            api,
            concurrency: config.concurrency,
            health,
        })
    }

    /// Runs the controller until `stop` is cancelled, after which in-flight reconciles get `grace`
    /// to finish, or until `abort` is cancelled, which drops them at once.
    async fn run(&self, stop: CancellationToken, abort: CancellationToken, grace: Duration) {
        let stopped = stop.clone();
        // A new term starts from what the statuses say; another leader may have acted meanwhile.
        self.context.memory.retain(|_| false);
        let (store, writer) = reflector::store();
        let objects = watcher(self.api.clone(), watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(trim)
            .reflect(writer)
            .applied_objects();
        let (resyncs, due) = futures::channel::mpsc::unbounded();
        let controller = Controller::for_stream(objects, store.clone())
            .with_config(controller::Config::default().concurrency(self.concurrency))
            // Objects refused for want of a mapping are checked again when it changes; every
            // other object's gate answers without an AWS call.
            .reconcile_all_on(self.context.accounts.changes())
            .reconcile_on(due);
        self.context.metrics.attach_store(Some(store.clone()));
        self.context.objects.attach(Some(store.clone()));
        let sweep = tokio::spawn(sweep_memory(store.clone(), self.context.memory.clone()));
        let trigger = tokio::spawn(trigger_resyncs(
            store.clone(),
            self.context.memory.clone(),
            resyncs,
        ));
        // The inventory runs while this replica leads, on this term's watch cache.
        let inventory = self.inventory.clone().map(|settings| {
            tokio::spawn(crate::runtime::inventory::run(
                self.context.clone(),
                store.clone(),
                settings,
            ))
        });
        let health = self.health.clone();
        let ready = tokio::spawn(async move {
            if crate::runtime::inventory::synced(&store).await {
                health.set_ready(true);
                info!("watch cache synced; ready");
            } else {
                warn!("watch cache never synced");
            }
        });
        let controller = controller
            .graceful_shutdown_on(async move { stopped.cancelled().await })
            .run(reconcile, error_policy, self.context.clone())
            .for_each(|result| async move {
                match result {
                    // Reconcile errors are already logged by the error policy.
                    Err(controller::Error::ReconcilerFailed(..)) | Ok(_) => {}
                    // A requeue for an object deleted meanwhile: nothing to do.
                    Err(error @ controller::Error::ObjectNotFound(..)) => {
                        tracing::debug!(%error, "object gone before its reconcile")
                    }
                    Err(error) => warn!(%error, "controller error"),
                }
            });
        info!("controller started");
        tokio::pin!(controller);
        tokio::select! {
            _ = &mut controller => {}
            _ = abort.cancelled() => warn!("leadership lost: in-flight reconciles cancelled"),
            _ = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
                warn!(grace_secs = grace.as_secs(), "in-flight reconciles did not finish in time; stopping anyway");
            }
        }
        ready.abort();
        sweep.abort();
        trigger.abort();
        if let Some(inventory) = inventory {
            inventory.abort();
        }
        self.context.metrics.attach_store(None);
        self.context.objects.attach(None);
        info!("controller stopped");
    }
}

/// This installation's identity: `--cluster-name`, else the kube-system namespace's UID.
async fn cluster_identity(
    config: &Config,
    client: &kube::Client,
) -> anyhow::Result<ClusterIdentity> {
    let name = match &config.cluster_name {
        Some(name) => name.clone(),
        None => Api::<Namespace>::all(client.clone())
            .get("kube-system")
            .await
            .context("reading the kube-system namespace's UID, the default cluster name (or set --cluster-name)")?
            .metadata
            .uid
            .context("the kube-system namespace has no UID")?,
    };
    let take_over_from = config
        .take_over_from
        .iter()
        .filter(|c| **c != name)
        .cloned()
        .collect();
    Ok(ClusterIdentity {
        name,
        take_over_from,
    })
}

/// The account mapping: watched from its ConfigMap, or empty without one.
fn account_mapping(config: &Config, client: &kube::Client) -> MappingWatch {
    match &config.account_mapping {
        Some(name) => {
            let namespace = config
                .account_mapping_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .unwrap_or_else(|| "default".into());
            info!(configmap = %name, %namespace, "watching the account mapping");
            MappingWatch::watch(client.clone(), &namespace, name)
        }
        None => MappingWatch::fixed(Mapping::default()),
    }
}

/// The tenancy policy from the flags; with a namespace label rule, a watch cache of namespaces.
fn tenancy_policy(config: &Config, client: &kube::Client) -> TenancyPolicy {
    let rules = Rules {
        allowed_regions: config.allowed_regions.iter().cloned().collect(),
        require_namespace_prefix: config.require_namespace_prefix,
        prefix_exempt: config.prefix_exempt_namespaces.iter().cloned().collect(),
        external_powers: config.external_powers.clone(),
    };
    let namespaces = match rules.external_powers {
        ExternalPowers::Labelled(..) => {
            let (store, writer) = reflector::store();
            let api: Api<Namespace> = Api::all(client.clone());
            let stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .reflect(writer)
                .applied_objects();
            tokio::spawn(async move {
                stream.for_each(|_| futures::future::ready(())).await;
            });
            Some(store)
        }
        ExternalPowers::All | ExternalPowers::None => None,
    };
    TenancyPolicy { rules, namespaces }
}

/// Keeps in the watch cache only what the operator reads of an object (a projection): its
/// identity, generation, deletion, finalizers, the operator's own annotations, spec and status.
/// managedFields, the last-applied annotation, labels and every other annotation are most of a
/// real object's size and are never read.
fn trim(obj: &mut RekognitionCollection) {
    let meta = &mut obj.metadata;
    meta.managed_fields = None;
    meta.labels = None;
    meta.owner_references = None;
    meta.generate_name = None;
    meta.creation_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    // Once the status records the region, the pin annotations are not read: a map of even one
    // entry costs half a KiB per object in the cache.
    let pinned_in_status = obj.status.as_ref().is_some_and(|s| s.region.is_some());
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|key, _| {
            key.starts_with(OWN_ANNOTATIONS)
                && !(pinned_in_status
                    && (key == REGION_PIN_ANNOTATION || key == ROLE_PIN_ANNOTATION))
        });
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The prefix of the annotations the operator reads (pause, reconcile request, region pin).
const OWN_ANNOTATIONS: &str = "rekognition.aws-operators.dev/";

/// How often the per-object memory is matched against the watch cache.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// How often the per-object memory is looked through for resyncs that are due.
const RESYNC_TICK: Duration = Duration::from_millis(250);

/// Triggers every settled object's resync when it is due. The due times live in the per-object
/// memory, not as one timer per object in the controller's scheduler (a delay-queue slot and two
/// map entries, each with a copy of the object's reference: over half a KiB per object); the
/// scheduler holds only the objects waiting on something short, a backoff or a deferred resync.
async fn trigger_resyncs(
    store: reflector::Store<RekognitionCollection>,
    memory: Arc<Memory>,
    resyncs: futures::channel::mpsc::UnboundedSender<ObjectRef<RekognitionCollection>>,
) {
    let mut tick = tokio::time::interval(RESYNC_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = memory.due_resyncs(Instant::now());
        if due.is_empty() {
            continue;
        }
        for obj in store.state() {
            if obj
                .metadata
                .uid
                .as_ref()
                .is_some_and(|uid| due.contains(uid))
                && resyncs.unbounded_send(ObjectRef::from_obj(&*obj)).is_err()
            {
                return;
            }
        }
    }
}

/// Drops the memory of objects that left the watch cache, including those deleted without a
/// finalizer (the controller never hears of them).
async fn sweep_memory(store: reflector::Store<RekognitionCollection>, memory: Arc<Memory>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let live: std::collections::HashSet<String> = store
            .state()
            .iter()
            .filter_map(|obj| obj.metadata.uid.clone())
            .collect();
        memory.retain(|uid| live.contains(uid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_everything_the_operator_reads() {
        let mut obj: RekognitionCollection = serde_json::from_value(serde_json::json!({
            "apiVersion": "rekognition.aws-operators.dev/v1alpha1",
            "kind": "RekognitionCollection",
            "metadata": {
                "name": "a", "namespace": "ns", "uid": "u", "generation": 2,
                "resourceVersion": "7",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "deletionTimestamp": "2026-01-02T00:00:00Z",
                "finalizers": ["rekognition.aws-operators.dev/cleanup"],
                "labels": {"app": "photos"},
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                    "team": "vision",
                    "rekognition.aws-operators.dev/paused": "true",
                    "rekognition.aws-operators.dev/region": "eu-west-1"
                },
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "p"}],
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {"tags": {"a": "b"}},
            "status": {"region": "eu-west-1", "observedGeneration": 2}
        }))
        .expect("object");
        let before = obj.clone();
        trim(&mut obj);
        let meta = &obj.metadata;
        assert_eq!(
            (&meta.managed_fields, &meta.labels, &meta.owner_references),
            (&None, &None, &None)
        );
        assert_eq!(meta.creation_timestamp, None);
        // The status records the region: the pin annotation is not read either.
        assert_eq!(
            meta.annotations,
            Some(
                [(
                    "rekognition.aws-operators.dev/paused".to_owned(),
                    "true".to_owned()
                )]
                .into()
            )
        );
        assert!(obj.paused());
        assert_eq!(obj.recorded_pin(), before.recorded_pin());
        // Without a status that records the region, the pin annotation is what it reads.
        let mut unpinned = before.clone();
        unpinned.status = None;
        trim(&mut unpinned);
        assert_eq!(unpinned.recorded_pin(), (Some("eu-west-1"), None));
        assert_eq!((&obj.spec, &obj.status), (&before.spec, &before.status));
        let kept = |m: &kube::api::ObjectMeta| {
            (
                m.name.clone(),
                m.namespace.clone(),
                m.uid.clone(),
                m.generation,
                m.resource_version.clone(),
                m.deletion_timestamp.clone(),
                m.finalizers.clone(),
            )
        };
        assert_eq!(kept(&obj.metadata), kept(&before.metadata));
    }
}
