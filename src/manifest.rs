//! `manifest.json`: what a run folder holds and how it was made.
//!
//! Written before the first cell and rewritten after each one, so a run that
//! is killed half-way still says which cells finished.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::InputError;

pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub dropscope_version: String,
    pub burn_version: String,
    pub scenario: ScenarioInfo,
    pub device: String,
    pub seeds: Vec<u64>,
    /// The varied factors' dotted paths, in order.
    pub factors: Vec<String>,
    pub arms: Vec<ArmInfo>,
    pub cells: Vec<CellInfo>,
    /// `[I, N]` when this folder holds shard I of N.
    #[serde(default)]
    pub shard: Option<[usize; 2]>,
    /// Seconds since the Unix epoch.
    pub started_unix: u64,
    pub wall_s: f64,
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
    pub steps: u64,
    pub epochs: u64,
    pub diverged_at_step: Option<u64>,
    pub wall_s: f64,
    #[serde(default)]
    pub error: Option<String>,
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Manifest, InputError> {
        let p = dir.join("manifest.json");
        let text = std::fs::read_to_string(&p).map_err(|e| InputError::io(&p, &e))?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| InputError::new(&p, e.to_string()).at_line(e.line() as u64))?;
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
        let tmp = dir.join("manifest.json.tmp");
        let text =
            serde_json::to_string_pretty(self).map_err(|e| InputError::new(&p, e.to_string()))?;
        std::fs::write(&tmp, text + "\n").map_err(|e| InputError::io(&tmp, &e))?;
        std::fs::rename(&tmp, &p).map_err(|e| InputError::io(&p, &e))
    }

    pub fn arm(&self, name: &str) -> Option<&ArmInfo> {
        self.arms.iter().find(|a| a.name == name)
    }
}
