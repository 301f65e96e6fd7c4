"""The Kubernetes manifests under ``deploy/k8s/``, checked as a cluster would check them (no cluster here):

- every document validates, strictly (no unknown field), against the Kubernetes JSON schemas of each version
  from the oldest still supported by the major clouds to the newest bundled (``kubernetes-validate``);
- and as an operator finds out the hard way: each Deployment's probes reach a port its container declares, which
  is the port the process binds (the ConfigMap's setting for it) on the pod's address, not loopback; every
  ConfigMap key is a setting our processes read; the commands are our entry points; the Service and the budget
  select pods that exist; the autoscaler scales the worker on the backlog metric the worker exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from observability.metrics import GAUGES
from settings import ROOT, Settings

K8S = ROOT / "deploy" / "k8s"
#: the oldest minor still offered by the major managed clouds, and the newest the schemas bundle
VERSIONS = ("1.30.0", "1.33.0", "1.37.0")
#: settings the SDK's environment configuration reads (not fields of ours)
TEMPORAL_ENV = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE",
                "TEMPORAL_CONFIG_FILE"}


def documents() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((path, doc))
    return found


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _path, doc in documents() if doc["kind"] == kind]


def config() -> dict[str, str]:
    (revops,) = [c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "revops-config"]
    return dict(revops["data"])


def deployment(name: str) -> dict[str, Any]:
    (found,) = [d for d in of_kind("Deployment") if d["metadata"]["name"] == name]
    return found


def test_the_manifests_exist() -> None:
    kinds = sorted(doc["kind"] for _path, doc in documents())
    assert kinds.count("Deployment") == 2 and "HorizontalPodAutoscaler" in kinds and "Service" in kinds, kinds


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_strictly_against_the_kubernetes_schemas(version: str) -> None:
    invalid = []
    for path, doc in documents():
        try:
            checked = kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            invalid.append(f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at "
                           f"{'/'.join(map(str, exc.path))}")
        else:
            assert checked == version.rsplit(".", 1)[0]  # checked against that version's schemas
    assert not invalid, f"invalid for Kubernetes {version}: {invalid}"


def test_a_broken_manifest_is_refused_by_the_same_check() -> None:
    """The check above can fail: a probe port given as a list, a misspelt field."""
    bad = deployment("revops-worker")
    container = bad["spec"]["template"]["spec"]["containers"][0]
    bad_probe = {**bad, "spec": {**bad["spec"], "template": {**bad["spec"]["template"], "spec": {
        **bad["spec"]["template"]["spec"],
        "containers": [{**container, "readinessProbe": {"httpGet": {"path": "/readyz", "port": [9464]}}}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad_probe, VERSIONS[0], strict=True)
    misspelt = {**bad, "spec": {**bad["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, VERSIONS[0], strict=True)


def test_every_configured_key_is_a_setting_our_processes_read() -> None:
    ours = {name.upper() for name in Settings.model_fields}
    unknown = sorted(set(config()) - ours - TEMPORAL_ENV)
    assert not unknown, f"revops-config sets what no process reads: {unknown}"


@pytest.mark.parametrize(("name", "command", "probe_port_setting"), [
    ("revops-worker", ["python", "worker.py"], "WORKER_METRICS_PORT"),
    ("revops-ingress", ["python", "starter.py", "serve"], "INGRESS_PORT"),
])
def test_probes_reach_the_port_the_process_binds_on_the_pod_address(name: str, command: list[str],
                                                                    probe_port_setting: str) -> None:
    settings = config()
    spec = deployment(name)["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    assert container["command"] == command
    assert (ROOT / command[1]).is_file()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        assert port == int(settings[probe_port_setting]), f"{name} {probe} on {port}, process binds " \
                                                          f"{probe_port_setting}={settings[probe_port_setting]}"
    host_setting = "METRICS_HOST" if probe_port_setting.endswith("METRICS_PORT") else "INGRESS_HOST"
    assert settings[host_setting] == "0.0.0.0", f"{host_setting} on loopback: the kubelet's probes never arrive"
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    env_from = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert env_from == {"revops-config", "revops-secrets"}
    assert spec["replicas"] >= 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_service_and_the_budgets_select_pods_that_exist() -> None:
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in of_kind("Deployment")}
    (service,) = of_kind("Service")
    assert any(service["spec"]["selector"].items() <= labels.items() for labels in pods.values())
    container = deployment("revops-ingress")["spec"]["template"]["spec"]["containers"][0]
    named = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= named
    for budget in of_kind("PodDisruptionBudget"):
        labels = pods[budget["metadata"]["name"]]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_worker_scales_on_the_backlog_it_exports() -> None:
    (hpa,) = of_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "revops-worker"}
    (metric,) = hpa["spec"]["metrics"]
    name = metric["external"]["metric"]["name"]
    assert name in GAUGES, f"the worker exports no {name}"
    assert GAUGES[name][1] == ["task_queue", "kind"]
    assert metric["external"]["metric"]["selector"]["matchLabels"]["task_queue"] == config()["TASK_QUEUE"]
    (rules,) = [c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "revops-prometheus-adapter-rules"]
    adapter = yaml.safe_load(rules["data"]["config.yaml"])
    assert [r["name"]["as"] for r in adapter["externalRules"]] == [name]
