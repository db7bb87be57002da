"""docker-compose.yml runs the whole stack: the five Grim services from the one image,
a one-shot migrate before them, Prometheus scraping the ports they listen on, and the
sandbox fakes behind a profile. (`docker compose config` runs in test_compose.py where
Docker exists; these checks stand without it.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from grim.cli.main import app as grim_app

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {  # compose name -> (grim sub-command, container port)
    "admin": (["admin", "serve"], 8100),
    "redirect": (["redirect", "serve"], 8101),
    "bot-gateway": (["bot-gateway", "serve"], 8102),
    "payments": (["payments", "serve"], 8103),
    "projector": (["projector", "run"], 8104),
    "meta-dispatcher": (["dispatcher", "run"], 8105),
}
FAKES = {"fake-telegram": ["bot-gateway", "sandbox-telegram"],
         "fake-graph": ["dispatcher", "fake-graph"],
         "sandbox-gateway": ["payments", "sandbox-gateway"]}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _command_exists(words: list[str]) -> bool:
    command = get_command(grim_app)
    for word in words:
        command = command.commands.get(word)  # type: ignore[attr-defined]
        if command is None:
            return False
    return True


def _port_option(service: dict[str, Any]) -> int:
    command = service["command"]
    return int(command[command.index("--port") + 1])


@pytest.mark.parametrize("name", list(SERVICES))
def test_grim_service_runs_from_the_image(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    words, port = SERVICES[name]
    assert service["command"][:2] == words and _command_exists(words)
    assert service["build"] == "." and service["image"] == compose["services"]["migrate"]["image"]
    assert _port_option(service) == port
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert str(port) in " ".join(service["healthcheck"]["test"])
    assert service.get("profiles") is None
    env = service["environment"]
    assert env["GRIM_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert "@postgres:5432/" in env["GRIM_DATABASE_URL"]
    assert env["GRIM_REDIS_URL"].startswith("redis://redis:6379")


def test_http_services_listen_on_all_interfaces(compose: dict[str, Any]) -> None:
    for name in ("redirect", "bot-gateway", "payments"):
        command = compose["services"][name]["command"]
        assert command[command.index("--host") + 1] == "0.0.0.0"
    env = compose["services"]["projector"]["environment"]
    assert env["GRIM_PROJECTOR_HOST"] == env["GRIM_DISPATCHER_HOST"] == "0.0.0.0"


def test_prometheus_scrapes_the_ports_the_services_listen_on(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "grim")
    targets = {t for g in job["static_configs"] for t in g["targets"]}
    assert targets == {f"{name}:{port}" for name, (_w, port) in SERVICES.items()}
    mounts = dict(v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"])
    assert mounts["./deploy/prometheus/rules"] == "/etc/prometheus/rules"


def test_migrate_runs_migrations_then_topics(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    script = " ".join(migrate["command"])
    assert re.search(r"grim db migrate && grim topics create", script)
    assert _command_exists(["db", "migrate"]) and _command_exists(["topics", "create"])
    assert migrate["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"


@pytest.mark.parametrize("name", list(FAKES))
def test_sandbox_fakes_behind_a_profile(compose: dict[str, Any], name: str) -> None:
    fake = compose["services"][name]
    assert fake["profiles"] == ["sandbox"]
    assert fake["command"][:2] == FAKES[name] and _command_exists(FAKES[name])
    assert fake["command"][fake["command"].index("--host") + 1] == "0.0.0.0"


def test_dockerfile_builds_one_image_for_everything() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install --no-cache-dir -c constraints.txt ." in text
    assert 'ENTRYPOINT ["grim"]' in text
    assert re.search(r"^USER \w+", text, re.MULTILINE), "runs as root"
    for source in ("grim", "schemas", "services"):
        assert re.search(rf"^COPY {source} ", text, re.MULTILINE), source
