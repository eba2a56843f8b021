//! The services, above the model and below the app: each turns a decoded request of an
//! authenticated caller into an answer or a modeled error, and knows nothing of HTTP.
//!
//! - [`rekognition`]: the collection operations (AWS JSON 1.1), per account;
//! - [`sts`]: `GetCallerIdentity`, `AssumeRole`, `AssumeRoleWithWebIdentity` (AWS Query).

pub mod rekognition;
pub mod sts;

pub use rekognition::Rekognition;
pub use sts::{Sts, StsAction};
