//! Digests: parse never panics; what parses is `<algorithm>:<hex>` of the algorithm's length
//! and prints back as itself.
#![no_main]
use berth_oci::Digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(d.as_str(), s);
        assert_eq!(d.hex().len(), d.algorithm().hex_len());
        assert_eq!(Digest::parse(d.as_str()).ok(), Some(d));
    }
});
