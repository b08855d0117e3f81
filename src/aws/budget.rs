//! One request budget per account and region, shared by every pipeline and
//! every caller (the poller, the screens' reads, the CLI): a token bucket,
//! and exponential backoff with jitter after a `ThrottlingException`.
//! CodePipeline publishes no per-operation limits, so the default rate is
//! conservative; CloudTrail's LookupEvents gets its own 2 calls/s bucket.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
    /// No call before this (set by throttling).
    paused_until: Option<Instant>,
    /// The next backoff's ceiling.
    backoff: Duration,
    calls: u64,
    throttled: u64,
    seed: u64,
}

/// A token bucket with throttling backoff.
#[derive(Debug)]
pub struct Budget {
    per_second: f64,
    burst: f64,
    state: Mutex<State>,
}

pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Budget {
    /// `per_second` calls on average, `burst` at once.
    pub fn new(per_second: f64, burst: f64) -> Budget {
        Budget {
            per_second: per_second.max(0.01),
            burst: burst.max(1.0),
            state: Mutex::new(State {
                tokens: burst.max(1.0),
                last: Instant::now(),
                paused_until: None,
                backoff: MIN_BACKOFF,
                calls: 0,
                throttled: 0,
                seed: (uuid::Uuid::new_v4().as_u128() as u64) | 1,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Waits until a call may be made, and counts it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
                s.tokens = (s.tokens + elapsed * self.per_second).min(self.burst);
                s.last = now;
                match s.paused_until {
                    Some(until) if until > now => until - now,
                    _ if s.tokens >= 1.0 => {
                        s.tokens -= 1.0;
                        s.calls += 1;
                        return;
                    }
                    _ => Duration::from_secs_f64((1.0 - s.tokens) / self.per_second),
                }
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// AWS said slow down: pause every caller for a jittered backoff
    /// (half to all of the current ceiling), and double the ceiling.
    /// Returns the pause.
    pub fn throttled(&self) -> Duration {
        let mut s = self.lock();
        s.throttled += 1;
        // xorshift64 for the jitter.
        let mut x = s.seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.seed = x;
        let ceiling = s.backoff.as_secs_f64();
        let frac = 0.5 + (x % 1000) as f64 / 2000.0;
        let pause = Duration::from_secs_f64(ceiling * frac);
        s.paused_until = Some(Instant::now() + pause);
        s.backoff = (s.backoff * 2).min(MAX_BACKOFF);
        s.tokens = 0.0;
        pause
    }

    /// A call went through: the backoff ceiling decays back.
    pub fn succeeded(&self) {
        let mut s = self.lock();
        if s.backoff > MIN_BACKOFF {
            s.backoff = (s.backoff / 2).max(MIN_BACKOFF);
        }
    }

    /// Updates are slowed: the last throttling's backoff is still high.
    pub fn slowed(&self) -> bool {
        self.lock().backoff > MIN_BACKOFF
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Throttling answers so far.
    pub fn throttles(&self) -> u64 {
        self.lock().throttled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_bucket_spaces_calls_and_throttling_pauses_them() {
        let b = Budget::new(2.0, 2.0);
        let t0 = Instant::now();
        for _ in 0..6 {
            b.acquire().await;
        }
        // 2 at once, then 4 more at 2/s.
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(1900), "{took:?}");
        assert!(took <= Duration::from_millis(2100), "{took:?}");
        let p1 = b.throttled();
        assert!(p1 >= MIN_BACKOFF / 2 && p1 <= MIN_BACKOFF, "{p1:?}");
        let p2 = b.throttled();
        assert!(p2 >= MIN_BACKOFF && p2 <= MIN_BACKOFF * 2, "{p2:?}");
        assert!(b.slowed());
        let t1 = Instant::now();
        b.acquire().await;
        assert!(t1.elapsed() >= p2, "waits out the pause");
        b.succeeded();
        b.succeeded();
        assert!(!b.slowed(), "recovers");
        assert_eq!(b.calls(), 7);
        assert_eq!(b.throttles(), 2);
    }
}
