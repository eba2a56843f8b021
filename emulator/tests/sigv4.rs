//! SigV4 verification: what the emulator answers to requests that are not signed right.

mod support;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use rekognition_emulator::{DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY};
use serde_json::Value;
use support::{RawRequest, Signing, client_with, code, start, status};

#[tokio::test]
async fn a_request_signed_with_the_configured_key_pair_is_accepted() {
    let bed = start().await;
    bed.client.list_collections().send().await.unwrap();
}

#[tokio::test]
async fn a_wrong_secret_key_is_invalid_signature() {
    let bed = start().await;
    let client = client_with(
        &bed.emulator.endpoint_url(),
        "us-east-1",
        Credentials::new(DEFAULT_ACCESS_KEY_ID, "not-the-secret", None, None, "tests"),
    );
    let err = client.list_collections().send().await.unwrap_err();
    assert_eq!(status(&err), 403);
    assert_eq!(code(&err).as_deref(), Some("InvalidSignatureException"));
}

#[tokio::test]
async fn an_unknown_access_key_is_unrecognized_client() {
    let bed = start().await;
    let client = client_with(
        &bed.emulator.endpoint_url(),
        "us-east-1",
        Credentials::new(
            "AKIAUNKNOWNKEY000000",
            DEFAULT_SECRET_ACCESS_KEY,
            None,
            None,
            "tests",
        ),
    );
    let err = client
        .describe_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 403);
    assert_eq!(code(&err).as_deref(), Some("UnrecognizedClientException"));
}

#[tokio::test]
async fn a_signature_for_another_region_is_invalid_signature() {
    let bed = start().await;
    let client = client_with(
        &bed.emulator.endpoint_url(),
        "eu-west-1",
        Credentials::new(
            DEFAULT_ACCESS_KEY_ID,
            DEFAULT_SECRET_ACCESS_KEY,
            None,
            None,
            "tests",
        ),
    );
    let err = client.list_collections().send().await.unwrap_err();
    assert_eq!(status(&err), 403);
    assert_eq!(code(&err).as_deref(), Some("InvalidSignatureException"));
}

#[tokio::test]
async fn a_request_without_authorization_is_missing_authentication_token() {
    let bed = start().await;
    let response = RawRequest {
        target: Some("RekognitionService.ListCollections"),
        body: b"{}",
        sent_body: None,
        signing: None,
    }
    .send(&bed.emulator)
    .await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["__type"],
        "com.amazon.coral.service#MissingAuthenticationTokenException"
    );
    assert_eq!(body["message"], "Missing Authentication Token");
}

#[tokio::test]
async fn a_request_signed_twenty_minutes_ago_is_rejected_as_expired() {
    let bed = start().await;
    let mut request = RawRequest::signed("RekognitionService.ListCollections", b"{}");
    if let Some(signing) = &mut request.signing {
        signing.time = SystemTime::now() - Duration::from_secs(20 * 60);
    }
    let response = request.send(&bed.emulator).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["__type"],
        "com.amazon.coral.service#InvalidSignatureException"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature expired"),
        "{body}"
    );
}

#[tokio::test]
async fn a_request_signed_ten_minutes_ago_is_within_the_allowed_skew() {
    let bed = start().await;
    let mut request = RawRequest::signed("RekognitionService.ListCollections", b"{}");
    if let Some(signing) = &mut request.signing {
        signing.time = SystemTime::now() - Duration::from_secs(10 * 60);
    }
    assert_eq!(request.send(&bed.emulator).await.status(), 200);
}

#[tokio::test]
async fn a_body_changed_after_signing_is_invalid_signature() {
    let bed = start().await;
    let mut request = RawRequest::signed(
        "RekognitionService.CreateCollection",
        br#"{"CollectionId":"a"}"#,
    );
    request.sent_body = Some(br#"{"CollectionId":"b"}"#);
    let response = request.send(&bed.emulator).await;
    assert_eq!(response.status(), 403);
    assert!(bed.admin.collections().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_session_token_with_a_long_term_key_is_an_unrecognized_client() {
    // Session tokens are checked: only keys issued by STS take one, and only their own.
    let bed = start().await;
    let client = client_with(
        &bed.emulator.endpoint_url(),
        "us-east-1",
        Credentials::new(
            DEFAULT_ACCESS_KEY_ID,
            DEFAULT_SECRET_ACCESS_KEY,
            Some("FwoGZXIvYXdzEXAMPLESESSIONTOKEN".to_owned()),
            None,
            "tests",
        ),
    );
    let err = client.list_collections().send().await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("UnrecognizedClientException"));
    assert_eq!(status(&err), 403);

    let mut request = RawRequest::signed("RekognitionService.ListCollections", b"{}");
    request.signing = Some(Signing {
        session_token: Some("token"),
        ..Signing::default_now()
    });
    assert_eq!(request.send(&bed.emulator).await.status(), 403);
}

#[tokio::test]
async fn rejected_requests_change_nothing() {
    let bed = start().await;
    let client = client_with(
        &bed.emulator.endpoint_url(),
        "us-east-1",
        Credentials::new(DEFAULT_ACCESS_KEY_ID, "wrong", None, None, "tests"),
    );
    let _ = client
        .create_collection()
        .collection_id("c")
        .send()
        .await
        .unwrap_err();
    assert!(bed.admin.collections().await.unwrap().is_empty());
}
