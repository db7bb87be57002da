"""The same invariants with chaos: each of the five services is SIGKILLed at a random moment
during the traffic (the supervisor restarts it) and the fake Graph fails 30% of calls.
Once the system drains (bounded wait): lost = 0 and duplicates accepted = 0.

Kafka and PostgreSQL are shared with other test sessions here, so they are not restarted;
their restarts are covered by tests/integration/test_stack.py on a private stack.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from grim.demo import invariants
from grim.demo.summary import baseline, drain, graph_events, graph_stats, where_stuck
from grim.demo.system import System, running_system

FUNNELS = 40
VICTIMS = ("redirect", "bot-gateway", "payments", "projector", "dispatcher")


@pytest.fixture(scope="module")
async def system(grim_settings, tmp_path_factory) -> AsyncIterator[System]:  # type: ignore[no-untyped-def]
    run_dir: Path = tmp_path_factory.mktemp("e2e-chaos") / ".run"
    async with running_system(grim_settings, run_dir, demo_graph_fault_rate=0.3) as running:
        yield running


async def _chaos(system: System, rng: random.Random, kills: list[tuple[str, int]]) -> None:
    victims = list(VICTIMS)
    rng.shuffle(victims)
    for name in victims:
        await asyncio.sleep(rng.uniform(0.5, 2.5))
        pid = system.supervisor.kill(name)
        if pid is not None:
            kills.append((name, pid))


async def test_invariants_hold_under_kills_and_a_flaky_graph(system: System) -> None:
    async with httpx.AsyncClient() as http:
        # Short timeouts: a "timeout" fault must cost seconds, not the test's budget.
        faults = await http.post(f"{system.settings.graph_url}/_sandbox/faults", json={
            "rate": 0.3, "kinds": ["http500", "http503", "throttle17", "transient2", "timeout"],
            "timeout_seconds": 1.0})
        assert faults.status_code == 200
    before = await baseline(system.db)
    kills: list[tuple[str, int]] = []
    chaos = asyncio.create_task(_chaos(system, random.Random(2024), kills))
    truth = await system.simulate(FUNNELS, seed=23, rate=6.0, wait_timeout=90.0)
    await chaos
    assert {name for name, _ in kills} == set(VICTIMS)
    assert not truth.errors, truth.errors
    # Gateways re-send webhooks (a real one retries for hours): whatever a dead payments
    # service missed arrives again.
    async with httpx.AsyncClient(timeout=20) as http:
        for journey in truth.journeys:
            if journey.paid:
                await http.post(f"{system.settings.sandbox_url}/v1/charges/"
                                f"{journey.payment_id}/resend-webhook")

    outcome = await drain(system.settings, system.db, truth, timeout=150, before=before)
    verdict = invariants.check(truth, await graph_events(system.settings.graph_url))
    stats = await graph_stats(system.settings.graph_url)
    print(f"kills={kills} restarts={system.supervisor.restarts()} graph={stats['requests']} "
          f"lost={verdict.lost} duplicates={verdict.duplicates}")
    assert sum(n for k, n in stats["requests"].items() if k.startswith("fault:")) > 0
    assert all(system.supervisor.restarts()[name] >= 1 for name in VICTIMS)
    missing = [j.payment_id for j in truth.purchases_expected
               if f"no Purchase for paid {j.payment_id}" in " ".join(verdict.violations)]
    assert verdict.purchases_expected > 0
    assert verdict.violations == [], await where_stuck(system.db, missing)  # type: ignore[arg-type]
    assert verdict.lost == 0 and verdict.duplicates == 0
    assert outcome.projection_problems == []
    assert outcome.drained
