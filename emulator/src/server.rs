//! The running emulator: both listeners, the AWS request pipeline, and shutdown.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use chrono::Utc;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, AdminClient};
use crate::config::Config;
use crate::error::Error;
use crate::faults::Faults;
use crate::ledger::{CallRecord, Ledger, OK, UNKNOWN_OPERATION};
use crate::model::collection_id_of;
use crate::protocol::{ApiError, ErrorKind, Operation, new_request_id, success_response};
use crate::quota::Quotas;
use crate::service::Service;
use crate::sigv4::{SignedRequest, Verifier};

// How long `shutdown` waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const SIGNING_SERVICE: &str = "rekognition";

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
        let shared = Arc::new(Shared::new(config.clone())?);
        let (aws_listener, aws_addr) = bind(aws_listen).await?;
        let (admin_listener, admin_addr) = bind(admin_listen).await?;

        let aws_app = Router::new()
            .fallback(handle_aws)
            .with_state(Arc::clone(&shared));
        let admin_app = admin::routes::router(shared);
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            serve("aws", aws_listener, aws_app, stopped.clone()),
            serve("admin", admin_listener, admin_app, stopped),
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

/// State shared by the AWS and admin handlers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) verifier: Verifier,
    pub(crate) service: Service,
    pub(crate) quotas: Mutex<Quotas>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) ledger: Mutex<Ledger>,
}

impl Shared {
    fn new(config: Config) -> Result<Self, Error> {
        Ok(Shared {
            verifier: Verifier::new(
                config.access_key_id.clone(),
                config.secret_access_key.clone(),
                config.region.clone(),
                SIGNING_SERVICE,
                config.max_clock_skew,
            ),
            service: Service::new(&config)?,
            quotas: Mutex::new(Quotas::new(&config.quota, Instant::now())),
            faults: Mutex::new(Faults::default()),
            ledger: Mutex::new(Ledger::new(config.call_log_capacity)),
            config,
        })
    }

    /// The pipeline after the request has been read: auth, operation, quota, faults, decoding,
    /// the operation itself.
    async fn process(
        &self,
        request: SignedRequest<'_>,
        operation: Result<Operation, ApiError>,
        input: Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        self.verifier.verify(&request, Utc::now())?;
        let op = operation?;
        lock(&self.quotas)
            .check(op, Instant::now())
            .map_err(ApiError::of_kind)?;

        let decision = lock(&self.faults).decide(op, &mut rand::rng());
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        if let Some(kind) = decision.error {
            return Err(ApiError::new(
                kind,
                format!(
                    "{} (injected by rekognition-emulator)",
                    kind.default_message()
                ),
            ));
        }

        self.service.call(op, input?)
    }

    fn record(&self, call: CallRecord) {
        lock(&self.ledger).record(call);
    }
}

async fn handle_aws(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let operation = Operation::from_target(Some(target));
    let input = decode_body(&body);
    let collection_id = input.as_ref().ok().and_then(collection_id_of);

    let request = SignedRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query(),
        headers: &headers,
        body: &body,
    };
    let result = shared.process(request, operation.clone(), input).await;

    let operation = operation.map_or(UNKNOWN_OPERATION, |op| op.name());
    let (outcome, status) = match &result {
        Ok(_) => (OK, 200),
        Err(err) => (err.kind.type_name(), err.kind.status().as_u16()),
    };
    tracing::info!(
        operation,
        outcome,
        status,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        collection_id = collection_id.as_deref().unwrap_or(""),
        target,
        request_id = %request_id,
        "aws request"
    );
    shared.record(CallRecord {
        operation: operation.to_owned(),
        collection_id,
        outcome: outcome.to_owned(),
        at: Utc::now(),
        request_id: request_id.clone(),
    });
    match result {
        Ok(output) => success_response(&output, &request_id),
        Err(err) => err.into_response(&request_id),
    }
}

/// The request body as a JSON object; an empty body is an empty input.
fn decode_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(ApiError::new(
            ErrorKind::Serialization,
            "Start of structure or map found where not expected.",
        )),
        Err(err) => Err(ApiError::new(ErrorKind::Serialization, err.to_string())),
    }
}

/// Locks a mutex, ignoring poisoning: no code holding these locks panics, and a panic in a
/// handler must not take every later request down with it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let bind_error = |source| Error::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

fn serve(
    name: &'static str,
    listener: TcpListener,
    app: Router,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Fires on `shutdown` and also when the `Emulator` (the sender) is dropped.
        let signal = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
        {
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

    #[test]
    fn an_empty_body_is_an_empty_input() {
        assert_eq!(decode_body(b""), Ok(serde_json::json!({})));
        assert_eq!(decode_body(b" \n"), Ok(serde_json::json!({})));
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_a_serialization_error() {
        for body in [&b"{not json"[..], b"[1,2]", b"\"text\""] {
            assert_eq!(
                decode_body(body).unwrap_err().kind,
                ErrorKind::Serialization
            );
        }
    }
}
