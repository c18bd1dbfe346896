//! Small JSON helpers shared by the compiler and the runtime.

use serde_json::{Map, Value};

/// How a value's JSON type reads in a message: "a string", "an object", "null".
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The members of a JSON object literal; anything else yields an empty object. For schemas
/// written in code with `json!`, which are objects by construction.
pub fn into_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_json_type_for_messages() {
        assert_eq!(json_type_name(&json!(null)), "null");
        assert_eq!(json_type_name(&json!([1])), "an array");
        assert_eq!(json_type_name(&json!({"a": 1})), "an object");
    }

    #[test]
    fn keeps_an_objects_members_and_turns_anything_else_into_an_empty_object() {
        assert_eq!(into_object(json!({"a": 1})).len(), 1);
        assert!(into_object(json!([1, 2])).is_empty());
    }
}
