//! The crate's error type: failures of the emulator itself and of the admin client.
//!
//! Errors that the emulator *answers* to AWS clients are protocol values, not Rust failures;
//! they live in [`crate::protocol::ApiError`].

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong starting, running or talking to an emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be served (bad account ID, negative rate, ...).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// The state file exists but could not be read.
    #[error("cannot read state file {path}: {source}")]
    StateRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The state file is not what this emulator writes.
    #[error("state file {path} is not valid: {source}")]
    StateParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// The state file belongs to another account or region; loading it would change every ARN.
    #[error("state file {path} holds {found}, but this emulator is configured for {expected}")]
    StateMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },

    /// The state file could not be written.
    #[error("cannot write state file {path}: {source}")]
    StateWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A regular expression of the service model failed to compile.
    #[error("validation pattern does not compile: {0}")]
    Pattern(#[from] regex::Error),

    /// The admin client could not reach the admin endpoint or decode its answer.
    #[error("admin request {route} failed: {source}")]
    AdminRequest {
        route: String,
        #[source]
        source: reqwest::Error,
    },

    /// The admin endpoint answered with an error status.
    #[error("admin request {route} answered {status}: {body}")]
    AdminStatus {
        route: String,
        status: u16,
        body: String,
    },
}
