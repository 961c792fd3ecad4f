//! Asserting on a training log from a pipeline's own code: read the log, analyse it,
//! check rules, fail loudly. The same calls work inside a `#[test]`.
//!
//! `cargo run --example pipeline_check -- path/to/train_log.csv`

use std::process::ExitCode;

use dropscope::attribute::{AnalyzeOptions, analyze_trace};
use dropscope::check::{CheckReport, check_trace};
use dropscope::import::{ImportOptions, read_trace};
use dropscope::scenario::ExpectRules;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: pipeline_check LOG");
        return ExitCode::from(2);
    };
    let log = match read_trace(path.as_ref(), &ImportOptions::default()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let analysis = analyze_trace(&log.trace, &AnalyzeOptions::default());
    let rules = ExpectRules {
        not_causes: vec!["unexplained".into(), "running_mean_artifact".into()],
        no_divergence: true,
        ..ExpectRules::default()
    };
    let mut report = CheckReport::new("pipeline_check");
    check_trace(&rules, &analysis, &path, &mut report);
    println!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
