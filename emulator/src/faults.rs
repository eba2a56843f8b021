//! Fault injection: errors at a rate, added latency, and "fail the next N calls".

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::protocol::{ErrorKind, Operation};

/// A standing fault (`PUT /admin/faults`): each matching call fails with `probability` and is
/// delayed by `latency_ms`. One rule per operation plus one for all operations; a rule for a
/// specific operation takes precedence over the one for all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// `None` (JSON `null`): every operation.
    #[serde(default)]
    pub operation: Option<Operation>,
    /// The error to answer; `InternalServerError` when absent.
    #[serde(default)]
    pub error: Option<ErrorKind>,
    /// Chance of failing each call, 0.0–1.0.
    #[serde(default)]
    pub probability: f64,
    /// Delay added to every matching call, failed or not.
    #[serde(default)]
    pub latency_ms: u64,
}

/// Fail the next `count` matching calls (`POST /admin/faults/next`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NextFailure {
    #[serde(default)]
    pub operation: Option<Operation>,
    pub error: ErrorKind,
    pub count: u32,
}

/// What is injected right now (`GET /admin/faults`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultsView {
    pub rules: Vec<FaultRule>,
    pub next: Vec<NextFailure>,
}

/// What to do to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultDecision {
    pub latency: Duration,
    pub error: Option<ErrorKind>,
}

/// All injected faults.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: BTreeMap<Option<Operation>, FaultRule>,
    next: Vec<NextFailure>,
}

impl Faults {
    /// Installs or replaces the rule for `rule.operation`; a rule that does nothing removes it.
    pub fn set_rule(&mut self, rule: FaultRule) -> Result<(), String> {
        if !(0.0..=1.0).contains(&rule.probability) {
            return Err(format!(
                "probability {} is not between 0.0 and 1.0",
                rule.probability
            ));
        }
        if rule.probability == 0.0 && rule.latency_ms == 0 {
            self.rules.remove(&rule.operation);
        } else {
            self.rules.insert(rule.operation, rule);
        }
        Ok(())
    }

    /// Queues `count` failures; queued failures are used up in the order they were queued.
    pub fn push_next(&mut self, next: NextFailure) {
        if next.count > 0 {
            self.next.push(next);
        }
    }

    pub fn clear(&mut self) {
        self.rules.clear();
        self.next.clear();
    }

    /// Decides the fate of one call to `op`, using up a queued failure if one matches.
    pub fn decide(&mut self, op: Operation, rng: &mut impl Rng) -> FaultDecision {
        let rule = self.rules.get(&Some(op)).or_else(|| self.rules.get(&None));
        let latency = Duration::from_millis(rule.map_or(0, |r| r.latency_ms));

        if let Some(index) = self
            .next
            .iter()
            .position(|n| n.operation.is_none_or(|o| o == op))
        {
            let error = self.next[index].error;
            self.next[index].count -= 1;
            if self.next[index].count == 0 {
                self.next.remove(index);
            }
            return FaultDecision {
                latency,
                error: Some(error),
            };
        }

        let error = rule
            .filter(|r| r.probability > 0.0 && rng.random::<f64>() < r.probability)
            .map(|r| r.error.unwrap_or(ErrorKind::InternalServerError));
        FaultDecision { latency, error }
    }

    pub fn view(&self) -> FaultsView {
        FaultsView {
            rules: self.rules.values().cloned().collect(),
            next: self.next.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn rule(operation: Option<Operation>, probability: f64, latency_ms: u64) -> FaultRule {
        FaultRule {
            operation,
            error: None,
            probability,
            latency_ms,
        }
    }

    #[test]
    fn nothing_is_injected_by_default() {
        let mut faults = Faults::default();
        assert_eq!(
            faults.decide(Operation::CreateCollection, &mut rng()),
            FaultDecision::default()
        );
    }

    #[test]
    fn probability_one_fails_every_call_with_internal_server_error() {
        let mut faults = Faults::default();
        faults.set_rule(rule(None, 1.0, 0)).unwrap();
        for _ in 0..100 {
            let decision = faults.decide(Operation::ListCollections, &mut rng());
            assert_eq!(decision.error, Some(ErrorKind::InternalServerError));
        }
    }

    #[test]
    fn probability_half_fails_about_half_the_calls() {
        let mut faults = Faults::default();
        faults.set_rule(rule(None, 0.5, 0)).unwrap();
        let mut rng = rng();
        let failed = (0..2000)
            .filter(|_| {
                faults
                    .decide(Operation::DescribeCollection, &mut rng)
                    .error
                    .is_some()
            })
            .count();
        assert!((800..1200).contains(&failed), "{failed}");
    }

    #[test]
    fn an_operation_rule_takes_precedence_over_the_rule_for_all() {
        let mut faults = Faults::default();
        faults.set_rule(rule(None, 1.0, 0)).unwrap();
        faults
            .set_rule(rule(Some(Operation::DescribeCollection), 0.0, 50))
            .unwrap();
        let decision = faults.decide(Operation::DescribeCollection, &mut rng());
        assert_eq!(
            decision,
            FaultDecision {
                latency: Duration::from_millis(50),
                error: None
            }
        );
        assert!(
            faults
                .decide(Operation::CreateCollection, &mut rng())
                .error
                .is_some()
        );
    }

    #[test]
    fn next_failures_are_used_up() {
        let mut faults = Faults::default();
        faults.push_next(NextFailure {
            operation: Some(Operation::CreateCollection),
            error: ErrorKind::Throttling,
            count: 2,
        });
        let mut rng = rng();
        assert_eq!(
            faults.decide(Operation::DeleteCollection, &mut rng).error,
            None
        );
        assert_eq!(
            faults.decide(Operation::CreateCollection, &mut rng).error,
            Some(ErrorKind::Throttling)
        );
        assert_eq!(
            faults.decide(Operation::CreateCollection, &mut rng).error,
            Some(ErrorKind::Throttling)
        );
        assert_eq!(
            faults.decide(Operation::CreateCollection, &mut rng).error,
            None
        );
        assert!(faults.view().next.is_empty());
    }

    #[test]
    fn probabilities_outside_zero_to_one_are_refused() {
        let mut faults = Faults::default();
        assert!(faults.set_rule(rule(None, 1.5, 0)).is_err());
        assert!(faults.set_rule(rule(None, -0.1, 0)).is_err());
    }

    #[test]
    fn a_rule_that_does_nothing_removes_the_rule() {
        let mut faults = Faults::default();
        faults.set_rule(rule(None, 1.0, 0)).unwrap();
        faults.set_rule(rule(None, 0.0, 0)).unwrap();
        assert!(faults.view().rules.is_empty());
    }
}
