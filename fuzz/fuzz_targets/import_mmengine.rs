#![no_main]

//! One of the per-format targets that follow the registry in src/import/mod.rs
//! (a unit test there checks that every registered format has one).

use dropscope::import::{self, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    import::fuzz(Format::MmEngine, data);
});
