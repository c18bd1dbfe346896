//! What one OpenAPI operation declares, read out of the (already validated) document with `$ref`s followed:
//! its parameters (path-item level merged with operation level), its request body and its security requirements.
//!
//! This is the only place that knows OpenAPI's parameter defaults (`style`, `explode`) and override rules, so
//! `schema` and `catalog` work with plain, resolved declarations.

use serde_json::{Map, Value};

use super::document::{
    self as spec, OPERATION_METHODS, Problem, SpecError, escape_pointer_segment,
};

/// One operation of the document, in document order.
#[derive(Debug, Clone)]
pub struct OperationRef<'doc> {
    pub path: &'doc str,
    /// Lower-case, as spelled in the document (`get`, `post`, …).
    pub method: &'static str,
    /// JSON pointer of the operation object, used in error messages.
    pub pointer: String,
    pub operation: &'doc Map<String, Value>,
    pub path_item: &'doc Map<String, Value>,
}

impl OperationRef<'_> {
    pub fn operation_id(&self) -> Option<&str> {
        self.operation.get("operationId").and_then(Value::as_str)
    }

    pub fn text(&self, field: &str) -> Option<&str> {
        self.operation
            .get(field)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
    }

    pub fn tags(&self) -> Vec<String> {
        self.operation
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn is_deprecated(&self) -> bool {
        self.operation.get("deprecated").and_then(Value::as_bool) == Some(true)
    }
}

/// Every operation of a validated document, in document order (path order, then OpenAPI's method order).
pub fn operations(doc: &Value) -> Result<Vec<OperationRef<'_>>, SpecError> {
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for (path, item) in paths {
        if !path.starts_with('/') {
            continue;
        }
        let (item, item_pointer) = spec::follow_ref(
            doc,
            item,
            &format!("/paths/{}", escape_pointer_segment(path)),
        )?;
        let Some(path_item) = item.as_object() else {
            return Err(SpecError::invalid(
                item_pointer,
                spec::wrong_type("a path item object", item),
            ));
        };
        for method in OPERATION_METHODS {
            if let Some(Value::Object(operation)) = path_item.get(method) {
                found.push(OperationRef {
                    path,
                    method,
                    pointer: format!("{item_pointer}/{method}"),
                    operation,
                    path_item,
                });
            }
        }
    }
    Ok(found)
}

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeclaredLocation {
    Path,
    Query,
    Header,
    Cookie,
}

impl DeclaredLocation {
    fn parse(location: &str) -> Option<Self> {
        match location {
            "path" => Some(Self::Path),
            "query" => Some(Self::Query),
            "header" => Some(Self::Header),
            "cookie" => Some(Self::Cookie),
            _ => None,
        }
    }
}

/// OpenAPI's serialization styles (`style` of a parameter), plus [`ParamStyle::Json`] for parameters declared
/// with `content: {application/json: …}` instead of a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamStyle {
    Simple,
    Label,
    Matrix,
    Form,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
    Json,
}

/// A parameter with `$ref`s followed and OpenAPI's defaults applied.
#[derive(Debug, Clone)]
pub struct DeclaredParameter<'doc> {
    pub name: &'doc str,
    pub location: DeclaredLocation,
    pub required: bool,
    pub deprecated: bool,
    pub description: Option<&'doc str>,
    /// The value schema; `None` means "any string" (a `content` parameter with a non-JSON media type).
    pub schema: Option<&'doc Value>,
    pub style: ParamStyle,
    pub explode: bool,
    /// Where the schema lives, for error messages.
    pub schema_pointer: String,
}

/// The operation's parameters: path-item parameters first, with operation parameters of the same name and location
/// replacing them in place (OpenAPI's override rule), then the operation's own.
pub fn parameters<'doc>(
    doc: &'doc Value,
    operation: &OperationRef<'doc>,
) -> Result<Vec<DeclaredParameter<'doc>>, SpecError> {
    let item_pointer = operation
        .pointer
        .rsplit_once('/')
        .map_or("", |(item, _)| item)
        .to_owned();
    let mut merged: Vec<DeclaredParameter<'doc>> = Vec::new();
    for (list, pointer) in [
        (operation.path_item.get("parameters"), item_pointer),
        (
            operation.operation.get("parameters"),
            operation.pointer.clone(),
        ),
    ] {
        let Some(Value::Array(list)) = list else {
            continue;
        };
        for (index, raw) in list.iter().enumerate() {
            let parameter = read_parameter(doc, raw, &format!("{pointer}/parameters/{index}"))?;
            match merged.iter_mut().find(|existing| {
                existing.name == parameter.name && existing.location == parameter.location
            }) {
                Some(existing) => *existing = parameter,
                None => merged.push(parameter),
            }
        }
    }
    Ok(merged)
}

fn read_parameter<'doc>(
    doc: &'doc Value,
    raw: &'doc Value,
    pointer: &str,
) -> Result<DeclaredParameter<'doc>, SpecError> {
    let (resolved, pointer) = spec::follow_ref(doc, raw, pointer)?;
    let name = resolved
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let location_text = resolved
        .get("in")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let location = DeclaredLocation::parse(location_text).ok_or_else(|| {
        SpecError::invalid(
            &pointer,
            Problem::UnknownParameterLocation(location_text.to_owned()),
        )
    })?;
    // Path parameters are always required (OpenAPI says `required: true` MUST be set; documents that forget it
    // still cannot build a URL without the value).
    let required = location == DeclaredLocation::Path
        || resolved.get("required").and_then(Value::as_bool) == Some(true);
    let default_style = match location {
        DeclaredLocation::Path | DeclaredLocation::Header => ParamStyle::Simple,
        DeclaredLocation::Query | DeclaredLocation::Cookie => ParamStyle::Form,
    };
    let (schema, schema_pointer, style) = match resolved.get("schema") {
        Some(schema) => {
            let style = match resolved.get("style").and_then(Value::as_str) {
                None => default_style,
                Some(style) => parse_style(style).ok_or_else(|| {
                    SpecError::invalid(
                        format!("{pointer}/style"),
                        Problem::Unsupported(format!("unknown parameter style {style:?}")),
                    )
                })?,
            };
            (Some(schema), format!("{pointer}/schema"), style)
        }
        None => content_schema(resolved, &pointer),
    };
    let explode = resolved
        .get("explode")
        .and_then(Value::as_bool)
        .unwrap_or(style == ParamStyle::Form);
    Ok(DeclaredParameter {
        name,
        location,
        required,
        deprecated: resolved.get("deprecated").and_then(Value::as_bool) == Some(true),
        description: resolved.get("description").and_then(Value::as_str),
        schema,
        style,
        explode,
        schema_pointer,
    })
}

/// A `content`-declared parameter: a JSON media type carries a schema and is sent as serialized JSON; any other
/// media type is treated as an opaque string.
fn content_schema<'doc>(
    parameter: &'doc Value,
    pointer: &str,
) -> (Option<&'doc Value>, String, ParamStyle) {
    let content = parameter.get("content").and_then(Value::as_object);
    let json_entry =
        content.and_then(|content| content.iter().find(|(media, _)| is_json_media_type(media)));
    match json_entry {
        Some((media, entry)) => (
            entry.get("schema"),
            format!("{pointer}/content/{}/schema", escape_pointer_segment(media)),
            ParamStyle::Json,
        ),
        None => (None, format!("{pointer}/content"), ParamStyle::Simple),
    }
}

fn parse_style(style: &str) -> Option<ParamStyle> {
    Some(match style {
        "simple" => ParamStyle::Simple,
        "label" => ParamStyle::Label,
        "matrix" => ParamStyle::Matrix,
        "form" => ParamStyle::Form,
        "spaceDelimited" => ParamStyle::SpaceDelimited,
        "pipeDelimited" => ParamStyle::PipeDelimited,
        "deepObject" => ParamStyle::DeepObject,
        _ => return None,
    })
}

/// True for `application/json`, `application/<something>+json` and their `; charset=…` variants.
pub fn is_json_media_type(media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The request body an operation declares.
#[derive(Debug, Clone)]
pub enum DeclaredBody<'doc> {
    /// A JSON media type we can send.
    Json {
        required: bool,
        content_type: &'doc str,
        description: Option<&'doc str>,
        /// `None` when the media type has no schema (any JSON value).
        schema: Option<&'doc Value>,
        schema_pointer: String,
    },
    /// Only media types this catalog cannot produce (multipart, octet-stream, form-urlencoded, …).
    Unsupported {
        required: bool,
        media_types: Vec<&'doc str>,
    },
}

pub fn request_body<'doc>(
    doc: &'doc Value,
    operation: &OperationRef<'doc>,
) -> Result<Option<DeclaredBody<'doc>>, SpecError> {
    let Some(raw) = operation.operation.get("requestBody") else {
        return Ok(None);
    };
    let (body, pointer) =
        spec::follow_ref(doc, raw, &format!("{}/requestBody", operation.pointer))?;
    let required = body.get("required").and_then(Value::as_bool) == Some(true);
    let description = body.get("description").and_then(Value::as_str);
    let Some(content) = body.get("content").and_then(Value::as_object) else {
        return Ok(Some(DeclaredBody::Unsupported {
            required,
            media_types: Vec::new(),
        }));
    };
    // Prefer plain `application/json` over vendor `+json` types when both are offered.
    let json_entry = content
        .iter()
        .find(|(media, _)| {
            media
                .split(';')
                .next()
                .is_some_and(|essence| essence.trim() == "application/json")
        })
        .or_else(|| content.iter().find(|(media, _)| is_json_media_type(media)));
    Ok(Some(match json_entry {
        Some((media, entry)) => DeclaredBody::Json {
            required,
            content_type: media,
            description,
            schema: entry.get("schema"),
            schema_pointer: format!("{pointer}/content/{}/schema", escape_pointer_segment(media)),
        },
        None => DeclaredBody::Unsupported {
            required,
            media_types: content.keys().map(String::as_str).collect(),
        },
    }))
}

/// The security requirements in force: the operation's own `security`, or the document's when it has none.
/// Each requirement is a list of `(scheme, scopes)` that must all hold together.
pub fn security_requirements<'doc>(
    doc: &'doc Value,
    operation: &OperationRef<'doc>,
) -> Vec<Vec<(&'doc str, Vec<&'doc str>)>> {
    let requirements = operation
        .operation
        .get("security")
        .or_else(|| doc.get("security"))
        .and_then(Value::as_array);
    requirements
        .map(|requirements| {
            requirements
                .iter()
                .filter_map(Value::as_object)
                .map(|requirement| {
                    requirement
                        .iter()
                        .map(|(scheme, scopes)| {
                            let scopes = scopes
                                .as_array()
                                .map(|scopes| scopes.iter().filter_map(Value::as_str).collect())
                                .unwrap_or_default();
                            (scheme.as_str(), scopes)
                        })
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn only_operation(doc: &Value) -> OperationRef<'_> {
        operations(doc).unwrap().into_iter().next().unwrap()
    }

    #[test]
    fn lists_operations_in_document_order() {
        let doc = json!({"openapi": "3.1.0", "paths": {
            "/b": {"post": {}, "get": {}},
            "/a": {"delete": {}}
        }});

        let listed: Vec<_> = operations(&doc)
            .unwrap()
            .iter()
            .map(|op| (op.method, op.path))
            .collect();

        assert_eq!(listed, [("get", "/b"), ("post", "/b"), ("delete", "/a")]);
    }

    #[test]
    fn lets_an_operation_parameter_override_the_path_item_one() {
        let doc = json!({"openapi": "3.1.0", "paths": {"/a/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "shared"},
                           {"name": "q", "in": "query", "schema": {}}],
            "get": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}, "description": "own"}]}
        }}});
        let operation = only_operation(&doc);

        let declared = parameters(&doc, &operation).unwrap();

        let summary: Vec<_> = declared.iter().map(|p| (p.name, p.description)).collect();
        assert_eq!(summary, [("id", Some("own")), ("q", None)]);
    }

    #[test]
    fn applies_openapi_style_and_explode_defaults() {
        let doc = json!({"openapi": "3.1.0", "paths": {"/a/{id}": {"get": {"parameters": [
            {"name": "id", "in": "path", "schema": {}},
            {"name": "tags", "in": "query", "schema": {}},
            {"name": "ids", "in": "query", "style": "form", "explode": false, "schema": {}},
            {"name": "metadata", "in": "query", "style": "deepObject", "schema": {}},
            {"name": "X-Trace", "in": "header", "schema": {}}
        ]}}}});
        let operation = only_operation(&doc);

        let declared = parameters(&doc, &operation).unwrap();

        let styles: Vec<_> = declared
            .iter()
            .map(|p| (p.style, p.explode, p.required))
            .collect();
        assert_eq!(
            styles,
            [
                (ParamStyle::Simple, false, true),
                (ParamStyle::Form, true, false),
                (ParamStyle::Form, false, false),
                (ParamStyle::DeepObject, false, false),
                (ParamStyle::Simple, false, false)
            ]
        );
    }

    #[test]
    fn reads_a_json_content_parameter_as_json_style() {
        let doc = json!({"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [
            {"name": "filter", "in": "query", "content": {"application/json": {"schema": {"type": "object"}}}}
        ]}}}});
        let operation = only_operation(&doc);

        let declared = parameters(&doc, &operation).unwrap();

        assert_eq!(declared[0].style, ParamStyle::Json);
        assert_eq!(declared[0].schema, Some(&json!({"type": "object"})));
    }

    #[test]
    fn prefers_application_json_for_the_request_body() {
        let doc = json!({"openapi": "3.1.0", "paths": {"/a": {"post": {"requestBody": {"required": true, "content": {
            "application/merge-patch+json": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}}
        }}}}}});
        let operation = only_operation(&doc);

        let body = request_body(&doc, &operation).unwrap();

        assert!(matches!(
            body,
            Some(DeclaredBody::Json {
                required: true,
                content_type: "application/json",
                ..
            })
        ));
    }

    #[test]
    fn marks_a_multipart_only_body_as_unsupported() {
        let doc = json!({"openapi": "3.1.0", "paths": {"/a": {"post": {"requestBody": {"content": {
            "multipart/form-data": {"schema": {}}
        }}}}}});
        let operation = only_operation(&doc);

        let body = request_body(&doc, &operation).unwrap();

        assert!(matches!(
            body,
            Some(DeclaredBody::Unsupported {
                required: false,
                ..
            })
        ));
    }

    #[test]
    fn falls_back_to_the_document_security_when_the_operation_has_none() {
        let doc = json!({"openapi": "3.1.0", "security": [{"key": []}], "paths": {"/a": {"get": {}}, "/b": {"get": {"security": []}}}});
        let all = operations(&doc).unwrap();

        assert_eq!(
            security_requirements(&doc, &all[0]),
            vec![vec![("key", vec![])]]
        );
        assert!(security_requirements(&doc, &all[1]).is_empty());
    }
}
