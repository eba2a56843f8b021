//! Leader election with two real operator processes on the test bed.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use rekognition_operator::crd::CollectionSpec;
use support::{Options, World};

const LEASE_DURATION: Duration = Duration::from_secs(6);

struct Replica {
    name: &'static str,
    child: Child,
    metrics: String,
}

impl Replica {
    fn start(
        world: &World,
        name: &'static str,
        kubeconfig: &std::path::Path,
        logs: &std::path::Path,
    ) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_rekognition-operator"));
        command
            .args(["--namespace", &world.ns.name])
            .args(["--leader-election", "--lease-namespace", &world.ns.name])
            .args(["--lease-duration", "6s", "--lease-renew-before", "2s"])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(["--log-format", "json", "--aws-rate", "50"])
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", name)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (key, value) in world.emulator.env() {
            command.env(key, value);
        }
        Ok(Self {
            name,
            child: command.spawn()?,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
        })
    }

    fn identity(&self) -> String {
        format!("{}-{}", self.name, self.child.id())
    }

    async fn metric(&self, name: &str) -> Result<f64> {
        let text = reqwest::get(&self.metrics).await?.text().await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill {signal} {} failed", self.child.id());
        }
        Ok(())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases
        .get_opt("rekognition-operator")
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

async fn wait_holder(
    leases: &Api<Lease>,
    wanted: impl Fn(&Option<String>) -> bool,
    deadline: Duration,
) -> Result<Option<String>> {
    let start = Instant::now();
    loop {
        let current = holder(leases).await?;
        if wanted(&current) {
            return Ok(current);
        }
        if start.elapsed() > deadline {
            bail!("lease holder is {current:?} after {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_replica_leads_another_takes_over_and_sigterm_releases_the_lease() -> Result<()> {
    let world = World::without_operator("leader", Options::default()).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        testbed::shared().await?.control_plane.kubeconfig_yaml()?,
    )?;
    let leases: Api<Lease> = Api::namespaced(world.ns.client.clone(), &world.ns.name);

    let a = Replica::start(&world, "replica-a", &kubeconfig, dir.path())?;
    let b = Replica::start(&world, "replica-b", &kubeconfig, dir.path())?;
    let first = wait_holder(&leases, |h| h.is_some(), Duration::from_secs(30))
        .await?
        .context("holder")?;
    let (leader, standby) = if first == a.identity() {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(first, leader.identity());

    // Only the leader reconciles and writes.
    world.create("first", CollectionSpec::default()).await?;
    world.wait_reason("first", "Available").await?;
    // A new object is Ready after its one CreateCollection; the describe comes later.
    assert!(
        leader
            .metric("rekognition_operator_aws_calls_total")
            .await?
            >= 1.0
    );
    assert_eq!(
        standby
            .metric("rekognition_operator_aws_calls_total")
            .await?,
        0.0
    );
    assert_eq!(leader.metric("rekognition_operator_leader").await?, 1.0);
    assert_eq!(standby.metric("rekognition_operator_leader").await?, 0.0);

    // kill -9 the leader: the standby takes over and finishes pending work within the lease
    // duration plus 5 s.
    leader.signal("-KILL")?;
    let killed = Instant::now();
    world.create("second", CollectionSpec::default()).await?;
    world
        .wait_reason_within(
            "second",
            "Available",
            LEASE_DURATION + Duration::from_secs(5),
        )
        .await?;
    let failover = killed.elapsed();
    println!(
        "failover: pending object Ready {:.1}s after kill -9 of the leader",
        failover.as_secs_f64()
    );
    assert_eq!(holder(&leases).await?, Some(standby.identity()));
    drop(leader);

    // SIGTERM: the new leader releases the lease at once rather than letting it expire.
    let mut survivor = standby;
    survivor.signal("-TERM")?;
    let termed = Instant::now();
    let released = wait_holder(&leases, |h| h.is_none(), LEASE_DURATION / 2).await;
    let exit = tokio::task::spawn_blocking(move || {
        let status = survivor.child.wait();
        (survivor, status)
    })
    .await?;
    println!(
        "SIGTERM: lease released after {:.1}s",
        termed.elapsed().as_secs_f64()
    );
    released?;
    assert!(exit.1?.success(), "graceful exit on SIGTERM");
    Ok(())
}
