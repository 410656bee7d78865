//! Go build information searched in any bytes (an executable a user pushed): the search and
//! the reading of what it finds never panic, and a blob it accepts names a Go release.
#![no_main]
use berth_scan::{gobinary, langpkg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(info)) = gobinary::find(data) {
        assert!(info.go_version.starts_with("go"));
        let _ = langpkg::parse_go_binary(&info.kept_text());
    }
});
