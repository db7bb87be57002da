"""The worker against the real Kafka and Postgres: shuffled funnels, a SIGKILL, replays."""

from __future__ import annotations

import random
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
from grim_projector import queries
from grim_projector.replay import promote_latest, run_replay, send_new_conversions
from grim_projector.report import print_report
from grim_projector.settings import ProjectorSettings
from rich.console import Console

from grim.db import create_pool
from grim.kafka import EventPublisher
from grim.settings import GrimSettings
from grim.topics_admin import create_topics
from tests.conftest import create_database, drop_database
from tests.support import read_topic, wait_for
from tests.unit.projector.funnels import Expected, build

from .worker import Worker

N_FUNNELS, N_ORGANIC, SECOND_TOUCH_EVERY = 150, 10, 10


async def _payments(pg_pool, projection: str) -> dict[str, tuple[str | None, str]]:
    rows = await pg_pool.fetch(
        "SELECT payment_id, tracking_token, attribution FROM projector.payments "
        "WHERE projection = $1", projection)
    return {r["payment_id"]: (r["tracking_token"], r["attribution"]) for r in rows}


async def _conversions(pg_pool, projection: str) -> set[tuple[str, str]]:
    rows = await pg_pool.fetch(
        "SELECT event_name, event_id FROM projector.conversions WHERE projection = $1",
        projection)
    return {(r["event_name"], r["event_id"]) for r in rows}


@pytest.fixture(scope="module")
async def projector_settings(
    grim_settings: GrimSettings, stack_env: dict[str, str]
) -> AsyncIterator[GrimSettings]:
    """A topic namespace and a database of its own: the worker reads whole topics, and
    facts or projections other tests made in the session's must not enter this one."""
    run_id = uuid.uuid4().hex[:8]
    namespace = f"{grim_settings.namespace}p{run_id}."
    await create_topics(grim_settings.kafka_bootstrap, namespace)
    admin_dsn = stack_env["GRIM_DATABASE_URL"]
    dsn = await create_database(admin_dsn, f"grim_test_projector_{run_id}")
    yield grim_settings.model_copy(update={"namespace": namespace, "database_url": dsn})
    await drop_database(admin_dsn, dsn)


@pytest.fixture(scope="module")
async def pg_pool(projector_settings: GrimSettings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(projector_settings.database_url, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def live(projector_settings: GrimSettings, pg_pool, publisher) -> AsyncIterator[Expected]:
    """Funnels produced in shuffled order across topics, the worker SIGKILLed mid-stream
    and restarted on the same state directory; yields once the projection is exact."""
    events, expected = build(N_FUNNELS, N_ORGANIC, seed=11, second_touch_every=SECOND_TOUCH_EVERY)
    random.Random(5).shuffle(events)
    first, second = events[: len(events) // 2], events[len(events) // 2:]
    grim_settings = projector_settings
    publisher = EventPublisher(publisher.producer, projector_settings.namespace)
    worker = Worker(grim_settings).start()
    try:
        await publisher.publish_many(first)
        await wait_for(lambda: pg_pool.fetchval("SELECT count(*) FROM projector.facts"),
                       timeout=60, message="first facts projected")
        worker.kill()  # no clean shutdown, no final offset commit
        await publisher.publish_many(second)
        await publisher.publish_many(events[:50])  # producer-side duplicates, same event ids
        worker = Worker(grim_settings, data_dir=worker.data_dir).start()

        async def exact() -> bool:
            return await _payments(pg_pool, "main") == expected.payments and (
                await _conversions(pg_pool, "main") == expected.conversions)

        await wait_for(exact, timeout=120, interval=0.5, message="exact projection")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{worker.port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await wait_for(lambda: _ready(http), timeout=30, message="/readyz")
            assert ready.json() == {"ready": True}


            async def settled() -> str | None:
                # The gauge is refreshed by the worker's next batch or tick after the
                # projection is exact; wait for it rather than read one instant.
                text = (await http.get("/metrics")).text
                return text if "grim_projector_pending_facts 0.0" in text else None

            metrics = await wait_for(settled, timeout=30, message="no pending facts")
        assert 'grim_projector_events_total{stage="paid"}' in metrics
        assert 'grim_projector_conversions_total{event_name="Purchase"}' in metrics
        assert "grim_projector_pending_facts 0.0" in metrics
        assert "grim_projector_consumer_lag_records{" in metrics
        assert "Traceback" not in worker.log_path.read_text(errors="replace")
        yield expected
    except AssertionError:
        got = await _payments(pg_pool, "main")
        missing = {k: v for k, v in expected.payments.items() if got.get(k) != v}
        print(f"payments: {len(got)} projected, {len(expected.payments)} expected; "
              f"differing: {dict(list(missing.items())[:5])} "
              f"(projected as {[got.get(k) for k in list(missing)[:5]]})")
        lines = worker.log_path.read_text(errors="replace").splitlines()
        print("\n".join([ln for ln in lines if "producer buffer full" not in ln][-80:]))
        raise
    finally:
        worker.stop()
        shutil.rmtree(worker.data_dir, ignore_errors=True)


async def _ready(http: httpx.AsyncClient) -> httpx.Response | None:
    response = await http.get("/readyz")
    return response if response.status_code == 200 else None


async def test_shuffled_funnels_and_a_crash_give_the_exact_projection_and_conversions(
        live: Expected, projector_settings: GrimSettings, pg_pool) -> None:
    grim_settings = projector_settings
    records = await read_topic(grim_settings.kafka_bootstrap, grim_settings.topic("conversions"),
                               expect=len(live.conversions))
    values = [orjson.loads(r.value) for r in records]
    # After the SIGKILL the topic may hold redelivered copies (same event_id); the
    # dispatcher deduplicates on (pixel, event_name, event_id), so we count distinct ids.
    assert {(v["event_name"], v["event_id"]) for v in values} == live.conversions
    purchase = next(v for v in values if v["event_name"] == "Purchase")
    assert purchase["custom_data"]["currency"] == "BRL"
    assert purchase["user_data"]["em"].endswith("@example.com")
    assert purchase["producer"] == "projector"
    revenue = await pg_pool.fetchval(
        "SELECT sum(amount_cents) FROM projector.payments WHERE projection = 'main' "
        "AND paid_at IS NOT NULL")
    assert revenue == sum(live.revenue_cents.values())
    versions = await pg_pool.fetch(
        "SELECT DISTINCT app_version, rule_version FROM projector.payments "
        "WHERE projection = 'main'")
    assert [(r["app_version"], r["rule_version"]) for r in versions] == [
        (f"{grim_settings.namespace}grim-projector-main-r1", 1)]


async def test_replays_are_identical_and_a_rule_change_names_the_changed_sales(
        live: Expected, projector_settings: GrimSettings, pg_pool) -> None:
    grim_settings = projector_settings
    settings = ProjectorSettings(**dict(grim_settings))
    console = Console(record=True, width=160)
    await run_replay(settings, 1, None, send=False, name="again-1", timeout=120, console=console)
    await run_replay(settings, 1, None, send=False, name="again-2", timeout=120, console=console)
    main = await queries.snapshot(pg_pool, "main")
    assert await queries.snapshot(pg_pool, "again-1") == main
    assert await queries.snapshot(pg_pool, "again-2") == main

    diff = await run_replay(settings, 2, None, send=False, name="rules-2", timeout=120,
                            console=console)
    second_touch = {f"pay_{i:05d}" for i in range(N_FUNNELS) if i % SECOND_TOUCH_EVERY == 1}
    assert diff.changed_payment_ids == second_touch
    assert not diff.added and not diff.removed
    assert "rules-2" in console.export_text()

    # --from: payment facts before the cut are left out, /starts of the click window are not.
    cut = await pg_pool.fetchval(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY occurred_at) FROM projector.facts "
        "WHERE projection = 'main' AND payment_id IS NOT NULL")
    await run_replay(settings, 1, cut, send=False, name="from-cut", timeout=120, console=console)
    after_cut = {r["payment_id"]: (r["tracking_token"], r["attribution"]) for r in await pg_pool.fetch(
        "SELECT DISTINCT p.payment_id, p.tracking_token, p.attribution FROM projector.payments p "
        "JOIN projector.facts f ON f.projection = p.projection AND f.payment_id = p.payment_id "
        "WHERE p.projection = 'main' AND f.occurred_at >= $1", cut)}
    assert 0 < len(after_cut) < len(live.payments)
    assert await _payments(pg_pool, "from-cut") == after_cut

    # --send: only what the ledger has not accepted and Meta still takes (7 days).
    await pg_pool.execute("""
        CREATE SCHEMA IF NOT EXISTS dispatcher;
        CREATE TABLE IF NOT EXISTS dispatcher.ledger (
            pixel_id text NOT NULL, event_name text NOT NULL, event_id text NOT NULL,
            events_received integer, fbtrace_id text, accepted_at timestamptz,
            PRIMARY KEY (pixel_id, event_name, event_id))""")
    rows = await pg_pool.fetch("SELECT pixel_id, event_name, event_id, event_time, payload "
                               "FROM projector.conversions WHERE projection = 'rules-2'")
    accepted = rows[: len(rows) // 2]
    await pg_pool.executemany(
        "INSERT INTO dispatcher.ledger VALUES ($1, $2, $3, 1, 'trace', now()) "
        "ON CONFLICT DO NOTHING", [(r["pixel_id"], r["event_name"], r["event_id"])
                                   for r in accepted])
    old = rows[-1]
    await pg_pool.execute(
        "INSERT INTO projector.conversions (projection, pixel_id, event_name, event_id, "
        "tracking_token, event_time, payload, app_version, rule_version) "
        "VALUES ('rules-2', $1, 'Purchase', 'purchase_too_old', NULL, $2, $3, 'x', 2)",
        old["pixel_id"], datetime.now(UTC) - timedelta(days=8), old["payload"])
    sent = await send_new_conversions(pg_pool, settings, "rules-2")
    assert sent == len(rows) - len(accepted)

    assert await promote_latest(settings, "rules-2") == "rules-2"
    await print_report(settings, None, None, None, None, console=console)
    text = console.export_text()
    assert "projection rules-2" in text and "Funnel" in text and "organic" in text
