//! The last points, in a fixed-size ring: all the watcher keeps of the series.

/// Steps, losses and log-losses of the most recent `capacity` usable points.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    step: Vec<u64>,
    loss: Vec<f64>,
    log: Vec<f64>,
    /// Points ever pushed.
    count: u64,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2);
        Ring {
            step: vec![0; capacity],
            loss: vec![0.0; capacity],
            log: vec![0.0; capacity],
            count: 0,
        }
    }

    fn capacity(&self) -> usize {
        self.step.len()
    }

    pub(crate) fn push(&mut self, step: u64, loss: f64, log: f64) {
        let i = (self.count % self.capacity() as u64) as usize;
        self.step[i] = step;
        self.loss[i] = loss;
        self.log[i] = log;
        self.count += 1;
    }

    /// Points ever pushed; the newest has index `count - 1`.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Points held.
    pub(crate) fn len(&self) -> usize {
        self.count.min(self.capacity() as u64) as usize
    }

    fn slot(&self, back: usize) -> usize {
        let cap = self.capacity() as u64;
        ((self.count - 1 - back as u64) % cap) as usize
    }

    /// The log-loss `back` points before the newest (0: the newest). `back < len()`.
    pub(crate) fn log_back(&self, back: usize) -> f64 {
        self.log[self.slot(back)]
    }

    /// The step `back` points before the newest. `back < len()`.
    pub(crate) fn step_back(&self, back: usize) -> u64 {
        self.step[self.slot(back)]
    }

    /// The newest `m` points (or all held), oldest first.
    pub(crate) fn tail(&self, m: usize) -> (Vec<u64>, Vec<f64>) {
        let m = m.min(self.len());
        let steps = (0..m).rev().map(|b| self.step[self.slot(b)]).collect();
        let losses = (0..m).rev().map(|b| self.loss[self.slot(b)]).collect();
        (steps, losses)
    }

    /// Sum of the log-losses `from..to` points back (from the newest), exactly.
    pub(crate) fn log_sum(&self, from: usize, to: usize) -> f64 {
        (from..to).map(|b| self.log_back(b)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_points_in_order() {
        let mut r = Ring::new(3);
        for s in 0..5u64 {
            r.push(s, s as f64 + 1.0, s as f64);
        }
        assert_eq!((r.count(), r.len()), (5, 3));
        assert_eq!(r.step_back(0), 4);
        assert_eq!(r.log_back(2), 2.0);
        assert_eq!(r.tail(5), (vec![2, 3, 4], vec![3.0, 4.0, 5.0]));
        assert_eq!(r.log_sum(0, 2), 7.0);
    }
}
