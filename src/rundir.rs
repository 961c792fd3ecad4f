//! A run folder as the analysis reads it: the manifest and every finished cell's trace.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::InputError;
use crate::fsio;
use crate::import;
use crate::manifest::{CellStatus, Completeness, Manifest};
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
        let cell_dir = manifest.cell_dir(dir, c);
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

/// [`load`], plus what is missing or partial: the manifest's own account, then each
/// finished cell's trace checked against the step count the manifest gives (a trace cut
/// short on disk is partial whatever the manifest says).
pub fn load_checked(dir: &Path) -> Result<(Manifest, Traces, Completeness), InputError> {
    let (manifest, traces) = load(dir)?;
    let mut done = manifest.completeness();
    for c in &manifest.cells {
        let finished = matches!(c.status, CellStatus::Completed | CellStatus::Diverged);
        let on_disk = traces
            .get(&(c.arm.clone(), c.seed))
            .map_or(0, |t| t.steps.len() as u64);
        if finished && on_disk < c.steps {
            done.complete = done.complete.saturating_sub(1);
            done.problems.push(format!(
                "{}/seed-{}: trace.csv has {on_disk} of the {} steps the manifest lists",
                c.arm, c.seed, c.steps
            ));
        }
    }
    Ok((manifest, traces, done))
}

/// What `run` found in its output folder.
#[derive(Debug)]
pub struct Prepared {
    /// Held until the run ends: a second writer is refused meanwhile.
    pub lock: fsio::DirLock,
    /// The manifest of an unfinished run of the same scenario, whose finished cells are kept.
    pub resume: Option<Manifest>,
}

/// What identifies a run: the scenario's name (the same scenario may be edited and run
/// again into its folder), and the text, device and shard that must all match to resume.
pub struct RunIdentity<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub device: &'a str,
    pub shard: Option<[usize; 2]>,
}

/// Makes `out` ready for a run: created fresh, or a run of the same scenario (by name),
/// resumed when it was left unfinished with the same text, device and shard, and redone
/// otherwise; another scenario's run is replaced only with `force`, and then only what
/// dropscope wrote there is removed. A folder that holds other files is refused: the run
/// would write over them.
pub fn prepare_out(out: &Path, id: &RunIdentity<'_>, force: bool) -> Result<Prepared, InputError> {
    if out.exists() && !out.is_dir() {
        return Err(InputError::new(out, "exists and is not a folder").field("--out"));
    }
    std::fs::create_dir_all(out).map_err(|e| InputError::io(out, &e))?;
    let lock = fsio::DirLock::acquire(out)?;
    if !out.join("manifest.json").exists() {
        if !fsio::is_empty_dir(out) {
            return Err(InputError::new(
                out,
                "is not empty and holds no dropscope run (no manifest.json); choose a new or empty folder",
            )
            .field("--out"));
        }
        return Ok(Prepared { lock, resume: None });
    }
    let old = match Manifest::read(out) {
        Ok(m) => m,
        Err(_) if force => {
            remove_run_files(out, None);
            return Ok(Prepared { lock, resume: None });
        }
        Err(e) => {
            return Err(InputError::new(
                out,
                format!("holds a manifest.json dropscope cannot read ({e}); pass --force to replace the run"),
            )
            .field("--out"));
        }
    };
    if old.scenario.name != id.name && !force {
        return Err(InputError::new(
            out,
            format!(
                "holds a run of another scenario ('{}', not '{}'); pass --force to replace it, \
                 or choose another --out",
                old.scenario.name, id.name
            ),
        )
        .field("--out"));
    }
    let same_run =
        old.scenario.source == id.source && old.device == id.device && old.shard == id.shard;
    if same_run && !force && !old.completeness().is_complete() {
        return Ok(Prepared {
            lock,
            resume: Some(old),
        });
    }
    remove_run_files(out, Some(&old));
    Ok(Prepared { lock, resume: None })
}

/// Removes what a run wrote in `out` (manifest, report, each cell's trace and validation
/// files, then the cell and arm folders if that left them empty), and nothing else.
fn remove_run_files(out: &Path, old: Option<&Manifest>) {
    let _ = std::fs::remove_file(out.join("manifest.json"));
    let _ = std::fs::remove_dir_all(out.join("report"));
    for c in old.map(|m| m.cells.as_slice()).unwrap_or_default() {
        let Some(dir) = fsio::inside(out, &c.dir) else {
            continue;
        };
        for f in ["trace.csv", "val.csv"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        // remove_dir only removes empty folders: a user's file keeps its folder.
        let _ = std::fs::remove_dir(&dir);
        if let Some(arm) = dir.parent().filter(|p| *p != out) {
            let _ = std::fs::remove_dir(arm);
        }
    }
}

/// True when a cell of an earlier run can be kept: it finished, and its trace on disk has
/// every step the manifest lists.
pub fn finished_on_disk(run: &Path, m: &Manifest, c: &crate::manifest::CellInfo) -> bool {
    let done = matches!(c.status, CellStatus::Completed | CellStatus::Diverged);
    let rows = std::fs::read(m.cell_dir(run, c).join("trace.csv"))
        .map(|b| b.iter().filter(|&&x| x == b'\n').count().saturating_sub(1) as u64)
        .unwrap_or(0);
    done && rows == c.steps
}

/// When `path` is a cell folder of a run folder and that run is unfinished: a note that
/// says so first ("incomplete run: ..."), so an analysis of a killed cell is not taken for
/// the finished one.
pub fn cell_note(path: &Path) -> Option<String> {
    if !path.join("trace.csv").is_file() {
        return None;
    }
    let target = fsio::resolve(path);
    for run in target.ancestors().skip(1).take(3) {
        if !run.join("manifest.json").is_file() {
            continue;
        }
        let m = Manifest::read(run).ok()?;
        let c = m
            .cells
            .iter()
            .find(|c| fsio::resolve(&m.cell_dir(run, c)) == target)?;
        let done = m.completeness();
        let finished = matches!(c.status, CellStatus::Completed | CellStatus::Diverged);
        if finished && done.is_complete() {
            return None;
        }
        let status = match c.status {
            CellStatus::Running => "stopped (killed or still running)",
            CellStatus::Pending => "not started",
            CellStatus::Failed => "failed",
            CellStatus::Completed => "complete",
            CellStatus::Diverged => "diverged",
        };
        let planned = if c.planned_steps > 0 {
            format!(" of {}", c.planned_steps)
        } else {
            String::new()
        };
        return Some(format!(
            "incomplete run: {} of {} cells complete; this cell ({}/seed-{}) is {status} after {} steps{planned}",
            done.complete, done.expected, c.arm, c.seed, c.steps
        ));
    }
    None
}
