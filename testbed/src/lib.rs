//! The operator's test bed: real parts, no mocks at the edges.
//!
//! * [`ControlPlane`] runs a real `etcd` and `kube-apiserver` (built from their published Go modules
//!   by `tools/envtest/build.sh`) on free loopback ports, with serving certificates, a static admin
//!   token, service-account signing keys and RBAC authorization, and installs the CRDs in `crds/`.
//! * [`BackgroundEmulator`] runs the Rekognition emulator on a runtime of its own, so one instance can
//!   outlive the test that started it.
//! * [`shared`] gives every test of a test binary the same control plane and a namespace of its own.
//! * [`OperatorProcess`] runs the operator binary as a child process, for tests that kill,
//!   terminate, pause or crash it at a named point.
//! * [`wait_until`] is the one wait-with-a-deadline; [`emulator_config`] the one emulator
//!   configuration tests start from.
//!
//! The `testbed` binary (`cargo run -p testbed -- up`) starts both for people and scripts.

mod binaries;
mod control_plane;
mod emulator;
pub mod node;
pub mod pki;
mod process;
mod shared;
mod wait;

pub use binaries::{ControlPlaneBinaries, build_with_script, workspace_root};
pub use control_plane::client_from_kubeconfig;
pub use control_plane::{ApiServerStop, ControlPlane, ControlPlaneOptions};
pub use emulator::{
    BackgroundEmulator, aws_env_lines, emulator_config, with_generated_credentials,
};
pub use process::{CRASH_AT_ENV, OperatorOptions, OperatorProcess, killed_by_sigkill, log_tail};
pub use rustix::process::Signal;
pub use shared::{SharedTestbed, TestNamespace, shared};
pub use wait::{Satisfied, wait_until};

/// Deadline for every wait in the test bed that has no better-known bound.
pub const DEFAULT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
