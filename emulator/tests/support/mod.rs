//! Shared helpers of the emulator's integration tests: start an emulator on free ports, build
//! real AWS SDK clients against it, and send hand-made signed requests.

#![allow(dead_code)] // each test crate uses a different subset

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_rekognition::Client;
use aws_sdk_rekognition::config::Region;
use aws_sdk_rekognition::config::retry::RetryConfig;
use aws_sdk_rekognition::error::{ProvideErrorMetadata, SdkError};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use rekognition_emulator::admin::AdminClient;
use rekognition_emulator::{Config, Emulator, QuotaConfig};

pub const TARGET_PREFIX: &str = "RekognitionService.";

/// A running emulator with an SDK client and an admin client pointed at it.
pub struct TestBed {
    pub emulator: Emulator,
    pub client: Client,
    pub admin: AdminClient,
}

/// An emulator with the default account and credentials and quotas off, so tests that make
/// many calls are not throttled.
pub async fn start() -> TestBed {
    start_with(Config {
        quota: QuotaConfig::disabled(),
        ..Config::default()
    })
    .await
}

pub async fn start_with(config: Config) -> TestBed {
    let emulator = Emulator::start(config, free_port(), free_port())
        .await
        .expect("emulator starts");
    let client = client_for(&emulator);
    let admin = emulator.admin_client().expect("admin client");
    TestBed {
        emulator,
        client,
        admin,
    }
}

pub fn free_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

/// An SDK client signing with the emulator's own credentials and region, without retries so
/// that every SDK call is exactly one HTTP request.
pub fn client_for(emulator: &Emulator) -> Client {
    let config = emulator.config();
    client_with(
        &emulator.endpoint_url(),
        &config.region,
        Credentials::new(
            &config.access_key_id,
            &config.secret_access_key,
            None,
            None,
            "tests",
        ),
    )
}

pub fn client_with(endpoint: &str, region: &str, credentials: Credentials) -> Client {
    let config = aws_sdk_rekognition::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

/// The canonical ARN of collection `id` in the default account and region.
pub fn arn(id: &str) -> String {
    format!("arn:aws:rekognition:us-east-1:123456789012:collection/{id}")
}

/// The error code of a failed SDK call, whether or not the SDK models it for the operation.
pub fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<String> {
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned)
}

/// The HTTP status of a failed SDK call.
pub fn status<E>(err: &SdkError<E, aws_sdk_rekognition::config::http::HttpResponse>) -> u16 {
    err.raw_response()
        .map(|r| r.status().as_u16())
        .unwrap_or_default()
}

/// How a raw request is signed.
pub struct Signing<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub time: SystemTime,
    pub session_token: Option<&'a str>,
}

impl Signing<'_> {
    /// Signed as the SDK would sign with the default test credentials, now.
    pub fn default_now() -> Signing<'static> {
        Signing {
            access_key_id: rekognition_emulator::DEFAULT_ACCESS_KEY_ID,
            secret_access_key: rekognition_emulator::DEFAULT_SECRET_ACCESS_KEY,
            region: rekognition_emulator::DEFAULT_REGION,
            time: SystemTime::now(),
            session_token: None,
        }
    }
}

/// A hand-made AWS JSON 1.1 request, signed by AWS's own signer (`aws-sigv4`) when `signing`
/// is given. `body` is what is signed; `sent_body` (if any) is what is actually sent.
pub struct RawRequest<'a> {
    pub target: Option<&'a str>,
    pub body: &'a [u8],
    pub sent_body: Option<&'a [u8]>,
    pub signing: Option<Signing<'a>>,
}

impl<'a> RawRequest<'a> {
    pub fn signed(target: &'a str, body: &'a [u8]) -> Self {
        RawRequest {
            target: Some(target),
            body,
            sent_body: None,
            signing: Some(Signing::default_now()),
        }
    }

    pub async fn send(&self, emulator: &Emulator) -> reqwest::Response {
        let url = format!("{}/", emulator.endpoint_url());
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), emulator.aws_addr().to_string()),
            ("content-type".into(), "application/x-amz-json-1.1".into()),
        ];
        if let Some(target) = self.target {
            headers.push(("x-amz-target".into(), target.into()));
        }
        if let Some(signing) = &self.signing {
            let identity = Credentials::new(
                signing.access_key_id,
                signing.secret_access_key,
                signing.session_token.map(str::to_owned),
                None,
                "raw",
            )
            .into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region(signing.region)
                .name("rekognition")
                .time(signing.time)
                .settings(SigningSettings::default())
                .build()
                .expect("signing params")
                .into();
            let signable = SignableRequest::new(
                "POST",
                url.as_str(),
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                SignableBody::Bytes(self.body),
            )
            .expect("signable request");
            let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
            for (name, value) in instructions.headers() {
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        let mut request = http
            .post(&url)
            .body(self.sent_body.unwrap_or(self.body).to_vec());
        for (name, value) in headers.iter().filter(|(name, _)| name != "host") {
            request = request.header(name, value);
        }
        request.send().await.expect("request sent")
    }
}

/// Polls `condition` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
