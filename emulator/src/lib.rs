//! An Amazon Rekognition emulator for face *collections*, speaking the same wire protocol as the
//! real service so that the unmodified AWS SDK can talk to it.
//!
//! What it covers:
//!
//! - the AWS JSON 1.1 protocol (`POST /`, `X-Amz-Target: RekognitionService.<Operation>`) for
//!   `CreateCollection`, `DescribeCollection`, `DeleteCollection`, `ListCollections`,
//!   `TagResource`, `UntagResource` and `ListTagsForResource` ([`protocol`], [`service`]);
//! - input validation and error shapes as the service model defines them ([`model`]);
//! - SigV4 signature verification against one configured key pair ([`sigv4`]);
//! - per-operation token-bucket quotas that answer `ThrottlingException` or
//!   `ProvisionedThroughputExceededException` ([`quota`]);
//! - fault injection: error rate, latency, next-N failures ([`faults`]);
//! - call counters and a bounded call log ([`ledger`]);
//! - an unsigned admin HTTP API on its own listener, with a typed client ([`admin`]);
//! - an optional state file so a restart loses nothing ([`state`]).
//!
//! One instance emulates one account in one region. [`Emulator::start`] binds both listeners
//! and serves in background tasks; the `rekognition-emulator` binary wraps it with flags.
//!
//! Request pipeline, in order: SigV4 → operation lookup → quota → injected faults → JSON decoding
//! → validation → the operation itself. Every request, whatever its outcome, is counted, logged
//! in the call log and written as one `tracing` line.

#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod error;
pub mod faults;
pub mod ledger;
pub mod model;
pub mod protocol;
pub mod quota;
pub mod server;
pub mod service;
pub mod sigv4;
pub mod state;

pub use config::{
    Config, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCOUNT_ID, DEFAULT_REGION, DEFAULT_SECRET_ACCESS_KEY,
    QuotaConfig, ThrottleError,
};
pub use error::Error;
pub use protocol::{ErrorKind, Operation};
pub use server::Emulator;
