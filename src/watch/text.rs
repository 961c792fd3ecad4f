//! One line per alert, for the terminal or as JSON Lines: the CLI's renderer.

use super::alert::{Alert, AlertKind, DivergenceReason};

/// `step N: ...`, one line, no newline.
pub fn line(a: &Alert) -> String {
    let delay = if a.at > a.step {
        format!(" (confirmed at step {})", a.at)
    } else {
        String::new()
    };
    let what = match &a.kind {
        AlertKind::Divergence {
            reason: DivergenceReason::NonFinite,
        } => "divergence: the loss is NaN or infinite".to_string(),
        AlertKind::Divergence {
            reason:
                DivergenceReason::SustainedRise {
                    ratio,
                    window,
                    held,
                },
        } => format!(
            "divergence: the loss has stayed {ratio:.1}x above its best level for {held} points (mean over {window} points)"
        ),
        AlertKind::SpikeStarted {
            height_log,
            episode,
        } => format!(
            "spike started: the loss is {:.1}x its level{}",
            height_log.exp(),
            if *episode {
                ""
            } else {
                " (a sharp rise, no episode)"
            }
        ),
        AlertKind::SpikeRecovered { started, peak_log } => format!(
            "spike recovered: the spike from step {started} (peak {:.1}x) is over",
            peak_log.exp()
        ),
        AlertKind::Drop {
            log,
            rel,
            z,
            shape,
            explained_by,
            event,
        } => format!(
            "drop {:+.3} log-loss ({:+.1}%, z {z:+.1}, {}), explained by {explained_by}{}",
            -log,
            -100.0 * rel,
            format!("{shape:?}").to_lowercase(),
            event
                .map(|e| format!(" (at {})", e.label()))
                .unwrap_or_default()
        ),
        AlertKind::Overfitting {
            epoch,
            best_epoch,
            best_val_loss,
            val_loss,
            p_value,
        } => format!(
            "overfitting: validation loss has turned up from epoch {epoch} (best {best_val_loss:.4} at epoch {best_epoch}, now {val_loss:.4}, Mann-Kendall p = {p_value:.3}); keep the epoch-{best_epoch} checkpoint"
        ),
    };
    format!("step {}: {what}{delay}", a.step)
}

/// The alert as one JSON object on one line.
pub fn json_line(a: &Alert) -> String {
    serde_json::to_string(a).unwrap_or_default()
}

/// A notice (the log restarted, the watcher is waiting) in either form.
pub fn notice(message: &str, json: bool) -> String {
    if json {
        serde_json::json!({"kind": "notice", "message": message}).to_string()
    } else {
        format!("notice: {message}")
    }
}
