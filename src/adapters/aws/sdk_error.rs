//! SDK errors mapped, once, into [`AwsError`], and what "missing is OK" means for a call's result.

use aws_sdk_rekognition::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::model::aws_error::{AwsError, AwsErrorKind};

impl AwsError {
    /// Maps an SDK error. Timeouts, dispatch (connection) failures and unreadable responses are
    /// transient; service errors are classified by their code.
    pub fn from_sdk<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = error.code().map(str::to_owned);
        let message = error
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| error_chain(&error));
        if let Some(credentials) = credentials_failure(&error) {
            return Self {
                kind: AwsErrorKind::CredentialsUnavailable,
                operation,
                code: None,
                message: format!("no AWS credentials: {credentials}"),
            };
        }
        let kind = match &error {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => AwsErrorKind::Unavailable,
            SdkError::ServiceError(service) => match code.as_deref() {
                Some(code) => AwsErrorKind::from_code(code, Some(service.raw().status().as_u16())),
                None => AwsErrorKind::from_code("", Some(service.raw().status().as_u16())),
            },
            _ => AwsErrorKind::Unknown,
        };
        Self {
            kind,
            operation,
            code,
            message,
        }
    }
}

/// The credential provider's failure, when that is why a call failed: the chain of a
/// `CredentialsError` (it names the provider that failed, e.g. the web identity token file).
fn credentials_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return Some(error_chain(cause));
        }
        source = cause.source();
    }
    None
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// "Missing is OK": a ResourceNotFoundException becomes `Ok(None)`, every other error stays.
pub(super) fn missing_is_none<T>(result: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.kind == AwsErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_sdk_errors_map_through_their_code() {
        use aws_sdk_rekognition::operation::create_collection::CreateCollectionError;
        use aws_sdk_rekognition::types::error::{
            ResourceAlreadyExistsException, ThrottlingException,
        };
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;

        let response = |status: u16| {
            HttpResponse::new(
                StatusCode::try_from(status).expect("status"),
                SdkBody::empty(),
            )
        };
        let throttled = CreateCollectionError::ThrottlingException(
            ThrottlingException::builder()
                .message("slow down")
                .meta(
                    ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("slow down")
                        .build(),
                )
                .build(),
        );
        let error = AwsError::from_sdk(
            "CreateCollection",
            SdkError::service_error(throttled, response(500)),
        );
        assert_eq!(error.kind, AwsErrorKind::Throttled);
        assert_eq!(error.message, "slow down");

        let exists = CreateCollectionError::ResourceAlreadyExistsException(
            ResourceAlreadyExistsException::builder()
                .meta(
                    ErrorMetadata::builder()
                        .code("ResourceAlreadyExistsException")
                        .build(),
                )
                .build(),
        );
        let error = AwsError::from_sdk(
            "CreateCollection",
            SdkError::service_error(exists, response(400)),
        );
        assert_eq!(error.kind, AwsErrorKind::AlreadyExists);
    }

    #[test]
    fn timeouts_and_connection_failures_are_transient() {
        use aws_sdk_rekognition::operation::describe_collection::DescribeCollectionError;
        let timeout: SdkError<DescribeCollectionError, HttpResponse> =
            SdkError::timeout_error("attempt timed out");
        assert_eq!(
            AwsError::from_sdk("DescribeCollection", timeout).kind,
            AwsErrorKind::Unavailable
        );
    }
}
