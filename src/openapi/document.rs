//! The OpenAPI document itself: parsing JSON or YAML, structural validation of OpenAPI 3.0/3.1, and the JSON-pointer
//! helpers the rest of `tools` uses to follow local `$ref`s.
//!
//! Validation is deliberately structural, not a full metaschema check: it verifies exactly the parts the catalog
//! relies on (version, paths, operation shape, parameter locations, path template variables, `$ref` targets), so a
//! bad document fails start-up with an error naming the JSON pointer of the offending place instead of producing a
//! silently broken tool later.

use serde_json::{Map, Value};

use crate::json::json_type_name;

/// HTTP methods an OpenAPI path item may hold, in the order OpenAPI lists them.
pub const OPERATION_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Keys whose values are literal data (examples, defaults, enum members, vendor extensions), never schema or
/// document structure: a `"$ref"` inside them is data and must not be followed or checked.
const DATA_KEYWORDS: [&str; 5] = ["example", "examples", "default", "enum", "const"];

/// Keys whose object values map *names* (property names, schema names, status codes, media types) to things, so
/// a child called `default` or `x-foo` there is a name, not a keyword.
const NAME_MAP_KEYWORDS: [&str; 12] = [
    "properties",
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
    "schemas",
    "responses",
    "parameters",
    "requestBodies",
    "headers",
    "content",
    "encoding",
];

/// How deep a chain of `$ref` → `$ref` → … may go before we call it a loop.
const MAX_REF_CHAIN: usize = 32;

/// Why an OpenAPI document cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The bytes are neither a JSON nor a YAML document.
    #[error("the OpenAPI document is not valid {format}: {message}")]
    Unparsable {
        format: &'static str,
        message: String,
    },
    /// The document parsed but a place in it is not what OpenAPI requires.
    #[error("invalid OpenAPI document at {pointer}: {problem}")]
    Invalid { pointer: String, problem: Problem },
    /// The YAML document's aliases (`*name`) expand it past [`MAX_YAML_ALIAS_NODES`] nodes beyond its size.
    #[error(
        "the OpenAPI document's YAML aliases expand it past {limit} nodes; a document that big must be written out"
    )]
    AliasExpansion { limit: usize },
    /// The `include`/`exclude` globs of the tool selection cannot be combined into one matcher.
    #[error("invalid tool selection pattern {pattern:?}: {message}")]
    InvalidSelection { pattern: String, message: String },
}

impl SpecError {
    pub(crate) fn invalid(pointer: impl Into<String>, problem: Problem) -> Self {
        SpecError::Invalid {
            pointer: pointer.into(),
            problem,
        }
    }

    /// The JSON pointer of the offending place, when there is one.
    #[cfg(test)]
    pub fn pointer(&self) -> Option<&str> {
        match self {
            SpecError::Invalid { pointer, .. } => Some(pointer),
            SpecError::Unparsable { .. }
            | SpecError::AliasExpansion { .. }
            | SpecError::InvalidSelection { .. } => None,
        }
    }
}

/// What exactly is wrong at the place a [`SpecError::Invalid`] points to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    #[error("expected {expected}, got {got}")]
    WrongType {
        expected: &'static str,
        got: &'static str,
    },
    #[error("missing required field \"{0}\"")]
    MissingField(&'static str),
    #[error(
        "unsupported OpenAPI version {0:?}: expected 3.0.x or 3.1.x (Swagger 2.0 must be converted first)"
    )]
    UnsupportedVersion(String),
    #[error("path {0:?} must start with \"/\"")]
    PathWithoutLeadingSlash(String),
    #[error("parameter \"in\" must be one of path, query, header, cookie (got {0:?})")]
    UnknownParameterLocation(String),
    #[error("parameter {0:?} needs either \"schema\" or \"content\"")]
    ParameterWithoutSchema(String),
    #[error("path template variable {{{0}}} has no matching \"in: path\" parameter")]
    UndeclaredPathVariable(String),
    #[error("$ref {0:?} does not resolve to anything in this document")]
    DanglingRef(String),
    #[error(
        "$ref {0:?} points outside this document; only local refs (\"#/...\") are supported, so bundle the document first"
    )]
    ExternalRef(String),
    #[error("$ref {0:?} starts a chain of references that never reaches a value")]
    RefLoop(String),
    #[error("{0}")]
    Unsupported(String),
    #[error(
        "the operation's argument schema would be larger than {limit} bytes once its $refs are inlined"
    )]
    SchemaTooLarge { limit: usize },
    #[error(
        "the operation's argument schema would nest deeper than {limit} levels once its $refs are inlined"
    )]
    SchemaTooDeep { limit: usize },
    #[error("the argument schemas of all operations together would be larger than {limit} bytes")]
    CatalogTooLarge { limit: usize },
}

/// Parses an OpenAPI document from bytes. JSON is tried when the first non-blank byte is `{`; anything else is
/// read as YAML (a superset of JSON, so a JSON document with a leading comment still works).
pub fn parse_document(bytes: &[u8]) -> Result<Value, SpecError> {
    let without_bom = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let looks_like_json =
        without_bom.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
    if looks_like_json {
        return serde_json::from_slice(without_bom).map_err(|error| SpecError::Unparsable {
            format: "JSON",
            message: error.to_string(),
        });
    }
    let unparsable = |error: serde_norway::Error| SpecError::Unparsable {
        format: "YAML",
        message: error.to_string(),
    };
    // Count first, keep nothing: an alias repeats its anchor's whole node, so a 500 KB document can stand for
    // billions of nodes, and building them is what must not happen.
    let limit = without_bom.len().saturating_add(MAX_YAML_ALIAS_NODES);
    let remaining = std::cell::Cell::new(limit);
    let counted = serde::de::DeserializeSeed::deserialize(
        CountNodes {
            remaining: &remaining,
        },
        serde_norway::Deserializer::from_slice(without_bom),
    );
    match counted {
        Ok(()) => {}
        Err(_) if remaining.get() == 0 => return Err(SpecError::AliasExpansion { limit }),
        Err(error) => return Err(unparsable(error)),
    }
    let yaml: serde_norway::Value = serde_norway::from_slice(without_bom).map_err(unparsable)?;
    yaml_to_json(yaml, "")
}

/// How many YAML nodes a document may have beyond one per byte of its text: room for aliases (`*name`) to repeat
/// anchored nodes a fair number of times, and no room for a "billion laughs".
pub const MAX_YAML_ALIAS_NODES: usize = 1_000_000;

/// Walks a YAML document the way deserialising it would (aliases expanded) and counts its nodes down from
/// `remaining`, failing when none are left. It builds nothing.
struct CountNodes<'a> {
    remaining: &'a std::cell::Cell<usize>,
}

impl CountNodes<'_> {
    fn count<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.remaining.get().checked_sub(1) {
            Some(left) if left > 0 => {
                self.remaining.set(left);
                Ok(())
            }
            _ => {
                self.remaining.set(0);
                Err(E::custom("too many nodes"))
            }
        }
    }

    fn again(&self) -> Self {
        CountNodes {
            remaining: self.remaining,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for CountNodes<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for CountNodes<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any YAML node")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.count()
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.count()
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.count()
    }

    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<(), E> {
        self.count()
    }

    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<(), E> {
        self.count()
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.count()
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.count()
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.count()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.count()
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.count()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.count()?;
        serde::de::DeserializeSeed::deserialize(self.again(), deserializer)
    }

    fn visit_newtype_struct<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<(), D::Error> {
        self.count()?;
        serde::de::DeserializeSeed::deserialize(self.again(), deserializer)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        self.count()?;
        while items.next_element_seed(self.again())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        self.count()?;
        while entries.next_key_seed(self.again())?.is_some() {
            entries.next_value_seed(self.again())?;
        }
        Ok(())
    }

    /// A tagged node (`!tag value`): the tag is dropped later, the value counts.
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, tagged: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        self.count()?;
        let (_, value) = tagged.variant::<serde::de::IgnoredAny>()?;
        value.newtype_variant_seed(self.again())
    }
}

/// Converts YAML into JSON values. Done by hand rather than through serde because YAML allows non-string keys
/// (`200:` under `responses` is an integer), which OpenAPI means as strings.
fn yaml_to_json(yaml: serde_norway::Value, pointer: &str) -> Result<Value, SpecError> {
    use serde_norway::Value as Yaml;
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => yaml_number_to_json(&number, pointer)?,
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| yaml_to_json(item, &format!("{pointer}/{index}")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(mapping) => {
            let mut object = Map::with_capacity(mapping.len());
            for (key, value) in mapping {
                let key = match key {
                    Yaml::String(text) => text,
                    Yaml::Bool(flag) => flag.to_string(),
                    Yaml::Number(number) => number.to_string(),
                    Yaml::Null => "null".to_owned(),
                    _ => {
                        return Err(SpecError::invalid(
                            pointer_or_root(pointer),
                            Problem::Unsupported("YAML mapping keys must be scalars".to_owned()),
                        ));
                    }
                };
                let child_pointer = format!("{pointer}/{}", escape_pointer_segment(&key));
                let value = yaml_to_json(value, &child_pointer)?;
                object.insert(key, value);
            }
            Value::Object(object)
        }
        Yaml::Tagged(tagged) => yaml_to_json(tagged.value, pointer)?,
    })
}

fn yaml_number_to_json(number: &serde_norway::Number, pointer: &str) -> Result<Value, SpecError> {
    if let Some(unsigned) = number.as_u64() {
        return Ok(Value::from(unsigned));
    }
    if let Some(signed) = number.as_i64() {
        return Ok(Value::from(signed));
    }
    number
        .as_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| {
            SpecError::invalid(
                pointer_or_root(pointer),
                Problem::Unsupported(format!("the number {number} has no JSON representation")),
            )
        })
}

/// Which OpenAPI 3 minor version a document declares; 3.0 and 3.1 differ in how schemas express nullability and
/// exclusive bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenApiVersion {
    V3_0,
    V3_1,
}

/// Reads and checks the `openapi` field.
pub fn openapi_version(doc: &Value) -> Result<OpenApiVersion, SpecError> {
    let root = doc
        .as_object()
        .ok_or_else(|| SpecError::invalid("/", wrong_type("an object", doc)))?;
    let version = root
        .get("openapi")
        .ok_or_else(|| SpecError::invalid("/", Problem::MissingField("openapi")))?;
    let version = version
        .as_str()
        .ok_or_else(|| SpecError::invalid("/openapi", wrong_type("a string", version)))?;
    if version == "3.0" || version.starts_with("3.0.") {
        Ok(OpenApiVersion::V3_0)
    } else if version == "3.1" || version.starts_with("3.1.") {
        Ok(OpenApiVersion::V3_1)
    } else {
        Err(SpecError::invalid(
            "/openapi",
            Problem::UnsupportedVersion(version.to_owned()),
        ))
    }
}

/// Checks the structure the catalog depends on and returns the declared version. Everything the catalog later reads
/// from the document has been verified here, which is why the builder can treat a surprise as a bug-free skip.
pub fn validate_document(doc: &Value) -> Result<OpenApiVersion, SpecError> {
    let version = openapi_version(doc)?;
    match doc.get("paths") {
        Some(Value::Object(paths)) => validate_paths(doc, paths)?,
        Some(other) => return Err(SpecError::invalid("/paths", wrong_type("an object", other))),
        // 3.1 made `paths` optional (a document may only hold webhooks or components); it then has no tools.
        None if version == OpenApiVersion::V3_1 => {}
        None => return Err(SpecError::invalid("/", Problem::MissingField("paths"))),
    }
    validate_refs(doc, doc, false, &mut String::new())?;
    Ok(version)
}

fn validate_paths(doc: &Value, paths: &Map<String, Value>) -> Result<(), SpecError> {
    for (path, item) in paths {
        let item_pointer = format!("/paths/{}", escape_pointer_segment(path));
        if path.starts_with("x-") {
            continue;
        }
        if !path.starts_with('/') {
            return Err(SpecError::invalid(
                item_pointer,
                Problem::PathWithoutLeadingSlash(path.clone()),
            ));
        }
        let (item, item_pointer) = follow_ref(doc, item, &item_pointer)?;
        let item = item.as_object().ok_or_else(|| {
            SpecError::invalid(&item_pointer, wrong_type("a path item object", item))
        })?;
        let shared_parameters =
            validate_parameter_list(doc, item.get("parameters"), &item_pointer)?;
        for method in OPERATION_METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let operation_pointer = format!("{item_pointer}/{method}");
            let operation = operation.as_object().ok_or_else(|| {
                SpecError::invalid(
                    &operation_pointer,
                    wrong_type("an operation object", operation),
                )
            })?;
            validate_operation(doc, path, operation, &operation_pointer, &shared_parameters)?;
        }
    }
    Ok(())
}

fn validate_operation(
    doc: &Value,
    path: &str,
    operation: &Map<String, Value>,
    pointer: &str,
    shared_parameters: &[(String, String)],
) -> Result<(), SpecError> {
    if let Some(operation_id) = operation.get("operationId")
        && !operation_id.is_string()
    {
        return Err(SpecError::invalid(
            format!("{pointer}/operationId"),
            wrong_type("a string", operation_id),
        ));
    }
    for (field, expected) in [("tags", "an array"), ("security", "an array")] {
        if let Some(value) = operation.get(field)
            && !value.is_array()
        {
            return Err(SpecError::invalid(
                format!("{pointer}/{field}"),
                wrong_type(expected, value),
            ));
        }
    }
    for field in ["summary", "description"] {
        if let Some(value) = operation.get(field)
            && !value.is_string()
        {
            return Err(SpecError::invalid(
                format!("{pointer}/{field}"),
                wrong_type("a string", value),
            ));
        }
    }
    let own_parameters = validate_parameter_list(doc, operation.get("parameters"), pointer)?;
    if let Some(body) = operation.get("requestBody") {
        let body_pointer = format!("{pointer}/requestBody");
        let (body, body_pointer) = follow_ref(doc, body, &body_pointer)?;
        let body = body.as_object().ok_or_else(|| {
            SpecError::invalid(&body_pointer, wrong_type("a request body object", body))
        })?;
        match body.get("content") {
            Some(Value::Object(_)) => {}
            Some(other) => {
                return Err(SpecError::invalid(
                    format!("{body_pointer}/content"),
                    wrong_type("an object", other),
                ));
            }
            None => {
                return Err(SpecError::invalid(
                    body_pointer,
                    Problem::MissingField("content"),
                ));
            }
        }
    }
    for variable in path_template_variables(path) {
        let declared = own_parameters
            .iter()
            .chain(shared_parameters)
            .any(|(name, location)| location == "path" && name == variable);
        if !declared {
            return Err(SpecError::invalid(
                pointer,
                Problem::UndeclaredPathVariable(variable.to_owned()),
            ));
        }
    }
    Ok(())
}

/// Validates a `parameters` array and returns the `(name, in)` pairs it declares.
fn validate_parameter_list(
    doc: &Value,
    parameters: Option<&Value>,
    owner_pointer: &str,
) -> Result<Vec<(String, String)>, SpecError> {
    let Some(parameters) = parameters else {
        return Ok(Vec::new());
    };
    let list_pointer = format!("{owner_pointer}/parameters");
    let parameters = parameters
        .as_array()
        .ok_or_else(|| SpecError::invalid(&list_pointer, wrong_type("an array", parameters)))?;
    let mut declared = Vec::with_capacity(parameters.len());
    for (index, parameter) in parameters.iter().enumerate() {
        let (parameter, pointer) = follow_ref(doc, parameter, &format!("{list_pointer}/{index}"))?;
        let parameter = parameter.as_object().ok_or_else(|| {
            SpecError::invalid(&pointer, wrong_type("a parameter object", parameter))
        })?;
        let name = match parameter.get("name") {
            Some(Value::String(name)) => name.clone(),
            Some(other) => {
                return Err(SpecError::invalid(
                    format!("{pointer}/name"),
                    wrong_type("a string", other),
                ));
            }
            None => return Err(SpecError::invalid(pointer, Problem::MissingField("name"))),
        };
        let location = match parameter.get("in") {
            Some(Value::String(location)) => location.clone(),
            Some(other) => {
                return Err(SpecError::invalid(
                    format!("{pointer}/in"),
                    wrong_type("a string", other),
                ));
            }
            None => return Err(SpecError::invalid(pointer, Problem::MissingField("in"))),
        };
        if !matches!(location.as_str(), "path" | "query" | "header" | "cookie") {
            return Err(SpecError::invalid(
                pointer,
                Problem::UnknownParameterLocation(location),
            ));
        }
        if !parameter.contains_key("schema") && !parameter.contains_key("content") {
            return Err(SpecError::invalid(
                pointer,
                Problem::ParameterWithoutSchema(name),
            ));
        }
        declared.push((name, location));
    }
    Ok(declared)
}

/// Walks the whole document and checks that every `$ref` is local and resolves.
fn validate_refs(
    doc: &Value,
    node: &Value,
    keys_are_names: bool,
    pointer: &mut String,
) -> Result<(), SpecError> {
    match node {
        Value::Object(object) => {
            if !keys_are_names && let Some(Value::String(reference)) = object.get("$ref") {
                resolve_ref(doc, reference)
                    .map_err(|problem| SpecError::invalid(pointer_or_root(pointer), problem))?;
            }
            for (key, child) in object {
                let is_data = key.starts_with("x-") || DATA_KEYWORDS.contains(&key.as_str());
                if is_data && !keys_are_names {
                    continue;
                }
                let child_maps_names = !keys_are_names && NAME_MAP_KEYWORDS.contains(&key.as_str());
                let saved_len = pointer.len();
                pointer.push('/');
                pointer.push_str(&escape_pointer_segment(key));
                validate_refs(doc, child, child_maps_names, pointer)?;
                pointer.truncate(saved_len);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                let saved_len = pointer.len();
                pointer.push('/');
                pointer.push_str(&index.to_string());
                validate_refs(doc, child, false, pointer)?;
                pointer.truncate(saved_len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Resolves one local `$ref` (`#/components/schemas/Name`) to its target.
pub fn resolve_ref<'doc>(doc: &'doc Value, reference: &str) -> Result<&'doc Value, Problem> {
    let Some(fragment) = reference.strip_prefix('#') else {
        return Err(Problem::ExternalRef(reference.to_owned()));
    };
    // A `$ref` is a URI, so its fragment may be percent-encoded (`%20`, `%7B`); JSON pointer escaping comes after.
    let fragment = percent_encoding::percent_decode_str(fragment)
        .decode_utf8()
        .map_err(|_| Problem::DanglingRef(reference.to_owned()))?;
    if !fragment.is_empty() && !fragment.starts_with('/') {
        // `#anchor` style references are not used by OpenAPI documents in practice.
        return Err(Problem::DanglingRef(reference.to_owned()));
    }
    doc.pointer(&fragment)
        .ok_or_else(|| Problem::DanglingRef(reference.to_owned()))
}

/// Follows `$ref`s from `node` until a non-reference value, returning it together with the pointer where it lives
/// (so later errors name the place that actually holds the bad value).
pub fn follow_ref<'doc>(
    doc: &'doc Value,
    mut node: &'doc Value,
    pointer: &str,
) -> Result<(&'doc Value, String), SpecError> {
    let mut current_pointer = pointer.to_owned();
    for _ in 0..MAX_REF_CHAIN {
        let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
            return Ok((node, current_pointer));
        };
        node = resolve_ref(doc, reference)
            .map_err(|problem| SpecError::invalid(&current_pointer, problem))?;
        current_pointer = reference.trim_start_matches('#').to_owned();
    }
    let reference = node.get("$ref").and_then(Value::as_str).unwrap_or_default();
    Err(SpecError::invalid(
        pointer,
        Problem::RefLoop(reference.to_owned()),
    ))
}

/// The `{name}` variables of a path template, in order.
pub fn path_template_variables(path: &str) -> impl Iterator<Item = &str> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// Escapes one JSON-pointer reference token (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn escape_pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn pointer_or_root(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

pub(crate) fn wrong_type(expected: &'static str, got: &Value) -> Problem {
    Problem::WrongType {
        expected,
        got: json_type_name(got),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal_doc(paths: Value) -> Value {
        json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": paths})
    }

    #[test]
    fn parses_a_json_document() {
        let bytes = br#"{"openapi": "3.1.0", "paths": {}}"#;

        let doc = parse_document(bytes).unwrap();

        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn parses_a_yaml_document_with_integer_response_codes() {
        let yaml = b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /things:\n    get:\n      responses:\n        200:\n          description: ok\n";

        let doc = parse_document(yaml).unwrap();

        assert_eq!(
            doc["paths"]["/things"]["get"]["responses"]["200"]["description"],
            "ok"
        );
        assert_eq!(validate_document(&doc).unwrap(), OpenApiVersion::V3_0);
    }

    #[test]
    fn reports_broken_json_as_unparsable_json() {
        let error = parse_document(b"{\"openapi\": ").unwrap_err();

        assert!(
            matches!(error, SpecError::Unparsable { format: "JSON", .. }),
            "{error}"
        );
    }

    #[test]
    fn reports_broken_yaml_as_unparsable_yaml() {
        let error = parse_document(b"openapi: [3.1\n  paths: :").unwrap_err();

        assert!(
            matches!(error, SpecError::Unparsable { format: "YAML", .. }),
            "{error}"
        );
    }

    #[test]
    fn refuses_yaml_whose_aliases_expand_past_the_node_limit() {
        // 100,000 aliases of a 100,000-item sequence: 500 KB of text for 10^10 nodes, which took minutes (and would
        // take hundreds of GB) to build.
        let items = vec!["1"; 100_000].join(",");
        let aliases = vec!["*a"; 100_000].join(",");
        let yaml = format!("openapi: 3.1.0\npaths: {{}}\nx-a: &a [{items}]\nx-b: [{aliases}]\n");

        let error = parse_document(yaml.as_bytes()).unwrap_err();

        assert!(
            matches!(error, SpecError::AliasExpansion { limit } if limit == yaml.len() + MAX_YAML_ALIAS_NODES),
            "{error}"
        );
    }

    #[test]
    fn expands_a_moderate_use_of_yaml_aliases() {
        let yaml = b"openapi: 3.1.0\npaths:\n  /a:\n    get:\n      parameters:\n        - &limit {name: limit, in: query, schema: {type: integer}}\n  /b:\n    get:\n      parameters: [*limit, !!map {name: q, in: query, schema: {}}]\n";

        let doc = parse_document(yaml).unwrap();

        assert_eq!(doc["paths"]["/b"]["get"]["parameters"][0]["name"], "limit");
        assert_eq!(doc["paths"]["/b"]["get"]["parameters"][1]["name"], "q");
    }

    #[test]
    fn rejects_swagger_2_with_a_version_error_at_the_openapi_field() {
        let doc = json!({"swagger": "2.0", "openapi": "2.0", "paths": {}});

        let error = validate_document(&doc).unwrap_err();

        assert_eq!(error.pointer(), Some("/openapi"));
        assert!(
            error
                .to_string()
                .contains("unsupported OpenAPI version \"2.0\""),
            "{error}"
        );
    }

    #[test]
    fn requires_paths_in_openapi_3_0_but_not_in_3_1() {
        let without_paths_3_0 = json!({"openapi": "3.0.1", "info": {}});
        let without_paths_3_1 = json!({"openapi": "3.1.0", "info": {}, "webhooks": {}});

        let error = validate_document(&without_paths_3_0).unwrap_err();

        assert!(
            error
                .to_string()
                .contains("missing required field \"paths\""),
            "{error}"
        );
        assert_eq!(
            validate_document(&without_paths_3_1).unwrap(),
            OpenApiVersion::V3_1
        );
    }

    #[test]
    fn names_the_json_pointer_of_a_parameter_with_an_unknown_location() {
        let doc = minimal_doc(json!({"/v1/products": {"get": {"parameters": [
            {"name": "a", "in": "query", "schema": {}},
            {"name": "b", "in": "query", "schema": {}},
            {"name": "c", "in": "body", "schema": {}}
        ]}}}));

        let error = validate_document(&doc).unwrap_err();

        assert_eq!(
            error.to_string(),
            "invalid OpenAPI document at /paths/~1v1~1products/get/parameters/2: \
             parameter \"in\" must be one of path, query, header, cookie (got \"body\")"
        );
    }

    #[test]
    fn names_the_place_of_a_dangling_ref() {
        let doc = minimal_doc(
            json!({"/a": {"get": {"responses": {"200": {"description": "ok",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Missing"}}}}}}}}),
        );

        let error = validate_document(&doc).unwrap_err();

        assert_eq!(
            error.pointer(),
            Some("/paths/~1a/get/responses/200/content/application~1json/schema")
        );
        assert!(
            error
                .to_string()
                .contains("\"#/components/schemas/Missing\" does not resolve"),
            "{error}"
        );
    }

    #[test]
    fn refuses_external_refs_because_the_catalog_never_fetches() {
        let doc =
            minimal_doc(json!({"/a": {"get": {"parameters": [{"$ref": "common.yaml#/Limit"}]}}}));

        let error = validate_document(&doc).unwrap_err();

        assert!(
            error.to_string().contains("points outside this document"),
            "{error}"
        );
        assert_eq!(error.pointer(), Some("/paths/~1a/get/parameters/0"));
    }

    #[test]
    fn ignores_ref_lookalikes_inside_examples_and_extensions() {
        let doc = minimal_doc(json!({"/a": {"get": {
            "x-code-samples": [{"$ref": "nowhere"}],
            "responses": {"200": {"description": "ok", "content": {"application/json": {
                "example": {"$ref": "not-a-reference"}}}}}
        }}}));

        assert!(validate_document(&doc).is_ok());
    }

    #[test]
    fn detects_a_path_variable_without_a_path_parameter() {
        let doc = minimal_doc(json!({"/things/{id}": {"get": {}}}));

        let error = validate_document(&doc).unwrap_err();

        assert_eq!(error.pointer(), Some("/paths/~1things~1{id}/get"));
        assert!(error.to_string().contains("{id}"), "{error}");
    }

    #[test]
    fn accepts_path_parameters_declared_on_the_path_item_or_through_a_ref() {
        let doc = json!({"openapi": "3.0.0", "paths": {
            "/a/{id}": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                        "get": {}},
            "/b/{id}": {"get": {"parameters": [{"$ref": "#/components/parameters/Id"}]}}
        }, "components": {"parameters": {"Id": {"name": "id", "in": "path", "required": true, "schema": {}}}}});

        assert!(validate_document(&doc).is_ok());
    }

    #[test]
    fn detects_a_ref_chain_that_loops() {
        let doc = json!({"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [{"$ref": "#/components/parameters/A"}]}}},
            "components": {"parameters": {"A": {"$ref": "#/components/parameters/B"}, "B": {"$ref": "#/components/parameters/A"}}}});

        let error = validate_document(&doc).unwrap_err();

        assert!(
            matches!(
                error,
                SpecError::Invalid {
                    problem: Problem::RefLoop(_),
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn reports_an_operation_that_is_not_an_object() {
        let doc = minimal_doc(json!({"/a": {"post": "nope"}}));

        let error = validate_document(&doc).unwrap_err();

        assert_eq!(
            error.to_string(),
            "invalid OpenAPI document at /paths/~1a/post: expected an operation object, got a string"
        );
    }

    #[test]
    fn resolves_percent_encoded_and_escaped_pointer_refs() {
        let doc = json!({"components": {"schemas": {"A B": {"type": "string"}, "c/d": {"type": "integer"}}}});

        assert_eq!(
            resolve_ref(&doc, "#/components/schemas/A%20B").unwrap()["type"],
            "string"
        );
        assert_eq!(
            resolve_ref(&doc, "#/components/schemas/c~1d").unwrap()["type"],
            "integer"
        );
    }

    #[test]
    fn lists_path_template_variables_in_order() {
        let variables: Vec<_> =
            path_template_variables("/orgs/{org}/members/{member_id}").collect();

        assert_eq!(variables, ["org", "member_id"]);
    }
}
