//! A run folder as the analysis reads it: the manifest and every finished cell's trace.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::InputError;
use crate::import;
use crate::manifest::{CellStatus, Manifest};
use crate::scenario::ScenarioFile;
use crate::trace::Trace;

/// Traces keyed by (arm, seed).
pub type Traces = BTreeMap<(String, u64), Trace>;

/// Reads `dir/manifest.json` and the trace of every cell that ran (completed, diverged, or
/// killed half-way: a partial trace is still evidence).
pub fn load(dir: &Path) -> Result<(Manifest, Traces), InputError> {
    let manifest = Manifest::read(dir)?;
    // The scenario text travels in the manifest: it says how each arm logged.
    let arms = ScenarioFile::parse(
        Path::new(&manifest.scenario.path),
        &manifest.scenario.source,
    )
    .map(|f| f.arms)
    .unwrap_or_default();
    let mut traces = BTreeMap::new();
    for c in &manifest.cells {
        if c.status == CellStatus::Pending {
            continue;
        }
        let cell_dir = dir.join(&c.dir);
        if !cell_dir.join("trace.csv").is_file() {
            if c.status == CellStatus::Failed {
                continue;
            }
            return Err(InputError::new(
                cell_dir.join("trace.csv"),
                format!("missing, but the manifest lists the cell as {:?}", c.status),
            ));
        }
        let mut t = import::read_trace_dir(&cell_dir)?;
        t.name = format!("{} seed {}", c.arm, c.seed);
        t.log_mode = arms
            .iter()
            .find(|a| a.name == c.arm)
            .map(|a| a.config.train.log);
        traces.insert((c.arm.clone(), c.seed), t);
    }
    Ok((manifest, traces))
}
