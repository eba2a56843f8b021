//! End to end: the operator against the real kube-apiserver (one control plane for the whole
//! binary, from `testbed::shared`), the real AWS SDK and the Rekognition emulator over HTTP. One
//! binary for the tier, so the SDK and kube are linked once; each module is one subject.
//!
//! What the reconciler decides, request by request, is tested in milliseconds by its scenario
//! tests (`src/runtime/reconcile/scenarios.rs`); what is here needs the real API server: admission, the
//! watch, RBAC, server-side apply, several processes, crashes.

#[path = "../support/mod.rs"]
mod support;

mod accounts;
mod admission;
mod admission_policy;
mod alerts;
mod core_behaviour;
mod crash_points;
mod fair_share;
mod fleet;
mod irsa;
mod leader;
mod least_privilege;
mod lifecycle;
mod pause;
mod regions;
mod safety;
mod scale;
mod status;
mod sts_web_identity;
mod tenancy;
mod two_accounts;
