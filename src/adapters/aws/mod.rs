//! Rekognition behind one small trait, and the AWS SDK adapter that implements it.
//!
//! The adapter is the only place that knows SDK error types: every failure is mapped once, here,
//! into an [`AwsErrorKind`] that the rest of the operator reasons about. `sdk.rs` is the adapter,
//! `sdk_error.rs` maps SDK errors, `config.rs` builds the SDK configuration and picks endpoints.

use std::future::Future;
use std::time::Duration;

use crate::core::schedule::Priority;

mod config;
mod sdk;
mod sdk_error;

pub use crate::model::aws_error::{AwsError, AwsErrorKind};
pub use crate::model::collection::{CollectionDescription, CreatedCollection, Target};
pub use crate::model::tags::Tags;
pub use config::{endpoint_for, load_sdk_config, sdk_config_loader};
pub use sdk::{SdkCollectionApi, canonical_arn};

/// Where the adapter reports what each call cost: the operator's metrics implement it, so the
/// adapter counts calls without knowing the runtime that exports them.
pub trait CallCounter: Send + Sync {
    /// One AWS call in `account` (its ID, or the operator's own identity's label) and `region`,
    /// and how it ended (`ok`, or the error kind).
    fn count_aws_call(
        &self,
        account: &str,
        region: &str,
        operation: &'static str,
        outcome: &'static str,
    );
    /// One call AWS throttled.
    fn count_throttle(&self, account: &str, region: &str, operation: &'static str);
    /// One background call put off for want of a free token.
    fn count_deferred(&self, operation: &'static str);
    /// How long a call waited for its token.
    fn observe_limiter_wait(&self, operation: &'static str, waited: Duration);
}

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
