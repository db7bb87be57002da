"""aiokafka adapters: an idempotent publisher and a commit-after-effect consumer loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from grim.partition import KeyPartitioner
from grim.settings import GrimSettings
from grim_schemas import Event, MalformedEvent, encode
from grim_schemas.base import utcnow
from grim_schemas.topics import key_for, topic_for

log = logging.getLogger(__name__)

PUBLISHED = Counter("grim_kafka_published_total", "Events acknowledged by Kafka", ["topic"])
PUBLISH_ERRORS = Counter(
    "grim_kafka_publish_errors_total", "Publishes that Kafka did not acknowledge", ["topic"]
)
MALFORMED = Counter(
    "grim_kafka_malformed_records_total", "Records that could not be decoded", ["topic", "group"]
)
CONSUMED = Counter("grim_kafka_consumed_total", "Records handled and committed", ["topic", "group"])
LAG = Gauge(
    "grim_kafka_consumer_lag_records",
    "Records between the committed position and the end of the partition",
    ["group", "topic", "partition"],
)


def make_producer(settings: GrimSettings, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer: acks=all, retries without duplicates."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": client_id,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 2,
        "request_timeout_ms": 15000,
        "partitioner": KeyPartitioner(),  # the default's partitions, at half the CPU
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


class EventPublisher:
    """Publishes events to their registry topic and waits for the broker's acknowledgement."""

    def __init__(self, producer: AIOKafkaProducer, namespace: str = "") -> None:
        self.producer = producer
        self.namespace = namespace

    async def publish(self, event: Event, key: bytes | None = None) -> None:
        topic = topic_for(event, self.namespace)
        await self.send_raw(topic, encode(event), key if key is not None else key_for(event))

    async def publish_many(self, events: Iterable[Event]) -> None:
        """Send all, then wait for every acknowledgement (one round trip for a batch)."""
        pending = []
        for event in events:
            topic = topic_for(event, self.namespace)
            pending.append((topic, await self.producer.send(topic, encode(event), key_for(event))))
        for topic, fut in pending:
            try:
                await fut
            except KafkaError:
                PUBLISH_ERRORS.labels(topic).inc()
                raise
            PUBLISHED.labels(topic).inc()

    async def send_raw(self, topic: str, value: bytes, key: bytes | None) -> None:
        try:
            await self.producer.send_and_wait(topic, value, key=key)
        except KafkaError:
            PUBLISH_ERRORS.labels(topic).inc()
            raise
        PUBLISHED.labels(topic).inc()


async def dead_letter(
    publisher: EventPublisher, record: ConsumerRecord, group: str, reason: str
) -> None:
    """Park an undecodable record with enough context to find and replay it."""
    entry = {
        "source_topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "group": group,
        "reason": reason,
        "key": record.key.decode("utf-8", "replace") if record.key else None,
        "value": record.value.decode("utf-8", "replace") if record.value else None,
        "parked_at": utcnow().isoformat(),
    }
    topic = f"{publisher.namespace}grim.dead-letters.v1"
    log.error("dead-lettered %s[%s]@%s: %s", record.topic, record.partition, record.offset, reason)
    await publisher.send_raw(topic, orjson.dumps(entry), record.topic.encode())


Handler = Callable[[list[ConsumerRecord]], Awaitable[None]]


class ConsumerLoop:
    """Fetches batches, hands them to a handler, and commits only after it returned.

    The handler must make its effects durable and idempotent before returning;
    if it raises, nothing is committed and the batch is fetched again after a
    backoff, so a crash or a transient failure never loses a record.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        handler: Handler,
        group: str,
        *,
        max_records: int = 500,
        timeout_ms: int = 500,
        backoff_max: float = 10.0,
    ) -> None:
        self.consumer = consumer
        self.handler = handler
        self.group = group
        self.max_records = max_records
        self.timeout_ms = timeout_ms
        self.backoff_max = backoff_max
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            batches = await self.consumer.getmany(
                timeout_ms=self.timeout_ms, max_records=self.max_records
            )
            records = [r for part in batches.values() for r in part]
            if records:
                try:
                    await self.handler(records)
                except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                    failures += 1
                    delay = min(self.backoff_max, 0.2 * 2**failures)
                    log.warning("batch failed (%s); retrying in %.1fs", exc, delay)
                    await self._rewind(batches)
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                offsets = {tp: recs[-1].offset + 1 for tp, recs in batches.items() if recs}
                await self.consumer.commit(offsets)
                for tp, recs in batches.items():
                    CONSUMED.labels(tp.topic, self.group).inc(len(recs))
            await self.update_lag()

    async def _rewind(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for tp, recs in batches.items():
            if recs:
                self.consumer.seek(tp, recs[0].offset)

    async def update_lag(self) -> None:
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            if end is None:
                continue
            position = await self.consumer.position(tp)
            LAG.labels(self.group, tp.topic, str(tp.partition)).set(max(0, end - position))


async def decode_batch(
    records: list[ConsumerRecord],
    decoder: Callable[[bytes], Event],
    publisher: EventPublisher,
    group: str,
) -> list[tuple[ConsumerRecord, Event]]:
    """Decode a batch; undecodable records are dead-lettered (durably) and counted, not dropped."""
    decoded = []
    for record in records:
        try:
            decoded.append((record, decoder(record.value or b"")))
        except MalformedEvent as exc:
            MALFORMED.labels(record.topic, group).inc()
            await dead_letter(publisher, record, group, str(exc))
    return decoded
