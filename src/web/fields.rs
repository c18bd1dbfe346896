//! A tool's input fields, read from its flat JSON Schema: what the page lists (name, type,
//! required, description), which form control each one gets, and how a submitted form turns
//! back into the tool's JSON arguments.

use rmcp::model::JsonObject;
use serde_json::{Map, Value};

/// The argument-field prefix in a submitted form (`arg.limit`), keeping the form's own
/// fields (`csrf`, `confirm`) apart from a tool's arguments of the same name.
pub const ARGUMENT_PREFIX: &str = "arg.";

/// The form control an input field gets.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    Text,
    Integer,
    Number,
    Boolean,
    /// An `enum`: one of these values.
    Choice(Vec<Value>),
    /// Arrays, objects and anything else: JSON text. With `or_text` (the schema also takes a
    /// string), text that is not JSON is sent as that string.
    Json {
        or_text: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    /// The schema's type in words (`integer`, `array of string`, `string or null`).
    pub type_label: String,
    pub required: bool,
    pub description: Option<String>,
    /// The schema's `default`, shown as the control's placeholder.
    pub default: Option<String>,
    /// For an object: its properties one level down, for the listing.
    pub nested: Vec<Field>,
}

/// A submitted form that cannot become arguments (the tool is not called).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("{field}: not valid JSON ({problem})")]
    InvalidJson { field: String, problem: String },
}

/// The fields of an `inputSchema`, required ones first, each group in schema order.
pub fn fields(schema: &JsonObject) -> Vec<Field> {
    let required = required_names(schema);
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return Vec::new();
    };
    let mut listed: Vec<Field> = properties
        .iter()
        .map(|(name, property)| field(name, property, required.contains(&name.as_str())))
        .collect();
    listed.sort_by_key(|field| !field.required);
    listed
}

fn required_names(schema: &Map<String, Value>) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn field(name: &str, property: &Value, required: bool) -> Field {
    let alternatives = alternatives(property);
    let non_null: Vec<&Value> = alternatives
        .iter()
        .copied()
        .filter(|alternative| types_of(alternative) != ["null"])
        .collect();
    let types: Vec<&str> = non_null
        .iter()
        .flat_map(|alternative| types_of(alternative))
        .filter(|kind| *kind != "null")
        .collect();
    let choices = match non_null.as_slice() {
        [only] => only.get("enum").and_then(Value::as_array),
        _ => None,
    };
    let kind = match (choices, types.as_slice()) {
        (Some(values), _) if !values.is_empty() => FieldKind::Choice(
            values
                .iter()
                .filter(|value| !value.is_null())
                .cloned()
                .collect(),
        ),
        (_, ["string"]) => FieldKind::Text,
        (_, ["integer"]) => FieldKind::Integer,
        (_, ["number"]) => FieldKind::Number,
        (_, ["boolean"]) => FieldKind::Boolean,
        (_, kinds) => FieldKind::Json {
            or_text: kinds.contains(&"string"),
        },
    };
    let nested = match property.get("properties") {
        Some(Value::Object(inner)) => {
            let inner_required = property.as_object().map(required_names).unwrap_or_default();
            inner
                .iter()
                .map(|(inner_name, inner_property)| {
                    let mut nested = field(
                        inner_name,
                        inner_property,
                        inner_required.contains(&inner_name.as_str()),
                    );
                    nested.name = format!("{name}.{inner_name}");
                    nested.nested.clear();
                    nested
                })
                .collect()
        }
        _ => Vec::new(),
    };
    Field {
        name: name.to_owned(),
        type_label: type_label(&alternatives),
        kind,
        required,
        description: property
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        default: property.get("default").map(|value| match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }),
        nested,
    }
}

/// The schemas a value may match: the `anyOf`/`oneOf` branches of a property without a
/// `type` of its own, else the property itself.
fn alternatives(property: &Value) -> Vec<&Value> {
    if property.get("type").is_none() {
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = property.get(key) {
                return branches.iter().collect();
            }
        }
    }
    vec![property]
}

fn types_of(property: &Value) -> Vec<&str> {
    match property.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `integer or null`, `string or array of string or null`, `one of`.
fn type_label(alternatives: &[&Value]) -> String {
    let mut labels: Vec<String> = Vec::new();
    for alternative in alternatives {
        let types = types_of(alternative);
        let described: Vec<String> = if alternative.get("enum").is_some() {
            vec!["one of".into()]
        } else if types.is_empty() {
            vec!["any (JSON)".into()]
        } else {
            types
                .iter()
                .map(|kind| match (*kind, alternative.get("items")) {
                    ("array", Some(items)) if items.get("enum").is_some() => {
                        "array of one of".to_owned()
                    }
                    ("array", Some(items)) => match types_of(items).first() {
                        Some(item) => format!("array of {item}"),
                        None => "array".to_owned(),
                    },
                    (kind, _) => kind.to_owned(),
                })
                .collect()
        };
        for label in described {
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
    }
    // `null` last, however the schema ordered it.
    if let Some(position) = labels.iter().position(|label| label == "null") {
        let null = labels.remove(position);
        labels.push(null);
    }
    labels.join(" or ")
}

/// The value a choice is shown and submitted as.
pub fn choice_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A skeleton of an object field's properties (`{"title": "", "year": 0}`), as a hint.
pub fn json_skeleton(field: &Field) -> Option<String> {
    if field.nested.is_empty() {
        return None;
    }
    let mut skeleton = Map::new();
    for nested in &field.nested {
        let short = nested
            .name
            .rsplit_once('.')
            .map_or(nested.name.as_str(), |(_, short)| short);
        let example = match &nested.kind {
            FieldKind::Text => Value::String(String::new()),
            FieldKind::Integer | FieldKind::Number => Value::from(0),
            FieldKind::Boolean => Value::Bool(false),
            FieldKind::Choice(values) => values.first().cloned().unwrap_or(Value::Null),
            FieldKind::Json { .. } if nested.type_label.starts_with("array") => {
                Value::Array(Vec::new())
            }
            FieldKind::Json { .. } => Value::Null,
        };
        skeleton.insert(short.to_owned(), example);
    }
    Some(Value::Object(skeleton).to_string())
}

/// The submitted values of `fields` as the tool's arguments. An empty control is an absent
/// argument. A value that does not fit its type is passed on as text, so the tool's own
/// validation answers with the words an assistant would get; only JSON text that does not
/// parse is refused here.
pub fn arguments(
    fields: &[Field],
    submitted: &[(String, String)],
) -> Result<JsonObject, FieldError> {
    let mut arguments = JsonObject::new();
    for field in fields {
        let key = format!("{ARGUMENT_PREFIX}{}", field.name);
        let Some((_, raw)) = submitted.iter().find(|(name, _)| *name == key) else {
            continue;
        };
        if raw.trim().is_empty() {
            continue;
        }
        let value = match &field.kind {
            FieldKind::Text => Value::String(raw.clone()),
            FieldKind::Integer => raw
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(raw.clone())),
            FieldKind::Number => raw
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(raw.clone())),
            FieldKind::Boolean => match raw.trim() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                other => Value::String(other.to_owned()),
            },
            FieldKind::Choice(values) => values
                .iter()
                .find(|value| choice_text(value) == *raw)
                .cloned()
                .unwrap_or_else(|| Value::String(raw.clone())),
            FieldKind::Json { or_text } => match serde_json::from_str(raw) {
                Ok(value) => value,
                Err(_) if *or_text => Value::String(raw.trim().to_owned()),
                Err(error) => {
                    return Err(FieldError::InvalidJson {
                        field: field.name.clone(),
                        problem: error.to_string(),
                    });
                }
            },
        };
        arguments.insert(field.name.clone(), value);
    }
    Ok(arguments)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn books_create() -> JsonObject {
        schema(json!({
            "type": "object",
            "properties": {
                "dry_run": {"type": "boolean"},
                "body": {"type": "object", "required": ["title"], "properties": {
                    "title": {"type": "string", "minLength": 1},
                    "tags": {"type": "array", "items": {"type": "string"}}
                }},
                "sort": {"type": "string", "enum": ["asc", "desc"]},
                "limit": {"type": ["integer", "null"], "default": 10, "description": "Page size."}
            },
            "required": ["body"]
        }))
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (format!("{ARGUMENT_PREFIX}{name}"), value.to_string()))
            .collect()
    }

    #[test]
    fn lists_required_fields_first_with_their_types_and_nested_properties() {
        let listed = fields(&books_create());

        let names: Vec<&str> = listed.iter().map(|field| field.name.as_str()).collect();
        assert_eq!(names, ["body", "dry_run", "sort", "limit"]);
        assert_eq!(listed[0].kind, FieldKind::Json { or_text: false });
        assert_eq!(listed[0].nested[0].name, "body.title");
        assert!(listed[0].nested[0].required);
        assert_eq!(listed[0].nested[1].type_label, "array of string");
        assert_eq!(listed[1].kind, FieldKind::Boolean);
        assert_eq!(
            listed[2].kind,
            FieldKind::Choice(vec![json!("asc"), json!("desc")])
        );
        assert_eq!(listed[3].kind, FieldKind::Integer);
        assert_eq!(listed[3].type_label, "integer or null");
        assert_eq!(listed[3].default.as_deref(), Some("10"));
    }

    #[test]
    fn turns_a_submitted_form_into_typed_arguments_and_drops_empty_controls() {
        let listed = fields(&books_create());

        let arguments = arguments(
            &listed,
            &form(&[
                ("body", r#"{"title": "Dune", "tags": ["sf"]}"#),
                ("dry_run", "true"),
                ("sort", ""),
                ("limit", "25"),
            ]),
        )
        .unwrap();

        assert_eq!(
            Value::Object(arguments),
            json!({"body": {"title": "Dune", "tags": ["sf"]}, "dry_run": true, "limit": 25})
        );
    }

    #[test]
    fn passes_a_value_of_the_wrong_type_on_as_text_for_the_tool_to_refuse() {
        let listed = fields(&books_create());

        let arguments = arguments(&listed, &form(&[("body", "{}"), ("limit", "lots")])).unwrap();

        assert_eq!(arguments["limit"], json!("lots"));
    }

    #[test]
    fn refuses_json_text_that_does_not_parse_and_names_the_field() {
        let listed = fields(&books_create());

        let refused = arguments(&listed, &form(&[("body", "{title: Dune}")])).unwrap_err();

        assert!(
            refused.to_string().starts_with("body: not valid JSON"),
            "{refused}"
        );
    }

    #[test]
    fn reads_any_of_branches_and_takes_plain_text_where_a_string_is_allowed() {
        let listed = fields(&schema(json!({
            "type": "object",
            "properties": {
                "organization_id": {"anyOf": [
                    {"type": "string", "format": "uuid"},
                    {"type": "array", "items": {"type": "string"}},
                    {"type": "null"}
                ]},
                "slug": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "status": {"anyOf": [{"enum": ["active", "canceled"]}, {"type": "null"}]}
            }
        })));

        assert_eq!(listed[0].type_label, "string or array of string or null");
        assert_eq!(listed[0].kind, FieldKind::Json { or_text: true });
        assert_eq!(listed[1].kind, FieldKind::Text);
        assert_eq!(listed[1].type_label, "string or null");
        assert_eq!(
            listed[2].kind,
            FieldKind::Choice(vec![json!("active"), json!("canceled")])
        );
        let arguments = arguments(
            &listed,
            &form(&[("organization_id", "1dbfc517-0bbf"), ("slug", "acme")]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(arguments),
            json!({"organization_id": "1dbfc517-0bbf", "slug": "acme"})
        );
    }

    #[test]
    fn sketches_an_objects_properties_as_a_hint() {
        let listed = fields(&books_create());

        assert_eq!(
            json_skeleton(&listed[0]).as_deref(),
            Some(r#"{"title":"","tags":[]}"#)
        );
    }
}
