//! Repository names, tags and references as a `/v2` path carries them: parse never panics,
//! and what parses prints back as itself and parses again to the same.
#![no_main]
use berth_oci::{Reference, RepositoryName, Tag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(name) = RepositoryName::parse(s) {
        assert_eq!(name.as_str(), s);
        assert!(RepositoryName::parse(name.as_str()).is_ok());
    }
    if let Ok(tag) = Tag::parse(s) {
        assert_eq!(tag.as_str(), s);
    }
    if let Ok(reference) = Reference::parse(s) {
        assert_eq!(Reference::parse(&reference.to_string()).ok(), Some(reference));
    }
});
