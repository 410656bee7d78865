//! A configuration file, read as `berth serve` reads one (serde-saphyr, then figment over the
//! defaults), and the checks the start makes of it: an error, never a panic.
#![no_main]
use berth::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::from_yaml(text) else { return };
    let _ = config.http.limits();
    let _ = config.login.throttle();
    let _ = config.metrics.check();
    let _ = config.maintenance.settings(&config.jobs, &config.gc);
    let _ = config.maintenance.cron();
    let _ = config.trace.url();
    // Not the keys that name files to read (`*_file`): a fuzzer's `/dev/zero` would read on;
    // nor `audit.settings()`, which starts the syslog forwarder (a task of the runtime).
});
