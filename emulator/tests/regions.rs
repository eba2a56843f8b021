//! Several regions on one emulator, through the real AWS SDK: each region's endpoint is
//! `<endpoint>/<region>`, a request must be signed for the region of the endpoint it reaches,
//! and collections, ARNs, quotas and call logs are kept per account and region.

mod support;

use aws_credential_types::Credentials;
use rekognition_emulator::admin::QuotaUpdate;
use rekognition_emulator::{Config, Operation, QuotaConfig};
use support::{client_with, code, start_with, status};

const EUROPE: &str = "eu-west-1";
const SYDNEY: &str = "ap-southeast-2";

async fn three_regions() -> support::TestBed {
    start_with(Config {
        extra_regions: vec![EUROPE.to_owned(), SYDNEY.to_owned()],
        quota: QuotaConfig::disabled(),
        ..Config::default()
    })
    .await
}

fn client(bed: &support::TestBed, endpoint: &str, region: &str) -> aws_sdk_rekognition::Client {
    let config = bed.emulator.config();
    let credentials = Credentials::new(
        &config.access_key_id,
        &config.secret_access_key,
        None,
        None,
        "tests",
    );
    client_with(endpoint, region, credentials)
}

#[tokio::test]
async fn each_region_has_its_own_collections_and_arns() {
    let bed = three_regions().await;
    let europe = client(&bed, &bed.emulator.region_endpoint_url(EUROPE), EUROPE);
    let home = &bed.client;

    let created = europe
        .create_collection()
        .collection_id("faces")
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.collection_arn(),
        Some("aws:rekognition:eu-west-1:123456789012:collection/faces")
    );
    // The same ID in another region is another collection.
    home.create_collection()
        .collection_id("faces")
        .send()
        .await
        .unwrap();
    let described = europe
        .describe_collection()
        .collection_id("faces")
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.collection_arn(),
        Some("arn:aws:rekognition:eu-west-1:123456789012:collection/faces")
    );
    let sydney = client(&bed, &bed.emulator.region_endpoint_url(SYDNEY), SYDNEY);
    let listed = sydney.list_collections().send().await.unwrap();
    assert!(listed.collection_ids().is_empty());

    // An ARN of one region names nothing at another region's endpoint.
    let err = home
        .list_tags_for_resource()
        .resource_arn("arn:aws:rekognition:eu-west-1:123456789012:collection/faces")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("ResourceNotFoundException"));

    europe
        .delete_collection()
        .collection_id("faces")
        .send()
        .await
        .unwrap();
    let left = bed.admin.collections().await.unwrap();
    assert_eq!(left.len(), 1, "the home region's collection stays");
    assert!(
        bed.admin
            .for_region(EUROPE)
            .collections()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_request_signed_for_another_region_than_the_endpoints_is_refused() {
    let bed = three_regions().await;
    // Signed for eu-west-1, sent to the default region's endpoint: what a client whose
    // endpoint override ignores the region does.
    let misrouted = client(&bed, &bed.emulator.endpoint_url(), EUROPE);
    let err = misrouted
        .create_collection()
        .collection_id("faces")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("InvalidSignatureException"));
    assert_eq!(status(&err), 403);
    // And the other way round.
    let misrouted = client(&bed, &bed.emulator.region_endpoint_url(SYDNEY), "us-east-1");
    let err = misrouted.list_collections().send().await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("InvalidSignatureException"));
    // Nothing was created anywhere; each refusal is in the log of the endpoint's region.
    for region in ["us-east-1", EUROPE, SYDNEY] {
        let admin = bed.admin.for_region(region);
        assert!(admin.collections().await.unwrap().is_empty(), "{region}");
    }
    let home_calls = bed.admin.calls().await.unwrap();
    assert_eq!(home_calls.len(), 1);
    assert_eq!(home_calls[0].outcome, "InvalidSignatureException");
    let sydney_calls = bed.admin.for_region(SYDNEY).calls().await.unwrap();
    assert_eq!(sydney_calls.len(), 1);
    assert!(
        bed.admin
            .for_region(EUROPE)
            .calls()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_endpoint_template_reaches_every_region() {
    let bed = three_regions().await;
    let template = bed.emulator.endpoint_template();
    for region in ["us-east-1", EUROPE, SYDNEY] {
        let client = client(&bed, &template.replace("{region}", region), region);
        let created = client
            .create_collection()
            .collection_id(format!("in-{region}"))
            .send()
            .await
            .unwrap();
        assert!(
            created
                .collection_arn()
                .unwrap()
                .contains(&format!(":{region}:")),
            "{created:?}"
        );
        let counters = bed.admin.for_region(region).counters().await.unwrap();
        assert_eq!(counters.get("CreateCollection", "Ok"), 1, "{region}");
    }
}

#[tokio::test]
async fn quotas_are_kept_per_account_and_region() {
    let bed = start_with(Config {
        extra_regions: vec![EUROPE.to_owned()],
        ..Config::default()
    })
    .await;
    let europe_admin = bed.admin.for_region(EUROPE);
    europe_admin
        .set_quota(&QuotaUpdate {
            enabled: true,
            rate: Some(0.001),
            burst: Some(1),
            operation: Some(Operation::ListCollections),
            ..QuotaUpdate::default()
        })
        .await
        .unwrap();
    let europe = client(&bed, &bed.emulator.region_endpoint_url(EUROPE), EUROPE);
    europe.list_collections().send().await.unwrap();
    let err = europe.list_collections().send().await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("ThrottlingException"));
    // The home region's bucket for the same account and operation is untouched.
    for _ in 0..3 {
        bed.client.list_collections().send().await.unwrap();
    }
}

#[tokio::test]
async fn a_region_not_served_is_refused_by_the_admin_api() {
    let bed = three_regions().await;
    let err = bed
        .admin
        .for_region("ap-south-1")
        .collections()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no region ap-south-1"), "{err}");
}
