#!/usr/bin/env python3
"""Lints and renders the homestead Helm chart with the real Helm library (helm-sdkpy).

    python3 tests/chart/helm_chart.py lint             # lint the chart, then render every scenario
    python3 tests/chart/helm_chart.py render [JSON]    # print the manifests for values JSON
    python3 tests/chart/helm_chart.py install KUBECONFIG NAMESPACE [JSON] [--no-wait]
    python3 tests/chart/helm_chart.py uninstall KUBECONFIG NAMESPACE
    python3 tests/chart/helm_chart.py helm install NAME CHART [-n NS] [--create-namespace] \
        [--set KEY=VALUE]... [--set-file KEY=PATH]...      # the helm CLI's words, for the
    python3 tests/chart/helm_chart.py helm uninstall NAME [-n NS]  # README's commands

helm-sdkpy exposes Helm's Lint but no `helm template`. Lint renders every template with
Helm's engine, so `render` lints a copy of the chart that carries one extra template:
it merges the override values into .Values, renders each of the chart's templates with
`tpl` (same engine, same named templates) and hands the result out through `fail`, which
in lint mode is logged instead of aborting. Every other `fail` or `required` logged while
rendering is a validation error of the chart and is reported as such.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import sys
import tempfile

CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "manifests", "chart", "homestead")
CHART = os.path.normpath(CHART)

try:
    import helm_sdkpy as helm
except ImportError:  # pragma: no cover - reported, not hidden
    sys.exit("helm-sdkpy is not installed: pip install --ignore-requires-python helm-sdkpy")

# Severity codes of Helm's lint support package.
SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}

DUMP_TEMPLATE = r"""{{- $_ := mergeOverwrite .Values (fromJson (.Files.Get "zz-render/overrides.json")) }}
{{- $docs := list }}
{{- range $path, $_ := $.Files.Glob "zz-render/templates/*.yaml" }}
{{- $docs = append $docs (printf "# Source: %s\n%s" (base $path) (tpl ($.Files.Get $path) $)) }}
{{- end }}
{{- fail (printf "HOMESTEAD-RENDERED:%s" (join "\n---\n" $docs | b64enc)) }}
"""

# The scenarios `lint` renders; each must render without a validation error.
SCENARIOS = {
    "defaults": {},
    "self": {"certs": {"mode": "self"}},
    "certManager": {"certs": {"mode": "certManager"}},
    "certManager-existing-issuer": {
        "certs": {"mode": "certManager", "certManager": {"issuer": {"create": False, "kind": "ClusterIssuer", "name": "site-ca"}}}
    },
    "external": {
        "certs": {"mode": "external", "secretName": "site-webhook-tls", "external": {"caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}
    },
    "url": {
        "webhook": {"url": "https://192.0.2.10:8443", "inCluster": False},
        "certs": {"mode": "external", "external": {"caBundle": "LS0tLS1CRUdJTg=="}},
    },
    "custom-roles": {"config": {"controller": {"rbac": {"userClusterRole": "homestead-user"}}}, "rbac": {"extraBindableClusterRoles": ["view"]}},
}

# Values that must be refused, with a fragment of the message.
REFUSED = {
    "unknown cert mode": ({"certs": {"mode": "vault"}}, "certs.mode must be one of"),
    "external without CA": ({"certs": {"mode": "external", "secretName": "x"}}, "certs.external.caBundle is required"),
    "external without Secret": ({"certs": {"mode": "external", "external": {"caBundle": "eA=="}}}, "certs.secretName"),
    "no server at all": ({"webhook": {"inCluster": False}}, "webhook.inCluster=false needs webhook.url"),
    "plain http url": ({"webhook": {"url": "http://127.0.0.1:8443"}}, "webhook.url must start with https://"),
    "timeout too long": ({"webhook": {"timeoutSeconds": 31}}, "timeoutSeconds must be between 1 and 30"),
}


class CapturedStderr:
    """Captures what the Go library writes to file descriptor 2."""

    def __enter__(self):
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self.text = self._file.read().decode("utf-8", "replace")
        self._file.close()
        return False


def lint(chart: str) -> tuple[dict, str]:
    config = helm.Configuration(namespace="homestead")
    with CapturedStderr() as captured:
        result = asyncio.run(helm.Lint(config).run(chart))
    return result, captured.text


def lint_problems(result: dict) -> list[str]:
    problems = []
    for message in result.get("Messages") or []:
        severity = message.get("Severity", 0)
        if severity >= 2:
            problems.append(f"{SEVERITY.get(severity, severity)} in {message.get('Path')}")
    if result.get("Errors"):
        problems.append(f"{len(result['Errors'])} lint error(s)")
    return problems


def log_failures(log: str) -> list[str]:
    """`fail`/`required` messages Helm logged in lint mode, except the render dump."""
    failures = []
    for line in log.splitlines():
        if "HOMESTEAD-RENDERED:" in line:
            continue
        if "funcMap" in line or "required" in line.lower() or " ERROR " in line or " WARN " in line:
            failures.append(line.strip())
    return failures


def render(overrides: dict) -> tuple[str, list[str]]:
    """Renders the chart with `overrides` merged into its values: (manifests, errors)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "homestead")
        shutil.copytree(CHART, copy)
        os.makedirs(os.path.join(copy, "zz-render", "templates"))
        for name in sorted(os.listdir(os.path.join(CHART, "templates"))):
            if name.endswith(".yaml"):
                shutil.copy(os.path.join(CHART, "templates", name), os.path.join(copy, "zz-render", "templates", name))
        with open(os.path.join(copy, "zz-render", "overrides.json"), "w") as f:
            json.dump(overrides, f)
        with open(os.path.join(copy, "templates", "zz-render.yaml"), "w") as f:
            f.write(DUMP_TEMPLATE)
        result, log = lint(copy)
    match = re.search(r"HOMESTEAD-RENDERED:([A-Za-z0-9+/=]*)", log)
    errors = log_failures(log)
    if not match:
        errors.append("the chart did not render: " + "; ".join(lint_problems(result) or [log.strip()]))
        return "", errors
    text = base64.b64decode(match.group(1)).decode("utf-8")
    # Drop documents that rendered empty (disabled templates).
    docs = [d for d in text.split("\n---\n") if any(l.strip() and not l.startswith("#") for l in d.splitlines())]
    return "---\n" + "\n---\n".join(d.strip("\n") for d in docs) + "\n", errors


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def command_lint() -> int:
    failed = 0
    result, log = lint(CHART)
    problems = lint_problems(result) + log_failures(log)
    for p in problems:
        print(f"chart lint: {p}")
    failed += bool(problems)
    base = {"namespaceOverride": "homestead", "fullnameOverride": "homestead"}
    for name, overrides in SCENARIOS.items():
        text, errors = render(deep_merge(base, overrides))
        ok = not errors and "kind: ValidatingWebhookConfiguration" in text
        print(f"chart render {name}: {'ok' if ok else 'FAILED'}")
        for e in errors:
            print(f"  {e}")
        failed += not ok
    for name, (overrides, fragment) in REFUSED.items():
        _, errors = render(deep_merge(base, overrides))
        ok = any(fragment in e for e in errors)
        print(f"chart refuses {name}: {'ok' if ok else 'FAILED (accepted)'}")
        failed += not ok
    total = 1 + len(SCENARIOS) + len(REFUSED)
    print(f"chart: {total - failed} passed, {failed} failed")
    return 1 if failed else 0


def command_render(args: list[str]) -> int:
    overrides = json.loads(args[0]) if args else {}
    text, errors = render(overrides)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        return 1
    sys.stdout.write(text)
    return 0


def install(kubeconfig: str, namespace: str, release: str, chart: str, values: dict, wait: bool) -> int:
    config = helm.Configuration(namespace=namespace, kubeconfig=kubeconfig)
    result = asyncio.run(
        helm.Install(config).run(release, chart, values=values, create_namespace=True, wait=wait, timeout=300)
    )
    print(json.dumps({"name": result.get("name"), "version": result.get("version")}))
    return 0


def uninstall(kubeconfig: str, namespace: str, release: str) -> int:
    config = helm.Configuration(namespace=namespace, kubeconfig=kubeconfig)
    asyncio.run(helm.Uninstall(config).run(release, wait=True, timeout=300))
    return 0


def command_install(args: list[str]) -> int:
    wait = "--no-wait" not in args
    args = [a for a in args if a != "--no-wait"]
    kubeconfig, namespace = args[0], args[1]
    values = json.loads(args[2]) if len(args) > 2 else {}
    return install(kubeconfig, namespace, "homestead", CHART, values, wait)


def command_uninstall(args: list[str]) -> int:
    return uninstall(args[0], args[1], "homestead")


def set_value(values: dict, key: str, value) -> None:
    """Sets dotted `key` in `values` as `helm --set` does (no list or escape syntax)."""
    *parents, last = key.split(".")
    for part in parents:
        values = values.setdefault(part, {})
    values[last] = value


def parse_scalar(text: str):
    """A `--set` value: true/false and integers are typed, as Helm types them."""
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return text


def command_helm(args: list[str]) -> int:
    """The few helm CLI words the README uses, over the same library (no helm binary)."""
    kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    namespace, values, positional = "default", {}, []
    words = iter(args)
    for word in words:
        if word in ("-n", "--namespace"):
            namespace = next(words)
        elif word == "--create-namespace":
            pass  # install always creates it
        elif word == "--set":
            key, _, value = next(words).partition("=")
            set_value(values, key, parse_scalar(value))
        elif word == "--set-file":
            key, _, path = next(words).partition("=")
            with open(path, encoding="utf-8") as f:
                set_value(values, key, f.read())
        elif word.startswith("-"):
            print(f"helm: {word} is not supported here", file=sys.stderr)
            return 2
        else:
            positional.append(word)
    if positional[:1] == ["install"] and len(positional) == 3:
        return install(kubeconfig, namespace, positional[1], positional[2], values, wait=True)
    if positional[:1] == ["uninstall"] and len(positional) == 2:
        return uninstall(kubeconfig, namespace, positional[1])
    print(f"helm: unsupported command {positional}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    commands = {
        "lint": lambda _: command_lint(),
        "render": command_render,
        "install": command_install,
        "uninstall": command_uninstall,
        "helm": command_helm,
    }
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
