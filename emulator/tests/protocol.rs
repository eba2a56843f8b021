//! AWS JSON 1.1 framing, checked with hand-made requests signed by AWS's own signer.

mod support;

use serde_json::Value;
use support::{RawRequest, start};

#[tokio::test]
async fn a_successful_response_carries_a_request_id_and_the_json_content_type() {
    let bed = start().await;
    let response = RawRequest::signed("RekognitionService.ListCollections", b"{}")
        .send(&bed.emulator)
        .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
    assert_eq!(headers["x-amzn-requestid"].len(), 36);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"CollectionIds": [], "FaceModelVersions": []})
    );
}

#[tokio::test]
async fn an_unknown_operation_is_unknown_operation_exception() {
    let bed = start().await;
    let response = RawRequest::signed("RekognitionService.IndexFaces", b"{}")
        .send(&bed.emulator)
        .await;
    assert_eq!(response.status(), 400);
    assert!(
        response.headers()["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .starts_with("UnknownOperationException")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["__type"],
        "com.amazon.coral.service#UnknownOperationException"
    );
}

#[tokio::test]
async fn a_request_without_a_target_is_unknown_operation_exception() {
    let bed = start().await;
    let mut request = RawRequest::signed("unused", b"{}");
    request.target = None;
    let response = request.send(&bed.emulator).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["__type"],
        "com.amazon.coral.service#UnknownOperationException"
    );
}

#[tokio::test]
async fn malformed_json_is_serialization_exception() {
    let bed = start().await;
    let response = RawRequest::signed("RekognitionService.CreateCollection", b"{\"CollectionId\":")
        .send(&bed.emulator)
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["__type"],
        "com.amazon.coral.service#SerializationException"
    );
}

#[tokio::test]
async fn a_member_of_the_wrong_type_is_serialization_exception() {
    let bed = start().await;
    let response = RawRequest::signed(
        "RekognitionService.CreateCollection",
        br#"{"CollectionId":42}"#,
    )
    .send(&bed.emulator)
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["__type"],
        "com.amazon.coral.service#SerializationException"
    );
}

#[tokio::test]
async fn a_missing_required_member_is_invalid_parameter_exception() {
    let bed = start().await;
    let response = RawRequest::signed("RekognitionService.CreateCollection", b"{}")
        .send(&bed.emulator)
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "InvalidParameterException"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["__type"], "InvalidParameterException");
    assert_eq!(body["Code"], "InvalidParameterException");
    let message = body["Message"].as_str().unwrap();
    assert!(
        message.contains("Value 'null' at 'collectionId'"),
        "{message}"
    );
}

#[tokio::test]
async fn an_empty_body_is_an_empty_input() {
    let bed = start().await;
    let response = RawRequest::signed("RekognitionService.ListCollections", b"")
        .send(&bed.emulator)
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn every_error_response_carries_a_request_id() {
    let bed = start().await;
    let response = RawRequest::signed(
        "RekognitionService.DescribeCollection",
        br#"{"CollectionId":"x"}"#,
    )
    .send(&bed.emulator)
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["__type"], "ResourceNotFoundException");
    assert_eq!(body["Message"], "The collection id: x does not exist");
}
