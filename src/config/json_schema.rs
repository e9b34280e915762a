//! Published JSON Schemas made portable: what schemars generates, minus the vocabulary that
//! only schemars knows.
//!
//! schemars marks Rust integer widths with `format: "uint64"`, `"uint32"`, `"int64"`, …
//! Those are not JSON Schema formats; validators in MCP clients (ajv in the TypeScript SDK)
//! warn about each one on every connect. The width is expressed in standard vocabulary
//! instead: unsigned integers get `minimum: 0`, and the `format` is removed.
//!
//! Owns: `standardize`, applied to every tool input/output schema and to `sshwarden schema`.
//! Never changes what a schema accepts beyond the sign of unsigned integers.

use serde_json::{Map, Value};

/// Formats defined by JSON Schema 2020-12 (validation, section 7.3); any other is dropped.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Rewrites every non-standard `format` in `schema`, recursively.
pub fn standardize(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            standardize_format(map);
            for v in map.values_mut() {
                standardize(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(standardize),
        _ => {}
    }
}

/// `standardize` for the object form rmcp keeps tool schemas in.
pub fn standardize_object(schema: &Map<String, Value>) -> Map<String, Value> {
    let mut v = Value::Object(schema.clone());
    standardize(&mut v);
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A tool schema as compact as its meaning allows, since every tool definition costs the
/// model context on every turn: no `$schema` (2020-12 is MCP's default dialect), no
/// `"default": null` (an absent optional means the same), and with `keep_descriptions`
/// false (output schemas, which the client validates and the model need not read) no
/// descriptions. Only keyword positions are touched, never property names.
pub fn compact(schema: &mut Value, keep_descriptions: bool) {
    let Value::Object(map) = schema else { return };
    map.remove("$schema");
    if map.get("default").is_some_and(Value::is_null) {
        map.remove("default");
    }
    if !keep_descriptions && map.get("description").is_some_and(Value::is_string) {
        map.remove("description");
    }
    for (key, child) in map.iter_mut() {
        match (key.as_str(), child) {
            ("properties" | "$defs" | "definitions", Value::Object(named)) => {
                named.values_mut().for_each(|s| compact(s, keep_descriptions));
            }
            ("anyOf" | "oneOf" | "allOf" | "prefixItems", Value::Array(list)) => {
                list.iter_mut().for_each(|s| compact(s, keep_descriptions));
            }
            ("items" | "not" | "additionalProperties", s) => compact(s, keep_descriptions),
            _ => {}
        }
    }
}

fn standardize_format(map: &mut Map<String, Value>) {
    // A property *named* `format` holds a schema, not a format keyword.
    let Some(Value::String(format)) = map.get("format") else {
        return;
    };
    if STANDARD_FORMATS.contains(&format.as_str()) {
        return;
    }
    let unsigned = format.starts_with("uint");
    map.remove("format");
    if unsigned && !map.contains_key("minimum") {
        map.insert("minimum".into(), Value::from(0));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unsigned_formats_become_minimum_zero() {
        let mut s = json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer", "format": "uint64", "minimum": 0},
                "b": {"type": ["integer", "null"], "format": "uint32"},
                "c": {"type": "integer", "format": "int64"},
                "d": {"type": "number", "format": "double"},
                "e": {"type": "string", "format": "date-time"},
                "format": {"type": "string"}
            },
            "$defs": {"X": {"anyOf": [{"type": "integer", "format": "uint"}]}}
        });
        standardize(&mut s);
        assert_eq!(s["properties"]["a"], json!({"type": "integer", "minimum": 0}));
        assert_eq!(s["properties"]["b"], json!({"type": ["integer", "null"], "minimum": 0}));
        assert_eq!(s["properties"]["c"], json!({"type": "integer"}));
        assert_eq!(s["properties"]["d"], json!({"type": "number"}));
        assert_eq!(s["properties"]["e"]["format"], "date-time");
        assert_eq!(s["properties"]["format"], json!({"type": "string"}));
        assert_eq!(s["$defs"]["X"]["anyOf"][0], json!({"type": "integer", "minimum": 0}));
    }

    #[test]
    fn no_schemars_format_survives_in_generated_schemas() {
        let mut s = serde_json::to_value(schemars::schema_for!(crate::mcp::params::RunResult)).unwrap_or_default();
        assert!(s.to_string().contains("uint"), "the test must see what schemars emits");
        standardize(&mut s);
        assert!(!s.to_string().contains("\"format\""), "{s}");
    }
}
