"""Observability end to end: the five services run as subprocesses (as in docker-compose),
traffic goes through them (a click, its /start, a PIX sale through the sandbox gateway,
conversions Meta accepts and refuses), a real Prometheus (Debian package) scrapes them with
deploy/prometheus/prometheus.yml and its alert rules, and then:

- `promtool check metrics` accepts every service's /metrics output;
- every PromQL panel of the dashboards parses, and returns data unless listed in
  PARSE_ONLY (metrics this traffic legitimately cannot produce);
- every SQL panel runs against the projection the projector wrote;
- Prometheus loaded every alert rule and evaluates it without error.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from grim_payments import catalog
from grim_schemas.base import utcnow
from grim_schemas.events import ConversionRequested, ConversionUserData

from grim.config.bots import upsert_bot
from grim.config.pixels import upsert_pixel
from grim.config.pools import create_pool, set_pool_bot
from grim.crypto import SecretBox
from grim.kafka import EventPublisher
from grim.sandbox.graph import FakeGraph, running
from grim.settings import GrimSettings
from grim.topics_admin import create_topics
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_SECRET = "observability-sandbox-secret"
GRIM = str(ROOT / ".venv/bin/grim")
RULES_DIR = ROOT / "deploy/prometheus/rules"

# compose service name -> how the test starts it ({port} is filled in).
SERVICES: dict[str, list[str]] = {
    "admin": ["admin", "serve", "--host", "127.0.0.1", "--port", "{port}"],
    "redirect": ["redirect", "serve", "--host", "127.0.0.1", "--port", "{port}"],
    "bot-gateway": ["bot-gateway", "serve", "--host", "127.0.0.1", "--port", "{port}"],
    "payments": ["payments", "serve", "--host", "127.0.0.1", "--port", "{port}"],
    "projector": ["projector", "run", "--port", "{port}", "--loglevel", "warning"],
    "meta-dispatcher": ["dispatcher", "run", "--port", "{port}"],
}

# Panels whose series this traffic cannot produce: only checked to parse and evaluate.
PARSE_ONLY = {
    # Only set when Kafka refuses a publish.
    "Kafka publish errors /s",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Process:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=ROOT)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, n: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-n:])


def prometheus_config(targets: dict[str, str]) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with the `grim` job pointed at `targets`
    (service -> host:port), a 1 s scrape interval and the repo's rule files."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(RULES_DIR / "*.yml")]
    grim = next(j for j in config["scrape_configs"] if j["job_name"] == "grim")
    assert {g["labels"]["service"] for g in grim["static_configs"]} == set(targets)
    for group in grim["static_configs"]:
        group["targets"] = [targets[group["labels"]["service"]]]
    return config


def _panels() -> list[Any]:
    spec = importlib.util.spec_from_file_location("grim_dashboards",
                                                  ROOT / "deploy/grafana/dashboards.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return [p for _title, panels in module.DASHBOARDS.values() for p in panels]


def _conversion(pixel_id: str, event_id: str) -> ConversionRequested:
    token = uuid.uuid4().hex
    return ConversionRequested(
        event_name="Purchase", event_id=event_id, event_time=utcnow() - timedelta(minutes=1),
        pixel_id=pixel_id, tracking_token=token, producer="tests",
        event_source_url="https://grim.test/go/obs",
        user_data=ConversionUserData(client_ip_address="203.0.113.9",
                                     client_user_agent="Mozilla/5.0 (Android)",
                                     external_id=token, em="buyer@example.com"),
        custom_data={"value": 19.9, "currency": "BRL", "order_id": event_id},
    )


@dataclass
class Stack:
    services: dict[str, Process]
    prometheus: Process
    settings: GrimSettings
    bad_pixel: str


@pytest.fixture(scope="module")
async def stack(grim_settings: GrimSettings, pg_pool: Any, publisher: EventPublisher,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    work = tmp_path_factory.mktemp("observability")
    (work / "projector").mkdir()
    namespace = f"{grim_settings.namespace}o{uuid.uuid4().hex[:6]}."
    await create_topics(grim_settings.kafka_bootstrap, namespace)
    settings = grim_settings.model_copy(update={"namespace": namespace})
    fake = FakeGraph(seed=3, timeout_seconds=1.0)
    bad_pixel = str(random.randrange(10**14, 10**15))
    fake.tokens[bad_pixel] = "EAAB-the-right-token"
    telegram = Process("telegram", [GRIM, "bot-gateway", "sandbox-telegram", "--port", "{port}"],
                       dict(os.environ), work / "telegram.log").start()
    gateway = Process("sandbox-gateway", [GRIM, "payments", "sandbox-gateway", "--port", "{port}",
                                          "--webhook-secret", SANDBOX_SECRET],
                      dict(os.environ), work / "gateway.log").start()
    processes: list[Process] = [telegram, gateway]
    async with running(fake) as graph_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIM_")}
        env.update({
            "GRIM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "GRIM_DATABASE_URL": settings.database_url,
            "GRIM_REDIS_URL": settings.redis_url,
            "GRIM_NAMESPACE": namespace,
            "GRIM_SECRET_KEY": settings.secret_key.get_secret_value(),
            "GRIM_ADMIN_TOKEN": settings.admin_token.get_secret_value(),
            "GRIM_SERVICE_TOKEN": settings.service_token.get_secret_value(),
            "GRIM_TELEGRAM_API_BASE": telegram.url,
            "GRIM_META_GRAPH_BASE": graph_url,
            "GRIM_SANDBOX_API_BASE": gateway.url,
            "GRIM_REDIRECT_SPOOL_DIR": str(work / "spool"),
            "GRIM_PROJECTOR_DATA_DIR": str(work / "projector"),
            "GRIM_PROJECTOR_HOST": "127.0.0.1",
            "GRIM_PROJECTOR_TICK_INTERVAL_S": "0.5",
            "GRIM_DISPATCHER_HOST": "127.0.0.1",
            "GRIM_DISPATCHER_LINGER_MS": "20",
            "GRIM_DISPATCHER_PIXEL_CACHE_SECONDS": "0.2",
        })
        services = {name: Process(name, [GRIM, *argv], env, work / f"{name}.log")
                    for name, argv in SERVICES.items()}
        env["GRIM_PAYMENTS_URL"] = env["GRIM_PAYMENTS_PUBLIC_URL"] = services["payments"].url
        prometheus = Process("prometheus", [], dict(os.environ), work / "prometheus.log")
        try:
            for process in services.values():
                processes.append(process.start())
            async with httpx.AsyncClient(timeout=5) as http:
                for process in [telegram, gateway, *services.values()]:
                    await _wait_up(http, process)
                await _drive_traffic(http, settings, pg_pool, publisher, services, fake, bad_pixel)
                await _sell(http, settings, pg_pool, services["payments"], gateway)
            config = work / "prometheus.yml"
            config.write_text(yaml.safe_dump(prometheus_config(
                {name: f"127.0.0.1:{p.port}" for name, p in services.items()})))
            prometheus.argv = ["/usr/bin/prometheus", f"--config.file={config}",
                               f"--storage.tsdb.path={work / 'tsdb'}",
                               f"--web.listen-address=127.0.0.1:{prometheus.port}"]
            processes.append(prometheus.start())
            yield Stack(services, prometheus, settings, bad_pixel)
        finally:
            for process in reversed(processes):
                process.stop()


async def _wait_up(http: httpx.AsyncClient, process: Process) -> None:
    async def up() -> bool:
        assert process.proc is not None and process.proc.poll() is None, \
            f"{process.name} exited:\n{process.log_tail()}"
        try:
            path = {"telegram": "/_sandbox/calls", "sandbox-gateway": "/healthz"}.get(
                process.name, "/metrics")
            return (await http.get(process.url + path)).status_code == 200
        except httpx.TransportError:
            return False

    await wait_for(up, timeout=45, interval=0.2, message=f"{process.name} to answer")


async def _drive_traffic(http: httpx.AsyncClient, settings: GrimSettings, pg_pool: Any,
                         publisher: EventPublisher, services: dict[str, Process],
                         fake: FakeGraph, bad_pixel: str) -> None:
    """A click through a pool, its /start, forged webhooks, and conversions for a good
    pixel and for one whose access token Meta refuses (code 190 -> DLQ)."""
    box = SecretBox(settings.secret_key.get_secret_value())
    bot_id = random.randrange(10**9, 10**10)
    secret = uuid.uuid4().hex
    await upsert_bot(pg_pool, box, token=f"{bot_id}:AA{uuid.uuid4().hex}",
                     username=f"obs{bot_id}_bot", webhook_secret=secret)
    pixel = str(random.randrange(10**14, 10**15))
    await upsert_pixel(pg_pool, box, pixel_id=pixel, access_token="EAAB" + "g" * 20)
    await upsert_pixel(pg_pool, box, pixel_id=bad_pixel, access_token="EAAB" + "b" * 20)
    slug = f"obs-{uuid.uuid4().hex[:10]}"
    await create_pool(pg_pool, slug=slug, pixel_id=pixel)
    await set_pool_bot(pg_pool, slug, bot_id, weight=1)

    redirect = services["redirect"].url
    browser = {"user-agent": "Mozilla/5.0 (Linux; Android 14) Chrome/131.0 Mobile"}
    page = await http.get(f"{redirect}/go/{slug}?fbclid=IwAR0bs{uuid.uuid4().hex}"
                          "&utm_source=fb&utm_campaign=obs-campaign", headers=browser)
    assert page.status_code == 200, page.text
    token = re.search(r"start=([0-9a-f]{32})", page.text)
    assert token, page.text[:500]
    assert (await http.get(f"{redirect}/go/no-such-pool", headers=browser)).status_code == 404
    crawler = {"user-agent": "facebookexternalhit/1.1"}
    assert (await http.get(f"{redirect}/go/{slug}", headers=crawler)).status_code == 200

    webhook = f"{services['bot-gateway'].url}/webhook/telegram/{bot_id}"
    user = random.randrange(10**6, 10**9)
    update = {"update_id": random.randrange(1, 10**8), "message": {
        "message_id": 1, "date": int(time.time()), "text": f"/start {token.group(1)}",
        "chat": {"id": user, "type": "private", "first_name": "Obs"},
        "from": {"id": user, "is_bot": False, "first_name": "Obs"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}
    forged = await http.post(webhook, json=update,
                             headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
    assert forged.status_code == 401
    for _ in range(2):  # the second one is a duplicate
        ok = await http.post(webhook, json=update,
                             headers={"X-Telegram-Bot-Api-Secret-Token": secret})
        assert ok.status_code == 200, ok.text

    payments = services["payments"].url
    assert (await http.get(f"{payments}/delivery/{uuid.uuid4().hex}")).status_code in (404, 410)
    forged_gateway = await http.post(f"{payments}/webhooks/sandbox/999999", content=b"{}")
    assert 400 <= forged_gateway.status_code < 500

    ours = EventPublisher(publisher.producer, settings.namespace)
    good = _conversion(pixel, f"purchase_obs_{uuid.uuid4().hex[:8]}")
    await ours.publish_many([good, good, _conversion(bad_pixel, "purchase_obs_bad")])
    # An undecodable record: the dispatcher dead-letters it (the DLQ panels need one).
    await ours.send_raw(settings.topic("conversions"), b"not an event", b"obs")

    async def delivered() -> bool:
        dead = await pg_pool.fetchval(
            "SELECT count(*) FROM dispatcher.dead_letters WHERE pixel_id = $1", bad_pixel)
        return bool(fake.accepted_counts(pixel)) and dead >= 1

    await wait_for(delivered, timeout=40, interval=0.2,
                   message="the dispatcher to deliver and dead-letter the conversions")

    async def projected() -> bool:
        return bool(await pg_pool.fetchval(
            "SELECT count(*) FROM projector.facts WHERE stage = 'start' AND tracking_token = $1",
            token.group(1)))

    await wait_for(projected, timeout=40, interval=0.2,
                   message="the projector to attribute the /start to the click")
    SALE.update(token=token.group(1), bot_id=bot_id, user=user)


SALE: dict[str, Any] = {}


async def _sell(http: httpx.AsyncClient, settings: GrimSettings, pg_pool: Any,
                payments: Process, gateway: Process) -> None:
    """The clicked user buys: a PIX charge through the sandbox gateway, then paid."""
    account = await catalog.add_account(
        pg_pool, SecretBox(settings.secret_key.get_secret_value()), name=f"obs-{uuid.uuid4().hex[:6]}",
        gateway="sandbox", credentials={"api_key": "obs-sandbox-key"}, webhook_secret=SANDBOX_SECRET,
        pix_key="loja@example.com")
    product = await catalog.add_product(pg_pool, name="Curso", price_cents=4990,
                                        gateway_account_id=account.id)
    charge = await http.post(
        f"{payments.url}/charges",
        headers={"Authorization": f"Bearer {settings.service_token.get_secret_value()}"},
        json={"idempotency_key": uuid.uuid4().hex, "product_id": product.id,
              "bot_id": SALE["bot_id"], "telegram_user_id": SALE["user"],
              "chat_id": SALE["user"], "tracking_token": SALE["token"]})
    assert charge.status_code == 201, charge.text
    payment_id = charge.json()["payment_id"]
    paid = await http.post(f"{gateway.url}/v1/charges/{payment_id}/simulate-payment",
                           json={"payer": {"name": "Ana Obs", "email": "ana@example.com"}})
    assert paid.status_code == 200, paid.text

    async def projected() -> bool:
        return bool(await pg_pool.fetchval(
            "SELECT count(*) FROM projector.payments WHERE payment_id = $1"
            " AND paid_at IS NOT NULL AND tracking_token = $2", payment_id, SALE["token"]))

    await wait_for(projected, timeout=40, interval=0.2,
                   message="the projector to record the sale with its click")


async def _query(http: httpx.AsyncClient, stack: Stack, expr: str) -> dict[str, Any]:
    answer = await http.get(f"{stack.prometheus.url}/api/v1/query", params={"query": expr})
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]


@pytest.mark.parametrize("service", list(SERVICES))
async def test_promtool_accepts_metrics(stack: Stack, service: str) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(stack.services[service].url + "/metrics")).text
    assert "grim_" in text, text[:300]
    promtool = await asyncio.create_subprocess_exec(
        "/usr/bin/promtool", "check", "metrics", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(promtool.communicate(text.encode()), 30)
    assert promtool.returncode == 0, f"{service}:\n{output.decode()}"


async def test_every_promql_panel_returns_data(stack: Stack) -> None:
    panels = [p for p in _panels() if not p.sql]
    assert not PARSE_ONLY - {p.title for p in panels}, "PARSE_ONLY names unknown panels"
    async with httpx.AsyncClient(timeout=10) as http:
        async def all_up() -> bool:
            data = await _query(http, stack, 'sum(up{job="grim"})')
            return bool(data["result"]) and float(data["result"][0]["value"][1]) == len(SERVICES)

        await wait_for(all_up, timeout=30, interval=0.5, message="Prometheus to scrape all")
        for panel in panels:
            if panel.title in PARSE_ONLY:
                await _query(http, stack, panel.query)
                continue

            async def has_data(expr: str = panel.query) -> bool:
                return bool((await _query(http, stack, expr))["result"])

            await wait_for(has_data, timeout=20, interval=0.5,
                           message=f"panel {panel.title!r} to return data: {panel.query}")


async def test_every_sql_panel_runs_on_the_projection(stack: Stack, pg_pool: Any) -> None:
    panels = [p for p in _panels() if p.sql]
    assert panels
    for panel in panels:
        query = re.sub(r"\$__timeFilter\((\w+)\)",
                       r"\1 BETWEEN now() - interval '1 day' AND now() + interval '1 hour'",
                       panel.query)
        assert "$" not in query, f"unsupported Grafana macro in {panel.title!r}"
        await pg_pool.fetch(query)
    def rows_of(title: str) -> Any:
        panel = next(p for p in panels if p.title == title)
        return pg_pool.fetch(re.sub(r"\$__timeFilter\((\w+)\)", "true", panel.query))

    funnel = await rows_of("Funnel by campaign")
    assert any(r["campaign"] == "obs-campaign" and r["starts"] >= 1 and r["paid"] >= 1
               for r in funnel), funnel
    revenue = await rows_of("Revenue by pool and campaign")
    assert any(r["campaign"] == "obs-campaign" and r["revenue_brl"] == Decimal("49.90")
               for r in revenue), revenue


async def test_prometheus_loads_and_evaluates_the_alert_rules(stack: Stack) -> None:
    expected = set(re.findall(r"- alert: (\w+)", "".join(
        p.read_text() for p in RULES_DIR.glob("*.yml"))))
    async with httpx.AsyncClient(timeout=10) as http:
        async def evaluated() -> list[dict[str, Any]]:
            body = (await http.get(f"{stack.prometheus.url}/api/v1/rules")).json()
            rules = [r for g in body["data"]["groups"] for r in g["rules"]]
            return rules if all(r.get("lastEvaluation", "").startswith("2") and
                                not r["lastEvaluation"].startswith("0001") for r in rules) \
                and rules else []

        rules = await wait_for(evaluated, timeout=20, interval=0.5, message="rule evaluation")
    assert {r["name"] for r in rules} == expected
    assert all(r["health"] == "ok" for r in rules), [r for r in rules if r["health"] != "ok"]


async def test_refused_conversions_fire_the_paging_alerts(stack: Stack) -> None:
    """The pixel whose token Meta refused pages (token and DLQ alerts, no `for`); the
    pixel Meta accepted does not."""
    async with httpx.AsyncClient(timeout=10) as http:
        async def firing() -> list[dict[str, Any]]:
            body = (await http.get(f"{stack.prometheus.url}/api/v1/alerts")).json()
            alerts = [a for a in body["data"]["alerts"] if a["state"] == "firing"
                      and a["labels"]["alertname"].startswith("GrimCapi")]
            names = {a["labels"]["alertname"] for a in alerts}
            wanted = {"GrimCapiInvalidAccessToken", "GrimCapiDlqGrowing"}
            return alerts if wanted <= names else []

        alerts = await wait_for(firing, timeout=30, interval=0.5, message="the CAPI alerts")
    assert {a["labels"].get("pixel_id") for a in alerts} == {stack.bad_pixel}, alerts
