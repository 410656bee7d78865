//! What the core integration tests share: the Redis they run against and key prefixes that keep
//! them apart.

pub fn redis_url() -> Option<String> {
    match std::env::var("BERTH_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("BERTH_E2E_REQUIRED").is_none(),
                "BERTH_TEST_REDIS_URL is not set and BERTH_E2E_REQUIRED is set"
            );
            eprintln!("SKIPPED: BERTH_TEST_REDIS_URL is not set (scripts/start-test-services gives one)");
            None
        }
    }
}

pub fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("berth-test:{}:{nanos}:", std::process::id())
}
