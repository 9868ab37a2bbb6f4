//! Per-target limits on delivery: a rate limit shared by every replica (a token bucket
//! in Redis) and a circuit breaker (per replica).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::bus;
use crate::config::{BreakerConfig, RateConfig};
use crate::observability::metrics::{Metrics, TargetLabels};

/// Takes up to `ARGV[3]` tokens from the bucket at `KEYS[1]`, refilled at `ARGV[1]`
/// per second up to `ARGV[2]`, by Redis's clock (one clock for every replica).
/// Returns `{taken, ms until a token is due (when none was taken)}`.
static TAKE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
end
local taken = math.max(0, math.min(want, math.floor(tokens)))
tokens = tokens - taken
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
local wait = 0
if taken == 0 then
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
return {taken, wait}
",
    )
});

/// Puts `ARGV[1]` unused tokens back into the bucket at `KEYS[1]` (up to `ARGV[2]`, the
/// burst): a replica keeps no tokens of its own, so the bucket alone bounds a burst.
static GIVE_BACK: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local tokens = tonumber(redis.call('HGET', KEYS[1], 't'))
if tokens == nil then return 0 end
tokens = math.min(tonumber(ARGV[2]), tokens + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 't', tostring(tokens))
return 1
",
    )
});

/// The rate limit of one target: `rate.per_second` deliveries, across all replicas.
#[derive(Debug)]
pub struct RateLimiter {
    key: String,
    per_second: f64,
    burst: u32,
    metrics: Arc<Metrics>,
    labels: TargetLabels,
}

impl RateLimiter {
    pub fn new(
        key: String,
        config: &RateConfig,
        metrics: Arc<Metrics>,
        labels: TargetLabels,
    ) -> Self {
        RateLimiter {
            key,
            per_second: config.per_second,
            burst: config.burst(),
            metrics,
            labels,
        }
    }

    /// Returns tokens taken but not used (fewer entries were read than allowed). Best
    /// effort: tokens lost to a Redis error only slow the target down for a moment.
    pub async fn give_back(&self, n: u32, conn: &mut ConnectionManager) {
        if n > 0 {
            let _ = bus::within(
                GIVE_BACK
                    .key(&self.key)
                    .arg(n)
                    .arg(self.burst)
                    .invoke_async::<i64>(conn),
            )
            .await;
        }
    }

    /// Waits until at least one delivery may go, then returns how many of `want` (>= 1)
    /// may go now. `None` on shutdown.
    pub async fn acquire(
        &self,
        want: u32,
        conn: &mut ConnectionManager,
        shutdown: &CancellationToken,
    ) -> Option<u32> {
        let mut failing = false;
        loop {
            if shutdown.is_cancelled() {
                return None;
            }
            let wait = match bus::within(
                TAKE.key(&self.key)
                    .arg(self.per_second)
                    .arg(self.burst)
                    .arg(want.min(self.burst))
                    .invoke_async::<(u32, u64)>(conn),
            )
            .await
            {
                Ok((taken, _)) if taken > 0 => return Some(taken),
                Ok((_, wait_ms)) => {
                    failing = false;
                    self.metrics.rate_limited(&self.labels);
                    Duration::from_millis(wait_ms.clamp(1, 1000))
                }
                Err(e) => {
                    // Without Redis nothing can be delivered anyway (nor acknowledged).
                    if !failing {
                        warn!(bucket = %self.key, error = %e, "rate limit unavailable; waiting");
                    }
                    failing = true;
                    Duration::from_millis(500)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return None,
            }
        }
    }
}

/// Whether a delivery may go now.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    /// Go; `probe`: this is the one trial delivery of a half-open breaker.
    Go { probe: bool },
    /// Paused: ask again after this long.
    Wait(Duration),
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// `probing`: since when the probe is in flight.
    HalfOpen {
        probing: Option<Instant>,
    },
}

/// What an attempt told about the target's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// It answered (2xx, or a 4xx about this event): the target is up.
    Up,
    /// Timeout, connection error, 408, 429, 5xx.
    Down,
}

/// The circuit breaker of one target, per replica: after `failures` consecutive
/// retryable failures the target is paused for `cooldown` (its events wait in Redis,
/// unread), then one probe delivery decides whether it resumes or pauses again.
#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    cooldown: Duration,
    /// A probe that has not reported after this long (its entry was malformed, its
    /// task ended early) is given up and another one may go.
    probe_timeout: Duration,
    state: Mutex<State>,
    metrics: Arc<Metrics>,
    labels: TargetLabels,
}

/// How often a paused dispatcher looks at a breaker whose probe is in flight.
const PROBE_POLL: Duration = Duration::from_millis(50);

impl Breaker {
    /// `attempt_timeout`: the target's timeout (how long a probe may take).
    pub fn new(
        config: &BreakerConfig,
        attempt_timeout: Duration,
        metrics: Arc<Metrics>,
        labels: TargetLabels,
    ) -> Self {
        metrics.breaker_state(&labels, 0);
        Breaker {
            failures: config.failures,
            cooldown: config.cooldown,
            probe_timeout: attempt_timeout + Duration::from_secs(5),
            state: Mutex::new(State::Closed { failures: 0 }),
            metrics,
            labels,
        }
    }

    fn set(&self, state: &mut State, new: State) {
        let code = match new {
            State::Closed { .. } => 0,
            State::Open { .. } => 1,
            State::HalfOpen { .. } => 2,
        };
        *state = new;
        self.metrics.breaker_state(&self.labels, code);
    }

    /// Whether a delivery may start now.
    pub fn gate(&self) -> Gate {
        let mut state = self.state.lock().expect("never poisoned");
        match *state {
            State::Closed { .. } => Gate::Go { probe: false },
            State::Open { until } => {
                let now = Instant::now();
                if until > now {
                    Gate::Wait(until - now)
                } else {
                    info!(bus = %self.labels.bus, rule = %self.labels.rule, target = %self.labels.target, "breaker half-open: probing the target");
                    self.set(
                        &mut state,
                        State::HalfOpen {
                            probing: Some(Instant::now()),
                        },
                    );
                    Gate::Go { probe: true }
                }
            }
            State::HalfOpen {
                probing: Some(since),
            } if since.elapsed() < self.probe_timeout => Gate::Wait(PROBE_POLL),
            State::HalfOpen { .. } => {
                *state = State::HalfOpen {
                    probing: Some(Instant::now()),
                };
                Gate::Go { probe: true }
            }
        }
    }

    /// The probe slot was not used (nothing to deliver, or an attempt that says
    /// nothing about the target).
    pub fn probe_unused(&self) {
        let mut state = self.state.lock().expect("never poisoned");
        if let State::HalfOpen { .. } = *state {
            *state = State::HalfOpen { probing: None };
        }
    }

    /// Records the outcome of an attempt.
    pub fn record(&self, health: Health) {
        let mut state = self.state.lock().expect("never poisoned");
        match (*state, health) {
            (State::Closed { failures }, Health::Down) => {
                let failures = failures + 1;
                if failures >= self.failures {
                    warn!(bus = %self.labels.bus, rule = %self.labels.rule, target = %self.labels.target, failures, cooldown = ?self.cooldown, "breaker open: pausing the target");
                    self.open(&mut state);
                } else {
                    *state = State::Closed { failures };
                }
            }
            (State::Closed { .. }, Health::Up) => *state = State::Closed { failures: 0 },
            (State::HalfOpen { .. }, Health::Up) => {
                info!(bus = %self.labels.bus, rule = %self.labels.rule, target = %self.labels.target, "breaker closed: the target answered");
                self.set(&mut state, State::Closed { failures: 0 });
            }
            (State::HalfOpen { .. }, Health::Down) => {
                warn!(bus = %self.labels.bus, rule = %self.labels.rule, target = %self.labels.target, "probe failed: pausing the target again");
                self.open(&mut state);
            }
            // Attempts started before it opened: they change nothing.
            (State::Open { .. }, _) => {}
        }
    }

    fn open(&self, state: &mut State) {
        self.set(
            state,
            State::Open {
                until: Instant::now() + self.cooldown,
            },
        );
    }
}

/// A target that answered `410 Gone`: the CloudEvents webhook spec's "stop sending".
/// It is paused on every replica (a key in Redis, read when a dispatcher starts and set
/// by the first replica that sees the 410; the others see their own 410 or the key at
/// their next start) until an operator resumes it (`POST
/// /api/v1/targets/{bus}/{rule}/{target}/resume` deletes the key). Its events stay in
/// Redis: the one answered 410 is retried later, the others wait unread.
#[derive(Debug)]
pub struct Gone {
    key: String,
    conn: ConnectionManager,
    paused: std::sync::atomic::AtomicBool,
    metrics: Arc<Metrics>,
    labels: TargetLabels,
}

/// How often a paused dispatcher looks whether its target was resumed.
pub const GONE_POLL: Duration = Duration::from_secs(1);

impl Gone {
    pub fn new(
        key: String,
        conn: ConnectionManager,
        metrics: Arc<Metrics>,
        labels: TargetLabels,
    ) -> Gone {
        metrics.target_gone(&labels, false);
        Gone {
            key,
            conn,
            paused: false.into(),
            metrics,
            labels,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set(&self, paused: bool) {
        self.paused
            .store(paused, std::sync::atomic::Ordering::Relaxed);
        self.metrics.target_gone(&self.labels, paused);
    }

    /// While paused: waits [`GONE_POLL`] and reads the key again; false on shutdown.
    pub async fn wait_resumed(&self, shutdown: &CancellationToken) -> bool {
        while self.is_paused() {
            tokio::select! {
                _ = tokio::time::sleep(GONE_POLL) => {}
                _ = shutdown.cancelled() => return false,
            }
            self.refresh().await;
        }
        true
    }

    /// Reads the key (at start, and while paused): whether the target is paused.
    pub async fn refresh(&self) -> bool {
        let mut conn = self.conn.clone();
        let exists: Result<bool, _> =
            crate::bus::within(redis::cmd("EXISTS").arg(&self.key).query_async(&mut conn)).await;
        match exists {
            Ok(paused) => {
                if paused != self.is_paused() {
                    if paused {
                        warn!(bus = %self.labels.bus, rule = %self.labels.rule, target = %self.labels.target, "target is paused: it answered 410 Gone");
                    } else {
                        info!(bus = %self.labels.bus, rule = %self.labels.rule, target = %self.labels.target, "target resumed");
                    }
                }
                self.set(paused);
                paused
            }
            // Unknown: keep what we knew.
            Err(_) => self.is_paused(),
        }
    }

    /// The target answered 410: pause it here and for every replica.
    pub async fn mark(&self, event_id: &str) {
        let mut conn = self.conn.clone();
        warn!(bus = %self.labels.bus, rule = %self.labels.rule, target = %self.labels.target, event_id, "target answered 410 Gone: paused until resumed through the API");
        self.set(true);
        let since = serde_json::json!({
            "since_ms": crate::observability::trace::now_ms(),
            "event": event_id,
        })
        .to_string();
        let written: Result<(), _> = crate::bus::within(
            redis::cmd("SET")
                .arg(&self.key)
                .arg(since)
                .arg("NX")
                .query_async(&mut conn),
        )
        .await;
        if let Err(e) = written {
            warn!(key = %self.key, error = %e, "recording the pause failed; other replicas pause on their own 410");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, cooldown_ms: u64) -> Breaker {
        Breaker::new(
            &BreakerConfig {
                failures,
                cooldown: Duration::from_millis(cooldown_ms),
            },
            Duration::from_secs(1),
            Arc::new(Metrics::new()),
            TargetLabels {
                bus: "b".into(),
                rule: "r".into(),
                target: "t".into(),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_probes_after_cooldown() {
        let b = breaker(3, 1000);
        b.record(Health::Down);
        b.record(Health::Down);
        b.record(Health::Up); // not consecutive
        b.record(Health::Down);
        b.record(Health::Down);
        assert_eq!(b.gate(), Gate::Go { probe: false });
        b.record(Health::Down);
        assert_eq!(b.gate(), Gate::Wait(Duration::from_millis(1000)));
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert_eq!(b.gate(), Gate::Go { probe: true });
        // One probe at a time.
        assert_eq!(b.gate(), Gate::Wait(PROBE_POLL));
        b.record(Health::Down);
        assert!(matches!(b.gate(), Gate::Wait(d) if d == Duration::from_millis(1000)));
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert_eq!(b.gate(), Gate::Go { probe: true });
        b.probe_unused();
        assert_eq!(b.gate(), Gate::Go { probe: true });
        b.record(Health::Up);
        assert_eq!(b.gate(), Gate::Go { probe: false });
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_never_reports_is_given_up() {
        let b = breaker(1, 1000);
        b.record(Health::Down);
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert_eq!(b.gate(), Gate::Go { probe: true });
        // Its entry turned out malformed: no outcome is ever recorded.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.gate(), Gate::Wait(PROBE_POLL));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.gate(), Gate::Go { probe: true });
    }
}
