//! The operator's one error type. Variants are named after the step that failed; `category()`
//! labels metrics and `backoff_class()` drives the error policy, never string matching.

use crate::aws::{AwsError, AwsErrorKind};
use crate::crd::ReadyReason;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An AWS call failed in a way the operator retries (throttling, server errors, permissions,
    /// quotas). The status already carries the reason.
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("adding the finalizer: {0}")]
    AddFinalizer(#[source] kube::Error),
    #[error("removing the finalizer: {0}")]
    RemoveFinalizer(#[source] kube::Error),
    #[error("writing status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("object has no {0}")]
    MalformedObject(&'static str),
    #[error("reconcile did not settle within {0} steps")]
    PlanDidNotSettle(usize),
}

/// How long to back off after an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackoffClass {
    /// Throttling, server errors, timeouts, API server conflicts: short exponential backoff.
    Transient,
    /// Permissions, quotas, unknown AWS errors: a person has to act; long exponential backoff.
    Long,
}

impl Error {
    /// A short, bounded label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Aws(error) => error.kind.as_str(),
            Self::AddFinalizer(_) | Self::RemoveFinalizer(_) => "finalizer",
            Self::WriteStatus(_) => "status",
            Self::MalformedObject(_) => "malformed_object",
            Self::PlanDidNotSettle(_) => "did_not_settle",
        }
    }

    pub fn backoff_class(&self) -> BackoffClass {
        match self {
            Self::Aws(error) => match error.kind {
                AwsErrorKind::Throttled | AwsErrorKind::Unavailable | AwsErrorKind::NotFound => {
                    BackoffClass::Transient
                }
                AwsErrorKind::AccessDenied
                | AwsErrorKind::QuotaExceeded
                | AwsErrorKind::InvalidParameter
                | AwsErrorKind::AlreadyExists
                | AwsErrorKind::Unknown => BackoffClass::Long,
            },
            Self::AddFinalizer(_) | Self::RemoveFinalizer(_) | Self::WriteStatus(_) => {
                BackoffClass::Transient
            }
            Self::MalformedObject(_) | Self::PlanDidNotSettle(_) => BackoffClass::Long,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.backoff_class() == BackoffClass::Transient
    }
}

/// The Ready reason that an AWS failure leaves on the object.
pub fn reason_for(kind: AwsErrorKind) -> ReadyReason {
    match kind {
        AwsErrorKind::Throttled => ReadyReason::Throttled,
        AwsErrorKind::Unavailable => ReadyReason::AwsUnavailable,
        AwsErrorKind::AccessDenied => ReadyReason::AccessDenied,
        AwsErrorKind::QuotaExceeded => ReadyReason::QuotaExceeded,
        AwsErrorKind::InvalidParameter => ReadyReason::InvalidParameter,
        AwsErrorKind::NotFound | AwsErrorKind::AlreadyExists | AwsErrorKind::Unknown => {
            ReadyReason::AwsError
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(kind: AwsErrorKind) -> Error {
        Error::Aws(AwsError {
            kind,
            operation: "CreateCollection",
            code: None,
            message: String::new(),
        })
    }

    #[test]
    fn throttling_and_outages_back_off_briefly_and_permissions_long() {
        assert!(aws(AwsErrorKind::Throttled).is_transient());
        assert!(aws(AwsErrorKind::Unavailable).is_transient());
        assert_eq!(
            aws(AwsErrorKind::AccessDenied).backoff_class(),
            BackoffClass::Long
        );
        assert_eq!(
            aws(AwsErrorKind::QuotaExceeded).backoff_class(),
            BackoffClass::Long
        );
    }

    #[test]
    fn each_failure_reason_says_whether_the_operator_retries() {
        for kind in [
            AwsErrorKind::Throttled,
            AwsErrorKind::Unavailable,
            AwsErrorKind::AccessDenied,
            AwsErrorKind::QuotaExceeded,
            AwsErrorKind::Unknown,
        ] {
            assert!(
                !reason_for(kind).waits_for_spec_change(),
                "{kind:?} retries on its own"
            );
        }
        assert!(reason_for(AwsErrorKind::InvalidParameter).waits_for_spec_change());
    }
}
