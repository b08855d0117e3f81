//! Request statistics per target group over a sliding window: requests,
//! 5xx responses and latency (a log-bucket histogram, so p99 costs no
//! allocation and no sort). One bucket per second, 120 seconds kept.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const SLOTS: usize = 120;
/// Latency buckets: bucket `i` holds latencies under `2^(i/2)` × 50 µs.
const BUCKETS: usize = 48;

#[derive(Debug, Clone, Copy)]
struct Slot {
    second: u64,
    requests: u64,
    errors: u64,
    hist: [u32; BUCKETS],
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            second: 0,
            requests: 0,
            errors: 0,
            hist: [0; BUCKETS],
        }
    }
}

#[derive(Debug)]
pub struct Stats {
    epoch: Instant,
    slots: Mutex<Vec<Slot>>,
}

/// A window's figures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Window {
    pub requests: u64,
    pub errors_5xx: u64,
    /// Requests per second over the window.
    pub rps: f64,
    /// Percent of requests answered 5xx (0–100).
    pub error_rate: f64,
    pub p99: Duration,
}

fn bucket_of(d: Duration) -> usize {
    let units = d.as_micros() as f64 / 50.0;
    if units <= 1.0 {
        return 0;
    }
    ((units.log2() * 2.0).ceil() as usize).min(BUCKETS - 1)
}

fn bucket_upper(i: usize) -> Duration {
    Duration::from_secs_f64(50e-6 * 2f64.powf(i as f64 / 2.0))
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            epoch: Instant::now(),
            slots: Mutex::new(vec![Slot::default(); SLOTS]),
        }
    }
}

impl Stats {
    pub fn record(&self, status: u16, latency: Duration) {
        let sec = self.epoch.elapsed().as_secs();
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        let s = &mut slots[(sec as usize) % SLOTS];
        if s.second != sec {
            *s = Slot {
                second: sec,
                ..Slot::default()
            };
        }
        s.requests += 1;
        if status >= 500 {
            s.errors += 1;
        }
        s.hist[bucket_of(latency)] += 1;
    }

    /// The last `window` (at most 120 s), not counting the current second
    /// unless `window` is shorter than 2 s.
    pub fn window(&self, window: Duration) -> Window {
        let now = self.epoch.elapsed().as_secs();
        let n = window.as_secs().clamp(1, SLOTS as u64 - 1);
        let Ok(slots) = self.slots.lock() else {
            return Window::default();
        };
        let mut w = Window::default();
        let mut hist = [0u64; BUCKETS];
        for s in slots.iter() {
            if s.requests > 0 && s.second + n >= now && s.second <= now {
                w.requests += s.requests;
                w.errors_5xx += s.errors;
                for (h, c) in hist.iter_mut().zip(s.hist.iter()) {
                    *h += u64::from(*c);
                }
            }
        }
        if w.requests > 0 {
            w.rps = w.requests as f64 / (n + 1) as f64;
            w.error_rate = 100.0 * w.errors_5xx as f64 / w.requests as f64;
            let target = (w.requests as f64 * 0.99).ceil() as u64;
            let mut seen = 0;
            for (i, c) in hist.iter().enumerate() {
                seen += c;
                if seen >= target {
                    w.p99 = bucket_upper(i);
                    break;
                }
            }
        }
        w
    }
}

/// The alarms every kind of environment defines (`alarm_5xx_percent`,
/// `alarm_p99_ms` over `alarm_window_seconds`): the one that fires over
/// `w` for environment `name`, in words, if any. Fewer than 5 requests
/// say nothing (one 500 is not a 100% error rate).
pub fn alarm(
    name: &str,
    w: &Window,
    max_error_rate: Option<f64>,
    max_p99: Option<Duration>,
    window: Duration,
) -> Option<String> {
    if w.requests < 5 {
        return None;
    }
    if let Some(max) = max_error_rate
        && w.error_rate > max
    {
        return Some(format!(
            "alarm {name}-5xx-rate: {:.1}% of {} requests answered 5xx over {} s (threshold {max}%)",
            w.error_rate,
            w.requests,
            window.as_secs()
        ));
    }
    if let Some(max) = max_p99
        && w.p99 > max
    {
        return Some(format!(
            "alarm {name}-p99-latency: p99 {} ms over {} s (threshold {} ms)",
            w.p99.as_millis(),
            window.as_secs(),
            max.as_millis()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_errors_and_estimates_p99_within_a_bucket() {
        let s = Stats::default();
        for _ in 0..990 {
            s.record(200, Duration::from_micros(300));
        }
        for _ in 0..10 {
            s.record(503, Duration::from_millis(40));
        }
        let w = s.window(Duration::from_secs(10));
        assert_eq!(w.requests, 1000);
        assert_eq!(w.errors_5xx, 10);
        assert!((w.error_rate - 1.0).abs() < 1e-9);
        // 99% of requests took ≤ 300 µs: p99 is that bucket's upper bound.
        assert!(
            w.p99 >= Duration::from_micros(300) && w.p99 < Duration::from_micros(430),
            "{:?}",
            w.p99
        );
        s.record(200, Duration::from_secs(2));
        // One slow outlier in 1001 does not move p99 to 2 s.
        assert!(s.window(Duration::from_secs(10)).p99 < Duration::from_millis(60));
    }
}
