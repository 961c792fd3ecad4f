//! What the Markdown and HTML reports say: the summary sentences, the advice and the
//! evidence tables, as plain text. Both renderers format this one model, so the two
//! files cannot drift apart; `json` carries the same sentences.

use crate::attribute::arms::{ArmAnalysis, level_text};
use crate::attribute::{
    Cause, ConfidenceLevel, Interval, OverfitVerdict, Overfitting, RunAnalysis, TraceAnalysis,
};
use crate::events::EventKind;

use super::figure::Figure;

/// Rows beyond this go to report.json only: a table of 10,000 drops helps nobody.
pub const MAX_ROWS: usize = 40;

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Printed under the table, e.g. how many rows were left out.
    pub note: Option<String>,
}

impl Table {
    fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Table {
            title: title.into(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            note: None,
        }
    }

    /// Keeps the first `MAX_ROWS` rows and says how many more report.json holds.
    fn capped(mut self) -> Self {
        if self.rows.len() > MAX_ROWS {
            let more = self.rows.len() - MAX_ROWS;
            self.rows.truncate(MAX_ROWS);
            self.note = Some(format!("{more} more rows in report.json"));
        }
        self
    }
}

/// A rendered plot: the figure (for title and caption), its PNG file name and its SVG.
#[derive(Debug, Clone)]
pub struct Plot {
    pub figure: Figure,
    pub png: String,
    pub svg: String,
}

#[derive(Debug, Clone)]
pub struct Doc {
    pub title: String,
    /// What was analysed: the log file, or the scenario.
    pub subject: String,
    pub summary: Vec<String>,
    pub next_steps: Vec<String>,
    pub tables: Vec<Table>,
    pub plots: Vec<Plot>,
}

/// A human name for a cause; JSON keeps `Cause::as_str`.
pub fn cause_name(c: Cause) -> &'static str {
    match c {
        Cause::EpochBoundary => "epoch boundary",
        Cause::LrChange => "LR change",
        Cause::WarmRestart => "warm restart",
        Cause::RunningMeanArtifact => "running-mean artifact",
        Cause::DataOrder => "data order",
        Cause::LastBatch => "short last batch",
        Cause::LossSpike => "loss spike",
        Cause::Unexplained => "unexplained",
        Cause::None => "none",
    }
}

pub fn level_name(l: ConfidenceLevel) -> &'static str {
    match l {
        ConfidenceLevel::High => "high",
        ConfidenceLevel::Medium => "medium",
        ConfidenceLevel::Low => "low",
    }
}

pub fn signed(x: f64) -> String {
    if x.is_finite() {
        format!("{x:+.3}")
    } else {
        "n/a".into()
    }
}

pub fn plain(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "n/a".into()
    }
}

pub fn pval(p: f64) -> String {
    if !p.is_finite() {
        "n/a".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

pub fn interval(i: &Interval) -> String {
    format!(
        "{} [{}, {}]",
        signed(i.estimate),
        signed(i.low),
        signed(i.high)
    )
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "n/a".into())
}

fn sentence(s: &str) -> String {
    let mut c = s.trim().chars();
    let mut out: String = match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => return String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

fn event_plural(k: EventKind) -> String {
    match k {
        EventKind::LastBatch => "last batches".into(),
        k => format!("{}s", k.label()),
    }
}

/// Ends a sentence without touching its first word, which may be a factor path.
fn period(s: &str) -> String {
    let s = s.trim();
    if s.ends_with('.') {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Drops each cause explains, in the analysis' drop list.
pub fn drops_explained(a: &TraceAnalysis, c: Cause) -> usize {
    a.drops.iter().filter(|d| d.explained_by == c).count()
}

/// Causes in the order a reader needs them: most drops explained, then most confident.
pub fn ranked_causes(a: &TraceAnalysis) -> Vec<&crate::attribute::CauseFinding> {
    let mut v: Vec<_> = a.causes.iter().collect();
    v.sort_by(|x, y| {
        let key = |f: &crate::attribute::CauseFinding| {
            (
                f.cause == Cause::Unexplained || f.cause == Cause::None,
                std::cmp::Reverse(drops_explained(a, f.cause)),
            )
        };
        key(x)
            .cmp(&key(y))
            .then(y.confidence.total_cmp(&x.confidence))
    });
    v
}

/// The summary of one trace: what drops, where, what explains them, overfitting,
/// which checkpoint to keep.
pub fn trace_summary(a: &TraceAnalysis) -> Vec<String> {
    let mut out = Vec::new();
    if a.n_steps == 0 {
        out.push("The log has no training steps: there is nothing to analyse.".into());
    } else if a.drops.is_empty() {
        out.push(format!(
            "No significant sudden drop in the training loss over {}.",
            plural(a.n_steps, "step")
        ));
    } else {
        let n = a.drops.len();
        let mut where_: Vec<String> = EventKind::all()
            .into_iter()
            .filter_map(|k| {
                let c = a.drops.iter().filter(|d| d.event == Some(k)).count();
                (c > 0).then(|| format!("{c} at {}", event_plural(k)))
            })
            .collect();
        let free = a.drops.iter().filter(|d| d.event.is_none()).count();
        if free > 0 {
            where_.push(format!("{free} at no event"));
        }
        let big = a
            .drops
            .iter()
            .filter(|d| d.log.is_finite())
            .max_by(|x, y| x.log.total_cmp(&y.log));
        let largest = big
            .map(|d| {
                format!(
                    "; the largest, at step {}, cuts the loss by {:.1}% ({} log-loss)",
                    d.step,
                    100.0 * d.rel,
                    signed(-d.log)
                )
            })
            .unwrap_or_default();
        out.push(format!(
            "{} in the training loss over {} ({}){largest}.",
            plural(n, "significant drop"),
            plural(a.n_steps, "step"),
            where_.join(", ")
        ));
    }
    if a.diverged {
        out.push("The loss became NaN or infinite: the run diverged; the analysis covers its finite steps.".into());
    }
    for f in ranked_causes(a) {
        if f.cause == Cause::None {
            continue;
        }
        let n = drops_explained(a, f.cause);
        let effect = f
            .effect_log
            .map(|e| format!(", effect {} log-loss per event", interval(&e)))
            .unwrap_or_default();
        let explains = if n > 0 {
            format!(" explains {} of {}", n, plural(a.drops.len(), "drop"))
        } else {
            " is present".into()
        };
        out.push(format!(
            "Cause: {}{explains} ({} confidence {:.3}{effect}).",
            cause_name(f.cause),
            level_name(f.level),
            f.confidence
        ));
    }
    out.extend(overfit_sentences(&a.overfitting, None));
    out
}

/// Judged from the analysis alone (no trace), so `run_json` says what report.json says.
fn overfit_sentences(o: &Overfitting, who: Option<&str>) -> Vec<String> {
    let prefix = who.map(|w| format!("{w}: ")).unwrap_or_default();
    if o.verdict == OverfitVerdict::Unknown && o.best_epoch.is_none() {
        return vec![format!(
            "{prefix}{}; no checkpoint can be recommended.",
            if who.is_some() {
                period(&o.message)
            } else {
                sentence(&o.message)
            }
            .trim_end_matches('.')
        )];
    }
    let message = if who.is_some() {
        period(&o.message)
    } else {
        sentence(&o.message)
    };
    let mut out = vec![format!("{prefix}{message}")];
    if let (Some(e), Some(v)) = (o.best_epoch, o.best_val_loss)
        && o.verdict != OverfitVerdict::Overfitting
    {
        // The overfitting message already names the checkpoint.
        out.push(format!(
            "{prefix}Keep the checkpoint of epoch {e} (lowest validation loss, {}).",
            plain(v, 4)
        ));
    }
    out
}

/// What to try next to confirm each named cause, most important first.
pub fn trace_next_steps(a: &TraceAnalysis) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in ranked_causes(a) {
        if f.cause == Cause::None {
            continue;
        }
        let s = format!("{}: {}.", cause_name(f.cause), f.cause.advice());
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

pub fn causes_table(title: &str, a: &TraceAnalysis) -> Table {
    let mut t = Table::new(
        title,
        &[
            "cause",
            "confidence",
            "effect (log-loss, 95% CI)",
            "drops explained",
            "evidence",
        ],
    );
    for f in ranked_causes(a) {
        t.rows.push(vec![
            cause_name(f.cause).to_string(),
            format!("{:.3} ({})", f.confidence, level_name(f.level)),
            f.effect_log
                .map(|e| interval(&e))
                .unwrap_or_else(|| "n/a".into()),
            drops_explained(a, f.cause).to_string(),
            f.evidence.join("; "),
        ]);
    }
    t
}

pub fn drops_table(title: &str, a: &TraceAnalysis) -> Table {
    let mut t = Table::new(
        title,
        &[
            "step",
            "drop (log-loss)",
            "relative",
            "z",
            "shape",
            "at event",
            "explained by",
        ],
    );
    for d in &a.drops {
        t.rows.push(vec![
            d.step.to_string(),
            plain(d.log, 3),
            format!("{}%", plain(100.0 * d.rel, 1)),
            plain(d.z, 1),
            format!("{:?}", d.shape).to_lowercase(),
            d.event.map(|k| k.label()).unwrap_or("none").to_string(),
            cause_name(d.explained_by).to_string(),
        ]);
    }
    t.capped()
}

pub fn events_table(title: &str, a: &TraceAnalysis) -> Table {
    let mut t = Table::new(
        title,
        &[
            "event",
            "events",
            "tested",
            "significant drops",
            "significant rises",
            "median jump (log-loss, 95% CI)",
            "p drop (Holm)",
            "p rise (Holm)",
            "null",
        ],
    );
    for s in &a.event_stats {
        t.rows.push(vec![
            s.kind.label().to_string(),
            s.n_events.to_string(),
            s.n_tested.to_string(),
            s.n_significant_drops.to_string(),
            s.n_significant_rises.to_string(),
            interval(&s.median_effect_log),
            pval(s.p_drop_adjusted),
            pval(s.p_rise_adjusted),
            s.null.clone(),
        ]);
    }
    t
}

pub fn signatures_table(title: &str, a: &TraceAnalysis) -> Table {
    let mut t = Table::new(title, &["signature", "statistics", "reads as"]);
    if let Some(d) = &a.data_order {
        t.rows.push(vec![
            "data order".into(),
            format!(
                "F = {}, p = {}, η² = {}, even/odd epochs r = {}",
                plain(d.f, 1),
                pval(d.p_value),
                plain(d.eta_squared, 3),
                plain(d.split_half_r, 2)
            ),
            "a repeating within-epoch pattern when p is small, η² ≥ 0.05 and r ≥ 0.5".into(),
        ]);
    }
    if let Some(r) = &a.running_mean {
        t.rows.push(vec![
            "running mean".into(),
            format!(
                "slope = {}, R² = {}",
                plain(r.slope, 2),
                plain(r.r_squared, 2)
            ),
            "about -1 for an epoch-cumulative mean, 0 for per-step losses".into(),
        ]);
    }
    if let Some(l) = &a.last_batch {
        t.rows.push(vec![
            "last batch".into(),
            format!(
                "median z = {}, median effect = {} log-loss, p = {}, {} epochs",
                plain(l.median_z, 2),
                signed(l.median_effect_log),
                pval(l.p_value),
                l.epochs
            ),
            "the last step of each epoch off its epoch's line".into(),
        ]);
    }
    t
}

pub fn overfit_table(title: &str, rows: &[(String, &Overfitting)]) -> Table {
    let mut t = Table::new(
        title,
        &[
            "trace",
            "verdict",
            "best epoch",
            "best val loss",
            "final val loss",
            "recent slope / epoch",
            "trend p",
            "gap",
        ],
    );
    for (name, o) in rows {
        t.rows.push(vec![
            name.clone(),
            o.verdict.label().to_string(),
            opt(o.best_epoch),
            o.best_val_loss
                .map(|v| plain(v, 4))
                .unwrap_or_else(|| "n/a".into()),
            o.final_val_loss
                .map(|v| plain(v, 4))
                .unwrap_or_else(|| "n/a".into()),
            o.recent_slope_per_epoch
                .map(signed)
                .unwrap_or_else(|| "n/a".into()),
            o.trend_p_value.map(pval).unwrap_or_else(|| "n/a".into()),
            o.gap.map(|v| plain(v, 3)).unwrap_or_else(|| "n/a".into()),
        ]);
    }
    t
}

/// The tables of a single-trace report.
pub fn trace_tables(a: &TraceAnalysis) -> Vec<Table> {
    let mut v = vec![
        causes_table("Causes", a),
        drops_table("Detected drops", a),
        events_table("Tests at each event type", a),
    ];
    let sig = signatures_table("Within-epoch signatures", a);
    if !sig.rows.is_empty() {
        v.push(sig);
    }
    v.push(overfit_table(
        "Overfitting",
        &[(a.name.clone(), &a.overfitting)],
    ));
    v
}

/// The first analysed seed of an arm stands for it where one trace must be shown.
pub fn representative(arm: &ArmAnalysis) -> Option<&crate::attribute::arms::CellAnalysis> {
    arm.cells.first()
}

pub fn run_summary(run: &RunAnalysis) -> Vec<String> {
    let mut out = Vec::new();
    let cells: usize = run.arms.iter().map(|a| a.cells.len()).sum();
    out.push(format!(
        "Scenario {}: {} analysed cell{} in {}.{}",
        run.scenario,
        cells,
        if cells == 1 { "" } else { "s" },
        plural(run.arms.len(), "arm"),
        if run.description.trim().is_empty() {
            String::new()
        } else {
            format!(" {}", sentence(&run.description))
        }
    ));
    out.extend(run.headline.iter().map(|h| period(h)));
    for arm in &run.arms {
        if let Some(c) = representative(arm) {
            let who = format!("Arm {} (seed {})", arm.name, c.seed);
            out.extend(overfit_sentences(&c.analysis.overfitting, Some(&who)));
        }
    }
    out
}

pub fn run_next_steps(run: &RunAnalysis) -> Vec<String> {
    let mut causes: Vec<Cause> = run
        .factors
        .iter()
        .filter(|f| f.explains)
        .map(|f| f.cause)
        .collect();
    for arm in &run.arms {
        causes.extend(arm.consistent_causes());
    }
    let mut out: Vec<String> = Vec::new();
    for c in causes {
        if c == Cause::None {
            continue;
        }
        let s = format!("{}: {}.", cause_name(c), c.advice());
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

pub fn run_tables(run: &RunAnalysis) -> Vec<Table> {
    let mut factors = Table::new(
        "Factor comparisons",
        &[
            "factor",
            "cause",
            "explains",
            "difference (95% CI)",
            "statistic",
            "levels (seeds named / seeds, mean)",
        ],
    );
    for f in &run.factors {
        factors.rows.push(vec![
            f.factor.clone(),
            cause_name(f.cause).into(),
            if f.explains { "yes" } else { "no" }.into(),
            interval(&f.difference),
            f.statistic.clone(),
            f.levels
                .iter()
                .map(|l| {
                    format!(
                        "{}{}: {}/{}, {}",
                        level_text(&l.level),
                        if l.is_control { " (control)" } else { "" },
                        l.seeds_named,
                        l.seeds,
                        signed(l.mean)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ]);
    }
    let mut arms = Table::new(
        "Arms",
        &[
            "arm",
            "factors",
            "seeds",
            "causes named in every seed",
            "causes named in some seeds",
        ],
    );
    for a in &run.arms {
        let every = a.consistent_causes();
        arms.rows.push(vec![
            format!("{}{}", a.name, if a.is_control { " (control)" } else { "" }),
            a.factors
                .iter()
                .map(|(k, v)| format!("{k} = {}", level_text(v)))
                .collect::<Vec<_>>()
                .join(", "),
            a.cells.len().to_string(),
            every
                .iter()
                .map(|c| cause_name(*c))
                .collect::<Vec<_>>()
                .join(", "),
            a.causes
                .iter()
                .filter(|c| !every.contains(&c.cause))
                .map(|c| format!("{} ({}/{})", cause_name(c.cause), c.seeds_named, c.seeds))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    let mut cells = Table::new(
        "Cells",
        &[
            "arm",
            "seed",
            "status",
            "steps",
            "drops",
            "causes",
            "overfitting",
        ],
    );
    for a in &run.arms {
        for c in &a.cells {
            cells.rows.push(vec![
                a.name.clone(),
                c.seed.to_string(),
                format!("{:?}", c.status).to_lowercase(),
                c.analysis.n_steps.to_string(),
                c.analysis.drops.len().to_string(),
                ranked_causes(&c.analysis)
                    .iter()
                    .map(|f| cause_name(f.cause))
                    .collect::<Vec<_>>()
                    .join(", "),
                c.analysis.overfitting.verdict.label().to_string(),
            ]);
        }
    }
    let mut v = vec![factors, arms, cells.capped()];
    for a in &run.arms {
        if let Some(c) = representative(a) {
            v.push(causes_table(
                &format!("Causes, arm {} (seed {})", a.name, c.seed),
                &c.analysis,
            ));
        }
    }
    let rows: Vec<(String, &Overfitting)> = run
        .arms
        .iter()
        .flat_map(|a| {
            a.cells.iter().map(move |c| {
                (
                    format!("{} seed {}", a.name, c.seed),
                    &c.analysis.overfitting,
                )
            })
        })
        .collect();
    v.push(overfit_table("Overfitting", &rows).capped());
    v
}
