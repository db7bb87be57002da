"""deploy/k8s: every built-in resource validates against the Kubernetes OpenAPI schemas
(kubernetes-validate, offline, strict), deployments have replicas, probes and resources,
and the Strimzi topics are in sync with the registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from grim_schemas.topics import TOPICS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy/k8s"
KUBERNETES_VERSION = "1.31.0"
SERVICES = ["redirect", "bot-gateway", "payments", "projector", "meta-dispatcher"]


def _resources() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in _resources() if r["kind"] == kind}


@pytest.mark.parametrize("resource", [r for r in _resources() if r["kind"] != "KafkaTopic"],
                         ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_resource_matches_the_kubernetes_schema(resource: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{resource['kind']}/{resource['metadata']['name']}: {exc.message}")


@pytest.mark.parametrize("name", SERVICES)
def test_deployment_scales_out_with_probes(name: str) -> None:
    deployment = _by_kind("Deployment")[name]
    assert deployment["spec"]["replicas"] >= 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"requests", "limits"} <= set(container["resources"])
    assert container["image"].rsplit(":", 1)[1] not in ("", "latest")
    refs = {next(iter(v.values()))["name"] for v in container["envFrom"]}
    assert refs == {"grim-config", "grim-secrets"}
    port = container["ports"][0]["containerPort"]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert name in _by_kind("PodDisruptionBudget")


def test_workers_do_not_outnumber_their_partitions() -> None:
    deployments = _by_kind("Deployment")
    assert deployments["projector"]["spec"]["replicas"] <= TOPICS["paid"].partitions
    assert deployments["meta-dispatcher"]["spec"]["replicas"] <= TOPICS["conversions"].partitions
    assert deployments["bot-gateway"]["spec"]["replicas"] <= TOPICS["telegram-updates"].partitions


def test_http_services_have_services() -> None:
    services = _by_kind("Service")
    for name in ("redirect", "bot-gateway", "payments"):
        container = _by_kind("Deployment")[name]["spec"]["template"]["spec"]["containers"][0]
        assert services[name]["spec"]["ports"][0]["port"] == container["ports"][0]["containerPort"]
    config = _by_kind("ConfigMap")["grim-config"]["data"]
    assert config["GRIM_PAYMENTS_URL"].endswith(f":{services['payments']['spec']['ports'][0]['port']}")


def test_secret_template_holds_only_placeholders() -> None:
    secret = _by_kind("Secret")["grim-secrets"]["stringData"]
    assert set(secret) == {"GRIM_DATABASE_URL", "GRIM_SECRET_KEY", "GRIM_ADMIN_TOKEN",
                           "GRIM_SERVICE_TOKEN"}
    assert all("REPLACE_ME" in value for value in secret.values())


def test_migration_job_runs_the_migrator() -> None:
    job = _by_kind("Job")["grim-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "migrate"]


def test_topics_are_in_sync_with_the_registry() -> None:
    done = subprocess.run([sys.executable, str(K8S / "generate_topics.py"), "--check"],
                          capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    topics = {r["spec"]["topicName"]: r for r in _by_kind("KafkaTopic").values()}
    assert set(topics) == {spec.name() for spec in TOPICS.values()}
    for spec in TOPICS.values():
        topic = topics[spec.name()]
        assert topic["spec"]["partitions"] == spec.partitions
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == "2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"]
