//! Tagging through the real AWS SDK: TagResource, UntagResource, ListTagsForResource, and the
//! ARN and limit checks around them.

mod support;

use std::collections::HashMap;

use aws_sdk_rekognition::operation::create_collection::CreateCollectionError;
use aws_sdk_rekognition::operation::list_tags_for_resource::ListTagsForResourceError;
use aws_sdk_rekognition::operation::tag_resource::TagResourceError;
use aws_sdk_rekognition::operation::untag_resource::UntagResourceError;
use support::{TestBed, arn, start};

async fn tags_of(bed: &TestBed, id: &str) -> HashMap<String, String> {
    let output = bed
        .client
        .list_tags_for_resource()
        .resource_arn(arn(id))
        .send()
        .await
        .unwrap();
    output.tags().cloned().unwrap_or_default()
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn tags_given_at_creation_are_listed() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("tagged")
        .tags("team", "vision")
        .tags("rekognition.aws-operators.dev/owner", "0f9c1f5e-uid")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&bed, "tagged").await,
        map(&[
            ("team", "vision"),
            ("rekognition.aws-operators.dev/owner", "0f9c1f5e-uid")
        ])
    );
}

#[tokio::test]
async fn tag_resource_adds_and_overwrites_tags() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("c")
        .tags("a", "1")
        .tags("b", "2")
        .send()
        .await
        .unwrap();
    bed.client
        .tag_resource()
        .resource_arn(arn("c"))
        .tags("b", "20")
        .tags("c", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&bed, "c").await,
        map(&[("a", "1"), ("b", "20"), ("c", "3")])
    );
}

#[tokio::test]
async fn untag_resource_removes_only_the_named_keys() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("c")
        .tags("a", "1")
        .tags("b", "2")
        .send()
        .await
        .unwrap();
    bed.client
        .untag_resource()
        .resource_arn(arn("c"))
        .tag_keys("a")
        .tag_keys("not-there")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&bed, "c").await, map(&[("b", "2")]));
}

#[tokio::test]
async fn the_create_arn_with_the_arn_prefix_added_names_the_collection() {
    let bed = start().await;
    let created = bed
        .client
        .create_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap();
    let canonical = format!("arn:{}", created.collection_arn().unwrap());
    bed.client
        .tag_resource()
        .resource_arn(&canonical)
        .tags("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of(&bed, "c").await, map(&[("k", "v")]));
}

#[tokio::test]
async fn tagging_a_missing_collection_is_resource_not_found() {
    let bed = start().await;
    let err = bed
        .client
        .tag_resource()
        .resource_arn(arn("nope"))
        .tags("k", "v")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        TagResourceError::ResourceNotFoundException(_)
    ));
}

#[tokio::test]
async fn listing_tags_of_a_missing_collection_is_resource_not_found() {
    let bed = start().await;
    let err = bed
        .client
        .list_tags_for_resource()
        .resource_arn(arn("nope"))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        ListTagsForResourceError::ResourceNotFoundException(_)
    ));
}

#[tokio::test]
async fn an_arn_of_another_account_is_resource_not_found() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap();
    let foreign = "arn:aws:rekognition:us-east-1:999999999999:collection/c";
    let err = bed
        .client
        .untag_resource()
        .resource_arn(foreign)
        .tag_keys("k")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        UntagResourceError::ResourceNotFoundException(_)
    ));
}

#[tokio::test]
async fn an_arn_of_another_region_is_resource_not_found() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap();
    let elsewhere = "arn:aws:rekognition:eu-west-1:123456789012:collection/c";
    let err = bed
        .client
        .list_tags_for_resource()
        .resource_arn(elsewhere)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        ListTagsForResourceError::ResourceNotFoundException(_)
    ));
}

#[tokio::test]
async fn an_arn_that_is_not_a_collection_arn_is_invalid_parameter() {
    let bed = start().await;
    for bad in [
        "arn:aws:rekognition:us-east-1:123456789012:project/c",
        "aws:rekognition:us-east-1:123456789012:collection/c",
        "arn:aws:s3:::some-bucket/and/key",
        "short",
    ] {
        let err = bed
            .client
            .tag_resource()
            .resource_arn(bad)
            .tags("k", "v")
            .send()
            .await
            .unwrap_err();
        let err = err.into_service_error();
        assert!(
            matches!(err, TagResourceError::InvalidParameterException(_)),
            "{bad}: {err:?}"
        );
    }
}

#[tokio::test]
async fn more_than_200_tags_in_total_is_invalid_parameter_and_changes_nothing() {
    let bed = start().await;
    let first: HashMap<String, String> = (0..150).map(|i| (format!("k{i}"), "v".into())).collect();
    bed.client
        .create_collection()
        .collection_id("c")
        .set_tags(Some(first))
        .send()
        .await
        .unwrap();
    let more: HashMap<String, String> = (150..201).map(|i| (format!("k{i}"), "v".into())).collect();
    let err = bed
        .client
        .tag_resource()
        .resource_arn(arn("c"))
        .set_tags(Some(more))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        TagResourceError::InvalidParameterException(_)
    ));
    assert_eq!(tags_of(&bed, "c").await.len(), 150);
}

#[tokio::test]
async fn creating_with_201_tags_is_invalid_parameter() {
    let bed = start().await;
    let tags: HashMap<String, String> = (0..201).map(|i| (format!("k{i}"), "v".into())).collect();
    let err = bed
        .client
        .create_collection()
        .collection_id("c")
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        CreateCollectionError::InvalidParameterException(_)
    ));
}

#[tokio::test]
async fn a_tag_key_with_the_aws_prefix_is_invalid_parameter() {
    let bed = start().await;
    let err = bed
        .client
        .create_collection()
        .collection_id("c")
        .tags("aws:createdBy", "me")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        CreateCollectionError::InvalidParameterException(_)
    ));
}

#[tokio::test]
async fn a_tag_value_longer_than_256_characters_is_invalid_parameter() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap();
    let err = bed
        .client
        .tag_resource()
        .resource_arn(arn("c"))
        .tags("k", "v".repeat(257))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        TagResourceError::InvalidParameterException(_)
    ));
}

#[tokio::test]
async fn untagging_more_than_50_keys_at_once_is_invalid_parameter() {
    let bed = start().await;
    bed.client
        .create_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = (0..51).map(|i| format!("k{i}")).collect();
    let err = bed
        .client
        .untag_resource()
        .resource_arn(arn("c"))
        .set_tag_keys(Some(keys))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        UntagResourceError::InvalidParameterException(_)
    ));
}
