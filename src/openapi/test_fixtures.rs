//! Small OpenAPI documents shared by the compiler's and the runtime's unit tests.

use serde_json::{Value, json};

use super::CatalogOptions;

/// A pet store that exercises selection, bindings, pagination and annotations.
pub(crate) fn petstore() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "pets", "version": "1"},
        "security": [{"key": []}],
        "paths": {
            "/pets": {
                "get": {"operationId": "pets:list", "tags": ["pets"], "summary": "List pets",
                        "description": "List pets.\n\nReturns every pet.",
                        "parameters": [
                            {"name": "page", "in": "query", "schema": {"type": "integer", "default": 1}},
                            {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 10}},
                            {"name": "session", "in": "cookie", "schema": {"type": "string"}}]},
                "post": {"operationId": "pets:create", "tags": ["pets"], "summary": "Create a pet",
                         "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}}}
            },
            "/pets/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"tags": ["pets"], "summary": "Get a pet",
                        "parameters": [{"name": "Authorization", "in": "header", "schema": {"type": "string"}},
                                       {"name": "X-Trace", "in": "header", "schema": {"type": "string"}}]},
                "put": {"operationId": "pets:replace", "tags": ["pets"]},
                "delete": {"operationId": "pets:delete", "tags": ["pets", "danger"]}
            },
            "/uploads": {
                "post": {"operationId": "uploads:create", "tags": ["files"],
                         "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {}}}}}
            },
            "/admin/stats": {
                "get": {"operationId": "admin:stats", "tags": ["admin"], "security": [{"admin_key": []}]}
            }
        }
    })
}

pub(crate) fn write_enabled() -> CatalogOptions {
    CatalogOptions {
        read_only: false,
        ..CatalogOptions::default()
    }
}
