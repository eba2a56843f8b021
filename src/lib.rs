//! rekognition-operator: Amazon Rekognition face collections as Kubernetes objects.
//!
//! A reconcile observes the object and asks AWS only what the next decision needs; [`plan`] is
//! the pure decision core, [`reconcile`] carries its steps out, [`aws`] is the one place that
//! speaks to Rekognition (through the region's [`rate`] limiter). [`crd`] defines the API and
//! [`operator`] wires it all into a kube-runtime controller.
#![forbid(unsafe_code)]

pub mod aws;
pub mod backoff;
pub mod config;
pub mod crd;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod plan;
pub mod rate;
pub mod reconcile;
pub mod telemetry;

pub use error::Error;
