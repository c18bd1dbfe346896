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

mod argument_names;
mod convert;
mod options;
mod simplify;

use serde_json::{Map, Value, json};

use super::document::{OpenApiVersion, Problem, SpecError};
use super::operation::DeclaredLocation;
use super::text::shorten;
use argument_names::assign_argument_names;
use convert::Converter;
pub use options::{BODY_ARGUMENT, SchemaOptions};
use simplify::{ExpansionLimit, MAX_INLINED_DEPTH, inline_definitions, simplify_tree};

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
    /// The schema's size as compact JSON.
    pub bytes: usize,
}

/// Builds the flat input schema for one operation. `operation_pointer` is named by errors about the schema as a
/// whole (too large, too deep once definitions are inlined).
pub fn build_input_schema(
    doc: &Value,
    version: OpenApiVersion,
    parameters: &[ParameterSchemaInput<'_>],
    body: Option<&BodySchemaInput<'_>>,
    options: &SchemaOptions,
    operation_pointer: &str,
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
    let too_large = || {
        SpecError::invalid(
            operation_pointer,
            Problem::SchemaTooLarge {
                limit: options.max_schema_bytes,
            },
        )
    };
    let kept_defs = inline_definitions(&mut schema, defs, options.max_schema_bytes).map_err(
        |limit| match limit {
            ExpansionLimit::Bytes => too_large(),
            ExpansionLimit::Depth => SpecError::invalid(
                operation_pointer,
                Problem::SchemaTooDeep {
                    limit: MAX_INLINED_DEPTH,
                },
            ),
        },
    )?;
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
    let bytes = serde_json::to_string(&schema).map_or(usize::MAX, |text| text.len());
    if bytes > options.max_schema_bytes {
        return Err(too_large());
    }
    Ok(InputSchema {
        schema,
        argument_names,
        bytes,
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

/// Compiles a generated input schema into a validator. Only local `#/$defs` references exist in it, and the
/// crate is built without remote resolution, so compilation never touches the network.
pub fn compile_validator(schema: &Map<String, Value>) -> Result<jsonschema::Validator, String> {
    let schema = Value::Object(schema.clone());
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .map_err(|error| shorten(&error.to_string(), MAX_COMPILE_ERROR_CHARS, false))
}

/// Longest schema compilation error kept in a skip reason or a tool error.
const MAX_COMPILE_ERROR_CHARS: usize = 300;

#[cfg(test)]
mod tests;
