"""Reading a topic to its current end: 'exactly one' without waiting for a quiet period."""

from __future__ import annotations

import uuid

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.support import wait_for


async def read_to_end(bootstrap: str, topic: str) -> list[dict]:
    """Every record now in `topic`, decoded; stops at the end offsets taken at the start."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=f"redirect-test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = await consumer._client.fetch_all_metadata()  # noqa: SLF001
        tps = [TopicPartition(topic, p) for p in sorted(partitions.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[dict] = []
        async def behind() -> bool:
            for tp in tps:
                if await consumer.position(tp) < ends[tp]:
                    return True
            return False

        while await behind():
            batch = await consumer.getmany(*tps, timeout_ms=500)
            for tp, records in batch.items():
                out.extend(orjson.loads(r.value) for r in records if r.offset < ends[tp])
        return out
    finally:
        await consumer.stop()


async def clicks_for(bootstrap: str, topic: str, **match: object) -> list[dict]:
    return [e for e in await read_to_end(bootstrap, topic)
            if all(e.get(k) == v for k, v in match.items())]


async def await_clicks(bootstrap: str, topic: str, expect: int, **match: object) -> list[dict]:
    """Matching records once at least `expect` are there (a slow broker may route a click
    through the outbox, published a moment later); callers then assert the exact count."""
    found: list[dict] = []

    async def enough() -> bool:
        nonlocal found
        found = await clicks_for(bootstrap, topic, **match)
        return len(found) >= expect

    await wait_for(enough, timeout=30, interval=0.2, message=f"{expect} records {match}")
    return found
