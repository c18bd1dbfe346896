//! End to end through the whole pipeline with small hand-written documents: an OpenAPI 3.0 YAML pet shop and an
//! OpenAPI 3.1 JSON billing API, covering cycles, nullable, allOf/oneOf, deepObject, arrays, name clashes, missing
//! operationIds, and a broken document whose error names the JSON pointer.

use serde_json::{Value, json};

use super::arguments::{ArgumentError, ArgumentValidator};
use super::request::build_request;
use crate::openapi::{ApiTool, Catalog, CatalogOptions, SpecError, parse_document};

fn validate(tool: &ApiTool, arguments: &Value) -> Result<(), ArgumentError> {
    ArgumentValidator::default().validate(tool, arguments)
}

const PET_SHOP_3_0_YAML: &str = r##"
openapi: 3.0.3
info: {title: Pet shop, version: "1.0"}
servers: [{url: "https://pets.example.com/api"}]
paths:
  /pets/{id}:
    parameters:
      - $ref: "#/components/parameters/PetId"
    get:
      summary: Get a pet
      parameters:
        - {name: id, in: query, description: Also an id, schema: {type: string}}
        - {name: X-Request-Id, in: header, schema: {type: string}}
      responses:
        200: {description: ok}
    put:
      operationId: replacePet
      requestBody:
        $ref: "#/components/requestBodies/Pet"
      responses:
        200: {description: ok}
    delete:
      operationId: deletePet
      responses:
        204: {description: gone}
  /pets:
    get:
      operationId: listPets
      x-internal-note: ignored
      parameters:
        - {name: page, in: query, schema: {type: integer, minimum: 1}}
        - {name: limit, in: query, schema: {type: integer, default: 20}}
        - {name: tag, in: query, schema: {type: array, items: {type: string}}}
        - name: filter
          in: query
          style: deepObject
          schema: {type: object, additionalProperties: {type: string}}
      responses:
        200: {description: ok}
components:
  parameters:
    PetId: {name: id, in: path, required: true, schema: {type: string}}
  requestBodies:
    Pet:
      required: true
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Pet"}
  schemas:
    Category:
      type: object
      properties:
        name: {type: string}
        parent: {$ref: "#/components/schemas/Category"}
    Named:
      type: object
      required: [name]
      properties:
        name: {type: string, example: Rex}
    Pet:
      allOf:
        - $ref: "#/components/schemas/Named"
        - type: object
          properties:
            age: {type: integer, minimum: 0, exclusiveMinimum: true}
            nickname: {type: string, nullable: true}
            category: {$ref: "#/components/schemas/Category"}
            owner:
              oneOf:
                - {$ref: "#/components/schemas/Person"}
                - {$ref: "#/components/schemas/Company"}
              discriminator: {propertyName: kind}
    Person:
      type: object
      required: [kind]
      properties: {kind: {type: string, enum: [person]}, born: {type: string, format: date, nullable: true}}
    Company:
      type: object
      required: [kind]
      properties: {kind: {type: string, enum: [company]}, vat: {type: string}}
      xml: {name: company}
"##;

fn billing_3_1() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Billing", "version": "2"},
        "paths": {
            "/v1/invoices/": {
                "get": {"operationId": "invoices:list", "tags": ["invoices"], "summary": "List invoices",
                        "parameters": [
                            {"name": "status", "in": "query", "schema": {"anyOf": [
                                {"$ref": "#/components/schemas/Status"},
                                {"type": "array", "items": {"$ref": "#/components/schemas/Status"}},
                                {"type": "null"}]}},
                            {"name": "page", "in": "query", "schema": {"type": "integer", "exclusiveMinimum": 0}},
                            {"name": "limit", "in": "query", "schema": {"type": "integer", "exclusiveMinimum": 0}}]},
                "post": {"operationId": "invoices:create", "tags": ["invoices"],
                         "requestBody": {"required": true, "content": {"application/json": {"schema":
                             {"$ref": "#/components/schemas/InvoiceCreate"}}}}}
            },
            "/v1/invoices/{id}/lines": {
                "get": {"operationId": "invoices:lines", "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}]}
            }
        },
        "components": {"schemas": {
            "Status": {"type": "string", "enum": ["draft", "open", "paid"], "title": "Status"},
            "Line": {"type": "object", "required": ["amount"], "properties": {
                "amount": {"type": "integer", "exclusiveMinimum": 0},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}}}},
            "InvoiceCreate": {"type": "object", "required": ["lines"], "properties": {
                "memo": {"anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}], "title": "Memo"},
                "kind": {"const": "standard"},
                "period": {"type": "array", "prefixItems": [{"type": "string", "format": "date"}, {"type": "string", "format": "date"}]},
                "lines": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Line"}}}}
        }}
    })
}

fn write_enabled() -> CatalogOptions {
    CatalogOptions {
        read_only: false,
        ..CatalogOptions::default()
    }
}

fn assert_every_schema_is_valid_2020_12(catalog: &Catalog) {
    for tool in catalog.tools() {
        let schema = Value::Object(tool.input_schema.as_ref().clone());
        if let Err(error) = jsonschema::draft202012::meta::validate(&schema) {
            panic!(
                "{}: {error} at {}\n{schema:#}",
                tool.name,
                error.instance_path()
            );
        }
    }
}

fn args(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().unwrap()
}

#[test]
fn builds_valid_tools_from_an_openapi_3_0_yaml_document() {
    let doc = parse_document(PET_SHOP_3_0_YAML.as_bytes()).unwrap();

    let catalog = Catalog::build(&doc, &write_enabled()).unwrap();

    let names: Vec<_> = catalog
        .tools()
        .iter()
        .map(|tool| tool.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["get_pets_id", "replacePet", "deletePet", "listPets"]
    );
    assert_every_schema_is_valid_2020_12(&catalog);
}

#[test]
fn resolves_a_name_clash_between_path_and_query_parameters() {
    let doc = parse_document(PET_SHOP_3_0_YAML.as_bytes()).unwrap();
    let catalog = Catalog::build(&doc, &write_enabled()).unwrap();
    let get = catalog.get("get_pets_id").unwrap();

    let request = build_request(
        get,
        &args(json!({"id": "p/1", "id_query": "q", "X-Request-Id": "r1"})),
    )
    .unwrap();

    assert_eq!(
        get.input_schema["properties"]["id_query"]["description"],
        "Also an id"
    );
    assert_eq!(request.path_and_query, "/pets/p%2F1?id=q");
    assert_eq!(
        request.headers,
        [("X-Request-Id".to_owned(), "r1".to_owned())]
    );
}

#[test]
fn keeps_the_recursive_category_and_converts_3_0_keywords_in_the_body() {
    let doc = parse_document(PET_SHOP_3_0_YAML.as_bytes()).unwrap();
    let catalog = Catalog::build(&doc, &write_enabled()).unwrap();
    let replace = catalog.get("replacePet").unwrap();

    let schema = &replace.input_schema;

    assert_eq!(
        schema["$defs"]["Category"]["properties"]["parent"],
        json!({"$ref": "#/$defs/Category"})
    );
    let pet = schema["properties"]["body"].to_string();
    assert!(
        pet.contains(r#""nickname":{"type":["string","null"]}"#),
        "{pet}"
    );
    assert!(
        pet.contains(r#""age":{"type":"integer","exclusiveMinimum":0}"#),
        "{pet}"
    );
    assert!(
        !pet.contains("discriminator") && !pet.contains("xml"),
        "{pet}"
    );
}

#[test]
fn validates_nested_body_arguments_through_all_of_and_one_of() {
    let doc = parse_document(PET_SHOP_3_0_YAML.as_bytes()).unwrap();
    let catalog = Catalog::build(&doc, &write_enabled()).unwrap();
    let replace = catalog.get("replacePet").unwrap();
    let good = json!({"id": "1", "body": {"name": "Rex", "age": 3, "nickname": null,
        "category": {"name": "dogs", "parent": {"name": "animals"}}, "owner": {"kind": "person", "born": null}}});
    let missing_name = json!({"id": "1", "body": {"age": 0}});

    let accepted = validate(replace, &good);
    let rejected = validate(replace, &missing_name).unwrap_err().to_string();

    assert_eq!(accepted, Ok(()));
    assert!(
        rejected.contains("body: \"name\" is a required property"),
        "{rejected}"
    );
    assert!(
        rejected.contains("body.age: 0 is less than or equal to the minimum of 0"),
        "{rejected}"
    );
}

#[test]
fn sends_arrays_as_repeated_keys_and_deep_objects_with_brackets() {
    let doc = parse_document(PET_SHOP_3_0_YAML.as_bytes()).unwrap();
    let catalog = Catalog::build(&doc, &write_enabled()).unwrap();
    let list = catalog.get("listPets").unwrap();
    let arguments = json!({"tag": ["a", "b"], "filter": {"color": "brown"}, "page": 1});

    validate(list, &arguments).unwrap();
    let request = build_request(list, &args(arguments)).unwrap();

    assert_eq!(
        request.path_and_query,
        "/pets?page=1&tag=a&tag=b&filter[color]=brown"
    );
    assert!(list.description.contains("Paginated: page starts at 1"));
}

#[test]
fn builds_valid_tools_from_an_openapi_3_1_document() {
    let catalog = Catalog::build(&billing_3_1(), &write_enabled()).unwrap();

    assert_eq!(catalog.len(), 3);
    assert_every_schema_is_valid_2020_12(&catalog);
    let create = catalog.get("invoices_create").unwrap();
    assert_eq!(
        create.input_schema["$defs"]["Line"]["properties"]["children"]["items"],
        json!({"$ref": "#/$defs/Line"})
    );
    assert_eq!(
        create.input_schema["properties"]["body"]["properties"]["memo"],
        json!({"type": ["string", "null"], "maxLength": 200})
    );
}

#[test]
fn accepts_one_or_many_enum_values_and_null_for_a_3_1_filter() {
    let catalog = Catalog::build(&billing_3_1(), &write_enabled()).unwrap();
    let list = catalog.get("invoices_list").unwrap();

    assert_eq!(validate(list, &json!({"status": "paid"})), Ok(()));
    assert_eq!(validate(list, &json!({"status": ["paid", "open"]})), Ok(()));
    assert_eq!(validate(list, &json!({"status": null})), Ok(()));
    let wrong = validate(list, &json!({"status": "lost"}))
        .unwrap_err()
        .to_string();
    assert!(
        wrong.starts_with("invalid arguments for invoices_list: status:"),
        "{wrong}"
    );
}

#[test]
fn validates_a_recursive_3_1_body() {
    let catalog = Catalog::build(&billing_3_1(), &write_enabled()).unwrap();
    let create = catalog.get("invoices_create").unwrap();

    let error = validate(
        create,
        &json!({"body": {"lines": [{"amount": 5, "children": [{"amount": -1}]}]}}),
    )
    .unwrap_err();

    assert!(
        error
            .to_string()
            .contains("body.lines[0].children[0].amount"),
        "{error}"
    );
}

#[test]
fn names_the_json_pointer_of_a_broken_yaml_document() {
    let broken = PET_SHOP_3_0_YAML.replace(
        "{name: X-Request-Id, in: header",
        "{name: X-Request-Id, in: body",
    );
    let doc = parse_document(broken.as_bytes()).unwrap();

    let error = Catalog::build(&doc, &CatalogOptions::default()).unwrap_err();

    assert_eq!(
        error.to_string(),
        "invalid OpenAPI document at /paths/~1pets~1{id}/get/parameters/1: \
         parameter \"in\" must be one of path, query, header, cookie (got \"body\")"
    );
}

#[test]
fn names_the_json_pointer_of_a_dangling_ref_under_a_property_called_default() {
    let mut doc = billing_3_1();
    doc["components"]["schemas"]["Line"]["properties"]["default"] =
        json!({"$ref": "#/components/schemas/Nope"});

    let error = Catalog::build(&doc, &write_enabled()).unwrap_err();

    assert!(matches!(&error, SpecError::Invalid { .. }), "{error}");
    assert_eq!(
        error.pointer(),
        Some("/components/schemas/Line/properties/default")
    );
}
