//! Leader election on a `coordination.k8s.io` Lease, so several replicas run with one active.

use std::time::Duration;

use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::sync::lock;

/// How to take part in the election.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// Unique per replica: the pod name, or host name and process id.
    pub identity: String,
    /// How long a lease stays valid after its last renewal; failover happens within it.
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub renew_before: Duration,
}

/// The field manager of a replica's writes to the Lease: its own, as kube-lease-manager needs.
/// It takes an unheld Lease with a server-side apply, and only distinct managers make the API
/// server refuse a second replica's apply (409) instead of letting it overwrite the holder.
/// The API server takes at most 128 characters.
pub fn field_manager(identity: &str) -> String {
    format!("rekognition-operator-{identity}")
        .chars()
        .take(128)
        .collect()
}

/// A running election. `is_leader` follows this replica's state.
pub struct Election {
    pub is_leader: watch::Receiver<bool>,
    task: JoinHandle<Result<LeaseManager, kube_lease_manager::LeaseManagerError>>,
}

impl Election {
    pub async fn start(client: kube::Client, settings: &LeaseSettings) -> anyhow::Result<Self> {
        let manager = LeaseManagerBuilder::new(client, settings.name.clone())
            .with_namespace(settings.namespace.clone())
            .with_identity(settings.identity.clone())
            .with_duration(settings.duration.as_secs().max(1))
            .with_grace(settings.renew_before.as_secs().max(1))
            .with_field_manager(field_manager(&settings.identity))
            .build()
            .await?;
        let (is_leader, task) = manager.watch().await;
        Ok(Self { is_leader, task })
    }

    /// Waits until this replica holds the lease.
    pub async fn acquired(&mut self) -> bool {
        self.is_leader.wait_for(|leader| *leader).await.is_ok()
    }

    /// Resolves when this replica loses the lease.
    pub async fn lost(mut receiver: watch::Receiver<bool>) {
        let _ = receiver.wait_for(|leader| !*leader).await;
    }

    /// Gives the lease up so another replica takes over at once instead of after expiry.
    pub async fn release(self) {
        drop(self.is_leader);
        // Closing the channel makes the manager release the lease and return.
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("released the leader lease"),
            Ok(Err(error)) => tracing::warn!(%error, "could not release the leader lease"),
            Err(error) => tracing::warn!(%error, "leader election task failed"),
        }
    }
}

/// Whether this replica may still write to AWS: only within `deadline` of its last successful
/// Lease renewal, by its own clock. A leader cut off from the API server (or paused) stops writing
/// before the Lease expires and another replica can take over.
pub struct Fence {
    deadline: Option<Duration>,
    renewed: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Fence {
    /// No leader election: always open.
    pub fn open() -> Self {
        Self {
            deadline: None,
            renewed: std::sync::Mutex::new(None),
        }
    }

    /// Closed until the first renewal is seen.
    pub fn leased(deadline: Duration) -> Self {
        Self {
            deadline: Some(deadline),
            renewed: std::sync::Mutex::new(None),
        }
    }

    /// The Lease was renewed by this replica at `at`.
    pub fn renewed_at(&self, at: std::time::Instant) {
        let mut renewed = lock(&self.renewed);
        if renewed.is_none_or(|previous| at > previous) {
            *renewed = Some(at);
        }
    }

    /// Closes the fence at once (leadership lost).
    pub fn close(&self) {
        *lock(&self.renewed) = None;
    }

    /// Whether an AWS write may start at `now`.
    pub fn allows(&self, now: std::time::Instant) -> bool {
        match self.deadline {
            None => true,
            Some(deadline) => lock(&self.renewed).is_some_and(|at| now < at + deadline),
        }
    }
}

/// Follows this replica's renewals of the Lease: each time the Lease shows `identity` as holder,
/// its renewTime (written by this replica's own clock) opens the fence until the deadline.
pub async fn track_renewals(
    client: kube::Client,
    settings: LeaseSettings,
    fence: std::sync::Arc<Fence>,
) {
    use futures::TryStreamExt;
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::runtime::{WatchStreamExt, watcher};

    let leases: kube::Api<Lease> = kube::Api::namespaced(client, &settings.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", settings.name));
    let mut events = std::pin::pin!(watcher(leases, config).default_backoff().applied_objects());
    loop {
        match events.try_next().await {
            Ok(Some(lease)) => {
                let Some(spec) = lease.spec else { continue };
                if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
                    fence.close();
                    continue;
                }
                if let Some(renewed) = spec.renew_time {
                    let now = k8s_openapi::jiff::Timestamp::now();
                    let age_ms = (now.as_millisecond() - renewed.0.as_millisecond()).max(0);
                    let age = Duration::from_millis(u64::try_from(age_ms).unwrap_or(0));
                    if let Some(at) = std::time::Instant::now().checked_sub(age) {
                        fence.renewed_at(at);
                    }
                }
            }
            Ok(None) => return,
            Err(error) => tracing::debug!(%error, "watching the Lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_fence_opens_for_the_deadline_after_each_renewal() {
        let fence = Fence::leased(Duration::from_secs(12));
        let t0 = Instant::now();
        assert!(!fence.allows(t0), "closed before the first renewal");
        fence.renewed_at(t0);
        assert!(fence.allows(t0 + Duration::from_secs(11)));
        assert!(!fence.allows(t0 + Duration::from_secs(12)));
        // An older renewal seen late never moves the deadline back.
        fence.renewed_at(t0 + Duration::from_secs(10));
        fence.renewed_at(t0 + Duration::from_secs(1));
        assert!(fence.allows(t0 + Duration::from_secs(21)));
        fence.close();
        assert!(!fence.allows(t0 + Duration::from_secs(11)));
    }

    #[test]
    fn without_leader_election_the_fence_is_open() {
        assert!(Fence::open().allows(Instant::now()));
    }
}
