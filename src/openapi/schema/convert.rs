//! The converter from OpenAPI's schema dialect (3.0 or 3.1) to JSON Schema 2020-12, collecting the definitions
//! a tool reaches as it goes.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value, json};

use super::options::{MAX_ARGUMENT_NAME_LEN, SchemaOptions};
use super::simplify::compact_len;
use crate::openapi::document::{self, OpenApiVersion, Problem, SpecError};
use crate::openapi::naming::sanitize_identifier;
use crate::openapi::text::{label_contains, same_label, shorten};

/// Deepest nesting of inline schemas we follow; deeper documents are almost certainly generated garbage.
const MAX_SCHEMA_DEPTH: usize = 64;

/// Converts OpenAPI schemas into JSON Schema 2020-12, collecting referenced definitions as it goes.
pub(super) struct Converter<'doc, 'opt> {
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
    pub(super) fn new(
        doc: &'doc Value,
        version: OpenApiVersion,
        options: &'opt SchemaOptions,
    ) -> Self {
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
    pub(super) fn finish(mut self) -> Result<Map<String, Value>, SpecError> {
        while let Some((reference, name)) = self.pending.pop_front() {
            let target = document::resolve_ref(self.doc, &reference).map_err(|problem| {
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
        document::resolve_ref(self.doc, reference)
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

    pub(super) fn convert(
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
                document::wrong_type("a schema object", other),
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
            let child_pointer = format!("{pointer}/{}", document::escape_pointer_segment(key));
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
                            document::wrong_type("an array", value),
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
                            document::wrong_type("an object", value),
                        ));
                    };
                    let mut converted = Map::new();
                    for (name, member) in members {
                        let member_pointer =
                            format!("{child_pointer}/{}", document::escape_pointer_segment(name));
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
