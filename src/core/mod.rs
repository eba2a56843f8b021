//! The pure decisions, no I/O: whether a trigger may reach AWS ([`schedule`]), the next step
//! ([`plan`]), what the status and Events say ([`status`]), which identity an object uses
//! ([`accounts`]), what the tenancy policy allows ([`policy`]), whose a collection is
//! ([`ownership`]), which collections are orphans ([`orphans`]), what a failure means
//! ([`error`]) and how long to back off ([`backoff`]).

pub mod accounts;
pub mod backoff;
pub mod error;
pub mod orphans;
pub mod ownership;
pub mod placement;
pub mod plan;
pub mod policy;
pub mod schedule;
pub mod status;
