//! The operator's one error type. Variants are named after the step that failed; `category()`
//! labels metrics and `retry()` drives the error policy, never string matching.
//! [`disposition`] is the one table of what each AWS failure means.

use crate::model::aws_error::{AwsError, AwsErrorKind};
use crate::model::crd::ReadyReason;

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
    #[error("reading the object afresh: {0}")]
    ReadObject(#[source] kube::Error),
    /// The object's spec changed while this reconcile worked on the previous one.
    #[error("the object changed while it was being reconciled")]
    ObjectChanged,
    #[error("object has no {0}")]
    MalformedObject(&'static str),
    #[error("reconcile did not settle within {0} steps")]
    PlanDidNotSettle(usize),
    /// This replica's leadership cannot be vouched for (no Lease renewal within the renew
    /// deadline): no AWS write.
    #[error("not writing to AWS: leadership not renewed within the renew deadline")]
    Fenced,
    /// The account mapping (a ConfigMap) has not been read yet, or its only version is malformed:
    /// no object can tell which account it belongs to, as even a pinned one is honoured only
    /// where the mapping gives it to the namespace.
    #[error("the account mapping is not loaded (ConfigMap missing from the watch, or malformed)")]
    AccountMappingUnavailable,
}

impl Error {
    /// The object is gone: a status write found nothing to write to.
    pub fn object_gone(&self) -> bool {
        matches!(self, Self::WriteStatus(kube::Error::Api(status)) if status.code == 404)
    }
}

impl Error {
    /// A short, bounded label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Aws(error) => error.kind.as_str(),
            Self::AddFinalizer(_) | Self::RemoveFinalizer(_) => "finalizer",
            Self::WriteStatus(_) => "status",
            Self::ReadObject(_) | Self::ObjectChanged => "object_changed",
            Self::MalformedObject(_) => "malformed_object",
            Self::PlanDidNotSettle(_) => "did_not_settle",
            Self::Fenced => "fenced",
            Self::AccountMappingUnavailable => "account_mapping",
        }
    }

    /// When to try again: AWS failures by the one table ([`disposition`]); failures of the API
    /// server's side (writes, conflicts, the fence, the mapping not loaded yet) soon; an object or
    /// plan the operator cannot work with, after the long backoff.
    pub fn retry(&self) -> Retry {
        match self {
            // A refusal is not retried at all (the object waits for a spec change); should one
            // reach the error policy, it gets the long backoff.
            Self::Aws(error) => match disposition(error.kind).retry {
                Retry::OnSpecChange => Retry::Long,
                retry => retry,
            },
            Self::AddFinalizer(_)
            | Self::RemoveFinalizer(_)
            | Self::WriteStatus(_)
            | Self::ReadObject(_)
            | Self::ObjectChanged
            | Self::Fenced
            | Self::AccountMappingUnavailable => Retry::Short,
            Self::MalformedObject(_) | Self::PlanDidNotSettle(_) => Retry::Long,
        }
    }
}

/// Transient AWS failures tolerated while cleaning up after an object that vanished.
pub const VANISHED_RETRIES: u32 = 6;

impl Error {
    /// Whether the cleanup after a vanished object tries again after this, its `failures`-th
    /// failure: a transient AWS failure, a few times. Nothing will reconcile the object again, so
    /// the error policy cannot retry it later.
    pub fn retries_cleanup(&self, failures: u32) -> bool {
        matches!(self, Self::Aws(error) if disposition(error.kind).retry == Retry::Short)
            && failures < VANISHED_RETRIES
    }
}

/// When the operator tries again after a failed AWS call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Exponential backoff from half a second (throttling, outages).
    Short,
    /// Exponential backoff from thirty seconds: a person has to act (IAM, quotas).
    Long,
    /// Not until the spec changes: retrying cannot help.
    OnSpecChange,
}

/// What an AWS failure means for the object: the reason its conditions show and when to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disposition {
    pub reason: ReadyReason,
    pub retry: Retry,
}

/// The one table of AWS failures.
pub fn disposition(kind: AwsErrorKind) -> Disposition {
    let (reason, retry) = match kind {
        AwsErrorKind::Throttled => (ReadyReason::Throttled, Retry::Short),
        AwsErrorKind::Unavailable => (ReadyReason::AwsUnavailable, Retry::Short),
        AwsErrorKind::AccessDenied => (ReadyReason::AccessDenied, Retry::Long),
        AwsErrorKind::QuotaExceeded => (ReadyReason::QuotaExceeded, Retry::Long),
        AwsErrorKind::CredentialsUnavailable => (ReadyReason::CredentialsUnavailable, Retry::Long),
        AwsErrorKind::InvalidParameter => (ReadyReason::InvalidParameter, Retry::OnSpecChange),
        // NotFound and AlreadyExists reach here only where the plan did not expect them (a
        // collection vanished between two calls of one reconcile): unexpected answers.
        AwsErrorKind::NotFound | AwsErrorKind::AlreadyExists | AwsErrorKind::Unknown => {
            (ReadyReason::AwsError, Retry::Long)
        }
    };
    Disposition { reason, retry }
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
        assert_eq!(aws(AwsErrorKind::Throttled).retry(), Retry::Short);
        assert_eq!(aws(AwsErrorKind::Unavailable).retry(), Retry::Short);
        assert_eq!(aws(AwsErrorKind::AccessDenied).retry(), Retry::Long);
        assert_eq!(aws(AwsErrorKind::QuotaExceeded).retry(), Retry::Long);
        // A refusal that reaches the error policy after all is not retried soon.
        assert_eq!(aws(AwsErrorKind::InvalidParameter).retry(), Retry::Long);
    }

    #[test]
    fn each_failure_has_one_disposition_and_its_reason_tells_how_it_retries() {
        for kind in [
            AwsErrorKind::NotFound,
            AwsErrorKind::AlreadyExists,
            AwsErrorKind::InvalidParameter,
            AwsErrorKind::AccessDenied,
            AwsErrorKind::QuotaExceeded,
            AwsErrorKind::Throttled,
            AwsErrorKind::Unavailable,
            AwsErrorKind::CredentialsUnavailable,
            AwsErrorKind::Unknown,
        ] {
            let d = disposition(kind);
            assert_eq!(
                d.reason.waits_for_spec_change(),
                d.retry == Retry::OnSpecChange,
                "{kind:?}"
            );
            assert_eq!(
                aws(kind).retry() == Retry::Short,
                d.retry == Retry::Short,
                "{kind:?}"
            );
        }
    }
}
