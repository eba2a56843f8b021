//! The API and the plain types every layer shares: the `RekognitionCollection` kind, what
//! Rekognition tells about a collection, tags, and how an AWS call failed. No I/O, no decisions.

pub mod aws_error;
pub mod collection;
pub mod crd;
pub mod identity;
pub mod tags;
