//! The HTTP-POST binding's `SAMLResponse` value (base64) decoded and validated.
#![no_main]

use entree_bridge::saml::response::{decode_post_binding, validate, Report};
use entree_bridge::saml::xml::XmlLimits;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    let Ok(xml) = decode_post_binding(value, XmlLimits::default()) else {
        return;
    };
    let trust = &*common::TRUST;
    let _ = validate(&xml, &common::expectations(trust), &mut Report::disabled());
});
