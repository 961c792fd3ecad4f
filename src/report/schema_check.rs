//! A small JSON Schema validator for the keywords `report.schema.json` uses, so tests
//! can hold report.json to the committed schema without a heavy dependency. It rejects
//! any keyword it does not know: a schema that silently stops being checked is worse
//! than a failing test.

use serde_json::Value;

const ANNOTATIONS: [&str; 4] = ["$schema", "title", "description", "$defs"];

pub fn validate(schema: &Value, doc: &Value) -> Result<(), String> {
    check(schema, schema, doc, "$")
}

fn check(root: &Value, s: &Value, v: &Value, at: &str) -> Result<(), String> {
    let Some(s) = s.as_object() else {
        return match s {
            Value::Bool(true) => Ok(()),
            _ => Err(format!("{at}: unsupported schema {s}")),
        };
    };
    for (k, want) in s {
        match k.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => {
                let name = want
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .ok_or_else(|| format!("{at}: unsupported $ref {want}"))?;
                let target = root
                    .get("$defs")
                    .and_then(|d| d.get(name))
                    .ok_or_else(|| format!("{at}: unknown $ref {name}"))?;
                check(root, target, v, at)?;
            }
            "type" => {
                let types: Vec<&str> = match want {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(a) => a.iter().filter_map(|t| t.as_str()).collect(),
                    _ => return Err(format!("{at}: bad type {want}")),
                };
                if !types.iter().any(|t| is_type(v, t)) {
                    return Err(format!("{at}: {v} is not of type {types:?}"));
                }
            }
            "enum" => {
                if !want.as_array().is_some_and(|a| a.contains(v)) {
                    return Err(format!("{at}: {v} not in {want}"));
                }
            }
            "const" => {
                if want != v {
                    return Err(format!("{at}: {v} is not {want}"));
                }
            }
            "minimum" => {
                if let (Some(x), Some(m)) = (v.as_f64(), want.as_f64())
                    && x < m
                {
                    return Err(format!("{at}: {x} < {m}"));
                }
            }
            "properties" => {
                if let (Some(props), Some(o)) = (want.as_object(), v.as_object()) {
                    for (name, ps) in props {
                        if let Some(x) = o.get(name) {
                            check(root, ps, x, &format!("{at}.{name}"))?;
                        }
                    }
                }
            }
            "required" => {
                if let Some(o) = v.as_object() {
                    for r in want
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.as_str())
                    {
                        if !o.contains_key(r) {
                            return Err(format!("{at}: missing required {r}"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(o) = v.as_object() {
                    let known = s.get("properties").and_then(|p| p.as_object());
                    for (name, x) in o {
                        if known.is_some_and(|k| k.contains_key(name)) {
                            continue;
                        }
                        match want {
                            Value::Bool(false) => {
                                return Err(format!("{at}: unexpected property {name}"));
                            }
                            Value::Bool(true) => {}
                            other => check(root, other, x, &format!("{at}.{name}"))?,
                        }
                    }
                }
            }
            "propertyNames" => {
                if let Some(o) = v.as_object() {
                    for name in o.keys() {
                        check(
                            root,
                            want,
                            &Value::String(name.clone()),
                            &format!("{at}[key {name}]"),
                        )?;
                    }
                }
            }
            "items" => {
                if let Some(a) = v.as_array() {
                    for (i, x) in a.iter().enumerate() {
                        check(root, want, x, &format!("{at}[{i}]"))?;
                    }
                }
            }
            "anyOf" | "oneOf" => {
                let subs = want.as_array().ok_or_else(|| format!("{at}: bad {k}"))?;
                let errs: Vec<String> = subs
                    .iter()
                    .filter_map(|sub| check(root, sub, v, at).err())
                    .collect();
                let passed = subs.len() - errs.len();
                if passed == 0 {
                    return Err(format!("{at}: matches none of {k}: {}", errs.join(" / ")));
                }
                if k == "oneOf" && passed > 1 {
                    return Err(format!("{at}: matches {passed} branches of oneOf"));
                }
            }
            other => return Err(format!("{at}: unsupported keyword {other}")),
        }
    }
    Ok(())
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_u64() || v.is_i64() || v.as_f64().is_some_and(|x| x.fract() == 0.0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_validator_catches_what_it_claims_to() {
        let s = json!({"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}},
            "required": ["a"], "additionalProperties": false});
        assert!(validate(&s, &json!({"a": 1})).is_ok());
        assert!(validate(&s, &json!({"a": -1})).is_err());
        assert!(validate(&s, &json!({"a": 1, "b": 2})).is_err());
        assert!(validate(&s, &json!({})).is_err());
        assert!(
            validate(
                &json!({"oneOf": [{"const": 1}, {"type": "integer"}]}),
                &json!(1)
            )
            .is_err()
        );
        assert!(validate(&json!({"format": "date"}), &json!(1)).is_err());
    }
}
