//! The outside world behind the operator's own types: Rekognition through the AWS SDK
//! ([`aws`]), paced by a client-side [`rate`] limiter per account, region and operation.

pub mod aws;
pub mod rate;
