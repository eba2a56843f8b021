//! Prometheus metrics. Every label is from a small closed set: no object names, no error text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::ReadyReason;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// The operator's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    reconciles: Family<ResultLabel, Counter>,
    reconcile_duration: Histogram,
    aws_calls: Family<CallLabels, Counter>,
    throttles: Family<OperationLabel, Counter>,
    limiter_wait: Histogram,
    objects_by_reason: Family<ReasonLabel, Gauge>,
    leader: Gauge,
    // Last reason per object (namespace/name), so the per-reason gauge can be kept exact.
    reasons: Mutex<HashMap<String, ReadyReason>>,
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
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            reconcile_duration.clone(),
        );
        let aws_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "aws_calls",
            "AWS calls by operation and outcome",
            aws_calls.clone(),
        );
        let throttles = Family::<OperationLabel, Counter>::default();
        registry.register(
            "aws_throttles",
            "AWS calls answered with throttling",
            throttles.clone(),
        );
        let limiter_wait = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "rate_limiter_wait_seconds",
            "Time AWS calls waited for the client-side rate limiter",
            limiter_wait.clone(),
        );
        let objects_by_reason = Family::<ReasonLabel, Gauge>::default();
        registry.register(
            "collections",
            "RekognitionCollection objects by Ready reason",
            objects_by_reason.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica is the leader",
            leader.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                reconciles,
                reconcile_duration,
                aws_calls,
                throttles,
                limiter_wait,
                objects_by_reason,
                leader,
                reasons: Mutex::default(),
            }),
        }
    }

    pub fn observe_reconcile(&self, result: &'static str, elapsed: Duration) {
        self.inner
            .reconciles
            .get_or_create(&ResultLabel { result })
            .inc();
        self.inner.reconcile_duration.observe(elapsed.as_secs_f64());
    }

    pub fn count_aws_call(&self, operation: &'static str, outcome: &'static str) {
        self.inner
            .aws_calls
            .get_or_create(&CallLabels { operation, outcome })
            .inc();
    }

    pub fn count_throttle(&self, operation: &'static str) {
        self.inner
            .throttles
            .get_or_create(&OperationLabel { operation })
            .inc();
    }

    pub fn observe_limiter_wait(&self, waited: Duration) {
        self.inner.limiter_wait.observe(waited.as_secs_f64());
    }

    /// Records an object's current Ready reason (`None` once the object is gone).
    pub fn set_reason(&self, object: &str, reason: Option<ReadyReason>) {
        let mut reasons = self.inner.reasons.lock().unwrap_or_else(|p| p.into_inner());
        let previous = match reason {
            Some(reason) => reasons.insert(object.to_owned(), reason),
            None => reasons.remove(object),
        };
        if previous == reason {
            return;
        }
        if let Some(previous) = previous {
            self.inner
                .objects_by_reason
                .get_or_create(&ReasonLabel {
                    reason: previous.as_str(),
                })
                .dec();
        }
        if let Some(reason) = reason {
            self.inner
                .objects_by_reason
                .get_or_create(&ReasonLabel {
                    reason: reason.as_str(),
                })
                .inc();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_gauge_follows_each_object_once() {
        let metrics = Metrics::new();
        metrics.set_reason("ns/a", Some(ReadyReason::Creating));
        metrics.set_reason("ns/a", Some(ReadyReason::Available));
        metrics.set_reason("ns/b", Some(ReadyReason::Available));
        metrics.set_reason("ns/b", Some(ReadyReason::Available));
        let text = metrics.encode();
        assert!(
            text.contains(r#"rekognition_operator_collections{reason="Available"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"rekognition_operator_collections{reason="Creating"} 0"#),
            "{text}"
        );
        metrics.set_reason("ns/a", None);
        assert!(
            metrics
                .encode()
                .contains(r#"rekognition_operator_collections{reason="Available"} 1"#)
        );
    }

    #[test]
    fn aws_calls_are_labelled_by_operation_and_outcome() {
        let metrics = Metrics::new();
        metrics.count_aws_call("CreateCollection", "ok");
        metrics.count_aws_call("CreateCollection", "throttled");
        metrics.count_aws_call("CreateCollection", "ok");
        let text = metrics.encode();
        assert!(text.contains(
            r#"rekognition_operator_aws_calls_total{operation="CreateCollection",outcome="ok"} 2"#
        ), "{text}");
    }
}
