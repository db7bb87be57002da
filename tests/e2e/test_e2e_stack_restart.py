"""Invariants across a Kafka restart and a PostgreSQL restart, in the middle of the traffic.

The shared stack is never touched: this module starts its own Kafka, PostgreSQL and Redis
with grim.stack on a private run dir and free ports (like tests/integration/test_stack.py),
runs every service against it, restarts Kafka then PostgreSQL while the simulator plays,
and checks after a bounded drain that lost = 0 and duplicates accepted = 0.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from grim.demo import invariants
from grim.demo.summary import baseline, drain, graph_events, where_stuck
from grim.demo.system import System, running_system
from grim.settings import GrimSettings
from grim.stack import Stack, StackConfig
from grim.stack.config import DEFAULT_KAFKA_PORT, DEFAULT_POSTGRES_PORT
from tests.support import private_stack_ports

FUNNELS = 30


@pytest.fixture(scope="module")
def private_stack() -> Iterator[Stack]:
    kafka, postgres, redis = private_stack_ports(low=10000, high=20000)
    # Not under pytest's tmp dir (mode 0700): PostgreSQL runs as the postgres user.
    root = Path(tempfile.mkdtemp(prefix="grim-e2e-stack-"))
    root.chmod(0o755)
    cfg = StackConfig.from_env({
        "GRIM_RUN_DIR": str(root / "run"),
        "GRIM_STACK_KAFKA_PORT": str(kafka), "GRIM_STACK_POSTGRES_PORT": str(postgres),
        "GRIM_STACK_REDIS_PORT": str(redis), "GRIM_STACK_KAFKA_HEAP": "512m",
    })
    stack = Stack(cfg, echo=print)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
async def system(private_stack: Stack, tmp_path_factory) -> AsyncIterator[System]:  # type: ignore[no-untyped-def]
    from grim.migrate import migrate
    from grim.topics_admin import create_topics

    env = private_stack.env()
    base = GrimSettings(kafka_bootstrap=env["GRIM_KAFKA_BOOTSTRAP"],
                        database_url=env["GRIM_DATABASE_URL"], redis_url=env["GRIM_REDIS_URL"],
                        namespace="restart.", secret_key="e2e-restart-secret-key-0123456789",
                        admin_token="e2e-admin", service_token="e2e-service")
    await migrate(base.database_url)
    await create_topics(base.kafka_bootstrap, base.namespace)
    run_dir = tmp_path_factory.mktemp("e2e-restart") / ".run"
    async with running_system(base, run_dir) as running:
        yield running


def _restart(stack: Stack, name: str) -> None:
    component = stack.component(name)
    pid = component.owned_pid()
    assert pid is not None, f"{name} is not running"
    component.stop(pid)
    stack.up()  # starts what is not running, the way an operator would


async def test_invariants_hold_across_kafka_and_postgres_restarts(
        private_stack: Stack, system: System) -> None:
    before = await baseline(system.db)

    async def chaos() -> None:
        await asyncio.sleep(2.0)
        await asyncio.to_thread(_restart, private_stack, "kafka")
        await asyncio.sleep(3.0)
        await asyncio.to_thread(_restart, private_stack, "postgres")

    restarts = asyncio.create_task(chaos())
    truth = await system.simulate(FUNNELS, seed=31, rate=4.0, wait_timeout=120.0)
    await restarts
    assert not truth.errors, truth.errors
    async with httpx.AsyncClient(timeout=20) as http:
        # What a gateway does for hours: re-send webhooks that were not answered 2xx.
        for journey in truth.journeys:
            if journey.paid:
                await http.post(f"{system.settings.sandbox_url}/v1/charges/"
                                f"{journey.payment_id}/resend-webhook")
    # The pool reconnects on its own after PostgreSQL came back.
    outcome = await drain(system.settings, system.db, truth, timeout=180, before=before)
    verdict = invariants.check(truth, await graph_events(system.settings.graph_url))
    print(f"restarts={system.supervisor.restarts()} lost={verdict.lost} "
          f"duplicates={verdict.duplicates}")
    missing = [j.payment_id for j in truth.purchases_expected
               if f"no Purchase for paid {j.payment_id}" in " ".join(verdict.violations)]
    assert verdict.purchases_expected > 0
    assert verdict.violations == [], await where_stuck(system.db, missing)  # type: ignore[arg-type]
    assert verdict.lost == 0 and verdict.duplicates == 0
    assert outcome.projection_problems == []


def test_private_stack_is_not_the_shared_one(private_stack: Stack) -> None:
    env = private_stack.env()
    assert str(DEFAULT_KAFKA_PORT) not in env["GRIM_KAFKA_BOOTSTRAP"]
    assert f":{DEFAULT_POSTGRES_PORT}/" not in env["GRIM_DATABASE_URL"]
    assert Path(private_stack.cfg.run_dir).name == "run"
