//! Manifests and indexes with any content type: validation never panics, and a manifest it
//! accepts names only children it could parse.
#![no_main]
use berth_oci::manifest;
use libfuzzer_sys::fuzz_target;

const TYPES: [Option<&str>; 6] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    Some("application/json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let content_type = TYPES[selector as usize % TYPES.len()];
    if let Ok(parsed) = manifest::parse(bytes, content_type) {
        for child in &parsed.children {
            assert!(berth_oci::Digest::parse(child.digest.as_str()).is_ok());
        }
    }
});
