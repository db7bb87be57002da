"""Transactional outbox and its relay to Kafka.

`Outbox.add` runs inside the caller's transaction, so a state change and the
fact announcing it commit together. `OutboxRelay` publishes pending rows with
the idempotent producer and marks them published only after Kafka acknowledged
them. A crash between the two republishes the row; consumers deduplicate by
event_id, so the effect is exactly once.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from grim.kafka import EventPublisher
from grim_schemas import Event, encode
from grim_schemas.topics import key_for, topic_for

log = logging.getLogger(__name__)

BACKLOG = Gauge("grim_outbox_backlog_records", "Outbox rows not yet published", ["owner"])
OLDEST = Gauge(
    "grim_outbox_oldest_pending_seconds", "Age of the oldest unpublished outbox row", ["owner"]
)
RELAYED = Counter("grim_outbox_relayed_total", "Outbox rows published to Kafka", ["owner"])
RELAY_ERRORS = Counter(
    "grim_outbox_relay_errors_total", "Relay attempts that Kafka did not acknowledge", ["owner"]
)
NOTIFY_CHANNEL = "grim_outbox"


class Outbox:
    def __init__(self, owner: str, namespace: str = "") -> None:
        self.owner = owner
        self.namespace = namespace

    async def add(self, conn: asyncpg.Connection, event: Event) -> None:
        """Record `event` for publication; call inside the transaction of its state change."""
        await conn.execute(
            "INSERT INTO outbox.events (owner, topic, key, value, event_id)"
            " VALUES ($1, $2, $3, $4, $5)",
            self.owner, topic_for(event, self.namespace), key_for(event), encode(event),
            event.event_id,
        )
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, self.owner)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: EventPublisher,
        owner: str,
        *,
        batch_size: int = 500,
        idle_interval: float = 0.5,
    ) -> None:
        self.pool = pool
        self.publisher = publisher
        self.owner = owner
        self.batch_size = batch_size
        self.idle_interval = idle_interval
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def _on_notify(self, *args: object) -> None:
        if args and args[-1] == self.owner:
            self._wake.set()

    async def run(self) -> None:
        listener = await self.pool.acquire()
        await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        failures = 0
        rounds = 0
        try:
            while not self._stopping.is_set():
                rounds += 1
                try:
                    sent = await self.relay_once()
                    failures = 0
                    if rounds % 1000 == 0:
                        await self.prune()
                # PostgreSQL restarting (CannotConnectNow, a dropped connection) is as
                # transient as Kafka: the rows are durable, so retry instead of dying.
                except (KafkaError, OSError, asyncio.TimeoutError, asyncpg.PostgresError,
                        asyncpg.InterfaceError) as exc:
                    RELAY_ERRORS.labels(self.owner).inc()
                    failures += 1
                    delay = min(10.0, 0.2 * 2**failures)
                    log.warning("outbox relay for %s failed (%s); retry in %.1fs",
                                self.owner, exc, delay)
                    await self._sleep(delay)
                    continue
                if sent < self.batch_size:
                    await self._sleep(self.idle_interval)
        finally:
            try:
                await listener.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass  # the listener died with a PostgreSQL restart: nothing to remove
            await self.pool.release(listener)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def relay_once(self) -> int:
        """Publish one batch of pending rows; returns how many were published."""
        failure: KafkaError | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, topic, key, value FROM outbox.events"
                " WHERE owner = $1 AND published_at IS NULL"
                " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
                self.owner, self.batch_size,
            )
            ids = [r["id"] for r in rows]
            if rows:
                producer = self.publisher.producer
                try:
                    futures = [
                        await producer.send(r["topic"], bytes(r["value"]),
                                            key=bytes(r["key"]) if r["key"] else None)
                        for r in rows
                    ]
                    await asyncio.gather(*futures)
                except KafkaError as exc:
                    failure = exc
                else:
                    await conn.execute(
                        "UPDATE outbox.events SET published_at = now(), attempts = attempts + 1"
                        " WHERE id = ANY($1::bigint[])",
                        ids,
                    )
                    RELAYED.labels(self.owner).inc(len(rows))
            await self._measure(conn)
        if failure is not None:
            await self.pool.execute(
                "UPDATE outbox.events SET attempts = attempts + 1, last_error = $2"
                " WHERE id = ANY($1::bigint[])",
                ids, str(failure)[:500],
            )
            raise failure
        return len(rows)

    async def prune(self, keep_seconds: float = 86400) -> int:
        """Delete rows published more than `keep_seconds` ago (kept meanwhile for audits)."""
        result = await self.pool.execute(
            "DELETE FROM outbox.events WHERE owner = $1 AND published_at IS NOT NULL"
            " AND published_at < now() - make_interval(secs => $2)",
            self.owner, keep_seconds,
        )
        return int(result.split()[-1])

    async def _measure(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age"
            " FROM outbox.events WHERE owner = $1 AND published_at IS NULL",
            self.owner,
        )
        BACKLOG.labels(self.owner).set(row["n"])
        OLDEST.labels(self.owner).set(float(row["age"] or 0))
