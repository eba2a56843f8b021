//! The `rekognition-operator` binary: parse flags, set up logging and TLS, run.

use clap::Parser;
use rekognition_operator::runtime::config::Config;

// With `--features dhat-heap` every allocation is recorded; the profile (dhat-heap.json in the
// working directory) is written when main returns after SIGTERM.
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() -> anyhow::Result<()> {
    // Named threads, so that `top -H`, `ps -L` and a CPU profile tell the operator's workers from
    // any other process's tokio workers.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rekognition-op")
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    let config = Config::parse();
    #[cfg(feature = "chaos-hooks")]
    rekognition_operator::runtime::chaos::init();
    rekognition_operator::runtime::telemetry::init(config.log_format, &config.log_level)?;
    // One crypto provider for every TLS connection (Kubernetes and AWS): aws-lc-rs.
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;
    rekognition_operator::runtime::operator::run(config).await
}
