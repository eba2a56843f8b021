//! The operator's per-object memory in this process: one table, keyed by object UID.
//!
//! It holds what the status cannot: when a settled object is next due, how many times in a row it
//! failed and until when it backs off, and whether this process already released it. Entries
//! leave when they hold nothing, and [`Memory::retain`] (run against the watch cache) drops those
//! of objects that are gone, so deleted objects leave nothing behind.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::core::backoff::BackoffPolicy;
use crate::core::error::Retry;
use crate::core::plan::Proven;
use crate::core::schedule::{Due, Remembered};
use crate::sync::lock;

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    settled: Option<(i64, Due)>,
    /// Consecutive failures, and the generation and instant the last backoff runs to.
    failures: u32,
    backoff_until: Option<(i64, Instant)>,
    released: bool,
    /// When this process last proved by the collection's tags (read, or set by creating or
    /// claiming it) that this object holds it, and which collection (the reconciler's proof key:
    /// identity, region, collection ID). A tag read that names anyone else clears it.
    tags_read_at: Option<(Instant, u64)>,
    /// The collection (proof key) whose tags this process saw name the same object in another
    /// cluster: a handover it may trust once the collection is gone. The status cannot prove it.
    handed_over: Option<u64>,
    /// When this process last handled a reconcile request for the object.
    request_handled_at: Option<Instant>,
    /// Its due resync was triggered ([`Memory::due_resyncs`]); the reconcile that follows
    /// settles it again.
    resync_triggered: bool,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.settled.is_none()
            && self.failures == 0
            && !self.released
            && self.tags_read_at.is_none()
            && self.handed_over.is_none()
            && self.request_handled_at.is_none()
    }
}

/// Per-object memory, shared by every worker.
#[derive(Default)]
pub struct Memory {
    policy: BackoffPolicy,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Memory {
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        lock(&self.entries)
    }

    fn update(&self, uid: &str, change: impl FnOnce(&mut Entry)) {
        let mut entries = self.lock();
        let entry = entries.entry(uid.to_owned()).or_default();
        change(entry);
        if entry.is_empty() {
            entries.remove(uid);
        }
    }

    /// What is remembered of `uid`.
    pub fn recall(&self, uid: &str) -> Remembered {
        let entries = self.lock();
        let entry = entries.get(uid).copied().unwrap_or_default();
        Remembered {
            settled: entry.settled,
            backoff_until: entry.backoff_until,
            released: entry.released,
            tags_read_at: entry.tags_read_at,
            handed_over: entry.handed_over,
            request_handled_at: entry.request_handled_at,
        }
    }

    /// The object finished a reconcile at `generation` and next waits for `due`.
    pub fn settle(&self, uid: &str, generation: i64, due: Due) {
        self.update(uid, |e| {
            e.settled = Some((generation, due));
            e.resync_triggered = false;
        });
    }

    /// The next trigger reconciles the object in full.
    pub fn unsettle(&self, uid: &str) {
        self.update(uid, |e| {
            e.settled = None;
            e.resync_triggered = false;
        });
    }

    /// The objects whose resync is due at `now` and not yet triggered; each is answered once
    /// until it settles again. Keeping the due times here rather than one timer per object in
    /// the controller's scheduler is most of a settled object's memory saved.
    pub fn due_resyncs(&self, now: Instant) -> HashSet<String> {
        let mut entries = self.lock();
        let mut due = HashSet::new();
        for (uid, entry) in entries.iter_mut() {
            if let Some((_, Due::At(at))) = entry.settled
                && at <= now
                && !entry.resync_triggered
            {
                entry.resync_triggered = true;
                due.insert(uid.clone());
            }
        }
        due
    }

    /// A reconcile succeeded: the next failure backs off from the start again.
    pub fn succeeded(&self, uid: &str) {
        self.update(uid, |e| {
            e.failures = 0;
            e.backoff_until = None;
        });
    }

    /// A reconcile of `generation` failed: returns how long to back off, and remembers it so that
    /// no trigger of the same generation reaches AWS sooner.
    pub fn failed(&self, uid: &str, generation: i64, retry: Retry, now: Instant) -> Duration {
        let bounds = match retry {
            Retry::Short => self.policy.transient,
            Retry::Long | Retry::OnSpecChange => self.policy.long,
        };
        let mut delay = Duration::ZERO;
        self.update(uid, |e| {
            delay = bounds.delay(e.failures, &mut rand::rng());
            e.failures = e.failures.saturating_add(1);
            e.settled = None;
            e.resync_triggered = false;
            e.backoff_until = Some((generation, now + delay));
        });
        delay
    }

    /// The tags of the collection `proof` names were read (or set by creating or claiming it)
    /// at `now`, and say what `proven` says.
    pub fn tags_read(&self, uid: &str, now: Instant, proof: u64, proven: Proven) {
        self.update(uid, |e| {
            e.tags_read_at = (proven == Proven::Ours).then_some((now, proof));
            e.handed_over = (proven == Proven::HandedOver).then_some(proof);
        });
    }

    /// A reconcile request for the object was handled at `now`.
    pub fn request_handled(&self, uid: &str, now: Instant) {
        self.update(uid, |e| e.request_handled_at = Some(now));
    }

    /// This process removed the object's finalizer.
    pub fn released(&self, uid: &str) {
        self.update(uid, |e| {
            *e = Entry {
                released: true,
                ..Entry::default()
            }
        });
    }

    /// Keeps only the entries of objects for which `live` holds (those still in the watch cache).
    pub fn retain(&self, mut live: impl FnMut(&str) -> bool) {
        self.lock().retain(|uid, _| live(uid));
    }

    /// How many objects the table holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::backoff::Bounds;

    fn policy() -> BackoffPolicy {
        let bounds = Bounds {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(1000),
            floor: Duration::from_secs(1),
        };
        BackoffPolicy {
            transient: bounds,
            long: bounds,
        }
    }

    #[test]
    fn a_failure_is_remembered_for_its_generation_until_success() {
        let memory = Memory::new(policy());
        let now = Instant::now();
        let delay = memory.failed("u", 3, Retry::Short, now);
        assert_eq!(delay, Duration::from_secs(1));
        assert_eq!(memory.recall("u").backoff_until, Some((3, now + delay)));
        memory.succeeded("u");
        assert_eq!(memory.recall("u"), Remembered::default());
        assert!(memory.is_empty(), "an entry with nothing in it leaves");
    }

    #[test]
    fn success_resets_the_backoff() {
        let memory = Memory::new(policy());
        let now = Instant::now();
        for _ in 0..8 {
            memory.failed("u", 1, Retry::Short, now);
        }
        memory.succeeded("u");
        // First attempt after a reset: ceiling == floor == base.
        assert_eq!(
            memory.failed("u", 1, Retry::Short, now),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn objects_gone_from_the_cache_leave_nothing_behind() {
        let memory = Memory::new(policy());
        let now = Instant::now();
        memory.settle("a", 1, Due::At(now));
        memory.failed("b", 1, Retry::Long, now);
        memory.released("c");
        memory.settle("d", 1, Due::SpecChange);
        memory.retain(|uid| uid == "d");
        assert_eq!(memory.len(), 1);
        assert_eq!(memory.recall("d").settled, Some((1, Due::SpecChange)));
    }

    #[test]
    fn a_due_resync_is_answered_once_until_the_object_settles_again() {
        let memory = Memory::new(policy());
        let now = Instant::now();
        memory.settle("due", 1, Due::At(now));
        memory.settle("later", 1, Due::At(now + Duration::from_secs(60)));
        memory.settle("spec", 1, Due::SpecChange);
        memory.failed("failed", 1, Retry::Short, now);
        assert_eq!(memory.due_resyncs(now), HashSet::from(["due".to_owned()]));
        assert!(memory.due_resyncs(now).is_empty(), "triggered once");
        memory.settle("due", 1, Due::At(now + Duration::from_secs(1)));
        let later = now + Duration::from_secs(60);
        assert_eq!(
            memory.due_resyncs(later),
            HashSet::from(["due".to_owned(), "later".to_owned()])
        );
        // A failure in between: its backoff brings it back, and its next settle is due again.
        memory.failed("due", 1, Retry::Short, later);
        memory.settle("due", 1, Due::At(later));
        assert_eq!(memory.due_resyncs(later), HashSet::from(["due".to_owned()]));
    }

    #[test]
    fn a_tag_read_that_names_anyone_else_proves_nothing_and_forgets_an_earlier_proof() {
        let memory = Memory::new(policy());
        let now = Instant::now();
        memory.tags_read("a", now, 7, Proven::Ours);
        assert_eq!(memory.recall("a").tags_read_at, Some((now, 7)));
        memory.tags_read("a", now, 7, Proven::Nothing);
        assert_eq!(memory.recall("a"), Remembered::default());
        memory.tags_read("a", now, 7, Proven::HandedOver);
        assert_eq!(
            (
                memory.recall("a").tags_read_at,
                memory.recall("a").handed_over
            ),
            (None, Some(7))
        );
        memory.tags_read("a", now, 7, Proven::Ours);
        assert_eq!(memory.recall("a").handed_over, None);
    }

    #[test]
    fn when_the_tags_were_read_outlives_a_failure_but_not_a_release() {
        let memory = Memory::new(policy());
        let now = Instant::now();
        memory.tags_read("a", now, 7, Proven::Ours);
        memory.failed("a", 1, Retry::Short, now);
        memory.succeeded("a");
        assert_eq!(memory.recall("a").tags_read_at, Some((now, 7)));
        memory.released("a");
        assert_eq!(memory.recall("a").tags_read_at, None);
    }
}
