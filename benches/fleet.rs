//! Fleet benchmark: the release operator binary against the real control plane and the emulator.
//! Measures time until N new objects are Ready, AWS calls per object, and the operator's memory
//! (peak and steady RSS). Run with `cargo bench --bench fleet` (N defaults to 500; set
//! FLEET_OBJECTS to change it). Not part of the test command: figures, not assertions.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use rekognition_operator::crd::{CollectionSpec, RekognitionCollection};
use testbed::{BackgroundEmulator, ControlPlane, ControlPlaneOptions};

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let objects: usize = std::env::var("FLEET_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
    let mut config = testbed::with_generated_credentials(Default::default());
    config.quota.rate_per_sec = 0.0;
    let emulator = BackgroundEmulator::start(config)?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, plane.kubeconfig_yaml()?)?;

    let mut command = Command::new(env!("CARGO_BIN_EXE_rekognition-operator"));
    command
        .args([
            "--metrics-addr",
            "off",
            "--aws-rate",
            "0",
            "--log-level",
            "warn",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (key, value) in emulator.env() {
        command.env(key, value);
    }
    let mut operator = command.spawn().context("starting the operator")?;
    let pid = operator.id();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_kib(pid, "VmRSS:");

    let client = plane.client().await?;
    let api: Api<RekognitionCollection> = Api::namespaced(client, "default");
    let started = Instant::now();
    for i in 0..objects {
        let object = RekognitionCollection {
            metadata: ObjectMeta {
                name: Some(format!("bench-{i:05}")),
                ..ObjectMeta::default()
            },
            spec: CollectionSpec::default(),
            status: None,
        };
        api.create(&PostParams::default(), &object).await?;
    }
    let created = started.elapsed();
    loop {
        let ready = api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|o| o.ready_condition().is_some_and(|c| c.status == "True"))
            .count();
        if ready == objects {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            anyhow::bail!("only {ready}/{objects} Ready after 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let all_ready = started.elapsed();
    let peak = rss_kib(pid, "VmHWM:");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let steady = rss_kib(pid, "VmRSS:");
    let counters = emulator.admin()?.counters().await?;
    let calls: u64 = counters.0.values().flat_map(|o| o.values()).sum();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = operator.wait();

    println!("fleet benchmark: {objects} objects, emulator quotas off, operator limiter off");
    println!(
        "  objects created in        {:>8.1} s",
        created.as_secs_f64()
    );
    println!(
        "  all Ready after           {:>8.1} s ({:.0} objects/s)",
        all_ready.as_secs_f64(),
        objects as f64 / all_ready.as_secs_f64()
    );
    println!(
        "  AWS calls                 {calls:>8} ({:.2} per object)",
        calls as f64 / objects as f64
    );
    println!(
        "  operator RSS idle         {:>8.1} MiB",
        idle_rss as f64 / 1024.0
    );
    println!(
        "  operator RSS peak         {:>8.1} MiB",
        peak as f64 / 1024.0
    );
    println!(
        "  operator RSS with {objects} objects {:>6.1} MiB",
        steady as f64 / 1024.0
    );
    Ok(())
}
