//! Forward-stepwise search for changes against one global trend: fit the trend and the
//! changes found so far, scan the residuals for the clearest further shifts, add them,
//! drop whatever the joint fit does not support, move each change to where the
//! likelihood of its own shape peaks, and repeat.

use serde::{Deserialize, Serialize};

use super::bspline::Spline;
use super::decay;
use super::global::{Fitted, Model, RESIDUAL_BLOCK, Term};
use super::noise::residual_long_run;

/// Settings of the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepwiseConfig {
    /// Knot spacings of the trend spline tried, in points: the one with the best BIC
    /// on the trend alone is used.
    pub spacings: Vec<usize>,
    /// Second-difference penalty of the spline.
    pub penalty: f64,
    /// |z| of a residual shift that makes it a candidate.
    pub z_scan: f64,
    /// |z| a change needs in the joint fit to stay. Set from `DetectConfig::z_global` when
    /// the detector runs (one number, one place).
    #[serde(skip)]
    pub z_keep: f64,
    /// Half-widths of the residual scan's difference of means.
    pub windows: Vec<usize>,
    /// Time constants tried for a change's exponential term.
    pub taus: Vec<f64>,
    /// |z| of the exponential coefficient that earns a change its exponential term.
    pub z_tau: f64,
    /// Points either side searched when placing a change.
    pub radius: usize,
    /// Points either side of the searched range that placing uses, at most.
    pub place_reach: usize,
    pub rounds: usize,
    /// Half-width of the stretch within which a change's placement should land: placing
    /// maximizes the chance of that, not the likelihood. Set from
    /// `DetectConfig::placement_window` when the detector runs.
    #[serde(skip)]
    pub tolerance: usize,
    /// BIC's charge per spline coefficient, in units of ln(n).
    pub bic_charge: f64,
    /// Share of `z_keep` a fresh candidate must show before its exponential term is tried.
    /// Default 0.6.
    pub pre_keep: f64,
    /// Share of the needed |z| below which changes are removed together, not one by one.
    /// Default 0.5.
    pub hopeless: f64,
    /// Closest two changes may be, in points. Default 16.
    pub min_sep: usize,
    /// Points either side within which a residual shift must be the strongest to be a
    /// candidate. Default 40.
    pub peak_half: usize,
}

impl Default for StepwiseConfig {
    fn default() -> Self {
        StepwiseConfig {
            spacings: vec![250, 500, 1000, 2000],
            penalty: 1.0,
            z_scan: 3.0,
            z_keep: 4.5,
            windows: vec![16, 32, 64, 128, 256, 512, 1024],
            taus: vec![30.0, 100.0, 250.0],
            z_tau: 4.0,
            radius: 50,
            place_reach: 300,
            rounds: 4,
            tolerance: 20,
            bic_charge: 1.0,
            pre_keep: 0.6,
            hopeless: 0.5,
            min_sep: 16,
            peak_half: 40,
        }
    }
}

/// A finished search: the joint fit, and the series it was fitted to (the input less the
/// decay shape) so later fits can share its trend.
pub(crate) struct Found {
    pub fit: Fitted,
    pub detrended: Vec<f64>,
    /// Knot spacing and long-run noise factor of the final trend.
    pub spacing: usize,
    pub lambda: f64,
}

/// Changes in `y`, with the final joint fit. `seeds` are changes found by other means:
/// they join the first round's candidates and stay only if the joint fit supports them.
/// The noise's long-run factor is measured on the fit's residuals as the search goes.
pub(crate) fn search(y: &[f64], cfg: &StepwiseConfig, seeds: &[usize]) -> Option<Found> {
    // The decay shape is fitted first to the raw series, where the drops bend it a little,
    // then again with the changes the first search found taken out.
    let first = detrend(y, y);
    let (fit, spacing, lambda) = search_in(&first, cfg, seeds)?;
    if fit.terms.is_empty() {
        return Some(Found {
            fit,
            detrended: first,
            spacing,
            lambda,
        });
    }
    let mut changes = vec![0.0; y.len()];
    for k in 0..fit.terms.len() {
        for (t, c) in changes.iter_mut().enumerate().skip(fit.terms[k].at) {
            *c += fit.term_value(k, t);
        }
    }
    let without: Vec<f64> = y.iter().zip(&changes).map(|(a, c)| a - c).collect();
    let second = detrend(y, &without);
    let mut again: Vec<usize> = seeds.to_vec();
    again.extend(fit.terms.iter().map(|t| t.at));
    let (fit, spacing, lambda) = search_in(&second, cfg, &again)?;
    Some(Found {
        fit,
        detrended: second,
        spacing,
        lambda,
    })
}

/// `y` less the decay shape fitted to `shape_of`; `y` itself when no decay fits.
fn detrend(y: &[f64], shape_of: &[f64]) -> Vec<f64> {
    match decay::fit(shape_of) {
        Some(g) => y.iter().zip(&g).map(|(a, b)| a - b).collect(),
        None => y.to_vec(),
    }
}

/// One search against a fixed detrended series: the fit, with its knot spacing and noise
/// factor.
fn search_in(
    detrended: &[f64],
    cfg: &StepwiseConfig,
    seeds: &[usize],
) -> Option<(Fitted, usize, f64)> {
    let n = detrended.len();
    // The stiffest trend first: changes not yet modelled would make a BIC choice favour
    // closer knots, which then absorb the small changes.
    let stiff = spacings(n, cfg).max()?;
    let mut model = Model::new(detrended, Spline::new(n, stiff, cfg.penalty), 1.0);
    let mut fit = model.fit(&[])?;
    let mut lambda = residual_long_run(&fit.resid);
    model.set_lambda(lambda);
    fit = model.fit(&[])?;
    let mut tried: Vec<usize> = Vec::new();
    for round in 0..cfg.rounds {
        let mut cands = scan(&fit, cfg, &tried);
        if round == 0 {
            for &s in seeds {
                if s > 0 && s < n && cands.iter().all(|c| c.abs_diff(s) >= cfg.min_sep) {
                    cands.push(s);
                }
            }
        }
        if cands.is_empty() {
            break;
        }
        tried.extend(&cands);
        let settled: Vec<usize> = fit.terms.iter().map(|t| t.at).collect();
        let mut terms = fit.terms.clone();
        terms.extend(cands.iter().map(|&at| Term { at, tau: None }));
        terms.sort_by_key(|t| t.at);
        let Some(f) = model.fit(&terms) else {
            break;
        };
        // The scan's widest windows place a change tens of points off, where its step
        // alone looks weak: candidates are placed before they are judged.
        let f = place(&model, f, cfg);
        // Most candidates are noise: they go before the costlier steps.
        fit = prune(&model, f, cfg.z_keep * cfg.pre_keep, cfg.hopeless)?;
        // With the changes modelled, the trend may need fewer knots than it seemed to.
        let (mut m, mut f) = choose_model(detrended, lambda, &fit.terms, cfg)?;
        // Unmodelled changes inflate the residuals' long-run variance: with the changes
        // found so far modelled, it is measured again.
        let l = residual_long_run(&f.resid);
        if l != lambda {
            lambda = l;
            m.set_lambda(l);
            f = m.fit(&fit.terms)?;
        }
        if m.spline().spacing() != model.spline().spacing() {
            model = m;
            fit = f;
            // What the old trend absorbed may stand out now.
            tried.clear();
        } else if model.lambda() != lambda {
            // The same trend (its columns cached) with the new noise scale.
            model.set_lambda(lambda);
            fit = f;
        }
        fit = choose_taus(&model, fit, &settled, cfg);
        let before: Vec<usize> = fit.terms.iter().map(|t| t.at).collect();
        fit = prune(&model, fit, cfg.z_keep, cfg.hopeless)?;
        fit = place(&model, fit, cfg);
        fit = prune(&model, fit, cfg.z_keep, cfg.hopeless)?;
        if fit.terms.iter().all(|t| settled.contains(&t.at)) && before.len() == settled.len() {
            break;
        }
    }
    let spacing = model.spline().spacing();
    Some((fit, spacing, model.lambda()))
}

/// The z of each candidate change fitted alone with the search's changes (a plain step or
/// a step with a recovery, whichever fits best) against the search's final trend, and
/// where placing it on that fit puts it. `None` when the joint fit cannot be made.
pub(crate) fn support(
    found: &Found,
    cfg: &StepwiseConfig,
    cands: &[usize],
) -> Option<Vec<(f64, usize)>> {
    let detrended = &found.detrended;
    let terms = &found.fit.terms;
    let n = detrended.len();
    let model = Model::new(
        detrended,
        Spline::new(n, found.spacing, cfg.penalty),
        found.lambda,
    );
    Some(
        cands
            .iter()
            .map(|&at| {
                if at == 0 || at >= n || terms.iter().any(|t| t.at == at) {
                    return (0.0, at);
                }
                let shapes = std::iter::once(None).chain(cfg.taus.iter().map(|&t| Some(t)));
                let mut best: Option<(f64, Fitted)> = None;
                for tau in shapes {
                    let mut all = terms.to_vec();
                    all.push(Term { at, tau });
                    all.sort_by_key(|t| t.at);
                    let Some(f) = model.fit(&all) else {
                        continue;
                    };
                    let rss: f64 = f.resid.iter().map(|v| v * v).sum();
                    if best.as_ref().is_none_or(|b| rss < b.0) {
                        best = Some((rss, f));
                    }
                }
                let Some((_, f)) = best else {
                    return (0.0, at);
                };
                let k = f.terms.iter().position(|t| t.at == at).unwrap_or(0);
                let z = f.z[k];
                // Placed as the search places its own, on the joint fit.
                let placed = place(&model, f, cfg);
                (z, placed.terms.get(k).map_or(at, |t| t.at))
            })
            .collect(),
    )
}

/// Knot spacings that leave at least two spans: the configured ones, and half the series
/// (a single cubic bend, for a curve the decay shape already follows).
fn spacings(n: usize, cfg: &StepwiseConfig) -> impl Iterator<Item = usize> + '_ {
    cfg.spacings
        .iter()
        .copied()
        .chain(std::iter::once(n.div_ceil(2)))
        .filter(move |&sp| sp > 0 && n >= 2 * sp)
}

/// The spline whose trend has the best BIC given `terms`. Unmodelled changes favour
/// closer knots a little, but a smooth decay is followed by a few wide spans.
pub(crate) fn choose_model<'a>(
    y: &'a [f64],
    lambda: f64,
    terms: &[Term],
    cfg: &StepwiseConfig,
) -> Option<(Model<'a>, Fitted)> {
    let n = y.len();
    let mut best: Option<(f64, Model<'a>, Fitted)> = None;
    for sp in spacings(n, cfg) {
        let model = Model::new(y, Spline::new(n, sp, cfg.penalty), lambda);
        let Some(f) = model.fit(terms) else {
            continue;
        };
        let rss: f64 = f.resid.iter().map(|v| v * v).sum();
        let bic = n as f64 * (rss / n as f64).max(1e-300).ln()
            + cfg.bic_charge * model.spline().len() as f64 * (n as f64).ln();
        if best.as_ref().is_none_or(|b| bic < b.0) {
            best = Some((bic, model, f));
        }
    }
    best.map(|b| (b.1, b.2))
}

/// Local maxima of the residuals' strongest windowed shift, away from known changes.
fn scan(fit: &Fitted, cfg: &StepwiseConfig, tried: &[usize]) -> Vec<usize> {
    let r = &fit.resid;
    let n = r.len();
    let mut pre = vec![0.0; n + 1];
    for (t, v) in r.iter().enumerate() {
        pre[t + 1] = pre[t] + v;
    }
    let sd: Vec<f64> = fit.block_var.iter().map(|v| v.sqrt().max(1e-12)).collect();
    let mut best = vec![0.0f64; n];
    for &w in &cfg.windows {
        let k = (2.0 / w as f64).sqrt();
        for t in w..=n.saturating_sub(w) {
            let d = (pre[t] - pre[t - w]) - (pre[t + w] - pre[t]);
            let z = d / w as f64 / (k * sd[t / RESIDUAL_BLOCK]);
            if z.abs() > best[t].abs() {
                best[t] = z;
            }
        }
    }
    let near = |t: usize, list: &[usize], d: usize| list.iter().any(|&c| c.abs_diff(t) < d);
    let known: Vec<usize> = fit.terms.iter().map(|t| t.at).collect();
    let mut out = Vec::new();
    let mut t = 1;
    while t < n {
        let a = best[t].abs();
        if a >= cfg.z_scan {
            let lo = t.saturating_sub(cfg.peak_half);
            let hi = (t + cfg.peak_half + 1).min(n);
            if best[lo..hi].iter().all(|v| v.abs() <= a)
                && !near(t, &known, cfg.min_sep)
                && !(near(t, tried, 4) && a < cfg.z_keep)
            {
                out.push(t);
                t += cfg.peak_half;
                continue;
            }
        }
        t += 1;
    }
    out
}

/// Gives each change the exponential term (of the time constants tried) that fits best,
/// when its coefficient is significant: a drop that partly comes back, or a spike.
fn choose_taus<'a>(
    model: &Model<'a>,
    mut fit: Fitted,
    settled: &[usize],
    cfg: &StepwiseConfig,
) -> Fitted {
    for k in 0..fit.terms.len() {
        if settled.contains(&fit.terms[k].at) {
            continue;
        }
        let mut best: Option<(f64, Fitted)> = None;
        let mut terms = fit.terms.clone();
        for &tau in &cfg.taus {
            terms[k].tau = Some(tau);
            let Some(f) = model.fit(&terms) else {
                continue;
            };
            let rss: f64 = f.resid.iter().map(|v| v * v).sum();
            if best.as_ref().is_none_or(|b| rss < b.0) {
                best = Some((rss, f));
            }
        }
        terms[k].tau = None;
        let Some(base) = model.fit(&terms) else {
            continue;
        };
        fit = base;
        if let Some((rss, f)) = best {
            let rss0: f64 = fit.resid.iter().map(|v| v * v).sum();
            let var = fit.var_at(fit.terms[k].at);
            // Chi-square of the extra column against the local noise.
            if var > 0.0 && (rss0 - rss) / var >= cfg.z_tau * cfg.z_tau {
                fit = f;
            }
        }
    }
    fit
}

/// Removes the weakest change below `z_keep`, one at a time, refitting after each; those
/// far below it go all at once first.
fn prune<'a>(model: &Model<'a>, mut fit: Fitted, z_keep: f64, hopeless: f64) -> Option<Fitted> {
    let hopeless = z_keep * hopeless;
    if (0..fit.terms.len()).any(|k| fit.z[k].abs() < hopeless) {
        let terms: Vec<Term> = (0..fit.terms.len())
            .filter(|&k| fit.z[k].abs() >= hopeless)
            .map(|k| fit.terms[k])
            .collect();
        fit = model.fit(&terms)?;
    }
    loop {
        let weakest = (0..fit.terms.len())
            .filter(|&k| fit.z[k].abs() < z_keep)
            .min_by(|&a, &b| fit.z[a].abs().total_cmp(&fit.z[b].abs()));
        let Some(k) = weakest else {
            return Some(fit);
        };
        let mut terms = fit.terms.clone();
        terms.remove(k);
        fit = model.fit(&terms)?;
    }
}

/// The index whose `±half` neighbourhood holds the most posterior mass, given
/// log-likelihoods and a flat prior: for a small change the likelihood is flat and
/// ragged over tens of points, and its single peak is more often outside a tolerance
/// around the truth than the centre of its heaviest stretch is.
fn window_map(loglik: &[f64], half: usize) -> Option<usize> {
    let top = loglik.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return None;
    }
    let w: Vec<f64> = loglik.iter().map(|l| (l - top).exp()).collect();
    let mut pre = vec![0.0; w.len() + 1];
    for (i, v) in w.iter().enumerate() {
        pre[i + 1] = pre[i] + v;
    }
    let mass = |i: usize| pre[(i + half + 1).min(w.len())] - pre[i.saturating_sub(half)];
    let most = (0..w.len()).map(mass).fold(0.0, f64::max);
    // A sharp peak lies in every window within `half` of it, and points where the
    // likelihood is nil (the amplitude would flip sign) add nothing: runs of windows of
    // equal mass, of which the one centred nearest the likelihood's peak.
    let peak = (0..w.len()).max_by(|&a, &b| w[a].total_cmp(&w[b]))?;
    (0..w.len())
        .filter(|&i| mass(i) >= most * (1.0 - 1e-12))
        .min_by_key(|&i| i.abs_diff(peak))
}

/// Reduction of the squared residuals `r` (an intercept always fitted) from a change of
/// the given shape at each index in `from..=to`, its amplitude refitted there and keeping
/// its sign; `-inf` where the sign flips. The shape is `s` times a step plus `e` times an
/// exponential of time constant `tau`, as fitted: a drop that partly comes back is a poor
/// step, and fitted as one it is cheapest placed early (points before a drop cost less
/// than points at its bottom). Prefix sums make each index O(1).
fn placement_gain(
    r: &[f64],
    from: usize,
    to: usize,
    (s, e): (f64, f64),
    tau: Option<f64>,
) -> Vec<f64> {
    let m = r.len();
    let mf = m as f64;
    let mean = r.iter().sum::<f64>() / mf;
    let rc: Vec<f64> = r.iter().map(|v| v - mean).collect();
    let mut suffix = vec![0.0; m + 1];
    for i in (0..m).rev() {
        suffix[i] = suffix[i + 1] + rc[i];
    }
    // Exponentially weighted suffix sums: ew[i] = sum_{j >= i} rho^(j - i) rc[j].
    let rho = tau.map_or(0.0, |t| (-1.0 / t).exp());
    let mut ew = vec![0.0; m + 1];
    if tau.is_some() {
        for i in (0..m).rev() {
            ew[i] = rc[i] + rho * ew[i + 1];
        }
    }
    let e = if tau.is_some() { e } else { 0.0 };
    (from..=to)
        .map(|p| {
            let cnt = m - p;
            let c = cnt as f64;
            let rn = rho.powi(cnt.min(i32::MAX as usize) as i32);
            let (s2, s22) = if tau.is_some() {
                (
                    (1.0 - rn) / (1.0 - rho),
                    (1.0 - rn * rn) / (1.0 - rho * rho),
                )
            } else {
                (0.0, 0.0)
            };
            let sx = s * c + e * s2;
            let sxx = s * s * c + 2.0 * s * e * s2 + e * e * s22;
            let sxr = s * suffix[p] + e * ew[p];
            let var = sxx - sx * sx / mf;
            // The shape carries the fitted sign: its amplitude must stay positive.
            if var > 0.0 && sxr > 0.0 {
                sxr * sxr / var
            } else {
                f64::NEG_INFINITY
            }
        })
        .collect()
}

/// Moves each change to where the profile likelihood of its fitted shape peaks, within
/// `radius`, with the trend and the other changes held as fitted.
fn place<'a>(model: &Model<'a>, fit: Fitted, cfg: &StepwiseConfig) -> Fitted {
    let n = model.len();
    let mut terms = fit.terms.clone();
    for k in 0..terms.len() {
        let at = terms[k].at;
        let prev = if k > 0 {
            terms[k - 1].at + cfg.min_sep
        } else {
            1
        };
        let next = terms
            .get(k + 1)
            .map_or(n, |t| t.at.saturating_sub(cfg.min_sep));
        let lo_p = at.saturating_sub(cfg.radius).max(prev);
        let hi_p = (at + cfg.radius).min(next.saturating_sub(1));
        if lo_p >= hi_p {
            continue;
        }
        let lo = lo_p
            .saturating_sub(cfg.place_reach)
            .max(prev.saturating_sub(cfg.min_sep));
        let hi = (hi_p + cfg.place_reach).min(next + cfg.min_sep).min(n);
        // The residuals with this change's own contribution put back.
        let r: Vec<f64> = (lo..hi)
            .map(|t| fit.resid[t] + fit.term_value(k, t))
            .collect();
        let (s, e) = fit.coef[k];
        let jump = s + e;
        if jump == 0.0 {
            continue;
        }
        let var_noise = fit.var_at(at).max(1e-300);
        // The change's own fitted shape: profiling over shapes as well would let an
        // exponential fit the noise and pull plain steps off.
        let gain: Vec<f64> = placement_gain(&r, lo_p - lo, hi_p - lo, (s, e), terms[k].tau)
            .iter()
            .map(|g| g / (2.0 * var_noise))
            .collect();
        if let Some(p) = window_map(&gain, cfg.tolerance) {
            terms[k].at = lo_p + p;
        }
    }
    if terms == fit.terms {
        return fit;
    }
    model.fit(&terms).unwrap_or(fit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::prepare;
    use crate::synth::{Difficulty, NoiseKind, SynthSpec, planted};

    #[test]
    fn finds_planted_drops_and_nothing_on_a_clean_curve() {
        let cfg = StepwiseConfig::default();
        let s = planted(&SynthSpec::new(NoiseKind::Gaussian, Difficulty::Easy, 1));
        let p = prepare(&s.steps, &s.loss);
        let f = search(p.values(), &cfg, &[]).unwrap().fit;
        for d in &s.drops {
            let k = f
                .terms
                .iter()
                .position(|t| t.at.abs_diff(d.step as usize) <= 20);
            assert!(k.is_some_and(|k| f.jump[k] < 0.0), "{:?} {:?}", d, f.terms);
        }
        let s = planted(&SynthSpec::new(NoiseKind::Gaussian, Difficulty::Clean, 1));
        let p = prepare(&s.steps, &s.loss);
        let f = search(p.values(), &cfg, &[]).unwrap().fit;
        assert!(f.terms.is_empty(), "{:?}", f.terms);
    }

    #[test]
    fn most_hard_drops_are_found_where_they_were_planted() {
        // The level `detect` uses.
        let cfg = StepwiseConfig {
            z_keep: 3.8,
            ..StepwiseConfig::default()
        };
        let (mut planted_n, mut found_n, mut hits) = (0, 0, 0);
        for seed in 1..=6 {
            let s = planted(&SynthSpec::new(NoiseKind::Gaussian, Difficulty::Hard, seed));
            let p = prepare(&s.steps, &s.loss);
            let f = search(p.values(), &cfg, &[]).unwrap().fit;
            let drops: Vec<usize> = (0..f.terms.len())
                .filter(|&k| f.jump[k] < 0.0)
                .map(|k| f.terms[k].at)
                .collect();
            planted_n += s.drops.len();
            found_n += drops.len();
            hits += s
                .drops
                .iter()
                .filter(|d| drops.iter().any(|&a| a.abs_diff(d.step as usize) <= 20))
                .count();
        }
        // Drops of 0.3 to 0.75 noise sigmas: most, not all, are within reach.
        assert!(hits * 10 >= planted_n * 6, "{hits} of {planted_n}");
        assert!(hits * 10 >= found_n * 7, "{hits} of {found_n} found");
    }

    #[test]
    fn a_seed_stays_only_if_the_joint_fit_supports_it() {
        let cfg = StepwiseConfig::default();
        let s = planted(&SynthSpec::new(NoiseKind::Gaussian, Difficulty::Clean, 2));
        let p = prepare(&s.steps, &s.loss);
        let f = search(p.values(), &cfg, &[3000, 7000]).unwrap().fit;
        assert!(f.terms.is_empty(), "{:?}", f.terms);
    }

    #[test]
    fn support_backs_a_real_drop_and_not_noise_and_places_it() {
        let cfg = StepwiseConfig::default();
        let mut s = planted(&SynthSpec::new(NoiseKind::Gaussian, Difficulty::Clean, 4));
        // A drop of 0.6 noise sigmas at 5000, offered 12 points late.
        for v in s.loss.iter_mut().skip(5000) {
            *v *= (-0.06f64).exp();
        }
        let p = prepare(&s.steps, &s.loss);
        let mut found = search(p.values(), &cfg, &[]).unwrap();
        // Offered as the local tests' drops are when the search found nothing near them.
        found.fit = {
            let others: Vec<Term> = found
                .fit
                .terms
                .iter()
                .copied()
                .filter(|t| t.at.abs_diff(5000) > 40)
                .collect();
            let model = Model::new(
                &found.detrended,
                Spline::new(s.loss.len(), found.spacing, cfg.penalty),
                found.lambda,
            );
            model.fit(&others).unwrap()
        };
        let z = support(&found, &cfg, &[5012, 2500]).unwrap();
        assert!(z[0].0 < -4.0, "{z:?}");
        assert!(z[0].1.abs_diff(5000) <= 8, "{z:?}");
        assert!(z[1].0.abs() < 3.0, "{z:?}");
    }

    #[test]
    fn a_sharp_peak_is_placed_on_itself_and_a_flat_stretch_at_its_heaviest_window() {
        // Log-likelihoods: a sharp peak at 30 among nil points (a sign flip) on its left.
        let mut ll = vec![f64::NEG_INFINITY; 20];
        ll.extend((20..100).map(|i| -((i as f64 - 30.0).powi(2))));
        assert_eq!(window_map(&ll, 20), Some(30));
        // A low broad bump at 70 outweighs a slightly higher narrow one at 20.
        let ll: Vec<f64> = (0..100)
            .map(|i| {
                let i = i as f64;
                let narrow = 0.5 - (i - 20.0).powi(2);
                let broad = -((i - 70.0) / 15.0).powi(2);
                narrow.max(broad)
            })
            .collect();
        assert_eq!(window_map(&ll, 20), Some(70));
        assert_eq!(window_map(&[f64::NEG_INFINITY; 5], 2), None);
    }
}
