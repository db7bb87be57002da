"""Per-chat lanes: in order within a chat, concurrent across chats, failures surface."""

from __future__ import annotations

import asyncio

import pytest
from grim_bot_gateway.lanes import run_lanes, split_lanes


def test_split_keeps_order_within_each_lane() -> None:
    items = [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("b", 2), ("a", 3)]
    assert split_lanes(items, lambda i: i[0]) == [
        [("a", 1), ("a", 2), ("a", 3)], [("b", 1), ("b", 2)], [("c", 1)]]


async def test_lanes_run_concurrently_and_in_order() -> None:
    seen: list[tuple[str, int]] = []
    gate = asyncio.Event()

    async def handle(item: tuple[str, int]) -> None:
        if item == ("a", 1):
            await gate.wait()   # lane "a" stalls; lane "b" must not wait for it
        if item == ("b", 2):
            gate.set()
        seen.append(item)

    await asyncio.wait_for(run_lanes([("a", 1), ("b", 1), ("a", 2), ("b", 2)],
                                     lambda i: i[0], handle), 5)
    assert [i for i in seen if i[0] == "a"] == [("a", 1), ("a", 2)]
    assert seen.index(("b", 2)) < seen.index(("a", 1))


async def test_a_failing_lane_stops_itself_and_raises_after_the_others_finish() -> None:
    done: list[tuple[str, int]] = []

    async def handle(item: tuple[str, int]) -> None:
        if item == ("a", 1):
            raise ConnectionError("telegram down")
        await asyncio.sleep(0)
        done.append(item)

    with pytest.raises(ConnectionError):
        await run_lanes([("a", 1), ("a", 2), ("b", 1), ("b", 2)], lambda i: i[0], handle)
    assert done == [("b", 1), ("b", 2)]
