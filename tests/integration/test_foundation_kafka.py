"""Produce/consume through the real Kafka: idempotent acks=all producers,
commit-after-effect consumers, malformed records parked instead of lost."""

from __future__ import annotations

import asyncio
import uuid

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from grim.kafka import ConsumerLoop, EventPublisher, decode_batch
from grim.settings import GrimSettings
from grim_schemas import decode
from grim_schemas.events import ClickRecorded
from tests.support import read_topic, wait_for


def make_click(i: int) -> ClickRecorded:
    token = uuid.uuid4().hex
    return ClickRecorded(
        producer="tests", tracking_token=token, pageview_event_id=f"evt_{token}", pool_id=1,
        pool_slug="p", bot_id=1, bot_username="b", landing_url=f"https://x/go/p?i={i}",
        fbclid=f"IwAR-{i}",
    )


async def test_producer_is_idempotent_with_acks_all(publisher: EventPublisher) -> None:
    await publisher.publish(make_click(0))
    # An idempotent producer holds a producer id granted by the broker (InitProducerId);
    # with it the broker discards retried duplicates. aiokafka forces acks=all with it.
    txn = publisher.producer._txn_manager  # noqa: SLF001
    assert txn is not None
    assert txn.producer_id >= 0


async def test_published_events_are_read_back_byte_for_byte(
    grim_settings: GrimSettings, publisher: EventPublisher
) -> None:
    events = [make_click(i) for i in range(20)]
    await publisher.publish_many(events)
    records = await read_topic(
        grim_settings.kafka_bootstrap, grim_settings.topic("click"), expect=20
    )
    ours = {e.event_id: e for e in events}
    got = [decode(r.value, ClickRecorded) for r in records]
    mine = [e for e in got if e.event_id in ours]
    assert len(mine) == 20
    for event in mine:
        assert event == ours[event.event_id]
    for record in records:
        assert record.key == decode(record.value, ClickRecorded).tracking_token.encode()


async def test_consumer_commits_only_after_its_effect(
    grim_settings: GrimSettings, publisher: EventPublisher
) -> None:
    topic = grim_settings.topic("click")
    group = grim_settings.group(f"commit-test-{uuid.uuid4().hex[:6]}")
    events = [make_click(i) for i in range(10)]
    await publisher.publish_many(events)
    wanted = {e.event_id for e in events}
    effects: list[str] = []
    failures = {"left": 1}

    async def handler(records: list[ConsumerRecord]) -> None:
        decoded = await decode_batch(
            records, lambda raw: decode(raw, ClickRecorded), publisher, group
        )
        batch = [e.event_id for _, e in decoded if e.event_id in wanted]
        if batch and failures["left"]:
            # A transient failure before the effect is durable: nothing may be committed.
            failures["left"] -= 1
            raise ConnectionError("database went away")
        effects.extend(batch)

    async def run_once() -> None:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=grim_settings.kafka_bootstrap, group_id=group,
            enable_auto_commit=False, auto_offset_reset="earliest",
        )
        await consumer.start()
        loop = ConsumerLoop(consumer, handler, group, backoff_max=0.2)
        task = asyncio.create_task(loop.run())
        try:
            await wait_for(lambda: wanted <= set(effects), timeout=30, message="all effects")
        finally:
            loop.stop()
            await task
            await consumer.stop()

    await run_once()
    assert sorted(effects) == sorted(wanted), "the failed batch was redelivered, not lost"
    # A restarted consumer in the same group resumes after the committed offsets.
    effects.clear()
    extra = make_click(99)
    await publisher.publish(extra)
    wanted = {extra.event_id}
    await run_once()
    assert effects == [extra.event_id]


async def test_malformed_record_is_dead_lettered_not_dropped(
    grim_settings: GrimSettings, publisher: EventPublisher
) -> None:
    topic = grim_settings.topic("click")
    group = grim_settings.group("malformed-test")
    marker = uuid.uuid4().hex
    await publisher.send_raw(topic, b'{"type": "click", "oops": "' + marker.encode() + b'"}', b"k")
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=grim_settings.kafka_bootstrap, group_id=group,
        enable_auto_commit=False, auto_offset_reset="earliest",
    )
    await consumer.start()
    seen: list[str] = []

    async def handler(records: list[ConsumerRecord]) -> None:
        for _, event in await decode_batch(
            records, lambda raw: decode(raw, ClickRecorded), publisher, group
        ):
            seen.append(event.event_id)

    loop = ConsumerLoop(consumer, handler, group)
    task = asyncio.create_task(loop.run())
    try:
        parked = await wait_for(
            lambda: _find_dead_letter(grim_settings, marker), timeout=30, message="dead letter"
        )
    finally:
        loop.stop()
        await task
        await consumer.stop()
    assert parked["source_topic"] == topic
    assert parked["group"] == group
    assert "tracking_token" in parked["reason"]
    assert isinstance(parked["offset"], int)


async def _find_dead_letter(settings: GrimSettings, marker: str) -> dict | None:
    records = await read_topic(
        settings.kafka_bootstrap, f"{settings.namespace}grim.dead-letters.v1", expect=1,
        timeout=2,
    )
    for record in records:
        entry = orjson.loads(record.value)
        if marker in (entry.get("value") or ""):
            return entry
    return None
