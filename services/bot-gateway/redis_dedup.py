"""The webhook's update_id marks in Redis, with concurrent requests sharing round trips.

Queries and marks queued while a call is in flight go out together in the next
one, as two commands whatever the number of requests: one MGET answers every
"seen?" and one script sets every mark with its TTL. A request alone pays one
round trip as before; under load the client-side cost per request (which in
redis-py is mostly per command) falls with the batch size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

# KEYS: the marks to set; ARGV[1]: their TTL in seconds.
_MARK = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, '1', 'EX', ARGV[1])
end
return #KEYS
"""


class SeenUpdates:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self._mark = redis.register_script(_MARK)
        self._queries: list[tuple[str, asyncio.Future[bool]]] = []
        self._marks: list[tuple[str, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def seen(self, key: str) -> bool:
        """Whether `key` was marked; raises RedisError/OSError when Redis is unusable."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queries.append((key, future))
        self._wake()
        return await future

    async def mark(self, key: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._marks.append((key, future))
        self._wake()
        await future

    def mark_soon(self, key: str, on_error: Callable[[BaseException], object]) -> None:
        """Queue a mark without waiting for it (`on_error` hears of a failure).

        Queries queued after it see it: a batch sets its marks before it reads.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(
            lambda f: None if f.cancelled() or f.exception() is None else on_error(f.exception()))
        self._marks.append((key, future))
        self._wake()

    def _wake(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        reloaded = False
        while self._queries or self._marks:
            queries, self._queries = self._queries, []
            marks, self._marks = self._marks, []
            pipe = self.redis.pipeline(transaction=False)
            if marks:
                # EVALSHA by hand: redis-py's pipelined scripts cost a SCRIPT EXISTS per call.
                pipe.evalsha(self._mark.sha, len(marks), *(key for key, _ in marks), self.ttl)
            if queries:
                pipe.mget([key for key, _ in queries])
            try:
                results = await pipe.execute()
            except NoScriptError as exc:
                # Redis restarted or was flushed: load the script and send the batch again.
                self._queries[:0], self._marks[:0] = queries, marks
                try:
                    if reloaded:
                        raise exc
                    reloaded = True
                    await self.redis.script_load(_MARK)
                except (RedisError, OSError) as error:
                    self._fail(error)
                continue
            except (RedisError, OSError) as exc:
                self._queries[:0], self._marks[:0] = queries, marks
                self._fail(exc)
                continue
            if queries:
                for (_, future), value in zip(queries, results[-1], strict=True):
                    if not future.done():
                        future.set_result(value is not None)
            for _, future in marks:
                if not future.done():
                    future.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        """Fail every queued request (the webhook then treats the update as unseen)."""
        queued = self._queries + self._marks
        self._queries, self._marks = [], []
        for _, future in queued:
            if not future.done():
                future.set_exception(exc)
