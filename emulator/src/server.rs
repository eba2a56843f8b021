//! The running emulator, the top layer: binds both listeners, serves the handlers' routers,
//! shuts down.

use std::future::IntoFuture;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::AdminClient;
use crate::app::App;
use crate::config::Config;
use crate::connection::{ConnectionControl, ControlledListener};
use crate::error::Error;
use crate::handlers;

// How long `shutdown` waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running emulator. Dropping it stops both listeners as well.
#[derive(Debug)]
pub struct Emulator {
    config: Config,
    aws_addr: SocketAddr,
    admin_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Emulator {
    /// Binds both listeners (use `127.0.0.1:0` for free ports) and serves in background tokio
    /// tasks. Loads the state file first, if one is configured.
    pub async fn start(
        config: Config,
        aws_listen: SocketAddr,
        admin_listen: SocketAddr,
    ) -> Result<Emulator, Error> {
        config.validate()?;
        let app = Arc::new(App::new(config.clone())?);
        let (aws_listener, aws_addr) = bind(aws_listen).await?;
        let (admin_listener, admin_addr) = bind(admin_listen).await?;

        let aws_app = handlers::aws::router(Arc::clone(&app));
        let admin_app = handlers::admin::router(app);
        let (stop, stopped) = watch::channel(false);
        // The AWS endpoint's connections can be cut by a handler (a lost response of the
        // `reset` kind); the admin endpoint's need not be.
        let aws_server = axum::serve(
            ControlledListener::new(aws_listener),
            aws_app.into_make_service_with_connect_info::<ConnectionControl>(),
        )
        .with_graceful_shutdown(stop_signal(stopped.clone()));
        let admin_server =
            axum::serve(admin_listener, admin_app).with_graceful_shutdown(stop_signal(stopped));
        let tasks = vec![
            spawn_server("aws", aws_server.into_future()),
            spawn_server("admin", admin_server.into_future()),
        ];
        tracing::debug!(%aws_addr, %admin_addr, "emulator listening");
        Ok(Emulator {
            config,
            aws_addr,
            admin_addr,
            stop,
            tasks,
        })
    }

    /// Base URL of the AWS endpoint, e.g. `http://127.0.0.1:4566`.
    pub fn endpoint_url(&self) -> String {
        url_for(self.aws_addr)
    }

    /// The AWS endpoint of one served region, e.g. `http://127.0.0.1:4566/eu-west-1` (the
    /// default region is also served at [`Emulator::endpoint_url`]).
    pub fn region_endpoint_url(&self, region: &str) -> String {
        format!("{}/{region}", self.endpoint_url())
    }

    /// The endpoint template that reaches every served region, for clients that substitute
    /// `{region}` (the operator's `--aws-endpoint-url`).
    pub fn endpoint_template(&self) -> String {
        self.region_endpoint_url("{region}")
    }

    /// Base URL of the admin endpoint, e.g. `http://127.0.0.1:4567`.
    pub fn admin_url(&self) -> String {
        url_for(self.admin_addr)
    }

    /// The address the AWS endpoint is bound to.
    pub fn aws_addr(&self) -> SocketAddr {
        self.aws_addr
    }

    /// The address the admin endpoint is bound to.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A client for this emulator's admin endpoint.
    pub fn admin_client(&self) -> Result<AdminClient, Error> {
        AdminClient::new(self.admin_url())
    }

    /// Stops accepting connections, lets requests in flight finish (for a few seconds at
    /// most), and waits for both listeners to close.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for mut task in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

// Dropping the `watch::Sender` wakes the shutdown signal of both servers, so a dropped
// `Emulator` stops serving without an explicit `Drop` impl.

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let bind_error = |source| Error::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

// Fires on `shutdown` and also when the `Emulator` (the sender) is dropped.
async fn stop_signal(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

fn spawn_server(
    name: &'static str,
    server: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(err) = server.await {
            tracing::error!(listener = name, error = %err, "listener failed");
        }
    })
}

// A wildcard bind address is not something a client can connect to; point at loopback instead.
fn url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_wildcard_binds_point_at_loopback() {
        assert_eq!(
            url_for("0.0.0.0:4566".parse().unwrap()),
            "http://127.0.0.1:4566"
        );
        assert_eq!(url_for("[::]:4566".parse().unwrap()), "http://[::1]:4566");
        assert_eq!(
            url_for("10.1.2.3:80".parse().unwrap()),
            "http://10.1.2.3:80"
        );
    }
}
