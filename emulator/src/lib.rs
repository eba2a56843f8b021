//! An Amazon Rekognition emulator for face *collections*, speaking the same wire protocol as the
//! real service so that the unmodified AWS SDK can talk to it.
//!
//! What it covers:
//!
//! - the AWS JSON 1.1 protocol (`POST /`, `X-Amz-Target: RekognitionService.<Operation>`) for
//!   `CreateCollection`, `DescribeCollection`, `DeleteCollection`, `ListCollections`,
//!   `TagResource`, `UntagResource` and `ListTagsForResource`, with validation and error shapes
//!   as the service model defines them;
//! - STS on the same endpoint, in the AWS Query protocol: `GetCallerIdentity`, `AssumeRole`
//!   (trust rules, external ID, session durations) and `AssumeRoleWithWebIdentity` (JWTs
//!   verified against registered OIDC providers, as IRSA works on EKS);
//! - several accounts: static keys and STS session keys map to principals; collections, ARNs,
//!   quotas and the call log are per account;
//! - SigV4 verification of every signed request, session tokens included;
//! - per-operation token-bucket quotas, fault injection, call counters and a call log;
//! - an unsigned admin HTTP API on its own listener, with a typed client ([`admin`]);
//! - an optional state file so a restart loses nothing ([`state`]).
//!
//! Layers, each using only those before it:
//!
//! 1. **protocol** — wire formats, no state: [`protocol`] (JSON 1.1, Query/XML, auth failures),
//!    [`sigv4`], [`connection`] (connections a handler may cut);
//! 2. **model/state** — [`config`], [`model`] (Rekognition shapes and validation), [`state`]
//!    (collections per account), [`iam`] and [`oidc`] (accounts, keys, sessions, roles, trust,
//!    token verification), [`quota`], [`faults`], [`ledger`], and [`admin`] (the admin API's
//!    types and client);
//! 3. **services** — [`service::rekognition`], [`service::sts`];
//! 4. **app** — [`app::App`]: state plus the request pipelines and admin operations;
//! 5. **handlers** — [`handlers::aws`] (routing by protocol), [`handlers::admin`];
//! 6. **server** — [`Emulator`]: listeners and shutdown.
//!
//! [`Emulator::start`] binds both listeners and serves in background tasks; the
//! `rekognition-emulator` binary wraps it with flags.

pub mod admin;
pub mod app;
pub mod config;
pub mod connection;
pub mod error;
pub mod faults;
pub mod handlers;
pub mod iam;
pub mod ledger;
mod locking;
pub mod model;
pub mod oidc;
pub mod protocol;
pub mod quota;
pub mod server;
pub mod service;
pub mod sigv4;
pub mod state;

pub use config::{
    AccessKeyConfig, AccountConfig, Config, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION, DEFAULT_SECRET_ACCESS_KEY, DEFAULT_USER_NAME, DEFAULT_WEB_IDENTITY_AUDIENCE,
    IamConfig, OidcProviderConfig, PodIdentityAssociationConfig, QuotaConfig, RoleConfig,
    ThrottleError, TrustRule,
};
pub use error::Error;
pub use protocol::{ErrorKind, Operation};
pub use server::Emulator;
