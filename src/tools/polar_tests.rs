//! The catalog against Polar's real OpenAPI document (2026-04, 186 operations). The document is not part of the
//! repository: tests read it as `tests/support/polar_document.rs` says, and skip, saying so, when it is absent.

use std::collections::HashSet;
use std::io::Write;

use serde_json::{Value, json};

use super::api::definition;
use super::arguments::{ArgumentError, ArgumentValidator};
use super::request::build_request;
use crate::openapi::{
    ApiTool, Catalog, CatalogOptions, ParamLocation, ParamStyle, is_valid_tool_name, parse_document,
};

#[path = "../../tests/support/polar_document.rs"]
mod polar_document;
use polar_document::polar_document_path;

fn validate(tool: &ApiTool, arguments: &Value) -> Result<(), ArgumentError> {
    ArgumentValidator::default().validate(tool, arguments)
}

/// Operations whose `security` lists the organization access token (`oat`), per the 2026-04 document.
const OAT_OPERATIONS: usize = 125;

/// The GET/HEAD subset of those: what the Polar profile serves by default.
const OAT_READ_ONLY_OPERATIONS: usize = 63;

/// The compactness budget for the default (read-only) catalog.
const MAX_AVERAGE_TOOL_BYTES: usize = 1200;

fn polar_document() -> Option<Value> {
    let path = polar_document_path()?;
    let bytes = std::fs::read(&path).unwrap();
    Some(parse_document(&bytes).unwrap())
}

/// Writes straight to stderr: libtest captures `println!`, and these lines must show in every test run.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn polar_catalog(doc: &Value, read_only: bool) -> Catalog {
    Catalog::build(
        doc,
        &CatalogOptions {
            read_only,
            ..CatalogOptions::polar()
        },
    )
    .unwrap()
}

/// The size of the `tools/list` result production sends for this catalog.
fn tools_list_bytes(catalog: &Catalog) -> usize {
    let tools = catalog.tools().iter().map(definition).collect();
    serde_json::to_string(&rmcp::model::ListToolsResult::with_all_items(tools))
        .unwrap()
        .len()
}

#[test]
fn serves_every_operation_an_organization_token_may_call_when_writes_are_enabled() {
    let Some(doc) = polar_document() else { return };

    let catalog = polar_catalog(&doc, false);

    assert!(catalog.skipped().is_empty(), "{:#?}", catalog.skipped());
    assert_eq!(catalog.len(), OAT_OPERATIONS);
    assert!(catalog.get("customer_portal_orders_list").is_none());
}

#[test]
fn serves_only_the_read_operations_of_an_organization_token_by_default() {
    let Some(doc) = polar_document() else { return };

    let catalog = polar_catalog(&doc, true);

    assert_eq!(catalog.len(), OAT_READ_ONLY_OPERATIONS);
    assert!(
        catalog
            .tools()
            .iter()
            .all(|tool| tool.read_only && tool.annotations.read_only)
    );
}

#[test]
fn gives_every_polar_tool_a_valid_unique_name_and_a_valid_2020_12_input_schema() {
    let Some(doc) = polar_document() else { return };
    let catalog = polar_catalog(&doc, false);
    let mut seen = HashSet::new();

    for tool in catalog.tools() {
        let schema = Value::Object(tool.input_schema.as_ref().clone());

        assert!(is_valid_tool_name(&tool.name), "{}", tool.name);
        assert!(seen.insert(tool.name.clone()), "duplicate {}", tool.name);
        if let Err(error) = jsonschema::draft202012::meta::validate(&schema) {
            panic!(
                "{}: invalid schema at {}: {error}",
                tool.name,
                error.instance_path()
            );
        }
        assert!(
            jsonschema::draft202012::new(&schema).is_ok(),
            "{} does not compile",
            tool.name
        );
        assert!(!tool.description.is_empty(), "{}", tool.name);
    }
}

#[test]
fn keeps_the_read_only_polar_tool_list_compact() {
    let Some(doc) = polar_document() else { return };
    let read_only = polar_catalog(&doc, true);
    let write_enabled = polar_catalog(&doc, false);

    let read_only_bytes = tools_list_bytes(&read_only);
    let write_enabled_bytes = tools_list_bytes(&write_enabled);

    report(&format!(
        "Polar tools/list: read-only {} tools, {read_only_bytes} bytes ({} per tool); write-enabled {} tools, \
         {write_enabled_bytes} bytes ({} per tool)",
        read_only.len(),
        read_only_bytes / read_only.len(),
        write_enabled.len(),
        write_enabled_bytes / write_enabled.len()
    ));
    assert!(read_only_bytes / read_only.len() <= MAX_AVERAGE_TOOL_BYTES);
}

#[test]
fn describes_polar_pagination_for_the_model() {
    let Some(doc) = polar_document() else { return };
    let catalog = polar_catalog(&doc, true);

    let list = catalog.get("products_list").unwrap();

    assert!(list.description.contains("Paginated: page starts at 1"));
    assert!(
        list.description.contains("limit is at most 100"),
        "{}",
        list.description
    );
    assert_eq!(list.input_schema["properties"]["limit"]["maximum"], 100);
    assert_eq!(
        validate(list, &json!({"limit": 500}))
            .unwrap_err()
            .to_string(),
        "invalid arguments for products_list: limit: 500 is greater than the maximum of 100"
    );
    assert!(
        list.scopes.contains(&"products:read".to_owned()),
        "{:?}",
        list.scopes
    );
}

#[test]
fn builds_a_polar_list_request_with_deep_object_metadata_and_repeated_keys() {
    let Some(doc) = polar_document() else { return };
    let catalog = polar_catalog(&doc, true);
    let list = catalog.get("products_list").unwrap();
    let metadata = list
        .params
        .iter()
        .find(|param| param.wire_name == "metadata")
        .unwrap();
    let arguments = json!({"page": 2, "limit": 50, "metadata": {"tier": "gold"}, "sorting": ["-created_at", "name"]});

    validate(list, &arguments).unwrap();
    let request = build_request(list, arguments.as_object().unwrap()).unwrap();

    assert_eq!(
        (metadata.location, metadata.style),
        (ParamLocation::Query, ParamStyle::DeepObject)
    );
    assert_eq!(
        request.path_and_query,
        "/v1/products/?page=2&limit=50&sorting=-created_at&sorting=name&metadata[tier]=gold"
    );
}

#[test]
fn builds_a_polar_get_by_id_request_that_cannot_escape_its_segment() {
    let Some(doc) = polar_document() else { return };
    let catalog = polar_catalog(&doc, true);
    let get = catalog.get("products_get").unwrap();

    let request =
        build_request(get, json!({"id": "../organizations"}).as_object().unwrap()).unwrap();

    assert_eq!(request.path_and_query, "/v1/products/..%2Forganizations");
}

#[test]
fn validates_a_polar_create_body_before_sending_it() {
    let Some(doc) = polar_document() else { return };
    let catalog = polar_catalog(&doc, false);
    let create = catalog.get("products_create").unwrap();

    let error = validate(create, &json!({"body": {"name": 42}})).unwrap_err();

    assert!(
        error
            .to_string()
            .starts_with("invalid arguments for products_create: body"),
        "{error}"
    );
}

#[test]
fn finds_polar_tools_by_words_for_the_dynamic_mode() {
    let Some(doc) = polar_document() else { return };
    let catalog = polar_catalog(&doc, false);

    let found: Vec<&str> = super::search::search(catalog.tools(), "list customers", 3)
        .into_iter()
        .map(|(tool, _)| tool.name.as_str())
        .collect();

    assert_eq!(found.first(), Some(&"customers_list"), "{found:?}");
}

/// JSON nesting depth of a value.
fn depth(value: &Value) -> usize {
    match value {
        Value::Object(object) => 1 + object.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[test]
fn stays_far_below_the_schema_size_and_depth_limits() {
    let Some(doc) = polar_document() else { return };
    let options = CatalogOptions {
        read_only: false,
        required_security_scheme: None,
        ..CatalogOptions::polar()
    };

    let catalog = Catalog::build(&doc, &options).unwrap();

    let schemas: Vec<Value> = catalog
        .tools()
        .iter()
        .map(|tool| Value::Object((*tool.input_schema).clone()))
        .collect();
    let sizes: Vec<usize> = schemas
        .iter()
        .map(|schema| serde_json::to_string(schema).unwrap().len())
        .collect();
    let largest = sizes.iter().copied().max().unwrap();
    let total: usize = sizes.iter().sum();
    let deepest = schemas.iter().map(depth).max().unwrap();
    report(&format!(
        "Polar, all {} operations: largest input schema {largest} bytes, all together {total} bytes, \
         deepest {deepest} JSON levels",
        catalog.len()
    ));
    assert!(largest * 16 <= options.schema.max_schema_bytes, "{largest}");
    assert!(total * 16 <= options.max_catalog_schema_bytes, "{total}");
    // MAX_INLINED_DEPTH (simplify.rs) is 256.
    assert!(deepest * 4 <= 256, "{deepest}");
}
