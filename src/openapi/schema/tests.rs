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
fn numbers_thousands_of_names_that_sanitise_alike_quickly() {
    // `a` followed by 20,000 different characters outside `[A-Za-z0-9_.-]`: every name sanitises to `a`.
    let wire_names: Vec<String> = (0..20_000u32)
        .filter_map(|n| char::from_u32(0x4e00 + n))
        .map(|c| format!("a{c}"))
        .collect();
    let parameters: Vec<(&str, DeclaredLocation)> = wire_names
        .iter()
        .map(|name| (name.as_str(), DeclaredLocation::Query))
        .collect();
    let started = std::time::Instant::now();

    let names = assign_argument_names(&parameters, false);

    // Counting up from 2 again for each parameter took 80 s here (quadratic, debug build).
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(names[..4], ["a", "a_query", "a_query_2", "a_query_3"]);
    assert_eq!(names.last().map(String::as_str), Some("a_query_19999"));
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
        "/op",
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
        "/op",
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
        "/op",
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
        "/op",
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
        "/op",
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
        "/op",
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
        "/op",
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
        "/op",
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
        "/op",
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
        "/op",
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
        "/op",
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
        "/op",
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
    let built = build_input_schema(
        &json!({}),
        OpenApiVersion::V3_1,
        &[],
        None,
        &options(),
        "/op",
    )
    .unwrap();

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

    let built = build_input_schema(
        &doc,
        OpenApiVersion::V3_1,
        &[parameter],
        None,
        &options(),
        "/op",
    )
    .unwrap();

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
        "/op",
    )
    .unwrap_err();

    assert_eq!(error.pointer(), Some("/test/upload/type"));
}

/// `T<n>` is only a `$ref` to `B<n>`, and `B<n>` has `fan_out` properties each a `$ref` to `T<n+1>`: every
/// definition is tiny or used once, so all are inlined, and the schema grows as `fan_out` to the power `levels`.
fn exponential_definitions(levels: usize, fan_out: usize) -> Value {
    let mut schemas = Map::new();
    for level in 0..levels {
        schemas.insert(
            format!("T{level}"),
            json!({"$ref": format!("#/components/schemas/B{level}")}),
        );
        let properties: Map<String, Value> = (0..fan_out)
            .map(|n| {
                let next = json!({"$ref": format!("#/components/schemas/T{}", level + 1)});
                (format!("p{n}"), next)
            })
            .collect();
        schemas.insert(
            format!("B{level}"),
            json!({"type": "object", "properties": properties}),
        );
    }
    schemas.insert(format!("T{levels}"), json!({"type": "string"}));
    json!({"components": {"schemas": schemas}})
}

#[test]
fn refuses_definitions_that_inline_into_a_schema_past_the_size_limit() {
    // 6^5 = 7,776 copies of the innermost definition: a few hundred KB from a 2 KB document (20 levels would be
    // 6^20 copies, and no machine finishes inlining them).
    let doc = exponential_definitions(5, 6);
    let schema = json!({"$ref": "#/components/schemas/T0"});
    let options = SchemaOptions {
        max_schema_bytes: 64 * 1024,
        ..options()
    };

    let error = build_input_schema(
        &doc,
        OpenApiVersion::V3_1,
        &[],
        Some(&body_of(&schema)),
        &options,
        "/paths/~1x/post",
    )
    .unwrap_err();

    assert_eq!(error.pointer(), Some("/paths/~1x/post"));
    assert!(
        matches!(
            &error,
            SpecError::Invalid {
                problem: Problem::SchemaTooLarge { limit: 65536 },
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn inlines_the_same_definitions_when_they_fit_the_size_limit() {
    let doc = exponential_definitions(2, 3);
    let schema = json!({"$ref": "#/components/schemas/T0"});

    let built = build_input_schema(
        &doc,
        OpenApiVersion::V3_1,
        &[],
        Some(&body_of(&schema)),
        &options(),
        "/op",
    )
    .unwrap();

    assert_eq!(
        built.schema["properties"]["body"]["properties"]["p2"]["properties"]["p0"],
        json!({"type": "string"})
    );
    assert_eq!(
        built.bytes,
        serde_json::to_string(&built.schema).unwrap().len()
    );
}

#[test]
fn refuses_a_chain_of_definitions_that_inlines_past_the_depth_limit() {
    // Each `L<n>` is used once, so each is inlined into the one before: a 300-deep schema (a few thousand would
    // overflow the stack of every pass that walks it).
    let mut schemas = Map::new();
    for level in 0..300 {
        schemas.insert(
            format!("L{level}"),
            json!({"type": "array", "items": {"$ref": format!("#/components/schemas/L{}", level + 1)}}),
        );
    }
    schemas.insert("L300".to_owned(), json!({"type": "string"}));
    let doc = json!({"components": {"schemas": schemas}});
    let schema = json!({"$ref": "#/components/schemas/L0"});

    let error = build_input_schema(
        &doc,
        OpenApiVersion::V3_1,
        &[],
        Some(&body_of(&schema)),
        &options(),
        "/paths/~1deep/post",
    )
    .unwrap_err();

    assert_eq!(error.pointer(), Some("/paths/~1deep/post"));
    assert!(
        matches!(
            &error,
            SpecError::Invalid {
                problem: Problem::SchemaTooDeep { .. },
                ..
            }
        ),
        "{error}"
    );
}
