//! Leader election with two real operator processes on the test bed.

use crate::support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use rekognition_operator::model::crd::CollectionSpec;
use rekognition_operator::runtime::leader::{self, Election, LeaseSettings};
use support::{Options, WAIT, World};
use testbed::{OperatorOptions, OperatorProcess};

const LEASE_DURATION: Duration = Duration::from_secs(6);

/// One operator replica: a process of its own, named like the pod it stands for.
struct Replica {
    name: &'static str,
    process: OperatorProcess,
}

impl Replica {
    fn start(
        world: &World,
        options: &OperatorOptions,
        name: &'static str,
        extra: &[&str],
    ) -> Result<Self> {
        let mut options = options
            .clone()
            .args(["--leader-election", "--lease-namespace", &world.ns.name])
            .args(["--lease-duration", "6s", "--lease-renew-before", "2s"])
            .args(["--lease-renew-deadline", "5s"])
            .args(extra.iter().copied())
            .env("POD_NAME", name);
        options.log = options.log.with_file_name(format!("{name}.log"));
        Ok(Self {
            name,
            process: OperatorProcess::spawn(&options)?,
        })
    }

    fn identity(&self) -> String {
        format!("{}-{}", self.name, self.process.pid())
    }

    async fn metric(&self, name: &str) -> Result<f64> {
        let url = format!("{}/metrics", self.process.health_url());
        support::metric_sum(&reqwest::get(url).await?.text().await?, name)
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
    let wanted = &wanted;
    support::eventually("the wanted lease holder", deadline, || async move {
        let current = holder(leases).await?;
        Ok(wanted(&current).then_some(current))
    })
    .await
}

#[tokio::test]
async fn one_replica_leads_another_takes_over_and_sigterm_releases_the_lease() -> Result<()> {
    let world = World::without_operator("leader", Options::default()).await?;
    let dir = tempfile::tempdir()?;
    let options = world.operator_process_options(dir.path()).await?;
    let leases: Api<Lease> = Api::namespaced(world.ns.client.clone(), &world.ns.name);

    let a = Replica::start(&world, &options, "replica-a", &[])?;
    let b = Replica::start(&world, &options, "replica-b", &[])?;
    let first = wait_holder(&leases, |h| h.is_some(), Duration::from_secs(30))
        .await?
        .context("holder")?;
    let (mut leader, standby) = if first == a.identity() {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(first, leader.identity());

    // Only the leader reconciles and writes: one CreateCollection makes the object Ready.
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
    // The gauges agree with the Lease: the standby's says 0 (it never took the Lease: see
    // `a_replica_cannot_take_a_lease_another_holds`), and the leader's says 1.
    assert_eq!(standby.metric("rekognition_operator_leader").await?, 0.0);
    assert_eq!(leader.metric("rekognition_operator_leader").await?, 1.0);

    // kill -9 the leader: the standby takes over and finishes pending work within the lease
    // duration plus 5 s.
    leader.process.kill().await?;
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
    survivor.process.terminate()?;
    let termed = Instant::now();
    let released = wait_holder(&leases, |h| h.is_none(), LEASE_DURATION / 2).await;
    let exit = survivor.process.wait_exit(WAIT).await?;
    println!(
        "SIGTERM: lease released after {:.1}s",
        termed.elapsed().as_secs_f64()
    );
    released?;
    assert!(exit.success(), "graceful exit on SIGTERM: {exit}");
    Ok(())
}

#[tokio::test]
async fn a_paused_leader_never_writes_to_aws_after_another_took_over() -> Result<()> {
    let world = World::without_operator("fencing", Options::default()).await?;
    let dir = tempfile::tempdir()?;
    let options = world.operator_process_options(dir.path()).await?;
    let leases: Api<Lease> = Api::namespaced(world.ns.client.clone(), &world.ns.name);
    // Resyncs every second: a paused leader has one due the moment it resumes.
    let fast = ["--resync-interval", "1s"];
    let a = Replica::start(&world, &options, "fence-a", &fast)?;
    let b = Replica::start(&world, &options, "fence-b", &fast)?;
    let first = wait_holder(&leases, |h| h.is_some(), Duration::from_secs(30))
        .await?
        .context("holder")?;
    let (old, new) = if first == a.identity() {
        (a, b)
    } else {
        (b, a)
    };
    world.create("victim", CollectionSpec::default()).await?;
    world.wait_reason("victim", "Available").await?;

    // The leader stops (a long GC pause, a frozen node) past its lease…
    old.process.pause()?;
    let new_identity = new.identity();
    wait_holder(
        &leases,
        |h| h.as_deref() == Some(new_identity.as_str()),
        LEASE_DURATION * 3,
    )
    .await?;
    // …the new leader deletes the object's collection…
    world.delete("victim").await?;
    world.wait_gone("victim").await?;
    assert!(!world.aws_has("victim").await?);
    // …and the old leader wakes up with a resync of a collection it believes is missing.
    old.process.resume()?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let creates = world
        .admin()
        .calls_for("victim")
        .await?
        .into_iter()
        .filter(|c| c.operation == "CreateCollection")
        .count();
    assert_eq!(creates, 1, "the old leader recreated the collection");
    assert!(
        !world.aws_has("victim").await?,
        "a collection nothing will ever delete"
    );
    Ok(())
}

/// A replica cannot take a Lease another holds. kube-lease-manager takes a Lease it read unheld
/// with a server-side apply under the replica's field manager, and only a field manager of each
/// replica's own makes the API server refuse the second such apply: under one shared manager, a
/// standby that read the Lease unheld just before the other replica took it overwrote the holder,
/// and both believed they led until the first one's next renewal.
#[tokio::test]
async fn a_replica_cannot_take_a_lease_another_holds() -> Result<()> {
    let world = World::without_operator("lease-race", Options::default()).await?;
    let settings = |identity: &str| LeaseSettings {
        name: "race".into(),
        namespace: world.ns.name.clone(),
        identity: identity.into(),
        duration: Duration::from_secs(30),
        renew_before: Duration::from_secs(5),
    };
    let mut holder = Election::start(world.ns.client.clone(), &settings("replica-a")).await?;
    ensure!(holder.acquired().await, "replica-a takes the unheld Lease");

    // What the other replica sends when it has read the Lease unheld: its apply of itself as the
    // holder, under its own field manager.
    let leases: Api<Lease> = Api::namespaced(world.ns.client.clone(), &world.ns.name);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    );
    let take = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "spec": {
            "acquireTime": now,
            "renewTime": now,
            "holderIdentity": "replica-b",
            "leaseDurationSeconds": 30,
        },
    });
    let params = PatchParams {
        field_manager: Some(leader::field_manager("replica-b")),
        ..PatchParams::default()
    };
    match leases.patch("race", &params, &Patch::Apply(&take)).await {
        Err(kube::Error::Api(refused)) if refused.code == 409 => {}
        Err(other) => bail!("replica-b's apply failed otherwise: {other}"),
        Ok(lease) => bail!(
            "replica-b's apply took the Lease replica-a holds: holder now {:?}",
            lease.spec.and_then(|s| s.holder_identity)
        ),
    }
    let held = leases
        .get("race")
        .await?
        .spec
        .and_then(|s| s.holder_identity);
    ensure!(
        held.as_deref() == Some("replica-a"),
        "the holder is still replica-a, not {held:?}"
    );
    holder.release().await;
    Ok(())
}
