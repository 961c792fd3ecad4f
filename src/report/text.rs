//! The terminal's text: one more renderer of the report's content, so the lines a user
//! reads after `run` or `investigate` are the report's own (a divergence first, one line
//! per finding, each line once).

use crate::attribute::{Cause, RunAnalysis, TraceAnalysis};

use super::content::{self, cause_name, signed};

/// `dropscope run`: diverged cells first, then the scenario and one line per finding.
pub fn run(a: &RunAnalysis) -> String {
    let headline = content::run_headline(a);
    let (diverged, rest): (Vec<&String>, Vec<&String>) =
        headline.iter().partition(|l| l.starts_with("DIVERGED"));
    let mut out = String::new();
    for l in diverged {
        out.push_str(&format!("{l}\n"));
    }
    out.push_str(&format!("{}: {}\n", a.scenario, a.description));
    for l in rest {
        out.push_str(&format!("  - {l}\n"));
    }
    out
}

/// `dropscope investigate`: the headline, then the drops, spikes and the evidence behind
/// each cause. `warnings` are the importer's.
pub fn trace(source: &str, a: &TraceAnalysis, warnings: &[String]) -> String {
    let headline = content::trace_headline(a);
    let (diverged, rest): (Vec<&String>, Vec<&String>) =
        headline.iter().partition(|l| l.starts_with("DIVERGED"));
    let mut out = String::new();
    for l in diverged {
        out.push_str(&format!("{l}\n"));
    }
    out.push_str(&format!(
        "{source}: {}\n",
        super::content::trace_size(a, a.n_steps)
    ));
    for w in warnings {
        out.push_str(&format!("  warning: {w}\n"));
    }
    for l in rest {
        out.push_str(&format!("  - {l}\n"));
    }
    out.push_str(&cleaning(a));
    out.push_str(&format!(
        "  noise sigma (log-loss per step): {:.4}\n",
        a.detection.noise_sigma
    ));
    out.push_str(&drops(a));
    for e in &a.spike_episodes {
        out.push_str(&format!("  {}\n", content::spike_episode_line(e)));
    }
    for s in &a.detection.spikes {
        out.push_str(&format!(
            "  spike at step {} ({} log-loss, z {:+.1})\n",
            s.step,
            signed(s.height_log),
            s.z
        ));
    }
    let named: Vec<_> = content::ranked_causes(a)
        .into_iter()
        .filter(|f| f.cause != Cause::None)
        .collect();
    if !named.is_empty() {
        out.push_str("  evidence:\n");
        for f in named {
            out.push_str(&format!("    {}:\n", cause_name(f.cause)));
            for e in &content::cause_evidence(a, f) {
                out.push_str(&format!("      - {e}\n"));
            }
        }
    }
    out
}

fn cleaning(a: &TraceAnalysis) -> String {
    let c = &a.detection.cleaning;
    if c.n_nan + c.n_inf + c.n_nonpositive + c.n_duplicates == 0 && !c.unsorted {
        return String::new();
    }
    format!(
        "  cleaned: {} of {} rows kept; dropped {} NaN, {} infinite, {} zero or negative, {} duplicate steps{}\n",
        c.n_kept,
        c.n_input,
        c.n_nan,
        c.n_inf,
        c.n_nonpositive,
        c.n_duplicates,
        if c.unsorted {
            "; steps were out of order"
        } else {
            ""
        }
    )
}

/// The drop table, signed as every change in the report: negative for a drop.
fn drops(a: &TraceAnalysis) -> String {
    if a.drops.is_empty() {
        return "  drops: none detected\n".into();
    }
    let mut out = format!(
        "  drops (negative = the loss goes down):\n    {:>10} {:>12} {:>8} {:>7}  {:<10} {:<16} explained by\n",
        "step", "change (log)", "change", "z", "shape", "at event"
    );
    for d in &a.drops {
        out.push_str(&format!(
            "    {:>10} {:>12} {:>7.1}% {:>7.1}  {:<10} {:<16} {}\n",
            d.step,
            signed(-d.log),
            -100.0 * d.rel,
            d.z,
            format!("{:?}", d.shape).to_lowercase(),
            d.event.map(|k| k.label()).unwrap_or("none"),
            cause_name(d.explained_by)
        ));
    }
    out
}
