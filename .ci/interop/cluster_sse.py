"""Many legacy SSE sessions with the official Python MCP SDK against one URL (a round-robin
proxy in front of several tunnelgate replicas, in tests/api/cluster.rs).

Each session: GET /sse, initialize, tools/list, tools/call whoami; every message POST goes out
on a new connection (no keep-alive), so a proxy that balances connections spreads one
session's POSTs over the replicas and most of them must be relayed to the replica holding
the stream.

Usage: cluster_sse.py --url http://127.0.0.1:PORT --token JWT [--sessions 50] [--parallel 10]
Prints one JSON line: {"sessions", "succeeded", "failures", "posts", "post_statuses"}.
Exit status: 0 if every session succeeded and every POST was answered 202, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import anyio
import httpx2
from mcp import Client
from mcp.client.sse import sse_client

HEADER = "Cf-Access-Jwt-Assertion"


async def one_session(url: str, token: str, statuses: Counter) -> None:
    async def on_response(response: httpx2.Response) -> None:
        if response.request.method == "POST":
            statuses[response.status_code] += 1

    def factory(headers=None, timeout=None, auth=None) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            headers=headers,
            timeout=timeout or httpx2.Timeout(30.0, read=60.0),
            auth=auth,
            limits=httpx2.Limits(max_keepalive_connections=0),
            event_hooks={"response": [on_response]},
        )

    transport = sse_client(
        f"{url}/sse", headers={HEADER: token}, timeout=30.0, sse_read_timeout=60.0, httpx_client_factory=factory
    )
    async with Client(transport, mode="legacy", cache=None) as client:
        if client.session.initialize_result is None:
            raise AssertionError("no InitializeResult")
        listed = await client.list_tools()
        names = [tool.name for tool in listed.tools]
        if "whoami" not in names:
            raise AssertionError(f"tools/list has no whoami: {names}")
        result = await client.call_tool("whoami", {})
        if result.is_error:
            raise AssertionError(f"whoami returned isError: {result.content}")


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=10)
    args = parser.parse_args()

    statuses: Counter = Counter()
    failures: list[str] = []
    succeeded = 0
    limiter = anyio.CapacityLimiter(args.parallel)

    async def run(index: int) -> None:
        nonlocal succeeded
        async with limiter:
            try:
                with anyio.fail_after(60):
                    await one_session(args.url, args.token, statuses)
                succeeded += 1
            except BaseException as error:  # noqa: BLE001 - every failure is reported
                failures.append(f"session {index}: {type(error).__name__}: {error}"[:300])

    async with anyio.create_task_group() as group:
        for index in range(args.sessions):
            group.start_soon(run, index)

    report = {
        "sessions": args.sessions,
        "succeeded": succeeded,
        "failures": failures[:10],
        "posts": sum(statuses.values()),
        "post_statuses": {str(code): count for code, count in sorted(statuses.items())},
    }
    print(json.dumps(report))
    ok = succeeded == args.sessions and set(statuses) <= {202}
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main))
