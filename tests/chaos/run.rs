//! One run's world: a fresh namespace on the campaign's control plane, a fresh emulator, the
//! operator processes, and what the campaign did behind the operator's back (which the
//! invariants need to know). A migration's run also has an old cluster (a [`Peer`]): the same
//! namespace on a second control plane, its own operators, the same emulator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use rekognition_emulator::admin::{AdminClient, CollectionView};
use rekognition_operator::model::crd::{
    CollectionSpec, DeletionPolicy, ManagementPolicy, RekognitionCollection,
};
use testbed::{
    BackgroundEmulator, ControlPlane, ControlPlaneOptions, OperatorOptions, OperatorProcess,
};

use crate::invariants::{self, Observed};
use crate::report::Outcome;

/// The cluster name of every run's operators.
pub const CLUSTER: &str = "chaos";

/// Deadline for an operator process to become ready.
pub const READY: Duration = Duration::from_secs(30);

/// How an object was last asked to behave, as the campaign wrote it.
#[derive(Clone, Debug)]
pub struct Intent {
    pub uid: String,
    pub deletion_policy: DeletionPolicy,
    pub management_policy: ManagementPolicy,
}

/// A collection as it was when the campaign marked it (foreign, or handed over), and since when.
pub struct Snapshot {
    pub view: CollectionView,
    pub since: chrono::DateTime<chrono::Utc>,
}

/// A control plane started the first time a run asks for it, then shared by the later runs.
pub type LazyControlPlane = tokio::sync::OnceCell<ControlPlane>;

/// Another cluster beside the run's own: the same namespace on the campaign's second control
/// plane, its own operators, the same emulator (so the same AWS account). The run's cluster
/// takes over from it (`--take-over-from`): it is a migration's old cluster.
pub struct Peer {
    /// The cluster name its operators write into their claims.
    pub cluster: String,
    pub api: Api<RekognitionCollection>,
    pub operators: Vec<OperatorProcess>,
    options: OperatorOptions,
    /// Per object name, the last intent the campaign wrote (kept after deletion).
    pub intents: BTreeMap<String, Intent>,
    /// Objects created per name (I3 counts them beside the run's own).
    pub incarnations: BTreeMap<String, u32>,
    /// Objects whose collections it held when the handover began: they end `HandedOver`; its
    /// other objects never held theirs and end `AwaitingHandover`.
    pub held: BTreeSet<String>,
}

impl Peer {
    /// Starts an operator process of this cluster and waits until it is ready.
    pub async fn spawn_operator(&mut self) -> Result<()> {
        let mut operator = OperatorProcess::spawn(&self.options)?;
        operator.wait_ready(READY).await?;
        self.operators.push(operator);
        Ok(())
    }

    /// Creates an object in this cluster and remembers its intent.
    pub async fn create(&mut self, name: &str, spec: CollectionSpec) -> Result<()> {
        let intent = create_object(&self.api, name, spec).await?;
        *self.incarnations.entry(name.to_owned()).or_default() += 1;
        self.intents.insert(name.to_owned(), intent);
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        self.api.delete(name, &DeleteParams::default()).await?;
        Ok(())
    }
}

pub struct Run<'a> {
    pub control_plane: &'a ControlPlane,
    /// The second control plane, for the clusters beside the run's own (see [`Run::add_peer`]).
    second_plane: &'a LazyControlPlane,
    pub namespace: String,
    scenario: String,
    pub api: Api<RekognitionCollection>,
    pub emulator: BackgroundEmulator,
    pub admin: AdminClient,
    pub objects: usize,
    /// The cluster name the run's operators write into their claims.
    pub cluster: String,
    pub operators: Vec<OperatorProcess>,
    options: OperatorOptions,
    // Kept for the operator's kubeconfig and log until the run ends.
    dir: tempfile::TempDir,
    /// Per object name, the last intent the campaign wrote (kept after deletion).
    pub intents: BTreeMap<String, Intent>,
    /// Successful CreateCollection calls the operator may legitimately make per collection ID
    /// beyond one per object incarnation: one per out-of-band deletion it has to repair.
    pub repairs: BTreeMap<String, u32>,
    /// CreateCollection calls the campaign itself made, per collection ID.
    pub own_creates: BTreeMap<String, u32>,
    /// Collections the campaign made or took away from the operator, as they must stay.
    pub foreign: BTreeMap<String, Snapshot>,
    /// Collections a peer held when the run's cluster began to take them over, as they were
    /// then: from then on only the takeover's one TagResource may write them (I6).
    pub handed_over: BTreeMap<String, Snapshot>,
    /// The other clusters of the run, which the run's cluster takes over from.
    pub peers: Vec<Peer>,
    /// Objects created per name: each incarnation may create its collection once.
    pub incarnations: BTreeMap<String, u32>,
    /// Objects that, by the scenario's design, own no collection (it belongs to someone else):
    /// they are exempt from I1's "converges to its own collection" and from I4.
    pub not_owned: BTreeSet<String>,
    /// Two operators act at once without a Lease (a misconfiguration the campaign runs on
    /// purpose): I3 then allows a deleted object's collection to be made once more in the moment
    /// of its deletion, provided it is gone again (see `invariants`).
    pub without_leader_election: bool,
    /// When the scenario struck (its first fault); convergence is timed from then.
    struck_at: Option<Instant>,
}

impl<'a> Run<'a> {
    /// A fresh namespace and emulator; no operator yet (see [`Run::spawn_operator`]).
    pub async fn start(
        control_plane: &'a ControlPlane,
        second_plane: &'a LazyControlPlane,
        scenario: &str,
        objects: usize,
    ) -> Result<Self> {
        let client = control_plane.client().await?;
        let suffix: u32 = rand::random();
        let namespace = format!("chaos-{suffix:08x}");
        create_namespace(&client, &namespace, scenario).await?;
        let mut config = testbed::emulator_config();
        // The whole run's calls: I3 and I6 read them all.
        config.call_log_capacity = 1_000_000;
        let emulator = BackgroundEmulator::start(config)?;
        let admin = emulator.admin()?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, control_plane.kubeconfig_yaml()?)?;
        let options = operator_options(
            kubeconfig,
            &emulator,
            dir.path().join("operator.log"),
            &namespace,
            CLUSTER,
        );
        Ok(Self {
            control_plane,
            second_plane,
            api: Api::namespaced(client, &namespace),
            namespace,
            scenario: scenario.to_owned(),
            emulator,
            admin,
            objects,
            cluster: CLUSTER.to_owned(),
            operators: Vec::new(),
            options,
            dir,
            intents: BTreeMap::new(),
            repairs: BTreeMap::new(),
            own_creates: BTreeMap::new(),
            foreign: BTreeMap::new(),
            handed_over: BTreeMap::new(),
            peers: Vec::new(),
            incarnations: BTreeMap::new(),
            not_owned: BTreeSet::new(),
            without_leader_election: false,
            struck_at: None,
        })
    }

    /// Marks the moment the scenario's first fault strikes.
    pub fn strike(&mut self) {
        self.struck_at.get_or_insert_with(Instant::now);
    }

    /// The operator options of this run, for a scenario to adjust.
    pub fn operator_options(&self) -> OperatorOptions {
        self.options.clone()
    }

    /// Starts an operator process with the run's options and waits until it is ready.
    pub async fn spawn_operator(&mut self) -> Result<()> {
        let options = self.options.clone();
        self.spawn_operator_with(&options).await
    }

    /// Starts an operator process and waits until it is ready.
    pub async fn spawn_operator_with(&mut self, options: &OperatorOptions) -> Result<()> {
        let mut operator = OperatorProcess::spawn(options)?;
        operator.wait_ready(READY).await?;
        self.operators.push(operator);
        Ok(())
    }

    /// Starts an operator process without waiting (it may crash at a crash point before it is
    /// ready to be asked).
    pub fn spawn_operator_unready(&mut self, options: &OperatorOptions) -> Result<()> {
        self.operators.push(OperatorProcess::spawn(options)?);
        Ok(())
    }

    /// `name-NNN` for the i-th object.
    pub fn name(i: usize) -> String {
        format!("photos-{i:03}")
    }

    pub fn names(&self) -> Vec<String> {
        (0..self.objects).map(Self::name).collect()
    }

    /// Creates an object and remembers its intent.
    pub async fn create(&mut self, name: &str, spec: CollectionSpec) -> Result<()> {
        let intent = create_object(&self.api, name, spec).await?;
        *self.incarnations.entry(name.to_owned()).or_default() += 1;
        self.intents.insert(name.to_owned(), intent);
        Ok(())
    }

    /// Creates the run's objects with default specs and a tag each.
    pub async fn create_all(&mut self) -> Result<()> {
        for name in self.names() {
            self.create(&name, spec_with_tag("burst", &name)).await?;
        }
        Ok(())
    }

    /// Merge-patches an object's spec and remembers the policies it now asks for.
    pub async fn patch_spec(&mut self, name: &str, spec: serde_json::Value) -> Result<()> {
        let patched = self
            .api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await?;
        if let Some(intent) = self.intents.get_mut(name) {
            intent.deletion_policy = patched.spec.deletion_policy;
            intent.management_policy = patched.spec.management_policy;
        }
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        self.api.delete(name, &DeleteParams::default()).await?;
        Ok(())
    }

    /// The cluster is lost: every object goes without its finalizer running (no operator may
    /// be running).
    pub async fn lose_all(&self) -> Result<()> {
        for name in self.names() {
            let drop_finalizers = serde_json::json!({"metadata": {"finalizers": null}});
            self.api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&drop_finalizers),
                )
                .await?;
            self.delete(&name).await?;
        }
        testbed::wait_until("every object is gone", Duration::from_secs(30), || async {
            Ok(self.api.list(&Default::default()).await?.items.is_empty())
        })
        .await?;
        Ok(())
    }

    pub async fn delete_all(&self) -> Result<()> {
        for name in self.names() {
            self.delete(&name).await?;
        }
        Ok(())
    }

    /// Waits until every object has converged (I1), without other faults: the quiet point
    /// between a scenario's set-up and its faults.
    pub async fn wait_converged(&self) -> Result<()> {
        let waited = testbed::wait_until(
            "the objects converge before the faults",
            Duration::from_secs(60),
            || async { Ok(invariants::check(self, &self.observe().await?).is_empty()) },
        )
        .await;
        if let Err(error) = waited {
            let left = invariants::check(self, &self.observe().await?);
            anyhow::bail!("{error:#}: {}", left.join("; "));
        }
        Ok(())
    }

    /// A Rekognition client on this run's emulator, for the campaign's out-of-band changes.
    pub async fn rekognition(&self) -> aws_sdk_rekognition::Client {
        aws_sdk_rekognition::Client::new(
            &crate::emulator_sdk::sdk_config(&self.emulator, "chaos").await,
        )
    }

    /// Declares collection `id` foreign from now on, as it is now: nobody but the campaign
    /// may change it any more (I6).
    pub async fn mark_foreign(&mut self, id: &str) -> Result<()> {
        let since = chrono::Utc::now();
        let view = self
            .collection(id)
            .await?
            .with_context(|| format!("no collection {id} to mark foreign"))?;
        self.foreign.insert(id.to_owned(), Snapshot { view, since });
        Ok(())
    }

    /// Declares collection `id`, which a peer holds, handed over to the run's cluster from now
    /// on, as it is now: only the takeover may write it, once (I6).
    pub async fn mark_handed_over(&mut self, id: &str) -> Result<()> {
        let since = chrono::Utc::now();
        let view = self
            .collection(id)
            .await?
            .with_context(|| format!("no collection {id} to hand over"))?;
        self.handed_over
            .insert(id.to_owned(), Snapshot { view, since });
        Ok(())
    }

    /// Adds a peer cluster named `cluster`: this run's namespace on the campaign's second
    /// control plane (started now if no run has started it yet), its operators with the run's
    /// flags and `extra_args`, on the run's emulator. No operator yet
    /// ([`Peer::spawn_operator`]); returns its index in [`Run::peers`].
    pub async fn add_peer(&mut self, cluster: &str, extra_args: &[&str]) -> Result<usize> {
        let plane = self
            .second_plane
            .get_or_try_init(|| async {
                ControlPlane::start(ControlPlaneOptions::default())
                    .await
                    .context("starting the campaign's second control plane")
            })
            .await?;
        let client = plane.client().await?;
        create_namespace(&client, &self.namespace, &self.scenario).await?;
        let kubeconfig = self.dir.path().join(format!("{cluster}.kubeconfig"));
        std::fs::write(&kubeconfig, plane.kubeconfig_yaml()?)?;
        let options = operator_options(
            kubeconfig,
            &self.emulator,
            self.dir.path().join(format!("{cluster}.log")),
            &self.namespace,
            cluster,
        )
        .args(extra_args.iter().copied());
        self.peers.push(Peer {
            cluster: cluster.to_owned(),
            api: Api::namespaced(client, &self.namespace),
            operators: Vec::new(),
            options,
            intents: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            held: BTreeSet::new(),
        });
        Ok(self.peers.len() - 1)
    }

    /// The collection as the emulator has it now.
    pub async fn collection(&self, id: &str) -> Result<Option<CollectionView>> {
        Ok(self
            .admin
            .collections()
            .await?
            .into_iter()
            .find(|c| c.collection_id == id))
    }

    /// Everything the invariants look at, read now.
    pub async fn observe(&self) -> Result<Observed> {
        let mut peer_objects = BTreeMap::new();
        for peer in &self.peers {
            let objects = peer.api.list(&Default::default()).await?.items;
            peer_objects.insert(peer.cluster.clone(), objects);
        }
        Ok(Observed {
            objects: self.api.list(&Default::default()).await?.items,
            peer_objects,
            collections: self.admin.collections().await?,
            calls: self.admin.calls().await?,
        })
    }

    /// Waits (up to `deadline`) until every invariant holds, and reports the violations left if
    /// they never all do. The time to converge counts from the first fault.
    pub async fn converge(&self, deadline: Duration) -> Outcome {
        let started = self.struck_at.unwrap_or_else(Instant::now);
        let waited = testbed::wait_until("every invariant holds", deadline, || async {
            Ok(invariants::check(self, &self.observe().await?).is_empty())
        })
        .await;
        let converged_in = started.elapsed();
        match waited {
            Ok(()) => Outcome {
                converged_in,
                violations: Vec::new(),
            },
            Err(error) => {
                let violations = match self.observe().await {
                    Ok(observed) => invariants::check(self, &observed),
                    Err(read) => vec![format!("reading the world: {read:#}")],
                };
                Outcome {
                    converged_in,
                    violations: if violations.is_empty() {
                        vec![format!("{error:#}")]
                    } else {
                        violations
                    },
                }
            }
        }
    }

    /// The emulator's call log of writes, and of each operator's log every line that names an
    /// object the violations name, then its last 30 lines: what a failed run needs explained.
    pub async fn diagnostics(&self, violations: &[String]) -> String {
        let named: BTreeSet<&str> = self
            .intents
            .keys()
            .map(String::as_str)
            .filter(|name| violations.iter().any(|v| v.contains(*name)))
            .collect();
        let calls = match self.admin.calls().await {
            Ok(calls) => calls
                .iter()
                .filter(|c| {
                    c.operation != "DescribeCollection" && c.operation != "ListTagsForResource"
                })
                .map(|c| {
                    format!(
                        "  {} {} {:?} {}{}",
                        c.at.format("%H:%M:%S%.3f"),
                        c.operation,
                        c.collection_id.as_deref().unwrap_or("-"),
                        c.outcome,
                        c.lost_response
                            .map(|l| format!(" (answer lost: {l:?})"))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(error) => format!("  (call log unavailable: {error})"),
        };
        let mut logs = String::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.sort();
        for path in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
        {
            let log = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let about: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| named.iter().any(|name| l.contains(&format!("\"{name}\""))))
                .collect();
            if !about.is_empty() {
                logs.push_str(&format!(
                    "--- {} (lines about {}) ---\n{}\n",
                    path.display(),
                    named.iter().copied().collect::<Vec<_>>().join(", "),
                    about.join("\n")
                ));
            }
            logs.push_str(&format!(
                "--- {} (last 30 lines, backtrace frames left out) ---\n{}\n",
                path.display(),
                testbed::log_tail(&log, 30)
            ));
        }
        format!("--- call log (writes) ---\n{calls}\n{logs}")
    }
}

/// Creates namespace `name`, labelled with the scenario that uses it.
async fn create_namespace(client: &kube::Client, name: &str, scenario: &str) -> Result<()> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([("chaos-scenario".to_owned(), scenario.to_owned())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

/// The flags of every operator of a run: the run's namespace, a high enough AWS rate, short
/// timeouts and resyncs, and the name of the cluster it serves.
fn operator_options(
    kubeconfig: PathBuf,
    emulator: &BackgroundEmulator,
    log: PathBuf,
    namespace: &str,
    cluster: &str,
) -> OperatorOptions {
    OperatorOptions::new(
        env!("CARGO_BIN_EXE_rekognition-operator"),
        kubeconfig,
        emulator,
        log,
    )
    .args([
        "--namespace",
        namespace,
        "--aws-rate",
        "50",
        "--aws-burst",
        "50",
        // Short, so a lost answer held by the emulator times the call out quickly, and
        // out-of-band changes are noticed within a run.
        "--aws-timeout",
        "2s",
        "--resync-interval",
        "2s",
        "--cluster-name",
        cluster,
    ])
}

/// Creates an object with `spec` and returns the intent it was created with.
async fn create_object(
    api: &Api<RekognitionCollection>,
    name: &str,
    spec: CollectionSpec,
) -> Result<Intent> {
    let object = RekognitionCollection {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: spec.clone(),
        status: None,
    };
    let created = api.create(&PostParams::default(), &object).await?;
    Ok(Intent {
        uid: created.metadata.uid.context("a created object has a UID")?,
        deletion_policy: spec.deletion_policy,
        management_policy: spec.management_policy,
    })
}

/// A default spec with one tag.
pub fn spec_with_tag(key: &str, value: &str) -> CollectionSpec {
    CollectionSpec {
        tags: [(key.to_owned(), value.to_owned())].into(),
        ..CollectionSpec::default()
    }
}
