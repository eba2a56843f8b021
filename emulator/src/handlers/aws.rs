//! The AWS endpoint. One listener serves both services, told apart by protocol as AWS's own
//! front ends would by host name: a request with `X-Amz-Target` is AWS JSON 1.1 (Rekognition);
//! one carrying form-encoded `Action=` parameters is the Query protocol (STS). It serves every
//! region, told apart by path as AWS's would by host name: `/<region>` is that region's endpoint,
//! `/` the default region's.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;
use axum::{Extension, Router};

use crate::app::{App, RekognitionAnswer};
use crate::connection::ConnectionControl;
use crate::faults::Loss;
use crate::protocol::query::{self, FORM_CONTENT_TYPE};
use crate::protocol::{json, new_request_id};
use crate::sigv4::SignedRequest;

/// The protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Query,
}

/// Routes by protocol; anything that is not recognisably a Query request is answered as JSON,
/// where a missing target is `UnknownOperationException`.
pub fn protocol_of(headers: &HeaderMap, query: Option<&str>) -> Protocol {
    if headers.contains_key("x-amz-target") {
        return Protocol::Json;
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(FORM_CONTENT_TYPE));
    let action_in_url = query.is_some_and(|q| q.split('&').any(|p| p.starts_with("Action=")));
    if form || action_in_url {
        Protocol::Query
    } else {
        Protocol::Json
    }
}

/// The EKS Pod Identity agent's credential path (see `App::pod_identity_credentials`).
pub const POD_IDENTITY_PATH: &str = "/v1/credentials";

pub fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

// Connect info is present when served by `Emulator` (whose connections a lost response may
// cut) and absent when the router is driven some other way.
type Connection = Option<Extension<ConnectInfo<ConnectionControl>>>;

async fn handle(
    State(app): State<Arc<App>>,
    connection: Connection,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = new_request_id();
    if method == Method::GET && uri.path() == POD_IDENTITY_PATH {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let (status, body) = match app.pod_identity_credentials(authorization, &request_id) {
            Ok(credentials) => (200, credentials),
            Err((status, message)) => (status, serde_json::json!({ "Message": message })),
        };
        return Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_string().into())
            .unwrap_or_default();
    }
    let request = SignedRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query(),
        headers: &headers,
        body: &body,
    };
    let region = app.region_of_path(uri.path());
    match protocol_of(&headers, uri.query()) {
        Protocol::Json => {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let RekognitionAnswer { result, lost } =
                app.rekognition(&request, region, target, &request_id).await;
            let response = match result {
                Ok(output) => json::success_response(&output, &request_id),
                Err(err) => err.into_response(&request_id),
            };
            lose(lost, connection).await;
            response
        }
        Protocol::Query => match app.sts(&request, region, &request_id) {
            Ok((action, result)) => query::success_response(action.name(), result, &request_id),
            Err(err) => err.into_response(&request_id),
        },
    }
}

/// Carries out a lost response: the call has been carried out and recorded; its answer now
/// either never leaves (the connection is reset) or leaves late.
async fn lose(lost: Option<Loss>, connection: Connection) {
    match lost {
        None => {}
        Some(Loss::Hold(duration)) => tokio::time::sleep(duration).await,
        Some(Loss::Reset) => match connection {
            Some(Extension(ConnectInfo(control))) => control.cut(),
            None => tracing::warn!("cannot reset a connection that has no control; answering"),
        },
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn requests_are_routed_by_protocol() {
        let with = |name: &'static str, value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static(value));
            headers
        };
        let form = with(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        );
        let json = with("content-type", "application/x-amz-json-1.1");
        let target = with("x-amz-target", "RekognitionService.ListCollections");
        assert_eq!(protocol_of(&form, None), Protocol::Query);
        assert_eq!(protocol_of(&json, None), Protocol::Json);
        assert_eq!(protocol_of(&target, None), Protocol::Json);
        assert_eq!(
            protocol_of(&HeaderMap::new(), Some("Action=GetCallerIdentity")),
            Protocol::Query
        );
        assert_eq!(protocol_of(&HeaderMap::new(), None), Protocol::Json);
    }
}
