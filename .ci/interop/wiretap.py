"""A recording reverse proxy between an interop client and the server under test.

Clients that run as their own process (the Inspector CLI, mcp-remote) do not say which
protocol revision they negotiated or which headers they sent. Pointed at this proxy instead
of the server, they talk to the server exactly as before: every request is forwarded with its
method, path, query, headers (Host included) and body, and every response streams back chunk by
chunk (event streams too). Two things differ on the wire: hop-by-hop headers are dropped, and
the upstream request asks for `Accept-Encoding: identity`, so the recorder can read the bodies.

For each exchange it records: HTTP method and path, the JSON-RPC method(s) of the body, whether
`Cf-Access-Jwt-Assertion` was sent (and a SHA-256 prefix of it), `MCP-Protocol-Version`, the
status, for errors the body, and any `protocolVersion` found in a JSON-RPC result of the
response (the initialize result, on a JSON answer or an event stream).

  GET /__wiretap/take   returns the exchanges recorded so far as JSON and forgets them

Usage: wiretap.py --target http://127.0.0.1:PORT --info-file FILE   (writes {"url": ...})
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import time

import httpx2
import uvicorn

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "accept-encoding",
    "content-length",
}
ACCESS_HEADER = "cf-access-jwt-assertion"

RECORDS: list[dict] = []


def token_digest(token: str | None) -> str | None:
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else None


def rpc_methods(body: bytes) -> list[str]:
    try:
        parsed = json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return []
    messages = parsed if isinstance(parsed, list) else [parsed]
    return [m["method"] for m in messages if isinstance(m, dict) and isinstance(m.get("method"), str)]


class ResponseReader:
    """Finds JSON-RPC results in a JSON body or an event stream, as the bytes pass."""

    def __init__(self, record: dict, event_stream: bool):
        self.record = record
        self.event_stream = event_stream
        self.buffer = b""

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        if not self.event_stream:
            return
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            line = line.rstrip(b"\r")
            if line.startswith(b"data:"):
                self.message(line[5:].strip())

    def finish(self) -> None:
        if not self.event_stream:
            self.message(self.buffer)
            if self.record["status"] >= 400:
                self.record["body"] = self.buffer[:2000].decode(errors="replace")

    def message(self, data: bytes) -> None:
        try:
            parsed = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        for message in parsed if isinstance(parsed, list) else [parsed]:
            result = message.get("result") if isinstance(message, dict) else None
            if isinstance(result, dict) and isinstance(result.get("protocolVersion"), str):
                self.record["result_protocol_versions"].append(result["protocolVersion"])


def make_app(target: str):
    client = httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=None), follow_redirects=False)

    async def send_json(send, status: int, body) -> None:
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/__wiretap/take":
            taken = list(RECORDS)
            RECORDS.clear()
            return await send_json(send, 200, taken)

        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.decode().lower() not in HOP_BY_HOP]
        headers.append(("accept-encoding", "identity"))
        lower = {k.lower(): v for k, v in headers}
        query = scope.get("query_string", b"").decode()
        url = target + scope["path"] + (f"?{query}" if query else "")
        record = {
            "t": round(time.time(), 3),
            "method": scope["method"],
            "path": scope["path"],
            "rpc_methods": rpc_methods(body),
            "access_header": token_digest(lower.get(ACCESS_HEADER)),
            "protocol_header": lower.get("mcp-protocol-version"),
            "status": None,
            "body": None,
            "result_protocol_versions": [],
        }
        RECORDS.append(record)
        try:
            upstream = await client.send(client.build_request(scope["method"], url, headers=headers, content=body), stream=True)
        except httpx2.HTTPError as error:
            record["status"] = 502
            record["body"] = f"wiretap: {error!r}"
            return await send_json(send, 502, {"error": "wiretap_upstream_failed", "detail": repr(error)})
        record["status"] = upstream.status_code
        content_type = upstream.headers.get("content-type", "")
        reader = ResponseReader(record, content_type.startswith("text/event-stream"))
        response_headers = [
            (k.encode(), v.encode()) for k, v in upstream.headers.multi_items() if k.lower() not in HOP_BY_HOP
        ]
        await send({"type": "http.response.start", "status": upstream.status_code, "headers": response_headers})
        try:
            async for chunk in upstream.aiter_raw():
                reader.feed(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            reader.finish()
            await upstream.aclose()

    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True, help="the server's base URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--bind", default="127.0.0.1:0")
    ap.add_argument("--info-file", required=True)
    args = ap.parse_args()
    host, port = args.bind.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    base = f"http://{host}:{sock.getsockname()[1]}"

    server = uvicorn.Server(uvicorn.Config(make_app(args.target.rstrip("/")), log_level="warning", lifespan="on"))
    original_startup = server.startup

    async def startup(sockets=None):
        await original_startup(sockets=sockets)
        tmp = args.info_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"url": base}, f)
        os.replace(tmp, args.info_file)

    server.startup = startup
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
