#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-*) from the tests.

The JSON literals of the unit and integration tests (`json!({...})` that are plain JSON, and raw strings) that
look like JSON-RPC messages, OpenAPI documents or tool arguments become seeds of the matching target, next to
hand-written cases for what the tests do not spell out as literals (every `alg`, claims of every JSON type,
header variants). Deterministic: running it again rewrites the same files. Only `seed-*` files in the corpus
directories are committed (.gitignore); libFuzzer adds its own files beside them while fuzzing.

Usage: python3 fuzz/make_seeds.py   (from anywhere)
"""

import hashlib
import json
import re
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"


def rust_sources(*patterns):
    for pattern in patterns:
        yield from sorted(ROOT.glob(pattern))


def balanced(text, start):
    """The end index (exclusive) of the bracketed value starting at text[start], or None."""
    opening = text[start]
    closing = {"{": "}", "[": "]"}[opening]
    depth = 0
    index = start
    in_string = False
    while index < len(text):
        char = text[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1 if char == closing else None
        index += 1
    return None


def json_literals(path):
    """Every `json!({...})` in a Rust file that is plain JSON (no Rust expressions)."""
    text = path.read_text()
    for match in re.finditer(r"json!\(\s*([{\[])", text):
        start = match.start(1)
        end = balanced(text, start)
        if end is None:
            continue
        literal = text[start:end]
        try:
            yield json.loads(literal)
        except json.JSONDecodeError:
            continue


def raw_strings(path):
    """The contents of `r#"..."#` and `r##"..."##` literals."""
    text = path.read_text()
    for match in re.finditer(r'r(#+)"(.*?)"\1', text, re.S):
        yield match.group(2)


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def write(target, name, content):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    digest = hashlib.sha1(data).hexdigest()[:8]
    (directory / f"seed-{name}-{digest}").write_bytes(data)


def clear_seeds():
    for path in CORPUS.glob("*/seed-*"):
        path.unlink()


# --- jsonrpc -------------------------------------------------------------------------------------------------

PLAIN = "content-type: application/json\naccept: application/json, text/event-stream\n"


def jsonrpc_seeds():
    messages = []
    for path in rust_sources("src/mcp/*.rs", "tests/api/*.rs"):
        for value in json_literals(path):
            if isinstance(value, dict) and "jsonrpc" in value:
                messages.append(compact(value))
        for text in raw_strings(path):
            if '"jsonrpc"' in text or text.startswith("{") or text.startswith("["):
                messages.append(text)
    # What the tests build with helpers (calls with arguments) or refuse as malformed.
    messages += [
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"items_list","arguments":{"limit":2}}}',
        '{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"whoami","arguments":null}}',
        '{"jsonrpc":"2.0","id":-9223372036854775808,"method":"tools/list"}',
        '{"jsonrpc":"2.0","id":18446744073709551615,"method":"tools/list"}',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{},"_meta":{"progressToken":1}}}',
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}',
        '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}',
        '{"jsonrpc":"2.0","id":1,"result":{}}',
        '{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"x"}}',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"extra":true}',
        '{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}',
        '{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"a"}}',
        '[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]',
        "\ufeff{}",
        "",
        "null",
        '{"jsonrpc":"2.0","id":1.0,"method":"ping"}',
        '{"jsonrpc":"1.0","id":1,"method":"ping"}',
    ]
    for index, message in enumerate(dict.fromkeys(messages)):
        write("jsonrpc", f"body{index:03}", message)
    headers = [
        PLAIN,
        PLAIN + "mcp-protocol-version: 2025-06-18\n",
        PLAIN + "mcp-protocol-version: 2026-07-28\n",
        PLAIN + "mcp-protocol-version: 2025-03-26\nmcp-protocol-version: 2025-06-18\n",
        "content-type: application/json; charset=utf-8\naccept: text/event-stream\naccept: application/json\n",
        "content-type: text/plain\naccept: application/json, text/event-stream\n",
        "content-type: application/json\naccept: application/json;q=0.9, text/event-stream\n",
        'content-type: application/json\naccept: "application/json", text/event-stream\n',
        "content-type: APPLICATION/JSON\naccept: */*\n",
        "",
    ]
    call = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"items_list","arguments":{"limit":2}}}'
    for index, header_lines in enumerate(headers):
        write("jsonrpc", f"headers{index:02}", f"H\n{header_lines}\n{call}")


# --- tool_request --------------------------------------------------------------------------------------------


def tool_request_seeds():
    """`request("tool", json!({...}))` and `validate(catalog.get("tool")…, &json!({...}))` calls of the tests."""
    fixture = json.loads((FUZZ / "fixtures" / "every_parameter_style.json").read_text())
    seeds = []
    for path in rust_sources("src/tools/request.rs", "src/tools/arguments.rs", "src/tools/fixture_tests.rs"):
        text = path.read_text()
        for match in re.finditer(r'(?:request\(|get\()\s*"([a-z_]+)"', text):
            tool = match.group(1)
            after = text[match.end() : match.end() + 400]
            literal = re.search(r"json!\(\s*([{\[])", after)
            if not literal:
                continue
            start = match.end() + literal.start(1)
            end = balanced(text, start)
            if end is None:
                continue
            try:
                arguments = json.loads(text[start:end])
            except json.JSONDecodeError:
                continue
            seeds.append((tool, compact(arguments)))
    hostile = {
        "products_get": [{"id": ".."}, {"id": "%2e%2e"}, {"id": "a/../../admin"}, {"id": "p", "X-Request-Id": "a\r\nX-Admin: 1"}],
        "labels_get": [{"label": "."}, {"label": ["", "."]}, {"label": {"a": "/", "b": "?"}}],
        "exploded_labels_get": [{"label": {"a": 1, "b": [2]}}, {"label": [".", "."]}],
        "colors_get": [{"color": ["red"], "a": ".", "b": "."}, {"color": [], "a": "%2e", "b": "%2e"}],
        "shapes_get": [{"shape": {"x": 1, "y": 2}}, {"shape": [1, 2]}, {"shape": "s;q=1"}],
        "objects_get": [
            {"key": "k", "X-Tags": ["a", "b\nc"], "X-Point": {"x": "1", "y": "2"}},
            {"key": {"a": "b"}, "X-Flat": {"a\r\n": "b"}, "X-Json": {"a": "\u0000"}},
            {"key": [1, None, True], "X-Plain": "text", "Authorization": "Bearer stolen"},
        ],
        "files_get": [{"name": {"a": [1, 2]}}, {"name": "."}, {"name": ""}],
        "dotted_delete": [{"version": 1, "rest": ".."}, {"version": 2, "rest": 1.5}, {"version": -1, "rest": True}],
        "orders_create": [{"Idempotency-Key": "key-12345", "body": "x", "body_query": "q"}, {"Idempotency-Key": "k" * 9000}],
        "products_list": [
            {"words": ["a b", "c"], "point": {"x": 1, "y": 2}, "coords": {"lat": 1.5}, "page": 2, "limit": 100},
            {"metadata": {"a": {"b": {"c": {"d": 1}}}}},
            {"anything": {"nested": [[1]]}},
            {"q": "x" * 17000},
        ],
    }
    for tool, cases in hostile.items():
        for arguments in cases:
            seeds.append((tool, compact(arguments)))
    seeds.append(("products_update", "[1,2]"))
    seeds.append(("no_such_tool", "{}"))
    names = {
        (operation.get("operationId") or "").replace(":", "_")
        for item in fixture["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
    }
    for index, (tool, arguments) in enumerate(dict.fromkeys(seeds)):
        if tool in names or tool == "no_such_tool":
            write("tool_request", f"{tool}-{index:03}", f"{tool}\n{arguments}")


# --- openapi_catalog -----------------------------------------------------------------------------------------


def openapi_seeds():
    documents = []
    for path in rust_sources("src/openapi/**/*.rs", "src/tools/*.rs", "src/cli/*.rs", "tests/api/*.rs", "src/dev/*.rs"):
        for value in json_literals(path):
            if isinstance(value, dict) and ("openapi" in value or "paths" in value):
                documents.append(compact(value))
        for text in raw_strings(path):
            if "openapi:" in text or '"openapi"' in text:
                documents.append(text)
    documents.append((FUZZ / "fixtures" / "every_parameter_style.json").read_text())
    # A document whose definitions inline into each other: the expansion cap's regression input (see
    # src/openapi/schema/tests.rs) at a size the fuzzer can mutate.
    schemas = {}
    for level in range(6):
        schemas[f"T{level}"] = {"$ref": f"#/components/schemas/B{level}"}
        schemas[f"B{level}"] = {
            "type": "object",
            "properties": {f"p{n}": {"$ref": f"#/components/schemas/T{level + 1}"} for n in range(4)},
        }
    schemas["T6"] = {"type": "string"}
    documents.append(
        compact(
            {
                "openapi": "3.1.0",
                "paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/T0"}}}}}}},
                "components": {"schemas": schemas},
            }
        )
    )
    documents += [
        "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      parameters:\n        - &p {name: a, in: query, schema: {type: string}}\n        - *p\n",
        "openapi: 3.1.0\npaths: {}\nx-big: &a [1, 2, 3]\nx-bigger: &b [*a, *a, *a]\n",
        "openapi: 3.1.0\npaths:\n  /a/{id}:\n    get:\n      parameters: [{name: id, in: path, required: true, schema: {$ref: '#/components/schemas/Loop'}}]\ncomponents:\n  schemas:\n    Loop: {type: object, properties: {next: {$ref: '#/components/schemas/Loop'}}}\n",
        '{"openapi":"3.1.0","paths":{"/a":{"get":{"parameters":[{"$ref":"#/components/parameters/A"}]}}},"components":{"parameters":{"A":{"$ref":"#/components/parameters/A"}}}}',
        "",
        "{",
        "- just\n- a list\n",
    ]
    for index, document in enumerate(dict.fromkeys(documents)):
        write("openapi_catalog", f"doc{index:03}", document)


# --- access_header -------------------------------------------------------------------------------------------

KID = "key-one"
AUDIENCE = "fuzz-audience"
ISSUER = "https://fuzzteam.cloudflareaccess.com"
# `NOW` is replaced by the current Unix time when the target runs; `NOW9` is far in the future.
USER = {
    "aud": [AUDIENCE],
    "email": "ada@example.com",
    "exp": "@NOW9",
    "iat": "@NOW",
    "nbf": "@NOW",
    "iss": ISSUER,
    "type": "app",
    "identity_nonce": "nonce-1",
    "sub": "7335d417-61da-459d-899c-000000000001",
    "country": "XX",
    "custom": {"groups": ["admins", {"name": "ops"}, {"id": "g-1"}, 7]},
}
SERVICE = {
    "aud": [AUDIENCE],
    "common_name": "ci-bot.access",
    "exp": "@NOW9",
    "iat": "@NOW",
    "nbf": "@NOW",
    "iss": ISSUER,
    "type": "app",
    "sub": "",
}
HEADER = {"typ": "JWT", "alg": "RS256", "kid": KID}


def token_json(value):
    """Compact JSON with the `@NOW…` placeholders written as bare `NOW…` numbers."""
    return re.sub(r'"@(NOW9?)"', r"\1", compact(value))


def access_seeds():
    seeds = []

    def add(name, recipe, header, claims, extra=""):
        head = header if isinstance(header, str) else token_json(header)
        body = claims if isinstance(claims, str) else token_json(claims)
        seeds.append((name, f"{recipe}\n{head}\n{body}\n{extra}"))

    add("user", "k-", HEADER, USER)
    add("service", "k-", HEADER, SERVICE)
    for kind in "uhnxt":
        add(f"user-sig-{kind}", f"{kind}-", HEADER, USER, "c2lnbmF0dXJl")
    for mutation in "cepowd":
        add(f"user-mut-{mutation}", f"k{mutation}", HEADER, USER, "e30")
    for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256", "HS384",
                "HS512", "none", "None", "rs256", "", None, 256, ["RS256"]]:
        header = dict(HEADER, alg=alg)
        for kind in "khn":
            add(f"alg-{alg}-{kind}", f"{kind}-", header, USER)
    for kid in [None, "", "key-two", "key-three", "unknown", 1, ["key-one"], "key-one\u0000", "../../key-one"]:
        header = dict(HEADER)
        if kid is None:
            header.pop("kid")
        else:
            header["kid"] = kid
        add(f"kid-{kid}", "k-", header, USER)
    # Header extras some libraries act on: an embedded key, a key URL, critical extensions.
    add("jwk-injection", "u-", dict(HEADER, kid="key-two", jwk={"kty": "RSA", "n": "AQAB", "e": "AQAB"}), USER)
    add("jku", "k-", dict(HEADER, jku="https://evil.example/certs", x5u="https://evil.example/x5u"), USER)
    add("crit", "k-", dict(HEADER, crit=["exp"]), USER)
    add("header-array", "k-", "[1,2]", USER)
    add("header-raw", "k-", "!not*base64", USER)
    # Claims of every JSON type.
    values = [None, True, False, 0, -1, 1.5, 1e300, 18446744073709551616, "", "x", [], ["x"], {}, {"a": 1}]
    for claim in ["aud", "exp", "nbf", "iat", "iss", "type", "email", "common_name", "sub", "country",
                  "identity_nonce", "custom"]:
        for value in values:
            add(f"claim-{claim}-{compact(value)}", "k-", HEADER, dict(USER, **{claim: value}))
    for claim in ["aud", "exp", "iss", "type", "email"]:
        claims = dict(USER)
        claims.pop(claim)
        add(f"without-{claim}", "k-", HEADER, claims)
    add("expired", "k-", HEADER, dict(USER, exp=1000))
    add("not-yet", "k-", HEADER, dict(USER, nbf="@NOW9"))
    add("aud-string", "k-", HEADER, dict(USER, aud=AUDIENCE))
    add("aud-many", "k-", HEADER, dict(USER, aud=["other", AUDIENCE]))
    add("iss-array", "k-", HEADER, dict(USER, iss=[ISSUER, "https://evil.example"]))
    add("nobody", "k-", HEADER, {k: v for k, v in SERVICE.items() if k != "common_name"})
    add("groups-string", "k-", HEADER, dict(USER, custom={"groups": "admins"}))
    add("claims-array", "k-", HEADER, "[1,2,3]")
    add("claims-raw", "k-", HEADER, "!e30")
    add("duplicate-aud", "k-", HEADER,
        token_json(USER)[:-1] + ',"aud":["someone-else"],"type":"org"}')
    for name, raw in [
        ("empty", ""),
        ("dots", "..."),
        ("two-parts", "eyJhbGciOiJSUzI1NiJ9.e30"),
        ("bearer", "Bearer eyJhbGciOiJub25lIn0.e30."),
        ("spaces", "  .  .  "),
        ("unicode", "\u00e9\u00e9.\u00e9.\u00e9"),
    ]:
        seeds.append((f"raw-{name}", f"R\n{raw}"))
    for name, content in seeds:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40]
        write("access_header", safe, content)


if __name__ == "__main__":
    clear_seeds()
    jsonrpc_seeds()
    tool_request_seeds()
    openapi_seeds()
    access_seeds()
    for target in sorted(CORPUS.iterdir()):
        files = list(target.glob("seed-*"))
        size = sum(path.stat().st_size for path in files)
        print(f"{target.name}: {len(files)} seeds, {size} bytes")
