//! Combines the run folders of a sharded sweep into one run folder.
//!
//! Nothing is lost: the output may not overlap any shard, it is built beside its
//! destination and renamed into place, and an incomplete set of shards is refused unless
//! the caller allows it (then the merged manifest lists what is missing).

use std::path::Path;

use crate::error::InputError;
use crate::fsio::{self, StagedDir};
use crate::manifest::{CellInfo, CellStatus, Manifest};

/// What `merge` may do beyond the safe default.
#[derive(Debug, Clone, Copy, Default)]
pub struct MergeOptions {
    /// Write a merged folder even when cells are missing or partial (listed in the manifest).
    pub allow_partial: bool,
    /// Replace an existing run folder at `out`.
    pub force: bool,
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), InputError> {
    std::fs::create_dir_all(to).map_err(|e| InputError::io(to, &e))?;
    let entries = std::fs::read_dir(from).map_err(|e| InputError::io(from, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| InputError::io(from, &e))?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if entry.file_name() == fsio::LOCK_FILE {
            continue;
        }
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).map_err(|e| InputError::io(&path, &e))?;
        }
    }
    Ok(())
}

/// Refuses a destination that holds something merge must not replace.
fn check_destination(out: &Path, force: bool) -> Result<(), InputError> {
    if !out.exists() || (out.is_dir() && fsio::is_empty_dir(out)) {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(InputError::new(out, "exists and is not a folder").field("--out"));
    }
    if !out.join("manifest.json").is_file() {
        return Err(InputError::new(
            out,
            "exists, is not empty and holds no dropscope run; choose a new folder",
        )
        .field("--out"));
    }
    if !force {
        return Err(InputError::new(
            out,
            "already holds a run folder; pass --force to replace it, or choose a new folder",
        )
        .field("--out"));
    }
    if let Some(pid) = fsio::live_lock_owner(out) {
        return Err(InputError::new(
            out,
            format!("is being written by process {pid}"),
        ));
    }
    Ok(())
}

/// Reads every shard's manifest, refusing a shard that is still being written.
fn read_shards<'a>(shards: &[&'a Path]) -> Result<Vec<(&'a Path, Manifest)>, InputError> {
    let mut out = Vec::new();
    for &dir in shards {
        if let Some(pid) = fsio::live_lock_owner(dir) {
            return Err(InputError::new(
                dir,
                format!("is still being written by process {pid}; merge it when that run ends"),
            ));
        }
        out.push((dir, Manifest::read(dir)?));
    }
    Ok(out)
}

/// Merges shard folders into `out`. The shards must come from the same scenario text;
/// a cell found in two shards is an error (the assignment is stable, so that means the
/// folders are from different sweeps). Cells keep the scenario's order.
pub fn merge(out: &Path, shards: &[&Path], opts: MergeOptions) -> Result<Manifest, InputError> {
    fsio::refuse_overlap(out, "--out", shards)?;
    check_destination(out, opts.force)?;
    let manifests = read_shards(shards)?;
    let Some((first_dir, first)) = manifests.first() else {
        return Err(InputError::new(out, "no shard folders given"));
    };
    let mut merged = first.clone();
    merged.shard = None;
    merged.wall_s = 0.0;
    let mut cells: Vec<(CellInfo, &Path)> = Vec::new();
    for (dir, m) in &manifests {
        if m.scenario.source != first.scenario.source {
            return Err(InputError::new(
                dir.join("manifest.json"),
                format!(
                    "its scenario differs from the one in {}",
                    first_dir.join("manifest.json").display()
                ),
            )
            .field("scenario.source"));
        }
        merged.wall_s += m.wall_s;
        merged.started_unix = merged.started_unix.min(m.started_unix);
        for c in &m.cells {
            if c.status == CellStatus::Pending {
                continue;
            }
            if let Some((_, other)) = cells
                .iter()
                .find(|(x, _)| x.arm == c.arm && x.seed == c.seed)
            {
                return Err(InputError::new(
                    dir.join("manifest.json"),
                    format!(
                        "cell {} seed {} is also in {}",
                        c.arm,
                        c.seed,
                        other.display()
                    ),
                )
                .field("cells"));
            }
            cells.push((c.clone(), dir));
        }
    }
    let order = |c: &CellInfo| {
        let arm = merged.arms.iter().position(|a| a.name == c.arm);
        let seed = merged.seeds.iter().position(|&s| s == c.seed);
        (arm.unwrap_or(usize::MAX), seed.unwrap_or(usize::MAX))
    };
    cells.sort_by_key(|(c, _)| order(c));
    merged.cells = cells.iter().map(|(c, _)| c.clone()).collect();
    let done = merged.completeness();
    if !done.is_complete() {
        if !opts.allow_partial {
            return Err(InputError::new(
                out,
                format!(
                    "the shards hold {} of {} cells complete ({}); merge the missing shards \
                     too, or pass --allow-partial to write what is there",
                    done.complete,
                    done.expected,
                    done.problems.join("; ")
                ),
            )
            .field("--out"));
        }
        merged.missing_cells = done.problems.clone();
    }
    let staged = StagedDir::new(out)?;
    for (c, dir) in &cells {
        let from = merged.cell_dir(dir, c);
        if from.is_dir() {
            copy_dir(&from, &merged.cell_dir(&staged.staging, c))?;
        }
    }
    merged.write(&staged.staging)?;
    staged.commit()?;
    Ok(merged)
}
