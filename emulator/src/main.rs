//! `rekognition-emulator`: serve the Rekognition collection API locally.
//!
//! Every flag can also be given as an environment variable (`REKOGNITION_EMULATOR_<FLAG>`).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use clap::{Parser, ValueEnum};
use rekognition_emulator::config::{DEFAULT_CALL_LOG_CAPACITY, DEFAULT_FACE_MODEL_VERSION};
use rekognition_emulator::{
    Config, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCOUNT_ID, DEFAULT_REGION, DEFAULT_SECRET_ACCESS_KEY,
    Emulator, IamConfig, QuotaConfig, ThrottleError,
};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "rekognition-emulator", version, about)]
struct Cli {
    /// Address of the AWS endpoint (AWS JSON 1.1, SigV4-signed).
    #[arg(
        long,
        env = "REKOGNITION_EMULATOR_LISTEN",
        default_value = "127.0.0.1:4566"
    )]
    listen: SocketAddr,

    /// Address of the unsigned admin endpoint.
    #[arg(
        long,
        env = "REKOGNITION_EMULATOR_ADMIN_LISTEN",
        default_value = "127.0.0.1:4567"
    )]
    admin_listen: SocketAddr,

    /// Account ID used in ARNs.
    #[arg(long, env = "REKOGNITION_EMULATOR_ACCOUNT_ID", default_value = DEFAULT_ACCOUNT_ID)]
    account_id: String,

    /// The default region, served at the endpoint's root path.
    #[arg(long, env = "REKOGNITION_EMULATOR_REGION", default_value = DEFAULT_REGION)]
    region: String,

    /// More regions to serve, comma-separated; region R is served at `<endpoint>/R`, so an
    /// operator reaches every region through the endpoint template `http://<listen>/{region}`.
    #[arg(
        long,
        env = "REKOGNITION_EMULATOR_EXTRA_REGIONS",
        value_delimiter = ',',
        num_args = 0..
    )]
    extra_regions: Vec<String>,

    /// The access key ID clients must sign with.
    #[arg(long, env = "REKOGNITION_EMULATOR_ACCESS_KEY_ID", default_value = DEFAULT_ACCESS_KEY_ID)]
    access_key_id: String,

    /// The secret access key signatures are checked against.
    #[arg(
        long,
        env = "REKOGNITION_EMULATOR_SECRET_ACCESS_KEY",
        default_value = DEFAULT_SECRET_ACCESS_KEY,
        hide_default_value = true,
        hide_env_values = true
    )]
    secret_access_key: String,

    /// Keep collections in this file so they survive a restart.
    #[arg(long, env = "REKOGNITION_EMULATOR_STATE_FILE")]
    state_file: Option<PathBuf>,

    /// Requests per second allowed per operation; 0 turns quotas off.
    #[arg(long, env = "REKOGNITION_EMULATOR_QUOTA_RATE", default_value_t = 5.0)]
    quota_rate: f64,

    /// Requests per operation allowed at once after an idle period.
    #[arg(long, env = "REKOGNITION_EMULATOR_QUOTA_BURST", default_value_t = 5)]
    quota_burst: u32,

    /// The error a throttled call gets.
    #[arg(long, env = "REKOGNITION_EMULATOR_THROTTLE_ERROR", value_enum, default_value_t = ThrottleArg::Throttling)]
    throttle_error: ThrottleArg,

    /// Calls kept in the admin call log.
    #[arg(long, env = "REKOGNITION_EMULATOR_CALL_LOG_CAPACITY", default_value_t = DEFAULT_CALL_LOG_CAPACITY)]
    call_log_capacity: usize,

    /// Face model version reported for new collections.
    #[arg(long, env = "REKOGNITION_EMULATOR_FACE_MODEL_VERSION", default_value = DEFAULT_FACE_MODEL_VERSION)]
    face_model_version: String,

    /// JSON file of more accounts, roles with trust rules and OIDC providers
    /// (`{"accounts": [...], "roles": [...], "oidcProviders": [...]}`, see the README).
    #[arg(long, env = "REKOGNITION_EMULATOR_IAM_FILE")]
    iam_file: Option<PathBuf>,

    /// End STS sessions after at most this many seconds, whatever `DurationSeconds` asked.
    #[arg(long, env = "REKOGNITION_EMULATOR_SESSION_DURATION_CAP")]
    session_duration_cap: Option<u64>,

    /// Log line format; the level comes from RUST_LOG (default `info`).
    #[arg(long, env = "REKOGNITION_EMULATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ThrottleArg {
    /// `ThrottlingException` (HTTP 500)
    Throttling,
    /// `ProvisionedThroughputExceededException` (HTTP 400)
    ProvisionedThroughputExceeded,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

impl Cli {
    fn config(&self) -> anyhow::Result<Config> {
        let iam = match &self.iam_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => IamConfig::default(),
        };
        Ok(Config {
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            extra_regions: self.extra_regions.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            quota: QuotaConfig {
                rate_per_sec: self.quota_rate,
                burst: self.quota_burst,
                throttle_error: match self.throttle_error {
                    ThrottleArg::Throttling => ThrottleError::Throttling,
                    ThrottleArg::ProvisionedThroughputExceeded => {
                        ThrottleError::ProvisionedThroughputExceeded
                    }
                },
            },
            state_file: self.state_file.clone(),
            call_log_capacity: self.call_log_capacity,
            face_model_version: self.face_model_version.clone(),
            iam,
            session_duration_cap: self.session_duration_cap.map(Duration::from_secs),
            ..Config::default()
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);

    let emulator = Emulator::start(cli.config()?, cli.listen, cli.admin_listen).await?;
    tracing::info!(
        endpoint = %emulator.endpoint_url(),
        admin = %emulator.admin_url(),
        account_id = %emulator.config().account_id,
        region = %emulator.config().region,
        extra_regions = ?emulator.config().extra_regions,
        access_key_id = %emulator.config().access_key_id,
        state_file = ?emulator.config().state_file,
        "rekognition emulator ready"
    );

    wait_for_stop_signal().await?;
    tracing::info!("stopping");
    emulator.shutdown().await;
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only help a person at a terminal; in files and CI logs they are noise.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
