//! The `rekognition-operator` binary: parse flags, set up logging and TLS, run.
#![forbid(unsafe_code)]

use clap::Parser;
use rekognition_operator::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    rekognition_operator::telemetry::init(config.log_format, &config.log_level)?;
    // One crypto provider for every TLS connection (Kubernetes and AWS): aws-lc-rs.
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;
    rekognition_operator::operator::run(config).await
}
