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

/// The same object rebuilt with every map, array and string holding exactly what it needs.
/// Values built by parsing and editing keep the spare room their growth left (a map that
/// grew to 9 members has room for 16); a catalog keeps its schemas for the process's life.
pub fn shrunk(map: Map<String, Value>) -> Map<String, Value> {
    let mut exact = Map::with_capacity(map.len());
    for (mut key, value) in map {
        key.shrink_to_fit();
        exact.insert(key, shrunk_value(value));
    }
    exact
}

fn shrunk_value(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(shrunk(map)),
        Value::Array(items) => {
            let mut exact = Vec::with_capacity(items.len());
            exact.extend(items.into_iter().map(shrunk_value));
            Value::Array(exact)
        }
        Value::String(mut text) => {
            text.shrink_to_fit();
            Value::String(text)
        }
        other => other,
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

    #[test]
    fn shrinking_keeps_every_member_in_its_order_and_drops_spare_room() {
        let mut grown = Map::new();
        for index in 0..9 {
            grown.insert(
                format!("k{index}"),
                json!({"list": [1, "two", {"three": null}]}),
            );
        }
        let mut list = Vec::with_capacity(64);
        list.push(json!("x"));
        grown.insert("grown_list".into(), Value::Array(list));
        let original = grown.clone();

        let exact = shrunk(grown);

        assert_eq!(exact, original);
        let keys: Vec<&String> = exact.keys().collect();
        assert_eq!(keys, original.keys().collect::<Vec<_>>());
        let Some(Value::Array(list)) = exact.get("grown_list") else {
            panic!("no list");
        };
        assert_eq!(list.capacity(), 1);
    }
}
