//! Redirect-binding messages (SAMLRequest/SAMLResponse, RelayState, SigAlg, Signature) as
//! the SLS receives them in its query string, and the bounded inflate on its own.
#![no_main]

use entree_bridge::saml::redirect;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(inflated) = redirect::inflate_bounded(data, 64 * 1024) {
        assert!(inflated.len() <= 64 * 1024);
    }
    let Ok(query) = std::str::from_utf8(data) else { return };
    let trust = &*common::TRUST;
    let _ = redirect::receive(query, std::slice::from_ref(&trust.cert), false);
});
