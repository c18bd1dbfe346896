//! One flat JSON Schema 2020-12 object per operation: the `inputSchema` a model fills in.
//!
//! Shape: `{"type":"object","properties":{…},"required":[…],"additionalProperties":false,"$defs":{…}}` where the
//! properties are the operation's path, query and header parameters followed by the request body as `body`.
//!
//! Argument naming rule (clashes are resolved predictably, never silently merged):
//! 1. `body` is reserved for the request body when the operation has one.
//! 2. Parameters claim names in location order path → query → header, and in document order within a location.
//!    A name is the parameter's own name with characters outside `[A-Za-z0-9_.-]` mapped to `_` (≤ 64 chars).
//! 3. A name that is already taken gets the location as suffix (`id_query`, `body_query`, `id_header`), and then
//!    `_2`, `_3`, … if even that is taken.
//!
//! Schema conversion from OpenAPI's dialect:
//! - Local `$ref`s become `#/$defs/Name`; each tool carries only the definitions it reaches. Definitions used once
//!   (and tiny ones) are inlined afterwards, unless they are recursive — cycles always stay as `$ref`s.
//! - OpenAPI 3.0 `nullable: true` becomes a type array (`["string","null"]`), or `anyOf […, {"type":"null"}]` where
//!   there is no `type`; 3.0's boolean `exclusiveMinimum`/`exclusiveMaximum` become the 2020-12 numeric form; in 3.0
//!   the siblings of a `$ref` are ignored (except `description`), as that version specifies.
//! - Only JSON Schema keywords are copied (an allowlist): `discriminator`, `xml`, `externalDocs`, `example`,
//!   `readOnly`/`writeOnly`, `$id`/`$schema`/`$comment`/`$dynamicRef` and every `x-*` extension are dropped.
//! - Compactness: titles are dropped when a description exists or when they only repeat the property or definition
//!   name; descriptions are trimmed; long `default`s and `examples` are dropped (one short example is kept);
//!   `anyOf [X, {"type":"null"}]` collapses into X with a nullable type array and a single-element `allOf` is
//!   merged into its parent.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value, json};

use super::naming::sanitize_identifier;
use super::operation::DeclaredLocation;
use super::spec::{self, OpenApiVersion, Problem, SpecError};
use super::text::{label_contains, same_label, shorten};

/// The argument that carries the request body.
pub const BODY_ARGUMENT: &str = "body";

/// Longest argument name handed to the model; some clients reject longer property names.
const MAX_ARGUMENT_NAME_LEN: usize = 64;

/// Deepest nesting of inline schemas we follow; deeper documents are almost certainly generated garbage.
const MAX_SCHEMA_DEPTH: usize = 64;

/// A definition whose JSON is at most this long is inlined at every use: a `$ref` plus its `$defs` entry would
/// cost about as much.
const TINY_DEFINITION_BYTES: usize = 48;

/// Knobs for how much prose and data the generated schemas carry.
#[derive(Debug, Clone)]
pub struct SchemaOptions {
    /// Longest description kept on a property or definition, in characters.
    pub property_description_max: usize,
    /// Longest `default` value kept, as compact JSON bytes.
    pub default_max_bytes: usize,
    /// Longest single example kept, as compact JSON bytes (0 drops all examples).
    pub example_max_bytes: usize,
    /// Largest `enum` kept. A longer one (Polar's 600 time zones) is replaced by `examples` with its first few
    /// members: it would cost kilobytes on every `tools/list`, and the upstream still rejects a wrong value.
    pub enum_max_members: usize,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        Self {
            property_description_max: 160,
            default_max_bytes: 80,
            example_max_bytes: 40,
            enum_max_members: 64,
        }
    }
}

/// One parameter as the schema builder needs it.
#[derive(Debug, Clone)]
pub struct ParameterSchemaInput<'doc> {
    pub wire_name: &'doc str,
    pub location: DeclaredLocation,
    pub required: bool,
    pub deprecated: bool,
    pub description: Option<&'doc str>,
    pub schema: Option<&'doc Value>,
    pub schema_pointer: String,
}

/// The request body as the schema builder needs it.
#[derive(Debug, Clone)]
pub struct BodySchemaInput<'doc> {
    pub required: bool,
    pub description: Option<&'doc str>,
    pub schema: Option<&'doc Value>,
    pub schema_pointer: String,
}

/// The generated `inputSchema` and the argument name chosen for each parameter (same order as the input).
#[derive(Debug, Clone)]
pub struct InputSchema {
    pub schema: Map<String, Value>,
    pub argument_names: Vec<String>,
}

/// Assigns argument names following the rule in the module documentation.
pub fn assign_argument_names(
    parameters: &[(&str, DeclaredLocation)],
    has_body: bool,
) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::new();
    if has_body {
        taken.insert(BODY_ARGUMENT.to_owned());
    }
    let mut names = vec![String::new(); parameters.len()];
    for claiming in [
        DeclaredLocation::Path,
        DeclaredLocation::Query,
        DeclaredLocation::Header,
        DeclaredLocation::Cookie,
    ] {
        for (index, (wire_name, location)) in parameters.iter().enumerate() {
            if *location != claiming {
                continue;
            }
            let suffix = location_suffix(*location);
            let mut base = sanitize_identifier(wire_name, MAX_ARGUMENT_NAME_LEN);
            if base.is_empty() {
                base = format!("{suffix}_parameter");
            }
            let mut candidate = base.clone();
            if taken.contains(&candidate) {
                candidate = format!("{base}_{suffix}");
            }
            let mut counter = 2;
            while taken.contains(&candidate) {
                candidate = format!("{base}_{suffix}_{counter}");
                counter += 1;
            }
            taken.insert(candidate.clone());
            if let Some(slot) = names.get_mut(index) {
                *slot = candidate;
            }
        }
    }
    names
}

fn location_suffix(location: DeclaredLocation) -> &'static str {
    match location {
        DeclaredLocation::Path => "path",
        DeclaredLocation::Query => "query",
        DeclaredLocation::Header => "header",
        DeclaredLocation::Cookie => "cookie",
    }
}

/// Builds the flat input schema for one operation.
pub fn build_input_schema(
    doc: &Value,
    version: OpenApiVersion,
    parameters: &[ParameterSchemaInput<'_>],
    body: Option<&BodySchemaInput<'_>>,
    options: &SchemaOptions,
) -> Result<InputSchema, SpecError> {
    let locations: Vec<_> = parameters
        .iter()
        .map(|p| (p.wire_name, p.location))
        .collect();
    let argument_names = assign_argument_names(&locations, body.is_some());
    let mut converter = Converter::new(doc, version, options);

    // Properties are listed path → query → header, then body: the order a person reads a URL in.
    let mut order: Vec<usize> = (0..parameters.len()).collect();
    order.sort_by_key(|&index| parameters.get(index).map(|p| p.location as u8));

    let mut properties = Map::new();
    let mut required = Vec::new();
    for index in order {
        let (Some(parameter), Some(name)) = (parameters.get(index), argument_names.get(index))
        else {
            continue;
        };
        let mut property = match parameter.schema {
            Some(schema) => {
                converter.convert(schema, &parameter.schema_pointer, Some(parameter.wire_name))?
            }
            None => json!({"type": "string"}),
        };
        describe(&mut property, parameter.description, options);
        if parameter.deprecated {
            set_key(&mut property, "deprecated", Value::Bool(true));
        }
        if parameter.required {
            required.push(Value::String(name.clone()));
        }
        properties.insert(name.clone(), property);
    }
    if let Some(body) = body {
        let mut property = match body.schema {
            Some(schema) => converter.convert(schema, &body.schema_pointer, None)?,
            None => json!({}),
        };
        if property.get("description").is_none() {
            describe(&mut property, body.description, options);
        }
        if body.required {
            required.push(Value::String(BODY_ARGUMENT.to_owned()));
        }
        properties.insert(BODY_ARGUMENT.to_owned(), property);
    }

    let defs = converter.finish()?;
    let mut schema = Map::new();
    schema.insert("type".to_owned(), Value::String("object".to_owned()));
    if !properties.is_empty() {
        schema.insert("properties".to_owned(), Value::Object(properties));
    }
    if !required.is_empty() {
        schema.insert("required".to_owned(), Value::Array(required));
    }
    schema.insert("additionalProperties".to_owned(), Value::Bool(false));
    let kept_defs = inline_definitions(&mut schema, defs);
    if !kept_defs.is_empty() {
        schema.insert("$defs".to_owned(), Value::Object(kept_defs));
    }
    simplify_tree(&mut schema);
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for (name, property) in properties.iter_mut() {
            if name != BODY_ARGUMENT {
                strip_nested_annotations(property);
            }
        }
    }
    Ok(InputSchema {
        schema,
        argument_names,
    })
}

/// Puts the parameter's own description on its property, replacing the schema's (usually the same text or less
/// specific), so the model reads it once.
fn describe(property: &mut Value, description: Option<&str>, options: &SchemaOptions) {
    let Some(description) =
        description.map(|text| shorten(text, options.property_description_max, false))
    else {
        return;
    };
    if description.is_empty() {
        return;
    }
    if let Some(object) = property.as_object_mut() {
        object.remove("title");
        object.insert("description".to_owned(), Value::String(description));
    }
}

/// A parameter is described once, at its top: the descriptions, titles and examples of its inner schemas (the
/// branches of `anyOf`, array `items`, inlined definitions) mostly restate it ("The organization ID.").
fn strip_nested_annotations(property: &mut Value) {
    fn strip(value: &mut Value, is_top: bool) {
        match value {
            Value::Object(object) => {
                if !is_top {
                    for annotation in ["description", "title", "examples"] {
                        object.remove(annotation);
                    }
                }
                for (key, child) in object.iter_mut() {
                    if !matches!(key.as_str(), "enum" | "const" | "default" | "examples") {
                        strip(child, false);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| strip(item, false)),
            _ => {}
        }
    }
    strip(property, true);
}

fn set_key(property: &mut Value, key: &str, value: Value) {
    if let Some(object) = property.as_object_mut() {
        object.insert(key.to_owned(), value);
    }
}

/// Converts OpenAPI schemas into JSON Schema 2020-12, collecting referenced definitions as it goes.
struct Converter<'doc, 'opt> {
    doc: &'doc Value,
    version: OpenApiVersion,
    options: &'opt SchemaOptions,
    def_name_by_reference: HashMap<String, String>,
    used_def_names: HashSet<String>,
    pending: VecDeque<(String, String)>,
    defs: Map<String, Value>,
    depth: usize,
}

impl<'doc, 'opt> Converter<'doc, 'opt> {
    fn new(doc: &'doc Value, version: OpenApiVersion, options: &'opt SchemaOptions) -> Self {
        Self {
            doc,
            version,
            options,
            def_name_by_reference: HashMap::new(),
            used_def_names: HashSet::new(),
            pending: VecDeque::new(),
            defs: Map::new(),
            depth: 0,
        }
    }

    /// Converts every definition reached so far (and those they reach) and returns them.
    fn finish(mut self) -> Result<Map<String, Value>, SpecError> {
        while let Some((reference, name)) = self.pending.pop_front() {
            let target = spec::resolve_ref(self.doc, &reference).map_err(|problem| {
                SpecError::invalid(reference.trim_start_matches('#'), problem)
            })?;
            let pointer = reference.trim_start_matches('#').to_owned();
            let converted = self.convert(target, &pointer, Some(&name))?;
            self.defs.insert(name, converted);
        }
        Ok(self.defs)
    }

    /// The `#/$defs/…` reference standing for a document `$ref`, registering the definition on first sight.
    fn definition_for(&mut self, reference: &str, pointer: &str) -> Result<String, SpecError> {
        if let Some(name) = self.def_name_by_reference.get(reference) {
            return Ok(format!("#/$defs/{name}"));
        }
        // Fail here, at the place that holds the `$ref`, rather than later at the definition.
        spec::resolve_ref(self.doc, reference)
            .map_err(|problem| SpecError::invalid(pointer, problem))?;
        let last_segment = reference.rsplit('/').next().unwrap_or_default();
        let mut base = sanitize_identifier(last_segment, MAX_ARGUMENT_NAME_LEN);
        if base.is_empty() {
            base = "Schema".to_owned();
        }
        let mut name = base.clone();
        let mut counter = 2;
        while self.used_def_names.contains(&name) {
            name = format!("{base}_{counter}");
            counter += 1;
        }
        self.used_def_names.insert(name.clone());
        self.def_name_by_reference
            .insert(reference.to_owned(), name.clone());
        self.pending.push_back((reference.to_owned(), name.clone()));
        Ok(format!("#/$defs/{name}"))
    }

    fn convert(
        &mut self,
        schema: &Value,
        pointer: &str,
        label: Option<&str>,
    ) -> Result<Value, SpecError> {
        if self.depth >= MAX_SCHEMA_DEPTH {
            return Err(SpecError::invalid(
                pointer,
                Problem::Unsupported(format!(
                    "schema nested deeper than {MAX_SCHEMA_DEPTH} levels"
                )),
            ));
        }
        self.depth += 1;
        let converted = match schema {
            Value::Bool(_) => Ok(schema.clone()),
            Value::Object(object) => self.convert_object(object, pointer, label),
            other => Err(SpecError::invalid(
                pointer,
                spec::wrong_type("a schema object", other),
            )),
        };
        self.depth -= 1;
        converted
    }

    fn convert_object(
        &mut self,
        source: &Map<String, Value>,
        pointer: &str,
        label: Option<&str>,
    ) -> Result<Value, SpecError> {
        let mut out = Map::new();
        if let Some(Value::String(reference)) = source.get("$ref") {
            let target = self.definition_for(reference, pointer)?;
            out.insert("$ref".to_owned(), Value::String(target));
            if self.version == OpenApiVersion::V3_0 {
                // OpenAPI 3.0 ignores a `$ref`'s siblings; `description` is kept because it only informs.
                if let Some(description) = source.get("description").and_then(Value::as_str) {
                    self.insert_description(&mut out, description);
                }
                return Ok(self.apply_nullable(source, out));
            }
        }
        for (key, value) in source {
            let child_pointer = format!("{pointer}/{}", spec::escape_pointer_segment(key));
            match key.as_str() {
                "type" => {
                    check_type_keyword(value, &child_pointer)?;
                    out.insert(key.clone(), value.clone());
                }
                "enum" => self.insert_enum(&mut out, value),
                "const" | "format" | "multipleOf" | "maximum" | "minimum" | "maxLength"
                | "minLength" | "pattern" | "maxItems" | "minItems" | "uniqueItems"
                | "maxProperties" | "minProperties" | "dependentRequired" | "minContains"
                | "maxContains" | "contentMediaType" | "contentEncoding" => {
                    out.insert(key.clone(), value.clone());
                }
                "required" if value.as_array().is_some_and(|names| !names.is_empty()) => {
                    out.insert(key.clone(), value.clone());
                }
                "exclusiveMinimum" | "exclusiveMaximum" if value.is_number() => {
                    out.insert(key.clone(), value.clone());
                }
                "description" => {
                    if let Some(description) = value.as_str() {
                        self.insert_description(&mut out, description);
                    }
                }
                "deprecated" if value == &Value::Bool(true) => {
                    out.insert(key.clone(), value.clone());
                }
                "default" if compact_len(value) <= self.options.default_max_bytes => {
                    out.insert(key.clone(), value.clone());
                }
                "examples" | "example" => self.insert_example(&mut out, key, value),
                "items"
                | "additionalProperties"
                | "not"
                | "if"
                | "then"
                | "else"
                | "contains"
                | "propertyNames"
                | "unevaluatedItems"
                | "unevaluatedProperties"
                | "contentSchema" => {
                    let converted = self.convert(value, &child_pointer, None)?;
                    out.insert(key.clone(), converted);
                }
                "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                    let Value::Array(members) = value else {
                        return Err(SpecError::invalid(
                            child_pointer,
                            spec::wrong_type("an array", value),
                        ));
                    };
                    let mut converted = Vec::with_capacity(members.len());
                    for (index, member) in members.iter().enumerate() {
                        converted.push(self.convert(
                            member,
                            &format!("{child_pointer}/{index}"),
                            None,
                        )?);
                    }
                    out.insert(key.clone(), Value::Array(converted));
                }
                "properties" | "patternProperties" | "dependentSchemas" => {
                    let Value::Object(members) = value else {
                        return Err(SpecError::invalid(
                            child_pointer,
                            spec::wrong_type("an object", value),
                        ));
                    };
                    let mut converted = Map::new();
                    for (name, member) in members {
                        let member_pointer =
                            format!("{child_pointer}/{}", spec::escape_pointer_segment(name));
                        let label = (key == "properties").then_some(name.as_str());
                        converted
                            .insert(name.clone(), self.convert(member, &member_pointer, label)?);
                    }
                    out.insert(key.clone(), Value::Object(converted));
                }
                // Everything else is OpenAPI-only, an extension, or identity/dialect plumbing that would break
                // the standalone schema: `discriminator`, `xml`, `externalDocs`, `readOnly`, `writeOnly`,
                // `nullable` (handled below), `$id`, `$schema`, `$anchor`, `$dynamicRef`, `$comment`, `x-*`, `title`
                // (handled below).
                _ => {}
            }
        }
        self.convert_boolean_exclusive_bounds(source, &mut out);
        if let Some(title) = source.get("title").and_then(Value::as_str) {
            let repeats_name =
                label.is_some_and(|label| same_label(label, title) || label_contains(label, title));
            if !repeats_name && !out.contains_key("description") && !title.trim().is_empty() {
                out.insert(
                    "title".to_owned(),
                    Value::String(shorten(title, self.options.property_description_max, false)),
                );
            }
        }
        Ok(self.apply_nullable(source, out))
    }

    fn insert_enum(&self, out: &mut Map<String, Value>, members: &Value) {
        let Value::Array(list) = members else {
            out.insert("enum".to_owned(), members.clone());
            return;
        };
        if list.len() <= self.options.enum_max_members {
            out.insert("enum".to_owned(), members.clone());
            return;
        }
        // A few members still show the model the expected shape (e.g. IANA zone names).
        out.insert(
            "examples".to_owned(),
            Value::Array(list.iter().take(3).cloned().collect()),
        );
    }

    fn insert_description(&self, out: &mut Map<String, Value>, description: &str) {
        let shortened = shorten(description, self.options.property_description_max, false);
        if !shortened.is_empty() {
            out.insert("description".to_owned(), Value::String(shortened));
        }
    }

    /// Keeps one short example: enough to show the model a value's shape, cheap enough to send on every list.
    fn insert_example(&self, out: &mut Map<String, Value>, key: &str, value: &Value) {
        let candidate = match (key, value) {
            ("examples", Value::Array(examples)) => examples.first(),
            ("example", example) => Some(example),
            _ => None,
        };
        if let Some(example) = candidate {
            let length = compact_len(example);
            if length <= self.options.example_max_bytes && !out.contains_key("examples") {
                out.insert("examples".to_owned(), Value::Array(vec![example.clone()]));
            }
        }
    }

    /// OpenAPI 3.0 wrote `exclusiveMinimum: true` next to `minimum`; 2020-12 puts the bound in the keyword itself.
    fn convert_boolean_exclusive_bounds(
        &self,
        source: &Map<String, Value>,
        out: &mut Map<String, Value>,
    ) {
        for (exclusive, inclusive) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            if source.get(exclusive) == Some(&Value::Bool(true))
                && let Some(bound) = out.remove(inclusive)
            {
                out.insert(exclusive.to_owned(), bound);
            }
        }
    }

    fn apply_nullable(&self, source: &Map<String, Value>, mut out: Map<String, Value>) -> Value {
        let nullable = self.version == OpenApiVersion::V3_0
            && source.get("nullable") == Some(&Value::Bool(true));
        if !nullable {
            return Value::Object(out);
        }
        match out.get_mut("type") {
            Some(Value::String(single)) => {
                let single = std::mem::take(single);
                out.insert("type".to_owned(), json!([single, "null"]));
            }
            Some(Value::Array(types)) => {
                if !types.iter().any(|t| t == "null") {
                    types.push(Value::String("null".to_owned()));
                }
            }
            _ => {
                let description = out.remove("description");
                let mut wrapper = Map::new();
                wrapper.insert(
                    "anyOf".to_owned(),
                    json!([Value::Object(out), {"type": "null"}]),
                );
                if let Some(description) = description {
                    wrapper.insert("description".to_owned(), description);
                }
                return Value::Object(wrapper);
            }
        }
        if let Some(Value::Array(members)) = out.get_mut("enum")
            && !members.contains(&Value::Null)
        {
            members.push(Value::Null);
        }
        Value::Object(out)
    }
}

const JSON_SCHEMA_TYPES: [&str; 7] = [
    "array", "boolean", "integer", "null", "number", "object", "string",
];

fn check_type_keyword(value: &Value, pointer: &str) -> Result<(), SpecError> {
    let valid = |name: &Value| {
        name.as_str()
            .is_some_and(|name| JSON_SCHEMA_TYPES.contains(&name))
    };
    let ok = match value {
        Value::String(_) => valid(value),
        Value::Array(names) => !names.is_empty() && names.iter().all(valid),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(SpecError::invalid(
            pointer,
            Problem::Unsupported(format!("\"type\" must name JSON Schema types, got {value}")),
        ))
    }
}

fn compact_len(value: &Value) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |text| text.len())
}

/// Replaces `$ref`s to definitions that are used once, or are tiny, by the definition itself, unless the
/// definition can reach itself. Returns the definitions that must stay.
fn inline_definitions(
    root: &mut Map<String, Value>,
    mut defs: Map<String, Value>,
) -> Map<String, Value> {
    if defs.is_empty() {
        return defs;
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
    let inlinable: HashMap<String, Value> = defs
        .iter()
        .filter(|(name, body)| {
            let used_once = use_counts.get(*name).copied().unwrap_or(0) <= 1;
            (used_once || compact_len(body) <= TINY_DEFINITION_BYTES)
                && !reaches_itself(name, &edges)
        })
        .map(|(name, body)| (name.clone(), body.clone()))
        .collect();
    if inlinable.is_empty() {
        return defs;
    }
    defs.retain(|name, _| !inlinable.contains_key(name));
    for value in root.values_mut() {
        substitute_refs(value, &inlinable);
    }
    for body in defs.values_mut() {
        substitute_refs(body, &inlinable);
    }
    defs
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

fn substitute_refs(value: &mut Value, inlinable: &HashMap<String, Value>) {
    match value {
        Value::Object(object) => {
            let target = match object.get("$ref") {
                Some(Value::String(reference)) => {
                    def_name_of(reference).and_then(|name| inlinable.get(name))
                }
                _ => None,
            };
            if let Some(definition) = target {
                object.remove("$ref");
                let mut replacement = definition.clone();
                // The definition may itself refer to other inlinable definitions (never to itself).
                substitute_refs(&mut replacement, inlinable);
                merge_into(object, replacement);
            }
            for (key, child) in object.iter_mut() {
                if !matches!(key.as_str(), "enum" | "const" | "default" | "examples") {
                    substitute_refs(child, inlinable);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| substitute_refs(item, inlinable)),
        _ => {}
    }
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
fn simplify_tree(schema: &mut Map<String, Value>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> SchemaOptions {
        SchemaOptions::default()
    }

    fn query(name: &'static str, schema: &'static Value) -> ParameterSchemaInput<'static> {
        ParameterSchemaInput {
            wire_name: name,
            location: DeclaredLocation::Query,
            required: false,
            deprecated: false,
            description: None,
            schema: Some(schema),
            schema_pointer: format!("/test/{name}"),
        }
    }

    fn body_of(schema: &Value) -> BodySchemaInput<'_> {
        BodySchemaInput {
            required: true,
            description: None,
            schema: Some(schema),
            schema_pointer: "/body".to_owned(),
        }
    }

    fn leak(value: Value) -> &'static Value {
        Box::leak(Box::new(value))
    }

    #[test]
    fn gives_a_query_parameter_that_clashes_with_a_path_parameter_the_query_suffix() {
        let names = assign_argument_names(
            &[
                ("id", DeclaredLocation::Query),
                ("id", DeclaredLocation::Path),
            ],
            false,
        );

        assert_eq!(names, ["id_query", "id"]);
    }

    #[test]
    fn reserves_body_for_the_request_body() {
        let names = assign_argument_names(&[("body", DeclaredLocation::Query)], true);

        assert_eq!(names, ["body_query"]);
    }

    #[test]
    fn numbers_a_clash_that_the_location_suffix_does_not_resolve() {
        let names = assign_argument_names(
            &[
                ("id", DeclaredLocation::Path),
                ("id_query", DeclaredLocation::Query),
                ("id", DeclaredLocation::Query),
            ],
            false,
        );

        assert_eq!(names, ["id", "id_query", "id_query_2"]);
    }

    #[test]
    fn sanitizes_parameter_names_that_are_not_identifier_like() {
        let names = assign_argument_names(
            &[
                ("filter[name]", DeclaredLocation::Query),
                ("X-Request-Id", DeclaredLocation::Header),
            ],
            false,
        );

        assert_eq!(names, ["filter_name", "X-Request-Id"]);
    }

    #[test]
    fn converts_openapi_3_0_nullable_into_a_type_array() {
        let doc = json!({});
        let schema = leak(json!({"type": "string", "nullable": true, "enum": ["a", "b"]}));

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_0,
            &[query("q", schema)],
            None,
            &options(),
        )
        .unwrap();

        assert_eq!(
            built.schema["properties"]["q"],
            json!({"type": ["string", "null"], "enum": ["a", "b", null]})
        );
    }

    #[test]
    fn wraps_a_nullable_ref_in_any_of_for_openapi_3_0() {
        let doc = json!({"components": {"schemas": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}}},
            "Owner": {"type": "object", "properties": {
                "pet": {"$ref": "#/components/schemas/Pet", "nullable": true, "description": "Their pet."},
                "other_pet": {"$ref": "#/components/schemas/Pet"}}}}}});
        let schema = json!({"$ref": "#/components/schemas/Owner"});

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_0,
            &[],
            Some(&body_of(&schema)),
            &options(),
        )
        .unwrap();

        assert_eq!(
            built.schema["properties"]["body"]["properties"]["pet"],
            json!({"anyOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}], "description": "Their pet."})
        );
    }

    #[test]
    fn collapses_a_nullable_single_use_ref_into_a_type_array_once_inlined() {
        let doc = json!({"components": {"schemas": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}}}}}});
        let schema = json!({"type": "object", "properties": {"pet": {"$ref": "#/components/schemas/Pet", "nullable": true}}});

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_0,
            &[],
            Some(&body_of(&schema)),
            &options(),
        )
        .unwrap();

        assert_eq!(
            built.schema["properties"]["body"]["properties"]["pet"],
            json!({"type": ["object", "null"], "properties": {"name": {"type": "string"}}})
        );
    }

    #[test]
    fn keeps_a_recursive_definition_as_a_ref_in_the_tools_own_defs() {
        let doc = json!({"components": {"schemas": {"Node": {"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}}}});
        let schema = json!({"$ref": "#/components/schemas/Node"});

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_1,
            &[],
            Some(&body_of(&schema)),
            &options(),
        )
        .unwrap();

        assert_eq!(
            built.schema["properties"]["body"],
            json!({"$ref": "#/$defs/Node"})
        );
        assert_eq!(
            built.schema["$defs"]["Node"]["properties"]["children"]["items"],
            json!({"$ref": "#/$defs/Node"})
        );
    }

    #[test]
    fn carries_only_the_definitions_the_tool_reaches() {
        let doc = json!({"components": {"schemas": {
            "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}, "b2": {"$ref": "#/components/schemas/B"}}},
            "B": {"type": "object", "description": "A thing of type B with enough words to not be tiny at all.", "properties": {"x": {"type": "string"}}},
            "Unrelated": {"type": "string"}}}});
        let schema = json!({"$ref": "#/components/schemas/A"});

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_1,
            &[],
            Some(&body_of(&schema)),
            &options(),
        )
        .unwrap();

        let defs: Vec<_> = built.schema["$defs"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(defs, ["B"]);
        assert_eq!(
            built.schema["properties"]["body"]["properties"]["b"],
            json!({"$ref": "#/$defs/B"})
        );
    }

    #[test]
    fn drops_openapi_only_keywords_and_titles_that_repeat_the_name() {
        let doc = json!({});
        let schema = leak(
            json!({"type": "object", "title": "Customer", "discriminator": {"propertyName": "kind"},
            "xml": {"name": "c"}, "externalDocs": {"url": "https://x"}, "x-internal": true, "readOnly": true,
            "example": {"a": "a very long example value that will not be kept because it is too long"},
            "properties": {"email_address": {"type": "string", "title": "Email Address", "format": "email"}}}),
        );

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_0,
            &[query("buyer", schema)],
            None,
            &options(),
        )
        .unwrap();

        assert_eq!(
            built.schema["properties"]["buyer"],
            json!({"type": "object", "title": "Customer", "properties": {"email_address": {"type": "string", "format": "email"}}})
        );
    }

    #[test]
    fn converts_openapi_3_0_boolean_exclusive_minimum() {
        let doc = json!({});
        let schema = leak(json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true}));

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_0,
            &[query("n", schema)],
            None,
            &options(),
        )
        .unwrap();

        assert_eq!(
            built.schema["properties"]["n"],
            json!({"type": "integer", "exclusiveMinimum": 0})
        );
    }

    #[test]
    fn collapses_a_pydantic_optional_into_a_nullable_type() {
        let doc = json!({});
        let schema = leak(
            json!({"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}], "title": "Organization Id"}),
        );

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_1,
            &[query("organization_id", schema)],
            None,
            &options(),
        )
        .unwrap();

        assert_eq!(
            built.schema["properties"]["organization_id"],
            json!({"type": ["string", "null"], "format": "uuid"})
        );
    }

    #[test]
    fn inlines_a_single_use_enum_and_makes_its_nullable_array_compact() {
        let doc = json!({"components": {"schemas": {"Sort": {"type": "string", "enum": ["created_at", "-created_at"], "title": "Sort"}}}});
        let schema = leak(
            json!({"anyOf": [{"type": "array", "items": {"$ref": "#/components/schemas/Sort"}}, {"type": "null"}]}),
        );

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_1,
            &[query("sorting", schema)],
            None,
            &options(),
        )
        .unwrap();

        assert_eq!(
            built.schema["properties"]["sorting"],
            json!({"type": ["array", "null"], "items": {"type": "string", "enum": ["created_at", "-created_at"]}})
        );
        assert!(built.schema.get("$defs").is_none());
    }

    #[test]
    fn merges_a_single_all_of_ref_with_its_description() {
        let doc = json!({"components": {"schemas": {"Amount": {"type": "integer", "minimum": 0}}}});
        let schema = json!({"type": "object", "properties": {"price": {"allOf": [{"$ref": "#/components/schemas/Amount"}], "description": "Price in cents."}}});

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_1,
            &[],
            Some(&body_of(&schema)),
            &options(),
        )
        .unwrap();

        assert_eq!(
            built.schema["properties"]["body"]["properties"]["price"],
            json!({"description": "Price in cents.", "type": "integer", "minimum": 0})
        );
    }

    #[test]
    fn keeps_one_of_alternatives() {
        let doc = json!({"components": {"schemas": {
            "Fixed": {"type": "object", "properties": {"kind": {"const": "fixed"}, "amount": {"type": "integer"}}, "required": ["kind"]},
            "Free": {"type": "object", "properties": {"kind": {"const": "free"}}, "required": ["kind"]}}}});
        let schema = json!({"oneOf": [{"$ref": "#/components/schemas/Fixed"}, {"$ref": "#/components/schemas/Free"}],
            "discriminator": {"propertyName": "kind"}});

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_1,
            &[],
            Some(&body_of(&schema)),
            &options(),
        )
        .unwrap();

        let alternatives = built.schema["properties"]["body"]["oneOf"]
            .as_array()
            .unwrap();
        assert_eq!(alternatives.len(), 2);
        assert!(
            built.schema["properties"]["body"]
                .get("discriminator")
                .is_none()
        );
    }

    #[test]
    fn marks_required_parameters_and_the_required_body() {
        let doc = json!({});
        let string = leak(json!({"type": "string"}));
        let mut id = query("id", string);
        id.location = DeclaredLocation::Path;
        id.required = true;
        let body_schema = json!({"type": "object"});

        let built = build_input_schema(
            &doc,
            OpenApiVersion::V3_1,
            &[query("q", string), id],
            Some(&body_of(&body_schema)),
            &options(),
        )
        .unwrap();

        assert_eq!(built.schema["required"], json!(["id", "body"]));
        let order: Vec<_> = built.schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(order, ["id", "q", "body"]);
        assert_eq!(built.schema["additionalProperties"], false);
    }

    #[test]
    fn gives_an_operation_without_arguments_a_closed_empty_object() {
        let built =
            build_input_schema(&json!({}), OpenApiVersion::V3_1, &[], None, &options()).unwrap();

        assert_eq!(
            Value::Object(built.schema),
            json!({"type": "object", "additionalProperties": false})
        );
    }

    #[test]
    fn prefers_the_parameter_description_and_trims_it() {
        let doc = json!({});
        let schema = leak(json!({"type": "string", "description": "schema text", "title": "Q"}));
        let mut parameter = query("q", schema);
        let long = "word ".repeat(100);
        parameter.description = Some(Box::leak(long.into_boxed_str()));

        let built =
            build_input_schema(&doc, OpenApiVersion::V3_1, &[parameter], None, &options()).unwrap();

        let description = built.schema["properties"]["q"]["description"]
            .as_str()
            .unwrap();
        assert!(description.chars().count() <= 200, "{description}");
        assert!(description.ends_with('…'));
        assert!(built.schema["properties"]["q"].get("title").is_none());
    }

    #[test]
    fn names_the_place_of_an_unknown_type() {
        let doc = json!({});
        let schema = leak(json!({"type": "file"}));

        let error = build_input_schema(
            &doc,
            OpenApiVersion::V3_0,
            &[query("upload", schema)],
            None,
            &options(),
        )
        .unwrap_err();

        assert_eq!(error.pointer(), Some("/test/upload/type"));
    }
}
