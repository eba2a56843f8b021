//! The chaos campaign (issue 11): every scenario in `scenarios.rs` sets up objects, injects a
//! fault (a killed, crashed or duplicated operator, lost AWS answers, throttling, a restarted API
//! server, expired watches, conflicting writers, out-of-band changes, spec churn, a restore, a
//! migration to another cluster), waits for the operator to converge and checks the invariants
//! in `invariants.rs`.
//!
//! `cargo test --test chaos` runs every scenario a few times at small scale (the CI default);
//! `cargo test --test chaos -- --runs 100` is the full campaign. Every run has its own namespace,
//! emulator and operator processes on one control plane the campaign starts for itself (API
//! server restarts and watch expiry hit every client of a control plane, so it cannot share one).
//! A migration needs a second cluster: the campaign starts a second control plane the first time
//! a run asks for one, and shares it with the later runs. Randomness comes from one seed,
//! printed at the start; a failed run prints the flags that replay it.
#![forbid(unsafe_code)]

#[path = "../support/emulator_sdk.rs"]
mod emulator_sdk;
mod invariants;
mod report;
mod run;
mod scenarios;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use testbed::{ControlPlane, ControlPlaneOptions};

use report::{Outcome, Table};
use run::{LazyControlPlane, Run};
use scenarios::Scenario;

/// The campaign's flags.
#[derive(Debug)]
struct Flags {
    runs: u32,
    seed: u64,
    scenarios: Vec<Scenario>,
    objects: usize,
    /// Print the scenarios' names and stop.
    list: bool,
}

const DEFAULT_RUNS: u32 = 2;
const DEFAULT_OBJECTS: usize = 4;

fn parse_flags(args: impl IntoIterator<Item = String>) -> Result<Flags> {
    let mut flags = Flags {
        runs: DEFAULT_RUNS,
        seed: rand::rng().random(),
        scenarios: Vec::new(),
        objects: DEFAULT_OBJECTS,
        list: false,
    };
    // Positional arguments are `cargo test <filter>`'s name filters: scenarios whose names
    // contain one run; with filters that match none, the campaign runs nothing, as libtest does.
    let mut filters: Vec<String> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if !arg.starts_with('-') {
            filters.push(arg);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .with_context(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--runs" => flags.runs = value()?.parse().context("--runs")?,
            "--seed" => flags.seed = value()?.parse().context("--seed")?,
            "--objects" => flags.objects = value()?.parse().context("--objects")?,
            "--scenario" => flags.scenarios.push(Scenario::named(&value()?)?),
            "--list" => flags.list = true,
            // What `cargo test` passes to every test binary; the campaign has no use for them.
            "--nocapture" | "--quiet" | "-q" | "--show-output" | "--exact" => {}
            "--test-threads" | "--format" | "--color" | "--skip" => {
                value()?;
            }
            // The campaign has no ignored tests.
            "--ignored" => filters.push(String::new()),
            other => bail!(
                "unknown flag {other}; flags: --runs N --seed S --scenario NAME (repeatable) \
                 --objects K --list"
            ),
        }
    }
    if flags.scenarios.is_empty() {
        flags.scenarios = Scenario::ALL.to_vec();
    }
    if !filters.is_empty() {
        flags.scenarios.retain(|s| {
            filters
                .iter()
                .any(|f| !f.is_empty() && s.name().contains(f.as_str()))
        });
    }
    if flags.runs == 0 || flags.objects == 0 {
        bail!("--runs and --objects must be at least 1");
    }
    Ok(flags)
}

fn main() -> ExitCode {
    let flags = match parse_flags(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(error) => {
            eprintln!("chaos: {error:#}");
            return ExitCode::from(2);
        }
    };
    if flags.scenarios.is_empty() {
        println!("chaos: no scenario matches the filter");
        return ExitCode::SUCCESS;
    }
    if flags.list {
        for scenario in Scenario::ALL {
            println!("{}", scenario.name());
        }
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chaos: starting the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(campaign(&flags)) {
        Ok(table) if table.failed() == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("chaos: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn campaign(flags: &Flags) -> Result<Table> {
    println!(
        "chaos campaign: seed {} · {} run(s) of {} scenario(s) · {} object(s) a run",
        flags.seed,
        flags.runs,
        flags.scenarios.len(),
        flags.objects
    );
    let control_plane = ControlPlane::start(ControlPlaneOptions::default())
        .await
        .context("starting the campaign's control plane")?;
    let second_plane = LazyControlPlane::new();
    let mut table = Table::default();
    // One stream of run seeds: a run is replayed by its own seed with `--runs 1`.
    let mut seeds = StdRng::seed_from_u64(flags.seed);
    for scenario in &flags.scenarios {
        for _ in 0..flags.runs {
            let seed = if flags.runs == 1 && flags.scenarios.len() == 1 {
                flags.seed
            } else {
                seeds.random()
            };
            let outcome = one_run(
                &control_plane,
                &second_plane,
                *scenario,
                seed,
                flags.objects,
            )
            .await;
            if !outcome.violations.is_empty() {
                println!(
                    "FAILED {} (replay: cargo test --test chaos -- --seed {seed} --scenario {} --runs 1 --objects {}):",
                    scenario.name(),
                    scenario.name(),
                    flags.objects
                );
                for violation in &outcome.violations {
                    println!("  {violation}");
                }
            } else {
                println!(
                    "ok     {} seed {seed} converged in {:.1}s",
                    scenario.name(),
                    outcome.converged_in.as_secs_f64()
                );
            }
            table.record(*scenario, outcome);
        }
    }
    control_plane.stop().await;
    if let Some(plane) = second_plane.into_inner() {
        plane.stop().await;
    }
    print!("{table}");
    println!("{} passed, {} failed", table.passed(), table.failed());
    Ok(table)
}

/// Deadline for a run to converge once its faults have stopped.
const CONVERGE: Duration = Duration::from_secs(60);

async fn one_run(
    control_plane: &ControlPlane,
    second_plane: &LazyControlPlane,
    scenario: Scenario,
    seed: u64,
    objects: usize,
) -> Outcome {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut run = match Run::start(control_plane, second_plane, scenario.name(), objects).await {
        Ok(run) => run,
        Err(error) => return Outcome::error(format!("setting up: {error:#}")),
    };
    let outcome = match scenario.play(&mut run, &mut rng).await {
        Ok(()) => run.converge(CONVERGE).await,
        Err(error) => Outcome::error(format!("playing the scenario: {error:#}")),
    };
    if !outcome.violations.is_empty() {
        println!("{}", run.diagnostics(&outcome.violations).await);
    }
    outcome
}
