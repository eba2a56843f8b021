//! Call counters and the bounded call log that tests read to prove what a client did.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::faults::LostResponse;

/// The outcome label of a successful call.
pub const OK: &str = "Ok";
/// The operation label of a call whose `X-Amz-Target` named no implemented operation.
pub const UNKNOWN_OPERATION: &str = "Unknown";

/// One AWS call as the admin API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// Operation name, or `Unknown`.
    pub operation: String,
    /// From `CollectionId` or the collection ARN in `ResourceArn`; `null` if neither.
    pub collection_id: Option<String>,
    /// `Ok` or the error's `__type`.
    pub outcome: String,
    pub at: DateTime<Utc>,
    pub request_id: String,
    /// Set when the call was carried out (its `outcome` is what the client would have read) but
    /// its answer was lost by an injected fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_response: Option<LostResponse>,
}

/// Calls per operation and outcome: `{"CreateCollection": {"Ok": 3, "ThrottlingException": 1}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counters(pub BTreeMap<String, BTreeMap<String, u64>>);

impl Counters {
    /// Calls of `operation` that ended in `outcome`.
    pub fn get(&self, operation: &str, outcome: &str) -> u64 {
        self.0
            .get(operation)
            .and_then(|o| o.get(outcome))
            .copied()
            .unwrap_or(0)
    }

    /// Calls of `operation`, whatever their outcome.
    pub fn total(&self, operation: &str) -> u64 {
        self.0.get(operation).map_or(0, |o| o.values().sum())
    }

    /// All calls.
    pub fn grand_total(&self) -> u64 {
        self.0.values().flat_map(|o| o.values()).sum()
    }
}

/// Counters plus the most recent calls.
#[derive(Debug, Clone)]
pub struct Ledger {
    counters: Counters,
    // Calls whose answer was lost, per operation and way of losing it (`reset`, `held`); they
    // are counted in `counters` under their outcome as well.
    lost_responses: Counters,
    calls: VecDeque<CallRecord>,
    capacity: usize,
}

impl Ledger {
    pub fn new(capacity: usize) -> Self {
        Ledger {
            counters: Counters::default(),
            lost_responses: Counters::default(),
            calls: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn record(&mut self, call: CallRecord) {
        *self
            .counters
            .0
            .entry(call.operation.clone())
            .or_default()
            .entry(call.outcome.clone())
            .or_default() += 1;
        if let Some(lost) = call.lost_response {
            *self
                .lost_responses
                .0
                .entry(call.operation.clone())
                .or_default()
                .entry(lost.name().to_owned())
                .or_default() += 1;
        }
        if self.calls.len() == self.capacity {
            self.calls.pop_front();
        }
        self.calls.push_back(call);
    }

    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// Calls whose answer was lost: `{"CreateCollection": {"reset": 1}}`.
    pub fn lost_responses(&self) -> Counters {
        self.lost_responses.clone()
    }

    /// Logged calls, oldest first, optionally only those about one collection.
    pub fn calls(&self, collection_id: Option<&str>) -> Vec<CallRecord> {
        self.calls
            .iter()
            .filter(|c| collection_id.is_none_or(|id| c.collection_id.as_deref() == Some(id)))
            .cloned()
            .collect()
    }

    pub fn clear(&mut self) {
        self.counters = Counters::default();
        self.lost_responses = Counters::default();
        self.calls.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(operation: &str, collection_id: Option<&str>, outcome: &str) -> CallRecord {
        CallRecord {
            operation: operation.to_owned(),
            collection_id: collection_id.map(str::to_owned),
            outcome: outcome.to_owned(),
            at: Utc::now(),
            request_id: "r".to_owned(),
            lost_response: None,
        }
    }

    #[test]
    fn counts_calls_per_operation_and_outcome() {
        let mut ledger = Ledger::new(10);
        ledger.record(call("CreateCollection", Some("a"), OK));
        ledger.record(call("CreateCollection", Some("a"), "ThrottlingException"));
        ledger.record(call("CreateCollection", Some("b"), OK));
        let counters = ledger.counters();
        assert_eq!(counters.get("CreateCollection", OK), 2);
        assert_eq!(counters.get("CreateCollection", "ThrottlingException"), 1);
        assert_eq!(counters.total("CreateCollection"), 3);
        assert_eq!(counters.get("DeleteCollection", OK), 0);
    }

    #[test]
    fn the_call_log_keeps_only_the_most_recent_calls_but_counters_keep_all() {
        let mut ledger = Ledger::new(2);
        for id in ["a", "b", "c"] {
            ledger.record(call("DescribeCollection", Some(id), OK));
        }
        let ids: Vec<_> = ledger
            .calls(None)
            .into_iter()
            .filter_map(|c| c.collection_id)
            .collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(ledger.counters().total("DescribeCollection"), 3);
    }

    #[test]
    fn the_call_log_filters_by_collection() {
        let mut ledger = Ledger::new(10);
        ledger.record(call("DescribeCollection", Some("a"), OK));
        ledger.record(call("ListCollections", None, OK));
        ledger.record(call("DeleteCollection", Some("a"), OK));
        assert_eq!(ledger.calls(Some("a")).len(), 2);
        assert_eq!(ledger.calls(Some("zzz")).len(), 0);
        assert_eq!(ledger.calls(None).len(), 3);
    }

    #[test]
    fn a_call_whose_answer_was_lost_counts_under_its_outcome_and_as_lost() {
        let mut ledger = Ledger::new(10);
        ledger.record(CallRecord {
            lost_response: Some(LostResponse::Reset),
            ..call("CreateCollection", Some("a"), OK)
        });
        ledger.record(call("CreateCollection", Some("b"), OK));
        assert_eq!(ledger.counters().get("CreateCollection", OK), 2);
        assert_eq!(ledger.lost_responses().get("CreateCollection", "reset"), 1);
        assert_eq!(ledger.lost_responses().grand_total(), 1);
        ledger.clear();
        assert_eq!(ledger.lost_responses().grand_total(), 0);
    }
}
