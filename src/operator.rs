//! Wires the pieces together and runs the controller until shutdown.

use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use tracing::{info, warn};

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::aws::{SdkCollectionApi, load_sdk_config};
use crate::backoff::{BackoffPolicy, Backoffs};
use crate::config::{Config, Listen};
use crate::crd::RekognitionCollection;
use crate::http::Health;
use crate::leader::{Election, LeaseSettings};
use crate::metrics::Metrics;
use crate::rate::{RateLimit, RateLimiters};
use crate::reconcile::{Context, error_policy, reconcile};

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
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let metrics = Metrics::new();
    let health = Arc::new(Health::default());
    let endpoints = match config.metrics_addr {
        Listen::On(addr) => {
            let stopped = stop.clone();
            let (bound, task) =
                crate::http::serve(addr, health.clone(), metrics.clone(), async move {
                    stopped.cancelled().await
                })
                .await
                .with_context(|| format!("listening on {addr}"))?;
            info!(%bound, "serving /livez, /readyz and /metrics");
            Some(task)
        }
        Listen::Off => None,
    };

    let operator = Operator::new(
        config,
        client.clone(),
        sdk_config,
        metrics.clone(),
        health.clone(),
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
        let mut election = Election::start(client, &settings).await?;
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
            let term = stop.child_token();
            let lost = Election::lost(election.is_leader.clone());
            let ended = term.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = lost => ended.cancel(),
                    _ = ended.cancelled() => {}
                }
            });
            operator.run(term.clone(), config.shutdown_timeout).await;
            term.cancel();
            metrics.set_leader(false);
            if stop.is_cancelled() {
                break;
            }
            warn!("lost leadership; standing by");
        }
        health.set_shutting_down();
        election.release().await;
    } else {
        metrics.set_leader(true);
        operator.run(stop.clone(), config.shutdown_timeout).await;
        health.set_shutting_down();
    }
    stop.cancel();
    if let Some(task) = endpoints {
        let _ = task.await;
    }
    info!("operator stopped");
    Ok(())
}

/// The controller and what it shares across leadership terms.
struct Operator {
    context: Arc<Context<SdkCollectionApi>>,
    api: Api<RekognitionCollection>,
    concurrency: u16,
    health: Arc<Health>,
}

impl Operator {
    fn new(
        config: &Config,
        client: kube::Client,
        sdk_config: aws_config::SdkConfig,
        metrics: Metrics,
        health: Arc<Health>,
    ) -> anyhow::Result<Self> {
        let default_region = sdk_config
            .region()
            .map(|r| r.to_string())
            .context("no AWS region: set --region or AWS_REGION")?;
        let limiters = RateLimiters::new(RateLimit {
            rate_per_sec: config.aws_rate,
            burst: config.aws_burst,
        });
        let aws = SdkCollectionApi::new(sdk_config, limiters, metrics.clone())
            .with_endpoint_url(config.aws_endpoint_url.clone());
        let reporter = Reporter {
            controller: "rekognition-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let context = Arc::new(Context {
            client: client.clone(),
            aws,
            default_region: default_region.clone(),
            recorder: Recorder::new(client.clone(), reporter),
            metrics,
            backoffs: Backoffs::new(BackoffPolicy::default()),
            resync_interval: config.resync_interval,
            settled: Default::default(),
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
        Ok(Self {
            context,
            api,
            concurrency: config.concurrency,
            health,
        })
    }

    /// Runs the controller until `stop` is cancelled; then in-flight reconciles get `grace` to
    /// finish.
    async fn run(&self, stop: CancellationToken, grace: Duration) {
        let stopped = stop.clone();
        let controller =
            Controller::new(self.api.clone(), watcher::Config::default().any_semantic())
                .with_config(controller::Config::default().concurrency(self.concurrency));
        let store = controller.store();
        let health = self.health.clone();
        let ready = tokio::spawn(async move {
            // The store's readiness future wakes only its latest poller, and the controller polls
            // it too, so poll again on a short timer instead of waiting for a wake-up.
            loop {
                match tokio::time::timeout(Duration::from_millis(50), store.wait_until_ready())
                    .await
                {
                    Ok(Ok(())) => {
                        health.set_ready(true);
                        info!("watch cache synced; ready");
                        return;
                    }
                    Ok(Err(error)) => return warn!(%error, "watch cache never synced"),
                    Err(_) => {}
                }
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
            _ = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
                warn!(grace_secs = grace.as_secs(), "in-flight reconciles did not finish in time; stopping anyway");
            }
        }
        ready.abort();
        info!("controller stopped");
    }
}
