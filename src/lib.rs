//! rekognition-operator: Amazon Rekognition face collections as Kubernetes objects.
//!
//! Four layers, each importing only those before it:
//! - [`model`]: the API ([`model::crd`]) and the plain types every layer shares;
//! - [`core`]: the pure decisions. [`core::schedule`] decides whether a trigger may reach AWS at
//!   all and with which priority, [`core::plan`] the next step, [`core::status`] what the status
//!   and Events say, [`core::accounts`] and [`core::policy`] which account and region an object
//!   may use;
//! - [`adapters`]: the one place that speaks to Rekognition ([`adapters::aws`]), through the
//!   [`adapters::rate`] limiter of each account, region and operation;
//! - [`runtime`]: the running operator. [`runtime::reconcile`] carries the plan's steps out,
//!   [`runtime::memory`] is the per-object state of this process and [`runtime::operator`] wires
//!   it all into a kube-runtime controller.

/// A test-only crash point (see `runtime::chaos`, built with the `chaos-hooks` feature): one line
/// at the call site, nothing at all in a build without the feature.
macro_rules! crash_point {
    ($point:ident) => {
        #[cfg(feature = "chaos-hooks")]
        $crate::runtime::chaos::reached($crate::runtime::chaos::CrashPoint::$point);
    };
}

pub mod adapters;
pub mod core;
pub mod model;
pub mod runtime;
pub mod sync;

pub use crate::core::error::Error;

/// The layers import only the layers before them: model ← core ← adapters ← runtime (and the
/// lock helpers in `sync`, which every layer may use).
#[cfg(test)]
mod layers {
    use std::path::Path;

    const ORDER: [&str; 4] = ["model", "core", "adapters", "runtime"];

    fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("source folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    #[test]
    fn each_layer_imports_only_the_layers_before_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut broken = Vec::new();
        for (rank, layer) in ORDER.iter().enumerate() {
            let mut files = Vec::new();
            sources(&src.join(layer), &mut files);
            assert!(!files.is_empty(), "src/{layer} has no sources");
            for file in files {
                let text = std::fs::read_to_string(&file).expect("source");
                for later in &ORDER[rank + 1..] {
                    let import = format!("use crate::{later}::");
                    for line in text.lines().filter(|l| l.trim_start().starts_with(&import)) {
                        broken.push(format!("{}: {}", file.display(), line.trim()));
                    }
                }
            }
        }
        assert!(broken.is_empty(), "imports against the layers: {broken:#?}");
    }
}
