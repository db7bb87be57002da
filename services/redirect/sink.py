"""Making a click durable before the visitor is answered: Kafka, else outbox, else spool.

Kafka first (idempotent producer, acks=all). If it is down or slow, the click
goes to the PostgreSQL outbox (owner "redirect") that a relay publishes when
Kafka returns; if PostgreSQL is down too, to the local spool. A send that timed
out may still reach Kafka later, and its outbox copy then publishes a
duplicate with the same event_id: consumers deduplicate by event_id. After a
Kafka failure the sink skips Kafka for `breaker_seconds`, so a dead broker
costs visitors one timeout, not one per click.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Literal

import asyncpg
import orjson
from aiokafka.errors import KafkaError

from grim.coalesce import CoalescingPublisher
from grim.outbox import BACKLOG, Outbox
from grim_schemas import Event, encode
from grim_schemas.topics import key_for, topic_for

from .spool import Spool, SpooledRecord

log = logging.getLogger(__name__)

Path_ = Literal["kafka", "outbox", "spool"]
DB_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class ClickSink:
    def __init__(
        self,
        *,
        publisher: Callable[[], CoalescingPublisher | None],
        db: Callable[[], asyncpg.Pool | None],
        outbox: Outbox,
        spool: Spool,
        publish_timeout: float = 1.5,
        breaker_seconds: float = 5.0,
    ) -> None:
        self._publisher = publisher
        self._db = db
        self.outbox = outbox
        self.spool = spool
        self.publish_timeout = publish_timeout
        self.breaker_seconds = breaker_seconds
        self._kafka_broken_until = 0.0

    async def record(self, event: Event) -> Path_:
        """Return where the event was made durable; raises only if even the spool failed."""
        publisher = self._publisher()
        if publisher is not None and time.monotonic() >= self._kafka_broken_until:
            try:
                await publisher.publish(event, timeout=self.publish_timeout)
                return "kafka"
            except (TimeoutError, KafkaError) as exc:
                log.warning("kafka publish failed (%s); click goes to the outbox", exc)
                self._kafka_broken_until = time.monotonic() + self.breaker_seconds
        if await self._to_outbox([event]):
            return "outbox"
        await self.spool.append(SpooledRecord(
            topic_for(event, self.outbox.namespace), key_for(event), encode(event)
        ))
        return "spool"

    async def _to_outbox(self, events: list[Event]) -> bool:
        pool = self._db()
        if pool is None:
            return False
        try:
            async with asyncio.timeout(self.publish_timeout):
                async with pool.acquire() as conn, conn.transaction():
                    for event in events:
                        await self.outbox.add(conn, event)
            # The relay re-measures the backlog when it runs; while Kafka is down it
            # does not, so count here to keep grim_outbox_backlog_records honest.
            BACKLOG.labels(self.outbox.owner).inc(len(events))
            return True
        except DB_ERRORS as exc:
            log.error("outbox unavailable (%s)", exc)
            return False

    async def drain_spool(self) -> int:
        """Move spooled clicks to the outbox (or straight to Kafka); returns how many moved."""
        moved = 0
        for path, records in await self.spool.take():
            if records and not await self._drain_records(records):
                break
            self.spool.done(path, len(records))
            moved += len(records)
        return moved

    async def _drain_records(self, records: list[SpooledRecord]) -> bool:
        pool = self._db()
        if pool is not None:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.executemany(
                        "INSERT INTO outbox.events (owner, topic, key, value, event_id)"
                        " VALUES ($1, $2, $3, $4, $5)",
                        [(self.outbox.owner, r.topic, r.key, r.value, _event_id(r.value))
                         for r in records],
                    )
                BACKLOG.labels(self.outbox.owner).inc(len(records))
                return True
            except DB_ERRORS as exc:
                log.warning("spool drain to outbox failed (%s)", exc)
        publisher = self._publisher()
        if publisher is None:
            return False
        try:
            futures = [await publisher.producer.send(r.topic, r.value, key=r.key) for r in records]
            await asyncio.gather(*futures)
            return True
        except KafkaError as exc:
            log.warning("spool drain to kafka failed (%s)", exc)
            return False


def _event_id(value: bytes) -> str:
    return str(orjson.loads(value)["event_id"])
