//! `Range` against any blob size, and `Content-Range`: never a panic, and a partial range
//! always lies inside the blob.
#![no_main]
use berth_oci::range::{RangeRequest, parse_content_range, parse_range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let size = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
    let Ok(header) = std::str::from_utf8(&data[8..]) else { return };
    if let RangeRequest::Partial(r) = parse_range(header, size) {
        assert!(r.start <= r.end && r.end < size, "{header:?} on {size}: {r:?}");
    }
    if let Some(r) = parse_content_range(header) {
        assert!(r.start <= r.end);
    }
});
