//! Each bundled scenario plants a cause: the analysis must name it under the arm that
//! plants it, in every seed, and not under the control arm. The bundled files run as
//! shipped (each takes a few seconds on 2 cores).

use crate::common::*;

fn run_json(name: &str) -> serde_json::Value {
    let d = temp_dir(&format!("scenario-{name}"));
    let o = run(&[
        "run",
        name,
        "--out",
        d.to_str().unwrap(),
        "--quiet",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{name}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{name}: {e}\n{}", stdout(&o)))
}

fn causes_per_seed(doc: &serde_json::Value, arm: &str) -> Vec<Vec<String>> {
    let arm = doc["arms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == arm)
        .unwrap_or_else(|| panic!("no arm {arm}"));
    arm["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["analysis"]["causes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["cause"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// Runs the bundled scenario, checks its planted cause, and hands back the report.
fn assert_planted(
    name: &str,
    planted_arm: &str,
    control_arm: &str,
    cause: &str,
) -> serde_json::Value {
    let doc = run_json(name);
    let planted = causes_per_seed(&doc, planted_arm);
    let control = causes_per_seed(&doc, control_arm);
    assert_eq!(planted.len(), 3, "{name}: three seeds");
    for (seed, c) in planted.iter().enumerate() {
        assert!(
            c.iter().any(|x| x == cause),
            "{name} {planted_arm} seed #{seed}: {c:?}"
        );
    }
    for (seed, c) in control.iter().enumerate() {
        assert!(
            !c.iter().any(|x| x == cause),
            "{name} {control_arm} seed #{seed}: {c:?}"
        );
    }
    let factor = doc["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cause"] == cause)
        .unwrap_or_else(|| panic!("{name}: no factor comparison for {cause}"));
    assert_eq!(factor["explains"], true, "{name}: {}", factor["statement"]);
    let diff = &factor["difference"];
    assert!(
        diff["low"].as_f64().unwrap() > 0.0 || diff["high"].as_f64().unwrap() < 0.0,
        "{name}: the interval excludes zero: {diff}"
    );
    doc
}

#[test]
fn epoch_memorization_plants_epoch_boundary_drops() {
    assert_planted(
        "epoch-memorization",
        "fresh_each_epoch=false",
        "fresh_each_epoch=true",
        "epoch_boundary",
    );
}

#[test]
fn running_mean_log_plants_the_artifact() {
    assert_planted(
        "running-mean-log",
        "running-mean",
        "per-step",
        "running_mean_artifact",
    );
}

#[test]
fn unshuffled_plants_data_order() {
    assert_planted("unshuffled", "sorted-by-class", "every-epoch", "data_order");
}

#[test]
fn last_batch_batchnorm_plants_last_batch() {
    let doc = assert_planted(
        "last-batch-batchnorm",
        "drop_last=false",
        "drop_last=true",
        "last_batch",
    );
    // The steps after the bad last-batch update recover alike every epoch: that repeating
    // pattern is the last batch's aftermath, not data order.
    for c in causes_per_seed(&doc, "drop_last=false") {
        assert!(!c.iter().any(|x| x == "data_order"), "{c:?}");
    }
}

#[test]
fn warm_restarts_plants_warm_restart() {
    assert_planted("warm-restarts", "cosine-restarts", "cosine", "warm_restart");
}

#[test]
fn digits_overfit_tells_the_logger_artifact_from_real_drops_and_judges_overfitting() {
    let doc = assert_planted(
        "digits-overfit",
        "running-mean",
        "per-step",
        "running_mean_artifact",
    );
    for arm in doc["arms"].as_array().unwrap() {
        let o = &arm["overfitting"];
        assert!(o["best_epoch"].is_u64(), "{o}");
        let verdict = o["verdict"].as_str().unwrap();
        assert!(
            ["overfitting", "not_overfitting", "plateau"].contains(&verdict),
            "{o}"
        );
        let gap = o["gap"].as_f64().unwrap();
        assert!(gap > 0.0, "the seed's situation: a train/val gap: {o}");
    }
}

#[test]
fn lr_step_plants_drops_at_its_lr_cuts() {
    let doc = assert_planted("lr-step", "step", "constant", "lr_change");
    let step = doc["arms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "step")
        .unwrap();
    for cell in step["cells"].as_array().unwrap() {
        let lr = cell["analysis"]["event_stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["event"] == "lr_decrease")
            .expect("lr decreases found");
        assert_eq!(lr["n_events"], 1, "one milestone, at epoch 5");
        // The drops the detector finds right after a cut are the cut's, not unexplained.
        for d in cell["analysis"]["drops"].as_array().unwrap() {
            let s = d["step"].as_u64().unwrap();
            if (940..=984).contains(&s) {
                assert_eq!(d["explained_by"], "lr_change", "{d}");
            }
        }
    }
}
