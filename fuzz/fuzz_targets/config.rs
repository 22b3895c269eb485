//! Config text as `check-config` and a reload read it (paths resolve in an empty folder).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static BASE: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("tempdir"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = entree_bridge::config::load_text(text, None, BASE.path());
});
