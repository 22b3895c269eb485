//! Link import files: Magister's export (each code column) and the plain CSV.
#![no_main]

use entree_bridge::identity::import::{parse, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [
        Format::Magister { code_column: 0 },
        Format::Magister { code_column: 1 },
        Format::Magister { code_column: 2 },
        Format::Csv,
    ] {
        let _ = parse(data, format);
    }
});
