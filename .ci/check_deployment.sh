#!/usr/bin/env bash
# Static checks of the deployment bundle (docker-compose.yml, .env.example,
# cloudflared/config.yml, Dockerfile): creates a venv under .cache/, installs
# .ci/requirements-deploy.txt from PyPI, runs .ci/check_deployment.py and (without
# arguments) its self-test, .ci/test_check_deployment.py.
# Arguments are passed through, e.g. `--env-file .env` for a preflight on a deploy host.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.cache/deploy-venv"
requirements="$root/.ci/requirements-deploy.txt"
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
# Reinstall only when the requirements change.
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi

# TUNNELGATE_BIN=target/release/tunnelgate also runs that binary's check-config with the
# compose environment (see check_deployment.py --binary).
binary=()
if [ -n "${TUNNELGATE_BIN:-}" ]; then
    binary=(--binary "$TUNNELGATE_BIN")
fi

status=0
"$venv/bin/python" "$root/.ci/check_deployment.py" --root "$root" "${binary[@]}" "$@" || status=$?
# In CI (no arguments), also prove that each check can fail: .ci/test_check_deployment.py
# breaks copies of the bundle one way at a time and expects the matching failure.
if [ "$#" -eq 0 ]; then
    echo
    "$venv/bin/python" "$root/.ci/test_check_deployment.py" || status=$?
fi
exit "$status"
