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
from dataclasses import dataclass
from typing import Any

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


@dataclass
class _Batch:
    fetched: Batches
    due: list[ConsumerRecord]
    moved: list[ConsumerRecord]
    offsets: dict[TopicPartition, int]
    taken: Any = None


class DispatchLoop:
    """Fetch and take in batch N+1 while batch N is delivered; commit strictly in order.

    Taking a batch in (decoding, looking keys up) is CPU work whose only effect is
    dead-lettering undecodable records; delivering it is mostly waiting for Graph
    and Postgres: overlapping the two keeps both busy. Only one batch is delivered
    at a time, and a batch's offsets are committed after its delivery and after the
    previous batch's commit. `discard` is told about a batch taken in but dropped
    because the delivery before it failed (both are fetched again).
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        take_in: Callable[[list[ConsumerRecord]], Awaitable[Any]],
        deliver: Callable[[Any], Awaitable[None]],
        requeue: Callable[[list[ConsumerRecord]], Awaitable[None]],
        *,
        discard: Callable[[Any], None] = lambda taken: None,
        group: str,
        retry_topic: str,
        fetch_max: int = 5000,
        linger_ms: int = 50,
        backoff_max: float = 10.0,
        recheck_ms: int = 5000,
    ) -> None:
        self.consumer = consumer
        self.take_in = take_in
        self.deliver = deliver
        self.discard = discard
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
        delivering: tuple[_Batch, asyncio.Task[None]] | None = None
        try:
            while not self._stopping.is_set():
                self._resume_due()
                # While a batch is out, do not sit on an idle topic before committing it.
                fetched = await self._fetch(timeout_ms=50 if delivering else 500)
                due, moved, offsets = self._hold_back(fetched)
                batch = _Batch(fetched, due, moved, offsets) if due or moved else None
                previous = None
                try:
                    if batch is not None and due:
                        batch.taken = await self.take_in(due)
                    if delivering is not None:
                        previous, task = delivering
                        delivering = None
                        await task
                        await self._commit(previous.offsets, previous.fetched)
                        failures = 0
                except RETRYABLE as exc:
                    # Both batches are fetched again from their first records; what the
                    # failed one made durable is skipped then as already decided.
                    self._rewind(previous, batch)
                    if batch is not None and batch.taken is not None:
                        self.discard(batch.taken)
                    failures += 1
                    delay = min(self.backoff_max, 0.2 * 2**failures)
                    log.warning("batch failed (%s: %s); retrying in %.1fs",
                                type(exc).__name__, exc, delay)
                    await asyncio.sleep(delay)
                    continue
                if batch is not None:
                    delivering = (batch, asyncio.create_task(self._deliver(batch)))
                await self._update_lag()
            if delivering is not None:
                batch, task = delivering
                try:
                    await task
                except RETRYABLE as exc:
                    log.warning("last batch failed (%s: %s); it will be fetched again",
                                type(exc).__name__, exc)
                else:
                    await self._commit(batch.offsets, batch.fetched)
        finally:
            if delivering is not None and not delivering[1].done():
                delivering[1].cancel()
                await asyncio.gather(delivering[1], return_exceptions=True)

    async def _deliver(self, batch: _Batch) -> None:
        if batch.taken is not None:
            await self.deliver(batch.taken)
        if batch.moved:
            await self.requeue(batch.moved)

    def _rewind(self, *batches: _Batch | None) -> None:
        """Seek back to the first record of each batch's handled partitions, oldest first."""
        seen: set[TopicPartition] = set()
        for batch in batches:
            if batch is None:
                continue
            for tp in batch.offsets:
                if tp not in seen:
                    seen.add(tp)
                    self.consumer.seek(tp, batch.fetched[tp][0].offset)

    async def _fetch(self, timeout_ms: int = 500) -> Batches:
        batches: Batches = await self.consumer.getmany(timeout_ms=timeout_ms,
                                                       max_records=self.fetch_max)
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
