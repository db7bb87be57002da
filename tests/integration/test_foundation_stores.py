"""PostgreSQL (asyncpg) and Redis round trips, migrations, topic creation."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from grim.migrate import MigrationError, migrate
from grim.settings import GrimSettings
from grim.topics_admin import create_topics
from grim_schemas.topics import TOPICS


async def test_postgres_round_trip_with_json(pg_pool: asyncpg.Pool) -> None:
    async with pg_pool.acquire() as conn:
        await conn.execute("CREATE TEMP TABLE rt (id bigint, doc jsonb)")
        big = 2**62 + 5
        await conn.execute("INSERT INTO rt VALUES ($1, $2)", big, {"fbc": "fb.1.2.x.Bg", "n": [1]})
        row = await conn.fetchrow("SELECT id, doc FROM rt")
    assert row["id"] == big
    assert row["doc"] == {"fbc": "fb.1.2.x.Bg", "n": [1]}


async def test_migrations_are_applied_once(grim_settings: GrimSettings, pg_pool) -> None:  # type: ignore[no-untyped-def]
    assert await migrate(grim_settings.database_url) == []
    owners = await pg_pool.fetch("SELECT DISTINCT owner FROM grim_meta.schema_migrations")
    assert "config" in {r["owner"] for r in owners}
    tables = await pg_pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'config'"
    )
    assert {"pools", "bots", "pool_bots", "pixels"} <= {r["table_name"] for r in tables}


async def test_changed_migration_is_refused(grim_settings: GrimSettings, pg_pool, tmp_path,  # type: ignore[no-untyped-def]
                                           monkeypatch) -> None:
    name = f"chg_{uuid.uuid4().hex[:8]}"
    pkg = tmp_path / name
    (pkg / "migrations").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    sql = pkg / "migrations" / "0001_first.sql"
    sql.write_text(f'CREATE TABLE "{name}".t (id int);')
    monkeypatch.syspath_prepend(str(tmp_path))
    applied = await migrate(grim_settings.database_url, {name: name})
    assert [m.name for m in applied] == ["first"]
    sql.write_text(f'CREATE TABLE "{name}".t (id bigint);')
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(grim_settings.database_url, {name: name})
    await pg_pool.execute(f'DROP SCHEMA "{name}" CASCADE')
    await pg_pool.execute("DELETE FROM grim_meta.schema_migrations WHERE owner = $1", name)


async def test_redis_round_trip(redis_client, grim_settings: GrimSettings) -> None:  # type: ignore[no-untyped-def]
    key = grim_settings.redis_key("test", uuid.uuid4().hex)
    assert await redis_client.set(key, b"v", nx=True, ex=30)
    assert not await redis_client.set(key, b"other", nx=True, ex=30)
    assert await redis_client.get(key) == b"v"
    await redis_client.delete(key)


async def test_topic_creation_is_idempotent_with_configs(grim_settings: GrimSettings) -> None:
    again = await create_topics(grim_settings.kafka_bootstrap, grim_settings.namespace)
    assert all(not r.created for r in again)
    assert {r.name for r in again} == {s.name(grim_settings.namespace) for s in TOPICS.values()}
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=grim_settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([grim_settings.topic("paid")])
        assert len(described[0]["partitions"]) == TOPICS["paid"].partitions
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, grim_settings.topic("paid"))]
        )
        entries = {c[0]: c[1] for c in configs[0].resources[0][4]}
        assert entries["retention.ms"] == "-1"
    finally:
        await admin.close()
