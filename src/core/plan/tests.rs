//! Every behaviour row of DESIGN §3, as a table of observed states and the step they lead to.

use super::*;

const UID: &str = "uid-1";
const ARN: &str = "arn:aws:rekognition:us-east-1:123456789012:collection/myphotos";

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn owned(pairs: &[(&str, &str)]) -> Tags {
    let mut t = tags(pairs);
    t.insert(OWNER_TAG.into(), UID.into());
    t
}

fn description() -> CollectionDescription {
    CollectionDescription {
        arn: ARN.into(),
        face_model_version: Some("7.0".into()),
        face_count: Some(0),
        user_count: Some(0),
        created_at: None,
    }
}

fn exists() -> Collection {
    Collection::Exists {
        arn: Some(ARN.into()),
        description: Some(description()),
    }
}

/// A new object with a finalizer, nothing known yet.
fn fresh() -> Observed {
    Observed {
        uid: UID.into(),
        generation: 1,
        has_finalizer: true,
        collection_id: "myphotos".into(),
        ..Observed::default()
    }
}

/// An object whose status says Available at generation 1, described once since its creation.
fn steady() -> Observed {
    Observed {
        last: LastStatus {
            arn: Some(ARN.into()),
            created_at: Some("2026-01-01T00:00:00Z".into()),
            reason: Some(ReadyReason::Available),
            reason_generation: Some(1),
            observed_generation: Some(1),
            ..LastStatus::default()
        },
        ..fresh()
    }
}

fn refused(reason: ReadyReason) -> Observed {
    Observed {
        last: LastStatus {
            reason: Some(reason),
            reason_generation: Some(1),
            ..LastStatus::default()
        },
        ..fresh()
    }
}

fn reason_of(step: &Step) -> Option<ReadyReason> {
    match step {
        Step::Finish { reason, .. } => Some(*reason),
        _ => None,
    }
}

#[test]
fn create_path() {
    let cases: Vec<(&str, Observed, Step)> = vec![
        (
            "a new object gets the finalizer before anything reaches AWS",
            Observed {
                has_finalizer: false,
                ..fresh()
            },
            Step::AddFinalizer,
        ),
        (
            "a new object is created with its tags and the ownership tag in one call",
            Observed {
                desired_tags: tags(&[("team", "vision")]),
                ..fresh()
            },
            Step::Create {
                tags: owned(&[("team", "vision")]),
                recreate: false,
            },
        ),
        (
            "after an answer of already exists, the collection is described to learn its ARN",
            Observed {
                collection: Collection::Exists {
                    arn: None,
                    description: None,
                },
                ..fresh()
            },
            Step::Describe,
        ),
        (
            "an existing collection the status never recorded has its owner checked",
            Observed {
                collection: exists(),
                ..fresh()
            },
            Step::ListTags { arn: ARN.into() },
        ),
        (
            "a just-created collection is Available from CreateCollection's answer alone",
            Observed {
                created: true,
                tags: Some(owned(&[])),
                collection: Collection::Exists {
                    arn: Some(ARN.into()),
                    description: None,
                },
                ..fresh()
            },
            Step::Finish {
                reason: ReadyReason::Available,
                message: "collection myphotos is available".into(),
            },
        ),
    ];
    for (name, observed, expected) in cases {
        assert_eq!(plan(&observed), expected, "{name}");
    }
}

#[test]
fn created_collection_becomes_available_without_listing_tags() {
    let o = Observed {
        created: true,
        tags: Some(owned(&[])),
        collection: exists(),
        ..fresh()
    };
    assert_eq!(reason_of(&plan(&o)), Some(ReadyReason::Available));
}

#[test]
fn crash_after_create_carries_on_when_our_uid_is_on_the_collection() {
    let o = Observed {
        collection: exists(),
        tags: Some(owned(&[])),
        ..fresh()
    };
    assert_eq!(reason_of(&plan(&o)), Some(ReadyReason::Available));
}

#[test]
fn foreign_collection_is_never_taken_silently() {
    for foreign in [tags(&[]), tags(&[(OWNER_TAG, "someone-else")])] {
        let o = Observed {
            collection: exists(),
            tags: Some(foreign),
            ..fresh()
        };
        assert_eq!(reason_of(&plan(&o)), Some(ReadyReason::AlreadyExists));
    }
}

#[test]
fn a_refusal_in_the_status_is_looked_at_again_in_aws_and_a_spec_change_creates() {
    // The status is writable by tenants: a refusal there is never taken on its word. (The gate
    // keeps a refusal this process found from reaching the plan before a spec change.)
    for reason in [ReadyReason::AlreadyExists, ReadyReason::InvalidParameter] {
        assert_eq!(
            plan(&refused(reason)),
            Step::Create {
                tags: owned(&[]),
                recreate: false
            },
            "{reason}"
        );
        let changed = Observed {
            generation: 2,
            ..refused(reason)
        };
        assert_eq!(
            plan(&changed),
            Step::Create {
                tags: owned(&[]),
                recreate: false
            },
            "{reason} after a spec change"
        );
    }
}

#[test]
fn a_reconcile_request_looks_at_the_object_in_full() {
    let requested = |o: Observed| Observed {
        requested: Some("2026-12-04T03:00:00Z".into()),
        tags_due: true,
        ..o
    };
    // A steady object: described, then its tags read, then finished.
    let steady_asked = requested(steady());
    assert_eq!(plan(&steady_asked), Step::Describe);
    let described = Observed {
        collection: exists(),
        ..steady_asked.clone()
    };
    assert_eq!(plan(&described), Step::ListTags { arn: ARN.into() });
    let read = Observed {
        tags: Some(owned(&[])),
        ..described
    };
    assert_eq!(reason_of(&plan(&read)), Some(ReadyReason::Available));
    // A refused object is looked at again at the same generation.
    for reason in [ReadyReason::AlreadyExists, ReadyReason::InvalidParameter] {
        assert_ne!(plan(&requested(refused(reason))), Step::Wait, "{reason}");
    }
    // A paused one is not.
    let paused = Observed {
        paused: true,
        ..requested(steady())
    };
    assert!(matches!(plan(&paused), Step::Pause { .. }));
}

#[test]
fn a_policy_refusal_is_checked_afresh_and_lifted_without_a_spec_change() {
    let still = Observed {
        policy_denied: Some("tenancy policy: region eu-west-1 is not allowed".into()),
        ..refused(ReadyReason::PolicyDenied)
    };
    assert_eq!(reason_of(&plan(&still)), Some(ReadyReason::PolicyDenied));
    let lifted = Observed {
        has_finalizer: false,
        ..refused(ReadyReason::PolicyDenied)
    };
    assert_eq!(plan(&lifted), Step::AddFinalizer);
    assert_eq!(
        plan(&refused(ReadyReason::PolicyDenied)),
        Step::Create {
            tags: owned(&[]),
            recreate: false
        }
    );
}

#[test]
fn retrying_reasons_do_not_wait() {
    for reason in [
        ReadyReason::Throttled,
        ReadyReason::AccessDenied,
        ReadyReason::QuotaExceeded,
        ReadyReason::AwsUnavailable,
        ReadyReason::AwsError,
    ] {
        assert_ne!(plan(&refused(reason)), Step::Wait, "{reason}");
    }
}

#[test]
fn adopt_claims_an_unowned_collection_then_manages_it() {
    let o = Observed {
        management_policy: ManagementPolicy::Adopt,
        collection: exists(),
        tags: Some(tags(&[("legacy", "1")])),
        ..fresh()
    };
    assert_eq!(
        plan(&o),
        Step::Tag {
            arn: ARN.into(),
            tags: tags(&[(OWNER_TAG, UID)]),
            purpose: TagPurpose::Adopt
        }
    );
    let claimed = Observed {
        adopted: true,
        tags: Some(owned(&[("legacy", "1")])),
        ..o
    };
    assert_eq!(
        plan(&claimed),
        Step::Untag {
            arn: ARN.into(),
            keys: vec!["legacy".into()],
            purpose: TagPurpose::Converge
        }
    );
    let converged = Observed {
        tags: Some(owned(&[])),
        ..claimed
    };
    assert_eq!(reason_of(&plan(&converged)), Some(ReadyReason::Adopted));
}

#[test]
fn adopt_does_not_take_a_collection_owned_by_another_object() {
    let o = Observed {
        management_policy: ManagementPolicy::Adopt,
        collection: exists(),
        tags: Some(tags(&[(OWNER_TAG, "other")])),
        ..fresh()
    };
    assert_eq!(reason_of(&plan(&o)), Some(ReadyReason::AlreadyExists));
}

#[test]
fn adopt_creates_when_nothing_is_there() {
    let o = Observed {
        management_policy: ManagementPolicy::Adopt,
        ..fresh()
    };
    assert!(matches!(plan(&o), Step::Create { .. }));
}

#[test]
fn observe_only_never_writes() {
    let base = Observed {
        management_policy: ManagementPolicy::ObserveOnly,
        has_finalizer: false,
        ..fresh()
    };
    assert_eq!(plan(&base), Step::Describe);
    let missing = Observed {
        collection: Collection::Missing,
        ..base.clone()
    };
    assert_eq!(reason_of(&plan(&missing)), Some(ReadyReason::NotFound));
    let found = Observed {
        collection: exists(),
        tags: Some(tags(&[("x", "y")])),
        ..base.clone()
    };
    assert_eq!(reason_of(&plan(&found)), Some(ReadyReason::Available));
    let with_finalizer = Observed {
        has_finalizer: true,
        ..base
    };
    assert_eq!(
        plan(&with_finalizer),
        Step::RemoveFinalizer {
            reason: Release::NotNeeded
        }
    );
}

#[test]
fn steady_state_costs_one_describe() {
    assert_eq!(plan(&steady()), Step::Describe);
    let described = Observed {
        collection: exists(),
        ..steady()
    };
    assert_eq!(reason_of(&plan(&described)), Some(ReadyReason::Available));
}

#[test]
fn the_first_resync_after_a_create_proves_the_collection_by_its_tags() {
    // Created by this object: the status holds no creation time yet, so the first description
    // cannot tell this collection from one made by somebody else under the same ID meanwhile.
    let first = Observed {
        collection: exists(),
        last: LastStatus {
            created_at: None,
            ..steady().last
        },
        ..steady()
    };
    assert_eq!(plan(&first), Step::ListTags { arn: ARN.into() });
    let ours = Observed {
        tags: Some(owned(&[])),
        ..first.clone()
    };
    assert_eq!(reason_of(&plan(&ours)), Some(ReadyReason::Available));
    let replaced = Observed {
        tags: Some(tags(&[(OWNER_TAG, "someone-else")])),
        ..first
    };
    assert_eq!(
        reason_of(&plan(&replaced)),
        Some(ReadyReason::AlreadyExists)
    );
}

#[test]
fn a_due_tag_check_puts_right_tags_edited_behind_the_operators_back() {
    let due = Observed {
        collection: exists(),
        tags_due: true,
        desired_tags: tags(&[("team", "a")]),
        ..steady()
    };
    assert_eq!(plan(&due), Step::ListTags { arn: ARN.into() });
    let edited = Observed {
        tags: Some(owned(&[("team", "b")])),
        ..due.clone()
    };
    assert_eq!(
        plan(&edited),
        Step::Tag {
            arn: ARN.into(),
            tags: tags(&[("team", "a")]),
            purpose: TagPurpose::Converge
        }
    );
    let unchanged = Observed {
        tags: Some(owned(&[("team", "a")])),
        ..due.clone()
    };
    assert_eq!(reason_of(&plan(&unchanged)), Some(ReadyReason::Available));
    // The owner tag removed behind its back: the object owns nothing any more.
    let disowned = Observed {
        tags: Some(tags(&[("team", "a")])),
        ..due
    };
    assert_eq!(
        reason_of(&plan(&disowned)),
        Some(ReadyReason::AlreadyExists)
    );
}

#[test]
fn spec_change_converges_tags_by_difference_removing_before_adding() {
    let o = Observed {
        generation: 2,
        desired_tags: tags(&[("a", "1"), ("b", "new")]),
        collection: exists(),
        ..steady()
    };
    assert_eq!(plan(&o), Step::ListTags { arn: ARN.into() });
    let listed = Observed {
        tags: Some(owned(&[("b", "old"), ("c", "3")])),
        ..o
    };
    assert_eq!(
        plan(&listed),
        Step::Untag {
            arn: ARN.into(),
            keys: vec!["c".into()],
            purpose: TagPurpose::Converge
        }
    );
    let removed = Observed {
        tags: Some(owned(&[("b", "old")])),
        ..listed
    };
    assert_eq!(
        plan(&removed),
        Step::Tag {
            arn: ARN.into(),
            tags: tags(&[("a", "1"), ("b", "new")]),
            purpose: TagPurpose::Converge
        }
    );
}

#[test]
fn a_rename_at_the_tag_limit_never_exceeds_it_and_calls_are_split_at_aws_limits() {
    // 199 tags plus the owner tag; the spec renames all of them.
    let old: Vec<(String, String)> = (0..199)
        .map(|i| (format!("old-{i:03}"), "v".into()))
        .collect();
    let new: Tags = (0..199)
        .map(|i| (format!("new-{i:03}"), "v".into()))
        .collect();
    let mut actual: Tags = old.into_iter().collect();
    actual.insert(OWNER_TAG.into(), UID.into());
    let mut o = Observed {
        generation: 2,
        desired_tags: new.clone(),
        collection: exists(),
        tags: Some(actual),
        ..steady()
    };
    let mut calls = 0;
    loop {
        let current = o.tags.clone().expect("tags");
        match plan(&o) {
            Step::Untag { keys, .. } => {
                assert!(keys.len() <= MAX_UNTAG_KEYS_PER_CALL);
                let mut next = current;
                for key in keys {
                    next.remove(&key);
                }
                o.tags = Some(next);
            }
            Step::Tag { tags, .. } => {
                assert!(tags.len() <= MAX_TAGS_PER_CALL);
                let mut next = current;
                next.extend(tags);
                assert!(next.len() <= 200, "{} tags on the collection", next.len());
                o.tags = Some(next);
            }
            Step::Finish { reason, .. } => {
                assert_eq!(reason, ReadyReason::Available);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
        calls += 1;
        assert!(calls < 20);
    }
    let mut expected = new;
    expected.insert(OWNER_TAG.into(), UID.into());
    assert_eq!(o.tags, Some(expected));
    assert_eq!(
        calls, 5,
        "four untag calls of at most 50 keys, one tag call"
    );
}

#[test]
fn aws_reserved_tags_are_never_removed() {
    let mut actual = owned(&[("team", "x")]);
    actual.insert("aws:cloudformation:stack-name".into(), "legacy".into());
    let (set, remove) = tag_diff(&tags(&[("team", "x")]), &actual);
    assert!(set.is_empty() && remove.is_empty(), "{remove:?}");
}

#[test]
fn ownership_is_proven_not_assumed() {
    // A recreate found the ID taken by someone else meanwhile: the tags decide.
    let taken = Observed {
        already_existed: true,
        collection: exists(),
        ..steady()
    };
    assert_eq!(plan(&taken), Step::ListTags { arn: ARN.into() });
    // A describe shows another collection than the status recorded (another creation time).
    let replaced = Observed {
        last: LastStatus {
            created_at: Some("2020-01-01T00:00:00Z".into()),
            ..steady().last
        },
        collection: Collection::Exists {
            arn: Some(ARN.into()),
            description: Some(CollectionDescription {
                created_at: Some(
                    chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
                        .expect("time")
                        .with_timezone(&chrono::Utc),
                ),
                ..description()
            }),
        },
        ..steady()
    };
    assert_eq!(plan(&replaced), Step::ListTags { arn: ARN.into() });
    let foreign = Observed {
        tags: Some(tags(&[(OWNER_TAG, "someone-else")])),
        ..replaced
    };
    assert_eq!(reason_of(&plan(&foreign)), Some(ReadyReason::AlreadyExists));
}

#[test]
fn turning_observe_only_releases_ownership_before_the_finalizer() {
    let flipped = Observed {
        management_policy: ManagementPolicy::ObserveOnly,
        ..steady()
    };
    assert_eq!(plan(&flipped), Step::ListTags { arn: ARN.into() });
    let owned_tags = Observed {
        tags: Some(owned(&[])),
        ..flipped.clone()
    };
    assert_eq!(
        plan(&owned_tags),
        Step::Untag {
            arn: ARN.into(),
            keys: vec![OWNER_TAG.into()],
            purpose: TagPurpose::Release
        }
    );
    let released = Observed {
        tags: Some(tags(&[])),
        ..flipped.clone()
    };
    assert_eq!(
        plan(&released),
        Step::RemoveFinalizer {
            reason: Release::NotNeeded
        }
    );
    // Flipped and deleted at once: released the same way.
    let deleted = Observed {
        deleting: true,
        generation: 2,
        tags: Some(owned(&[])),
        ..flipped
    };
    assert!(matches!(
        plan(&deleted),
        Step::Untag {
            purpose: TagPurpose::Release,
            ..
        }
    ));
}

#[test]
fn region_conflict_and_policy_refusals_wait_for_a_spec_change() {
    let conflict = Observed {
        region_conflict: Some(("us-east-1".into(), "eu-west-1".into())),
        ..fresh()
    };
    let step = plan(&conflict);
    assert_eq!(reason_of(&step), Some(ReadyReason::RegionConflict));
    assert!(ReadyReason::RegionConflict.waits_for_spec_change());
    let denied = Observed {
        policy_denied: Some("tenancy policy: no".into()),
        ..fresh()
    };
    assert_eq!(reason_of(&plan(&denied)), Some(ReadyReason::PolicyDenied));
    // A refused object's deletion makes no AWS call.
    let deleting = Observed {
        deleting: true,
        generation: 2,
        last: LastStatus {
            reason: Some(ReadyReason::PolicyDenied),
            reason_generation: Some(1),
            ..LastStatus::default()
        },
        ..denied
    };
    assert_eq!(
        plan(&deleting),
        Step::RemoveFinalizer {
            reason: Release::NeverOwned
        }
    );
}

#[test]
fn tag_convergence_never_removes_the_ownership_tag() {
    let (set, remove) = tag_diff(&tags(&[]), &owned(&[("x", "1")]));
    assert!(set.is_empty());
    assert_eq!(remove, vec!["x".to_string()]);
}

#[test]
fn collection_deleted_behind_our_back_is_recreated() {
    let o = Observed {
        collection: Collection::Missing,
        ..steady()
    };
    assert_eq!(
        plan(&o),
        Step::Create {
            tags: owned(&[]),
            recreate: true
        }
    );
}

#[test]
fn deletion_with_delete_policy_deletes_an_owned_collection() {
    let o = Observed {
        deleting: true,
        ..steady()
    };
    assert_eq!(plan(&o), Step::ListTags { arn: ARN.into() });
    let listed = Observed {
        tags: Some(owned(&[])),
        ..o
    };
    assert_eq!(plan(&listed), Step::Delete);
    let gone = Observed {
        collection: Collection::Missing,
        ..listed
    };
    assert_eq!(
        plan(&gone),
        Step::RemoveFinalizer {
            reason: Release::Deleted
        }
    );
}

#[test]
fn deletion_with_retain_policy_removes_only_the_ownership_tag() {
    let o = Observed {
        deleting: true,
        deletion_policy: DeletionPolicy::Retain,
        tags: Some(owned(&[("team", "x")])),
        ..steady()
    };
    assert_eq!(
        plan(&o),
        Step::Untag {
            arn: ARN.into(),
            keys: vec![OWNER_TAG.into()],
            purpose: TagPurpose::Release
        }
    );
    let released = Observed {
        tags: Some(tags(&[("team", "x")])),
        ..o
    };
    assert_eq!(
        plan(&released),
        Step::RemoveFinalizer {
            reason: Release::Retained
        }
    );
}

#[test]
fn objects_that_never_reached_aws_are_released_without_calls() {
    for reason in [ReadyReason::AlreadyExists, ReadyReason::InvalidParameter] {
        // Marking for deletion bumps the generation by one.
        let o = Observed {
            deleting: true,
            generation: 2,
            ..refused(reason)
        };
        assert_eq!(
            plan(&o),
            Step::RemoveFinalizer {
                reason: Release::NeverOwned
            },
            "{reason}"
        );
    }
    let observe = Observed {
        deleting: true,
        management_policy: ManagementPolicy::ObserveOnly,
        ..fresh()
    };
    assert_eq!(
        plan(&observe),
        Step::RemoveFinalizer {
            reason: Release::NeverOwned
        }
    );
}

#[test]
fn deletion_without_a_recorded_arn_checks_what_exists_first() {
    // A crash may have created the collection before the status was written.
    let o = Observed {
        deleting: true,
        ..fresh()
    };
    assert_eq!(plan(&o), Step::Describe);
    let found = Observed {
        collection: exists(),
        ..o.clone()
    };
    assert_eq!(plan(&found), Step::ListTags { arn: ARN.into() });
    let foreign = Observed {
        tags: Some(tags(&[])),
        ..found
    };
    assert_eq!(
        plan(&foreign),
        Step::RemoveFinalizer {
            reason: Release::NeverOwned
        }
    );
    let missing = Observed {
        collection: Collection::Missing,
        ..o
    };
    assert_eq!(
        plan(&missing),
        Step::RemoveFinalizer {
            reason: Release::Deleted
        }
    );
}

#[test]
fn deletion_after_an_unreconciled_spec_change_checks_aws() {
    // The refusal was for generation 1; generation 2 changed the spec and may have created the
    // collection before the status was written, so the deletion at generation 3 looks first.
    let o = Observed {
        deleting: true,
        generation: 3,
        ..refused(ReadyReason::AlreadyExists)
    };
    assert_eq!(plan(&o), Step::Describe);
}

#[test]
fn deletion_never_deletes_a_collection_it_does_not_own() {
    let o = Observed {
        deleting: true,
        tags: Some(tags(&[(OWNER_TAG, "other")])),
        ..steady()
    };
    assert!(matches!(plan(&o), Step::RemoveFinalizer { .. }));
}

#[test]
fn object_without_finalizer_being_deleted_needs_nothing() {
    let o = Observed {
        deleting: true,
        has_finalizer: false,
        ..steady()
    };
    assert_eq!(plan(&o), Step::Wait);
}

#[test]
fn a_paused_object_makes_no_aws_call_and_keeps_its_finalizer_whatever_its_state() {
    let deleting = Observed {
        deleting: true,
        generation: 2,
        ..steady()
    };
    let without_finalizer = Observed {
        has_finalizer: false,
        ..fresh()
    };
    let denied = Observed {
        policy_denied: Some("tenancy policy: no".into()),
        ..fresh()
    };
    let observing = Observed {
        management_policy: ManagementPolicy::ObserveOnly,
        has_finalizer: false,
        ..fresh()
    };
    // (name, object, whether the message says deletion waits)
    let cases = [
        ("new object", fresh(), false),
        ("steady object", steady(), false),
        ("before its finalizer is added", without_finalizer, false),
        ("refused by policy", denied, false),
        ("observe-only", observing, false),
        ("being deleted: deletion waits", deleting, true),
    ];
    for (name, object, deletion_waits) in cases {
        let paused = Observed {
            paused: true,
            ..object.clone()
        };
        match plan(&paused) {
            Step::Pause { message } => {
                assert!(message.contains(PAUSED_ANNOTATION), "{name}: {message}");
                assert_eq!(message.contains("deleted"), deletion_waits, "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
        // Unpaused, the same object goes on as before.
        assert!(
            !matches!(plan(&object), Step::Pause { .. }),
            "{name}: resumes"
        );
    }
}

#[test]
fn an_unpaused_object_is_looked_at_again_whatever_its_status_says() {
    // Pausing is how a tenant gets time to write a status the operator will read back: what was
    // written while paused is checked in AWS, refusal or Ready alike.
    let refused_then_forged = Observed {
        last: LastStatus {
            reason: Some(ReadyReason::Available),
            arn: Some(ARN.into()),
            reason_generation: Some(1),
            observed_generation: Some(1),
            paused: true,
            ..LastStatus::default()
        },
        ..fresh()
    };
    assert_eq!(plan(&refused_then_forged), Step::Describe);
    let described = Observed {
        collection: exists(),
        ..refused_then_forged
    };
    assert_eq!(plan(&described), Step::ListTags { arn: ARN.into() });
    let foreign = Observed {
        tags: Some(tags(&[(OWNER_TAG, "someone-else")])),
        ..described
    };
    assert_eq!(reason_of(&plan(&foreign)), Some(ReadyReason::AlreadyExists));
    let unpaused_refusal = Observed {
        last: LastStatus {
            reason: Some(ReadyReason::AlreadyExists),
            message: "owned by another object".into(),
            reason_generation: Some(1),
            paused: true,
            ..LastStatus::default()
        },
        ..fresh()
    };
    assert!(matches!(plan(&unpaused_refusal), Step::Create { .. }));
}

#[test]
fn what_a_tag_read_proves_for_the_next_reconcile() {
    let read = |t: Tags| Observed {
        collection: exists(),
        tags: Some(t),
        ..fresh()
    };
    assert_eq!(fresh().proven(), Proven::Nothing, "no tags read");
    assert_eq!(read(owned(&[])).proven(), Proven::Ours);
    assert_eq!(
        read(tags(&[(OWNER_TAG, "someone-else")])).proven(),
        Proven::Nothing,
        "another owner's tags prove nothing: the next reconcile reads them again"
    );
    assert_eq!(read(tags(&[])).proven(), Proven::Nothing);
}

#[test]
fn a_pin_the_mapping_does_not_grant_makes_no_aws_call_in_any_state() {
    let refused = |o: Observed| Observed {
        pin_refused: Some("status.roleArn x is not a role the account mapping gives".into()),
        ..o
    };
    let deleting = |o: Observed| Observed {
        deleting: true,
        generation: 2,
        ..o
    };
    // (name, state) → PolicyDenied, never an AWS step: not before the first call, not on a
    // steady object, not to clean up on deletion, whatever the deletion policy.
    let cases = [
        ("before the first call", refused(fresh())),
        ("steady", refused(steady())),
        (
            "without a finalizer yet",
            refused(Observed {
                has_finalizer: false,
                ..fresh()
            }),
        ),
        ("being deleted", deleting(refused(steady()))),
        (
            "being deleted, Retain",
            deleting(refused(Observed {
                deletion_policy: DeletionPolicy::Retain,
                ..steady()
            })),
        ),
        (
            "adopt",
            refused(Observed {
                management_policy: ManagementPolicy::Adopt,
                ..fresh()
            }),
        ),
        (
            "observe only",
            refused(Observed {
                management_policy: ManagementPolicy::ObserveOnly,
                has_finalizer: false,
                ..fresh()
            }),
        ),
    ];
    for (name, observed) in cases {
        let step = plan(&observed);
        assert_eq!(
            reason_of(&step),
            Some(ReadyReason::PolicyDenied),
            "{name}: {step:?}"
        );
        if observed.deleting {
            let Step::Finish { message, .. } = step else {
                unreachable!()
            };
            assert!(
                message.contains("cleaned up once this is resolved"),
                "{name}: {message}"
            );
        }
    }
    // A deleted object that never had the finalizer needs nothing, refused or not.
    let gone = deleting(refused(Observed {
        has_finalizer: false,
        ..fresh()
    }));
    assert_eq!(plan(&gone), Step::Wait);
    // Paused wins: the pause says so, and the refusal is said once unpaused.
    let paused = Observed {
        paused: true,
        ..refused(steady())
    };
    assert!(matches!(plan(&paused), Step::Pause { .. }));
}

#[test]
fn a_status_arn_is_used_only_when_it_names_this_objects_collection() {
    // (arn, region, identity's account, collection ID) → usable
    let cases = [
        (ARN, "us-east-1", None, "myphotos", true),
        (ARN, "us-east-1", Some("123456789012"), "myphotos", true),
        (
            "arn:aws-cn:rekognition:us-east-1:123456789012:collection/myphotos",
            "us-east-1",
            None,
            "myphotos",
            true,
        ),
        (ARN, "us-east-1", Some("210987654321"), "myphotos", false),
        (ARN, "eu-west-1", None, "myphotos", false),
        (ARN, "us-east-1", None, "other", false),
        (
            "arn:aws:rekognition:us-east-1:123456789012:collection/myphotos-x",
            "us-east-1",
            None,
            "myphotos",
            false,
        ),
        (
            "arn:aws:s3:us-east-1:123456789012:collection/myphotos",
            "us-east-1",
            None,
            "myphotos",
            false,
        ),
        (
            "arn:aws:rekognition:us-east-1:1234:collection/myphotos",
            "us-east-1",
            None,
            "myphotos",
            false,
        ),
        (
            "aws:rekognition:us-east-1:123456789012:collection/myphotos",
            "us-east-1",
            None,
            "myphotos",
            false,
        ),
        ("", "us-east-1", None, "myphotos", false),
    ];
    for (arn, region, account, id, usable) in cases {
        assert_eq!(
            names_collection(arn, region, account, id),
            usable,
            "{arn} {region} {account:?} {id}"
        );
    }
}

#[test]
fn a_deletion_refused_by_policy_makes_no_aws_call_unless_aws_was_asked_before() {
    let deleting = |o: Observed| Observed {
        deleting: true,
        generation: 2,
        policy_denied: Some("tenancy policy: region eu-west-1 is not allowed".into()),
        ..o
    };
    // Never sent to AWS (no region recorded): the finalizer goes, with no call, whatever the
    // status claims about an ARN or an earlier reason.
    for (name, observed) in [
        ("fresh", deleting(fresh())),
        (
            "a finalizer the tenant added, paused first",
            deleting(Observed {
                last: LastStatus {
                    paused: true,
                    ..LastStatus::default()
                },
                ..fresh()
            }),
        ),
        ("a forged ARN", deleting(steady())),
    ] {
        assert_eq!(
            plan(&observed),
            Step::RemoveFinalizer {
                reason: Release::NeverOwned
            },
            "{name}"
        );
    }
    // Sent to AWS before the policy changed: the collection is cleaned up as usual.
    let earlier = deleting(Observed {
        pinned: true,
        ..steady()
    });
    assert!(
        matches!(plan(&earlier), Step::ListTags { .. } | Step::Describe),
        "{:?}",
        plan(&earlier)
    );
}

#[test]
fn a_pin_refusal_cleared_during_deletion_leads_to_the_cleanup_not_a_leak() {
    // Refused (PolicyDenied) at the deletion's generation, then the pins are cleared: the
    // collection may exist, so AWS is asked, and the finalizer is not dropped unasked.
    let cleared = Observed {
        deleting: true,
        generation: 2,
        last: LastStatus {
            reason: Some(ReadyReason::PolicyDenied),
            reason_generation: Some(2),
            ..LastStatus::default()
        },
        ..fresh()
    };
    assert_eq!(plan(&cleared), Step::Describe);
}

#[test]
fn a_lifted_policy_refusal_applies_the_spec_it_refused() {
    // Refused (a pin the mapping did not grant) at generation 2, its tags changed meanwhile; the
    // refusal recorded generation 2 as observed. Granted again: the tags are read and put right.
    let lifted = Observed {
        generation: 2,
        desired_tags: tags(&[("team", "a")]),
        collection: exists(),
        last: LastStatus {
            arn: Some(ARN.into()),
            reason: Some(ReadyReason::PolicyDenied),
            reason_generation: Some(2),
            observed_generation: Some(2),
            ..LastStatus::default()
        },
        ..fresh()
    };
    assert!(
        matches!(plan(&lifted), Step::ListTags { .. }),
        "{:?}",
        plan(&lifted)
    );
    let read = Observed {
        tags: Some(owned(&[])),
        ..lifted
    };
    assert!(matches!(plan(&read), Step::Tag { .. }), "{:?}", plan(&read));
}

const CLAIM: &str = "blue/team-a/photos";

/// An object of cluster `blue`, `team-a/photos`, whose status was lost (a restore) and whose
/// collection exists.
fn restored(collection_tags: Tags) -> Observed {
    Observed {
        claim: CLAIM.into(),
        object: "team-a/photos".into(),
        cluster: Arc::new(ClusterIdentity {
            name: "blue".into(),
            take_over_from: Default::default(),
        }),
        collection: exists(),
        already_existed: true,
        tags: Some(collection_tags),
        ..fresh()
    }
}

fn claimed_by(uid: &str, claim: &str) -> Tags {
    tags(&[(OWNER_TAG, uid), (CLAIM_TAG, claim)])
}

fn claim_tags_of_this_object() -> Tags {
    tags(&[(OWNER_TAG, UID), (CLAIM_TAG, CLAIM)])
}

#[test]
fn a_new_collection_carries_the_claim_of_cluster_namespace_and_name() {
    let o = Observed {
        desired_tags: tags(&[("team", "vision")]),
        ..restored(Tags::new())
    };
    let o = Observed {
        collection: Collection::Unknown,
        tags: None,
        already_existed: false,
        ..o
    };
    let mut expected = claim_tags_of_this_object();
    expected.insert("team".into(), "vision".into());
    assert_eq!(
        plan(&o),
        Step::Create {
            tags: expected,
            recreate: false
        }
    );
}

#[test]
fn a_restored_object_reclaims_its_earlier_incarnations_collection() {
    let o = restored(claimed_by("old-uid", CLAIM));
    assert_eq!(
        plan(&o),
        Step::Tag {
            arn: ARN.into(),
            tags: claim_tags_of_this_object(),
            purpose: TagPurpose::Reclaim {
                previous_uid: "old-uid".into()
            },
        }
    );
}

#[test]
fn a_collection_is_never_reclaimed_from_a_live_owner_or_another_claim() {
    let cases: Vec<(&str, Observed)> = vec![
        (
            "the previous owner is still a live object",
            Observed {
                owner_live: true,
                ..restored(claimed_by("old-uid", CLAIM))
            },
        ),
        (
            "another name in this cluster",
            restored(claimed_by("old-uid", "blue/team-a/other")),
        ),
        (
            "another namespace in this cluster",
            restored(claimed_by("old-uid", "blue/team-b/photos")),
        ),
        (
            "an owner tag from before claims",
            restored(tags(&[(OWNER_TAG, "old-uid")])),
        ),
        (
            "this object has no claim of its own",
            Observed {
                claim: String::new(),
                ..restored(claimed_by("old-uid", CLAIM))
            },
        ),
    ];
    for (name, o) in cases {
        assert_eq!(
            reason_of(&plan(&o)),
            Some(ReadyReason::AlreadyExists),
            "{name}"
        );
    }
}

#[test]
fn a_migration_takes_over_the_same_object_of_a_named_cluster_only() {
    let green = |from: &[&str]| {
        let mut o = restored(claimed_by("blue-uid", CLAIM));
        o.claim = "green/team-a/photos".into();
        o.cluster = Arc::new(ClusterIdentity {
            name: "green".into(),
            take_over_from: from.iter().map(|s| s.to_string()).collect(),
        });
        o
    };
    let mut taking_tags = tags(&[(OWNER_TAG, UID), (CLAIM_TAG, "green/team-a/photos")]);
    assert_eq!(
        plan(&green(&["blue"])),
        Step::Tag {
            arn: ARN.into(),
            tags: taking_tags.clone(),
            purpose: TagPurpose::TakeOver {
                cluster: "blue".into()
            },
        }
    );
    // Not set up: the new cluster says whose it is and what would move it.
    let step = plan(&green(&[]));
    assert_eq!(reason_of(&step), Some(ReadyReason::AwaitingHandover));
    let Step::Finish { message, .. } = step else {
        unreachable!()
    };
    assert!(message.contains("cluster blue"), "{message}");
    assert!(message.contains("takeOverFrom"), "{message}");
    // Once taken over, the new cluster's object converges the spec like any owned collection.
    taking_tags.insert("team".into(), "vision".into());
    let mut after = green(&["blue"]);
    after.desired_tags = tags(&[("team", "vision")]);
    after.tags = Some(tags(&[
        (OWNER_TAG, UID),
        (CLAIM_TAG, "green/team-a/photos"),
    ]));
    assert_eq!(
        plan(&after),
        Step::Tag {
            arn: ARN.into(),
            tags: tags(&[("team", "vision")]),
            purpose: TagPurpose::Converge,
        }
    );
}

#[test]
fn the_old_cluster_hands_over_and_never_deletes_retags_or_recreates() {
    // blue's object, which held the collection, sees green's claim at its next tag check.
    let handed_over = || Observed {
        last: steady().last,
        desired_tags: tags(&[("team", "changed")]),
        ..restored(claimed_by("green-uid", "green/team-a/photos"))
    };
    assert_eq!(
        reason_of(&plan(&handed_over())),
        Some(ReadyReason::HandedOver)
    );
    assert_eq!(handed_over().proven(), Proven::HandedOver);
    // Looked at again (a resync after a restart, a request): the tags are read once more.
    let said = Observed {
        last: LastStatus {
            reason: Some(ReadyReason::HandedOver),
            reason_generation: Some(1),
            ..steady().last
        },
        collection: Collection::Unknown,
        tags: None,
        already_existed: false,
        handover_proven: true,
        ..handed_over()
    };
    assert_eq!(plan(&said), Step::Describe);
    // A spec change later: the collection, gone since, is not recreated, as this process saw
    // the handover in the tags.
    let gone = Observed {
        generation: 2,
        collection: Collection::Missing,
        ..said.clone()
    };
    assert_eq!(reason_of(&plan(&gone)), Some(ReadyReason::HandedOver));
    // A HandedOver that only the status claims (a tenant can write it) is no proof: the
    // collection is recreated.
    let claimed_only = Observed {
        handover_proven: false,
        ..gone.clone()
    };
    assert_eq!(
        plan(&claimed_only),
        Step::Create {
            tags: claimed_only.owner_tags(),
            recreate: true
        }
    );
    // Deleted with deletionPolicy Delete: the finalizer goes, the collection stays.
    for deletion_policy in [DeletionPolicy::Delete, DeletionPolicy::Retain] {
        let deleting = Observed {
            deleting: true,
            generation: 2,
            deletion_policy,
            collection: exists(),
            tags: Some(claimed_by("green-uid", "green/team-a/photos")),
            ..said.clone()
        };
        assert!(
            matches!(plan(&deleting), Step::RemoveFinalizer { .. }),
            "{deletion_policy:?}: {:?}",
            plan(&deleting)
        );
    }
}

#[test]
fn collections_from_before_claims_stay_owned_and_gain_the_claim() {
    let o = Observed {
        tags_due: true,
        ..restored(tags(&[(OWNER_TAG, UID)]))
    };
    let o = Observed {
        last: steady().last,
        already_existed: false,
        ..o
    };
    assert_eq!(
        plan(&o),
        Step::Tag {
            arn: ARN.into(),
            tags: tags(&[(CLAIM_TAG, CLAIM)]),
            purpose: TagPurpose::Converge,
        }
    );
}

#[test]
fn with_all_199_spec_tags_there_is_no_claim_and_the_object_keeps_working() {
    let spec: Tags = (0..199).map(|i| (format!("k{i}"), "v".into())).collect();
    let mut actual = spec.clone();
    actual.insert(OWNER_TAG.into(), UID.into());
    actual.insert(CLAIM_TAG.into(), CLAIM.into());
    // The spec grew to 199 tags: the claim gives its slot back first.
    let o = Observed {
        desired_tags: spec.clone(),
        last: LastStatus {
            observed_generation: Some(0),
            ..steady().last
        },
        already_existed: false,
        ..restored(actual)
    };
    assert_eq!(
        plan(&o),
        Step::Untag {
            arn: ARN.into(),
            keys: vec![CLAIM_TAG.into()],
            purpose: TagPurpose::Converge,
        }
    );
}

#[test]
fn letting_a_collection_go_removes_the_claim_with_the_owner_tag() {
    let o = Observed {
        deleting: true,
        generation: 2,
        deletion_policy: DeletionPolicy::Retain,
        last: steady().last,
        ..restored(claim_tags_of_this_object())
    };
    assert_eq!(
        plan(&o),
        Step::Untag {
            arn: ARN.into(),
            keys: vec![OWNER_TAG.to_owned(), CLAIM_TAG.to_owned()],
            purpose: TagPurpose::Release,
        }
    );
}

#[test]
fn an_object_is_observed_from_its_status_once_with_foreign_arns_dropped() {
    use crate::model::crd::{CollectionSpec, CollectionStatus, Condition};
    let mut obj = RekognitionCollection::new("photos", CollectionSpec::default());
    obj.metadata.namespace = Some("team-a".into());
    obj.metadata.generation = Some(3);
    obj.metadata.finalizers = Some(vec![FINALIZER.into()]);
    let ready = Condition {
        type_: "Ready".into(),
        status: "True".into(),
        reason: "Available".into(),
        message: "collection photos is available".into(),
        last_transition_time: "2026-12-03T00:00:00Z".into(),
        observed_generation: Some(3),
    };
    obj.status = Some(CollectionStatus {
        collection_arn: Some(ARN.replace("myphotos", "photos")),
        region: Some("us-east-1".into()),
        observed_generation: Some(3),
        conditions: vec![ready],
        ..CollectionStatus::default()
    });
    let facts = |account| Facts {
        uid: UID.into(),
        namespace: "team-a",
        region: "us-east-1",
        region_conflict: None,
        account,
        policy_denied: None,
        pin_refused: None,
        tags_due: false,
        handover_proven: false,
        cluster: Arc::new(ClusterIdentity {
            name: "blue".into(),
            take_over_from: Default::default(),
        }),
    };
    let o = Observed::of(&obj, facts(Some("123456789012")));
    assert_eq!(o.claim, "blue/team-a/photos");
    assert_eq!(o.object, "team-a/photos");
    assert!(o.has_finalizer && o.pinned);
    assert_eq!(o.last.reason, Some(ReadyReason::Available));
    assert_eq!(o.last.reason_generation, Some(3));
    assert!(o.last.arn.is_some());
    // The identity in use names another account: the recorded ARN is not used.
    let o = Observed::of(&obj, facts(Some("210987654321")));
    assert_eq!(o.last.arn, None);
}

#[test]
fn an_object_that_awaited_a_handover_never_says_it_handed_over() {
    // A status written before the ARN was left out of AwaitingHandover still names the other
    // cluster's collection: that is no proof this object held it.
    let tags = tags(&[
        (OWNER_TAG, "uid-elsewhere"),
        (CLAIM_TAG, "other-cluster/ns/myphotos"),
    ]);
    let awaiting = Observed {
        object: "ns/myphotos".into(),
        claim: "this-cluster/ns/myphotos".into(),
        last: LastStatus {
            arn: Some(ARN.into()),
            reason: Some(ReadyReason::AwaitingHandover),
            reason_generation: Some(1),
            ..LastStatus::default()
        },
        collection: exists(),
        tags: Some(tags),
        ..fresh()
    };
    assert_eq!(
        reason_of(&plan(&awaiting)),
        Some(ReadyReason::AwaitingHandover)
    );
}

#[test]
fn a_vanished_objects_collection_is_cleaned_up_as_its_deletion_policy_says() {
    // Created by this reconcile, then the object went without its finalizer running (its status
    // write found nothing): no status was ever written, and no finalizer is left to remove.
    let created = Observed {
        vanished: true,
        has_finalizer: false,
        created: true,
        collection: Collection::Exists {
            arn: Some(ARN.into()),
            description: None,
        },
        tags: Some(owned(&[])),
        ..fresh()
    };
    let retain = Observed {
        deletion_policy: DeletionPolicy::Retain,
        ..created.clone()
    };
    let another_owner = Observed {
        tags: Some(tags(&[(OWNER_TAG, "someone-else")])),
        created: false,
        ..created.clone()
    };
    let paused = Observed {
        paused: true,
        ..created.clone()
    };
    let cases = [
        ("Delete", created.clone(), Step::Delete),
        (
            "Delete, done",
            Observed {
                collection: Collection::Missing,
                ..created.clone()
            },
            Step::Wait,
        ),
        (
            "Retain",
            retain.clone(),
            Step::Untag {
                arn: ARN.into(),
                keys: vec![OWNER_TAG.to_owned()],
                purpose: TagPurpose::Release,
            },
        ),
        (
            "Retain, done",
            Observed {
                tags: Some(tags(&[])),
                ..retain
            },
            Step::Wait,
        ),
        ("another owner's: never deleted", another_owner, Step::Wait),
        // The pause annotation went with the object: nothing can lift it.
        ("paused", paused, Step::Delete),
    ];
    for (name, observed, expected) in cases {
        assert_eq!(plan(&observed), expected, "{name}");
    }
}
