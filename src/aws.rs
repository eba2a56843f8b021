//! Rekognition behind one small trait, and the AWS SDK adapter that implements it.
//!
//! The adapter is the only place that knows SDK error types: every failure is mapped once, here,
//! into an [`AwsErrorKind`] that the rest of the operator reasons about.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_rekognition::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::DateTime;

use crate::accounts::Identity;
use crate::metrics::Metrics;
use crate::rate::{Admission, Priority, RateLimiters};
use crate::sync::lock;

pub use crate::aws_error::{AwsError, AwsErrorKind};
pub use crate::collection::{CollectionDescription, CreatedCollection, Target};
pub use crate::tags::Tags;

/// CreateCollection either creates the collection or finds one under the same ID.
#[derive(Clone, Debug, PartialEq)]
pub enum CreateOutcome {
    Created(CreatedCollection),
    AlreadyExists,
}

/// What DescribeCollection found, or that a background describe must wait for budget.
#[derive(Clone, Debug, PartialEq)]
pub enum Described {
    Exists(CollectionDescription),
    Missing,
    /// A background (resync) describe found no free token: try again after this long. Only
    /// [`Priority::Background`] calls get this answer; no AWS call was made.
    Deferred(Duration),
}

/// The Rekognition calls the operator makes. NotFound answers that mean "nothing there" come back
/// as `Ok(None)` / `Ok(false)`, so callers treat "missing is OK" without matching on errors.
pub trait CollectionApi: Send + Sync + 'static {
    fn create(
        &self,
        target: &Target,
        collection_id: &str,
        tags: &Tags,
    ) -> impl Future<Output = Result<CreateOutcome, AwsError>> + Send;

    /// A background describe (a resync) runs only on spare budget; see [`Described::Deferred`].
    fn describe(
        &self,
        target: &Target,
        collection_id: &str,
        priority: Priority,
    ) -> impl Future<Output = Result<Described, AwsError>> + Send;

    /// Returns false when the collection was already gone.
    fn delete(
        &self,
        target: &Target,
        collection_id: &str,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send;

    fn list_tags(
        &self,
        target: &Target,
        arn: &str,
    ) -> impl Future<Output = Result<Option<Tags>, AwsError>> + Send;

    fn tag(
        &self,
        target: &Target,
        arn: &str,
        tags: &Tags,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    fn untag(
        &self,
        target: &Target,
        arn: &str,
        keys: &[String],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// Every collection ID in the account and region (all pages), for the orphan inventory.
    fn list_collections(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
}

/// The Rekognition operations the operator can call. `deploy/iam-policy.json` grants exactly these.
pub const OPERATIONS: [&str; 7] = [
    "CreateCollection",
    "ListCollections",
    "DescribeCollection",
    "DeleteCollection",
    "ListTagsForResource",
    "TagResource",
    "UntagResource",
];

impl AwsError {
    /// Maps an SDK error. Timeouts, dispatch (connection) failures and unreadable responses are
    /// transient; service errors are classified by their code.
    pub fn from_sdk<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = error.code().map(str::to_owned);
        let message = error
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| error_chain(&error));
        if let Some(credentials) = credentials_failure(&error) {
            return Self {
                kind: AwsErrorKind::CredentialsUnavailable,
                operation,
                code: None,
                message: format!("no AWS credentials: {credentials}"),
            };
        }
        let kind = match &error {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => AwsErrorKind::Unavailable,
            SdkError::ServiceError(service) => match code.as_deref() {
                Some(code) => AwsErrorKind::from_code(code, Some(service.raw().status().as_u16())),
                None => AwsErrorKind::from_code("", Some(service.raw().status().as_u16())),
            },
            _ => AwsErrorKind::Unknown,
        };
        Self {
            kind,
            operation,
            code,
            message,
        }
    }
}

/// The credential provider's failure, when that is why a call failed: the chain of a
/// `CredentialsError` (it names the provider that failed, e.g. the web identity token file).
fn credentials_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return Some(error_chain(cause));
        }
        source = cause.source();
    }
    None
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// "Missing is OK": a ResourceNotFoundException becomes `Ok(None)`, every other error stays.
fn missing_is_none<T>(result: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.kind == AwsErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Names the credential provider of a configuration, for messages: the provider's type, in the
/// words a platform engineer configures it with.
fn credentials_source(config: &aws_config::SdkConfig) -> String {
    let Some(provider) = config.credentials_provider() else {
        return "no credential provider configured".into();
    };
    let debug = format!("{provider:?}");
    let known = [
        (
            "WebIdentityToken",
            "web identity token (IRSA: AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE)",
        ),
        ("EcsCredentials", "container credentials (EKS Pod Identity)"),
        ("AssumeRole", "STS AssumeRole"),
        ("ImdsCredentials", "instance metadata (IMDS)"),
        ("ProfileFile", "shared config profile"),
        ("EnvironmentVariable", "environment (AWS_ACCESS_KEY_ID)"),
        (
            "DefaultCredentialsChain",
            "the default chain: environment, profile, web identity (IRSA), container (Pod Identity), instance metadata",
        ),
    ];
    known
        .iter()
        .find(|(needle, _)| debug.contains(needle))
        .map(|(_, name)| format!("credential provider: {name}"))
        .unwrap_or_else(|| "credential provider: static or custom".into())
}

/// The endpoint override for `region`: a template with `{region}` serves every region; a fixed URL
/// serves the default region only, never silently another (whose calls would be signed for one
/// region and sent to another's endpoint); other regions use AWS's own endpoint.
pub fn endpoint_for(template: Option<&str>, default_region: &str, region: &str) -> Option<String> {
    let template = template?;
    if template.contains("{region}") {
        Some(template.replace("{region}", region))
    } else if region == default_region {
        Some(template.to_owned())
    } else {
        None
    }
}

/// Puts `arn:` in front of an ARN that lacks it: CreateCollection answers
/// `aws:rekognition:<region>:<account>:collection/<id>`, DescribeCollection the full form.
pub fn canonical_arn(arn: &str) -> String {
    if arn.starts_with("arn:") {
        arn.to_owned()
    } else {
        format!("arn:{arn}")
    }
}

/// The SDK adapter: one Rekognition client per (identity, region), every call through the
/// limiter of its account, region and operation.
#[derive(Clone)]
pub struct SdkCollectionApi {
    base: aws_config::SdkConfig,
    /// Set on the Rekognition clients only, so credential calls (STS for IRSA) keep their own.
    /// A URL template that may contain `{region}`; a fixed URL serves the default region only.
    endpoint_url: Option<String>,
    default_region: String,
    /// Which credential provider the configuration uses, named in CredentialsUnavailable.
    credentials_source: String,
    clients: Arc<Mutex<HashMap<Target, Client>>>,
    /// One assume-role provider per role: the SDK's identity cache keeps one session per provider
    /// and refreshes it before it expires, whichever region's client asks.
    roles: Arc<Mutex<HashMap<crate::accounts::RoleTarget, SharedCredentialsProvider>>>,
    limiters: RateLimiters,
    metrics: Metrics,
}

/// A Rekognition client and the words that name where its credentials come from.
#[derive(Clone)]
struct Client {
    rekognition: aws_sdk_rekognition::Client,
    credentials_source: String,
}

/// The session name the operator's assumed-role sessions carry (CloudTrail shows it).
const SESSION_NAME: &str = "rekognition-operator";

impl SdkCollectionApi {
    pub fn new(base: aws_config::SdkConfig, limiters: RateLimiters, metrics: Metrics) -> Self {
        Self {
            default_region: base.region().map(|r| r.to_string()).unwrap_or_default(),
            credentials_source: credentials_source(&base),
            base,
            endpoint_url: None,
            clients: Arc::default(),
            roles: Arc::default(),
            limiters,
            metrics,
        }
    }

    /// Sends Rekognition calls to `url` (a VPC endpoint or the emulator) instead of AWS's own:
    /// for every region when it contains `{region}`, else for the default region only.
    pub fn with_endpoint_url(mut self, url: Option<String>) -> Self {
        self.endpoint_url = url;
        self
    }

    async fn role_credentials(
        &self,
        role: &crate::accounts::RoleTarget,
    ) -> SharedCredentialsProvider {
        if let Some(provider) = lock(&self.roles).get(role) {
            return provider.clone();
        }
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
            .session_name(SESSION_NAME)
            .configure(&self.base);
        if let Some(external_id) = &role.external_id {
            builder = builder.external_id(external_id.clone());
        }
        let provider = SharedCredentialsProvider::new(builder.build().await);
        lock(&self.roles)
            .entry(role.clone())
            .or_insert(provider)
            .clone()
    }

    async fn client(&self, target: &Target) -> Client {
        if let Some(client) = lock(&self.clients).get(target) {
            return client.clone();
        }
        let mut builder = aws_sdk_rekognition::config::Builder::from(&self.base)
            .region(aws_config::Region::new(target.region.clone()));
        // Set whether or not there is an override: the SDK reads AWS_ENDPOINT_URL_REKOGNITION
        // (the variable behind --aws-endpoint-url, which the chart sets) by itself and would send
        // every region to a fixed URL. Without an override, the SDK-wide AWS_ENDPOINT_URL applies.
        builder.set_endpoint_url(
            endpoint_for(
                self.endpoint_url.as_deref(),
                &self.default_region,
                &target.region,
            )
            .or_else(|| self.base.endpoint_url().map(str::to_owned)),
        );
        let credentials_source = match &target.identity {
            Identity::Own => self.credentials_source.clone(),
            Identity::Role(role) => {
                builder = builder.credentials_provider(self.role_credentials(role).await);
                format!(
                    "STS AssumeRole of role {}{}, with the operator's own {}",
                    role.role_arn,
                    if role.external_id.is_some() {
                        " (with its external ID)"
                    } else {
                        ""
                    },
                    self.credentials_source
                )
            }
        };
        let client = Client {
            rekognition: aws_sdk_rekognition::Client::from_conf(builder.build()),
            credentials_source,
        };
        lock(&self.clients)
            .entry(target.clone())
            .or_insert(client)
            .clone()
    }

    fn limiter(&self, target: &Target, operation: &'static str) -> Arc<crate::rate::RateLimiter> {
        self.limiters
            .get(target.identity.account_label(), &target.region, operation)
    }

    /// Waits for the limiter of the account, region and operation, then records the outcome (and
    /// tells the limiter about throttling so it slows down).
    async fn call<T, F>(
        &self,
        target: &Target,
        client: &Client,
        operation: &'static str,
        f: F,
    ) -> Result<T, AwsError>
    where
        F: Future<Output = Result<T, AwsError>>,
    {
        let waited = self.limiter(target, operation).acquire().await;
        self.metrics.observe_limiter_wait(operation, waited);
        self.send(target, client, operation, f).await
    }

    /// Makes the call (its token already taken) and records the outcome.
    async fn send<T, F>(
        &self,
        target: &Target,
        client: &Client,
        operation: &'static str,
        f: F,
    ) -> Result<T, AwsError>
    where
        F: Future<Output = Result<T, AwsError>>,
    {
        let limiter = self.limiter(target, operation);
        let result = f.await.map_err(|mut error| {
            if error.kind == AwsErrorKind::CredentialsUnavailable {
                error.message = format!("{} ({})", error.message, client.credentials_source);
            }
            error
        });
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.kind.as_str(),
        };
        let account = target.identity.account_label();
        self.metrics
            .count_aws_call(account, &target.region, operation, outcome);
        match &result {
            Err(error) if error.kind == AwsErrorKind::Throttled => {
                self.metrics
                    .count_throttle(account, &target.region, operation);
                limiter.on_throttle();
            }
            _ => limiter.on_success(),
        }
        result
    }
}

impl CollectionApi for SdkCollectionApi {
    async fn create(
        &self,
        target: &Target,
        collection_id: &str,
        tags: &Tags,
    ) -> Result<CreateOutcome, AwsError> {
        const OP: &str = "CreateCollection";
        let client = self.client(target).await;
        let request = client
            .rekognition
            .create_collection()
            .collection_id(collection_id)
            .set_tags(Some(tags.clone().into_iter().collect()));
        let result = self
            .call(target, &client, OP, async {
                request.send().await.map_err(|e| AwsError::from_sdk(OP, e))
            })
            .await;
        match result {
            Ok(output) => Ok(CreateOutcome::Created(CreatedCollection {
                arn: canonical_arn(output.collection_arn().unwrap_or_default()),
                face_model_version: output.face_model_version().map(str::to_owned),
            })),
            Err(error) if error.kind == AwsErrorKind::AlreadyExists => {
                Ok(CreateOutcome::AlreadyExists)
            }
            Err(error) => Err(error),
        }
    }

    async fn describe(
        &self,
        target: &Target,
        collection_id: &str,
        priority: Priority,
    ) -> Result<Described, AwsError> {
        const OP: &str = "DescribeCollection";
        let client = self.client(target).await;
        let request = client
            .rekognition
            .describe_collection()
            .collection_id(collection_id);
        let send = async { request.send().await.map_err(|e| AwsError::from_sdk(OP, e)) };
        let result = match priority {
            Priority::Foreground => self.call(target, &client, OP, send).await,
            Priority::Background => {
                let admission = self
                    .limiter(target, OP)
                    .admit_background(std::time::Instant::now());
                match admission {
                    Admission::Go => self.send(target, &client, OP, send).await,
                    Admission::Later(after) => {
                        self.metrics.count_deferred(OP);
                        return Ok(Described::Deferred(after));
                    }
                }
            }
        };
        Ok(match missing_is_none(result)? {
            Some(output) => Described::Exists(CollectionDescription {
                arn: canonical_arn(output.collection_arn().unwrap_or_default()),
                face_model_version: output.face_model_version().map(str::to_owned),
                face_count: output.face_count(),
                user_count: output.user_count(),
                created_at: output
                    .creation_timestamp()
                    .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
            }),
            None => Described::Missing,
        })
    }

    async fn delete(&self, target: &Target, collection_id: &str) -> Result<bool, AwsError> {
        const OP: &str = "DeleteCollection";
        let client = self.client(target).await;
        let request = client
            .rekognition
            .delete_collection()
            .collection_id(collection_id);
        let result = self
            .call(target, &client, OP, async {
                request.send().await.map_err(|e| AwsError::from_sdk(OP, e))
            })
            .await;
        Ok(missing_is_none(result)?.is_some())
    }

    async fn list_tags(&self, target: &Target, arn: &str) -> Result<Option<Tags>, AwsError> {
        const OP: &str = "ListTagsForResource";
        let client = self.client(target).await;
        let request = client
            .rekognition
            .list_tags_for_resource()
            .resource_arn(arn);
        let result = self
            .call(target, &client, OP, async {
                request.send().await.map_err(|e| AwsError::from_sdk(OP, e))
            })
            .await;
        Ok(missing_is_none(result)?.map(|output| {
            output
                .tags()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect()
        }))
    }

    async fn tag(&self, target: &Target, arn: &str, tags: &Tags) -> Result<(), AwsError> {
        const OP: &str = "TagResource";
        let client = self.client(target).await;
        let request = client
            .rekognition
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.clone().into_iter().collect()));
        self.call(target, &client, OP, async {
            request.send().await.map_err(|e| AwsError::from_sdk(OP, e))
        })
        .await
        .map(|_| ())
    }

    async fn untag(&self, target: &Target, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        const OP: &str = "UntagResource";
        let client = self.client(target).await;
        let request = client
            .rekognition
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()));
        self.call(target, &client, OP, async {
            request.send().await.map_err(|e| AwsError::from_sdk(OP, e))
        })
        .await
        .map(|_| ())
    }

    async fn list_collections(&self, target: &Target) -> Result<Vec<String>, AwsError> {
        const OP: &str = "ListCollections";
        let client = self.client(target).await;
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = client
                .rekognition
                .list_collections()
                .max_results(1000)
                .set_next_token(token.take());
            let page = self
                .call(target, &client, OP, async {
                    request.send().await.map_err(|e| AwsError::from_sdk(OP, e))
                })
                .await?;
            ids.extend(page.collection_ids().iter().cloned());
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(ids),
            }
        }
    }
}

/// Builds the base AWS configuration from the standard chain (environment, profile, IRSA web
/// identity, EKS Pod Identity, instance metadata), with the operator's retry and timeout policy.
///
/// The SDK makes exactly one attempt per call: the reconciler's per-object backoff is the one
/// retry layer, so every attempt passes the rate limiter, is counted, and no two layers wait on
/// the same failure.
pub async fn load_sdk_config(
    region: Option<String>,
    attempt_timeout: Duration,
) -> aws_config::SdkConfig {
    let mut loader = sdk_config_loader(attempt_timeout);
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
}

/// The standard credential and region chain with the operator's retry and timeout policy.
pub fn sdk_config_loader(attempt_timeout: Duration) -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(attempt_timeout)
                .operation_timeout(attempt_timeout)
                .build(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_sdk_errors_map_through_their_code() {
        use aws_sdk_rekognition::operation::create_collection::CreateCollectionError;
        use aws_sdk_rekognition::types::error::{
            ResourceAlreadyExistsException, ThrottlingException,
        };
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;

        let response = |status: u16| {
            HttpResponse::new(
                StatusCode::try_from(status).expect("status"),
                SdkBody::empty(),
            )
        };
        let throttled = CreateCollectionError::ThrottlingException(
            ThrottlingException::builder()
                .message("slow down")
                .meta(
                    ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("slow down")
                        .build(),
                )
                .build(),
        );
        let error = AwsError::from_sdk(
            "CreateCollection",
            SdkError::service_error(throttled, response(500)),
        );
        assert_eq!(error.kind, AwsErrorKind::Throttled);
        assert_eq!(error.message, "slow down");

        let exists = CreateCollectionError::ResourceAlreadyExistsException(
            ResourceAlreadyExistsException::builder()
                .meta(
                    ErrorMetadata::builder()
                        .code("ResourceAlreadyExistsException")
                        .build(),
                )
                .build(),
        );
        let error = AwsError::from_sdk(
            "CreateCollection",
            SdkError::service_error(exists, response(400)),
        );
        assert_eq!(error.kind, AwsErrorKind::AlreadyExists);
    }

    #[test]
    fn timeouts_and_connection_failures_are_transient() {
        use aws_sdk_rekognition::operation::describe_collection::DescribeCollectionError;
        let timeout: SdkError<DescribeCollectionError, HttpResponse> =
            SdkError::timeout_error("attempt timed out");
        assert_eq!(
            AwsError::from_sdk("DescribeCollection", timeout).kind,
            AwsErrorKind::Unavailable
        );
    }

    #[test]
    fn a_fixed_endpoint_serves_the_default_region_only_and_a_template_every_region() {
        let fixed = Some("https://vpce-1.rekognition.us-east-1.vpce.amazonaws.com");
        assert_eq!(
            endpoint_for(fixed, "us-east-1", "us-east-1").as_deref(),
            fixed
        );
        assert_eq!(endpoint_for(fixed, "us-east-1", "eu-west-1"), None);
        let template = Some("https://rekognition.{region}.example.internal");
        assert_eq!(
            endpoint_for(template, "us-east-1", "eu-west-1").as_deref(),
            Some("https://rekognition.eu-west-1.example.internal")
        );
        assert_eq!(endpoint_for(None, "us-east-1", "us-east-1"), None);
    }

    #[test]
    fn canonical_arn_adds_the_missing_prefix_only() {
        assert_eq!(
            canonical_arn("aws:rekognition:us-west-2:123456789012:collection/myphotos"),
            "arn:aws:rekognition:us-west-2:123456789012:collection/myphotos"
        );
        assert_eq!(
            canonical_arn("arn:aws:rekognition:us-west-2:123456789012:collection/myphotos"),
            "arn:aws:rekognition:us-west-2:123456789012:collection/myphotos"
        );
        assert_eq!(
            canonical_arn("aws-cn:rekognition:cn-north-1:123456789012:collection/x"),
            "arn:aws-cn:rekognition:cn-north-1:123456789012:collection/x"
        );
    }
}
