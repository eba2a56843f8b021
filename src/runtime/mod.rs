//! The running operator: flags ([`config`]), the controller and its wiring ([`operator`]), the
//! actor that carries out the plan ([`reconcile`]), the per-object [`memory`] of this process,
//! the account [`mapping`]'s watch, the orphan [`inventory`], [`leader`] election, the HTTP
//! endpoints ([`http`]), [`metrics`] and logging ([`telemetry`]).

#[cfg(feature = "chaos-hooks")]
pub mod chaos;
pub mod config;
pub mod http;
pub mod inventory;
pub mod leader;
pub mod mapping;
pub mod memory;
pub mod metrics;
pub mod operator;
pub mod reconcile;
pub mod telemetry;
