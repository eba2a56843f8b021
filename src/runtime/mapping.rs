//! The account mapping as the operator last read it: a watch of the platform team's ConfigMap
//! that keeps [`Mapping`] current, so a change applies without a restart.

use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::core::accounts::{MAPPING_KEY, Mapping};
use crate::sync::{read, write};

/// The current mapping as the operator last read it: `None` until the ConfigMap's watch has
/// listed once, or while its first version is malformed.
#[derive(Clone, Default)]
pub struct MappingWatch {
    current: Arc<RwLock<Option<Mapping>>>,
    /// Signalled when a loaded mapping is replaced by a different one.
    changed: Arc<Notify>,
}

impl MappingWatch {
    /// A fixed mapping (no ConfigMap): every namespace unmapped, or as given.
    pub fn fixed(mapping: Mapping) -> Self {
        Self {
            current: Arc::new(RwLock::new(Some(mapping))),
            changed: Arc::default(),
        }
    }

    pub fn current(&self) -> Option<Mapping> {
        read(&self.current).clone()
    }

    fn set(&self, mapping: Mapping) {
        let previous = write(&self.current).replace(mapping.clone());
        if previous.is_some_and(|previous| previous != mapping) {
            self.changed.notify_one();
        }
    }

    /// Yields once for every change of a mapping already loaded (changes that come in quick
    /// succession may yield once), so objects refused for want of a mapping are checked again.
    pub fn changes(&self) -> impl Stream<Item = ()> + Send + Sync + 'static {
        futures::stream::unfold(self.changed.clone(), |changed| async move {
            changed.notified().await;
            Some(((), changed))
        })
    }

    /// Watches the ConfigMap `name` in `namespace` (by name only, as its RBAC allows) and keeps
    /// the mapping current. A malformed version is logged and the last good one kept; a deleted
    /// ConfigMap is an empty mapping.
    pub fn watch(client: kube::Client, namespace: &str, name: &str) -> Self {
        let watch = Self::default();
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let state = watch.clone();
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        tokio::spawn(async move {
            let mut seen = false;
            let mut events = watcher(api, config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let text = match event {
                    Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => {
                        seen = true;
                        cm.data
                            .and_then(|d| d.get(MAPPING_KEY).cloned())
                            .unwrap_or_default()
                    }
                    Ok(watcher::Event::Delete(_)) => String::new(),
                    Ok(watcher::Event::Init) => {
                        seen = false;
                        continue;
                    }
                    Ok(watcher::Event::InitDone) if !seen => String::new(),
                    Ok(watcher::Event::InitDone) => continue,
                    Err(error) => {
                        warn!(%error, configmap = %name, "watching the account mapping");
                        continue;
                    }
                };
                match Mapping::parse(&text) {
                    Ok(mapping) => {
                        info!(configmap = %name, namespace = %namespace, namespaces = mapping.namespaces.len(), "account mapping loaded");
                        state.set(mapping);
                    }
                    Err(error) => {
                        warn!(configmap = %name, %error, "account mapping refused; keeping the last valid one")
                    }
                }
            }
        });
        watch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> Mapping {
        Mapping::parse("team-a:\n  roleArn: arn:aws:iam::111111111111:role/team-a\n")
            .expect("mapping")
    }

    #[tokio::test]
    async fn only_a_different_mapping_after_the_first_is_a_change() {
        use futures::FutureExt;
        let watch = MappingWatch::default();
        let mut changes = Box::pin(watch.changes());
        watch.set(Mapping::default());
        watch.set(Mapping::default());
        assert_eq!(
            changes.next().now_or_never(),
            None,
            "first load, then the same"
        );
        watch.set(mapping());
        assert_eq!(
            tokio::time::timeout(std::time::Duration::from_secs(1), changes.next()).await,
            Ok(Some(()))
        );
        assert_eq!(
            changes.next().now_or_never(),
            None,
            "one change, one signal"
        );
    }
}
