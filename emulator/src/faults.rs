//! Fault injection: errors at a rate, added latency, "fail the next N calls", and lost
//! responses: calls that are carried out and whose answer then never reaches the client (the
//! ambiguous failures of real networks, where "did my create happen?" has no answer).

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

/// How the answer to a call that was carried out is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LostResponse {
    /// The connection is reset once the work is done: the client sees an I/O error and no
    /// answer at all.
    Reset,
    /// The answer is held for `holdMs` before it is sent, by when a client with a shorter
    /// timeout has given up.
    Held,
}

impl LostResponse {
    /// The name used in JSON and in the lost-response counters.
    pub fn name(self) -> &'static str {
        match self {
            LostResponse::Reset => "reset",
            LostResponse::Held => "held",
        }
    }
}

/// How long a held answer waits when a rule names no `holdMs`: longer than any sensible
/// client timeout, yet short enough that a client without one still gets its answer.
pub const DEFAULT_HOLD_MS: u64 = 30_000;

fn default_hold_ms() -> u64 {
    DEFAULT_HOLD_MS
}

/// A standing lost-response fault (`PUT /admin/faults/lost-responses`): each matching call
/// that the error rules let through is carried out, and then, with `probability`, its answer
/// is lost as `mode` says. One rule per operation plus one for all, as for [`FaultRule`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LostResponseRule {
    /// `None` (JSON `null`): every operation.
    #[serde(default)]
    pub operation: Option<Operation>,
    pub mode: LostResponse,
    /// Chance of losing each answer, 0.0–1.0; 0 removes the rule.
    pub probability: f64,
    /// For `held`: how long the answer is held.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
}

/// Lose the answers of the next `count` matching calls (`POST /admin/faults/lost-responses/next`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NextLostResponse {
    #[serde(default)]
    pub operation: Option<Operation>,
    pub mode: LostResponse,
    pub count: u32,
    /// For `held`: how long each answer is held.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
}

/// What is injected right now (`GET /admin/faults`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultsView {
    pub rules: Vec<FaultRule>,
    pub next: Vec<NextFailure>,
    #[serde(default)]
    pub lost_responses: Vec<LostResponseRule>,
    #[serde(default)]
    pub next_lost_responses: Vec<NextLostResponse>,
}

/// How the answer of one call is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Reset the connection instead of answering.
    Reset,
    /// Answer only after this long.
    Hold(Duration),
}

impl Loss {
    fn of(mode: LostResponse, hold_ms: u64) -> Self {
        match mode {
            LostResponse::Reset => Loss::Reset,
            LostResponse::Held => Loss::Hold(Duration::from_millis(hold_ms)),
        }
    }

    pub fn mode(self) -> LostResponse {
        match self {
            Loss::Reset => LostResponse::Reset,
            Loss::Hold(_) => LostResponse::Held,
        }
    }
}

/// What to do to one call: delay it, fail it without carrying it out (`error`), or carry it
/// out and lose its answer (`lost`). Never both `error` and `lost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultDecision {
    pub latency: Duration,
    pub error: Option<ErrorKind>,
    pub lost: Option<Loss>,
}

/// All injected faults.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: BTreeMap<Option<Operation>, FaultRule>,
    next: Vec<NextFailure>,
    lost_rules: BTreeMap<Option<Operation>, LostResponseRule>,
    lost_next: Vec<NextLostResponse>,
}

fn check_probability(probability: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&probability) {
        Ok(())
    } else {
        Err(format!(
            "probability {probability} is not between 0.0 and 1.0"
        ))
    }
}

impl Faults {
    /// Installs or replaces the rule for `rule.operation`; a rule that does nothing removes it.
    pub fn set_rule(&mut self, rule: FaultRule) -> Result<(), String> {
        check_probability(rule.probability)?;
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

    /// Installs or replaces the lost-response rule for `rule.operation`; probability 0 removes it.
    pub fn set_lost_response(&mut self, rule: LostResponseRule) -> Result<(), String> {
        check_probability(rule.probability)?;
        if rule.probability == 0.0 {
            self.lost_rules.remove(&rule.operation);
        } else {
            self.lost_rules.insert(rule.operation, rule);
        }
        Ok(())
    }

    /// Queues `count` lost answers, used up in the order they were queued.
    pub fn push_next_lost(&mut self, next: NextLostResponse) {
        if next.count > 0 {
            self.lost_next.push(next);
        }
    }

    pub fn clear(&mut self) {
        *self = Faults::default();
    }

    /// Decides the fate of one call to `op`, using up a queued fault if one matches. Errors are
    /// decided first: a call that fails is not carried out, so it has no answer to lose.
    pub fn decide(&mut self, op: Operation, rng: &mut impl Rng) -> FaultDecision {
        let rule = self.rules.get(&Some(op)).or_else(|| self.rules.get(&None));
        let latency = Duration::from_millis(rule.map_or(0, |r| r.latency_ms));
        let matches = |operation: Option<Operation>| operation.is_none_or(|o| o == op);

        if let Some(index) = self.next.iter().position(|n| matches(n.operation)) {
            let error = self.next[index].error;
            self.next[index].count -= 1;
            if self.next[index].count == 0 {
                self.next.remove(index);
            }
            return FaultDecision {
                latency,
                error: Some(error),
                lost: None,
            };
        }
        let error = rule
            .filter(|r| r.probability > 0.0 && rng.random::<f64>() < r.probability)
            .map(|r| r.error.unwrap_or(ErrorKind::InternalServerError));
        if error.is_some() {
            return FaultDecision {
                latency,
                error,
                lost: None,
            };
        }

        let lost = if let Some(index) = self.lost_next.iter().position(|n| matches(n.operation)) {
            let next = &mut self.lost_next[index];
            let loss = Loss::of(next.mode, next.hold_ms);
            next.count -= 1;
            if next.count == 0 {
                self.lost_next.remove(index);
            }
            Some(loss)
        } else {
            self.lost_rules
                .get(&Some(op))
                .or_else(|| self.lost_rules.get(&None))
                .filter(|r| rng.random::<f64>() < r.probability)
                .map(|r| Loss::of(r.mode, r.hold_ms))
        };
        FaultDecision {
            latency,
            error: None,
            lost,
        }
    }

    pub fn view(&self) -> FaultsView {
        FaultsView {
            rules: self.rules.values().cloned().collect(),
            next: self.next.clone(),
            lost_responses: self.lost_rules.values().cloned().collect(),
            next_lost_responses: self.lost_next.clone(),
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
                error: None,
                lost: None,
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

    fn lost(
        operation: Option<Operation>,
        mode: LostResponse,
        probability: f64,
    ) -> LostResponseRule {
        LostResponseRule {
            operation,
            mode,
            probability,
            hold_ms: 250,
        }
    }

    #[test]
    fn a_lost_response_rule_loses_answers_of_its_operation_only() {
        let mut faults = Faults::default();
        faults
            .set_lost_response(lost(
                Some(Operation::CreateCollection),
                LostResponse::Reset,
                1.0,
            ))
            .unwrap();
        let mut rng = rng();
        assert_eq!(
            faults.decide(Operation::CreateCollection, &mut rng).lost,
            Some(Loss::Reset)
        );
        assert_eq!(
            faults.decide(Operation::DescribeCollection, &mut rng).lost,
            None
        );
    }

    #[test]
    fn a_held_answer_is_held_for_the_rules_duration() {
        let mut faults = Faults::default();
        faults
            .set_lost_response(lost(None, LostResponse::Held, 1.0))
            .unwrap();
        assert_eq!(
            faults.decide(Operation::TagResource, &mut rng()).lost,
            Some(Loss::Hold(Duration::from_millis(250)))
        );
    }

    #[test]
    fn a_call_that_fails_has_no_answer_to_lose() {
        let mut faults = Faults::default();
        faults.set_rule(rule(None, 1.0, 0)).unwrap();
        faults
            .set_lost_response(lost(None, LostResponse::Reset, 1.0))
            .unwrap();
        let decision = faults.decide(Operation::CreateCollection, &mut rng());
        assert!(decision.error.is_some());
        assert_eq!(decision.lost, None);
    }

    #[test]
    fn next_lost_responses_are_used_up() {
        let mut faults = Faults::default();
        faults.push_next_lost(NextLostResponse {
            operation: Some(Operation::DeleteCollection),
            mode: LostResponse::Held,
            count: 1,
            hold_ms: 10,
        });
        let mut rng = rng();
        assert_eq!(
            faults.decide(Operation::CreateCollection, &mut rng).lost,
            None
        );
        assert_eq!(
            faults.decide(Operation::DeleteCollection, &mut rng).lost,
            Some(Loss::Hold(Duration::from_millis(10)))
        );
        assert_eq!(
            faults.decide(Operation::DeleteCollection, &mut rng).lost,
            None
        );
        assert!(faults.view().next_lost_responses.is_empty());
    }

    #[test]
    fn clearing_removes_lost_response_faults_too() {
        let mut faults = Faults::default();
        faults
            .set_lost_response(lost(None, LostResponse::Reset, 0.5))
            .unwrap();
        assert!(
            faults
                .set_lost_response(lost(None, LostResponse::Reset, 2.0))
                .is_err()
        );
        faults.clear();
        assert_eq!(faults.view(), FaultsView::default());
    }
}
