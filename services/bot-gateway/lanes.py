"""Run a batch concurrently across chats while keeping each chat's records in order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import TypeVar

T = TypeVar("T")


def split_lanes(items: Iterable[T], lane_of: Callable[[T], Hashable]) -> list[list[T]]:
    lanes: dict[Hashable, list[T]] = {}
    for item in items:
        lanes.setdefault(lane_of(item), []).append(item)
    return list(lanes.values())


async def run_lanes(
    items: Iterable[T], lane_of: Callable[[T], Hashable], handle: Callable[[T], Awaitable[None]]
) -> None:
    """Each lane runs sequentially; lanes run concurrently. Every lane finishes before the
    first failure is raised, so no task is left running behind the caller's back."""

    async def lane(members: list[T]) -> None:
        for item in members:
            await handle(item)

    results = await asyncio.gather(
        *(lane(m) for m in split_lanes(items, lane_of)), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
