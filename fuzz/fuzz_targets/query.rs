//! Harbor's `q` and `sort` language: never a panic, whatever the text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (q, sort) = s.split_once('\n').unwrap_or((s, ""));
    let _ = berth_core::query::parse(Some(q), Some(sort));
    let _ = berth_core::query::parse(Some(s), None);
});
