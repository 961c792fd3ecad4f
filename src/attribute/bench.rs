//! `dropscope bench attribute`: how often attribution names a cause that is not there
//! (ineffective events on synthetic curves), and what it says on the corpus of real public
//! logs under `tests/fixtures/real/` (the e2e test `real_logs` asserts the same list).
//!
//! Plain data and a table; the CLI prints it.

use std::path::Path;

use serde::Serialize;

use super::{AnalyzeOptions, Cause, ConfidenceLevel, TraceAnalysis, analyze_trace};
use crate::events::EventKind;
use crate::synth::{self, NoiseKind, SynthSpec};
use crate::trace::{StepRecord, Trace};

/// An ineffective event planted in a clean curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NullEvent {
    /// One LR cut to a tenth at mid-run that does not move the loss.
    LrCut,
    /// Three epoch starts on fresh data (nothing memorized, nothing changes).
    EpochStarts,
}

impl NullEvent {
    pub fn label(self) -> &'static str {
        match self {
            NullEvent::LrCut => "LR cut",
            NullEvent::EpochStarts => "epoch starts",
        }
    }

    /// The cause that would be falsely named.
    pub fn cause(self) -> Cause {
        match self {
            NullEvent::LrCut => Cause::LrChange,
            NullEvent::EpochStarts => Cause::EpochBoundary,
        }
    }
}

/// The clean synthetic curve of `n` steps and noise `sigma` (log-loss) with `event`
/// written into its epoch and LR columns only.
pub fn null_trace(event: NullEvent, n: usize, sigma: f64, seed: u64) -> Trace {
    let spec = SynthSpec {
        n,
        sigma,
        drop_sigmas: None,
        seed,
        ..SynthSpec::new(NoiseKind::Gaussian, synth::Difficulty::Clean, seed)
    };
    let s = synth::planted(&spec);
    let epoch_len = (n as u64 / 4).max(1);
    let mut t = Trace::new(format!("null-{}-{n}-{sigma}-{seed}", event.label()));
    for (i, (&step, &loss)) in s.steps.iter().zip(&s.loss).enumerate() {
        let (epoch, batch, lr) = match event {
            NullEvent::LrCut => (None, None, if i < n / 2 { 0.1 } else { 0.01 }),
            NullEvent::EpochStarts => (Some(step / epoch_len), Some(step % epoch_len), 0.1),
        };
        t.steps.push(StepRecord {
            step,
            epoch,
            batch,
            loss,
            lr: Some(lr),
            batch_size: Some(64),
        });
    }
    t
}

/// One cell of the false-naming grid.
#[derive(Debug, Clone, Serialize)]
pub struct NullCell {
    pub event: NullEvent,
    pub n: usize,
    pub sigma: f64,
    pub series: usize,
    /// Series in which the event's cause was named.
    pub named: usize,
}

impl NullCell {
    pub fn rate(&self) -> f64 {
        self.named as f64 / self.series.max(1) as f64
    }
}

/// Log lengths and noise levels of the grid.
pub const LENGTHS: [usize; 5] = [300, 500, 1000, 2000, 5000];
pub const SIGMAS: [f64; 5] = [0.005, 0.01, 0.02, 0.05, 0.1];

/// The false-naming rate per cell, `series` curves each, over two threads.
pub fn null_grid(series: usize, seed: u64) -> Vec<NullCell> {
    let mut cells: Vec<(NullEvent, usize, f64)> = Vec::new();
    for event in [NullEvent::LrCut, NullEvent::EpochStarts] {
        for n in LENGTHS {
            for sigma in SIGMAS {
                cells.push((event, n, sigma));
            }
        }
    }
    let run = |&(event, n, sigma): &(NullEvent, usize, f64)| {
        let named = (0..series as u64)
            .filter(|i| {
                let t = null_trace(event, n, sigma, seed.wrapping_add(*i));
                analyze_trace(&t, &AnalyzeOptions::default()).names(event.cause())
            })
            .count();
        NullCell {
            event,
            n,
            sigma,
            series,
            named,
        }
    };
    let (a, b) = cells.split_at(cells.len() / 2);
    std::thread::scope(|s| {
        let h = s.spawn(|| a.iter().map(run).collect::<Vec<_>>());
        let mut out: Vec<NullCell> = b.iter().map(run).collect();
        let mut first = h.join().unwrap_or_default();
        first.append(&mut out);
        first
    })
}

/// The grid as a table: one row per event and length, one column per noise level.
pub fn null_table(cells: &[NullCell]) -> String {
    let mut out = String::from("false naming of an ineffective event's cause (named / series)\n");
    out.push_str(&format!("{:<14} {:>6}", "event", "steps"));
    for s in SIGMAS {
        out.push_str(&format!(" {:>12}", format!("noise {:.1}%", 100.0 * s)));
    }
    out.push('\n');
    let mut worst = 0.0f64;
    for event in [NullEvent::LrCut, NullEvent::EpochStarts] {
        for n in LENGTHS {
            out.push_str(&format!("{:<14} {:>6}", event.label(), n));
            for s in SIGMAS {
                if let Some(c) = cells
                    .iter()
                    .find(|c| c.event == event && c.n == n && c.sigma == s)
                {
                    worst = worst.max(c.rate());
                    out.push_str(&format!(
                        " {:>12}",
                        format!("{}/{} {:.0}%", c.named, c.series, 100.0 * c.rate())
                    ));
                }
            }
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "worst cell: {:.1}% (target: at most 5%)\n",
        100.0 * worst
    ));
    out
}

/// One real public log and the causes its README reads off its numbers.
#[derive(Debug, Clone, Copy)]
pub struct CorpusCase {
    pub id: &'static str,
    /// The file under `tests/fixtures/real/`.
    pub file: &'static str,
    /// The causes expected; empty for "none".
    pub expected: &'static [Cause],
    /// For LR cases: the step (±1 log point) of the one cut that acted, and no other.
    pub acting_lr_cut: Option<u64>,
    /// A smooth run: nothing may be named, `unexplained` included. Elsewhere an
    /// `unexplained` drop besides the expected causes is tolerated (early training,
    /// issue 12 item 5) and shown in the table.
    pub smooth: bool,
    /// Causes the evidence allows at low confidence only: named at `low`, they are no
    /// miss; named higher, they are.
    pub weak_ok: &'static [Cause],
}

/// The corpus, with the expected answers of tests/fixtures/real/README.md.
pub const CORPUS: &[CorpusCase] = &[
    CorpusCase {
        id: "hf_alpaca_llama7b_fullft_3ep",
        file: "hf_alpaca_llama7b_fullft_3ep.trainer_state.json",
        expected: &[Cause::EpochBoundary],
        smooth: false,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "hf_qlora_25ep_groupbylen",
        file: "hf_qlora_25ep_groupbylen.trainer_state.json",
        expected: &[Cause::EpochBoundary, Cause::DataOrder],
        smooth: false,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "lf_qwen25_3b_fullft_7ep",
        file: "lf_qwen25_3b_fullft_7ep.trainer_log.jsonl",
        expected: &[Cause::EpochBoundary],
        smooth: false,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "hf_t5_cnndm_3ep",
        file: "hf_t5_cnndm_3ep.trainer_state.json",
        expected: &[],
        smooth: true,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "tb_t5_cnndm_3ep",
        file: "tb_t5_cnndm_3ep.events.out.tfevents.1742826235.DESKTOP-41L2EO3.107869.0",
        expected: &[],
        smooth: true,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "hf_baichuan2_7b_lora_3ep",
        file: "hf_baichuan2_7b_lora_3ep.trainer_state.json",
        expected: &[],
        smooth: true,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "d2_medwaste_steplr",
        file: "d2_medwaste_steplr.metrics.json",
        expected: &[],
        smooth: true,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "d2_nyu_multistep",
        file: "d2_nyu_multistep.converted.csv",
        expected: &[Cause::LrChange],
        smooth: false,
        acting_lr_cut: Some(39000),
        weak_ok: &[],
    },
    CorpusCase {
        id: "llmc_gpt2_124m",
        file: "llmc_gpt2_124m.converted.csv",
        expected: &[],
        smooth: true,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "hf_mistral7b_translator_4ep",
        file: "hf_mistral7b_translator_4ep.trainer_state.json",
        expected: &[Cause::EpochBoundary],
        smooth: false,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "hf_tinyllama_sft_2ep",
        file: "hf_tinyllama_sft_2ep.trainer_state.json",
        expected: &[],
        smooth: true,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "hf_nsllm_cpt_1ep",
        file: "hf_nsllm_cpt_1ep.trainer_state.json",
        expected: &[],
        smooth: true,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "lf_qwen25_7b_medical_lora_3ep",
        file: "lf_qwen25_7b_medical_lora_3ep.trainer_log.jsonl",
        expected: &[Cause::EpochBoundary],
        smooth: false,
        acting_lr_cut: None,
        weak_ok: &[],
    },
    CorpusCase {
        id: "pl_slm_lm_10ep",
        file: "pl_slm_lm_10ep.metrics.csv",
        expected: &[],
        smooth: true,
        acting_lr_cut: None,
        // The README: "none (medium); a weak epoch_boundary is also acceptable (low)".
        weak_ok: &[Cause::EpochBoundary],
    },
    CorpusCase {
        id: "d2_orbital_warmup_step",
        file: "d2_orbital_warmup_step.metrics.json",
        expected: &[Cause::LrChange],
        smooth: false,
        acting_lr_cut: Some(1000),
        weak_ok: &[],
    },
    CorpusCase {
        id: "d2_watermeters_twostep",
        file: "d2_watermeters_twostep.metrics.json",
        expected: &[Cause::LrChange],
        smooth: false,
        acting_lr_cut: Some(1000),
        weak_ok: &[],
    },
];

/// Cases dropscope does not get right yet: the test prints them instead of failing, and
/// their expectation stays as it is. Each with the reason.
pub const KNOWN_MISSES: &[(&str, &str)] = &[(
    "d2_watermeters_twostep",
    "the first cut's excess over the trend (-6.5% on a curve falling ~6% per 100 iterations, 90 points) is not significant to dropscope; the README's reading is low confidence",
)];

pub fn known_miss(id: &str) -> Option<&'static str> {
    KNOWN_MISSES.iter().find(|(m, _)| *m == id).map(|(_, r)| *r)
}

/// What attribution said on one corpus log.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusRow {
    pub id: String,
    pub expected: Vec<Cause>,
    /// Named causes (`none` left out).
    pub got: Vec<Cause>,
    /// Those of `got` that their own test named at low confidence.
    pub low: Vec<Cause>,
    /// Steps of the LR decreases that acted on their own.
    pub acted_lr_cuts: Vec<u64>,
    pub hit: bool,
    pub known_miss: bool,
}

/// The named causes of an analysis, sorted, `none` left out.
pub fn named_causes(a: &TraceAnalysis) -> Vec<Cause> {
    let mut v: Vec<Cause> = a
        .causes
        .iter()
        .map(|c| c.cause)
        .filter(|&c| c != Cause::None)
        .collect();
    v.sort();
    v
}

/// Whether an analysis gives a case's expected answer.
pub fn corpus_hit(case: &CorpusCase, a: &TraceAnalysis) -> bool {
    let mut expected = case.expected.to_vec();
    expected.sort();
    let weak = |c: Cause| {
        case.weak_ok.contains(&c)
            && a.finding(c)
                .is_some_and(|f| f.level == ConfidenceLevel::Low)
    };
    let got: Vec<Cause> = named_causes(a)
        .into_iter()
        .filter(|&c| case.smooth || c != Cause::Unexplained)
        .filter(|&c| !weak(c))
        .collect();
    if got != expected {
        return false;
    }
    match case.acting_lr_cut {
        Some(step) => {
            let acted: Vec<u64> = a
                .tests_of(EventKind::LrDecrease)
                .filter(|t| t.acted)
                .map(|t| t.step)
                .collect();
            let near = a.units.steps(1);
            acted.len() == 1 && acted[0].abs_diff(step) <= near
        }
        None => true,
    }
}

/// Reads and analyses one corpus log, as `dropscope investigate` does.
pub fn analyze_case(dir: &Path, case: &CorpusCase) -> Result<TraceAnalysis, String> {
    let path = dir.join(case.file);
    let imported = crate::import::read_trace(&path, &crate::import::ImportOptions::default())
        .map_err(|e| e.to_string())?;
    Ok(analyze_trace(&imported.trace, &AnalyzeOptions::default()))
}

/// Every corpus case under `dir`.
pub fn corpus(dir: &Path) -> Result<Vec<CorpusRow>, String> {
    CORPUS
        .iter()
        .map(|case| {
            let a = analyze_case(dir, case)?;
            Ok(CorpusRow {
                id: case.id.to_string(),
                expected: case.expected.to_vec(),
                got: named_causes(&a),
                low: named_causes(&a)
                    .into_iter()
                    .filter(|&c| {
                        a.finding(c)
                            .is_some_and(|f| f.named_by_test && f.level == ConfidenceLevel::Low)
                    })
                    .collect(),
                acted_lr_cuts: a
                    .tests_of(EventKind::LrDecrease)
                    .filter(|t| t.acted)
                    .map(|t| t.step)
                    .collect(),
                hit: corpus_hit(case, &a),
                known_miss: known_miss(case.id).is_some(),
            })
        })
        .collect()
}

fn causes_text(c: &[Cause], low: &[Cause]) -> String {
    if c.is_empty() {
        "none".into()
    } else {
        c.iter()
            .map(|c| {
                if low.contains(c) {
                    format!("{c} (low)")
                } else {
                    c.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The corpus hit table.
pub fn corpus_table(rows: &[CorpusRow]) -> String {
    let mut out = format!(
        "real public logs (tests/fixtures/real)\n{:<30} {:<16} {:<34} {}\n",
        "case", "expected", "got", "hit"
    );
    for r in rows {
        let mut got = causes_text(&r.got, &r.low);
        if !r.acted_lr_cuts.is_empty() {
            got.push_str(&format!(
                " (cut{} at {})",
                if r.acted_lr_cuts.len() == 1 { "" } else { "s" },
                r.acted_lr_cuts
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push_str(&format!(
            "{:<30} {:<16} {:<34} {}\n",
            r.id,
            causes_text(&r.expected, &[]),
            got,
            match (r.hit, r.known_miss) {
                (true, _) => "yes",
                (false, true) => "no (known miss)",
                (false, false) => "NO",
            }
        ));
    }
    let hits = rows.iter().filter(|r| r.hit).count();
    out.push_str(&format!("{hits} of {} right\n", rows.len()));
    for (id, why) in KNOWN_MISSES {
        out.push_str(&format!("known miss {id}: {why}\n"));
    }
    out
}
