//! Ambiguous failures, observed with the real AWS SDK: the emulator carries a call out and then
//! loses its answer (connection reset, or the answer held past the client's timeout), and the
//! admin API says that the work happened.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_rekognition::config::timeout::TimeoutConfig;
use aws_sdk_rekognition::error::SdkError;
use rekognition_emulator::Operation;
use rekognition_emulator::admin::{LostResponse, LostResponseRule, NextLostResponse};
use support::start;

fn always(operation: Operation, mode: LostResponse, hold_ms: u64) -> LostResponseRule {
    LostResponseRule {
        operation: Some(operation),
        mode,
        probability: 1.0,
        hold_ms,
    }
}

#[tokio::test]
async fn a_create_whose_connection_is_reset_after_the_work_still_created_the_collection() {
    let bed = start().await;
    bed.admin
        .lose_responses(&always(Operation::CreateCollection, LostResponse::Reset, 0))
        .await
        .unwrap();

    let err = bed
        .client
        .create_collection()
        .collection_id("ambiguous")
        .send()
        .await
        .unwrap_err();
    match &err {
        SdkError::DispatchFailure(failure) => {
            assert!(failure.is_io(), "an I/O failure, not a timeout: {err:?}")
        }
        other => panic!("the client saw an answer or a timeout: {other:?}"),
    }

    // The work was done: the collection exists, and a retry finds it.
    let collections = bed.admin.collections().await.unwrap();
    assert_eq!(collections.len(), 1);
    assert_eq!(collections[0].collection_id, "ambiguous");
    bed.admin.clear_faults().await.unwrap();
    let retry = bed
        .client
        .create_collection()
        .collection_id("ambiguous")
        .send()
        .await
        .unwrap_err();
    assert!(
        retry
            .into_service_error()
            .is_resource_already_exists_exception()
    );

    // The ledger says so: Ok, and lost.
    let counters = bed.admin.counters().await.unwrap();
    assert_eq!(counters.get("CreateCollection", "Ok"), 1);
    let lost = bed.admin.lost_responses().await.unwrap();
    assert_eq!(lost.get("CreateCollection", "reset"), 1);
    let calls = bed.admin.calls_for("ambiguous").await.unwrap();
    assert_eq!(calls[0].outcome, "Ok");
    assert_eq!(calls[0].lost_response, Some(LostResponse::Reset));
    assert_eq!(calls[1].lost_response, None);
}

#[tokio::test]
async fn a_held_answer_times_the_client_out_while_the_work_was_done() {
    let bed = start().await;
    bed.admin
        .lose_responses(&always(
            Operation::CreateCollection,
            LostResponse::Held,
            5_000,
        ))
        .await
        .unwrap();
    let config = bed
        .client
        .config()
        .to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(500))
                .build(),
        )
        .build();
    let impatient = aws_sdk_rekognition::Client::from_conf(config);

    let started = Instant::now();
    let err = impatient
        .create_collection()
        .collection_id("held")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(err, SdkError::TimeoutError(_)),
        "the client timed out: {err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    assert!(
        bed.admin
            .collections()
            .await
            .unwrap()
            .iter()
            .any(|c| c.collection_id == "held"),
        "the collection was created before the answer was held"
    );
    let lost = bed.admin.lost_responses().await.unwrap();
    assert_eq!(lost.get("CreateCollection", "held"), 1);
}

#[tokio::test]
async fn a_client_that_waits_long_enough_gets_a_held_answer() {
    let bed = start().await;
    bed.admin
        .lose_responses(&always(Operation::ListCollections, LostResponse::Held, 300))
        .await
        .unwrap();
    let started = Instant::now();
    bed.client.list_collections().send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn next_lost_responses_lose_exactly_that_many_answers_of_their_operation() {
    let bed = start().await;
    bed.admin
        .lose_next_responses(&NextLostResponse {
            operation: Some(Operation::DeleteCollection),
            mode: LostResponse::Reset,
            count: 1,
            hold_ms: 0,
        })
        .await
        .unwrap();
    for id in ["a", "b"] {
        bed.client
            .create_collection()
            .collection_id(id)
            .send()
            .await
            .unwrap();
    }
    let first = bed
        .client
        .delete_collection()
        .collection_id("a")
        .send()
        .await;
    assert!(
        matches!(first, Err(SdkError::DispatchFailure(_))),
        "{first:?}"
    );
    bed.client
        .delete_collection()
        .collection_id("b")
        .send()
        .await
        .unwrap();
    assert!(bed.admin.collections().await.unwrap().is_empty());
    let view = bed.admin.faults().await.unwrap();
    assert!(view.next_lost_responses.is_empty());
    assert_eq!(
        bed.admin
            .lost_responses()
            .await
            .unwrap()
            .get("DeleteCollection", "reset"),
        1
    );
}

#[tokio::test]
async fn a_lost_response_rule_at_half_loses_about_half_the_answers() {
    let bed = start().await;
    bed.admin
        .lose_responses(&LostResponseRule {
            operation: None,
            mode: LostResponse::Reset,
            probability: 0.5,
            hold_ms: 0,
        })
        .await
        .unwrap();
    let mut failed = 0;
    for _ in 0..60 {
        if bed.client.list_collections().send().await.is_err() {
            failed += 1;
        }
    }
    assert!((10..=50).contains(&failed), "{failed} of 60 lost");
    let counters = bed.admin.counters().await.unwrap();
    assert_eq!(counters.get("ListCollections", "Ok"), 60);
    assert_eq!(
        bed.admin
            .lost_responses()
            .await
            .unwrap()
            .get("ListCollections", "reset"),
        failed
    );
}

#[tokio::test]
async fn a_lost_response_rule_outside_zero_to_one_is_refused_and_reset_clears_them() {
    let bed = start().await;
    let err = bed
        .admin
        .lose_responses(&LostResponseRule {
            operation: None,
            mode: LostResponse::Held,
            probability: 1.5,
            hold_ms: 0,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            rekognition_emulator::Error::AdminStatus { status: 400, .. }
        ),
        "{err}"
    );
    bed.admin
        .lose_responses(&always(Operation::CreateCollection, LostResponse::Reset, 0))
        .await
        .unwrap();
    assert_eq!(bed.admin.faults().await.unwrap().lost_responses.len(), 1);
    bed.admin.reset().await.unwrap();
    assert!(bed.admin.faults().await.unwrap().lost_responses.is_empty());
}
