//! AWS JSON 1.1 framing: operation names, error types with their HTTP statuses, and the
//! response shapes the SDK parses.

use std::fmt;
use std::str::FromStr;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::{AuthErrorKind, AuthFailure, REQUEST_ID_HEADER, new_request_id};

/// Prefix of every `X-Amz-Target` value the service accepts.
pub const TARGET_PREFIX: &str = "RekognitionService.";
/// Content type of AWS JSON 1.1 requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Header naming the error type, read by the SDK before the body.
pub const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

// AWS's front end (authentication, decoding, dispatch) qualifies its error types with this
// namespace; the SDK strips it, so clients see the short name either way.
const FRONTEND_NAMESPACE: &str = "com.amazon.coral.service#";
const FRONTEND_ERROR_SUFFIX: &str = ":http://internal.amazon.com/coral/com.amazon.coral.service/";

/// The collection operations the emulator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    CreateCollection,
    DescribeCollection,
    DeleteCollection,
    ListCollections,
    TagResource,
    UntagResource,
    ListTagsForResource,
}

impl Operation {
    /// Every implemented operation.
    pub const ALL: [Operation; 7] = [
        Operation::CreateCollection,
        Operation::DescribeCollection,
        Operation::DeleteCollection,
        Operation::ListCollections,
        Operation::TagResource,
        Operation::UntagResource,
        Operation::ListTagsForResource,
    ];

    /// The operation's name as it appears in `X-Amz-Target`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateCollection => "CreateCollection",
            Operation::DescribeCollection => "DescribeCollection",
            Operation::DeleteCollection => "DeleteCollection",
            Operation::ListCollections => "ListCollections",
            Operation::TagResource => "TagResource",
            Operation::UntagResource => "UntagResource",
            Operation::ListTagsForResource => "ListTagsForResource",
        }
    }

    /// Resolves an `X-Amz-Target` header value to an operation.
    pub fn from_target(target: Option<&str>) -> Result<Operation, ApiError> {
        let unknown = || ApiError::new(ErrorKind::UnknownOperation, "");
        let name = target
            .and_then(|t| t.strip_prefix(TARGET_PREFIX))
            .ok_or_else(unknown)?;
        name.parse().map_err(|_| unknown())
    }
}

impl FromStr for Operation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .into_iter()
            .find(|op| op.name() == s)
            .ok_or_else(|| format!("unknown operation {s:?}"))
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every error type the emulator can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ErrorKind {
    // Errors of Rekognition's service model.
    AccessDenied,
    InternalServerError,
    InvalidPaginationToken,
    InvalidParameter,
    ProvisionedThroughputExceeded,
    ResourceAlreadyExists,
    ResourceNotFound,
    ServiceQuotaExceeded,
    Throttling,
    // Errors of the AWS front end, shared by every JSON service.
    ExpiredToken,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    Serialization,
    ServiceUnavailable,
    UnknownOperation,
    UnrecognizedClient,
}

impl ErrorKind {
    /// Every error type.
    pub const ALL: [ErrorKind; 17] = [
        ErrorKind::AccessDenied,
        ErrorKind::InternalServerError,
        ErrorKind::InvalidPaginationToken,
        ErrorKind::InvalidParameter,
        ErrorKind::ProvisionedThroughputExceeded,
        ErrorKind::ResourceAlreadyExists,
        ErrorKind::ResourceNotFound,
        ErrorKind::ServiceQuotaExceeded,
        ErrorKind::Throttling,
        ErrorKind::ExpiredToken,
        ErrorKind::IncompleteSignature,
        ErrorKind::InvalidSignature,
        ErrorKind::MissingAuthenticationToken,
        ErrorKind::Serialization,
        ErrorKind::ServiceUnavailable,
        ErrorKind::UnknownOperation,
        ErrorKind::UnrecognizedClient,
    ];

    /// The short `__type` name, which is also what the SDK reports as the error code.
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::InternalServerError => "InternalServerError",
            ErrorKind::InvalidPaginationToken => "InvalidPaginationTokenException",
            ErrorKind::InvalidParameter => "InvalidParameterException",
            ErrorKind::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorKind::ResourceAlreadyExists => "ResourceAlreadyExistsException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::ExpiredToken => "ExpiredTokenException",
            ErrorKind::IncompleteSignature => "IncompleteSignatureException",
            ErrorKind::InvalidSignature => "InvalidSignatureException",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorKind::Serialization => "SerializationException",
            ErrorKind::ServiceUnavailable => "ServiceUnavailableException",
            ErrorKind::UnknownOperation => "UnknownOperationException",
            ErrorKind::UnrecognizedClient => "UnrecognizedClientException",
        }
    }

    /// The HTTP status the service answers this error with. Rekognition models
    /// `ThrottlingException` and `InternalServerError` as server faults (500); its other
    /// errors are client errors (400); authentication failures are 403.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InternalServerError | ErrorKind::Throttling => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ErrorKind::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::InvalidSignature
            | ErrorKind::MissingAuthenticationToken
            | ErrorKind::UnrecognizedClient => StatusCode::FORBIDDEN,
            ErrorKind::AccessDenied
            | ErrorKind::InvalidPaginationToken
            | ErrorKind::InvalidParameter
            | ErrorKind::ProvisionedThroughputExceeded
            | ErrorKind::ResourceAlreadyExists
            | ErrorKind::ResourceNotFound
            | ErrorKind::ServiceQuotaExceeded
            | ErrorKind::ExpiredToken
            | ErrorKind::IncompleteSignature
            | ErrorKind::Serialization
            | ErrorKind::UnknownOperation => StatusCode::BAD_REQUEST,
        }
    }

    /// Whether the error comes from AWS's shared front end rather than from Rekognition itself.
    /// The two write their error bodies differently.
    pub fn is_frontend(self) -> bool {
        matches!(
            self,
            ErrorKind::ExpiredToken
                | ErrorKind::IncompleteSignature
                | ErrorKind::InvalidSignature
                | ErrorKind::MissingAuthenticationToken
                | ErrorKind::Serialization
                | ErrorKind::ServiceUnavailable
                | ErrorKind::UnknownOperation
                | ErrorKind::UnrecognizedClient
        )
    }

    /// The message the service gives when nothing more specific applies.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorKind::AccessDenied => "You are not authorized to perform the action.",
            ErrorKind::InternalServerError => "Internal server error",
            ErrorKind::InvalidPaginationToken => "Invalid pagination token",
            ErrorKind::InvalidParameter => "Request has invalid parameters",
            ErrorKind::ProvisionedThroughputExceeded => "Provisioned rate exceeded",
            ErrorKind::ResourceAlreadyExists => "The resource already exists",
            ErrorKind::ResourceNotFound => "The resource does not exist",
            ErrorKind::ServiceQuotaExceeded => "Service quota exceeded",
            ErrorKind::Throttling => "Rate exceeded",
            ErrorKind::ExpiredToken => "The security token included in the request is expired",
            ErrorKind::IncompleteSignature => {
                "The request signature does not conform to AWS standards."
            }
            ErrorKind::InvalidSignature => {
                "The request signature we calculated does not match the signature you provided."
            }
            ErrorKind::MissingAuthenticationToken => "Missing Authentication Token",
            ErrorKind::Serialization => "The request body could not be read.",
            ErrorKind::ServiceUnavailable => "Service unavailable",
            ErrorKind::UnknownOperation => "",
            ErrorKind::UnrecognizedClient => {
                "The security token included in the request is invalid."
            }
        }
    }
}

impl FromStr for ErrorKind {
    type Err = String;

    /// Accepts the short `__type` name (`InternalServerError`, `ThrottlingException`, ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.type_name() == s)
            .ok_or_else(|| format!("unknown error type {s:?}"))
    }
}

impl TryFrom<String> for ErrorKind {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ErrorKind> for String {
    fn from(kind: ErrorKind) -> Self {
        kind.type_name().to_owned()
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

/// An error answered to an AWS client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// The error with the service's generic message for its type.
    pub fn of_kind(kind: ErrorKind) -> Self {
        ApiError::new(kind, kind.default_message())
    }

    /// The JSON body, shaped as the part of AWS that raises this error writes it.
    pub fn body(&self) -> serde_json::Value {
        if self.kind.is_frontend() {
            let mut body = serde_json::json!({
                "__type": format!("{FRONTEND_NAMESPACE}{}", self.kind.type_name()),
            });
            if !self.message.is_empty() {
                body["message"] = self.message.clone().into();
            }
            body
        } else {
            // Rekognition's modeled exceptions carry `Code`, `Logref` and `Message` members.
            serde_json::json!({
                "__type": self.kind.type_name(),
                "Code": self.kind.type_name(),
                "Logref": new_request_id(),
                "Message": self.message,
            })
        }
    }

    /// The `x-amzn-ErrorType` header value.
    pub fn error_type_header(&self) -> String {
        if self.kind.is_frontend() {
            format!("{}{FRONTEND_ERROR_SUFFIX}", self.kind.type_name())
        } else {
            self.kind.type_name().to_owned()
        }
    }

    /// The complete HTTP response.
    pub fn into_response(self, request_id: &str) -> Response {
        let mut response = json_response(self.kind.status(), &self.body(), request_id);
        if let Ok(value) = HeaderValue::from_str(&self.error_type_header()) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(ERROR_TYPE_HEADER), value);
        }
        response
    }
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> Self {
        let kind = match failure.kind {
            AuthErrorKind::MissingAuthenticationToken => ErrorKind::MissingAuthenticationToken,
            AuthErrorKind::IncompleteSignature => ErrorKind::IncompleteSignature,
            AuthErrorKind::InvalidSignature => ErrorKind::InvalidSignature,
            AuthErrorKind::UnrecognizedClient => ErrorKind::UnrecognizedClient,
            AuthErrorKind::ExpiredToken => ErrorKind::ExpiredToken,
        };
        ApiError::new(kind, failure.message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// A `200 OK` response carrying an operation's output.
pub fn success_response(output: &serde_json::Value, request_id: &str) -> Response {
    json_response(StatusCode::OK, output, request_id)
}

fn json_response(status: StatusCode, body: &serde_json::Value, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_targets_of_implemented_operations() {
        assert_eq!(
            Operation::from_target(Some("RekognitionService.CreateCollection")),
            Ok(Operation::CreateCollection)
        );
        for op in Operation::ALL {
            let target = format!("{TARGET_PREFIX}{op}");
            assert_eq!(Operation::from_target(Some(&target)), Ok(op));
        }
    }

    #[test]
    fn unknown_or_missing_targets_are_unknown_operations() {
        for target in [
            None,
            Some("RekognitionService.IndexFaces"),
            Some("DynamoDB.GetItem"),
        ] {
            let err = Operation::from_target(target).unwrap_err();
            assert_eq!(err.kind, ErrorKind::UnknownOperation);
        }
    }

    #[test]
    fn error_kinds_round_trip_through_their_type_names() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind.type_name().parse::<ErrorKind>(), Ok(kind));
        }
    }

    #[test]
    fn throttling_and_internal_errors_are_server_faults() {
        assert_eq!(
            ErrorKind::Throttling.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            ErrorKind::InternalServerError.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            ErrorKind::ProvisionedThroughputExceeded.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ErrorKind::ResourceNotFound.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(ErrorKind::InvalidSignature.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn modeled_errors_carry_code_logref_and_message() {
        let body = ApiError::new(ErrorKind::ResourceNotFound, "gone").body();
        assert_eq!(body["__type"], "ResourceNotFoundException");
        assert_eq!(body["Code"], "ResourceNotFoundException");
        assert_eq!(body["Message"], "gone");
        assert!(body["Logref"].is_string());
    }

    #[test]
    fn an_expired_session_is_a_frontend_client_error() {
        let err = ApiError::from(AuthFailure::of_kind(AuthErrorKind::ExpiredToken));
        assert_eq!(
            err.body()["__type"],
            "com.amazon.coral.service#ExpiredTokenException"
        );
        assert_eq!(err.kind.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn frontend_errors_are_namespaced_with_a_lowercase_message() {
        let err = ApiError::of_kind(ErrorKind::MissingAuthenticationToken);
        let body = err.body();
        assert_eq!(
            body["__type"],
            "com.amazon.coral.service#MissingAuthenticationTokenException"
        );
        assert_eq!(body["message"], "Missing Authentication Token");
        assert!(
            err.error_type_header()
                .starts_with("MissingAuthenticationTokenException:")
        );
    }
}
