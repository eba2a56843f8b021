//! Wire protocols, the lowest layer: how requests are framed and how answers and errors are
//! shaped, with no knowledge of accounts or collections.
//!
//! - [`json`]: AWS JSON 1.1 (`X-Amz-Target`), spoken by Rekognition;
//! - [`query`]: the AWS Query protocol (form-encoded `Action=…&Version=…`, XML answers), spoken
//!   by STS;
//! - [`AuthFailure`]: why a request's authentication failed, which each protocol then writes in
//!   its own error shape.

pub mod json;
pub mod query;

pub use json::{ApiError, ErrorKind, Operation, success_response};

/// Header carrying the request ID on every response.
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// Why a request was not authenticated. The same failure reads differently per protocol:
/// `UnrecognizedClientException` in JSON is `InvalidClientTokenId` in STS's Query protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthErrorKind {
    /// No `Authorization` header.
    MissingAuthenticationToken,
    /// The `Authorization` header or the date is malformed.
    IncompleteSignature,
    /// The signature, its scope or its time is wrong.
    InvalidSignature,
    /// Unknown access key, or a session key with a missing or wrong session token.
    UnrecognizedClient,
    /// A session key whose session has expired.
    ExpiredToken,
}

/// An authentication failure with the message the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    pub kind: AuthErrorKind,
    pub message: String,
}

impl AuthFailure {
    pub fn new(kind: AuthErrorKind, message: impl Into<String>) -> Self {
        AuthFailure {
            kind,
            message: message.into(),
        }
    }

    /// The failure with AWS's generic message for its kind.
    pub fn of_kind(kind: AuthErrorKind) -> Self {
        let message = match kind {
            AuthErrorKind::MissingAuthenticationToken => "Missing Authentication Token",
            AuthErrorKind::IncompleteSignature => {
                "The request signature does not conform to AWS standards."
            }
            AuthErrorKind::InvalidSignature => {
                "The request signature we calculated does not match the signature you provided."
            }
            AuthErrorKind::UnrecognizedClient => {
                "The security token included in the request is invalid."
            }
            AuthErrorKind::ExpiredToken => "The security token included in the request is expired",
        };
        AuthFailure::new(kind, message)
    }
}

/// A fresh request ID in the UUID form AWS uses.
pub fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_uuids() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
