//! How an AWS call failed, in the words the operator reasons in. Plain types below both the
//! error policy ([`crate::core::error`]) and the AWS adapter ([`crate::adapters::aws`]), which alone maps SDK
//! errors into them.

/// How the operator treats a failed AWS call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AwsErrorKind {
    /// ResourceNotFoundException.
    NotFound,
    /// ResourceAlreadyExistsException.
    AlreadyExists,
    /// The request itself is wrong; only a spec change helps.
    InvalidParameter,
    /// Missing permission or bad credentials; an operator (IAM) change helps.
    AccessDenied,
    /// A service quota is exhausted.
    QuotaExceeded,
    /// AWS asked to slow down.
    Throttled,
    /// Server error, timeout or connection failure: transient.
    Unavailable,
    /// No credentials could be obtained (IRSA / Pod Identity misconfigured, STS refused or
    /// unreachable): the call never reached Rekognition.
    CredentialsUnavailable,
    /// Anything else AWS answered.
    Unknown,
}

impl AwsErrorKind {
    /// Maps an AWS error code (the `__type` of the JSON protocol) to a kind. `status` is the HTTP
    /// status when known, used only for codes this table does not name.
    pub fn from_code(code: &str, status: Option<u16>) -> Self {
        match code {
            "ResourceNotFoundException" => Self::NotFound,
            "ResourceAlreadyExistsException" => Self::AlreadyExists,
            "InvalidParameterException" | "ValidationException" | "SerializationException" => {
                Self::InvalidParameter
            }
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "MissingAuthenticationTokenException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "IncompleteSignature" => Self::AccessDenied,
            "ServiceQuotaExceededException" => Self::QuotaExceeded,
            "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "LimitExceededException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded" => Self::Throttled,
            "InternalServerError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "ResourceInUseException" => Self::Unavailable,
            _ => match status {
                Some(429) => Self::Throttled,
                Some(s) if s >= 500 => Self::Unavailable,
                _ => Self::Unknown,
            },
        }
    }

    /// Short label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::InvalidParameter => "invalid_parameter",
            Self::AccessDenied => "access_denied",
            Self::QuotaExceeded => "quota_exceeded",
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::CredentialsUnavailable => "credentials_unavailable",
            Self::Unknown => "unknown",
        }
    }
}

/// A failed AWS call.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{operation} failed ({}): {message}", code.as_deref().unwrap_or(kind.as_str()))]
pub struct AwsError {
    pub kind: AwsErrorKind,
    pub operation: &'static str,
    /// AWS's error code, when AWS answered.
    pub code: Option<String>,
    /// AWS's message, or what went wrong on the way.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every exception that the service model lists for the six operations the operator calls.
    #[test]
    fn maps_every_modelled_exception() {
        let table = [
            ("AccessDeniedException", AwsErrorKind::AccessDenied),
            ("InternalServerError", AwsErrorKind::Unavailable),
            ("InvalidParameterException", AwsErrorKind::InvalidParameter),
            (
                "ProvisionedThroughputExceededException",
                AwsErrorKind::Throttled,
            ),
            (
                "ResourceAlreadyExistsException",
                AwsErrorKind::AlreadyExists,
            ),
            ("ResourceNotFoundException", AwsErrorKind::NotFound),
            ("ServiceQuotaExceededException", AwsErrorKind::QuotaExceeded),
            ("ThrottlingException", AwsErrorKind::Throttled),
        ];
        for (code, kind) in table {
            assert_eq!(AwsErrorKind::from_code(code, Some(400)), kind, "{code}");
        }
    }

    #[test]
    fn maps_authentication_failures_to_access_denied() {
        for code in [
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "MissingAuthenticationTokenException",
            "ExpiredTokenException",
        ] {
            assert_eq!(
                AwsErrorKind::from_code(code, Some(403)),
                AwsErrorKind::AccessDenied,
                "{code}"
            );
        }
    }

    #[test]
    fn unknown_codes_fall_back_on_http_status() {
        assert_eq!(
            AwsErrorKind::from_code("Weird", Some(503)),
            AwsErrorKind::Unavailable
        );
        assert_eq!(
            AwsErrorKind::from_code("Weird", Some(429)),
            AwsErrorKind::Throttled
        );
        assert_eq!(
            AwsErrorKind::from_code("Weird", Some(400)),
            AwsErrorKind::Unknown
        );
        assert_eq!(
            AwsErrorKind::from_code("Weird", None),
            AwsErrorKind::Unknown
        );
    }
}
