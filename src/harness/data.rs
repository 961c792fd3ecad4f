//! Training data: generators, the digits set, a user's CSV; label noise; orderings.
//!
//! Everything here is plain Rust on the host: the trainer uploads what it needs.
//! Each random choice has its own seed (data, label noise, shuffling), so a
//! scenario can hold one fixed while another varies.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::InputError;
use crate::scenario::{DataSource, DataSpec, Shuffle, val_size};

/// Examples in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub x: Vec<f32>,
    pub y: Vec<u32>,
    pub features: usize,
    pub classes: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    fn subset(&self, idx: &[usize]) -> Dataset {
        let d = self.features;
        let mut x = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            x.extend_from_slice(&self.x[i * d..(i + 1) * d]);
        }
        Dataset {
            x,
            y: idx.iter().map(|&i| self.y[i]).collect(),
            features: d,
            classes: self.classes,
        }
    }
}

/// Derives independent seeds from one cell seed (SplitMix64 over a salt), so that the
/// streams for data, noise, init and shuffling never share state.
pub fn derive_seed(seed: u64, salt: &str) -> u64 {
    let mut z = seed
        ^ salt.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Class centres and spread of the clusters generator, kept so fresh examples can be drawn.
#[derive(Debug, Clone)]
struct Clusters {
    centres: Vec<Vec<f32>>,
}

impl Clusters {
    fn new(spec: &DataSpec, rng: &mut ChaCha8Rng) -> Self {
        // Random directions scaled so that two centres are `separation` apart on average
        // in units of the within-class standard deviation (which is 1).
        let d = spec.features;
        let scale = spec.separation / std::f64::consts::SQRT_2;
        let centres = (0..spec.classes)
            .map(|_| {
                let v: Vec<f64> = (0..d).map(|_| StandardNormal.sample(rng)).collect();
                let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
                v.iter().map(|a| (a / norm * scale) as f32).collect()
            })
            .collect();
        Clusters { centres }
    }

    fn draw(&self, n: usize, rng: &mut ChaCha8Rng) -> Dataset {
        let k = self.centres.len();
        let d = self.centres[0].len();
        // Balanced classes in random order.
        let mut y: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
        y.shuffle(rng);
        let mut x = Vec::with_capacity(n * d);
        for &c in &y {
            for &m in &self.centres[c as usize] {
                let e: f64 = StandardNormal.sample(rng);
                x.push(m + e as f32);
            }
        }
        Dataset {
            x,
            y,
            features: d,
            classes: k,
        }
    }
}

/// The training and validation sets of one cell, and how to get each epoch's training set.
#[derive(Debug, Clone)]
pub struct CellData {
    pub train: Dataset,
    pub val: Dataset,
    fresh: Option<(Clusters, u64)>,
    label_noise: f64,
    noise_seed: u64,
}

impl CellData {
    pub fn load(spec: &DataSpec, cell_seed: u64, scenario_path: &Path) -> Result<Self, InputError> {
        let data_seed = spec.seed.unwrap_or_else(|| derive_seed(cell_seed, "data"));
        let noise_seed = spec
            .label_noise_seed
            .unwrap_or_else(|| derive_seed(cell_seed, "label-noise"));
        let mut rng = ChaCha8Rng::seed_from_u64(data_seed);
        let mut fresh = None;
        let all = match spec.source {
            DataSource::Clusters => {
                let generator = Clusters::new(spec, &mut rng);
                let all = generator.draw(spec.samples, &mut rng);
                if spec.fresh_each_epoch {
                    fresh = Some((generator, data_seed));
                }
                all
            }
            DataSource::Digits => digits(spec.samples, &mut rng),
            DataSource::Csv => {
                let p = spec
                    .path
                    .as_deref()
                    .ok_or_else(|| InputError::new(scenario_path, "data.path is missing"))?;
                read_csv(p, &spec.label_column)?
            }
        };
        let n_val = val_size(all.len(), spec.validation_fraction);
        // The split keeps the data's own order inside each part, so `shuffle = "none"`
        // still means the order the data came in.
        let mut pick: Vec<usize> = (0..all.len()).collect();
        pick.shuffle(&mut rng);
        let mut val_idx = pick[..n_val].to_vec();
        let mut train_idx = pick[n_val..].to_vec();
        val_idx.sort_unstable();
        train_idx.sort_unstable();
        let mut train = all.subset(&train_idx);
        let val = all.subset(&val_idx);
        flip_labels(&mut train, spec.label_noise, noise_seed);
        Ok(CellData {
            train,
            val,
            fresh,
            label_noise: spec.label_noise,
            noise_seed,
        })
    }

    /// The training set for `epoch`: the same set every epoch, unless the scenario asks
    /// for fresh data, in which case epoch 0 uses the first draw and later epochs new ones.
    pub fn train_for_epoch(&self, epoch: u64) -> Option<Dataset> {
        let (generator, seed) = self.fresh.as_ref()?;
        if epoch == 0 {
            return None;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(*seed, &format!("fresh-{epoch}")));
        let mut d = generator.draw(self.train.len(), &mut rng);
        flip_labels(
            &mut d,
            self.label_noise,
            derive_seed(self.noise_seed, &format!("fresh-{epoch}")),
        );
        Some(d)
    }
}

/// Replaces a fraction of labels by a different, uniformly chosen class.
pub fn flip_labels(d: &mut Dataset, fraction: f64, seed: u64) {
    if fraction <= 0.0 || d.classes < 2 {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_flip = (d.len() as f64 * fraction).round() as usize;
    let mut idx: Vec<usize> = (0..d.len()).collect();
    idx.shuffle(&mut rng);
    for &i in &idx[..n_flip] {
        let shift = rng.random_range(1..d.classes as u32);
        d.y[i] = (d.y[i] + shift) % d.classes as u32;
    }
}

fn digits(samples: usize, rng: &mut ChaCha8Rng) -> Dataset {
    let ds = smartcore::dataset::digits::load_dataset();
    let n = ds.num_samples;
    let d = ds.num_features;
    let all = Dataset {
        // Pixels are 0..16: scale to 0..1 so one learning rate suits every source.
        x: ds.data.iter().map(|v| v / 16.0).collect(),
        y: ds.target.iter().map(|&t| t as u32).collect(),
        features: d,
        classes: 10,
    };
    if samples >= n {
        return all;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(rng);
    let mut keep = idx[..samples].to_vec();
    keep.sort_unstable();
    all.subset(&keep)
}

/// Columns quoted in an error: a few, each cut short. A file that is not a data set (a
/// path pointing at the wrong file, say /etc/passwd) must not have its content echoed.
const QUOTED_COLUMNS: usize = 8;
const QUOTED_COLUMN_CHARS: usize = 24;

fn missing_label_message(headers: &csv::StringRecord, label_column: &str) -> String {
    if headers.len() < 2 {
        return format!(
            "no label column '{label_column}': the first line is not a comma-separated header \
             of feature and label columns (is this a CSV data set?)"
        );
    }
    let names: Vec<String> = headers
        .iter()
        .take(QUOTED_COLUMNS)
        .map(|h| crate::error::excerpt(h, QUOTED_COLUMN_CHARS))
        .collect();
    let more = if headers.len() > QUOTED_COLUMNS {
        ", ..."
    } else {
        ""
    };
    format!(
        "no label column '{label_column}' (columns: {}{more})",
        names.join(", ")
    )
}

/// Reads numeric feature columns and a label column (integers or names) from a CSV.
/// Features are standardized so that the scenario's learning rate means the same on any file.
pub fn read_csv(path: &Path, label_column: &str) -> Result<Dataset, InputError> {
    let mut rdr = csv::ReaderBuilder::new()
        .from_path(path)
        .map_err(|e| InputError::new(path, e.to_string()))?;
    let headers = rdr
        .headers()
        .map_err(|e| InputError::new(path, e.to_string()).at_line(1))?
        .clone();
    let label_at = headers
        .iter()
        .position(|h| h.trim() == label_column)
        .ok_or_else(|| {
            InputError::new(path, missing_label_message(&headers, label_column))
                .at_line(1)
                .field(label_column)
        })?;
    let d = headers.len() - 1;
    if d == 0 {
        return Err(InputError::new(path, "no feature columns besides the label").at_line(1));
    }
    let mut x = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| InputError::new(path, e.to_string()).at_line(line))?;
        for (j, cell) in rec.iter().enumerate() {
            if j == label_at {
                labels.push(cell.trim().to_string());
                continue;
            }
            let v: f32 = cell.trim().parse().map_err(|_| {
                InputError::new(
                    path,
                    format!("'{}' is not a number", crate::error::excerpt(cell, 40)),
                )
                .at_line(line)
                .field(&headers[j])
            })?;
            if !v.is_finite() {
                return Err(InputError::new(path, "features must be finite")
                    .at_line(line)
                    .field(&headers[j]));
            }
            x.push(v);
        }
    }
    if labels.is_empty() {
        return Err(InputError::new(path, "no data rows"));
    }
    let mut classes: Vec<String> = labels.clone();
    // Integer labels keep their numeric order; names are sorted.
    if classes.iter().all(|c| c.parse::<i64>().is_ok()) {
        classes.sort_by_key(|c| c.parse::<i64>().unwrap_or(0));
    } else {
        classes.sort();
    }
    classes.dedup();
    if classes.len() < 2 {
        return Err(
            InputError::new(path, "the label column has a single class").field(label_column)
        );
    }
    let y = labels
        .iter()
        .map(|l| classes.iter().position(|c| c == l).unwrap_or(0) as u32)
        .collect();
    let n = labels.len();
    for j in 0..d {
        let col = (0..n).map(|i| x[i * d + j] as f64);
        let mean = col.clone().sum::<f64>() / n as f64;
        let var = col.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        let sd = var.sqrt().max(1e-8);
        for i in 0..n {
            x[i * d + j] = ((x[i * d + j] as f64 - mean) / sd) as f32;
        }
    }
    Ok(Dataset {
        x,
        y,
        features: d,
        classes: classes.len(),
    })
}

/// The order in which one epoch visits the training examples.
pub fn epoch_order(labels: &[u32], shuffle: Shuffle, shuffle_seed: u64, epoch: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..labels.len()).collect();
    match shuffle {
        Shuffle::EveryEpoch => {
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(shuffle_seed, &epoch.to_string()));
            idx.shuffle(&mut rng);
        }
        Shuffle::Once => {
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(shuffle_seed, "once"));
            idx.shuffle(&mut rng);
        }
        Shuffle::None => {}
        Shuffle::SortedByClass => idx.sort_by_key(|&i| labels[i]),
    }
    idx
}

/// Splits an epoch's order into minibatches; the last may be short unless dropped.
pub fn batches(order: &[usize], batch_size: usize, drop_last: bool) -> Vec<&[usize]> {
    order
        .chunks(batch_size)
        .filter(|c| !drop_last || c.len() == batch_size)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DataSpec {
        DataSpec {
            samples: 300,
            features: 8,
            classes: 3,
            ..DataSpec::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_data_and_another_seed_other_data() {
        let p = Path::new("s.toml");
        let a = CellData::load(&spec(), 7, p).unwrap();
        let b = CellData::load(&spec(), 7, p).unwrap();
        let c = CellData::load(&spec(), 8, p).unwrap();
        assert_eq!(a.train, b.train);
        assert_ne!(a.train.x, c.train.x);
        assert_eq!(a.train.len(), 240);
        assert_eq!(a.val.len(), 60);
    }

    #[test]
    fn label_noise_flips_the_asked_fraction_to_other_classes() {
        let p = Path::new("s.toml");
        let clean = CellData::load(&spec(), 1, p).unwrap();
        let noisy = CellData::load(
            &DataSpec {
                label_noise: 0.25,
                ..spec()
            },
            1,
            p,
        )
        .unwrap();
        let flipped = clean
            .train
            .y
            .iter()
            .zip(&noisy.train.y)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(flipped, 60);
        assert_eq!(clean.train.x, noisy.train.x);
    }

    #[test]
    fn orderings_do_what_they_say() {
        let labels = [2, 0, 1, 0, 2, 1];
        assert_eq!(
            epoch_order(&labels, Shuffle::None, 0, 3),
            [0, 1, 2, 3, 4, 5]
        );
        assert_eq!(
            epoch_order(&labels, Shuffle::SortedByClass, 0, 0),
            [1, 3, 2, 5, 0, 4]
        );
        let once0 = epoch_order(&labels, Shuffle::Once, 5, 0);
        assert_eq!(once0, epoch_order(&labels, Shuffle::Once, 5, 9));
        let e0 = epoch_order(&[0; 64], Shuffle::EveryEpoch, 5, 0);
        let e1 = epoch_order(&[0; 64], Shuffle::EveryEpoch, 5, 1);
        assert_ne!(e0, e1);
    }

    #[test]
    fn the_last_batch_is_short_unless_dropped() {
        let order: Vec<usize> = (0..10).collect();
        let kept = batches(&order, 4, false);
        assert_eq!(kept.iter().map(|b| b.len()).collect::<Vec<_>>(), [4, 4, 2]);
        assert_eq!(batches(&order, 4, true).len(), 2);
    }

    #[test]
    fn fresh_data_differs_each_epoch_but_keeps_its_size() {
        let s = DataSpec {
            fresh_each_epoch: true,
            ..spec()
        };
        let d = CellData::load(&s, 3, Path::new("s.toml")).unwrap();
        assert!(d.train_for_epoch(0).is_none());
        let e1 = d.train_for_epoch(1).unwrap();
        let e2 = d.train_for_epoch(2).unwrap();
        assert_eq!(e1.len(), d.train.len());
        assert_ne!(e1.x, e2.x);
    }

    #[test]
    fn digits_are_the_real_uci_set() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let d = digits(2000, &mut rng);
        assert_eq!((d.len(), d.features, d.classes), (1797, 64, 10));
        assert!(d.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
}
