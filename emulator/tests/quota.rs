//! Per-operation token-bucket quotas as the SDK experiences them.

mod support;

use std::time::Duration;

use aws_sdk_rekognition::operation::create_collection::CreateCollectionError;
use aws_sdk_rekognition::operation::describe_collection::DescribeCollectionError;
use aws_sdk_rekognition::operation::list_collections::ListCollectionsError;
use rekognition_emulator::admin::QuotaUpdate;
use rekognition_emulator::{Config, Operation, QuotaConfig, ThrottleError};
use support::{eventually, start_with, status};

fn quota(rate_per_sec: f64, burst: u32, throttle_error: ThrottleError) -> Config {
    Config {
        quota: QuotaConfig {
            rate_per_sec,
            burst,
            throttle_error,
        },
        ..Config::default()
    }
}

#[tokio::test]
async fn a_burst_is_admitted_then_calls_get_throttling_exception() {
    // A slow refill so that no token comes back while the test runs.
    let bed = start_with(quota(0.01, 5, ThrottleError::Throttling)).await;
    for _ in 0..5 {
        bed.client.list_collections().send().await.unwrap();
    }
    let err = bed.client.list_collections().send().await.unwrap_err();
    assert_eq!(status(&err), 500);
    let err = err.into_service_error();
    assert!(
        matches!(err, ListCollectionsError::ThrottlingException(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_provisioned_throughput_flag_answers_provisioned_throughput_exceeded() {
    let bed = start_with(quota(0.01, 1, ThrottleError::ProvisionedThroughputExceeded)).await;
    bed.client
        .create_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();
    let err = bed
        .client
        .create_collection()
        .collection_id("b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 400);
    let err = err.into_service_error();
    assert!(
        matches!(
            err,
            CreateCollectionError::ProvisionedThroughputExceededException(_)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn each_operation_has_its_own_quota() {
    let bed = start_with(quota(0.01, 1, ThrottleError::Throttling)).await;
    bed.client
        .create_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();
    assert!(
        bed.client
            .create_collection()
            .collection_id("b")
            .send()
            .await
            .is_err()
    );
    bed.client
        .describe_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();
    bed.client.list_collections().send().await.unwrap();
}

#[tokio::test]
async fn quota_is_checked_before_validation() {
    let bed = start_with(quota(0.01, 1, ThrottleError::Throttling)).await;
    let _ = bed
        .client
        .describe_collection()
        .collection_id("missing")
        .send()
        .await;
    let err = bed
        .client
        .describe_collection()
        .collection_id("bad id!")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        DescribeCollectionError::ThrottlingException(_)
    ));
}

#[tokio::test]
async fn tokens_come_back_at_the_configured_rate() {
    let bed = start_with(quota(20.0, 1, ThrottleError::Throttling)).await;
    bed.client.list_collections().send().await.unwrap();
    // At 20 tokens per second a token is back within 50 ms; allow generous slack.
    let client = bed.client.clone();
    let admitted = eventually(Duration::from_secs(2), || {
        let client = client.clone();
        async move { client.list_collections().send().await.is_ok() }
    })
    .await;
    assert!(admitted);
}

#[tokio::test]
async fn the_admin_api_turns_quotas_off_and_on() {
    let bed = start_with(quota(0.01, 1, ThrottleError::Throttling)).await;
    bed.admin
        .set_quota(&QuotaUpdate {
            enabled: false,
            ..Default::default()
        })
        .await
        .unwrap();
    for _ in 0..20 {
        bed.client.list_collections().send().await.unwrap();
    }
    let view = bed
        .admin
        .set_quota(&QuotaUpdate {
            enabled: true,
            rate: Some(0.01),
            burst: Some(2),
            operation: Some(Operation::ListCollections),
            throttle_error: Some(ThrottleError::ProvisionedThroughputExceeded),
        })
        .await
        .unwrap();
    assert!(view.operations[&Operation::ListCollections].enabled);
    assert!(!view.operations[&Operation::CreateCollection].enabled);
    for _ in 0..2 {
        bed.client.list_collections().send().await.unwrap();
    }
    let err = bed.client.list_collections().send().await.unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        ListCollectionsError::ProvisionedThroughputExceededException(_)
    ));
}

#[tokio::test]
async fn throttled_calls_are_counted_under_their_error_type() {
    let bed = start_with(quota(0.01, 2, ThrottleError::Throttling)).await;
    for _ in 0..5 {
        let _ = bed.client.list_collections().send().await;
    }
    let counters = bed.admin.counters().await.unwrap();
    assert_eq!(counters.get("ListCollections", "Ok"), 2);
    assert_eq!(counters.get("ListCollections", "ThrottlingException"), 3);
}

#[tokio::test]
async fn an_admin_quota_change_with_burst_zero_is_refused() {
    let bed = start_with(Config::default()).await;
    let err = bed
        .admin
        .set_quota(&QuotaUpdate {
            enabled: true,
            burst: Some(0),
            ..Default::default()
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
