"""Publishing from many concurrent requests in shared record batches.

A request handler that must not answer before Kafka acknowledged its event
(a click, a Telegram update) pays aiokafka's whole per-message path: metadata
check, partitioner, a future and a batch append per record, and the sender's
work per produce request. Measured in the redirect, that was a third of the CPU
per click. `CoalescingPublisher` queues the records of concurrent callers per
partition and hands them to the producer as whole batches (`create_batch` /
`send_batch`: the same idempotent producer, acks and retries): what arrives in
one event-loop turn, or while the partition's previous batch waits to be sent,
goes together. Each caller still waits for the acknowledgement of its own
record, and a failure reaches exactly the callers whose batch failed. Partitions are
Kafka's default for the key (grim.partition), so records land where
`producer.send` would have put them.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict, deque

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from grim.kafka import PUBLISH_ERRORS, PUBLISHED
from grim.partition import partition_for
from grim_schemas import Event, encode
from grim_schemas.topics import key_for, topic_for

log = logging.getLogger(__name__)

# key, value, the caller's future, its deadline (loop time; infinite without a timeout)
Waiter = tuple[bytes, bytes, "asyncio.Future[None]", float]


class CoalescingPublisher:
    def __init__(self, producer: AIOKafkaProducer, namespace: str = "") -> None:
        self.producer = producer
        self.namespace = namespace
        # A record this large would be refused by the producer too (max_request_size).
        self.max_record = producer._max_request_size  # noqa: SLF001 - no public accessor
        self._queue: dict[tuple[str, int], list[Waiter]] = defaultdict(list)
        self._active: set[tuple[str, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references
        self._deadlines = Deadlines()

    async def publish(self, event: Event, timeout: float | None = None) -> None:
        """Return once Kafka acknowledged `event`; KafkaError if it did not, TimeoutError
        if that took longer than `timeout` seconds (the record may still arrive later)."""
        topic = topic_for(event, self.namespace)
        await self.send_raw(topic, encode(event), key_for(event), timeout)

    async def send_raw(self, topic: str, value: bytes, key: bytes,
                       timeout: float | None = None) -> None:
        if len(key) + len(value) > self.max_record:
            PUBLISH_ERRORS.labels(topic).inc()
            raise MessageSizeTooLargeError(f"record of {len(key) + len(value)} bytes")
        # The producer's current metadata, as its own send() reads it: partitions added
        # to a topic change where keys go for every client alike.
        partitions = self.producer.client.cluster.partitions_for_topic(topic)
        if not partitions:
            async with asyncio.timeout(timeout):
                partitions = await self.producer.partitions_for(topic)
        target = (topic, partition_for(key, len(partitions)))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        deadline = math.inf
        if timeout is not None:
            deadline = loop.time() + timeout
            self._deadlines.add(future, deadline)
        self._queue[target].append((key, value, future, deadline))
        if target not in self._active:
            # One submitter per partition: it starts on the next loop turn, so the
            # records of this turn go together, and while it waits for the partition's
            # previous batch to drain, newer records gather for the next one.
            self._active.add(target)
            task = asyncio.get_running_loop().create_task(self._submitter(target))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await future

    async def _submitter(self, target: tuple[str, int]) -> None:
        topic, partition = target
        try:
            while waiters := self._queue.pop(target, None):
                waiters = _still_waiting(waiters)
                if waiters:
                    await self._submit(topic, partition, waiters)
        finally:
            self._active.discard(target)
            for _, _, future, _ in self._queue.pop(target, []):  # only if cancelled
                if not future.done():
                    future.set_exception(KafkaError("publisher stopped"))

    async def _submit(self, topic: str, partition: int, waiters: list[Waiter]) -> None:
        """Hand the waiters' records to the producer; their futures settle on delivery."""
        start = 0
        while start < len(waiters):
            batch = self.producer.create_batch()
            end = start
            while end < len(waiters) and batch.append(
                    key=waiters[end][0], value=waiters[end][1], timestamp=None) is not None:
                end += 1
            if end == start:  # not even alone in a batch: refused, as send() would
                self._settle(waiters[start:start + 1], topic,
                             MessageSizeTooLargeError("record larger than a batch"))
                start += 1
                continue
            group = waiters[start:end]
            start = end
            batch.close()
            try:
                delivery = await self.producer.send_batch(batch, topic, partition=partition)
            except (KafkaError, OSError) as exc:
                self._settle(group, topic, exc)
                continue
            delivery.add_done_callback(
                lambda done, group=group: self._settle(group, topic, _error_of(done)))

    def _settle(self, waiters: list[Waiter], topic: str, error: BaseException | None) -> None:
        if error is None:
            PUBLISHED.labels(topic).inc(len(waiters))
        else:
            PUBLISH_ERRORS.labels(topic).inc(len(waiters))
            log.warning("batch of %d records to %s failed (%s)", len(waiters), topic, error)
        for _, _, future, _ in waiters:
            if future.done():  # the caller gave up (timeout) and went elsewhere
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


def _still_waiting(waiters: list[Waiter]) -> list[Waiter]:
    """Drop callers that timed out: they made their record durable elsewhere (or failed
    their request), so sending it now would only add a duplicate."""
    now = asyncio.get_running_loop().time()
    kept = []
    for waiter in waiters:
        future = waiter[2]
        if future.done():
            continue
        if waiter[3] <= now:
            future.set_exception(TimeoutError("no acknowledgement from Kafka in time"))
            continue
        kept.append(waiter)
    return kept


def _error_of(delivery: asyncio.Future[object]) -> BaseException | None:
    if delivery.cancelled():
        return KafkaError("delivery cancelled")
    return delivery.exception()


class Deadlines:
    """Fails futures that outlive their deadline, with one timer for all of them.

    `asyncio.timeout` per request schedules and cancels a timer each time, a
    visible cost per click; callers of one publisher mostly share one timeout, so
    deadlines arrive nearly in order and one periodic sweep serves them all
    (resolution: `tick` seconds).
    """

    def __init__(self, tick: float = 0.05) -> None:
        self.tick = tick
        self._pending: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._sweeping: asyncio.TimerHandle | None = None

    def add(self, future: asyncio.Future[None], deadline: float) -> None:
        self._pending.append((deadline, future))
        if self._sweeping is None:
            loop = asyncio.get_running_loop()
            self._sweeping = loop.call_later(self.tick, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        pending, kept = self._pending, deque()
        while pending:
            deadline, future = pending.popleft()
            if future.done():
                continue
            if deadline <= now:
                future.set_exception(TimeoutError("no acknowledgement from Kafka in time"))
            else:
                kept.append((deadline, future))
                if len(kept) > 64:  # the rest is younger: stop scanning, keep the order
                    kept.extend(pending)
                    pending.clear()
        self._pending = kept
        self._sweeping = loop.call_later(self.tick, self._sweep, loop) if kept else None
