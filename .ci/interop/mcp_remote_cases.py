"""Drive tunnelgate through mcp-remote (npm `mcp-remote`), the stdio bridge Claude Desktop runs.

Claude Desktop starts `npx -y mcp-remote@<version> <url> <flags>` as a stdio MCP server and
speaks MCP over its stdin/stdout. Here the Python SDK's stdio client plays Claude Desktop: it
starts the pinned, installed mcp-remote (what that npx line downloads) with the same arguments
and environment shape, then lists tools and calls whoami and books_list through it. mcp-remote
reaches the server through the wiretap (wiretap.py), which shows the revision negotiated, the
transport mcp-remote chose, and that every request carried the Access header.

Cases:
  remote-flags               the installed mcp-remote is the version docs/clients.md pins, and every
                             flag the docs' configurations use (and the --transport value) is in its
                             source: mcp-remote ignores unknown flags silently, so a missing one would
                             otherwise show only as a request without its header
  remote-http-header         <url>/mcp --header "Cf-Access-Jwt-Assertion:${TG_TOKEN}", TG_TOKEN in the
                             environment (mcp-remote expands ${VAR} itself, as Claude Desktop's "env" block needs)
  remote-http-header-file    <url>/mcp --header-file FILE ("Name: value" lines, mode 0600)
  remote-sse-only            <url>/sse --transport sse-only --header-file FILE
  remote-*-wrong-aud         the same three with a token for another audience: mcp-remote must exit
                             without serving, after the server's 403, and say so on stderr

On loopback there is no Cloudflare to turn a service token or `cf-access-token` into the JWT, so
the header files hold `Cf-Access-Jwt-Assertion` where the docs' hold the service-token headers.

Usage: mcp_remote_cases.py --info INFO_JSON --mcp-remote BIN --wiretap URL --docs docs/clients.md
                           --home DIR [--results OUT_JSON] [--only CASE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import urllib.request
from pathlib import Path

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

import wire

HEADER = "Cf-Access-Jwt-Assertion"
EXPECTED_EMAIL = "dev@localhost"
OTHER_AUDIENCE = "interop-some-other-application-aud"
CASE_TIMEOUT = 60.0


class CheckFailed(AssertionError):
    pass


def check(cond, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def mint_token(info: dict, aud: str) -> str:
    url = info["token_url"] + "?" + urllib.parse.urlencode({"email": EXPECTED_EMAIL, "aud": aud})
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode().strip()
    if text.startswith("{"):
        text = json.loads(text).get("token", "")
    check(text.count(".") == 2, f"token_url did not return a JWT: {text[:200]}")
    return text.strip('"')


# --------------------------------------------------------------------------- the docs' configurations


def documented_configs(docs: Path) -> list[list[str]]:
    """The `args` of every mcp-remote server in docs/clients.md's JSON blocks."""
    configs = []
    for block in re.findall(r"```json\n(.*?)```", docs.read_text(), flags=re.S):
        try:
            parsed = json.loads(block)
        except json.JSONDecodeError:
            continue
        for server in (parsed.get("mcpServers") or {}).values():
            args = server.get("args") or []
            if any(str(a).startswith("mcp-remote@") for a in args):
                configs.append([str(a) for a in args])
    return configs


def case_flags(ctx: dict) -> str:
    configs = documented_configs(ctx["docs"])
    check(configs, f"no mcp-remote configuration found in {ctx['docs']}")
    pinned = {a.split("@", 1)[1] for args in configs for a in args if a.startswith("mcp-remote@")}
    installed = subprocess.run([ctx["bin"], "--version"], capture_output=True, text=True, timeout=30, env=ctx["env"]).stdout.strip()
    check(pinned == {installed}, f"docs pin mcp-remote {sorted(pinned)}, the suite installed {installed!r}")
    flags = sorted({a for args in configs for a in args if a.startswith("--")})
    values = sorted({args[i + 1] for args in configs for i, a in enumerate(args[:-1]) if a == "--transport"})
    dist = Path(os.path.realpath(ctx["bin"])).parent
    source = "\n".join(p.read_text(errors="replace") for p in dist.glob("*.js"))
    absent = [f for f in flags + values if f'"{f}"' not in source]
    check(not absent, f"mcp-remote {installed} has no {absent} (looked for the quoted string in {dist}/*.js)")
    check("--header" in flags or "--header-file" in flags, f"the docs' configurations use no header flag: {flags}")
    return f"docs pin {installed} = installed; {len(configs)} configurations use {', '.join(flags + values)}: all in its source"


# --------------------------------------------------------------------------- running mcp-remote


def split_discovery(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """mcp-remote probes OAuth metadata (RFC 8414/9728 `.well-known` URLs, also below the
    server URL) before connecting, without the custom headers: by design, those documents are
    public. Behind Access with Managed OAuth, Access answers them. The checks hold the MCP
    requests (to /mcp, /sse, /message) to the header rule; the probes are only counted."""
    probes = [r for r in records if "/.well-known/" in r["path"]]
    return [r for r in records if "/.well-known/" not in r["path"]], probes


def header_file(ctx: dict, token: str) -> str:
    fd, path = tempfile.mkstemp(prefix="access-headers-", dir=ctx["tmp"])
    with os.fdopen(fd, "w") as f:
        f.write(f"# written by mcp_remote_cases.py\n{HEADER}: {token}\n")
    os.chmod(path, 0o600)
    return path


async def drive(ctx: dict, args: list[str], env: dict, stderr_path: str):
    """Start mcp-remote as Claude Desktop does and use it; returns (protocol, detail)."""
    params = StdioServerParameters(command=ctx["bin"], args=args, env={**ctx["env"], **env})
    with open(stderr_path, "w") as errlog:
        # stdio_client directly rather than Client(params): only it lets mcp-remote's stderr
        # (where it reports what went wrong) go to a file the checks can read.
        async with Client(stdio_client(params, errlog=errlog), mode="legacy", cache=None) as c:
            protocol = c.protocol_version
            check(c.server_info is not None, "no serverInfo through mcp-remote")
            tools = (await c.list_tools()).tools
            names = [t.name for t in tools]
            check("whoami" in names and "books_list" in names, f"tools/list through mcp-remote: {names}")
            who = await c.call_tool("whoami", {})
            check(not who.is_error, f"whoami isError: {who.content}")
            text = next((x.text for x in who.content if getattr(x, "type", None) == "text"), "")
            check(json.loads(text).get("email") == EXPECTED_EMAIL, f"whoami through mcp-remote: {text[:200]}")
            books = await c.call_tool("books_list", {"limit": 2})
            check(not books.is_error, f"books_list isError: {books.content}")
            page = books.structured_content or json.loads(next(x.text for x in books.content if getattr(x, "type", None) == "text"))
            ids = [b.get("id") for b in page.get("items", [])]
            check(ids[:1] == ["bk_1"] and len(ids) == 2, f"books_list limit=2 through mcp-remote: {ids}")
    return protocol, f"{len(names)} tools; whoami email={EXPECTED_EMAIL}; books_list -> {','.join(ids)}"


async def positive(ctx: dict, name: str, args: list[str], env: dict, token: str, path: str) -> tuple[str, str]:
    wire.take(ctx["wiretap"])
    stderr_path = os.path.join(ctx["tmp"], f"{name}.stderr")
    try:
        protocol, detail = await drive(ctx, args, env, stderr_path)
    except BaseException:
        print(f"  mcp-remote stderr ({name}):\n" + open(stderr_path).read()[-3000:], file=sys.stderr)
        raise
    everything = wire.take(ctx["wiretap"])
    records, discovery = split_discovery(everything)
    check(records, "the wiretap saw no MCP request from mcp-remote")
    missing = wire.without_header(records, token)
    check(not missing, f"mcp-remote sent MCP requests without the {HEADER} it was given: {missing}")
    paths = {r["path"] for r in records}
    if path == "/sse":
        legacy = all(p == "/sse" or p.startswith("/message") for p in paths)
        check(legacy and "/sse" in paths, f"sse-only touched {paths}: {wire.summary(records)}")
    else:
        check(paths == {"/mcp"}, f"http transport touched {paths}: {wire.summary(records)}")
    # Over legacy SSE the initialize result arrives on the GET stream, not on the POST.
    answered = [v for r in records for v in r["result_protocol_versions"]]
    check(protocol in answered, f"the stdio client got {protocol}, the server answered {answered}")
    bad = [r for r in records if r["status"] and r["status"] >= 400 and r["status"] != 405]
    check(not bad, f"HTTP errors in a positive case: {wire.summary(bad)}")
    return protocol, (
        f"{detail}; wire: {len(records)} MCP requests to {','.join(sorted(paths))}, all with the header"
        f" (+{len(discovery)} OAuth metadata probes without it)"
    )


async def negative(ctx: dict, name: str, args: list[str], env: dict, token: str) -> tuple[str, str]:
    wire.take(ctx["wiretap"])
    stderr_path = os.path.join(ctx["tmp"], f"{name}.stderr")
    error = None
    try:
        await drive(ctx, args, env, stderr_path)
    except Exception as e:  # includes ExceptionGroup
        error = e
    log = open(stderr_path).read()
    records, discovery = split_discovery(wire.take(ctx["wiretap"]))
    check(error is not None, f"mcp-remote served a session with a wrong-audience token: {wire.summary(records)}")
    check(records, f"mcp-remote made no request; it failed with {error!r}; stderr: {log[-500:]}")
    check(not wire.without_header(records, token), f"requests without the wrong-audience token: {wire.summary(records)}")
    check(all(r["status"] == 403 for r in records), f"non-403 answers: {wire.summary(records)}")
    body = json.loads(records[0]["body"] or "{}")
    check(body.get("reason") == "wrong_audience", f"403 body: {records[0]['body']}")
    # mcp-remote gives up with "Fatal error: <the error>"; over Streamable HTTP the error quotes
    # the server's body, over SSE it names the status.
    fatal = [line for line in log.splitlines() if "Fatal error" in line]
    check(fatal, f"mcp-remote did not report a fatal error: {log[-800:]}")
    check("403" in fatal[0] or "wrong_audience" in fatal[0], f"mcp-remote's error names neither the 403 nor the reason: {fatal[0]}")
    message = fatal[0].split("Fatal error:", 1)[1].strip()
    return "-", f"{wire.summary(records)} {records[0]['body']}; mcp-remote exits: {message[:140]}"


# --------------------------------------------------------------------------- cases


def cases(info: dict, ctx: dict):
    http, sse = f"{ctx['wiretap']}/mcp", f"{ctx['wiretap']}/sse"
    ok_token = info["token"]

    def wrong():
        ctx.setdefault("wrong", mint_token(info, OTHER_AUDIENCE))
        return ctx["wrong"]

    def with_header(url, token, extra=()):
        # The literal ${TG_TOKEN} goes on the command line; mcp-remote expands it from its environment.
        return [url, "--header", f"{HEADER}:${{TG_TOKEN}}", *extra], {"TG_TOKEN": token}

    def with_file(url, token, extra=()):
        return [url, *extra, "--header-file", header_file(ctx, token)], {}

    def run(kind, make, url, token_fn, extra=()):
        async def go(name):
            token = token_fn()
            args, env = make(url, token, extra)
            if kind == "positive":
                return await positive(ctx, name, args, env, token, "/sse" if url.endswith("/sse") else "/mcp")
            return await negative(ctx, name, args, env, token)

        return go

    async def flags(_name):
        return "-", case_flags(ctx)

    sse_only = ("--transport", "sse-only")
    return {
        "remote-flags": ("-", flags),
        "remote-http-header": ("streamable-http", run("positive", with_header, http, lambda: ok_token)),
        "remote-http-header-file": ("streamable-http", run("positive", with_file, http, lambda: ok_token)),
        "remote-sse-only": ("sse", run("positive", with_file, sse, lambda: ok_token, sse_only)),
        "remote-http-header-wrong-aud": ("streamable-http", run("negative", with_header, http, wrong)),
        "remote-http-header-file-wrong-aud": ("streamable-http", run("negative", with_file, http, wrong)),
        "remote-sse-only-wrong-aud": ("sse", run("negative", with_file, sse, wrong, sse_only)),
    }


async def main_async(args) -> list[dict]:
    with open(args.info) as f:
        info = json.load(f)
    tmp_dir = tempfile.TemporaryDirectory(prefix="mcp-remote-cases-")
    tmp = tmp_dir.name
    env = {
        "PATH": os.environ.get("PATH", ""),
        # mcp-remote keeps OAuth state under ~/.mcp-auth; keep it out of the real home.
        "HOME": args.home,
        "MCP_REMOTE_CONFIG_DIR": os.path.join(args.home, ".mcp-auth"),
    }
    ctx = {"bin": args.mcp_remote, "wiretap": args.wiretap, "docs": Path(args.docs), "tmp": tmp, "env": env}
    version = subprocess.run([args.mcp_remote, "--version"], capture_output=True, text=True, timeout=30, env=env).stdout.strip()
    results = []
    for name, (transport, fn) in cases(info, ctx).items():
        if args.only and name not in args.only:
            continue
        t0 = time.monotonic()
        protocol = "-"
        try:
            with anyio.fail_after(CASE_TIMEOUT):
                protocol, detail = await fn(name)
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
        results.append(
            {
                "case": name,
                "client": f"mcp-remote {version} (stdio, via python mcp)",
                "transport": transport,
                "protocol": protocol,
                "ok": ok,
                "seconds": round(dt, 2),
                "detail": detail,
            }
        )
        print(f"[{'PASS' if ok else 'FAIL'}] {name} ({dt:.1f}s): {detail}", flush=True)
    tmp_dir.cleanup()
    return results


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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--info", required=True)
    ap.add_argument("--mcp-remote", required=True, help="path to the installed mcp-remote bin")
    ap.add_argument("--wiretap", required=True)
    ap.add_argument("--docs", required=True, help="docs/clients.md, whose mcp-remote configurations are checked")
    ap.add_argument("--home", required=True, help="HOME for mcp-remote (its ~/.mcp-auth goes there)")
    ap.add_argument("--results")
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    results = anyio.run(main_async, args)
    if args.results:
        with open(args.results, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
