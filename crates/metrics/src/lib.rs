//! Prometheus metrics: the value types, labelled families, and their exposition in the classic
//! text format (0.0.4) and in OpenMetrics 1.0.
//!
//! Our own rather than `prometheus-client`: that crate writes only OpenMetrics and has no
//! summary type, while Harbor's core request duration is a summary (its dashboards read the
//! `quantile` label) and the classic text format is what Harbor serves to every scraper.
//! What is here is small: atomics, a map per family, and a writer.

mod exposition;
mod family;
mod names;
mod process;
mod value;

pub use exposition::{Encoder, Format, Kind};
pub use family::Family;
pub use names::{Metrics, metrics};
pub use value::{Counter, Gauge, Histogram, Summary};

/// Duration buckets in seconds (Prometheus' defaults, as Distribution uses them).
pub const DURATION_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Size buckets in bytes: 1 KiB to 16 GiB by powers of four.
pub const SIZE_BUCKETS: &[f64] = &[
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
    17179869184.0,
];
