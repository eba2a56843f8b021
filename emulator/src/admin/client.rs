//! A typed async client for the admin endpoint.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    CallRecord, CollectionView, Counters, FaultRule, FaultsView, NextFailure, QuotaUpdate,
    QuotasView,
};
use crate::error::Error;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Talks to an emulator's admin endpoint, e.g. `AdminClient::new(emulator.admin_url())`.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base_url: String,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client for the admin endpoint at `base_url` (`http://host:port`).
    pub fn new(base_url: impl Into<String>) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            // The admin endpoint is local; a proxy from the environment must not intercept it.
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| Error::AdminRequest {
                route: "(client setup)".to_owned(),
                source,
            })?;
        Ok(AdminClient {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            http,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Succeeds once the admin endpoint answers.
    pub async fn health(&self) -> Result<(), Error> {
        self.send_unit(Method::GET, "/admin/healthz", None::<&()>)
            .await
    }

    /// Calls per operation and outcome since start or the last reset.
    pub async fn counters(&self) -> Result<Counters, Error> {
        self.send(Method::GET, "/admin/counters", None::<&()>).await
    }

    /// The recent call log, oldest first.
    pub async fn calls(&self) -> Result<Vec<CallRecord>, Error> {
        self.send(Method::GET, "/admin/calls", None::<&()>).await
    }

    /// The recent calls about one collection (by `CollectionId` or collection ARN).
    pub async fn calls_for(&self, collection_id: &str) -> Result<Vec<CallRecord>, Error> {
        let route = format!("/admin/calls?collectionId={}", query_escape(collection_id));
        self.send(Method::GET, &route, None::<&()>).await
    }

    /// The faults currently injected.
    pub async fn faults(&self) -> Result<FaultsView, Error> {
        self.send(Method::GET, "/admin/faults", None::<&()>).await
    }

    /// Installs (or, with probability 0 and no latency, removes) a standing fault.
    pub async fn set_fault(&self, rule: &FaultRule) -> Result<FaultsView, Error> {
        self.send(Method::PUT, "/admin/faults", Some(rule)).await
    }

    /// Fails the next `count` matching calls.
    pub async fn fail_next(&self, next: &NextFailure) -> Result<FaultsView, Error> {
        self.send(Method::POST, "/admin/faults/next", Some(next))
            .await
    }

    /// Removes every injected fault.
    pub async fn clear_faults(&self) -> Result<(), Error> {
        self.send_unit(Method::DELETE, "/admin/faults", None::<&()>)
            .await
    }

    /// Every operation's quota.
    pub async fn quotas(&self) -> Result<QuotasView, Error> {
        self.send(Method::GET, "/admin/quotas", None::<&()>).await
    }

    /// Changes quotas.
    pub async fn set_quota(&self, update: &QuotaUpdate) -> Result<QuotasView, Error> {
        self.send(Method::PUT, "/admin/quotas", Some(update)).await
    }

    /// Every collection, in ID order.
    pub async fn collections(&self) -> Result<Vec<CollectionView>, Error> {
        self.send(Method::GET, "/admin/collections", None::<&()>)
            .await
    }

    /// Deletes every collection and clears counters, call log and faults.
    pub async fn reset(&self) -> Result<(), Error> {
        self.send_unit(Method::POST, "/admin/reset", None::<&()>)
            .await
    }

    fn request(
        &self,
        method: Method,
        route: &str,
        body: Option<&impl Serialize>,
    ) -> RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{route}", self.base_url));
        match body {
            Some(body) => builder.json(body),
            None => builder,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        route: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, Error> {
        let response = self.checked(method, route, body).await?;
        response.json().await.map_err(|source| Error::AdminRequest {
            route: route.to_owned(),
            source,
        })
    }

    async fn send_unit(
        &self,
        method: Method,
        route: &str,
        body: Option<&impl Serialize>,
    ) -> Result<(), Error> {
        self.checked(method, route, body).await.map(drop)
    }

    async fn checked(
        &self,
        method: Method,
        route: &str,
        body: Option<&impl Serialize>,
    ) -> Result<reqwest::Response, Error> {
        let request_error = |source| Error::AdminRequest {
            route: route.to_owned(),
            source,
        };
        let response = self
            .request(method, route, body)
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(Error::AdminStatus {
            route: route.to_owned(),
            status: status.as_u16(),
            body,
        })
    }
}

fn query_escape(value: &str) -> String {
    crate::sigv4::uri_encode(value.as_bytes(), true)
}
