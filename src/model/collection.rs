//! What Rekognition tells about a collection, and where a call about it goes: plain data below
//! both the pure core ([`crate::core::plan`], [`crate::core::status`]) and the AWS adapter ([`crate::adapters::aws`]),
//! so neither imports the other for it.

use chrono::{DateTime, Utc};

use crate::model::identity::Identity;

/// What a successful CreateCollection tells.
#[derive(Clone, Debug, PartialEq)]
pub struct CreatedCollection {
    /// Canonical (`arn:`-prefixed) ARN.
    pub arn: String,
    pub face_model_version: Option<String>,
}

/// What DescribeCollection tells.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectionDescription {
    /// Canonical (`arn:`-prefixed) ARN.
    pub arn: String,
    pub face_model_version: Option<String>,
    pub face_count: Option<i64>,
    pub user_count: Option<i64>,
    pub created_at: Option<DateTime<Utc>>,
}

/// Where a call goes: the account (through whose identity) and the region.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub identity: Identity,
    pub region: String,
}
