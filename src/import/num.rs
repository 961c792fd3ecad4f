//! Numbers as logs spell them: `NaN`, `inf`, `1e-3`, steps written as `12.0`.

/// Parses a float; `NaN`, `nan`, `inf`, `-Infinity` are accepted (Rust's parser is
/// case-insensitive for them), so a diverged run reads back as it was logged.
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// Parses a count such as a step. pandas writes integer columns that have gaps
/// as floats (`12.0`), so integral floats are accepted too.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let t = s.trim();
    t.parse::<u64>()
        .ok()
        .or_else(|| integral_f64(parse_f64(t)?))
}

/// Parses an epoch; Hugging Face logs fractional epochs (0.25), which are floored.
pub(crate) fn parse_epoch(s: &str) -> Option<u64> {
    let t = s.trim();
    t.parse::<u64>().ok().or_else(|| floor_f64(parse_f64(t)?))
}

/// A float that is a whole non-negative number, as a u64.
pub(crate) fn integral_f64(x: f64) -> Option<u64> {
    (x.fract() == 0.0).then(|| floor_f64(x)).flatten()
}

/// The floor of a finite non-negative float, as a u64.
pub(crate) fn floor_f64(x: f64) -> Option<u64> {
    // 2^64 itself does not fit, hence the strict bound.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    (0.0..LIMIT).contains(&x).then(|| x.floor() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_spellings_parse() {
        assert!(parse_f64("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_f64("inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64("-Infinity"), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn counts_accept_integral_floats_only() {
        assert_eq!(parse_u64("12"), Some(12));
        assert_eq!(parse_u64("12.0"), Some(12));
        assert_eq!(parse_u64("12.5"), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("1e300"), None);
        assert_eq!(parse_epoch("0.25"), Some(0));
        assert_eq!(parse_epoch("2.99"), Some(2));
        assert_eq!(parse_epoch("NaN"), None);
    }
}
