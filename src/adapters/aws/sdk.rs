//! The SDK adapter, [`SdkCollectionApi`]: its clients, and the one way each of its calls is
//! made (a limiter token, the SDK error mapped, the outcome counted).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_rekognition::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::DateTime;

use super::config::{credentials_source, endpoint_for};
use super::sdk_error::missing_is_none;
use super::{CallCounter, CollectionApi, CreateOutcome, Described, Target};
use crate::adapters::rate::{Admission, RateLimiters};
use crate::core::schedule::Priority;
use crate::model::aws_error::{AwsError, AwsErrorKind};
use crate::model::collection::{CollectionDescription, CreatedCollection};
use crate::model::identity::Identity;
use crate::model::tags::Tags;
use crate::sync::lock;

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
    roles: Arc<Mutex<HashMap<crate::model::identity::RoleTarget, SharedCredentialsProvider>>>,
    limiters: RateLimiters,
    metrics: Arc<dyn CallCounter>,
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
    pub fn new(
        base: aws_config::SdkConfig,
        limiters: RateLimiters,
        metrics: Arc<dyn CallCounter>,
    ) -> Self {
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
        role: &crate::model::identity::RoleTarget,
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

    fn limiter(
        &self,
        target: &Target,
        operation: &'static str,
    ) -> Arc<crate::adapters::rate::RateLimiter> {
        self.limiters
            .get(target.identity.account_label(), &target.region, operation)
    }

    /// One foreground call: the target's client, the request `build` makes on it, sent through
    /// [`Self::call`], so each operation states only its request and how it reads the answer.
    async fn rekognition<T, E, R>(
        &self,
        target: &Target,
        operation: &'static str,
        build: impl FnOnce(&aws_sdk_rekognition::Client) -> R,
    ) -> Result<T, AwsError>
    where
        R: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let client = self.client(target).await;
        let request = build(&client.rekognition);
        self.call(target, &client, operation, request).await
    }

    /// Waits for the limiter of the account, region and operation, then records the outcome (and
    /// tells the limiter about throttling so it slows down).
    async fn call<T, E, R>(
        &self,
        target: &Target,
        client: &Client,
        operation: &'static str,
        request: R,
    ) -> Result<T, AwsError>
    where
        R: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let tenant = crate::adapters::rate::current_tenant();
        let waited = self
            .limiter(target, operation)
            .acquire_for(tenant.as_ref())
            .await;
        self.metrics.observe_limiter_wait(operation, waited);
        self.send(target, client, operation, request).await
    }

    /// Makes the call (its token already taken), maps an SDK failure and records the outcome.
    async fn send<T, E, R>(
        &self,
        target: &Target,
        client: &Client,
        operation: &'static str,
        request: R,
    ) -> Result<T, AwsError>
    where
        R: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let limiter = self.limiter(target, operation);
        let result = request.await.map_err(|error| {
            let mut error = AwsError::from_sdk(operation, error);
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
        let result = self
            .rekognition(target, OP, |c| {
                c.create_collection()
                    .collection_id(collection_id)
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .send()
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
            .collection_id(collection_id)
            .send();
        let result = match priority {
            Priority::Foreground => self.call(target, &client, OP, request).await,
            Priority::Background => {
                let admission = self
                    .limiter(target, OP)
                    .admit_background(std::time::Instant::now());
                match admission {
                    Admission::Go => self.send(target, &client, OP, request).await,
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
        let result = self
            .rekognition(target, OP, |c| {
                c.delete_collection().collection_id(collection_id).send()
            })
            .await;
        Ok(missing_is_none(result)?.is_some())
    }

    async fn list_tags(&self, target: &Target, arn: &str) -> Result<Option<Tags>, AwsError> {
        const OP: &str = "ListTagsForResource";
        let result = self
            .rekognition(target, OP, |c| {
                c.list_tags_for_resource().resource_arn(arn).send()
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
        self.rekognition(target, OP, |c| {
            c.tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags.clone().into_iter().collect()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn untag(&self, target: &Target, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        const OP: &str = "UntagResource";
        self.rekognition(target, OP, |c| {
            c.untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(keys.to_vec()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn list_collections(&self, target: &Target) -> Result<Vec<String>, AwsError> {
        const OP: &str = "ListCollections";
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .rekognition(target, OP, |c| {
                    c.list_collections()
                        .max_results(1000)
                        .set_next_token(token.take())
                        .send()
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

/// Puts `arn:` in front of an ARN that lacks it: CreateCollection answers
/// `aws:rekognition:<region>:<account>:collection/<id>`, DescribeCollection the full form.
pub fn canonical_arn(arn: &str) -> String {
    if arn.starts_with("arn:") {
        arn.to_owned()
    } else {
        format!("arn:{arn}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
