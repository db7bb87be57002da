"""Session-wide access to the real stack.

The local stack (Kafka, PostgreSQL, Redis) is started once per test session,
or reused when already running or when GRIM_* URLs point at external servers.
Each session gets its own database and topic namespace, so concurrent runs and
a running demo never see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from grim.settings import GrimSettings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if f"{os.sep}integration{os.sep}" in path:
            item.add_marker(pytest.mark.integration)
        if f"{os.sep}e2e{os.sep}" in path:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """URLs of a running stack, started here if needed."""
    from grim.stack import Stack, StackConfig

    stack = Stack(StackConfig.from_env(), echo=lambda msg: print(f"[stack] {msg}"))
    stack.up()
    return stack.env()


@pytest.fixture(scope="session")
async def grim_settings(stack_env: dict[str, str]) -> AsyncIterator[GrimSettings]:
    """Settings for this session: a fresh, migrated database and a private topic namespace."""
    from grim.topics_admin import create_topics

    run_id = uuid.uuid4().hex[:10]
    admin_dsn = stack_env["GRIM_DATABASE_URL"]
    dsn = await create_database(admin_dsn, f"grim_test_{run_id}")
    settings = GrimSettings(
        kafka_bootstrap=stack_env["GRIM_KAFKA_BOOTSTRAP"],
        database_url=dsn,
        redis_url=stack_env["GRIM_REDIS_URL"],
        namespace=f"t{run_id}.",
        secret_key="test-secret-key-0123456789",
        admin_token="test-admin-token",
        service_token="test-service-token",
    )
    await create_topics(settings.kafka_bootstrap, settings.namespace)
    yield settings
    await _drop_namespace(settings)
    await drop_database(admin_dsn, dsn)


async def create_database(admin_dsn: str, name: str) -> str:
    """A new, migrated database on the server of `admin_dsn`; returns its DSN."""
    from grim.migrate import migrate

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    await migrate(dsn)
    return dsn


async def drop_database(admin_dsn: str, dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1]
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _drop_namespace(settings: GrimSettings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(settings.namespace)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def pg_pool(grim_settings: GrimSettings) -> AsyncIterator[asyncpg.Pool]:
    from grim.db import create_pool

    pool = await create_pool(grim_settings.database_url, max_size=10)
    yield pool
    await asyncio.wait_for(pool.close(), 10)


@pytest.fixture(scope="session")
async def redis_client(grim_settings: GrimSettings):  # type: ignore[no-untyped-def]
    from grim.redis import create_redis

    client = create_redis(grim_settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def publisher(grim_settings: GrimSettings):  # type: ignore[no-untyped-def]
    from grim.kafka import EventPublisher, make_producer

    producer = make_producer(grim_settings, "tests")
    await producer.start()
    yield EventPublisher(producer, grim_settings.namespace)
    await producer.stop()
