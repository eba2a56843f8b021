//! STS: `GetCallerIdentity`, `AssumeRole` and `AssumeRoleWithWebIdentity` over the IAM
//! [`Directory`], with the validation, trust decisions and errors of the real service.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::iam::{Directory, IssuedCredentials, Principal, Role};
use crate::oidc::{TokenRejection, unverified_issuer};
use crate::protocol::query::{Node, QueryError, QueryErrorKind, QueryRequest, STS_VERSION};

// `DurationSeconds` bounds of the service model, and the default.
const MIN_DURATION_SECONDS: u64 = 900;
const MAX_DURATION_SECONDS: u64 = 43_200;
const DEFAULT_DURATION_SECONDS: u64 = 3600;
// A role session that assumes another role gets at most an hour ("role chaining").
const ROLE_CHAINING_LIMIT_SECONDS: u64 = 3600;

/// The STS actions the emulator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StsAction {
    GetCallerIdentity,
    AssumeRole,
    AssumeRoleWithWebIdentity,
}

impl StsAction {
    pub const ALL: [StsAction; 3] = [
        StsAction::GetCallerIdentity,
        StsAction::AssumeRole,
        StsAction::AssumeRoleWithWebIdentity,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StsAction::GetCallerIdentity => "GetCallerIdentity",
            StsAction::AssumeRole => "AssumeRole",
            StsAction::AssumeRoleWithWebIdentity => "AssumeRoleWithWebIdentity",
        }
    }

    /// Whether the request must be signed: the web identity token *is* the credential of
    /// `AssumeRoleWithWebIdentity`, which the SDK sends unsigned.
    pub fn is_signed(self) -> bool {
        !matches!(self, StsAction::AssumeRoleWithWebIdentity)
    }

    /// The action a Query request names, checked against STS's one API version.
    pub fn of(request: &QueryRequest) -> Result<StsAction, QueryError> {
        let Some(action) = request.action.as_deref() else {
            return Err(QueryError::new(
                QueryErrorKind::MissingAction,
                "Missing Action",
            ));
        };
        let version = request.version.as_deref().unwrap_or(STS_VERSION);
        StsAction::ALL
            .into_iter()
            .find(|a| a.name() == action && version == STS_VERSION)
            .ok_or_else(|| {
                QueryError::new(
                    QueryErrorKind::InvalidAction,
                    format!("Could not find operation {action} for version {version}"),
                )
            })
    }
}

/// The STS service; its state is the IAM directory it is handed.
#[derive(Debug, Clone, Default)]
pub struct Sts {
    session_cap: Option<Duration>,
}

impl Sts {
    /// Sessions last at most `session_cap` when set, whatever was asked for.
    pub fn new(session_cap: Option<Duration>) -> Self {
        Sts { session_cap }
    }

    /// Runs `action`; `caller` is the authenticated principal of a signed action. Answers the
    /// elements of the action's `<…Result>`.
    pub fn call(
        &self,
        directory: &mut Directory,
        action: StsAction,
        caller: Option<&Principal>,
        request: &QueryRequest,
        now: DateTime<Utc>,
    ) -> Result<Vec<Node>, QueryError> {
        match (action, caller) {
            (StsAction::GetCallerIdentity, Some(caller)) => Ok(get_caller_identity(caller)),
            (StsAction::AssumeRole, Some(caller)) => {
                self.assume_role(directory, caller, request, now)
            }
            (StsAction::AssumeRoleWithWebIdentity, _) => {
                self.assume_role_with_web_identity(directory, request, now)
            }
            // Signed actions arrive here only once authenticated.
            (_, None) => Err(QueryError::new(
                QueryErrorKind::MissingAuthenticationToken,
                "Request is missing Authentication Token",
            )),
        }
    }

    fn assume_role(
        &self,
        directory: &mut Directory,
        caller: &Principal,
        request: &QueryRequest,
        now: DateTime<Utc>,
    ) -> Result<Vec<Node>, QueryError> {
        let role_arn = required(request, "RoleArn", "roleArn")?;
        let session_name = session_name(request)?;
        let duration = duration(request)?;
        let external_id = request.param("ExternalId");
        if let Some(id) = external_id
            && !(2..=1224).contains(&id.len())
        {
            return Err(QueryError::validation(format!(
                "Value '{id}' at 'externalId' failed to satisfy constraint: Member must have \
                 length between 2 and 1224"
            )));
        }
        let denied = || {
            QueryError::new(
                QueryErrorKind::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                    caller.arn
                ),
            )
        };
        let role = directory
            .role(role_arn)
            .filter(|role| role.allows_principal(caller, external_id))
            .cloned()
            .ok_or_else(denied)?;
        check_duration_against(&role, duration)?;
        if caller.is_role_session && duration.as_secs() > ROLE_CHAINING_LIMIT_SECONDS {
            return Err(QueryError::new(
                QueryErrorKind::ValidationError,
                "The requested DurationSeconds exceeds the 1 hour session limit for roles \
                 assumed by role chaining.",
            ));
        }
        let (principal, credentials) =
            directory.issue_session(&role, session_name, self.capped(duration), now);
        Ok(vec![
            credentials_node(&credentials),
            assumed_role_user(&principal),
        ])
    }

    fn assume_role_with_web_identity(
        &self,
        directory: &mut Directory,
        request: &QueryRequest,
        now: DateTime<Utc>,
    ) -> Result<Vec<Node>, QueryError> {
        let role_arn = required(request, "RoleArn", "roleArn")?;
        let session_name = session_name(request)?;
        let token = required(request, "WebIdentityToken", "webIdentityToken")?;
        let duration = duration(request)?;
        let invalid_token =
            |message: String| QueryError::new(QueryErrorKind::InvalidIdentityToken, message);

        let issuer = unverified_issuer(token).map_err(|rejection| {
            invalid_token(format!(
                "The web identity token is not a valid JWT: {rejection:?}"
            ))
        })?;
        // The provider must be registered in the account of the role, as in IAM.
        let account = role_arn.split(':').nth(4).unwrap_or_default();
        let provider = directory.oidc_provider(account, &issuer).ok_or_else(|| {
            invalid_token(format!(
                "No OpenIDConnect provider found in your account for {issuer}"
            ))
        })?;
        let verified = provider
            .verify(token, now)
            .map_err(|rejection| match rejection {
                TokenRejection::WrongAudience => {
                    invalid_token("Incorrect token audience".to_owned())
                }
                TokenRejection::Expired { expired_at, now } => QueryError::new(
                    QueryErrorKind::ExpiredTokenException,
                    format!(
                        "Token expired: current date/time {} must be before the expiration \
                     date/time {}",
                        now.to_rfc3339_opts(SecondsFormat::Secs, true),
                        expired_at.to_rfc3339_opts(SecondsFormat::Secs, true)
                    ),
                ),
                TokenRejection::NotYetValid => invalid_token("Token is not yet valid".to_owned()),
                TokenRejection::BadSignature(reason) => invalid_token(format!(
                    "The token's signature could not be verified: {reason}"
                )),
                TokenRejection::Malformed(reason) => invalid_token(format!(
                    "The web identity token is not a valid JWT: {reason}"
                )),
            })?;
        let role = directory
            .role(role_arn)
            .filter(|role| role.allows_web_identity(&verified.issuer, &verified.subject))
            .cloned()
            .ok_or_else(|| {
                QueryError::new(
                    QueryErrorKind::AccessDenied,
                    "Not authorized to perform sts:AssumeRoleWithWebIdentity",
                )
            })?;
        check_duration_against(&role, duration)?;
        let (principal, credentials) =
            directory.issue_session(&role, session_name, self.capped(duration), now);
        Ok(vec![
            credentials_node(&credentials),
            Node::leaf("SubjectFromWebIdentityToken", &verified.subject),
            assumed_role_user(&principal),
            Node::leaf("Provider", &verified.issuer),
            Node::leaf("Audience", &verified.audience),
        ])
    }

    pub(crate) fn capped(&self, duration: Duration) -> Duration {
        self.session_cap.map_or(duration, |cap| duration.min(cap))
    }
}

fn get_caller_identity(caller: &Principal) -> Vec<Node> {
    vec![
        Node::leaf("Arn", &caller.arn),
        Node::leaf("UserId", &caller.user_id),
        Node::leaf("Account", &caller.account_id),
    ]
}

fn credentials_node(credentials: &IssuedCredentials) -> Node {
    Node::branch(
        "Credentials",
        vec![
            Node::leaf("AccessKeyId", &credentials.access_key_id),
            Node::leaf("SecretAccessKey", &credentials.secret_access_key),
            Node::leaf("SessionToken", &credentials.session_token),
            Node::leaf(
                "Expiration",
                credentials
                    .expires_at
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
            ),
        ],
    )
}

fn assumed_role_user(principal: &Principal) -> Node {
    Node::branch(
        "AssumedRoleUser",
        vec![
            Node::leaf("AssumedRoleId", &principal.user_id),
            Node::leaf("Arn", &principal.arn),
        ],
    )
}

fn required<'r>(
    request: &'r QueryRequest,
    name: &str,
    member: &str,
) -> Result<&'r str, QueryError> {
    request.param(name).ok_or_else(|| {
        QueryError::validation(format!(
            "Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn session_name(request: &QueryRequest) -> Result<&str, QueryError> {
    let name = required(request, "RoleSessionName", "roleSessionName")?;
    if !(2..=64).contains(&name.len()) {
        return Err(QueryError::validation(format!(
            "Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must have \
             length between 2 and 64"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    {
        return Err(QueryError::validation(format!(
            "Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must \
             satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    Ok(name)
}

fn duration(request: &QueryRequest) -> Result<Duration, QueryError> {
    let Some(text) = request.param("DurationSeconds") else {
        return Ok(Duration::from_secs(DEFAULT_DURATION_SECONDS));
    };
    let seconds: u64 = text.parse().map_err(|_| {
        QueryError::validation(format!(
            "Value '{text}' at 'durationSeconds' failed to satisfy constraint: Member must be a \
             number"
        ))
    })?;
    if seconds < MIN_DURATION_SECONDS {
        return Err(QueryError::validation(format!(
            "Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: Member must \
             have value greater than or equal to {MIN_DURATION_SECONDS}"
        )));
    }
    if seconds > MAX_DURATION_SECONDS {
        return Err(QueryError::validation(format!(
            "Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: Member must \
             have value less than or equal to {MAX_DURATION_SECONDS}"
        )));
    }
    Ok(Duration::from_secs(seconds))
}

fn check_duration_against(role: &Role, duration: Duration) -> Result<(), QueryError> {
    if duration > role.max_session() {
        return Err(QueryError::new(
            QueryErrorKind::ValidationError,
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, RoleConfig, TrustRule};

    const OPERATOR: &str = "arn:aws:iam::123456789012:user/emulator";
    const ROLE: &str = "arn:aws:iam::210987654321:role/team";

    fn directory(max_session: u32) -> Directory {
        let mut directory = Directory::from_config(&Config::default()).unwrap();
        directory
            .put_role(&RoleConfig {
                account_id: "210987654321".to_owned(),
                name: "team".to_owned(),
                max_session_duration_seconds: max_session,
                trust: vec![TrustRule::Principal {
                    principal: OPERATOR.to_owned(),
                    external_id: Some("ext-1".to_owned()),
                }],
            })
            .unwrap();
        directory
    }

    fn caller() -> Principal {
        Principal {
            account_id: "123456789012".to_owned(),
            arn: OPERATOR.to_owned(),
            user_id: "AIDAX".to_owned(),
            identity_arn: OPERATOR.to_owned(),
            is_role_session: false,
        }
    }

    fn request(params: &[(&str, &str)]) -> QueryRequest {
        QueryRequest {
            action: Some("AssumeRole".to_owned()),
            version: Some(STS_VERSION.to_owned()),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn assume(
        directory: &mut Directory,
        caller: &Principal,
        params: &[(&str, &str)],
    ) -> Result<Vec<Node>, QueryError> {
        Sts::default().call(
            directory,
            StsAction::AssumeRole,
            Some(caller),
            &request(params),
            Utc::now(),
        )
    }

    #[test]
    fn assume_role_answers_or_refuses_as_sts_does() {
        let base = [
            ("RoleArn", ROLE),
            ("RoleSessionName", "s1"),
            ("ExternalId", "ext-1"),
        ];
        let with = |extra: (&'static str, &'static str)| -> Vec<(&'static str, &'static str)> {
            let mut params: Vec<_> = base
                .iter()
                .copied()
                .filter(|(k, _)| *k != extra.0)
                .collect();
            params.push(extra);
            params
        };
        type Params = Vec<(&'static str, &'static str)>;
        let cases: Vec<(Params, Option<QueryErrorKind>)> = vec![
            (base.to_vec(), None),
            (
                with(("ExternalId", "ext-2")),
                Some(QueryErrorKind::AccessDenied),
            ),
            (base[..2].to_vec(), Some(QueryErrorKind::AccessDenied)),
            (
                with(("RoleArn", "arn:aws:iam::210987654321:role/nope")),
                Some(QueryErrorKind::AccessDenied),
            ),
            (
                with(("DurationSeconds", "899")),
                Some(QueryErrorKind::ValidationError),
            ),
            (
                with(("DurationSeconds", "43201")),
                Some(QueryErrorKind::ValidationError),
            ),
            (
                with(("DurationSeconds", "7200")),
                Some(QueryErrorKind::ValidationError),
            ),
            (with(("DurationSeconds", "900")), None),
            (
                with(("RoleSessionName", "a b")),
                Some(QueryErrorKind::ValidationError),
            ),
            (base[1..].to_vec(), Some(QueryErrorKind::ValidationError)),
        ];
        for (params, expected) in cases {
            let mut directory = directory(3600);
            let result = assume(&mut directory, &caller(), &params);
            assert_eq!(result.err().map(|e| e.kind), expected, "{params:?}");
        }
    }

    #[test]
    fn a_role_session_may_chain_for_an_hour_at_most() {
        let mut directory = directory(43_200);
        let chained = Principal {
            is_role_session: true,
            ..caller()
        };
        let params = [
            ("RoleArn", ROLE),
            ("RoleSessionName", "s1"),
            ("ExternalId", "ext-1"),
            ("DurationSeconds", "7200"),
        ];
        assert_eq!(
            assume(&mut directory, &chained, &params).unwrap_err().kind,
            QueryErrorKind::ValidationError
        );
        assert!(assume(&mut directory, &caller(), &params).is_ok());
    }

    #[test]
    fn actions_are_found_by_name_and_version() {
        let mut request = request(&[]);
        assert_eq!(StsAction::of(&request), Ok(StsAction::AssumeRole));
        request.version = Some("2010-05-08".to_owned());
        assert_eq!(
            StsAction::of(&request).unwrap_err().kind,
            QueryErrorKind::InvalidAction
        );
        request.action = None;
        assert_eq!(
            StsAction::of(&request).unwrap_err().kind,
            QueryErrorKind::MissingAction
        );
    }
}
