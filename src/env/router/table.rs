//! The router's table: two target groups of replica addresses, the
//! weights that split new requests between them, the test listener's
//! target, and the requests in flight per group.

use std::net::SocketAddr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::Router;
use crate::env::stats::Stats;

/// A target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }
    pub(super) fn index(self) -> usize {
        match self {
            Color::Blue => 0,
            Color::Green => 1,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }
}

#[derive(Debug, Default)]
struct Group {
    replicas: RwLock<Vec<SocketAddr>>,
    next: AtomicUsize,
}

#[derive(Debug, Default)]
pub(super) struct Table {
    groups: [Group; 2],
    stats: [Stats; 2],
    /// Percent of production requests sent to green.
    green_percent: AtomicU32,
    counter: AtomicU64,
    /// The group the test listener sends to (0 blue, 1 green).
    test_target: AtomicUsize,
    /// Requests accepted and not yet answered, per group.
    in_flight: [AtomicU64; 2],
}

/// Counts a request in flight until dropped.
pub(super) struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Table {
    /// Where a request's round robin over the group's replicas starts.
    pub(super) fn next_start(&self, color: Color) -> usize {
        self.groups[color.index()]
            .next
            .fetch_add(1, Ordering::Relaxed)
    }
}

impl Router {
    pub fn set_replicas(&self, color: Color, addrs: Vec<SocketAddr>) {
        if let Ok(mut r) = self.inner.table.groups[color.index()].replicas.write() {
            *r = addrs;
        }
        // Idle connections to replicas that left the groups are closed.
        self.inner.pool.retain(|addr| self.is_replica(addr));
    }

    /// Whether `addr` is a replica of either group.
    pub(super) fn is_replica(&self, addr: SocketAddr) -> bool {
        self.inner
            .table
            .groups
            .iter()
            .any(|g| g.replicas.read().is_ok_and(|r| r.contains(&addr)))
    }

    pub fn replicas(&self, color: Color) -> Vec<SocketAddr> {
        self.inner.table.groups[color.index()]
            .replicas
            .read()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Shifts production traffic: `percent` of new requests go to green.
    pub fn set_green_percent(&self, percent: u32) {
        self.inner
            .table
            .green_percent
            .store(percent.min(100), Ordering::SeqCst);
    }

    pub fn green_percent(&self) -> u32 {
        self.inner.table.green_percent.load(Ordering::SeqCst)
    }

    /// All production traffic to one group, at once.
    pub fn set_live(&self, color: Color) {
        self.set_green_percent(if color == Color::Green { 100 } else { 0 });
    }

    /// The group that takes all traffic, if one does.
    pub fn live(&self) -> Option<Color> {
        match self.green_percent() {
            0 => Some(Color::Blue),
            100 => Some(Color::Green),
            _ => None,
        }
    }

    pub fn set_test_target(&self, color: Color) {
        self.inner
            .table
            .test_target
            .store(color.index(), Ordering::SeqCst);
    }

    fn test_target(&self) -> Color {
        if self.inner.table.test_target.load(Ordering::SeqCst) == 1 {
            Color::Green
        } else {
            Color::Blue
        }
    }

    /// Requests to `color` accepted and not yet answered: a group is
    /// drained (safe to stop) when traffic has moved away and this is 0.
    pub fn in_flight(&self, color: Color) -> u64 {
        self.inner.table.in_flight[color.index()].load(Ordering::SeqCst)
    }

    pub fn stats(&self, color: Color) -> &Stats {
        &self.inner.table.stats[color.index()]
    }

    fn pick(&self) -> Color {
        let n = self.inner.table.counter.fetch_add(1, Ordering::Relaxed) % 100;
        if n < u64::from(self.green_percent()) {
            Color::Green
        } else {
            Color::Blue
        }
    }

    /// Chooses a group for a request and counts it in flight there. The
    /// count is taken before the weights are read again, and a group that
    /// lost its traffic in between is not used: a drain that saw the
    /// traffic gone and then 0 in flight can stop the group safely.
    pub(super) fn route(&self, test: bool) -> (Color, InFlight<'_>) {
        loop {
            let color = if test {
                self.test_target()
            } else {
                self.pick()
            };
            let count = &self.inner.table.in_flight[color.index()];
            count.fetch_add(1, Ordering::SeqCst);
            let still = if test {
                self.test_target() == color
            } else {
                let green = self.green_percent();
                match color {
                    Color::Green => green > 0,
                    Color::Blue => green < 100,
                }
            };
            if still {
                return (color, InFlight(count));
            }
            count.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
