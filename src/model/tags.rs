//! Tags as Rekognition holds them, and AWS's limits on them. Below both the pure core and the
//! AWS adapter, so neither imports the other for them.

use std::collections::BTreeMap;

/// A collection's tags, by key.
pub type Tags = BTreeMap<String, String>;

/// The most tags one collection may carry.
pub const MAX_TAGS: usize = 200;
