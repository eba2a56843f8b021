//! What a run found, and the campaign's table.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::scenarios::Scenario;

/// The result of one run: how long it took to converge, and every invariant it broke.
#[derive(Debug)]
pub struct Outcome {
    pub converged_in: Duration,
    pub violations: Vec<String>,
}

impl Outcome {
    /// A run that could not be played at all counts as a failed one.
    pub fn error(message: String) -> Self {
        Self {
            converged_in: Duration::ZERO,
            violations: vec![message],
        }
    }
}

#[derive(Default)]
struct Row {
    runs: u32,
    failed: u32,
    converged: Vec<Duration>,
}

/// Runs per scenario, in the order the scenarios ran.
#[derive(Default)]
pub struct Table {
    rows: BTreeMap<usize, (Scenario, Row)>,
}

impl Table {
    pub fn record(&mut self, scenario: Scenario, outcome: Outcome) {
        let (_, row) = self
            .rows
            .entry(scenario.index())
            .or_insert_with(|| (scenario, Row::default()));
        row.runs += 1;
        if outcome.violations.is_empty() {
            row.converged.push(outcome.converged_in);
        } else {
            row.failed += 1;
        }
    }

    pub fn passed(&self) -> u32 {
        self.rows.values().map(|(_, r)| r.runs - r.failed).sum()
    }

    pub fn failed(&self) -> u32 {
        self.rows.values().map(|(_, r)| r.failed).sum()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\n| scenario | runs | invariant failures | median s to converge | worst s to converge |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|")?;
        for (scenario, row) in self.rows.values() {
            let mut times = row.converged.clone();
            times.sort();
            let seconds = |d: Option<Duration>| {
                d.map_or_else(|| "-".to_owned(), |d| format!("{:.1}", d.as_secs_f64()))
            };
            let median = match times.len() {
                0 => None,
                n if n % 2 == 1 => Some(times[n / 2]),
                n => Some((times[n / 2 - 1] + times[n / 2]) / 2),
            };
            writeln!(
                f,
                "| {} | {} | {} | {} | {} |",
                scenario.name(),
                row.runs,
                row.failed,
                seconds(median),
                seconds(times.last().copied()),
            )?;
        }
        Ok(())
    }
}
