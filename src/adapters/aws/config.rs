//! The SDK's configuration: the credential and region chain with the operator's retry and timeout
//! policy, the endpoint each region's client uses, and the words that name a credential provider.

use std::time::Duration;

/// Builds the base AWS configuration from the standard chain (environment, profile, IRSA web
/// identity, EKS Pod Identity, instance metadata), with the operator's retry and timeout policy.
///
/// The SDK makes exactly one attempt per call: the reconciler's per-object backoff is the one
/// retry layer, so every attempt passes the rate limiter, is counted, and no two layers wait on
/// the same failure.
pub async fn load_sdk_config(
    region: Option<String>,
    attempt_timeout: Duration,
) -> aws_config::SdkConfig {
    let mut loader = sdk_config_loader(attempt_timeout);
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
}

/// The standard credential and region chain with the operator's retry and timeout policy.
pub fn sdk_config_loader(attempt_timeout: Duration) -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(attempt_timeout)
                .operation_timeout(attempt_timeout)
                .build(),
        )
}

/// Names the credential provider of a configuration, for messages: the provider's type, in the
/// words a platform engineer configures it with.
pub(super) fn credentials_source(config: &aws_config::SdkConfig) -> String {
    let Some(provider) = config.credentials_provider() else {
        return "no credential provider configured".into();
    };
    let debug = format!("{provider:?}");
    let known = [
        (
            "WebIdentityToken",
            "web identity token (IRSA: AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE)",
        ),
        ("EcsCredentials", "container credentials (EKS Pod Identity)"),
        ("AssumeRole", "STS AssumeRole"),
        ("ImdsCredentials", "instance metadata (IMDS)"),
        ("ProfileFile", "shared config profile"),
        ("EnvironmentVariable", "environment (AWS_ACCESS_KEY_ID)"),
        (
            "DefaultCredentialsChain",
            "the default chain: environment, profile, web identity (IRSA), container (Pod Identity), instance metadata",
        ),
    ];
    known
        .iter()
        .find(|(needle, _)| debug.contains(needle))
        .map(|(_, name)| format!("credential provider: {name}"))
        .unwrap_or_else(|| "credential provider: static or custom".into())
}

/// The endpoint override for `region`: a template with `{region}` serves every region; a fixed URL
/// serves the default region only, never silently another (whose calls would be signed for one
/// region and sent to another's endpoint); other regions use AWS's own endpoint.
pub fn endpoint_for(template: Option<&str>, default_region: &str, region: &str) -> Option<String> {
    let template = template?;
    if template.contains("{region}") {
        Some(template.replace("{region}", region))
    } else if region == default_region {
        Some(template.to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_endpoint_serves_the_default_region_only_and_a_template_every_region() {
        let fixed = Some("https://vpce-1.rekognition.us-east-1.vpce.amazonaws.com");
        assert_eq!(
            endpoint_for(fixed, "us-east-1", "us-east-1").as_deref(),
            fixed
        );
        assert_eq!(endpoint_for(fixed, "us-east-1", "eu-west-1"), None);
        let template = Some("https://rekognition.{region}.example.internal");
        assert_eq!(
            endpoint_for(template, "us-east-1", "eu-west-1").as_deref(),
            Some("https://rekognition.eu-west-1.example.internal")
        );
        assert_eq!(endpoint_for(None, "us-east-1", "us-east-1"), None);
    }
}
