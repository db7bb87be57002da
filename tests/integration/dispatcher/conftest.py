"""Fixtures of the dispatcher's integration tests: a private topic namespace per test,
pixels in the session database, the fake Graph API on a free port, the worker in-process."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from grim_dispatcher.bootstrap import run
from grim_dispatcher.settings import DispatcherSettings
from grim_schemas.base import utcnow
from grim_schemas.events import ConversionRequested, ConversionUserData

from grim.config.pixels import upsert_pixel
from grim.crypto import SecretBox
from grim.kafka import EventPublisher
from grim.sandbox.graph import FakeGraph, running
from grim.settings import GrimSettings


@pytest.fixture
async def namespace(grim_settings: GrimSettings) -> AsyncIterator[str]:
    """A namespace of its own: the worker reads whole topics, other tests' records stay out."""
    from aiokafka.admin import AIOKafkaAdminClient

    from grim.topics_admin import create_topics

    ns = f"{grim_settings.namespace}d{uuid.uuid4().hex[:6]}."
    await create_topics(grim_settings.kafka_bootstrap, ns)
    yield ns
    admin = AIOKafkaAdminClient(bootstrap_servers=grim_settings.kafka_bootstrap)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(ns)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


@pytest.fixture
async def fake_graph() -> AsyncIterator[tuple[FakeGraph, str]]:
    fake = FakeGraph(seed=7, timeout_seconds=2.5)
    async with running(fake) as url:
        yield fake, url


@pytest.fixture
def dispatcher_settings(grim_settings: GrimSettings, namespace: str,
                        fake_graph: tuple[FakeGraph, str]) -> DispatcherSettings:
    return make_settings(grim_settings, namespace, fake_graph[1])


def make_settings(base: GrimSettings, namespace: str, graph_url: str,
                  **overrides: Any) -> DispatcherSettings:
    values = {
        **base.model_dump(),
        "namespace": namespace,
        "meta_graph_base": graph_url,
        "dispatcher_graph_timeout_seconds": 1.5,
        "dispatcher_backoff_base_seconds": 0.02,
        "dispatcher_backoff_cap_seconds": 0.2,
        "dispatcher_attempts": 3,
        "dispatcher_retry_delays_seconds": [0.2, 0.5],
        "dispatcher_pixel_cache_seconds": 0.2,
        "dispatcher_linger_ms": 20,
    }
    values.update(overrides)
    return DispatcherSettings(**values)


_PIXELS: list[str] = []


def new_pixel_id() -> str:
    pixel_id = str(random.randint(10**14, 10**15 - 1))
    _PIXELS.append(pixel_id)
    return pixel_id


@pytest.fixture(autouse=True)
async def _forget_pixels(pg_pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Other areas' tests share the session database: leave no pixel or ledger row behind."""
    yield
    ids = list(_PIXELS)
    _PIXELS.clear()
    for table in ("dispatcher.ledger", "dispatcher.dead_letters", "config.pixels"):
        await pg_pool.execute(f"DELETE FROM {table} WHERE pixel_id = ANY($1::text[])", ids)


async def add_pixel(pool: asyncpg.Pool, settings: GrimSettings, pixel_id: str,
                    token: str = "token-1", **kw: Any) -> None:
    await upsert_pixel(pool, SecretBox(settings.secret_key.get_secret_value()),
                       pixel_id=pixel_id, access_token=token, **kw)


def conversion(pixel_id: str, i: int, name: str = "Purchase", **kw: Any) -> ConversionRequested:
    token = uuid.uuid4().hex
    data: dict[str, Any] = {
        "event_name": name,
        "event_id": f"purchase_{pixel_id}_{i}" if name == "Purchase" else f"evt_{token}",
        "event_time": utcnow() - timedelta(minutes=3),
        "pixel_id": pixel_id,
        "tracking_token": token,
        "producer": "tests",
        "event_source_url": "https://grim.test/go/promo",
        "user_data": ConversionUserData(
            client_ip_address="203.0.113.9", client_user_agent="Mozilla/5.0 (Android)",
            fbc=f"fb.1.1763800000000.IwAR{token[:12]}", fbp="fb.1.1763800000000.987654321",
            external_id=token, em=f"buyer{i}@example.com", ph="(11) 98765-4321",
        ),
        "custom_data": {"value": 19.9, "currency": "BRL", "order_id": f"o{i}"},
    }
    data.update(kw)
    return ConversionRequested(**data)


async def publish(publisher: EventPublisher, namespace: str,
                  conversions: list[ConversionRequested]) -> None:
    ours = EventPublisher(publisher.producer, namespace)
    for start in range(0, len(conversions), 2000):
        await ours.publish_many(conversions[start:start + 2000])


@contextlib.asynccontextmanager
async def dispatcher_running(settings: DispatcherSettings) -> AsyncIterator[asyncio.Task]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, serve_http=False, stop=stop, handle_signals=False))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def ledger_count(pool: asyncpg.Pool, pixel_ids: list[str]) -> int:
    return int(await pool.fetchval(
        "SELECT count(*) FROM dispatcher.ledger WHERE pixel_id = ANY($1::text[])", pixel_ids))


async def dead_letters(pool: asyncpg.Pool, pixel_ids: list[str]) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT * FROM dispatcher.dead_letters WHERE pixel_id = ANY($1::text[])", pixel_ids)
    return [dict(r) for r in rows]
