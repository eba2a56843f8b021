//! The periodic orphan inventory: the I/O around [`crate::core::orphans`].
//!
//! Every `--orphan-scan-interval`, for each (account, region) that objects use, one
//! `ListCollections` (a page per 1,000 collections), then one `ListTagsForResource` per collection
//! that no live object uses, paced at `--orphan-scan-rate` and through the same rate limiter as
//! the reconciles. Orphans are reported (metric, log line, `/orphans`); with `--orphan-policy
//! delete` or `release` they are acted on once this process has seen them orphaned for
//! `--orphan-grace`, after their tags are read again and the watch cache is asked again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use tracing::{info, warn};

use crate::adapters::aws::{CollectionApi, Described, Target};
use crate::core::accounts::{Mapping, Pin, resolve};
use crate::core::orphans::{Live, Orphan, OrphanPolicy, orphan_claim, sibling_arn};
use crate::core::ownership::object_part;
use crate::core::placement::pinned_region;
use crate::core::plan::release_keys;
use crate::core::schedule::Priority;
use crate::model::crd::RekognitionCollection;
use crate::model::identity::{Identity, RoleTarget, collection_account};
use crate::runtime::reconcile::Context;

/// How the inventory runs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub interval: Duration,
    pub policy: OrphanPolicy,
    pub grace: Duration,
    /// The least time between two tag reads.
    pub pace: Duration,
    /// The namespace the operator watches; claims of other namespaces are not its to judge.
    pub watched: Option<String>,
}

/// Scans every interval (the first one interval after the watch cache synced, so a restore in
/// progress has re-applied its objects) until the task is aborted.
pub async fn run<A: CollectionApi>(
    ctx: Arc<Context<A>>,
    store: Store<RekognitionCollection>,
    settings: Settings,
) {
    if !synced(&store).await {
        return;
    }
    loop {
        tokio::time::sleep(settings.interval).await;
        scan(&ctx, &store, &settings).await;
    }
}

/// Waits until the watch cache has synced; false if it never will. The store's readiness future
/// wakes only its latest poller, and the controller polls it too, so this polls again on a short
/// timer instead of waiting for a wake-up.
pub async fn synced(store: &Store<RekognitionCollection>) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_millis(50), store.wait_until_ready()).await {
            Ok(Ok(())) => return true,
            Ok(Err(_)) => return false,
            Err(_) => {}
        }
    }
}

fn live_of(store: &Store<RekognitionCollection>) -> Live {
    let mut live = Live::default();
    for obj in store.state() {
        if let Some(uid) = obj.uid() {
            live.uids.insert(uid);
        }
        live.objects.insert(object_part(
            &obj.namespace().unwrap_or_default(),
            &obj.name_any(),
        ));
        live.collection_ids.insert(obj.collection_id());
    }
    live
}

async fn scan<A: CollectionApi>(
    ctx: &Context<A>,
    store: &Store<RekognitionCollection>,
    settings: &Settings,
) {
    let mut candidates: Vec<(Target, Orphan)> = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for (target, sample) in targets_to_scan(ctx, store, settings) {
        let ids = match ctx.aws.list_collections(&target).await {
            Ok(ids) => ids,
            Err(error) => {
                warn!(account = target.identity.account_label(), region = %target.region, %error, "orphan inventory: could not list collections");
                continue;
            }
        };
        let live = live_of(store);
        let unused: Vec<&String> = ids
            .iter()
            .filter(|id| !live.collection_ids.contains(*id))
            .collect();
        let Some(first) = unused.first() else {
            let account = sample
                .as_deref()
                .and_then(collection_account)
                .or(target.identity.account_id())
                .unwrap_or(target.identity.account_label());
            counts.insert((account.to_owned(), target.region.clone()), 0);
            ctx.inventory.replace(account, &target.region, Vec::new());
            continue;
        };
        // The account and partition of the ARNs to build: from a collection an object uses, else
        // from one describe.
        let sample = match sample {
            Some(sample) => sample,
            None => match ctx.aws.describe(&target, first, Priority::Foreground).await {
                Ok(Described::Exists(description)) => {
                    ctx.inventory.note(&target, Some(&description.arn));
                    description.arn
                }
                Ok(_) => continue,
                Err(error) => {
                    warn!(%error, "orphan inventory: could not describe a collection");
                    continue;
                }
            },
        };
        let account = collection_account(&sample).unwrap_or("unknown").to_owned();
        let mut found = Vec::new();
        for id in unused {
            let Some(arn) = sibling_arn(&sample, id) else {
                continue;
            };
            tokio::time::sleep(settings.pace).await;
            let tags = match ctx.aws.list_tags(&target, &arn).await {
                Ok(Some(tags)) => tags,
                Ok(None) => continue,
                Err(error) => {
                    warn!(%arn, %error, "orphan inventory: could not read tags");
                    continue;
                }
            };
            let Some((owner_uid, claimed_by)) =
                orphan_claim(&tags, &ctx.cluster.name, settings.watched.as_deref(), &live)
            else {
                continue;
            };
            let first_seen = Utc::now();
            found.push(Orphan {
                collection_id: id.clone(),
                arn,
                region: target.region.clone(),
                account: account.clone(),
                claimed_by,
                owner_uid,
                first_seen,
                act_after: (settings.policy != OrphanPolicy::Report).then(|| {
                    first_seen + chrono::Duration::from_std(settings.grace).unwrap_or_default()
                }),
                seen_at: Some(Instant::now()),
            });
        }
        let known: Vec<String> = ctx.inventory.orphans().into_iter().map(|o| o.arn).collect();
        for orphan in found.iter().filter(|o| !known.contains(&o.arn)) {
            warn!(
                collection_id = %orphan.collection_id,
                arn = %orphan.arn,
                claimed_by = %orphan.claimed_by,
                owner_uid = %orphan.owner_uid,
                policy = ?settings.policy,
                "orphaned collection: it claims this cluster for an object that no longer exists"
            );
        }
        counts.insert((account.clone(), target.region.clone()), found.len() as i64);
        ctx.inventory.replace(&account, &target.region, found);
        candidates.extend(
            ctx.inventory
                .orphans()
                .into_iter()
                .filter(|o| o.account == account && o.region == target.region)
                .map(|o| (target.clone(), o)),
        );
    }
    ctx.metrics.set_orphans(&counts);
    if settings.policy == OrphanPolicy::Report {
        return;
    }
    let now = Instant::now();
    for (target, orphan) in candidates
        .into_iter()
        .filter(|(_, o)| o.grace_passed(settings.grace, now))
    {
        act(ctx, store, settings, &target, &orphan).await;
    }
}

/// Every (account, region) that may hold a collection of this cluster, whether or not an object
/// reconciled there since this process started: those the reconciles noted; every identity the
/// account mapping names (current and former roles) and the operator's own, in the default
/// region and every allowed region; and where each live object in the watch cache lives (its
/// pinned or asked-for region, under the identity the mapping gives it). So a restart forgets no
/// account, and an orphan beside steady objects is found before any of them is resynced. A region
/// or identity the policy or the mapping refuses is never scanned.
fn targets_to_scan<A: CollectionApi>(
    ctx: &Context<A>,
    store: &Store<RekognitionCollection>,
    settings: &Settings,
) -> Vec<(Target, Option<String>)> {
    let mut targets: BTreeMap<Target, Option<String>> =
        ctx.inventory.targets().into_iter().collect();
    let Some(mapping) = ctx.accounts.current() else {
        return targets.into_iter().collect();
    };
    let mut add = |identity: Identity, region: &str| {
        if ctx.policy.rules.region_refusal(region).is_none() {
            targets
                .entry(Target {
                    identity,
                    region: region.to_owned(),
                })
                .or_default();
        }
    };
    let regions: BTreeSet<&str> = std::iter::once(ctx.default_region.as_str())
        .chain(ctx.policy.rules.allowed_regions.iter().map(String::as_str))
        .collect();
    let identities = mapped_identities(&mapping, settings.watched.as_deref());
    for region in &regions {
        for identity in &identities {
            add(identity.clone(), region);
        }
    }
    for obj in store.state() {
        let Some(namespace) = obj.namespace() else {
            continue;
        };
        let (recorded_region, pinned_role) = obj.recorded_pin();
        let (region, _) = pinned_region(
            obj.spec.region.as_deref(),
            recorded_region,
            &ctx.default_region,
        );
        let pin = Pin::of(recorded_region, pinned_role);
        if let Ok(identity) = resolve(&pin, &mapping, &namespace, ctx.require_mapping)
            && crate::core::policy::is_region_name(&region)
        {
            add(identity, &region);
        }
    }
    targets.into_iter().collect()
}

/// The operator's own identity and every role the mapping names (for the watched namespace only,
/// in one-namespace mode).
fn mapped_identities(mapping: &Mapping, watched: Option<&str>) -> BTreeSet<Identity> {
    let mut identities = BTreeSet::from([Identity::Own]);
    for (namespace, entry) in &mapping.namespaces {
        if watched.is_some_and(|w| w != namespace) {
            continue;
        }
        identities.insert(Identity::Role(RoleTarget {
            role_arn: entry.role_arn.clone(),
            external_id: entry.external_id.clone(),
        }));
        identities.extend(entry.former_roles.iter().cloned().map(Identity::Role));
    }
    identities
}

/// Deletes or releases one orphan, after proving once more that it is one.
async fn act<A: CollectionApi>(
    ctx: &Context<A>,
    store: &Store<RekognitionCollection>,
    settings: &Settings,
    target: &Target,
    orphan: &Orphan,
) {
    let still = match ctx.aws.list_tags(target, &orphan.arn).await {
        Ok(Some(tags)) => orphan_claim(
            &tags,
            &ctx.cluster.name,
            settings.watched.as_deref(),
            &live_of(store),
        )
        .is_some(),
        Ok(None) => {
            ctx.inventory.forget(&orphan.arn);
            return;
        }
        Err(error) => {
            warn!(arn = %orphan.arn, %error, "orphan inventory: could not read tags again");
            return;
        }
    };
    if !still {
        ctx.inventory.forget(&orphan.arn);
        return;
    }
    if !ctx.fence.allows(Instant::now()) {
        return;
    }
    let result = match settings.policy {
        OrphanPolicy::Delete => ctx
            .aws
            .delete(target, &orphan.collection_id)
            .await
            .map(|_| "deleted"),
        OrphanPolicy::Release => ctx
            .aws
            .untag(target, &orphan.arn, &release_keys())
            .await
            .map(|_| "released"),
        OrphanPolicy::Report => return,
    };
    match result {
        Ok(done) => {
            info!(
                arn = %orphan.arn,
                claimed_by = %orphan.claimed_by,
                owner_uid = %orphan.owner_uid,
                "orphaned collection {done}"
            );
            ctx.inventory.forget(&orphan.arn);
        }
        Err(error) => warn!(arn = %orphan.arn, %error, "orphan inventory: could not act"),
    }
    let mut counts = ctx.inventory.counts();
    counts
        .entry((orphan.account.clone(), orphan.region.clone()))
        .or_insert(0);
    ctx.metrics.set_orphans(&counts);
}
