//! A typed async client for the admin endpoint.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    AccountConfig, AccountView, CallRecord, CollectionView, Counters, ExpireSession, FaultRule,
    FaultsView, LostResponseRule, NextFailure, NextLostResponse, OidcProviderConfig,
    OidcProviderView, PodIdentityAssociationConfig, QuotaUpdate, QuotasView, RoleConfig, RoleView,
    SessionView,
};
use crate::error::Error;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Talks to an emulator's admin endpoint, e.g. `AdminClient::new(emulator.admin_url())`.
/// Per-account calls (counters, calls, quotas, collections) concern the default account in the
/// default region, or the ones chosen with [`AdminClient::for_account`] and
/// [`AdminClient::for_region`].
#[derive(Debug, Clone)]
pub struct AdminClient {
    base_url: String,
    http: reqwest::Client,
    account_id: Option<String>,
    region: Option<String>,
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
            account_id: None,
            region: None,
        })
    }

    /// The same client, with per-account calls about `account_id`.
    pub fn for_account(&self, account_id: impl Into<String>) -> AdminClient {
        AdminClient {
            account_id: Some(account_id.into()),
            ..self.clone()
        }
    }

    /// The account per-account calls concern; `None` for the default account.
    pub fn account_id(&self) -> Option<&str> {
        self.account_id.as_deref()
    }

    /// The same client, with per-account calls about `region` (one the emulator serves).
    pub fn for_region(&self, region: impl Into<String>) -> AdminClient {
        AdminClient {
            region: Some(region.into()),
            ..self.clone()
        }
    }

    /// The region per-account calls concern; `None` for the default region.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
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
        let route = self.scoped("/admin/counters", &[]);
        self.send(Method::GET, &route, None::<&()>).await
    }

    /// Calls that were carried out but whose answer an injected fault lost, per operation and
    /// way of losing it: `{"CreateCollection": {"reset": 1}}`. They are in [`Self::counters`]
    /// under their outcome too.
    pub async fn lost_responses(&self) -> Result<Counters, Error> {
        let route = self.scoped("/admin/counters/lost-responses", &[]);
        self.send(Method::GET, &route, None::<&()>).await
    }

    /// The recent call log, oldest first.
    pub async fn calls(&self) -> Result<Vec<CallRecord>, Error> {
        let route = self.scoped("/admin/calls", &[]);
        self.send(Method::GET, &route, None::<&()>).await
    }

    /// The recent calls about one collection (by `CollectionId` or collection ARN).
    pub async fn calls_for(&self, collection_id: &str) -> Result<Vec<CallRecord>, Error> {
        let route = self.scoped("/admin/calls", &[("collectionId", collection_id)]);
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

    /// Installs (or, with probability 0, removes) a standing lost-response fault: matching calls
    /// are carried out and their answers lost at the rule's rate.
    pub async fn lose_responses(&self, rule: &LostResponseRule) -> Result<FaultsView, Error> {
        self.send(Method::PUT, "/admin/faults/lost-responses", Some(rule))
            .await
    }

    /// Carries out the next `count` matching calls and loses their answers.
    pub async fn lose_next_responses(&self, next: &NextLostResponse) -> Result<FaultsView, Error> {
        self.send(
            Method::POST,
            "/admin/faults/lost-responses/next",
            Some(next),
        )
        .await
    }

    /// Removes every injected fault, lost responses included.
    pub async fn clear_faults(&self) -> Result<(), Error> {
        self.send_unit(Method::DELETE, "/admin/faults", None::<&()>)
            .await
    }

    /// Every operation's quota.
    pub async fn quotas(&self) -> Result<QuotasView, Error> {
        let route = self.scoped("/admin/quotas", &[]);
        self.send(Method::GET, &route, None::<&()>).await
    }

    /// Changes quotas.
    pub async fn set_quota(&self, update: &QuotaUpdate) -> Result<QuotasView, Error> {
        let route = self.scoped("/admin/quotas", &[]);
        self.send(Method::PUT, &route, Some(update)).await
    }

    /// Every collection, in ID order.
    pub async fn collections(&self) -> Result<Vec<CollectionView>, Error> {
        let route = self.scoped("/admin/collections", &[]);
        self.send(Method::GET, &route, None::<&()>).await
    }

    /// Deletes every collection of every account and clears counters, call logs and faults.
    pub async fn reset(&self) -> Result<(), Error> {
        self.send_unit(Method::POST, "/admin/reset", None::<&()>)
            .await
    }

    /// Every account with its keys, roles and OIDC providers.
    pub async fn accounts(&self) -> Result<Vec<AccountView>, Error> {
        self.send(Method::GET, "/admin/accounts", None::<&()>).await
    }

    /// Creates an account, or replaces its static access keys.
    pub async fn put_account(&self, account: &AccountConfig) -> Result<Vec<AccountView>, Error> {
        self.send(Method::PUT, "/admin/accounts", Some(account))
            .await
    }

    /// Every role with its trust rules.
    pub async fn roles(&self) -> Result<Vec<RoleView>, Error> {
        self.send(Method::GET, "/admin/roles", None::<&()>).await
    }

    /// Creates or replaces a role (and its account, if new).
    pub async fn put_role(&self, role: &RoleConfig) -> Result<RoleView, Error> {
        self.send(Method::PUT, "/admin/roles", Some(role)).await
    }

    /// Deletes a role; its sessions last until they expire.
    pub async fn delete_role(&self, arn: &str) -> Result<(), Error> {
        let route = format!("/admin/roles?arn={}", query_escape(arn));
        self.send_unit(Method::DELETE, &route, None::<&()>).await
    }

    /// Every registered OIDC provider.
    pub async fn oidc_providers(&self) -> Result<Vec<OidcProviderView>, Error> {
        self.send(Method::GET, "/admin/oidc-providers", None::<&()>)
            .await
    }

    /// Registers (or replaces) an OIDC provider: issuer, client IDs and JWKS.
    pub async fn put_oidc_provider(
        &self,
        provider: &OidcProviderConfig,
    ) -> Result<OidcProviderView, Error> {
        self.send(Method::PUT, "/admin/oidc-providers", Some(provider))
            .await
    }

    /// Registers (or replaces) an EKS Pod Identity association: the role that pods of a
    /// ServiceAccount get from the agent's endpoint.
    pub async fn put_pod_identity_association(
        &self,
        association: &PodIdentityAssociationConfig,
    ) -> Result<(), Error> {
        self.send_unit(
            Method::PUT,
            "/admin/pod-identity-associations",
            Some(association),
        )
        .await
    }

    /// STS sessions not yet dropped, soonest expiry first.
    pub async fn sessions(&self) -> Result<Vec<SessionView>, Error> {
        self.send(Method::GET, "/admin/sessions", None::<&()>).await
    }

    /// Ends the session of `access_key_id` now: its next call is `ExpiredToken`.
    pub async fn expire_session(&self, access_key_id: &str) -> Result<(), Error> {
        let body = ExpireSession {
            access_key_id: access_key_id.to_owned(),
        };
        self.send_unit(Method::POST, "/admin/sessions/expire", Some(&body))
            .await
    }

    // `route` with the scoped account and region and `params` as its query string.
    fn scoped(&self, route: &str, params: &[(&str, &str)]) -> String {
        let account = self.account_id.as_deref().map(|id| ("accountId", id));
        let region = self.region.as_deref().map(|region| ("region", region));
        let query: Vec<String> = account
            .iter()
            .chain(region.iter())
            .chain(params)
            .map(|(name, value)| format!("{name}={}", query_escape(value)))
            .collect();
        if query.is_empty() {
            route.to_owned()
        } else {
            format!("{route}?{}", query.join("&"))
        }
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
