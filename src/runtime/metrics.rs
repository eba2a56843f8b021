//! Prometheus metrics. Every label is from a small closed set (operation, outcome, result, reason,
//! region, and account, which the platform team's account mapping bounds): no object names, no
//! error text. Per-object gauges are computed at scrape time.

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::adapters::aws::CallCounter;
use crate::adapters::rate::RateLimiters;
use crate::core::status;
use crate::model::crd::{ReadyReason, RekognitionCollection};
use crate::runtime::memory::Memory;
use crate::sync::lock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    account: String,
    region: String,
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrphanLabels {
    account: String,
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RateLabels {
    account: String,
    region: String,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    /// Not `namespace`, which Prometheus gives the operator's own pod.
    object_namespace: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    condition: &'static str,
    reason: &'static str,
}

/// Every metric family the operator exports, as the exposition's `# TYPE` lines name them. A
/// family appears there only once it has a sample; tests read absent families as 0 only when they
/// are listed here, so a misspelt or renamed metric fails instead of reading 0.
pub const FAMILIES: [&str; 14] = [
    "rekognition_operator_reconciles",
    "rekognition_operator_triggers",
    "rekognition_operator_reconcile_duration_seconds",
    "rekognition_operator_aws_calls",
    "rekognition_operator_aws_throttles",
    "rekognition_operator_rate_limiter_wait_seconds",
    "rekognition_operator_resyncs_deferred",
    "rekognition_operator_leader",
    "rekognition_operator_orphaned_collections",
    "rekognition_operator_collections",
    "rekognition_operator_unsynced_collections",
    "rekognition_operator_aws_rate_limit",
    "rekognition_operator_resync_backlog_seconds",
    "rekognition_operator_object_memory_entries",
];

/// The operator's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    reconciles: Family<ResultLabel, Counter>,
    triggers: Family<DecisionLabel, Counter>,
    reconcile_duration: Histogram,
    aws_calls: Family<CallLabels, Counter>,
    throttles: Family<RateLabels, Counter>,
    limiter_wait: WaitFamily,
    deferred: Family<OperationLabel, Counter>,
    leader: Gauge,
    orphans: Family<OrphanLabels, Gauge>,
    census: Arc<Mutex<Sources>>,
}

/// Where the gauges computed at scrape time read from; empty until the operator attaches them
/// (a standby replica has no watch cache and reports no objects).
#[derive(Default)]
struct Sources {
    store: Option<Store<RekognitionCollection>>,
    limiters: Option<RateLimiters>,
    memory: Option<Arc<Memory>>,
}

/// Gauges computed on each scrape from the watch cache, the limiters and the per-object memory,
/// so nothing has to be kept in step by hand and a deleted object leaves nothing behind.
#[derive(Clone)]
struct Census(Arc<Mutex<Sources>>);

impl std::fmt::Debug for Census {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Census")
    }
}

impl Collector for Census {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sources = lock(&self.0);
        if let Some(store) = &sources.store {
            let objects = Family::<ConditionLabels, Gauge>::default();
            for condition in [status::READY, status::SYNCED] {
                for reason in ReadyReason::ALL {
                    // Every reason is shown, zero included, so series do not come and go.
                    let _ = objects.get_or_create(&ConditionLabels {
                        condition,
                        reason: reason.as_str(),
                    });
                }
            }
            // The objects not in sync, by namespace: only where there are some, so the series are
            // bounded by the namespaces with trouble, and an alert can say where to look.
            let unsynced = Family::<NamespaceLabels, Gauge>::default();
            for obj in store.state() {
                if let Some(synced) = obj.synced_condition().filter(|c| c.status != "True") {
                    let reason =
                        ReadyReason::parse(&synced.reason).map_or("None", ReadyReason::as_str);
                    let object_namespace = obj.metadata.namespace.clone().unwrap_or_default();
                    unsynced
                        .get_or_create(&NamespaceLabels {
                            object_namespace,
                            reason,
                        })
                        .inc();
                }
                for condition in [status::READY, status::SYNCED] {
                    let reason = obj
                        .status
                        .as_ref()
                        .and_then(|s| s.condition(condition))
                        .and_then(|c| ReadyReason::parse(&c.reason))
                        .map_or("None", ReadyReason::as_str);
                    objects
                        .get_or_create(&ConditionLabels { condition, reason })
                        .inc();
                }
            }
            objects.encode(encoder.encode_descriptor(
                "collections",
                "RekognitionCollection objects in the watch cache by condition (Ready, Synced) and reason",
                None,
                objects.metric_type(),
            )?)?;
            unsynced.encode(encoder.encode_descriptor(
                "unsynced_collections",
                "RekognitionCollection objects whose Synced condition is not True, by namespace and Synced's reason (only where there are some)",
                None,
                unsynced.metric_type(),
            )?)?;
        }
        if let Some(limiters) = &sources.limiters {
            let rates = Family::<RateLabels, Gauge<f64, AtomicU64>>::default();
            let backlog = Family::<RateLabels, Gauge<f64, AtomicU64>>::default();
            let now = std::time::Instant::now();
            for (account, region, operation, limiter) in limiters.all() {
                let labels = RateLabels {
                    account,
                    region,
                    operation,
                };
                rates
                    .get_or_create(&labels)
                    .set(limiter.current_rate_at(now));
                backlog
                    .get_or_create(&labels)
                    .set(limiter.background_backlog(now).as_secs_f64());
            }
            rates.encode(encoder.encode_descriptor(
                "aws_rate_limit",
                "Current client-side rate limit in calls per second, by account, region and operation",
                None,
                rates.metric_type(),
            )?)?;
            backlog.encode(encoder.encode_descriptor(
                "resync_backlog_seconds",
                "How far ahead the slots of deferred background calls (resyncs) reach: how late resyncs run",
                None,
                backlog.metric_type(),
            )?)?;
        }
        if let Some(memory) = &sources.memory {
            let entries = Gauge::<i64, AtomicI64>::default();
            entries.set(i64::try_from(memory.len()).unwrap_or(i64::MAX));
            entries.encode(encoder.encode_descriptor(
                "object_memory_entries",
                "Objects the operator keeps per-object memory for (next resync, backoff, release)",
                None,
                entries.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rekognition_operator");
        let reconciles = Family::<ResultLabel, Counter>::default();
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        let triggers = Family::<DecisionLabel, Counter>::default();
        registry.register(
            "triggers",
            "Triggers (watch events, requeues, due resyncs) by what the gate decided: run a reconcile, or hold it (backoff, resync, await_change)",
            triggers.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            reconcile_duration.clone(),
        );
        let aws_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "aws_calls",
            "AWS calls by account, region, operation and outcome",
            aws_calls.clone(),
        );
        let throttles = Family::<RateLabels, Counter>::default();
        registry.register(
            "aws_throttles",
            "AWS calls answered with throttling, by account, region and operation",
            throttles.clone(),
        );
        let limiter_wait = Family::<OperationLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.001, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register(
            "rate_limiter_wait_seconds",
            "Time AWS calls waited for the client-side rate limiter, by operation",
            limiter_wait.clone(),
        );
        let deferred = Family::<OperationLabel, Counter>::default();
        registry.register(
            "resyncs_deferred",
            "Background calls (resyncs) put off because the operation's budget had no token to spare",
            deferred.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica is the leader",
            leader.clone(),
        );
        let orphans = Family::<OrphanLabels, Gauge>::default();
        registry.register(
            "orphaned_collections",
            "Collections that claim this cluster for an object that no longer exists, by account and region (last inventory)",
            orphans.clone(),
        );
        let census = Arc::new(Mutex::new(Sources::default()));
        registry.register_collector(Box::new(Census(census.clone())));
        Self {
            inner: Arc::new(Inner {
                registry,
                reconciles,
                triggers,
                reconcile_duration,
                aws_calls,
                throttles,
                limiter_wait,
                deferred,
                leader,
                orphans,
                census,
            }),
        }
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        lock(&self.inner.census)
    }

    /// Counts objects by reason from this watch cache at each scrape; `None` while standing by.
    pub fn attach_store(&self, store: Option<Store<RekognitionCollection>>) {
        self.sources().store = store;
    }

    pub fn attach_limiters(&self, limiters: RateLimiters) {
        self.sources().limiters = Some(limiters);
    }

    pub fn attach_memory(&self, memory: Arc<Memory>) {
        self.sources().memory = Some(memory);
    }

    /// One trigger, by what the gate decided of it.
    pub fn count_trigger(&self, decision: &'static str) {
        self.inner
            .triggers
            .get_or_create(&DecisionLabel { decision })
            .inc();
    }

    pub fn observe_reconcile(&self, result: &'static str, elapsed: Duration) {
        self.inner
            .reconciles
            .get_or_create(&ResultLabel { result })
            .inc();
        self.inner.reconcile_duration.observe(elapsed.as_secs_f64());
    }

    /// The orphan inventory's counts per scanned (account, region), 0 where it found none; the
    /// pairs are bounded by the accounts and regions in use.
    pub fn set_orphans(&self, counts: &std::collections::BTreeMap<(String, String), i64>) {
        for ((account, region), count) in counts {
            self.inner
                .orphans
                .get_or_create(&OrphanLabels {
                    account: account.clone(),
                    region: region.clone(),
                })
                .set(*count);
        }
    }

    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.set(i64::from(leader));
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry);
        text
    }
}

impl CallCounter for Metrics {
    /// One AWS call in `account` (its ID, or the operator's own identity's label) and `region`.
    fn count_aws_call(
        &self,
        account: &str,
        region: &str,
        operation: &'static str,
        outcome: &'static str,
    ) {
        let labels = CallLabels {
            account: account.to_owned(),
            region: region.to_owned(),
            operation,
            outcome,
        };
        self.inner.aws_calls.get_or_create(&labels).inc();
    }

    fn count_throttle(&self, account: &str, region: &str, operation: &'static str) {
        let labels = RateLabels {
            account: account.to_owned(),
            region: region.to_owned(),
            operation,
        };
        self.inner.throttles.get_or_create(&labels).inc();
    }

    fn count_deferred(&self, operation: &'static str) {
        self.inner
            .deferred
            .get_or_create(&OperationLabel { operation })
            .inc();
    }

    fn observe_limiter_wait(&self, operation: &'static str, waited: Duration) {
        self.inner
            .limiter_wait
            .get_or_create(&OperationLabel { operation })
            .observe(waited.as_secs_f64());
    }
}

type WaitFamily = Family<OperationLabel, Histogram, fn() -> Histogram>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_calls_are_labelled_by_account_region_operation_and_outcome() {
        let metrics = Metrics::new();
        metrics.count_aws_call("own", "us-east-1", "CreateCollection", "ok");
        metrics.count_aws_call("own", "us-east-1", "CreateCollection", "throttled");
        metrics.count_aws_call("own", "us-east-1", "CreateCollection", "ok");
        metrics.count_aws_call("111122223333", "eu-west-1", "CreateCollection", "ok");
        metrics.count_throttle("own", "us-east-1", "CreateCollection");
        let text = metrics.encode();
        assert!(text.contains(
            r#"rekognition_operator_aws_calls_total{account="own",region="us-east-1",operation="CreateCollection",outcome="ok"} 2"#
        ), "{text}");
        assert!(text.contains(
            r#"rekognition_operator_aws_throttles_total{account="own",region="us-east-1",operation="CreateCollection"} 1"#
        ), "{text}");
    }

    #[test]
    fn families_lists_every_family_the_exposition_declares() {
        let metrics = Metrics::new();
        let (store, _writer) = kube::runtime::reflector::store::<RekognitionCollection>();
        metrics.attach_store(Some(store));
        let limiters = RateLimiters::new(crate::adapters::rate::RateLimit::off());
        limiters.get("own", "us-east-1", "CreateCollection");
        metrics.attach_limiters(limiters);
        metrics.attach_memory(Arc::new(Memory::new(
            crate::core::backoff::BackoffPolicy::default(),
        )));
        metrics.observe_reconcile("ok", Duration::from_millis(3));
        metrics.count_trigger("run");
        metrics.count_aws_call("own", "us-east-1", "CreateCollection", "ok");
        metrics.count_throttle("own", "us-east-1", "CreateCollection");
        metrics.count_deferred("DescribeCollection");
        metrics.observe_limiter_wait("CreateCollection", Duration::from_millis(1));
        metrics.set_orphans(&[(("own".to_string(), "us-east-1".to_string()), 1)].into());
        metrics.set_leader(true);
        let text = metrics.encode();
        let mut declared: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.split_whitespace().next())
            .collect();
        declared.sort_unstable();
        let mut listed = FAMILIES.to_vec();
        listed.sort_unstable();
        assert_eq!(declared, listed, "{text}");
    }
}
