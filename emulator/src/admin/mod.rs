//! The admin HTTP API: an unsigned JSON endpoint on its own listener for tests and developers.
//! This module holds what the API exchanges (model types only) and [`AdminClient`], a typed
//! client for it; the routes themselves are in `handlers::admin`.
//!
//! Per-account routes (counters, calls, quotas, collections) take `?accountId=`; without it
//! they concern the default account. [`AdminClient::for_account`] scopes a client to one.
//!
//! | route | effect |
//! |---|---|
//! | `GET /admin/healthz` | `ok` once serving |
//! | `GET /admin/counters` | calls per operation and outcome ([`Counters`]), STS actions included |
//! | `GET /admin/counters/lost-responses` | calls whose answer was lost, per operation and [`LostResponse`] |
//! | `GET /admin/calls[?collectionId=x]` | the recent call log ([`CallRecord`]s, oldest first) |
//! | `GET /admin/faults` | injected faults ([`FaultsView`]) |
//! | `PUT /admin/faults` | install a [`FaultRule`] (error rate and latency) |
//! | `POST /admin/faults/next` | fail the next N calls ([`NextFailure`]) |
//! | `PUT /admin/faults/lost-responses` | carry calls out, then lose their answers at a rate ([`LostResponseRule`]) |
//! | `POST /admin/faults/lost-responses/next` | carry out the next N calls and lose their answers ([`NextLostResponse`]) |
//! | `DELETE /admin/faults` | remove every fault |
//! | `GET /admin/quotas` | per-operation quotas ([`QuotasView`]) |
//! | `PUT /admin/quotas` | change quotas ([`QuotaUpdate`]) |
//! | `GET /admin/collections` | every collection ([`CollectionView`]) |
//! | `POST /admin/reset` | every account: delete collections; clear counters, call log and faults; refill quotas |
//! | `GET` / `PUT /admin/accounts` | list ([`AccountView`]) / create an account or replace its keys ([`AccountConfig`]) |
//! | `GET` / `PUT` / `DELETE /admin/roles[?arn=]` | list ([`RoleView`]) / create or replace a role with its trust rules ([`RoleConfig`]) / delete |
//! | `GET` / `PUT /admin/oidc-providers` | list ([`OidcProviderView`]) / register an issuer and its JWKS ([`OidcProviderConfig`]) |
//! | `PUT /admin/pod-identity-associations` | an EKS Pod Identity association ([`PodIdentityAssociationConfig`]): the role pods of a ServiceAccount get from `GET /v1/credentials` on the AWS endpoint |
//! | `GET /admin/sessions` | STS sessions not yet dropped ([`SessionView`]) |
//! | `POST /admin/sessions/expire` | end a session now ([`ExpireSession`]) |
//!
//! Bad input is answered `400`, an unknown account, role or session `404`, both with
//! `{"error": "..."}`.

mod client;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::config::{
    AccessKeyConfig, AccountConfig, IamConfig, OidcProviderConfig, PodIdentityAssociationConfig,
    RoleConfig, TrustRule,
};
pub use crate::faults::{
    DEFAULT_HOLD_MS, FaultRule, FaultsView, LostResponse, LostResponseRule, NextFailure,
    NextLostResponse,
};
pub use crate::iam::{AccountView, OidcProviderView, RoleView, SessionView};
pub use crate::ledger::{CallRecord, Counters};
pub use crate::quota::{QuotaSetting, QuotaUpdate, QuotasView};
pub use client::AdminClient;

/// One collection as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionView {
    pub collection_id: String,
    /// Canonical ARN, with the `arn:` prefix.
    pub collection_arn: String,
    pub tags: BTreeMap<String, String>,
    pub face_count: u64,
    pub user_count: u64,
    pub face_model_version: String,
    pub created_at: DateTime<Utc>,
}

/// Body of `POST /admin/sessions/expire`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpireSession {
    pub access_key_id: String,
}
