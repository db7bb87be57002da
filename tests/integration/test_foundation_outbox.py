"""The transactional outbox: facts commit with their state change and reach Kafka
exactly once, even when Kafka is unreachable at first."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError

from grim.kafka import EventPublisher
from grim.outbox import Outbox, OutboxRelay
from grim.settings import GrimSettings
from grim_schemas import decode
from grim_schemas.events import PaymentExpired
from grim_schemas.base import utcnow
from tests.support import read_topic, wait_for


def expired(payment_id: str) -> PaymentExpired:
    return PaymentExpired(
        producer="tests", bot_id=1, telegram_user_id=2, payment_id=payment_id,
        expired_at=utcnow(),
    )


async def test_rolled_back_transaction_publishes_nothing(
    grim_settings: GrimSettings, pg_pool: asyncpg.Pool
) -> None:
    owner = f"t_{uuid.uuid4().hex[:6]}"
    outbox = Outbox(owner, grim_settings.namespace)
    with pytest.raises(RuntimeError):
        async with pg_pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, expired("never"))
            raise RuntimeError("the state change failed")
    pending = await pg_pool.fetchval("SELECT count(*) FROM outbox.events WHERE owner = $1", owner)
    assert pending == 0


async def test_relay_publishes_after_kafka_returns_exactly_once(
    grim_settings: GrimSettings, pg_pool: asyncpg.Pool, publisher: EventPublisher
) -> None:
    owner = f"t_{uuid.uuid4().hex[:6]}"
    outbox = Outbox(owner, grim_settings.namespace)
    events = [expired(f"pay-{uuid.uuid4().hex[:8]}") for _ in range(5)]
    async with pg_pool.acquire() as conn, conn.transaction():
        for event in events:
            await outbox.add(conn, event)

    # Kafka unreachable: the relay fails, rows stay pending with the error recorded.
    down = OutboxRelay(pg_pool, EventPublisher(_UnreachableKafka(), grim_settings.namespace),
                       owner)
    with pytest.raises(KafkaConnectionError):
        await down.relay_once()
    rows = await pg_pool.fetch(
        "SELECT attempts, last_error FROM outbox.events WHERE owner = $1 AND published_at IS NULL",
        owner,
    )
    assert len(rows) == 5
    assert all(r["attempts"] == 1 and "unreachable" in r["last_error"] for r in rows)

    # Kafka back: the relay publishes every row once and marks it.
    relay = OutboxRelay(pg_pool, publisher, owner, idle_interval=0.05)
    task = asyncio.create_task(relay.run())
    try:
        await wait_for(
            lambda: pg_pool.fetchval(
                "SELECT count(*) = 0 FROM outbox.events WHERE owner = $1 AND published_at IS NULL",
                owner,
            ),
            message="outbox drained",
        )
    finally:
        relay.stop()
        await task
    assert await relay.relay_once() == 0, "nothing is published twice"
    wanted = {e.payment_id for e in events}
    records = await read_topic(
        grim_settings.kafka_bootstrap, grim_settings.topic("expired"), expect=100, timeout=3
    )
    got = [decode(r.value, PaymentExpired).payment_id for r in records]
    assert sorted(p for p in got if p in wanted) == sorted(wanted)


class _UnreachableKafka:
    """Stands in for a producer whose broker cannot be reached."""

    async def send(self, *args: object, **kwargs: object) -> None:
        raise KafkaConnectionError("broker unreachable")
