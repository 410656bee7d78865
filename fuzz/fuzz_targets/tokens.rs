//! Bearer tokens as a client sends them: verification never panics, and nothing but a token
//! this issuer signed verifies.
#![no_main]
use std::sync::LazyLock;

use berth_auth::token::TokenIssuer;
use libfuzzer_sys::fuzz_target;

static ISSUER: LazyLock<TokenIssuer> = LazyLock::new(|| {
    let pem = berth_auth::token::generate_key_pem().unwrap_or_default();
    TokenIssuer::from_pem(&pem, std::time::Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"))
});

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    assert!(ISSUER.verify(s).is_err(), "an input the fuzzer made verified: {s:?}");
});
