"""The consumer loop's overlap: batch N+1 is taken in while N is delivered, commits stay in order."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import asyncpg
from aiokafka import TopicPartition
from grim_dispatcher.loop import DispatchLoop

TOPIC = "grim.conversions.v1"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


def records(tp: TopicPartition, *offsets: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=o, headers=(),
                            value=b"{}", timestamp=0) for o in offsets]


class Consumer:
    """Serves scripted fetches, then nothing; records seeks and commits."""

    def __init__(self, fetches: list[dict], log: list[str]) -> None:
        self.fetches = fetches
        self.log = log
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.commits: list[dict[TopicPartition, int]] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        await asyncio.sleep(0.001)  # a fetch is a round trip: other tasks run meanwhile
        return self.fetches.pop(0) if self.fetches else {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.log.append(f"commit {sorted((tp.partition, o) for tp, o in offsets.items())}")
        self.commits.append(offsets)

    def assignment(self) -> set[TopicPartition]:
        return {P0, P1}

    def highwater(self, tp: TopicPartition) -> None:
        return None


class Handler:
    """take_in/deliver that log their order; delivery of a batch waits until released."""

    def __init__(self, log: list[str], fail: set[int] | None = None) -> None:
        self.log = log
        self.fail = fail or set()
        self.release: dict[int, asyncio.Event] = {}
        self.discarded: list[int] = []

    async def take_in(self, recs: list[SimpleNamespace]) -> int:
        first = recs[0].offset
        self.log.append(f"take {first}")
        return first

    async def deliver(self, first: int) -> None:
        self.log.append(f"deliver {first}")
        await self.release.setdefault(first, asyncio.Event()).wait()
        if first in self.fail:
            self.fail.discard(first)
            raise asyncpg.PostgresConnectionError("ledger down")
        self.log.append(f"delivered {first}")

    def discard(self, first: int) -> None:
        self.discarded.append(first)

    async def requeue(self, recs: list[SimpleNamespace]) -> None:
        raise AssertionError("no retry records here")


def make_loop(consumer: Consumer, handler: Handler) -> DispatchLoop:
    return DispatchLoop(consumer, handler.take_in, handler.deliver, handler.requeue,  # type: ignore[arg-type]
                        discard=handler.discard, group="g", retry_topic="grim.capi-retry.v1",
                        fetch_max=10, linger_ms=0, backoff_max=0.01)


async def wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


async def test_next_batch_is_taken_in_during_delivery_and_commits_follow_fetch_order() -> None:
    log: list[str] = []
    consumer = Consumer([{P0: records(P0, 0, 1)}, {P0: records(P0, 2, 3)}], log)
    handler = Handler(log)
    loop = make_loop(consumer, handler)
    task = asyncio.create_task(loop.run())
    await wait_until(lambda: "take 2" in log)
    # Batch 2 was decoded while batch 1 is still out, and nothing is committed yet.
    assert log == ["take 0", "deliver 0", "take 2"]
    handler.release.setdefault(0, asyncio.Event()).set()
    await wait_until(lambda: "deliver 2" in log)
    assert log[3:] == ["delivered 0", "commit [(0, 2)]", "deliver 2"]
    loop.stop()
    handler.release.setdefault(2, asyncio.Event()).set()
    await asyncio.wait_for(task, 5)
    assert log[-2:] == ["delivered 2", "commit [(0, 4)]"]


async def test_failed_delivery_rewinds_both_batches_and_commits_neither() -> None:
    log: list[str] = []
    consumer = Consumer([{P0: records(P0, 0, 1)}, {P0: records(P0, 2), P1: records(P1, 7)}],
                        log)
    handler = Handler(log, fail={0})
    loop = make_loop(consumer, handler)
    task = asyncio.create_task(loop.run())
    await wait_until(lambda: "take 2" in log)
    handler.release.setdefault(0, asyncio.Event()).set()
    await wait_until(lambda: handler.discarded == [2])
    # Back to the failed batch's first record, and to the first record of the partition
    # only the dropped batch had; the shared partition is not moved forward again.
    assert consumer.seeks == [(P0, 0), (P1, 7)]
    assert consumer.commits == []
    # Fetched again (as the real consumer would after the seeks), both are delivered.
    consumer.fetches += [{P0: records(P0, 0, 1, 2), P1: records(P1, 7)}]
    await wait_until(lambda: bool(consumer.commits))
    assert log.count("deliver 0") == 2 and "delivered 0" in log
    loop.stop()
    await asyncio.wait_for(task, 5)
    assert consumer.commits == [{P0: 3, P1: 8}]
