"""Stand-in for `tunnelgate dev`, used only to prove the interop clients themselves.

It is built from the PyPI `mcp` SDK server (MCPServer, the 2.x name of FastMCP) and
mimics the parts of the `tunnelgate dev` interface that the interop clients rely on:

* one loopback listener with Streamable HTTP at /mcp (stateless) and legacy
  HTTP+SSE at /sse (+ its message endpoint);
* every MCP request must carry `Cf-Access-Jwt-Assertion`; a token for another
  audience is refused with 403 and `{"error":"access_denied","reason":"wrong_audience"}`,
  a missing or unverifiable one with 403 too (reason missing/malformed), as tunnelgate does;
* `GET /dev/token?email=..&aud=..` mints tokens as text/plain (HS256 here; the real server uses RS256);
* tools: `whoami` (returns the verified identity as JSON), `demo_echo`, and `books_list` (as dev's demo API);
* `--info-file` is written, in the same shape as tunnelgate's, once the port is bound.

Run: python standin_server.py --bind 127.0.0.1:0 --info-file /tmp/info.json
This is NOT the system under test; `run.sh --standin` uses it for a self-check.

STANDIN_FAULT=<name> makes it misbehave on purpose, to prove that the client checks
catch it (each fault must turn at least one case red):
  accept-wrong-aud  serve tokens of any audience     wrong-aud-401  refuse them with 401
  wrong-email       whoami reports another identity  one-tool       list only whoami
  no-discover       answer server/discover with a JSON-RPC error (auto mode falls back)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from urllib.parse import parse_qs

import jwt  # PyJWT, a dependency of the mcp SDK
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

AUDIENCE = "standin-audience-0123456789abcdef"
SECRET = os.urandom(32)
HEADER = "cf-access-jwt-assertion"
FAULT = os.environ.get("STANDIN_FAULT", "")

mcp = MCPServer("tunnelgate-standin")


def mint(email: str, aud: str) -> str:
    now = int(time.time())
    return jwt.encode(
        {"email": email, "sub": email, "aud": [aud], "iss": "standin", "iat": now, "exp": now + 3600},
        SECRET,
        algorithm="HS256",
    )


def verify(token: str) -> tuple[int, dict]:
    """Return (status, claims-or-error-body)."""
    if not token:
        return 403, {"error": "access_denied", "reason": "missing"}
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.PyJWTError:
        return 403, {"error": "access_denied", "reason": "malformed"}
    auds = claims.get("aud")
    auds = auds if isinstance(auds, list) else [auds]
    if AUDIENCE not in auds and FAULT != "accept-wrong-aud":
        if FAULT == "wrong-aud-401":
            return 401, {"error": "access_denied", "reason": "wrong_audience"}
        return 403, {"error": "access_denied", "reason": "wrong_audience"}
    return 200, claims


@mcp.tool(description="Return the identity Cloudflare Access verified for this request.")
def whoami(ctx: Context) -> str:
    token = (ctx.headers or {}).get(HEADER, "")
    status, claims = verify(token)
    if status != 200:  # the middleware already refused such requests
        raise ValueError("unverified")
    email = "someone@else" if FAULT == "wrong-email" else claims["email"]
    return json.dumps({"email": email, "sub": claims["sub"], "aud": claims["aud"]})


if FAULT != "one-tool":

    @mcp.tool(description="Demo API stand-in: echo a message.")
    def demo_echo(message: str) -> str:
        return message

    @mcp.tool(description="Demo API stand-in: the first books of tunnelgate dev's demo shelf.")
    def books_list(limit: int = 10) -> dict:
        shelf = [{"id": f"bk_{n}", "title": f"Book {n}"} for n in range(1, 8)]
        return {"items": shelf[:limit], "pagination": {"total_count": len(shelf), "max_page": 1}}


http_app = mcp.streamable_http_app(stateless_http=True)
sse_app = mcp.sse_app(message_path="/message/")


async def send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await http_app(scope, receive, send)
    path = scope["path"]
    if path == "/dev/token":
        q = parse_qs(scope.get("query_string", b"").decode())
        token = mint(q.get("email", ["dev@localhost"])[0], q.get("aud", [AUDIENCE])[0]).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        return await send({"type": "http.response.body", "body": token})
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    if path == "/mcp" or path.startswith("/sse") or path.startswith("/message"):
        status, body = verify(headers.get(HEADER, ""))
        if status != 200:
            return await send_json(send, status, body)
        if path == "/mcp":
            if FAULT == "no-discover" and scope["method"] == "POST":
                body = b""
                while True:
                    msg = await receive()
                    body += msg.get("body", b"")
                    if not msg.get("more_body"):
                        break
                req = json.loads(body or b"{}")
                if req.get("method") == "server/discover":
                    err = {"jsonrpc": "2.0", "id": req.get("id"), "error": {"code": -32601, "message": "Method not found"}}
                    return await send_json(send, 404, err)
                sent = False

                async def replay():
                    nonlocal sent
                    if not sent:
                        sent = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                return await http_app(scope, replay, send)
            return await http_app(scope, receive, send)
        return await sse_app(scope, receive, send)
    return await send_json(send, 404, {"error": "not_found"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1:0")
    ap.add_argument("--info-file", required=True)
    args = ap.parse_args()
    host, port = args.bind.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    port = sock.getsockname()[1]
    base = f"http://{host}:{port}"

    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)

    orig_startup = server.startup

    async def startup(sockets=None):
        await orig_startup(sockets=sockets)
        tmp = args.info_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(
                {
                    "mcp_url": f"{base}/mcp",
                    "sse_url": f"{base}/sse",
                    "admin_url": base,
                    "issuer_url": base,
                    "audience": AUDIENCE,
                    "token": mint("dev@localhost", AUDIENCE),
                    "token_url": f"{base}/dev/token",
                },
                f,
            )
        os.replace(tmp, args.info_file)

    server.startup = startup
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
