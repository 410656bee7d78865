//! The value types: lock-free where they are touched on every request.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::exposition::{Encoder, Kind};

/// A value type that a [`crate::Family`] can hold and write.
pub trait Value: Send + Sync + 'static {
    const KIND: Kind;
    fn encode(&self, enc: &mut Encoder, name: &str, labels: &[&str], values: &[String]);
}

/// Slots per value: each thread adds to its own (cache-line apart), so that the request path's
/// counters do not bounce a cache line between cores on every request; reads sum the slots.
const SHARDS: usize = 8;

/// This thread's slot.
fn shard() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static SLOT: usize = (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % SHARDS;
    }
    SLOT.with(|s| *s)
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct PaddedU64(AtomicU64);

#[derive(Debug, Default)]
#[repr(align(64))]
struct PaddedI64(AtomicI64);

#[derive(Debug, Default)]
pub struct Counter([PaddedU64; SHARDS]);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0[shard()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

impl Value for Counter {
    const KIND: Kind = Kind::Counter;
    fn encode(&self, enc: &mut Encoder, name: &str, labels: &[&str], values: &[String]) {
        enc.sample(name, "_total", labels, values, None, self.get());
    }
}

/// A gauge moved up and down by different threads (a request may end on another thread than
/// it began): the slots' sum is its value.
#[derive(Debug, Default)]
pub struct Gauge([PaddedI64; SHARDS]);

impl Gauge {
    pub fn inc(&self) {
        self.0[shard()].0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0[shard()].0.fetch_sub(1, Ordering::Relaxed);
    }

    /// For gauges only ever set (not moved), which is how they are used.
    pub fn set(&self, v: i64) {
        self.0[0].0.store(v, Ordering::Relaxed);
        for s in &self.0[1..] {
            s.0.store(0, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> i64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

impl Value for Gauge {
    const KIND: Kind = Kind::Gauge;
    fn encode(&self, enc: &mut Encoder, name: &str, labels: &[&str], values: &[String]) {
        enc.sample(name, "", labels, values, None, self.get());
    }
}

/// A float held in an `AtomicU64`, added to with compare-and-swap.
#[derive(Debug, Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn add(&self, v: f64) {
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(current) + v).to_bits();
            match self.0.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// One thread slot of a histogram: its buckets and sum, on cache lines of their own.
#[derive(Debug)]
#[repr(align(64))]
struct HistogramShard {
    /// One per bound, then the `+Inf` bucket.
    counts: Box<[AtomicU64]>,
    sum: AtomicF64,
}

/// Observations counted into fixed buckets (each counter holds its own bucket only; the
/// cumulative counts are summed when written).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    shards: Box<[HistogramShard]>,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        let shards = (0..SHARDS)
            .map(|_| HistogramShard {
                counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                sum: AtomicF64::default(),
            })
            .collect();
        Histogram { bounds, shards }
    }

    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        let shard = &self.shards[shard()];
        shard.counts[i].fetch_add(1, Ordering::Relaxed);
        shard.sum.add(v);
    }

    /// Observations so far, per bucket (not cumulative).
    fn bucket_counts(&self) -> Vec<u64> {
        (0..=self.bounds.len()).map(|i| self.shards.iter().map(|s| s.counts[i].load(Ordering::Relaxed)).sum()).collect()
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.bucket_counts().iter().sum()
    }

    pub fn sum(&self) -> f64 {
        self.shards.iter().map(|s| s.sum.get()).sum()
    }
}

impl Value for Histogram {
    const KIND: Kind = Kind::Histogram;
    fn encode(&self, enc: &mut Encoder, name: &str, labels: &[&str], values: &[String]) {
        let mut cumulative = 0u64;
        for (i, c) in self.bucket_counts().iter().enumerate() {
            cumulative += c;
            let le = match self.bounds.get(i) {
                Some(b) => format_bound(*b),
                None => "+Inf".to_string(),
            };
            enc.sample(name, "_bucket", labels, values, Some(("le", &le)), cumulative);
        }
        enc.sample(name, "_sum", labels, values, None, self.sum());
        enc.sample(name, "_count", labels, values, None, cumulative);
    }
}

/// Bounds written as floats (`1024.0`), as OpenMetrics asks of `le`.
fn format_bound(b: f64) -> String {
    if b.fract() == 0.0 { format!("{b:.1}") } else { format!("{b}") }
}

/// A summary as Go's client keeps Harbor's: the 0.5, 0.9 and 0.99 quantiles of the
/// observations of the last ten minutes, and the sum and count of all.
///
/// The quantiles are exact over a window of the most recent [`Summary::WINDOW_LEN`]
/// observations no older than [`Summary::MAX_AGE`], rather than Go's streaming estimate: simpler,
/// and exact where traffic is light; under heavy traffic the window is the latest few seconds.
#[derive(Debug, Default)]
pub struct Summary {
    recent: Mutex<VecDeque<(Instant, f64)>>,
    count: AtomicU64,
    sum: AtomicF64,
}

impl Summary {
    pub const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];
    pub const MAX_AGE: Duration = Duration::from_secs(600);
    pub const WINDOW_LEN: usize = 1024;

    pub fn observe(&self, v: f64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.add(v);
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == Self::WINDOW_LEN {
                recent.pop_front();
            }
            recent.push_back((Instant::now(), v));
        }
    }

    /// The quantiles of the window, `NaN` where it is empty.
    pub fn quantiles(&self) -> [f64; 3] {
        let mut window: Vec<f64> = match self.recent.lock() {
            Ok(mut recent) => {
                let now = Instant::now();
                while recent.front().is_some_and(|(at, _)| now.duration_since(*at) > Self::MAX_AGE) {
                    recent.pop_front();
                }
                recent.iter().map(|(_, v)| *v).collect()
            }
            Err(_) => Vec::new(),
        };
        window.sort_by(f64::total_cmp);
        Self::QUANTILES.map(|q| {
            if window.is_empty() {
                return f64::NAN;
            }
            let rank = ((q * window.len() as f64).ceil() as usize).clamp(1, window.len());
            window[rank - 1]
        })
    }
}

impl Value for Summary {
    const KIND: Kind = Kind::Summary;
    fn encode(&self, enc: &mut Encoder, name: &str, labels: &[&str], values: &[String]) {
        for (q, v) in Self::QUANTILES.iter().zip(self.quantiles()) {
            enc.sample(name, "", labels, values, Some(("quantile", &q.to_string())), v);
        }
        enc.sample(name, "_sum", labels, values, None, self.sum.get());
        enc.sample(name, "_count", labels, values, None, self.count.load(Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_bounds_inclusive() {
        static BOUNDS: &[f64] = &[1.0, 2.5];
        let h = Histogram::new(BOUNDS);
        for v in [0.5, 1.0, 2.0, 3.0] {
            h.observe(v);
        }
        let mut e = Encoder::new(crate::Format::Text);
        h.encode(&mut e, "h", &[], &[]);
        assert_eq!(
            e.finish(),
            "h_bucket{le=\"1.0\"} 2\nh_bucket{le=\"2.5\"} 3\nh_bucket{le=\"+Inf\"} 4\nh_sum 6.5\nh_count 4\n"
        );
    }

    #[test]
    fn summary_quantiles_by_rank() {
        let s = Summary::default();
        assert!(s.quantiles()[0].is_nan());
        for v in 1..=100 {
            s.observe(f64::from(v));
        }
        assert_eq!(s.quantiles(), [50.0, 90.0, 99.0]);
        for _ in 0..Summary::WINDOW_LEN {
            s.observe(7.0);
        }
        assert_eq!(s.quantiles(), [7.0, 7.0, 7.0]);
        assert_eq!(s.count.load(Ordering::Relaxed), 100 + Summary::WINDOW_LEN as u64);
    }
}
