"""CoalescingPublisher on the real Kafka: shared batches, own acks, default partitions."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError, UnknownTopicOrPartitionError
from aiokafka.partitioner import DefaultPartitioner

from grim.coalesce import CoalescingPublisher
from grim.kafka import PUBLISHED, make_producer
from tests.support import read_topic


@pytest.fixture
async def topic(grim_settings) -> str:
    """A private 6-partition topic: these records are not events, other tests read events."""
    name = f"{grim_settings.namespace}coalesce-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=grim_settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=6, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def test_concurrent_publishes_land_once_each_on_their_default_partition(
    publisher, grim_settings, topic
) -> None:
    coalescing = CoalescingPublisher(publisher.producer, grim_settings.namespace)
    run = uuid.uuid4().hex[:8]
    records = {f"{run}-{i:04d}".encode(): f'{{"n":{i}}}'.encode() for i in range(600)}
    before = PUBLISHED.labels(topic)._value.get()

    await asyncio.gather(*(coalescing.send_raw(topic, value, key)
                           for key, value in records.items()))

    assert PUBLISHED.labels(topic)._value.get() - before == 600
    seen = await read_topic(grim_settings.kafka_bootstrap, topic, expect=600)
    assert sorted(r.key for r in seen) == sorted(records)  # each exactly once
    parts = list(range(6))
    for record in seen:
        assert record.value == records[record.key]
        assert record.partition == DefaultPartitioner()(record.key, parts, parts)


async def test_a_record_too_large_fails_alone(publisher, grim_settings, topic) -> None:
    coalescing = CoalescingPublisher(publisher.producer, grim_settings.namespace)
    huge = b"x" * (coalescing.max_record + 1)
    results = await asyncio.gather(
        coalescing.send_raw(topic, huge, b"too-large"),
        coalescing.send_raw(topic, b"{}", b"fine-" + uuid.uuid4().hex.encode()),
        return_exceptions=True,
    )
    assert isinstance(results[0], MessageSizeTooLargeError) and results[1] is None


async def test_an_unknown_topic_fails_every_caller(grim_settings) -> None:
    producer = make_producer(grim_settings, "tests-coalesce", request_timeout_ms=2000)
    await producer.start()
    try:
        coalescing = CoalescingPublisher(producer, grim_settings.namespace)
        topic = f"{grim_settings.namespace}no-such-topic-{uuid.uuid4().hex[:8]}"
        results = await asyncio.gather(*(coalescing.send_raw(topic, b"{}", b"k%d" % i)
                                         for i in range(3)), return_exceptions=True)
    finally:
        await producer.stop()
    assert all(isinstance(r, UnknownTopicOrPartitionError) for r in results), results


async def test_a_caller_whose_ack_is_late_gets_a_timeout(grim_settings) -> None:
    from grim.coalesce import Deadlines

    deadlines = Deadlines(tick=0.01)
    loop = asyncio.get_running_loop()
    late, answered = loop.create_future(), loop.create_future()
    deadlines.add(answered, loop.time() + 0.05)
    deadlines.add(late, loop.time() + 0.05)
    answered.set_result(None)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(late, 5)
    assert answered.result() is None
    assert deadlines._sweeping is None  # nothing left to watch: the timer stops


async def test_records_of_callers_that_timed_out_are_not_sent(grim_settings, topic) -> None:
    producer = make_producer(grim_settings, "tests-coalesce-late")
    await producer.start()
    try:
        coalescing = CoalescingPublisher(producer, grim_settings.namespace)
        await coalescing.send_raw(topic, b"{}", b"first")  # metadata known from here on
        # Time out before the submitter's first turn: nothing may reach Kafka.
        with pytest.raises(TimeoutError):
            await coalescing.send_raw(topic, b"{}", b"late", timeout=-1)
        await coalescing.send_raw(topic, b"{}", b"on-time")
    finally:
        await producer.stop()
    keys = [r.key for r in await read_topic(grim_settings.kafka_bootstrap, topic, expect=3,
                                            timeout=3)]
    assert sorted(keys) == [b"first", b"on-time"]
