//! Prints the CustomResourceDefinition generated from the Rust types, as YAML.
//! `cargo run --bin crdgen > crds/rekognitioncollections.yaml`
#![forbid(unsafe_code)]

use kube::CustomResourceExt;
use rekognition_operator::crd::RekognitionCollection;

fn main() -> anyhow::Result<()> {
    print!("{}", serde_yaml::to_string(&RekognitionCollection::crd())?);
    Ok(())
}
