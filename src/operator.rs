//! Wires the pieces together and runs the controller until shutdown.

use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use tracing::{info, warn};

use crate::aws::{SdkCollectionApi, load_sdk_config};
use crate::backoff::{BackoffPolicy, Backoffs};
use crate::config::Config;
use crate::crd::RekognitionCollection;
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

/// Runs the operator until SIGTERM or SIGINT; in-flight reconciles finish first.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = kube_client(&config).await?;
    let sdk_config = load_sdk_config(
        config.region.clone(),
        config.aws_endpoint_url.clone(),
        config.aws_timeout,
    )
    .await;
    run_controller(&config, client, sdk_config, shutdown_signal()).await
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

/// Runs the controller with the given clients until `shutdown` resolves. In-flight reconciles
/// finish first.
pub async fn run_controller(
    config: &Config,
    client: kube::Client,
    sdk_config: aws_config::SdkConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let default_region = sdk_config
        .region()
        .map(|r| r.to_string())
        .context("no AWS region: set --region or AWS_REGION")?;
    let metrics = Metrics::new();
    let limiters = RateLimiters::new(RateLimit {
        rate_per_sec: config.aws_rate,
        burst: config.aws_burst,
    });
    let aws = SdkCollectionApi::new(sdk_config, limiters, metrics.clone());
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

    let api: Api<RekognitionCollection> = match &config.namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::all(client),
    };
    info!(
        namespace = config.namespace.as_deref().unwrap_or("<all>"),
        region = %default_region,
        concurrency = config.concurrency,
        "starting controller"
    );
    Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                // Reconcile errors are already logged by the error policy.
                if !matches!(error, controller::Error::ReconcilerFailed(..)) {
                    warn!(%error, "controller error");
                }
            }
        })
        .await;
    info!("controller stopped");
    Ok(())
}
