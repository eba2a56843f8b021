//! The emulator's STS accepts a real ServiceAccount token: the test bed's API server mints it
//! by TokenRequest (audience `sts.amazonaws.com`), its JWKS is read from `/openid/v1/jwks` and
//! registered as an OIDC provider, and the real AWS SDK exchanges the token for a role whose
//! credentials then create a collection in the role's account. Tokens of another
//! ServiceAccount or for another audience are refused as STS refuses them.

use crate::support;

use anyhow::{Context, Result};
use aws_sdk_sts::error::ProvideErrorMetadata;
use rekognition_emulator::{OidcProviderConfig, RoleConfig, TrustRule};
use support::{Options, World};

// The issuer the test bed's API server signs ServiceAccount tokens as.
const ISSUER: &str = "https://testbed.local";
const ACCOUNT: &str = "210987654321";

async fn assume(
    world: &World,
    role_arn: &str,
    token: &str,
) -> Result<aws_sdk_sts::types::Credentials, String> {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .endpoint_url(world.emulator.endpoint_url())
        .region(aws_sdk_sts::config::Region::new(
            world.emulator.config().region.clone(),
        ))
        .build();
    aws_sdk_sts::Client::from_conf(config)
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name("testbed")
        .web_identity_token(token)
        .send()
        .await
        .map_err(|err| err.code().unwrap_or_default().to_owned())
        .and_then(|out| out.credentials.ok_or_else(|| "no credentials".to_owned()))
}

#[tokio::test]
async fn a_service_account_token_of_the_api_server_is_exchanged_for_a_role() -> Result<()> {
    let world = World::without_operator("sts-irsa", Options::default()).await?;
    let jwks = world
        .ns
        .client
        .request_text(http::Request::get("/openid/v1/jwks").body(Vec::new())?)
        .await
        .context("reading the API server's JWKS")?;
    let admin = world.admin();
    admin
        .put_oidc_provider(&OidcProviderConfig {
            account_id: ACCOUNT.to_owned(),
            issuer: ISSUER.to_owned(),
            client_ids: vec!["sts.amazonaws.com".to_owned()],
            jwks: serde_json::from_str(&jwks)?,
        })
        .await?;
    let role = admin
        .put_role(&RoleConfig {
            account_id: ACCOUNT.to_owned(),
            name: "irsa".to_owned(),
            max_session_duration_seconds: 3600,
            trust: vec![TrustRule::WebIdentity {
                issuer: ISSUER.to_owned(),
                subject: format!("system:serviceaccount:{}:app", world.ns.name),
            }],
        })
        .await?;

    let token = world
        .service_account_token("app", "sts.amazonaws.com")
        .await?;
    let credentials = assume(&world, &role.arn, &token)
        .await
        .map_err(anyhow::Error::msg)?;
    let rekognition = aws_sdk_rekognition::Client::from_conf(
        aws_sdk_rekognition::config::Builder::from(&world.sdk_config().await)
            .credentials_provider(aws_sdk_rekognition::config::Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                Some(credentials.session_token().to_owned()),
                None,
                "irsa",
            ))
            .build(),
    );
    rekognition
        .create_collection()
        .collection_id("irsa-photos")
        .send()
        .await?;
    let collections = admin.for_account(ACCOUNT).collections().await?;
    assert_eq!(
        collections[0].collection_arn,
        format!(
            "arn:aws:rekognition:{}:{ACCOUNT}:collection/irsa-photos",
            world.emulator.config().region
        )
    );

    let other = world
        .service_account_token("other", "sts.amazonaws.com")
        .await?;
    assert_eq!(
        assume(&world, &role.arn, &other).await.unwrap_err(),
        "AccessDenied"
    );
    let wrong_audience = world
        .service_account_token("app", "https://kubernetes.default.svc")
        .await?;
    assert_eq!(
        assume(&world, &role.arn, &wrong_audience)
            .await
            .unwrap_err(),
        "InvalidIdentityToken"
    );
    Ok(())
}
