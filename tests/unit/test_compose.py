"""docker-compose.yml stays valid: pinned images, healthchecks, existing volumes and mounts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE = REPO_ROOT / "docker-compose.yml"

INFRA = {"kafka", "postgres", "redis", "prometheus", "grafana"}
GRIM_SERVICES = ["admin", "redirect", "bot-gateway", "payments", "projector", "meta-dispatcher"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every short-syntax volume entry."""
    mounts = []
    for entry in service.get("volumes", []):
        assert isinstance(entry, str), f"long volume syntax not expected: {entry!r}"
        source, target, *_ = entry.split(":")
        mounts.append((source, target))
    return mounts


def test_infrastructure_services_present(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= INFRA


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        _repo, sep, tag = image.rpartition(":")
        assert sep and "/" not in tag and tag and tag != "latest", f"{name}: {image} is not pinned"
    assert compose["services"]["kafka"]["image"] == "apache/kafka:4.2.0"


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name


def test_named_volumes_declared_and_bind_mounts_exist(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in compose["services"].items():
        for source, _target in _mounts(service):
            if source.startswith((".", "/")):
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
    assert declared == used, f"declared but unused volumes: {declared - used}"


def test_depends_on_known_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_credentials_match_the_local_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    pg_env = services["postgres"]["environment"]
    assert (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"], pg_env["POSTGRES_DB"]) == (
        "grim",
        "grim",
        "grim",
    )
    assert "127.0.0.1:15432:5432" in services["postgres"]["ports"]
    assert "127.0.0.1:16379:6379" in services["redis"]["ports"]
    assert "127.0.0.1:19092:19092" in services["kafka"]["ports"]
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "HOST://127.0.0.1:19092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]


def test_prometheus_scrapes_every_service(compose: dict[str, Any]) -> None:
    mounts = dict(_mounts(compose["services"]["prometheus"]))
    config_path = REPO_ROOT / next(src for src, dst in mounts.items() if dst.endswith(".yml"))
    config = yaml.safe_load(config_path.read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    for port, host in enumerate(GRIM_SERVICES, start=8100):
        assert f"{host}:{port}" in targets


def test_grafana_provisioning_mounted(compose: dict[str, Any]) -> None:
    mounts = dict(_mounts(compose["services"]["grafana"]))
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
    )
    return probe.returncode == 0


def test_docker_compose_config_accepts_it() -> None:
    if not _docker_compose_available():
        pytest.skip("`docker compose` is not available here; the YAML checks above stand alone")
    done = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
