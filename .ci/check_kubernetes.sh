#!/usr/bin/env bash
# Offline checks of deploy/kubernetes/: installs .ci/requirements-kubernetes.txt (PyPI
# kubernetes-validate and its dependencies, pinned; the Kubernetes schemas come inside the
# package) into .cache/kubernetes-venv, then runs .ci/check_kubernetes.py: strict schema
# validation against Kubernetes 1.33 (in a network namespace of its own when `unshare -rn`
# works, which proves no schema is downloaded), our security rules, and their self-test.
# TUNNELGATE_BIN=target/debug/tunnelgate also runs that binary's check-config on the
# ConfigMap's tunnelgate.toml.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.cache/kubernetes-venv"
requirements="$root/.ci/requirements-kubernetes.txt"
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi

binary=()
if [ -n "${TUNNELGATE_BIN:-}" ]; then
    binary=(--binary "$TUNNELGATE_BIN")
fi
"$venv/bin/python" "$root/.ci/check_kubernetes.py" --dir "$root/deploy/kubernetes" "${binary[@]}" --self-test "$@"
