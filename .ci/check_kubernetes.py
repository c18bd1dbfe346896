#!/usr/bin/env python3
"""Checks of deploy/kubernetes/: the manifests against the Kubernetes 1.33 schemas
(kubernetes-validate, offline, strict), then our own rules for the security settings the
deployment promises (docs/scaling.md, docs/deployment.md "Kubernetes"), and with
--self-test, proof that each rule can fail: copies of the directory broken one way at a time.

    .cache/kubernetes-venv/bin/python .ci/check_kubernetes.py [--dir deploy/kubernetes] [--binary target/debug/tunnelgate] [--self-test]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Iterable

import yaml

KUBERNETES_VERSION = "1.33.0"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "deploy" / "kubernetes"


class Report:
    def __init__(self, quiet: bool = False) -> None:
        self.passed = 0
        self.failures: list[str] = []
        self.quiet = quiet

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            if not self.quiet:
                print(f"PASS  {name}")
        else:
            self.failures.append(name)
            if not self.quiet:
                print(f"FAIL  {name}" + (f": {detail}" if detail else ""))
        return ok


def load_documents(directory: Path) -> tuple[dict, list[tuple[str, dict]]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    documents = []
    for name in kustomization.get("resources", []):
        path = directory / name
        if path.is_file():
            for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if document:
                    documents.append((name, document))
    return kustomization, documents


def of_kind(documents: list[tuple[str, dict]], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in documents if doc.get("kind") == kind}


def pod_spec(deployment: dict) -> dict:
    return deployment.get("spec", {}).get("template", {}).get("spec", {})


def labels_match(selector: dict, labels: dict) -> bool:
    wanted = selector.get("matchLabels") or {}
    return bool(wanted) and all(labels.get(key) == value for key, value in wanted.items())


def probe_target(probe: dict | None, container: dict) -> tuple[str | None, int | None]:
    if not probe or "httpGet" not in probe:
        return None, None
    port = probe["httpGet"].get("port")
    if isinstance(port, str):
        port = next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == port), None)
    return probe["httpGet"].get("path"), port


def port_of(bind: str) -> int | None:
    try:
        return int(bind.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


def schema_check(report: Report, directory: Path, files: Iterable[str]) -> None:
    validator = Path(sys.executable).parent / "kubernetes-validate"
    argv = [str(validator), "-k", KUBERNETES_VERSION, "--strict", "--quiet", *[str(directory / f) for f in files]]
    # No network namespace when the kernel lets us make one: proves the schemas are bundled.
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        argv = ["unshare", "-rn", *argv]
    result = subprocess.run(argv, capture_output=True, text=True)
    report.check(
        f"every manifest validates against the Kubernetes {KUBERNETES_VERSION} schemas (kubernetes-validate --strict, offline)",
        result.returncode == 0,
        (result.stdout + result.stderr).strip()[-2000:],
    )


def check(directory: Path, binary: Path | None = None, quiet: bool = False) -> Report:
    r = Report(quiet)
    kustomization, documents = load_documents(directory)
    resources = kustomization.get("resources", [])
    on_disk = sorted(p.name for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
    r.check("kustomization.yaml lists every manifest in the directory", sorted(resources) == on_disk, f"listed {sorted(resources)}, on disk {on_disk}")
    r.check("kustomization.yaml sets the namespace", bool(kustomization.get("namespace")))
    schema_check(r, directory, [f for f in resources if (directory / f).is_file()])
    r.check("a Namespace is part of the bundle", bool(of_kind(documents, "Namespace")))
    r.check("no Secret is in the bundle (the operator creates them)", not of_kind(documents, "Secret"))

    deployments = of_kind(documents, "Deployment")
    for name, deployment in deployments.items():
        spec = pod_spec(deployment)
        pod_security = spec.get("securityContext") or {}
        r.check(f"{name}: no service-account token mounted", spec.get("automountServiceAccountToken") is False)
        r.check(f"{name}: seccomp RuntimeDefault", (pod_security.get("seccompProfile") or {}).get("type") == "RuntimeDefault")
        r.check(f"{name}: no host namespaces", not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")))
        for container in spec.get("containers", []):
            label = f"{name}/{container.get('name')}"
            security = container.get("securityContext") or {}
            r.check(f"{label}: runs as non-root", security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True and security.get("runAsUser", pod_security.get("runAsUser", 0)) != 0)
            r.check(f"{label}: read-only root filesystem", security.get("readOnlyRootFilesystem") is True)
            r.check(f"{label}: all capabilities dropped", "ALL" in ((security.get("capabilities") or {}).get("drop") or []))
            r.check(f"{label}: no privilege escalation", security.get("allowPrivilegeEscalation") is False and not security.get("privileged"))
            resources_ = container.get("resources") or {}
            complete = all(key in (resources_.get(kind) or {}) for kind in ("requests", "limits") for key in ("cpu", "memory"))
            r.check(f"{label}: cpu and memory requests and limits", complete, f"resources are {resources_}")
            image = str(container.get("image", ""))
            pinned = image == "tunnelgate" or (":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"))
            r.check(f"{label}: image pinned to a version ({image})", pinned)
            env_literals = [e["name"] for e in container.get("env", []) if "value" in e and any(w in e["name"] for w in ("TOKEN", "SECRET", "PASSWORD")) and not e["name"].endswith("_FILE")]
            r.check(f"{label}: no secret as a literal environment value", not env_literals, f"found {env_literals}")
    images = {image.get("name"): image for image in kustomization.get("images", [])}
    tag = str((images.get("tunnelgate") or {}).get("newTag", ""))
    r.check("kustomization.yaml pins the tunnelgate image tag", bool(tag) and tag != "latest", f"newTag is {tag!r}")

    # --- tunnelgate --------------------------------------------------------------------------
    configmaps = of_kind(documents, "ConfigMap")
    toml_text = next((cm.get("data", {}).get("tunnelgate.toml") for cm in configmaps.values() if "tunnelgate.toml" in cm.get("data", {})), None)
    settings: dict[str, Any] = {}
    if r.check("a ConfigMap carries tunnelgate.toml", toml_text is not None):
        try:
            settings = tomllib.loads(toml_text)
            r.check("tunnelgate.toml is TOML", True)
        except tomllib.TOMLDecodeError as error:
            r.check("tunnelgate.toml is TOML", False, str(error))
    server = settings.get("server", {})
    mcp_port = port_of(server.get("bind", "0.0.0.0:8080"))
    admin_port = port_of(settings.get("admin", {}).get("bind", "0.0.0.0:9090"))
    r.check("tunnelgate.toml: stateless mode (stateful cannot be shared by replicas)", server.get("mode", "stateless") == "stateless")
    r.check("tunnelgate.toml: the upstream token comes from a file, not the ConfigMap", "token" not in settings.get("upstream", {}) and "token_file" in settings.get("upstream", {}))
    cluster = settings.get("cluster", {})
    tunnelgate = deployments.get("tunnelgate")
    if r.check("Deployment tunnelgate exists", tunnelgate is not None):
        replicas = tunnelgate["spec"].get("replicas", 1)
        r.check("tunnelgate: at least 2 replicas", replicas >= 2, f"replicas is {replicas}")
        r.check("tunnelgate.toml: replicas share a Redis ([cluster] redis_url or redis_url_file)", bool(cluster.get("redis_url") or cluster.get("redis_url_file")))
        r.check("tunnelgate.toml: cluster.expected_replicas equals the Deployment's replicas", cluster.get("expected_replicas", 2) == replicas, f"{cluster.get('expected_replicas')} vs {replicas}")
        spec = pod_spec(tunnelgate)
        container = (spec.get("containers") or [{}])[0]
        ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
        r.check(f"tunnelgate: container ports are server.bind ({mcp_port}) and admin.bind ({admin_port})", sorted(ports.values()) == sorted([mcp_port, admin_port]), f"ports {ports}")
        r.check("tunnelgate: liveness probe GETs /healthz on the admin port", probe_target(container.get("livenessProbe"), container) == ("/healthz", admin_port))
        r.check("tunnelgate: readiness probe GETs /readyz on the admin port", probe_target(container.get("readinessProbe"), container) == ("/readyz", admin_port))
        spread = spec.get("topologySpreadConstraints") or []
        r.check("tunnelgate: replicas spread over nodes (topologySpreadConstraints on kubernetes.io/hostname)", any(c.get("topologyKey") == "kubernetes.io/hostname" for c in spread))
        rolling = (tunnelgate["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        r.check("tunnelgate: rolling update never drops below the replica count (maxUnavailable 0)", rolling.get("maxUnavailable") == 0)
        pod_labels = tunnelgate["spec"]["template"]["metadata"].get("labels", {})
        pdbs = [pdb for pdb in of_kind(documents, "PodDisruptionBudget").values() if labels_match(pdb["spec"].get("selector", {}), pod_labels)]
        r.check("tunnelgate: a PodDisruptionBudget keeps at least one replica", any(int(pdb["spec"].get("minAvailable", 0)) >= 1 for pdb in pdbs))
        services = [svc for svc in of_kind(documents, "Service").values() if svc["spec"].get("selector") and all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())]
        exposed = sorted({p.get("port") for svc in services for p in svc["spec"].get("ports", [])})
        targets = sorted({ports.get(p.get("targetPort"), p.get("targetPort")) for svc in services for p in svc["spec"].get("ports", [])})
        r.check("tunnelgate: one ClusterIP Service, for the MCP port only (admin never exposed)", len(services) == 1 and services[0]["spec"].get("type", "ClusterIP") == "ClusterIP" and exposed == [mcp_port] and targets == [mcp_port], f"services expose {exposed} -> {targets}")

    # --- cloudflared -------------------------------------------------------------------------
    cloudflared = deployments.get("cloudflared")
    if r.check("Deployment cloudflared exists", cloudflared is not None):
        replicas = cloudflared["spec"].get("replicas", 1)
        r.check("cloudflared: at least 2 replicas", replicas >= 2, f"replicas is {replicas}")
        spec = pod_spec(cloudflared)
        container = (spec.get("containers") or [{}])[0]
        env = {e["name"]: e for e in container.get("env", [])}
        mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
        secret_volumes = {v["name"] for v in spec.get("volumes", []) if "secret" in v}
        token_file = (env.get("TUNNEL_TOKEN_FILE") or {}).get("value", "")
        from_file = any(token_file.startswith(mounts[name].rstrip("/") + "/") for name in secret_volumes if name in mounts)
        from_ref = "secretKeyRef" in ((env.get("TUNNEL_TOKEN") or {}).get("valueFrom") or {})
        r.check("cloudflared: the tunnel token comes from a Secret", from_file or from_ref, f"TUNNEL_TOKEN_FILE={token_file!r}")
        args = [str(a) for a in container.get("args", []) + container.get("command", [])]
        metrics = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--metrics"), "")
        metrics_port = port_of(metrics)
        r.check("cloudflared: readiness probe GETs /ready on its metrics port", probe_target(container.get("readinessProbe"), container) == ("/ready", metrics_port) and metrics_port is not None, f"--metrics {metrics!r}")
        r.check("cloudflared: no --token on the command line", "--token" not in args)

    # --- network policies --------------------------------------------------------------------
    policies = list(of_kind(documents, "NetworkPolicy").values())
    r.check(
        "NetworkPolicy: default deny of ingress and egress for every pod",
        any(p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"} and not p["spec"].get("ingress") and not p["spec"].get("egress") for p in policies),
    )
    selects = lambda p, app: (p["spec"].get("podSelector") or {}).get("matchLabels", {}).get("app.kubernetes.io/name") == app  # noqa: E731
    peers_of = lambda rule, key: [peer for peer in rule.get(key, [])]  # noqa: E731
    tg_policies = [p for p in policies if selects(p, "tunnelgate")]
    ingress = [rule for p in tg_policies for rule in p["spec"].get("ingress", [])]
    only_cloudflared = bool(ingress) and all(
        rule.get("from") and all(set(peer) == {"podSelector"} and peer["podSelector"].get("matchLabels") == {"app.kubernetes.io/name": "cloudflared"} for peer in peers_of(rule, "from"))
        and [(port.get("port"), port.get("protocol", "TCP")) for port in rule.get("ports", [])] == [(mcp_port, "TCP")]
        for rule in ingress
    )
    r.check(f"NetworkPolicy: only cloudflared may reach tunnelgate, on {mcp_port} only", only_cloudflared, f"ingress rules {ingress}")
    egress = [rule for p in tg_policies for rule in p["spec"].get("egress", [])]

    def egress_kind(rule: dict) -> str | None:
        ports = {(port.get("port"), port.get("protocol", "TCP")) for port in rule.get("ports", [])}
        peers = rule.get("to", [])
        if not peers or not ports:
            return None
        if ports <= {(53, "UDP"), (53, "TCP")}:
            return "dns"
        if ports == {(6379, "TCP")} and all((peer.get("podSelector") or {}).get("matchLabels") == {"app.kubernetes.io/name": "redis"} for peer in peers):
            return "redis"
        if ports == {(443, "TCP")}:
            return "https"
        return None

    kinds = [egress_kind(rule) for rule in egress]
    r.check("NetworkPolicy: tunnelgate egress only to DNS, Redis and HTTPS (upstream, Cloudflare)", bool(kinds) and None not in kinds and {"dns", "https"} <= set(kinds), f"egress kinds {kinds}")
    redis_ingress = [rule for p in policies if selects(p, "redis") for rule in p["spec"].get("ingress", [])]
    r.check(
        "NetworkPolicy: only tunnelgate may reach Redis",
        all(all((peer.get("podSelector") or {}).get("matchLabels") == {"app.kubernetes.io/name": "tunnelgate"} and set(peer) == {"podSelector"} for peer in rule.get("from", [{}])) for rule in redis_ingress),
        f"ingress rules {redis_ingress}",
    )
    cf_ingress = [rule for p in policies if selects(p, "cloudflared") for rule in p["spec"].get("ingress", [])]
    r.check("NetworkPolicy: nothing may connect to cloudflared", not cf_ingress, f"ingress rules {cf_ingress}")

    if binary is not None and toml_text is not None:
        with tempfile.TemporaryDirectory() as scratch:
            token = Path(scratch) / "token"
            token.write_text("k8s-check-placeholder\n", encoding="utf-8")
            local = toml_text.replace(settings.get("upstream", {}).get("token_file", "\0"), str(token))
            config = Path(scratch) / "tunnelgate.toml"
            config.write_text(local, encoding="utf-8")
            result = subprocess.run([str(binary), "check-config", "--config", str(config)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
            r.check("tunnelgate check-config accepts the ConfigMap's tunnelgate.toml", result.returncode == 0, result.stderr.strip()[-1000:])
    return r


# --- self-test: each rule can fail ---------------------------------------------------------------
MUTATIONS: list[tuple[str, str, str, str, str]] = [
    # (case, file, old, new, expected failing check substring)
    ("unknown field", "tunnelgate-service.yaml", "  type: ClusterIP\n", "  type: ClusterIP\n  exposeEverything: true\n", "validates against the Kubernetes"),
    ("one replica", "tunnelgate-deployment.yaml", "  replicas: 2\n", "  replicas: 1\n", "tunnelgate: at least 2 replicas"),
    ("root filesystem writable", "tunnelgate-deployment.yaml", "            readOnlyRootFilesystem: true\n", "            readOnlyRootFilesystem: false\n", "tunnelgate/tunnelgate: read-only root filesystem"),
    ("capabilities kept", "cloudflared-deployment.yaml", '              drop: ["ALL"]\n', '              drop: ["NET_RAW"]\n', "cloudflared/cloudflared: all capabilities dropped"),
    ("runs as root", "redis.yaml", "        runAsUser: 999\n", "        runAsUser: 0\n", "redis/redis: runs as non-root"),
    ("no limits", "tunnelgate-deployment.yaml", "            limits:\n              cpu: \"2\"\n              memory: 256Mi\n", "", "cpu and memory requests and limits"),
    ("liveness on the MCP port", "tunnelgate-deployment.yaml", "          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: admin\n", "          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: mcp\n", "liveness probe GETs /healthz on the admin port"),
    ("readiness on /healthz", "tunnelgate-deployment.yaml", "              path: /readyz\n", "              path: /healthz\n", "readiness probe GETs /readyz"),
    ("admin port in the Service", "tunnelgate-service.yaml", "      protocol: TCP\n", "      protocol: TCP\n    - name: admin\n      port: 9090\n      targetPort: admin\n      protocol: TCP\n", "for the MCP port only"),
    ("no topology spread", "tunnelgate-deployment.yaml", "          topologyKey: kubernetes.io/hostname\n", "          topologyKey: kubernetes.io/os\n", "spread over nodes"),
    ("no PDB", "tunnelgate-pdb.yaml", "  minAvailable: 1\n", "  minAvailable: 0\n", "PodDisruptionBudget keeps at least one"),
    ("cloudflared token literal", "cloudflared-deployment.yaml", "            - name: TUNNEL_TOKEN_FILE\n              value: /run/secrets/cloudflared-tunnel/token\n", "            - name: TUNNEL_TOKEN\n              value: eyJhIjoiYiJ9\n", "tunnel token comes from a Secret"),
    ("cloudflared readiness elsewhere", "cloudflared-deployment.yaml", "              path: /ready\n              port: metrics\n            periodSeconds: 10\n", "              path: /metrics\n              port: metrics\n            periodSeconds: 10\n", "readiness probe GETs /ready"),
    ("any pod may reach tunnelgate", "networkpolicies.yaml", "    - from:\n        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: cloudflared\n", "    - from:\n        - podSelector: {}\n", "only cloudflared may reach tunnelgate"),
    ("tunnelgate egress anywhere", "networkpolicies.yaml", "        - protocol: TCP\n          port: 443\n---", "        - protocol: TCP\n          port: 443\n        - protocol: TCP\n          port: 22\n---", "tunnelgate egress only to DNS, Redis and HTTPS"),
    ("no default deny", "networkpolicies.yaml", "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n", "  podSelector: {}\n  policyTypes: [Ingress]\n", "default deny"),
    ("stateful mode", "configmap.yaml", '    mode = "stateless"\n', '    mode = "stateful"\n', "stateless mode"),
    ("expected replicas off", "configmap.yaml", "    expected_replicas = 2\n", "    expected_replicas = 3\n", "expected_replicas equals"),
    ("manifest not listed", "kustomization.yaml", "  - cloudflared-pdb.yaml\n", "", "lists every manifest"),
    ("image unpinned", "redis.yaml", "image: redis:7.4.6-alpine", "image: redis:latest", "image pinned to a version"),
]


def self_test(directory: Path) -> int:
    passed, failed = 0, 0
    baseline = check(directory, quiet=True)
    if baseline.failures:
        print(f"FAIL  self-test baseline: the untouched bundle fails {baseline.failures}")
        return 1
    for case, file, old, new, expected in MUTATIONS:
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "kubernetes"
            shutil.copytree(directory, copy)
            path = copy / file
            text = path.read_text(encoding="utf-8")
            if old not in text:
                print(f"FAIL  {case}: mutation target not found in {file}: {old!r}")
                failed += 1
                continue
            path.write_text(text.replace(old, new, 1), encoding="utf-8")
            report = check(copy, quiet=True)
            seen = [name for name in report.failures if expected in name]
            if seen:
                passed += 1
                print(f"PASS  {case} -> {seen[0]}")
            else:
                failed += 1
                print(f"FAIL  {case}: expected a failure naming {expected!r}; saw {report.failures}")
    print(f"kubernetes self-test: {passed} passed, {failed} failed")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--binary", type=Path, help="a tunnelgate binary: also run its check-config on the ConfigMap's tunnelgate.toml")
    parser.add_argument("--self-test", action="store_true", help="also prove that each rule can fail")
    args = parser.parse_args()
    report = check(args.dir.resolve(), args.binary.resolve() if args.binary else None)
    print(f"kubernetes: {report.passed} passed, {len(report.failures)} failed")
    status = 1 if report.failures else 0
    if args.self_test:
        print()
        status |= self_test(args.dir.resolve())
    return status


if __name__ == "__main__":
    sys.exit(main())
