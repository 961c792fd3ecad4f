//! Forward-stepwise search for changes against one global trend: fit the trend and the
//! changes found so far, scan the residuals for the clearest further shifts, add them,
//! drop whatever the joint fit does not support, move each change to where the
//! likelihood of its own shape peaks, and repeat.

use super::bspline::Spline;
use super::global::{Fitted, Model, NOISE_BLOCK, Term};

/// Settings of the search.
#[derive(Debug, Clone)]
pub(crate) struct StepwiseConfig {
    /// Knot spacings of the trend spline tried, in points: the one with the best BIC
    /// on the trend alone is used.
    pub spacings: Vec<usize>,
    /// Second-difference penalty of the spline.
    pub penalty: f64,
    /// |z| of a residual shift that makes it a candidate.
    pub z_scan: f64,
    /// |z| a change needs in the joint fit to stay.
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
    /// BIC's charge per spline coefficient, in units of ln(n).
    pub bic_charge: f64,
}

impl Default for StepwiseConfig {
    fn default() -> Self {
        StepwiseConfig {
            spacings: vec![250, 500, 1000, 2000],
            penalty: 1.0,
            z_scan: 3.0,
            z_keep: 4.5,
            windows: vec![16, 32, 64, 128, 256],
            taus: vec![30.0, 100.0, 250.0],
            z_tau: 2.0,
            radius: 50,
            place_reach: 300,
            rounds: 4,
            bic_charge: 1.0,
        }
    }
}

/// Share of `z_keep` a fresh candidate must show before its exponential term is tried.
const PRE_KEEP: f64 = 0.6;
/// Share of the needed |z| below which changes are removed together, not one by one.
const HOPELESS: f64 = 0.5;
/// Closest two changes may be, in points.
const MIN_SEP: usize = 16;
/// Points either side within which a residual shift must be the strongest to be a candidate.
const PEAK_HALF: usize = 40;

/// Changes found, with the final joint fit.
pub(crate) fn search(y: &[f64], lambda: f64, cfg: &StepwiseConfig) -> Option<Fitted> {
    // The stiffest trend first: changes not yet modelled would make a BIC choice favour
    // closer knots, which then absorb the small changes.
    let n = y.len();
    let stiff = cfg
        .spacings
        .iter()
        .copied()
        .filter(|&sp| n >= 2 * sp)
        .max()?;
    let mut model = Model::new(y, Spline::new(n, stiff, cfg.penalty), lambda);
    let mut fit = model.fit(&[])?;
    let mut tried: Vec<usize> = Vec::new();
    for _ in 0..cfg.rounds {
        let cands = scan(&fit, cfg, &tried);
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
        fit = prune(&model, f, cfg.z_keep * PRE_KEEP)?;
        // With the changes modelled, the trend may need fewer knots than it seemed to.
        let (m, f) = choose_model(y, lambda, &fit.terms, cfg)?;
        if m.spline().spacing() != model.spline().spacing() {
            model = m;
            fit = f;
            // What the old trend absorbed may stand out now.
            tried.clear();
        }
        fit = choose_taus(&model, fit, &settled, cfg);
        let before: Vec<usize> = fit.terms.iter().map(|t| t.at).collect();
        fit = prune(&model, fit, cfg.z_keep)?;
        fit = place(&model, fit, cfg);
        fit = prune(&model, fit, cfg.z_keep)?;
        if fit.terms.iter().all(|t| settled.contains(&t.at)) && before.len() == settled.len() {
            break;
        }
    }
    Some(fit)
}

/// The spline whose trend alone has the best BIC. Unmodelled changes favour closer
/// knots a little, but a smooth decay is followed by a few wide spans.
pub(crate) fn choose_model<'a>(
    y: &'a [f64],
    lambda: f64,
    terms: &[Term],
    cfg: &StepwiseConfig,
) -> Option<(Model<'a>, Fitted)> {
    let n = y.len();
    let mut best: Option<(f64, Model<'a>, Fitted)> = None;
    for &sp in &cfg.spacings {
        if n < 2 * sp {
            continue;
        }
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
            let z = d / w as f64 / (k * sd[t / NOISE_BLOCK]);
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
            let lo = t.saturating_sub(PEAK_HALF);
            let hi = (t + PEAK_HALF + 1).min(n);
            if best[lo..hi].iter().all(|v| v.abs() <= a)
                && !near(t, &known, MIN_SEP)
                && !(near(t, tried, 4) && a < cfg.z_keep)
            {
                out.push(t);
                t += PEAK_HALF;
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
fn prune<'a>(model: &Model<'a>, mut fit: Fitted, z_keep: f64) -> Option<Fitted> {
    let hopeless = z_keep * HOPELESS;
    if fit.z.iter().any(|z| z.abs() < hopeless) {
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

/// Moves each change to where the profile likelihood of its fitted shape peaks, within
/// `radius`, with the trend and the other changes held as fitted.
fn place<'a>(model: &Model<'a>, fit: Fitted, cfg: &StepwiseConfig) -> Fitted {
    let n = model.len();
    let mut terms = fit.terms.clone();
    for k in 0..terms.len() {
        let at = terms[k].at;
        let prev = if k > 0 { terms[k - 1].at + MIN_SEP } else { 1 };
        let next = terms.get(k + 1).map_or(n, |t| t.at.saturating_sub(MIN_SEP));
        let lo_p = at.saturating_sub(cfg.radius).max(prev);
        let hi_p = (at + cfg.radius).min(next.saturating_sub(1));
        if lo_p >= hi_p {
            continue;
        }
        let lo = lo_p
            .saturating_sub(cfg.place_reach)
            .max(prev.saturating_sub(MIN_SEP));
        let hi = (hi_p + cfg.place_reach).min(next + MIN_SEP).min(n);
        // The residuals with this change's own contribution put back.
        let r: Vec<f64> = (lo..hi)
            .map(|t| fit.resid[t] + fit.term_value(k, t))
            .collect();
        let (s, e) = fit.coef[k];
        let jump = s + e;
        if jump == 0.0 {
            continue;
        }
        let tau = terms[k].tau;
        let shape = |d: usize| (s + tau.map_or(0.0, |tau| e * (-(d as f64) / tau).exp())) / jump;
        let m = (hi - lo) as f64;
        let rbar = r.iter().sum::<f64>() / m;
        let mut best = (f64::NEG_INFINITY, at);
        for p in lo_p..=hi_p {
            let (mut sx, mut sxx, mut sxr) = (0.0, 0.0, 0.0);
            for (i, &v) in r.iter().enumerate().skip(p - lo) {
                let x = shape(i + lo - p);
                sx += x;
                sxx += x * x;
                sxr += x * (v - rbar);
            }
            let var = sxx - sx * sx / m;
            // The amplitude must keep the fitted sign.
            if var > 0.0 && sxr * jump > 0.0 {
                let score = sxr * sxr / var;
                if score > best.0 {
                    best = (score, p);
                }
            }
        }
        terms[k].at = best.1;
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
        let f = search(p.values(), 1.0, &cfg).unwrap();
        for d in &s.drops {
            let k = f
                .terms
                .iter()
                .position(|t| t.at.abs_diff(d.step as usize) <= 20);
            assert!(k.is_some_and(|k| f.jump[k] < 0.0), "{:?} {:?}", d, f.terms);
        }
        let s = planted(&SynthSpec::new(NoiseKind::Gaussian, Difficulty::Clean, 1));
        let p = prepare(&s.steps, &s.loss);
        let f = search(p.values(), 1.0, &cfg).unwrap();
        assert!(f.terms.is_empty(), "{:?}", f.terms);
    }
}
