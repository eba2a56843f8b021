//! Fault injection through the admin API, observed with the real AWS SDK.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_rekognition::operation::create_collection::CreateCollectionError;
use aws_sdk_rekognition::operation::delete_collection::DeleteCollectionError;
use aws_sdk_rekognition::operation::describe_collection::DescribeCollectionError;
use rekognition_emulator::admin::{FaultRule, NextFailure};
use rekognition_emulator::{ErrorKind, Operation};
use support::{code, start, status};

fn always(operation: Option<Operation>, error: ErrorKind) -> FaultRule {
    FaultRule {
        operation,
        error: Some(error),
        probability: 1.0,
        latency_ms: 0,
    }
}

#[tokio::test]
async fn probability_one_fails_every_call_with_the_chosen_error() {
    let bed = start().await;
    bed.admin
        .set_fault(&always(None, ErrorKind::InternalServerError))
        .await
        .unwrap();
    for _ in 0..3 {
        let err = bed
            .client
            .create_collection()
            .collection_id("c")
            .send()
            .await
            .unwrap_err();
        assert_eq!(status(&err), 500);
        let err = err.into_service_error();
        assert!(
            matches!(err, CreateCollectionError::InternalServerError(_)),
            "{err:?}"
        );
    }
    assert!(bed.admin.collections().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_injected_error_has_the_status_of_its_type() {
    let bed = start().await;
    bed.admin
        .set_fault(&always(None, ErrorKind::AccessDenied))
        .await
        .unwrap();
    let err = bed
        .client
        .describe_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 400);
    assert!(matches!(
        err.into_service_error(),
        DescribeCollectionError::AccessDeniedException(_)
    ));

    bed.admin
        .set_fault(&always(None, ErrorKind::ServiceUnavailable))
        .await
        .unwrap();
    let err = bed
        .client
        .describe_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 503);
    assert_eq!(code(&err).as_deref(), Some("ServiceUnavailableException"));
}

#[tokio::test]
async fn next_n_failures_fail_exactly_n_calls() {
    let bed = start().await;
    bed.admin
        .fail_next(&NextFailure {
            operation: Some(Operation::CreateCollection),
            error: ErrorKind::Throttling,
            count: 2,
        })
        .await
        .unwrap();
    // Another operation does not use them up.
    bed.client.list_collections().send().await.unwrap();
    for _ in 0..2 {
        let err = bed
            .client
            .create_collection()
            .collection_id("c")
            .send()
            .await
            .unwrap_err();
        assert!(matches!(
            err.into_service_error(),
            CreateCollectionError::ThrottlingException(_)
        ));
    }
    bed.client
        .create_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap();
    assert!(bed.admin.faults().await.unwrap().next.is_empty());
}

#[tokio::test]
async fn latency_is_added_to_matching_calls() {
    let bed = start().await;
    bed.admin
        .set_fault(&FaultRule {
            operation: Some(Operation::ListCollections),
            error: None,
            probability: 0.0,
            latency_ms: 300,
        })
        .await
        .unwrap();
    let started = Instant::now();
    bed.client.list_collections().send().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let _ = bed
        .client
        .describe_collection()
        .collection_id("c")
        .send()
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_fault_for_one_operation_leaves_the_others_alone() {
    let bed = start().await;
    bed.admin
        .set_fault(&always(
            Some(Operation::DeleteCollection),
            ErrorKind::InternalServerError,
        ))
        .await
        .unwrap();
    bed.client
        .create_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap();
    let err = bed
        .client
        .delete_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        DeleteCollectionError::InternalServerError(_)
    ));
    bed.client
        .describe_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn clearing_faults_restores_normal_answers() {
    let bed = start().await;
    bed.admin
        .set_fault(&always(None, ErrorKind::InternalServerError))
        .await
        .unwrap();
    bed.admin
        .fail_next(&NextFailure {
            operation: None,
            error: ErrorKind::Throttling,
            count: 10,
        })
        .await
        .unwrap();
    bed.admin.clear_faults().await.unwrap();
    bed.client.list_collections().send().await.unwrap();
    let view = bed.admin.faults().await.unwrap();
    assert!(view.rules.is_empty() && view.next.is_empty());
}

#[tokio::test]
async fn faults_apply_only_after_authentication() {
    let bed = start().await;
    bed.admin
        .set_fault(&always(None, ErrorKind::InternalServerError))
        .await
        .unwrap();
    let unsigned = support::RawRequest {
        target: Some("RekognitionService.ListCollections"),
        body: b"{}",
        sent_body: None,
        signing: None,
    };
    assert_eq!(unsigned.send(&bed.emulator).await.status(), 403);
}

#[tokio::test]
async fn an_invalid_fault_is_refused_by_the_admin_api() {
    let bed = start().await;
    let err = bed
        .admin
        .set_fault(&FaultRule {
            operation: None,
            error: None,
            probability: 2.0,
            latency_ms: 0,
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
}
