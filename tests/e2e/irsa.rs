//! IRSA end to end: the operator, as its own process with no static keys, only `AWS_ROLE_ARN` and
//! `AWS_WEB_IDENTITY_TOKEN_FILE`, exchanges a ServiceAccount token that the test bed's API server
//! minted (TokenRequest, audience `sts.amazonaws.com`) at the emulator's STS, and `myphotos`
//! becomes Ready. Sessions are capped at a few seconds, so the SDK refreshes them during the
//! test. A token of another ServiceAccount, for another audience, or expired is refused by STS and
//! the object shows `CredentialsUnavailable`.

use crate::support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use rekognition_emulator::{OidcProviderConfig, RoleConfig, TrustRule};
use rekognition_operator::model::crd::CollectionSpec;
use support::{Options, World, eventually};

/// The issuer the test bed's API server signs ServiceAccount tokens as.
const ISSUER: &str = "https://testbed.local";
/// The chart's ServiceAccount.
const SERVICE_ACCOUNT: &str = "rekognition-operator";
const AUDIENCE: &str = "sts.amazonaws.com";
/// How long STS sessions last here: the SDK refreshes credentials before they expire.
const SESSION: Duration = Duration::from_secs(20);

/// A world whose emulator trusts the API server's tokens for the operator's role (in the
/// operator's own account, as IRSA sets it up); returns the role's ARN.
async fn irsa_world(prefix: &str) -> Result<(World, String)> {
    let mut options = Options::default();
    options.emulator.session_duration_cap = Some(SESSION);
    let world = World::without_operator(prefix, options).await?;
    let jwks = world
        .ns
        .client
        .request_text(http::Request::get("/openid/v1/jwks").body(Vec::new())?)
        .await
        .context("reading the API server's JWKS")?;
    let account = world.emulator.config().account_id.clone();
    let admin = world.admin();
    admin
        .put_oidc_provider(&OidcProviderConfig {
            account_id: account.clone(),
            issuer: ISSUER.to_owned(),
            client_ids: vec![AUDIENCE.to_owned()],
            jwks: serde_json::from_str(&jwks)?,
        })
        .await?;
    let role = admin
        .put_role(&RoleConfig {
            account_id: account,
            name: "rekognition-operator".to_owned(),
            max_session_duration_seconds: 3600,
            trust: vec![TrustRule::WebIdentity {
                issuer: ISSUER.to_owned(),
                subject: format!("system:serviceaccount:{}:{SERVICE_ACCOUNT}", world.ns.name),
            }],
        })
        .await?;
    Ok((world, role.arn))
}

/// The chart's ServiceAccount token as the API server would have signed it, but expired a minute
/// ago: TokenRequest grants ten minutes at least, so the test bed's signing key signs it here.
async fn expired_token(world: &World) -> Result<String> {
    let jwks: serde_json::Value = serde_json::from_str(
        &world
            .ns
            .client
            .request_text(http::Request::get("/openid/v1/jwks").body(Vec::new())?)
            .await?,
    )?;
    let kid = jwks["keys"][0]["kid"]
        .as_str()
        .context("the JWKS names its key")?
        .to_owned();
    let control_plane = &testbed::shared().await?.control_plane;
    let pem = std::fs::read_to_string(control_plane.dir().join("sa.key"))?;
    let pkcs8 = rcgen::KeyPair::from_pem(&pem)?.serialize_der();
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": format!("system:serviceaccount:{}:{SERVICE_ACCOUNT}", world.ns.name),
        "aud": [AUDIENCE],
        "iat": now - 720,
        "nbf": now - 720,
        "exp": now - 60,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid);
    Ok(jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(&pkcs8),
    )?)
}

/// The operator binary with IRSA's environment and nothing else AWS-related.
struct OperatorProcess {
    child: Child,
}

impl OperatorProcess {
    /// Starts the binary on the token file `dir/token` holding `token`.
    async fn start(
        world: &World,
        dir: &std::path::Path,
        role_arn: &str,
        token: &str,
    ) -> Result<Self> {
        let token_file = dir.join("token");
        std::fs::write(&token_file, token)?;
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            testbed::shared().await?.control_plane.kubeconfig_yaml()?,
        )?;
        let log = std::fs::File::create(dir.join("operator.log"))?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_rekognition-operator"));
        command
            .args(["--namespace", &world.ns.name])
            .args(["--metrics-addr", "off", "--log-format", "json"])
            .args(["--aws-rate", "50", "--resync-interval", "2s"])
            .env("KUBECONFIG", &kubeconfig)
            .env("AWS_ROLE_ARN", role_arn)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
            .env("AWS_ENDPOINT_URL", world.emulator.endpoint_url())
            .env("AWS_REGION", &world.emulator.config().region)
            // Nothing else may supply credentials: no keys, profiles, containers or IMDS.
            .env("AWS_CONFIG_FILE", dir.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for variable in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "AWS_ENDPOINT_URL_REKOGNITION",
        ] {
            command.env_remove(variable);
        }
        Ok(Self {
            child: command.spawn()?,
        })
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_operator_process_runs_on_irsa_alone_and_refreshes_its_session() -> Result<()> {
    let (world, role_arn) = irsa_world("irsa-process").await?;
    let dir = tempfile::tempdir()?;
    let token = world
        .service_account_token(SERVICE_ACCOUNT, AUDIENCE)
        .await?;
    let _operator = OperatorProcess::start(&world, dir.path(), &role_arn, &token).await?;

    world.create("myphotos", CollectionSpec::default()).await?;
    let obj = world.wait_reason("myphotos", "Available").await?;
    assert_eq!(
        obj.status.and_then(|s| s.collection_arn),
        Some(world.arn("myphotos"))
    );
    let admin = world.admin();
    let web_identity_sessions = || async {
        let sessions = admin.sessions().await?;
        anyhow::Ok(
            sessions
                .iter()
                .filter(|s| s.arn.contains(":assumed-role/rekognition-operator/"))
                .count(),
        )
    };
    assert!(web_identity_sessions().await? >= 1);

    // Resyncs every two seconds keep calling; the sessions last twenty: the SDK refreshes them
    // before they expire, and no call is ever answered ExpiredToken.
    eventually(
        "a second session from the refreshed token",
        SESSION * 3,
        || async { Ok(web_identity_sessions().await? >= 2) },
    )
    .await?;
    world
        .create("after-refresh", CollectionSpec::default())
        .await?;
    world.wait_reason("after-refresh", "Available").await?;
    let counters = world.admin().counters().await?;
    assert!(
        counters
            .0
            .values()
            .all(|o| !o.contains_key("ExpiredTokenException")),
        "{counters:?}"
    );
    assert_eq!(
        counters.get("AssumeRoleWithWebIdentity", "Ok") as usize,
        web_identity_sessions().await?
    );
    Ok(())
}

/// Starts the operator process on a web identity token file holding `token`, creates an object
/// and checks that STS refused: CredentialsUnavailable, naming the web identity provider and
/// STS's error, and no Rekognition call.
async fn refused(world: &World, role_arn: &str, token: &str, sts_error: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let _operator = OperatorProcess::start(world, dir.path(), role_arn, token).await?;
    world.create("myphotos", CollectionSpec::default()).await?;
    let obj = world
        .wait_reason("myphotos", "CredentialsUnavailable")
        .await?;
    let message = support::ready_message(&obj);
    assert!(
        message.contains(sts_error) && message.to_lowercase().contains("web identity"),
        "{message}"
    );
    let counters = world.admin().counters().await?;
    assert_eq!(support::rekognition_calls(&counters), 0, "{counters:?}");
    Ok(())
}

#[tokio::test]
async fn a_token_of_another_service_account_is_refused() -> Result<()> {
    let (world, role_arn) = irsa_world("irsa-other-sa").await?;
    let token = world
        .service_account_token("someone-else", AUDIENCE)
        .await?;
    refused(&world, &role_arn, &token, "AccessDenied").await
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() -> Result<()> {
    let (world, role_arn) = irsa_world("irsa-audience").await?;
    let token = world
        .service_account_token(SERVICE_ACCOUNT, "https://kubernetes.default.svc")
        .await?;
    refused(&world, &role_arn, &token, "InvalidIdentityToken").await
}

#[tokio::test]
async fn an_expired_token_is_refused() -> Result<()> {
    let (world, role_arn) = irsa_world("irsa-expired").await?;
    let token = expired_token(&world).await?;
    refused(&world, &role_arn, &token, "ExpiredToken").await
}
