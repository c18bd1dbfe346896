#!/usr/bin/env python3
"""Static checks of tunnelgate's deployment bundle.

Reads docker-compose.yml, .env.example (or --env-file), cloudflared/config.yml, the
Dockerfile, .dockerignore and .gitignore, and checks that they agree with each other and
with tunnelgate's configuration defaults. Nothing is started and nothing is fetched: the
Compose Specification schema is vendored in .ci/schemas/ (see its README).

    python3 .ci/check_deployment.py                    # CI: the committed templates
    python3 .ci/check_deployment.py --env-file .env    # operator preflight on a deploy host
    python3 .ci/check_deployment.py --binary target/release/tunnelgate   # also ask the binary

With --binary, the script runs `tunnelgate check-config` with the tunnelgate service's
environment from docker-compose.yml (secret paths pointed at placeholder files) and
compares the effective settings it prints with the defaults assumed here.

With --env-file pointing at a real .env, the script also refuses example values that were
not replaced and checks that the secret files of the active profile exist and are
readable by the containers' user (uid 65532).

Exit status: 0 when every check passes, 1 when any fails, 2 when the inputs cannot be read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

try:
    import dockerfile
    import jsonschema
    import yaml
except ImportError as missing:  # pragma: no cover - exercised only without the venv
    print(
        f"check_deployment: missing Python package ({missing.name}); "
        "run .ci/check_deployment.sh, which installs .ci/requirements-deploy.txt",
        file=sys.stderr,
    )
    sys.exit(2)

# --- facts about tunnelgate this bundle must agree with -------------------------------
# Built-in defaults of the keys the bundle depends on (src/config.rs). Environment
# variables TUNNELGATE__SECTION__KEY override them; TUNNELGATE__STATE_DIR is top-level.
APP_DEFAULTS: dict[str, str] = {
    "server.bind": "0.0.0.0:8080",
    "server.keep_alive": "120s",
    "server.sse_keep_alive": "15s",
    "admin.bind": "0.0.0.0:9090",
    "state_dir": "/var/lib/tunnelgate",
    "upstream.profile": "generic",
}
TUNNELGATE_SERVICE = "tunnelgate"
RUNTIME_UID = 65532  # distroless "nonroot"; also the uid of the cloudflared image
CLOUDFLARED_IMAGE = "cloudflare/cloudflared"
# Cloudflare closes a proxied response that sends nothing for ~100 s (120 s on newer
# plans); tunnelgate itself refuses sse_keep_alive >= 90 s.
MAX_SSE_KEEP_ALIVE_SECONDS = 89
# Values in .env.example that an operator must replace (checked with --env-file).
EXAMPLE_VALUES = {
    "TUNNELGATE__SERVER__PUBLIC_HOSTNAMES": "mcp.example.com",
    "TUNNELGATE__ACCESS__TEAM_DOMAIN": "myteam",
    "TUNNELGATE__ACCESS__AUDIENCES": "0123456789abcdef" * 4,
}
EXAMPLE_TUNNEL_ID = "00000000-0000-0000-0000-000000000000"
# Secrets whose reader is not documented to trim whitespace (tunnelgate trims its token
# file; the credentials file is JSON), so the preflight insists on exact content.
UNTRIMMED_SECRETS = {"tunnel_token"}
COMPOSE_SCHEMA = Path(".ci/schemas/compose-spec.json")
COMPOSE_SCHEMA_SHA256 = "46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496"
COMPOSE_SCHEMA_ORIGIN = "npm package dclint@3.1.0, schemas/compose.schema.json"
# Variables Compose itself reads from .env (not interpolated into the file).
COMPOSE_CLI_VARIABLES = {"COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME", "COMPOSE_FILE"}


class InputError(Exception):
    """An input file is missing or unreadable: the checks cannot run at all."""


# --- reporting ---------------------------------------------------------------------------
@dataclass
class Report:
    passed: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"PASS  {name}")
        else:
            self.failures.append(name)
            print(f"FAIL  {name}" + (f": {detail}" if detail else ""))
        return ok

    def section(self, title: str) -> None:
        print(f"\n== {title}")


# --- small parsers -----------------------------------------------------------------------
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|msec|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours)")
_UNIT_SECONDS = {
    "ms": 0.001, "msec": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
}


def parse_duration(value: Any) -> float | None:
    """Seconds in a Go (`1m30s`) or humantime (`2min 5s`) duration; a bare number is seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def port_of(address: str) -> int | None:
    """Port of `host:port` or `[v6]:port`."""
    match = re.fullmatch(r"(?:\[[^\]]+\]|[^:]*):(\d{1,5})", address.strip())
    return int(match.group(1)) if match else None


@dataclass
class EnvEntry:
    value: str
    line: int
    commented: bool  # the line right above is a `#` comment


def read_env_file(path: Path) -> dict[str, EnvEntry]:
    """The subset of Compose's .env syntax this bundle uses: KEY=VALUE, comments, quotes."""
    entries: dict[str, EnvEntry] = {}
    previous = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            if line.startswith("export "):
                line = line[len("export "):].lstrip()
            key, sep, value = line.partition("=")
            key = key.strip()
            if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise InputError(f"{path}:{number}: not a KEY=VALUE line: {raw!r}")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            else:
                value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
            entries[key] = EnvEntry(value, number, previous.startswith("#"))
        previous = line
    return entries


# --- Compose variable interpolation ----------------------------------------------------------
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Interpolator:
    """Compose interpolation: $$, $NAME, ${NAME}, ${NAME:-d}, ${NAME-d}, ${NAME:?e},
    ${NAME?e}, ${NAME:+a}, ${NAME+a}, with nested ${...} in the d/e/a part."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.referenced: set[str] = set()
        self.required: set[str] = set()
        self.errors: list[str] = []

    def __call__(self, text: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char != "$":
                out.append(char)
                i += 1
                continue
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt == "{":
                end = self._closing_brace(text, i + 2)
                if end < 0:
                    self.errors.append(f"unterminated ${{ in {text!r}")
                    out.append(text[i:])
                    break
                out.append(self._expand(text[i + 2:end]))
                i = end + 1
            else:
                match = _NAME.match(text, i + 1)
                if match:
                    self.referenced.add(match.group(0))
                    out.append(self.env.get(match.group(0), ""))
                    i = match.end()
                else:
                    out.append("$")
                    i += 1
        return "".join(out)

    @staticmethod
    def _closing_brace(text: str, start: int) -> int:
        depth = 1
        i = start
        while i < len(text):
            if text.startswith("${", i):
                depth += 1
                i += 2
                continue
            if text[i] == "}":
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        return -1

    def _expand(self, body: str) -> str:
        match = _NAME.match(body)
        if not match:
            self.errors.append(f"invalid variable reference ${{{body}}}")
            return ""
        name = match.group(0)
        self.referenced.add(name)
        rest = body[match.end():]
        is_set = name in self.env
        value = self.env.get(name, "")
        if not rest:
            return value
        for operator in (":-", ":?", ":+", "-", "?", "+"):
            if rest.startswith(operator):
                argument = rest[len(operator):]
                break
        else:
            self.errors.append(f"unsupported modifier in ${{{body}}}")
            return value
        colon = operator.startswith(":")
        present = is_set and (value != "" or not colon)
        kind = operator[-1]
        if kind == "-":
            return value if present else self(argument)
        if kind == "?":
            self.required.add(name)
            if not present:
                self.errors.append(f"{name}: {self(argument) or 'required variable is not set'}")
            return value
        return self(argument) if present else ""


def interpolate_tree(node: Any, interpolate: Interpolator) -> Any:
    if isinstance(node, dict):
        return {key: interpolate_tree(value, interpolate) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, interpolate) for value in node]
    if isinstance(node, str):
        return interpolate(node)
    return node


# --- helpers over the Compose model ----------------------------------------------------------
def environment_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def as_argv(command: Any) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def healthcheck_argv(service: dict) -> list[str] | None:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return [str(part) for part in test] if test else None


def mounted_secrets(service: dict) -> dict[str, str]:
    """Secret name -> path inside the container."""
    mounts: dict[str, str] = {}
    for entry in service.get("secrets") or []:
        if isinstance(entry, str):
            mounts[entry] = f"/run/secrets/{entry}"
        else:
            source = entry.get("source", "")
            target = entry.get("target") or source
            mounts[source] = target if target.startswith("/") else f"/run/secrets/{target}"
    return mounts


def volume_mounts(service: dict) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) for each volume or bind mount."""
    mounts = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            parts = entry.split(":")
            if len(parts) == 1:
                mounts.append(("", parts[0], False))
            else:
                options = parts[2].split(",") if len(parts) > 2 else []
                mounts.append((parts[0], parts[1], "ro" in options))
        else:
            mounts.append((str(entry.get("source", "")), str(entry.get("target", "")), bool(entry.get("read_only"))))
    return mounts


def is_cloudflared(service: dict) -> bool:
    return str(service.get("image", "")).split("@")[0].rsplit(":", 1)[0] == CLOUDFLARED_IMAGE


def flag_value(argv: list[str], flag: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def team_name(team_domain: str) -> str:
    """`myteam`, `myteam.cloudflareaccess.com` or `https://myteam.cloudflareaccess.com` -> `myteam`."""
    name = team_domain.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    for suffix in (".fed.cloudflareaccess.com", ".cloudflareaccess.com"):
        name = name.removesuffix(suffix)
    return name


def comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


# --- the checks --------------------------------------------------------------------------------
class Checker:
    def __init__(self, root: Path, env_file: Path, operator_mode: bool):
        self.root = root
        self.env_file = env_file
        self.operator_mode = operator_mode
        self.report = Report()
        self.compose_path = root / "docker-compose.yml"
        self.tunnel_config_path = root / "cloudflared" / "config.yml"

        self.env_entries = read_env_file(env_file)
        self.env = {key: entry.value for key, entry in self.env_entries.items()}
        if operator_mode:
            # As Compose does: the shell that runs `docker compose` overrides .env.
            self.env.update({k: v for k, v in os.environ.items() if k.startswith(("TUNNELGATE", "COMPOSE_", "POLAR_"))})
        raw_text = self.compose_path.read_text(encoding="utf-8")
        try:
            self.raw = yaml.safe_load(raw_text)
        except yaml.YAMLError as error:
            raise InputError(f"{self.compose_path}: not YAML: {error}") from error
        if not isinstance(self.raw, dict) or not isinstance(self.raw.get("services"), dict):
            raise InputError(f"{self.compose_path}: no `services` mapping")
        self.interpolate = Interpolator(self.env)
        self.compose = interpolate_tree(self.raw, self.interpolate)
        self.services: dict[str, dict] = self.compose["services"]
        try:
            self.tunnel_config = yaml.safe_load(self.tunnel_config_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise InputError(f"{self.tunnel_config_path}: not YAML: {error}") from error
        self.active_profiles = set(comma_list(self.env.get("COMPOSE_PROFILES", "")))

    # The effective value of a tunnelgate setting: compose environment, else the TOML
    # file named by TUNNELGATE_CONFIG (when it is bind-mounted from the repo, as a file or
    # inside a mounted directory),
    # else the built-in default.
    def setting(self, key: str) -> str:
        env = environment_of(self.services.get(TUNNELGATE_SERVICE, {}))
        variable = "TUNNELGATE__" + "__".join(part.upper() for part in key.split("."))
        if variable in env:
            return env[variable]
        toml = self._tunnelgate_toml()
        node: Any = toml
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return str(node)
        return APP_DEFAULTS[key]

    def _tunnelgate_toml(self) -> dict:
        service = self.services.get(TUNNELGATE_SERVICE, {})
        path = environment_of(service).get("TUNNELGATE_CONFIG")
        if not path:
            return {}
        for source, target, _ in volume_mounts(service):
            if not source.startswith((".", "/")):
                continue
            host = (self.root / source).resolve()
            prefix = target.rstrip("/") + "/"
            if target == path and host.is_file():
                host_file = host
            elif host.is_dir() and path.startswith(prefix):
                host_file = host / path[len(prefix):]
            else:
                continue
            if host_file.is_file():
                return tomllib.loads(host_file.read_text(encoding="utf-8"))
        self.report.notes.append(f"TUNNELGATE_CONFIG={path} is not a file this script can read; its keys were not considered")
        return {}

    def profile_active(self, service: dict) -> bool:
        profiles = service.get("profiles") or []
        return not profiles or bool(self.active_profiles & set(profiles))

    def service_in_scope(self, service: dict) -> bool:
        """CI checks every service; a preflight only those the env file activates."""
        return not self.operator_mode or self.profile_active(service)

    # --- environment file ------------------------------------------------------------------
    def check_env_file(self) -> None:
        r = self.report
        r.section(f"variables ({self.env_file.relative_to(self.root) if self.env_file.is_relative_to(self.root) else self.env_file})")
        referenced = self.interpolate.referenced
        missing = sorted(referenced - self.env_entries.keys())
        r.check("every ${VAR} in docker-compose.yml is set in the env file", not missing, "missing: " + ", ".join(missing))
        unused = sorted(self.env_entries.keys() - referenced - COMPOSE_CLI_VARIABLES)
        r.check("every variable in the env file is read by Compose", not unused, "not read: " + ", ".join(unused))
        uncommented = sorted(key for key, entry in self.env_entries.items() if not entry.commented)
        r.check("every variable in the env file has a comment line right above it", not uncommented, "no comment: " + ", ".join(uncommented))
        r.check("Compose interpolation succeeds (required variables set, syntax valid)", not self.interpolate.errors, "; ".join(self.interpolate.errors))
        r.check("COMPOSE_PROFILES is set in the env file", bool(self.env.get("COMPOSE_PROFILES")), "without it no cloudflared service starts")
        if self.operator_mode:
            leftovers = sorted(key for key, example in EXAMPLE_VALUES.items() if self.env.get(key) == example)
            r.check("no example value from .env.example is left in the env file", not leftovers, "replace: " + ", ".join(leftovers))

    # --- Compose file ------------------------------------------------------------------------
    def check_schema(self) -> None:
        r = self.report
        r.section("Compose Specification schema")
        schema_path = self.root / COMPOSE_SCHEMA
        if not r.check(f"schema file {COMPOSE_SCHEMA} is present", schema_path.is_file(), "compose schema validation cannot run"):
            return
        digest = hashlib.sha256(schema_path.read_bytes()).hexdigest()
        if not r.check("schema file has the recorded sha256", digest == COMPOSE_SCHEMA_SHA256, f"got {digest}; see .ci/schemas/README.md"):
            return
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        validator = jsonschema.Draft7Validator(schema)
        errors = sorted(validator.iter_errors(self.compose), key=lambda error: list(error.absolute_path))
        detail = "; ".join(f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}" for error in errors[:10])
        r.check(f"docker-compose.yml (interpolated) validates against the Compose Specification ({COMPOSE_SCHEMA_ORIGIN})", not errors, detail)

    def check_compose_common(self) -> None:
        r = self.report
        r.section("docker-compose.yml: all services")
        with_ports = sorted(name for name, service in self.services.items() if "ports" in service)
        r.check("no service publishes ports (no `ports:` at all)", not with_ports, "ports on: " + ", ".join(with_ports))
        for name, service in self.services.items():
            if not self.service_in_scope(service):
                continue
            health = service.get("healthcheck") or {}
            r.check(f"{name}: has a healthcheck", bool(health.get("test")) and not health.get("disable"), "no healthcheck test")
            r.check(f"{name}: restart: unless-stopped", service.get("restart") == "unless-stopped", f"restart is {service.get('restart')!r}")
            r.check(f"{name}: read-only root filesystem", service.get("read_only") is True)
            r.check(f"{name}: cap_drop includes ALL", "ALL" in (service.get("cap_drop") or []))
            r.check(
                f"{name}: security_opt no-new-privileges",
                any(opt.replace(" ", "") in ("no-new-privileges", "no-new-privileges:true") for opt in service.get("security_opt") or []),
            )
        top_secrets = self.compose.get("secrets") or {}
        not_files = sorted(name for name, spec in top_secrets.items() if set((spec or {}).keys()) != {"file"})
        r.check("every top-level secret is a file (`file:` only, no environment/external)", not not_files, "not file-based: " + ", ".join(not_files))
        secret_vars = sorted(
            f"{name}:{key}"
            for name, service in self.services.items()
            for key in environment_of(service)
            if re.search(r"TOKEN|SECRET|PASSWORD|PRIVATE_KEY", key) and not key.endswith("_FILE")
        )
        r.check("no service takes a secret as a plain environment variable", not secret_vars, "found: " + ", ".join(secret_vars))
        for name, spec in top_secrets.items():
            path = str((spec or {}).get("file", ""))
            r.check(f"secret {name}: file lives under ./secrets/", path.startswith("./secrets/"), f"file is {path!r}")

    def check_tunnelgate(self) -> tuple[int | None, int | None]:
        r = self.report
        r.section("docker-compose.yml: tunnelgate")
        service = self.services.get(TUNNELGATE_SERVICE)
        if not r.check(f"service `{TUNNELGATE_SERVICE}` exists", isinstance(service, dict)):
            return None, None
        r.check("tunnelgate: built from this repository (`build:`)", "build" in service)
        r.check("tunnelgate: in no profile (always started)", not service.get("profiles"))
        env = environment_of(service)

        bind = self.setting("server.bind")
        listen_port = port_of(bind)
        r.check(f"tunnelgate: server.bind {bind!r} has a port", listen_port is not None)
        exposed = {str(port).split("/")[0] for port in service.get("expose") or []}
        r.check(f"tunnelgate: `expose` lists the listen port {listen_port}", str(listen_port) in exposed, f"expose is {sorted(exposed)}")

        admin_bind = self.setting("admin.bind")
        admin_port = port_of(admin_bind)
        r.check(f"tunnelgate: admin.bind {admin_bind!r} has a port", admin_port is not None)
        r.check("tunnelgate: admin port differs from the MCP port", admin_port != listen_port, f"both are {listen_port}")
        r.check("tunnelgate: the admin port is not in `expose`", str(admin_port) not in exposed, "the admin listener is not for other containers by default")

        health = healthcheck_argv(service) or []
        runs_healthcheck = len(health) >= 3 and health[0] == "CMD" and Path(health[1]).name == "tunnelgate" and health[2] == "healthcheck"
        r.check("tunnelgate: healthcheck runs `tunnelgate healthcheck` (exec form)", runs_healthcheck, f"test is {health}")
        url = flag_value(health, "--url")
        if url is not None:
            target = urlsplit(url)
            r.check("tunnelgate: healthcheck --url targets the admin port's /readyz", target.port == admin_port and target.path == "/readyz", f"url {url} vs admin port {admin_port}")

        state_dir = self.setting("state_dir")
        named_volumes = set((self.compose.get("volumes") or {}).keys())
        state_mounts = [source for source, target, _ in volume_mounts(service) if target == state_dir]
        r.check(
            f"tunnelgate: a named volume is mounted at state_dir {state_dir}",
            len(state_mounts) == 1 and state_mounts[0] in named_volumes,
            f"mounts at {state_dir}: {state_mounts}; named volumes: {sorted(named_volumes)}",
        )

        profile = self.setting("upstream.profile")
        r.check("tunnelgate: upstream.profile is polar", profile == "polar", f"upstream.profile is {profile!r} (the built-in default is generic)")
        secrets = mounted_secrets(service)
        token_file = env.get("POLAR_ACCESS_TOKEN_FILE") or env.get("TUNNELGATE__UPSTREAM__TOKEN_FILE")
        r.check(
            "tunnelgate: the upstream token is read from a mounted Compose secret",
            token_file is not None and token_file in secrets.values(),
            f"token file {token_file!r}, mounted secrets {sorted(secrets.values())}",
        )
        for variable in ("TUNNELGATE__SERVER__PUBLIC_HOSTNAMES", "TUNNELGATE__ACCESS__TEAM_DOMAIN", "TUNNELGATE__ACCESS__AUDIENCES"):
            r.check(f"tunnelgate: {variable} is set and required (${{...:?}})", bool(env.get(variable)) and variable in self.interpolate.required, "set it through ${VAR:?message}")

        sse = parse_duration(self.setting("server.sse_keep_alive"))
        r.check(
            f"tunnelgate: server.sse_keep_alive is under {MAX_SSE_KEEP_ALIVE_SECONDS + 1} s (Cloudflare's idle cut-off)",
            sse is not None and 0 < sse <= MAX_SSE_KEEP_ALIVE_SECONDS,
            f"server.sse_keep_alive is {self.setting('server.sse_keep_alive')!r}",
        )
        return listen_port, admin_port

    def check_ha(self) -> None:
        """The `ha` profile: a Redis shared by tunnelgate replicas (docs/scaling.md)."""
        r = self.report
        r.section("docker-compose.yml: ha profile (replicas sharing a Redis)")
        tunnelgate = self.services.get(TUNNELGATE_SERVICE) or {}
        named = sorted(name for name, service in self.services.items() if "container_name" in service)
        r.check("no service sets container_name (replicas need distinct names)", not named, "container_name on: " + ", ".join(named))
        replicas_raw = str((tunnelgate.get("deploy") or {}).get("replicas", "1"))
        replicas = int(replicas_raw) if replicas_raw.isdigit() else None
        r.check("tunnelgate: deploy.replicas is a whole number", replicas is not None and replicas >= 1, f"replicas is {replicas_raw!r}")
        env = environment_of(tunnelgate)
        r.check("tunnelgate: TUNNELGATE__CLUSTER__REDIS_URL comes from the env file", "TUNNELGATE__CLUSTER__REDIS_URL" in env)
        redis = self.services.get("redis")
        if not r.check("service `redis` exists", isinstance(redis, dict)):
            return
        r.check("redis: only in the `ha` profile", (redis.get("profiles") or []) == ["ha"], f"profiles are {redis.get('profiles')}")
        image = str(redis.get("image", ""))
        r.check("redis: the official image, pinned to a release (redis:X.Y.Z...)", re.fullmatch(r"redis:\d+\.\d+\.\d+(-[a-z0-9.]+)?", image) is not None, f"image is {image!r}")
        command = as_argv(redis.get("command"))
        r.check("redis: snapshots off (--save \"\")", flag_value(command, "--save") == "", f"command is {command}")
        r.check("redis: append-only file off (--appendonly no)", flag_value(command, "--appendonly") == "no", f"command is {command}")
        r.check("redis: on the tunnelgate network only", (redis.get("networks") or []) == ["tunnelgate"], f"networks are {redis.get('networks')}")
        r.check("redis: runs as a non-root user", str(redis.get("user", "")) not in ("", "0", "root"), f"user is {redis.get('user')!r}")
        if not self.operator_mode:
            return
        url = env.get("TUNNELGATE__CLUSTER__REDIS_URL", "")
        if self.profile_active(redis):
            r.check("ha: TUNNELGATE_REPLICAS is at least 2", replicas is not None and replicas >= 2, f"replicas is {replicas_raw!r}")
            r.check("ha: TUNNELGATE__CLUSTER__REDIS_URL names the compose Redis (redis://redis:6379/...)", urlsplit(url).hostname == "redis", "set TUNNELGATE__CLUSTER__REDIS_URL=redis://redis:6379/0")
        elif replicas is not None and replicas > 1:
            r.check(
                "several tunnelgate replicas share a Redis (the ha profile and TUNNELGATE__CLUSTER__REDIS_URL)",
                bool(url),
                "without it each replica spends the whole upstream budget and legacy SSE messages miss their session",
            )

    def check_cloudflared(self) -> None:
        r = self.report
        r.section("docker-compose.yml: cloudflared")
        flavours = {name: service for name, service in self.services.items() if is_cloudflared(service)}
        if not r.check("at least one cloudflared service exists", bool(flavours)):
            return
        remote = {name: s for name, s in flavours.items() if "TUNNEL_TOKEN_FILE" in environment_of(s)}
        local = {name: s for name, s in flavours.items() if flag_value(as_argv(s.get("command")), "--config")}
        r.check("service `cloudflared` runs the remotely-managed (token) tunnel", "cloudflared" in remote)
        r.check("a second service runs a locally-managed tunnel (--config)", bool(local))
        r.check(
            "every cloudflared service sits in a profile",
            all(s.get("profiles") for s in flavours.values()),
            "a cloudflared without a profile would run next to the chosen one",
        )
        active = sorted(name for name, s in flavours.items() if self.profile_active(s))
        r.check(
            f"COMPOSE_PROFILES={','.join(sorted(self.active_profiles))} starts exactly one cloudflared service",
            len(active) == 1,
            f"started: {active or 'none'}",
        )
        images = {str(s.get("image")) for s in flavours.values()}
        for image in sorted(images):
            tag = image.split("@")[0].rsplit(":", 1)[-1] if ":" in image.split("@")[0] else ""
            pinned = "@sha256:" in image or re.fullmatch(r"\d{4}\.\d{1,2}\.\d+", tag) is not None
            r.check(f"cloudflared image {image} is pinned to a release", pinned, "use cloudflare/cloudflared:<YYYY.M.P> or a digest")

        for name, service in flavours.items():
            if not self.service_in_scope(service):
                continue
            argv = as_argv(service.get("command"))
            metrics = flag_value(argv, "--metrics") or ""
            metrics_port = port_of(metrics)
            r.check(f"{name}: command is `tunnel --no-autoupdate ... run`", bool(argv) and argv[0] == "tunnel" and argv[-1] == "run" and "--no-autoupdate" in argv, f"command is {argv}")
            r.check(f"{name}: metrics listen on 0.0.0.0:<port> inside the container", metrics.startswith("0.0.0.0:") and metrics_port is not None, f"--metrics is {metrics!r}")
            r.check(f"{name}: no --token on the command line (visible in ps)", "--token" not in argv and not any(a.startswith("--token=") for a in argv))
            expected = ["CMD", "cloudflared", "tunnel", "--metrics", f"127.0.0.1:{metrics_port}", "ready"]
            r.check(f"{name}: healthcheck is `cloudflared tunnel --metrics 127.0.0.1:{metrics_port} ready`", healthcheck_argv(service) == expected, f"test is {healthcheck_argv(service)}")
            depends = service.get("depends_on") or {}
            condition = depends.get(TUNNELGATE_SERVICE, {}).get("condition") if isinstance(depends, dict) else None
            r.check(f"{name}: depends_on tunnelgate being healthy", condition == "service_healthy", f"depends_on is {depends}")
            env = environment_of(service)
            r.check(f"{name}: no TUNNEL_TOKEN in the environment", "TUNNEL_TOKEN" not in env)
            secrets = mounted_secrets(service)
            if name in remote:
                r.check(f"{name}: TUNNEL_TOKEN_FILE is a mounted Compose secret", env["TUNNEL_TOKEN_FILE"] in secrets.values(), f"TUNNEL_TOKEN_FILE={env['TUNNEL_TOKEN_FILE']}, mounted: {sorted(secrets.values())}")
            if name in local:
                config_path = flag_value(argv, "--config")
                mounts = [(source, ro) for source, target, ro in volume_mounts(service) if target == config_path]
                r.check(
                    f"{name}: mounts ./cloudflared/config.yml read-only at {config_path}",
                    len(mounts) == 1 and Path(mounts[0][0]) == Path("cloudflared/config.yml") and mounts[0][1],
                    f"mounts at {config_path}: {mounts}",
                )
                credentials = (self.tunnel_config or {}).get("credentials-file")
                r.check(
                    f"{name}: config.yml credentials-file is a mounted Compose secret",
                    credentials in secrets.values(),
                    f"credentials-file {credentials!r}, mounted: {sorted(secrets.values())}",
                )

    # --- cloudflared/config.yml --------------------------------------------------------------
    def check_tunnel_config(self, listen_port: int | None) -> None:
        r = self.report
        r.section("cloudflared/config.yml")
        local_active = any(is_cloudflared(s) and flag_value(as_argv(s.get("command")), "--config") and self.profile_active(s) for s in self.services.values())
        if self.operator_mode and not local_active:
            print("skip  (the env file does not activate the locally-managed tunnel)")
            return
        config = self.tunnel_config
        if not r.check("config.yml is a mapping", isinstance(config, dict)):
            return
        r.check("config.yml names the tunnel (`tunnel:`)", bool(config.get("tunnel")))
        if self.operator_mode:
            r.check("config.yml tunnel is not the example UUID", config.get("tunnel") != EXAMPLE_TUNNEL_ID, "put the UUID from `cloudflared tunnel create` there")
        r.check("config.yml sets credentials-file", bool(config.get("credentials-file")))
        top_origin = config.get("originRequest") or {}
        r.check(
            "no `access` block under the top-level originRequest",
            "access" not in top_origin,
            "cloudflared ignores it there; put it on the ingress rule",
        )
        rules = config.get("ingress")
        if not r.check("ingress is a non-empty list", isinstance(rules, list) and bool(rules)):
            return
        last = rules[-1] or {}
        r.check(
            "the last ingress rule is a catch-all (no hostname, no path)",
            not last.get("hostname") and not last.get("path"),
            f"last rule is {last}",
        )
        r.check("the catch-all answers http_status:404", last.get("service") == "http_status:404", f"service is {last.get('service')!r}")
        earlier_catch_all = [index for index, rule in enumerate(rules[:-1]) if not (rule or {}).get("hostname") and not (rule or {}).get("path")]
        r.check("only the last rule is a catch-all", not earlier_catch_all, f"rules {earlier_catch_all} match everything")

        env = environment_of(self.services.get(TUNNELGATE_SERVICE, {}))
        hostnames = {h.lower() for h in comma_list(env.get("TUNNELGATE__SERVER__PUBLIC_HOSTNAMES", ""))}
        team = team_name(env.get("TUNNELGATE__ACCESS__TEAM_DOMAIN", ""))
        audiences = set(comma_list(env.get("TUNNELGATE__ACCESS__AUDIENCES", "")))
        keep_alive = parse_duration(self.setting("server.keep_alive"))
        routed = [rule for rule in rules[:-1] if isinstance(rule, dict)]
        r.check("at least one rule routes a hostname to tunnelgate", bool(routed))
        for index, rule in enumerate(routed):
            host = str(rule.get("hostname") or "")
            label = f"rule {host}" if host else f"rule #{index + 1}"
            r.check(f"{label}: hostname is one of TUNNELGATE__SERVER__PUBLIC_HOSTNAMES", host.lower() in hostnames, f"public hostnames: {sorted(hostnames)}")
            service_url = urlsplit(str(rule.get("service", "")))
            r.check(
                f"{label}: service is http://{TUNNELGATE_SERVICE}:{listen_port} (compose service and server.bind port)",
                service_url.scheme == "http" and service_url.hostname == TUNNELGATE_SERVICE and service_url.port == listen_port and service_url.path in ("", "/"),
                f"service is {rule.get('service')!r}",
            )
            origin = {**top_origin, **(rule.get("originRequest") or {})}
            access = (rule.get("originRequest") or {}).get("access") or {}
            r.check(f"{label}: originRequest.access.required is true", access.get("required") is True)
            r.check(f"{label}: access.teamName equals the team of TUNNELGATE__ACCESS__TEAM_DOMAIN", access.get("teamName") == team, f"teamName {access.get('teamName')!r} vs {team!r}")
            tags = access.get("audTag") or []
            r.check(
                f"{label}: access.audTag is a non-empty subset of TUNNELGATE__ACCESS__AUDIENCES",
                isinstance(tags, list) and bool(tags) and set(map(str, tags)) <= audiences,
                f"audTag {tags} vs audiences {sorted(audiences)}",
            )
            idle = parse_duration(origin.get("keepAliveTimeout"))
            r.check(
                f"{label}: keepAliveTimeout is set and shorter than tunnelgate's server.keep_alive ({self.setting('server.keep_alive')})",
                idle is not None and keep_alive is not None and idle < keep_alive,
                f"keepAliveTimeout is {origin.get('keepAliveTimeout')!r}",
            )
            r.check(f"{label}: chunked encoding stays on (SSE)", origin.get("disableChunkedEncoding") is not True)
            r.check(f"{label}: http2Origin is off (tunnelgate speaks plain HTTP/1.1 here)", origin.get("http2Origin") is not True)
            host_header = origin.get("httpHostHeader")
            r.check(
                f"{label}: Host reaches tunnelgate as a public hostname",
                host_header in (None, "") or str(host_header).lower() in hostnames,
                f"httpHostHeader {host_header!r} would fail tunnelgate's Host allowlist",
            )

    # --- Dockerfile, ignore files, secrets on disk -----------------------------------------------
    def check_dockerfile(self, listen_port: int | None) -> None:
        r = self.report
        r.section("Dockerfile and .dockerignore")
        instructions = dockerfile.parse_file(str(self.root / "Dockerfile"))
        stages: list[list[Any]] = []
        for instruction in instructions:
            if instruction.cmd == "FROM":
                stages.append([])
            if stages:
                stages[-1].append(instruction)
        r.check("Dockerfile is multi-stage", len(stages) >= 2, f"{len(stages)} stage(s)")
        builds = [i.value[0] for stage in stages[:-1] for i in stage if i.cmd == "RUN" and i.value and "cargo build" in i.value[0]]
        r.check(
            "a build stage runs `cargo build --release --locked`",
            any("--release" in cmd and "--locked" in cmd for cmd in builds),
            f"cargo builds: {builds}",
        )
        final = stages[-1] if stages else []

        def last(cmd: str) -> Any:
            found = [i for i in final if i.cmd == cmd]
            return found[-1] if found else None

        user = last("USER")
        user_name = user.value[0].split(":")[0] if user else ""
        r.check("the runtime stage sets a non-root USER", user_name not in ("", "0", "root"), f"USER is {user_name or 'unset'}")
        entrypoint = last("ENTRYPOINT")
        binary = entrypoint.value[0] if entrypoint and entrypoint.json and entrypoint.value else ""
        r.check("ENTRYPOINT is the tunnelgate binary (exec form)", Path(binary).name == "tunnelgate", f"ENTRYPOINT is {entrypoint.value if entrypoint else None}")
        cmd = last("CMD")
        r.check("CMD is [\"serve\"]", bool(cmd) and cmd.json and list(cmd.value) == ["serve"], f"CMD is {cmd.value if cmd else None}")
        health = last("HEALTHCHECK")
        health_argv = list(health.value) if health else []
        r.check(
            "HEALTHCHECK runs `tunnelgate healthcheck`",
            len(health_argv) >= 3 and health_argv[0] == "CMD" and health_argv[1] == binary and health_argv[2] == "healthcheck",
            f"HEALTHCHECK is {health_argv}",
        )
        compose_health = healthcheck_argv(self.services.get(TUNNELGATE_SERVICE, {})) or []
        r.check("compose healthcheck calls the same binary path as ENTRYPOINT", len(compose_health) > 1 and compose_health[1] == binary, f"{compose_health[1:2]} vs {binary!r}")
        state_dir = self.setting("state_dir")
        owner = user.value[0] if user else ""
        state_copies = [i for i in final if i.cmd == "COPY" and i.value and i.value[-1].rstrip("/") == state_dir.rstrip("/")]
        r.check(
            f"state_dir {state_dir} exists in the image, owned by the runtime user",
            any(f"--chown={owner}" in i.flags for i in state_copies),
            f"COPY into {state_dir}: {[(i.flags, i.value) for i in state_copies]}",
        )
        exposed = {port.split("/")[0] for i in final if i.cmd == "EXPOSE" for port in i.value}
        r.check(f"EXPOSE lists the MCP port {listen_port}", str(listen_port) in exposed, f"EXPOSE {sorted(exposed)}")

        ignore_path = self.root / ".dockerignore"
        patterns = {line.strip().rstrip("/") for line in ignore_path.read_text(encoding="utf-8").splitlines()} if ignore_path.is_file() else set()
        for needed in (".env", "secrets", "target", ".git"):
            r.check(f".dockerignore excludes {needed}", needed in patterns)

    def check_gitignore(self) -> None:
        r = self.report
        r.section(".gitignore")
        secret_files = [str((spec or {}).get("file", "")).removeprefix("./") for spec in (self.compose.get("secrets") or {}).values()]
        paths = [".env", ".cache/", "target/"] + [path for path in secret_files if path]
        try:
            result = subprocess.run(
                ["git", "-C", str(self.root), "check-ignore", "--no-index", *paths],
                capture_output=True, text=True, check=False,
            )
        except FileNotFoundError:
            r.check("git is available to evaluate .gitignore", False)
            return
        ignored = set(result.stdout.split())
        for path in paths:
            r.check(f"{path} is ignored by git", path in ignored, "secrets and .env must never be committed")

    def check_secret_files(self) -> None:
        """Preflight only: secret files of the active services exist and are readable by uid 65532."""
        r = self.report
        r.section("secret files (preflight)")
        needed: set[str] = set()
        for service in self.services.values():
            if self.profile_active(service):
                needed |= set(mounted_secrets(service))
        for name in sorted(needed):
            spec = (self.compose.get("secrets") or {}).get(name) or {}
            path = (self.compose_path.parent / str(spec.get("file", ""))).resolve()
            if not r.check(f"secret {name}: {path} exists and is a non-empty file", path.is_file() and path.stat().st_size > 0):
                continue
            info = path.stat()
            readable = (info.st_uid == RUNTIME_UID and info.st_mode & 0o400) or (info.st_gid == RUNTIME_UID and info.st_mode & 0o040) or info.st_mode & 0o004
            r.check(f"secret {name}: readable by uid {RUNTIME_UID} inside the container", bool(readable), f"owner {info.st_uid}:{info.st_gid}, mode {oct(info.st_mode & 0o777)}; run: chown {RUNTIME_UID}:{RUNTIME_UID} {path} && chmod 0400 {path}")
            if name not in UNTRIMMED_SECRETS:
                continue
            try:
                content = path.read_bytes()
            except PermissionError:
                print(f"skip  secret {name}: content not readable by this user (run the preflight with sudo to check it)")
                continue
            r.check(f"secret {name}: no trailing newline or surrounding whitespace", content == content.strip(), "write it with printf '%s'")

    def check_binary(self, binary: Path) -> None:
        """The real configuration loader accepts the compose environment, and its effective
        values are the ones this script assumed."""
        r = self.report
        r.section(f"tunnelgate check-config with the compose environment ({binary})")
        service = self.services.get(TUNNELGATE_SERVICE, {})
        env = environment_of(service)
        with tempfile.TemporaryDirectory(prefix="tunnelgate-secrets-") as tmp:
            for name, target in mounted_secrets(service).items():
                placeholder = Path(tmp) / name
                placeholder.write_text("placeholder-secret", encoding="utf-8")
                env = {key: str(placeholder) if value == target else value for key, value in env.items()}
            # Paths inside bind-mounted repository files or directories (e.g. TUNNELGATE_CONFIG)
            # are read from the repository.
            for source, target, _ in volume_mounts(service):
                if not source.startswith("."):
                    continue
                host = (self.compose_path.parent / source).resolve()
                def translate(value: str) -> str:
                    if value == target and host.is_file():
                        return str(host)
                    if host.is_dir() and value.startswith(target.rstrip("/") + "/"):
                        return str(host / value[len(target.rstrip("/")) + 1:])
                    return value
                env = {key: translate(value) for key, value in env.items()}
            try:
                result = subprocess.run(
                    [str(binary), "check-config"],
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                    capture_output=True, text=True, timeout=60, check=False,
                )
            except OSError as error:
                r.check("tunnelgate check-config runs", False, str(error))
                return
        if not r.check("tunnelgate check-config accepts the compose environment", result.returncode == 0, (result.stderr or result.stdout).strip()[-800:]):
            return
        try:
            effective = tomllib.loads(result.stdout)
        except tomllib.TOMLDecodeError as error:
            r.check("check-config prints the effective configuration as TOML", False, str(error))
            return
        for key in ("server.bind", "admin.bind", "state_dir", "upstream.profile", "server.keep_alive", "server.sse_keep_alive"):
            node: Any = effective
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            assumed = self.setting(key)
            same = parse_duration(node) == parse_duration(assumed) if key.endswith("keep_alive") else str(node) == assumed
            r.check(f"effective {key} is what this script assumed ({assumed})", same, f"tunnelgate says {node!r}; update APP_DEFAULTS or the bundle")

    def run(self, binary: Path | None = None) -> int:
        self.check_env_file()
        self.check_schema()
        self.check_compose_common()
        listen_port, _ = self.check_tunnelgate()
        self.check_ha()
        self.check_cloudflared()
        self.check_tunnel_config(listen_port)
        self.check_dockerfile(listen_port)
        if self.operator_mode:
            self.check_secret_files()
        else:
            self.check_gitignore()
        if binary is not None:
            self.check_binary(binary)
        else:
            print("\nskip  tunnelgate check-config against the compose environment (no --binary given)")
        r = self.report
        print()
        for note in r.notes:
            print(f"note: {note}")
        if r.failures:
            print(f"{len(r.failures)} check(s) failed:")
            for name in r.failures:
                print(f"  - {name}")
        print(f"deployment: {r.passed} passed, {len(r.failures)} failed")
        return 1 if r.failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent, help="repository root (default: this script's parent directory)")
    parser.add_argument("--env-file", type=Path, help="env file to check against (default: .env.example); anything else enables the preflight checks")
    parser.add_argument("--binary", type=Path, help="a tunnelgate binary: run its check-config with the compose environment")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    env_file = (args.env_file or root / ".env.example").resolve()
    operator_mode = env_file != (root / ".env.example").resolve()
    try:
        for required in (root / "docker-compose.yml", root / "cloudflared" / "config.yml", root / "Dockerfile", env_file):
            if not required.is_file():
                raise InputError(f"{required} does not exist")
        checker = Checker(root, env_file, operator_mode)
    except (InputError, OSError) as error:
        print(f"check_deployment: {error}", file=sys.stderr)
        return 2
    return checker.run(args.binary.resolve() if args.binary else None)


if __name__ == "__main__":
    sys.exit(main())
