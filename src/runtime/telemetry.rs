//! Logging: `tracing` to stderr, JSON in a cluster by default, text on a terminal.

use tracing_subscriber::EnvFilter;

use crate::runtime::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` overrides `level` when set.
pub fn init(format: Option<LogFormat>, level: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(level))?;
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let format = format.unwrap_or(if in_cluster {
        LogFormat::Json
    } else {
        LogFormat::Text
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}
