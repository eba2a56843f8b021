//! STS on the emulator's endpoint, through the real AWS SDK's STS client: `GetCallerIdentity`,
//! `AssumeRole` and `AssumeRoleWithWebIdentity`, the refusals STS gives, and session
//! credentials then used with Rekognition in the assumed account.

mod support;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_sts::types::Credentials as StsCredentials;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rekognition_emulator::admin::AdminClient;
use rekognition_emulator::{
    AccessKeyConfig, AccountConfig, Config, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCOUNT_ID,
    DEFAULT_SECRET_ACCESS_KEY, OidcProviderConfig, QuotaConfig, RoleConfig, TrustRule,
};
use serde_json::json;
use support::{TestBed, client_with, code, start_with, status};

const TEAM_ACCOUNT: &str = "210987654321";
const TEAM_ROLE: &str = "arn:aws:iam::210987654321:role/team-a";
const IRSA_ROLE: &str = "arn:aws:iam::210987654321:role/irsa";
const EXTERNAL_ID: &str = "team-a-external";
const OPERATOR_USER: &str = "arn:aws:iam::123456789012:user/emulator";
const ISSUER: &str = "https://oidc.testbed.example";
const SERVICE_ACCOUNT: &str = "system:serviceaccount:team-a:app";
const OUTSIDER_KEY: &str = "AKIAOUTSIDEREXAMPLE1";
const OUTSIDER_SECRET: &str = "outsider-secret";

fn sts_client(bed: &TestBed, credentials: Credentials) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .endpoint_url(bed.emulator.endpoint_url())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

fn default_credentials() -> Credentials {
    Credentials::new(
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_SECRET_ACCESS_KEY,
        None,
        None,
        "tests",
    )
}

fn session_credentials(credentials: &StsCredentials) -> Credentials {
    Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        SystemTime::try_from(*credentials.expiration()).ok(),
        "assumed",
    )
}

/// An ES256 key pair standing in for an OIDC issuer's signing key, and its JWKS.
struct Issuer {
    key: jsonwebtoken::EncodingKey,
    kid: String,
    jwks: serde_json::Value,
}

impl Issuer {
    fn new(kid: &str) -> Issuer {
        let pair = rcgen::KeyPair::generate().expect("key pair");
        let point = pair.public_key_raw();
        let (x, y) = point[1..].split_at(32);
        Issuer {
            key: jsonwebtoken::EncodingKey::from_ec_der(pair.serialized_der()),
            kid: kid.to_owned(),
            jwks: json!({"keys": [{
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
            }]}),
        }
    }

    /// A token as the API server's TokenRequest mints one for a ServiceAccount.
    fn token(&self, sub: &str, aud: &str, expires_in_secs: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "iss": ISSUER, "sub": sub, "aud": [aud],
            "iat": now - 60, "nbf": now - 60, "exp": now + expires_in_secs,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("token")
    }
}

/// The default account (the operator's) plus a team account with a role the operator may
/// assume with an external ID, an IRSA role trusted for one ServiceAccount, and an outsider
/// account whose user is trusted by nobody.
async fn start_two_accounts(issuer: &Issuer) -> TestBed {
    let mut config = Config {
        quota: QuotaConfig::disabled(),
        ..Config::default()
    };
    config.iam.accounts.push(AccountConfig {
        account_id: "333333333333".to_owned(),
        access_keys: vec![AccessKeyConfig {
            access_key_id: OUTSIDER_KEY.to_owned(),
            secret_access_key: OUTSIDER_SECRET.to_owned(),
            user_name: "outsider".to_owned(),
        }],
    });
    config.iam.roles.push(RoleConfig {
        account_id: TEAM_ACCOUNT.to_owned(),
        name: "team-a".to_owned(),
        max_session_duration_seconds: 3600,
        trust: vec![TrustRule::Principal {
            principal: OPERATOR_USER.to_owned(),
            external_id: Some(EXTERNAL_ID.to_owned()),
        }],
    });
    config.iam.roles.push(RoleConfig {
        account_id: TEAM_ACCOUNT.to_owned(),
        name: "irsa".to_owned(),
        max_session_duration_seconds: 3600,
        trust: vec![TrustRule::WebIdentity {
            issuer: ISSUER.to_owned(),
            subject: SERVICE_ACCOUNT.to_owned(),
        }],
    });
    config.iam.oidc_providers.push(OidcProviderConfig {
        account_id: TEAM_ACCOUNT.to_owned(),
        issuer: ISSUER.to_owned(),
        client_ids: vec!["sts.amazonaws.com".to_owned()],
        jwks: issuer.jwks.clone(),
    });
    start_with(config).await
}

async fn assume_team_role(bed: &TestBed) -> StsCredentials {
    sts_client(bed, default_credentials())
        .assume_role()
        .role_arn(TEAM_ROLE)
        .role_session_name("operator")
        .external_id(EXTERNAL_ID)
        .send()
        .await
        .expect("AssumeRole")
        .credentials
        .expect("credentials")
}

#[tokio::test]
async fn get_caller_identity_names_the_user_of_a_static_key() {
    let bed = start_two_accounts(&Issuer::new("k1")).await;
    let identity = sts_client(&bed, default_credentials())
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(identity.account(), Some(DEFAULT_ACCOUNT_ID));
    assert_eq!(identity.arn(), Some(OPERATOR_USER));
    assert!(identity.user_id().unwrap().starts_with("AIDA"));
}

#[tokio::test]
async fn assumed_role_credentials_act_in_the_roles_account() {
    let bed = start_two_accounts(&Issuer::new("k1")).await;
    let assumed = assume_team_role(&bed).await;
    assert!(assumed.access_key_id().starts_with("ASIA"));
    let session = session_credentials(&assumed);

    let identity = sts_client(&bed, session.clone())
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(identity.account(), Some(TEAM_ACCOUNT));
    assert_eq!(
        identity.arn(),
        Some("arn:aws:sts::210987654321:assumed-role/team-a/operator")
    );

    let team = client_with(&bed.emulator.endpoint_url(), "us-east-1", session);
    team.create_collection()
        .collection_id("photos")
        .send()
        .await
        .unwrap();
    let described = team
        .describe_collection()
        .collection_id("photos")
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.collection_arn(),
        Some("arn:aws:rekognition:us-east-1:210987654321:collection/photos")
    );
    let team_admin = bed.admin.for_account(TEAM_ACCOUNT);
    assert_eq!(team_admin.collections().await.unwrap().len(), 1);
    assert!(bed.admin.collections().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_same_collection_id_lives_once_in_each_account() {
    let bed = start_two_accounts(&Issuer::new("k1")).await;
    let team = client_with(
        &bed.emulator.endpoint_url(),
        "us-east-1",
        session_credentials(&assume_team_role(&bed).await),
    );
    for client in [&bed.client, &team] {
        client
            .create_collection()
            .collection_id("myphotos")
            .send()
            .await
            .unwrap();
    }
    bed.client
        .delete_collection()
        .collection_id("myphotos")
        .send()
        .await
        .unwrap();
    let team_admin = bed.admin.for_account(TEAM_ACCOUNT);
    assert!(bed.admin.collections().await.unwrap().is_empty());
    assert_eq!(
        team_admin.collections().await.unwrap()[0].collection_arn,
        "arn:aws:rekognition:us-east-1:210987654321:collection/myphotos"
    );
}

#[tokio::test]
async fn counters_and_call_logs_are_kept_per_account() {
    let bed = start_two_accounts(&Issuer::new("k1")).await;
    let team = client_with(
        &bed.emulator.endpoint_url(),
        "us-east-1",
        session_credentials(&assume_team_role(&bed).await),
    );
    team.list_collections().send().await.unwrap();
    let operator = bed.admin.counters().await.unwrap();
    let team_counters = bed
        .admin
        .for_account(TEAM_ACCOUNT)
        .counters()
        .await
        .unwrap();
    assert_eq!(operator.get("AssumeRole", "Ok"), 1);
    assert_eq!(operator.total("ListCollections"), 0);
    assert_eq!(team_counters.get("ListCollections", "Ok"), 1);
    assert_eq!(team_counters.total("AssumeRole"), 0);
}

#[tokio::test]
async fn assume_role_by_an_untrusted_principal_is_access_denied() {
    let bed = start_two_accounts(&Issuer::new("k1")).await;
    let outsider = Credentials::new(OUTSIDER_KEY, OUTSIDER_SECRET, None, None, "tests");
    let err = sts_client(&bed, outsider)
        .assume_role()
        .role_arn(TEAM_ROLE)
        .role_session_name("intruder")
        .external_id(EXTERNAL_ID)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("AccessDenied"));
    assert_eq!(status(&err), 403);
    assert!(
        err.raw_response()
            .and_then(|r| r.body().bytes())
            .is_some_and(|b| String::from_utf8_lossy(b).contains("<Type>Sender</Type>"))
    );
}

#[tokio::test]
async fn assume_role_with_a_wrong_or_missing_external_id_is_access_denied() {
    let bed = start_two_accounts(&Issuer::new("k1")).await;
    let sts = sts_client(&bed, default_credentials());
    for external_id in [Some("someone-else"), None] {
        let err = sts
            .assume_role()
            .role_arn(TEAM_ROLE)
            .role_session_name("operator")
            .set_external_id(external_id.map(str::to_owned))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code(&err).as_deref(),
            Some("AccessDenied"),
            "{external_id:?}"
        );
    }
}

#[tokio::test]
async fn durations_outside_the_bounds_are_validation_errors() {
    let bed = start_two_accounts(&Issuer::new("k1")).await;
    let sts = sts_client(&bed, default_credentials());
    // Below the model's minimum, above its maximum, above the role's maximum.
    for seconds in [899, 43_201, 7200] {
        let err = sts
            .assume_role()
            .role_arn(TEAM_ROLE)
            .role_session_name("operator")
            .external_id(EXTERNAL_ID)
            .duration_seconds(seconds)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err).as_deref(), Some("ValidationError"), "{seconds}");
        assert_eq!(status(&err), 400);
    }
}

#[tokio::test]
async fn an_expired_session_is_refused_by_both_services() {
    let bed = start_two_accounts(&Issuer::new("k1")).await;
    let assumed = assume_team_role(&bed).await;
    let sessions = bed.admin.sessions().await.unwrap();
    assert_eq!(sessions[0].access_key_id, assumed.access_key_id());
    bed.admin
        .expire_session(assumed.access_key_id())
        .await
        .unwrap();

    let session = session_credentials(&assumed);
    let team = client_with(&bed.emulator.endpoint_url(), "us-east-1", session.clone());
    let err = team.list_collections().send().await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("ExpiredTokenException"));
    assert_eq!(status(&err), 400);
    let err = sts_client(&bed, session)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("ExpiredToken"));
    assert_eq!(status(&err), 403);
}

#[tokio::test]
async fn a_session_key_with_another_sessions_token_is_refused() {
    let bed = start_two_accounts(&Issuer::new("k1")).await;
    let first = assume_team_role(&bed).await;
    let second = assume_team_role(&bed).await;
    let forged = Credentials::new(
        first.access_key_id(),
        first.secret_access_key(),
        Some(second.session_token().to_owned()),
        None,
        "forged",
    );
    let team = client_with(&bed.emulator.endpoint_url(), "us-east-1", forged);
    let err = team.list_collections().send().await.unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("UnrecognizedClientException"));
}

#[tokio::test]
async fn sessions_last_no_longer_than_the_configured_cap() {
    let mut config = Config {
        session_duration_cap: Some(Duration::from_secs(30)),
        ..Config::default()
    };
    config.iam.roles.push(RoleConfig {
        account_id: TEAM_ACCOUNT.to_owned(),
        name: "team-a".to_owned(),
        max_session_duration_seconds: 3600,
        trust: vec![TrustRule::Principal {
            principal: "arn:aws:iam::123456789012:root".to_owned(),
            external_id: None,
        }],
    });
    let bed = start_with(config).await;
    let assumed = sts_client(&bed, default_credentials())
        .assume_role()
        .role_arn(TEAM_ROLE)
        .role_session_name("short")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let expires = SystemTime::try_from(*assumed.expiration()).unwrap();
    let left = expires
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    assert!(left <= Duration::from_secs(31), "{left:?}");
}

async fn assume_with_token(bed: &TestBed, token: &str) -> Result<StsCredentials, String> {
    // Unsigned, as the SDK sends it: the token is the credential.
    sts_client(bed, default_credentials())
        .assume_role_with_web_identity()
        .role_arn(IRSA_ROLE)
        .role_session_name("irsa-session")
        .web_identity_token(token)
        .send()
        .await
        .map(|out| out.credentials.expect("credentials"))
        .map_err(|err| code(&err).unwrap_or_default())
}

#[tokio::test]
async fn a_service_account_token_is_exchanged_for_the_trusted_role() {
    let issuer = Issuer::new("k1");
    let bed = start_two_accounts(&issuer).await;
    let token = issuer.token(SERVICE_ACCOUNT, "sts.amazonaws.com", 600);
    let output = sts_client(&bed, default_credentials())
        .assume_role_with_web_identity()
        .role_arn(IRSA_ROLE)
        .role_session_name("irsa-session")
        .web_identity_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        output.subject_from_web_identity_token(),
        Some(SERVICE_ACCOUNT)
    );
    assert_eq!(output.audience(), Some("sts.amazonaws.com"));
    assert_eq!(
        output.assumed_role_user().map(|u| u.arn()),
        Some("arn:aws:sts::210987654321:assumed-role/irsa/irsa-session")
    );
    let session = session_credentials(output.credentials().unwrap());
    let team = client_with(&bed.emulator.endpoint_url(), "us-east-1", session);
    team.create_collection()
        .collection_id("irsa")
        .send()
        .await
        .unwrap();
    let team_admin = bed.admin.for_account(TEAM_ACCOUNT);
    assert_eq!(
        team_admin.collections().await.unwrap()[0].collection_id,
        "irsa"
    );
    assert_eq!(
        team_admin
            .counters()
            .await
            .unwrap()
            .get("AssumeRoleWithWebIdentity", "Ok"),
        1
    );
}

#[tokio::test]
async fn web_identity_tokens_are_refused_as_sts_refuses_them() {
    let issuer = Issuer::new("k1");
    let impostor = Issuer::new("k1");
    let bed = start_two_accounts(&issuer).await;
    let cases = [
        (
            "another ServiceAccount",
            issuer.token("system:serviceaccount:team-b:app", "sts.amazonaws.com", 600),
            "AccessDenied",
        ),
        (
            "a wrong audience",
            issuer.token(SERVICE_ACCOUNT, "https://kubernetes.default.svc", 600),
            "InvalidIdentityToken",
        ),
        (
            "an expired token",
            issuer.token(SERVICE_ACCOUNT, "sts.amazonaws.com", -120),
            "ExpiredTokenException",
        ),
        (
            "a signature by another key",
            impostor.token(SERVICE_ACCOUNT, "sts.amazonaws.com", 600),
            "InvalidIdentityToken",
        ),
        ("not a JWT", "not-a-jwt".to_owned(), "InvalidIdentityToken"),
    ];
    for (what, token, expected) in cases {
        assert_eq!(
            assume_with_token(&bed, &token).await.unwrap_err(),
            expected,
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_token_of_an_unregistered_issuer_is_an_invalid_identity_token() {
    let issuer = Issuer::new("k1");
    let mut config = Config::default();
    config.iam.roles.push(RoleConfig {
        account_id: TEAM_ACCOUNT.to_owned(),
        name: "irsa".to_owned(),
        max_session_duration_seconds: 3600,
        trust: vec![TrustRule::WebIdentity {
            issuer: ISSUER.to_owned(),
            subject: SERVICE_ACCOUNT.to_owned(),
        }],
    });
    let bed = start_with(config).await;
    let token = issuer.token(SERVICE_ACCOUNT, "sts.amazonaws.com", 600);
    assert_eq!(
        assume_with_token(&bed, &token).await.unwrap_err(),
        "InvalidIdentityToken"
    );
}

#[tokio::test]
async fn accounts_roles_and_providers_can_be_added_at_runtime() {
    let issuer = Issuer::new("runtime");
    let bed = start_with(Config::default()).await;
    let admin: &AdminClient = &bed.admin;
    admin
        .put_account(&AccountConfig {
            account_id: "444444444444".to_owned(),
            access_keys: vec![AccessKeyConfig {
                access_key_id: "AKIARUNTIMEEXAMPLE01".to_owned(),
                secret_access_key: "runtime-secret".to_owned(),
                user_name: "ci".to_owned(),
            }],
        })
        .await
        .unwrap();
    let role = admin
        .put_role(&RoleConfig {
            account_id: "444444444444".to_owned(),
            name: "irsa".to_owned(),
            max_session_duration_seconds: 3600,
            trust: vec![TrustRule::WebIdentity {
                issuer: ISSUER.to_owned(),
                subject: "system:serviceaccount:team-a:*".to_owned(),
            }],
        })
        .await
        .unwrap();
    admin
        .put_oidc_provider(&OidcProviderConfig {
            account_id: "444444444444".to_owned(),
            issuer: ISSUER.to_owned(),
            client_ids: vec!["sts.amazonaws.com".to_owned()],
            jwks: issuer.jwks.clone(),
        })
        .await
        .unwrap();
    let accounts = admin.accounts().await.unwrap();
    let added = accounts
        .iter()
        .find(|a| a.account_id == "444444444444")
        .unwrap();
    assert_eq!(added.roles, vec![role.arn.clone()]);
    assert_eq!(added.oidc_providers.len(), 1);

    let ci = Credentials::new(
        "AKIARUNTIMEEXAMPLE01",
        "runtime-secret",
        None,
        None,
        "tests",
    );
    let identity = sts_client(&bed, ci)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(identity.arn(), Some("arn:aws:iam::444444444444:user/ci"));

    let token = issuer.token(
        "system:serviceaccount:team-a:worker",
        "sts.amazonaws.com",
        600,
    );
    let output = sts_client(&bed, default_credentials())
        .assume_role_with_web_identity()
        .role_arn(&role.arn)
        .role_session_name("worker")
        .web_identity_token(token)
        .send()
        .await
        .unwrap();
    assert!(output.credentials().is_some());

    admin.delete_role(&role.arn).await.unwrap();
    assert!(admin.roles().await.unwrap().is_empty());
    let err = admin
        .for_account("999999999999")
        .counters()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn query_requests_without_a_signature_get_an_xml_error() {
    let bed = start_with(Config::default()).await;
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/", bed.emulator.endpoint_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=GetCallerIdentity&Version=2011-06-15")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["content-type"], "text/xml");
    let body = response.text().await.unwrap();
    assert!(body.starts_with("<ErrorResponse"), "{body}");
    assert!(
        body.contains("<Code>MissingAuthenticationToken</Code>"),
        "{body}"
    );
}

#[tokio::test]
async fn an_unknown_action_is_an_invalid_action() {
    let bed = start_with(Config::default()).await;
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/", bed.emulator.endpoint_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=GetSessionToken&Version=2011-06-15")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<Code>InvalidAction</Code>")
    );
}
