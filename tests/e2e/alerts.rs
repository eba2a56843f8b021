//! The chart's alerts on the test bed: a real Prometheus (tools/prometheus) scrapes the real
//! operator process every second and evaluates the rules as the chart renders them, with short
//! thresholds; each fault is injected until its alert fires (seen through Prometheus' own API),
//! then removed until the alert is silent. Prints how long each took. Then every query of the
//! chart's Grafana dashboard runs over what that fleet went through.

use crate::support;

use std::time::Duration;

use anyhow::{Context as _, Result};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use rekognition_emulator::protocol::{ErrorKind, Operation};
use rekognition_operator::model::crd::{CLAIM_TAG, CollectionSpec, OWNER_TAG};
use support::World;
use support::prometheus::{Prometheus, rules_yaml};

/// The job and namespace the chart's default selector expects of the operator's series.
const JOB: &str = "rekognition-operator-metrics";
const LEASE: &str = "alerts-test";
/// How long a fault may take to fire its alert, or to go silent once removed.
const DEADLINE: Duration = Duration::from_secs(90);

/// The thresholds the test renders the rules with: every `for` 2s, rates over 15s.
fn test_rules() -> Result<String> {
    let mut args = Vec::new();
    for (key, value) in [
        ("stalledFor", "2s"),
        ("notSyncedFor", "2s"),
        ("orphanedFor", "2s"),
        ("downFor", "2s"),
        ("noLeaderFor", "2s"),
        ("credentialsFor", "2s"),
        ("throttledFor", "2s"),
        ("limiterWaitFor", "2s"),
        ("resyncBacklogFor", "2s"),
        ("reconcileErrorsFor", "2s"),
        ("window", "15s"),
        ("limiterWaitSeconds", "0.3"),
        ("resyncBacklogSeconds", "1"),
    ] {
        // Numbers as JSON: --set would make a string of 0.3.
        let numeric = value.parse::<f64>().is_ok();
        args.push(if numeric { "--set-json" } else { "--set" }.to_owned());
        args.push(format!("metrics.prometheusRule.thresholds.{key}={value}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    rules_yaml(&args)
}

/// What the test saw of one alert.
struct Seen {
    alert: &'static str,
    fault: &'static str,
    fired_after: Duration,
    silent_after: Duration,
}

struct Bed {
    world: World,
    dir: tempfile::TempDir,
    metrics_addr: String,
    prometheus: Prometheus,
    seen: Vec<Seen>,
}

impl Bed {
    /// An operator process on the fixed metrics address Prometheus scrapes, with leader election
    /// on the test's Lease; with `broken_credentials`, IRSA set up wrong and no other credentials.
    async fn operator(&self, broken_credentials: bool) -> Result<testbed::OperatorProcess> {
        let mut options = self.world.operator_process_options(self.dir.path()).await?;
        // A ceiling of 1 call/s instead of the usual one, so a burst waits for the limiter. The
        // ceiling itself too: from a start of 1/s alone the limiter doubles every eighth of a second
        // while callers wait, and on a quiet machine it reached 100/s before a resync backlog
        // could build.
        if let Some(at) = options.args.iter().position(|a| a == "--aws-rate") {
            options.args.drain(at..at + 2);
        }
        options.args.extend(
            [
                "--metrics-addr",
                &self.metrics_addr,
                "--aws-rate",
                "1",
                "--aws-rate-ceiling",
                "1",
                "--resync-interval",
                "1s",
                "--orphan-scan-interval",
                "2s",
                "--orphan-scan-rate",
                "50",
                "--leader-election",
                "--lease-namespace",
                &self.world.ns.name,
                "--lease-name",
                LEASE,
                "--lease-duration",
                "6s",
                "--lease-renew-before",
                "2s",
                "--lease-renew-deadline",
                "5s",
            ]
            .map(String::from),
        );
        if broken_credentials {
            // IRSA set up wrong: the token file is missing, and nothing else gives credentials.
            options
                .env
                .retain(|(name, _)| name != "AWS_ACCESS_KEY_ID" && name != "AWS_SECRET_ACCESS_KEY");
            let missing = self.dir.path().join("missing-token");
            options.env.extend([
                (
                    "AWS_WEB_IDENTITY_TOKEN_FILE".to_owned(),
                    missing.display().to_string(),
                ),
                (
                    "AWS_ROLE_ARN".to_owned(),
                    "arn:aws:iam::123456789012:role/rekognition-operator".to_owned(),
                ),
                (
                    "AWS_CONFIG_FILE".to_owned(),
                    self.dir.path().join("no-config").display().to_string(),
                ),
                (
                    "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
                    self.dir.path().join("no-credentials").display().to_string(),
                ),
                ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
            ]);
        }
        let mut process = testbed::OperatorProcess::spawn(&options)?;
        process.wait_ready(support::WAIT).await?;
        Ok(process)
    }

    /// Injects a fault with `inject`, waits for each of `alerts` to fire, removes the fault with
    /// `remove`, waits for them to go silent.
    async fn fire_and_clear(
        &mut self,
        alerts: &[&'static str],
        fault: &'static str,
        inject: impl AsyncFnOnce(&Self) -> Result<()>,
        remove: impl AsyncFnOnce(&Self) -> Result<()>,
    ) -> Result<()> {
        // Each alert is silent before its fault, so what fires it is the fault.
        for alert in alerts {
            self.prometheus.wait_silent(alert, DEADLINE).await?;
        }
        let started = std::time::Instant::now();
        inject(self).await?;
        let mut fired = Vec::new();
        for alert in alerts {
            let (firing, _) = match self.prometheus.wait_firing(alert, DEADLINE).await {
                Ok(firing) => firing,
                Err(error) => {
                    let series = self
                        .prometheus
                        .query(r#"{__name__=~"rekognition_operator_(resync_backlog_seconds|resyncs_deferred_total|aws_rate_limit|unsynced_collections|leader)"}"#)
                        .await
                        .unwrap_or_default();
                    return Err(error.context(format!("the operator's series: {series:?}")));
                }
            };
            let after = started.elapsed();
            eprintln!(
                "{alert} firing after {after:?}: {}",
                firing["annotations"]["summary"]
            );
            fired.push(after);
        }
        let cleared = std::time::Instant::now();
        remove(self).await?;
        for (alert, fired_after) in alerts.iter().zip(fired) {
            self.prometheus.wait_silent(alert, DEADLINE).await?;
            self.seen.push(Seen {
                alert,
                fault,
                fired_after,
                silent_after: cleared.elapsed(),
            });
        }
        Ok(())
    }
}

#[tokio::test]
async fn every_alert_fires_on_its_fault_and_goes_silent_when_it_is_gone() -> Result<()> {
    let test_started = chrono::Utc::now();
    let world = World::without_operator("alerts", support::Options::default()).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let prometheus =
        Prometheus::start(JOB, std::slice::from_ref(&metrics_addr), &test_rules()?).await?;
    let mut bed = Bed {
        world,
        dir: tempfile::tempdir()?,
        metrics_addr,
        prometheus,
        seen: Vec::new(),
    };
    let mut operator = bed.operator(false).await?;
    bed.world
        .create("steady", CollectionSpec::default())
        .await?;
    bed.world.wait_reason("steady", "Available").await?;
    bed.prometheus.wait_scraping(JOB, 1).await?;

    // A burst beyond the operator's rate ceiling (--aws-rate 1): calls wait for the limiter, and
    // resyncs (every second) fall behind.
    let burst: Vec<String> = (0..20).map(|i| format!("burst-{i:02}")).collect();
    let gone = burst.clone();
    bed.fire_and_clear(
        &[
            "RekognitionOperatorRateLimited",
            "RekognitionOperatorResyncsBehind",
        ],
        "20 new objects, resynced every second, under a low rate ceiling (--aws-rate 1)",
        async |bed: &Bed| {
            for name in &burst {
                bed.world.create(name, CollectionSpec::default()).await?;
            }
            Ok(())
        },
        async |bed: &Bed| {
            for name in &gone {
                bed.world.delete(name).await?;
            }
            for name in &gone {
                bed.world.wait_gone(name).await?;
            }
            Ok(())
        },
    )
    .await?;

    // A collection another party made, under an object's ID.
    bed.fire_and_clear(
        &["RekognitionCollectionsStalled"],
        "an object whose collection ID a foreign collection holds (AlreadyExists)",
        async |bed: &Bed| {
            let sdk = bed.world.rekognition().await;
            sdk.create_collection()
                .collection_id("foreign")
                .send()
                .await?;
            bed.world
                .create("foreign", CollectionSpec::default())
                .await?;
            bed.world.wait_reason("foreign", "AlreadyExists").await?;
            Ok(())
        },
        async |bed: &Bed| {
            bed.world.delete("foreign").await?;
            bed.world.wait_gone("foreign").await
        },
    )
    .await?;

    // A collection that claims this cluster for an object that is gone.
    bed.fire_and_clear(
        &["RekognitionCollectionsOrphaned"],
        "a collection claimed by an object that no longer exists",
        async |bed: &Bed| {
            let cluster = support::default_cluster_name(&bed.world.ns.client).await?;
            let claim =
                rekognition_operator::core::ownership::claim(&cluster, &bed.world.ns.name, "lost");
            let sdk = bed.world.rekognition().await;
            sdk.create_collection()
                .collection_id("lost")
                .tags(OWNER_TAG, "a-uid-that-is-gone")
                .tags(CLAIM_TAG, claim)
                .send()
                .await?;
            Ok(())
        },
        async |bed: &Bed| {
            let sdk = bed.world.rekognition().await;
            sdk.delete_collection().collection_id("lost").send().await?;
            Ok(())
        },
    )
    .await?;

    // A throttling storm while objects are created: throttled calls, failing reconciles, and
    // objects that keep failing.
    bed.fire_and_clear(
        &[
            "RekognitionOperatorThrottled",
            "RekognitionOperatorReconcileErrors",
            "RekognitionCollectionsNotSynced",
        ],
        "every CreateCollection throttled while 2 objects are created",
        async |bed: &Bed| {
            bed.world
                .fail_calls(Operation::CreateCollection, ErrorKind::Throttling, 1.0)
                .await?;
            for name in ["storm-a", "storm-b"] {
                bed.world.create(name, CollectionSpec::default()).await?;
            }
            Ok(())
        },
        async |bed: &Bed| {
            bed.world.admin().clear_faults().await?;
            for name in ["storm-a", "storm-b"] {
                bed.world.wait_reason(name, "Available").await?;
            }
            Ok(())
        },
    )
    .await?;

    // The operator killed.
    let started = std::time::Instant::now();
    operator.kill().await?;
    let (firing, _) = bed
        .prometheus
        .wait_firing("RekognitionOperatorDown", DEADLINE)
        .await?;
    let fired_after = started.elapsed();
    eprintln!(
        "RekognitionOperatorDown firing after {fired_after:?}: {}",
        firing["annotations"]["summary"]
    );
    let cleared = std::time::Instant::now();
    operator = bed.operator(false).await?;
    bed.prometheus
        .wait_silent("RekognitionOperatorDown", DEADLINE)
        .await?;
    bed.seen.push(Seen {
        alert: "RekognitionOperatorDown",
        fault: "the operator process killed (kill -9)",
        fired_after,
        silent_after: cleared.elapsed(),
    });

    // Another installation takes the Lease over (for an hour): the operator stands by.
    bed.fire_and_clear(
        &["RekognitionOperatorNoLeader"],
        "another holder takes the operator's Lease",
        async |bed: &Bed| {
            let leases: Api<Lease> =
                Api::namespaced(bed.world.ns.client.clone(), &bed.world.ns.name);
            let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                k8s_openapi::jiff::Timestamp::now(),
            );
            let taken = serde_json::json!({"spec": {
                "holderIdentity": "another-installation",
                "leaseDurationSeconds": 3600,
                "acquireTime": now,
                "renewTime": now,
            }});
            leases
                .patch(LEASE, &PatchParams::default(), &Patch::Merge(&taken))
                .await?;
            Ok(())
        },
        async |bed: &Bed| {
            // The other installation goes away, and its hold runs out.
            let leases: Api<Lease> =
                Api::namespaced(bed.world.ns.client.clone(), &bed.world.ns.name);
            let long_ago = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                k8s_openapi::jiff::Timestamp::now()
                    - k8s_openapi::jiff::SignedDuration::from_hours(2),
            );
            let expired = serde_json::json!({"spec": {
                "leaseDurationSeconds": 1,
                "renewTime": long_ago,
            }});
            leases
                .patch(LEASE, &PatchParams::default(), &Patch::Merge(&expired))
                .await?;
            Ok(())
        },
    )
    .await?;

    // IRSA broken: the operator restarted without credentials.
    operator.kill().await?;
    let started = std::time::Instant::now();
    let mut broken = bed.operator(true).await?;
    bed.world
        .create("no-creds", CollectionSpec::default())
        .await?;
    bed.world
        .wait_reason("no-creds", "CredentialsUnavailable")
        .await?;
    let (firing, _) = bed
        .prometheus
        .wait_firing("RekognitionOperatorCredentialsFailing", DEADLINE)
        .await?;
    let fired_after = started.elapsed();
    eprintln!(
        "RekognitionOperatorCredentialsFailing firing after {fired_after:?}: {}",
        firing["annotations"]["summary"]
    );
    let cleared = std::time::Instant::now();
    broken.kill().await?;
    let _healthy = bed.operator(false).await?;
    bed.world.wait_reason("no-creds", "Available").await?;
    bed.prometheus
        .wait_silent("RekognitionOperatorCredentialsFailing", DEADLINE)
        .await?;
    bed.seen.push(Seen {
        alert: "RekognitionOperatorCredentialsFailing",
        fault: "the operator restarted with IRSA broken (no web identity token)",
        fired_after,
        silent_after: cleared.elapsed(),
    });

    print_table(&bed.seen);
    assert_eq!(bed.seen.len(), 10, "every alert was seen");

    // The dashboard, over what this fleet went through: every panel's queries are valid PromQL
    // (Prometheus parses them) and return series.
    let panels = dashboard_queries()?;
    eprintln!("| panel | query | series |\n|---|---|---|");
    for (title, expr) in &panels {
        let promql = expr.replace("$job", JOB).replace("$__rate_interval", "15s");
        let series = bed.prometheus.query_range(&promql, test_started).await?;
        eprintln!("| {title} | `{expr}` | {} |", series.len());
        assert!(
            !series.is_empty(),
            "panel {title}: {promql} returned no series"
        );
    }
    assert!(panels.len() >= 12, "{panels:?}");
    Ok(())
}

/// Every panel's title and query in the dashboard ConfigMap the chart renders.
fn dashboard_queries() -> Result<Vec<(String, String)>> {
    let rendered =
        support::helm::Rendered::new(&["--set", "metrics.grafanaDashboard.enabled=true"])?;
    let configmap = rendered
        .all::<serde_yaml::Value>("ConfigMap")?
        .into_iter()
        .find(|c| {
            c["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-dashboard"))
        })
        .context("the dashboard ConfigMap")?;
    let json = configmap["data"]["rekognition-operator.json"]
        .as_str()
        .context("the dashboard JSON")?;
    let dashboard: serde_json::Value = serde_json::from_str(json)?;
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push((
                panel["title"].as_str().unwrap_or_default().to_owned(),
                target["expr"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    Ok(queries)
}

fn print_table(seen: &[Seen]) {
    eprintln!("| alert | fault | fired after | silent after |\n|---|---|---|---|");
    for s in seen {
        eprintln!(
            "| {} | {} | {:.1} s | {:.1} s |",
            s.alert,
            s.fault,
            s.fired_after.as_secs_f64(),
            s.silent_after.as_secs_f64()
        );
    }
}
