//! Steps logged more than once: a run resumed from a checkpoint appends to the
//! same log and logs the steps since that checkpoint again.
//!
//! The later copy is the one the finished run went on from, so it is kept; the
//! re-logged range is reported, since a drop there may be the resume itself.

use std::collections::BTreeMap;

use crate::trace::{StepRecord, ValRecord};

/// An inclusive range of steps that were logged again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Relogged {
    pub first: u64,
    pub last: u64,
}

/// Keeps the last record of each step, in step order, and the ranges that were
/// logged again (consecutive repeats in file order make one range).
pub(crate) fn keep_last(steps: Vec<StepRecord>) -> (Vec<StepRecord>, Vec<Relogged>) {
    let mut by_step = BTreeMap::new();
    let mut ranges: Vec<Relogged> = Vec::new();
    let mut in_range = false;
    for record in steps {
        let repeated = by_step.insert(record.step, record).is_some();
        match (repeated, in_range, ranges.last_mut()) {
            (true, true, Some(range)) => {
                range.first = range.first.min(record.step);
                range.last = range.last.max(record.step);
            }
            (true, _, _) => ranges.push(Relogged {
                first: record.step,
                last: record.step,
            }),
            (false, _, _) => {}
        }
        in_range = repeated;
    }
    (by_step.into_values().collect(), ranges)
}

/// Keeps the last validation record of each step, in step order.
pub(crate) fn keep_last_val(val: Vec<ValRecord>) -> Vec<ValRecord> {
    let by_step: BTreeMap<u64, ValRecord> = val.into_iter().map(|v| (v.step, v)).collect();
    by_step.into_values().collect()
}

/// The warning for re-logged ranges, or `None` when there are none.
pub(crate) fn warning(ranges: &[Relogged]) -> Option<String> {
    // Enough to locate them; a log with more is broken in a way a list won't explain.
    const SHOWN: usize = 5;
    if ranges.is_empty() {
        return None;
    }
    let mut shown: Vec<String> = ranges
        .iter()
        .take(SHOWN)
        .map(|r| match r.first == r.last {
            true => format!("{}", r.first),
            false => format!("{}-{}", r.first, r.last),
        })
        .collect();
    if ranges.len() > SHOWN {
        shown.push(format!("and {} more ranges", ranges.len() - SHOWN));
    }
    Some(format!(
        "steps {} were logged again (a resumed run?): kept the later copy",
        shown.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(steps: &[(u64, f64)]) -> Vec<StepRecord> {
        steps
            .iter()
            .map(|&(step, loss)| StepRecord {
                step,
                epoch: None,
                batch: None,
                loss,
                lr: None,
                batch_size: None,
            })
            .collect()
    }

    #[test]
    fn a_resumed_range_keeps_the_later_copy_and_is_reported_once() {
        let log = at(&[
            (0, 1.0),
            (1, 0.9),
            (2, 0.8),
            (3, 0.7),
            (1, 0.5),
            (2, 0.4),
            (3, 0.3),
            (4, 0.2),
        ]);
        let (kept, ranges) = keep_last(log);
        let losses: Vec<_> = kept.iter().map(|s| (s.step, s.loss)).collect();
        assert_eq!(losses, [(0, 1.0), (1, 0.5), (2, 0.4), (3, 0.3), (4, 0.2)]);
        assert_eq!(ranges, [Relogged { first: 1, last: 3 }]);
        assert_eq!(
            warning(&ranges).unwrap(),
            "steps 1-3 were logged again (a resumed run?): kept the later copy"
        );
    }

    #[test]
    fn unique_steps_out_of_order_are_sorted_not_reported() {
        let (kept, ranges) = keep_last(at(&[(2, 1.0), (0, 1.0), (1, 1.0)]));
        assert_eq!(kept.iter().map(|s| s.step).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(ranges.is_empty());
        assert_eq!(warning(&ranges), None);
    }
}
