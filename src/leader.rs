//! Leader election on a `coordination.k8s.io` Lease, so several replicas run with one active.

use std::time::Duration;

use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
            .with_field_manager("rekognition-operator")
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
