//! HTTP handlers, above the app: they read requests off the wire, route them by protocol and
//! write the app's answers back in that protocol's shape.
//!
//! - [`aws`]: the AWS endpoint, Rekognition (JSON 1.1) and STS (Query) on one listener;
//! - [`admin`]: the unsigned admin endpoint.

pub mod admin;
pub mod aws;
