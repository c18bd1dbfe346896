//! Turning a tool's (validated) arguments into the upstream HTTP request, safely.
//!
//! - Path parameters are percent-encoded as exactly one segment: everything outside RFC 3986's unreserved set is
//!   encoded, so `/`, `?`, `#`, `%` and `../` can never change the path; values that would still be a dot-segment
//!   (`.`, `..`) or an empty segment are refused, because URL parsers normalise them (even as `%2e%2e`).
//! - Query parameters follow the declared style: `form` (arrays as repeated keys when `explode`, comma-joined
//!   otherwise), `spaceDelimited`, `pipeDelimited`, `deepObject` (`metadata[key]=value`) and JSON `content`.
//!   Booleans are `true`/`false`; `null` means "not sent".
//! - Header values containing control characters (CR, LF, NUL, …) are refused, never stripped.
//! - Only declared parameters are sent. Unknown arguments are an error here too, even though the validator already
//!   rejects them (`additionalProperties: false`): this function must be safe on its own.

use http::HeaderValue;
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use super::arguments::{ArgumentError, accepted_arguments};
use crate::openapi::{ApiTool, BODY_ARGUMENT, ParamBinding, ParamLocation, ParamStyle};
use crate::upstream::UpstreamRequest;

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) is encoded in argument values.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Characters the document's own path literals may not carry raw; `/` is kept because literals are trusted structure.
const PATH_LITERAL: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

/// Longest path-and-query produced; beyond this upstreams answer 414 anyway, and it bounds hostile input.
pub const MAX_PATH_AND_QUERY_BYTES: usize = 16 * 1024;

/// Longest header value produced.
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;

/// Builds the upstream request for `tool` from its arguments.
pub fn build_request(
    tool: &ApiTool,
    args: &Map<String, Value>,
) -> Result<UpstreamRequest, ArgumentError> {
    for name in args.keys() {
        let declared = tool.params.iter().any(|param| &param.arg_name == name)
            || (tool.body.is_some() && name == BODY_ARGUMENT);
        if !declared {
            return Err(ArgumentError::UnknownArgument {
                tool: tool.name.clone(),
                argument: name.clone(),
                accepted: accepted_arguments(tool),
            });
        }
    }

    let mut path_and_query = render_path(tool, args)?;
    let mut query_pairs: Vec<String> = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    for param in &tool.params {
        let value = match args.get(&param.arg_name) {
            None | Some(Value::Null) if param.required => {
                return Err(ArgumentError::MissingArgument(param.arg_name.clone()));
            }
            None | Some(Value::Null) => continue,
            Some(value) => value,
        };
        match param.location {
            ParamLocation::Path => {}
            ParamLocation::Query => render_query(param, value, &mut query_pairs)?,
            ParamLocation::Header => {
                headers.push((param.wire_name.clone(), render_header(param, value)?))
            }
        }
    }
    if !query_pairs.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(&query_pairs.join("&"));
    }
    if path_and_query.len() > MAX_PATH_AND_QUERY_BYTES {
        return Err(ArgumentError::Unsendable {
            argument: "arguments".to_owned(),
            reason: format!(
                "the request URL would be {} bytes long; the limit is {MAX_PATH_AND_QUERY_BYTES}",
                path_and_query.len()
            ),
        });
    }

    let body = match (&tool.body, args.get(BODY_ARGUMENT)) {
        (Some(binding), None | Some(Value::Null)) if binding.required => {
            return Err(ArgumentError::MissingArgument(BODY_ARGUMENT.to_owned()));
        }
        (Some(binding), Some(body)) if !body.is_null() => {
            headers.push(("content-type".to_owned(), binding.content_type.clone()));
            Some(body.clone())
        }
        _ => None,
    };
    Ok(UpstreamRequest {
        method: tool.method.clone(),
        path_and_query,
        headers,
        body,
    })
}

fn render_path(tool: &ApiTool, args: &Map<String, Value>) -> Result<String, ArgumentError> {
    let mut path = String::with_capacity(tool.path_template.len() + 32);
    let mut rest = tool.path_template.as_str();
    while let Some(open) = rest.find('{') {
        let (literal, after_open) = rest.split_at(open);
        path.extend(utf8_percent_encode(literal, PATH_LITERAL));
        let Some(close) = after_open.find('}') else {
            // An unmatched `{` is literal text (validation only accepts complete `{name}` variables).
            path.extend(utf8_percent_encode(after_open, PATH_LITERAL));
            rest = "";
            break;
        };
        let variable = &after_open[1..close];
        let binding = tool
            .params
            .iter()
            .find(|param| param.location == ParamLocation::Path && param.wire_name == variable);
        let Some(binding) = binding else {
            return Err(ArgumentError::MissingArgument(variable.to_owned()));
        };
        let value = match args.get(&binding.arg_name) {
            None | Some(Value::Null) => {
                return Err(ArgumentError::MissingArgument(binding.arg_name.clone()));
            }
            Some(value) => value,
        };
        let rendered = render_path_value(binding, value)?;
        if rendered.is_empty() || rendered.bytes().all(|byte| byte == b'.') {
            return Err(ArgumentError::Unsendable {
                argument: binding.arg_name.clone(),
                reason: "a path parameter must not be empty, \".\" or \"..\"".to_owned(),
            });
        }
        path.push_str(&rendered);
        rest = &after_open[close + 1..];
    }
    path.extend(utf8_percent_encode(rest, PATH_LITERAL));
    refuse_new_dot_segments(tool, &path)?;
    Ok(path)
}

/// Two variables in one segment (`/{a}{b}`) could still form `..` together; compare the finished path's segments
/// with the template's (their count is equal because `/` in values is always encoded).
fn refuse_new_dot_segments(tool: &ApiTool, path: &str) -> Result<(), ArgumentError> {
    for (rendered, template) in path.split('/').zip(tool.path_template.split('/')) {
        if matches!(rendered, "." | "..") && rendered != template {
            return Err(ArgumentError::Unsendable {
                argument: template.to_owned(),
                reason: "the path parameters would form a \".\" or \"..\" segment".to_owned(),
            });
        }
    }
    Ok(())
}

fn render_path_value(binding: &ParamBinding, value: &Value) -> Result<String, ArgumentError> {
    if binding.style == ParamStyle::Json {
        return Ok(encode(&json_text(binding, value)?));
    }
    let name = encode(&binding.wire_name);
    let (prefix, item_separator, explode_separator) = match binding.style {
        ParamStyle::Label => (".".to_owned(), ",", "."),
        ParamStyle::Matrix => (format!(";{name}="), ",", ";"),
        _ => (String::new(), ",", ","),
    };
    match value {
        Value::Array(items) => {
            let items = scalars(binding, items.iter())?;
            if binding.style == ParamStyle::Matrix && binding.explode {
                Ok(items.iter().map(|item| format!(";{name}={item}")).collect())
            } else {
                let separator = if binding.explode {
                    explode_separator
                } else {
                    item_separator
                };
                Ok(format!("{prefix}{}", items.join(separator)))
            }
        }
        Value::Object(members) => {
            let pairs = object_pairs(binding, members)?;
            let prefix = if binding.style == ParamStyle::Matrix && binding.explode {
                ";".to_owned()
            } else {
                prefix
            };
            let joined = if binding.explode {
                pairs
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect::<Vec<_>>()
                    .join(explode_separator)
            } else {
                pairs
                    .iter()
                    .map(|(key, value)| format!("{key},{value}"))
                    .collect::<Vec<_>>()
                    .join(item_separator)
            };
            Ok(format!("{prefix}{joined}"))
        }
        scalar => Ok(format!(
            "{prefix}{}",
            encode(&scalar_text(binding, scalar)?)
        )),
    }
}

fn render_query(
    param: &ParamBinding,
    value: &Value,
    pairs: &mut Vec<String>,
) -> Result<(), ArgumentError> {
    let name = encode(&param.wire_name);
    match (param.style, value) {
        (ParamStyle::Json, _) => {
            pairs.push(format!("{name}={}", encode(&json_text(param, value)?)))
        }
        (ParamStyle::DeepObject, Value::Object(members)) => {
            render_deep_object(param, &name, members, pairs, 0)?
        }
        (ParamStyle::DeepObject, _) => {
            return Err(unsendable(param, "deepObject parameters take an object"));
        }
        (_, Value::Array(items)) => {
            let items = scalars(param, items.iter())?;
            if param.explode {
                pairs.extend(items.iter().map(|item| format!("{name}={item}")));
            } else if !items.is_empty() {
                let separator = match param.style {
                    ParamStyle::SpaceDelimited => "%20",
                    ParamStyle::PipeDelimited => "|",
                    _ => ",",
                };
                pairs.push(format!("{name}={}", items.join(separator)));
            }
        }
        (_, Value::Object(members)) => {
            let members = object_pairs(param, members)?;
            if param.explode {
                pairs.extend(members.iter().map(|(key, value)| format!("{key}={value}")));
            } else if !members.is_empty() {
                let flat: Vec<String> = members
                    .into_iter()
                    .flat_map(|(key, value)| [key, value])
                    .collect();
                pairs.push(format!("{name}={}", flat.join(",")));
            }
        }
        (_, scalar) => pairs.push(format!("{name}={}", encode(&scalar_text(param, scalar)?))),
    }
    Ok(())
}

/// `metadata[key]=value`, one pair per array member, nested objects as `metadata[key][inner]=value`. The brackets
/// stay literal (that is how deepObject is specified and what servers parse); keys and values are encoded.
fn render_deep_object(
    param: &ParamBinding,
    prefix: &str,
    members: &Map<String, Value>,
    pairs: &mut Vec<String>,
    depth: usize,
) -> Result<(), ArgumentError> {
    if depth > 2 {
        return Err(unsendable(
            param,
            "deepObject values may nest at most three objects deep",
        ));
    }
    for (key, value) in members {
        let key = format!("{prefix}[{}]", encode(key));
        match value {
            Value::Null => {}
            Value::Object(inner) => render_deep_object(param, &key, inner, pairs, depth + 1)?,
            Value::Array(items) => {
                for item in scalars(param, items.iter())? {
                    pairs.push(format!("{key}={item}"));
                }
            }
            scalar => pairs.push(format!("{key}={}", encode(&scalar_text(param, scalar)?))),
        }
    }
    Ok(())
}

fn render_header(param: &ParamBinding, value: &Value) -> Result<String, ArgumentError> {
    let text = match value {
        _ if param.style == ParamStyle::Json => json_text(param, value)?,
        Value::Array(items) => items
            .iter()
            .filter(|item| !item.is_null())
            .map(|item| scalar_text(param, item))
            .collect::<Result<Vec<_>, _>>()?
            .join(","),
        Value::Object(members) => {
            let mut parts = Vec::with_capacity(members.len());
            for (key, member) in members {
                let member = scalar_text(param, member)?;
                parts.push(if param.explode {
                    format!("{key}={member}")
                } else {
                    format!("{key},{member}")
                });
            }
            parts.join(",")
        }
        scalar => scalar_text(param, scalar)?,
    };
    if text
        .bytes()
        .any(|byte| (byte < 0x20 && byte != b'\t') || byte == 0x7f)
    {
        return Err(unsendable(
            param,
            "header values must not contain control characters such as CR, LF or NUL",
        ));
    }
    if text.len() > MAX_HEADER_VALUE_BYTES {
        return Err(unsendable(
            param,
            &format!(
                "the header value is {} bytes long; the limit is {MAX_HEADER_VALUE_BYTES}",
                text.len()
            ),
        ));
    }
    // Belt and braces: whatever passes here must also be a value the HTTP client accepts.
    HeaderValue::from_str(&text).map_err(|_| unsendable(param, "not a valid HTTP header value"))?;
    Ok(text)
}

/// The encoded text of each non-null array member; nested arrays and objects have no query/path form.
fn scalars<'a>(
    param: &ParamBinding,
    items: impl Iterator<Item = &'a Value>,
) -> Result<Vec<String>, ArgumentError> {
    items
        .filter(|item| !item.is_null())
        .map(|item| scalar_text(param, item).map(|text| encode(&text)))
        .collect()
}

/// Encoded `(key, value)` pairs of an object; members that are `null` are left out.
fn object_pairs(
    param: &ParamBinding,
    members: &Map<String, Value>,
) -> Result<Vec<(String, String)>, ArgumentError> {
    members
        .iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| Ok((encode(key), encode(&scalar_text(param, value)?))))
        .collect()
}

fn scalar_text(param: &ParamBinding, value: &Value) -> Result<String, ArgumentError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Null => Ok(String::new()),
        Value::Array(_) | Value::Object(_) => Err(unsendable(
            param,
            "nested arrays or objects cannot be expressed in this parameter's style",
        )),
    }
}

fn json_text(param: &ParamBinding, value: &Value) -> Result<String, ArgumentError> {
    serde_json::to_string(value).map_err(|error| unsendable(param, &error.to_string()))
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, VALUE).to_string()
}

fn unsendable(param: &ParamBinding, reason: &str) -> ArgumentError {
    ArgumentError::Unsendable {
        argument: param.arg_name.clone(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::{Catalog, CatalogOptions};
    use http::Method;
    use serde_json::json;

    fn catalog() -> Catalog {
        let doc = json!({"openapi": "3.1.0", "paths": {
            "/v1/products/{id}": {
                "get": {"operationId": "products:get", "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "id", "in": "query", "schema": {"type": "string"}},
                    {"name": "X-Request-Id", "in": "header", "schema": {"type": "string"}}]},
                "patch": {"operationId": "products:update", "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}}}
            },
            "/v1/products/": {"get": {"operationId": "products:list", "parameters": [
                {"name": "organization_id", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                {"name": "ids", "in": "query", "explode": false, "schema": {"type": "array"}},
                {"name": "tags", "in": "query", "style": "pipeDelimited", "explode": false, "schema": {"type": "array"}},
                {"name": "is_archived", "in": "query", "schema": {"type": "boolean"}},
                {"name": "metadata", "in": "query", "style": "deepObject", "schema": {"type": "object"}},
                {"name": "filter", "in": "query", "content": {"application/json": {"schema": {"type": "object"}}}},
                {"name": "q", "in": "query", "schema": {"type": "string"}}]}},
            "/v1/colors/{color}/{a}{b}": {"get": {"operationId": "colors:get", "parameters": [
                {"name": "color", "in": "path", "style": "matrix", "explode": true, "schema": {"type": "array"}},
                {"name": "a", "in": "path", "schema": {"type": "string"}},
                {"name": "b", "in": "path", "schema": {"type": "string"}}]}},
            "/v1/labels/{label}": {"get": {"operationId": "labels:get", "parameters": [
                {"name": "label", "in": "path", "style": "label", "schema": {}}]}}
        }});
        Catalog::build(
            &doc,
            &CatalogOptions {
                read_only: false,
                ..CatalogOptions::default()
            },
        )
        .unwrap()
    }

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn request(tool: &str, arguments: Value) -> Result<UpstreamRequest, ArgumentError> {
        build_request(catalog().get(tool).unwrap(), &args(arguments))
    }

    #[test]
    fn percent_encodes_a_path_parameter_as_one_segment() {
        let built = request("products_get", json!({"id": "../admin/x?y=1#z%2F"})).unwrap();

        assert_eq!(
            built.path_and_query,
            "/v1/products/..%2Fadmin%2Fx%3Fy%3D1%23z%252F"
        );
    }

    #[test]
    fn refuses_a_path_parameter_that_is_a_dot_segment_or_empty() {
        for hostile in ["..", ".", ""] {
            let error = request("products_get", json!({"id": hostile})).unwrap_err();

            assert!(
                matches!(&error, ArgumentError::Unsendable { argument, .. } if argument == "id"),
                "{hostile:?}: {error}"
            );
        }
    }

    #[test]
    fn refuses_a_label_style_value_that_would_render_as_a_dot_segment() {
        let error = request("labels_get", json!({"label": "."})).unwrap_err();

        assert!(
            matches!(&error, ArgumentError::Unsendable { argument, .. } if argument == "label"),
            "{error}"
        );
    }

    #[test]
    fn renders_a_label_style_array() {
        let built = request("labels_get", json!({"label": ["a", "b/c"]})).unwrap();

        assert_eq!(built.path_and_query, "/v1/labels/.a,b%2Fc");
    }

    #[test]
    fn encodes_unicode_and_spaces_in_a_path_parameter() {
        let built = request("products_get", json!({"id": "café au lait"})).unwrap();

        assert_eq!(built.path_and_query, "/v1/products/caf%C3%A9%20au%20lait");
    }

    #[test]
    fn renders_an_exploded_matrix_path_parameter() {
        let built = request(
            "colors_get",
            json!({"color": ["red", "blue"], "a": "x", "b": "y"}),
        )
        .unwrap();

        assert_eq!(built.path_and_query, "/v1/colors/;color=red;color=blue/xy");
    }

    #[test]
    fn sends_the_query_parameter_that_shares_a_path_parameter_name_under_its_wire_name() {
        let built = request("products_get", json!({"id": "p1", "id_query": "q1"})).unwrap();

        assert_eq!(built.path_and_query, "/v1/products/p1?id=q1");
    }

    #[test]
    fn repeats_the_key_for_an_exploded_form_array() {
        let built = request("products_list", json!({"organization_id": ["a", "b c"]})).unwrap();

        assert_eq!(
            built.path_and_query,
            "/v1/products/?organization_id=a&organization_id=b%20c"
        );
    }

    #[test]
    fn joins_a_non_exploded_array_with_its_style_delimiter() {
        let built = request(
            "products_list",
            json!({"ids": ["1", "2,3"], "tags": ["x", "y"]}),
        )
        .unwrap();

        assert_eq!(built.path_and_query, "/v1/products/?ids=1,2%2C3&tags=x|y");
    }

    #[test]
    fn writes_booleans_as_true_and_false_and_skips_nulls() {
        let built = request("products_list", json!({"is_archived": false, "q": null})).unwrap();

        assert_eq!(built.path_and_query, "/v1/products/?is_archived=false");
    }

    #[test]
    fn renders_deep_object_metadata_with_brackets() {
        let built = request(
            "products_list",
            json!({"metadata": {"plan": "pro", "region&x": ["eu", "us"], "n": 3}}),
        )
        .unwrap();

        assert_eq!(
            built.path_and_query,
            "/v1/products/?metadata[plan]=pro&metadata[region%26x]=eu&metadata[region%26x]=us&metadata[n]=3"
        );
    }

    #[test]
    fn sends_a_json_content_parameter_as_encoded_json() {
        let built = request("products_list", json!({"filter": {"a": 1}})).unwrap();

        assert_eq!(
            built.path_and_query,
            "/v1/products/?filter=%7B%22a%22%3A1%7D"
        );
    }

    #[test]
    fn cannot_be_tricked_into_adding_query_parameters() {
        let built = request("products_list", json!({"q": "x&limit=1000&admin=true"})).unwrap();

        assert_eq!(
            built.path_and_query,
            "/v1/products/?q=x%26limit%3D1000%26admin%3Dtrue"
        );
    }

    #[test]
    fn refuses_header_values_with_cr_lf_or_nul() {
        for hostile in ["a\r\nX-Admin: 1", "a\nb", "a\0b"] {
            let error =
                request("products_get", json!({"id": "p", "X-Request-Id": hostile})).unwrap_err();

            assert!(
                error.to_string().contains("control characters"),
                "{hostile:?}: {error}"
            );
        }
    }

    #[test]
    fn sends_a_declared_header_parameter() {
        let built = request(
            "products_get",
            json!({"id": "p", "X-Request-Id": "abc-123"}),
        )
        .unwrap();

        assert_eq!(
            built.headers,
            [("X-Request-Id".to_owned(), "abc-123".to_owned())]
        );
    }

    #[test]
    fn refuses_unknown_arguments() {
        let error = request(
            "products_get",
            json!({"id": "p", "Authorization": "Bearer stolen"}),
        )
        .unwrap_err();

        assert_eq!(
            error.to_string(),
            "unknown argument \"Authorization\" for products_get; accepted arguments: id, id_query, X-Request-Id"
        );
    }

    #[test]
    fn sends_the_body_with_its_content_type() {
        let built = request(
            "products_update",
            json!({"id": "p", "body": {"name": "New"}}),
        )
        .unwrap();

        assert_eq!(built.method, Method::PATCH);
        assert_eq!(built.body, Some(json!({"name": "New"})));
        assert_eq!(
            built.headers,
            [("content-type".to_owned(), "application/json".to_owned())]
        );
    }

    #[test]
    fn requires_a_required_body_and_path_parameter() {
        assert_eq!(
            request("products_update", json!({"id": "p"})),
            Err(ArgumentError::MissingArgument("body".to_owned()))
        );
        assert_eq!(
            request("products_update", json!({"body": {}})),
            Err(ArgumentError::MissingArgument("id".to_owned()))
        );
    }

    #[test]
    fn refuses_a_path_parameter_that_is_an_object_of_objects() {
        let error = request("products_get", json!({"id": {"a": {"b": 1}}})).unwrap_err();

        assert!(matches!(error, ArgumentError::Unsendable { .. }), "{error}");
    }

    #[test]
    fn refuses_a_huge_url() {
        let error = request("products_list", json!({"q": "x".repeat(20_000)})).unwrap_err();

        assert!(error.to_string().contains("the limit is 16384"), "{error}");
    }

    #[test]
    fn refuses_a_huge_header_value() {
        let error = request(
            "products_get",
            json!({"id": "p", "X-Request-Id": "x".repeat(10_000)}),
        )
        .unwrap_err();

        assert!(error.to_string().contains("the limit is 8192"), "{error}");
    }
}
