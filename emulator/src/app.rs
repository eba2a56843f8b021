//! The app: one emulator's state and the request pipelines over it, above the services and
//! below the HTTP handlers.
//!
//! Every request is for one region: the endpoint's, which its path names (`/<region>`, or the
//! default region at `/`), and which its signature must be scoped to, as AWS's regional
//! endpoints require. Rekognition (JSON): SigV4 → operation → the quota of the caller's account
//! in that region → injected faults → decoding → the operation, in the caller's account and the
//! region; an injected lost response is decided here and recorded, and carried out on the wire
//! by the handler. STS (Query): action → SigV4 (unless the action is
//! `AssumeRoleWithWebIdentity`) → the action. Every call, whatever its outcome, is counted in
//! the ledger of the account and region it concerns and written as one `tracing` line.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::admin::CollectionView;
use crate::config::{
    AccountConfig, Config, OidcProviderConfig, PodIdentityAssociationConfig, RoleConfig,
};
use crate::error::Error;
use crate::faults::{
    FaultRule, Faults, FaultsView, Loss, LostResponseRule, NextFailure, NextLostResponse,
};
use crate::iam::{AccountView, Directory, OidcProviderView, Principal, RoleView, SessionView};
use crate::ledger::{CallRecord, Counters, Ledger, OK, UNKNOWN_OPERATION};
use crate::locking::lock;
use crate::model::collection_id_of;
use crate::protocol::query::{Node, QueryError, QueryRequest};
use crate::protocol::{ApiError, AuthFailure, ErrorKind, Operation};
use crate::quota::{QuotaUpdate, Quotas, QuotasView};
use crate::service::{Rekognition, Sts, StsAction};
use crate::sigv4::{SignedRequest, Verifier};
use crate::state::Scope;

const REKOGNITION_SIGNING_NAME: &str = "rekognition";
const STS_SIGNING_NAME: &str = "sts";

/// What the admin API could not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRefusal {
    /// No such account or session.
    NotFound(String),
    /// The request cannot be carried out as asked.
    Invalid(String),
    /// The emulator failed (e.g. the state file could not be written).
    Failed(String),
}

// The quota buckets and the call ledger of one account in one region.
#[derive(Debug)]
struct ScopeState {
    quotas: Quotas,
    ledger: Ledger,
}

/// One emulator's state: IAM, collections, quotas and ledgers per account and region, faults.
#[derive(Debug)]
pub struct App {
    config: Config,
    /// One per served region, by region.
    rekognition_verifiers: BTreeMap<String, Verifier>,
    sts_verifiers: BTreeMap<String, Verifier>,
    directory: Mutex<Directory>,
    rekognition: Rekognition,
    sts: Sts,
    faults: Mutex<Faults>,
    scopes: Mutex<BTreeMap<Scope, ScopeState>>,
}

/// Which account and region an admin request concerns; the default ones where it names none.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdminScope<'a> {
    pub account_id: Option<&'a str>,
    pub region: Option<&'a str>,
}

/// The outcome of one STS call, for the handler to write.
pub type StsResult = Result<(StsAction, Vec<Node>), QueryError>;

/// The outcome of one Rekognition call, for the handler to write: the answer, and whether an
/// injected fault loses it (the call has been carried out and recorded either way).
#[derive(Debug)]
pub struct RekognitionAnswer {
    pub result: Result<Value, ApiError>,
    pub lost: Option<Loss>,
}

impl App {
    pub fn new(config: Config) -> Result<Self, Error> {
        let directory = Directory::from_config(&config).map_err(Error::InvalidConfig)?;
        let verifiers = |name: &str| {
            config
                .regions()
                .map(|region| {
                    let verifier = Verifier::new(region, name, config.max_clock_skew);
                    (region.to_owned(), verifier)
                })
                .collect()
        };
        Ok(App {
            rekognition_verifiers: verifiers(REKOGNITION_SIGNING_NAME),
            sts_verifiers: verifiers(STS_SIGNING_NAME),
            directory: Mutex::new(directory),
            rekognition: Rekognition::new(&config)?,
            sts: Sts::new(config.session_duration_cap),
            faults: Mutex::new(Faults::default()),
            scopes: Mutex::new(BTreeMap::new()),
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The region an endpoint path is for: a served region named by its first segment
    /// (`/eu-west-1`, `/eu-west-1/...`), else the default region (whose endpoint is `/`, and
    /// which answers any other path, as the one-region emulator always did).
    pub fn region_of_path<'a>(&'a self, path: &str) -> &'a str {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        self.config
            .regions()
            .find(|region| *region == first)
            .unwrap_or(&self.config.region)
    }

    /// The Rekognition pipeline for one JSON request to the endpoint of `region` (a served one).
    pub async fn rekognition(
        &self,
        request: &SignedRequest<'_>,
        region: &str,
        target: &str,
        request_id: &str,
    ) -> RekognitionAnswer {
        let started = Instant::now();
        let operation = Operation::from_target(Some(target));
        let input = decode_body(request.body);
        let collection_id = input.as_ref().ok().and_then(collection_id_of);

        let caller = self.authenticate(&self.rekognition_verifiers, region, request);
        let account = caller.as_ref().map_or_else(
            |_| self.config.account_id.clone(),
            |principal| principal.account_id.clone(),
        );
        let scope = Scope::new(account, region);
        let (result, lost) = match caller {
            Ok(_) => self.run_rekognition(&scope, operation.clone(), input).await,
            Err(failure) => (Err(ApiError::from(failure)), None),
        };
        let lost_response = lost.map(Loss::mode);

        let operation = operation.map_or(UNKNOWN_OPERATION, |op| op.name());
        let (outcome, status) = match &result {
            Ok(_) => (OK, 200),
            Err(err) => (err.kind.type_name(), err.kind.status().as_u16()),
        };
        tracing::info!(
            operation,
            outcome,
            status,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            account_id = %scope.account_id,
            region,
            collection_id = collection_id.as_deref().unwrap_or(""),
            target,
            request_id,
            lost_response = lost_response.map_or("", |l| l.name()),
            "aws request"
        );
        self.record(
            &scope,
            CallRecord {
                operation: operation.to_owned(),
                collection_id,
                outcome: outcome.to_owned(),
                at: Utc::now(),
                request_id: request_id.to_owned(),
                lost_response,
            },
        );
        RekognitionAnswer { result, lost }
    }

    async fn run_rekognition(
        &self,
        scope: &Scope,
        operation: Result<Operation, ApiError>,
        input: Result<Value, ApiError>,
    ) -> (Result<Value, ApiError>, Option<Loss>) {
        let op = match operation {
            Ok(op) => op,
            Err(err) => return (Err(err), None),
        };
        if let Err(kind) = self.with_scope(scope, |state| state.quotas.check(op, Instant::now())) {
            return (Err(ApiError::of_kind(kind)), None);
        }
        let decision = lock(&self.faults).decide(op, &mut rand::rng());
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        if let Some(kind) = decision.error {
            let message = format!(
                "{} (injected by rekognition-emulator)",
                kind.default_message()
            );
            return (Err(ApiError::new(kind, message)), None);
        }
        let result = input.and_then(|input| self.rekognition.call(scope, op, input));
        (result, decision.lost)
    }

    /// The STS pipeline for one Query request to the endpoint of `region` (a served one).
    pub fn sts(&self, request: &SignedRequest<'_>, region: &str, request_id: &str) -> StsResult {
        let started = Instant::now();
        let now = Utc::now();
        let mut account = self.config.account_id.clone();
        let parsed = QueryRequest::parse(request.query, request.body);
        let requested = parsed.as_ref().ok().and_then(|q| q.action.clone());
        let result = parsed.and_then(|query| {
            let action = StsAction::of(&query)?;
            let caller = if action.is_signed() {
                let principal = self.authenticate(&self.sts_verifiers, region, request)?;
                account.clone_from(&principal.account_id);
                Some(principal)
            } else {
                // Logged in the account of the role asked for, when it is one of ours.
                let role_account = query
                    .param("RoleArn")
                    .and_then(|arn| arn.split(':').nth(4))
                    .unwrap_or_default();
                if lock(&self.directory).has_account(role_account) {
                    role_account.clone_into(&mut account);
                }
                None
            };
            let mut directory = lock(&self.directory);
            let result = self
                .sts
                .call(&mut directory, action, caller.as_ref(), &query, now)?;
            Ok((action, result))
        });

        let operation = requested.unwrap_or_else(|| UNKNOWN_OPERATION.to_owned());
        let (outcome, status) = match &result {
            Ok(_) => (OK, 200),
            Err(err) => (err.kind.code(), err.kind.status().as_u16()),
        };
        tracing::info!(
            operation,
            outcome,
            status,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            account_id = %account,
            region,
            request_id,
            "sts request"
        );
        self.record(
            &Scope::new(account, region),
            CallRecord {
                operation,
                collection_id: None,
                outcome: outcome.to_owned(),
                at: Utc::now(),
                request_id: request_id.to_owned(),
                lost_response: None,
            },
        );
        result
    }

    fn authenticate(
        &self,
        verifiers: &BTreeMap<String, Verifier>,
        region: &str,
        request: &SignedRequest<'_>,
    ) -> Result<Principal, AuthFailure> {
        let now = Utc::now();
        let verifier = verifiers
            .get(region)
            .or_else(|| verifiers.get(&self.config.region))
            .ok_or_else(|| {
                AuthFailure::of_kind(crate::protocol::AuthErrorKind::UnrecognizedClient)
            })?;
        let token = session_token(request.headers);
        let directory = lock(&self.directory);
        let mut principal = None;
        verifier.verify(request, now, |auth| {
            let (secret, who) = directory.authenticate(auth, token, now)?;
            principal = Some(who);
            Ok(secret)
        })?;
        principal
            .ok_or_else(|| AuthFailure::of_kind(crate::protocol::AuthErrorKind::UnrecognizedClient))
    }

    fn with_scope<R>(&self, scope: &Scope, f: impl FnOnce(&mut ScopeState) -> R) -> R {
        let mut scopes = lock(&self.scopes);
        let state = scopes.entry(scope.clone()).or_insert_with(|| ScopeState {
            quotas: Quotas::new(&self.config.quota, Instant::now()),
            ledger: Ledger::new(self.config.call_log_capacity),
        });
        f(state)
    }

    fn record(&self, scope: &Scope, call: CallRecord) {
        self.with_scope(scope, |state| state.ledger.record(call));
    }

    /// The account and region an admin request names, the default ones where it names none.
    fn admin_scope(&self, scope: AdminScope<'_>) -> Result<Scope, AdminRefusal> {
        let account = scope.account_id.unwrap_or(&self.config.account_id);
        if !lock(&self.directory).has_account(account) {
            return Err(AdminRefusal::NotFound(format!("no account {account}")));
        }
        let region = scope.region.unwrap_or(&self.config.region);
        if !self.config.serves(region) {
            return Err(AdminRefusal::NotFound(format!(
                "no region {region}; served: {}",
                self.config.regions().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(Scope::new(account, region))
    }

    pub fn counters(&self, scope: AdminScope<'_>) -> Result<Counters, AdminRefusal> {
        let scope = self.admin_scope(scope)?;
        Ok(self.with_scope(&scope, |state| state.ledger.counters()))
    }

    /// Calls whose answer an injected fault lost, per operation and way of losing it.
    pub fn lost_responses(&self, scope: AdminScope<'_>) -> Result<Counters, AdminRefusal> {
        let scope = self.admin_scope(scope)?;
        Ok(self.with_scope(&scope, |state| state.ledger.lost_responses()))
    }

    pub fn calls(
        &self,
        scope: AdminScope<'_>,
        collection_id: Option<&str>,
    ) -> Result<Vec<CallRecord>, AdminRefusal> {
        let scope = self.admin_scope(scope)?;
        Ok(self.with_scope(&scope, |state| state.ledger.calls(collection_id)))
    }

    pub fn quotas(&self, scope: AdminScope<'_>) -> Result<QuotasView, AdminRefusal> {
        let scope = self.admin_scope(scope)?;
        Ok(self.with_scope(&scope, |state| state.quotas.view()))
    }

    pub fn update_quotas(
        &self,
        scope: AdminScope<'_>,
        update: &QuotaUpdate,
    ) -> Result<QuotasView, AdminRefusal> {
        let scope = self.admin_scope(scope)?;
        self.with_scope(&scope, |state| {
            state
                .quotas
                .update(update, Instant::now())
                .map_err(AdminRefusal::Invalid)?;
            Ok(state.quotas.view())
        })
    }

    pub fn collections(&self, scope: AdminScope<'_>) -> Result<Vec<CollectionView>, AdminRefusal> {
        let scope = self.admin_scope(scope)?;
        Ok(self
            .rekognition
            .collections(&scope)
            .into_iter()
            .map(|c| CollectionView {
                collection_arn: self.rekognition.arn(&scope, &c.collection_id).to_arn(),
                collection_id: c.collection_id,
                tags: c.tags,
                face_count: c.face_count,
                user_count: c.user_count,
                face_model_version: c.face_model_version,
                created_at: c.created_at,
            })
            .collect())
    }

    pub fn faults(&self) -> FaultsView {
        lock(&self.faults).view()
    }

    pub fn set_fault(&self, rule: FaultRule) -> Result<FaultsView, AdminRefusal> {
        let mut faults = lock(&self.faults);
        faults.set_rule(rule).map_err(AdminRefusal::Invalid)?;
        Ok(faults.view())
    }

    pub fn fail_next(&self, next: NextFailure) -> FaultsView {
        let mut faults = lock(&self.faults);
        faults.push_next(next);
        faults.view()
    }

    pub fn set_lost_response(&self, rule: LostResponseRule) -> Result<FaultsView, AdminRefusal> {
        let mut faults = lock(&self.faults);
        faults
            .set_lost_response(rule)
            .map_err(AdminRefusal::Invalid)?;
        Ok(faults.view())
    }

    pub fn lose_next(&self, next: NextLostResponse) -> FaultsView {
        let mut faults = lock(&self.faults);
        faults.push_next_lost(next);
        faults.view()
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Deletes every collection of every account in every region; clears counters, call logs
    /// and faults; refills quotas. Accounts, roles, OIDC providers and sessions stay.
    pub fn reset(&self) -> Result<(), AdminRefusal> {
        self.rekognition
            .reset()
            .map_err(|err| AdminRefusal::Failed(err.to_string()))?;
        for state in lock(&self.scopes).values_mut() {
            state.ledger.clear();
            state.quotas.refill(Instant::now());
        }
        lock(&self.faults).clear();
        tracing::info!(account_id = %self.config.account_id, "emulator reset");
        Ok(())
    }

    pub fn accounts(&self) -> Vec<AccountView> {
        lock(&self.directory).accounts()
    }

    pub fn put_account(&self, account: &AccountConfig) -> Result<Vec<AccountView>, AdminRefusal> {
        let mut directory = lock(&self.directory);
        directory
            .put_account(account)
            .map_err(AdminRefusal::Invalid)?;
        Ok(directory.accounts())
    }

    pub fn roles(&self) -> Vec<RoleView> {
        lock(&self.directory).roles()
    }

    pub fn put_role(&self, role: &RoleConfig) -> Result<RoleView, AdminRefusal> {
        lock(&self.directory)
            .put_role(role)
            .map_err(AdminRefusal::Invalid)
    }

    pub fn delete_role(&self, arn: &str) -> Result<(), AdminRefusal> {
        if lock(&self.directory).delete_role(arn) {
            Ok(())
        } else {
            Err(AdminRefusal::NotFound(format!("no role {arn}")))
        }
    }

    pub fn oidc_providers(&self) -> Vec<OidcProviderView> {
        lock(&self.directory).oidc_providers()
    }

    pub fn put_oidc_provider(
        &self,
        provider: &OidcProviderConfig,
    ) -> Result<OidcProviderView, AdminRefusal> {
        lock(&self.directory)
            .put_oidc_provider(provider)
            .map_err(AdminRefusal::Invalid)
    }

    pub fn put_pod_identity_association(
        &self,
        association: &PodIdentityAssociationConfig,
    ) -> Result<(), AdminRefusal> {
        lock(&self.directory)
            .put_pod_identity_association(association)
            .map_err(AdminRefusal::Invalid)
    }

    /// The EKS Pod Identity agent's credential endpoint (`GET /v1/credentials`), as the agent
    /// answers a pod: the `Authorization` header carries the pod's projected ServiceAccount token
    /// (audience `pods.eks.amazonaws.com`); the answer is the associated role's session, as EKS
    /// Auth's AssumeRoleForPodIdentity gives it to the agent, in the agent's JSON shape. Logged
    /// as `AssumeRoleForPodIdentity` in the role's account. Refusals are 400 (no token) or 403.
    pub fn pod_identity_credentials(
        &self,
        authorization: Option<&str>,
        request_id: &str,
    ) -> Result<Value, (u16, String)> {
        let now = Utc::now();
        let mut account = self.config.account_id.clone();
        let result = match authorization.filter(|token| !token.is_empty()) {
            None => Err((400, "Service account token cannot be empty".to_owned())),
            Some(token) => {
                let mut directory = lock(&self.directory);
                match directory.pod_identity_role(token, now) {
                    Err(rejection) => Err((403, format!("Invalid token: {rejection:?}"))),
                    Ok(role) => {
                        account = role.arn.split(':').nth(4).unwrap_or_default().to_owned();
                        // EKS Auth hands out six-hour sessions.
                        let duration = self.sts.capped(std::time::Duration::from_secs(6 * 3600));
                        let (_, credentials) =
                            directory.issue_session(&role, "eks-pod-identity", duration, now);
                        Ok(serde_json::json!({
                            "AccessKeyId": credentials.access_key_id,
                            "SecretAccessKey": credentials.secret_access_key,
                            "Token": credentials.session_token,
                            "AccountId": account,
                            "Expiration": credentials
                                .expires_at
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        }))
                    }
                }
            }
        };
        let outcome = match &result {
            Ok(_) => OK.to_owned(),
            Err((status, _)) => format!("HTTP {status}"),
        };
        tracing::info!(operation = "AssumeRoleForPodIdentity", outcome, account_id = %account, request_id, "pod identity request");
        let region = self.config.region.clone();
        self.record(
            &Scope::new(account, &region),
            CallRecord {
                operation: "AssumeRoleForPodIdentity".to_owned(),
                collection_id: None,
                outcome,
                at: now,
                request_id: request_id.to_owned(),
                lost_response: None,
            },
        );
        result
    }

    pub fn sessions(&self) -> Vec<SessionView> {
        lock(&self.directory).sessions()
    }

    pub fn expire_session(
        &self,
        access_key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AdminRefusal> {
        if lock(&self.directory).expire_session(access_key_id, now) {
            Ok(())
        } else {
            Err(AdminRefusal::NotFound(format!(
                "no session with access key {access_key_id}"
            )))
        }
    }
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
}

/// The request body as a JSON object; an empty body is an empty input.
pub fn decode_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(ApiError::new(
            ErrorKind::Serialization,
            "Start of structure or map found where not expected.",
        )),
        Err(err) => Err(ApiError::new(ErrorKind::Serialization, err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_is_an_empty_input() {
        assert_eq!(decode_body(b""), Ok(serde_json::json!({})));
        assert_eq!(decode_body(b" \n"), Ok(serde_json::json!({})));
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_a_serialization_error() {
        for body in [&b"{not json"[..], b"[1,2]", b"\"text\""] {
            assert_eq!(
                decode_body(body).unwrap_err().kind,
                ErrorKind::Serialization
            );
        }
    }

    #[test]
    fn admin_requests_for_an_unknown_account_are_refused() {
        let app = App::new(Config::default()).unwrap();
        assert!(app.counters(AdminScope::default()).is_ok());
        let unknown = AdminScope {
            account_id: Some("999999999999"),
            region: None,
        };
        assert!(matches!(
            app.counters(unknown),
            Err(AdminRefusal::NotFound(_))
        ));
    }

    #[test]
    fn admin_requests_for_a_region_not_served_are_refused() {
        let app = App::new(Config {
            extra_regions: vec!["eu-west-1".to_owned()],
            ..Config::default()
        })
        .unwrap();
        let region = |region| AdminScope {
            account_id: None,
            region: Some(region),
        };
        assert!(app.counters(region("eu-west-1")).is_ok());
        assert!(matches!(
            app.counters(region("ap-south-1")),
            Err(AdminRefusal::NotFound(_))
        ));
    }

    #[test]
    fn the_path_names_the_endpoints_region() {
        let app = App::new(Config {
            extra_regions: vec!["eu-west-1".to_owned()],
            ..Config::default()
        })
        .unwrap();
        assert_eq!(app.region_of_path("/"), "us-east-1");
        assert_eq!(app.region_of_path(""), "us-east-1");
        assert_eq!(app.region_of_path("/eu-west-1"), "eu-west-1");
        assert_eq!(app.region_of_path("/eu-west-1/"), "eu-west-1");
        // A region not served is answered by the default region's endpoint, whose signature
        // check then refuses a request signed for the other region.
        assert_eq!(app.region_of_path("/ap-south-1"), "us-east-1");
        assert_eq!(app.region_of_path("/eu-west-10"), "us-east-1");
    }
}
