//! A SAML Response as raw XML through the whole validation the ACS runs.
#![no_main]

use entree_bridge::saml::response::{validate, Report};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else { return };
    let trust = &*common::TRUST;
    let _ = validate(xml, &common::expectations(trust), &mut Report::recording());
});
