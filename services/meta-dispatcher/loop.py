"""The consumer loop: linger to fill batches, hold back retry records until due, commit after.

On the retry topic, records that are due are handled and records that are not
are moved to the partition's tail, so one long wait never holds back another
pixel's retry queued behind it. A partition holding nothing due is paused
until its earliest record is due, but looked at again every few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from grim.kafka import CONSUMED, LAG

from .dlq import read_headers

log = logging.getLogger(__name__)

Batches = dict[TopicPartition, list[ConsumerRecord]]
RETRYABLE = (KafkaError, OSError, asyncio.TimeoutError, asyncpg.PostgresError,
             asyncpg.InterfaceError)


def partition_due(records: list[ConsumerRecord], now_ms: int) -> tuple[list[ConsumerRecord],
                                                                       list[ConsumerRecord]]:
    """Split one retry partition's records into those due now and those still waiting."""
    due, waiting = [], []
    for record in records:
        (waiting if read_headers(record.headers)[0] > now_ms else due).append(record)
    return due, waiting


class DispatchLoop:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        handler: Callable[[list[ConsumerRecord]], Awaitable[None]],
        requeue: Callable[[list[ConsumerRecord]], Awaitable[None]],
        *,
        group: str,
        retry_topic: str,
        fetch_max: int = 5000,
        linger_ms: int = 50,
        backoff_max: float = 10.0,
        recheck_ms: int = 5000,
    ) -> None:
        self.consumer = consumer
        self.handler = handler
        self.requeue = requeue
        self.recheck_ms = recheck_ms
        self.group = group
        self.retry_topic = retry_topic
        self.fetch_max = fetch_max
        self.linger_ms = linger_ms
        self.backoff_max = backoff_max
        self.resume_at: dict[TopicPartition, int] = {}
        self.waiting_since: dict[TopicPartition, float] = {}
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._resume_due()
            fetched = await self._fetch()
            due, moved, offsets = self._hold_back(fetched)
            if due or moved:
                try:
                    if due:
                        await self.handler(due)
                    if moved:
                        await self.requeue(moved)
                except RETRYABLE as exc:
                    failures += 1
                    delay = min(self.backoff_max, 0.2 * 2**failures)
                    log.warning("batch failed (%s: %s); retrying in %.1fs",
                                type(exc).__name__, exc, delay)
                    for tp in offsets:
                        self.consumer.seek(tp, fetched[tp][0].offset)
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                await self._commit(offsets, fetched)
            await self._update_lag()

    async def _fetch(self) -> Batches:
        batches: Batches = await self.consumer.getmany(timeout_ms=500, max_records=self.fetch_max)
        count = sum(len(r) for r in batches.values())
        deadline = time.monotonic() + self.linger_ms / 1000
        while 0 < count < self.fetch_max and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            more = await self.consumer.getmany(
                timeout_ms=max(1, int(remaining * 1000)), max_records=self.fetch_max - count
            )
            if not more:
                break
            for tp, recs in more.items():
                batches.setdefault(tp, []).extend(recs)
                count += len(recs)
        return batches

    def _hold_back(self, fetched: Batches) -> tuple[list[ConsumerRecord], list[ConsumerRecord],
                                                    dict[TopicPartition, int]]:
        """(records to handle, retry records to move to the tail, offsets to commit after)."""
        now_ms = int(time.time() * 1000)
        due: list[ConsumerRecord] = []
        moved: list[ConsumerRecord] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, recs in fetched.items():
            if not recs:
                continue
            if tp.topic != self.retry_topic:
                due += recs
                offsets[tp] = recs[-1].offset + 1
                continue
            ready, waiting = partition_due(recs, now_ms)
            if ready:
                due += ready
                moved += waiting
                offsets[tp] = recs[-1].offset + 1
                continue
            self.consumer.seek(tp, recs[0].offset)
            self.consumer.pause(tp)
            earliest = min(read_headers(r.headers)[0] for r in waiting)
            self.resume_at[tp] = min(earliest, now_ms + self.recheck_ms)
            self.waiting_since[tp] = min(_occurred_at(r) for r in waiting)
        return due, moved, offsets

    def _resume_due(self) -> None:
        now_ms = int(time.time() * 1000)
        assigned = self.consumer.assignment()
        for tp, at in list(self.resume_at.items()):
            if tp not in assigned:
                # Rebalanced away (or back, unpaused): the record will be fetched and held again.
                del self.resume_at[tp]
                self.waiting_since.pop(tp, None)
            elif at <= now_ms:
                self.consumer.resume(tp)
                del self.resume_at[tp]
                self.waiting_since.pop(tp, None)

    async def _commit(self, offsets: dict[TopicPartition, int], fetched: Batches) -> None:
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # The effects are durable and idempotent: redelivery after a rebalance is harmless.
            log.warning("commit failed (%s); the batch may be seen again", exc)
            return
        for tp in offsets:
            CONSUMED.labels(tp.topic, self.group).inc(len(fetched[tp]))

    async def _update_lag(self) -> None:
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            if end is None:
                continue
            position = await self.consumer.position(tp)
            LAG.labels(self.group, tp.topic, str(tp.partition)).set(max(0, end - position))


def _occurred_at(record: ConsumerRecord) -> float:
    from datetime import datetime

    try:
        value = orjson.loads(record.value or b"{}").get("occurred_at")
        return datetime.fromisoformat(value).timestamp()
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        return record.timestamp / 1000
