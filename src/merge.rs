//! Combines the run folders of a sharded sweep into one run folder.

use std::path::Path;

use crate::error::InputError;
use crate::manifest::{CellInfo, CellStatus, Manifest};

fn copy_dir(from: &Path, to: &Path) -> Result<(), InputError> {
    std::fs::create_dir_all(to).map_err(|e| InputError::io(to, &e))?;
    let entries = std::fs::read_dir(from).map_err(|e| InputError::io(from, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| InputError::io(from, &e))?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).map_err(|e| InputError::io(&path, &e))?;
        }
    }
    Ok(())
}

/// Merges shard folders into `out`. The shards must come from the same scenario text;
/// a cell found in two shards is an error (the assignment is stable, so that means the
/// folders are from different sweeps). Cells keep the scenario's order.
pub fn merge(out: &Path, shards: &[&Path]) -> Result<Manifest, InputError> {
    let mut manifests = Vec::new();
    for dir in shards {
        manifests.push((dir, Manifest::read(dir)?));
    }
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
        let arm = merged
            .arms
            .iter()
            .position(|a| a.name == c.arm)
            .unwrap_or(usize::MAX);
        let seed = merged
            .seeds
            .iter()
            .position(|&s| s == c.seed)
            .unwrap_or(usize::MAX);
        (arm, seed)
    };
    cells.sort_by_key(|(c, _)| order(c));
    std::fs::create_dir_all(out).map_err(|e| InputError::io(out, &e))?;
    for (c, dir) in &cells {
        copy_dir(&dir.join(&c.dir), &out.join(&c.dir))?;
    }
    merged.cells = cells.into_iter().map(|(c, _)| c).collect();
    merged.write(out)?;
    Ok(merged)
}
