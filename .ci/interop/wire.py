"""What the wiretap (wiretap.py) saw for one case: the exchanges, the negotiated protocol
revision, and whether every request carried the expected Access token. Standard library only."""

from __future__ import annotations

import hashlib
import json
import urllib.request


def take(wiretap_url: str) -> list[dict]:
    """The exchanges recorded since the last take (the wiretap forgets them)."""
    with urllib.request.urlopen(f"{wiretap_url}/__wiretap/take", timeout=10) as response:
        return json.load(response)


def digest(token: str) -> str:
    """The form in which the wiretap records a token (wiretap.token_digest)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def negotiated(records: list[dict]) -> str:
    """The revision the server answered in an initialize result (on the POST's answer, or for
    legacy SSE on the GET stream); for the modern era (no initialize), the
    MCP-Protocol-Version the client sent on tools/* requests."""
    for record in records:
        if record["result_protocol_versions"]:
            return record["result_protocol_versions"][-1]
    headers = [
        r["protocol_header"]
        for r in records
        if r["protocol_header"] and {"tools/list", "tools/call"} & set(r["rpc_methods"])
    ]
    return headers[-1] if headers else "-"


def without_header(records: list[dict], token: str) -> list[str]:
    """The requests that did not carry `token` in Cf-Access-Jwt-Assertion."""
    want = digest(token)
    return [f"{r['method']} {r['path']}" for r in records if r["access_header"] != want]


def summary(records: list[dict]) -> str:
    return "; ".join(
        f"{r['method']} {r['path']}{'[' + ','.join(r['rpc_methods']) + ']' if r['rpc_methods'] else ''} -> {r['status']}"
        for r in records
    )
