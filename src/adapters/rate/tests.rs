use super::*;

fn limit(start: f64, ceiling: f64, burst: u32) -> RateLimit {
    RateLimit {
        start_per_sec: start,
        ceiling_per_sec: ceiling,
        burst,
    }
}

/// AWS's side in the simulations: a token bucket of `quota` calls per second.
struct Quota {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Quota {
    fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Drives `calls` successful foreground calls (a throttled call is retried) through a limiter in
/// virtual time against an AWS quota; returns the seconds taken and the throttled calls.
fn saturate(limiter: &RateLimiter, quota: &mut Quota, start: Instant, calls: u32) -> (f64, u32) {
    let mut now = start;
    let mut done = 0;
    let mut throttled = 0;
    while done < calls {
        now += limiter.reserve(now);
        if quota.take(now) {
            limiter.on_success_at(now);
            done += 1;
        } else {
            limiter.on_throttle_at(now);
            throttled += 1;
        }
    }
    (now.duration_since(start).as_secs_f64(), throttled)
}

#[test]
fn burst_is_free_then_calls_are_spaced_by_the_rate() {
    let now = Instant::now();
    let l = RateLimiter::new(limit(4.0, 4.0, 2), now);
    assert_eq!(l.reserve(now), Duration::ZERO);
    assert_eq!(l.reserve(now), Duration::ZERO);
    assert_eq!(l.reserve(now), Duration::from_millis(250));
    assert_eq!(l.reserve(now), Duration::from_millis(500));
}

#[test]
fn throttling_drops_to_a_fraction_of_what_aws_accepted() {
    let now = Instant::now();
    let l = RateLimiter::new(limit(8.0, 8.0, 1), now);
    // Out of slow start nothing was measured: half the throttled rate is the rough estimate, and
    // throttles of the same moment are one event.
    l.on_throttle_at(now);
    l.on_throttle_at(now + Duration::from_millis(10));
    assert!((l.current_rate_at(now) - 4.0 * BETA).abs() < 1e-9);
    // Ten calls went through in the two seconds since, while AWS throttled: it accepts 5/s.
    let later = now + Duration::from_secs(2);
    for i in 0..10 {
        l.on_success_at(later - Duration::from_millis(200 * i));
    }
    l.on_throttle_at(later);
    assert!((l.current_rate_at(later) - 5.0 * BETA).abs() < 1e-9);
    // Measured now: throttles within a second of it are the same event.
    l.on_throttle_at(later + Duration::from_millis(500));
    assert!((l.current_rate_at(later) - 5.0 * BETA).abs() < 1e-9);
}

#[test]
fn a_rough_estimate_triples_each_second_until_aws_throttles_again() {
    let now = Instant::now();
    let l = RateLimiter::new(limit(8.0, 100.0, 1), now);
    l.on_throttle_at(now);
    let at = |secs: f64| {
        let t = now + Duration::from_secs_f64(secs);
        // Keep the bucket in use so the "twice what is used" cap does not bind.
        for i in 0..60 {
            l.on_success_at(t - Duration::from_millis(15 * i));
        }
        l.current_rate_at(t)
    };
    assert!((at(1.0) - 12.0 * BETA).abs() < 1e-6);
    assert!((at(2.0) - 36.0 * BETA).abs() < 1e-6);
}

#[test]
fn throttling_ends_the_burst() {
    let now = Instant::now();
    let l = RateLimiter::new(limit(4.0, 4.0, 4), now);
    l.on_throttle_at(now);
    // The rate is now 3.6/s and the burst is gone: the next call waits for a token.
    assert!(l.reserve(now) >= Duration::from_millis(270));
}

#[test]
fn rate_never_drops_below_a_floor() {
    let now = Instant::now();
    let l = RateLimiter::new(limit(8.0, 8.0, 1), now);
    for i in 0..40 {
        l.on_throttle_at(now + Duration::from_secs(2 * i));
    }
    assert!(l.current_rate_at(now + Duration::from_secs(80)) >= 8.0 * FLOOR_FRACTION);
}

#[test]
fn after_a_measured_throttle_the_rate_climbs_back_to_the_quota_then_probes_above_it() {
    let now = Instant::now();
    // Slow start reached 40/s when AWS first throttled: the rough estimate is 20/s.
    let l = RateLimiter::new(limit(40.0, 100.0, 1), now);
    let busy = |t: Instant| {
        // Ten calls a second went through: keeps the bucket in use, and is what AWS accepts.
        for i in 0..10 {
            l.on_success_at(t - Duration::from_millis(95 * i));
        }
    };
    l.on_throttle_at(now);
    let measured = now + Duration::from_secs(1);
    busy(measured);
    l.on_throttle_at(measured);
    let at = |secs: f64| {
        let t = measured + Duration::from_secs_f64(secs);
        busy(t);
        l.current_rate_at(t)
    };
    // 50 calls at 10/s: five seconds back to the quota.
    let k = RECOVERY_CALLS / 10.0;
    assert!(at(1.0) < 10.0 && at(1.0) > 9.0);
    assert!((at(k) - 10.0).abs() < 1e-6);
    // Above the quota only by what the cap of twice the use allows, at most 20/s here.
    assert!(at(2.0 * k) > 10.0);
    assert!(at(2.5 * k) > at(2.0 * k));
}

#[test]
fn an_idle_bucket_does_not_climb_past_what_it_uses() {
    let now = Instant::now();
    let l = RateLimiter::new(limit(5.0, 100.0, 1), now);
    l.on_throttle_at(now);
    assert!(l.current_rate_at(now + Duration::from_secs(3600)) <= 5.0);
}

#[test]
fn slow_start_doubles_only_while_callers_wait() {
    let now = Instant::now();
    let l = RateLimiter::new(limit(4.0, 100.0, 1), now);
    // Nobody waits: the rate stays.
    assert_eq!(l.current_rate_at(now + Duration::from_secs(5)), 4.0);
    let later = now + Duration::from_secs(5);
    for _ in 0..4 {
        l.reserve(later);
    }
    assert_eq!(l.current_rate_at(later + SLOW_START_STEP), 8.0);
    // The ceiling holds.
    let mut t = later + SLOW_START_STEP;
    for _ in 0..20 {
        for _ in 0..200 {
            l.reserve(t);
        }
        t += SLOW_START_STEP;
    }
    assert_eq!(l.current_rate_at(t), 100.0);
}

/// Drives `calls` successful foreground calls from `workers` concurrent callers, as the
/// operator's workers make them: each takes a ticket, looks again every `RECHECK` while it waits
/// in slow start (as `acquire` does), then sends; AWS answers after `latency`, and a throttled call is sent
/// again. Virtual time; answers every answer's time since `start` and whether AWS accepted the call.
fn saturate_concurrently(
    limiter: &RateLimiter,
    quota: &mut Quota,
    start: Instant,
    calls: u32,
    workers: usize,
    latency: Duration,
) -> Vec<(Duration, bool)> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    enum Next {
        Queue,
        Check(Ticket),
        Answer(bool),
    }
    // (when, worker); what each worker does next.
    let mut events: BinaryHeap<Reverse<(Instant, usize)>> =
        (0..workers).map(|w| Reverse((start, w))).collect();
    let mut next: Vec<Next> = (0..workers).map(|_| Next::Queue).collect();
    let mut answers = Vec::new();
    let mut done = 0;
    while done < calls {
        let Reverse((now, w)) = events.pop().expect("a worker has something to do");
        let wait = match std::mem::replace(&mut next[w], Next::Queue) {
            Next::Queue => {
                let (wait, ticket) = limiter.take_ticket(now);
                Some((wait, ticket))
            }
            Next::Check(ticket) => match limiter.until_turn(ticket, now) {
                Some(wait) => Some((wait, ticket)),
                None => {
                    // Throttled meanwhile: queue again now.
                    events.push(Reverse((now, w)));
                    None
                }
            },
            Next::Answer(ok) => {
                if ok {
                    limiter.on_success_at(now);
                    done += 1;
                } else {
                    limiter.on_throttle_at(now);
                }
                answers.push((now.duration_since(start), ok));
                events.push(Reverse((now, w)));
                None
            }
        };
        if let Some((wait, ticket)) = wait {
            if wait.is_zero() {
                next[w] = Next::Answer(quota.take(now));
                events.push(Reverse((now + latency, w)));
            } else {
                next[w] = Next::Check(ticket);
                let nap = if ticket.climbing {
                    wait.min(RECHECK)
                } else {
                    wait
                };
                events.push(Reverse((now + nap, w)));
            }
        }
    }
    answers
}

/// The seconds until the last accepted call, and how many calls AWS throttled.
fn took_and_throttled(answers: &[(Duration, bool)]) -> (f64, u32) {
    let last = answers
        .iter()
        .rev()
        .find(|(_, ok)| *ok)
        .map_or(0.0, |(at, _)| at.as_secs_f64());
    let throttled = answers.iter().filter(|(_, ok)| !ok).count();
    (last, u32::try_from(throttled).expect("few calls"))
}

#[test]
fn a_burst_of_a_thousand_calls_finds_any_quota_within_five_percent_of_it() {
    // The operator's defaults: 4.5/s to start, a burst of 4, the ceiling at 100/s; AWS's side
    // grants a burst of 5, as the emulator does.
    for quota in [2.0, 5.0, 20.0, 50.0] {
        let start = Instant::now();
        let l = RateLimiter::new(limit(4.5, 100.0, 4), start);
        let mut aws = Quota::new(quota, 5.0, start);
        let calls = 1000;
        let (secs, throttled) = saturate(&l, &mut aws, start, calls);
        assert_finds_quota(
            &format!("quota {quota}/s"),
            quota,
            calls,
            secs,
            throttled,
            1.05,
        );
    }
}

/// `calls` took `secs` under `quota` with `throttled` throttled calls: within `ratio` times the
/// physical limit, and at most 3 % throttled.
fn assert_finds_quota(what: &str, quota: f64, calls: u32, secs: f64, throttled: u32, ratio: f64) {
    let took = secs / (f64::from(calls) / quota);
    let share = f64::from(throttled) / f64::from(calls + throttled);
    assert!(
        took <= ratio && share <= 0.03,
        "{what}: {calls} calls took {secs:.1} s (ratio {took:.3}), {throttled} throttled ({:.2}%)",
        share * 100.0
    );
}

#[test]
fn background_calls_take_only_free_tokens_and_never_queue() {
    let now = Instant::now();
    let l = RateLimiter::new(limit(2.0, 2.0, 1), now);
    assert_eq!(l.admit_background(now), Admission::Go);
    // No token left: background callers get successive slots instead of a queue place.
    assert_eq!(
        l.admit_background(now),
        Admission::Later(Duration::from_millis(500))
    );
    assert_eq!(
        l.admit_background(now),
        Admission::Later(Duration::from_secs(1))
    );
    assert_eq!(l.background_backlog(now), Duration::from_secs(1));
    // A foreground call is served by the next token, ahead of the deferred background callers.
    assert_eq!(l.reserve(now), Duration::from_millis(500));
    let later = now + Duration::from_millis(500);
    assert!(matches!(l.admit_background(later), Admission::Later(_)));
}

#[test]
fn zero_rate_turns_limiting_off() {
    let now = Instant::now();
    let l = RateLimiter::new(RateLimit::off(), now);
    l.on_throttle_at(now);
    assert_eq!(l.current_rate_at(now), 0.0);
    assert_eq!(l.reserve(now), Duration::ZERO);
    assert_eq!(l.admit_background(now), Admission::Go);
}

#[test]
fn each_account_region_and_operation_has_its_own_bucket() {
    let limiters = RateLimiters::new(limit(1.0, 1.0, 1));
    let now = Instant::now();
    let a = "111111111111";
    for (account, region, operation) in [
        (a, "us-east-1", "CreateCollection"),
        (a, "us-east-1", "DescribeCollection"),
        (a, "eu-west-1", "CreateCollection"),
        ("222222222222", "us-east-1", "CreateCollection"),
    ] {
        assert_eq!(
            limiters.get(account, region, operation).reserve(now),
            Duration::ZERO,
            "{account} {region} {operation}"
        );
    }
    assert_eq!(
        limiters
            .get(a, "us-east-1", "CreateCollection")
            .reserve(now),
        Duration::from_secs(1)
    );
}

#[tokio::test]
async fn a_caller_queued_before_a_throttle_takes_a_slot_at_the_lower_rate() {
    let l = Arc::new(RateLimiter::new(limit(10.0, 10.0, 1), Instant::now()));
    assert_eq!(l.acquire().await, Duration::ZERO);
    // The next caller's slot is 100 ms away at 10/s…
    let queued = {
        let l = l.clone();
        tokio::spawn(async move { l.acquire().await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    // …when AWS throttles: the rough estimate is 5/s, the rate 4.75/s, so at its old slot the
    // caller takes a new one (210 ms after the throttle) instead of sending into the throttle.
    l.on_throttle();
    let waited = queued.await.expect("caller");
    assert!(waited >= Duration::from_millis(200), "waited {waited:?}");
}

#[test]
fn many_workers_find_any_quota_within_five_percent_of_it() {
    // The operator's default of sixteen workers, and eight, each call answered 20 ms after it is
    // sent; the limiter's defaults and AWS's burst of 5 as above. Callers that queued while the
    // rate was low are served at the rate that holds when their turn comes, not at the one they
    // queued at (served at the old rate, the 50/s burst took 1.040 here with eight). Within 1.025
    // here leaves the real operator's start-up room under the benchmark's 1.05.
    for (quota, workers) in [2.0, 5.0, 20.0, 50.0]
        .into_iter()
        .flat_map(|q| [(q, 16), (q, 8)])
    {
        let start = Instant::now();
        let l = RateLimiter::new(limit(4.5, 100.0, 4), start);
        let mut aws = Quota::new(quota, 5.0, start);
        let calls = 1000;
        let answers = saturate_concurrently(
            &l,
            &mut aws,
            start,
            calls,
            workers,
            Duration::from_millis(20),
        );
        let (secs, throttled) = took_and_throttled(&answers);
        let what = format!("quota {quota}/s, {workers} workers");
        assert_finds_quota(&what, quota, calls, secs, throttled, 1.025);
    }
}

#[test]
fn once_the_quota_is_found_a_throttle_is_a_probe_at_most_every_fifty_calls() {
    // The end-to-end burst's shape: 200 creates under a 5/s quota from the operator's defaults,
    // answered 5, 20 or 50 ms after they are sent. Finding the quota costs throttles in the
    // first seconds; after that the rate climbs above the quota only once `RECOVERY_CALLS` calls
    // have gone through at it, so a throttle is a probe and costs at most one call in fifty. A
    // second estimate in the first seconds can land just past them: at 50 ms here, 2 of the
    // last 173 calls are throttled, so one in a hundred is not a bound this design keeps.
    for workers in [16, 8] {
        for latency in [5, 20, 50] {
            let start = Instant::now();
            let l = RateLimiter::new(limit(4.0, 100.0, 4), start);
            let mut aws = Quota::new(5.0, 5.0, start);
            let answers = saturate_concurrently(
                &l,
                &mut aws,
                start,
                200,
                workers,
                Duration::from_millis(latency),
            );
            let late: Vec<_> = answers
                .iter()
                .filter(|(at, _)| *at >= Duration::from_secs(5))
                .collect();
            let late_throttled = late.iter().filter(|(_, ok)| !ok).count();
            let (secs, throttled) = took_and_throttled(&answers);
            assert!(
                late_throttled as f64 <= late.len() as f64 / RECOVERY_CALLS,
                "{workers} workers, {latency} ms: after 5 s, {late_throttled} of {} calls throttled",
                late.len()
            );
            // Over 200 calls the first seconds weigh more than over a thousand: 5 %, as the
            // end-to-end test has it.
            assert!(
                secs / 40.0 <= 1.05 && throttled * 100 <= 200 * 5,
                "{workers} workers, {latency} ms: took {secs:.1} s, {throttled} throttled"
            );
        }
    }
}

#[tokio::test]
async fn a_flooding_tenant_delays_another_by_a_token_not_by_its_flood() {
    // 20/s and no burst beyond one: twelve callers of one tenant queue at once, then one of
    // another tenant arrives. Served round the waiting tenants, it is among the next two served,
    // not behind the whole flood.
    let l = Arc::new(RateLimiter::new(limit(20.0, 20.0, 1), Instant::now()));
    let served: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let call = |tenant: &'static str| {
        let (l, served) = (l.clone(), served.clone());
        tokio::spawn(async move {
            let key: Arc<str> = Arc::from(tenant);
            l.acquire_for(Some(&key)).await;
            served.lock().expect("served").push(tenant);
        })
    };
    let flood: Vec<_> = (0..12).map(|_| call("flood")).collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let other = call("other");
    other.await.expect("other");
    for caller in flood {
        caller.await.expect("flood");
    }
    let served = served.lock().expect("served").clone();
    let position = served.iter().position(|t| *t == "other").expect("served");
    assert!(
        position <= 3,
        "the other tenant was served {position}th of {}: {served:?}",
        served.len()
    );
    assert_eq!(served.len(), 13);
    assert_eq!(l.lanes(), 0, "every lane leaves with its last caller");
}

#[tokio::test]
async fn without_a_tenant_callers_are_served_in_arrival_order() {
    let l = Arc::new(RateLimiter::new(limit(50.0, 50.0, 1), Instant::now()));
    let served: Arc<Mutex<Vec<usize>>> = Arc::default();
    let mut callers = Vec::new();
    for i in 0..6 {
        let (l, served) = (l.clone(), served.clone());
        callers.push(tokio::spawn(async move {
            l.acquire_for(None).await;
            served.lock().expect("served").push(i);
        }));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for caller in callers {
        caller.await.expect("caller");
    }
    assert_eq!(*served.lock().expect("served"), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(l.lanes(), 0);
}
