//! Scenario files: what to train, what to vary, which seeds, what to expect.
//!
//! A scenario is TOML. Every table rejects unknown fields, and every value is
//! checked before any training, so a typo costs a second, not a run. Errors
//! name the file, the line and the dotted field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::trace::LogMode;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Defaults to the file's stem.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// One cell per arm and seed.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub data: DataSpec,
    #[serde(default)]
    pub model: ModelSpec,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(default)]
    pub vary: Vec<VarySpec>,
    #[serde(default)]
    pub expect: Option<ExpectSpec>,
}

fn default_seeds() -> Vec<u64> {
    vec![1]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// Gaussian classes around random centres: a learnable signal of settable difficulty.
    #[default]
    Clusters,
    /// The UCI 8×8 handwritten digits (1797 × 64, 10 classes), shipped inside smartcore.
    Digits,
    /// A user's file: numeric feature columns and an integer label column.
    Csv,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSpec {
    pub source: DataSource,
    /// Number of examples before the validation split (digits: at most 1797).
    pub samples: usize,
    /// Input width (clusters only; digits have 64, a CSV has what it has).
    pub features: usize,
    pub classes: usize,
    /// Distance between class centres in units of the within-class spread; lower is harder.
    pub separation: f64,
    /// Fraction of training labels replaced by another class: random, training-set-specific
    /// information that a model can only memorize.
    pub label_noise: f64,
    pub validation_fraction: f64,
    /// Draw a fresh training set (same distribution, fresh label noise) every epoch, so no
    /// example is ever seen twice: the control for memorization (clusters only).
    pub fresh_each_epoch: bool,
    /// Fixes the data across cells; by default each cell seed draws its own data.
    pub seed: Option<u64>,
    /// Fixes which labels are flipped; by default derived from the cell seed.
    pub label_noise_seed: Option<u64>,
    /// CSV source: the file, relative to the scenario file.
    pub path: Option<PathBuf>,
    pub label_column: String,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            source: DataSource::Clusters,
            samples: 2000,
            features: 32,
            classes: 10,
            separation: 2.0,
            label_noise: 0.0,
            validation_fraction: 0.2,
            fresh_each_epoch: false,
            seed: None,
            label_noise_seed: None,
            path: None,
            label_column: "label".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ActivationKind {
    #[default]
    Relu,
    Gelu,
    Tanh,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    /// Widths of the hidden linear layers.
    pub hidden: Vec<usize>,
    pub activation: ActivationKind,
    /// Batch norm after each hidden linear layer.
    pub batch_norm: bool,
    pub dropout: f64,
    /// Fixes the initial weights; by default derived from the cell seed.
    pub init_seed: Option<u64>,
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            hidden: vec![128],
            activation: ActivationKind::Relu,
            batch_norm: false,
            dropout: 0.0,
            init_seed: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Shuffle {
    /// A fresh permutation each epoch.
    #[default]
    EveryEpoch,
    /// One permutation, reused every epoch.
    Once,
    /// The data's own order.
    None,
    /// All of class 0, then class 1, ...: the worst data order.
    SortedByClass,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BatchNormMode {
    /// Batch statistics during training (the usual).
    #[default]
    Train,
    /// Frozen: running statistics, as in evaluation.
    Eval,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    #[default]
    Sgd,
    Adam,
    Adamw,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerSpec {
    pub kind: OptimizerKind,
    /// SGD only.
    pub momentum: f64,
    /// SGD only.
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Adam/AdamW only.
    pub beta1: f64,
    /// Adam/AdamW only.
    pub beta2: f64,
    /// Throw the optimizer state away every this many epochs (a known cause of jumps).
    pub reset_every_epochs: Option<u64>,
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            reset_every_epochs: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    #[default]
    Constant,
    /// Multiply by `gamma` every `step_every` units, or at each of `milestones`.
    Step,
    /// One cosine from `base` to `min_lr` over the whole run.
    Cosine,
    /// SGDR: cosine over `period` units, then jump back to `base` (period grows by `period_mult`).
    CosineRestarts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleUnit {
    /// The schedule is a function of the optimizer step.
    #[default]
    Step,
    /// The schedule is a function of the epoch: the LR is constant within an epoch.
    Epoch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrSpec {
    pub base: f64,
    pub schedule: ScheduleKind,
    /// What `step_every`, `milestones`, `period` and `warmup` count.
    pub per: ScheduleUnit,
    pub step_every: Option<u64>,
    pub milestones: Vec<u64>,
    pub gamma: f64,
    pub period: Option<u64>,
    pub period_mult: f64,
    pub min_lr: f64,
    /// Linear warm-up from 0 to `base` over this many units, then the schedule.
    pub warmup: u64,
}

impl Default for LrSpec {
    fn default() -> Self {
        LrSpec {
            base: 0.05,
            schedule: ScheduleKind::Constant,
            per: ScheduleUnit::Step,
            step_every: None,
            milestones: Vec::new(),
            gamma: 0.1,
            period: None,
            period_mult: 1.0,
            min_lr: 0.0,
            warmup: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSpec {
    pub epochs: u64,
    pub batch_size: usize,
    pub drop_last: bool,
    pub shuffle: Shuffle,
    /// Fixes the shuffling; by default derived from the cell seed.
    pub shuffle_seed: Option<u64>,
    pub log: LogMode,
    pub batch_norm_mode: BatchNormMode,
    pub optimizer: OptimizerSpec,
    pub lr: LrSpec,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            epochs: 10,
            batch_size: 64,
            drop_last: false,
            shuffle: Shuffle::EveryEpoch,
            shuffle_seed: None,
            log: LogMode::PerStep,
            batch_norm_mode: BatchNormMode::Train,
            optimizer: OptimizerSpec::default(),
            lr: LrSpec::default(),
        }
    }
}

/// One varied factor: a dotted path into the scenario and the values it takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VarySpec {
    pub path: String,
    pub levels: Vec<toml::Value>,
    /// Which level is the control (no planted cause); defaults to the first.
    #[serde(default)]
    pub control: Option<toml::Value>,
}

/// What a run must show; `dropscope check` enforces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ExpectSpec {
    /// Rules for every arm (`[expect.all]`).
    pub all: ExpectRules,
    /// Rules for one arm, by arm name (`[expect.arm.NAME]`), on top of those for every arm.
    pub arm: BTreeMap<String, ExpectRules>,
}

impl ExpectSpec {
    /// The rules that hold for one arm: those for every arm, then the arm's own.
    pub fn rules_for(&self, arm: &str) -> Vec<&ExpectRules> {
        std::iter::once(&self.all)
            .chain(self.arm.get(arm))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpectRules {
    /// Causes that must be named (see `attribute::Cause`).
    pub causes: Vec<String>,
    /// Causes that must not be named.
    pub not_causes: Vec<String>,
    pub max_unexplained_drops: Option<usize>,
    /// Significant drops are allowed only at these event types.
    pub drops_only_at: Option<Vec<String>>,
    pub max_final_val_loss: Option<f64>,
    pub max_best_val_loss: Option<f64>,
    /// No overfitting verdict starting before this epoch.
    pub no_overfitting_before_epoch: Option<u64>,
    /// A loss that turns NaN or infinite fails the check; on by default, since a diverged
    /// run that passes its other expectations is still broken (set false to allow it).
    pub no_divergence: bool,
}

impl Default for ExpectRules {
    fn default() -> Self {
        ExpectRules {
            causes: Vec::new(),
            not_causes: Vec::new(),
            max_unexplained_drops: None,
            drops_only_at: None,
            max_final_val_loss: None,
            max_best_val_loss: None,
            no_overfitting_before_epoch: None,
            no_divergence: true,
        }
    }
}

/// A scenario with every vary level applied: what one arm trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// A file-system-safe name, used as the arm's folder.
    pub name: String,
    /// The factor values of this arm, by dotted path.
    pub factors: BTreeMap<String, toml::Value>,
    /// True when every factor is at its control level.
    pub is_control: bool,
    pub config: Scenario,
}

/// A parsed, validated scenario file.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    pub path: PathBuf,
    pub source: String,
    pub scenario: Scenario,
    pub arms: Vec<Arm>,
}

impl ScenarioFile {
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let source = std::fs::read_to_string(path).map_err(|e| InputError::io(path, &e))?;
        Self::parse(path, &source)
    }

    /// Parses and validates `source` as if read from `path` (used for error messages
    /// and to resolve a CSV data path).
    pub fn parse(path: &Path, source: &str) -> Result<Self, InputError> {
        let raw: toml::Value = toml::from_str(source).map_err(|e| toml_error(path, source, &e))?;
        if raw.as_table().is_some_and(|t| t.is_empty()) {
            return Err(InputError::new(
                path,
                "the scenario is empty: nothing says what to train (start from a bundled one: \
                 `dropscope scenario show epoch-memorization`)",
            )
            .at_line(1));
        }
        let mut scenario: Scenario =
            toml::from_str(source).map_err(|e| toml_error(path, source, &e))?;
        if scenario.name.is_empty() {
            scenario.name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into());
        }
        let base_dir = path.parent().unwrap_or(Path::new("."));
        resolve_data_path(&mut scenario, base_dir);
        validate(&scenario, path, source, None)?;
        let arms = expand(&scenario, &raw, path, source, base_dir)?;
        validate_expect(&scenario, path, source)?;
        let expect_arms: Vec<&String> = scenario
            .expect
            .as_ref()
            .map(|e| e.arm.keys().collect())
            .unwrap_or_default();
        for name in expect_arms {
            if !arms.iter().any(|a| &a.name == name) {
                let known: Vec<&str> = arms.iter().map(|a| a.name.as_str()).collect();
                return Err(located(path, source, &format!("expect.arm.{name}"))
                    .field(format!("expect.arm.{name}"))
                    .message_with(format!(
                        "no arm is named '{name}' (arms: {})",
                        known.join(", ")
                    )));
            }
        }
        Ok(ScenarioFile {
            path: path.to_path_buf(),
            source: source.to_string(),
            scenario,
            arms,
        })
    }

    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for (arm_index, arm) in self.arms.iter().enumerate() {
            for &seed in &self.scenario.seeds {
                cells.push(Cell {
                    arm_index,
                    arm: arm.name.clone(),
                    seed,
                });
            }
        }
        cells
    }
}

/// One training run: an arm and a seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub arm_index: usize,
    pub arm: String,
    pub seed: u64,
}

impl Cell {
    /// The cell's folder inside a run directory.
    pub fn rel_dir(&self) -> PathBuf {
        PathBuf::from(&self.arm).join(format!("seed-{}", self.seed))
    }
}

trait WithMessage {
    fn message_with(self, m: String) -> Self;
}

impl WithMessage for InputError {
    fn message_with(mut self, m: String) -> Self {
        self.message = m;
        self
    }
}

fn resolve_data_path(s: &mut Scenario, base_dir: &Path) {
    if let Some(p) = &s.data.path
        && p.is_relative()
    {
        s.data.path = Some(base_dir.join(p));
    }
}

fn line_of_offset(source: &str, offset: usize) -> u64 {
    source[..offset.min(source.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count() as u64
        + 1
}

/// serde's messages name Rust types ("expected u64"); a scenario's author thinks in TOML.
fn plain_types(message: &str) -> String {
    const NAMES: [(&str, &str); 10] = [
        ("expected u64", "expected a whole number >= 0"),
        ("expected usize", "expected a whole number >= 0"),
        ("expected u32", "expected a whole number >= 0"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a sequence", "expected a list such as [1, 2]"),
        ("expected a boolean", "expected true or false"),
        ("expected a borrowed string", "expected a string in quotes"),
        ("invalid type: ", ""),
    ];
    NAMES
        .iter()
        .fold(message.to_string(), |m, (from, to)| m.replace(from, to))
}

fn toml_error(path: &Path, source: &str, e: &toml::de::Error) -> InputError {
    let mut err = InputError::new(path, plain_types(e.message().trim()));
    if let Some(span) = e.span() {
        let line = line_of_offset(source, span.start);
        err = err.at_line(line);
        if let Some(key) = key_on_line(source, line) {
            err = err.field(key);
        }
    }
    err
}

/// The full dotted key defined on `line` (1-based), taking table headers into account.
fn key_on_line(source: &str, line: u64) -> Option<String> {
    let mut table = String::new();
    for (i, text) in source.lines().enumerate() {
        let t = text.trim();
        if let Some(h) = header(t) {
            table = h;
            if i as u64 + 1 == line {
                return Some(table.clone());
            }
            continue;
        }
        if i as u64 + 1 == line {
            let key = t.split('=').next()?.trim().trim_matches('"');
            if key.is_empty() || key.starts_with('#') {
                return None;
            }
            return Some(if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            });
        }
    }
    None
}

fn header(t: &str) -> Option<String> {
    let t = t.split('#').next()?.trim();
    if t.starts_with("[[") && t.ends_with("]]") {
        Some(t[2..t.len() - 2].trim().to_string())
    } else if t.starts_with('[') && t.ends_with(']') {
        Some(t[1..t.len() - 1].trim().to_string())
    } else {
        None
    }
}

/// Finds the line that sets a dotted key (`train.batch_size`), so a value that parsed but
/// makes no sense can still be pointed at. For `vary.N.*` it finds the N-th `[[vary]]`.
fn locate_line(source: &str, dotted: &str) -> Option<u64> {
    let (want_vary, dotted) = match dotted.strip_prefix("vary.") {
        Some(rest) => {
            let (n, rest) = rest.split_once('.').unwrap_or((rest, ""));
            (n.parse::<usize>().ok(), rest.to_string())
        }
        None => (None, dotted.to_string()),
    };
    let mut table = String::new();
    let mut vary_seen: Option<usize> = None;
    let mut table_line = None;
    for (i, text) in source.lines().enumerate() {
        let t = text.trim();
        if let Some(h) = header(t) {
            if h == "vary" && t.starts_with("[[") {
                vary_seen = Some(vary_seen.map_or(0, |v| v + 1));
            }
            table = h;
            if want_vary.is_none() && table == dotted {
                return Some(i as u64 + 1);
            }
            if want_vary.is_some() && table == "vary" && vary_seen == want_vary {
                table_line = Some(i as u64 + 1);
                if dotted.is_empty() {
                    return table_line;
                }
            }
            continue;
        }
        let Some((k, _)) = t.split_once('=') else {
            continue;
        };
        let k = k.trim().trim_matches('"');
        if let Some(n) = want_vary {
            if table == "vary" && vary_seen == Some(n) && k == dotted {
                return Some(i as u64 + 1);
            }
            continue;
        }
        let full = if table.is_empty() {
            k.to_string()
        } else {
            format!("{table}.{k}")
        };
        if full == dotted {
            return Some(i as u64 + 1);
        }
    }
    table_line
}

/// The line of a dotted key; for a key the file leaves out (a default), the line of the
/// nearest table that holds it, so the user still lands in the right place.
fn located(path: &Path, source: &str, dotted: &str) -> InputError {
    let mut e = InputError::new(path, "").field(dotted);
    let mut key = dotted;
    loop {
        if let Some(line) = locate_line(source, key) {
            e = e.at_line(line);
            break;
        }
        match key.rsplit_once('.') {
            Some((parent, _)) => key = parent,
            None => break,
        }
    }
    e
}

/// Rejects `[expect]` names that would never match (a misspelled cause or event type)
/// before any training, at their line.
fn validate_expect(s: &Scenario, path: &Path, source: &str) -> Result<(), InputError> {
    let Some(spec) = &s.expect else {
        return Ok(());
    };
    let tables = std::iter::once(("expect.all".to_string(), &spec.all))
        .chain(spec.arm.iter().map(|(n, r)| (format!("expect.arm.{n}"), r)));
    for (table, rules) in tables {
        if let Err(msg) = crate::check::validate_rules(rules) {
            let key = if msg.contains("event type") {
                "drops_only_at"
            } else if rules
                .not_causes
                .iter()
                .any(|c| crate::attribute::Cause::from_str(c).is_err())
            {
                "not_causes"
            } else {
                "causes"
            };
            return Err(located(path, source, &format!("{table}.{key}")).message_with(msg));
        }
    }
    Ok(())
}

/// Where a value came from, for error messages: the scenario's own line or a vary level.
struct Origin<'a> {
    vary_index: usize,
    arm: &'a str,
}

fn validate(
    s: &Scenario,
    path: &Path,
    source: &str,
    origin: Option<Origin<'_>>,
) -> Result<(), InputError> {
    let bad = |field: &str, msg: String| -> InputError {
        match &origin {
            Some(o) => located(path, source, &format!("vary.{}.levels", o.vary_index))
                .field(field)
                .message_with(format!("in arm '{}': {msg}", o.arm)),
            None => located(path, source, field).message_with(msg),
        }
    };
    if s.seeds.is_empty() {
        return Err(bad("seeds", "needs at least one seed".into()));
    }
    // A repeated seed trains the same trace twice and counts it as two seeds' evidence.
    if let Some(dup) = s
        .seeds
        .iter()
        .enumerate()
        .find_map(|(i, x)| s.seeds[..i].contains(x).then_some(x))
    {
        return Err(bad("seeds", format!("seed {dup} is listed twice")));
    }
    let d = &s.data;
    match d.source {
        DataSource::Digits => {
            if d.samples > 1797 {
                return Err(bad(
                    "data.samples",
                    format!("the digits set has 1797 examples, not {}", d.samples),
                ));
            }
            if d.classes != 10 && d.classes != DataSpec::default().classes {
                return Err(bad("data.classes", "the digits set has 10 classes".into()));
            }
        }
        DataSource::Csv => match &d.path {
            None => return Err(bad("data.path", "a csv source needs a path".into())),
            Some(p) if !p.is_file() => {
                return Err(bad("data.path", format!("no such file: {}", p.display())));
            }
            Some(_) => {}
        },
        DataSource::Clusters => {
            if d.features == 0 {
                return Err(bad("data.features", "must be at least 1".into()));
            }
            if !(d.separation.is_finite() && d.separation >= 0.0) {
                return Err(bad(
                    "data.separation",
                    format!("must be a finite number >= 0, not {}", d.separation),
                ));
            }
        }
    }
    if d.fresh_each_epoch && d.source != DataSource::Clusters {
        return Err(bad(
            "data.fresh_each_epoch",
            "only the clusters generator can draw fresh data".into(),
        ));
    }
    if d.source != DataSource::Csv {
        if d.classes < 2 {
            return Err(bad("data.classes", "needs at least 2 classes".into()));
        }
        if d.samples < d.classes {
            return Err(bad(
                "data.samples",
                format!("{} samples cannot cover {} classes", d.samples, d.classes),
            ));
        }
    }
    if !(0.0..1.0).contains(&d.label_noise) {
        return Err(bad(
            "data.label_noise",
            format!("must be in [0, 1), not {}", d.label_noise),
        ));
    }
    if !(0.0..1.0).contains(&d.validation_fraction) {
        return Err(bad(
            "data.validation_fraction",
            format!("must be in [0, 1), not {}", d.validation_fraction),
        ));
    }
    let m = &s.model;
    if m.hidden.contains(&0) {
        return Err(bad(
            "model.hidden",
            "layer widths must be at least 1".into(),
        ));
    }
    if !(0.0..1.0).contains(&m.dropout) {
        return Err(bad(
            "model.dropout",
            format!("must be in [0, 1), not {}", m.dropout),
        ));
    }
    let t = &s.train;
    if t.epochs == 0 {
        return Err(bad("train.epochs", "must be at least 1".into()));
    }
    if t.batch_size == 0 {
        return Err(bad("train.batch_size", "must be at least 1".into()));
    }
    if d.source != DataSource::Csv {
        let train_n = train_size(d.samples, d.validation_fraction);
        if t.batch_size > train_n {
            return Err(bad(
                "train.batch_size",
                format!(
                    "batch of {} is larger than the {} training examples",
                    t.batch_size, train_n
                ),
            ));
        }
    }
    let o = &t.optimizer;
    if !(0.0..1.0).contains(&o.momentum) {
        return Err(bad(
            "train.optimizer.momentum",
            format!("must be in [0, 1), not {}", o.momentum),
        ));
    }
    if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
        return Err(bad(
            "train.optimizer.weight_decay",
            format!("must be >= 0, not {}", o.weight_decay),
        ));
    }
    for (f, v) in [("beta1", o.beta1), ("beta2", o.beta2)] {
        if !(0.0..1.0).contains(&v) {
            return Err(bad(
                &format!("train.optimizer.{f}"),
                format!("must be in [0, 1), not {v}"),
            ));
        }
    }
    if o.reset_every_epochs == Some(0) {
        return Err(bad(
            "train.optimizer.reset_every_epochs",
            "must be at least 1".into(),
        ));
    }
    let lr = &t.lr;
    if !(lr.base.is_finite() && lr.base > 0.0) {
        return Err(bad(
            "train.lr.base",
            format!("must be a positive number, not {}", lr.base),
        ));
    }
    if !(lr.min_lr.is_finite() && lr.min_lr >= 0.0 && lr.min_lr <= lr.base) {
        return Err(bad(
            "train.lr.min_lr",
            format!("must be in [0, base], not {}", lr.min_lr),
        ));
    }
    if !(lr.gamma.is_finite() && lr.gamma > 0.0) {
        return Err(bad(
            "train.lr.gamma",
            format!("must be positive, not {}", lr.gamma),
        ));
    }
    match lr.schedule {
        ScheduleKind::Step if lr.step_every.is_none() && lr.milestones.is_empty() => {
            return Err(bad(
                "train.lr.schedule",
                "a step schedule needs step_every or milestones".into(),
            ));
        }
        ScheduleKind::Step if lr.step_every == Some(0) => {
            return Err(bad("train.lr.step_every", "must be at least 1".into()));
        }
        ScheduleKind::CosineRestarts if lr.period.unwrap_or(0) == 0 => {
            return Err(bad(
                "train.lr.period",
                "cosine-restarts needs a period of at least 1".into(),
            ));
        }
        _ => {}
    }
    if !(lr.period_mult.is_finite() && lr.period_mult >= 1.0) {
        return Err(bad(
            "train.lr.period_mult",
            format!("must be >= 1, not {}", lr.period_mult),
        ));
    }
    Ok(())
}

/// Examples left for training after the validation split.
pub fn train_size(samples: usize, validation_fraction: f64) -> usize {
    samples - val_size(samples, validation_fraction)
}

pub fn val_size(samples: usize, validation_fraction: f64) -> usize {
    (samples as f64 * validation_fraction).round() as usize
}

fn get_path<'a>(v: &'a toml::Value, dotted: &str) -> Option<&'a toml::Value> {
    dotted.split('.').try_fold(v, |cur, k| cur.get(k))
}

fn set_path(v: &mut toml::Value, dotted: &str, value: toml::Value) {
    let mut cur = v;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, k) in parts.iter().enumerate() {
        let Some(table) = cur.as_table_mut() else {
            return;
        };
        if i + 1 == parts.len() {
            table.insert((*k).to_string(), value);
            return;
        }
        cur = table
            .entry((*k).to_string())
            .or_insert_with(|| toml::Value::Table(toml::map::Map::new()));
    }
}

fn level_label(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn arm_name(factors: &[(&VarySpec, &toml::Value)]) -> String {
    if factors.is_empty() {
        return "base".into();
    }
    if let [(_, v @ toml::Value::String(_))] = factors {
        return sanitize(&level_label(v));
    }
    let parts: Vec<String> = factors
        .iter()
        .map(|(f, v)| {
            let key = f.path.rsplit('.').next().unwrap_or(&f.path);
            format!("{key}={}", level_label(v))
        })
        .collect();
    sanitize(&parts.join("+"))
}

fn expand(
    s: &Scenario,
    raw: &toml::Value,
    path: &Path,
    source: &str,
    base_dir: &Path,
) -> Result<Vec<Arm>, InputError> {
    // The defaults are part of the schema: a vary path may name a field the file leaves out.
    let full = toml::Value::try_from(s).map_err(|e| InputError::new(path, e.to_string()))?;
    for (i, f) in s.vary.iter().enumerate() {
        let at = |field: &str| located(path, source, &format!("vary.{i}.{field}"));
        if let Some(j) = s.vary[..i].iter().position(|g| g.path == f.path) {
            return Err(at("path")
                .field(format!("vary[{i}].path"))
                .message_with(format!(
                    "'{}' is already varied by vary[{j}]; put all its levels in one [[vary]]",
                    f.path
                )));
        }
        let top = f.path.split('.').next().unwrap_or("");
        if (!["data", "model", "train"].contains(&top) || get_path(&full, &f.path).is_none())
            && !known_optional(&f.path)
        {
            {
                return Err(at("path")
                    .field(format!("vary[{i}].path"))
                    .message_with(format!("'{}' is not a field of the scenario", f.path)));
            }
        }
        if f.levels.is_empty() {
            return Err(at("levels")
                .field(format!("vary[{i}].levels"))
                .message_with("needs at least one level".into()));
        }
        let mut seen = Vec::new();
        for l in &f.levels {
            let lab = level_label(l);
            if seen.contains(&lab) {
                return Err(at("levels")
                    .field(format!("vary[{i}].levels"))
                    .message_with(format!("level {lab} is listed twice")));
            }
            seen.push(lab);
        }
        if let Some(c) = &f.control
            && !f.levels.contains(c)
        {
            return Err(at("control")
                .field(format!("vary[{i}].control"))
                .message_with(format!("{c} is not one of the levels")));
        }
    }
    let mut combos: Vec<Vec<usize>> = vec![vec![]];
    for f in &s.vary {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                (0..f.levels.len()).map(move |l| {
                    let mut c = c.clone();
                    c.push(l);
                    c
                })
            })
            .collect();
    }
    let mut arms: Vec<Arm> = Vec::new();
    for combo in combos {
        let mut value = raw.clone();
        if let Some(t) = value.as_table_mut() {
            t.remove("vary");
        }
        let mut factors = BTreeMap::new();
        let mut chosen = Vec::new();
        let mut is_control = true;
        for (fi, &li) in combo.iter().enumerate() {
            let f = &s.vary[fi];
            let level = &f.levels[li];
            set_path(&mut value, &f.path, level.clone());
            factors.insert(f.path.clone(), level.clone());
            chosen.push((f, level));
            let control = f.control.as_ref().unwrap_or(&f.levels[0]);
            is_control &= level == control;
        }
        let name = arm_name(&chosen);
        let vary_index = combo.len().saturating_sub(1);
        let mut config: Scenario = value.try_into().map_err(|e: toml::de::Error| {
            located(path, source, &format!("vary.{vary_index}.levels"))
                .field(format!("vary[{vary_index}].levels"))
                .message_with(format!(
                    "in arm '{name}': {}",
                    e.message().trim().replace('\n', " ")
                ))
        })?;
        config.name = s.name.clone();
        config.vary = s.vary.clone();
        resolve_data_path(&mut config, base_dir);
        validate(
            &config,
            path,
            source,
            Some(Origin {
                vary_index,
                arm: &name,
            }),
        )?;
        if arms.iter().any(|a| a.name == name) {
            return Err(located(path, source, "vary.0.levels")
                .field("vary")
                .message_with(format!("two arms would both be named '{name}'")));
        }
        arms.push(Arm {
            name,
            factors,
            is_control,
            config,
        });
    }
    Ok(arms)
}

/// Optional fields are absent from the serialized defaults but are valid vary targets.
fn known_optional(path: &str) -> bool {
    [
        "data.seed",
        "data.label_noise_seed",
        "data.path",
        "model.init_seed",
        "train.shuffle_seed",
        "train.optimizer.reset_every_epochs",
        "train.lr.step_every",
        "train.lr.period",
    ]
    .contains(&path)
}

/// The bundled scenarios, compiled in so `dropscope list` and `dropscope run NAME` work anywhere.
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "epoch-memorization",
        include_str!("../scenarios/epoch-memorization.toml"),
    ),
    ("lr-step", include_str!("../scenarios/lr-step.toml")),
    (
        "running-mean-log",
        include_str!("../scenarios/running-mean-log.toml"),
    ),
    ("unshuffled", include_str!("../scenarios/unshuffled.toml")),
    (
        "last-batch-batchnorm",
        include_str!("../scenarios/last-batch-batchnorm.toml"),
    ),
    (
        "warm-restarts",
        include_str!("../scenarios/warm-restarts.toml"),
    ),
    (
        "digits-overfit",
        include_str!("../scenarios/digits-overfit.toml"),
    ),
];

/// Loads a scenario by path, or by bundled name when no such file exists.
pub fn load(arg: &str) -> Result<ScenarioFile, InputError> {
    let p = Path::new(arg);
    if p.is_dir() {
        return Err(InputError::new(
            p,
            "is a folder, not a scenario file (a run folder? use `dropscope report` or `check`)",
        ));
    }
    let log_ext = ["csv", "tsv", "jsonl", "json", "log", "txt"];
    if p.exists()
        && p.extension()
            .is_some_and(|e| log_ext.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()))
    {
        return Err(InputError::new(
            p,
            "looks like a training log, not a scenario (.toml): to explain a log, run \
             `dropscope investigate` on it",
        ));
    }
    if p.exists() {
        return ScenarioFile::load(p);
    }
    if let Some((name, src)) = BUNDLED.iter().find(|(n, _)| *n == arg) {
        return ScenarioFile::parse(Path::new(&format!("scenarios/{name}.toml")), src);
    }
    Err(InputError::new(
        p,
        format!(
            "no such file, and no bundled scenario of that name (bundled: {})",
            BUNDLED
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<ScenarioFile, InputError> {
        ScenarioFile::parse(Path::new("s.toml"), src)
    }

    #[test]
    fn a_minimal_scenario_gets_the_defaults_and_one_base_arm() {
        let f = parse("seeds = [1, 2]\n").unwrap();
        assert_eq!(f.scenario.name, "s");
        assert_eq!(f.arms.len(), 1);
        assert_eq!(f.arms[0].name, "base");
        assert_eq!(f.cells().len(), 2);
        assert_eq!(f.scenario.train.batch_size, 64);
    }

    #[test]
    fn vary_expands_to_the_product_of_levels() {
        let f = parse(
            r#"
seeds = [1, 2, 3]
[[vary]]
path = "train.lr.schedule"
levels = ["constant", "cosine"]
[[vary]]
path = "model.batch_norm"
levels = [false, true]
"#,
        )
        .unwrap();
        let names: Vec<_> = f.arms.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "schedule=constant+batch_norm=false",
                "schedule=constant+batch_norm=true",
                "schedule=cosine+batch_norm=false",
                "schedule=cosine+batch_norm=true"
            ]
        );
        assert!(f.arms[0].is_control && !f.arms[3].is_control);
        assert_eq!(f.arms[3].config.train.lr.schedule, ScheduleKind::Cosine);
        assert!(f.arms[3].config.model.batch_norm);
        assert_eq!(f.cells().len(), 12);
    }

    #[test]
    fn a_misspelled_field_is_named_with_its_line() {
        let e = parse("seeds = [1]\n[train]\nepochs = 2\nbatch_szie = 8\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert_eq!(e.field.as_deref(), Some("train.batch_szie"), "{e}");
        assert!(
            e.to_string().starts_with("s.toml:4: train.batch_szie:"),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_type_is_named_with_its_line() {
        let e = parse("[train]\nepochs = \"ten\"\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert_eq!(e.field.as_deref(), Some("train.epochs"));
    }

    #[test]
    fn impossible_values_are_rejected_before_training() {
        let cases = [
            (
                "[data]\nsamples = 100\n[train]\nbatch_size = 500\n",
                4,
                "train.batch_size",
            ),
            ("[train.lr]\nbase = -0.1\n", 2, "train.lr.base"),
            ("[train]\nepochs = 0\n", 2, "train.epochs"),
            ("[data]\nlabel_noise = 1.5\n", 2, "data.label_noise"),
            ("[train.lr]\nschedule = \"step\"\n", 2, "train.lr.schedule"),
            ("[model]\nhidden = [64, 0]\n", 2, "model.hidden"),
            ("[data]\nsource = \"csv\"\n", 1, "data.path"),
        ];
        for (src, line, field) in cases {
            let e = parse(src).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{src}: {e}");
            assert_eq!(e.line, Some(line), "{src}: {e}");
        }
    }

    #[test]
    fn a_vary_path_that_does_not_exist_is_rejected() {
        let e =
            parse("[[vary]]\npath = \"train.learning_rate\"\nlevels = [0.1, 0.2]\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("train.learning_rate"), "{e}");
    }

    #[test]
    fn a_bad_vary_level_names_the_arm_and_the_levels_line() {
        let e = parse(
            "[data]\nsamples = 200\n[[vary]]\npath = \"train.batch_size\"\nlevels = [16, 1000]\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert_eq!(e.field.as_deref(), Some("train.batch_size"));
        assert!(e.message.contains("arm 'batch_size=1000'"), "{e}");
        let e =
            parse("[[vary]]\npath = \"train.shuffle\"\nlevels = [\"sometimes\"]\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn every_bundled_scenario_parses() {
        for (name, src) in BUNDLED {
            let f =
                ScenarioFile::parse(Path::new(name), src).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!f.scenario.description.is_empty(), "{name}");
            assert!(f.arms.len() >= 2, "{name} should compare arms");
            assert!(f.arms.iter().any(|a| a.is_control), "{name}");
        }
    }
}
