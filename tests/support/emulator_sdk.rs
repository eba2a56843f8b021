//! The AWS SDK configuration that reaches a test's emulator: its region, its endpoint and its
//! generated key pair. Shared by the end-to-end tests and the chaos campaign.

use std::time::Duration;

use aws_sdk_rekognition::config::Credentials;
use testbed::BackgroundEmulator;

/// The operator's own SDK settings (timeouts, a single attempt) pointed at `emulator`, with its
/// key pair; `source` names the credentials in the SDK's logs.
pub async fn sdk_config(
    emulator: &BackgroundEmulator,
    source: &'static str,
) -> aws_config::SdkConfig {
    loader(emulator, None)
        .credentials_provider(key_pair(emulator, source))
        .load()
        .await
}

/// The operator's own SDK settings pointed at `emulator`, in `region` (else the emulator's), for a
/// caller to add credentials.
pub fn loader(emulator: &BackgroundEmulator, region: Option<String>) -> aws_config::ConfigLoader {
    let region = region.unwrap_or_else(|| emulator.config().region.clone());
    rekognition_operator::adapters::aws::sdk_config_loader(Duration::from_secs(10))
        .region(aws_config::Region::new(region))
        .endpoint_url(emulator.endpoint_url())
}

/// The emulator's generated key pair as static credentials.
pub fn key_pair(emulator: &BackgroundEmulator, source: &'static str) -> Credentials {
    let config = emulator.config();
    Credentials::new(
        config.access_key_id.clone(),
        config.secret_access_key.clone(),
        None,
        None,
        source,
    )
}
