//! The status rows of DESIGN §2: two conditions, no flapping, no mixed collection fields.

use super::*;
use crate::core::plan::LastStatus;

const ARN: &str = "arn:aws:rekognition:us-east-1:123456789012:collection/myphotos";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

fn observed(collection: Collection) -> Observed {
    Observed {
        uid: "uid-1".into(),
        generation: 2,
        has_finalizer: true,
        collection_id: "myphotos".into(),
        collection,
        last: LastStatus::default(),
        ..Observed::default()
    }
}

fn described(created_at: &str, faces: i64) -> Collection {
    Collection::Exists {
        arn: Some(ARN.into()),
        description: Some(CollectionDescription {
            arn: ARN.into(),
            face_model_version: Some("7.0".into()),
            face_count: Some(faces),
            user_count: Some(1),
            created_at: Some(
                DateTime::parse_from_rfc3339(created_at)
                    .expect("time")
                    .with_timezone(&Utc),
            ),
        }),
    }
}

fn compose_with(
    previous: Option<&CollectionStatus>,
    o: &Observed,
    created: Option<&CreatedCollection>,
    outcome: Outcome,
) -> CollectionStatus {
    compose(
        &Inputs {
            previous,
            observed: o,
            created,
            region: "us-east-1",
            role: None,
            complete: matches!(outcome, Outcome::Finished(..)),
            now: now(),
        },
        &outcome,
    )
}

fn conds(s: &CollectionStatus) -> [(String, String); 2] {
    let c = |t: &str| {
        let c = s.condition(t).expect("condition");
        (c.status.clone(), c.reason.clone())
    };
    [c(READY), c(SYNCED)]
}

fn pair(ready: (&str, &str), synced: (&str, &str)) -> [(String, String); 2] {
    [
        (ready.0.into(), ready.1.into()),
        (synced.0.into(), synced.1.into()),
    ]
}

fn available() -> CollectionStatus {
    compose_with(
        None,
        &observed(described("2026-01-01T00:00:00Z", 5)),
        None,
        Outcome::Finished(ReadyReason::Available, "ok".into()),
    )
}

#[test]
fn conditions_table() {
    let ready = available();
    let exists = observed(described("2026-01-01T00:00:00Z", 5));
    let fresh = observed(Collection::Unknown);
    let deleting = Observed {
        deleting: true,
        ..exists.clone()
    };
    let throttled = || Outcome::Failed(ReadyReason::Throttled, "slow down".into());
    let cases = [
        (
            "clean reconcile: both True, Synced shows Ready's reason",
            None,
            &exists,
            Outcome::Finished(ReadyReason::Available, "ok".into()),
            pair(("True", "Available"), ("True", "Available")),
        ),
        (
            "a throttled resync of a Ready collection changes Synced only",
            Some(&ready),
            &exists,
            throttled(),
            pair(("True", "Available"), ("False", "Throttled")),
        ),
        (
            "missing permissions on a Ready collection: still usable",
            Some(&ready),
            &exists,
            Outcome::Failed(ReadyReason::AccessDenied, "denied".into()),
            pair(("True", "Available"), ("False", "AccessDenied")),
        ),
        (
            "a new object that was never Ready shows the failure in both",
            None,
            &fresh,
            throttled(),
            pair(("False", "Throttled"), ("False", "Throttled")),
        ),
        (
            "a refusal turns Ready False even on a Ready collection",
            Some(&ready),
            &exists,
            Outcome::Failed(ReadyReason::InvalidParameter, "bad".into()),
            pair(("False", "InvalidParameter"), ("False", "InvalidParameter")),
        ),
        (
            "a foreign collection",
            None,
            &exists,
            Outcome::Finished(ReadyReason::AlreadyExists, "not ours".into()),
            pair(("False", "AlreadyExists"), ("False", "AlreadyExists")),
        ),
        (
            "observe-only, nothing there: the attempt succeeded",
            None,
            &observed(Collection::Missing),
            Outcome::Finished(ReadyReason::NotFound, "none".into()),
            pair(("False", "NotFound"), ("True", "NotFound")),
        ),
        (
            "first contact",
            None,
            &fresh,
            Outcome::InProgress(ReadyReason::Creating, "creating".into()),
            pair(("False", "Creating"), ("Unknown", "Creating")),
        ),
        (
            "a failure while deleting keeps Ready on Deleting",
            Some(&ready),
            &deleting,
            throttled(),
            pair(("False", "Deleting"), ("False", "Throttled")),
        ),
    ];
    for (name, previous, o, outcome, expected) in cases {
        assert_eq!(
            conds(&compose_with(previous, o, None, outcome)),
            expected,
            "{name}"
        );
    }
}

/// The reason of the Stalled condition beside Ready and Synced, or none.
fn stalled_reason(s: &CollectionStatus) -> Option<String> {
    let stalled = s.condition(STALLED)?;
    assert_eq!(
        stalled.status, "True",
        "Stalled is abnormal-true: absent or True"
    );
    assert_eq!(s.conditions.len(), 3, "{:?}", s.conditions);
    Some(stalled.reason.clone())
}

#[test]
fn stalled_table() {
    let ready = available();
    let exists = observed(described("2026-01-01T00:00:00Z", 5));
    let fresh = observed(Collection::Unknown);
    let deleting = Observed {
        deleting: true,
        ..exists.clone()
    };
    let refusal = |reason| Outcome::Finished(reason, "refused".into());
    let failed = |reason| Outcome::Failed(reason, "failed".into());
    let stalled = Some;
    let cases = [
        (
            "clean reconcile",
            None,
            &exists,
            refusal(ReadyReason::Available),
            None,
        ),
        (
            "observe-only, nothing there",
            None,
            &observed(Collection::Missing),
            refusal(ReadyReason::NotFound),
            None,
        ),
        (
            "first contact",
            None,
            &fresh,
            Outcome::InProgress(ReadyReason::Creating, "creating".into()),
            None,
        ),
        (
            "a throttled new object",
            None,
            &fresh,
            failed(ReadyReason::Throttled),
            None,
        ),
        (
            "a Ready collection whose refresh is retried: Ready stays, and kstatus reads it",
            Some(&ready),
            &exists,
            failed(ReadyReason::AwsUnavailable),
            None,
        ),
        (
            "missing permissions are retried on their own",
            None,
            &fresh,
            failed(ReadyReason::AccessDenied),
            None,
        ),
        (
            "a foreign collection",
            None,
            &exists,
            refusal(ReadyReason::AlreadyExists),
            stalled("AlreadyExists"),
        ),
        (
            "a parameter AWS refused",
            Some(&ready),
            &exists,
            failed(ReadyReason::InvalidParameter),
            stalled("InvalidParameter"),
        ),
        (
            "the tenancy policy",
            None,
            &fresh,
            refusal(ReadyReason::PolicyDenied),
            stalled("PolicyDenied"),
        ),
        (
            "a region conflict",
            Some(&ready),
            &exists,
            refusal(ReadyReason::RegionConflict),
            stalled("RegionConflict"),
        ),
        (
            "handed over to another cluster",
            Some(&ready),
            &exists,
            refusal(ReadyReason::HandedOver),
            stalled("HandedOver"),
        ),
        (
            "awaiting a handover",
            None,
            &exists,
            refusal(ReadyReason::AwaitingHandover),
            stalled("AwaitingHandover"),
        ),
        (
            "paused",
            Some(&ready),
            &exists,
            Outcome::Paused("paused".into()),
            None,
        ),
        (
            "deleting",
            Some(&ready),
            &deleting,
            Outcome::InProgress(ReadyReason::Deleting, "deleting".into()),
            None,
        ),
    ];
    for (name, previous, o, outcome, expected) in cases {
        let status = compose_with(previous, o, None, outcome);
        assert_eq!(stalled_reason(&status).as_deref(), expected, "{name}");
    }
    // Once the refusal is lifted and the object is Ready, Stalled goes away.
    let stalled = compose_with(None, &exists, None, refusal(ReadyReason::AlreadyExists));
    let fixed = compose_with(
        Some(&stalled),
        &exists,
        None,
        refusal(ReadyReason::Available),
    );
    assert_eq!(stalled_reason(&fixed), None);
}

#[test]
fn transition_time_moves_only_when_a_condition_changes_status() {
    let ready = available();
    let later = |s: &CollectionStatus, outcome| {
        compose(
            &Inputs {
                previous: Some(s),
                observed: &observed(described("2026-01-01T00:00:00Z", 5)),
                created: None,
                region: "us-east-1",
                role: None,
                complete: false,
                now: now() + chrono::Duration::minutes(5),
            },
            &outcome,
        )
    };
    let throttled = later(
        &ready,
        Outcome::Failed(ReadyReason::Throttled, "slow down".into()),
    );
    let ltt =
        |s: &CollectionStatus, t: &str| s.condition(t).expect("c").last_transition_time.clone();
    assert_eq!(ltt(&throttled, READY), ltt(&ready, READY));
    assert_ne!(ltt(&throttled, SYNCED), ltt(&ready, SYNCED));
    assert!(
        throttled
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(2))
    );
    // Throttled again with the same message: nothing changes, so nothing is written.
    assert_eq!(
        later(
            &throttled,
            Outcome::Failed(ReadyReason::Throttled, "slow down".into())
        ),
        throttled
    );
}

#[test]
fn a_collection_just_created_is_new_in_every_field() {
    // The status described an earlier collection under the same ID (deleted behind our back).
    let old = available();
    let created = CreatedCollection {
        arn: ARN.into(),
        face_model_version: Some("7.0".into()),
    };
    let o = Observed {
        created: true,
        ..observed(Collection::Exists {
            arn: Some(ARN.into()),
            description: None,
        })
    };
    for outcome in [
        Outcome::Finished(ReadyReason::Available, "ok".into()),
        Outcome::Failed(ReadyReason::Throttled, "describe throttled".into()),
    ] {
        let s = compose_with(Some(&old), &o, Some(&created), outcome);
        assert_eq!(
            s.created_at, None,
            "never the old collection's creation time"
        );
        assert_eq!((s.face_count, s.user_count), (Some(0), Some(0)));
        assert_eq!(s.collection_arn.as_deref(), Some(ARN));
    }
}

#[test]
fn a_collection_that_is_not_ours_or_not_there_is_not_described() {
    let old = available();
    let foreign = compose_with(
        Some(&old),
        &observed(described("2026-02-02T00:00:00Z", 9)),
        None,
        Outcome::Finished(ReadyReason::AlreadyExists, "not ours".into()),
    );
    assert_eq!(
        (
            foreign.collection_arn,
            foreign.face_count,
            foreign.created_at
        ),
        (None, None, None)
    );
    let missing = compose_with(
        Some(&old),
        &observed(Collection::Missing),
        None,
        Outcome::Finished(ReadyReason::NotFound, "none".into()),
    );
    assert_eq!((missing.collection_arn, missing.face_count), (None, None));
}

#[test]
fn events_come_on_transitions_only() {
    let ready = available();
    let o = observed(described("2026-01-01T00:00:00Z", 5));
    let throttled = compose_with(
        Some(&ready),
        &o,
        None,
        Outcome::Failed(ReadyReason::Throttled, "slow down".into()),
    );
    let reasons = |before: Option<&CollectionStatus>, after: &CollectionStatus| {
        transition_events(before, after)
            .into_iter()
            .map(|n| (n.warning, n.reason))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        reasons(Some(&ready), &throttled),
        [(true, "Throttled".to_owned())]
    );
    // Throttled again (another message): no second Warning.
    let again = compose_with(
        Some(&throttled),
        &o,
        None,
        Outcome::Failed(ReadyReason::Throttled, "still slow".into()),
    );
    assert_eq!(reasons(Some(&throttled), &again), []);
    // A different failure is a new Warning.
    let down = compose_with(
        Some(&again),
        &o,
        None,
        Outcome::Failed(ReadyReason::AwsUnavailable, "500".into()),
    );
    assert_eq!(
        reasons(Some(&again), &down),
        [(true, "AwsUnavailable".to_owned())]
    );
    // Recovery is one Normal event.
    let back = compose_with(
        Some(&down),
        &o,
        None,
        Outcome::Finished(ReadyReason::Available, "ok".into()),
    );
    assert_eq!(
        reasons(Some(&down), &back),
        [(false, "Recovered".to_owned())]
    );
    // A clean reconcile after a clean one: nothing.
    assert_eq!(reasons(Some(&ready), &ready), []);
}

#[test]
fn every_aws_write_has_its_event() {
    for (acted, reason) in [
        (
            Acted::Created {
                id: "a",
                region: "us-east-1",
                account: Some("210987654321"),
            },
            "Created",
        ),
        (Acted::Recreated { id: "a" }, "Recreated"),
        (Acted::Adopted { id: "a" }, "Adopted"),
        (Acted::TagsSet { keys: vec!["k"] }, "TagsUpdated"),
        (Acted::TagsRemoved { keys: vec!["k"] }, "TagsUpdated"),
        (Acted::Retained { id: "a" }, "Retained"),
        (Acted::Deleted { id: "a" }, "Deleted"),
    ] {
        let notice = action_event(&acted);
        assert!(!notice.warning);
        assert_eq!(notice.reason, reason);
    }
}

fn paused_status(previous: Option<&CollectionStatus>) -> CollectionStatus {
    compose(
        &Inputs {
            previous,
            observed: &Observed {
                generation: 2,
                ..Observed::default()
            },
            created: None,
            region: "us-east-1",
            role: None,
            complete: false,
            now: now(),
        },
        &Outcome::Paused("paused by the annotation".into()),
    )
}

#[test]
fn a_pause_turns_synced_false_and_keeps_ready_as_it_was() {
    let ready = Condition {
        type_: READY.into(),
        status: "True".into(),
        reason: "Available".into(),
        message: "collection a is available".into(),
        last_transition_time: "2026-01-01T00:00:00Z".into(),
        observed_generation: Some(1),
    };
    let before = CollectionStatus {
        region: Some("us-east-1".into()),
        observed_generation: Some(1),
        conditions: vec![ready.clone()],
        ..CollectionStatus::default()
    };
    let paused = paused_status(Some(&before));
    assert_eq!(paused.condition(READY), Some(&ready));
    let synced = paused.condition(SYNCED).expect("synced");
    assert_eq!(
        (synced.status.as_str(), synced.reason.as_str()),
        ("False", "Paused")
    );
    assert_eq!(
        paused.observed_generation,
        Some(1),
        "nothing was reconciled"
    );
    // Never reconciled before: Ready is False with the pause's reason, and nothing is pinned.
    let fresh = paused_status(None);
    assert_eq!(
        fresh.condition(READY).map(|c| c.reason.as_str()),
        Some("Paused")
    );
    assert_eq!((fresh.region, fresh.role_arn), (None, None));
}

#[test]
fn pause_and_resume_are_normal_events_once() {
    let synced = |status: &str, reason: &str| CollectionStatus {
        conditions: vec![Condition {
            type_: SYNCED.into(),
            status: status.into(),
            reason: reason.into(),
            ..Condition::default()
        }],
        ..CollectionStatus::default()
    };
    let ok = synced("True", "Available");
    let paused = synced("False", "Paused");
    let throttled = synced("False", "Throttled");
    let creating = synced("Unknown", "Creating");
    // (name, before, after, expected (warning, reason))
    let cases = [
        ("pausing", Some(&ok), &paused, vec![(false, "Paused")]),
        (
            "paused while failing",
            Some(&throttled),
            &paused,
            vec![(false, "Paused")],
        ),
        ("still paused", Some(&paused), &paused, vec![]),
        ("resumed", Some(&paused), &ok, vec![(false, "Resumed")]),
        (
            "resumed into a create",
            Some(&paused),
            &creating,
            vec![(false, "Resumed")],
        ),
        (
            "resumed into a failure",
            Some(&paused),
            &throttled,
            vec![(true, "Throttled")],
        ),
    ];
    for (name, before, after, expected) in cases {
        let got: Vec<(bool, String)> = transition_events(before, after)
            .into_iter()
            .map(|n| (n.warning, n.reason))
            .collect();
        let expected: Vec<(bool, String)> = expected
            .into_iter()
            .map(|(w, r)| (w, r.to_owned()))
            .collect();
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn the_region_and_role_are_pinned_by_the_first_outcome_that_talked_to_aws() {
    const ROLE: &str = "arn:aws:iam::210987654321:role/team-a";
    let pin = |previous: Option<&CollectionStatus>, role: Option<&str>, outcome: Outcome| {
        let role = role.map(|arn| crate::model::identity::RoleTarget {
            role_arn: arn.to_owned(),
            external_id: None,
        });
        let status = compose(
            &Inputs {
                previous,
                observed: &Observed::default(),
                created: None,
                region: "us-east-1",
                role: role.as_ref(),
                complete: false,
                now: now(),
            },
            &outcome,
        );
        (status.region, status.role_arn, status.account_id)
    };
    let creating = || Outcome::InProgress(ReadyReason::Creating, "creating".into());
    let denied = || Outcome::Finished(ReadyReason::PolicyDenied, "no mapping".into());
    let some = |s: &str| Some(s.to_owned());
    let pinned_own = CollectionStatus {
        region: some("us-east-1"),
        ..CollectionStatus::default()
    };
    let pinned_role = CollectionStatus {
        region: some("us-east-1"),
        role_arn: some(ROLE),
        account_id: some("210987654321"),
        ..CollectionStatus::default()
    };
    // (name, previous, role now, outcome, expected (region, role, account))
    let cases = [
        (
            "first create with a role",
            None,
            Some(ROLE),
            creating(),
            (some("us-east-1"), some(ROLE), some("210987654321")),
        ),
        (
            "first create with the operator's own",
            None,
            None,
            creating(),
            (some("us-east-1"), None, None),
        ),
        (
            "refused before any call pins nothing",
            None,
            Some(ROLE),
            denied(),
            (None, None, None),
        ),
        (
            "pinned own stays own when a role is mapped",
            Some(&pinned_own),
            Some(ROLE),
            creating(),
            (some("us-east-1"), None, None),
        ),
        (
            "pinned role stays",
            Some(&pinned_role),
            None,
            creating(),
            (some("us-east-1"), some(ROLE), some("210987654321")),
        ),
    ];
    for (name, previous, role, outcome, expected) in cases {
        assert_eq!(pin(previous, role, outcome), expected, "{name}");
    }
}

#[test]
fn a_handled_reconcile_request_is_recorded_and_a_paused_object_records_none() {
    let ready = available();
    let asked = Observed {
        requested: Some("now".into()),
        ..observed(described("2026-01-01T00:00:00Z", 5))
    };
    let handled = compose_with(
        Some(&ready),
        &asked,
        None,
        Outcome::Finished(ReadyReason::Available, "ok".into()),
    );
    assert_eq!(handled.last_handled_reconcile_at.as_deref(), Some("now"));
    // Handled by a reconcile that failed: the request was carried out all the same.
    let failed = compose_with(
        Some(&ready),
        &asked,
        None,
        Outcome::Failed(ReadyReason::Throttled, "slow down".into()),
    );
    assert_eq!(failed.last_handled_reconcile_at.as_deref(), Some("now"));
    // Later reconciles keep it; a paused one records nothing new.
    let later = compose_with(
        Some(&handled),
        &observed(described("2026-01-01T00:00:00Z", 5)),
        None,
        Outcome::Finished(ReadyReason::Available, "ok".into()),
    );
    assert_eq!(later.last_handled_reconcile_at.as_deref(), Some("now"));
    let asked_again = Observed {
        requested: Some("again".into()),
        ..asked
    };
    let paused = compose_with(
        Some(&handled),
        &asked_again,
        None,
        Outcome::Paused("paused".into()),
    );
    assert_eq!(paused.last_handled_reconcile_at.as_deref(), Some("now"));
}

#[test]
fn a_collection_awaiting_a_handover_is_not_recorded_as_this_objects() {
    // The same object in another cluster holds it: recording its ARN would make the next
    // reconcile take it for one this object held, and say HandedOver.
    for reason in [ReadyReason::AwaitingHandover, ReadyReason::AlreadyExists] {
        let status = compose_with(
            None,
            &observed(described("2026-01-01T00:00:00Z", 5)),
            None,
            Outcome::Finished(reason, "not ours".into()),
        );
        assert_eq!(status.collection_arn, None, "{reason}");
        assert_eq!(status.face_count, None, "{reason}");
        assert_eq!(status.created_at, None, "{reason}");
    }
    // One this object held and handed over keeps it: that is how it knows it held it.
    let handed = compose_with(
        Some(&available()),
        &observed(described("2026-01-01T00:00:00Z", 5)),
        None,
        Outcome::Finished(ReadyReason::HandedOver, "handed over".into()),
    );
    assert_eq!(handed.collection_arn.as_deref(), Some(ARN));
}
