//! JSON as Python writes it.
//!
//! `json.dumps(float("nan"))` gives a bare `NaN` (and `Infinity`), which is not
//! JSON; Hugging Face and most hand-rolled loggers write them when a run diverges.

use std::borrow::Cow;

const NON_FINITE: [&str; 3] = ["-Infinity", "Infinity", "NaN"];

/// Quotes bare `NaN`, `Infinity` and `-Infinity` outside strings, so a JSON parser
/// reads them as strings that [`super::num::parse_f64`] understands.
/// Never adds or removes a newline, so line numbers stay right.
pub(crate) fn quote_non_finite(text: &str) -> Cow<'_, str> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let (mut i, mut copied) = (0, 0);
    'scan: while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        for token in NON_FINITE {
            if bytes[i..].starts_with(token.as_bytes()) {
                // `i` is at an ASCII byte, hence at a char boundary.
                out.push_str(&text[copied..i]);
                out.push('"');
                out.push_str(token);
                out.push('"');
                i += token.len();
                copied = i;
                continue 'scan;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// A JSON value as a float: a number, or a string such as `"NaN"`.
pub(crate) fn as_f64(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => super::num::parse_f64(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_bare_non_finite_but_not_inside_strings() {
        let line = r#"{"loss": NaN, "lr": -Infinity, "note": "NaN \" Infinity"}"#;
        let v: serde_json::Value = serde_json::from_str(&quote_non_finite(line)).unwrap();
        assert!(as_f64(&v["loss"]).is_some_and(f64::is_nan));
        assert_eq!(as_f64(&v["lr"]), Some(f64::NEG_INFINITY));
        assert_eq!(v["note"], "NaN \" Infinity");
    }
}
