//! Client-side rate limiting shaped like AWS's quotas: one token bucket per (account, region,
//! operation).
//!
//! Rekognition grants transactions per second per account, region and operation, so a burst of
//! creates must not wait behind describes. Each bucket starts just under the default quota and
//! finds the real one:
//!
//! - **Slow start.** Until AWS first throttles, a bucket whose callers keep it busy doubles its
//!   rate every eighth of a second, up to the ceiling: an account whose quota was raised is used
//!   at its quota within a second, without configuration. Callers already waiting are served at
//!   the rate that holds when their turn comes, not the one they queued at.
//!   (Once AWS has throttled, a waiting caller keeps the slot it queued for.)
//! - **Throttled.** AWS's quotas are fixed-rate token buckets, so what AWS accepted over the last
//!   second while it throttled is the quota. The rate drops to `BETA` times that measured rate
//!   (never above the rate in use) and the bucket's burst is gone. Calls in flight are throttled
//!   together, so throttles closer than a second are one event.
//! - **Rough estimate.** The first throttle ends slow start, whose last second was still climbing,
//!   so the calls counted then say little: the estimate is the larger of them and half the rate
//!   that was throttled, and from it the rate triples each second until the next throttle (a
//!   quarter second is enough apart here). That throttle measures what AWS accepted since the
//!   first, while its bucket was empty: the quota. Waiting callers whose slots were spaced at the
//!   old rate take new ones at the lower rate instead of sending into the throttle.
//! - **Probing.** From a measured quota the rate follows a cubic curve (as TCP CUBIC and the SDKs'
//!   adaptive mode do): back to the quota within `RECOVERY` or the time of `RECOVERY_CALLS` calls,
//!   a short plateau there, then above it, so a raised quota is found again and a cut one costs a
//!   throttle or two per cycle of at least that many calls.
//!
//! Calls come in two priorities. Foreground calls (a new object, a spec change, a deletion) queue
//! for the next token. Background calls (periodic resyncs) never queue: they take a token only when
//! one is free and no foreground call waits, else they get a later slot and give their worker
//! back. So resyncs use what the budget leaves and never delay a create.
//!
//! **Fair share.** Namespaces that share an account share its buckets, so foreground callers queue
//! by tenant (the namespace a reconcile runs for, see [`as_tenant`]): each tenant holds at most
//! one place in a bucket's queue at a time, and its other callers wait in its own lane behind it.
//! Tokens then go round the tenants that wait, one each, so a namespace that floods the operator
//! with work (a burst of reconcile requests, say) delays another's next call by one token per
//! flooding namespace, not by the flood.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::sync::lock;

tokio::task_local! {
    /// The tenant (namespace) whose reconcile makes the calls of this task.
    static TENANT: Arc<str>;
}

/// Runs `work` as `tenant`: its foreground calls queue in that tenant's lane ([`RateLimiter`]).
pub async fn as_tenant<F: Future>(tenant: Arc<str>, work: F) -> F::Output {
    TENANT.scope(tenant, work).await
}

/// The tenant the current task works for, if any.
pub fn current_tenant() -> Option<Arc<str>> {
    TENANT.try_with(Arc::clone).ok()
}

/// Settings of every bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Calls per second a bucket starts with; 0 turns limiting off.
    pub start_per_sec: f64,
    /// The rate never goes above this.
    pub ceiling_per_sec: f64,
    /// Calls allowed at once after a quiet period.
    pub burst: u32,
}

impl RateLimit {
    /// No limiting at all (tests).
    #[cfg(test)]
    pub fn off() -> Self {
        Self {
            start_per_sec: 0.0,
            ceiling_per_sec: 0.0,
            burst: 1,
        }
    }

    fn enabled(&self) -> bool {
        self.start_per_sec > 0.0
    }
}

/// After a throttle the rate drops to this fraction of what AWS accepted.
const BETA: f64 = 0.95;
/// The cubic curve climbs back to the measured quota within this long at least…
const RECOVERY: Duration = Duration::from_secs(2);
/// … or the time this many calls take at the quota, if longer: a probe above a low quota costs
/// a throttle, so probes are spaced by calls, not only by time.
const RECOVERY_CALLS: f64 = 50.0;
/// Throttles closer together than this are one event, once the quota was measured.
const DECREASE_SPACING: Duration = Duration::from_secs(1);
/// While the estimate is rough, a throttle this long after the last one measures again.
const ROUGH_DECREASE_SPACING: Duration = Duration::from_millis(250);
/// While the estimate is rough, a throttle measures the calls accepted since the last one when
/// there are at least this many.
const ROUGH_MIN_CALLS: usize = 2;
/// While the estimate is rough, the rate grows this much each second until the next throttle.
const ROUGH_GROWTH: f64 = 3.0;
/// Slow start doubles the rate this often while callers keep the bucket busy.
const SLOW_START_STEP: Duration = Duration::from_millis(125);
/// A foreground caller waiting in slow start looks at the rate again this often.
const RECHECK: Duration = Duration::from_millis(100);
/// The window over which successful calls are counted to measure what AWS accepts.
const MEASURE_WINDOW: Duration = Duration::from_millis(1000);
/// The rate never drops below this fraction of the starting rate.
const FLOOR_FRACTION: f64 = 0.1;

/// Buckets by (account, region, operation).
type Buckets = HashMap<(String, String, &'static str), Arc<RateLimiter>>;

/// One bucket per (account, region, operation), created on first use.
#[derive(Clone)]
pub struct RateLimiters {
    limit: RateLimit,
    buckets: Arc<Mutex<Buckets>>,
}

impl RateLimiters {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Arc::default(),
        }
    }

    pub fn get(&self, account: &str, region: &str, operation: &'static str) -> Arc<RateLimiter> {
        let mut buckets = lock(&self.buckets);
        buckets
            .entry((account.to_owned(), region.to_owned(), operation))
            .or_insert_with(|| Arc::new(RateLimiter::new(self.limit, Instant::now())))
            .clone()
    }

    /// Every bucket with its account, region and operation, for the metrics.
    pub fn all(&self) -> Vec<(String, String, &'static str, Arc<RateLimiter>)> {
        let buckets = lock(&self.buckets);
        buckets
            .iter()
            .map(|((account, region, op), limiter)| {
                (account.clone(), region.clone(), *op, limiter.clone())
            })
            .collect()
    }
}

/// What a background caller is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A token was free and is now taken.
    Go,
    /// Come back after this long: the slot reserved for this caller behind earlier background
    /// callers, at the current rate.
    Later(Duration),
}

/// A token bucket whose rate follows what AWS grants. Foreground callers reserve a token and
/// sleep until it is theirs, so they are served in arrival order without polling.
pub struct RateLimiter {
    limit: RateLimit,
    state: Mutex<Bucket>,
    /// One lane per tenant with callers waiting: a single place in the queue, held by one of
    /// them at a time. A lane leaves the table with its last caller.
    lanes: Mutex<HashMap<Arc<str>, Arc<Semaphore>>>,
}

/// Removes a tenant's lane once no caller holds or waits for it, however the caller leaves
/// (served, or its reconcile cancelled while it waited).
struct LaneExit<'a> {
    lanes: &'a Mutex<HashMap<Arc<str>, Arc<Semaphore>>>,
    tenant: Arc<str>,
}

impl Drop for LaneExit<'_> {
    fn drop(&mut self) {
        let mut lanes = lock(self.lanes);
        if lanes
            .get(&self.tenant)
            .is_some_and(|lane| Arc::strong_count(lane) == 1)
        {
            lanes.remove(&self.tenant);
        }
    }
}

#[derive(Debug)]
struct Bucket {
    /// May go negative: that many foreground calls are already waiting for tokens.
    tokens: f64,
    rate: f64,
    refilled_at: Instant,
    /// The rate AWS accepted when it last throttled (CUBIC's W_max); None until the first throttle.
    limit_found: Option<f64>,
    /// `limit_found` came from a second spent at or over the quota, not from slow start's climb.
    measured_limit: bool,
    last_throttle: Option<Instant>,
    last_step: Instant,
    /// A caller found the bucket empty since the last slow-start step.
    busy: bool,
    /// Times of recent successful calls, to measure the accepted rate.
    successes: VecDeque<Instant>,
    /// Where the next background slot starts (a virtual queue of deferred background callers).
    background_next: Instant,
    /// Counts the throttles that lowered the rate: a foreground caller whose slot was reserved
    /// in an earlier one takes a new slot at the lower rate.
    epoch: u64,
    /// Tokens credited since the bucket was made. A waiting foreground caller's turn comes when
    /// this reaches its ticket, however the rate changed while it waited.
    credited: f64,
}

/// A foreground caller's place in the queue.
#[derive(Clone, Copy, Debug)]
struct Ticket {
    /// Its token is there once `credited` reaches this.
    turn: f64,
    epoch: u64,
    /// Taken in slow start, whose rate doubles while the caller waits: it looks again every
    /// `RECHECK`. Once AWS has throttled, the rate moves slowly and a caller sleeps until its turn
    /// at the rate it queued at, so a probe above the quota reaches AWS no sooner than before.
    climbing: bool,
}

impl RateLimiter {
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            limit,
            state: Mutex::new(Bucket {
                tokens: f64::from(limit.burst.max(1)),
                rate: limit.start_per_sec,
                refilled_at: now,
                limit_found: None,
                measured_limit: false,
                last_throttle: None,
                last_step: now,
                busy: false,
                successes: VecDeque::new(),
                background_next: now,
                epoch: 0,
                credited: 0.0,
            }),
            lanes: Mutex::default(),
        }
    }

    /// Takes a foreground token for `tenant` (see "Fair share" above): first its lane's one place
    /// in the queue, then the token. Returns how long it waited in all.
    pub async fn acquire_for(&self, tenant: Option<&Arc<str>>) -> Duration {
        let Some(tenant) = tenant.filter(|_| self.limit.enabled()) else {
            return self.acquire().await;
        };
        let started = Instant::now();
        // Declared first, dropped last: the lane leaves after this caller's permit is gone.
        let _exit = LaneExit {
            lanes: &self.lanes,
            tenant: tenant.clone(),
        };
        let lane = lock(&self.lanes)
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone();
        // The lane is never closed; were it, the caller would queue without it.
        let _place = lane.acquire_owned().await.ok();
        self.acquire().await;
        started.elapsed()
    }

    /// How many tenants have a lane now (callers holding or waiting for their place).
    pub fn lanes(&self) -> usize {
        lock(&self.lanes).len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        lock(&self.state)
    }

    fn ceiling(&self) -> f64 {
        self.limit.ceiling_per_sec.max(self.limit.start_per_sec)
    }

    fn floor(&self) -> f64 {
        self.limit.start_per_sec * FLOOR_FRACTION
    }

    /// Takes a foreground token, waiting if none is free; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        if !self.limit.enabled() {
            return Duration::ZERO;
        }
        let mut waited = Duration::ZERO;
        'queue: loop {
            let (mut wait, ticket) = self.take_ticket(Instant::now());
            while !wait.is_zero() {
                // In slow start, looks again at least every RECHECK: the rate doubles meanwhile.
                let nap = if ticket.climbing {
                    wait.min(RECHECK)
                } else {
                    wait
                };
                tokio::time::sleep(nap).await;
                waited += nap;
                match self.until_turn(ticket, Instant::now()) {
                    Some(left) => wait = left,
                    // AWS throttled while this caller slept: its place was counted at a rate that
                    // no longer holds, and sending now would be throttled too.
                    None => continue 'queue,
                }
            }
            return waited;
        }
    }

    /// Reserves one foreground token at `now` and returns how long until it is available at the
    /// current rate.
    pub fn reserve(&self, now: Instant) -> Duration {
        self.take_ticket(now).0
    }

    /// Reserves one foreground token at `now`: how long until it is there at the current rate,
    /// and the caller's place in the queue.
    fn take_ticket(&self, now: Instant) -> (Duration, Ticket) {
        if !self.limit.enabled() {
            return (
                Duration::ZERO,
                Ticket {
                    turn: 0.0,
                    epoch: 0,
                    climbing: false,
                },
            );
        }
        let mut bucket = self.lock();
        self.advance(&mut bucket, now);
        bucket.tokens -= 1.0;
        // While tokens are owed, every credit pays them off in order: the caller's token is
        // there once all that is owed up to and including it has been credited.
        let owed = (-bucket.tokens).max(0.0);
        let ticket = Ticket {
            turn: bucket.credited + owed,
            epoch: bucket.epoch,
            climbing: bucket.limit_found.is_none(),
        };
        if owed > 0.0 {
            bucket.busy = true;
        }
        (Self::time_for(owed, bucket.rate), ticket)
    }

    /// How long until `ticket`'s token is there at the current rate (zero: now), or None if AWS
    /// throttled since it was taken and the caller must queue again.
    fn until_turn(&self, ticket: Ticket, now: Instant) -> Option<Duration> {
        let mut bucket = self.lock();
        self.advance(&mut bucket, now);
        if bucket.epoch != ticket.epoch {
            return None;
        }
        let owed = ticket.turn - bucket.credited;
        if owed > 0.0 {
            // A caller still waiting keeps the bucket busy: slow start goes on climbing.
            bucket.busy = true;
        }
        Some(Self::time_for(owed, bucket.rate))
    }

    /// The time `tokens` take at `rate`; below a millisecond counts as none.
    fn time_for(tokens: f64, rate: f64) -> Duration {
        let secs = tokens / rate;
        if secs < 0.001 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// A background call: takes a free token if one is there (none is while a foreground call
    /// waits), else reserves the next background slot and says how long until it.
    pub fn admit_background(&self, now: Instant) -> Admission {
        if !self.limit.enabled() {
            return Admission::Go;
        }
        let mut bucket = self.lock();
        self.advance(&mut bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Admission::Go;
        }
        bucket.busy = true;
        let spacing = Duration::from_secs_f64(1.0 / bucket.rate);
        let slot = bucket.background_next.max(now) + spacing;
        bucket.background_next = slot;
        Admission::Later(slot - now)
    }

    /// How far the background queue reaches beyond `now`: how late resyncs run.
    pub fn background_backlog(&self, now: Instant) -> Duration {
        self.lock().background_next.saturating_duration_since(now)
    }

    /// Refills tokens and moves the rate along its curve up to `now`.
    fn advance(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.credited += elapsed * bucket.rate;
        bucket.tokens =
            (bucket.tokens + elapsed * bucket.rate).min(f64::from(self.limit.burst.max(1)));
        bucket.refilled_at = now;
        while let Some(&oldest) = bucket.successes.front() {
            if now.saturating_duration_since(oldest) > MEASURE_WINDOW {
                bucket.successes.pop_front();
            } else {
                break;
            }
        }
        match (bucket.limit_found, bucket.last_throttle) {
            (Some(limit), Some(at)) => {
                let t = now.saturating_duration_since(at).as_secs_f64();
                let curve = if bucket.measured_limit {
                    // CUBIC: rate(t) = W·(1 + (1-β)·((t-K)/K)³), K the recovery time.
                    let k = RECOVERY.as_secs_f64().max(RECOVERY_CALLS / limit);
                    let x = (t - k) / k;
                    limit * (1.0 + (1.0 - BETA) * x * x * x)
                } else {
                    limit * BETA * ROUGH_GROWTH.powf(t)
                };
                // Capped at twice what was actually used, so an idle bucket does not climb to the
                // ceiling.
                let used = self.measured(bucket) * 2.0;
                let cap = self.ceiling().min(used.max(limit));
                bucket.rate = curve.min(cap).max(self.floor());
            }
            _ => {
                // Slow start: double while callers keep the bucket busy.
                while now.saturating_duration_since(bucket.last_step) >= SLOW_START_STEP {
                    bucket.last_step += SLOW_START_STEP;
                    if std::mem::take(&mut bucket.busy) {
                        bucket.rate = (bucket.rate * 2.0).min(self.ceiling());
                    }
                }
            }
        }
    }

    /// Successful calls per second over the measuring window.
    fn measured(&self, bucket: &Bucket) -> f64 {
        bucket.successes.len() as f64 / MEASURE_WINDOW.as_secs_f64()
    }

    /// AWS throttled a call.
    pub fn on_throttle(&self) {
        self.on_throttle_at(Instant::now());
    }

    pub fn on_throttle_at(&self, now: Instant) {
        if !self.limit.enabled() {
            return;
        }
        let mut bucket = self.lock();
        let spacing = if bucket.measured_limit {
            DECREASE_SPACING
        } else {
            ROUGH_DECREASE_SPACING
        };
        if bucket
            .last_throttle
            .is_some_and(|at| now.saturating_duration_since(at) < spacing)
        {
            return;
        }
        self.advance(&mut bucket, now);
        let measured = self.measured(&bucket);
        let since_last = bucket.last_throttle.map(|at| {
            let calls = bucket.successes.iter().filter(|&&t| t > at).count();
            (calls, now.saturating_duration_since(at).as_secs_f64())
        });
        let accepted = if bucket.limit_found.is_none() {
            // Out of slow start: the last second was climbing, and the rate before the last
            // doubling went through.
            measured.max(bucket.rate / 2.0)
        } else if !bucket.measured_limit
            && let Some((calls, secs)) = since_last
            && calls >= ROUGH_MIN_CALLS
        {
            // Still rough: since the last throttle AWS's bucket was empty, so what it accepted
            // meanwhile is the quota, where the last second still holds the climb.
            (calls as f64 / secs).min(bucket.rate)
        } else if measured >= 1.0 {
            // What AWS accepted is the best estimate of the quota; with too few calls to
            // measure, the current rate is.
            measured.min(bucket.rate)
        } else {
            bucket.rate
        };
        bucket.measured_limit = bucket.limit_found.is_some();
        let limit = accepted.max(self.floor());
        bucket.limit_found = Some(limit);
        bucket.last_throttle = Some(now);
        bucket.rate = (limit * BETA).max(self.floor());
        // AWS says the quota is used up: no burst until the bucket refills at the lower rate. The
        // foreground callers already waiting take new slots at that rate (a new epoch), so their
        // old reservations are forgiven rather than counted twice.
        bucket.tokens = 0.0;
        bucket.epoch += 1;
    }

    /// A call went through.
    pub fn on_success(&self) {
        self.on_success_at(Instant::now());
    }

    pub fn on_success_at(&self, now: Instant) {
        if !self.limit.enabled() {
            return;
        }
        let mut bucket = self.lock();
        bucket.successes.push_back(now);
        // Enough to measure any rate up to the ceiling over the window.
        let cap = (self.ceiling() * MEASURE_WINDOW.as_secs_f64()).ceil() as usize + 1;
        while bucket.successes.len() > cap.max(16) {
            bucket.successes.pop_front();
        }
        self.advance(&mut bucket, now);
    }

    /// The current rate in calls per second.
    pub fn current_rate(&self) -> f64 {
        self.current_rate_at(Instant::now())
    }

    pub fn current_rate_at(&self, now: Instant) -> f64 {
        if !self.limit.enabled() {
            return 0.0;
        }
        let mut bucket = self.lock();
        self.advance(&mut bucket, now);
        bucket.rate
    }
}

#[cfg(test)]
mod tests;
