//! What the Markdown and HTML reports say: the summary sentences, the advice and the
//! evidence tables, as plain text. Both renderers format this one model, so the two
//! files cannot drift apart; `json` carries the same sentences.

use crate::attribute::arms::{ArmAnalysis, FactorEffect, level_text};
use crate::attribute::{
    Basis, Cause, CauseFinding, ConfidenceLevel, Direction, EventTest, Evidence, GapTrend, Hint,
    Interval, OverfitVerdict, Overfitting, RunAnalysis, SpikeEpisode, TraceAnalysis, TrendTest,
    TrendWindow,
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
    /// One line per finding, most important first (a divergence always first): the
    /// report's summary list, the JSON `headline`, and the lines the terminal prints.
    pub headline: Vec<String>,
    /// The sentences after the list: what the headline leaves out.
    pub details: Vec<String>,
    pub next_steps: Vec<String>,
    pub tables: Vec<Table>,
    pub plots: Vec<Plot>,
}

/// A cause's name wherever a person reads it: the fixed vocabulary itself, as JSON,
/// `[expect]` tables and the terminal spell it, so one cause never has two names.
pub fn cause_name(c: Cause) -> &'static str {
    c.as_str()
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

/// An estimate and its 95% interval; `single` says why there is none (an interval from
/// one value would have zero width and claim a certainty it does not have).
pub fn interval_or(i: &Interval, single: &str) -> String {
    if i.has_bounds() {
        format!(
            "{} [{}, {}]",
            signed(i.estimate),
            signed(i.low),
            signed(i.high)
        )
    } else {
        format!("{} ({single})", signed(i.estimate))
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "n/a".into())
}

/// Upper-cases the first letter and ends with a period.
fn sentence(s: &str) -> String {
    let mut c = s.trim().chars();
    let mut out: String = match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => return String::new(),
    };
    if !out.ends_with('.') && !out.ends_with('?') {
        out.push('.');
    }
    out
}

/// Ends a sentence without touching its first word (it follows "Arm x:").
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
    if c == Cause::None {
        return 0;
    }
    a.drops.iter().filter(|d| d.explained_by == c).count()
}

/// Causes in the order a reader needs them: most drops explained, then most confident.
pub fn ranked_causes(a: &TraceAnalysis) -> Vec<&CauseFinding> {
    let mut v: Vec<_> = a.causes.iter().collect();
    v.sort_by(|x, y| {
        let key = |f: &CauseFinding| {
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

/// The first line of every output for a log or cell whose loss turned NaN or infinite.
pub fn diverged_line(step: u64) -> String {
    format!("DIVERGED at step {step} (loss NaN/inf from there on)")
}

/// What a named cause rests on, so that it never sits unexplained beside "drops: none".
pub fn basis_text(f: &CauseFinding) -> String {
    let drops = plural(f.drops_explained, "detected drop");
    match f.basis() {
        Basis::Both => format!("evidence: {} and {drops}", f.cause.test_name()),
        Basis::Test => format!(
            "evidence: {} only; no detected drop is attributed to it",
            f.cause.test_name()
        ),
        Basis::Drops => format!("evidence: {drops}"),
        Basis::Neither => "no evidence of any drop".into(),
    }
}

/// One line per named cause: name, level, what it rests on, its effect.
pub fn cause_line(f: &CauseFinding) -> String {
    let effect = f
        .effect_log
        .map(|e| {
            if e.has_bounds() {
                format!(
                    "; effect {} log-loss per event, 95% CI [{}, {}]",
                    signed(e.estimate),
                    signed(e.low),
                    signed(e.high)
                )
            } else {
                format!(
                    "; effect {} log-loss (one event, no CI)",
                    signed(e.estimate)
                )
            }
        })
        .unwrap_or_default();
    format!(
        "Cause {} ({}, confidence {:.3}): {}{effect}.",
        cause_name(f.cause),
        level_name(f.level),
        f.confidence,
        basis_text(f)
    )
}

/// The event kind a cause is tested at, for the event causes.
pub fn cause_event(c: Cause) -> Option<EventKind> {
    match c {
        Cause::EpochBoundary => Some(EventKind::EpochStart),
        Cause::LrChange => Some(EventKind::LrDecrease),
        Cause::WarmRestart => Some(EventKind::WarmRestart),
        _ => None,
    }
}

fn ordinal_word(n: usize) -> String {
    const W: [&str; 10] = [
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth",
    ];
    W.get(n.wrapping_sub(1))
        .map(|w| w.to_string())
        .unwrap_or_else(|| format!("{n}th"))
}

/// What the per-event tests of one kind say, in one sentence: which events acted and by
/// how much, and which did nothing ("the first LR decrease (step 39019) dropped the loss
/// by 5.0%; the second and the third did nothing"). `None` when no event acted.
pub fn event_tests_sentence(a: &TraceAnalysis, kind: EventKind) -> Option<String> {
    let tests: Vec<&EventTest> = a.tests_of(kind).collect();
    if !tests.iter().any(|t| t.acted) {
        return None;
    }
    let one = tests.len() == 1;
    let name = |t: &EventTest| {
        if one {
            format!("the {} (step {})", kind.label(), t.step)
        } else {
            format!(
                "the {} {} (step {})",
                ordinal_word(t.ordinal),
                kind.label(),
                t.step
            )
        }
    };
    let mut parts: Vec<String> = tests
        .iter()
        .filter(|t| t.acted)
        .take(6)
        .map(|t| {
            let verb = match t.direction {
                Direction::Drop => "dropped",
                Direction::Rise => "raised",
            };
            format!(
                "{} {verb} the loss by {:.1}% (z {}, Holm-adjusted p {})",
                name(t),
                100.0 * (1.0 - (-t.jump_log.abs()).exp()),
                plain(t.z, 1),
                pval(t.p_adjusted)
            )
        })
        .collect();
    let idle: Vec<&&EventTest> = tests.iter().filter(|t| !t.acted).collect();
    match idle.len() {
        0 => {}
        n if n <= 3 && !one => {
            let names: Vec<String> = idle
                .iter()
                .map(|t| format!("the {}", ordinal_word(t.ordinal)))
                .collect();
            parts.push(format!("{} did nothing", names.join(" and ")));
        }
        n => parts.push(format!(
            "the other {} did nothing on their own",
            plural(n, kind.label())
        )),
    }
    Some(sentence(&parts.join("; ")))
}

/// A cause's evidence: the analysis' own sentences, then what its single events did
/// (for a cause named by one event's own test, that is all its evidence).
pub fn cause_evidence(a: &TraceAnalysis, f: &CauseFinding) -> Vec<String> {
    let mut v: Vec<String> = f.evidence.iter().map(evidence_text).collect();
    if let Some(s) = cause_event(f.cause).and_then(|k| event_tests_sentence(a, k)) {
        v.push(s);
    }
    v
}

/// Steps, at most eight of them, then how many in all.
fn list_steps(steps: &[u64]) -> String {
    let v: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
    if v.len() > 8 {
        format!("{}, ... ({} in all)", v[..8].join(", "), v.len())
    } else {
        v.join(", ")
    }
}

/// One piece of evidence as a sentence (no final full stop).
pub fn evidence_text(e: &Evidence) -> String {
    match e {
        Evidence::ChangesShrink { slope, r_squared } => format!(
            "step-to-step changes shrink with the position k in the epoch as k^{slope:.2} (R² {r_squared:.2}); a running mean gives k^-1, raw losses k^0"
        ),
        Evidence::ResetsAtEpochStart { median_jump_log } => format!(
            "the value resets at every epoch start (median jump {median_jump_log:+.3} log-loss)"
        ),
        Evidence::LoggedRunningMean => "the run logged in running-mean mode".into(),
        Evidence::EventType {
            event,
            direction,
            significant,
            tested,
            median_jump_log: m,
            null,
            p,
            p_adjusted,
        } => format!(
            "{significant} of {tested} {}s show a significant {} (median {:+.3} log-loss, {}); against {null}: p = {p:.3} (Holm-adjusted {p_adjusted:.3})",
            event.label(),
            match direction {
                Direction::Drop => "drop",
                Direction::Rise => "rise",
            },
            m.estimate,
            if m.has_bounds() {
                format!("95% CI [{:+.3}, {:+.3}]", m.low, m.high)
            } else {
                "one event, no CI".to_string()
            },
        ),
        Evidence::PositionInEpoch {
            eta_squared,
            f,
            p_value,
            split_half_r,
        } => format!(
            "the position within the epoch explains {:.0}% of the within-epoch variation beyond a per-epoch trend (F = {f:.1}, p = {p_value:.1e}); the pattern repeats (even vs odd epochs r = {split_half_r:.2})",
            100.0 * eta_squared
        ),
        Evidence::LastStepOffset {
            median_z,
            median_jump_log,
            epochs,
            p_value,
        } => format!(
            "the last step of each epoch sits {median_z:+.1} noise sigmas ({median_jump_log:+.3} log-loss) off the line through the steps before it, in {epochs} epochs (sign test p = {p_value:.1e})"
        ),
        Evidence::LastStepSpread {
            ratio,
            expected_ratio,
            p_value,
            positions,
        } => format!(
            "the last step of each epoch scatters {ratio:.1}x as widely as the other positions{} (it ranks above all but a share p = {} of {positions} positions)",
            expected_ratio
                .map(|r| format!(", where a mean over the short batch would scatter {r:.1}x"))
                .unwrap_or_default(),
            pval(*p_value)
        ),
        Evidence::LastBatchSize { last, typical } => {
            format!("the last batch has {last} examples, the others {typical}")
        }
        Evidence::WholePeriods { period_steps } => format!(
            "the loss cycles every {period_steps} steps within the epoch (length-grouped batches), so the test compared means of whole periods on either side of each epoch start"
        ),
        Evidence::SpikeRecoveries { steps } => format!(
            "{} drop(s) only fall back after a spike (steps {})",
            steps.len(),
            list_steps(steps)
        ),
        Evidence::DropsAtNoEvent { steps } => format!(
            "{} significant drop(s) at no known event (steps {})",
            steps.len(),
            list_steps(steps)
        ),
        Evidence::NoDrop => "no significant drop, at events or elsewhere".into(),
    }
}

/// One spike episode in a line.
pub fn spike_episode_line(e: &SpikeEpisode) -> String {
    format!(
        "loss spike from step {} to {} (peak at step {}, {:.1}x the level before, {} steps wide); the fall back is the spike's",
        e.start,
        e.recovered,
        e.peak,
        e.height_log.exp(),
        e.width
    )
}

/// The drops in one line, counted from the same list the drop tables print.
pub fn drops_line(a: &TraceAnalysis) -> String {
    let steps = plural(a.detection.cleaning.n_kept, "analysed step");
    if a.drops.is_empty() {
        return format!("No significant sudden drop over {steps}.");
    }
    let mut counts: Vec<(Cause, usize)> = Cause::ALL
        .iter()
        .map(|&c| (c, drops_explained(a, c)))
        .filter(|x| x.1 > 0)
        .collect();
    counts.sort_by_key(|x| std::cmp::Reverse(x.1));
    let mut by: Vec<String> = counts
        .iter()
        .map(|(c, n)| format!("{n} {}", cause_name(*c)))
        .collect();
    let minor = a.drops.iter().filter(|d| d.minor).count();
    if minor > 0 {
        by.push(format!("{minor} too small to need a cause"));
    }
    format!(
        "{} over {steps}: {}.",
        plural(a.drops.len(), "significant drop"),
        by.join(", ")
    )
}

/// The line a hint becomes.
pub fn hint_line(h: &Hint) -> String {
    match h {
        Hint::RecurringDrops(r) => {
            // `--steps-per-epoch N` puts epoch starts at multiples of N; say where the drops
            // sit when that is elsewhere.
            let off = r.phase.min(r.period - r.phase);
            let at = if off as f64 > 0.05 * r.period as f64 {
                format!(
                    " (the drops sit near steps {}, {}, ...: not at multiples of {})",
                    r.phase,
                    r.phase + r.period,
                    r.period
                )
            } else {
                String::new()
            };
            format!(
                "Drops recur every {p} steps: epoch starts? Rerun with --steps-per-epoch {p}{at}; {on} of {n} drops fall on that period, p = {} against drops at random steps.",
                pval(r.p_value),
                p = r.period,
                on = r.on_period,
                n = r.drops,
            )
        }
    }
}

/// Warns when so many losses were unusable that the analysed series is not the log.
pub fn cleaning_warning(a: &TraceAnalysis) -> Option<String> {
    let c = &a.detection.cleaning;
    if !c.many_unusable() {
        return None;
    }
    let nonfinite = (c.n_nan + c.n_inf).saturating_sub(c.n_after_divergence);
    let before = if c.diverged_at.is_some() {
        " before the divergence"
    } else {
        ""
    };
    Some(format!(
        "Warning: {:.0}% of the losses{before} were left out ({} NaN or infinite, {} zero or negative); the analysis covers the {}.",
        100.0 * c.unusable_share(),
        nonfinite,
        c.n_nonpositive,
        plural(c.n_kept, "remaining step")
    ))
}

/// One line per finding for one trace: divergence first, then what drops, each cause and
/// what it rests on, hints, overfitting.
pub fn trace_headline(a: &TraceAnalysis) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(step) = a.diverged_at {
        out.push(format!(
            "{}: the analysis covers the {} before it.",
            diverged_line(step),
            plural(a.detection.cleaning.n_kept, "finite step")
        ));
    }
    out.extend(cleaning_warning(a));
    if a.n_steps == 0 {
        out.push("The log has no training steps: there is nothing to analyse.".into());
    } else {
        out.push(drops_line(a));
    }
    for f in ranked_causes(a) {
        if f.cause != Cause::None {
            out.push(cause_line(f));
        }
    }
    out.extend(a.hints.iter().map(hint_line));
    out.push(sentence(&a.overfitting.message));
    out
}

/// What the headline leaves out: the largest drop and the checkpoint to keep.
pub fn trace_details(a: &TraceAnalysis) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(d) = a
        .drops
        .iter()
        .filter(|d| d.log.is_finite())
        .max_by(|x, y| x.log.total_cmp(&y.log))
    {
        out.push(format!(
            "The largest drop, at step {}, changes the loss by {}% ({} log-loss; {}).",
            d.step,
            signed_pct(-d.rel),
            signed(-d.log),
            cause_name(d.explained_by)
        ));
    }
    for f in ranked_causes(a) {
        if let Some(line) = cause_event(f.cause).and_then(|k| event_tests_sentence(a, k)) {
            out.push(line);
        }
    }
    out.extend(
        a.spike_episodes
            .iter()
            .map(|e| sentence(&spike_episode_line(e))),
    );
    out.extend(checkpoint(&a.overfitting, None));
    out
}

/// The checkpoint to keep, unless the overfitting message already names it.
fn checkpoint(o: &Overfitting, who: Option<&str>) -> Option<String> {
    let (e, v) = (o.best_epoch?, o.best_val_loss?);
    (o.verdict != OverfitVerdict::Overfitting).then(|| {
        format!(
            "{}eep the checkpoint of epoch {e} (lowest validation loss, {}).",
            who.map(|w| format!("{w}: k")).unwrap_or_else(|| "K".into()),
            plain(v, 4)
        )
    })
}

/// The summary sentences of report.json: the headline, then the details.
pub fn trace_summary(a: &TraceAnalysis) -> Vec<String> {
    let mut v = trace_headline(a);
    v.extend(trace_details(a));
    v
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

fn basis_short(b: Basis) -> &'static str {
    match b {
        Basis::Both => "its test and drops",
        Basis::Test => "its test only",
        Basis::Drops => "drops only",
        Basis::Neither => "nothing",
    }
}

/// Every change is signed the same way in every output: negative when the loss goes down
/// (a drop: its log change, relative change, z and effect are all negative).
fn signed_pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.1}", 100.0 * x)
    } else {
        "n/a".into()
    }
}

fn signed_z(z: f64) -> String {
    if z.is_finite() {
        format!("{z:+.1}")
    } else {
        "n/a".into()
    }
}

/// The window an overfitting verdict was tested on, as the table shows it.
pub fn window_text(w: &TrendWindow) -> String {
    match w.test {
        TrendTest::RiseAfterBest => format!(
            "epochs {}-{}, after the best ({} points)",
            w.from_epoch, w.to_epoch, w.points
        ),
        TrendTest::RecentFall => format!(
            "epochs {}-{}, the last {} points",
            w.from_epoch, w.to_epoch, w.points
        ),
    }
}

/// The gap test of a rise window, as the overfitting table shows it.
pub fn gap_trend_text(g: &GapTrend) -> String {
    format!(
        "{} / epoch, p = {}: {}",
        signed(g.slope_per_epoch),
        pval(g.p_value),
        if g.widened { "widened" } else { "not widened" }
    )
}

pub fn causes_table(title: &str, a: &TraceAnalysis) -> Table {
    let mut t = Table::new(
        title,
        &[
            "cause",
            "confidence",
            "rests on",
            "effect (log-loss, 95% CI)",
            "drops explained",
            "evidence",
        ],
    );
    for f in ranked_causes(a) {
        t.rows.push(vec![
            cause_name(f.cause).to_string(),
            format!("{:.3} ({})", f.confidence, level_name(f.level)),
            basis_short(f.basis()).to_string(),
            f.effect_log
                .map(|e| interval_or(&e, "one event, no CI"))
                .unwrap_or_else(|| "n/a".into()),
            drops_explained(a, f.cause).to_string(),
            cause_evidence(a, f).join("; "),
        ]);
    }
    t
}

pub fn drops_table(title: &str, a: &TraceAnalysis) -> Table {
    let mut t = Table::new(
        title,
        &[
            "step",
            "change (log-loss)",
            "change",
            "z",
            "shape",
            "at event",
            "explained by",
        ],
    );
    for d in &a.drops {
        t.rows.push(vec![
            d.step.to_string(),
            signed(-d.log),
            format!("{}%", signed_pct(-d.rel)),
            signed_z(d.z),
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
            interval_or(&s.median_effect_log, "one event, no CI"),
            pval(s.p_drop_adjusted),
            pval(s.p_rise_adjusted),
            s.null.clone(),
        ]);
    }
    t
}

/// Each event tested on its own.
pub fn event_tests_table(title: &str, a: &TraceAnalysis) -> Table {
    let mut t = Table::new(
        title,
        &[
            "event",
            "step",
            "jump (log-loss)",
            "change",
            "z",
            "p",
            "p (Holm, within type)",
            "acted",
        ],
    );
    for e in &a.event_tests {
        t.rows.push(vec![
            e.kind.label().to_string(),
            e.step.to_string(),
            signed(e.jump_log),
            format!("{}%", signed_pct(e.jump_log.exp() - 1.0)),
            signed_z(e.z),
            pval(e.p),
            pval(e.p_adjusted),
            if e.acted { "yes" } else { "no" }.to_string(),
        ]);
    }
    t.capped()
}

/// The spike episodes.
pub fn spikes_table(title: &str, a: &TraceAnalysis) -> Table {
    let mut t = Table::new(
        title,
        &["start", "peak", "recovered", "height", "width (steps)"],
    );
    for e in &a.spike_episodes {
        t.rows.push(vec![
            e.start.to_string(),
            e.peak.to_string(),
            e.recovered.to_string(),
            format!(
                "{:.1}x ({} log-loss)",
                e.height_log.exp(),
                signed(e.height_log)
            ),
            e.width.to_string(),
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
            "window tested",
            "slope / epoch",
            "trend p (Mann-Kendall)",
            "gap",
            "gap trend (one-sided p)",
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
            o.window
                .as_ref()
                .map(window_text)
                .unwrap_or_else(|| "n/a".into()),
            o.window
                .as_ref()
                .map(|w| signed(w.slope_per_epoch))
                .unwrap_or_else(|| "n/a".into()),
            o.window
                .as_ref()
                .map(|w| pval(w.p_value))
                .unwrap_or_else(|| "n/a".into()),
            o.gap.map(|v| plain(v, 3)).unwrap_or_else(|| "n/a".into()),
            o.window
                .as_ref()
                .and_then(|w| w.gap_trend.as_ref())
                .map(gap_trend_text)
                .unwrap_or_else(|| "n/a".into()),
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
    if !a.event_tests.is_empty() {
        v.push(event_tests_table("Tests at each event", a));
    }
    if !a.spike_episodes.is_empty() {
        v.push(spikes_table("Loss spikes", a));
    }
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

/// A factor comparison in one sentence: which level explains which cause, against the
/// control, and by how much its statistic differs.
pub fn factor_statement(f: &FactorEffect) -> String {
    let (top, ctrl) = (&f.levels[f.top], &f.levels[f.control]);
    format!(
        "Factor {}: {} {} {} (named in {}/{} seeds, {}/{} at the control {}); {} differs by {}.",
        f.factor,
        level_text(&top.level),
        if f.explains {
            "explains"
        } else {
            "does not consistently explain"
        },
        cause_name(f.cause),
        top.seeds_named,
        top.seeds,
        ctrl.seeds_named,
        ctrl.seeds,
        level_text(&ctrl.level),
        f.statistic,
        interval_or(&f.difference, "one seed per level, no CI")
    )
}

/// An arm's causes in one line: each with the share of seeds that named it.
pub fn arm_line(arm: &ArmAnalysis) -> String {
    let who = format!(
        "Arm {}{}",
        arm.name,
        if arm.is_control { " (control)" } else { "" }
    );
    if arm.cells.is_empty() {
        return format!("{who}: no analysed cell.");
    }
    let named: Vec<String> = arm
        .causes
        .iter()
        .filter(|c| c.cause != Cause::None)
        .map(|c| {
            format!(
                "{} in {}/{} seeds",
                cause_name(c.cause),
                c.seeds_named,
                c.seeds
            )
        })
        .collect();
    if named.is_empty() {
        format!(
            "{who}: no significant drop in any seed ({}).",
            plural(arm.cells.len(), "seed")
        )
    } else {
        format!("{who}: {}.", named.join(", "))
    }
}

/// An arm's overfitting verdicts across its seeds, in one line.
pub fn arm_overfit_line(arm: &ArmAnalysis) -> Option<String> {
    let n = arm.cells.len();
    if n == 0 {
        return None;
    }
    let mut verdicts: Vec<(OverfitVerdict, usize)> = Vec::new();
    for c in &arm.cells {
        let v = c.analysis.overfitting.verdict;
        match verdicts.iter_mut().find(|x| x.0 == v) {
            Some(x) => x.1 += 1,
            None => verdicts.push((v, 1)),
        }
    }
    verdicts.sort_by_key(|x| std::cmp::Reverse(x.1));
    let parts: Vec<String> = verdicts
        .iter()
        .map(|(v, k)| format!("{} in {k}/{n} seeds", v.label()))
        .collect();
    Some(format!(
        "Overfitting, arm {}: {}.",
        arm.name,
        parts.join(", ")
    ))
}

/// One line per finding for a run: diverged cells first, then the caller's notes, each
/// factor that explains a cause, each arm's causes, each arm's overfitting verdict.
pub fn run_headline(run: &RunAnalysis) -> Vec<String> {
    let mut out: Vec<String> = run
        .diverged_cells()
        .iter()
        .map(|d| format!("{}: arm {}, seed {}.", diverged_line(d.step), d.arm, d.seed))
        .collect();
    out.extend(run.notes.iter().cloned());
    let explaining: Vec<&FactorEffect> = run.factors.iter().filter(|f| f.explains).collect();
    if explaining.is_empty() && !run.factors.is_empty() {
        out.push(
            "No varied factor explains a cause: none is named in every seed of one level and in no seed of the control.".into(),
        );
    }
    out.extend(explaining.into_iter().map(factor_statement));
    out.extend(run.arms.iter().map(arm_line));
    out.extend(run.arms.iter().filter_map(arm_overfit_line));
    out
}

/// What the run headline leaves out: the scenario, and per arm its shown seed's overfitting
/// message and checkpoint.
pub fn run_details(run: &RunAnalysis) -> Vec<String> {
    let cells: usize = run.arms.iter().map(|a| a.cells.len()).sum();
    let mut out = vec![format!(
        "Scenario {}: {} in {}.{}",
        run.scenario,
        plural(cells, "analysed cell"),
        plural(run.arms.len(), "arm"),
        if run.description.trim().is_empty() {
            String::new()
        } else {
            format!(" {}", sentence(&run.description))
        }
    )];
    if !run.diverged_cells().is_empty() {
        out.push("A diverged cell is analysed over its steps before the divergence.".into());
    }
    for arm in &run.arms {
        if let Some(c) = representative(arm) {
            let who = format!("Arm {} (seed {})", arm.name, c.seed);
            out.push(format!(
                "{who}: {}",
                period(&c.analysis.overfitting.message)
            ));
            out.extend(checkpoint(&c.analysis.overfitting, Some(&who)));
        }
    }
    out
}

/// The summary sentences of report.json: the headline, then the details.
pub fn run_summary(run: &RunAnalysis) -> Vec<String> {
    let mut v = run_headline(run);
    v.extend(run_details(run));
    v
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
            interval_or(&f.difference, "one seed per level, no CI"),
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
                match c.analysis.diverged_at {
                    Some(step) => format!("diverged at step {step}"),
                    None => format!("{:?}", c.status).to_lowercase(),
                },
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

/// "1218 steps, epochs of 406 steps", or for a log written every k steps "430 log points
/// (every 500 steps), epochs of 72000 steps": the analysis counts log points, a reader
/// thinks in optimizer steps.
pub fn trace_size(a: &TraceAnalysis, points: usize) -> String {
    let k = a.units.interval_steps.max(1);
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut out = if k > 1 {
        format!("{} (every {k} steps)", plural(points, "log point"))
    } else {
        plural(points, "step")
    };
    if let Some(spe) = a.steps_per_epoch {
        out.push_str(&format!(", epochs of {:.0} steps", spe * k as f64));
    }
    out
}
