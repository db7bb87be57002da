"""SIGKILL the worker (a real subprocess) at random points: nothing is missing, and the only
duplicates Meta sees come from the requests in flight at each kill."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from tests.support import wait_for

from .conftest import add_pixel, conversion, ledger_count, new_pixel_id, publish

BATCH_MAX = 100
CONCURRENCY = 2
KILLS = 3


def worker_env(settings, namespace: str, graph_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GRIM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "GRIM_DATABASE_URL": settings.database_url,
        "GRIM_SECRET_KEY": settings.secret_key.get_secret_value(),
        "GRIM_NAMESPACE": namespace,
        "GRIM_META_GRAPH_BASE": graph_url,
        "GRIM_DISPATCHER_BATCH_MAX": str(BATCH_MAX),
        "GRIM_DISPATCHER_FETCH_MAX": "500",
        "GRIM_DISPATCHER_CONCURRENCY": str(CONCURRENCY),
        "GRIM_DISPATCHER_LINGER_MS": "10",
        "GRIM_DISPATCHER_RETRY_DELAYS_SECONDS": "[0.2, 0.5]",
        "GRIM_DISPATCHER_GRAPH_TIMEOUT_SECONDS": "2",
        # The broker's minimum: a killed worker's partitions move on sooner.
        "GRIM_DISPATCHER_SESSION_TIMEOUT_MS": "6000",
    })
    return env


def start(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "grim_dispatcher", "run", "--no-http"],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"),
    )


async def test_sigkill_at_random_points_loses_nothing(
    grim_settings, namespace, fake_graph, pg_pool, publisher, tmp_path: Path
) -> None:
    fake, url = fake_graph
    fake.latency_seconds = 0.03
    pixel = new_pixel_id()
    await add_pixel(pg_pool, grim_settings, pixel)
    total = 4000
    convs = [conversion(pixel, i) for i in range(total)]
    await publish(publisher, namespace, convs)
    env = worker_env(grim_settings, namespace, url)
    log = tmp_path / "worker.log"
    rng = random.Random()

    for kill in range(KILLS):
        seen = len(fake.events(pixel))
        target = min(total - 1, seen + rng.randint(50, 900))
        proc = start(env, log)

        def progressed(proc=proc, target=target) -> bool:
            return len(fake.events(pixel)) >= target or proc.poll() is not None

        try:
            await wait_for(progressed, timeout=60, interval=0.01,
                           message=f"progress before kill {kill}")
            assert proc.poll() is None, log.read_text()[-2000:]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    proc = start(env, log)
    try:
        async def all_in() -> bool:
            return await ledger_count(pg_pool, [pixel]) == total
        await wait_for(all_in, timeout=90, interval=0.2, message="every conversion in the ledger")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    counts = fake.accepted_counts(pixel)
    assert {k[2] for k in counts} == {c.event_id for c in convs}, "an event is missing"
    duplicates = sum(n - 1 for n in counts.values())
    # Accepted by Meta but not yet in the ledger when killed: at most the requests in flight.
    assert duplicates <= KILLS * CONCURRENCY * BATCH_MAX, duplicates
