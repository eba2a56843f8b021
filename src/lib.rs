//! rekognition-operator: Amazon Rekognition face collections as Kubernetes objects.
//!
//! A reconcile observes the object and asks AWS only what the next decision needs; [`schedule`]
//! decides whether a trigger may reach AWS at all and with which priority, [`plan`] is the pure
//! decision core, [`reconcile`] carries its steps out, [`aws`] is the one place that speaks to
//! Rekognition (through the [`rate`] limiter of each account, region and operation), in the account
//! [`accounts`] maps the object's namespace to. [`memory`] is the
//! per-object state of this process, [`crd`] defines the API and [`operator`] wires it all into a
//! kube-runtime controller.

pub mod accounts;
/// A test-only crash point (see `chaos`, built with the `chaos-hooks` feature): one line at the
/// call site, nothing at all in a build without the feature.
macro_rules! crash_point {
    ($point:ident) => {
        #[cfg(feature = "chaos-hooks")]
        $crate::chaos::reached($crate::chaos::CrashPoint::$point);
    };
}

pub mod aws;
pub mod aws_error;
pub mod backoff;
#[cfg(feature = "chaos-hooks")]
pub mod chaos;
pub mod collection;
pub mod config;
pub mod crd;
pub mod error;
pub mod http;
pub mod inventory;
pub mod leader;
pub mod memory;
pub mod metrics;
pub mod operator;
pub mod orphans;
pub mod ownership;
pub mod plan;
pub mod policy;
pub mod rate;
pub mod reconcile;
pub mod schedule;
pub mod status;
pub mod sync;
pub mod tags;
pub mod telemetry;

pub use error::Error;
