//! The admin HTTP API: an unsigned JSON endpoint on its own listener for tests and developers,
//! and [`AdminClient`], a typed client for it.
//!
//! | route | effect |
//! |---|---|
//! | `GET /admin/healthz` | `ok` once serving |
//! | `GET /admin/counters` | calls per operation and outcome ([`Counters`]) |
//! | `GET /admin/calls[?collectionId=x]` | the recent call log ([`CallRecord`]s, oldest first) |
//! | `GET /admin/faults` | injected faults ([`FaultsView`]) |
//! | `PUT /admin/faults` | install a [`FaultRule`] (error rate and latency) |
//! | `POST /admin/faults/next` | fail the next N calls ([`NextFailure`]) |
//! | `DELETE /admin/faults` | remove every fault |
//! | `GET /admin/quotas` | per-operation quotas ([`QuotasView`]) |
//! | `PUT /admin/quotas` | change quotas ([`QuotaUpdate`]) |
//! | `GET /admin/collections` | every collection ([`CollectionView`]) |
//! | `POST /admin/reset` | delete collections; clear counters, call log and faults; refill quotas |
//!
//! Bad input is answered `400` with `{"error": "..."}`.

mod client;
pub(crate) mod routes;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::faults::{FaultRule, FaultsView, NextFailure};
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
