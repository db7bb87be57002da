"""deploy/prometheus: promtool accepts the config and the alert rules, and every alert has
a runbook section in deploy/README.md. promtool comes from the Debian package
`prometheus` (scripts/install-prereqs.sh installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy/prometheus/rules").glob("*.yml"))
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert Path(PROMTOOL).exists(), "promtool missing: run scripts/install-prereqs.sh"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def _alerts() -> list[dict]:
    return [rule for path in RULES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules() -> None:
    assert RULES
    done = _promtool("check", "rules", *map(str, RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_checks_the_config(tmp_path: Path) -> None:
    # The compose file mounts the rules at /etc/prometheus/rules; point at the repo copy.
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    config["rule_files"] = [str(ROOT / "deploy/prometheus/rules/*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    done = _promtool("check", "config", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("needle", [
    "grim_dispatcher_events_failed_total",  # DLQ growing
    "grim_dispatcher_oldest_unsent_age_seconds",
    "grim_kafka_consumer_lag_records",
    'kind=~"invalid_token|pixel_flagged"',
    'grim_bot_gateway_webhook_requests_total{outcome="forbidden"}',
    "grim_outbox_oldest_pending_seconds",
    'up{job="grim"}',
])
def test_paging_conditions_are_covered(needle: str) -> None:
    assert any(needle in rule["expr"] for rule in _alerts()), needle


def test_every_alert_is_explained_in_the_operating_guide() -> None:
    guide = (ROOT / "deploy/README.md").read_text()
    headings = {h.strip().lower() for h in re.findall(r"^#+ +(\w+)", guide, re.MULTILINE)}
    for rule in _alerts():
        assert rule["alert"].lower() in headings, f"{rule['alert']} has no section in README"
        assert rule["annotations"]["runbook"].endswith("#" + rule["alert"].lower())
        assert rule["labels"]["severity"] in {"page", "ticket"}


def test_alerts_use_metrics_the_code_exports() -> None:
    exported = _exported_metric_names()
    for rule in _alerts():
        for name in re.findall(r"\b(grim_[a-z0-9_]+)", rule["expr"]):
            assert name in exported, f"{rule['alert']}: {name} is not exported by any service"


def _exported_metric_names() -> set[str]:
    """Metric names declared in the code, with the series suffixes Prometheus adds."""
    source = "".join(p.read_text() for d in ("grim", "services")
                     for p in (ROOT / d).rglob("*.py"))
    names = set(re.findall(r'"(grim_[a-z0-9_]+)"', source))
    # grim.web builds grim_<service>_http_* names at run time for the HTTP services.
    names |= {f"grim_{svc}_http_{m}" for svc in ("redirect", "bot_gateway", "payments")
              for m in ("requests_total", "request_duration_seconds")}
    return names | {n + s for n in names for s in ("_bucket", "_count", "_sum")}
