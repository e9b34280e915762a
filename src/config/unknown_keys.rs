//! Every unknown key of a YAML file at once: serde stops at the first one (three typos would
//! take three runs), so the file is walked against the JSON Schema of its raw type, which
//! lists the keys each mapping accepts.
//!
//! Owns: that walk. Pure: the text comes from `load.rs`; positions come from `locate.rs`.
//! Never decides what a key means (the raw types and the validators do).

use serde_json::Value;

/// `(path, key)` of each key the schema does not accept (`hosts[2]`, `polcy`), mappings in
/// key order. Empty when the text is not YAML or the schema accepts every key.
pub fn unknown_keys(text: &str, schema: &Value) -> Vec<(String, String)> {
    let Ok(doc) = serde_norway::from_str::<Value>(text) else { return Vec::new() };
    let mut out = Vec::new();
    walk(&doc, schema, schema, "", &mut out);
    out
}

fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/")) {
        Some(pointer) => root.pointer(&format!("/{pointer}")).unwrap_or(schema),
        None => schema,
    }
}

fn walk(node: &Value, schema: &Value, root: &Value, path: &str, out: &mut Vec<(String, String)>) {
    let schema = resolve(schema, root);
    if let Some(alternatives) = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(Value::as_array) {
        // The alternative that fits best (fewest unknown keys) speaks for the node.
        let best = alternatives
            .iter()
            .filter(|alt| fits_type(node, resolve(alt, root)))
            .map(|alt| {
                let mut found = Vec::new();
                walk(node, alt, root, path, &mut found);
                found
            })
            .min_by_key(Vec::len);
        out.extend(best.unwrap_or_default());
        return;
    }
    match node {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
            for (key, value) in map {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match properties.and_then(|p| p.get(key)) {
                    Some(sub) => walk(value, sub, root, &child, out),
                    None if closed => out.push((path.to_owned(), key.clone())),
                    None => {
                        if let Some(extra) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                            walk(value, extra, root, &child, out);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, value) in items.iter().enumerate() {
                    walk(value, item, root, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Whether an alternative could describe the node at all (an object schema for a mapping…).
fn fits_type(node: &Value, schema: &Value) -> bool {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return true,
    };
    let name = match node {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    types.contains(&name) || (name == "integer" && types.contains(&"number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::PolicyFile;

    #[test]
    fn every_unknown_key_is_found_in_one_pass() {
        let schema = serde_json::to_value(schemars::schema_for!(PolicyFile)).unwrap();
        let text = "limts:\n  max_seconds: 5\nrules:\n  - id: a\n    acton: allow\n    commands: [uptime]\n  - id: b\n    comands: [x]\nnetwork:\n  allow_cidr: []\n";
        let found = unknown_keys(text, &schema);
        let mut keys: Vec<(&str, &str)> = found.iter().map(|(p, k)| (p.as_str(), k.as_str())).collect();
        keys.sort();
        assert_eq!(keys, [("", "limts"), ("network", "allow_cidr"), ("rules[0]", "acton"), ("rules[1]", "comands")]);
        assert!(unknown_keys("rules: []\n", &schema).is_empty());
    }
}
