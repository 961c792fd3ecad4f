#![no_main]

use std::path::Path;

use dropscope::import::{self, Format, ImportOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = Path::new("fuzz-input");
    // Detection must not panic either, whatever it decides.
    let _ = import::detect_format(name, data);
    let _ = import::parse_bytes(Format::Csv, name, data, &ImportOptions::default());
    let _ = import::csv::parse_val(name, data);
});
