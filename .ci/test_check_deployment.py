#!/usr/bin/env python3
"""Proves that .ci/check_deployment.py can fail: each case copies the bundle into a
temporary directory, breaks one thing, runs the checker and expects exit 1 with the named
check(s) among the failures. Two untouched copies (CI mode and an operator preflight)
must pass, so every failure below is caused by its mutation.

    .cache/deploy-venv/bin/python .ci/test_check_deployment.py     (run by check_deployment.sh)
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_deployment  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BUNDLE = [
    "docker-compose.yml",
    ".env.example",
    "cloudflared/config.yml",
    "Dockerfile",
    ".dockerignore",
    ".gitignore",
    ".ci/schemas/compose-spec.json",
]
REAL_TEAM = "acme"
REAL_HOST = "mcp.acme.dev"
REAL_AUD = "fedcba9876543210" * 4
REAL_TUNNEL = "6ff42ae2-765d-4adf-8112-31c55c1551ef"


@dataclass
class Case:
    name: str
    edits: list[tuple[str, str, str]]  # (file, old text, new text); old must occur
    expect: list[str]  # substrings of failing check names
    operator: bool = False  # run as a preflight with --env-file .env
    setup: Callable[[Path], None] | None = None
    exit_code: int = 1
    extra: dict = field(default_factory=dict)


def replace(root: Path, file: str, old: str, new: str) -> None:
    path = root / file
    text = path.read_text(encoding="utf-8")
    if old not in text:
        raise AssertionError(f"mutation target not found in {file}: {old!r}")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def make_copy(base: Path) -> Path:
    root = Path(tempfile.mkdtemp(dir=base))
    for relative in BUNDLE:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def write_secret(path: Path, content: bytes = b"s3cret-value", mode: int = 0o400) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    try:
        os.chown(path, check_deployment.RUNTIME_UID, check_deployment.RUNTIME_UID)
    except PermissionError:  # not root: world-readable is the other accepted form
        mode = 0o444
    path.chmod(mode)


def make_operator_setup(root: Path) -> None:
    """A filled-in deployment: .env with real-looking values, secrets on disk."""
    env = (root / ".env.example").read_text(encoding="utf-8")
    env = env.replace("mcp.example.com", REAL_HOST).replace("=myteam", f"={REAL_TEAM}")
    env = env.replace("0123456789abcdef" * 4, REAL_AUD)
    (root / ".env").write_text(env, encoding="utf-8")
    config = (root / "cloudflared/config.yml").read_text(encoding="utf-8")
    config = config.replace("mcp.example.com", REAL_HOST).replace("teamName: myteam", f"teamName: {REAL_TEAM}")
    config = config.replace("0123456789abcdef" * 4, REAL_AUD).replace(check_deployment.EXAMPLE_TUNNEL_ID, REAL_TUNNEL)
    (root / "cloudflared/config.yml").write_text(config, encoding="utf-8")
    for name in ("polar_token", "tunnel_token", "tunnel_credentials.json"):
        write_secret(root / "secrets" / name)


# Stand-in for `tunnelgate check-config`: needs the token file the compose environment names,
# then prints effective settings like the real binary does.
FAKE_BINARY = """#!/bin/sh
[ -f "$POLAR_ACCESS_TOKEN_FILE" ] || { echo "upstream.token_file: $POLAR_ACCESS_TOKEN_FILE does not exist" >&2; exit 1; }
cat <<'TOML'
state_dir = "/var/lib/tunnelgate"

[server]
bind = "0.0.0.0:8080"
keep_alive = "2m"
sse_keep_alive = "15s"

[admin]
bind = "127.0.0.1:9090"

[upstream]
profile = "polar"
TOML
echo "configuration is valid" >&2
"""


def make_fake_binary(root: Path) -> Path:
    path = root / "fake-tunnelgate"
    path.write_text(FAKE_BINARY, encoding="utf-8")
    path.chmod(0o755)
    return path


def run_checker(root: Path, operator: bool, binary: Path | None = None) -> tuple[int, str]:
    argv = ["--root", str(root)]
    if operator:
        argv += ["--env-file", str(root / ".env")]
    if binary is not None:
        argv += ["--binary", str(binary)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = check_deployment.main(argv)
    return code, out.getvalue()


def failing_checks(output: str) -> list[str]:
    return [line[len("FAIL  "):] for line in output.splitlines() if line.startswith("FAIL  ")]


COMPOSE = "docker-compose.yml"
ENV = ".env.example"
TUNNEL = "cloudflared/config.yml"
DOCKERFILE = "Dockerfile"
TG_EXPOSE = '    expose: ["8080"]\n'
TG_ENV = "      POLAR_ACCESS_TOKEN_FILE: /run/secrets/polar_token\n"
CF_REMOTE_CMD = 'command: ["tunnel", "--no-autoupdate", "--metrics", "0.0.0.0:2000", "run"]'
CF_HEALTH = 'test: ["CMD", "cloudflared", "tunnel", "--metrics", "127.0.0.1:2000", "ready"]'
TG_HEALTH = 'test: ["CMD", "/usr/local/bin/tunnelgate", "healthcheck"]'

REDIS_CMD = 'command: ["redis-server", "--save", "", "--appendonly", "no",'

CASES = [
    Case("redis image not pinned", [(COMPOSE, "image: redis:7.4.6-alpine", "image: redis:latest")], ["redis: the official image, pinned"]),
    Case("redis persists to disk", [(COMPOSE, REDIS_CMD, 'command: ["redis-server", "--save", "60 1", "--appendonly", "yes",')], ["redis: snapshots off", "redis: append-only file off"]),
    Case("redis publishes its port", [(COMPOSE, '    expose: ["6379"]\n', '    expose: ["6379"]\n    ports: ["6379:6379"]\n')], ["no service publishes ports"]),
    Case("redis started without the ha profile", [(COMPOSE, "    profiles: [ha]\n", "")], ["redis: only in the `ha` profile"]),
    Case("tunnelgate given a container_name", [(COMPOSE, "  tunnelgate:\n    build: .\n", "  tunnelgate:\n    build: .\n    container_name: tunnelgate\n")], ["no service sets container_name"]),
    Case("two replicas without a Redis", [(".env", "TUNNELGATE_REPLICAS=1", "TUNNELGATE_REPLICAS=2")], ["several tunnelgate replicas share a Redis"], operator=True),
    Case("ha profile with one replica", [(".env", "COMPOSE_PROFILES=remote-tunnel\n", "COMPOSE_PROFILES=remote-tunnel,ha\n")], ["ha: TUNNELGATE_REPLICAS is at least 2", "ha: TUNNELGATE__CLUSTER__REDIS_URL names the compose Redis"], operator=True),
    # -- ports and exposure
    Case("tunnelgate publishes a port", [(COMPOSE, TG_EXPOSE, TG_EXPOSE + '    ports: ["8080:8080"]\n')], ["no service publishes ports"]),
    Case("cloudflared publishes its metrics port", [(COMPOSE, "    profiles: [remote-tunnel]\n", '    profiles: [remote-tunnel]\n    ports: ["2000:2000"]\n')], ["no service publishes ports"]),
    Case("expose lists another port", [(COMPOSE, TG_EXPOSE, '    expose: ["8081"]\n')], ["`expose` lists the listen port 8080"]),
    Case(
        "server.bind moves to 8081 in compose only",
        [(COMPOSE, TG_ENV, TG_ENV + "      TUNNELGATE__SERVER__BIND: 0.0.0.0:8081\n")],
        ["`expose` lists the listen port 8081", "service is http://tunnelgate:8081", "EXPOSE lists the MCP port 8081"],
    ),
    Case("admin listener shares the MCP port", [(ENV, "TUNNELGATE__ADMIN__BIND=127.0.0.1:9090", "TUNNELGATE__ADMIN__BIND=0.0.0.0:8080")], ["admin port differs from the MCP port"]),
    Case("admin port exposed", [(COMPOSE, TG_EXPOSE, '    expose: ["8080", "9090"]\n')], ["admin port is not in `expose`"]),
    # -- secrets
    Case("polar_token secret from the environment", [(COMPOSE, "  polar_token:\n    file: ./secrets/polar_token\n", "  polar_token:\n    environment: POLAR_TOKEN\n")], ["every top-level secret is a file"]),
    Case("token as plain environment variable", [(COMPOSE, TG_ENV, TG_ENV + "      POLAR_ACCESS_TOKEN: polar_oat_x\n")], ["no service takes a secret as a plain environment variable"]),
    Case("TUNNEL_TOKEN in the environment", [(COMPOSE, "      TUNNEL_TOKEN_FILE: /run/secrets/tunnel_token\n", "      TUNNEL_TOKEN_FILE: /run/secrets/tunnel_token\n      TUNNEL_TOKEN: eyJ\n")], ["cloudflared: no TUNNEL_TOKEN in the environment", "no service takes a secret as a plain environment variable"]),
    Case("secret file outside ./secrets", [(COMPOSE, "file: ./secrets/polar_token", "file: ./polar_token")], ["secret polar_token: file lives under ./secrets/"]),
    Case("token file not a mounted secret", [(COMPOSE, TG_ENV, "      POLAR_ACCESS_TOKEN_FILE: /run/secrets/other\n")], ["upstream token is read from a mounted Compose secret"]),
    Case("tunnel token file not mounted", [(COMPOSE, "TUNNEL_TOKEN_FILE: /run/secrets/tunnel_token", "TUNNEL_TOKEN_FILE: /etc/token")], ["TUNNEL_TOKEN_FILE is a mounted Compose secret"]),
    Case("token on the cloudflared command line", [(COMPOSE, CF_REMOTE_CMD, 'command: ["tunnel", "--no-autoupdate", "--metrics", "0.0.0.0:2000", "run", "--token", "eyJ"]')], ["cloudflared: no --token on the command line", "cloudflared: command is"]),
    # -- healthchecks
    Case("tunnelgate without healthcheck", [(COMPOSE, f"      {TG_HEALTH}\n", "      disable: true\n")], ["tunnelgate: has a healthcheck", "healthcheck runs `tunnelgate healthcheck`", "compose healthcheck calls the same binary path"]),
    Case("cloudflared healthcheck on another port", [(COMPOSE, CF_HEALTH, CF_HEALTH.replace("127.0.0.1:2000", "127.0.0.1:2001"))], ["cloudflared: healthcheck is", "cloudflared-local: healthcheck is"]),
    Case("cloudflared healthcheck removed", [(COMPOSE, CF_HEALTH, "disable: true")], ["cloudflared: has a healthcheck", "cloudflared-local: has a healthcheck"]),
    Case("healthcheck --url on the wrong port", [(COMPOSE, TG_HEALTH, 'test: ["CMD", "/usr/local/bin/tunnelgate", "healthcheck", "--url", "http://127.0.0.1:9999/readyz"]')], ["healthcheck --url targets the admin port"]),
    # -- hardening and restart
    Case("restart: always", [(COMPOSE, "  tunnelgate:\n    build: .\n    restart: unless-stopped\n", "  tunnelgate:\n    build: .\n    restart: always\n")], ["tunnelgate: restart: unless-stopped"]),
    Case("writable root filesystem", [(COMPOSE, "    tmpfs: [/tmp]\n    read_only: true\n", "    tmpfs: [/tmp]\n    read_only: false\n")], ["tunnelgate: read-only root filesystem"]),
    Case("capabilities kept", [(COMPOSE, "    tmpfs: [/tmp]\n    read_only: true\n    cap_drop: [ALL]\n", "    tmpfs: [/tmp]\n    read_only: true\n")], ["tunnelgate: cap_drop includes ALL"]),
    Case("no no-new-privileges", [(COMPOSE, '  security_opt: ["no-new-privileges:true"]\n  # Metrics', "  # Metrics")], ["cloudflared: security_opt no-new-privileges", "cloudflared-local: security_opt no-new-privileges"]),
    Case("state_dir on a bind mount", [(COMPOSE, "      - state:/var/lib/tunnelgate", "      - ./state:/var/lib/tunnelgate")], ["named volume is mounted at state_dir"]),
    Case("upstream profile left at generic", [(COMPOSE, "      TUNNELGATE__UPSTREAM__PROFILE: polar\n", "")], ["upstream.profile is polar"]),
    Case("sse keep-alive above Cloudflare's cut-off", [(COMPOSE, TG_ENV, TG_ENV + "      TUNNELGATE__SERVER__SSE_KEEP_ALIVE: 2m\n")], ["server.sse_keep_alive is under"]),
    Case("required variable given a default", [(COMPOSE, "${TUNNELGATE__ACCESS__AUDIENCES:?set", "${TUNNELGATE__ACCESS__AUDIENCES:-set")], ["TUNNELGATE__ACCESS__AUDIENCES is set and required"]),
    # -- cloudflared services
    Case("cloudflared image not pinned", [(COMPOSE, "cloudflare/cloudflared:2026.8.2", "cloudflare/cloudflared:latest")], ["is pinned to a release"]),
    Case("cloudflared starts before tunnelgate is healthy", [(COMPOSE, "condition: service_healthy", "condition: service_started")], ["cloudflared: depends_on tunnelgate being healthy"]),
    Case("metrics bound to loopback", [(COMPOSE, CF_REMOTE_CMD, CF_REMOTE_CMD.replace("0.0.0.0:2000", "127.0.0.1:2000"))], ["cloudflared: metrics listen on 0.0.0.0"]),
    Case("command does not end in run", [(COMPOSE, CF_REMOTE_CMD, 'command: ["tunnel", "--no-autoupdate", "--metrics", "0.0.0.0:2000"]')], ["cloudflared: command is"]),
    Case("local tunnel without profile", [(COMPOSE, "    profiles: [local-tunnel]\n", "")], ["every cloudflared service sits in a profile", "starts exactly one cloudflared service"]),
    Case("both profiles enabled", [(ENV, "COMPOSE_PROFILES=remote-tunnel", "COMPOSE_PROFILES=remote-tunnel,local-tunnel")], ["starts exactly one cloudflared service"]),
    Case("no local-tunnel flavour", [(COMPOSE, '"--config", "/etc/cloudflared/config.yml", ', "")], ["a second service runs a locally-managed tunnel"]),
    Case("config.yml mounted read-write", [(COMPOSE, "./cloudflared/config.yml:/etc/cloudflared/config.yml:ro", "./cloudflared/config.yml:/etc/cloudflared/config.yml")], ["mounts ./cloudflared/config.yml read-only"]),
    Case("credentials-file not the mounted secret", [(TUNNEL, "credentials-file: /run/secrets/tunnel_credentials", "credentials-file: /etc/cloudflared/creds.json")], ["credentials-file is a mounted Compose secret"]),
    # -- variables and .env.example
    Case("compose reads a variable .env.example lacks", [(COMPOSE, "      TUNNELGATE__UPSTREAM__PROFILE: polar\n", "      TUNNELGATE__UPSTREAM__PROFILE: ${UPSTREAM_PROFILE:-polar}\n")], ["every ${VAR} in docker-compose.yml is set in the env file"]),
    Case(".env.example has an unused variable", [(ENV, "COMPOSE_PROFILES=remote-tunnel\n", "COMPOSE_PROFILES=remote-tunnel\n# Unused.\nSTALE_SETTING=1\n")], ["every variable in the env file is read by Compose"]),
    Case("variable without a comment", [(ENV, "# Polar environment the token belongs to: production (api.polar.sh) or sandbox (sandbox-api.polar.sh).\n", "")], ["has a comment line right above it"]),
    Case("required variable empty", [(ENV, "TUNNELGATE__ACCESS__TEAM_DOMAIN=myteam", "TUNNELGATE__ACCESS__TEAM_DOMAIN=")], ["Compose interpolation succeeds"]),
    Case("COMPOSE_PROFILES missing", [(ENV, "COMPOSE_PROFILES=remote-tunnel\n", "")], ["COMPOSE_PROFILES is set", "starts exactly one cloudflared service"]),
    # -- schema
    Case("unknown service key", [(COMPOSE, "    build: .\n", "    build: .\n    restart_policy: always\n")], ["validates against the Compose Specification"]),
    Case("misspelt healthcheck key", [(COMPOSE, "      start_period: 60s\n", "      start_periode: 60s\n")], ["validates against the Compose Specification"]),
    Case("schema file altered", [(".ci/schemas/compose-spec.json", '"title": "Compose Specification"', '"title": "Compose Spec"')], ["schema file has the recorded sha256"]),
    # -- cloudflared/config.yml
    Case("catch-all not last", [(TUNNEL, "  - service: http_status:404\n", "  - service: http_status:404\n  - hostname: late.example.com\n    service: http://tunnelgate:8080\n")], ["last ingress rule is a catch-all", "catch-all answers http_status:404", "only the last rule is a catch-all"]),
    Case("catch-all missing", [(TUNNEL, "  - service: http_status:404\n", "")], ["last ingress rule is a catch-all", "catch-all answers http_status:404"]),
    Case("catch-all answers 200 from tunnelgate", [(TUNNEL, "  - service: http_status:404\n", "  - service: http://tunnelgate:8080\n")], ["catch-all answers http_status:404"]),
    Case("ingress to the wrong service name", [(TUNNEL, "service: http://tunnelgate:8080", "service: http://gateway:8080")], ["service is http://tunnelgate:8080"]),
    Case("ingress to the wrong port", [(TUNNEL, "service: http://tunnelgate:8080", "service: http://tunnelgate:9090")], ["service is http://tunnelgate:8080"]),
    Case("ingress hostname not public", [(TUNNEL, "- hostname: mcp.example.com", "- hostname: other.example.com")], ["hostname is one of TUNNELGATE__SERVER__PUBLIC_HOSTNAMES"]),
    Case(
        "access block at top level (ignored by cloudflared)",
        [(TUNNEL, "ingress:\n", "originRequest:\n  access:\n    required: true\n    teamName: myteam\n    audTag: [x]\ningress:\n"), (TUNNEL, "        required: true\n", "        required: false\n")],
        ["no `access` block under the top-level originRequest", "originRequest.access.required is true"],
    ),
    Case("wrong team name", [(TUNNEL, "teamName: myteam", "teamName: otherteam")], ["access.teamName equals"]),
    Case("wrong AUD tag", [(TUNNEL, "          - 0123456789abcdef", "          - 1123456789abcdef")], ["access.audTag is a non-empty subset"]),
    Case("pool keep-alive longer than tunnelgate's", [(TUNNEL, "keepAliveTimeout: 90s", "keepAliveTimeout: 3m")], ["keepAliveTimeout is set and shorter"]),
    Case("pool keep-alive unset", [(TUNNEL, "      keepAliveTimeout: 90s\n", "")], ["keepAliveTimeout is set and shorter"]),
    Case("chunked encoding disabled", [(TUNNEL, "disableChunkedEncoding: false", "disableChunkedEncoding: true")], ["chunked encoding stays on"]),
    Case("http2 to the origin", [(TUNNEL, "      connectTimeout: 10s\n", "      connectTimeout: 10s\n      http2Origin: true\n")], ["http2Origin is off"]),
    Case("Host header rewritten", [(TUNNEL, "      connectTimeout: 10s\n", "      connectTimeout: 10s\n      httpHostHeader: tunnelgate\n")], ["Host reaches tunnelgate as a public hostname"]),
    # -- Dockerfile and ignore files
    Case("build without --locked", [(DOCKERFILE, "cargo build --release --locked", "cargo build --release")], ["cargo build --release --locked"]),
    Case("single-stage image", [(DOCKERFILE, "FROM gcr.io/distroless/cc-debian12:nonroot\n", ""), (DOCKERFILE, "COPY --from=build /out/tunnelgate", "COPY /out/tunnelgate")], ["Dockerfile is multi-stage", "cargo build --release --locked"]),
    Case("runs as root", [(DOCKERFILE, "USER 65532:65532", "USER root")], ["non-root USER", "owned by the runtime user"]),
    Case("default command is dev", [(DOCKERFILE, 'CMD ["serve"]', 'CMD ["dev"]')], ['CMD is ["serve"]']),
    Case("shell-form entrypoint", [(DOCKERFILE, 'ENTRYPOINT ["/usr/local/bin/tunnelgate"]', "ENTRYPOINT /usr/local/bin/tunnelgate")], ["ENTRYPOINT is the tunnelgate binary", "HEALTHCHECK runs", "compose healthcheck calls the same binary path"]),
    Case("no HEALTHCHECK", [(DOCKERFILE, 'CMD ["/usr/local/bin/tunnelgate", "healthcheck"]', 'CMD ["true"]')], ["HEALTHCHECK runs `tunnelgate healthcheck`"]),
    Case("state dir owned by root", [(DOCKERFILE, "COPY --from=build --chown=65532:65532 /out/state", "COPY --from=build /out/state")], ["owned by the runtime user"]),
    Case("MCP port not exposed", [(DOCKERFILE, "EXPOSE 8080 9090", "EXPOSE 9090")], ["EXPOSE lists the MCP port 8080"]),
    Case(".env reaches the build context", [(".dockerignore", "\n.env\n", "\n")], [".dockerignore excludes .env"]),
    Case("secrets reach the build context", [(".dockerignore", "\nsecrets/\n", "\n")], [".dockerignore excludes secrets"]),
    Case(".env not ignored by git", [(".gitignore", "/.env\n", "")], [".env is ignored by git"]),
    Case("secrets not ignored by git", [(".gitignore", "/secrets/*\n", "")], ["secrets/polar_token is ignored by git", "secrets/tunnel_token is ignored by git"]),
    # -- operator preflight (--env-file .env)
    Case("example values left in .env", [(".env", f"={REAL_TEAM}", "=myteam"), (TUNNEL, f"teamName: {REAL_TEAM}", "teamName: myteam")], ["no example value from .env.example is left"], operator=True),
    Case("secret file missing", [], ["secret polar_token: "], operator=True, setup=lambda root: (root / "secrets/polar_token").unlink()),
    Case("secret written with echo (trailing newline)", [], ["secret tunnel_token: no trailing newline"], operator=True, setup=lambda root: write_secret(root / "secrets/tunnel_token", b"eyJtoken\n")),
    Case(
        "secret unreadable for uid 65532",
        [],
        ["secret polar_token: readable by uid 65532"],
        operator=True,
        setup=lambda root: (os.chown(root / "secrets/polar_token", 0, 0), (root / "secrets/polar_token").chmod(0o600)),
        extra={"root_only": True},
    ),
    Case("local tunnel with the example UUID", [(".env", "COMPOSE_PROFILES=remote-tunnel", "COMPOSE_PROFILES=local-tunnel"), (TUNNEL, REAL_TUNNEL, check_deployment.EXAMPLE_TUNNEL_ID)], ["tunnel is not the example UUID"], operator=True),
    Case("local tunnel config disagrees with .env", [(".env", "COMPOSE_PROFILES=remote-tunnel", "COMPOSE_PROFILES=local-tunnel"), (TUNNEL, f"- hostname: {REAL_HOST}", "- hostname: mcp.example.com")], ["hostname is one of TUNNELGATE__SERVER__PUBLIC_HOSTNAMES"], operator=True),
    # -- --binary: the real configuration loader's view
    Case("binary rejects the compose environment", [("fake-tunnelgate", '[ -f "$POLAR_ACCESS_TOKEN_FILE" ]', "false")], ["check-config accepts the compose environment"], extra={"binary": True}),
    Case("binary's default bind differs", [("fake-tunnelgate", 'bind = "0.0.0.0:8080"', 'bind = "0.0.0.0:8000"')], ["effective server.bind is what this script assumed"], extra={"binary": True}),
    Case("binary's keep-alive differs", [("fake-tunnelgate", 'keep_alive = "2m"', 'keep_alive = "75s"')], ["effective server.keep_alive is what this script assumed"], extra={"binary": True}),
    # -- unreadable inputs
    Case("compose file is not YAML", [(COMPOSE, "services:\n", "services: [\n")], [], exit_code=2),
    Case("env file has a malformed line", [(ENV, "COMPOSE_PROFILES=remote-tunnel\n", "COMPOSE_PROFILES remote-tunnel\n")], [], exit_code=2),
]


def main() -> int:
    passed = failed = 0
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    with tempfile.TemporaryDirectory(prefix="check-deployment-") as tmp:
        base = Path(tmp)
        # Controls: the untouched bundle passes, in CI mode and as a filled-in preflight.
        controls = (
            ("control: committed bundle passes", False, False),
            ("control: filled-in deployment passes the preflight", True, False),
            ("control: a binary agreeing with the bundle passes", False, True),
        )
        for label, operator, with_binary in controls:
            root = make_copy(base)
            if operator:
                make_operator_setup(root)
            code, output = run_checker(root, operator, make_fake_binary(root) if with_binary else None)
            ok = code == 0
            print(f"{'PASS' if ok else 'FAIL'}  {label}" + ("" if ok else f": exit {code}, failing {failing_checks(output)}"))
            passed, failed = passed + ok, failed + (not ok)
        for case in CASES:
            if case.extra.get("root_only") and not is_root:
                print(f"SKIP  {case.name} (needs root to chown)")
                continue
            root = make_copy(base)
            if case.operator:
                make_operator_setup(root)
            binary = make_fake_binary(root) if case.extra.get("binary") else None
            try:
                for file, old, new in case.edits:
                    replace(root, file, old, new)
                if case.setup:
                    case.setup(root)
            except AssertionError as error:
                print(f"FAIL  {case.name}: {error}")
                failed += 1
                continue
            code, output = run_checker(root, case.operator, binary)
            failures = failing_checks(output)
            unmatched = [want for want in case.expect if not any(want in failure for failure in failures)]
            ok = code == case.exit_code and not unmatched
            if ok:
                print(f"PASS  {case.name} -> {'exit 2' if case.exit_code == 2 else '; '.join(failures)}")
            else:
                print(f"FAIL  {case.name}: exit {code} (want {case.exit_code}); expected failures not seen: {unmatched}; seen: {failures}")
            passed, failed = passed + ok, failed + (not ok)
    print(f"deployment self-test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
