//! Image layers as anyone with push access can write them (gzip, zstd or plain tar of any
//! content): the analysis and the inventory of what it kept (package databases, language
//! lockfiles, Go build information) never panic, and whatever the inventory lists carries a
//! name and a version.
#![no_main]
use berth_scan::inventory::inventory;
use berth_scan::layers::{read_layer, stack};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(files) = read_layer(data) else { return };
    if let Ok(found) = inventory(&stack(&[files])) {
        for installed in &found.packages {
            assert!(!installed.package.name.is_empty() && !installed.package.version.is_empty());
        }
    }
});
