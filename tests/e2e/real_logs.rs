//! The corpus of real public logs (tests/fixtures/real/README.md): `dropscope investigate`
//! must give the causes read off each log's numbers. A case dropscope cannot get right yet
//! keeps its expectation here and is listed in `KNOWN_MISSES` (the test prints it, and
//! `dropscope bench attribute` shows it), rather than having its expectation weakened.

use std::path::Path;

use serde_json::Value;

use crate::common::{run, stdout};

/// Case id, file, the causes expected ("none" is the empty list), whether the log is
/// smooth (then no `unexplained` either), and for an LR case the one cut that acts.
struct Case {
    id: &'static str,
    file: &'static str,
    expected: &'static [&'static str],
    smooth: bool,
    acting_cut: Option<u64>,
    /// Causes the README's expectation allows at low confidence only.
    weak_ok: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        id: "hf_alpaca_llama7b_fullft_3ep",
        file: "hf_alpaca_llama7b_fullft_3ep.trainer_state.json",
        expected: &["epoch_boundary"],
        smooth: false,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "hf_qlora_25ep_groupbylen",
        file: "hf_qlora_25ep_groupbylen.trainer_state.json",
        // The README: epoch_boundary (high) under a 50-step length-grouping oscillation,
        // which is a data-order pattern (medium).
        expected: &["data_order", "epoch_boundary"],
        smooth: false,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "lf_qwen25_3b_fullft_7ep",
        file: "lf_qwen25_3b_fullft_7ep.trainer_log.jsonl",
        expected: &["epoch_boundary"],
        smooth: false,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "hf_t5_cnndm_3ep",
        file: "hf_t5_cnndm_3ep.trainer_state.json",
        expected: &[],
        smooth: true,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "tb_t5_cnndm_3ep",
        file: "tb_t5_cnndm_3ep.events.out.tfevents.1742826235.DESKTOP-41L2EO3.107869.0",
        expected: &[],
        smooth: true,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "hf_baichuan2_7b_lora_3ep",
        file: "hf_baichuan2_7b_lora_3ep.trainer_state.json",
        expected: &[],
        smooth: true,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "d2_medwaste_steplr",
        file: "d2_medwaste_steplr.metrics.json",
        expected: &[],
        smooth: true,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "d2_nyu_multistep",
        file: "d2_nyu_multistep.converted.csv",
        // lr_change @39000 only; an early drop (step 1939) may stay unexplained.
        expected: &["lr_change"],
        smooth: false,
        acting_cut: Some(39000),
        weak_ok: &[],
    },
    Case {
        id: "llmc_gpt2_124m",
        file: "llmc_gpt2_124m.converted.csv",
        expected: &[],
        smooth: true,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "hf_mistral7b_translator_4ep",
        file: "hf_mistral7b_translator_4ep.trainer_state.json",
        expected: &["epoch_boundary"],
        smooth: false,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "hf_tinyllama_sft_2ep",
        file: "hf_tinyllama_sft_2ep.trainer_state.json",
        expected: &[],
        smooth: true,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "hf_nsllm_cpt_1ep",
        file: "hf_nsllm_cpt_1ep.trainer_state.json",
        expected: &[],
        smooth: true,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "lf_qwen25_7b_medical_lora_3ep",
        file: "lf_qwen25_7b_medical_lora_3ep.trainer_log.jsonl",
        expected: &["epoch_boundary"],
        smooth: false,
        acting_cut: None,
        weak_ok: &[],
    },
    Case {
        id: "pl_slm_lm_10ep",
        file: "pl_slm_lm_10ep.metrics.csv",
        expected: &[],
        smooth: true,
        acting_cut: None,
        // "none (medium); a weak epoch_boundary is also acceptable (low)".
        weak_ok: &["epoch_boundary"],
    },
    Case {
        id: "d2_orbital_warmup_step",
        file: "d2_orbital_warmup_step.metrics.json",
        expected: &["lr_change"],
        smooth: false,
        acting_cut: Some(1000),
        weak_ok: &[],
    },
    Case {
        id: "d2_watermeters_twostep",
        file: "d2_watermeters_twostep.metrics.json",
        expected: &["lr_change"],
        smooth: false,
        acting_cut: Some(1000),
        weak_ok: &[],
    },
];

/// Cases whose expectation dropscope does not meet yet, each with the reason.
const KNOWN_MISSES: &[(&str, &str)] = &[(
    "d2_watermeters_twostep",
    "the first cut's excess over the trend (-6.5% on a curve falling ~6% per 100 iterations, 90 points) is not significant to dropscope; the README's reading is low confidence",
)];

fn investigate(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real")
        .join(file);
    let out = run(&["investigate", &path.to_string_lossy(), "--format", "json"]);
    assert!(
        out.status.success(),
        "{file}: {}",
        crate::common::stderr(&out)
    );
    serde_json::from_str(&stdout(&out)).expect("investigate --format json is JSON")
}

/// What is wrong with one case's answer, if anything.
fn check(case: &Case, doc: &Value) -> Result<(), String> {
    let mut got: Vec<String> = doc["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| !(case.weak_ok.iter().any(|w| c["cause"] == *w) && c["level"] == "low"))
        .filter_map(|c| c["cause"].as_str())
        .filter(|&c| c != "none" && (case.smooth || c != "unexplained"))
        .map(String::from)
        .collect();
    got.sort();
    if got != case.expected {
        return Err(format!("expected {:?}, got {:?}", case.expected, got));
    }
    if let Some(cut) = case.acting_cut {
        let interval = doc["log_units"]["interval_steps"].as_u64().unwrap_or(1);
        let acted: Vec<u64> = doc["event_tests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["event"] == "lr_decrease" && t["acted"] == true)
            .filter_map(|t| t["step"].as_u64())
            .collect();
        if acted.len() != 1 || acted[0].abs_diff(cut) > interval {
            return Err(format!(
                "expected only the cut at {cut} to act, got {acted:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn every_real_public_log_gets_the_causes_its_numbers_show() {
    let mut failures = Vec::new();
    for case in CASES {
        let result = check(case, &investigate(case.file));
        let miss = KNOWN_MISSES.iter().find(|(id, _)| *id == case.id);
        match (result, miss) {
            (Ok(()), Some(_)) => {
                failures.push(format!("{}: passes now; take it off KNOWN_MISSES", case.id))
            }
            (Ok(()), None) => {}
            (Err(e), Some((_, why))) => println!("known miss {}: {e} ({why})", case.id),
            (Err(e), None) => failures.push(format!("{}: {e}", case.id)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_bench_corpus_lists_the_same_cases_and_answers() {
    use dropscope::attribute::bench::{CORPUS, KNOWN_MISSES as BENCH_MISSES};
    assert_eq!(CORPUS.len(), CASES.len());
    for (a, b) in CASES.iter().zip(CORPUS) {
        assert_eq!(a.id, b.id);
        assert_eq!(a.file, b.file);
        let mut want: Vec<&str> = b.expected.iter().map(|c| c.as_str()).collect();
        want.sort();
        assert_eq!(a.expected, want.as_slice(), "{}", a.id);
        assert_eq!(a.smooth, b.smooth, "{}", a.id);
        assert_eq!(a.acting_cut, b.acting_lr_cut, "{}", a.id);
    }
    let ids = |m: &[(&str, &str)]| m.iter().map(|x| x.0.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(KNOWN_MISSES), ids(BENCH_MISSES));
}

#[test]
fn a_length_grouped_fine_tune_has_its_staircase_measured_over_whole_periods() {
    // hf_qlora: a 50-step cycle from length-grouped batches on top of an epoch staircase
    // of about -18% (README: per boundary -2% to -29%, from windows averaged over whole
    // periods). Measured over whole periods the type-level test names it at high
    // confidence with about that effect; a line through points sees the cycle's phase.
    let doc = investigate("hf_qlora_25ep_groupbylen.trainer_state.json");
    assert_eq!(
        doc["signatures"]["within_epoch_period_steps"], 50,
        "{}",
        doc["signatures"]
    );
    let eb = doc["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cause"] == "epoch_boundary")
        .expect("epoch_boundary is named");
    assert_eq!(eb["level"], "high", "{eb}");
    let effect = eb["effect_log"]["estimate"].as_f64().unwrap();
    assert!((-0.4..=-0.1).contains(&effect), "{eb}");
    assert!(
        eb["evidence_data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "whole_periods" && e["period_steps"] == 50),
        "{eb}"
    );
}
