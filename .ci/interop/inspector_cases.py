"""Drive tunnelgate with the MCP Inspector CLI (`@modelcontextprotocol/inspector` 2.x, `--cli` mode).

Each case runs the CLI once as a subprocess with `--format json` (one JSON object on
stdout, or an error envelope on stderr) and asserts on the parsed output:

  insp-http-list / insp-http-call     --transport http, tools/list and tools/call --tool-name whoami
  insp-http-api-call                  --transport http, tools/call --tool-name books_list (a demo API tool)
  insp-sse-list  / insp-sse-call      --transport sse,  the same
  insp-http-modern-call               --transport http --protocol-era modern (2026-07-28, server/discover;
                                      no fallback to initialize), tools/call
  insp-http-wrong-aud / insp-sse-wrong-aud
                                      a token minted for another audience: non-zero exit, and the
                                      error envelope carries the server's 403

The CLI reaches the server through the wiretap (wiretap.py, a recording reverse proxy), which
shows what the CLI itself does not print: the protocol revision negotiated, and that every
request carried the Access header.

`--stored-auth-only` keeps the CLI from ever starting interactive OAuth (CI has no TTY).
Standard library only; run with any Python 3.10+.

Usage: inspector_cases.py --info INFO_JSON --inspector PATH_TO_BIN --wiretap URL [--results OUT_JSON] [--only CASE ...]
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import wire

HEADER = "Cf-Access-Jwt-Assertion"
EXPECTED_EMAIL = "dev@localhost"
OTHER_AUDIENCE = "interop-some-other-application-aud"
TIMEOUT = 60


class CheckFailed(AssertionError):
    pass


def check(cond, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def find_key(obj, key):
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


def mint_token(info: dict, email: str, aud: str) -> str:
    url = info["token_url"] + "?" + urllib.parse.urlencode({"email": email, "aud": aud})
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode().strip()
    if text.startswith("{"):
        body = json.loads(text)
        text = body.get("token") or body.get("jwt") or body.get("access_token") or ""
    token = text.strip('"')
    check(token.count(".") == 2, f"token_url did not return a JWT: {text[:200]}")
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    auds = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    check(aud in auds and info["audience"] not in auds, f"minted token has aud {auds}")
    return token


class Inspector:
    def __init__(self, binary: str, env: dict | None):
        self.binary = binary
        self.env = env
        self.last_cmd = ""

    def run(self, url: str, transport: str, token: str, method: str, *extra: str) -> tuple[int, str, str]:
        cmd = [
            self.binary, "--cli", url,
            "--transport", transport,
            "--header", f"{HEADER}: {token}",
            "--method", method,
            *extra,
            "--format", "json",
            "--stored-auth-only",
            "--connect-timeout", "20000",
        ]
        self.last_cmd = " ".join(c if HEADER not in c else f"'{HEADER}: <token>'" for c in cmd[1:])
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL, env=self.env)
        return p.returncode, p.stdout, p.stderr


def parse_ok(rc: int, out: str, err: str) -> dict:
    check(rc == 0, f"exit {rc}; stderr: {err.strip()[:500]}")
    try:
        doc = json.loads(out)
    except json.JSONDecodeError:
        raise CheckFailed(f"stdout is not one JSON object: {out[:300]!r}")
    check(isinstance(doc, dict) and "result" in doc, f"no 'result' in output: {out[:300]}")
    return doc["result"]


def assert_tools(result: dict) -> str:
    tools = result.get("tools")
    check(isinstance(tools, list), f"result has no tools list: {json.dumps(result)[:300]}")
    names = [t.get("name") for t in tools]
    check(len(names) > 1, f"tools/list returned {len(names)} tool(s): {names}")
    check("whoami" in names, f"no 'whoami' in {names}")
    for t in tools:
        check(isinstance(t.get("inputSchema"), dict) and t["inputSchema"].get("type") == "object", f"tool {t.get('name')} inputSchema: {t.get('inputSchema')}")
    return f"{len(names)} tools ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"


def assert_whoami(result: dict) -> str:
    check(result.get("isError") is not True, f"whoami isError: {json.dumps(result)[:300]}")
    texts = [c.get("text") for c in result.get("content", []) if c.get("type") == "text"]
    check(texts, f"whoami returned no text content: {json.dumps(result)[:300]}")
    emails = []
    for t in texts:
        try:
            emails.extend(find_key(json.loads(t), "email"))
        except json.JSONDecodeError:
            raise CheckFailed(f"whoami text is not JSON: {t[:200]!r}")
    check(emails and all(e == EXPECTED_EMAIL for e in emails), f"whoami emails {emails}, expected only {EXPECTED_EMAIL}")
    return f"whoami email={EXPECTED_EMAIL}"


def assert_denied(rc: int, out: str, err: str, expect_body: bool) -> str:
    check(rc != 0, f"exit 0 with a wrong-audience token; stdout: {out[:300]}")
    check(not out.strip() or "result" not in out, f"a result was printed with a wrong-audience token: {out[:300]}")
    try:
        env = json.loads(err.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise CheckFailed(f"exit {rc}; stderr is not a JSON error envelope: {err[:300]!r}")
    e = env.get("error", {})
    check(e.get("status") == 403, f"exit {rc}; error envelope status is {e.get('status')!r}, not 403: {err.strip()[:300]}")
    if expect_body:
        # Streamable HTTP: the CLI quotes the server's response body in its message.
        check("wrong_audience" in e.get("message", ""), f"error message does not carry the server's wrong_audience body: {e.get('message')!r}")
    return f"exit {rc}, {e.get('code')}, status {e.get('status')}: {e.get('message')}"


def assert_books(result: dict) -> str:
    check(result.get("isError") is not True, f"books_list isError: {json.dumps(result)[:300]}")
    page = result.get("structuredContent")
    if page is None:
        texts = [c.get("text") for c in result.get("content", []) if c.get("type") == "text"]
        check(texts, f"books_list returned no content: {json.dumps(result)[:300]}")
        page = json.loads(texts[0])
    items = page.get("items") if isinstance(page, dict) else None
    check(isinstance(items, list) and len(items) == 2, f"books_list limit=2 returned {json.dumps(page)[:300]}")
    check(items[0].get("id") == "bk_1", f"books_list's first book is {items[0].get('id')}, expected bk_1")
    return f"books_list limit=2 -> {','.join(b.get('id', '?') for b in items)}"


def cases(info: dict, insp: Inspector, ctx: dict, wiretap: str):
    tok = info["token"]
    http, sse = f"{wiretap}/mcp", f"{wiretap}/sse"

    def wrong():
        if "wrong" not in ctx:
            ctx["wrong"] = mint_token(info, EXPECTED_EMAIL, OTHER_AUDIENCE)
        return ctx["wrong"]

    # name -> (transport, expected token, run)
    return {
        "insp-http-list": ("streamable-http", lambda: tok, lambda: assert_tools(parse_ok(*insp.run(http, "http", tok, "tools/list")))),
        "insp-http-call": (
            "streamable-http",
            lambda: tok,
            lambda: assert_whoami(parse_ok(*insp.run(http, "http", tok, "tools/call", "--tool-name", "whoami"))),
        ),
        "insp-http-api-call": (
            "streamable-http",
            lambda: tok,
            lambda: assert_books(
                parse_ok(*insp.run(http, "http", tok, "tools/call", "--tool-name", "books_list", "--tool-args-json", '{"limit": 2}'))
            ),
        ),
        "insp-sse-list": ("sse", lambda: tok, lambda: assert_tools(parse_ok(*insp.run(sse, "sse", tok, "tools/list")))),
        "insp-sse-call": (
            "sse",
            lambda: tok,
            lambda: assert_whoami(parse_ok(*insp.run(sse, "sse", tok, "tools/call", "--tool-name", "whoami"))),
        ),
        "insp-http-modern-call": (
            "streamable-http",
            lambda: tok,
            lambda: assert_whoami(
                parse_ok(*insp.run(http, "http", tok, "tools/call", "--tool-name", "whoami", "--protocol-era", "modern"))
            ),
        ),
        "insp-http-wrong-aud": (
            "streamable-http",
            wrong,
            lambda: assert_denied(*insp.run(http, "http", wrong(), "tools/list"), expect_body=True),
        ),
        "insp-sse-wrong-aud": ("sse", wrong, lambda: assert_denied(*insp.run(sse, "sse", wrong(), "tools/list"), expect_body=False)),
    }


def assert_wire(records: list[dict], token: str, negative: bool) -> str:
    """What the wiretap saw agrees with the case: the header on every request; for a negative
    case only 403s; returns the negotiated revision."""
    check(records, "the wiretap saw no request")
    missing = wire.without_header(records, token)
    check(not missing, f"requests without the expected {HEADER}: {missing}; wire: {wire.summary(records)}")
    if negative:
        check(all(r["status"] == 403 for r in records), f"a wrong-audience request got a non-403 answer: {wire.summary(records)}")
        return "-"
    return wire.negotiated(records)


def inspector_version(insp: Inspector) -> str:
    try:
        p = subprocess.run([insp.binary, "--cli", "--version"], capture_output=True, text=True, timeout=30, env=insp.env)
        return p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "?"
    except Exception:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--info", required=True)
    ap.add_argument("--inspector", required=True, help="path to the installed inspector bin")
    ap.add_argument("--wiretap", required=True, help="base URL of wiretap.py in front of the server")
    ap.add_argument("--results")
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    with open(args.info) as f:
        info = json.load(f)
    insp = Inspector(args.inspector, None)
    client = f"inspector {inspector_version(insp)}"
    results, ctx = [], {}
    for name, (transport, expected_token, fn) in cases(info, insp, ctx, args.wiretap).items():
        if args.only and name not in args.only:
            continue
        t0 = time.monotonic()
        protocol = "-"
        wire.take(args.wiretap)  # start from a clean record
        try:
            detail, ok = fn(), True
            protocol = assert_wire(wire.take(args.wiretap), expected_token(), negative=name.endswith("wrong-aud"))
        except CheckFailed as e:
            detail, ok = f"{e} [cmd: {insp.last_cmd}]", False
        except Exception as e:
            detail, ok = f"{type(e).__name__}: {e} [cmd: {insp.last_cmd}]", False
        dt = time.monotonic() - t0
        results.append(
            {"case": name, "client": client, "transport": transport, "protocol": protocol, "ok": ok, "seconds": round(dt, 2), "detail": detail}
        )
        print(f"[{'PASS' if ok else 'FAIL'}] {name} ({dt:.1f}s): {detail}", flush=True)
    if args.results:
        with open(args.results, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
