"""The webhook's update_id marks in Redis, with concurrent requests sharing round trips.

Commands queued while a pipeline is in flight go out together in the next one:
one request alone pays one round trip as before; under load, hundreds of
EXISTS/SET share a pipeline instead of each taking a pooled connection.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

Op = Literal["exists", "set"]


class SeenUpdates:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self._queue: list[tuple[Op, str, asyncio.Future[object]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def seen(self, key: str) -> bool:
        """Whether `key` was marked; raises RedisError/OSError when Redis is unusable."""
        return bool(await self._submit("exists", key))

    async def mark(self, key: str) -> None:
        await self._submit("set", key)

    async def _submit(self, op: Op, key: str) -> object:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queue.append((op, key, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            pipe = self.redis.pipeline(transaction=False)
            for op, key, _ in batch:
                if op == "exists":
                    pipe.exists(key)
                else:
                    pipe.set(key, b"1", ex=self.ttl)
            try:
                results = await pipe.execute()
            except (RedisError, OSError) as exc:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
