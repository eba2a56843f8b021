//! Test-only crash points, compiled only with the `chaos-hooks` feature (which the crate's own
//! tests turn on, and release builds never do).
//!
//! A crash point marks a moment where dying is most interesting for crash safety: after AWS did
//! something and before the operator wrote down that it did. With
//! `REKOGNITION_OPERATOR_CRASH_AT=<point>[:<n>]` in its environment, the process kills itself
//! with SIGKILL the `n`-th time (default: the first) it reaches that point, exactly as
//! `kill -9` would, after one line on stderr saying so. Call sites use
//! `crash_point!(AfterCreateCollection);`, which expands to nothing without the feature.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the point to die at.
pub const CRASH_AT_ENV: &str = "REKOGNITION_OPERATOR_CRASH_AT";

/// Where the process may be told to die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// CreateCollection succeeded; the status does not say so yet.
    AfterCreateCollection,
    /// DeleteCollection succeeded (or found nothing); the finalizer is still on the object.
    AfterDeleteCollection,
    /// TagResource succeeded (adoption or tag convergence); nothing recorded yet.
    AfterTagResource,
    /// UntagResource succeeded (release or tag convergence); nothing recorded yet.
    AfterUntagResource,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 4] = [
        CrashPoint::AfterCreateCollection,
        CrashPoint::AfterDeleteCollection,
        CrashPoint::AfterTagResource,
        CrashPoint::AfterUntagResource,
    ];

    /// The name used in [`CRASH_AT_ENV`].
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::AfterCreateCollection => "after-create-collection",
            CrashPoint::AfterDeleteCollection => "after-delete-collection",
            CrashPoint::AfterTagResource => "after-tag-resource",
            CrashPoint::AfterUntagResource => "after-untag-resource",
        }
    }
}

/// A parsed [`CRASH_AT_ENV`]: die at `point` when it is reached for the `hit`-th time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashAt {
    pub point: CrashPoint,
    pub hit: u64,
}

impl CrashAt {
    /// Parses `<point>` or `<point>:<n>` (n ≥ 1).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, hit) = match text.split_once(':') {
            Some((name, n)) => match n.parse::<u64>() {
                Ok(hit) if hit >= 1 => (name, hit),
                _ => return Err(format!("{CRASH_AT_ENV}: {n:?} is not a count of 1 or more")),
            },
            None => (text, 1),
        };
        CrashPoint::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .map(|point| CrashAt { point, hit })
            .ok_or_else(|| {
                let names: Vec<_> = CrashPoint::ALL.iter().map(|p| p.name()).collect();
                format!("{CRASH_AT_ENV}: no crash point {name:?}; known: {names:?}")
            })
    }
}

static CRASH_AT: OnceLock<Option<CrashAt>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn configured() -> Option<CrashAt> {
    *CRASH_AT.get_or_init(|| {
        let text = std::env::var(CRASH_AT_ENV).ok()?;
        match CrashAt::parse(&text) {
            Ok(at) => Some(at),
            Err(message) => {
                // A typo must not make a chaos run pass silently: refuse to run at all.
                eprintln!("{message}");
                std::process::exit(2);
            }
        }
    })
}

/// Reports that `point` was reached; kills the process if this is the configured hit.
pub fn reached(point: CrashPoint) {
    let Some(at) = configured() else { return };
    if at.point != point {
        return;
    }
    let hit = HITS.fetch_add(1, Ordering::SeqCst) + 1;
    if hit == at.hit {
        eprintln!(
            "chaos: crash point {} reached (hit {hit}); killing this process",
            point.name()
        );
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // Not reached: SIGKILL cannot be caught.
        std::process::abort();
    }
}

/// Reads [`CRASH_AT_ENV`] now, so that a bad value stops the process at start rather than at
/// its first crash point.
pub fn init() {
    configured();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_alone_means_its_first_hit() {
        assert_eq!(
            CrashAt::parse("after-create-collection"),
            Ok(CrashAt {
                point: CrashPoint::AfterCreateCollection,
                hit: 1
            })
        );
    }

    #[test]
    fn a_count_picks_a_later_hit() {
        assert_eq!(
            CrashAt::parse("after-delete-collection:3"),
            Ok(CrashAt {
                point: CrashPoint::AfterDeleteCollection,
                hit: 3
            })
        );
    }

    #[test]
    fn unknown_points_and_bad_counts_are_refused() {
        assert!(CrashAt::parse("after-lunch").is_err());
        assert!(CrashAt::parse("after-tag-resource:0").is_err());
        assert!(CrashAt::parse("after-tag-resource:x").is_err());
    }

    #[test]
    fn every_point_parses_from_its_name() {
        for point in CrashPoint::ALL {
            assert_eq!(CrashAt::parse(point.name()).map(|a| a.point), Ok(point));
        }
    }
}
