//! `manifest.json`: what a run folder holds and how it was made.
//!
//! Written before the first cell and rewritten after each one, so a run that
//! is killed half-way still says which cells finished.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::fsio;

/// How much of a run folder is there: complete cells out of the expected ones, and a line
/// per cell that is missing, partial or failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completeness {
    pub expected: usize,
    pub complete: usize,
    pub problems: Vec<String>,
}

impl Completeness {
    pub fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }

    /// "incomplete run: 4 of 6 cells complete (a/seed-2: missing; ...)", or None.
    pub fn headline(&self) -> Option<String> {
        (!self.is_complete()).then(|| {
            format!(
                "incomplete run: {} of {} cells complete ({})",
                self.complete,
                self.expected,
                self.problems.join("; ")
            )
        })
    }
}

pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub dropscope_version: String,
    pub burn_version: String,
    pub scenario: ScenarioInfo,
    pub device: String,
    /// What the device really ran on (absent in manifests of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<Adapter>,
    pub seeds: Vec<u64>,
    /// The varied factors' dotted paths, in order.
    pub factors: Vec<String>,
    pub arms: Vec<ArmInfo>,
    pub cells: Vec<CellInfo>,
    /// `[I, N]` when this folder holds shard I of N.
    #[serde(default)]
    pub shard: Option<[usize; 2]>,
    /// Cells of the scenario that this folder lacks, when `merge --allow-partial` combined
    /// an incomplete set of shards (`arm/seed-N`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_cells: Vec<String>,
    /// Seconds since the Unix epoch.
    pub started_unix: u64,
    pub wall_s: f64,
}

/// The hardware behind a device: its name as the driver reports it, and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adapter {
    pub name: String,
    pub kind: AdapterKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdapterKind {
    /// A graphics card.
    Gpu,
    /// A wgpu adapter with no card behind it: a software rasterizer running on the CPU.
    SoftwareGpu,
    /// A CPU backend (flex, ndarray).
    Cpu,
}

impl Adapter {
    /// A warning when the device is not what its name promises: `wgpu`/`gpu` on a software
    /// adapter.
    pub fn warning(&self) -> Option<String> {
        (self.kind == AdapterKind::SoftwareGpu).then(|| {
            format!(
                "--device wgpu found no GPU and runs on '{}', a software adapter on the CPU: \
                 expect it to be many times slower than --device cpu",
                self.name
            )
        })
    }
}

impl std::fmt::Display for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            AdapterKind::Gpu => "GPU",
            AdapterKind::SoftwareGpu => "software adapter on the CPU",
            AdapterKind::Cpu => "CPU",
        };
        write!(f, "{} ({kind})", self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    pub path: String,
    /// The scenario file's full text, so a run folder can be re-analysed (and rerun) alone.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmInfo {
    pub name: String,
    pub factors: BTreeMap<String, serde_json::Value>,
    pub is_control: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    Pending,
    Running,
    Completed,
    /// The loss became NaN or infinite; the trace holds it and stops after that epoch.
    Diverged,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellInfo {
    pub arm: String,
    pub seed: u64,
    /// Relative to the run folder.
    pub dir: String,
    pub status: CellStatus,
    /// Steps written to the cell's trace so far (updated after every epoch).
    pub steps: u64,
    pub epochs: u64,
    /// Steps the cell would train if it ran to the end (0 in manifests of older versions).
    #[serde(default)]
    pub planned_steps: u64,
    pub diverged_at_step: Option<u64>,
    pub wall_s: f64,
    #[serde(default)]
    pub error: Option<String>,
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Manifest, InputError> {
        let p = dir.join("manifest.json");
        if !p.exists() {
            return Err(InputError::new(
                dir,
                if dir.is_dir() {
                    "is not a run folder (no manifest.json): expected a folder written by \
                     `dropscope run` or `merge`; to explain a training log, use `dropscope investigate`"
                } else {
                    "no such run folder"
                },
            ));
        }
        let text = std::fs::read_to_string(&p).map_err(|e| InputError::io(&p, &e))?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| InputError::new(&p, e.to_string()).at_line(e.line() as u64))?;
        for (k, c) in m.cells.iter().enumerate() {
            if fsio::inside(dir, &c.dir).is_none() {
                return Err(InputError::new(
                    &p,
                    format!(
                        "cell folder '{}' must be a relative path inside the run folder",
                        c.dir
                    ),
                )
                .field(format!("cells[{k}].dir")));
            }
        }
        if m.schema_version > MANIFEST_SCHEMA_VERSION {
            return Err(InputError::new(
                &p,
                format!(
                    "schema_version {} is newer than this dropscope understands ({})",
                    m.schema_version, MANIFEST_SCHEMA_VERSION
                ),
            )
            .field("schema_version"));
        }
        Ok(m)
    }

    /// Writes atomically (temp file + rename) so a reader never sees half a manifest.
    pub fn write(&self, dir: &Path) -> Result<(), InputError> {
        let p = dir.join("manifest.json");
        let text =
            serde_json::to_string_pretty(self).map_err(|e| InputError::new(&p, e.to_string()))?;
        fsio::write_atomic(&p, (text + "\n").as_bytes())
    }

    /// The folder of one cell; [`Manifest::read`] has checked that it stays inside `run`.
    pub fn cell_dir(&self, run: &Path, cell: &CellInfo) -> PathBuf {
        fsio::inside(run, &cell.dir).unwrap_or_else(|| run.join("invalid-cell-dir"))
    }

    /// The cells this folder should hold: every arm × seed of the scenario, or those of
    /// its shard (`run --shard I/N` gives the k-th cell to shard k mod N).
    pub fn expected_cells(&self) -> Vec<(String, u64)> {
        let all = self
            .arms
            .iter()
            .flat_map(|a| self.seeds.iter().map(move |&s| (a.name.clone(), s)));
        all.enumerate()
            .filter(|(k, _)| self.shard.is_none_or(|[i, n]| n == 0 || k % n == i))
            .map(|(_, c)| c)
            .collect()
    }

    /// Which expected cells are complete and what is wrong with the others, from the
    /// manifest alone (see `rundir::load_checked` for the comparison with the disk).
    pub fn completeness(&self) -> Completeness {
        let expected = self.expected_cells();
        let mut out = Completeness {
            expected: expected.len(),
            ..Completeness::default()
        };
        for (arm, seed) in &expected {
            let name = format!("{arm}/seed-{seed}");
            match self.cells.iter().find(|c| &c.arm == arm && c.seed == *seed) {
                None => out.problems.push(format!("{name}: missing")),
                Some(c) => match c.status {
                    CellStatus::Completed | CellStatus::Diverged => out.complete += 1,
                    CellStatus::Failed => out.problems.push(format!(
                        "{name}: failed ({})",
                        c.error.as_deref().unwrap_or("no message")
                    )),
                    CellStatus::Running | CellStatus::Pending => out.problems.push(format!(
                        "{name}: {} after {}{} steps (killed or still running)",
                        if c.status == CellStatus::Running {
                            "stopped"
                        } else {
                            "not started"
                        },
                        c.steps,
                        if c.planned_steps > 0 {
                            format!(" of {}", c.planned_steps)
                        } else {
                            String::new()
                        }
                    )),
                },
            }
        }
        out
    }

    pub fn arm(&self, name: &str) -> Option<&ArmInfo> {
        self.arms.iter().find(|a| a.name == name)
    }
}
