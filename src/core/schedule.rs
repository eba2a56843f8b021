//! Whether a trigger may reach AWS, and with which priority. Pure, no I/O.
//!
//! A reconcile is triggered by watch events (including the operator's own writes), requeues and
//! restarts. Before anything else, [`gate`] decides from the object and the operator's memory of it
//! whether this trigger is work a user waits for (run now, foreground), a resync that is due (run
//! on spare budget, background), or nothing new (sleep until the object's next due time). The
//! object's status is the memory that survives restarts: an object fully reconciled at its
//! current generation is resynced at its own phase, not at once.

use std::time::{Duration, Instant};

use kube::ResourceExt;

use crate::model::crd::{FINALIZER, ManagementPolicy, ReadyReason, RekognitionCollection};

/// What an object waits for after a reconcile settled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Its next describe, at this instant.
    At(Instant),
    /// A spec change (a new generation); no AWS call until then.
    SpecChange,
}

/// What the operator remembers of one object (by UID) in this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Remembered {
    /// The generation last settled and what it waits for.
    pub settled: Option<(i64, Due)>,
    /// After a failure at this generation: no AWS call before this instant.
    pub backoff_until: Option<(i64, Instant)>,
    /// This process removed the object's finalizer: any copy still marked for deletion is stale.
    pub released: bool,
    /// When this process last proved by the collection's tags that this object holds it, and
    /// for which collection (a proof key).
    pub tags_read_at: Option<(Instant, u64)>,
    /// The collection (a proof key) whose tags named the same object in another cluster.
    pub handed_over: Option<u64>,
    /// When this process last handled a reconcile request for the object.
    pub request_handled_at: Option<Instant>,
}

/// What the object's own status says about its last reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Fully reconciled at the current generation (a collection just created lacks its createdAt
    /// until its first resync, which is all it waits for).
    Settled,
    /// Refused at the current generation; waits for a spec change.
    Refused,
    /// Waits for a handover from another cluster (AwaitingHandover) at the current generation.
    AwaitsHandover,
    /// Anything else: new, changed, failing or being deleted.
    Unsettled,
}

impl Recorded {
    pub fn of(obj: &RekognitionCollection) -> Self {
        let generation = obj.metadata.generation;
        let (Some(status), Some(synced)) = (obj.status.as_ref(), obj.synced_condition()) else {
            return Self::Unsettled;
        };
        // The operator adds its finalizer before anything else it does for an object it manages:
        // one without it (manifests and status restored, the finalizer stripped) is not a state
        // the operator left, whatever its status says.
        let finalizer_missing = obj.spec.management_policy != ManagementPolicy::ObserveOnly
            && !obj.finalizers().iter().any(|f| f == FINALIZER);
        if obj.metadata.deletion_timestamp.is_some()
            || synced.observed_generation != generation
            || finalizer_missing
        {
            return Self::Unsettled;
        }
        match ReadyReason::parse(&synced.reason) {
            Some(ReadyReason::AwaitingHandover) => Self::AwaitsHandover,
            // A policy refusal is checked again (no AWS call): the policy may allow it by now.
            Some(reason) if reason.waits_for_spec_change() && !reason.is_policy_refusal() => {
                Self::Refused
            }
            Some(ReadyReason::NotFound | ReadyReason::Available | ReadyReason::Adopted)
                if synced.status == "True" && status.observed_generation == generation =>
            {
                Self::Settled
            }
            _ => Self::Unsettled,
        }
    }
}

/// The pause annotation and whether the status already reflects it. A pause or unpause changes
/// an annotation, not the generation, so the gate compares the two to let the flip through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pause {
    /// The object carries `rekognition.aws-operators.dev/paused: "true"`.
    pub annotated: bool,
    /// The generation at which the status says Synced=False, reason Paused, if it says so.
    pub recorded_at: Option<i64>,
}

impl Pause {
    pub fn of(obj: &RekognitionCollection) -> Self {
        let recorded_at = obj
            .synced_condition()
            .filter(|c| c.reason == ReadyReason::Paused.as_str())
            .map(|c| c.observed_generation.unwrap_or(0));
        Self {
            annotated: obj.paused(),
            recorded_at,
        }
    }
}

/// Whether a reconcile reads the collection's tags even though nothing else asks it to. The
/// status that says a collection is ours is writable by tenants, so ownership is proven by the
/// tags once in this process's life for the collection the object uses now (`proof`: identity,
/// region, ID): a steady object's first resync after a restart reads them, and so does one whose
/// recorded region or role changed since; again whenever `every` (the tag check interval) has
/// passed since `read_at`.
pub fn tags_due(
    read_at: Option<(Instant, u64)>,
    proof: u64,
    every: Option<Duration>,
    now: Instant,
) -> bool {
    match (read_at, every) {
        (Some((_, proven)), _) if proven != proof => true,
        (None, _) => true,
        (Some((at, _)), Some(every)) => now.saturating_duration_since(at) >= every,
        (Some(_), None) => false,
    }
}

/// When a reconcile that finished comes back, and what the memory keeps meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comeback {
    /// A refusal by the platform team's configuration: any trigger checks it again (no AWS call),
    /// and this requeue catches what nothing signals, such as a namespace's labels.
    Recheck(Duration),
    /// A refusal that only a spec change can lift: no AWS call until then.
    OnSpecChange,
    /// Settled: the next describe after this long.
    Resync(Duration),
}

/// When an object that finished with `reason` comes back; `phase`: how long until the object's
/// own resync. A collection just created comes back at its phase too: its creation time arrives
/// with that first describe, so a new object costs one AWS call and two API writes until then.
pub fn after_finish(reason: ReadyReason, phase: Duration) -> Comeback {
    if reason.is_policy_refusal() {
        Comeback::Recheck(phase)
    } else if reason.waits_for_spec_change() {
        Comeback::OnSpecChange
    } else {
        Comeback::Resync(phase)
    }
}

/// The least time between two reconcile requests handled for one object.
pub const REQUEST_SPACING: Duration = Duration::from_secs(5);

/// Whether a user waits for the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// A new object, a spec change, a deletion: queues for the next token.
    Foreground,
    /// A periodic resync: runs only on a free token, else comes back later.
    Background,
}

/// What a trigger does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Reconcile now; AWS calls carry this priority.
    Run(Priority),
    /// No AWS call: wait this long (a backoff).
    Sleep(Duration),
    /// No AWS call: the object was reconciled at this generation before (the status says so) and
    /// is next due after this long; remember that.
    Resync(Duration),
    /// No AWS call until the object changes, or its resync remembered in the per-object memory is
    /// due (the operator's resync trigger wakes it then).
    AwaitChange,
}

impl Gate {
    /// The decision's name, for the operator's metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Run(_) => "run",
            Self::Sleep(_) => "backoff",
            Self::Resync(_) => "resync",
            Self::AwaitChange => "await_change",
        }
    }
}

/// What the gate reads of an object, once per trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub generation: i64,
    /// The object is marked for deletion.
    pub deleting: bool,
    /// What its status records.
    pub recorded: Recorded,
    pub pause: Pause,
    /// A reconcile asked for by annotation is pending: it runs at once, in the foreground,
    /// whatever the object waits for (a paused object excepted).
    pub requested: bool,
}

impl Trigger {
    pub fn of(obj: &RekognitionCollection) -> Self {
        Self {
            generation: obj.metadata.generation.unwrap_or(0),
            deleting: obj.metadata.deletion_timestamp.is_some(),
            recorded: Recorded::of(obj),
            pause: Pause::of(obj),
            requested: obj.pending_reconcile_request().is_some(),
        }
    }
}

/// The gate for one trigger. `phase` is how long until the object's next resync at its own
/// phase within the interval. `takes_over`: this process is set to take over from some cluster, so
/// an object that awaited a handover is looked at once more.
pub fn gate(
    trigger: Trigger,
    memory: Remembered,
    now: Instant,
    phase: Duration,
    takes_over: bool,
) -> Gate {
    let Trigger {
        generation,
        deleting,
        recorded,
        pause,
        requested,
    } = trigger;
    if deleting && memory.released {
        // A stale copy of an object this process already let go.
        return Gate::AwaitChange;
    }
    // A pause makes no AWS call, so it need not wait for a backoff or a resync; it is said once
    // per generation, then the object waits for its next change. An unpause resumes at once.
    match (pause.annotated, pause.recorded_at) {
        (true, Some(at)) if at == generation => return Gate::AwaitChange,
        (true, _) | (false, Some(_)) => return Gate::Run(Priority::Foreground),
        (false, None) => {}
    }
    if requested {
        // One request per object per REQUEST_SPACING: a flood of new values costs AWS no more
        // than that; the values in between are coalesced into the next one handled.
        if let Some(handled) = memory.request_handled_at
            && handled + REQUEST_SPACING > now
        {
            return Gate::Sleep(handled + REQUEST_SPACING - now);
        }
        return Gate::Run(Priority::Foreground);
    }
    if let Some((failed_at, until)) = memory.backoff_until
        && failed_at == generation
        && until > now
    {
        return Gate::Sleep(until - now);
    }
    if deleting {
        return Gate::Run(Priority::Foreground);
    }
    match memory.settled {
        Some((settled, Due::SpecChange)) if settled == generation => Gate::AwaitChange,
        Some((settled, Due::At(due))) if settled == generation => {
            if due > now {
                Gate::AwaitChange
            } else {
                Gate::Run(Priority::Background)
            }
        }
        // Nothing remembered at this generation (a restart, a failover): the status says what the
        // operator did, but anyone with status access may have written it, so a verdict is looked
        // at again at the object's own phase. A refusal or a handover this process itself found
        // is remembered above and waits for a spec change.
        _ => match recorded {
            Recorded::Settled | Recorded::Refused => Gate::Resync(phase),
            Recorded::AwaitsHandover if takes_over => Gate::Run(Priority::Background),
            Recorded::AwaitsHandover => Gate::Resync(phase),
            Recorded::Unsettled => Gate::Run(Priority::Foreground),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHASE: Duration = Duration::from_secs(42);

    fn at(now: Instant, secs: i64) -> Instant {
        if secs >= 0 {
            now + Duration::from_secs(secs as u64)
        } else {
            now - Duration::from_secs((-secs) as u64)
        }
    }

    #[test]
    fn gate_table() {
        let now = Instant::now() + Duration::from_secs(3600);
        let fresh = Remembered::default();
        let settled = Recorded::Settled;
        let fg = Gate::Run(Priority::Foreground);
        let bg = Gate::Run(Priority::Background);
        // (name, generation, deleting, recorded, memory, expected)
        let cases = [
            ("new object", 1, false, Recorded::Unsettled, fresh, fg),
            (
                "restart over a settled object: resync at its phase, no call now",
                3,
                false,
                settled,
                fresh,
                Gate::Resync(PHASE),
            ),
            (
                "restart over an object created but never described: its createdAt waits for its phase",
                1,
                false,
                Recorded::Settled,
                fresh,
                Gate::Resync(PHASE),
            ),
            (
                "restart over an object refused at this generation: looked at again at its phase",
                2,
                false,
                Recorded::Refused,
                fresh,
                Gate::Resync(PHASE),
            ),
            (
                "own status write after settling: the resync trigger wakes it when due",
                1,
                false,
                Recorded::Unsettled,
                Remembered {
                    settled: Some((1, Due::At(at(now, 30)))),
                    ..fresh
                },
                Gate::AwaitChange,
            ),
            (
                "resync due: background",
                1,
                false,
                settled,
                Remembered {
                    settled: Some((1, Due::At(at(now, -1)))),
                    ..fresh
                },
                bg,
            ),
            (
                "spec changed since settling",
                2,
                false,
                settled,
                Remembered {
                    settled: Some((1, Due::At(at(now, 30)))),
                    ..fresh
                },
                Gate::Resync(PHASE),
            ),
            (
                "spec changed, status not yet caught up",
                2,
                false,
                Recorded::Unsettled,
                Remembered {
                    settled: Some((1, Due::SpecChange)),
                    ..fresh
                },
                fg,
            ),
            (
                "waits for a spec change",
                1,
                false,
                Recorded::Unsettled,
                Remembered {
                    settled: Some((1, Due::SpecChange)),
                    ..fresh
                },
                Gate::AwaitChange,
            ),
            (
                "backoff holds across the operator's own status write",
                1,
                false,
                Recorded::Unsettled,
                Remembered {
                    backoff_until: Some((1, at(now, 7))),
                    ..fresh
                },
                Gate::Sleep(Duration::from_secs(7)),
            ),
            (
                "backoff over: retry",
                1,
                false,
                Recorded::Unsettled,
                Remembered {
                    backoff_until: Some((1, at(now, -1))),
                    ..fresh
                },
                fg,
            ),
            (
                "a new generation cuts the backoff short",
                2,
                false,
                Recorded::Unsettled,
                Remembered {
                    backoff_until: Some((1, at(now, 300))),
                    ..fresh
                },
                fg,
            ),
            (
                "deletion (a new generation) cuts the backoff and the resync wait short",
                2,
                true,
                Recorded::Unsettled,
                Remembered {
                    settled: Some((1, Due::At(at(now, 300)))),
                    backoff_until: Some((1, at(now, 300))),
                    released: false,
                    ..fresh
                },
                fg,
            ),
            (
                "stale copy of an object this process released",
                2,
                true,
                Recorded::Unsettled,
                Remembered {
                    released: true,
                    ..fresh
                },
                Gate::AwaitChange,
            ),
        ];
        for (name, generation, deleting, recorded, memory, expected) in cases {
            assert_eq!(
                gate(
                    Trigger {
                        generation,
                        deleting,
                        recorded,
                        pause: Pause::default(),
                        requested: false,
                    },
                    memory,
                    now,
                    PHASE,
                    false,
                ),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn a_pause_or_unpause_reaches_the_reconcile_at_once_and_a_said_pause_waits() {
        let now = Instant::now() + Duration::from_secs(3600);
        let fg = Gate::Run(Priority::Foreground);
        let settled = Remembered {
            settled: Some((1, Due::At(now + Duration::from_secs(300)))),
            ..Remembered::default()
        };
        let backing_off = Remembered {
            backoff_until: Some((1, now + Duration::from_secs(300))),
            ..Remembered::default()
        };
        let steady = Recorded::Settled;
        let pause = |annotated, recorded_at| Pause {
            annotated,
            recorded_at,
        };
        // (name, generation, deleting, pause, memory, expected)
        let cases = [
            (
                "paused, same generation, settled till its resync: runs now",
                1,
                false,
                pause(true, None),
                settled,
                fg,
            ),
            (
                "paused during a backoff: runs now (a pause makes no AWS call)",
                1,
                false,
                pause(true, None),
                backing_off,
                fg,
            ),
            (
                "pause already in the status: waits for a change",
                1,
                false,
                pause(true, Some(1)),
                settled,
                Gate::AwaitChange,
            ),
            (
                "paused and deleted since: says so again",
                2,
                true,
                pause(true, Some(1)),
                Remembered::default(),
                fg,
            ),
            (
                "unpaused: resumes at once",
                1,
                false,
                pause(false, Some(1)),
                settled,
                fg,
            ),
            (
                "never paused: the usual gate",
                1,
                false,
                pause(false, None),
                settled,
                Gate::AwaitChange,
            ),
            (
                "a stale copy of a released object stays quiet even if paused",
                2,
                true,
                pause(true, None),
                Remembered {
                    released: true,
                    ..Remembered::default()
                },
                Gate::AwaitChange,
            ),
        ];
        for (name, generation, deleting, pause, memory, expected) in cases {
            assert_eq!(
                gate(
                    Trigger {
                        generation,
                        deleting,
                        recorded: steady,
                        pause,
                        requested: false,
                    },
                    memory,
                    now,
                    PHASE,
                    false,
                ),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn the_status_records_a_settled_object_only_at_its_generation() {
        use crate::model::crd::{CollectionStatus, Condition};
        let object = |generation: i64, reason: &str, observed: i64, created_at: Option<&str>| {
            let mut obj = RekognitionCollection::new("a", Default::default());
            obj.metadata.generation = Some(generation);
            obj.metadata.finalizers = Some(vec![FINALIZER.into()]);
            obj.status = Some(CollectionStatus {
                observed_generation: Some(observed),
                created_at: created_at.map(str::to_owned),
                conditions: vec![Condition {
                    type_: "Synced".into(),
                    status: if ReadyReason::parse(reason)
                        .is_some_and(|r| r.waits_for_spec_change() || r == ReadyReason::Throttled)
                    {
                        "False".into()
                    } else {
                        "True".into()
                    },
                    reason: reason.into(),
                    observed_generation: Some(generation),
                    ..Condition::default()
                }],
                ..CollectionStatus::default()
            });
            obj
        };
        let t = Some("2026-01-01T00:00:00Z");
        assert_eq!(
            Recorded::of(&object(2, "Available", 2, t)),
            Recorded::Settled
        );
        assert_eq!(
            Recorded::of(&object(2, "Available", 2, None)),
            Recorded::Settled
        );
        assert_eq!(
            Recorded::of(&object(3, "Available", 2, t)),
            Recorded::Unsettled
        );
        assert_eq!(
            Recorded::of(&object(2, "Throttled", 2, t)),
            Recorded::Unsettled
        );
        assert_eq!(
            Recorded::of(&object(2, "NotFound", 2, None)),
            Recorded::Settled
        );
        assert_eq!(
            Recorded::of(&object(2, "AlreadyExists", 1, None)),
            Recorded::Refused
        );
        // The platform team may have lifted a policy refusal since: it is checked again.
        assert_eq!(
            Recorded::of(&object(2, "PolicyDenied", 1, None)),
            Recorded::Unsettled
        );
        assert_eq!(
            Recorded::of(&RekognitionCollection::new("a", Default::default())),
            Recorded::Unsettled
        );
        // Without the finalizer (manifests and status restored, or the finalizer stripped) a
        // managed object is not in a state the operator left; an observed one needs none.
        let mut stripped = object(2, "Available", 2, t);
        stripped.metadata.finalizers = None;
        assert_eq!(Recorded::of(&stripped), Recorded::Unsettled);
        stripped.spec.management_policy = ManagementPolicy::ObserveOnly;
        assert_eq!(Recorded::of(&stripped), Recorded::Settled);
    }

    #[test]
    fn a_reconcile_request_runs_at_once_in_the_foreground_unless_paused() {
        let now = Instant::now() + Duration::from_secs(60);
        let settled = Recorded::Settled;
        let run = |recorded, pause, memory| {
            let trigger = Trigger {
                generation: 1,
                deleting: false,
                recorded,
                pause,
                requested: true,
            };
            gate(trigger, memory, now, PHASE, false)
        };
        let fg = Gate::Run(Priority::Foreground);
        let backing_off = Remembered {
            backoff_until: Some((1, now + Duration::from_secs(300))),
            ..Remembered::default()
        };
        let waits = Remembered {
            settled: Some((1, Due::SpecChange)),
            ..Remembered::default()
        };
        let resyncs_later = Remembered {
            settled: Some((1, Due::At(now + Duration::from_secs(300)))),
            ..Remembered::default()
        };
        assert_eq!(run(settled, Pause::default(), Remembered::default()), fg);
        assert_eq!(run(settled, Pause::default(), resyncs_later), fg);
        assert_eq!(run(Recorded::Refused, Pause::default(), waits), fg);
        assert_eq!(run(Recorded::Unsettled, Pause::default(), backing_off), fg);
        // One request handled per object per REQUEST_SPACING: the next waits out the rest.
        let just_handled = Remembered {
            request_handled_at: Some(now - Duration::from_secs(2)),
            ..Remembered::default()
        };
        assert_eq!(
            run(settled, Pause::default(), just_handled),
            Gate::Sleep(REQUEST_SPACING - Duration::from_secs(2))
        );
        let handled_long_ago = Remembered {
            request_handled_at: Some(now - REQUEST_SPACING),
            ..Remembered::default()
        };
        assert_eq!(run(settled, Pause::default(), handled_long_ago), fg);
        let paused = Pause {
            annotated: true,
            recorded_at: Some(1),
        };
        assert_eq!(
            run(settled, paused, Remembered::default()),
            Gate::AwaitChange
        );
    }

    #[test]
    fn an_object_awaiting_a_handover_is_looked_at_once_when_the_operator_takes_over() {
        let now = Instant::now();
        let run = |memory, takes_over| {
            let trigger = Trigger {
                generation: 1,
                deleting: false,
                recorded: Recorded::AwaitsHandover,
                pause: Pause::default(),
                requested: false,
            };
            gate(trigger, memory, now, PHASE, takes_over)
        };
        // A restart: the status may be forged, so it is looked at again at its phase.
        assert_eq!(run(Remembered::default(), false), Gate::Resync(PHASE));
        assert_eq!(
            run(Remembered::default(), true),
            Gate::Run(Priority::Background)
        );
        // Looked at in this process already: it waits like any refusal.
        let settled = Remembered {
            settled: Some((1, Due::SpecChange)),
            ..Remembered::default()
        };
        assert_eq!(run(settled, true), Gate::AwaitChange);
    }

    #[test]
    fn when_a_finished_object_comes_back() {
        let phase = PHASE;
        let cases = [
            // Just created or not, a collection is next described at its phase.
            (ReadyReason::Available, Comeback::Resync(phase)),
            (ReadyReason::Adopted, Comeback::Resync(phase)),
            (ReadyReason::NotFound, Comeback::Resync(phase)),
            (ReadyReason::PolicyDenied, Comeback::Recheck(phase)),
            (ReadyReason::AlreadyExists, Comeback::OnSpecChange),
            (ReadyReason::RegionConflict, Comeback::OnSpecChange),
            (ReadyReason::HandedOver, Comeback::OnSpecChange),
            (ReadyReason::AwaitingHandover, Comeback::OnSpecChange),
        ];
        for (reason, expected) in cases {
            assert_eq!(after_finish(reason, phase), expected, "{reason}");
        }
    }

    #[test]
    fn tags_are_read_once_per_process_per_collection_and_again_when_the_check_is_due() {
        let now = Instant::now() + Duration::from_secs(7200);
        let hour = Some(Duration::from_secs(3600));
        let cases = [
            ("never read in this process", None, None, true),
            (
                "read for this collection",
                Some((at(now, -10), 7)),
                None,
                false,
            ),
            (
                "read for another collection (pin changed)",
                Some((at(now, -10), 8)),
                None,
                true,
            ),
            ("check due", Some((at(now, -3600), 7)), hour, true),
            ("check not due yet", Some((at(now, -3599), 7)), hour, false),
        ];
        for (name, read_at, every, expected) in cases {
            assert_eq!(tags_due(read_at, 7, every, now), expected, "{name}");
        }
    }
}
