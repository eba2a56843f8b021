//! The one wait of the test bed, its tests, benches and campaign: poll a check until it holds
//! or a deadline passes, and say what was awaited when it does not.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

// Short enough that a wait ends soon after its condition holds, long enough not to load a busy
// two-core machine.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What a check answers: `bool` (holds or not), or `Option<T>` (the value awaited, once there).
pub trait Satisfied {
    type Value;
    fn satisfied(self) -> Option<Self::Value>;
}

impl Satisfied for bool {
    type Value = ();
    fn satisfied(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Satisfied for Option<T> {
    type Value = T;
    fn satisfied(self) -> Option<T> {
        self
    }
}

/// Polls `check` until it is satisfied and returns its value; fails with `what` once
/// `deadline` has passed, or at once with the check's own error.
pub async fn wait_until<F, Fut, S>(what: &str, deadline: Duration, mut check: F) -> Result<S::Value>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S>>,
    S: Satisfied,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await?.satisfied() {
            return Ok(value);
        }
        if started.elapsed() > deadline {
            bail!("{what}: not within {deadline:?}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_value_once_the_check_yields_one() {
        let mut calls = 0;
        let value = wait_until("the third call", Duration::from_secs(5), || {
            calls += 1;
            let now = calls;
            async move { Ok((now == 3).then_some(now)) }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn fails_naming_what_was_awaited_after_the_deadline() {
        let error = wait_until("never", Duration::from_millis(50), || async { Ok(false) })
            .await
            .unwrap_err();
        assert!(
            error.to_string().starts_with("never: not within"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_failing_check_ends_the_wait_with_its_error() {
        let error = wait_until("x", Duration::from_secs(5), || async {
            anyhow::bail!("broken");
            #[allow(unreachable_code)]
            Ok(true)
        })
        .await
        .unwrap_err();
        assert_eq!(error.to_string(), "broken");
    }
}
