"""Run README.md's recipes for `tunnelgate dev` exactly as a reader pastes them.

Each shell block in README.md that follows a `<!-- interop: NAME -->` marker is run with bash
(`set -euo pipefail`) in a fresh directory, with `TG_TOKEN` exported as the dev banner says and
only `http://127.0.0.1:8080` replaced by the running server's address (the suite binds port 0).
Its output is then checked:

  readme-inspector     the pinned Inspector CLI lists whoami and the demo tools (npx runs the
                       installed, pinned package: the block runs beside .cache/interop/npm)
  readme-curl-whoami   whoami answers with dev@localhost
  readme-curl-write    books_create, with the book under `body`, answers with the new book
  readme-curl-sse      the legacy SSE recipe: the stream carries the initialize result
                       (2024-11-05) and whoami's answer

Usage: readme_cases.py --info INFO_JSON --readme README.md --npm-dir DIR [--results OUT_JSON]
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

TIMEOUT = 90
DOCUMENTED_BASE = "http://127.0.0.1:8080"


class CheckFailed(AssertionError):
    pass


def check(cond, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def blocks(readme: str) -> dict[str, str]:
    found = {}
    for name, body in re.findall(r"<!-- interop: ([a-z0-9-]+) -->\s*```sh\n(.*?)```", readme, flags=re.S):
        found[name] = body
    return found


def run_block(script: str, base: str, token: str, cwd: str, path: str) -> tuple[int, str, str]:
    script = script.replace(DOCUMENTED_BASE, base)
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "TG_TOKEN": token}
    p = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    return p.returncode, p.stdout, p.stderr


def jsonrpc_messages(text: str) -> list[dict]:
    """JSON-RPC messages in curl output: plain JSON lines or SSE `data:` lines."""
    messages = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("data:"):
            line = line[5:].strip()
        if not line.startswith("{"):
            continue
        try:
            messages.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return messages


def tool_json(message: dict) -> dict:
    result = message.get("result") or {}
    check(result.get("isError") is not True, f"the tool call failed: {json.dumps(message)[:300]}")
    text = next((c.get("text") for c in result.get("content", []) if c.get("type") == "text"), None)
    check(text, f"no text content: {json.dumps(message)[:300]}")
    return json.loads(text)


def check_inspector(rc: int, out: str, err: str) -> str:
    check(rc == 0, f"exit {rc}: {err.strip()[-400:]}")
    names = set(re.findall(r'"name":\s*"([a-z_]+)"', out))
    check({"whoami", "books_list", "books_create"} <= names, f"tools listed: {sorted(names)}")
    return f"{len(names)} names in the tool list, whoami and the books_* tools among them"


def check_whoami(rc: int, out: str, err: str) -> str:
    check(rc == 0, f"exit {rc}: {err.strip()[-400:]}")
    messages = [m for m in jsonrpc_messages(out) if m.get("id") == 1]
    check(messages, f"no JSON-RPC answer: {out[:300]}")
    identity = tool_json(messages[0])
    check(identity.get("email") == "dev@localhost", f"whoami: {identity}")
    return f"whoami email={identity['email']}"


def check_write(rc: int, out: str, err: str) -> str:
    check(rc == 0, f"exit {rc}: {err.strip()[-400:]}")
    messages = [m for m in jsonrpc_messages(out) if m.get("id") == 2]
    check(messages, f"no JSON-RPC answer: {out[:300]}")
    book = tool_json(messages[0])
    check(book.get("title") == "Refactoring" and str(book.get("id", "")).startswith("bk_"), f"books_create: {book}")
    return f"books_create -> {book['id']} {book['title']!r}"


def check_sse(rc: int, out: str, err: str) -> str:
    check(rc == 0, f"exit {rc}: {err.strip()[-400:]}")
    messages = {m.get("id"): m for m in jsonrpc_messages(out)}
    init = messages.get(1, {}).get("result", {})
    check(init.get("protocolVersion") == "2024-11-05", f"initialize on the stream: {messages.get(1)}; output: {out[:400]}")
    identity = tool_json(messages.get(2, {}))
    check(identity.get("email") == "dev@localhost", f"whoami on the stream: {identity}")
    return f"stream: initialize {init['protocolVersion']}, whoami email={identity['email']}"


CASES = {
    "readme-inspector": ("streamable-http", check_inspector),
    "readme-curl-whoami": ("streamable-http", check_whoami),
    "readme-curl-write": ("streamable-http", check_write),
    "readme-curl-sse": ("sse", check_sse),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--info", required=True)
    ap.add_argument("--readme", required=True)
    ap.add_argument("--npm-dir", required=True, help="the installed npm tools (npx finds the pinned Inspector there)")
    ap.add_argument("--results")
    args = ap.parse_args()
    with open(args.info) as f:
        info = json.load(f)
    base = info["mcp_url"][: -len("/mcp")]
    found = blocks(open(args.readme).read())
    path = f"{os.path.join(args.npm_dir, 'node_modules', '.bin')}:{os.environ.get('PATH', '')}"
    results = []
    for name, (transport, verify) in CASES.items():
        t0 = time.monotonic()
        protocol = "2024-11-05" if transport == "sse" else "2025-06-18"
        try:
            check(name in found, f"README.md has no block marked <!-- interop: {name} -->")
            with tempfile.TemporaryDirectory(prefix=f"{name}-") as scratch:
                cwd = args.npm_dir if name == "readme-inspector" else scratch
                detail, ok = verify(*run_block(found[name], base, info["token"], cwd, path)), True
        except CheckFailed as e:
            detail, ok = str(e), False
        except Exception as e:
            detail, ok = f"{type(e).__name__}: {e}", False
        dt = time.monotonic() - t0
        results.append(
            {
                "case": name,
                "client": "README recipes (bash, curl, npx)",
                "transport": transport,
                # curl sends the revision the recipe names; the Inspector CLI its own default.
                "protocol": protocol if ok and name != "readme-inspector" else "-",
                "ok": ok,
                "seconds": round(dt, 2),
                "detail": detail,
            }
        )
        print(f"[{'PASS' if ok else 'FAIL'}] {name} ({dt:.1f}s): {detail}", flush=True)
    if args.results:
        with open(args.results, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
