use super::*;
use crate::openapi::test_fixtures::{petstore, write_enabled};
use serde_json::json;

fn glob(pattern: &str) -> Glob {
    Glob::new(pattern).unwrap()
}

fn names(catalog: &Catalog) -> Vec<&str> {
    catalog
        .tools()
        .iter()
        .map(|tool| tool.name.as_str())
        .collect()
}

#[test]
fn serves_only_get_and_head_operations_by_default() {
    let catalog = Catalog::build(&petstore(), &CatalogOptions::default()).unwrap();

    assert_eq!(names(&catalog), ["pets_list", "get_pets_id", "admin_stats"]);
}

#[test]
fn serves_write_operations_when_read_only_is_off_and_skips_what_it_cannot_send() {
    let catalog = Catalog::build(&petstore(), &write_enabled()).unwrap();

    assert_eq!(
        names(&catalog),
        [
            "pets_list",
            "pets_create",
            "get_pets_id",
            "pets_replace",
            "pets_delete",
            "admin_stats"
        ]
    );
    assert_eq!(catalog.skipped().len(), 1);
    assert_eq!(catalog.skipped()[0].name, "uploads_create");
    assert!(
        catalog.skipped()[0].reason.contains("multipart/form-data"),
        "{:?}",
        catalog.skipped()
    );
}

#[test]
fn never_serves_trace_because_it_would_echo_the_credential() {
    let doc = json!({"openapi": "3.1.0", "paths": {"/debug": {"trace": {"operationId": "debug"}}}});

    let catalog = Catalog::build(&doc, &write_enabled()).unwrap();

    assert!(catalog.is_empty());
}

#[test]
fn keeps_only_operations_that_list_the_required_security_scheme() {
    let options = CatalogOptions {
        required_security_scheme: Some("admin_key".to_owned()),
        ..write_enabled()
    };

    let catalog = Catalog::build(&petstore(), &options).unwrap();

    assert_eq!(names(&catalog), ["admin_stats"]);
}

#[test]
fn applies_include_and_exclude_globs_to_names_and_tags() {
    let options = CatalogOptions {
        include: vec![glob("pets")],
        exclude: vec![glob("danger"), glob("*_replace")],
        ..write_enabled()
    };

    let catalog = Catalog::build(&petstore(), &options).unwrap();

    assert_eq!(names(&catalog), ["pets_list", "pets_create", "get_pets_id"]);
}

#[test]
fn counts_what_each_setting_left_out() {
    let read_only = Catalog::build(&petstore(), &CatalogOptions::default()).unwrap();
    let one_scheme = Catalog::build(
        &petstore(),
        &CatalogOptions {
            required_security_scheme: Some("admin_key".to_owned()),
            ..write_enabled()
        },
    )
    .unwrap();
    let globbed = Catalog::build(
        &petstore(),
        &CatalogOptions {
            include: vec![glob("pets")],
            exclude: vec![glob("danger"), glob("*_replace")],
            ..write_enabled()
        },
    )
    .unwrap();

    assert_eq!(
        read_only.left_out(),
        LeftOut {
            writes_while_read_only: 4,
            ..LeftOut::default()
        }
    );
    assert_eq!(one_scheme.left_out().other_security, 6);
    assert_eq!(globbed.left_out().by_include_exclude, 4);
    assert_eq!(
        globbed.left_out().total() + globbed.len() + globbed.skipped().len(),
        7
    );
}

#[test]
fn keeps_names_stable_whatever_the_selection() {
    let everything = Catalog::build(&petstore(), &write_enabled()).unwrap();
    let options = CatalogOptions {
        include: vec![glob("get_pets_id")],
        ..write_enabled()
    };

    let one = Catalog::build(&petstore(), &options).unwrap();

    assert_eq!(names(&one), ["get_pets_id"]);
    assert!(everything.get("get_pets_id").is_some());
}

#[test]
fn sets_annotations_from_the_http_method() {
    let catalog = Catalog::build(&petstore(), &write_enabled()).unwrap();
    let hints = |name: &str| catalog.get(name).unwrap().annotations;

    assert_eq!(
        hints("pets_list"),
        ToolHints {
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: true
        }
    );
    assert_eq!(
        hints("pets_create"),
        ToolHints {
            read_only: false,
            destructive: false,
            idempotent: false,
            open_world: true
        }
    );
    assert_eq!(
        hints("pets_replace"),
        ToolHints {
            read_only: false,
            destructive: false,
            idempotent: true,
            open_world: true
        }
    );
    assert!(hints("pets_delete").destructive);
}

#[test]
fn describes_pagination_in_the_tool_and_its_parameters() {
    let options = CatalogOptions {
        max_page_size: Some(100),
        ..CatalogOptions::default()
    };

    let catalog = Catalog::build(&petstore(), &options).unwrap();

    let tool = catalog.get("pets_list").unwrap();
    assert!(tool.description.contains("Paginated: page starts at 1"));
    assert!(
        tool.description
            .starts_with("List pets.\nReturns every pet."),
        "{}",
        tool.description
    );
    assert_eq!(catalog.get("get_pets_id").unwrap().description, "Get a pet");
    assert!(
        tool.description.contains("limit is at most 100"),
        "{}",
        tool.description
    );
    let properties = &tool.input_schema["properties"];
    assert_eq!(properties["limit"]["maximum"], 100);
    assert_eq!(
        properties["limit"]["description"],
        "Items per page, at most 100, default 10."
    );
    assert_eq!(properties["page"]["minimum"], 1);
    assert_eq!(
        properties["page"]["description"],
        "Page number, from 1 (default 1)."
    );
}

#[test]
fn does_not_repeat_a_summary_that_the_description_already_says() {
    let doc = json!({"openapi": "3.1.0", "paths": {
        "/a": {"get": {"operationId": "a", "summary": "Get Benefit", "description": "Get a benefit by ID."}},
        "/b": {"get": {"operationId": "b", "summary": "Export", "description": "Download subscriptions as CSV."}}}});

    let catalog = Catalog::build(&doc, &CatalogOptions::default()).unwrap();

    assert_eq!(
        catalog.get("a").unwrap().description,
        "Get a benefit by ID."
    );
    assert_eq!(
        catalog.get("b").unwrap().description,
        "Export. Download subscriptions as CSV."
    );
}

#[test]
fn keeps_the_pagination_note_when_the_description_is_trimmed() {
    let options = CatalogOptions {
        description_max: 100,
        ..CatalogOptions::default()
    };

    let catalog = Catalog::build(&petstore(), &options).unwrap();

    let description = &catalog.get("pets_list").unwrap().description;
    assert!(description.chars().count() <= 100, "{description}");
    assert!(description.contains("Paginated"), "{description}");
}

#[test]
fn never_exposes_authorization_or_cookie_parameters() {
    let catalog = Catalog::build(&petstore(), &CatalogOptions::default()).unwrap();

    let get = catalog.get("get_pets_id").unwrap();
    let wire: Vec<_> = get.params.iter().map(|p| p.wire_name.as_str()).collect();
    assert_eq!(wire, ["id", "X-Trace"]);
    let list_args: Vec<_> = catalog
        .get("pets_list")
        .unwrap()
        .params
        .iter()
        .map(|p| p.arg_name.as_str())
        .collect();
    assert_eq!(list_args, ["page", "limit"]);
}

#[test]
fn binds_the_json_body() {
    let catalog = Catalog::build(&petstore(), &write_enabled()).unwrap();

    let create = catalog.get("pets_create").unwrap();

    assert_eq!(
        create.body,
        Some(BodyBinding {
            required: true,
            content_type: "application/json".to_owned()
        })
    );
    assert_eq!(create.input_schema["required"], json!(["body"]));
}

#[test]
fn refuses_a_document_whose_tools_together_pass_the_catalog_size_limit() {
    // A hundred operations share one definition of about 400 bytes (descriptions trimmed): each tool carries its
    // own copy.
    let shared = json!({"type": "object", "description": "x".repeat(150), "properties": {
        "a": {"type": "string", "description": "y".repeat(150)},
        "b": {"type": "string", "description": "z".repeat(150)}}});
    let paths: serde_json::Map<String, Value> = (0..100)
        .map(|n| {
            let operation = json!({"get": {"parameters": [
                {"name": "q", "in": "query", "schema": {"$ref": "#/components/schemas/Shared"}}]}});
            (format!("/things{n}"), operation)
        })
        .collect();
    let doc = json!({"openapi": "3.1.0", "paths": paths,
        "components": {"schemas": {"Shared": shared}}});
    let options = CatalogOptions {
        max_catalog_schema_bytes: 16 * 1024,
        ..CatalogOptions::default()
    };

    let error = Catalog::build(&doc, &options).unwrap_err();

    assert_eq!(error.pointer(), Some("/paths"));
    assert!(
        error.to_string().contains("larger than 16384 bytes"),
        "{error}"
    );
    assert_eq!(
        Catalog::build(&doc, &CatalogOptions::default())
            .unwrap()
            .len(),
        100
    );
}
