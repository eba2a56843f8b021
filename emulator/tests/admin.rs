//! The admin endpoint: counters, call log, collection view, reset.

mod support;

use rekognition_emulator::admin::{FaultRule, NextFailure};
use rekognition_emulator::{ErrorKind, Operation};
use support::{RawRequest, arn, start};

#[tokio::test]
async fn counters_count_calls_per_operation_and_outcome() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();
    bed.client
        .create_collection()
        .collection_id("b")
        .send()
        .await
        .unwrap();
    let _ = bed
        .client
        .create_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap_err();
    let _ = bed
        .client
        .describe_collection()
        .collection_id("zzz")
        .send()
        .await
        .unwrap_err();

    let counters = bed.admin.counters().await.unwrap();
    assert_eq!(counters.get("CreateCollection", "Ok"), 2);
    assert_eq!(
        counters.get("CreateCollection", "ResourceAlreadyExistsException"),
        1
    );
    assert_eq!(
        counters.get("DescribeCollection", "ResourceNotFoundException"),
        1
    );
    assert_eq!(counters.grand_total(), 4);
}

#[tokio::test]
async fn the_call_log_names_operation_collection_and_outcome_of_each_call() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();
    bed.client
        .tag_resource()
        .resource_arn(arn("a"))
        .tags("k", "v")
        .send()
        .await
        .unwrap();
    bed.client.list_collections().send().await.unwrap();

    let calls = bed.admin.calls().await.unwrap();
    let summary: Vec<(&str, Option<&str>, &str)> = calls
        .iter()
        .map(|c| {
            (
                c.operation.as_str(),
                c.collection_id.as_deref(),
                c.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("CreateCollection", Some("a"), "Ok"),
            ("TagResource", Some("a"), "Ok"),
            ("ListCollections", None, "Ok"),
        ]
    );
    assert!(calls.windows(2).all(|w| w[0].at <= w[1].at));
}

#[tokio::test]
async fn the_call_log_filters_by_collection_id() {
    let bed = start().await;
    for id in ["a", "b"] {
        bed.client
            .create_collection()
            .collection_id(id)
            .send()
            .await
            .unwrap();
    }
    bed.client
        .describe_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();
    bed.client
        .list_tags_for_resource()
        .resource_arn(arn("b"))
        .send()
        .await
        .unwrap();

    let calls = bed.admin.calls_for("a").await.unwrap();
    let operations: Vec<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    assert_eq!(operations, ["CreateCollection", "DescribeCollection"]);
    assert_eq!(bed.admin.calls_for("b").await.unwrap().len(), 2);
    assert!(
        bed.admin
            .calls_for("never-touched")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn rejected_and_unknown_calls_are_logged_too() {
    let bed = start().await;
    let unsigned = RawRequest {
        target: Some("RekognitionService.DescribeCollection"),
        body: br#"{"CollectionId":"x"}"#,
        sent_body: None,
        signing: None,
    };
    unsigned.send(&bed.emulator).await;
    RawRequest::signed("RekognitionService.SearchFaces", b"{}")
        .send(&bed.emulator)
        .await;

    let calls = bed.admin.calls().await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].operation, "DescribeCollection");
    assert_eq!(calls[0].collection_id.as_deref(), Some("x"));
    assert_eq!(calls[0].outcome, "MissingAuthenticationTokenException");
    assert_eq!(calls[1].operation, "Unknown");
    assert_eq!(calls[1].outcome, "UnknownOperationException");
}

#[tokio::test]
async fn the_collections_view_shows_ids_arns_tags_and_counts() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("b")
        .tags("k", "v")
        .send()
        .await
        .unwrap();
    bed.client
        .create_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();

    let collections = bed.admin.collections().await.unwrap();
    let ids: Vec<&str> = collections
        .iter()
        .map(|c| c.collection_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(collections[1].collection_arn, arn("b"));
    assert_eq!(collections[1].tags.get("k").map(String::as_str), Some("v"));
    assert_eq!(collections[1].face_count, 0);
    assert_eq!(collections[1].face_model_version, "7.0");
}

#[tokio::test]
async fn reset_clears_collections_counters_calls_and_faults() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();
    bed.admin
        .set_fault(&FaultRule {
            operation: Some(Operation::DeleteCollection),
            error: None,
            probability: 1.0,
            latency_ms: 0,
        })
        .await
        .unwrap();
    bed.admin
        .fail_next(&NextFailure {
            operation: None,
            error: ErrorKind::Throttling,
            count: 3,
        })
        .await
        .unwrap();

    bed.admin.reset().await.unwrap();

    assert!(bed.admin.collections().await.unwrap().is_empty());
    assert_eq!(bed.admin.counters().await.unwrap().grand_total(), 0);
    assert!(bed.admin.calls().await.unwrap().is_empty());
    let faults = bed.admin.faults().await.unwrap();
    assert!(faults.rules.is_empty() && faults.next.is_empty());
    bed.client
        .create_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_health_route_answers_once_serving() {
    let bed = start().await;
    bed.admin.health().await.unwrap();
}
