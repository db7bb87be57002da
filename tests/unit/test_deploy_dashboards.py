"""deploy/grafana: the committed dashboards match their generator, every panel names its
datasource (Prometheus or the projection) and says which, queries use exported metrics
and the projector's tables, and the provisioning points where compose mounts them."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy/grafana"
DATASOURCES = {"grim-prometheus": "prometheus", "grim-projection": "grafana-postgresql-datasource"}


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in (GRAFANA / "dashboards").glob("*.json")}


def _panels() -> list[dict[str, Any]]:
    return [panel for d in _dashboards().values() for panel in d["panels"]]


def test_committed_json_matches_the_generator() -> None:
    done = subprocess.run([sys.executable, str(GRAFANA / "generate_dashboards.py"), "--check"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_the_three_dashboards_exist() -> None:
    assert set(_dashboards()) == {"grim-funnel", "grim-capi", "grim-pipeline"}
    for uid, board in _dashboards().items():
        assert board["uid"] == uid and board["panels"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), uid


def test_every_panel_has_an_explicit_datasource_and_says_which() -> None:
    for panel in _panels():
        source = panel["datasource"]
        assert DATASOURCES.get(source["uid"]) == source["type"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == source, panel["title"]
        expected = "Prometheus" if source["type"] == "prometheus" else "PostgreSQL projection"
        assert panel["description"].startswith(f"Source: {expected}"), panel["title"]
        query = panel["targets"][0].get("expr") or panel["targets"][0].get("rawSql")
        assert query, panel["title"]


def test_business_panels_from_both_sources() -> None:
    funnel = _dashboards()["grim-funnel"]["panels"]
    kinds = {p["datasource"]["uid"] for p in funnel}
    assert kinds == set(DATASOURCES)
    sql = " ".join(p["targets"][0].get("rawSql", "") for p in funnel)
    for column in ("pool_slug", "utm_campaign", "amount_cents"):
        assert column in sql


def test_sql_panels_read_only_the_projection() -> None:
    migration = (ROOT / "services/projector/migrations/0001_projection.sql").read_text()
    relations = set(re.findall(r"CREATE (?:TABLE|VIEW) (projector\.\w+)", migration))
    for panel in _panels():
        sql = panel["targets"][0].get("rawSql")
        if sql is None:
            continue
        used = set(re.findall(r"\b(projector\.\w+)", sql))
        assert used and used <= relations, (panel["title"], used - relations)
        assert re.match(r"^\s*SELECT\b", sql, re.IGNORECASE), panel["title"]


def test_promql_panels_use_exported_metrics() -> None:
    spec = importlib.util.spec_from_file_location(
        "deploy_prometheus_test", ROOT / "tests/unit/test_deploy_prometheus.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exported = module._exported_metric_names()
    for panel in _panels():
        for name in re.findall(r"\b(grim_[a-z0-9_]+)", panel["targets"][0].get("expr", "")):
            assert name in exported, f"{panel['title']}: {name} is not exported"


def test_provisioning_matches_the_compose_mounts() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/grim.yml").read_text())
    assert mounts["./deploy/grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    uids = set()
    for path in (GRAFANA / "provisioning/datasources").glob("*.yml"):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            uids.add(source["uid"])
            assert DATASOURCES[source["uid"]] == source["type"]
    assert uids == set(DATASOURCES)
