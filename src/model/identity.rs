//! Whose AWS credentials a call uses, and the account IDs that ARNs name: plain data every layer
//! shares (the mapping in [`crate::core::accounts`] decides which identity an object uses).

use serde::Deserialize;

/// The label value of metrics for the operator's own identity, whose account ID is not asked for.
pub const OWN_ACCOUNT: &str = "operator";

/// Whose AWS credentials a call uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// The operator's own (IRSA, Pod Identity, or the default chain).
    Own,
    /// A role assumed with STS AssumeRole, with the operator's own identity as the source.
    Role(RoleTarget),
}

/// A role to assume and the external ID its trust policy asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleTarget {
    pub role_arn: String,
    #[serde(default)]
    pub external_id: Option<String>,
}

impl Identity {
    pub fn role_arn(&self) -> Option<&str> {
        match self {
            Self::Own => None,
            Self::Role(role) => Some(&role.role_arn),
        }
    }

    /// The account ID, when the identity names it (a role ARN does).
    pub fn account_id(&self) -> Option<&str> {
        self.role_arn().and_then(role_account)
    }

    /// The account for rate limiters and metrics: quotas are per account, so two roles of one
    /// account share a bucket.
    pub fn account_label(&self) -> &str {
        self.account_id().unwrap_or(OWN_ACCOUNT)
    }
}

/// The account ID of a role ARN `arn:<partition>:iam::<account>:role/<path/name>`.
pub fn role_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource))
            if !partition.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.len() > "role/".len()
                && resource.starts_with("role/") =>
        {
            Some(account)
        }
        _ => None,
    }
}

/// The account ID of a collection ARN `arn:<partition>:rekognition:<region>:<account>:…`.
pub fn collection_account(arn: &str) -> Option<&str> {
    arn.split(':')
        .nth(4)
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_come_from_role_and_collection_arns() {
        assert_eq!(
            role_account("arn:aws:iam::111111111111:role/team-a"),
            Some("111111111111")
        );
        assert_eq!(
            role_account("arn:aws-cn:iam::111111111111:role/path/x"),
            Some("111111111111")
        );
        assert_eq!(role_account("arn:aws:iam::111111111111:role/"), None);
        assert_eq!(
            collection_account("arn:aws:rekognition:us-east-1:123456789012:collection/x"),
            Some("123456789012")
        );
        let role = Identity::Role(RoleTarget {
            role_arn: "arn:aws:iam::222222222222:role/team-b".into(),
            external_id: None,
        });
        assert_eq!(role.account_label(), "222222222222");
        assert_eq!(Identity::Own.account_label(), OWN_ACCOUNT);
    }
}
