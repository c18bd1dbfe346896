//! Post-processing of a converted schema: inlining definitions used once (or tiny ones), merging single-member
//! `allOf`s and folding nullable `anyOf`s, so the model reads less.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

/// A definition whose JSON is at most this long is inlined at every use: a `$ref` plus its `$defs` entry would
/// cost about as much.
const TINY_DEFINITION_BYTES: usize = 48;

pub(super) fn compact_len(value: &Value) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |text| text.len())
}

/// Deepest JSON nesting an inlined schema may reach. Inlining follows chains of definitions (`A` holds `B` holds
/// `C` …), so a document can nest far deeper through its `$ref`s than any one inline schema (capped by
/// `MAX_SCHEMA_DEPTH` in `convert.rs`); every later pass over the schema recurses this deep.
pub(super) const MAX_INLINED_DEPTH: usize = 256;

/// Why inlining stopped: the schema would grow past its byte budget or nest too deep. Inlining copies a definition
/// at every use, and a definition may hold uses of others, so a small document can otherwise expand exponentially.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExpansionLimit {
    Bytes,
    Depth,
}

/// Replaces `$ref`s to definitions that are used once, or are tiny, by the definition itself, unless the
/// definition can reach itself. Returns the definitions that must stay. The copies inlining makes may add at most
/// `max_added_bytes` (compact JSON) and nest at most [`MAX_INLINED_DEPTH`] levels; beyond either it stops with
/// the limit it hit.
pub(super) fn inline_definitions(
    root: &mut Map<String, Value>,
    mut defs: Map<String, Value>,
    max_added_bytes: usize,
) -> Result<Map<String, Value>, ExpansionLimit> {
    if defs.is_empty() {
        return Ok(defs);
    }
    let mut use_counts: HashMap<String, usize> = HashMap::new();
    let mut edges: HashMap<String, Vec<String>> = HashMap::new();
    for value in root.values() {
        collect_def_refs(value, &mut |name| {
            *use_counts.entry(name.to_owned()).or_default() += 1
        });
    }
    for (name, body) in &defs {
        let mut targets = Vec::new();
        collect_def_refs(body, &mut |target| {
            *use_counts.entry(target.to_owned()).or_default() += 1;
            targets.push(target.to_owned());
        });
        edges.insert(name.clone(), targets);
    }
    let mut inlinable: HashMap<String, Inlinable> = HashMap::new();
    for (name, body) in &defs {
        let used_once = use_counts.get(name).copied().unwrap_or(0) <= 1;
        let bytes = compact_len(body);
        if (used_once || bytes <= TINY_DEFINITION_BYTES) && !reaches_itself(name, &edges) {
            let definition = Inlinable {
                body: body.clone(),
                bytes,
            };
            inlinable.insert(name.clone(), definition);
        }
    }
    if inlinable.is_empty() {
        return Ok(defs);
    }
    defs.retain(|name, _| !inlinable.contains_key(name));
    // What inlining may still add, in bytes of copied definitions.
    let mut budget = max_added_bytes;
    for value in root.values_mut() {
        substitute_refs(value, &inlinable, &mut budget, 1)?;
    }
    for body in defs.values_mut() {
        substitute_refs(body, &inlinable, &mut budget, 1)?;
    }
    Ok(defs)
}

/// A definition to inline, with its size as compact JSON (what each copy costs the budget).
struct Inlinable {
    body: Value,
    bytes: usize,
}

fn def_name_of(reference: &str) -> Option<&str> {
    reference.strip_prefix("#/$defs/")
}

fn collect_def_refs(value: &Value, visit: &mut dyn FnMut(&str)) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => {
                        if let Some(name) = def_name_of(reference) {
                            visit(name);
                        }
                    }
                    // Enum and const members are data, not schemas.
                    ("enum" | "const" | "default" | "examples", _) => {}
                    _ => collect_def_refs(child, visit),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_def_refs(item, visit)),
        _ => {}
    }
}

fn reaches_itself(start: &str, edges: &HashMap<String, Vec<String>>) -> bool {
    let mut stack: Vec<&str> = edges
        .get(start)
        .map(|targets| targets.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut seen: HashSet<&str> = HashSet::new();
    while let Some(current) = stack.pop() {
        if current == start {
            return true;
        }
        if seen.insert(current)
            && let Some(targets) = edges.get(current)
        {
            stack.extend(targets.iter().map(String::as_str));
        }
    }
    false
}

/// Annotation keywords where the referring schema's value wins over the definition's when both are present.
const ANNOTATIONS: [&str; 5] = ["description", "title", "default", "examples", "deprecated"];

/// Inlines the definitions `value` refers to, paying each copy's size from `budget`; `depth` is the JSON nesting
/// of `value` in the finished schema.
fn substitute_refs(
    value: &mut Value,
    inlinable: &HashMap<String, Inlinable>,
    budget: &mut usize,
    depth: usize,
) -> Result<(), ExpansionLimit> {
    if depth > MAX_INLINED_DEPTH {
        return Err(ExpansionLimit::Depth);
    }
    match value {
        Value::Object(object) => {
            let target = match object.get("$ref") {
                Some(Value::String(reference)) => {
                    def_name_of(reference).and_then(|name| inlinable.get(name))
                }
                _ => None,
            };
            if let Some(definition) = target {
                *budget = budget
                    .checked_sub(definition.bytes)
                    .ok_or(ExpansionLimit::Bytes)?;
                object.remove("$ref");
                let mut replacement = definition.body.clone();
                // The definition may itself refer to other inlinable definitions (never to itself). Each inlining
                // counts as a level even though its members land in `object`: a chain of definitions that are only
                // `$ref`s (`A` → `B` → …) would otherwise recurse without bound at one depth.
                substitute_refs(&mut replacement, inlinable, budget, depth + 1)?;
                merge_into(object, replacement);
            }
            for (key, child) in object.iter_mut() {
                if !matches!(key.as_str(), "enum" | "const" | "default" | "examples") {
                    substitute_refs(child, inlinable, budget, depth + 1)?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                substitute_refs(item, inlinable, budget, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Merges an inlined definition into the object that referred to it: the referrer's annotations win, and a clash
/// on any assertion keyword falls back to `allOf` so no constraint is lost.
fn merge_into(referrer: &mut Map<String, Value>, definition: Value) {
    match definition {
        Value::Object(definition) => {
            let clashes = definition
                .keys()
                .any(|key| referrer.contains_key(key) && !ANNOTATIONS.contains(&key.as_str()));
            if clashes {
                match referrer.get_mut("allOf") {
                    Some(Value::Array(members)) => members.push(Value::Object(definition)),
                    _ => {
                        referrer.insert(
                            "allOf".to_owned(),
                            Value::Array(vec![Value::Object(definition)]),
                        );
                    }
                }
                return;
            }
            for (key, value) in definition {
                referrer.entry(key).or_insert(value);
            }
        }
        // A `true`/`false` schema: `false` must still reject, `true` adds nothing.
        Value::Bool(false) => {
            referrer.insert("not".to_owned(), json!({}));
        }
        _ => {}
    }
}

/// Final compaction pass, bottom-up: merges single-member `allOf`s and collapses `anyOf [X, {"type":"null"}]`.
pub(super) fn simplify_tree(schema: &mut Map<String, Value>) {
    for (key, child) in schema.iter_mut() {
        match key.as_str() {
            "enum" | "const" | "default" | "examples" => {}
            _ => simplify_value(child),
        }
    }
    merge_single_all_of(schema);
    collapse_nullable_any_of(schema);
}

fn simplify_value(value: &mut Value) {
    match value {
        Value::Object(object) => simplify_tree(object),
        Value::Array(items) => items.iter_mut().for_each(simplify_value),
        _ => {}
    }
}

fn merge_single_all_of(schema: &mut Map<String, Value>) {
    let Some(Value::Array(members)) = schema.get("allOf") else {
        return;
    };
    let [Value::Object(only)] = members.as_slice() else {
        return;
    };
    if only
        .keys()
        .any(|key| schema.contains_key(key) && !ANNOTATIONS.contains(&key.as_str()))
    {
        return;
    }
    let only = only.clone();
    schema.remove("allOf");
    for (key, value) in only {
        schema.entry(key).or_insert(value);
    }
}

/// Keywords that apply to every type (or combine schemas): a schema holding one would change meaning once `null`
/// is added to its `type`.
const TYPE_NEUTRAL: [&str; 7] = ["const", "$ref", "allOf", "anyOf", "oneOf", "not", "if"];

fn collapse_nullable_any_of(schema: &mut Map<String, Value>) {
    fold_null_into_a_typed_member(schema);
    if schema.contains_key("type") {
        return;
    }
    let Some(Value::Array(members)) = schema.get("anyOf") else {
        return;
    };
    let [first, second] = members.as_slice() else {
        return;
    };
    let is_null_only = |member: &Value| member == &json!({"type": "null"});
    let other = match (is_null_only(first), is_null_only(second)) {
        (true, false) => second,
        (false, true) => first,
        _ => return,
    };
    let Some(other) = other.as_object() else {
        return;
    };
    let Some(Value::String(single_type)) = other.get("type") else {
        return;
    };
    if other.keys().any(|key| TYPE_NEUTRAL.contains(&key.as_str())) {
        return;
    }
    if other
        .keys()
        .any(|key| schema.contains_key(key) && !ANNOTATIONS.contains(&key.as_str()))
    {
        return;
    }
    let mut other = other.clone();
    other.insert("type".to_owned(), json!([single_type, "null"]));
    if let Some(Value::Array(members)) = other.get_mut("enum")
        && !members.contains(&Value::Null)
    {
        members.push(Value::Null);
    }
    schema.remove("anyOf");
    for (key, value) in other {
        schema.entry(key).or_insert(value);
    }
}

/// `anyOf [A, B, {"type":"null"}]` → `anyOf [A + null, B]` when A has a single `type` and no type-neutral
/// keyword: the same values validate, with one branch less. Two-member cases are left to the full collapse.
fn fold_null_into_a_typed_member(schema: &mut Map<String, Value>) {
    let Some(Value::Array(members)) = schema.get_mut("anyOf") else {
        return;
    };
    if members.len() <= 2 {
        return;
    }
    let null_only = json!({"type": "null"});
    let Some(null_position) = members.iter().position(|member| member == &null_only) else {
        return;
    };
    let foldable = members.iter().position(|member| {
        member.as_object().is_some_and(|object| {
            matches!(object.get("type"), Some(Value::String(_)))
                && !object
                    .keys()
                    .any(|key| TYPE_NEUTRAL.contains(&key.as_str()))
        })
    });
    let Some(target) = foldable else { return };
    if let Some(Value::Object(object)) = members.get_mut(target) {
        if let Some(Value::String(single)) = object.get("type") {
            let nullable = json!([single, "null"]);
            object.insert("type".to_owned(), nullable);
        }
        if let Some(Value::Array(allowed)) = object.get_mut("enum")
            && !allowed.contains(&Value::Null)
        {
            allowed.push(Value::Null);
        }
    }
    members.remove(null_position);
}
