//! Collection lifecycle through the real AWS SDK: create, describe, delete, list with paging.

mod support;

use aws_sdk_rekognition::operation::create_collection::CreateCollectionError;
use aws_sdk_rekognition::operation::delete_collection::DeleteCollectionError;
use aws_sdk_rekognition::operation::describe_collection::DescribeCollectionError;
use aws_sdk_rekognition::operation::list_collections::ListCollectionsError;
use support::{arn, code, start, status};

#[tokio::test]
async fn create_answers_the_arn_without_arn_prefix_and_the_face_model_version() {
    let bed = start().await;
    let output = bed
        .client
        .create_collection()
        .collection_id("myphotos")
        .send()
        .await
        .unwrap();
    assert_eq!(output.status_code(), Some(200));
    assert_eq!(
        output.collection_arn(),
        Some("aws:rekognition:us-east-1:123456789012:collection/myphotos")
    );
    assert_eq!(output.face_model_version(), Some("7.0"));
}

#[tokio::test]
async fn describe_answers_the_canonical_arn_counts_and_creation_time() {
    let bed = start().await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    bed.client
        .create_collection()
        .collection_id("myphotos")
        .send()
        .await
        .unwrap();
    let output = bed
        .client
        .describe_collection()
        .collection_id("myphotos")
        .send()
        .await
        .unwrap();
    assert_eq!(output.collection_arn(), Some(arn("myphotos").as_str()));
    assert_eq!(output.face_count(), Some(0));
    assert_eq!(output.user_count(), Some(0));
    assert_eq!(output.face_model_version(), Some("7.0"));
    let created = output
        .creation_timestamp()
        .expect("creation timestamp")
        .as_secs_f64();
    assert!(
        (created - before).abs() < 5.0,
        "created {created}, test started {before}"
    );
}

#[tokio::test]
async fn delete_removes_the_collection() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("gone")
        .send()
        .await
        .unwrap();
    let output = bed
        .client
        .delete_collection()
        .collection_id("gone")
        .send()
        .await
        .unwrap();
    assert_eq!(output.status_code(), Some(200));
    let err = bed
        .client
        .describe_collection()
        .collection_id("gone")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        DescribeCollectionError::ResourceNotFoundException(_)
    ));
}

#[tokio::test]
async fn creating_an_existing_collection_is_resource_already_exists() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("twice")
        .send()
        .await
        .unwrap();
    let err = bed
        .client
        .create_collection()
        .collection_id("twice")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 400);
    let err = err.into_service_error();
    assert!(
        matches!(
            err,
            CreateCollectionError::ResourceAlreadyExistsException(_)
        ),
        "{err:?}"
    );
    assert_eq!(
        aws_sdk_rekognition::error::ProvideErrorMetadata::message(&err),
        Some("The collection id: twice already exists")
    );
}

#[tokio::test]
async fn describing_a_missing_collection_is_resource_not_found() {
    let bed = start().await;
    let err = bed
        .client
        .describe_collection()
        .collection_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 400);
    assert!(matches!(
        err.into_service_error(),
        DescribeCollectionError::ResourceNotFoundException(_)
    ));
}

#[tokio::test]
async fn deleting_a_missing_collection_is_resource_not_found() {
    let bed = start().await;
    let err = bed
        .client
        .delete_collection()
        .collection_id("nope")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        DeleteCollectionError::ResourceNotFoundException(_)
    ));
}

#[tokio::test]
async fn a_collection_id_outside_the_pattern_is_invalid_parameter() {
    let bed = start().await;
    let err = bed
        .client
        .create_collection()
        .collection_id("has space")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 400);
    let err = err.into_service_error();
    assert!(
        matches!(err, CreateCollectionError::InvalidParameterException(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_collection_id_longer_than_255_characters_is_invalid_parameter() {
    let bed = start().await;
    let long = "x".repeat(256);
    let err = bed
        .client
        .describe_collection()
        .collection_id(long)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        DescribeCollectionError::InvalidParameterException(_)
    ));
}

#[tokio::test]
async fn list_pages_through_25_collections_ten_at_a_time_in_id_order() {
    let bed = start().await;
    let mut expected: Vec<String> = (0..25).map(|i| format!("col-{i:02}")).collect();
    // Created out of order: the listing must still be sorted.
    for id in expected.iter().rev() {
        bed.client
            .create_collection()
            .collection_id(id)
            .send()
            .await
            .unwrap();
    }
    expected.sort();

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let page = bed
            .client
            .list_collections()
            .max_results(10)
            .set_next_token(token.take())
            .send()
            .await
            .unwrap();
        pages.push(page.collection_ids().len());
        assert_eq!(
            page.collection_ids().len(),
            page.face_model_versions().len()
        );
        seen.extend(page.collection_ids().iter().cloned());
        match page.next_token() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, [10, 10, 5]);
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn the_sdk_paginator_lists_every_collection() {
    let bed = start().await;
    for i in 0..7 {
        bed.client
            .create_collection()
            .collection_id(format!("p{i}"))
            .send()
            .await
            .unwrap();
    }
    let ids: Vec<String> = bed
        .client
        .list_collections()
        .max_results(3)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(ids, ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
}

#[tokio::test]
async fn an_empty_account_lists_no_collections_and_no_next_token() {
    let bed = start().await;
    let page = bed.client.list_collections().send().await.unwrap();
    assert!(page.collection_ids().is_empty());
    assert_eq!(page.next_token(), None);
}

#[tokio::test]
async fn a_next_token_the_emulator_never_issued_is_invalid_pagination_token() {
    let bed = start().await;
    let err = bed
        .client
        .list_collections()
        .next_token("made-up")
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(
        matches!(
            err,
            ListCollectionsError::InvalidPaginationTokenException(_)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn max_results_above_4096_is_invalid_parameter() {
    let bed = start().await;
    let err = bed
        .client
        .list_collections()
        .max_results(4097)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("InvalidParameterException"));
    assert!(matches!(
        err.into_service_error(),
        ListCollectionsError::InvalidParameterException(_)
    ));
}
