//! The Rekognition emulator on a runtime of its own.

use std::net::SocketAddr;
use std::sync::mpsc;

use anyhow::{Context, Result};
use rekognition_emulator::{Config, Emulator};
use tokio::sync::oneshot;

/// An emulator serving from a dedicated thread, so it outlives the runtime of whoever started it
/// (each `#[tokio::test]` has its own). Stops on drop.
pub struct BackgroundEmulator {
    endpoint_url: String,
    admin_url: String,
    config: Config,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundEmulator {
    /// Starts an emulator on free loopback ports.
    pub fn start(config: Config) -> Result<Self> {
        Self::start_on(config, std::net::Ipv4Addr::LOCALHOST)
    }

    /// Starts an emulator whose AWS endpoint listens on `address` (with a node, the host's end
    /// of its link, where pods reach it); its admin endpoint stays on loopback.
    pub fn start_on(config: Config, address: std::net::Ipv4Addr) -> Result<Self> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(String, String)>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread_config = config.clone();
        let thread = std::thread::Builder::new()
            .name("rekognition-emulator".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let endpoint: SocketAddr = (address, 0).into();
                    let admin: SocketAddr = ([127, 0, 0, 1], 0).into();
                    match Emulator::start(thread_config, endpoint, admin).await {
                        Ok(emulator) => {
                            let _ =
                                ready_tx.send(Ok((emulator.endpoint_url(), emulator.admin_url())));
                            let _ = stop_rx.await;
                            emulator.shutdown().await;
                        }
                        Err(error) => {
                            let _ = ready_tx
                                .send(Err(anyhow::anyhow!("starting the emulator: {error}")));
                        }
                    }
                });
            })
            .context("spawning the emulator thread")?;
        let (endpoint_url, admin_url) = ready_rx
            .recv()
            .context("the emulator thread ended before it was ready")??;
        Ok(Self {
            endpoint_url,
            admin_url,
            config,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The AWS endpoint, for `AWS_ENDPOINT_URL`.
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint_url
    }

    /// The unsigned admin endpoint (faults, quotas, counters).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The configuration it runs with: account, region and credentials.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A typed client for the admin endpoint.
    pub fn admin(&self) -> Result<rekognition_emulator::admin::AdminClient> {
        Ok(rekognition_emulator::admin::AdminClient::new(
            self.admin_url.clone(),
        )?)
    }

    /// Environment variables that point the AWS SDK (and so the operator) at this emulator.
    /// The region is in both variables: the Rust SDK and current AWS CLIs read `AWS_REGION`,
    /// boto3 and older CLIs only `AWS_DEFAULT_REGION`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint_url.clone()),
            ("AWS_REGION", self.config.region.clone()),
            ("AWS_DEFAULT_REGION", self.config.region.clone()),
            ("AWS_ACCESS_KEY_ID", self.config.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY",
                self.config.secret_access_key.clone(),
            ),
            ("REKOGNITION_EMULATOR_ADMIN_URL", self.admin_url.clone()),
        ]
    }
}

/// The emulator configuration tests start from: the default account and region, a fresh random
/// key pair, and quotas off (a test that wants throttling sets `quota` itself).
pub fn emulator_config() -> Config {
    with_generated_credentials(Config {
        quota: rekognition_emulator::QuotaConfig::disabled(),
        ..Config::default()
    })
}

/// Gives `config` a fresh random key pair, so nothing can reach the emulator with a well-known one.
pub fn with_generated_credentials(mut config: Config) -> Config {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    let random = |len: usize| -> String {
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(len)
            .map(char::from)
            .collect()
    };
    config.access_key_id = format!("AKIA{}", random(16).to_uppercase());
    config.secret_access_key = random(40);
    config
}

/// `export NAME='value'` lines for a shell to source.
pub fn aws_env_lines(emulator: &BackgroundEmulator) -> String {
    emulator
        .env()
        .into_iter()
        .map(|(name, value)| format!("export {name}='{value}'\n"))
        .collect()
}

impl Drop for BackgroundEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
