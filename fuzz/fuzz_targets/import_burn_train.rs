#![no_main]

//! The input is cut at 0xFF bytes into metric files laid out as burn-train
//! writes them, so the fuzzer explores both the line format and the assembly
//! of epochs, splits and metrics.

use std::path::{Path, PathBuf};

use dropscope::import::ImportOptions;
use dropscope::import::burn_train::{self, MetricLog, Split};
use libfuzzer_sys::fuzz_target;

const SLOTS: [(Split, u64, &str); 8] = [
    (Split::Train, 1, "Loss"),
    (Split::Train, 1, "Learning_Rate"),
    (Split::Valid, 1, "Loss"),
    (Split::Valid, 1, "Accuracy"),
    (Split::Train, 2, "Loss"),
    (Split::Train, 10, "Loss"),
    (Split::Train, 10, "Learning_Rate"),
    (Split::Valid, 3, "Loss"),
];

fuzz_target!(|data: &[u8]| {
    let logs: Vec<MetricLog> = data
        .split(|&b| b == 0xFF)
        .zip(SLOTS)
        .map(|(bytes, (split, epoch, metric))| MetricLog {
            split,
            epoch,
            metric: metric.to_string(),
            path: PathBuf::from(format!("{metric}-{epoch}.log")),
            bytes: bytes.to_vec(),
        })
        .collect();
    let _ = burn_train::from_logs(Path::new("fuzz-artifact"), &logs, &ImportOptions::default());
});
