//! The standard `process_*` metrics, read from `/proc/self` at each scrape (Linux; elsewhere
//! they are left out).

use crate::exposition::{Encoder, Kind};

pub(crate) fn encode(enc: &mut Encoder, start_time_seconds: f64) {
    enc.header("process_start_time_seconds", "Start time of the process since the Unix epoch.", Kind::Gauge);
    enc.sample("process_start_time_seconds", "", &[], &[], None, start_time_seconds);
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { return };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of stat(5), rss 24; `rest` starts at field 3.
    if let (Some(utime), Some(stime)) = (num(11), num(12)) {
        enc.header("process_cpu_seconds", "Total user and system CPU time spent in seconds.", Kind::Counter);
        enc.sample("process_cpu_seconds", "_total", &[], &[], None, (utime + stime) / CLOCK_TICKS);
    }
    if let Some(rss) = num(21) {
        enc.header("process_resident_memory_bytes", "Resident memory size in bytes.", Kind::Gauge);
        enc.sample("process_resident_memory_bytes", "", &[], &[], None, rss * PAGE_SIZE);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        enc.header("process_open_fds", "Number of open file descriptors.", Kind::Gauge);
        enc.sample("process_open_fds", "", &[], &[], None, fds.count() as u64);
    }
}

/// Clock ticks per second as `times(2)` counts them, and the page size: 100 and 4096 on the
/// Linux platforms we build for. Constants rather than `sysconf` keep this crate free of
/// dependencies.
const CLOCK_TICKS: f64 = 100.0;
const PAGE_SIZE: f64 = 4096.0;
