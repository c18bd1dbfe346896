"""Drive tunnelgate with the official Python MCP SDK client (PyPI `mcp`, 2.x).

Cases (each is independent and reported separately):

  py-http-legacy     Streamable HTTP, Client(mode="legacy"): initialize handshake
  py-http-auto       Streamable HTTP, Client(mode="auto"): server/discover at 2026-07-28;
                     tunnelgate serves 2026-07-28, so the client must ADOPT it (no fallback)
  py-sse             legacy HTTP+SSE (2024-11-05 transport), Client(mode="legacy")
  py-*-wrong-aud     the same three with a token minted for another audience: the client
                     must fail, and the failure must be the server's 403 wrong_audience

Every positive case runs initialize (or discover), tools/list (all pages),
tools/call whoami and tools/call books_list (a demo API tool), sending `Cf-Access-Jwt-Assertion` on every HTTP request, and asserts
on the results. The HTTP exchanges are recorded with httpx2 event hooks, so the
assertions can also name the wire-level facts (which JSON-RPC method went out, which
status came back) that the SDK does not surface itself.

Usage: python_client.py --info INFO_JSON [--results OUT_JSON] [--only CASE ...] [--verbose]
Exit status: 0 if every selected case passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import anyio
import httpx2
import mcp
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

HEADER = "Cf-Access-Jwt-Assertion"
EXPECTED_EMAIL = "dev@localhost"
MODERN = "2026-07-28"
CASE_TIMEOUT = 60.0
OTHER_AUDIENCE = "interop-some-other-application-aud"


class CheckFailed(AssertionError):
    pass


def check(cond: Any, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


# --------------------------------------------------------------------------- wire recorder


@dataclass
class Exchange:
    method: str
    url: str
    path: str
    rpc_method: str | None
    token_sent: str | None
    protocol_header: str | None
    status: int | None = None
    body: str | None = None  # only read for error responses (>= 400)


@dataclass
class Recorder:
    exchanges: list[Exchange] = field(default_factory=list)

    async def on_request(self, request: httpx2.Request) -> None:
        rpc = None
        try:
            content = request.content  # SDK requests are built with json=..., so this is bytes
            if content:
                rpc = json.loads(content).get("method")
        except Exception:
            rpc = None
        ex = Exchange(
            method=request.method,
            url=str(request.url),
            path=request.url.path,
            rpc_method=rpc,
            token_sent=request.headers.get(HEADER),
            protocol_header=request.headers.get("mcp-protocol-version"),
        )
        request.extensions["interop_exchange"] = ex
        self.exchanges.append(ex)

    async def on_response(self, response: httpx2.Response) -> None:
        ex = response.request.extensions.get("interop_exchange")
        if ex is None:
            return
        ex.status = response.status_code
        if response.status_code >= 400:
            # Error bodies are small and not streamed; reading here leaves the content
            # cached for the SDK's own later read.
            await response.aread()
            ex.body = response.text

    def hooks(self) -> dict[str, list[Callable[..., Awaitable[None]]]]:
        return {"request": [self.on_request], "response": [self.on_response]}

    def summary(self) -> str:
        return "; ".join(
            f"{e.method} {e.path}{'[' + e.rpc_method + ']' if e.rpc_method else ''} -> {e.status}" for e in self.exchanges
        )


def make_http_client(token: str, rec: Recorder, timeout: httpx2.Timeout | None = None) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        headers={HEADER: token},
        timeout=timeout or httpx2.Timeout(30.0, read=60.0),
        event_hooks=rec.hooks(),
    )


def sse_factory(rec: Recorder):
    # sse_client builds its own httpx2 client through this factory (headers come from sse_client).
    def factory(headers=None, timeout=None, auth=None) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            headers=headers,
            timeout=timeout or httpx2.Timeout(30.0, read=60.0),
            auth=auth,
            event_hooks=rec.hooks(),
        )

    return factory


# --------------------------------------------------------------------------- helpers


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def mint_token(info: dict, email: str, aud: str | None) -> str:
    params = {"email": email}
    if aud is not None:
        params["aud"] = aud
    r = httpx2.get(info["token_url"], params=params, timeout=10.0)
    check(r.status_code == 200, f"token_url {r.url} answered {r.status_code}: {r.text[:200]}")
    text = r.text.strip()
    # Accept either a bare JWT or a JSON object holding it.
    if text.startswith("{"):
        body = r.json()
        token = body.get("token") or body.get("jwt") or body.get("access_token")
        check(isinstance(token, str), f"token_url JSON has no token field: {text[:200]}")
    else:
        token = text.strip('"')
    check(token.count(".") == 2, f"token_url did not return a JWT: {text[:200]}")
    return token


def find_key(obj: Any, key: str) -> list[Any]:
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                found.append(v)
            found.extend(find_key(v, key))
    elif isinstance(obj, list):
        for v in obj:
            found.extend(find_key(v, key))
    return found


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out = []
        for e in exc.exceptions:
            out.extend(leaves(e))
        return out
    out = [exc]
    if exc.__cause__ is not None:
        out.extend(leaves(exc.__cause__))
    return out


async def list_all_tools(client: Client) -> list:
    tools, cursor = [], None
    for _ in range(50):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools
    raise CheckFailed("tools/list pagination did not end after 50 pages")


async def exercise(client: Client, rec: Recorder, token: str) -> str:
    """tools/list + tools/call whoami with assertions. Returns a short detail string."""
    tools = await list_all_tools(client)
    names = [t.name for t in tools]
    check(len(names) > 1, f"tools/list returned {len(names)} tool(s): {names}")
    check("whoami" in names, f"tools/list has no 'whoami': {names}")
    check(len(set(names)) == len(names), f"tools/list has duplicate names: {names}")
    for t in tools:
        schema = t.input_schema
        check(isinstance(schema, dict) and schema.get("type") == "object", f"tool {t.name} inputSchema is not an object schema: {schema}")

    result = await client.call_tool("whoami", {})
    check(not result.is_error, f"whoami returned isError: {result.content}")
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    check(texts, f"whoami returned no text content: {result.content}")
    emails = []
    for text in texts:
        try:
            emails.extend(find_key(json.loads(text), "email"))
        except json.JSONDecodeError:
            raise CheckFailed(f"whoami text content is not JSON: {text[:200]!r}")
    check(EXPECTED_EMAIL in emails, f"whoami content has no \"email\": \"{EXPECTED_EMAIL}\": {texts}")
    check(all(e == EXPECTED_EMAIL for e in emails), f"whoami content names another email too: {emails}")
    if result.structured_content is not None:
        s_emails = find_key(result.structured_content, "email")
        check(all(e == EXPECTED_EMAIL for e in s_emails), f"whoami structuredContent disagrees: {result.structured_content}")

    check("books_list" in names, f"tools/list has no demo API tool 'books_list': {names}")
    books = await client.call_tool("books_list", {"limit": 2})
    check(not books.is_error, f"books_list returned isError: {books.content}")
    page = books.structured_content
    if page is None:
        page = json.loads(next(c.text for c in books.content if getattr(c, "type", None) == "text"))
    items = page.get("items") if isinstance(page, dict) else None
    check(isinstance(items, list) and len(items) == 2, f"books_list limit=2 returned {str(page)[:200]}")
    check(items[0].get("id") == "bk_1", f"books_list's first book is {items[0].get('id')}, expected bk_1")

    # Every HTTP request the SDK made carried our token, and nothing failed on the wire.
    check(rec.exchanges, "no HTTP exchange was recorded")
    for ex in rec.exchanges:
        check(ex.token_sent == token, f"{ex.method} {ex.path} went out without the {HEADER} header")
    sent = [e.rpc_method for e in rec.exchanges]
    check("tools/list" in sent and "tools/call" in sent, f"tools/list or tools/call never reached the wire: {rec.summary()}")
    return f"{len(names)} tools ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''}); whoami email={EXPECTED_EMAIL}; books_list limit=2 -> {','.join(b['id'] for b in items)}"


def assert_no_http_errors(rec: Recorder, allowed: set[int] = frozenset()) -> None:
    bad = [e for e in rec.exchanges if e.status is not None and e.status >= 400 and e.status not in allowed]
    check(not bad, f"HTTP errors during a positive case: {[(e.method, e.path, e.rpc_method, e.status, e.body) for e in bad]}")


# --------------------------------------------------------------------------- positive cases


async def case_http_legacy(info: dict, ctx: dict) -> str:
    rec, token = Recorder(), info["token"]
    ctx["rec"] = rec
    async with make_http_client(token, rec) as http:
        async with Client(streamable_http_client(info["mcp_url"], http_client=http), mode="legacy", cache=None) as c:
            check(c.session.initialize_result is not None, "legacy mode finished without an InitializeResult")
            check(c.session.discover_result is None, "legacy mode unexpectedly adopted a DiscoverResult")
            check(c.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS, f"negotiated {c.protocol_version!r}, not a handshake-era version")
            check(c.server_info is not None and c.server_info.name, f"no serverInfo: {c.server_info}")
            check(c.server_capabilities.tools is not None, "server did not declare the tools capability")
            version, server_name = c.protocol_version, c.server_info.name
            ctx["protocol"] = version
            detail = await exercise(c, rec, token)
    sent = [e.rpc_method for e in rec.exchanges]
    check("initialize" in sent, f"no initialize was sent: {rec.summary()}")
    check("server/discover" not in sent, f"legacy mode sent server/discover: {rec.summary()}")
    init = next(e for e in rec.exchanges if e.rpc_method == "initialize")
    check(init.status == 200, f"initialize answered {init.status}")
    # After the handshake, the version header must be the negotiated one (06-18+ rule, client side).
    later = [e for e in rec.exchanges if e.rpc_method in ("tools/list", "tools/call")]
    if version != "2025-03-26":
        check(all(e.protocol_header == version for e in later), f"MCP-Protocol-Version headers: {[e.protocol_header for e in later]}")
    assert_no_http_errors(rec, allowed={405})  # 405: server has no GET stream / DELETE (stateless)
    return f"protocol {version}, server {server_name}; {detail}"


async def case_http_auto(info: dict, ctx: dict) -> str:
    rec, token = Recorder(), info["token"]
    ctx["rec"] = rec
    async with make_http_client(token, rec) as http:
        # mode="auto" is also the SDK's default; spelled out here. It sends server/discover at
        # LATEST_MODERN_VERSION (2026-07-28) and adopt()s the DiscoverResult, falling back to
        # initialize only when the probe is rejected.
        async with Client(streamable_http_client(info["mcp_url"], http_client=http), mode="auto", cache=None) as c:
            disc = c.session.discover_result
            check(disc is not None, f"auto mode fell back to initialize instead of adopting discover: {rec.summary()}")
            check(c.session.initialize_result is None, "auto mode has an InitializeResult (fallback happened)")
            check(c.protocol_version == MODERN, f"auto mode negotiated {c.protocol_version!r}, expected {MODERN}")
            check(MODERN in disc.supported_versions, f"server/discover supportedVersions lacks {MODERN}: {disc.supported_versions}")
            check(c.server_capabilities.tools is not None, "server/discover capabilities lack tools")
            version = c.protocol_version
            ctx["protocol"] = version
            detail = await exercise(c, rec, token)
    sent = [e.rpc_method for e in rec.exchanges]
    check("initialize" not in sent, f"auto mode sent initialize (fell back): {rec.summary()}")
    probe = next((e for e in rec.exchanges if e.rpc_method == "server/discover"), None)
    check(probe is not None and probe.status == 200, f"server/discover probe: {rec.summary()}")
    later = [e for e in rec.exchanges if e.rpc_method in ("tools/list", "tools/call")]
    check(all(e.protocol_header == MODERN for e in later), f"MCP-Protocol-Version headers: {[e.protocol_header for e in later]}")
    check(not any(e.method in ("GET", "DELETE") for e in rec.exchanges), f"modern mode opened a GET stream or DELETE: {rec.summary()}")
    assert_no_http_errors(rec)
    return f"discover adopted, protocol {version}, supportedVersions {list(disc.supported_versions)}; {detail}"


async def case_sse(info: dict, ctx: dict) -> str:
    rec, token = Recorder(), info["token"]
    ctx["rec"] = rec
    transport = sse_client(info["sse_url"], headers={HEADER: token}, timeout=30.0, sse_read_timeout=60.0, httpx_client_factory=sse_factory(rec))
    async with Client(transport, mode="legacy", cache=None) as c:
        check(c.session.initialize_result is not None, "no InitializeResult over SSE")
        check(c.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS, f"negotiated {c.protocol_version!r}")
        version = c.protocol_version
        ctx["protocol"] = version
        detail = await exercise(c, rec, token)
    gets = [e for e in rec.exchanges if e.method == "GET"]
    check(len(gets) == 1 and gets[0].status == 200, f"expected one SSE GET answered 200: {rec.summary()}")
    posts = [e for e in rec.exchanges if e.method == "POST"]
    check(posts, "no POST to the message endpoint")
    check(all(e.status == 202 for e in posts), f"message POSTs not all 202: {rec.summary()}")
    check(len({e.path for e in posts}) == 1 and posts[0].path != gets[0].path, f"POST endpoint: {[e.url for e in posts]}")
    return f"protocol {version}, endpoint {posts[0].path}; {detail}"


# --------------------------------------------------------------------------- negative cases


def wrong_token(info: dict, ctx: dict) -> str:
    if "wrong" not in ctx:
        tok = mint_token(info, EXPECTED_EMAIL, OTHER_AUDIENCE)
        claims = jwt_claims(tok)
        auds = claims.get("aud")
        auds = auds if isinstance(auds, list) else [auds]
        check(OTHER_AUDIENCE in auds and info["audience"] not in auds, f"minted token has aud {auds}")
        check(claims.get("email") == EXPECTED_EMAIL, f"minted token has email {claims.get('email')}")
        ctx["wrong"] = tok
    return ctx["wrong"]


def assert_403(rec: Recorder, exc: BaseException | None, token: str) -> list[Exchange]:
    check(exc is not None, f"the client connected and listed tools with a wrong-audience token: {rec.summary()}")
    check(rec.exchanges, f"no HTTP request was made; the client failed with {exc!r}")
    for ex in rec.exchanges:
        check(ex.token_sent == token, f"{ex.method} {ex.path} did not carry the wrong-audience token")
    ok = [e for e in rec.exchanges if e.status is not None and 200 <= e.status < 300]
    check(not ok, f"the server accepted a wrong-audience request: {[(e.method, e.path, e.rpc_method, e.status) for e in ok]}")
    denied = [e for e in rec.exchanges if e.status == 403]
    check(denied, f"no 403 from the server: {rec.summary()}")
    for e in denied:
        try:
            body = json.loads(e.body or "")
        except json.JSONDecodeError:
            raise CheckFailed(f"403 body is not JSON: {e.body!r}")
        check(body.get("reason") == "wrong_audience", f"403 body lacks reason=wrong_audience: {e.body}")
        check(body.get("error") == "access_denied", f"403 body lacks error=access_denied: {e.body}")
    others = [e for e in rec.exchanges if e.status != 403]
    check(not others, f"non-403 answers to wrong-audience requests: {rec.summary()}")
    return denied


async def expect_failure(coro: Callable[[], Awaitable[None]]) -> BaseException | None:
    try:
        await coro()
    except Exception as e:  # includes ExceptionGroup
        return e
    return None


async def case_http_legacy_wrong_aud(info: dict, ctx: dict) -> str:
    rec, token = Recorder(), wrong_token(info, ctx)
    ctx["rec"] = rec

    async def attempt():
        async with make_http_client(token, rec) as http:
            async with Client(streamable_http_client(info["mcp_url"], http_client=http), mode="legacy", cache=None) as c:
                await c.list_tools()

    exc = await expect_failure(attempt)
    denied = assert_403(rec, exc, token)
    check(denied[0].rpc_method == "initialize", f"first refused request was {denied[0].rpc_method}")
    errs = [e for e in leaves(exc) if isinstance(e, MCPError)]
    check(errs, f"client raised {exc!r}, not the MCPError the SDK makes of an HTTP 4xx")
    return f"initialize -> 403 {denied[0].body}; client raised MCPError({errs[0].code}, {errs[0].error.message!r})"


async def case_http_auto_wrong_aud(info: dict, ctx: dict) -> str:
    rec, token = Recorder(), wrong_token(info, ctx)
    ctx["rec"] = rec

    async def attempt():
        async with make_http_client(token, rec) as http:
            async with Client(streamable_http_client(info["mcp_url"], http_client=http), mode="auto", cache=None) as c:
                await c.list_tools()

    exc = await expect_failure(attempt)
    denied = assert_403(rec, exc, token)
    sent = [e.rpc_method for e in rec.exchanges]
    check(sent and sent[0] == "server/discover", f"auto mode did not start with server/discover: {rec.summary()}")
    errs = [e for e in leaves(exc) if isinstance(e, MCPError)]
    check(errs, f"client raised {exc!r}, not the MCPError the SDK makes of an HTTP 4xx")
    return f"{' then '.join(f'{e.rpc_method} -> 403' for e in denied)} {denied[0].body}; client raised MCPError({errs[0].code})"


async def case_sse_wrong_aud(info: dict, ctx: dict) -> str:
    rec, token = Recorder(), wrong_token(info, ctx)
    ctx["rec"] = rec

    async def attempt():
        transport = sse_client(info["sse_url"], headers={HEADER: token}, timeout=30.0, sse_read_timeout=60.0, httpx_client_factory=sse_factory(rec))
        async with Client(transport, mode="legacy", cache=None) as c:
            await c.list_tools()

    exc = await expect_failure(attempt)
    denied = assert_403(rec, exc, token)
    check(denied[0].method == "GET", f"first refused request: {denied[0].method} {denied[0].path}")
    errs = [e for e in leaves(exc) if isinstance(e, httpx2.HTTPStatusError)]
    check(errs and errs[0].response.status_code == 403, f"client raised {exc!r}, not HTTPStatusError(403)")
    return f"GET {denied[0].path} -> 403 {denied[0].body}; client raised HTTPStatusError({errs[0].response.status_code})"


TRANSPORTS = {
    "py-http-legacy": "streamable-http",
    "py-http-auto": "streamable-http",
    "py-sse": "sse",
    "py-http-legacy-wrong-aud": "streamable-http",
    "py-http-auto-wrong-aud": "streamable-http",
    "py-sse-wrong-aud": "sse",
}

CASES: dict[str, Callable[[dict, dict], Awaitable[str]]] = {
    "py-http-legacy": case_http_legacy,
    "py-http-auto": case_http_auto,
    "py-sse": case_sse,
    "py-http-legacy-wrong-aud": case_http_legacy_wrong_aud,
    "py-http-auto-wrong-aud": case_http_auto_wrong_aud,
    "py-sse-wrong-aud": case_sse_wrong_aud,
}


async def run(info: dict, only: list[str] | None, verbose: bool) -> list[dict]:
    results, ctx = [], {}
    for name, fn in CASES.items():
        if only and name not in only:
            continue
        t0 = time.monotonic()
        try:
            with anyio.fail_after(CASE_TIMEOUT):
                detail = await fn(info, ctx)
            ok = True
        except Exception as e:
            ok = False
            failed = [x for x in leaves(e) if isinstance(x, CheckFailed)]
            if failed:
                detail = str(failed[0])
            else:
                detail = f"{type(e).__name__}: {e}; leaves: {[repr(x) for x in leaves(e)][:4]}"
                traceback.print_exc(file=sys.stderr)
        dt = time.monotonic() - t0
        rec = ctx.pop("rec", None)
        protocol = ctx.pop("protocol", None)
        protocol = protocol if ok else None
        if rec is not None and (verbose or not ok):
            print(f"  wire ({name}): {rec.summary()}", file=sys.stderr, flush=True)
        results.append(
            {
                "case": name,
                "client": f"python mcp {mcp_version()}",
                "transport": TRANSPORTS[name],
                "protocol": protocol or "-",
                "ok": ok,
                "seconds": round(dt, 2),
                "detail": detail,
            }
        )
        print(f"[{'PASS' if ok else 'FAIL'}] {name} ({dt:.1f}s): {detail}", flush=True)
    return results


def mcp_version() -> str:
    from importlib.metadata import version

    return version("mcp")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--info", required=True)
    ap.add_argument("--results")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--verbose", action="store_true", help="print each case's HTTP exchanges (always on failure)")
    args = ap.parse_args()
    with open(args.info) as f:
        info = json.load(f)
    results = anyio.run(run, info, args.only, args.verbose)
    if args.results:
        with open(args.results, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
